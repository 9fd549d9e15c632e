//! Running one item: catching its panic or error, and telling the function's own error
//! (kept typed, for the attributes) from every other failure. Shared by every pool.

use std::any::Any;
use std::convert::Infallible;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::failure::{FailureMark, LowestFailure};
use super::render::Render;
use crate::debug::event;
use crate::error::{BoxError, ErrorKind, ItemLabel, WorkerError, box_returned};
use crate::panic_capture::{self, CallSite};

/// What one item gave: its value, or how it failed.
pub(crate) type Outcome<R, E> = Result<R, ItemFailure<E>>;

/// How one item failed, before it is turned into what the caller sees: the function's own
/// error `E` stays typed so that the attributes can hand it back as it is.
pub(crate) enum ItemFailure<E> {
    /// The function returned `Err(error)`.
    Returned {
        index: usize,
        worker: Option<usize>,
        /// The worker process that ran it ([`WorkerError::pid`]), where one did.
        pid: Option<u32>,
        input: Option<String>,
        error: E,
        /// How many times the item ran ([`WorkerError::attempts`]): 1, unless a process
        /// pool ran it again after its worker was lost.
        attempts: u32,
    },
    /// Anything else: a panic, a crash, a timeout, a cancellation.
    Worker(WorkerError),
}

impl<E> ItemFailure<E> {
    /// Reports the failure in debug mode, the same way for every pool: `index` (in the
    /// call), `worker` (when one ran it), `input` (where it could be shown), `cause` (the
    /// kind) and `error` (the whole sentence), with the same field types everywhere.
    pub(crate) fn log(&self, debug: bool) {
        if !debug {
            return;
        }
        let (index, worker, input) = (self.index(), self.worker(), self.input());
        let (cause, error) = match self {
            ItemFailure::Returned { .. } => {
                let item = ItemLabel {
                    index,
                    input,
                    worker: None,
                };
                (
                    "returned an error".to_owned(),
                    format!("{item} returned an error"),
                )
            }
            ItemFailure::Worker(err) => (err.kind().to_string(), err.to_string()),
        };
        // No `input` field where it could not be shown (tracing records an `Option` only
        // when it is `Some`): an empty string would read as an item that was "".
        match worker {
            Some(worker) => {
                event!(debug, index, worker, input, cause = %cause, error = %error, "item failed");
            }
            None => event!(debug, index, input, cause = %cause, error = %error, "item failed"),
        }
    }

    /// [`log`](Self::log)s the failure inside the span of its item, in the span of its
    /// `call`.
    pub(crate) fn log_in(&self, call: &tracing::Span, debug: bool) {
        crate::debug::item_span(call, self.index(), self.worker()).in_scope(|| self.log(debug));
    }

    pub(crate) fn index(&self) -> usize {
        match self {
            ItemFailure::Returned { index, .. } => *index,
            ItemFailure::Worker(err) => err.index(),
        }
    }

    fn worker(&self) -> Option<usize> {
        match self {
            ItemFailure::Returned { worker, .. } => *worker,
            ItemFailure::Worker(err) => err.worker(),
        }
    }

    /// Records that the item ran `attempts` times (see [`WorkerError::attempts`]).
    pub(crate) fn set_attempts(&mut self, runs: u32) {
        match self {
            ItemFailure::Returned { attempts, .. } => *attempts = runs,
            ItemFailure::Worker(err) => err.set_attempts(runs),
        }
    }

    fn input(&self) -> Option<&str> {
        match self {
            ItemFailure::Returned { input, .. } => input.as_deref(),
            ItemFailure::Worker(err) => err.input(),
        }
    }

    /// The failure as the pools report it, with the function's error boxed as the source.
    pub(crate) fn into_worker_error(self) -> WorkerError
    where
        E: Into<BoxError> + 'static,
    {
        match self {
            ItemFailure::Returned {
                index,
                worker,
                pid,
                input,
                error,
                attempts,
            } => WorkerError::new(index, ErrorKind::Failed(box_returned(error)))
                .with_worker(worker)
                .with_pid(pid)
                .with_input(input)
                .with_attempts(attempts),
            ItemFailure::Worker(err) => err,
        }
    }

    /// The failure as the attributes report it: `Err(E)` for the function's own error,
    /// and a resumed panic for everything else, reported at the user's `call`.
    pub(crate) fn into_original(self, call: CallSite) -> E {
        match self {
            ItemFailure::Returned { error, .. } => error,
            ItemFailure::Worker(err) => err.with_call_site(call).resume_unwind(),
        }
    }
}

impl ItemFailure<Infallible> {
    /// Re-raises the failure of a function that cannot return an error in the caller:
    /// the original panic, or a panic whose payload is the [`WorkerError`], reported at
    /// the user's `call`.
    pub(crate) fn resume(self, call: CallSite) -> ! {
        self.into_infallible_worker_error()
            .with_call_site(call)
            .resume_unwind()
    }

    /// For functions that cannot return an error: only worker failures are left.
    pub(crate) fn into_infallible_worker_error(self) -> WorkerError {
        match self {
            ItemFailure::Returned { error, .. } => match error {},
            ItemFailure::Worker(err) => err,
        }
    }
}

/// What a call's [`AsyncResult`](crate::AsyncResult) gives when its job never ran.
pub(crate) fn cancelled<R>() -> Result<R, WorkerError> {
    Err(WorkerError::new(0, ErrorKind::Cancelled))
}

/// What an attribute's [`AsyncResult`](crate::AsyncResult) gives when its job never ran:
/// the cancellation, resumed as a panic.
#[track_caller]
pub(crate) fn resume_cancelled<T>() -> T {
    WorkerError::new(0, ErrorKind::Cancelled).resume_unwind()
}

/// Runs items of one call on a pool's threads and remembers the failure with the lowest
/// index.
pub(crate) struct ItemRunner<T, E> {
    mark: FailureMark,
    lowest: Mutex<LowestFailure<ItemFailure<E>>>,
    render: Option<Render<T>>,
    debug: bool,
    /// The call's span in debug mode; each item runs in a span of its own inside it.
    span: tracing::Span,
}

impl<T, E> ItemRunner<T, E> {
    /// `render` is used only in debug mode, where the cost of rendering every item is
    /// expected.
    pub(crate) fn new(debug: bool, render: Option<Render<T>>) -> Self {
        ItemRunner {
            mark: FailureMark::default(),
            lowest: Mutex::new(LowestFailure::default()),
            render: render.filter(|_| debug),
            debug,
            span: crate::debug::call_span(debug, "thread"),
        }
    }

    /// Whether the call is in debug mode (then every item goes the way that reports).
    pub(crate) fn is_debug(&self) -> bool {
        self.debug
    }

    /// Whether an item at `index` can be skipped because an earlier item already failed.
    pub(crate) fn is_past_failure(&self, index: usize) -> bool {
        self.mark.is_past(index)
    }

    /// Runs `f` on one item, catching its panic; `Err` when it panicked or returned one.
    #[inline]
    pub(crate) fn run<R>(
        &self,
        index: usize,
        worker: Option<usize>,
        item: T,
        f: impl FnOnce(T) -> Result<R, E>,
    ) -> Result<R, ItemFailure<E>> {
        let input = self.render.map(|render| render(&item));
        let _item = self
            .debug
            .then(|| crate::debug::item_span(&self.span, index, worker).entered());
        match panic::catch_unwind(AssertUnwindSafe(|| f(item))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.returned(index, worker, input, error)),
            Err(payload) => Err(self.panicked(index, worker, input, payload)),
        }
    }

    /// Whether items are rendered before each call (debug mode with a renderer).
    pub(crate) fn renders(&self) -> bool {
        self.render.is_some()
    }

    /// The hot path of `map` (no rendering): runs `f` on one item and returns its value;
    /// a failure is recorded and unwinds out of the calling rayon leaf with
    /// [`LeafAborted`].
    #[inline(always)]
    pub(crate) fn run_or_abort_leaf<R>(
        &self,
        index: usize,
        item: T,
        f: impl FnOnce(T) -> Result<R, E>,
    ) -> R {
        match panic::catch_unwind(AssertUnwindSafe(|| f(item))) {
            Ok(Ok(value)) => value,
            Ok(Err(error)) => self.abort_returned(index, error),
            Err(payload) => self.abort_panicked(index, payload),
        }
    }

    #[cold]
    #[inline(never)]
    fn abort_returned(&self, index: usize, error: E) -> ! {
        let worker = rayon::current_thread_index();
        self.abort_leaf(self.returned(index, worker, None, error))
    }

    #[cold]
    #[inline(never)]
    fn abort_panicked(&self, index: usize, payload: Box<dyn Any + Send + 'static>) -> ! {
        let worker = rayon::current_thread_index();
        self.abort_leaf(self.panicked(index, worker, None, payload))
    }

    /// Records `failure` and unwinds out of the current rayon leaf.
    #[cold]
    #[inline(never)]
    pub(crate) fn abort_leaf(&self, failure: ItemFailure<E>) -> ! {
        self.record(failure);
        panic::resume_unwind(Box::new(LeafAborted))
    }

    #[cold]
    #[inline(never)]
    fn returned(
        &self,
        index: usize,
        worker: Option<usize>,
        input: Option<String>,
        error: E,
    ) -> ItemFailure<E> {
        let failure = ItemFailure::Returned {
            index,
            worker,
            pid: None,
            input,
            error,
            attempts: 1,
        };
        failure.log(self.debug);
        failure
    }

    #[cold]
    #[inline(never)]
    fn panicked(
        &self,
        index: usize,
        worker: Option<usize>,
        input: Option<String>,
        payload: Box<dyn Any + Send + 'static>,
    ) -> ItemFailure<E> {
        let (backtrace, origin) = panic_capture::take_captured();
        let err = WorkerError::from_panic(index, payload, backtrace)
            .with_origin(origin)
            .with_worker(worker)
            .with_input(input);
        let failure = ItemFailure::Worker(err);
        failure.log(self.debug);
        failure
    }

    /// Keeps `failure` if it is the lowest seen so far.
    pub(crate) fn record(&self, failure: ItemFailure<E>) {
        self.mark.mark(failure.index());
        self.lowest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .offer(failure);
    }

    /// The lowest failure recorded, if any.
    pub(crate) fn take_failure(&self) -> Option<ItemFailure<E>> {
        self.lowest.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The unwinding payload that leaves a rayon leaf once its item failed or an earlier item
/// already did: rayon still finishes every other leaf, so every item below the lowest
/// failure runs, and the failure reported is the same on every run.
pub(crate) struct LeafAborted;

/// A flag that tells queued work to stop: set when a pool is dropped during a panic,
/// when a lazy iterator is dropped, or when the `AsyncResult` of a background call is
/// dropped before its result was received.
#[derive(Default)]
pub(crate) struct CancelFlag {
    set: AtomicBool,
    /// A wider flag that cancels this one too (the pool's, for one call's).
    parent: Option<Arc<CancelFlag>>,
}

impl CancelFlag {
    /// A flag of its own that also reads as cancelled once `parent` is.
    pub(crate) fn under(parent: &Arc<CancelFlag>) -> Self {
        CancelFlag {
            set: AtomicBool::new(false),
            parent: Some(Arc::clone(parent)),
        }
    }

    pub(crate) fn cancel(&self) {
        self.set.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.set.load(Ordering::Relaxed) || self.parent.as_ref().is_some_and(|p| p.is_cancelled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_lowest_failure_whatever_the_order() {
        let runner: ItemRunner<u32, String> = ItemRunner::new(false, None);
        for index in [7, 3, 9, 5] {
            let failure = runner
                .run(index, None, 0, |_| Err::<(), _>(format!("bad {index}")))
                .unwrap_err();
            runner.record(failure);
        }
        assert!(runner.is_past_failure(4));
        assert!(!runner.is_past_failure(3));
        assert_eq!(
            runner
                .take_failure()
                .unwrap()
                .into_original(std::panic::Location::caller()),
            "bad 3"
        );
    }

    #[test]
    fn renders_inputs_only_in_debug_mode() {
        let render: Render<u32> = |x| format!("{x:?}");
        let quiet: ItemRunner<u32, String> = ItemRunner::new(false, Some(render));
        let loud: ItemRunner<u32, String> = ItemRunner::new(true, Some(render));
        let fail = |_| Err::<(), _>("no".to_owned());
        let quiet_err = quiet
            .run(0, None, 42, fail)
            .unwrap_err()
            .into_worker_error();
        let loud_err = loud.run(0, None, 42, fail).unwrap_err().into_worker_error();
        assert_eq!(quiet_err.input(), None);
        assert_eq!(loud_err.input(), Some("42"));
    }
}
