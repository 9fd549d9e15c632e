//! How [`AsyncMultiPool`](super::AsyncMultiPool) hands jobs to its workers: one shared
//! queue (an injector) that each worker pulls from only when it will start the job at
//! once, so that work still queued goes to whichever worker is free.
//!
//! - **A worker takes only what it starts.** It takes one job, spawns it on its runtime and
//!   lets it run before taking the next: a task that blocks its thread holds no queued
//!   job, and the other workers take them all.
//! - **Nested work goes first and needs no slot.** A job sent by a task of this same pool
//!   (`pool.map` awaited inside its task, an `#[apmap]` function calling another with the
//!   same options) waits ahead of the outer jobs and runs even on a worker whose
//!   `concurrency` slots are all taken: the outer task that awaits it lends its slot. So
//!   nested calls always finish, however many outer items hold the slots.
//! - **Few wake-ups.** A caller pushes its jobs in batches and wakes one sleeping worker per
//!   batch; a worker that takes a job while more wait wakes one more. Busy workers are
//!   never woken.
//! - **No lock is held across an await**, so a pool dropped inside one of its own tasks
//!   stops its other workers without waiting on the worker that drops it.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::sync::Notify;

use super::dispatch::{Dispatch, Job, Start};

thread_local! {
    /// The scheduler whose worker this thread is (its address), or 0.
    static WORKER_OF: Cell<usize> = const { Cell::new(0) };
}

/// The queue of one pool and the workers waiting on it.
pub(crate) struct Scheduler {
    state: Mutex<State>,
    /// One per worker: how a sleeping worker is woken.
    wake: Box<[Notify]>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Busy, or about to look at the queue again.
    No,
    /// Asleep with free slots: any job wakes it.
    Any,
    /// Asleep with every slot taken: only nested jobs wake it.
    Nested,
}

struct State {
    /// Jobs sent by tasks of this pool: taken first, without a slot.
    nested: VecDeque<Job>,
    /// Every other job.
    outer: VecDeque<Job>,
    waiting: Vec<Waiting>,
    /// How many entries of `waiting` are not `No`.
    asleep: usize,
    closed: bool,
}

impl State {
    /// A sleeping worker that would take a job of this kind, marked awake.
    fn waiter(&mut self, nested: bool) -> Option<usize> {
        if self.asleep == 0 {
            return None;
        }
        let found = self
            .waiting
            .iter()
            .position(|&w| w == Waiting::Any || (nested && w == Waiting::Nested))?;
        self.waiting[found] = Waiting::No;
        self.asleep -= 1;
        Some(found)
    }

    /// A sleeping worker for the jobs still queued, if any.
    fn waiter_for_queued(&mut self) -> Option<usize> {
        if !self.nested.is_empty() {
            self.waiter(true)
        } else if !self.outer.is_empty() {
            self.waiter(false)
        } else {
            None
        }
    }
}

/// What a worker gets from the queue.
enum Take {
    Job {
        job: Job,
        nested: bool,
    },
    /// Nothing it may take now: it sleeps until woken.
    Sleep,
    /// The pool has shut down.
    Stop,
}

impl Scheduler {
    pub(crate) fn new(nodes: usize) -> Self {
        Scheduler {
            state: Mutex::new(State {
                nested: VecDeque::new(),
                outer: VecDeque::new(),
                waiting: vec![Waiting::No; nodes],
                asleep: 0,
                closed: false,
            }),
            wake: (0..nodes).map(|_| Notify::new()).collect(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is held only by this module's short, non-panicking sections.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// Whether the current thread is one of this pool's workers, i.e. the job comes from
    /// a task of this pool.
    fn is_own_worker(&self) -> bool {
        WORKER_OF.with(Cell::get) == self.id()
    }

    fn take(&self, worker: usize, has_room: bool) -> Take {
        let (taken, wake) = {
            let mut state = self.lock();
            if state.closed {
                return Take::Stop;
            }
            if state.waiting[worker] != Waiting::No {
                state.waiting[worker] = Waiting::No;
                state.asleep -= 1;
            }
            let taken = match state.nested.pop_front() {
                Some(job) => Take::Job { job, nested: true },
                None => match if has_room {
                    state.outer.pop_front()
                } else {
                    None
                } {
                    Some(job) => Take::Job { job, nested: false },
                    None => {
                        state.waiting[worker] = if has_room {
                            Waiting::Any
                        } else {
                            Waiting::Nested
                        };
                        state.asleep += 1;
                        return Take::Sleep;
                    }
                },
            };
            // More waiting than this worker takes: wake one more.
            (taken, state.waiter_for_queued())
        };
        if let Some(other) = wake {
            self.wake[other].notify_one();
        }
        taken
    }

    /// Refuses new jobs, wakes every worker to stop, and returns the jobs still queued
    /// (dropped by the caller, outside the lock: each answers `Cancelled`).
    pub(crate) fn close(&self) -> Vec<Job> {
        let queued = {
            let mut state = self.lock();
            state.closed = true;
            let mut queued: Vec<Job> = state.nested.drain(..).collect();
            queued.extend(state.outer.drain(..));
            queued
        };
        for wake in &self.wake {
            wake.notify_one();
        }
        queued
    }

    /// The serve loop of worker `index`, spawned on that worker's `LocalSet`: takes a job
    /// whenever it may start one, until the pool shuts down.
    pub(crate) async fn serve(self: std::sync::Arc<Self>, index: usize, concurrency: usize) {
        WORKER_OF.with(|w| w.set(self.id()));
        let slots = Rc::new(Slots {
            running: Cell::new(0),
            full: Cell::new(false),
        });
        loop {
            let has_room = slots.running.get() < concurrency;
            match self.take(index, has_room) {
                Take::Job { job, nested } => {
                    let slot = (!nested).then(|| {
                        slots.running.set(slots.running.get() + 1);
                        SlotGuard {
                            slots: Rc::clone(&slots),
                            scheduler: std::sync::Arc::clone(&self),
                            worker: index,
                        }
                    });
                    job(Start {
                        worker: index,
                        slot,
                    });
                    // Let the job start before taking another: if it blocks the thread,
                    // the jobs still queued stay free for the other workers.
                    YieldOnce(false).await;
                }
                Take::Sleep => {
                    slots.full.set(!has_room);
                    self.wake[index].notified().await;
                }
                Take::Stop => break,
            }
        }
    }
}

/// The slots of one worker, shared by its serve loop and its outer tasks.
struct Slots {
    running: Cell<usize>,
    /// The serve loop sleeps because every slot was taken: a task that ends wakes it.
    full: Cell<bool>,
}

/// The slot an outer task holds on its worker; given back when the task ends or is
/// dropped.
pub(crate) struct SlotGuard {
    slots: Rc<Slots>,
    scheduler: std::sync::Arc<Scheduler>,
    worker: usize,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.slots.running.set(self.slots.running.get() - 1);
        if self.slots.full.replace(false) {
            self.scheduler.wake[self.worker].notify_one();
        }
    }
}

/// Returns `Pending` once, waking itself: the tasks already scheduled on this worker's
/// `LocalSet` (the job just spawned among them) run before the serve loop goes on. A local
/// wake within the `LocalSet` costs no system call, unlike `tokio::task::yield_now`.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// How many jobs a caller pushes under one lock.
pub(crate) const BATCH: usize = 256;

impl Dispatch for Scheduler {
    fn dispatch(&self, jobs: Vec<Job>) {
        let nested = self.is_own_worker();
        let wake = {
            let mut state = self.lock();
            if state.closed {
                drop(state);
                // After shutdown each job is dropped, which answers its item `Cancelled`.
                drop(jobs);
                return;
            }
            if nested {
                state.nested.extend(jobs);
            } else {
                state.outer.extend(jobs);
            }
            state.waiter(nested)
        };
        if let Some(worker) = wake {
            self.wake[worker].notify_one();
        }
    }
}
