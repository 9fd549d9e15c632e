//! The deadlines of an [`AsyncMultiPool`](super::AsyncMultiPool) with a `timeout`, kept on
//! a thread of their own: a task that blocks its worker's thread (`std::thread::sleep`,
//! blocking I/O, a long computation) cannot be dropped by its own runtime's timer, which
//! runs on that same thread. The watchdog answers such an item `TimedOut` at its deadline
//! all the same; the blocked thread finishes the call it is in, and the task's late result
//! is thrown away.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Something to do at a deadline unless it was done already (an item's `TimedOut`).
pub(crate) trait Expire: Send + Sync {
    fn expire(&self);
}

/// The deadlines of one pool, all `after` from when their task started.
pub(crate) struct Watchdog {
    after: Duration,
    queue: Mutex<Deadlines>,
    changed: Condvar,
    /// Tasks that still hold their entry: entries beyond twice this are mostly finished
    /// tasks, and are swept so that the queue stays as large as the work in flight.
    live: AtomicUsize,
}

struct Deadlines {
    /// In deadline order: every task has the same `after`, and each deadline is taken
    /// under the lock.
    entries: VecDeque<(Instant, Weak<dyn Expire>)>,
    stopped: bool,
}

impl Watchdog {
    /// Starts the watchdog's thread; the pool stops it with [`stop`](Self::stop) and
    /// joins it.
    pub(crate) fn start(
        after: Duration,
    ) -> std::io::Result<(Arc<Watchdog>, std::thread::JoinHandle<()>)> {
        let watchdog = Arc::new(Watchdog {
            after,
            queue: Mutex::new(Deadlines {
                entries: VecDeque::new(),
                stopped: false,
            }),
            changed: Condvar::new(),
            live: AtomicUsize::new(0),
        });
        let watching = Arc::clone(&watchdog);
        let thread = std::thread::Builder::new()
            .name("twat-mp-aio-deadlines".to_owned())
            .spawn(move || watching.run())?;
        Ok((watchdog, thread))
    }

    pub(crate) fn after(&self) -> Duration {
        self.after
    }

    fn lock(&self) -> MutexGuard<'_, Deadlines> {
        // Held only by this module's short sections; `expire` runs outside it.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Expires `target` `after` from now, unless it is gone by then. The caller calls
    /// [`finished`](Self::finished) once when `target` is dropped.
    pub(crate) fn watch(&self, target: Weak<dyn Expire>) {
        let live = self.live.fetch_add(1, Ordering::Relaxed) + 1;
        let mut queue = self.lock();
        let was_empty = queue.entries.is_empty();
        queue
            .entries
            .push_back((Instant::now() + self.after, target));
        if queue.entries.len() > 2 * live + 1024 {
            queue
                .entries
                .retain(|(_, target)| target.strong_count() > 0);
        }
        drop(queue);
        if was_empty {
            self.changed.notify_one();
        }
    }

    /// A watched target was dropped.
    pub(crate) fn finished(&self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    /// Stops the thread; deadlines still ahead will not fire.
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_one();
    }

    fn run(&self) {
        let mut queue = self.lock();
        loop {
            if queue.stopped {
                return;
            }
            let now = Instant::now();
            match queue.entries.front() {
                None => {
                    queue = self.changed.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
                Some(&(deadline, _)) if deadline <= now => {
                    let (_, target) = queue.entries.pop_front().expect("the front entry");
                    drop(queue);
                    if let Some(target) = target.upgrade() {
                        target.expire();
                    }
                    queue = self.lock();
                }
                Some(&(deadline, _)) => {
                    queue = self
                        .changed
                        .wait_timeout(queue, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
    }
}
