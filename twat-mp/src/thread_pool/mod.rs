//! [`ThreadPool`]: items on N OS threads with work stealing (rayon).
//!
//! | module | what |
//! |---|---|
//! | this one | the pool, its builder and its methods; `map` runs on rayon's own splitting |
//! | `lazy` | `imap` and `uimap`: the engine's window over jobs spawned on the pool, fed by the engine's `Feed` |
//! | `attribute` | what `#[pmap]`, `#[imap]` and `#[amap]` call |

pub(crate) mod attribute;
pub(crate) mod lazy;

use std::convert::Infallible;
use std::fmt;
use std::panic;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rayon::prelude::*;

use crate::async_result::{AsyncResult, async_result};
use crate::debug::event;
use crate::engine::feed::LazyInput;
use crate::engine::insights::{Insights, Recorder};
use crate::engine::item::{CancelFlag, ItemFailure, ItemRunner, LeafAborted, Outcome, cancelled};
use crate::engine::progress::{Progress, progress_setter};
use crate::engine::registry::FromSettings;
use crate::engine::render::Render;
use crate::engine::settings::Settings;
use crate::engine::state::{StateGuard, WorkerStates};
use crate::error::{BoxError, BuildError, ErrorKind, WorkerError};
use crate::panic_capture;
use crate::tuple_fn::TupleFn;

use lazy::LazyMap;
pub use lazy::{Imap, Uimap};

/// A pool of OS threads for CPU-bound work and blocking I/O: the default pool, since Rust
/// threads share no interpreter lock.
///
/// Items are spread over `nodes` threads with work stealing (rayon). A panic in one item
/// is caught and comes back as a [`WorkerError`] naming the item; the pool stays usable.
/// The pool is `Send + Sync`, can be shared between threads, and on `Drop` waits for its
/// outstanding work (from [`amap`](Self::amap), [`apipe`](Self::apipe), while their
/// [`AsyncResult`] is held: a dropped one cancels the items of its call that have not
/// started) and joins every thread it started — the Rust form of Python's
/// `with ThreadPool() as pool:`. Dropped while the caller is panicking, it cancels the
/// items that have not started yet instead.
///
/// **Nesting.** The pool may be used inside its own items: a nested `map`, `imap` or
/// `apply` shares the threads as rayon's nested calls do, and a pool thread that blocks on
/// [`AsyncResult::get`](crate::AsyncResult::get) or [`wait`](crate::AsyncResult::wait)
/// runs the pool's pending jobs meanwhile, so `pool.amap(..).get()` inside `pool.map(..)`
/// finishes even on one node.
///
/// **State and shared data.** [`map_init`](Self::map_init) (and `imap_init`, `uimap_init`)
/// gives each pool thread a state of its own: `init` runs on that thread before its first
/// item of the call, at most once per thread per call, and the states are dropped when the
/// call ends. [`map_with`](Self::map_with) lends one value to every item, borrowed.
///
/// ```
/// use twat_mp::ThreadPool;
///
/// let pool = ThreadPool::new()?;
/// let squares = pool.map(|x: u64| x * x, 0..10)?;
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ThreadPool {
    /// `None` only inside `Drop`, between shutting rayon down and joining its threads.
    rayon: Option<rayon::ThreadPool>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    nodes: usize,
    chunksize: Option<usize>,
    debug: bool,
    shutdown: Arc<CancelFlag>,
    /// Only with `.insights(true)`.
    insights: Option<Arc<Recorder>>,
    /// A progress bar per call (feature `progress`).
    progress: bool,
}

/// Settings for a [`ThreadPool`]; made by [`ThreadPool::builder`].
///
/// ```
/// use twat_mp::ThreadPool;
///
/// let pool = ThreadPool::builder().nodes(3).chunksize(64).build()?;
/// assert_eq!(pool.nodes(), 3);
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `.build()`"]
pub struct ThreadPoolBuilder {
    settings: Settings,
}

impl ThreadPoolBuilder {
    /// The number of worker threads; the default is the number of CPUs this process may
    /// use (cgroup quotas and affinity included). At most [`MAX_NODES`](crate::MAX_NODES).
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).build()?;
    /// assert_eq!(pool.nodes(), 2);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn nodes(mut self, nodes: usize) -> Self {
        self.settings.nodes = Some(nodes);
        self
    }

    /// The fewest items a thread takes at a time in `map`, and the number of items per
    /// job in `imap`/`uimap`. By default both split adaptively: `map` as rayon does, and
    /// the lazy maps start with one item per job and double the chunk while jobs take
    /// well under 100 µs, up to 1,024 items, falling back at once after a slow job; a
    /// thread left idle takes the later half of the items not started of another job,
    /// so items behind a slow one do not wait for it. A fixed chunk gives up that
    /// adaptation: it bounds how much input is pulled ahead more tightly (two chunks per
    /// thread), and makes a chunk short of full wait up to a millisecond for a live
    /// input's next items.
    ///
    /// ```
    /// // A fixed chunk of 256: at most two chunks per thread are pulled ahead.
    /// let pool = twat_mp::ThreadPool::builder().chunksize(256).build()?;
    /// let doubled: Vec<u64> = pool.imap(|x: u64| x * 2, 0..10_000).map(Result::unwrap).collect();
    /// assert_eq!(doubled[9_999], 19_998);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.settings.chunksize = Some(chunksize);
        self
    }

    /// Reports this pool's events even when the global debug mode is off
    /// (see [`set_debug_mode`](crate::set_debug_mode)).
    ///
    /// ```
    /// // Reports the pool's start, its threads and each failed item through `tracing`.
    /// let pool = twat_mp::ThreadPool::builder().nodes(1).debug(true).build()?;
    /// assert!(pool.map(|x: u32| 10 / x, [1, 0]).is_err());
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn debug(mut self, debug: bool) -> Self {
        self.settings.debug = debug;
        self
    }

    /// Keeps what the pool does for [`ThreadPool::insights`]: per thread the items it
    /// ran, its busy and idle time, and the slowest items. Off by default, since it reads
    /// the clock once per item. Measured with `benches/insights.rs` on a 2-core VM, where
    /// one clock read costs 70–150 ns: `map` of 2 M trivial items (a multiplication
    /// each) took 13× as long with it, about 150 ns more per item and thread; an item of
    /// 10 µs of work pays about 1.5%, one of a millisecond nothing measurable. With it
    /// off, `map` reads no clock and touches no shared counter per item.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|x: u32| x + 1, 0..10)?;
    /// assert_eq!(pool.insights().map(|i| i.items()), Some(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insights(mut self, insights: bool) -> Self {
        self.settings.insights = insights;
        self
    }

    progress_setter! {
        /// Draws a progress bar on stderr for each call that maps several items (`map`,
        /// `try_map`, `starmap`, `imap`, `uimap`, `amap`): items done of the total when
        /// the input's length is known (else a spinner with a count), the rate, the ETA
        /// and the failures so far. Needs the `progress` feature. Nothing is drawn when
        /// stderr is not a terminal; calls at once each get their own line. When the
        /// call ends (also on a failure, or when a lazy iterator is dropped), its bar
        /// gives way to one line that stays: `1,000 items in 2.00s (500/s)`, or
        /// `stopped at 437/600 items ...`, with the failures.
        ///
        /// The pool's threads count their items (`map` counts in batches, so that
        /// trivial items cost no more); `imap` and `uimap` count each result as it is
        /// handed to the consumer. `apply` and `apipe` draw no bar.
        ///
        /// ```
        /// let pool = twat_mp::ThreadPool::builder().nodes(2).progress(true).build()?;
        /// let squares = pool.map(|x: u64| x * x, 0..1_000)?;
        /// assert_eq!(squares[999], 998_001);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
    }

    /// Starts the threads.
    ///
    /// # Errors
    /// [`BuildError::NoNodes`] for `nodes(0)`, [`BuildError::Zero`] for `chunksize(0)`,
    /// [`BuildError::TooLarge`] for more than [`MAX_NODES`](crate::MAX_NODES) nodes,
    /// [`BuildError::Spawn`] when the system refuses a thread.
    ///
    /// ```
    /// use twat_mp::{BuildError, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().nodes(2).build()?;
    /// assert_eq!(pool.nodes(), 2);
    /// assert!(matches!(ThreadPool::builder().nodes(0).build(), Err(BuildError::NoNodes)));
    /// # Ok::<(), BuildError>(())
    /// ```
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let checked = self.settings.check()?;
        let (nodes, debug) = (checked.nodes, checked.debug);
        let threads = Arc::new(Mutex::new(Vec::with_capacity(nodes)));
        let spawned = Arc::clone(&threads);
        // Each thread says when it runs (named, marked), so that `build` returns a pool
        // whose threads all exist as the system shows them.
        let (started, start) = std::sync::mpsc::channel();
        let rayon = rayon::ThreadPoolBuilder::new()
            .num_threads(nodes)
            .thread_name(|index| format!("twat-mp-{index}"))
            .start_handler(move |index| {
                panic_capture::mark_worker_thread();
                event!(debug, worker = index, "worker thread started");
                let _ = started.send(());
            })
            .exit_handler(move |index| event!(debug, worker = index, "worker thread stopped"))
            .spawn_handler(move |thread| {
                let mut builder = std::thread::Builder::new();
                if let Some(name) = thread.name() {
                    builder = builder.name(name.to_owned());
                }
                if let Some(size) = thread.stack_size() {
                    builder = builder.stack_size(size);
                }
                let handle = builder.spawn(|| thread.run())?;
                spawned
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(handle);
                Ok(())
            })
            .build()
            .map_err(|err| BuildError::Spawn(std::io::Error::other(err)))?;
        for _ in 0..nodes {
            // Every thread was spawned (else `build` failed above), so each sends once.
            if start.recv().is_err() {
                break;
            }
        }
        event!(debug, nodes, "thread pool started");
        Ok(ThreadPool {
            rayon: Some(rayon),
            threads,
            nodes,
            chunksize: checked.chunksize,
            debug,
            shutdown: Arc::default(),
            insights: checked
                .insights
                .then(|| Arc::new(Recorder::new(nodes, false))),
            progress: checked.progress,
        })
    }
}

impl FromSettings for ThreadPool {
    fn from_settings(settings: Settings) -> Result<Self, BuildError> {
        ThreadPoolBuilder { settings }.build()
    }
}

impl ThreadPool {
    /// A pool with one thread per usable CPU.
    ///
    /// # Errors
    /// [`BuildError::Spawn`] when the system refuses a thread.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::new()?;
    /// assert!(pool.nodes() >= 1);
    /// assert_eq!(pool.map(|x: u8| x + 1, [1, 2])?, [2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<Self, BuildError> {
        Self::builder().build()
    }

    /// A pool with `nodes` threads.
    ///
    /// # Errors
    /// [`BuildError::NoNodes`] for `0`; [`BuildError::TooLarge`] for more than
    /// [`MAX_NODES`](crate::MAX_NODES); [`BuildError::Spawn`] when the system refuses a
    /// thread.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(4)?;
    /// assert_eq!(pool.nodes(), 4);
    /// assert!(twat_mp::ThreadPool::with_nodes(0).is_err());
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn with_nodes(nodes: usize) -> Result<Self, BuildError> {
        Self::builder().nodes(nodes).build()
    }

    /// Settings beyond the number of threads.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).chunksize(16).build()?;
    /// assert_eq!(pool.nodes(), 2);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// The number of worker threads.
    ///
    /// ```
    /// assert_eq!(twat_mp::ThreadPool::with_nodes(3)?.nodes(), 3);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// What the pool did since it was built, or since [`reset_insights`](Self::reset_insights):
    /// per thread the items it ran (a `map`'s, a lazy map's, `apply`'s…), its busy time
    /// (running items) and idle time, the slowest items (numbered by call, see
    /// [`SlowItem::call`](crate::SlowItem::call)), and totals. `None` unless the pool was
    /// built with [`insights(true)`](ThreadPoolBuilder::insights).
    ///
    /// Each item is timed on the thread that runs it; in `map`, an item's time runs from
    /// the end of the item before it on that thread, so it includes rayon's small cost
    /// of handing it over. Items of a call still running count as they end.
    ///
    /// ```
    /// use twat_mp::ThreadPool;
    ///
    /// let pool = ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 10, 5_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// assert_eq!(insights.items(), 3);
    /// assert_eq!(insights.slowest()[0].index(), 2);
    /// println!("{insights}"); // a small table: one row per thread, then the slowest items
    ///
    /// assert!(ThreadPool::with_nodes(2)?.insights().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insights(&self) -> Option<Insights> {
        self.insights.as_ref().map(|recorder| recorder.snapshot())
    }

    /// Starts the [`insights`](Self::insights) afresh: counts, times and the slowest items
    /// go back to zero and the wall clock starts again; calls keep their numbers. Does
    /// nothing for a pool built without [`insights(true)`](ThreadPoolBuilder::insights).
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().insights(true).build()?;
    /// pool.map(|x: u8| x, [1, 2, 3])?;
    /// pool.reset_insights();
    /// assert_eq!(pool.insights().map(|i| i.items()), Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset_insights(&self) {
        if let Some(recorder) = &self.insights {
            recorder.reset();
        }
    }

    /// The pool's recorder and a new call's number, with insights on.
    fn insights_call(&self) -> Option<(Arc<Recorder>, u64)> {
        self.insights
            .as_ref()
            .map(|recorder| (Arc::clone(recorder), recorder.begin_call()))
    }

    /// What an eager map (`map`, `amap` and their `init` forms) takes from the pool when
    /// it starts, in the caller: the bar's rate counts from there. `background` maps (on a
    /// pool thread, after the call returned) stop when the pool shuts down.
    /// `cancel`: for a map run after its call returned, what stops its items not started.
    fn eager_call(&self, len: usize, cancel: Option<Arc<CancelFlag>>) -> EagerCall {
        EagerCall {
            chunksize: self.chunksize,
            shutdown: cancel,
            insights: self.insights_call(),
            progress: Progress::start(self.progress, (len, Some(len))),
        }
    }

    fn rayon(&self) -> &rayon::ThreadPool {
        self.rayon
            .as_ref()
            .expect("the rayon pool lives as long as the ThreadPool")
    }

    /// Applies `f` to every item in parallel and returns the results in input order.
    ///
    /// `f` may borrow from the caller: `map` returns only when every item is done. If
    /// items panic, the one with the lowest index is reported, the same on every run:
    /// every item before it runs; after a failure, a thread skips the rest of its current
    /// share of items, while the other threads finish theirs.
    ///
    /// `map` takes any iterable, and so first gathers its items into a `Vec` of its own;
    /// a `Vec` moved in is kept as it is (std's `collect` reuses it: no copy, no pass).
    /// Over a slice or `&Vec`, [`par_map`](Self::par_map) splits it in place instead:
    /// with trivial items the gathering costs several times the work itself.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let words = ["apple", "fig", "banana"];
    /// let suffix = "!"; // borrowed by every item
    /// let loud = pool.map(|w: &str| format!("{w}{suffix}"), words)?;
    /// assert_eq!(loud, ["apple!", "fig!", "banana!"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<T, R, F, I>(&self, f: F, items: I) -> Result<Vec<R>, WorkerError>
    where
        F: Fn(T) -> R + Sync,
        I: IntoIterator<Item = T>,
        T: Send,
        R: Send,
    {
        self.run_map(|x| Ok::<R, Infallible>(f(x)), items, None)
            .map_err(ItemFailure::into_infallible_worker_error)
    }

    /// Like [`map`](Self::map) for a function that returns `Result`: the first `Err` (by
    /// index) comes back as a [`WorkerError`] of kind [`ErrorKind::Failed`] whose
    /// [`source`](std::error::Error::source) is the function's error.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use twat_mp::{ErrorKind, ThreadPool};
    ///
    /// let pool = ThreadPool::with_nodes(2)?;
    /// let parsed = pool.try_map(|s: &str| s.parse::<u8>(), ["1", "x", "3"]);
    /// let err = parsed.unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert!(matches!(err.kind(), ErrorKind::Failed(_)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_map<T, R, E, F, I>(&self, f: F, items: I) -> Result<Vec<R>, WorkerError>
    where
        F: Fn(T) -> Result<R, E> + Sync,
        I: IntoIterator<Item = T>,
        T: Send,
        R: Send,
        E: Into<BoxError> + Send + 'static,
    {
        self.run_map(f, items, None)
            .map_err(ItemFailure::into_worker_error)
    }

    /// [`map`](Self::map) over an input that rayon splits where it lies: a slice or
    /// `&Vec` (items `&T`), a `Vec<T>`, a range of `usize` or `u32`, `vec.par_chunks(k)`,
    /// a `zip` of these — any [`IntoParallelIterator`] whose iterator is an
    /// [`IndexedParallelIterator`] (rayon's traits, re-exported as [`crate::rayon`]).
    ///
    /// `map` takes any iterable, so it first gathers the items into a `Vec` of its own,
    /// on the calling thread; over 2 M borrowed `u64` that gathering took 4 times as long
    /// as rayon's `par_iter` of the whole map. `par_map` gathers nothing: the input is
    /// split over the pool's threads in place, and the results are written in input
    /// order. Everything else is `map`'s: `f` may borrow from the caller, the lowest
    /// failing item is reported (every item before it runs), debug mode, insights,
    /// progress bars, [`chunksize`](ThreadPoolBuilder::chunksize) as the fewest items a
    /// thread takes at a time, and nesting inside the pool's own items.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use twat_mp::ThreadPool;
    /// use twat_mp::rayon::prelude::*; // `par_chunks`, `par_iter`, `zip`
    ///
    /// let pool = ThreadPool::with_nodes(2)?;
    /// let data: Vec<u64> = (1..=1_000).collect();
    ///
    /// // Over `&Vec`: each item is a `&u64` of `data`, nothing is copied first.
    /// let doubled = pool.par_map(|x: &u64| x * 2, &data)?;
    /// assert_eq!(doubled[999], 2_000);
    ///
    /// // Chunks of a slice, an index range, two inputs zipped.
    /// let sums = pool.par_map(|chunk: &[u64]| chunk.iter().sum::<u64>(), data.par_chunks(250))?;
    /// assert_eq!(sums, [31_375, 93_875, 156_375, 218_875]);
    /// let odd = pool.par_map(|i: usize| data[i] % 2 == 1, 0..data.len())?;
    /// assert!(odd[0] && !odd[1]);
    /// let names = ["fig", "apple"];
    /// let labels = pool.par_map(|(name, x): (&&str, &u64)| format!("{name}={x}"), names.par_iter().zip(&data))?;
    /// assert_eq!(labels, ["fig=1", "apple=2"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn par_map<T, R, F, I>(&self, f: F, items: I) -> Result<Vec<R>, WorkerError>
    where
        F: Fn(T) -> R + Sync,
        I: IntoParallelIterator<Item = T>,
        I::Iter: IndexedParallelIterator,
        T: Send,
        R: Send,
    {
        self.run_par_map(|x| Ok::<R, Infallible>(f(x)), items.into_par_iter(), None)
            .map_err(ItemFailure::into_infallible_worker_error)
    }

    /// [`try_map`](Self::try_map) over an input that rayon splits where it lies, as
    /// [`par_map`](Self::par_map) takes it: the first `Err` (by index) comes back as a
    /// [`WorkerError`] of kind [`ErrorKind::Failed`] whose
    /// [`source`](std::error::Error::source) is the function's error.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use twat_mp::{ErrorKind, ThreadPool};
    ///
    /// let pool = ThreadPool::with_nodes(2)?;
    /// let lines = vec!["1".to_owned(), "x".to_owned(), "3".to_owned(), "y".to_owned()];
    /// // Borrowed `String`s, parsed where they lie; item 1 is the lowest that fails.
    /// let err = pool.try_par_map(|s: &String| s.parse::<u8>(), &lines).unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert!(matches!(err.kind(), ErrorKind::Failed(_)));
    /// assert_eq!(pool.try_par_map(|s: &String| s.parse::<u8>(), &lines[..1])?, [1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_par_map<T, R, E, F, I>(&self, f: F, items: I) -> Result<Vec<R>, WorkerError>
    where
        F: Fn(T) -> Result<R, E> + Sync,
        I: IntoParallelIterator<Item = T>,
        I::Iter: IndexedParallelIterator,
        T: Send,
        R: Send,
        E: Into<BoxError> + Send + 'static,
    {
        self.run_par_map(f, items.into_par_iter(), None)
            .map_err(ItemFailure::into_worker_error)
    }

    /// Applies a function of several arguments to every tuple of arguments, in parallel,
    /// as Python's `starmap`. See [`TupleFn`] for the closures it takes.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let powers = pool.starmap(|base: u64, exp: u32| base.pow(exp), [(2, 3), (10, 2)])?;
    /// assert_eq!(powers, [8, 100]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn starmap<Args, F, I>(&self, f: F, tuples: I) -> Result<Vec<F::Output>, WorkerError>
    where
        F: TupleFn<Args> + Sync,
        F::Output: Send,
        I: IntoIterator<Item = Args>,
        Args: Send,
    {
        self.map(|args| f.call_tuple(args), tuples)
    }

    /// Applies `f` to every item lazily, yielding results in input order as they are
    /// ready.
    ///
    /// The input is pulled on a thread of its own, and only while few enough items run
    /// ahead of the consumer (two jobs per thread: a job is one item at first and grows
    /// to at most 1,024 while the items are fast, see
    /// [`chunksize`](ThreadPoolBuilder::chunksize); an input that gives its items at
    /// once, such as a collection in memory or a range, may be read up to 128 items or
    /// two windows further, which costs nothing and spares waking that thread for every
    /// item), so an endless input runs in bounded memory, and a live input (a channel, a
    /// socket, the lines of a pipe) never holds back a result: each one is handed over
    /// as soon as it is its turn, even while the input waits for more (with a
    /// [`chunksize`](ThreadPoolBuilder::chunksize), a chunk short of full goes to an idle
    /// thread once the input has given nothing more for a millisecond). That is why the
    /// input must be [`LazyInput`] (`Send + 'static`): collect a borrowed input first,
    /// or use [`map`](Self::map). A failed item yields `Err` and the iteration goes on.
    /// A panic of the input itself resumes in the caller once every item before it has
    /// been handed over.
    ///
    /// Dropping the iterator cancels the items that have not started and stops the
    /// input's thread; one blocked in a live input's `next` (a channel whose sender stays
    /// open) ends when that call returns.
    ///
    /// # Panics
    /// When the system refuses the input's thread, as [`std::thread::spawn`] does.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// // An endless input: only what is consumed (and a small window ahead) is computed.
    /// let first: Vec<u64> = pool
    ///     .imap(|n: u64| n * n, 1..)
    ///     .take(4)
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(first, [1, 4, 9, 16]);
    ///
    /// // A live input: each result comes while the channel waits for the next item.
    /// let (send, input) = std::sync::mpsc::channel();
    /// let mut squares = pool.imap(|n: u64| n * n, input);
    /// for n in [3, 5] {
    ///     send.send(n)?;
    ///     assert_eq!(squares.next().transpose()?, Some(n * n));
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap<'pool, T, R, F, I>(&'pool self, f: F, items: I) -> Imap<'pool, R>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        T: Send + 'static,
        R: Send + 'static,
    {
        Imap::new(self.lazy_map(move |x| Ok::<R, Infallible>(f(x)), items, None, true))
    }

    /// Like [`imap`](Self::imap), but yields each result as soon as it is ready, in
    /// completion order. Each result carries no index; map to `(index, value)` pairs when
    /// the origin matters.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let mut sums: Vec<u64> = pool
    ///     .uimap(|n: u64| (0..n).sum(), vec![10, 20, 30])
    ///     .collect::<Result<_, _>>()?;
    /// sums.sort();
    /// assert_eq!(sums, [45, 190, 435]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn uimap<'pool, T, R, F, I>(&'pool self, f: F, items: I) -> Uimap<'pool, R>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        T: Send + 'static,
        R: Send + 'static,
    {
        Uimap::new(self.lazy_map(move |x| Ok::<R, Infallible>(f(x)), items, None, false))
    }

    /// Like [`map`](Self::map), with a state per worker thread: `init()` makes it, at most
    /// once per thread per call, and `f(&mut state, item)` uses it — a connection, a
    /// parser, a scratch buffer that is costly to make and cannot be shared.
    ///
    /// **What runs where.** `init` runs on the pool thread that needs a state, just before
    /// that thread's first item of this call; a thread that gets no item never runs it, so
    /// it runs at most [`nodes`](Self::nodes) times (not once per item, nor once per rayon
    /// split as rayon's own `map_init` does). The state stays with its thread for the
    /// whole call (`S` must be `Send`, as the states are dropped on the calling thread
    /// when `map_init` returns) and is never shared: `f` has it as `&mut S`. The next call
    /// makes new states.
    ///
    /// **Nesting.** When `f` waits on other work of the pool (a nested `map`), rayon may
    /// run another item of this same call on that thread meanwhile: that item gets a
    /// second state from `init` rather than an alias of the one in use, so `init` may then
    /// run more than once on that thread.
    ///
    /// **Failures.** A panic in `f` fails its item, as in `map`; the state is kept for
    /// the thread's next item. A panic in `init` fails the item that needed the state with
    /// [`ErrorKind::InitPanicked`]; `init` does not run again on that thread in this call,
    /// whose later items there fail the same way.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use twat_mp::ThreadPool;
    ///
    /// let pool = ThreadPool::with_nodes(2)?;
    /// let made = AtomicUsize::new(0);
    /// // One buffer per thread, reused for every item that thread runs.
    /// let lengths = pool.map_init(
    ///     || {
    ///         made.fetch_add(1, Ordering::Relaxed);
    ///         String::with_capacity(64)
    ///     },
    ///     |buffer: &mut String, n: u32| {
    ///         buffer.clear();
    ///         buffer.push_str(&n.to_string());
    ///         buffer.len()
    ///     },
    ///     [7, 42, 1000, 5],
    /// )?;
    /// assert_eq!(lengths, [1, 2, 4, 1]);
    /// assert!(made.load(Ordering::Relaxed) <= 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_init<T, S, R, N, F, I>(&self, init: N, f: F, items: I) -> Result<Vec<R>, WorkerError>
    where
        N: Fn() -> S + Sync,
        F: Fn(&mut S, T) -> R + Sync,
        I: IntoIterator<Item = T>,
        S: Send,
        T: Send,
        R: Send,
    {
        self.run_map_init(
            init,
            |state, x| Ok::<R, Infallible>(f(state, x)),
            items,
            None,
        )
        .map_err(ItemFailure::into_infallible_worker_error)
    }

    /// [`imap`](Self::imap) with a state per worker thread, as [`map_init`](Self::map_init)
    /// has: `init` runs on a pool thread before its first item of this call, at most once
    /// per thread (more only when nested work of the call runs on a thread whose state is
    /// in use), and the states are dropped when the iterator is dropped and its running
    /// items are done. Results in input order, lazily, over an input as `imap` takes it.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// // An endless input, and a running total per thread.
    /// let mut totals = pool.imap_init(|| 0u64, |sum: &mut u64, n: u64| { *sum += n; n }, 1..);
    /// let first: Vec<u64> = totals.by_ref().take(3).collect::<Result<_, _>>()?;
    /// assert_eq!(first, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap_init<'pool, T, S, R, N, F, I>(
        &'pool self,
        init: N,
        f: F,
        items: I,
    ) -> Imap<'pool, R>
    where
        N: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        S: Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        let f = move |state: &mut S, x| Ok::<R, Infallible>(f(state, x));
        Imap::new(self.lazy_map_init(init, f, items, None, true))
    }

    /// [`uimap`](Self::uimap) with a state per worker thread: results in completion order,
    /// with `init` and the states as in [`imap_init`](Self::imap_init).
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let mut words: Vec<String> = pool
    ///     .uimap_init(String::new, |buf: &mut String, w: &'static str| {
    ///         buf.clear();
    ///         buf.push_str(w);
    ///         buf.to_uppercase()
    ///     }, ["b", "a"])
    ///     .collect::<Result<_, _>>()?;
    /// words.sort();
    /// assert_eq!(words, ["A", "B"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn uimap_init<'pool, T, S, R, N, F, I>(
        &'pool self,
        init: N,
        f: F,
        items: I,
    ) -> Uimap<'pool, R>
    where
        N: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        S: Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        let f = move |state: &mut S, x| Ok::<R, Infallible>(f(state, x));
        Uimap::new(self.lazy_map_init(init, f, items, None, false))
    }

    /// Like [`map`](Self::map), with data every item reads: `f(&shared, item)`. `shared`
    /// is borrowed for the call, not copied: every thread reads the caller's one value
    /// (hence `S: Sync`).
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let prices: HashMap<&str, u32> = [("apple", 3), ("fig", 5)].into();
    /// let costs = pool.map_with(&prices, |prices, fruit: &str| prices[fruit] * 2, ["fig", "apple"])?;
    /// assert_eq!(costs, [10, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map_with<T, S, R, F, I>(&self, shared: &S, f: F, items: I) -> Result<Vec<R>, WorkerError>
    where
        S: Sync + ?Sized,
        F: Fn(&S, T) -> R + Sync,
        I: IntoIterator<Item = T>,
        T: Send,
        R: Send,
    {
        self.map(|x| f(shared, x), items)
    }

    /// Starts [`map`](Self::map) in the background and returns at once; collect the
    /// results from the [`AsyncResult`] (`get`, `ready`, `wait`, or `.await`).
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let pending = pool.amap(|x: u32| x + 1, vec![1, 2, 3]);
    /// assert_eq!(pending.get()?, [2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn amap<T, R, F, I>(&self, f: F, items: I) -> AsyncResult<Result<Vec<R>, WorkerError>>
    where
        F: Fn(T) -> R + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        R: Send + 'static,
    {
        let (completer, pending) = async_result(cancelled);
        let cancel = self.background_cancel();
        let job = self.background_map(
            move |x| Ok::<R, Infallible>(f(x)),
            items,
            None,
            Arc::clone(&cancel),
        );
        self.spawn(move || {
            completer.finish_outcome(
                job().map_err(ItemFailure::into_infallible_worker_error),
                std::convert::identity,
            );
        });
        pending.cancel_on_drop(move || cancel.cancel())
    }

    /// Applies `f` to one item on a worker thread and waits for the result.
    ///
    /// # Errors
    /// A [`WorkerError`] (index 0) when `f` panics.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(1)?;
    /// assert_eq!(pool.apply(|s: &str| s.len(), "four")?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply<T, R, F>(&self, f: F, item: T) -> Result<R, WorkerError>
    where
        F: FnOnce(T) -> R + Send,
        T: Send,
        R: Send,
    {
        let runner: ItemRunner<T, Infallible> = ItemRunner::new(self.debug, None);
        let insights = self.insights_call();
        self.rayon()
            .install(|| {
                timed(insights.as_ref(), 0, || {
                    runner.run(0, rayon::current_thread_index(), item, |x| Ok(f(x)))
                })
            })
            .map_err(ItemFailure::into_infallible_worker_error)
    }

    /// Starts [`apply`](Self::apply) in the background and returns its handle at once.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(1)?;
    /// let pending = pool.apipe(|n: u64| (1..=n).sum::<u64>(), 100);
    /// assert_eq!(pending.get()?, 5050);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apipe<T, R, F>(&self, f: F, item: T) -> AsyncResult<Result<R, WorkerError>>
    where
        F: FnOnce(T) -> R + Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        let (completer, pending) = async_result(cancelled);
        let debug = self.debug;
        let cancel = self.background_cancel();
        let shutdown = Arc::clone(&cancel);
        let insights = self.insights_call();
        self.spawn(move || {
            let runner: ItemRunner<T, Infallible> = ItemRunner::new(debug, None);
            let result = if shutdown.is_cancelled() {
                Err(WorkerError::new(0, ErrorKind::Cancelled))
            } else {
                timed(insights.as_ref(), 0, || {
                    runner.run(0, rayon::current_thread_index(), item, |x| Ok(f(x)))
                })
                .map_err(ItemFailure::into_infallible_worker_error)
            };
            completer.finish_outcome(result, std::convert::identity);
        });
        pending.cancel_on_drop(move || cancel.cancel())
    }

    /// What stops the items not started of one background call (`amap`, `apipe`): set
    /// when its [`AsyncResult`] is dropped unreceived, and when the pool is dropped
    /// during a panic.
    pub(crate) fn background_cancel(&self) -> Arc<CancelFlag> {
        Arc::new(CancelFlag::under(&self.shutdown))
    }

    /// Runs `job` on one of the pool's threads; `Drop` waits for it.
    pub(crate) fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.rayon().spawn(job);
    }

    /// The engine of `map` and of the attributes: runs `f` on every item and keeps the
    /// lowest failure, with the function's own error still typed.
    pub(crate) fn run_map<T, R, E, F, I>(
        &self,
        f: F,
        items: I,
        render: Option<Render<T>>,
    ) -> Result<Vec<R>, ItemFailure<E>>
    where
        F: Fn(T) -> Result<R, E> + Sync,
        I: IntoIterator<Item = T>,
        T: Send,
        R: Send,
        E: Send,
    {
        let items: Vec<T> = items.into_iter().collect();
        self.run_par_map(f, items.into_par_iter(), render)
    }

    /// The engine of `par_map` and of `run_map`: `f` over a parallel iterator that rayon
    /// splits where it lies.
    pub(crate) fn run_par_map<T, R, E, F, P>(
        &self,
        f: F,
        items: P,
        render: Option<Render<T>>,
    ) -> Result<Vec<R>, ItemFailure<E>>
    where
        F: Fn(T) -> Result<R, E> + Sync,
        P: IndexedParallelIterator<Item = T>,
        T: Send,
        R: Send,
        E: Send,
    {
        let runner = ItemRunner::new(self.debug, render);
        let call = self.eager_call(items.len(), None);
        self.rayon()
            .install(|| par_map(items, || (), &|(): &mut (), x| f(x), &runner, &call))
    }

    /// The job of `amap`: a closure that runs the whole map on the pool thread that calls
    /// it. The items are gathered here, in the caller, who may hold a non-`Send` iterator.
    /// Its items not started are skipped (cancelled) once `cancel` is set.
    pub(crate) fn background_map<T, R, E, F, I>(
        &self,
        f: F,
        items: I,
        render: Option<Render<T>>,
        cancel: Arc<CancelFlag>,
    ) -> impl FnOnce() -> Result<Vec<R>, ItemFailure<E>> + Send + 'static
    where
        F: Fn(T) -> Result<R, E> + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let items: Vec<T> = items.into_iter().collect();
        let debug = self.debug;
        let call = self.eager_call(items.len(), Some(cancel));
        move || {
            let runner = ItemRunner::new(debug, render);
            par_map(
                items.into_par_iter(),
                || (),
                &|(): &mut (), x| f(x),
                &runner,
                &call,
            )
        }
    }

    /// The engine of `imap`, `uimap` and the lazy attribute.
    pub(crate) fn lazy_map<'pool, T, R, E, F, I>(
        &'pool self,
        f: F,
        items: I,
        render: Option<Render<T>>,
        ordered: bool,
    ) -> LazyMap<'pool, R, E>
    where
        F: Fn(T) -> Result<R, E> + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        T: Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let run = move |runner: &ItemRunner<T, E>, index, item| {
            runner.run(index, rayon::current_thread_index(), item, &f)
        };
        self.lazy_run(run, items, render, ordered)
    }

    /// The engine of `imap_init`, `uimap_init` and the lazy attribute with `init`: each
    /// item takes its thread's state for as long as it runs.
    pub(crate) fn lazy_map_init<'pool, T, S, R, E, N, F, I>(
        &'pool self,
        init: N,
        f: F,
        items: I,
        render: Option<Render<T>>,
        ordered: bool,
    ) -> LazyMap<'pool, R, E>
    where
        N: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> Result<R, E> + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        S: Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let states = WorkerStates::new(init, self.nodes);
        let run = move |runner: &ItemRunner<T, E>, index, item| {
            let worker = rayon::current_thread_index();
            let mut state = states.take(worker);
            runner.run(index, worker, item, |x| f(state.get(), x))
        };
        self.lazy_run(run, items, render, ordered)
    }

    /// A lazy map whose items each go through `run`.
    fn lazy_run<'pool, T, R, E, G, I>(
        &'pool self,
        run: G,
        items: I,
        render: Option<Render<T>>,
        ordered: bool,
    ) -> LazyMap<'pool, R, E>
    where
        G: Fn(&ItemRunner<T, E>, usize, T) -> Outcome<R, E> + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        T: Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let runner = ItemRunner::new(self.debug, render);
        let insights = self.insights_call();
        let items = items.into_iter();
        let progress = Progress::start(self.progress, items.size_hint());
        LazyMap::new(
            self.rayon(),
            items,
            progress,
            move |index, item| timed(insights.as_ref(), index, || run(&runner, index, item)),
            self.chunksize,
            ordered,
        )
    }

    /// The engine of `map_init` and of `#[pmap(init = ...)]`: as
    /// [`run_map`](Self::run_map), each rayon leaf taking its thread's state once.
    pub(crate) fn run_map_init<T, S, R, E, N, F, I>(
        &self,
        init: N,
        f: F,
        items: I,
        render: Option<Render<T>>,
    ) -> Result<Vec<R>, ItemFailure<E>>
    where
        N: Fn() -> S + Sync,
        F: Fn(&mut S, T) -> Result<R, E> + Sync,
        I: IntoIterator<Item = T>,
        S: Send,
        T: Send,
        R: Send,
        E: Send,
    {
        let items: Vec<T> = items.into_iter().collect();
        let runner = ItemRunner::new(self.debug, render);
        let call = self.eager_call(items.len(), None);
        let states = WorkerStates::new(init, self.nodes);
        let enter = || states.take(rayon::current_thread_index());
        let f = |state: &mut StateGuard<'_, S, N>, x| f(state.get(), x);
        self.rayon()
            .install(|| par_map(items.into_par_iter(), enter, &f, &runner, &call))
    }

    /// The job of `#[amap(init = ...)]`, as [`background_map`](Self::background_map).
    pub(crate) fn background_map_init<T, S, R, E, N, F, I>(
        &self,
        init: N,
        f: F,
        items: I,
        render: Option<Render<T>>,
        cancel: Arc<CancelFlag>,
    ) -> impl FnOnce() -> Result<Vec<R>, ItemFailure<E>> + Send + 'static
    where
        N: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> Result<R, E> + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
        S: Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let items: Vec<T> = items.into_iter().collect();
        let (debug, nodes) = (self.debug, self.nodes);
        let call = self.eager_call(items.len(), Some(cancel));
        move || {
            let runner = ItemRunner::new(debug, render);
            let states = WorkerStates::new(init, nodes);
            let enter = || states.take(rayon::current_thread_index());
            let f = |state: &mut StateGuard<'_, S, N>, x| f(state.get(), x);
            par_map(items.into_par_iter(), enter, &f, &runner, &call)
        }
    }
}

/// What an eager map carries from its start to its pool thread (see
/// [`ThreadPool::eager_call`]).
struct EagerCall {
    chunksize: Option<usize>,
    /// The pool's shutdown flag, for a map that runs after its call returned.
    shutdown: Option<Arc<CancelFlag>>,
    /// The pool's recorder and this call's number on it, with insights.
    insights: Option<(Arc<Recorder>, u64)>,
    progress: Option<Progress>,
}

/// Runs one item of call `insights.1` at `index` on a pool thread, timed into the
/// recorder when insights are on.
#[inline]
fn timed<O>(insights: Option<&(Arc<Recorder>, u64)>, index: usize, run: impl FnOnce() -> O) -> O {
    let Some((recorder, call)) = insights else {
        return run();
    };
    let started = std::time::Instant::now();
    let outcome = run();
    let worker = rayon::current_thread_index().unwrap_or(0);
    recorder.item(worker, *call, index, started.elapsed());
    outcome
}

/// Runs `f` over `items` on the current rayon pool, collecting in input order: rayon
/// splits `items` where they lie (a `Vec` gathered by `map`, or the caller's slice or
/// range given to `par_map`) and writes the results in place. Each
/// rayon leaf (a stretch of items one thread runs in a row) first calls `enter` and hands
/// what it gives to `f` with each of its items: `()` for a plain map, the worker's state
/// (a [`StateGuard`]) for `map_init`, taken once per leaf and not per item. With
/// the call's insights, each item is counted in its leaf's
/// [`Tally`](crate::engine::insights::Tally); with its progress, each leaf is counted when
/// it ends ([`Progress::counted`]).
fn par_map<P, T, R, E, L, F>(
    items: P,
    enter: impl Fn() -> L + Send + Sync,
    f: &F,
    runner: &ItemRunner<T, E>,
    call: &EagerCall,
) -> Result<Vec<R>, ItemFailure<E>>
where
    P: IndexedParallelIterator<Item = T>,
    F: Fn(&mut L, T) -> Result<R, E> + Sync,
    T: Send,
    R: Send,
    E: Send,
{
    let min_len = call.chunksize.unwrap_or(1);
    let shutdown = call.shutdown.as_deref();
    let insights = call
        .insights
        .as_ref()
        .map(|(recorder, number)| (&**recorder, *number));
    let progress = call.progress.as_ref();
    // The hot path. Even a relaxed atomic load per item, to skip work after a failure,
    // cost 20-30% against a bare rayon map of 2 M trivial items, so there is none: a
    // failing item aborts only the rest of its own leaf.
    let hot = shutdown.is_none() && !runner.renders() && !runner.is_debug();
    let leaves = Leaves {
        enter: &enter,
        f,
        runner,
        shutdown,
        insights,
        hot,
    };
    let collected = panic::catch_unwind(panic::AssertUnwindSafe(|| {
        let items = items.with_min_len(min_len).enumerate();
        match progress {
            None => leaves.run(items, None),
            // On the hot path a leaf is left by unwinding only when its item failed, and
            // that item is then counted as failed; elsewhere a leaf is also left when its
            // items are skipped, so each failure is counted where it happens.
            Some(progress) if hot => leaves.run(progress.counted(items, true), None),
            Some(progress) => leaves.run(progress.counted(items, false), Some(progress)),
        }
    }));
    match collected {
        Ok(results) => Ok(results),
        Err(payload) => match runner.take_failure() {
            Some(failure) => Err(failure),
            // Not an item's failure: a bug in the pool itself; let it be seen.
            None => panic::resume_unwind(payload),
        },
    }
}

/// What each rayon leaf of [`par_map`] does with its items.
struct Leaves<'a, T, E, N, F> {
    enter: &'a N,
    f: &'a F,
    runner: &'a ItemRunner<T, E>,
    shutdown: Option<&'a CancelFlag>,
    insights: Option<(&'a Recorder, u64)>,
    hot: bool,
}

impl<T, R, E, L, N, F> Leaves<'_, T, E, N, F>
where
    N: Fn() -> L + Send + Sync,
    F: Fn(&mut L, T) -> Result<R, E> + Sync,
    T: Send,
    R: Send,
    E: Send,
{
    /// Runs every item of `items`; off the hot path, `failures` counts each failure
    /// where it happens.
    fn run<P>(&self, items: P, failures: Option<&Progress>) -> Vec<R>
    where
        P: IndexedParallelIterator<Item = (usize, T)>,
    {
        let (enter, f, runner) = (self.enter, self.f, self.runner);
        if self.hot {
            let Some((recorder, call)) = self.insights else {
                return items
                    .map_init(enter, |leaf, (index, item)| {
                        runner.run_or_abort_leaf(index, item, |x| f(leaf, x))
                    })
                    .collect();
            };
            // With insights, one clock read per item besides (the item that fails ends
            // its leaf uncounted).
            let leaf = || {
                let tally = recorder.tally(rayon::current_thread_index().unwrap_or(0), call);
                (enter(), tally)
            };
            return items
                .map_init(leaf, |(leaf, tally), (index, item)| {
                    let value = runner.run_or_abort_leaf(index, item, |x| f(leaf, x));
                    tally.ended(index);
                    value
                })
                .collect();
        }
        // One tally per rayon leaf, on the thread that runs it (`None` without insights).
        let tally = || {
            self.insights.map(|(recorder, call)| {
                recorder.tally(rayon::current_thread_index().unwrap_or(0), call)
            })
        };
        let shutdown = self.shutdown;
        items
            .map_init(
                || (enter(), tally()),
                |(leaf, tally), (index, item)| {
                    if runner.is_past_failure(index) {
                        panic::resume_unwind(Box::new(LeafAborted));
                    }
                    if shutdown.is_some_and(CancelFlag::is_cancelled) {
                        let worker = rayon::current_thread_index();
                        runner.abort_leaf(ItemFailure::Worker(
                            WorkerError::new(index, ErrorKind::Cancelled).with_worker(worker),
                        ));
                    }
                    let worker = rayon::current_thread_index();
                    let outcome = match failures {
                        None => runner.run(index, worker, item, |x| f(leaf, x)),
                        Some(progress) => {
                            runner.run(index, worker, item, progress.watch(|x| f(leaf, x)))
                        }
                    };
                    if let Some(tally) = tally {
                        tally.ended(index);
                    }
                    outcome.unwrap_or_else(|failure| runner.abort_leaf(failure))
                },
            )
            .collect()
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.shutdown.cancel();
        }
        let rayon = self.rayon.take();
        // Joining is impossible from one of the pool's own threads (a pool dropped inside
        // its own job): then the threads end by themselves once their work is done.
        let inside = rayon
            .as_ref()
            .is_some_and(|r| r.current_thread_index().is_some());
        // Dropping rayon's pool lets each thread exit once no job is left.
        drop(rayon);
        if !inside {
            let threads =
                std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
            for thread in threads {
                let _ = thread.join();
            }
        }
        event!(self.debug, nodes = self.nodes, "thread pool stopped");
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("nodes", &self.nodes)
            .field("chunksize", &self.chunksize)
            .field("debug", &self.debug)
            .field("insights", &self.insights.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn zero_nodes_and_zero_chunksize_are_errors() {
        assert!(matches!(
            ThreadPool::with_nodes(0),
            Err(BuildError::NoNodes)
        ));
        assert!(matches!(
            ThreadPool::builder().chunksize(0).build(),
            Err(BuildError::Zero("chunksize"))
        ));
    }

    #[test]
    fn lowest_failing_index_is_reported_every_time() {
        let pool = ThreadPool::with_nodes(2).unwrap();
        for _ in 0..20 {
            let err = pool
                .map(|x: usize| assert!(x % 97 != 13, "bad {x}"), 0..5_000)
                .unwrap_err();
            assert_eq!(err.index(), 13);
            assert!(err.traceback().is_some());
        }
    }

    #[test]
    fn every_item_below_the_failure_runs() {
        let pool = ThreadPool::with_nodes(2).unwrap();
        let ran = AtomicUsize::new(0);
        let err = pool
            .try_map(
                |x: usize| {
                    if x == 900 {
                        return Err("nine hundred");
                    }
                    ran.fetch_add(usize::from(x < 900), Ordering::Relaxed);
                    Ok(x)
                },
                0..1_000,
            )
            .unwrap_err();
        assert_eq!(err.index(), 900);
        assert_eq!(ran.load(Ordering::Relaxed), 900);
    }

    #[test]
    fn dropping_inside_a_job_does_not_deadlock() {
        let pool = Arc::new(ThreadPool::with_nodes(1).unwrap());
        let inner = Arc::clone(&pool);
        let pending = pool.apipe(move |_: ()| drop(inner), ());
        drop(pool);
        pending.get().unwrap();
    }
}
