//! [`AsyncResult`]: the handle `amap` and `apipe` return at once, as pathos's `AsyncResult`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What a finished job hands over: it runs in the thread that collects the result, so
/// that a panic the attributes re-raise resumes in the caller, not in a worker.
type Handover<T> = Box<dyn FnOnce() -> T + Send + 'static>;

/// The result of work that is still running: returned at once by `amap` and `apipe`.
///
/// Collect it with [`get`](Self::get) (blocks), poll it with [`ready`](Self::ready), wait
/// a bounded time with [`wait`](Self::wait), or `.await` it from async code (it never
/// blocks the executor).
///
/// Dropping it before its result was received cancels the work: the items that have not
/// started never start. What runs then depends on the pool: a
/// [`ProcessPool`](crate::ProcessPool) kills the worker processes running the call's
/// items (they are replaced when work next needs them), so that nothing of the call
/// runs on and the pool's drop waits for none of it; a [`ThreadPool`](crate::ThreadPool)
/// cannot stop a thread, so the items already running finish, and their results are
/// dropped. Keep it (or call [`get`](Self::get)) for the work to finish.
///
/// ```
/// use twat_mp::ThreadPool;
/// use std::time::{Duration, Instant};
///
/// let pool = ThreadPool::with_nodes(2)?;
/// let mut pending = pool.amap(|x: u64| (1..=x).product::<u64>(), vec![5, 10, 15]);
/// // ... the caller is free to do other work here ...
/// assert!(pending.wait(Duration::from_secs(60)));
/// assert!(pending.ready());
/// assert_eq!(pending.get()?, vec![120, 3_628_800, 1_307_674_368_000]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping an AsyncResult cancels its work: keep it and collect it (`get`, `.await`)"]
pub struct AsyncResult<T> {
    receiver: Option<oneshot::Receiver<Handover<T>>>,
    received: Option<Handover<T>>,
    /// What `get` gives when the job was dropped without an answer.
    lost: fn() -> T,
    /// What cancels the work, run if this is dropped before the result was received.
    cancel: Option<Box<dyn FnOnce() + Send>>,
}

/// The sending half of an [`AsyncResult`], held by the job that computes it.
pub(crate) struct Completer<T> {
    sender: oneshot::Sender<Handover<T>>,
}

impl<T> Completer<T> {
    /// Hands over `outcome`, turned into the value by `make` in the collecting thread.
    /// A failure that nobody waits for any more (the [`AsyncResult`] was dropped) is
    /// printed instead of lost.
    pub(crate) fn finish_outcome<V, F>(
        self,
        outcome: Result<V, F>,
        make: impl FnOnce(Result<V, F>) -> T + Send + 'static,
    ) where
        V: Send + 'static,
        F: Unreceived + Send + 'static,
    {
        if self.sender.is_closed() {
            if let Err(failure) = &outcome {
                failure.report_unreceived();
            }
            return;
        }
        self.finish_with(move || make(outcome));
    }

    /// Hands over a closure that makes the value in the collecting thread.
    pub(crate) fn finish_with(self, make: impl FnOnce() -> T + Send + 'static) {
        // A receiver dropped unanswered is fine: nobody wants the result any more.
        let _ = self.sender.send(Box::new(make));
    }
}

/// A failure that can say what it was when nobody received it.
pub(crate) trait Unreceived {
    fn report_unreceived(&self);
}

impl Unreceived for crate::WorkerError {
    fn report_unreceived(&self) {
        // A call cancelled because its `AsyncResult` was dropped: what its owner asked for.
        if matches!(self.kind(), crate::ErrorKind::Cancelled) {
            return;
        }
        crate::panic_capture::report_unreceived(self);
    }
}

impl<E> Unreceived for crate::engine::item::ItemFailure<E> {
    fn report_unreceived(&self) {
        if let crate::engine::item::ItemFailure::Worker(err) = self {
            err.report_unreceived();
        }
    }
}

/// A linked pair: the job keeps the [`Completer`], the caller the [`AsyncResult`].
/// `lost` makes the value the caller gets if the job is dropped without completing.
pub(crate) fn async_result<T>(lost: fn() -> T) -> (Completer<T>, AsyncResult<T>) {
    let (sender, receiver) = oneshot::channel();
    (
        Completer { sender },
        AsyncResult {
            receiver: Some(receiver),
            received: None,
            lost,
            cancel: None,
        },
    )
}

impl<T> AsyncResult<T> {
    /// Runs `cancel` if this is dropped before its result was received (by `get`, by
    /// `wait` or `ready` finding it done, or by `.await`): the pool's way to stop the work
    /// that nobody wants any more.
    pub(crate) fn cancel_on_drop(mut self, cancel: impl FnOnce() + Send + 'static) -> Self {
        self.cancel = Some(Box::new(cancel));
        self
    }

    /// Whether the work is done, so that [`get`](Self::get) will not block.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let mut pending = pool.amap(|x: u64| x * 2, [1, 2, 3]);
    /// while !pending.ready() {
    ///     // ... other work meanwhile ...
    ///     pending.wait(Duration::from_millis(1));
    /// }
    /// assert_eq!(pending.get()?, [2, 4, 6]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ready(&self) -> bool {
        self.received.is_some()
            || self
                .receiver
                .as_ref()
                .is_none_or(|r| r.has_message() || r.is_closed())
    }

    /// Waits until the work is done or `timeout` has passed; returns whether it is done.
    ///
    /// Called on one of a [`ThreadPool`](crate::ThreadPool)'s own threads (inside its
    /// `map`, say), it runs the pool's pending jobs while it waits, so that work it waits
    /// for can run even when every thread of the pool is waiting.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let mut pending = pool.amap(|x: u64| x + 1, 0..100);
    /// // At most 10 s: `false` if the work is still running then.
    /// if pending.wait(Duration::from_secs(10)) {
    ///     assert!(pending.ready());
    ///     assert_eq!(pending.get()?.len(), 100);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(&mut self, timeout: Duration) -> bool {
        if self.received.is_some() {
            return true;
        }
        let Some(receiver) = &self.receiver else {
            return true;
        };
        match receive(receiver, Some(Instant::now() + timeout)) {
            Received::Value(outcome) => {
                self.received = Some(outcome);
                self.receiver = None;
                true
            }
            Received::Nothing => false,
            Received::Dropped => {
                self.receiver = None;
                true
            }
        }
    }

    /// Blocks until the work is done and returns its result.
    ///
    /// Called on one of a [`ThreadPool`](crate::ThreadPool)'s own threads, it runs the
    /// pool's pending jobs while it waits (as rayon's `join` does), so that
    /// `pool.amap(..).get()` inside `pool.map(..)` finishes however few threads the pool
    /// has.
    ///
    /// ```
    /// use twat_mp::ThreadPool;
    ///
    /// let pool = ThreadPool::with_nodes(1)?;
    /// let sums = pool.map(
    ///     |n: u64| pool.amap(|x: u64| x * x, 0..n).get().map(|squares| squares.iter().sum::<u64>()),
    ///     [3, 4],
    /// )?;
    /// assert_eq!(sums.into_iter().collect::<Result<Vec<_>, _>>()?, [5, 14]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(mut self) -> T {
        if let Some(outcome) = self.received.take() {
            return outcome();
        }
        let Some(receiver) = self.receiver.take() else {
            return (self.lost)();
        };
        match receive(&receiver, None) {
            Received::Value(outcome) => outcome(),
            Received::Dropped | Received::Nothing => (self.lost)(),
        }
    }
}

/// What waiting for a job's hand-over gave.
enum Received<T> {
    Value(Handover<T>),
    /// The job was dropped without an answer.
    Dropped,
    /// The deadline passed first.
    Nothing,
}

/// Waits for the hand-over until `deadline` (or for ever). On a rayon pool's thread it
/// runs that pool's pending jobs meanwhile: the job waited for may be queued behind the
/// very job that waits, with no other thread free to run it.
fn receive<T>(receiver: &oneshot::Receiver<Handover<T>>, deadline: Option<Instant>) -> Received<T> {
    /// How long a pool thread with nothing to run sleeps before it looks for work again.
    const IDLE: Duration = Duration::from_millis(1);
    let on_pool_thread = rayon::current_thread_index().is_some();
    loop {
        let wait = match deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        };
        let wait = if on_pool_thread {
            match receiver.try_recv() {
                Ok(outcome) => return Received::Value(outcome),
                Err(oneshot::TryRecvError::Disconnected) => return Received::Dropped,
                Err(oneshot::TryRecvError::Empty) => {}
            }
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                continue;
            }
            wait.min(IDLE)
        } else {
            wait
        };
        let outcome = if wait == Duration::MAX {
            receiver
                .recv_ref()
                .map_err(|_| oneshot::RecvTimeoutError::Disconnected)
        } else {
            receiver.recv_timeout(wait)
        };
        match outcome {
            Ok(outcome) => return Received::Value(outcome),
            Err(oneshot::RecvTimeoutError::Disconnected) => return Received::Dropped,
            Err(oneshot::RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                    return Received::Nothing;
                }
            }
        }
    }
}

impl<T> Future for AsyncResult<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = &mut *self;
        if let Some(outcome) = this.received.take() {
            return Poll::Ready(outcome());
        }
        let Some(receiver) = this.receiver.as_mut() else {
            return Poll::Ready((this.lost)());
        };
        match Pin::new(receiver).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                this.receiver = None;
                Poll::Ready(match result {
                    Ok(outcome) => outcome(),
                    Err(oneshot::RecvError) => (this.lost)(),
                })
            }
        }
    }
}

impl<T> Drop for AsyncResult<T> {
    fn drop(&mut self) {
        // Still waiting for the hand-over: nobody will take the result.
        if self.receiver.is_some() {
            if let Some(cancel) = self.cancel.take() {
                cancel();
            }
        }
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> Result<u32, &'static str> {
        Err("lost")
    }

    #[test]
    fn get_returns_the_completed_value() {
        let (done, pending) = async_result(lost);
        assert!(!pending.ready());
        done.finish_with(|| Ok(7));
        assert!(pending.ready());
        assert_eq!(pending.get(), Ok(7));
    }

    #[test]
    fn wait_times_out_then_succeeds() {
        let (done, mut pending) = async_result(lost);
        assert!(!pending.wait(Duration::from_millis(10)));
        std::thread::spawn(move || done.finish_with(|| Ok(1)));
        assert!(pending.wait(Duration::from_secs(30)));
        assert_eq!(pending.get(), Ok(1));
    }

    #[test]
    fn a_dropped_job_gives_the_lost_value() {
        let (done, pending) = async_result(lost);
        drop(done);
        assert!(pending.ready());
        assert_eq!(pending.get(), Err("lost"));
    }

    #[test]
    fn dropping_it_unreceived_cancels_and_receiving_it_does_not() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cancels = Arc::new(AtomicUsize::new(0));
        let counter = || {
            let cancels = Arc::clone(&cancels);
            move || {
                cancels.fetch_add(1, Ordering::SeqCst);
            }
        };
        let (_done, pending) = async_result(lost);
        drop(pending.cancel_on_drop(counter()));
        assert_eq!(cancels.load(Ordering::SeqCst), 1, "dropped while waiting");
        let (done, pending) = async_result(lost);
        let pending = pending.cancel_on_drop(counter());
        done.finish_with(|| Ok(3));
        assert_eq!(pending.get(), Ok(3));
        let (done, mut pending) = async_result(lost);
        pending = pending.cancel_on_drop(counter());
        done.finish_with(|| Ok(4));
        assert!(pending.wait(Duration::from_secs(30)));
        drop(pending);
        assert_eq!(
            cancels.load(Ordering::SeqCst),
            1,
            "received: nothing to cancel"
        );
    }

    #[test]
    fn outcome_runs_in_the_collecting_thread() {
        fn lost_id() -> std::thread::ThreadId {
            std::thread::current().id()
        }
        let (done, pending) = async_result(lost_id);
        std::thread::spawn(move || done.finish_with(|| std::thread::current().id()))
            .join()
            .unwrap();
        assert_eq!(pending.get(), std::thread::current().id());
    }
}
