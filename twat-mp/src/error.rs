//! The errors of twat-mp: [`WorkerError`] for an item that failed, [`BuildError`] for a
//! pool that could not be built.

use std::any::Any;
use std::backtrace::Backtrace;
use std::error::Error;
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::engine::state::InitPanic;
use crate::panic_capture::{CallSite, PanicOrigin};

mod source;

pub(crate) use source::box_returned;

/// The boxed error a function returned, as kept in [`ErrorKind::Failed`].
///
/// ```
/// use twat_mp::{BoxError, ErrorKind, ThreadPool};
///
/// fn parse(text: &str) -> Result<u32, BoxError> {
///     Ok(text.trim().parse()?)
/// }
///
/// let pool = ThreadPool::with_nodes(2)?;
/// let err = pool.try_map(parse, ["1", "x"]).unwrap_err();
/// let ErrorKind::Failed(source) = err.kind() else { panic!("{err}") };
/// assert_eq!(source.to_string(), "invalid digit found in string");
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// One item of a parallel map failed.
///
/// It is the Rust form of Python twat-mp's `WorkerError`, with an accessor for each of its
/// fields: [`index`](Self::index) (the item's position in the input, Python's
/// `worker_id`), [`worker`](Self::worker) (which worker ran it), [`input`](Self::input)
/// (the item's rendering, where it could be shown), [`kind`](Self::kind) (what went wrong)
/// and [`traceback`](Self::traceback) (the backtrace of a panic).
///
/// When several items of one call fail, the pool reports the one with the lowest index,
/// the same one on every run.
///
/// In a terminal, `{}` is one sentence naming the item and what went wrong (an error
/// chain adds the function's own error after it, as `anyhow`'s `{:#}` does); `{:#}` (or
/// [`report`](Self::report)) prints that sentence, then the input, the worker (and its
/// process id), the attempts, each error of the chain and the traceback, one to a line:
///
/// ```text
/// item 5 (input "{\"id\":5,\"lines\":[{\"s") on worker 1 failed
///     input: "{\"id\":5,\"lines\":[{\"s"
///     worker: 1 (pid 25411)
///     attempts: 1
///     caused by: not a valid order document (20 bytes)
///     caused by: EOF while parsing a string at line 1 column 20
/// ```
///
/// (`examples/isolation.rs` prints these for a parser's errors and crashes.)
///
/// ```
/// use twat_mp::{ErrorKind, ThreadPool};
///
/// let pool = ThreadPool::with_nodes(2)?;
/// let err = pool
///     .map(|x: u32| if x == 3 { panic!("three is not allowed") } else { x }, 0..10)
///     .unwrap_err();
/// assert_eq!(err.index(), 3);
/// assert!(matches!(err.kind(), ErrorKind::Panicked { message } if message == "three is not allowed"));
/// let worker = err.worker().expect("a thread ran it");
/// assert_eq!(err.to_string(), format!("item 3 on worker {worker} panicked: three is not allowed"));
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
pub struct WorkerError {
    /// Boxed so that a `Result<T, WorkerError>` stays as small as `T` and a pointer.
    inner: Box<Details>,
}

struct Details {
    index: usize,
    worker: Option<usize>,
    input: Option<String>,
    kind: ErrorKind,
    traceback: Option<Traceback>,
    /// The original panic payload, kept so that the attributes can resume it in the
    /// caller. A `Mutex` only so that `WorkerError` is `Sync`, as errors should be.
    payload: Mutex<Option<Box<dyn Any + Send + 'static>>>,
    /// Where the item panicked, when the panic hook saw it.
    origin: Option<PanicOrigin>,
    /// The user's call of the attribute whose item failed: where an uncaught failure is
    /// reported.
    call_site: Option<CallSite>,
    /// How many times the item ran (see [`WorkerError::attempts`]).
    attempts: u32,
    /// The process id of the worker process that ran the item (see [`WorkerError::pid`]).
    pid: Option<u32>,
}

/// What went wrong with one item: the cause inside a [`WorkerError`].
///
/// ```
/// use twat_mp::{ErrorKind, ThreadPool};
///
/// let pool = ThreadPool::with_nodes(2)?;
/// let err = pool.map(|x: u32| 100 / x, [5, 0]).unwrap_err();
/// match err.kind() {
///     ErrorKind::Panicked { message } => assert_eq!(message, "attempt to divide by zero"),
///     other => panic!("another failure: {other}"),
/// }
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The function panicked; `message` is the panic's message.
    #[error("panicked: {message}")]
    Panicked {
        /// The panic message (`"<non-string panic payload>"` when the payload was not a string).
        message: String,
    },
    /// The function returned its own error. It is the [`source`](Error::source) of the
    /// [`WorkerError`] (and of this kind), not part of their messages, so that an error
    /// chain (`anyhow`'s `{:#}`, `eyre`'s report) prints it once: `item 4 failed: disk full`.
    #[error("failed")]
    Failed(#[source] BoxError),
    /// The worker process running the item died before answering (exit, abort, signal).
    #[error("crashed: the worker process {status}")]
    Crashed {
        /// How the process ended, in words: `"exited with status 3"`,
        /// `"was killed by signal 9 (SIGKILL)"`, …
        status: String,
    },
    /// The item ran longer than the pool's per-item timeout; its worker was replaced.
    #[error("timed out after {after:?}")]
    TimedOut {
        /// The timeout that was exceeded.
        after: Duration,
    },
    /// The item or its result could not cross between processes (a serialization error,
    /// a malformed frame, an unknown function).
    #[error("could not cross the process boundary: {0}")]
    Transport(String),
    /// The item was stopped, or never started: its call was dropped, or its pool shut
    /// down, before the item finished.
    #[error("was cancelled: its call was dropped or its pool shut down first")]
    Cancelled,
    /// The item never ran: the initializer of the worker process that was to run it
    /// (`ProcessPoolBuilder::initializer`) failed, so the pool runs nothing more (see
    /// [`ProcessPoolBuilder::initializer`](crate::ProcessPoolBuilder::initializer)).
    #[error("was not run: the initializer of its worker process {reason}")]
    InitializerFailed {
        /// How the initializer failed, in words: `"panicked at src/main.rs:9:5: no
        /// config file"`, `"crashed: the worker process was killed by signal 6
        /// (SIGABRT)"`, `"did not finish within 60s"`.
        reason: String,
    },
    /// The `init` of a `map_init` (or of an attribute's `init = ...`) panicked on the
    /// worker that was to run the item, so the item never ran. `init` runs at most once
    /// per worker per call: the worker's later items of that call fail with this too.
    /// Every pool reports it so: for a worker process (`ProcessPool`, the async pool's
    /// process mode) the message and backtrace come from that process, and an attribute
    /// resumes it as a panic whose payload is this [`WorkerError`] (the original payload
    /// stayed in the worker); on threads an attribute resumes `init`'s own payload.
    #[error("could not run: its worker's `init` panicked: {message}")]
    InitPanicked {
        /// The panic message of `init`.
        message: String,
    },
}

/// A backtrace as captured in-process, or as text carried from another process.
enum Traceback {
    Captured {
        backtrace: Backtrace,
        text: OnceLock<String>,
    },
    Text(String),
}

impl WorkerError {
    /// A new error for the item at `index`. Pools build these; users read them.
    pub(crate) fn new(index: usize, kind: ErrorKind) -> Self {
        let attempts = u32::from(!never_ran(&kind));
        WorkerError {
            inner: Box::new(Details {
                index,
                worker: None,
                input: None,
                kind,
                traceback: None,
                payload: Mutex::new(None),
                origin: None,
                call_site: None,
                attempts,
                pid: None,
            }),
        }
    }

    /// The number of runs the item had (see [`attempts`](Self::attempts)).
    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.set_attempts(attempts);
        self
    }

    pub(crate) fn set_attempts(&mut self, attempts: u32) {
        self.inner.attempts = attempts;
    }

    /// An error for a panic, keeping its payload to resume later.
    pub(crate) fn from_panic(
        index: usize,
        payload: Box<dyn Any + Send + 'static>,
        backtrace: Option<Backtrace>,
    ) -> Self {
        // A state's `init` that panicked (see `engine::state`) reports that cause, and
        // keeps `init`'s own payload for the attributes to resume.
        let (kind, payload) = match payload.downcast::<InitPanic>() {
            Ok(init) => {
                let message = panic_message(init.payload.as_ref());
                (ErrorKind::InitPanicked { message }, init.payload)
            }
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                (ErrorKind::Panicked { message }, payload)
            }
        };
        let mut err = WorkerError::new(index, kind);
        err.inner.payload = Mutex::new(Some(payload));
        err.inner.traceback = backtrace.map(|backtrace| Traceback::Captured {
            backtrace,
            text: OnceLock::new(),
        });
        err
    }

    /// Where the item panicked, as the panic hook saw it.
    pub(crate) fn with_origin(mut self, origin: Option<PanicOrigin>) -> Self {
        self.inner.origin = origin;
        self
    }

    pub(crate) fn origin(&self) -> Option<&PanicOrigin> {
        self.inner.origin.as_ref()
    }

    /// The user's call whose item failed, as the attributes record it.
    pub(crate) fn with_call_site(mut self, call_site: CallSite) -> Self {
        self.inner.call_site = Some(call_site);
        self
    }

    pub(crate) fn call_site(&self) -> Option<CallSite> {
        self.inner.call_site
    }

    pub(crate) fn with_worker(mut self, worker: Option<usize>) -> Self {
        self.inner.worker = worker;
        self
    }

    /// The worker process that ran the item, where one did.
    pub(crate) fn with_pid(mut self, pid: Option<u32>) -> Self {
        self.set_pid(pid);
        self
    }

    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) fn set_pid(&mut self, pid: Option<u32>) {
        self.inner.pid = pid;
    }

    pub(crate) fn with_input(mut self, input: Option<String>) -> Self {
        self.inner.input = input;
        self
    }

    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) fn with_traceback_text(mut self, text: Option<String>) -> Self {
        self.inner.traceback = text.map(Traceback::Text);
        self
    }

    /// The failing item's position in the input, counting from 0.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let err = pool.map(|x: u32| 100 / x, [5, 4, 0, 2]).unwrap_err();
    /// assert_eq!(err.index(), 2);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn index(&self) -> usize {
        self.inner.index
    }

    /// The worker that ran the item: a thread's index in its pool, or a worker process's
    /// slot. `None` when no worker ran it (for example a cancelled item).
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let err = pool.map(|x: u32| 100 / x, [5, 0]).unwrap_err();
    /// assert!(err.worker().is_some_and(|worker| worker < 2));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn worker(&self) -> Option<usize> {
        self.inner.worker
    }

    /// The process id of the worker process that ran the item: known for the items of a
    /// [`ProcessPool`](crate::ProcessPool) (and of the attributes' `process` mode) that a
    /// worker process ran, or crashed. `None` for threads (they run in the caller's
    /// process) and for items that no worker process ran.
    ///
    /// ```
    /// use twat_mp::ProcessPool;
    ///
    /// fn abort_on_two(x: u32) -> u32 {
    ///     if x == 2 {
    ///         std::process::abort();
    ///     }
    ///     x
    /// }
    ///
    /// let pool = ProcessPool::with_nodes(1)?;
    /// let err = pool.map(abort_on_two, 0..4).unwrap_err();
    /// let pid = err.pid().expect("a worker process ran it");
    /// assert_ne!(pid, std::process::id());
    /// assert!(format!("{err:#}").contains(&format!("worker: 0 (pid {pid})")));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.inner.pid
    }

    /// The failed item, rendered (cut to 200 characters), where it could be shown:
    ///
    /// - process pools ([`ProcessPool`](crate::ProcessPool) and the async pool's process
    ///   mode) always show it, from the copy that was sent: with `Debug` under the
    ///   attributes when the item type is `Debug`, and in its serde form from the pools'
    ///   own methods (as RON, which reads like `Debug`: `(x:1,name:"a")`);
    /// - in-process pools ([`ThreadPool`](crate::ThreadPool), `AsyncMultiPool`) move the
    ///   item into the function, so they show it only where it was rendered beforehand:
    ///   under the attributes in debug mode, for item types that are `Debug`. Their own
    ///   methods, generic over any item type, cannot render it (a test of `Debug` needs the
    ///   concrete type): map over `(item.clone(), item)` pairs to keep the input at hand.
    ///
    /// ```
    /// use twat_mp::ProcessPool;
    ///
    /// fn parse(s: String) -> u8 {
    ///     s.parse().expect("a number")
    /// }
    ///
    /// let pool = ProcessPool::with_nodes(1)?;
    /// let err = pool.map(parse, ["1", "x"].map(String::from)).unwrap_err();
    /// assert_eq!(err.input(), Some("\"x\""));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn input(&self) -> Option<&str> {
        self.inner.input.as_deref()
    }

    /// What went wrong.
    ///
    /// ```
    /// use twat_mp::{ErrorKind, ThreadPool};
    ///
    /// let pool = ThreadPool::with_nodes(2)?;
    /// let err = pool.map(|x: u32| 100 / x, [0]).unwrap_err();
    /// assert!(matches!(err.kind(), ErrorKind::Panicked { .. }));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn kind(&self) -> &ErrorKind {
        &self.inner.kind
    }

    /// How many times the item ran before it failed: 1, unless its pool runs items again.
    ///
    /// A process pool with [`retries(n)`](crate::ProcessPoolBuilder::retries) runs an
    /// item again, on a fresh worker, when its worker process crashed
    /// ([`ErrorKind::Crashed`]) or was killed because the item ran past its timeout
    /// ([`ErrorKind::TimedOut`]), up to `n` more times: an item that failed so every time
    /// reports `n + 1`; one that panicked or returned an error on a retry reports the run
    /// it failed on (panics and returned errors are not retried themselves: they are
    /// deterministic in the common case). An item that succeeds on a retry is a success.
    ///
    /// It is 0 for an item that never ran: one cancelled before it started, or whose
    /// worker process could not start or failed in its
    /// [`initializer`](crate::ProcessPoolBuilder::initializer), or that could not be
    /// sent. (A run stopped because its call was dropped reports
    /// [`ErrorKind::Cancelled`] with 0 as well: it did not finish.) A run of a whole batch
    /// during which a worker process died is not counted for the item that is then found
    /// to kill it (see [`ProcessPool`'s failures](crate::ProcessPool#failures)).
    ///
    /// ```
    /// use twat_mp::ProcessPool;
    ///
    /// fn abort_on_three(x: u32) -> u32 {
    ///     if x == 3 {
    ///         std::process::abort();
    ///     }
    ///     x
    /// }
    ///
    /// let pool = ProcessPool::builder().nodes(1).retries(2).build()?;
    /// let err = pool.map(abort_on_three, 0..5).unwrap_err();
    /// assert_eq!((err.index(), err.attempts()), (3, 3));
    /// assert!(err.to_string().starts_with("item 3 (input 3) on worker 0 crashed after 3 attempts: the worker process was killed by signal 6"), "{err}");
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// The backtrace of a panic, when one was captured (see [`Backtrace`] for when
    /// frames have symbols).
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(1)?;
    /// let err = pool.map(|x: u32| 100 / x, [0]).unwrap_err();
    /// // The worker thread's backtrace, captured when the item panicked.
    /// let traceback = err.traceback().expect("a panic on a pool thread has one");
    /// println!("{traceback}");
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn traceback(&self) -> Option<&str> {
        match self.inner.traceback.as_ref()? {
            Traceback::Captured { backtrace, text } => Some(
                text.get_or_init(|| crate::panic_capture::short_backtrace(&backtrace.to_string())),
            ),
            Traceback::Text(text) => Some(text),
        }
    }

    /// Takes the original panic payload, if this error is a panic in this process that
    /// has not been taken yet. [`std::panic::resume_unwind`] with it re-raises the panic
    /// exactly as the worker saw it.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(1)?;
    /// let err = pool.map(|_: u8| std::panic::panic_any(42_u32), [0]).unwrap_err();
    /// let payload = err.take_panic().expect("the panic happened in this process");
    /// assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
    /// assert!(err.take_panic().is_none()); // taken once
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn take_panic(&self) -> Option<Box<dyn Any + Send + 'static>> {
        self.inner
            .payload
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Re-raises this failure in the calling thread: the original panic payload when
    /// there is one, else a panic whose payload is this `WorkerError`.
    ///
    /// Either way the panic is printed once, as an uncaught panic would be: an item's
    /// panic at the location of its `panic!`, with a note naming the item; any other
    /// failure as this error's one sentence, at the caller's location.
    ///
    /// ```
    /// use twat_mp::ThreadPool;
    ///
    /// let pool = ThreadPool::with_nodes(2)?;
    /// let err = pool.map(|x: u32| if x == 2 { panic!("two") } else { x }, 0..4).unwrap_err();
    /// let resume = std::panic::AssertUnwindSafe(move || err.resume_unwind());
    /// let payload = std::panic::catch_unwind(resume).unwrap_err();
    /// assert_eq!(payload.downcast_ref::<&str>(), Some(&"two"));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    #[track_caller]
    pub fn resume_unwind(self) -> ! {
        match self.take_panic() {
            Some(payload) => crate::panic_capture::resume_item_panic(payload, &self, self.origin()),
            None => {
                crate::panic_capture::install_hook();
                std::panic::panic_any(self)
            }
        }
    }
}

/// `{}` is one sentence naming the item and what went wrong; `{:#}` adds the details, one
/// to a line (see [`WorkerError::report`]).
impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_sentence(f)?;
        if f.alternate() {
            self.write_details(f)?;
        }
        Ok(())
    }
}

/// The indentation of the report's lines under its first one.
const INDENT: &str = "    ";

impl WorkerError {
    /// The one sentence of `{}`.
    fn write_sentence(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let details = &self.inner;
        let item = ItemLabel {
            index: details.index,
            input: details.input.as_deref(),
            worker: details.worker,
        };
        match (&details.kind, details.attempts) {
            (_, 0 | 1) => write!(f, "{item} {}", details.kind),
            (ErrorKind::Crashed { status }, attempts) => write!(
                f,
                "{item} crashed after {attempts} attempts: the worker process {status}"
            ),
            (ErrorKind::TimedOut { after }, attempts) => write!(
                f,
                "{item} timed out after {after:?} on the last of its {attempts} attempts"
            ),
            (kind, attempts) => write!(f, "{item}, on its attempt {attempts}, {kind}"),
        }
    }

    /// The lines that `{:#}` adds under the sentence: each detail once, on a line of its
    /// own, indented; a value of several lines goes on with a deeper indentation.
    fn write_details(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let details = &self.inner;
        if let Some(input) = &details.input {
            write_field(f, "input", input)?;
        }
        match (details.worker, details.pid) {
            (Some(worker), Some(pid)) => write!(f, "\n{INDENT}worker: {worker} (pid {pid})")?,
            (Some(worker), None) => write!(f, "\n{INDENT}worker: {worker}")?,
            // The async pool's process mode knows the process, not a worker number.
            (None, Some(pid)) => write!(f, "\n{INDENT}worker: the process with pid {pid}")?,
            (None, None) => {}
        }
        match details.attempts {
            0 => write!(f, "\n{INDENT}attempts: 0 (it never ran)")?,
            attempts => write!(f, "\n{INDENT}attempts: {attempts}")?,
        }
        if let Some(origin) = &details.origin {
            let location = format!("{} (thread '{}')", origin.location, origin.thread);
            write_field(f, "panicked at", &location)?;
        }
        let mut source = self.source();
        while let Some(cause) = source {
            // `{}` of each: the chain is walked here, so each message is printed once.
            write_field(f, "caused by", &cause.to_string())?;
            source = cause.source();
        }
        if let Some(traceback) = self.traceback() {
            write!(f, "\n{INDENT}traceback:")?;
            let lines = || traceback.lines().filter(|line| !line.trim().is_empty());
            // Its frames go where a value's further lines go, whatever their own margin
            // (std's closing `note:` has none).
            let margin = lines()
                .filter(|line| line.starts_with(' '))
                .map(|line| line.len() - line.trim_start_matches(' ').len())
                .min()
                .unwrap_or(0);
            for line in lines() {
                // Every line that starts with a space has `margin` of them at least.
                let line = if line.starts_with(' ') {
                    &line[margin..]
                } else {
                    line
                };
                write!(f, "\n{INDENT}{INDENT}{}", line.trim_end())?;
            }
        }
        Ok(())
    }

    /// The whole report, as `{:#}` prints it: the sentence of `{}`, then each detail that
    /// is known on an indented line of its own: the input, the worker (with its process
    /// id for a worker process), the number of attempts, where a panic happened, each
    /// error in the chain of [`source`](Error::source)s once, and the
    /// [`traceback`](Self::traceback).
    ///
    /// It is the same text as `format!("{err:#}")`, for where the alternate flag cannot
    /// be given: a `tracing` field (`error = %err.report()`), a logger's `{}`.
    ///
    /// ```
    /// use twat_mp::ThreadPool;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("{text:?} is not a port number")]
    /// struct PortError {
    ///     text: String,
    ///     source: std::num::ParseIntError,
    /// }
    ///
    /// fn port(text: &str) -> Result<u16, PortError> {
    ///     text.parse().map_err(|source| PortError { text: text.into(), source })
    /// }
    ///
    /// let pool = ThreadPool::with_nodes(1)?;
    /// let err = pool.try_map(port, ["80", "http"]).unwrap_err();
    /// // The one sentence stays one sentence:
    /// assert_eq!(err.to_string(), "item 1 on worker 0 failed");
    /// // The report adds the details, each once:
    /// let report = err.report().to_string();
    /// assert_eq!(report, format!("{err:#}"));
    /// assert_eq!(
    ///     report,
    ///     "item 1 on worker 0 failed\n    \
    ///      worker: 0\n    \
    ///      attempts: 1\n    \
    ///      caused by: \"http\" is not a port number\n    \
    ///      caused by: invalid digit found in string"
    /// );
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn report(&self) -> impl fmt::Display + '_ {
        Report(self)
    }
}

/// What [`WorkerError::report`] returns: `{:#}` of the error, whatever the flags.
struct Report<'a>(&'a WorkerError);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

/// One detail of the report: `label: value`, indented; a value's further lines one level
/// deeper, so that they cannot be read as details of their own.
fn write_field(f: &mut fmt::Formatter<'_>, label: &str, value: &str) -> fmt::Result {
    let mut lines = value.lines();
    write!(f, "\n{INDENT}{label}: {}", lines.next().unwrap_or(""))?;
    for line in lines {
        write!(f, "\n{INDENT}{INDENT}{line}")?;
    }
    Ok(())
}

/// Whether an error of this kind means that the item never ran (or did not finish).
fn never_ran(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Cancelled | ErrorKind::InitializerFailed { .. }
    )
}

/// How every message names an item: `item 3 (input "x") on worker 1`, each part where it
/// is known.
pub(crate) struct ItemLabel<'a> {
    pub(crate) index: usize,
    pub(crate) input: Option<&'a str>,
    pub(crate) worker: Option<usize>,
}

impl ItemLabel<'_> {
    /// The label of `err`'s item.
    pub(crate) fn of(err: &WorkerError) -> ItemLabel<'_> {
        ItemLabel {
            index: err.index(),
            input: err.input(),
            worker: err.worker(),
        }
    }
}

impl fmt::Display for ItemLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "item {}", self.index)?;
        if let Some(input) = self.input {
            write!(f, " (input {input})")?;
        }
        if let Some(worker) = self.worker {
            write!(f, " on worker {worker}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let details = &self.inner;
        f.debug_struct("WorkerError")
            .field("index", &details.index)
            .field("worker", &details.worker)
            .field("input", &details.input)
            .field("kind", &details.kind)
            .field("attempts", &details.attempts)
            .field("pid", &details.pid)
            .field("traceback", &details.traceback.is_some())
            .finish()
    }
}

impl Error for WorkerError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.inner.kind {
            ErrorKind::Failed(err) => Some(err.as_ref()),
            _ => None,
        }
    }
}

/// The text of a panic payload: its `&str` or `String`, else a placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(err) = payload.downcast_ref::<WorkerError>() {
        err.to_string()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

/// A pool could not be built from its settings.
///
/// ```
/// use twat_mp::{BuildError, ThreadPool};
///
/// let err = ThreadPool::with_nodes(0).unwrap_err();
/// assert!(matches!(err, BuildError::NoNodes));
/// assert_eq!(err.to_string(), "a pool needs at least one node, but nodes = 0 was asked for");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `nodes = 0`: a pool without workers would never finish anything.
    #[error("a pool needs at least one node, but nodes = 0 was asked for")]
    NoNodes,
    /// A setting that must be positive was zero (`chunksize`, `concurrency`, …).
    #[error("the pool setting `{0}` must be at least 1, but 0 was given")]
    Zero(&'static str),
    /// A setting beyond what any machine can honour: `nodes` over
    /// [`MAX_NODES`](crate::MAX_NODES) (each node is an OS thread, and a process for
    /// process pools), `concurrency` over [`MAX_CONCURRENCY`](crate::MAX_CONCURRENCY).
    /// Refused before anything starts.
    ///
    /// ```
    /// use twat_mp::{BuildError, ProcessPool};
    ///
    /// let err = ProcessPool::with_nodes(100_000).unwrap_err();
    /// assert!(matches!(err, BuildError::TooLarge { name: "nodes", .. }));
    /// assert_eq!(err.to_string(), "the pool setting `nodes` must be at most 4096, but 100000 was given");
    /// ```
    #[error("the pool setting `{name}` must be at most {max}, but {value} was given")]
    TooLarge {
        /// The setting: `"nodes"` or `"concurrency"`.
        name: &'static str,
        /// What was asked for.
        value: usize,
        /// The most it may be.
        max: usize,
    },
    /// The operating system refused to start a worker thread or process.
    #[error("could not start a worker: {0}")]
    Spawn(#[from] std::io::Error),
    /// A process pool built inside a worker process that is itself a worker of a worker:
    /// code in a worker may use a process pool of its own, but its workers may not, so
    /// that a function that builds a pool and maps itself cannot fork without bound.
    ///
    /// ```
    /// use twat_mp::{BuildError, ProcessPool};
    ///
    /// fn nest(level: u32) -> Result<u32, String> {
    ///     let pool = ProcessPool::with_nodes(1).map_err(|err| format!("level {level}: {err}"))?;
    ///     pool.map(nest, [level + 1]).map_err(|err| err.to_string())?.remove(0)
    /// }
    ///
    /// let pool = ProcessPool::with_nodes(1)?;
    /// let deepest = pool.map(nest, [1])?.remove(0).unwrap_err();
    /// assert_eq!(
    ///     deepest,
    ///     "level 2: a worker process 2 levels deep cannot start worker processes of its own: \
    ///      worker processes nest at most 2 levels deep"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[error(
        "a worker process {depth} levels deep cannot start worker processes of its own: \
         worker processes nest at most {max} levels deep"
    )]
    Nested {
        /// How deep this process is: 1 for the workers of a program, 2 for theirs.
        depth: u32,
        /// The deepest a worker may be.
        max: u32,
    },
    /// A worker started but failed to get ready: its initializer panicked.
    #[error("a worker failed to get ready: {0}")]
    NotReady(String),
    /// Settings that this kind of pool cannot honour together.
    #[error("these settings cannot be used together: {0}")]
    Unsupported(&'static str),
    /// An `MpiPool` could not start MPI (feature `mpi`): a second pool in one program
    /// run, or MPI initialised by other code.
    #[cfg(feature = "mpi")]
    #[error("the MPI pool cannot start: {0}")]
    Mpi(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_sentence_naming_the_item() {
        let err = WorkerError::new(4, ErrorKind::Failed("disk full".into()))
            .with_worker(Some(1))
            .with_input(Some("\"a.txt\"".into()));
        assert_eq!(
            err.to_string(),
            "item 4 (input \"a.txt\") on worker 1 failed"
        );
        assert_eq!(err.source().unwrap().to_string(), "disk full");
    }

    #[test]
    fn an_error_chain_prints_each_message_once() {
        let io = std::io::Error::other("disk full");
        let err = WorkerError::new(4, ErrorKind::Failed(io.into())).with_worker(Some(1));
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(chain, "item 4 on worker 1 failed: disk full");
        let panicked = WorkerError::from_panic(2, Box::new("boom"), None);
        assert_eq!(
            format!("{:#}", anyhow::Error::from(panicked)),
            "item 2 panicked: boom"
        );
    }

    /// One of each kind, as the pools make them, with `attempts` runs.
    fn every_kind(attempts: u32) -> Vec<WorkerError> {
        let kinds = [
            ErrorKind::Panicked {
                message: "boom".into(),
            },
            ErrorKind::Failed("disk full".into()),
            ErrorKind::Crashed {
                status: "overflowed its stack and was killed by signal 6 (SIGABRT)".into(),
            },
            ErrorKind::TimedOut {
                after: Duration::from_millis(1500),
            },
            ErrorKind::Transport("the worker's result could not be decoded: bad frame".into()),
            ErrorKind::Cancelled,
            ErrorKind::InitializerFailed {
                reason: "panicked at src/main.rs:9:5: no config file".into(),
            },
            ErrorKind::InitPanicked {
                message: "no connection".into(),
            },
        ];
        kinds
            .into_iter()
            .map(|kind| {
                WorkerError::new(7, kind)
                    .with_worker(Some(1))
                    .with_input(Some("\"a.json\"".into()))
                    .with_attempts(attempts)
            })
            .collect()
    }

    #[test]
    fn display_is_one_sentence_for_every_kind_and_attempt_count() {
        for attempts in [0, 1, 3] {
            for err in every_kind(attempts) {
                let sentence = err.to_string();
                assert!(!sentence.contains('\n'), "{sentence}");
                assert!(
                    sentence.starts_with("item 7 (input \"a.json\") on worker 1"),
                    "{sentence}"
                );
                // One sentence: no full stop inside, none at its end.
                assert!(!sentence.contains(". "), "{sentence}");
                assert!(!sentence.ends_with('.'), "{sentence}");
                assert_eq!(format!("{err}"), format!("{}", ItemSentence(&err)));
            }
        }
        let retried: Vec<String> = every_kind(3).iter().map(ToString::to_string).collect();
        assert_eq!(
            retried[2],
            "item 7 (input \"a.json\") on worker 1 crashed after 3 attempts: the worker \
             process overflowed its stack and was killed by signal 6 (SIGABRT)"
        );
        assert_eq!(
            retried[3],
            "item 7 (input \"a.json\") on worker 1 timed out after 1.5s on the last of its \
             3 attempts"
        );
        assert_eq!(
            retried[0],
            "item 7 (input \"a.json\") on worker 1, on its attempt 3, panicked: boom"
        );
    }

    /// `{}` of an error, whatever flags the caller's formatter has.
    struct ItemSentence<'a>(&'a WorkerError);

    impl fmt::Display for ItemSentence<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.write_sentence(f)
        }
    }

    #[test]
    fn the_alternate_form_is_the_sentence_then_one_detail_a_line() {
        for attempts in [0, 1, 3] {
            for err in every_kind(attempts) {
                let report = format!("{err:#}");
                let mut lines = report.lines();
                assert_eq!(lines.next(), Some(err.to_string().as_str()));
                let details: Vec<&str> = lines.collect();
                assert!(
                    details.iter().all(|line| line.starts_with(INDENT)),
                    "{report}"
                );
                assert_eq!(details[0], "    input: \"a.json\"");
                assert_eq!(details[1], "    worker: 1");
                match attempts {
                    0 => assert_eq!(details[2], "    attempts: 0 (it never ran)"),
                    n => assert_eq!(details[2], format!("    attempts: {n}")),
                }
                assert_eq!(err.report().to_string(), report);
            }
        }
    }

    #[test]
    fn the_report_shows_pid_origin_each_cause_once_and_the_traceback() {
        let returned = anyhow::anyhow!("disk full").context("could not save \"a.json\"");
        let err = WorkerError::new(4, ErrorKind::Failed(box_returned(returned)))
            .with_worker(Some(1))
            .with_pid(Some(4242))
            .with_input(Some("\"a.json\"".into()));
        assert_eq!(
            format!("{err:#}"),
            "item 4 (input \"a.json\") on worker 1 failed\n\
             \x20   input: \"a.json\"\n\
             \x20   worker: 1 (pid 4242)\n\
             \x20   attempts: 1\n\
             \x20   caused by: could not save \"a.json\"\n\
             \x20   caused by: disk full"
        );

        let panicked = WorkerError::from_panic(2, Box::new("boom"), None)
            .with_traceback_text(Some(
                "   0: app::parse\n             at ./src/main.rs:9:5\n   1: app::main\n\
                 note: Some details are omitted\n"
                    .into(),
            ))
            .with_origin(Some(PanicOrigin {
                thread: "twat-mp-worker-0".into(),
                location: "src/main.rs:9:5".into(),
            }))
            .with_worker(Some(0));
        assert_eq!(
            format!("{panicked:#}"),
            "item 2 on worker 0 panicked: boom\n\
             \x20   worker: 0\n\
             \x20   attempts: 1\n\
             \x20   panicked at: src/main.rs:9:5 (thread 'twat-mp-worker-0')\n\
             \x20   traceback:\n\
             \x20       0: app::parse\n\
             \x20                 at ./src/main.rs:9:5\n\
             \x20       1: app::main\n\
             \x20       note: Some details are omitted"
        );

        let async_process = WorkerError::new(0, ErrorKind::Cancelled).with_pid(Some(17));
        assert!(
            format!("{async_process:#}").contains("\n    worker: the process with pid 17\n"),
            "{async_process:#}"
        );
    }

    #[test]
    fn a_cause_of_several_lines_goes_on_deeper() {
        let err = WorkerError::new(0, ErrorKind::Failed("line one\nline two".into()));
        assert_eq!(
            format!("{err:#}"),
            "item 0 failed\n    attempts: 1\n    caused by: line one\n        line two"
        );
    }

    #[test]
    fn anyhow_prints_each_message_of_the_chain_once() {
        let returned = anyhow::anyhow!("disk full").context("could not save");
        let err = WorkerError::new(4, ErrorKind::Failed(box_returned(returned)))
            .with_worker(Some(1))
            .with_pid(Some(4242));
        let chain = anyhow::Error::from(err).context("the batch failed");
        assert_eq!(
            format!("{chain:#}"),
            "the batch failed: item 4 on worker 1 failed: could not save: disk full"
        );
        // anyhow adds its own backtrace under RUST_BACKTRACE: not what is checked here.
        let debug = format!("{chain:?}");
        assert_eq!(
            debug.split("\n\nStack backtrace:").next().unwrap(),
            "the batch failed\n\n\
             Caused by:\n    \
             0: item 4 on worker 1 failed\n    \
             1: could not save\n    \
             2: disk full"
        );
    }

    #[test]
    fn panic_payload_is_kept_once() {
        let err = WorkerError::from_panic(0, Box::new("boom"), None);
        assert_eq!(err.to_string(), "item 0 panicked: boom");
        assert!(err.take_panic().is_some());
        assert!(err.take_panic().is_none());
        assert!(err.source().is_none());
    }

    #[test]
    fn non_string_payload_has_placeholder_message() {
        let err = WorkerError::from_panic(2, Box::new(17_u8), None);
        assert!(
            matches!(err.kind(), ErrorKind::Panicked { message } if message == "<non-string panic payload>")
        );
    }

    #[test]
    fn a_worker_error_is_one_pointer() {
        assert_eq!(
            std::mem::size_of::<WorkerError>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn errors_are_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<WorkerError>();
        check::<BuildError>();
    }
}
