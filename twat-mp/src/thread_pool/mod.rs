//! [`ThreadPool`]: items on N OS threads with work stealing (rayon).
//!
//! | module | what |
//! |---|---|
//! | this one | the pool, its builder and its methods; `map` runs on rayon's own splitting |
//! | `lazy` | `imap` and `uimap`: the engine's window over jobs spawned on the pool, fed by the engine's `Feed` |
//! | `attribute` | what `#[pmap]`, `#[imap]` and `#[amap]` call |

pub(crate) mod attribute;
mod lazy;

use std::convert::Infallible;
use std::fmt;
use std::panic;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rayon::prelude::*;

use crate::async_result::{AsyncResult, async_result};
use crate::debug::event;
use crate::engine::feed::LazyInput;
use crate::engine::item::{CancelFlag, ItemFailure, ItemRunner, LeafAborted, cancelled};
use crate::engine::progress::{Progress, progress_setter};
use crate::engine::registry::FromSettings;
use crate::engine::render::Render;
use crate::engine::settings::Settings;
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
/// outstanding work (from [`amap`](Self::amap), [`apipe`](Self::apipe)) and joins every
/// thread it started — the Rust form of Python's `with ThreadPool() as pool:`. Dropped
/// while the caller is panicking, it cancels the items that have not started yet instead.
///
/// **Nesting.** The pool may be used inside its own items: a nested `map`, `imap` or
/// `apply` shares the threads as rayon's nested calls do, and a pool thread that blocks on
/// [`AsyncResult::get`](crate::AsyncResult::get) or [`wait`](crate::AsyncResult::wait)
/// runs the pool's pending jobs meanwhile, so `pool.amap(..).get()` inside `pool.map(..)`
/// finishes even on one node.
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
    pub fn nodes(mut self, nodes: usize) -> Self {
        self.settings.nodes = Some(nodes);
        self
    }

    /// The fewest items a thread takes at a time in `map`, and the number of items per
    /// job in `imap`/`uimap`. By default `map` splits adaptively and the lazy maps send
    /// one item per job: the laziest choice, and the right one for items that do real
    /// work. For trivial items a job costs more than its item; a chunk amortizes it (on 2
    /// cores, `imap` of a multiplication runs at about 2 M items/s with one item per job
    /// and 14 M/s with `chunksize(64)`), at the price of pulling that much more input
    /// ahead.
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.settings.chunksize = Some(chunksize);
        self
    }

    /// Reports this pool's events even when the global debug mode is off
    /// (see [`set_debug_mode`](crate::set_debug_mode)).
    pub fn debug(mut self, debug: bool) -> Self {
        self.settings.debug = debug;
        self
    }

    progress_setter! {
        /// Draws a progress bar on stderr for each call that maps several items (`map`,
        /// `try_map`, `starmap`, `imap`, `uimap`, `amap`): items done of the total when
        /// the input's length is known (else a spinner with a count), the rate, the ETA
        /// and the failures so far. Needs the `progress` feature. Nothing is drawn when
        /// stderr is not a terminal; calls at once each get their own line. When the
        /// call ends (also on a failure, or when a lazy iterator is dropped), its bar
        /// gives way to one line that stays: `1,000 items in 2 seconds (500/s)`, or
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
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// The number of worker threads.
    pub fn nodes(&self) -> usize {
        self.nodes
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

    /// Applies a function of several arguments to every tuple of arguments, in parallel,
    /// as Python's `starmap`. See [`TupleFn`] for the closures it takes.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
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
    /// ahead of the consumer (about two jobs per thread; an input that gives its items at
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
        let job = self.background_map(move |x| Ok::<R, Infallible>(f(x)), items, None);
        self.spawn(move || {
            completer.finish_outcome(
                job().map_err(ItemFailure::into_infallible_worker_error),
                std::convert::identity,
            );
        });
        pending
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
        self.rayon()
            .install(|| runner.run(0, rayon::current_thread_index(), item, |x| Ok(f(x))))
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
        let shutdown = Arc::clone(&self.shutdown);
        self.spawn(move || {
            let runner: ItemRunner<T, Infallible> = ItemRunner::new(debug, None);
            let result = if shutdown.is_cancelled() {
                Err(WorkerError::new(0, ErrorKind::Cancelled))
            } else {
                runner
                    .run(0, rayon::current_thread_index(), item, |x| Ok(f(x)))
                    .map_err(ItemFailure::into_infallible_worker_error)
            };
            completer.finish_outcome(result, std::convert::identity);
        });
        pending
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
        let runner = ItemRunner::new(self.debug, render);
        let chunksize = self.chunksize;
        let progress = Progress::start(self.progress, (items.len(), Some(items.len())));
        self.rayon()
            .install(|| par_map(items, &f, &runner, chunksize, None, progress.as_ref()))
    }

    /// The job of `amap`: a closure that runs the whole map on the pool thread that calls
    /// it. The items are gathered here, in the caller, who may hold a non-`Send` iterator.
    pub(crate) fn background_map<T, R, E, F, I>(
        &self,
        f: F,
        items: I,
        render: Option<Render<T>>,
    ) -> impl FnOnce() -> Result<Vec<R>, ItemFailure<E>> + Send + 'static
    where
        F: Fn(T) -> Result<R, E> + Send + Sync + 'static,
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let items: Vec<T> = items.into_iter().collect();
        let (debug, chunksize) = (self.debug, self.chunksize);
        let shutdown = Arc::clone(&self.shutdown);
        // Started with the call, so that the bar's rate counts from there.
        let progress = Progress::start(self.progress, (items.len(), Some(items.len())));
        move || {
            let runner = ItemRunner::new(debug, render);
            par_map(
                items,
                &f,
                &runner,
                chunksize,
                Some(&shutdown),
                progress.as_ref(),
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
        let runner = Arc::new(ItemRunner::new(self.debug, render));
        let chunk = self.chunksize.unwrap_or(1);
        let items = items.into_iter();
        let progress = Progress::start(self.progress, items.size_hint());
        LazyMap::new(
            self.rayon(),
            items,
            progress,
            move |index, item| runner.run(index, rayon::current_thread_index(), item, &f),
            chunk,
            2 * self.nodes * chunk,
            ordered,
        )
    }
}

/// Runs `f` over `items` on the current rayon pool, collecting in input order.
fn par_map<T, R, E, F>(
    items: Vec<T>,
    f: &F,
    runner: &ItemRunner<T, E>,
    chunksize: Option<usize>,
    shutdown: Option<&CancelFlag>,
    progress: Option<&Progress>,
) -> Result<Vec<R>, ItemFailure<E>>
where
    F: Fn(T) -> Result<R, E> + Sync,
    T: Send,
    R: Send,
    E: Send,
{
    let min_len = chunksize.unwrap_or(1);
    let collected = panic::catch_unwind(panic::AssertUnwindSafe(|| {
        let items = items.into_par_iter().with_min_len(min_len).enumerate();
        if let Some(progress) = progress {
            // Each rayon leaf counts its items when it ends: nothing is done per item.
            if shutdown.is_none() && !runner.is_debug() {
                // The hot path: a leaf is left by unwinding only when its item failed,
                // and that item is then counted as failed. (Counting each item, even in a
                // local variable, made trivial items up to 1.7 times slower.)
                return progress
                    .counted(items, true)
                    .map(|(index, item)| runner.run_or_abort_leaf(index, item, f))
                    .collect::<Vec<R>>();
            }
            // Here a leaf is also left when its items are skipped: each failure is
            // counted where it happens.
            let f = progress.watch(f);
            return progress
                .counted(items, false)
                .map(|(index, item)| run_checked(runner, index, item, &f, shutdown))
                .collect::<Vec<R>>();
        }
        if shutdown.is_none() && !runner.renders() && !runner.is_debug() {
            // The hot path. Even a relaxed atomic load per item, to skip work after a
            // failure, cost 20-30% against a bare rayon map of 2 M trivial items, so there
            // is none: a failing item aborts only the rest of its own leaf.
            return items
                .map(|(index, item)| runner.run_or_abort_leaf(index, item, f))
                .collect::<Vec<R>>();
        }
        items
            .map(|(index, item)| run_checked(runner, index, item, f, shutdown))
            .collect::<Vec<R>>()
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

/// One item of `map` off the hot path: skipped after a lower failure or once the pool
/// is cancelled, reported in debug mode.
fn run_checked<T, R, E, F>(
    runner: &ItemRunner<T, E>,
    index: usize,
    item: T,
    f: &F,
    shutdown: Option<&CancelFlag>,
) -> R
where
    F: Fn(T) -> Result<R, E>,
{
    if runner.is_past_failure(index) {
        panic::resume_unwind(Box::new(LeafAborted));
    }
    if shutdown.is_some_and(CancelFlag::is_cancelled) {
        let worker = rayon::current_thread_index();
        runner.abort_leaf(ItemFailure::Worker(
            WorkerError::new(index, ErrorKind::Cancelled).with_worker(worker),
        ));
    }
    runner
        .run(index, rayon::current_thread_index(), item, f)
        .unwrap_or_else(|failure| runner.abort_leaf(failure))
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
