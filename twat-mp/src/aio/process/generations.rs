//! The worker processes of an [`AsyncProcessPool`](super::AsyncProcessPool), a
//! generation at a time: `maxtasksperchild` moves the pool to a fresh generation and lets
//! the old one finish its groups.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::debug::event;
use crate::error::BuildError;
use crate::process::ProcessPool;

/// The worker processes, a generation at a time, shared with the calls in progress.
pub(super) struct Generations {
    current: Mutex<Generation>,
    /// Older generations exiting once their last groups are done.
    retiring: Mutex<Vec<std::thread::JoinHandle<()>>>,
    nodes: usize,
    timeout: Option<Duration>,
    maxtasksperchild: Option<usize>,
    debug: bool,
}

/// The current set of worker processes and how many tasks it was given.
pub(super) struct Generation {
    pool: Arc<ProcessPool>,
    given: usize,
    number: usize,
}

impl Generations {
    /// The first generation's pool (its worker processes start when work needs them).
    pub(super) fn new(
        nodes: usize,
        timeout: Option<Duration>,
        maxtasksperchild: Option<usize>,
        debug: bool,
    ) -> Result<Self, BuildError> {
        Ok(Generations {
            current: Mutex::new(Generation {
                pool: Arc::new(process_pool(nodes, timeout, debug)?),
                given: 0,
                number: 0,
            }),
            retiring: Mutex::new(Vec::new()),
            nodes,
            timeout,
            maxtasksperchild,
            debug,
        })
    }

    /// The workers for a group of `tasks`: a fresh generation first when this group would
    /// take the current one past `maxtasksperchild` tasks (a bound on every worker in it,
    /// since none can have run more than the whole generation was given).
    pub(super) fn pool_for(&self, tasks: usize) -> Arc<ProcessPool> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let past_max = self
            .maxtasksperchild
            .is_some_and(|max| current.given > 0 && current.given + tasks > max);
        if past_max {
            match process_pool(self.nodes, self.timeout, self.debug) {
                Ok(fresh) => {
                    let old = std::mem::replace(&mut current.pool, Arc::new(fresh));
                    current.given = 0;
                    current.number += 1;
                    event!(
                        self.debug,
                        generation = current.number,
                        "async process pool moved to fresh worker processes (maxtasksperchild)"
                    );
                    self.retire(old);
                }
                Err(err) => {
                    event!(self.debug, %err, "could not start fresh worker processes; the current ones go on");
                }
            }
        }
        current.given += tasks;
        Arc::clone(&current.pool)
    }

    /// Lets `old` finish its groups and stop its workers, off the caller's thread.
    fn retire(&self, old: Arc<ProcessPool>) {
        let mut retiring = self.retiring.lock().unwrap_or_else(|p| p.into_inner());
        retiring.retain(|thread| !thread.is_finished());
        // Should no thread be had, `old` is dropped here, waiting for its groups.
        if let Ok(thread) = std::thread::Builder::new()
            .name("twat-mp-aio-retire".into())
            .spawn(move || drop(old))
        {
            retiring.push(thread);
        }
    }
}

impl Drop for Generations {
    fn drop(&mut self) {
        let retiring =
            std::mem::take(&mut *self.retiring.lock().unwrap_or_else(|p| p.into_inner()));
        for thread in retiring {
            let _ = thread.join();
        }
    }
}

/// The process pool under one generation of workers. Each group is one item of it; the
/// per-task timeout runs inside the workers, and the pool's own timeout only backs it up
/// for tasks that block.
fn process_pool(
    nodes: usize,
    timeout: Option<Duration>,
    debug: bool,
) -> Result<ProcessPool, BuildError> {
    let mut builder = ProcessPool::builder()
        .nodes(nodes)
        .chunksize(1)
        .debug(debug);
    if let Some(timeout) = timeout {
        builder = builder.timeout(
            timeout
                .saturating_mul(2)
                .saturating_add(Duration::from_secs(1)),
        );
    }
    builder.build()
}
