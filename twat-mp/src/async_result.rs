//! [`AsyncResult`]: the handle `amap` and `apipe` return at once, as pathos's `AsyncResult`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// What a finished job hands over: it runs in the thread that collects the result, so
/// that a panic the attributes re-raise resumes in the caller, not in a worker.
type Handover<T> = Box<dyn FnOnce() -> T + Send + 'static>;

/// The result of work that is still running: returned at once by `amap` and `apipe`.
///
/// Collect it with [`get`](Self::get) (blocks), poll it with [`ready`](Self::ready), wait
/// a bounded time with [`wait`](Self::wait), or `.await` it from async code (it never
/// blocks the executor). Dropping it does not stop the work; the pool still finishes it.
///
/// ```
/// use twat_mp::ThreadPool;
/// use std::time::Duration;
///
/// let pool = ThreadPool::with_nodes(2)?;
/// let mut pending = pool.amap(|x: u64| (1..=x).product::<u64>(), vec![5, 10, 15]);
/// // ... the caller is free to do other work here ...
/// assert!(pending.wait(Duration::from_secs(60)));
/// assert!(pending.ready());
/// assert_eq!(pending.get()?, vec![120, 3_628_800, 1_307_674_368_000]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncResult<T> {
    receiver: Option<oneshot::Receiver<Handover<T>>>,
    received: Option<Handover<T>>,
    /// What `get` gives when the job was dropped without an answer.
    lost: fn() -> T,
}

/// The sending half of an [`AsyncResult`], held by the job that computes it.
pub(crate) struct Completer<T> {
    sender: oneshot::Sender<Handover<T>>,
}

impl<T> Completer<T> {
    /// Hands `value` to the waiting [`AsyncResult`], if anyone still waits for it.
    pub(crate) fn complete(self, value: T)
    where
        T: Send + 'static,
    {
        self.finish_with(move || value);
    }

    /// Hands over a closure that makes the value in the collecting thread.
    pub(crate) fn finish_with(self, make: impl FnOnce() -> T + Send + 'static) {
        // A receiver dropped unanswered is fine: nobody wants the result any more.
        let _ = self.sender.send(Box::new(make));
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
        },
    )
}

impl<T> AsyncResult<T> {
    /// Whether the work is done, so that [`get`](Self::get) will not block.
    pub fn ready(&self) -> bool {
        self.received.is_some()
            || self
                .receiver
                .as_ref()
                .is_none_or(|r| r.has_message() || r.is_closed())
    }

    /// Waits until the work is done or `timeout` has passed; returns whether it is done.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        if self.received.is_some() {
            return true;
        }
        let Some(receiver) = &self.receiver else {
            return true;
        };
        match receiver.recv_timeout(timeout) {
            Ok(outcome) => {
                self.received = Some(outcome);
                self.receiver = None;
                true
            }
            Err(oneshot::RecvTimeoutError::Timeout) => false,
            Err(oneshot::RecvTimeoutError::Disconnected) => {
                self.receiver = None;
                true
            }
        }
    }

    /// Blocks until the work is done and returns its result.
    pub fn get(mut self) -> T {
        if let Some(outcome) = self.received.take() {
            return outcome();
        }
        match self.receiver.take().map(oneshot::Receiver::recv) {
            Some(Ok(outcome)) => outcome(),
            Some(Err(oneshot::RecvError)) | None => (self.lost)(),
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
        done.complete(Ok(7));
        assert!(pending.ready());
        assert_eq!(pending.get(), Ok(7));
    }

    #[test]
    fn wait_times_out_then_succeeds() {
        let (done, mut pending) = async_result(lost);
        assert!(!pending.wait(Duration::from_millis(10)));
        std::thread::spawn(move || done.complete(Ok(1)));
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
