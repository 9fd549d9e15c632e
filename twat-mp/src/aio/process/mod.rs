//! Process mode of the async pool: [`AsyncProcessPool`], async functions in worker
//! processes that each run their own tokio runtime, on top of the
//! [`ProcessPool`](crate::ProcessPool) machinery.
//!
//! Each call keeps a *session* open on up to one worker process per node: a session is
//! one item of the underlying process pool, whose function (in the worker) connects back
//! to the call over a socket of its own, takes the call's items one at a time while it
//! runs, starts each as a task of the worker's runtime as it arrives, and sends each
//! task's answer as soon as the task is done. The call sends each session at most its
//! share of the input (so a short input is spread over every worker), `concurrency` at
//! once, and never past the worker's `maxtasksperchild`.
//!
//! | module | what |
//! |---|---|
//! | this one | the pool, its builder and its methods |
//! | `session` | what runs in a worker process: a session's tasks, their deadlines, the watchdog of blocked tasks |
//! | `call` | one call on the caller's side: its sessions, retries, outcomes in the engine's window |
//! | `attribute` | what `#[apmap(process)]` calls |

pub(crate) mod attribute;
mod call;
mod session;

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::debug::event;
use crate::engine::gather::Gather;
use crate::engine::insights::Insights;
use crate::engine::item::ItemFailure;
use crate::engine::progress::progress_setter;
use crate::engine::registry::FromSettings;
use crate::engine::render::Render;
use crate::engine::settings::Settings;
use crate::error::{BoxError, BuildError, ErrorKind, WorkerError};
use crate::process::remote::StateSpec;
use crate::process::remote::{
    AsValue, Callee, ErrorWire, NoError, Partial, Split, Spread, Total, render_input,
};
use crate::process::unsafe_code::{SharedFn, StateFn};
use crate::process::{CrossProcess, CrossProcessError, ProcessPool, StarArgs, StateSetup, wire};

use call::{Limits, SessionCall, Transport};
use session::{Answer, Sessions};

pub use call::{ProcessImapStream, ProcessUimapStream};

/// Process mode: async functions in worker processes, each running its own tokio
/// runtime with many tasks at once. Made by [`AsyncMultiPoolBuilder::processes`](super::AsyncMultiPoolBuilder::processes).
///
/// Use it where [`AsyncMultiPool`](super::AsyncMultiPool)'s threads are not enough: async
/// code that may crash, abort, leak or block, or that is not thread-safe. As with
/// [`ProcessPool`](crate::ProcessPool), the function is a function pointer, `fn(T) -> Fut` (an
/// `async fn` item, a closure without captures, or a `fn` pointer chosen at run time),
/// and the items and results cross as serde values ([`CrossProcess`]);
/// the worker processes are this executable started again, with no setup (see
/// [`ProcessPool`](crate::ProcessPool) for how). Available on Linux.
///
/// Each call spreads its items over every worker process from the first item (at most
/// [`concurrency`](AsyncProcessPoolBuilder::concurrency) at once in each), and each
/// result comes back as soon as its task is done.
///
/// # Failures
///
/// - A panic, error or timeout in one task costs that task only, and the worker process
///   goes on.
/// - A worker process that dies (abort, segfault, out of memory, `kill -9`) is replaced.
///   If it was running one task, that task fails with [`ErrorKind::Crashed`]; if several,
///   each of them runs again alone on a fresh worker, so that exactly the task that kills
///   a worker fails. A task may thus run twice (and its side effects happen twice).
/// - With [`retries(n)`](AsyncProcessPoolBuilder::retries), a task whose worker process
///   died under it, or that timed out, runs again up to `n` more times before it fails
///   so, and [`WorkerError::attempts`] counts its runs; panics and returned errors are
///   not retried.
///
/// # What runs where
///
/// Every task runs in a worker process, on the main thread of that process's tokio
/// runtime, with up to `concurrency` tasks of the call at once; the caller's process only
/// sends items and receives answers (a thread per session waits for them there), so the
/// call's future can be awaited from any executor. The
/// [`initializer`](AsyncProcessPoolBuilder::initializer) runs once in each worker process
/// when it starts, before its first task, on that same thread (before the runtime is
/// built, so it cannot spawn tasks); what it sets up (a `static`, a `OnceLock`, a
/// `thread_local!`) is seen by every task of that worker, in every call, until the worker
/// is replaced — and it runs again in each worker that replaces one.
///
/// # Timeouts
///
/// [`timeout`](AsyncProcessPoolBuilder::timeout) is per task and runs from the task's
/// first poll, so tasks waiting for a free slot of their worker do not use it up.
///
/// - A task still pending at its deadline is dropped at its `.await` and fails with
///   [`ErrorKind::TimedOut`]; its worker goes on.
/// - A task that blocks its thread past its deadline (`std::thread::sleep`, a busy loop,
///   blocking I/O) cannot be stopped at an `.await`: a watchdog thread in the worker reports
///   it at its deadline (a few milliseconds after), the task fails with
///   [`ErrorKind::TimedOut`] of the pool's timeout, and its worker process is killed and
///   replaced. The other tasks that worker was running run again on another worker (they
///   could not run on while the thread was blocked).
/// - Blocking code within its deadline is not stopped, but it holds every other task of
///   its worker meanwhile, and their deadlines run on.
///
/// # Cancellation and drop
///
/// A call that no longer wants its results — a `map` decided by a failure, a future
/// dropped (by `tokio::time::timeout`, `select!`, or a dropped task), a stream dropped —
/// sends no further items and stops its sessions: the workers still running its tasks
/// are killed, whether those tasks are pending or blocked, and replaced when work next
/// needs them. Nothing waits for those tasks, so later calls and the pool's drop never
/// hang on them.
///
/// Dropping the pool while calls still run stops them too: their workers are killed, and
/// the items that had not answered come back as [`ErrorKind::Cancelled`]. Dropping an
/// idle pool lets its workers exit.
///
/// # Nesting
///
/// A task runs in a worker process, where the caller's pool does not exist, and the
/// function sent there captures nothing, so a task cannot await this pool. It may build
/// a process pool of its own there (an `#[apmap(process)]` function called from a task
/// does): its workers are that worker's children, one level deep, as for
/// [`ProcessPool`](crate::ProcessPool); one level further, building fails with
/// [`BuildError::Nested`](crate::BuildError::Nested) instead of forking without bound.
///
/// # `maxtasksperchild`
///
/// With [`maxtasksperchild`](AsyncProcessPoolBuilder::maxtasksperchild), each worker
/// process runs at most that many tasks in its life, counted for that worker alone; it
/// then finishes the tasks it has and is replaced. It runs up to `concurrency` of them at
/// once (a limit under `concurrency` also bounds that, since a worker never takes more
/// than it may run).
///
/// ```
/// use twat_mp::AsyncMultiPool;
///
/// async fn pid_and_square(x: u64) -> (u32, u64) {
///     tokio::task::yield_now().await;
///     (std::process::id(), x * x)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = AsyncMultiPool::builder().nodes(2).processes().build()?;
/// let answers = pool.map(pid_and_square, 0..6).await?;
/// assert_eq!(answers.iter().map(|a| a.1).collect::<Vec<_>>(), [0, 1, 4, 9, 16, 25]);
/// // The tasks ran in worker processes, not in this one.
/// assert!(answers.iter().all(|a| a.0 != std::process::id()));
/// # Ok(())
/// # }
/// ```
pub struct AsyncProcessPool {
    /// The worker processes; each call keeps a session open on up to one per node.
    workers: Arc<ProcessPool>,
    /// Set when this pool is dropped while calls still run: they are cancelled.
    closed: Arc<AtomicBool>,
    nodes: usize,
    concurrency: usize,
    timeout: Option<Duration>,
    maxtasksperchild: Option<usize>,
    debug: bool,
    retries: u32,
    /// A progress bar per call (feature `progress`).
    progress: bool,
}

/// Settings for an [`AsyncProcessPool`]; made by
/// [`AsyncMultiPoolBuilder::processes`](super::AsyncMultiPoolBuilder::processes).
///
/// ```
/// use twat_mp::AsyncMultiPool;
///
/// let pool = AsyncMultiPool::builder()
///     .nodes(2)
///     .concurrency(100)
///     .processes()
///     .maxtasksperchild(1_000)
///     .build()?;
/// assert_eq!(pool.nodes(), 2);
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `.build()`"]
pub struct AsyncProcessPoolBuilder {
    pub(crate) settings: Settings,
    /// An initializer (a closure) was set before `processes()`: refused at `build`.
    pub(crate) has_initializer: bool,
    pub(crate) initializer: Option<fn()>,
}

impl AsyncProcessPoolBuilder {
    /// The number of worker processes; the default is the number of usable CPUs. At most
    /// [`MAX_NODES`](crate::MAX_NODES).
    ///
    /// ```
    /// let pool = twat_mp::AsyncMultiPool::builder().processes().nodes(2).build()?;
    /// assert_eq!(pool.nodes(), 2);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn nodes(mut self, nodes: usize) -> Self {
        self.settings.nodes = Some(nodes);
        self
    }

    /// The most tasks one worker process runs at once (default
    /// [`DEFAULT_CONCURRENCY`](super::DEFAULT_CONCURRENCY)).
    ///
    /// ```
    /// let pool = twat_mp::AsyncMultiPool::builder().processes().concurrency(16).build()?;
    /// assert_eq!(pool.concurrency(), 16);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.settings.concurrency = Some(concurrency);
        self
    }

    /// The longest one task may run, from its first poll; the task then fails with
    /// [`ErrorKind::TimedOut`]. A task that cannot be stopped at an `.await` (it blocks its
    /// thread) is reported at its deadline and its worker process killed; the worker's
    /// other tasks run again elsewhere (see [`AsyncProcessPool`'s timeouts](AsyncProcessPool#timeouts)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use twat_mp::{AsyncMultiPool, ErrorKind};
    ///
    /// async fn wait_ms(ms: u64) -> u64 {
    ///     tokio::time::sleep(Duration::from_millis(ms)).await;
    ///     ms
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder()
    ///     .nodes(1)
    ///     .processes()
    ///     .timeout(Duration::from_millis(200))
    ///     .build()?;
    /// let err = pool.map(wait_ms, [1, 10_000]).await.unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert!(matches!(err.kind(), ErrorKind::TimedOut { .. }));
    /// # Ok(())
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = Some(timeout);
        self
    }

    /// The most tasks one worker process runs in its life, as Python's
    /// `maxtasksperchild`: a bound on what a leak can accumulate. Each worker counts its
    /// own tasks and is replaced once it has run that many. No limit by default.
    ///
    /// ```
    /// use twat_mp::AsyncMultiPool;
    ///
    /// async fn pid(_: u32) -> u32 {
    ///     std::process::id()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder().nodes(1).processes().maxtasksperchild(1).build()?;
    /// let mut pids = pool.map(pid, 0..3).await?;
    /// pids.sort();
    /// pids.dedup();
    /// assert_eq!(pids.len(), 3); // a new worker process for each task
    /// # Ok(())
    /// # }
    /// ```
    pub fn maxtasksperchild(mut self, tasks: usize) -> Self {
        self.settings.maxtasksperchild = Some(tasks);
        self
    }

    /// Reports this pool's events even when the global debug mode is off.
    ///
    /// ```
    /// // Reports the worker processes' starts, exits and replacements, and each failed task.
    /// let pool = twat_mp::AsyncMultiPool::builder().processes().nodes(1).debug(true).build()?;
    /// assert_eq!(pool.nodes(), 1);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn debug(mut self, debug: bool) -> Self {
        self.settings.debug = debug;
        self
    }

    /// Keeps what the pool does for [`AsyncProcessPool::insights`]: per worker process
    /// the tasks it ran, its busy and idle time, its start-up time and restarts, and the
    /// slowest tasks. Off by default. Each task is timed in its worker process whether
    /// or not insights are on (two clock reads next to a message per task cost nothing
    /// measurable); what insights add is the pool's tally, under a lock, once per task.
    ///
    /// ```
    /// let pool = twat_mp::AsyncMultiPool::builder().processes().insights(true).build()?;
    /// assert_eq!(pool.insights().map(|i| i.items()), Some(0));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn insights(mut self, insights: bool) -> Self {
        self.settings.insights = insights;
        self
    }

    /// A function each worker process runs once when it starts, before its first task,
    /// as [`ProcessPoolBuilder::initializer`](crate::ProcessPoolBuilder::initializer)
    /// does (the same rules: it captures nothing, runs again in every worker that
    /// replaces one, and a failing initializer breaks the pool: every item then fails
    /// with [`ErrorKind::InitializerFailed`], and no worker is started again). It runs
    /// before the worker's tokio runtime exists: set up state there, not tasks.
    ///
    /// ```
    /// use std::sync::OnceLock;
    /// use twat_mp::AsyncMultiPool;
    ///
    /// static PREFIX: OnceLock<String> = OnceLock::new();
    ///
    /// async fn label(x: u32) -> String {
    ///     format!("{}{x}", PREFIX.get().expect("the initializer ran"))
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder()
    ///     .nodes(2)
    ///     .processes()
    ///     .initializer(|| PREFIX.set("item-".to_owned()).unwrap())
    ///     .build()?;
    /// assert_eq!(pool.map(label, [1, 2]).await?, ["item-1", "item-2"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn initializer(mut self, initializer: fn()) -> Self {
        self.initializer = Some(initializer);
        self
    }

    /// Runs a task again, up to `retries` more times, when its worker process died under
    /// it or it ran past the [`timeout`](Self::timeout), as
    /// [`ProcessPoolBuilder::retries`](crate::ProcessPoolBuilder::retries) does: a task
    /// whose worker died runs again alone on another worker process (so that a second
    /// crash is its own), one that timed out on any worker. An item that succeeds on a
    /// retry is a success; [`WorkerError::attempts`] says how many runs a failed one had.
    /// Panics and returned errors are not retried: they are the function's answer, the
    /// same on every run in the common case. No retries by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use twat_mp::{AsyncMultiPool, ErrorKind};
    ///
    /// async fn slow_on_one(x: u64) -> u64 {
    ///     if x == 1 {
    ///         tokio::time::sleep(Duration::from_secs(60)).await;
    ///     }
    ///     x
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder()
    ///     .nodes(1)
    ///     .timeout(Duration::from_millis(100))
    ///     .processes()
    ///     .retries(2)
    ///     .build()?;
    /// let err = pool.map(slow_on_one, 0..3).await.unwrap_err();
    /// assert_eq!((err.index(), err.attempts()), (1, 3));
    /// assert!(matches!(err.kind(), ErrorKind::TimedOut { .. }));
    /// # Ok(())
    /// # }
    /// ```
    pub fn retries(mut self, retries: u32) -> Self {
        self.settings.retries = retries;
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
        /// The caller's task counts each answer as it takes it from a worker's session
        /// (the worker processes draw nothing). A call of one item (`apply`) draws no bar.
        ///
        /// ```
        /// async fn length(s: String) -> usize {
        ///     s.len()
        /// }
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).processes().progress(true).build()?;
        /// let lengths = pool.map(length, ["a", "bb"].map(String::from)).await?;
        /// assert_eq!(lengths, [1, 2]);
        /// # Ok(())
        /// # }
        /// ```
    }

    /// Makes the pool; its worker processes start when work first needs them.
    ///
    /// # Errors
    /// [`BuildError::NoNodes`] for `nodes(0)`; [`BuildError::Zero`] for a zero
    /// `concurrency`, `timeout` or `maxtasksperchild`; [`BuildError::TooLarge`] for more
    /// than [`MAX_NODES`](crate::MAX_NODES) nodes or [`MAX_CONCURRENCY`](crate::MAX_CONCURRENCY)
    /// tasks per worker; [`BuildError::Unsupported`] when an initializer was set
    /// *before* [`processes`](super::AsyncMultiPoolBuilder::processes): that one is a
    /// closure, which cannot cross to another process (set a function that captures
    /// nothing after it instead, with [`initializer`](Self::initializer));
    /// [`BuildError::Spawn`] when the system refuses a thread.
    ///
    /// ```
    /// use twat_mp::{AsyncMultiPool, BuildError};
    ///
    /// let err = AsyncMultiPool::builder()
    ///     .initializer(|| println!("ready"))
    ///     .processes()
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, BuildError::Unsupported(_)));
    /// assert!(err.to_string().contains("`.processes().initializer(f)`"), "{err}");
    /// ```
    pub fn build(self) -> Result<AsyncProcessPool, BuildError> {
        let checked = self.settings.check()?;
        if self.has_initializer {
            return Err(BuildError::Unsupported(
                "an initializer set before `processes()` is a closure, and a closure cannot \
                 cross to a worker process: set it after, `.processes().initializer(f)`, with \
                 a function that captures nothing",
            ));
        }
        let (nodes, debug, timeout) = (checked.nodes, checked.debug, checked.timeout);
        let concurrency = checked.concurrency.unwrap_or(super::DEFAULT_CONCURRENCY);
        let maxtasksperchild = checked.maxtasksperchild;
        let pool = AsyncProcessPool {
            workers: Arc::new(worker_processes(
                nodes,
                debug,
                checked.insights,
                self.initializer,
            )?),
            retries: checked.retries,
            closed: Arc::new(AtomicBool::new(false)),
            nodes,
            concurrency,
            timeout,
            maxtasksperchild,
            debug,
            progress: checked.progress,
        };
        event!(debug, nodes, concurrency, "async process pool started");
        Ok(pool)
    }
}

impl FromSettings for AsyncProcessPool {
    fn from_settings(settings: Settings) -> Result<Self, BuildError> {
        AsyncProcessPoolBuilder {
            settings,
            has_initializer: false,
            initializer: None,
        }
        .build()
    }
}

impl AsyncProcessPool {
    /// The number of worker processes.
    ///
    /// ```
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(3).processes().build()?;
    /// assert_eq!(pool.nodes(), 3);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The most tasks one worker process runs at once.
    ///
    /// ```
    /// let pool = twat_mp::AsyncMultiPool::builder().processes().build()?;
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
    ///
    /// let pool = twat_mp::AsyncMultiPool::builder()
    ///     .processes()
    ///     .timeout(Duration::from_secs(5))
    ///     .build()?;
    /// assert_eq!(pool.timeout(), Some(Duration::from_secs(5)));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The most tasks one worker process runs in its life, if limited.
    ///
    /// ```
    /// let pool = twat_mp::AsyncMultiPool::builder().processes().maxtasksperchild(100).build()?;
    /// assert_eq!(pool.maxtasksperchild(), Some(100));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn maxtasksperchild(&self) -> Option<usize> {
        self.maxtasksperchild
    }

    /// What the pool did since it was built, or since [`reset_insights`](Self::reset_insights);
    /// `None` unless it was built with [`insights(true)`](AsyncProcessPoolBuilder::insights).
    ///
    /// What runs where: one row per worker process slot (`nodes` of them). Each task is
    /// timed in the worker process that runs it, from its first poll to its end, and the
    /// time comes back with its answer; tasks overlap in a worker, so its busy time is the
    /// time during which at least one task of the pool ran in it. Start-up times and
    /// restarts (a process replacing one that crashed, was killed for a stuck task, or
    /// reached [`maxtasksperchild`](AsyncProcessPoolBuilder::maxtasksperchild)) are seen
    /// by the pool. A task whose worker died before it answered is not counted.
    ///
    /// ```
    /// use twat_mp::AsyncMultiPool;
    ///
    /// async fn double(x: u64) -> u64 {
    ///     x * 2
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder().nodes(2).processes().insights(true).build()?;
    /// assert_eq!(pool.map(double, 0..4).await?, [0, 2, 4, 6]);
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// assert_eq!(insights.items(), 4);
    /// println!("{insights}"); // one row per worker process, with start-up and restarts
    /// # Ok(())
    /// # }
    /// ```
    pub fn insights(&self) -> Option<Insights> {
        self.workers.recorder().map(|recorder| recorder.snapshot())
    }

    /// Starts the [`insights`](Self::insights) afresh: counts, times, restarts and the
    /// slowest tasks go back to zero; calls keep their numbers. Does nothing without
    /// [`insights(true)`](AsyncProcessPoolBuilder::insights).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// async fn echo(x: u8) -> u8 {
    ///     x
    /// }
    ///
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(1).processes().insights(true).build()?;
    /// pool.map(echo, [1, 2, 3]).await?;
    /// pool.reset_insights();
    /// pool.map(echo, [4]).await?;
    /// assert_eq!(pool.insights().map(|i| i.items()), Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn reset_insights(&self) {
        if let Some(recorder) = self.workers.recorder() {
            recorder.reset();
        }
    }

    /// Runs `f` on every item in the worker processes; results in input order.
    ///
    /// `f` is a function pointer returning a future, `fn(T) -> Fut`: an `async fn` item, a
    /// closure without captures (`|x: u32| async move { .. }`), or a `fn` pointer (see
    /// [`ProcessPool`](crate::ProcessPool#functions-items-results)).
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item: its panic (message and backtrace
    /// text), its timeout, or the crash of the worker process that ran it.
    ///
    /// ```
    /// use twat_mp::{AsyncMultiPool, ErrorKind};
    ///
    /// async fn checked_half(x: u32) -> u32 {
    ///     assert!(x % 2 == 0, "{x} is odd");
    ///     x / 2
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// assert_eq!(pool.map(checked_half, [2, 4]).await?, [1, 2]);
    /// let err = pool.map(checked_half, [2, 3, 4, 5]).await.unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert!(matches!(err.kind(), ErrorKind::Panicked { message } if message == "3 is odd"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn map<T, R, Fut, I>(
        &self,
        f: fn(T) -> Fut,
        items: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<T, R, Fut, I>
    where
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
    {
        let run = self.run_map::<_, _, Total, NoError, _>(f, items, None);
        async move { run.await.map_err(ItemFailure::into_infallible_worker_error) }
    }

    /// Applies an async function of several arguments to every tuple of arguments, in
    /// the worker processes, as Python's `starmap`; results in input order. The function
    /// is a closure without captures or a function pointer of as many parameters as the
    /// tuples have fields: an `async fn` item of several parameters is made one first,
    /// `let power: fn(u64, u32) -> _ = power;` (see [`StarArgs`]).
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use twat_mp::AsyncMultiPool;
    ///
    /// async fn power(base: u64, exponent: u32) -> u64 {
    ///     base.pow(exponent)
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// let power: fn(u64, u32) -> _ = power;
    /// let powers = pool.starmap(power, vec![(2, 10), (3, 3)]).await?;
    /// assert_eq!(powers, [1024, 27]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn starmap<Args, Fut, R, I>(
        &self,
        f: <Args as StarArgs<Fut>>::Fn,
        tuples: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<Args, Fut, R, I>
    where
        Args: StarArgs<Fut> + CrossProcess,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = Args>,
        R: CrossProcess,
    {
        let run = self.run_map::<_, _, Total, NoError, _>(Spread::new(f), tuples, None);
        async move { run.await.map_err(ItemFailure::into_infallible_worker_error) }
    }

    /// Like [`map`](Self::map) for a function that returns `Result`: the first `Err` (by
    /// index) comes back as a [`WorkerError`] of kind [`ErrorKind::Failed`] whose source
    /// is the function's own error, made again in this process as a value of its type
    /// ([`WorkerError::downcast`] takes it), as [`ProcessPool::try_map`](crate::ProcessPool::try_map)
    /// does. The error type must be able to cross back ([`CrossProcessError`]).
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use std::io;
    /// use twat_mp::AsyncMultiPool;
    ///
    /// async fn size(path: String) -> io::Result<u64> {
    ///     Ok(std::fs::metadata(path)?.len())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder().nodes(1).processes().build()?;
    /// let err = pool.try_map(size, ["/".into(), "/no/such/file".into()]).await.unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert_eq!(err.downcast::<io::Error>().unwrap().kind(), io::ErrorKind::NotFound);
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_map<T, R, E, Via, Fut, I>(
        &self,
        f: fn(T) -> Fut,
        items: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<T, R, E, Via, Fut, I>
    where
        Fut: Future<Output = Result<R, E>> + 'static,
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
        E: CrossProcessError<Via> + Into<BoxError>,
        Via: 'static,
    {
        let run = self.run_map::<_, _, Partial, AsValue<Via>, _>(f, items, None);
        async move { run.await.map_err(ItemFailure::into_worker_error) }
    }

    /// Runs `f` on one item in a worker process.
    ///
    /// # Errors
    /// A [`WorkerError`] (index 0) when the item fails.
    ///
    /// ```
    /// async fn shout(text: String) -> String {
    ///     text.to_uppercase()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(1).processes().build()?;
    /// assert_eq!(pool.apply(shout, "hey".to_owned()).await?, "HEY");
    /// # Ok(())
    /// # }
    /// ```
    pub fn apply<T, R, Fut>(
        &self,
        f: fn(T) -> Fut,
        item: T,
    ) -> impl Future<Output = Result<R, WorkerError>> + Send + use<T, R, Fut>
    where
        Fut: Future<Output = R> + 'static,
        T: CrossProcess,
        R: CrossProcess,
    {
        let run = self.map(f, std::iter::once(item));
        async move {
            run.await?
                .pop()
                .ok_or_else(|| WorkerError::new(0, ErrorKind::Cancelled))
        }
    }

    /// Runs `f` on every item lazily and yields the results in input order, as a
    /// [`Stream`](futures_core::Stream). Items are spread over every worker process from
    /// the first; at most twice `nodes × concurrency` are pulled
    /// ahead of the consumer, so an endless input runs in bounded memory.
    ///
    /// ```
    /// async fn cube(x: u64) -> u64 {
    ///     x * x * x
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).concurrency(8).processes().build()?;
    /// let mut cubes = pool.imap(cube, 1..);
    /// let mut first = Vec::new();
    /// while first.len() < 3 {
    ///     first.push(cubes.next().await.unwrap()?);
    /// }
    /// assert_eq!(first, [1, 8, 27]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn imap<T, R, Fut, I>(&self, f: fn(T) -> Fut, items: I) -> ProcessImapStream<R>
    where
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: CrossProcess,
        R: CrossProcess,
    {
        ProcessImapStream::new(self.lazy(f, items, true))
    }

    /// Like [`imap`](Self::imap), in completion order: each result as soon as its task
    /// is done.
    ///
    /// ```
    /// async fn twice(x: u64) -> u64 {
    ///     2 * x
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// let mut all = Vec::new();
    /// let mut doubled = pool.uimap(twice, 0..10);
    /// while let Some(x) = doubled.next().await {
    ///     all.push(x?);
    /// }
    /// all.sort();
    /// assert_eq!(all, (0..10).map(|x| 2 * x).collect::<Vec<_>>());
    /// # Ok(())
    /// # }
    /// ```
    pub fn uimap<T, R, Fut, I>(&self, f: fn(T) -> Fut, items: I) -> ProcessUimapStream<R>
    where
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: CrossProcess,
        R: CrossProcess,
    {
        ProcessUimapStream::new(self.lazy(f, items, false))
    }

    fn lazy<T, R, Fut, I>(
        &self,
        f: fn(T) -> Fut,
        items: I,
        ordered: bool,
    ) -> SessionCall<R, Infallible>
    where
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: CrossProcess,
        R: CrossProcess,
    {
        self.call::<_, _, Total, NoError, _>(f, items.into_iter(), None, ordered, None)
    }

    /// Like [`map`](Self::map), with a state that each worker process makes once per
    /// call, for the tasks it runs of that call: a client, a connection pool, a cache.
    ///
    /// What runs where: the call keeps a *session* on up to one worker process per node,
    /// and each worker process that serves the call holds one state for it. `init` runs
    /// **in the worker process**, at most once per worker per call, before the first
    /// task it runs of the call; `f` runs in that worker for each of its items, with
    /// `&mut S`, and returns the item's future, which then runs as a task of the worker's
    /// runtime. The tasks of one worker run at once, so `f` takes what the future needs
    /// from the state (a clone of a client handle, a copy of a setting) and the future is
    /// `'static`: it cannot borrow the state (a closure returning an `async move` block,
    /// or a named `fn` whose return type says so: `-> impl Future<Output = R> + use<>`;
    /// an `async fn` taking `&mut S` does not fit, since its future borrows the state).
    /// The state never crosses (it needs no serde), and is dropped in the worker when the
    /// call ends. A worker that dies (or is replaced after its
    /// [`maxtasksperchild`](AsyncProcessPoolBuilder::maxtasksperchild)) takes its state
    /// with it; the worker that replaces it runs `init` again. A panic in `init` fails,
    /// in each session on that worker, one waiting item with
    /// [`ErrorKind::InitPanicked`](crate::ErrorKind::InitPanicked) (as on every pool), and
    /// `init` does not run again there for the call: an `init` that always panics fails
    /// every item, and no worker dies.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use twat_mp::AsyncMultiPool;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// // Each worker's session makes its greeting once; each task takes a copy.
    /// let greetings = pool
    ///     .map_init(
    ///         || String::from("hello"),
    ///         |greeting: &mut String, name: String| {
    ///             let greeting = greeting.clone();
    ///             async move { format!("{greeting}, {name}") }
    ///         },
    ///         ["ann", "bob"].map(String::from),
    ///     )
    ///     .await?;
    /// assert_eq!(greetings, ["hello, ann", "hello, bob"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_init<S, T, R, Fut, I>(
        &self,
        init: fn() -> S,
        f: fn(&mut S, T) -> Fut,
        items: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<S, T, R, Fut, I>
    where
        S: 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
    {
        let state = Some(StateSpec::init(init));
        let run = self.run_map_in_state::<_, _, Total, NoError, _>(StateFn(f), items, None, state);
        async move { run.await.map_err(ItemFailure::into_infallible_worker_error) }
    }

    /// [`imap`](Self::imap) with a state per worker process, made and kept as for
    /// [`map_init`](Self::map_init).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// let mut sums = pool.imap_init(
    ///     || 10_u64,
    ///     |base: &mut u64, n: u64| {
    ///         let base = *base;
    ///         async move { base + n }
    ///     },
    ///     0..,
    /// );
    /// let mut first = Vec::new();
    /// while first.len() < 3 {
    ///     first.push(sums.next().await.unwrap()?);
    /// }
    /// assert_eq!(first, [10, 11, 12]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn imap_init<S, T, R, Fut, I>(
        &self,
        init: fn() -> S,
        f: fn(&mut S, T) -> Fut,
        items: I,
    ) -> ProcessImapStream<R>
    where
        S: 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: CrossProcess,
        R: CrossProcess,
    {
        let state = Some(StateSpec::init(init));
        let call =
            self.call::<_, _, Total, NoError, _>(StateFn(f), items.into_iter(), None, true, state);
        ProcessImapStream::new(call)
    }

    /// [`uimap`](Self::uimap) with a state per worker process, made and kept as for
    /// [`map_init`](Self::map_init).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// let mut products = pool.uimap_init(
    ///     || 2_u64,
    ///     |factor: &mut u64, n: u64| {
    ///         let factor = *factor;
    ///         async move { factor * n }
    ///     },
    ///     [1, 2, 3],
    /// );
    /// let mut doubled = Vec::new();
    /// while let Some(product) = products.next().await {
    ///     doubled.push(product?);
    /// }
    /// doubled.sort();
    /// assert_eq!(doubled, [2, 4, 6]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn uimap_init<S, T, R, Fut, I>(
        &self,
        init: fn() -> S,
        f: fn(&mut S, T) -> Fut,
        items: I,
    ) -> ProcessUimapStream<R>
    where
        S: 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: CrossProcess,
        R: CrossProcess,
    {
        let state = Some(StateSpec::init(init));
        let call =
            self.call::<_, _, Total, NoError, _>(StateFn(f), items.into_iter(), None, false, state);
        ProcessUimapStream::new(call)
    }

    /// Like [`map`](Self::map), with read-only data that every item needs: `f` gets
    /// `&shared` with each item and returns its future (which takes what it needs of
    /// `shared`: it is `'static`).
    ///
    /// `shared` is serialized once per call, here, and crosses once to each worker
    /// process that serves the call (one per node, and one more for each worker that
    /// replaces one during the call), not once per item; it is decoded there once, before
    /// the worker's first task of the call, and dropped when the call ends.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item; when `shared` cannot be serialized,
    /// every item fails with [`ErrorKind::Transport`] saying so.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// let names = vec!["zero".to_owned(), "one".to_owned(), "two".to_owned()];
    /// let said = pool
    ///     .map_with(names, |names: &Vec<String>, n: usize| {
    ///         let name = names[n].clone();
    ///         async move { name }
    ///     }, [2, 0])
    ///     .await?;
    /// assert_eq!(said, ["two", "zero"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_with<S, T, R, Fut, I>(
        &self,
        shared: S,
        f: fn(&S, T) -> Fut,
        items: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<S, T, R, Fut, I>
    where
        S: CrossProcess,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
    {
        let f = SharedFn(f);
        let state = Some(StateSpec::shared(&shared, f));
        drop(shared);
        let run = self.run_map_in_state::<_, _, Total, NoError, _>(f, items, None, state);
        async move { run.await.map_err(ItemFailure::into_infallible_worker_error) }
    }

    /// What `map`, `try_map` and the attribute run, for the user's function `P` whose
    /// future's output `K` splits, its error crossing as `W` says: the items are gathered
    /// now. Returns as soon as the outcome is decided, and pulls no input after a failure.
    pub(crate) fn run_map<P, T, K, W, I>(
        &self,
        f: P,
        items: I,
        render: Option<Render<T>>,
    ) -> impl Future<Output = Result<Vec<K::Ok>, ItemFailure<W::Remote>>> + Send + use<P, T, K, W, I>
    where
        I: IntoIterator<Item = T>,
        P: Callee<T>,
        P::Output: Future + 'static,
        K: Split<<P::Output as Future>::Output>,
        K::Ok: CrossProcess,
        T: CrossProcess,
        W: ErrorWire<K::Err>,
    {
        self.run_map_in_state::<P, T, K, W, I>(f, items, render, None)
    }

    /// [`run_map`](Self::run_map) with a per-call state in the workers (`map_init`,
    /// `map_with`).
    fn run_map_in_state<P, T, K, W, I>(
        &self,
        f: P,
        items: I,
        render: Option<Render<T>>,
        state: StateSetup,
    ) -> impl Future<Output = Result<Vec<K::Ok>, ItemFailure<W::Remote>>> + Send + use<P, T, K, W, I>
    where
        I: IntoIterator<Item = T>,
        P: Callee<T>,
        P::Output: Future + 'static,
        K: Split<<P::Output as Future>::Output>,
        K::Ok: CrossProcess,
        T: CrossProcess,
        W: ErrorWire<K::Err>,
    {
        let items: Vec<T> = items.into_iter().collect();
        let mut call = self.call::<P, T, K, W, _>(f, items.into_iter(), render, false, state);
        async move {
            let mut gather = Gather::default();
            while let Some((index, outcome)) = call.next().await {
                gather.outcome(index, outcome);
                if gather.has_failed() {
                    call.stop_input();
                }
                if gather.is_decided() {
                    break;
                }
            }
            gather.finish()
        }
    }

    fn call<P, T, K, W, I>(
        &self,
        f: P,
        items: I,
        render: Option<Render<T>>,
        ordered: bool,
        state: StateSetup,
    ) -> SessionCall<K::Ok, W::Remote>
    where
        P: Callee<T>,
        P::Output: Future + 'static,
        K: Split<<P::Output as Future>::Output>,
        K::Ok: CrossProcess,
        I: Iterator<Item = T> + Send + 'static,
        T: CrossProcess,
        W: ErrorWire<K::Err>,
    {
        let runner = Sessions::<P, T, K, W>::new(f);
        let workers = Arc::clone(&self.workers);
        // Each session is a call of the underlying pool, and they all share the call's
        // state, if any: it is made in a worker before the first session there starts,
        // and dropped once this call ends.
        let state = workers.make_state(state);
        let open = move |start| workers.apipe_remote(runner, start, state.clone());
        let input = items.map(|item| {
            let mut bytes = Vec::new();
            wire::write_item_owned(item, &mut bytes)
                .map(|()| bytes)
                .map_err(|err| err.describe("the item"))
        });
        let render_bytes =
            move |bytes: &[u8]| -> Option<String> { render_input::<T>(bytes, render) };
        let transport = Transport {
            input: Box::new(input),
            open: Box::new(open),
            render: Box::new(render_bytes),
            decode_answer: Answer::<K::Ok>::read,
            decode_error: W::decode,
            closed: Arc::clone(&self.closed),
        };
        let limits = Limits {
            nodes: self.nodes,
            concurrency: self.concurrency,
            maxtasksperchild: self.maxtasksperchild,
            timeout: self.timeout,
            debug: self.debug,
            retries: self.retries,
        };
        SessionCall::new(transport, limits, ordered)
            .with_insights(self.workers.recorder())
            .with_progress(self.progress)
    }
}

impl fmt::Debug for AsyncProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncProcessPool")
            .field("nodes", &self.nodes)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("maxtasksperchild", &self.maxtasksperchild)
            .field("debug", &self.debug)
            .field("retries", &self.retries)
            .finish()
    }
}

impl Drop for AsyncProcessPool {
    fn drop(&mut self) {
        // Calls still running hold the worker processes too: stop what they run, so that
        // they end (their items cancelled) and nothing waits for tasks that never finish.
        if Arc::strong_count(&self.workers) > 1 {
            self.closed.store(true, Ordering::Relaxed);
            self.workers.terminate();
        }
        event!(self.debug, nodes = self.nodes, "async process pool stopped");
    }
}

/// The process pool under an [`AsyncProcessPool`]: each of its items is a session, which
/// keeps its worker for one call. The per-task timeout runs inside the workers; the pool
/// gets an endless timeout only so that it treats a session whose worker dies as the one
/// item it is (the call knows which of the session's tasks to blame) and never runs it
/// again (it has no `retries`: the call retries the tasks itself). The pool's
/// `initializer` is the process pool's.
fn worker_processes(
    nodes: usize,
    debug: bool,
    insights: bool,
    initializer: Option<fn()>,
) -> Result<ProcessPool, BuildError> {
    let builder = ProcessPool::builder()
        .nodes(nodes)
        .chunksize(1)
        .timeout(Duration::MAX)
        .debug(debug)
        .insights(insights);
    match initializer {
        Some(initializer) => builder.initializer(initializer),
        None => builder,
    }
    // Its items are sessions: the sessions time their tasks themselves.
    .build_timing(false)
}
