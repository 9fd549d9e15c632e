//! [`AsyncMultiPool`]: async functions on N workers, each a single-threaded tokio runtime
//! on its own OS thread running many tasks at once.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::dispatch::{AsyncCall, CallCtx, Dispatch, Reply, collect_in_order, make_job};
use super::replies;
use super::scheduler::Scheduler;
use super::stream::{ImapStream, UimapStream};
use super::watchdog::Watchdog;
use crate::debug::event;
use crate::engine::insights::{Insights, Recorder};
use crate::engine::item::ItemFailure;
use crate::engine::progress::progress_setter;
use crate::engine::registry::FromSettings;
use crate::engine::render::Render;
use crate::engine::settings::Settings;
use crate::engine::state::WorkerStates;
use crate::error::{BoxError, BuildError, WorkerError, panic_message};
use crate::panic_capture;
use crate::tuple_fn::TupleFn;

/// Tasks in flight per worker unless [`AsyncMultiPoolBuilder::concurrency`] says
/// otherwise.
///
/// An I/O-bound task spends nearly all of its life waiting, and while it waits it costs
/// only its future's memory, so a worker can keep hundreds in flight: 512 requests of
/// 100 ms each keep one worker at about 5,000 requests per second, where
/// aiomultiprocess's default of 16 caps it at 160. The limit that matters is usually
/// outside the pool (each open socket counts against the process's open-file limit, often
/// 1,024), so lower it when every task holds such a resource.
///
/// ```
/// use twat_mp::{AsyncMultiPool, DEFAULT_CONCURRENCY};
///
/// assert_eq!(DEFAULT_CONCURRENCY, 512);
/// assert_eq!(AsyncMultiPool::with_nodes(1)?.concurrency(), DEFAULT_CONCURRENCY);
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
pub const DEFAULT_CONCURRENCY: usize = 512;

/// The function every worker runs once before its first task.
type Initializer = Arc<dyn Fn() + Send + Sync + 'static>;

/// A pool for async functions (HTTP requests, database queries, file I/O): `nodes`
/// workers, each running up to `concurrency` tasks at once, as Python twat-mp's
/// `AsyncMultiPool` (aiomultiprocess) does with processes.
///
/// Each worker is an OS thread with its own single-threaded tokio runtime. The pool's
/// methods return futures and streams that only send work to the workers and await the
/// answers over channels, so they can be awaited from any executor — a multi-thread or a
/// current-thread tokio runtime, or another one — without blocking it and without
/// "cannot start a runtime from within a runtime" panics. The user's futures run on the
/// workers and need not be `Send`; the functions that make them, the items and the
/// results must be `Send + 'static`.
///
/// A panic, error or timeout in one task costs only that task: it comes back as a
/// [`WorkerError`] naming the item, and the pool stays usable.
///
/// **In the background.** There is no `amap` or `apipe` as on
/// [`ThreadPool`](crate::ThreadPool): [`map`](Self::map), [`apply`](Self::apply) and the
/// others return futures that own what they need (`Send + 'static`), so
/// `tokio::spawn(pool.map(f, items))` starts one and hands back its handle at once.
///
/// **Scheduling.** Items wait in one queue that every worker takes from, and a worker
/// takes an item only when it starts it (up to `concurrency` at once). So a task that
/// blocks its worker's thread (`std::thread::sleep`, blocking I/O, a long computation)
/// holds only the tasks already running on that worker; the queued items go to the
/// others. Keep blocking work out of tasks all the same: the tasks already on a blocked
/// worker cannot move, since a started future stays on its thread, and results that
/// worker produced just before it blocked reach their caller only when it is free again
/// (or with the call's next result from another worker). A worker hands results back in
/// rounds: at once when it has nothing else to run, and within a millisecond while it
/// is busy.
///
/// **Nesting.** A task may await the same pool: its `map`, `imap` or `apply`, or an
/// `#[apmap]` function with the same options (which shares the pool). Work sent from a
/// task of this pool goes ahead of the queued outer items and needs no `concurrency` slot
/// (the awaiting task lends its own), so nested calls finish however many outer items
/// hold the slots. Inner work therefore may run beyond `concurrency` on a worker.
///
/// **Cancellation.** Dropping a returned future or stream cancels its tasks that are still
/// queued or running (a running task's future is dropped at its next await). Dropping the
/// pool cancels everything it still runs or holds, each such item answering
/// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled), then joins its workers; the last
/// handle may be dropped inside one of the pool's own tasks (the worker running it stops
/// once that task returns).
///
/// **State and shared data.** [`map_init`](Self::map_init) (and `imap_init`,
/// `uimap_init`) gives each worker a state of its own: `init` runs on the worker's thread,
/// inside its runtime, before the worker starts its first item of the call, and `f` makes
/// each item's future from it there (the future cannot borrow it: the worker's tasks run
/// concurrently). [`map_with`](Self::map_with) shares one value with every worker behind an
/// `Arc`. The builder's [`initializer`](AsyncMultiPoolBuilder::initializer), by contrast,
/// runs once per worker for the pool's whole life.
///
/// **Timeouts.** See [`AsyncMultiPoolBuilder::timeout`]: per task, from its start, and kept
/// even when the task blocks its thread.
///
/// ```
/// use std::time::Duration;
/// use twat_mp::AsyncMultiPool;
///
/// async fn double_later(x: u64) -> u64 {
///     tokio::time::sleep(Duration::from_millis(1)).await;
///     x * 2
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = AsyncMultiPool::new()?;
/// let doubled = pool.map(double_later, 0..5).await?;
/// assert_eq!(doubled, [0, 2, 4, 6, 8]);
/// # Ok(())
/// # }
/// ```
pub struct AsyncMultiPool {
    shared: Arc<Scheduler>,
    /// Only with a `timeout`.
    watchdog: Option<Arc<Watchdog>>,
    /// The workers, and the watchdog's thread if there is one.
    threads: Vec<JoinHandle<()>>,
    nodes: usize,
    concurrency: usize,
    timeout: Option<Duration>,
    debug: bool,
    /// Only with `.insights(true)`.
    insights: Option<Arc<Recorder>>,
    /// A progress bar per call (feature `progress`).
    progress: bool,
}

/// Settings for an [`AsyncMultiPool`]; made by [`AsyncMultiPool::builder`].
///
/// ```
/// use std::time::Duration;
/// use twat_mp::AsyncMultiPool;
///
/// let pool = AsyncMultiPool::builder()
///     .nodes(2)
///     .concurrency(64)
///     .timeout(Duration::from_secs(30))
///     .build()?;
/// assert_eq!((pool.nodes(), pool.concurrency()), (2, 64));
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
#[derive(Clone, Default)]
#[must_use = "a builder does nothing until `.build()`"]
pub struct AsyncMultiPoolBuilder {
    settings: Settings,
    initializer: Option<Initializer>,
}

impl AsyncMultiPoolBuilder {
    /// The number of workers; the default is the number of CPUs this process may use
    /// (cgroup quotas and affinity included). At most [`MAX_NODES`](crate::MAX_NODES).
    ///
    /// ```
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).build()?;
    /// assert_eq!(pool.nodes(), 2);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn nodes(mut self, nodes: usize) -> Self {
        self.settings.nodes = Some(nodes);
        self
    }

    /// The most tasks one worker runs at once; further items wait in the pool's queue.
    /// The default, [`DEFAULT_CONCURRENCY`] (512), suits I/O-bound work; at most
    /// [`MAX_CONCURRENCY`](crate::MAX_CONCURRENCY).
    ///
    /// ```
    /// // At most 8 requests in flight per worker, for a server that allows no more.
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).concurrency(8).build()?;
    /// assert_eq!(pool.concurrency(), 8);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.settings.concurrency = Some(concurrency);
        self
    }

    /// The longest one task may run, from when a worker starts it: a task still running
    /// then is dropped and its item fails with [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut).
    /// No limit by default.
    ///
    /// A task that blocks its thread past the deadline (`std::thread::sleep`, blocking
    /// I/O) cannot be dropped, since a thread cannot be interrupted: its item fails with
    /// `TimedOut` at the deadline all the same, answered by a watchdog thread of the pool.
    /// The blocked thread runs on until the blocking call returns, and then drops the
    /// task, whose late result is thrown away. Meanwhile that worker is lost to the pool:
    /// the tasks already running on it wait, each failing with `TimedOut` at its own
    /// deadline, and queued items go to the other workers.
    ///
    /// ```
    /// use std::time::Duration;
    /// use twat_mp::{AsyncMultiPool, ErrorKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder().nodes(2).timeout(Duration::from_millis(50)).build()?;
    /// // Blocks its thread for 300 ms: it fails at 50 ms all the same.
    /// let err = pool
    ///     .apply(|()| async { std::thread::sleep(Duration::from_millis(300)) }, ())
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::TimedOut { .. }));
    /// # Ok(())
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = Some(timeout);
        self
    }

    /// A function each worker runs once, on its own thread and inside its runtime, before
    /// its first task — Python's `initializer`/`initargs` (capture the arguments). Set
    /// per-worker state there, such as a `thread_local!` that every task on that worker
    /// sees, or spawn a background task onto the worker's runtime.
    ///
    /// [`build`](Self::build) returns once every worker has run it; if it panics, `build`
    /// fails with that panic's message.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use twat_mp::AsyncMultiPool;
    ///
    /// thread_local! {
    ///     static GREETING: Cell<&'static str> = const { Cell::new("") };
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder()
    ///     .nodes(2)
    ///     .initializer(|| GREETING.with(|g| g.set("hello")))
    ///     .build()?;
    /// let greetings = pool
    ///     .map(|name: &'static str| async move { format!("{} {name}", GREETING.with(Cell::get)) }, ["ann", "bob"])
    ///     .await?;
    /// assert_eq!(greetings, ["hello ann", "hello bob"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn initializer(mut self, initializer: impl Fn() + Send + Sync + 'static) -> Self {
        self.initializer = Some(Arc::new(initializer));
        self
    }

    /// Reports this pool's events even when the global debug mode is off
    /// (see [`set_debug_mode`](crate::set_debug_mode)).
    ///
    /// ```
    /// // Reports the workers' starts and stops and each failed task through `tracing`.
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(1).debug(true).build()?;
    /// assert_eq!(pool.nodes(), 1);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn debug(mut self, debug: bool) -> Self {
        self.settings.debug = debug;
        self
    }

    /// Keeps what the pool does for [`AsyncMultiPool::insights`]: per worker the tasks
    /// it ran, its busy and idle time, and the slowest tasks. Off by default: it reads
    /// the clock at each task's start and end and takes its worker's tally twice per
    /// task (uncontended), which is small next to what a task costs anyway: with
    /// `benches/insights.rs` on a 2-core VM, `map` of 100 000 trivial tasks showed no
    /// difference beyond the noise (0.88× in the run recorded). Carries over to
    /// [`processes`](Self::processes).
    ///
    /// ```
    /// let pool = twat_mp::AsyncMultiPool::builder().insights(true).build()?;
    /// assert_eq!(pool.insights().map(|i| i.items()), Some(0));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn insights(mut self, insights: bool) -> Self {
        self.settings.insights = insights;
        self
    }

    progress_setter! {
        /// Draws a progress bar on stderr for each call that maps several items (`map`,
        /// `try_map`, `starmap`, `imap`, `uimap`): items done of the total when the
        /// input's length is known (else a spinner with a count), the rate, the ETA and
        /// the failures so far. Needs the `progress` feature. Nothing is drawn when stderr
        /// is not a terminal; calls at once each get their own line. When the call
        /// ends (also on a failure, or when its future or stream is dropped), its bar gives
        /// way to one line that stays: `1,000 items in 2.00s (500/s)`, or `stopped at
        /// 437/600 items ...`, with the failures.
        ///
        /// The caller's task counts the replies as it takes them (the workers draw
        /// nothing); `imap` and `uimap` count each result as it is handed over. `apply`
        /// draws no bar. Carries over to [`processes`](Self::processes).
        ///
        /// ```
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).progress(true).build()?;
        /// let lengths = pool.map(|s: String| async move { s.len() }, ["a", "bb"].map(String::from)).await?;
        /// assert_eq!(lengths, [1, 2]);
        /// # Ok(())
        /// # }
        /// ```
    }

    /// Process mode: each worker is a process of this same executable running its own
    /// tokio runtime, for isolation from crashes, aborts, leaks and blocking code, with
    /// [`maxtasksperchild`](super::AsyncProcessPoolBuilder::maxtasksperchild) to recycle
    /// workers. The settings made so far carry over, except `initializer`: a closure
    /// cannot cross to another process, so building then fails; set a function that
    /// captures nothing after `processes()` instead
    /// ([`AsyncProcessPoolBuilder::initializer`](super::AsyncProcessPoolBuilder::initializer)).
    /// See [`AsyncProcessPool`](super::AsyncProcessPool).
    ///
    /// ```
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// assert_eq!(pool.nodes(), 2);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    #[cfg(target_os = "linux")]
    #[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
    pub fn processes(self) -> super::AsyncProcessPoolBuilder {
        super::AsyncProcessPoolBuilder {
            settings: self.settings,
            has_initializer: self.initializer.is_some(),
            initializer: None,
        }
    }

    /// Starts the workers and waits until each is ready (its initializer run).
    ///
    /// # Errors
    /// [`BuildError::NoNodes`] for `nodes(0)`; [`BuildError::Zero`] for `concurrency(0)`
    /// or a zero `timeout`; [`BuildError::TooLarge`] for more than
    /// [`MAX_NODES`](crate::MAX_NODES) nodes or [`MAX_CONCURRENCY`](crate::MAX_CONCURRENCY)
    /// tasks per worker; [`BuildError::Spawn`] when the system refuses a thread or a
    /// runtime; [`BuildError::NotReady`] when the initializer panics.
    ///
    /// ```
    /// use twat_mp::{AsyncMultiPool, BuildError};
    ///
    /// let err = AsyncMultiPool::builder().concurrency(0).build().unwrap_err();
    /// assert!(matches!(err, BuildError::Zero("concurrency")));
    /// let err = AsyncMultiPool::builder().initializer(|| panic!("no config file")).build().unwrap_err();
    /// assert_eq!(err.to_string(), "a worker failed to get ready: the initializer of worker 0 panicked: no config file");
    /// ```
    pub fn build(self) -> Result<AsyncMultiPool, BuildError> {
        let checked = self.settings.check()?;
        let (nodes, debug) = (checked.nodes, checked.debug);
        let concurrency = checked.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        let shared = Arc::new(Scheduler::new(nodes));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut pool = AsyncMultiPool {
            shared,
            watchdog: None,
            threads: Vec::with_capacity(nodes + 1),
            nodes,
            concurrency,
            timeout: checked.timeout,
            debug,
            insights: checked
                .insights
                .then(|| Arc::new(Recorder::new(nodes, false))),
            progress: checked.progress,
        };
        if let Some(after) = checked.timeout {
            let (watchdog, thread) = Watchdog::start(after)?;
            pool.watchdog = Some(watchdog);
            pool.threads.push(thread);
        }
        for index in 0..nodes {
            let worker = WorkerThread {
                index,
                shared: Arc::clone(&pool.shared),
                concurrency,
                initializer: self.initializer.clone(),
                debug,
                ready: ready_tx.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("twat-mp-aio-{index}"))
                .spawn(move || worker.run())?;
            pool.threads.push(handle);
        }
        drop(ready_tx);
        // Every worker answers once; the failure of the lowest worker is reported, the same
        // one on every run. Dropping `pool` then stops and joins the workers started.
        let mut failure: Option<(usize, String)> = None;
        for _ in 0..nodes {
            let (index, reason) = match ready_rx.recv() {
                Ok((_, Ok(()))) => continue,
                Ok((index, Err(reason))) => (index, reason),
                Err(_) => (
                    nodes,
                    "a worker thread ended before it was ready".to_owned(),
                ),
            };
            if failure.as_ref().is_none_or(|(lowest, _)| index < *lowest) {
                failure = Some((index, reason));
            }
        }
        if let Some((_, reason)) = failure {
            return Err(BuildError::NotReady(reason));
        }
        event!(debug, nodes, concurrency, "async pool started");
        Ok(pool)
    }
}

impl fmt::Debug for AsyncMultiPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMultiPoolBuilder")
            .field("settings", &self.settings)
            .field("initializer", &self.initializer.is_some())
            .finish()
    }
}

/// One worker: an OS thread running a single-threaded runtime.
struct WorkerThread {
    index: usize,
    shared: Arc<Scheduler>,
    concurrency: usize,
    initializer: Option<Initializer>,
    debug: bool,
    ready: std::sync::mpsc::Sender<(usize, Result<(), String>)>,
}

impl WorkerThread {
    fn run(self) {
        let WorkerThread {
            index,
            shared,
            concurrency,
            initializer,
            debug,
            ready,
        } = self;
        panic_capture::mark_worker_thread();
        replies::defer_wakes_on_this_thread();
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // Threads of `spawn_blocking` inside a task are workers too.
            .on_thread_start(panic_capture::mark_worker_thread)
            // With nothing left to run, wake the callers answered since the last round.
            .on_thread_park(replies::flush)
            .build()
        {
            Ok(runtime) => runtime,
            Err(err) => {
                let _ = ready.send((
                    index,
                    Err(format!(
                        "worker {index} could not build its tokio runtime: {err}"
                    )),
                ));
                return;
            }
        };
        if let Some(initializer) = initializer {
            let _context = runtime.enter();
            if let Err(caught) = panic_capture::catch(|| initializer()) {
                let message = panic_message(caught.payload.as_ref());
                let _ = ready.send((
                    index,
                    Err(format!(
                        "the initializer of worker {index} panicked: {message}"
                    )),
                ));
                return;
            }
        }
        event!(debug, worker = index, "async worker started");
        let _ = ready.send((index, Ok(())));
        drop(ready);
        let tasks = tokio::task::LocalSet::new();
        tasks.spawn_local(replies::flusher());
        let serve = tasks.spawn_local(shared.serve(index, concurrency));
        // The serve loop ends when the pool shuts down (it closed the queue then).
        let _ = tasks.block_on(&runtime, serve);
        // Cancel what still runs: each item answers Cancelled.
        let _context = runtime.enter();
        drop(tasks);
        replies::flush();
        event!(debug, worker = index, "async worker stopped");
    }
}

impl FromSettings for AsyncMultiPool {
    fn from_settings(settings: Settings) -> Result<Self, BuildError> {
        AsyncMultiPoolBuilder {
            settings,
            initializer: None,
        }
        .build()
    }
}

impl AsyncMultiPool {
    /// A pool with one worker per usable CPU, each running up to
    /// [`DEFAULT_CONCURRENCY`] tasks at once.
    ///
    /// # Errors
    /// [`BuildError::Spawn`] when the system refuses a thread.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::new()?;
    /// assert_eq!(pool.concurrency(), twat_mp::DEFAULT_CONCURRENCY);
    /// let lengths = pool.map(|s: &'static str| async move { s.len() }, ["a", "bcd"]).await?;
    /// assert_eq!(lengths, [1, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new() -> Result<Self, BuildError> {
        Self::builder().build()
    }

    /// A pool with `nodes` workers.
    ///
    /// # Errors
    /// [`BuildError::NoNodes`] for `0`; [`BuildError::TooLarge`] for more than
    /// [`MAX_NODES`](crate::MAX_NODES); [`BuildError::Spawn`] when the system refuses a
    /// thread.
    ///
    /// ```
    /// use twat_mp::{AsyncMultiPool, BuildError};
    ///
    /// assert_eq!(AsyncMultiPool::with_nodes(3)?.nodes(), 3);
    /// assert!(matches!(AsyncMultiPool::with_nodes(0), Err(BuildError::NoNodes)));
    /// # Ok::<(), BuildError>(())
    /// ```
    pub fn with_nodes(nodes: usize) -> Result<Self, BuildError> {
        Self::builder().nodes(nodes).build()
    }

    /// Settings beyond the number of workers: `concurrency`, `timeout`, `initializer`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = twat_mp::AsyncMultiPool::builder()
    ///     .nodes(2)
    ///     .concurrency(100)
    ///     .timeout(Duration::from_secs(30))
    ///     .build()?;
    /// assert_eq!((pool.nodes(), pool.concurrency()), (2, 100));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn builder() -> AsyncMultiPoolBuilder {
        AsyncMultiPoolBuilder::default()
    }

    /// The number of workers.
    ///
    /// ```
    /// assert_eq!(twat_mp::AsyncMultiPool::with_nodes(3)?.nodes(), 3);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The most tasks one worker runs at once.
    ///
    /// ```
    /// let pool = twat_mp::AsyncMultiPool::with_nodes(1)?;
    /// assert_eq!(pool.concurrency(), twat_mp::DEFAULT_CONCURRENCY);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The per-task timeout, if any.
    ///
    /// ```
    /// use std::time::Duration;
    /// use twat_mp::AsyncMultiPool;
    ///
    /// assert_eq!(AsyncMultiPool::with_nodes(1)?.timeout(), None);
    /// let pool = AsyncMultiPool::builder().nodes(1).timeout(Duration::from_secs(5)).build()?;
    /// assert_eq!(pool.timeout(), Some(Duration::from_secs(5)));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// What the pool did since it was built, or since [`reset_insights`](Self::reset_insights);
    /// `None` unless it was built with [`insights(true)`](AsyncMultiPoolBuilder::insights).
    ///
    /// What runs where: each task is timed on the worker thread that runs it, from its
    /// first poll to its end (awaits included: an item's duration is its latency, not its
    /// CPU time). Tasks overlap on a worker, so a worker's busy time is the time during
    /// which at least one of the pool's tasks ran on it, and its idle time the rest. A
    /// task whose caller went away (a dropped future or stream, a `map` decided by a
    /// failure) counts in its worker's busy time but not as an item.
    ///
    /// ```
    /// use twat_mp::AsyncMultiPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder().nodes(2).insights(true).build()?;
    /// let lengths = pool.map(|s: String| async move { s.len() }, ["ab".to_owned(), "c".to_owned()]).await?;
    /// assert_eq!(lengths, [2, 1]);
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// assert_eq!(insights.items(), 2);
    /// println!("{insights}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn insights(&self) -> Option<Insights> {
        self.insights.as_ref().map(|recorder| recorder.snapshot())
    }

    /// Starts the [`insights`](Self::insights) afresh: counts, times and the slowest items
    /// go back to zero; calls keep their numbers. Does nothing without
    /// [`insights(true)`](AsyncMultiPoolBuilder::insights).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(1).insights(true).build()?;
    /// pool.map(|x: u8| async move { x }, [1, 2, 3]).await?;
    /// pool.reset_insights();
    /// pool.map(|x: u8| async move { x }, [4]).await?;
    /// assert_eq!(pool.insights().map(|i| i.items()), Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reset_insights(&self) {
        if let Some(recorder) = &self.insights {
            recorder.reset();
        }
    }

    /// Runs `f` on every item, up to `nodes × concurrency` at once, and returns the
    /// results in input order.
    ///
    /// The input is gathered when `map` is called, as Python's `map` drains it; the work
    /// starts when the future is first polled. If items fail, the one with the lowest
    /// index is reported; the future returns as soon as that is decided, cancelling the
    /// items still running. Dropping the future cancels every item still queued or
    /// running. An empty input returns at once.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item: its panic, its timeout, or
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) if the pool was dropped first.
    ///
    /// ```
    /// use twat_mp::{AsyncMultiPool, ErrorKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::with_nodes(2)?;
    /// let lengths = pool.map(|s: String| async move { s.len() }, ["a".repeat(3), "b".repeat(5)]).await?;
    /// assert_eq!(lengths, [3, 5]);
    ///
    /// let err = pool
    ///     .map(|x: u32| async move { if x == 2 { panic!("two is unlucky") } x }, 0..5)
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.index(), 2);
    /// assert!(matches!(err.kind(), ErrorKind::Panicked { message } if message == "two is unlucky"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn map<T, R, F, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<T, R, F, Fut, I>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        R: Send + 'static,
    {
        let run = self.run_map(f, Ok, items, None);
        async move { run.await.map_err(ItemFailure::into_infallible_worker_error) }
    }

    /// Like [`map`](Self::map) for a function that returns `Result`: the first `Err` (by
    /// index) comes back as a [`WorkerError`] of kind
    /// [`ErrorKind::Failed`](crate::ErrorKind::Failed) whose
    /// [`source`](std::error::Error::source) is the function's error — as
    /// [`ThreadPool::try_map`](crate::ThreadPool::try_map) does.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use twat_mp::{AsyncMultiPool, ErrorKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::with_nodes(2)?;
    /// let parsed = pool.try_map(|s: &'static str| async move { s.parse::<u8>() }, ["1", "2"]).await?;
    /// assert_eq!(parsed, [1, 2]);
    /// let err = pool.try_map(|s: &'static str| async move { s.parse::<u8>() }, ["1", "x"]).await.unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert!(matches!(err.kind(), ErrorKind::Failed(_)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_map<T, R, E, F, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<T, R, E, F, Fut, I>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + 'static,
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        R: Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        let run = self.run_map(f, std::convert::identity, items, None);
        async move { run.await.map_err(ItemFailure::into_worker_error) }
    }

    /// Applies an async function of several arguments to every tuple of arguments, as
    /// Python's `starmap`; results in input order. See [`TupleFn`] for the closures it
    /// takes (an `async fn` of several arguments works as it is).
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// async fn power(base: u64, exp: u32) -> u64 {
    ///     base.pow(exp)
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::with_nodes(2)?;
    /// let powers = pool.starmap(power, [(2, 10), (3, 3)]).await?;
    /// assert_eq!(powers, [1024, 27]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn starmap<Args, R, F, I>(
        &self,
        f: F,
        tuples: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<Args, R, F, I>
    where
        F: TupleFn<Args> + Send + Sync + 'static,
        F::Output: Future<Output = R> + 'static,
        I: IntoIterator<Item = Args>,
        Args: Send + 'static,
        R: Send + 'static,
    {
        self.map(move |args| f.call_tuple(args), tuples)
    }

    /// Runs `f` on every item lazily and yields the results in input order, as a
    /// [`Stream`](futures_core::Stream) (or with [`ImapStream::next`]).
    ///
    /// Input is pulled only as results are consumed: at most `nodes × concurrency` items
    /// run or wait ahead of the consumer, so an endless input runs in bounded memory. A
    /// failed item yields `Err` and the stream goes on. Dropping the stream cancels the
    /// items still queued or running.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).concurrency(4).build()?;
    /// // An endless input: only what is consumed (and a small window ahead) is computed.
    /// let mut squares = pool.imap(|n: u64| async move { n * n }, 1..);
    /// let mut first = Vec::new();
    /// while let Some(square) = squares.next().await {
    ///     first.push(square?);
    ///     if first.len() == 4 {
    ///         break;
    ///     }
    /// }
    /// assert_eq!(first, [1, 4, 9, 16]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn imap<T, R, F, Fut, I>(&self, f: F, items: I) -> ImapStream<R>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        ImapStream::new(self.lazy(f, Ok, items.into_iter(), None, true))
    }

    /// Like [`imap`](Self::imap), but yields each result as soon as it is ready, in
    /// completion order. Map to `(index, value)` pairs when the origin matters.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::with_nodes(2)?;
    /// let mut done = pool.uimap(
    ///     |ms: u64| async move {
    ///         tokio::time::sleep(Duration::from_millis(ms)).await;
    ///         ms
    ///     },
    ///     [30, 1],
    /// );
    /// let mut order = Vec::new();
    /// while let Some(ms) = done.next().await {
    ///     order.push(ms?);
    /// }
    /// order.sort();
    /// assert_eq!(order, [1, 30]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn uimap<T, R, F, Fut, I>(&self, f: F, items: I) -> UimapStream<R>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        UimapStream::new(self.lazy(f, Ok, items.into_iter(), None, false))
    }

    /// Like [`map`](Self::map), with a state per worker: `init()` makes it, at most once
    /// per worker per call, and `f(&mut state, item)` makes each item's future from it —
    /// a client, a connection pool, a parsed configuration.
    ///
    /// **What runs where.** `init` runs on the worker thread that needs a state, inside
    /// its runtime (it may spawn onto it), just before that worker starts its first item
    /// of this call; a worker that starts none never runs it, so it runs at most
    /// [`nodes`](Self::nodes) times. `f` runs there too, synchronously, with the state as
    /// `&mut S`; the states are dropped once the call is over (its future dropped or
    /// finished and its tasks done), on whichever thread lets go of them last (`S` must be
    /// `Send`). The next call makes new states.
    ///
    /// **The future cannot borrow the state.** A worker runs many tasks at once, so a
    /// future holding `&mut S` across an `.await` would alias it: the future `f` returns
    /// is `'static`. Let `f` take from the state what the task needs — clone a client
    /// handle (most are an `Arc` inside), take a ticket, count — and move that in.
    ///
    /// **Failures.** As in `map`. A panic in `init` fails the item that needed the state
    /// with [`ErrorKind::InitPanicked`](crate::ErrorKind::InitPanicked); `init` does not run
    /// again on that worker in this call, whose later items there fail the same way.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use twat_mp::AsyncMultiPool;
    ///
    /// /// Stands for an HTTP or database client: cheap to clone, costly to make.
    /// #[derive(Clone)]
    /// struct Client {
    ///     base: Arc<str>,
    /// }
    ///
    /// impl Client {
    ///     async fn get(&self, path: &str) -> String {
    ///         format!("{}/{path}", self.base)
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::with_nodes(2)?;
    /// let pages = pool
    ///     .map_init(
    ///         || Client { base: "https://example.org".into() },
    ///         // Runs on the worker: clone the handle, move the clone into the future.
    ///         |client: &mut Client, path: &'static str| {
    ///             let client = client.clone();
    ///             async move { client.get(path).await }
    ///         },
    ///         ["a", "b"],
    ///     )
    ///     .await?;
    /// assert_eq!(pages, ["https://example.org/a", "https://example.org/b"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_init<T, S, R, N, F, Fut, I>(
        &self,
        init: N,
        f: F,
        items: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<T, S, R, N, F, Fut, I>
    where
        N: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        S: Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        let run = self.run_map_init(init, f, Ok, items, None);
        async move { run.await.map_err(ItemFailure::into_infallible_worker_error) }
    }

    /// [`imap`](Self::imap) with a state per worker, as [`map_init`](Self::map_init) has:
    /// `init` runs on a worker before it starts its first item of this call, and the
    /// states are dropped when the stream is dropped and its tasks are done.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).concurrency(4).build()?;
    /// // An endless input; each worker numbers the items it starts.
    /// let mut tagged = pool.imap_init(
    ///     || 0u32,
    ///     |started: &mut u32, n: u64| {
    ///         *started += 1;
    ///         async move { n * 10 }
    ///     },
    ///     1..,
    /// );
    /// let mut first = Vec::new();
    /// while let Some(value) = tagged.next().await {
    ///     first.push(value?);
    ///     if first.len() == 3 {
    ///         break;
    ///     }
    /// }
    /// assert_eq!(first, [10, 20, 30]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn imap_init<T, S, R, N, F, Fut, I>(&self, init: N, f: F, items: I) -> ImapStream<R>
    where
        N: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        S: Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        let g = self.with_state(init, f);
        ImapStream::new(self.lazy_on(g, Ok, items.into_iter(), None, true))
    }

    /// [`uimap`](Self::uimap) with a state per worker: results in completion order, with
    /// `init` and the states as in [`imap_init`](Self::imap_init).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::with_nodes(2)?;
    /// let mut done = pool.uimap_init(
    ///     || String::from("item "),
    ///     |prefix: &mut String, n: u8| {
    ///         let label = format!("{prefix}{n}");
    ///         async move { label }
    ///     },
    ///     [1, 2],
    /// );
    /// let mut labels = Vec::new();
    /// while let Some(label) = done.next().await {
    ///     labels.push(label?);
    /// }
    /// labels.sort();
    /// assert_eq!(labels, ["item 1", "item 2"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn uimap_init<T, S, R, N, F, Fut, I>(&self, init: N, f: F, items: I) -> UimapStream<R>
    where
        N: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        S: Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        let g = self.with_state(init, f);
        UimapStream::new(self.lazy_on(g, Ok, items.into_iter(), None, false))
    }

    /// Like [`map`](Self::map), with data every item reads: `f(&shared, item)`. `shared`
    /// is moved into the call once and shared by every worker behind an `Arc`, never
    /// copied (hence `S: Send + Sync`); it is dropped once the call is over. As in
    /// [`map_init`](Self::map_init), the future `f` returns cannot borrow it: take what the
    /// task needs.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::with_nodes(2)?;
    /// let prices: HashMap<&str, u32> = [("apple", 3), ("fig", 5)].into();
    /// let costs = pool
    ///     .map_with(prices, |prices, fruit: &'static str| {
    ///         let price = prices[fruit];
    ///         async move { price * 2 }
    ///     }, ["fig", "apple"])
    ///     .await?;
    /// assert_eq!(costs, [10, 6]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_with<T, S, R, F, Fut, I>(
        &self,
        shared: S,
        f: F,
        items: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<T, S, R, F, Fut, I>
    where
        S: Send + Sync + 'static,
        F: Fn(&S, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        R: Send + 'static,
    {
        let shared = Arc::new(shared);
        self.map(move |x| f(&shared, x), items)
    }

    /// Runs `f` on one item on a worker and returns its result.
    ///
    /// # Errors
    /// A [`WorkerError`] (index 0) when `f` panics or times out.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::with_nodes(1)?;
    /// let words = pool.apply(|text: &'static str| async move { text.split_whitespace().count() }, "one two three").await?;
    /// assert_eq!(words, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn apply<T, R, F, Fut>(
        &self,
        f: F,
        item: T,
    ) -> impl Future<Output = Result<R, WorkerError>> + Send + use<T, R, F, Fut>
    where
        F: FnOnce(T) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        T: Send + 'static,
        R: Send + 'static,
    {
        let call = Arc::new(
            CallCtx::new(self.debug, None, self.watchdog.clone(), false)
                .with_insights(self.insights.as_ref()),
        );
        let mut f = Some(f);
        let mut call = AsyncCall::<R, Infallible>::new(
            self.dispatcher(),
            std::iter::once(item),
            move |item, reply| {
                let f = f.take().expect("apply has exactly one item");
                make_job(item, move |x, _| f(x), Ok, Arc::clone(&call), reply)
            },
            1,
            false,
        );
        async move {
            let (_, outcome) = call.next().await.expect("the one item of apply answers");
            outcome.map_err(ItemFailure::into_infallible_worker_error)
        }
    }

    fn dispatcher(&self) -> Arc<dyn Dispatch> {
        Arc::clone(&self.shared) as Arc<dyn Dispatch>
    }

    /// What `map`, `try_map` and the attributes run: the items are gathered now, the
    /// work starts when the future is polled.
    /// `lift` turns the function's output into a `Result`.
    pub(crate) fn run_map<T, O, R, E, F, Fut, I>(
        &self,
        f: F,
        lift: fn(O) -> Result<R, E>,
        items: I,
        render: Option<Render<T>>,
    ) -> impl Future<Output = Result<Vec<R>, ItemFailure<E>>> + Send + use<T, O, R, E, F, Fut, I>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + 'static,
        O: 'static,
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        self.run_map_on(move |x, _| f(x), lift, items, render)
    }

    /// [`run_map`](Self::run_map) with a state per worker, made by `init` on the worker.
    pub(crate) fn run_map_init<T, S, O, R, E, N, F, Fut, I>(
        &self,
        init: N,
        f: F,
        lift: fn(O) -> Result<R, E>,
        items: I,
        render: Option<Render<T>>,
    ) -> impl Future<Output = Result<Vec<R>, ItemFailure<E>>> + Send + use<T, S, O, R, E, N, F, Fut, I>
    where
        N: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + 'static,
        O: 'static,
        I: IntoIterator<Item = T>,
        S: Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        self.run_map_on(self.with_state(init, f), lift, items, render)
    }

    /// `f` over a state per worker: the function of one item and its worker that each
    /// job calls. The job takes its worker's state (made by `init` on first use) only
    /// while `f` makes the item's future, so the worker's tasks never alias it.
    fn with_state<T, S, N, F, Fut>(
        &self,
        init: N,
        f: F,
    ) -> impl Fn(T, usize) -> Fut + Send + Sync + 'static + use<T, S, N, F, Fut>
    where
        N: Fn() -> S + Send + Sync + 'static,
        F: Fn(&mut S, T) -> Fut + Send + Sync + 'static,
        S: Send + 'static,
    {
        let states = WorkerStates::new(init, self.nodes);
        move |x, worker| f(states.take(Some(worker)).get(), x)
    }

    fn run_map_on<T, O, R, E, G, Fut, I>(
        &self,
        g: G,
        lift: fn(O) -> Result<R, E>,
        items: I,
        render: Option<Render<T>>,
    ) -> impl Future<Output = Result<Vec<R>, ItemFailure<E>>> + Send + use<T, O, R, E, G, Fut, I>
    where
        G: Fn(T, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + 'static,
        O: 'static,
        I: IntoIterator<Item = T>,
        T: Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let items: Vec<T> = items.into_iter().collect();
        let ctx = Arc::new(
            CallCtx::new(self.debug, render, self.watchdog.clone(), true)
                .with_insights(self.insights.as_ref()),
        );
        let g = Arc::new(g);
        let call = AsyncCall::new(
            self.dispatcher(),
            items.into_iter(),
            move |item, reply| {
                let g = Arc::clone(&g);
                make_job(
                    item,
                    move |x, worker| g(x, worker),
                    lift,
                    Arc::clone(&ctx),
                    reply,
                )
            },
            // Twice what the workers may run at once: the queue keeps them busy between
            // two refills, and only that many jobs exist at a time, however many items
            // (all of them at once made 10^7 trivial items cost 20% more each than 10^4:
            // a gigabyte of queued jobs, each read back from memory cold).
            self.nodes
                .saturating_mul(self.concurrency)
                .saturating_mul(2),
            false,
        )
        .with_progress(self.progress);
        collect_in_order(call)
    }

    /// What `imap` and `uimap` run.
    pub(crate) fn lazy<T, O, R, E, F, Fut, I>(
        &self,
        f: F,
        lift: fn(O) -> Result<R, E>,
        items: I,
        render: Option<Render<T>>,
        ordered: bool,
    ) -> AsyncCall<R, E>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + 'static,
        O: 'static,
        I: Iterator<Item = T> + Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        self.lazy_on(move |x, _| f(x), lift, items, render, ordered)
    }

    fn lazy_on<T, O, R, E, G, Fut, I>(
        &self,
        g: G,
        lift: fn(O) -> Result<R, E>,
        items: I,
        render: Option<Render<T>>,
        ordered: bool,
    ) -> AsyncCall<R, E>
    where
        G: Fn(T, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + 'static,
        O: 'static,
        I: Iterator<Item = T> + Send + 'static,
        T: Send + 'static,
        R: Send + 'static,
        E: Send + 'static,
    {
        let call = Arc::new(
            CallCtx::new(self.debug, render, self.watchdog.clone(), false)
                .with_insights(self.insights.as_ref()),
        );
        let g = Arc::new(g);
        AsyncCall::new(
            self.dispatcher(),
            items,
            move |item, reply: Reply<R, E>| {
                let g = Arc::clone(&g);
                make_job(
                    item,
                    move |x, worker| g(x, worker),
                    lift,
                    Arc::clone(&call),
                    reply,
                )
            },
            self.nodes.saturating_mul(self.concurrency),
            ordered,
        )
        .with_progress(self.progress)
    }
}

impl Drop for AsyncMultiPool {
    fn drop(&mut self) {
        // Queued jobs are dropped here, outside the queue's lock: each answers Cancelled.
        drop(self.shared.close());
        if let Some(watchdog) = &self.watchdog {
            watchdog.stop();
        }
        let current = std::thread::current().id();
        for handle in self.threads.drain(..) {
            // A pool dropped inside one of its own tasks cannot join that worker; it
            // stops by itself once the task returns.
            if handle.thread().id() != current {
                let _ = handle.join();
            }
        }
        event!(self.debug, nodes = self.nodes, "async pool stopped");
    }
}

impl fmt::Debug for AsyncMultiPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMultiPool")
            .field("nodes", &self.nodes)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("debug", &self.debug)
            .field("insights", &self.insights.is_some())
            .finish()
    }
}
