//! What the threads of a process pool share to hand batches to its slots and to stop
//! them: the queue of batches (which the calls fill and the slot threads wait on) and,
//! per slot, what another thread needs to stop its worker. The slot threads
//! (`process::slot`), the calls (`process::call`) and an `MpiPool`'s ranks go through it.
//!
//! It is the process pool's hand-written coordination between threads, kept apart from
//! the worker processes and their sockets (a socket is only something to [`Interrupt`]),
//! so that the loom model checks (`model_checks`) run this very code, its primitives
//! taken from [`crate::sync`], under every interleaving: a batch queued reaches one slot
//! (no wake-up is lost to the count of waiting slots), a slot blocked on the worker of a
//! call that is stopped or of a pool that terminates is always woken.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::sync::{AtomicBool, Condvar, Mutex, MutexGuard};

/// What wakes a slot thread blocked on its worker: shutting the worker's socket down.
pub(crate) trait Interrupt {
    fn interrupt(&self);
}

impl Interrupt for std::os::unix::net::UnixStream {
    fn interrupt(&self) {
        // Wakes the slot thread blocked reading it; it then kills its worker.
        let _ = self.shutdown(std::net::Shutdown::Both);
    }
}

/// The queue of batches `B` of one pool, and the stop handles of its slots, whose
/// workers are reached through sockets `S`.
pub(crate) struct Dispatch<B, S> {
    queue: Mutex<Queue<B>>,
    work: Condvar,
    /// What other threads need of each slot to stop its worker.
    slots: Vec<Mutex<SlotState<S>>>,
}

struct Queue<B> {
    batches: VecDeque<B>,
    state: State,
    /// Counts the calls with a per-call state that ended: a slot whose worker holds
    /// states looks at it to drop theirs at once, even when no other work comes.
    ended: u64,
    /// Slot threads waiting for work: a batch queued while none waits wakes nobody (a
    /// system call less per batch while the slots are busy).
    waiting: usize,
}

/// What a slot thread does next.
pub(crate) enum Next<B> {
    Batch(B),
    /// A call with a per-call state ended: tell the worker to drop the states it holds
    /// for calls that ended.
    Forget,
}

/// What [`Dispatch::poll`] found.
pub(crate) enum Polled<B> {
    Next(Next<B>),
    /// Nothing within the time given.
    Nothing,
    /// The pool is closing with nothing queued, or terminating.
    Over,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Finish what is queued, then stop the workers.
    Closing,
    /// Stop now: queued work is cancelled and the workers are killed.
    Terminating,
}

/// What other threads need of one slot to stop its worker (a call stopped, the pool
/// terminating): interrupting the worker's socket wakes the slot thread blocked on it,
/// which then kills the worker.
struct SlotState<S> {
    /// The current worker's socket.
    socket: Option<S>,
    /// The call whose items the slot's worker is running, while some are unanswered.
    serving: Option<Arc<Cancel>>,
    /// The worker was stopped for that call: it is killed and replaced after the batch.
    stopped: bool,
}

/// Whether a call was stopped; also what names the call to [`Dispatch::stop_call`].
#[derive(Debug, Default)]
pub(crate) struct Cancel(AtomicBool);

impl Cancel {
    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl<B, S: Interrupt> Dispatch<B, S> {
    /// An empty queue, running, for `slots` slots that have no worker yet.
    pub(crate) fn new(slots: usize) -> Self {
        Dispatch {
            queue: Mutex::new(Queue {
                batches: VecDeque::new(),
                state: State::Running,
                ended: 0,
                waiting: 0,
            }),
            work: Condvar::new(),
            slots: (0..slots)
                .map(|_| {
                    Mutex::new(SlotState {
                        socket: None,
                        serving: None,
                        stopped: false,
                    })
                })
                .collect(),
        }
    }

    /// Queues `batches` (taking them), in their order, with one lock of the queue; a pool
    /// that is stopping cancels them instead (drops them).
    pub(crate) fn submit(&self, batches: &mut Vec<B>) {
        if batches.is_empty() {
            return;
        }
        let mut queue = lock(&self.queue);
        if queue.state == State::Running {
            let count = batches.len();
            queue.batches.extend(batches.drain(..));
            let wake = queue.waiting.min(count);
            drop(queue);
            for _ in 0..wake {
                self.work.notify_one();
            }
        } else {
            drop(queue);
            batches.clear();
        }
    }

    /// Puts batches back at the front of the queue, in their order: they were sent ahead
    /// to a worker that is gone before it began them. A pool that is terminating cancels
    /// them.
    pub(crate) fn requeue(&self, batches: impl DoubleEndedIterator<Item = B>) {
        let mut queue = lock(&self.queue);
        if queue.state == State::Terminating {
            drop(queue);
            batches.for_each(drop);
            return;
        }
        for batch in batches.rev() {
            queue.batches.push_front(batch);
        }
        drop(queue);
        self.work.notify_all();
    }

    /// The batch at the front of the queue, if it `fits`.
    pub(crate) fn take_if(&self, fits: impl FnOnce(&B) -> bool) -> Option<B> {
        let mut queue = lock(&self.queue);
        if queue.state == State::Terminating {
            return None;
        }
        if !fits(queue.batches.front()?) {
            return None;
        }
        queue.batches.pop_front()
    }

    /// The next batch, or [`Next::Forget`] when `holding` (the worker holds states of
    /// calls) and a call with a state ended since `seen`; waiting at most `wait` for it
    /// (`None`: until there is one or the pool stops).
    pub(crate) fn poll(&self, seen: &mut u64, holding: bool, wait: Option<Duration>) -> Polled<B> {
        let deadline = wait.map(|wait| Instant::now() + wait);
        let mut queue = lock(&self.queue);
        loop {
            if queue.state == State::Terminating {
                return Polled::Over;
            }
            if let Some(batch) = queue.batches.pop_front() {
                return Polled::Next(Next::Batch(batch));
            }
            if holding && queue.ended != *seen {
                *seen = queue.ended;
                return Polled::Next(Next::Forget);
            }
            if queue.state == State::Closing {
                return Polled::Over;
            }
            let left = match deadline {
                None => None,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Polled::Nothing;
                    }
                    Some(left)
                }
            };
            queue.waiting += 1;
            queue = match left {
                None => self.work.wait(queue).unwrap_or_else(|p| p.into_inner()),
                Some(left) => {
                    self.work
                        .wait_timeout(queue, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            queue.waiting -= 1;
        }
    }

    /// Whether the call of `cancel` was stopped or the pool is terminating: a slot looks
    /// before it starts a worker for the call, after [`serve`](Self::serve), so that a stop
    /// either finds it serving or is seen here.
    pub(crate) fn stopping(&self, cancel: &Cancel) -> bool {
        cancel.is_set() || self.terminating()
    }

    pub(crate) fn terminating(&self) -> bool {
        lock(&self.queue).state == State::Terminating
    }

    /// Lets the slots finish the queue, then stop their workers.
    pub(crate) fn close(&self) {
        let mut queue = lock(&self.queue);
        if queue.state == State::Running {
            queue.state = State::Closing;
        }
        drop(queue);
        self.work.notify_all();
    }

    /// Cancels (drops) all queued work and interrupts every slot's worker now.
    pub(crate) fn terminate(&self) {
        let cancelled = {
            let mut queue = lock(&self.queue);
            queue.state = State::Terminating;
            std::mem::take(&mut queue.batches)
        };
        drop(cancelled);
        self.work.notify_all();
        for slot in &self.slots {
            if let Some(socket) = lock(slot).socket.as_ref() {
                socket.interrupt();
            }
        }
    }

    /// Stops the call of `cancel`: its batches still queued are skipped (the slots see
    /// `cancel` set), and every slot running one of its items has its worker interrupted
    /// and marked as stopped (it is killed and replaced after the batch).
    pub(crate) fn stop_call(&self, cancel: &Arc<Cancel>) {
        cancel.set();
        for slot in &self.slots {
            let mut slot = lock(slot);
            if slot
                .serving
                .as_ref()
                .is_some_and(|serving| Arc::ptr_eq(serving, cancel))
            {
                slot.stopped = true;
                if let Some(socket) = slot.socket.as_ref() {
                    socket.interrupt();
                }
            }
        }
    }

    /// A call with a per-call state ended: the slots whose workers hold states drop the
    /// ones of calls that ended, now rather than when they next get work.
    pub(crate) fn call_ended(&self) {
        lock(&self.queue).ended += 1;
        self.work.notify_all();
    }

    /// Marks slot `index` as running items of the call of `cancel` (`None`: of no call any
    /// more); returns whether its worker was stopped meanwhile.
    pub(crate) fn serve(&self, index: usize, cancel: Option<&Arc<Cancel>>) -> bool {
        let mut slot = lock(&self.slots[index]);
        slot.serving = cancel.cloned();
        std::mem::take(&mut slot.stopped)
    }

    /// Slot `index` has every answer of the call it serves at hand: stopping that call no
    /// longer stops its worker (a stop that came before still counts).
    pub(crate) fn release(&self, index: usize) {
        lock(&self.slots[index]).serving = None;
    }

    /// Publishes the socket of slot `index`'s new worker, so that a stop can interrupt
    /// it; interrupted at once if [`stop_call`](Self::stop_call) or
    /// [`terminate`](Self::terminate) ran before it was published.
    pub(crate) fn publish(&self, index: usize, socket: S) {
        let mut slot = lock(&self.slots[index]);
        if slot.stopped || self.terminating() {
            socket.interrupt();
        }
        slot.socket = Some(socket);
    }

    /// Slot `index`'s worker is gone: nothing is left to interrupt.
    pub(crate) fn withdraw(&self, index: usize) {
        lock(&self.slots[index]).socket = None;
    }
}
