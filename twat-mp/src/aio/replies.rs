//! The channel that brings a call's answers back from the workers, waking the caller once
//! per batch rather than once per answer.
//!
//! A worker that answers an item only notes that the call is to be woken, and wakes each
//! noted call once: when it has nothing else to run (just before its thread parks), or,
//! while it stays busy, after [`ROUND`] answers or a millisecond, whichever comes first
//! (its [`flusher`] task). Waking a caller on another thread costs a system call; one per
//! round keeps the cost per item close to that of a task on the caller's own runtime.
//! Answers sent from any other thread (the watchdog, a pool dropped by the caller) wake
//! at once.
//!
//! Each worker notes its own wakes: a worker whose thread a task blocks delays only the
//! wake of answers it gave itself in the same round, and any answer of another worker to
//! the same call brings those along.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::Notify;

use crate::engine::item::Outcome;
// loom's in the model checks (`crate::model_checks`).
use crate::sync::{AtomicBool, Mutex, MutexGuard};

thread_local! {
    /// On a worker thread: the callers to wake once the tasks ready now have run.
    static DEFERRED: RefCell<Option<Vec<Arc<Caller>>>> = const { RefCell::new(None) };
    /// The worker's flusher task, while it waits for notes.
    static FLUSHER: RefCell<Option<Waker>> = const { RefCell::new(None) };
    /// Answers given on this worker since the last flush.
    static NOTED: Cell<usize> = const { Cell::new(0) };
}

/// A busy worker wakes its callers at least every this many answers.
const ROUND: usize = 128;
/// ... and at least this soon after the first answer of a round.
const ROUND_TIME: Duration = Duration::from_millis(1);

/// Marks the current thread as a worker: answers sent from it wake their callers when
/// its [`flusher`] runs, or at the next [`flush`].
pub(crate) fn defer_wakes_on_this_thread() {
    DEFERRED.with(|deferred| *deferred.borrow_mut() = Some(Vec::new()));
}

/// The task, spawned on each worker's `LocalSet`, that wakes the noted callers of a busy
/// worker: after [`ROUND`] answers or [`ROUND_TIME`] from the first. (An idle worker has
/// flushed already, before parking.)
pub(crate) async fn flusher() {
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(move |cx| {
        loop {
            let pending = DEFERRED.with(|d| d.borrow().as_ref().is_some_and(|p| !p.is_empty()));
            if !pending {
                timer = None;
            } else if NOTED.with(Cell::get) >= ROUND
                || timer
                    .as_mut()
                    .is_some_and(|t| t.as_mut().poll(cx).is_ready())
            {
                flush();
                timer = None;
                continue;
            } else if timer.is_none() {
                timer = Some(Box::pin(tokio::time::sleep(ROUND_TIME)));
                continue; // Polls it, so that it wakes this task.
            }
            FLUSHER.with(|flusher| *flusher.borrow_mut() = Some(cx.waker().clone()));
            return Poll::<()>::Pending;
        }
    })
    .await;
}

/// Wakes every caller that this worker thread has answered since the last flush.
pub(crate) fn flush() {
    let pending = DEFERRED.with(|deferred| {
        deferred
            .borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    });
    NOTED.with(|noted| noted.set(0));
    for caller in pending {
        caller.wake();
    }
}

/// Lock a mutex that is held only by this module's short sections, which do not panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The caller of one call, as its workers see it: how to wake it, and whether it is gone.
struct Caller {
    waker: Mutex<Option<Waker>>,
    /// The caller is gone: nobody wants the answers.
    closed: AtomicBool,
    /// Wakes the running tasks of a call whose caller has gone, so that they stop.
    on_close: Notify,
}

impl Caller {
    fn wake(&self) {
        let waker = lock(&self.waker).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The answers of one call, shared by the caller and every job of the call.
pub(crate) struct Replies<R, E> {
    answers: Mutex<Vec<(usize, Outcome<R, E>)>>,
    caller: Arc<Caller>,
}

impl<R, E> Replies<R, E> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Replies {
            answers: Mutex::new(Vec::new()),
            caller: Arc::new(Caller {
                waker: Mutex::new(None),
                closed: AtomicBool::new(false),
                on_close: Notify::new(),
            }),
        })
    }

    /// Hands an item's answer to the caller.
    pub(crate) fn send(&self, index: usize, outcome: Outcome<R, E>) {
        if self.is_closed() {
            return;
        }
        lock(&self.answers).push((index, outcome));
        let now = DEFERRED.with(|deferred| match deferred.borrow_mut().as_mut() {
            Some(pending) => {
                let noted = NOTED.with(|noted| {
                    noted.set(noted.get() + 1);
                    noted.get()
                });
                if pending.is_empty() || noted == ROUND {
                    if let Some(flusher) = FLUSHER.with(|f| f.borrow_mut().take()) {
                        flusher.wake();
                    }
                }
                // Answers of one call mostly come together: looking at the last few
                // notes finds nearly every repeat (one missed costs a spare wake).
                let noted = pending
                    .iter()
                    .rev()
                    .take(8)
                    .any(|caller| Arc::ptr_eq(caller, &self.caller));
                if !noted {
                    pending.push(Arc::clone(&self.caller));
                }
                false
            }
            None => true,
        });
        if now {
            self.caller.wake();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.caller.closed.load(Ordering::SeqCst)
    }

    /// Resolves once the caller is gone.
    pub(crate) async fn closed(&self) {
        let notified = self.caller.on_close.notified();
        if self.is_closed() {
            return;
        }
        notified.await;
    }

    /// The caller's side: moves the answers that have come into `into` (empty), or
    /// registers the caller's waker when none has.
    pub(crate) fn poll_take(
        &self,
        cx: &mut Context<'_>,
        into: &mut Vec<(usize, Outcome<R, E>)>,
    ) -> Poll<()> {
        {
            // The waker first, then the answers: an answer sent after this look wakes it.
            let mut waker = lock(&self.caller.waker);
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        let mut answers = lock(&self.answers);
        if answers.is_empty() {
            return Poll::Pending;
        }
        std::mem::swap(&mut *answers, into);
        Poll::Ready(())
    }

    /// The caller is gone: refuses further answers and stops the call's running tasks.
    pub(crate) fn close(&self) {
        self.caller.closed.store(true, Ordering::SeqCst);
        self.caller.on_close.notify_waiters();
        let answers = std::mem::take(&mut *lock(&self.answers));
        let waker = lock(&self.caller.waker).take();
        drop((answers, waker)); // Outside the locks: results may run any code on drop.
    }
}
