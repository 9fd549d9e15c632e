//! [`ProcessPool`]: items on N worker processes of the same executable, over sockets.
//!
//! | module | what |
//! |---|---|
//! | `wire` | frames, the handshake, and the checks that refuse what a worker does not understand |
//! | `remote` | what crosses: [`CrossProcess`], [`CrossProcessError`], functions as adapters around a function pointer, result records |
//! | `worker` | the worker process: entered before `main`, serves jobs |
//! | `slot` | the parent side of each worker: start, send, receive, replace, reap |
//! | `dispatch` | what the slot threads and the calls share: the queue of batches, and what stops a slot's worker (checked with loom, see `model_checks`) |
//! | `call` | one call on the caller's side: batching, windows, decoding, ordering; the lazy calls' input comes from the engine's `Feed` |
//! | `attribute` | what `#[pmap(process)]` and friends call |
//! | `unsafe_code` | every `unsafe` of the crate (the only module where the compiler allows it), a leaf: pre-`main` entry, functions by their place in the code, two system calls, the steps of std's start-up a worker takes itself (SIGPIPE, the stack overflow handler) |

pub(crate) mod attribute;
mod call;
pub(crate) mod dispatch;
#[cfg(test)]
mod frame_fuzz;
pub(crate) mod remote;
pub(crate) mod slot;
pub(crate) mod unsafe_code;
pub(crate) mod wire;
pub(crate) mod worker;

use std::convert::Infallible;
use std::fmt;
use std::iter::FusedIterator;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::async_result::{AsyncResult, Completer, async_result};
use crate::debug::event;
use crate::engine::feed::LazyInput;
use crate::engine::insights::{Insights, Recorder};
use crate::engine::item::{ItemFailure, cancelled};
use crate::engine::progress::progress_setter;
use crate::engine::registry::FromSettings;
use crate::engine::render::Render;
use crate::engine::settings::Settings;
use crate::error::{BoxError, BuildError, ErrorKind, WorkerError};

use call::{LazyCall, run_map, run_map_stoppable, run_map_until};
pub(crate) use call::{MadeState, StateSetup};
use remote::{
    AsValue, Fallible, Plain, RemoteFn, Spread, Starred, StateSpec, WithShared, WithState,
};
pub(crate) use slot::Stopper;
use slot::{Cancel, Slots};
use unsafe_code::{SharedFn, StateFn};

pub use remote::{CrossProcess, CrossProcessError, RemoteError, StarArgs, via};

/// A pool of worker processes, for isolation: a crash, abort, leak or hang in one item
/// cannot take the program down, and a timeout can really stop an item.
///
/// Use it where threads are not enough — code that may segfault or abort (native
/// libraries, parsers of untrusted input), that leaks, that can hang, or that is not
/// thread-safe. Otherwise prefer [`ThreadPool`](crate::ThreadPool): Rust threads share no
/// interpreter lock, so they are faster for everything else.
///
/// ```
/// use twat_mp::ProcessPool;
///
/// let pool = ProcessPool::with_nodes(2)?;
/// let squares = pool.map(|x: u64| x * x, 0..10)?;
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Setup: none
///
/// The workers are this same executable started again (`/proc/self/exe`, so even a binary
/// rebuilt on disk meanwhile is not mixed up) with an environment marker. twat-mp places a
/// hook in the executable's `.init_array`, which the C runtime runs before `main`: in a
/// worker it serves the pool and exits, so the worker never reaches `main`. Hence:
///
/// - no line in `main` is needed, and it works the same in `cargo test` integration
///   tests, unit tests and doctests: the worker of a test binary runs no tests;
/// - work done in `main` (argument parsing, logging set-up) does not happen in workers,
///   and neither do other libraries' `main`-time initialisations; code that runs before
///   `main` in other crates (their own `.init_array` hooks) does;
/// - the workers start lazily, one per node as the work needs them, and are reused by
///   every later call; a worker whose item killed it is replaced by a new one.
///
/// `ProcessPool` is available on Linux.
///
/// # What a worker has of `main`'s set-up
///
/// A worker takes the steps of std's start-up that code in a thread relies on, since it
/// never reaches the `main` that would take them:
///
/// - SIGPIPE is ignored, so writing to a closed pipe or socket fails with
///   [`std::io::ErrorKind::BrokenPipe`], as in a thread, instead of killing the worker;
/// - a stack overflow of an item prints std's `thread '…' has overflowed its stack`
///   message and aborts the worker, and the item fails with [`ErrorKind::Crashed`] whose
///   status says that it overflowed its stack;
/// - its standard output and error are the program's; its standard input reads nothing.
///
/// What it does not have: anything `main` itself does (parsing arguments, setting up
/// logging, a panic hook, a working directory or environment changed after the worker
/// started); the program's arguments (`std::env::args()` in a worker yields only
/// `twat-mp-worker`); a name for the thread running the items (std calls it `<unnamed>`
/// in panic messages, where `main` would be named `main`); and the overflow report for
/// threads that an item spawns itself (std gives those an alternate signal stack only
/// when its own start-up ran): a stack overflow there is a plain
/// SIGSEGV, still costing only that item.
///
/// # Nesting
///
/// Code running in a worker may use a process pool of its own (a `ProcessPool`, an
/// `AsyncProcessPool` with feature `aio`, a `#[pmap(process)]` function): its
/// workers are that worker's children, and die with it. They may not nest further:
/// building a process pool in a worker of a worker fails with [`BuildError::Nested`], so
/// that a function that builds a pool and maps itself cannot fork without bound.
///
/// # Limits
///
/// - One item, and one result, may take at most [`MAX_ITEM_BYTES`](Self::MAX_ITEM_BYTES)
///   (1 GiB) once serialized. A larger one fails alone with [`ErrorKind::Transport`]
///   naming the limit, before anything of it is sent; send large data in pieces, or
///   send where to find it.
/// - A pool has at most [`MAX_NODES`](crate::MAX_NODES) nodes (each is a thread here and
///   a process in its worker); more is refused with [`BuildError::TooLarge`].
///
/// # Functions, items, results
///
/// Rust cannot send a closure to another process, so the methods take the function as a
/// **function pointer**, `fn(T) -> R`: a `fn` item, a closure without captures (both
/// become one where they are passed), or a `fn` pointer chosen at run time, from a table
/// for instance. The worker runs the same executable, so it needs only where that code
/// is: the pool sends the place of the function, and of a small entry point for its
/// types, under a keyed tag only this pool can make, and the worker refuses any job that
/// fails the checks (unknown function, malformed or truncated frame, type mismatch, other
/// executable) with a clear error instead of running it.
///
/// ```
/// let pool = twat_mp::ProcessPool::with_nodes(1)?;
/// let table: [fn(u64) -> u64; 2] = [|x| x + 1, |x| x * x];
/// let pick = table[std::env::args().count() % 2];
/// assert_eq!(pool.map(pick, [3])?, [pick(3)]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A closure that captures is a type error at the call (`closures can only be coerced to
/// `fn` types if they do not capture any variables`): send the data as items instead.
///
/// ```compile_fail,E0308
/// let pool = twat_mp::ProcessPool::with_nodes(1).unwrap();
/// let offset = 10_u64;
/// let _ = pool.map(move |x: u64| x + offset, 0..4); // captures `offset`
/// ```
///
/// The function must be linked into the executable itself: a function pointer into a
/// shared library (a `dylib`) cannot be named in a worker, and each item of such a call
/// fails with [`ErrorKind::Transport`] saying so.
///
/// Items and results cross as [`serde`] values (postcard): their types must be
/// [`CrossProcess`] (derive `Serialize` and `Deserialize`); send data as items rather than
/// captures. A function's own error crosses back as a value of its own type when it is
/// [`CrossProcessError`]: a serde type, [`std::io::Error`] (with its kind and message),
/// `Box<dyn Error + Send + Sync>` or [`anyhow::Error`] (as their messages). Items travel
/// in batches whose size follows the measured cost of an item (aiming at about 2 ms of
/// work per batch), or a fixed [`chunksize`](ProcessPoolBuilder::chunksize).
///
/// # Large byte items
///
/// serde writes and reads a `Vec<u8>` (or `[u8; N]`, or `&[u8]`) one byte at a time, as a
/// sequence of numbers. For large byte buffers, say so: wrap them in
/// `serde_bytes::ByteBuf`, mark a field `#[serde(with = "serde_bytes")]`, or use
/// `bytes::Bytes` (its `serde` feature); they cross as one block. A 64 MiB item went to a
/// worker 2.2× as fast as a `ByteBuf` as it did as a `Vec<u8>` on a busy 2-core machine,
/// where the socket itself was then the limit (`cargo bench --bench process_pool --
/// process_64mib`; BENCHMARKS.md).
///
/// ```
/// use serde_bytes::ByteBuf;
///
/// fn checksum(data: ByteBuf) -> u64 {
///     data.iter().map(|&b| u64::from(b)).sum()
/// }
///
/// let pool = twat_mp::ProcessPool::with_nodes(1)?;
/// let data = ByteBuf::from(vec![1_u8; 1 << 20]);
/// assert_eq!(pool.apply(checksum, data)?, 1 << 20);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Failures
///
/// Every failure is a [`WorkerError`] naming its item, and costs exactly that item:
///
/// - a panic comes back as [`ErrorKind::Panicked`] with its message and backtrace text;
/// - a worker that dies (abort, segfault, `kill -9`, out of memory) gives
///   [`ErrorKind::Crashed`] with its exit status or signal; a new worker replaces it and
///   every other item of the call still completes. To find the item that killed a
///   worker, the unanswered rest of its batch runs again on a fresh worker, each result
///   sent as soon as it is ready: items of that batch that had finished but whose results
///   were lost with the worker can thus run twice (results of slow items are sent within
///   about a millisecond, so this is rare for items worth isolating);
/// - an item that runs past the [`timeout`](ProcessPoolBuilder::timeout) is stopped by
///   killing its worker, and gives [`ErrorKind::TimedOut`] at once;
/// - with [`retries(n)`](ProcessPoolBuilder::retries), an item whose worker crashed or
///   that timed out runs again on a fresh worker, up to `n` more times, before it fails
///   so ([`WorkerError::attempts`] counts its runs; the run of a whole batch during which
///   its worker died, before the item was found, is not counted); panics and returned
///   errors are not retried;
/// - once a [`map`](Self::map) is decided by a failure, its items still running are
///   stopped the same way (as are those of a lazy map that is dropped, and of an
///   [`amap`](Self::amap) or [`apipe`](Self::apipe) whose [`AsyncResult`] is dropped
///   before its result was received), so that the pool is at once free and its drop
///   waits for none of them.
///
/// # What runs where
///
/// The items, the function and the [`initializer`](ProcessPoolBuilder::initializer) run
/// in the worker processes, each on the worker's main thread, one item at a time; the
/// caller's process only sends items and receives results (a thread per node does that
/// there). The initializer runs once in each worker process when it starts, before its
/// first item, and again in each worker that replaces one; state it sets up (a
/// `static`, a `OnceLock`, a `thread_local!`) lives in that worker process and is seen by
/// every item that worker runs, in every call, until the worker is replaced.
///
/// # Lifecycle
///
/// The pool is `Send + Sync`. On `Drop` it waits for its outstanding work
/// ([`amap`](Self::amap), [`apipe`](Self::apipe)) whose [`AsyncResult`] is still held
/// (a dropped one stopped its call already), closes each worker's input and reaps it;
/// dropped while the caller panics, it kills its workers at once instead. Workers die
/// with their parent (`PR_SET_PDEATHSIG`, a `SIGKILL` that no handler can catch), so none
/// outlives a parent that is killed (`SIGKILL` too), interrupted (Ctrl-C) or terminated
/// (`SIGTERM`), and none is left a zombie: the slot that started a worker always waits
/// for it.
pub struct ProcessPool {
    shared: Arc<Slots>,
    slots: Vec<JoinHandle<()>>,
    background: Mutex<Vec<JoinHandle<()>>>,
}

/// Settings for a [`ProcessPool`]; made by [`ProcessPool::builder`].
///
/// ```
/// use std::time::Duration;
/// use twat_mp::ProcessPool;
///
/// let pool = ProcessPool::builder()
///     .nodes(2)
///     .chunksize(64)
///     .timeout(Duration::from_secs(30))
///     .build()?;
/// assert_eq!(pool.nodes(), 2);
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `.build()`"]
pub struct ProcessPoolBuilder {
    settings: Settings,
    initializer: Option<fn()>,
}

impl ProcessPoolBuilder {
    /// The number of worker processes; the default is the number of CPUs this process may
    /// use (cgroup quotas and affinity included). At most [`MAX_NODES`](crate::MAX_NODES).
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::builder().nodes(2).build()?;
    /// assert_eq!(pool.nodes(), 2);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn nodes(mut self, nodes: usize) -> Self {
        self.settings.nodes = Some(nodes);
        self
    }

    /// A fixed number of items per message to a worker. By default the size follows the
    /// measured cost of an item: single items for slow functions, tens of thousands for
    /// trivial ones. Short messages do not wait for a round trip each: a worker gets its
    /// next few before it has answered the current one (while they hold under about 2 ms
    /// of work), and a crash or a timeout still costs only its item.
    ///
    /// ```
    /// // One item per message: each result comes back as soon as it is ready.
    /// let pool = twat_mp::ProcessPool::builder().nodes(2).chunksize(1).build()?;
    /// assert_eq!(pool.map(|x: u64| x + 1, [1, 2, 3])?, [2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.settings.chunksize = Some(chunksize);
        self
    }

    /// The longest one item may run: past it, its worker is killed (and replaced) and the
    /// item fails with [`ErrorKind::TimedOut`]. With a timeout each result is sent as soon
    /// as it is ready, so that the clock runs per item; that costs about a microsecond per
    /// item.
    ///
    /// ```
    /// use std::time::Duration;
    /// use twat_mp::{ErrorKind, ProcessPool};
    ///
    /// /// Spins forever on `0`: a hang that only a killed process can stop.
    /// fn spin_on_zero(x: u64) -> u64 {
    ///     let mut spins = 0_u64;
    ///     while x == 0 {
    ///         spins = std::hint::black_box(spins.wrapping_add(1));
    ///     }
    ///     x
    /// }
    ///
    /// let pool = ProcessPool::builder().nodes(1).timeout(Duration::from_millis(200)).build()?;
    /// let err = pool.map(spin_on_zero, [1, 0, 2]).unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert!(matches!(err.kind(), ErrorKind::TimedOut { .. }));
    /// // The worker was replaced: the pool goes on.
    /// assert_eq!(pool.map(spin_on_zero, [3])?, [3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = Some(timeout);
        self
    }

    /// Keeps what the pool does for [`ProcessPool::insights`]: per worker process the
    /// items it ran, its busy and idle time, its start-up time and restarts, and the
    /// slowest items. Off by default: each worker then reads the clock once per item and
    /// sends 8 more bytes per result. Measured with `benches/insights.rs` on a 2-core VM:
    /// `map` of 1 M trivial items took 4.5× as long with it (about 200 ns more per item
    /// and worker); items of 10 µs of work or more pay a few percent at most.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|x: u32| x + 1, 0..10)?;
    /// assert_eq!(pool.insights().map(|i| i.items()), Some(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insights(mut self, insights: bool) -> Self {
        self.settings.insights = insights;
        self
    }

    /// Reports this pool's events (worker start, exit, replacement, timeouts) even when
    /// the global debug mode is off (see [`set_debug_mode`](crate::set_debug_mode)).
    ///
    /// ```
    /// // Reports the workers' starts and exits and each failed item through `tracing`.
    /// let pool = twat_mp::ProcessPool::builder().nodes(1).debug(true).build()?;
    /// assert_eq!(pool.map(|x: u32| x * 2, [1, 2])?, [2, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn debug(mut self, debug: bool) -> Self {
        self.settings.debug = debug;
        self
    }

    /// A function each worker process runs once when it starts, before its first item,
    /// as Python's `initializer`: to fill a [`OnceLock`](std::sync::OnceLock) or a
    /// `static` the items read, set up logging, load a model. It runs in every worker,
    /// the ones that replace a worker that crashed or was killed (a timeout, a stopped
    /// call) too, and never in this process. Like the pool's functions it captures
    /// nothing (a `fn` item, or a closure without captures): it crosses as a place in
    /// the code (see [Functions, items, results](ProcessPool#functions-items-results));
    /// what it needs, it reads where it is (a file, an environment variable the worker
    /// inherited).
    ///
    /// Workers start lazily, so the initializer runs when work first needs each one, not
    /// in [`build`](Self::build). It does not count against the [`timeout`](Self::timeout)
    /// of the first item, but a worker has a minute to start, its initializer included:
    /// a set-up that may take longer belongs in the items, behind a
    /// [`OnceLock::get_or_init`](std::sync::OnceLock::get_or_init).
    ///
    /// If it fails — it panics, its process dies, or it runs past that limit — the worker
    /// runs nothing, and the pool is broken for good, since a new worker would fail the
    /// same way: every item from then on fails at once with
    /// [`ErrorKind::InitializerFailed`] saying how (`item 0 on worker 1 was not run: the
    /// initializer of its worker process panicked at src/main.rs:9:5: no config file`),
    /// without starting any worker again.
    ///
    /// ```
    /// use std::sync::OnceLock;
    /// use twat_mp::ProcessPool;
    ///
    /// static GREETING: OnceLock<String> = OnceLock::new();
    ///
    /// fn set_up() {
    ///     GREETING.set(format!("hello from {}", std::process::id())).unwrap();
    /// }
    ///
    /// fn greet(name: String) -> String {
    ///     let greeting = GREETING.get().expect("the initializer ran");
    ///     format!("{greeting}, {name}")
    /// }
    ///
    /// let pool = ProcessPool::builder().nodes(2).initializer(set_up).build()?;
    /// let greetings = pool.map(greet, ["ann".to_owned(), "bob".to_owned()])?;
    /// assert!(greetings[0].starts_with("hello from ") && greetings[0].ends_with(", ann"));
    /// // It never ran here.
    /// assert!(GREETING.get().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A panicking initializer fails the items, not the program:
    ///
    /// ```
    /// use twat_mp::{ErrorKind, ProcessPool};
    ///
    /// let pool = ProcessPool::builder()
    ///     .nodes(1)
    ///     .initializer(|| panic!("no config file"))
    ///     .build()?;
    /// let err = pool.map(|x: u32| x + 1, [1, 2]).unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::InitializerFailed { reason } if reason.ends_with(": no config file")));
    /// assert_eq!(err.attempts(), 0);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn initializer(mut self, initializer: fn()) -> Self {
        self.initializer = Some(initializer);
        self
    }

    /// Runs an item again, up to `retries` more times, when its worker process crashed
    /// (abort, segfault, out of memory, `kill -9`) or was killed because the item ran past
    /// the [`timeout`](Self::timeout): each time on a fresh worker (the one that replaces
    /// the lost worker), before the rest of its batch. An item that succeeds on a retry
    /// is a success; one that fails every run fails with its last failure, and
    /// [`WorkerError::attempts`] says how many runs it had (`retries + 1`). No retries by
    /// default.
    ///
    /// Panics and returned errors are *not* retried: the function gave its answer for
    /// that item, and it is the same on every run in the common case. Retry only what is
    /// worth running twice: an item runs again from its start, so its side effects (a
    /// file written, a request sent) may happen more than once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use twat_mp::{ErrorKind, ProcessPool};
    ///
    /// fn hang_on_two(x: u64) -> u64 {
    ///     if x == 2 {
    ///         std::thread::sleep(Duration::from_secs(60));
    ///     }
    ///     x
    /// }
    ///
    /// let pool = ProcessPool::builder()
    ///     .nodes(2)
    ///     .timeout(Duration::from_millis(200))
    ///     .retries(1)
    ///     .build()?;
    /// let err = pool.map(hang_on_two, 0..4).unwrap_err();
    /// assert_eq!((err.index(), err.attempts()), (2, 2));
    /// assert!(matches!(err.kind(), ErrorKind::TimedOut { .. }));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn retries(mut self, retries: u32) -> Self {
        self.settings.retries = retries;
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
        /// The parent counts the results as each batch of them comes back from a worker
        /// (the worker processes draw nothing), so the bar moves a batch at a time
        /// (batches take about 2 ms of work, or a fixed
        /// [`chunksize`](Self::chunksize)). A call of one item (`apply`, `apipe`) draws
        /// no bar.
        ///
        /// ```
        /// let pool = twat_mp::ProcessPool::builder().nodes(2).progress(true).build()?;
        /// let squares = pool.map(|x: u64| x * x, 0..1_000)?;
        /// assert_eq!(squares[999], 998_001);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
    }

    /// Makes the pool. Its worker processes start later, when work first needs them.
    ///
    /// # Errors
    /// [`BuildError::NoNodes`] for `nodes(0)`, [`BuildError::Zero`] for `chunksize(0)` or a
    /// zero `timeout`, [`BuildError::TooLarge`] for more than [`MAX_NODES`](crate::MAX_NODES)
    /// nodes, [`BuildError::Nested`] in a worker of a worker (see
    /// [Nesting](ProcessPool#nesting)), [`BuildError::Spawn`] when the system refuses a
    /// thread.
    ///
    /// ```
    /// use twat_mp::{BuildError, ProcessPool};
    ///
    /// let pool = ProcessPool::builder().nodes(2).build()?;
    /// assert_eq!(pool.nodes(), 2);
    /// assert!(matches!(ProcessPool::builder().nodes(0).build(), Err(BuildError::NoNodes)));
    /// # Ok::<(), BuildError>(())
    /// ```
    pub fn build(self) -> Result<ProcessPool, BuildError> {
        self.build_timing(true)
    }

    /// [`build`](Self::build); with insights, `time_items` says whether items are timed
    /// (not for an `AsyncProcessPool`'s sessions, which time their own tasks).
    pub(crate) fn build_timing(self, time_items: bool) -> Result<ProcessPool, BuildError> {
        let checked = self.settings.check()?;
        worker::may_start_workers()?;
        let (nodes, debug, timeout) = (checked.nodes, checked.debug, checked.timeout);
        let recorder = checked
            .insights
            .then(|| Arc::new(Recorder::new(nodes, true)));
        let mut slots = Slots::new(nodes, checked.chunksize, timeout, debug)
            .with_insights(recorder, time_items);
        slots.retries = checked.retries;
        slots.progress = checked.progress;
        slots.initializer = self.initializer.map(|initializer| {
            remote::Initializer(initializer)
                .offset()
                .map_err(|err| format!("the initializer cannot be sent to a worker process: {err}"))
        });
        let shared = Arc::new(slots);
        let mut slots = Vec::with_capacity(nodes);
        for index in 0..nodes {
            let slot_shared = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("twat-mp-process-{index}"))
                .spawn(move || slot::slot_main(slot_shared, index));
            match spawned {
                Ok(handle) => slots.push(handle),
                Err(err) => {
                    shared.terminate();
                    for handle in slots {
                        let _ = handle.join();
                    }
                    return Err(BuildError::Spawn(err));
                }
            }
        }
        match timeout {
            Some(timeout) => event!(debug, nodes, ?timeout, "process pool started"),
            None => event!(debug, nodes, "process pool started"),
        }
        Ok(ProcessPool {
            shared,
            slots,
            background: Mutex::new(Vec::new()),
        })
    }
}

impl FromSettings for ProcessPool {
    fn from_settings(settings: Settings) -> Result<Self, BuildError> {
        ProcessPoolBuilder {
            settings,
            initializer: None,
        }
        .build()
    }
}

impl ProcessPool {
    /// The most bytes one item, or one result, may take once serialized: 1 GiB. Encoding
    /// stops as soon as it passes the limit, before anything is sent, and that item alone
    /// fails with [`ErrorKind::Transport`] naming the limit; the pool goes on. Send larger
    /// data in pieces, or send where to find it (a path).
    ///
    /// ```
    /// assert_eq!(twat_mp::ProcessPool::MAX_ITEM_BYTES, 1 << 30);
    /// ```
    pub const MAX_ITEM_BYTES: usize = wire::MAX_ITEM;

    /// A pool with one worker process per usable CPU.
    ///
    /// # Errors
    /// [`BuildError::Spawn`] when the system refuses a thread.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::new()?;
    /// assert!(pool.nodes() >= 1);
    /// assert_eq!(pool.map(|x: u8| x + 1, [1, 2])?, [2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Result<Self, BuildError> {
        Self::builder().build()
    }

    /// A pool with `nodes` worker processes.
    ///
    /// # Errors
    /// [`BuildError::NoNodes`] for `0`; [`BuildError::TooLarge`] for more than
    /// [`MAX_NODES`](crate::MAX_NODES); [`BuildError::Spawn`] when the system refuses a
    /// thread.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::with_nodes(4)?;
    /// assert_eq!(pool.nodes(), 4);
    /// assert!(twat_mp::ProcessPool::with_nodes(0).is_err());
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn with_nodes(nodes: usize) -> Result<Self, BuildError> {
        Self::builder().nodes(nodes).build()
    }

    /// Settings beyond the number of processes: `chunksize`, `timeout`, `debug`,
    /// `initializer`, `retries`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = twat_mp::ProcessPool::builder()
    ///     .nodes(2)
    ///     .timeout(Duration::from_secs(10))
    ///     .retries(1)
    ///     .build()?;
    /// assert_eq!(pool.nodes(), 2);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::default()
    }

    /// The number of worker processes (started as work needs them).
    ///
    /// ```
    /// assert_eq!(twat_mp::ProcessPool::with_nodes(3)?.nodes(), 3);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn nodes(&self) -> usize {
        self.shared.nodes
    }

    /// Applies `f` to every item in the worker processes and returns the results in input
    /// order.
    ///
    /// `f` is a function pointer: a `fn` item, a closure without captures, or a `fn`
    /// pointer (see [Functions, items, results](Self#functions-items-results)).
    ///
    /// The input is pulled lazily, a batch at a time. If items fail, the one with the
    /// lowest index is reported as soon as every item below it has answered: input after
    /// a failure is not pulled any more, and items still running above it are stopped
    /// (their workers are killed, and replaced when work next needs them), so that the
    /// pool is at once free for other work.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item: a panic, a crash of its worker, a
    /// timeout.
    ///
    /// ```
    /// fn word_count(text: String) -> usize {
    ///     text.split_whitespace().count()
    /// }
    ///
    /// let pool = twat_mp::ProcessPool::with_nodes(2)?;
    /// let texts = vec!["a b c".to_owned(), "".to_owned(), "hello world".to_owned()];
    /// assert_eq!(pool.map(word_count, texts)?, [3, 0, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn map<T, R, I>(&self, f: fn(T) -> R, items: I) -> Result<Vec<R>, WorkerError>
    where
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
    {
        run_map(self.shared(), Plain::new(f), items, None, None)
            .map_err(ItemFailure::into_infallible_worker_error)
    }

    /// Like [`map`](Self::map) for a function that returns `Result`: the first `Err` (by
    /// index) comes back as a [`WorkerError`] of kind [`ErrorKind::Failed`] whose source
    /// is the function's own error, made again in this process as a value of its type
    /// ([`WorkerError::downcast`] takes it). The error type must be able to cross back
    /// ([`CrossProcessError`]: serde types, [`std::io::Error`], `Box<dyn Error + Send +
    /// Sync>`, [`anyhow::Error`]); for another one, map it to a type that can, or to its
    /// text (`.map_err(|e| e.to_string())`).
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use twat_mp::{ErrorKind, ProcessPool};
    ///
    /// fn parse(text: String) -> Result<u8, String> {
    ///     text.parse().map_err(|e| format!("{text:?}: {e}"))
    /// }
    ///
    /// let pool = ProcessPool::with_nodes(2)?;
    /// let err = pool.try_map(parse, ["1", "x", "3"].map(String::from)).unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert!(matches!(err.kind(), ErrorKind::Failed(e) if e.to_string() == "\"x\": invalid digit found in string"));
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
        let function = Fallible::<_, _, _, AsValue<Via>>::new(f);
        run_map(self.shared(), function, items, None, None).map_err(ItemFailure::into_worker_error)
    }

    /// Applies a function of several arguments to every tuple of arguments, as Python's
    /// `starmap`: a closure without captures, or a function pointer of as many parameters
    /// as the tuples have fields (a `fn` item of several parameters is cast to one,
    /// `power as fn(u64, u32) -> u64`; see [`StarArgs`]).
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::with_nodes(2)?;
    /// let powers = pool.starmap(|base: u64, exp: u32| base.pow(exp), vec![(2, 10), (3, 3)])?;
    /// assert_eq!(powers, [1024, 27]);
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
        let function = Starred::new(Spread::new(f));
        run_map(self.shared(), function, tuples, None, None)
            .map_err(ItemFailure::into_infallible_worker_error)
    }

    /// Applies `f` to every item lazily, yielding results in input order as they are
    /// ready.
    ///
    /// The input is pulled on a thread of its own, and only while few enough items are
    /// ahead of the consumer (about two rounds of batches, a round being two batches per
    /// worker, or 34 per worker for batches of 64 items or fewer, which a worker gets
    /// several of at once; without a `chunksize`, a batch of a lazy map holds at most
    /// 2,048 items and 64 KiB; an input that gives its items at once, such as a collection
    /// in memory or a range, may be read up to 128 items further), so an endless input
    /// runs in bounded memory, and a live input (a
    /// channel, a socket, the lines of a pipe) never holds back a result: each one is
    /// handed over as soon as it is its turn, even while the input waits for more; a
    /// batch short of full goes to an idle worker once the input has given nothing more
    /// for a millisecond. That is why the input must be [`LazyInput`]
    /// (`Send + 'static`): collect a borrowed input first, or use [`map`](Self::map). A
    /// failed item yields `Err` and the iteration goes on. A panic of the input itself
    /// resumes in the caller once every item before it has been handed over.
    ///
    /// Dropping the iterator cancels the batches not yet started, stops the items still
    /// running (their workers are killed, and replaced when work next needs them) and
    /// stops the input's thread; one blocked in a live input's `next` (a channel whose sender stays open)
    /// ends when that call returns.
    ///
    /// # Panics
    /// When the system refuses the input's thread, as [`std::thread::spawn`] does.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::with_nodes(2)?;
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
    pub fn imap<'pool, T, R, I>(&'pool self, f: fn(T) -> R, items: I) -> ProcessImap<'pool, R>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        T: CrossProcess,
        R: CrossProcess,
    {
        ProcessImap {
            lazy: self.lazy(Plain::new(f), items, true, None),
        }
    }

    /// Like [`imap`](Self::imap), but yields each result as soon as it is ready, in
    /// completion order.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::with_nodes(2)?;
    /// let mut sums: Vec<u64> = pool
    ///     .uimap(|n: u64| (0..n).sum(), vec![10, 20, 30])
    ///     .collect::<Result<_, _>>()?;
    /// sums.sort();
    /// assert_eq!(sums, [45, 190, 435]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn uimap<'pool, T, R, I>(&'pool self, f: fn(T) -> R, items: I) -> ProcessUimap<'pool, R>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        T: CrossProcess,
        R: CrossProcess,
    {
        ProcessUimap {
            lazy: self.lazy(Plain::new(f), items, false, None),
        }
    }

    /// Like [`map`](Self::map), with a state that each worker process makes once for the
    /// call and passes to `f` for every item it runs: a database connection, a loaded
    /// model, a scratch buffer.
    ///
    /// What runs where:
    ///
    /// - `init` runs **in the worker process**, at most once per worker per call, when that
    ///   worker gets its first item of the call (a worker that gets none never runs it);
    ///   so at most [`nodes`](Self::nodes) times per call, plus once more in each worker
    ///   that replaces one that died (a crash, a [`timeout`](ProcessPoolBuilder::timeout)).
    /// - The state `S` stays in that worker: it never crosses, so it needs no serde and
    ///   need not be `Send`. `f` gets it as `&mut S` for each item of the call that worker
    ///   runs, across all of that call's batches.
    /// - Each call makes its states afresh: a second call runs `init` again. Calls that
    ///   run at once (from several threads) each have their own state in each worker.
    /// - The state is dropped in its worker once the call is over (its results are all
    ///   in, or the call was dropped or stopped): right away if the worker is idle,
    ///   otherwise before the worker's next job; and when the pool is dropped, before the
    ///   worker exits. A worker killed (a crash, a timeout, a stopped call) drops nothing:
    ///   its `Drop` does not run.
    ///
    /// `init` and `f` are functions that capture nothing, as for [`map`](Self::map). A
    /// panic in `init` fails each item of the call in that worker with
    /// [`ErrorKind::InitPanicked`] (as on every pool), carrying `init`'s panic message
    /// from the worker; `init` does not run again for that call in that worker (it is not
    /// a crash loop), so with several workers some items may still succeed. A panic in
    /// `f` fails that item only.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use twat_mp::ProcessPool;
    ///
    /// /// What each worker makes once per call: here a buffer it reuses for every item.
    /// fn scratch() -> String {
    ///     String::with_capacity(64)
    /// }
    ///
    /// fn shout(buffer: &mut String, word: String) -> String {
    ///     buffer.clear();
    ///     buffer.push_str(&word.to_uppercase());
    ///     buffer.push('!');
    ///     buffer.clone()
    /// }
    ///
    /// let pool = ProcessPool::with_nodes(2)?;
    /// let words = ["hey", "you"].map(String::from);
    /// assert_eq!(pool.map_init(scratch, shout, words)?, ["HEY!", "YOU!"]);
    ///
    /// // `init` runs once per worker process per call, not once per item.
    /// let pids = pool.map_init(std::process::id, |pid: &mut u32, _: u32| *pid, 0..1000)?;
    /// let mut distinct = pids.clone();
    /// distinct.sort();
    /// distinct.dedup();
    /// assert!(distinct.len() <= 2);
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
        let function = WithState::new(StateFn(f));
        let state = Some(StateSpec::init(init));
        run_map(self.shared(), function, items, None, state)
            .map_err(ItemFailure::into_infallible_worker_error)
    }

    /// [`imap`](Self::imap) with a per-worker state, made and kept as for
    /// [`map_init`](Self::map_init): `init` runs in a worker when it gets its first item of
    /// this call, and the state lives there until the iterator is exhausted or dropped.
    ///
    /// # Panics
    /// When the system refuses the input's thread, as [`std::thread::spawn`] does.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::with_nodes(2)?;
    /// // Each worker counts the items it ran in this call: the count goes on across its
    /// // batches, so no count is 0 and the state is not remade per item.
    /// let counts: Vec<u64> = pool
    ///     .imap_init(|| 0_u64, |seen: &mut u64, _: u64| { *seen += 1; *seen }, 0..)
    ///     .take(100)
    ///     .collect::<Result<_, _>>()?;
    /// assert!(counts.iter().all(|&n| n >= 1) && counts.iter().any(|&n| n > 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn imap_init<'pool, S, T, R, I>(
        &'pool self,
        init: fn() -> S,
        f: fn(&mut S, T) -> R,
        items: I,
    ) -> ProcessImap<'pool, R>
    where
        S: 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        T: CrossProcess,
        R: CrossProcess,
    {
        let state = Some(StateSpec::init(init));
        ProcessImap {
            lazy: self.lazy(WithState::new(StateFn(f)), items, true, state),
        }
    }

    /// [`uimap`](Self::uimap) with a per-worker state, made and kept as for
    /// [`map_init`](Self::map_init).
    ///
    /// # Panics
    /// When the system refuses the input's thread, as [`std::thread::spawn`] does.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::with_nodes(2)?;
    /// let mut lengths: Vec<usize> = pool
    ///     .uimap_init(Vec::new, |buffer: &mut Vec<u8>, n: usize| { buffer.resize(n, 0); buffer.len() }, [3, 1, 2])
    ///     .collect::<Result<_, _>>()?;
    /// lengths.sort();
    /// assert_eq!(lengths, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn uimap_init<'pool, S, T, R, I>(
        &'pool self,
        init: fn() -> S,
        f: fn(&mut S, T) -> R,
        items: I,
    ) -> ProcessUimap<'pool, R>
    where
        S: 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: LazyInput,
        T: CrossProcess,
        R: CrossProcess,
    {
        let state = Some(StateSpec::init(init));
        ProcessUimap {
            lazy: self.lazy(WithState::new(StateFn(f)), items, false, state),
        }
    }

    /// Like [`map`](Self::map), with read-only data that every item needs (a lookup
    /// table, a dictionary, a model's weights): `f` gets `&shared` with each item.
    ///
    /// What crosses, and when: `shared` is serialized once per call, here, and crosses
    /// once to each worker process that gets an item of the call, before its first one
    /// — not once per item or per batch. So a table of 100 MB mapped over a million items
    /// costs 100 MB per worker (and its decoding, once per worker), not per item. The
    /// worker keeps its copy for the call's items, across batches, and drops it as
    /// [`map_init`](Self::map_init) drops its state; a worker that replaces one that died
    /// during the call gets it again. Each call sends its own: to reuse data across
    /// calls, load it in each worker with [`map_init`](Self::map_init) instead.
    ///
    /// A large value still costs each worker a copy over its socket, its decoding and its
    /// memory, before that worker's first item (a 64 MiB table sent to 2 workers took
    /// 0.25 to 0.33 s in all, measured on a busy 2-core machine). Give a large table of bytes a `serde_bytes`-style
    /// `Serialize` so that it is copied in one piece instead of element by element.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item. When `shared` cannot be
    /// serialized (or takes more than [`MAX_ITEM_BYTES`](Self::MAX_ITEM_BYTES)), every
    /// item fails with [`ErrorKind::Transport`] saying so; when it cannot be decoded in a
    /// worker, each item there does.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use twat_mp::ProcessPool;
    ///
    /// let prices = HashMap::from([("apple".to_owned(), 3), ("pear".to_owned(), 5)]);
    /// let pool = ProcessPool::with_nodes(2)?;
    /// let basket = ["pear", "apple", "kiwi"].map(String::from);
    /// let costs = pool.map_with(
    ///     prices,
    ///     |prices: &HashMap<String, u32>, fruit: String| prices.get(&fruit).copied(),
    ///     basket,
    /// )?;
    /// assert_eq!(costs, [Some(5), Some(3), None]);
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
        let f = SharedFn(f);
        let state = Some(StateSpec::shared(&shared, f));
        drop(shared);
        run_map(self.shared(), WithShared::new(f), items, None, state)
            .map_err(ItemFailure::into_infallible_worker_error)
    }

    /// Starts [`map`](Self::map) in the background and returns at once; collect the
    /// results from the [`AsyncResult`] (`get`, `ready`, `wait`, or `.await`).
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::with_nodes(2)?;
    /// let pending = pool.amap(|x: u32| x + 1, vec![1, 2, 3]);
    /// assert_eq!(pending.get()?, [2, 3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn amap<T, R, I>(&self, f: fn(T) -> R, items: I) -> AsyncResult<Result<Vec<R>, WorkerError>>
    where
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
    {
        let function = Plain::new(f);
        let items: Vec<T> = items.into_iter().collect();
        let shared = self.shared();
        self.background_call(cancelled, move |cancel, completer| {
            let outcome = run_map_until(shared, function, items, None, None, cancel);
            completer.finish_outcome(
                outcome.map_err(ItemFailure::into_infallible_worker_error),
                std::convert::identity,
            );
        })
    }

    /// Applies `f` to one item in a worker process and waits for the result.
    ///
    /// # Errors
    /// A [`WorkerError`] (index 0) when the item fails.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::with_nodes(1)?;
    /// assert_eq!(pool.apply(|s: String| s.len(), "four".to_owned())?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply<T, R>(&self, f: fn(T) -> R, item: T) -> Result<R, WorkerError>
    where
        T: CrossProcess,
        R: CrossProcess,
    {
        let mut results = self.map(f, std::iter::once(item))?;
        results
            .pop()
            .ok_or_else(|| WorkerError::new(0, ErrorKind::Cancelled))
    }

    /// Starts [`apply`](Self::apply) in the background and returns its handle at once.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::with_nodes(1)?;
    /// let pending = pool.apipe(|n: u64| (1..=n).sum::<u64>(), 100);
    /// assert_eq!(pending.get()?, 5050);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apipe<T, R>(&self, f: fn(T) -> R, item: T) -> AsyncResult<Result<R, WorkerError>>
    where
        T: CrossProcess,
        R: CrossProcess,
    {
        let (pending, stopper) = self.apipe_remote(Plain::new(f), item, None);
        pending.cancel_on_drop(move || stopper.stop())
    }

    /// A call's per-call state with its id in the workers, for calls that share it (the
    /// sessions of one async process call).
    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) fn make_state(&self, state: StateSetup) -> MadeState {
        call::make_state(state, &self.shared)
    }

    /// The engine of [`apipe`](Self::apipe), for any function that cannot fail (the async
    /// pool's groups too), and what stops it: [`Stopper::stop`] kills the worker running
    /// the item, which then fails as cancelled.
    pub(crate) fn apipe_remote<A>(
        &self,
        function: A,
        item: A::In,
        state: MadeState,
    ) -> (AsyncResult<Result<A::Out, WorkerError>>, Stopper)
    where
        A: RemoteFn<Err = Infallible>,
        A::Wire: remote::ErrorWire<Infallible, Remote = Infallible>,
    {
        let (completer, pending) = async_result(cancelled);
        let cancel = Arc::<Cancel>::default();
        let stopper = Stopper::new(self.shared(), Arc::clone(&cancel));
        let shared = self.shared();
        self.background(move || {
            let stopped = Arc::clone(&cancel);
            let items = std::iter::once(item);
            let outcome = run_map_stoppable(shared, function, items, None, cancel, state)
                .map_err(ItemFailure::into_infallible_worker_error)
                .and_then(|mut results| {
                    results
                        .pop()
                        .ok_or_else(|| WorkerError::new(0, ErrorKind::Cancelled))
                });
            if stopped.is_set() {
                // Stopped by its caller, who no longer wants it: nothing to report.
                completer.finish_with(move || outcome);
            } else {
                completer.finish_outcome(outcome, std::convert::identity);
            }
        });
        (pending, stopper)
    }

    /// Cancels the queued work and kills every worker now (what runs fails as
    /// cancelled); the pool takes no more work.
    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) fn terminate(&self) {
        self.shared.terminate();
    }

    /// What the pool did since it was built, or since [`reset_insights`](Self::reset_insights);
    /// `None` unless it was built with [`insights(true)`](ProcessPoolBuilder::insights).
    ///
    /// What runs where: each item is timed in the worker process that runs it (from the
    /// end of the item before it in its batch, so decoding the item counts), and the
    /// times come back with its result; start-up times (from starting a worker process to
    /// its first answer) and restarts (a process started in a slot where one ran before:
    /// after a crash, a timeout, or a call that stopped its items) are seen by the pool.
    /// An item whose process crashed or timed out on it is in neither the counts nor the
    /// slowest items. Idle time is the rest: the worker's wall time that was neither busy
    /// nor start-up.
    ///
    /// ```
    /// use twat_mp::ProcessPool;
    ///
    /// fn spin(n: u64) -> u64 {
    ///     (0..n).fold(0, |acc, x| acc ^ x.wrapping_mul(0x9e37_79b9))
    /// }
    ///
    /// let pool = ProcessPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(spin, [10, 10, 20_000_000, 10])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// assert_eq!(insights.items(), 4);
    /// assert_eq!(insights.slowest()[0].index(), 2);
    /// assert!(insights.workers().iter().any(|w| w.startup().is_some_and(|t| !t.is_zero())));
    /// println!("{insights}"); // one row per worker, with start-up and restarts
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insights(&self) -> Option<Insights> {
        self.shared
            .insights
            .as_ref()
            .map(|recorder| recorder.snapshot())
    }

    /// Starts the [`insights`](Self::insights) afresh: counts, times, restarts and the
    /// slowest items go back to zero; calls keep their numbers. Does nothing without
    /// [`insights(true)`](ProcessPoolBuilder::insights).
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::builder().nodes(1).insights(true).build()?;
    /// pool.map(|x: u8| x, [1, 2, 3])?;
    /// pool.reset_insights();
    /// pool.map(|x: u8| x, [4])?;
    /// assert_eq!(pool.insights().map(|i| i.items()), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reset_insights(&self) {
        if let Some(recorder) = &self.shared.insights {
            recorder.reset();
        }
    }

    /// The pool's insights recorder, with `.insights(true)`.
    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) fn recorder(&self) -> Option<&Arc<Recorder>> {
        self.shared.insights.as_ref()
    }

    fn shared(&self) -> Arc<Slots> {
        Arc::clone(&self.shared)
    }

    /// The engine of the lazy maps, with the function's own error still typed.
    pub(crate) fn lazy<'pool, A, I>(
        &self,
        function: A,
        items: I,
        ordered: bool,
        state: StateSetup,
    ) -> Box<dyn Iterator<Item = Result<A::Out, WorkerError>> + 'pool>
    where
        A: RemoteFn<Err = Infallible>,
        I: IntoIterator<Item = A::In>,
        I::IntoIter: LazyInput,
        A::Wire: remote::ErrorWire<Infallible, Remote = Infallible>,
    {
        let lazy = LazyCall::new(
            self.shared(),
            function,
            items.into_iter(),
            None,
            ordered,
            state,
        );
        Box::new(lazy.map(|outcome| outcome.map_err(ItemFailure::into_infallible_worker_error)))
    }

    /// The engine of `map` and of the attributes; `cancel` stops the call (see
    /// [`background_call`](Self::background_call)).
    pub(crate) fn run_map<A: RemoteFn>(
        &self,
        function: A,
        items: impl IntoIterator<Item = A::In>,
        render: Option<Render<A::In>>,
        cancel: Arc<Cancel>,
    ) -> Result<Vec<A::Out>, remote::Failure<A>> {
        run_map_until(self.shared(), function, items, render, None, cancel)
    }

    /// The engine of the attribute option `init` under `process`: `init` makes each
    /// worker's state for the call, as in [`map_init`](Self::map_init), for `function`
    /// (the user's `fn(&mut S, T) -> R`, or `-> Result<R, E>` with its error typed).
    pub(crate) fn run_map_init<S: 'static, A: RemoteFn<State = S>>(
        &self,
        init: fn() -> S,
        function: A,
        items: impl IntoIterator<Item = A::In>,
        render: Option<Render<A::In>>,
        cancel: Arc<Cancel>,
    ) -> Result<Vec<A::Out>, remote::Failure<A>> {
        let state = Some(StateSpec::init(init));
        run_map_until(self.shared(), function, items, render, state, cancel)
    }

    /// The engine of the lazy attributes; `state` for the option `init` (see
    /// [`StateSpec::init`]), `None` without it.
    pub(crate) fn lazy_call<A: RemoteFn, I: LazyInput<Item = A::In>>(
        &self,
        function: A,
        items: I,
        render: Option<Render<A::In>>,
        ordered: bool,
        state: StateSetup,
    ) -> LazyCall<A> {
        LazyCall::new(self.shared(), function, items, render, ordered, state)
    }

    /// A pool whose batches reach their workers some other way than worker processes
    /// of its own: `threads` take them from `shared`'s queue (an `MpiPool`'s ranks or
    /// local threads), and `Drop` closes the queue and joins them.
    #[cfg(feature = "mpi")]
    pub(crate) fn on_transport(shared: Arc<Slots>, threads: Vec<JoinHandle<()>>) -> Self {
        ProcessPool {
            shared,
            slots: threads,
            background: Mutex::new(Vec::new()),
        }
    }

    /// Waits for the background calls, then closes the queue: the threads that take
    /// batches end once the calls in flight are done. What `Drop` does before joining
    /// them, for a pool that is never dropped (the `mpi` attributes' one `MpiPool`).
    #[cfg(feature = "mpi")]
    pub(crate) fn close(&self) {
        let background =
            std::mem::take(&mut *self.background.lock().unwrap_or_else(|p| p.into_inner()));
        for thread in background {
            let _ = thread.join();
        }
        self.shared.close();
    }

    /// Starts a call in the background (`amap` and the attributes' `amap`): `job` runs on
    /// a thread of its own, given the call's stop switch and what completes the returned
    /// [`AsyncResult`]. Dropped before its result was received, the `AsyncResult` stops
    /// the call: its batches still queued are skipped and the workers running its items
    /// are killed (and replaced when work next needs them), so that the pool's drop waits
    /// for none of it.
    pub(crate) fn background_call<T: 'static>(
        &self,
        lost: fn() -> T,
        job: impl FnOnce(Arc<Cancel>, Completer<T>) + Send + 'static,
    ) -> AsyncResult<T> {
        let (completer, pending) = async_result(lost);
        let cancel = Arc::<Cancel>::default();
        let stopper = Stopper::new(self.shared(), Arc::clone(&cancel));
        self.background(move || job(cancel, completer));
        pending.cancel_on_drop(move || stopper.stop())
    }

    /// Runs `job` on a thread of its own; `Drop` waits for it.
    pub(crate) fn background(&self, job: impl FnOnce() + Send + 'static) {
        let mut threads = self.background.lock().unwrap_or_else(|p| p.into_inner());
        // Finished threads need no join.
        threads.retain(|thread| !thread.is_finished());
        // If no thread can be had, the job is dropped and its AsyncResult reports the
        // call as cancelled.
        if let Ok(thread) = std::thread::Builder::new()
            .name("twat-mp-process-call".into())
            .spawn(job)
        {
            threads.push(thread);
        }
    }
}

/// Dropping the pool waits for its background jobs (the `*_async` calls), then stops its
/// workers; while the thread panics, it kills them first instead of waiting on their items.
impl Drop for ProcessPool {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.shared.terminate();
        }
        let background =
            std::mem::take(&mut *self.background.lock().unwrap_or_else(|p| p.into_inner()));
        for thread in background {
            let _ = thread.join();
        }
        self.shared.close();
        for slot in self.slots.drain(..) {
            let _ = slot.join();
        }
        event!(
            self.shared.debug,
            nodes = self.shared.nodes,
            "process pool stopped"
        );
    }
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("nodes", &self.shared.nodes)
            .field("chunksize", &self.shared.chunksize)
            .field("timeout", &self.shared.timeout)
            .field("debug", &self.shared.debug)
            .field("retries", &self.shared.retries)
            .field("initializer", &self.shared.initializer.is_some())
            .finish()
    }
}

macro_rules! lazy_iterator {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[must_use = "iterators are lazy: the results come only as it is consumed"]
        pub struct $name<'pool, R> {
            lazy: Box<dyn Iterator<Item = Result<R, WorkerError>> + 'pool>,
        }

        impl<R> Iterator for $name<'_, R> {
            type Item = Result<R, WorkerError>;

            fn next(&mut self) -> Option<Self::Item> {
                self.lazy.next()
            }
        }

        impl<R> FusedIterator for $name<'_, R> {}

        impl<R> fmt::Debug for $name<'_, R> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

lazy_iterator! {
    /// The iterator of [`ProcessPool::imap`]: results in input order, computed a bounded
    /// window ahead of the consumer.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::with_nodes(2)?;
    /// let mut squares = pool.imap(|x: u64| x * x, 1..);
    /// assert_eq!(squares.next().transpose()?, Some(1));
    /// assert_eq!(squares.next().transpose()?, Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ProcessImap
}

lazy_iterator! {
    /// The iterator of [`ProcessPool::uimap`]: results in the order they finish.
    ///
    /// ```
    /// let pool = twat_mp::ProcessPool::with_nodes(2)?;
    /// let mut squares = pool.uimap(|x: u64| x * x, 1..=4).collect::<Result<Vec<_>, _>>()?;
    /// squares.sort();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ProcessUimap
}
