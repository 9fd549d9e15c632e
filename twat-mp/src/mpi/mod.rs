//! [`MpiPool`]: the items of a call over the ranks of an MPI job (feature `mpi`).
//!
//! | module | what |
//! |---|---|
//! | `ranks` | the one thread that talks MPI: rank 0 drives the serving ranks, every other rank serves |
//! | `local` | a job of one rank: rank 0's own threads serve |
//!
//! The pool is a [`ProcessPool`] whose batches go to MPI ranks instead of worker
//! processes of its own: the calls (`process/call.rs`), the frames (`process/wire.rs`)
//! and the worker's code (`process/worker.rs`) are the process pool's, unchanged.

pub(crate) mod attribute;
mod local;
mod ranks;

use std::fmt;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::async_result::AsyncResult;
use crate::engine::feed::LazyInput;
use crate::engine::settings::Settings;
use crate::error::{BoxError, BuildError, WorkerError};
use crate::process::StarArgs;
use crate::process::slot::Slots;
use crate::process::{CrossProcess, CrossProcessError, ProcessImap, ProcessPool, ProcessUimap};
use ranks::{Place, Task};

/// A pool over the ranks of an MPI job: rank 0 maps, every other rank runs items.
///
/// Every rank of an MPI job runs the same executable, as a [`ProcessPool`]'s worker
/// processes do, so the methods are `ProcessPool`'s, with the same signatures and the
/// same [`WorkerError`]s: functions are function pointers that capture nothing, items
/// and results cross as serde values ([`CrossProcess`]), a failing item is a
/// `WorkerError` with its index and [`worker()`](WorkerError::worker) = the rank it ran
/// on, and when several fail the lowest index wins.
///
/// ```
/// use twat_mp::MpiPool;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// // Run alone (no `mpirun`), this program is a job of one rank: its threads map.
/// let pool = MpiPool::new()?;
/// assert_eq!(pool.map(square, 0..5)?, [0, 1, 4, 9, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # What runs where
///
/// - **Everything before `MpiPool::new()` runs on every rank; nothing after it runs on
///   ranks other than 0.** On rank 0, `new()` returns the pool. On every other rank it
///   does not return: the rank serves rank 0's jobs until rank 0's pool is dropped, then
///   finalises MPI and exits with status 0 (`std::process::exit(0)`). So build the pool
///   early in `main`, before any side effect (a file written, a line printed) that only
///   rank 0 should do.
/// - The items and the function run on the serving ranks, on the thread that talks MPI
///   (one item at a time per rank); rank 0 runs none of them, and only sends items and
///   receives results, on one thread of its own that alone calls MPI. The `init` of
///   [`map_init`](Self::map_init) runs on each serving rank at its first item of the
///   call, and its state stays on that rank until the call ends; the shared value of
///   [`map_with`](Self::map_with) is sent to each rank once per call.
/// - A job of **one rank** (`mpirun -n 1`, or the program started without `mpirun`)
///   computes everything on rank 0: on [`local_threads`](MpiPoolBuilder::local_threads)
///   threads (by default one per usable CPU), through the same code as a serving rank.
///   So tests and laptops need no MPI job.
///
/// # Balancing
///
/// Items go to the ranks in batches on demand, one batch at a time per rank, sized as a
/// `ProcessPool` sizes them (about 2 ms of work, learned from the measured cost of an
/// item, or a fixed [`chunksize`](MpiPoolBuilder::chunksize)): a slow rank takes fewer
/// batches, and never holds the others back. Results come back in input order
/// ([`map`](Self::map), [`imap`](Self::imap)) or completion order
/// ([`uimap`](Self::uimap)); the lazy maps pull their input a bounded window ahead.
///
/// # The attribute option `mpi`
///
/// `#[pmap(mpi)]` and `#[imap(mpi)]` map on the program's one `MpiPool`, built by the
/// first call of any `mpi` attribute (with its options): that call is where the serving
/// ranks stay, so **code before the first `mpi` call runs on every rank, nothing after it
/// on ranks other than 0**. The pool is never dropped: when rank 0's program exits
/// (`main` returns, or `std::process::exit`), a hook registered with `atexit` stops the
/// serving ranks and finalises MPI. A program that uses the attributes builds no
/// `MpiPool` of its own (MPI starts once per run).
///
/// ```
/// use twat_mp::{imap, pmap};
///
/// #[pmap(mpi)]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// #[imap(mpi)]
/// fn parse(text: String) -> Result<u32, String> {
///     text.parse().map_err(|_| format!("not a number: {text}"))
/// }
///
/// // Every rank runs up to here; only rank 0 goes past the first call.
/// assert_eq!(square(0..5), [0, 1, 4, 9, 16]);
/// let parsed: Vec<_> = parse(["7".to_owned(), "x".to_owned()]).collect();
/// assert_eq!(parsed, [Ok(7), Err("not a number: x".to_owned())]);
/// ```
///
/// # Limits
///
/// - One `MpiPool` per program run: MPI is initialised when the first pool is built and
///   finalised when it is dropped (the serving ranks exit then), and MPI cannot start
///   again; a second `MpiPool::new()` fails with [`BuildError::Mpi`].
/// - Rank 0 must drop its pool (returning from `main` does it): until then the serving
///   ranks wait, and the job does not end.
/// - What MPI does not promise, this pool does not either: a rank that dies (a segfault,
///   an abort, a stack overflow, `kill`) ends the whole job, as `mpirun` decides; there
///   is no timeout and no retry. A panic costs its item only.
/// - No `initializer`, `insights`, `timeout` or `retries` (yet).
/// - The MPI library must support the `Funneled` thread level (Open MPI and MPICH do).
pub struct MpiPool {
    inner: ProcessPool,
    place: Place,
    /// The thread that talks MPI, joined (MPI finalised) by [`finish`](Self::finish).
    mpi_thread: Mutex<Option<JoinHandle<()>>>,
}

/// Settings for an [`MpiPool`]; made by [`MpiPool::builder`].
///
/// ```
/// let pool = twat_mp::MpiPool::builder().chunksize(16).local_threads(2).build()?;
/// assert_eq!(pool.map(|x: u32| x + 1, [1, 2, 3])?, [2, 3, 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `.build()`"]
pub struct MpiPoolBuilder {
    settings: Settings,
}

impl MpiPoolBuilder {
    /// A fixed number of items per message to a rank. By default the size follows the
    /// measured cost of an item (about 2 ms of work per message).
    ///
    /// ```
    /// // Items of real work: one per message, so that every rank takes its share.
    /// let pool = twat_mp::MpiPool::builder().chunksize(1).build()?;
    /// assert_eq!(pool.map(|x: u64| x * 3, [1, 2])?, [3, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.settings.chunksize = Some(chunksize);
        self
    }

    /// The threads of rank 0 that run the items when the job has one rank; by default
    /// one per CPU this process may use. Unused when the job has several ranks.
    ///
    /// ```
    /// let pool = twat_mp::MpiPool::builder().local_threads(2).build()?;
    /// if pool.ranks() == 1 {
    ///     assert_eq!(pool.nodes(), 2); // alone, rank 0's two threads run the items
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn local_threads(mut self, threads: usize) -> Self {
        self.settings.nodes = Some(threads);
        self
    }

    /// Reports this pool's events even when the global debug mode is off (see
    /// [`set_debug_mode`](crate::set_debug_mode)).
    ///
    /// ```
    /// // Reports the pool's events (ranks, failed items) through `tracing`.
    /// let pool = twat_mp::MpiPool::builder().debug(true).build()?;
    /// assert_eq!(pool.map(|x: u8| x, [1])?, [1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn debug(mut self, debug: bool) -> Self {
        self.settings.debug = debug;
        self
    }

    /// Starts MPI and makes the pool on rank 0. **On every other rank it does not
    /// return**: the rank serves until rank 0's pool is dropped, then exits with status
    /// 0 (see [What runs where](MpiPool#what-runs-where)).
    ///
    /// # Errors
    /// [`BuildError::Zero`] for `chunksize(0)`, [`BuildError::NoNodes`] for
    /// `local_threads(0)`, [`BuildError::Mpi`] when MPI cannot start (a second pool in
    /// one program run), [`BuildError::Spawn`] when the system refuses a thread.
    ///
    /// ```
    /// use twat_mp::{BuildError, MpiPool};
    ///
    /// // Everything before `build()` runs on every rank; only rank 0 gets past it.
    /// let pool = MpiPool::builder().local_threads(2).build()?;
    /// assert_eq!(pool.map(|x: u32| x + 1, [1, 2])?, [2, 3]);
    /// // MPI starts once per program run: a second pool is refused.
    /// assert!(matches!(MpiPool::new(), Err(BuildError::Mpi(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<MpiPool, BuildError> {
        let checked = self.settings.check()?;
        ranks::claim().map_err(|why| BuildError::Mpi(why.into()))?;
        let (place_to, place_from) = mpsc::channel();
        let (task_to, task_from) = mpsc::channel();
        let mpi_thread = std::thread::Builder::new()
            .name("twat-mp-mpi".into())
            .spawn(move || ranks::mpi_main(place_to, task_from))?;
        let place = match place_from.recv() {
            Ok(Ok(place)) => place,
            Ok(Err(why)) => {
                let _ = mpi_thread.join();
                return Err(BuildError::Mpi(why));
            }
            Err(_) => {
                let _ = mpi_thread.join();
                return Err(BuildError::Mpi(
                    "the MPI thread ended while starting".into(),
                ));
            }
        };
        if place.rank != 0 {
            let _ = task_to.send(Task::Serve);
            let served = mpi_thread.join();
            // Nothing after `new()` runs here: the program's rank-0 code is not ours.
            std::process::exit(if served.is_ok() { 0 } else { 1 });
        }
        let nodes = if place.size > 1 {
            place.size - 1
        } else {
            checked.nodes
        };
        let mut slots = Slots::new(nodes, checked.chunksize, None, checked.debug);
        slots.progress = checked.progress;
        let shared = Arc::new(slots);
        let mut threads = Vec::new();
        if place.size > 1 {
            let _ = task_to.send(Task::Drive(Arc::clone(&shared)));
        } else {
            let (hold, until) = mpsc::channel();
            let _ = task_to.send(Task::Hold(until));
            for index in 0..nodes {
                let local_shared = Arc::clone(&shared);
                let holds = hold.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("twat-mp-mpi-local-{index}"))
                    .spawn(move || local::local_main(local_shared, holds));
                match spawned {
                    Ok(thread) => threads.push(thread),
                    Err(err) => {
                        shared.close();
                        drop(hold);
                        join_all(threads);
                        let _ = mpi_thread.join();
                        return Err(BuildError::Spawn(err));
                    }
                }
            }
        }
        // Joined by `finish`: MPI is finalised once the local threads (if any) ended.
        Ok(MpiPool {
            inner: ProcessPool::on_transport(shared, threads),
            place,
            mpi_thread: Mutex::new(Some(mpi_thread)),
        })
    }
}

fn join_all(threads: Vec<JoinHandle<()>>) {
    for thread in threads {
        let _ = thread.join();
    }
}

impl MpiPool {
    /// Starts MPI and makes the pool on rank 0; on every other rank, serves and exits
    /// (see [`MpiPoolBuilder::build`]).
    ///
    /// # Errors
    /// [`BuildError::Mpi`] when MPI cannot start, [`BuildError::Spawn`] when the system
    /// refuses a thread.
    ///
    /// ```
    /// // Build it early in `main`: on ranks other than 0, `new()` never returns.
    /// let pool = twat_mp::MpiPool::new()?;
    /// assert_eq!(pool.map(|x: u64| x * x, 0..4)?, [0, 1, 4, 9]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<Self, BuildError> {
        Self::builder().build()
    }

    /// Settings: `chunksize`, `local_threads`, `debug`.
    ///
    /// ```
    /// let pool = twat_mp::MpiPool::builder().chunksize(8).local_threads(2).build()?;
    /// assert_eq!(pool.map(|x: u8| x * 2, [1, 2])?, [2, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> MpiPoolBuilder {
        MpiPoolBuilder::default()
    }

    /// The number of ranks of the MPI job, rank 0 included (1 without `mpirun`).
    ///
    /// ```
    /// let pool = twat_mp::MpiPool::new()?;
    /// assert!(pool.ranks() >= 1);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn ranks(&self) -> usize {
        self.place.size
    }

    /// Where the items run: the serving ranks (all but rank 0), or rank 0's local
    /// threads in a job of one rank.
    ///
    /// ```
    /// let pool = twat_mp::MpiPool::builder().local_threads(3).build()?;
    /// // The serving ranks under `mpirun -n N` (N - 1), or alone, rank 0's threads.
    /// let expected = if pool.ranks() > 1 { pool.ranks() - 1 } else { 3 };
    /// assert_eq!(pool.nodes(), expected);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn nodes(&self) -> usize {
        self.inner.nodes()
    }

    /// Applies `f` to every item on the serving ranks and returns the results in input
    /// order; as [`ProcessPool::map`].
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item (a panic), naming its rank.
    ///
    /// ```
    /// fn halve(x: u32) -> u32 {
    ///     assert!(x % 2 == 0, "{x} is odd");
    ///     x / 2
    /// }
    ///
    /// let pool = twat_mp::MpiPool::new()?;
    /// assert_eq!(pool.map(halve, [2, 4])?, [1, 2]);
    /// let err = pool.map(halve, [2, 3, 4, 5]).unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert_eq!(err.worker(), Some(0)); // the rank: 0, in a job of one rank
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<T, R, I>(&self, f: fn(T) -> R, items: I) -> Result<Vec<R>, WorkerError>
    where
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
    {
        self.inner.map(f, items)
    }

    /// [`map`](Self::map) for a function that returns `Result`; as
    /// [`ProcessPool::try_map`].
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item; the function's own error is its
    /// source.
    ///
    /// ```
    /// fn parse(text: String) -> Result<u32, String> {
    ///     text.parse().map_err(|err| format!("{text:?}: {err}"))
    /// }
    ///
    /// let pool = twat_mp::MpiPool::new()?;
    /// let err = pool.try_map(parse, ["1".to_owned(), "x".to_owned()]).unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_map<T, R, E, Via, I>(
        &self,
        f: fn(T) -> Result<R, E>,
        items: I,
    ) -> Result<Vec<R>, WorkerError>
    where
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
        E: CrossProcessError<Via> + Into<BoxError>,
        Via: 'static,
    {
        self.inner.try_map(f, items)
    }

    /// Applies `f` to the fields of each tuple; as [`ProcessPool::starmap`].
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// let pool = twat_mp::MpiPool::new()?;
    /// assert_eq!(pool.starmap(|a: u64, b: u64| a + b, [(1, 2), (3, 4)])?, [3, 7]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn starmap<Args, R, I>(
        &self,
        f: <Args as StarArgs<R>>::Fn,
        tuples: I,
    ) -> Result<Vec<R>, WorkerError>
    where
        Args: StarArgs<R> + CrossProcess,
        R: CrossProcess,
        I: IntoIterator<Item = Args>,
    {
        self.inner.starmap(f, tuples)
    }

    /// Results lazily, in input order, the input pulled a bounded window ahead; as
    /// [`ProcessPool::imap`].
    ///
    /// ```
    /// let pool = twat_mp::MpiPool::new()?;
    /// let firsts: Vec<u64> = pool
    ///     .imap(|x: u64| x * 10, 0..)
    ///     .take(3)
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(firsts, [0, 10, 20]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap<'pool, T, R, I>(&'pool self, f: fn(T) -> R, items: I) -> ProcessImap<'pool, R>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        T: CrossProcess,
        R: CrossProcess,
    {
        self.inner.imap(f, items)
    }

    /// Results lazily, in the order they finish; as [`ProcessPool::uimap`].
    ///
    /// ```
    /// let pool = twat_mp::MpiPool::new()?;
    /// let mut all: Vec<u64> = pool.uimap(|x: u64| x + 1, 0..4).collect::<Result<_, _>>()?;
    /// all.sort();
    /// assert_eq!(all, [1, 2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn uimap<'pool, T, R, I>(&'pool self, f: fn(T) -> R, items: I) -> ProcessUimap<'pool, R>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        T: CrossProcess,
        R: CrossProcess,
    {
        self.inner.uimap(f, items)
    }

    /// [`map`](Self::map) in the background: the handle at once, the results later; as
    /// [`ProcessPool::amap`].
    ///
    /// ```
    /// let pool = twat_mp::MpiPool::new()?;
    /// let pending = pool.amap(|x: u64| x * 2, 0..3);
    /// assert_eq!(pending.get()?, [0, 2, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn amap<T, R, I>(&self, f: fn(T) -> R, items: I) -> AsyncResult<Result<Vec<R>, WorkerError>>
    where
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
    {
        self.inner.amap(f, items)
    }

    /// [`map`](Self::map) with a state per rank and call: `init` runs on each rank (or
    /// local thread) at its first item of the call, and each item there gets the state
    /// mutably; as [`ProcessPool::map_init`].
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item (a panic in `init` fails the items
    /// of that rank as [`ErrorKind::InitPanicked`](crate::ErrorKind::InitPanicked)).
    ///
    /// ```
    /// fn count(seen: &mut u32, x: u32) -> (u32, u32) {
    ///     *seen += 1;
    ///     (x, *seen)
    /// }
    ///
    /// let pool = twat_mp::MpiPool::builder().local_threads(1).build()?;
    /// let counted = pool.map_init(|| 0, count, [7, 8, 9])?;
    /// assert_eq!(counted, [(7, 1), (8, 2), (9, 3)]); // one rank or thread: one state
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_init<S, T, R, I>(
        &self,
        init: fn() -> S,
        f: fn(&mut S, T) -> R,
        items: I,
    ) -> Result<Vec<R>, WorkerError>
    where
        S: 'static,
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
    {
        self.inner.map_init(init, f, items)
    }

    /// [`map`](Self::map) with a value shared by every item: sent to each rank once per
    /// call; as [`ProcessPool::map_with`].
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// fn lookup(table: &Vec<String>, at: usize) -> String {
    ///     table[at].clone()
    /// }
    ///
    /// let pool = twat_mp::MpiPool::new()?;
    /// let table = vec!["zero".to_owned(), "one".to_owned()];
    /// assert_eq!(pool.map_with(table, lookup, [1, 0])?, ["one", "zero"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_with<S, T, R, I>(
        &self,
        shared: S,
        f: fn(&S, T) -> R,
        items: I,
    ) -> Result<Vec<R>, WorkerError>
    where
        S: CrossProcess,
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
    {
        self.inner.map_with(shared, f, items)
    }
}

impl MpiPool {
    /// Ends the pool without dropping it: waits for the calls in flight, tells the
    /// serving ranks to stop (they exit) and finalises MPI. What `Drop` does; also run
    /// at exit for the `mpi` attributes' pool, which is never dropped. A second call
    /// does nothing.
    pub(crate) fn finish(&self) {
        self.inner.close();
        let thread = self
            .mpi_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for MpiPool {
    fn drop(&mut self) {
        self.finish();
    }
}

impl fmt::Debug for MpiPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpiPool")
            .field("ranks", &self.place.size)
            .field("nodes", &self.inner.nodes())
            .finish()
    }
}
