//! Retries: which failures run an item again, and how many runs an item has had. Decided
//! here once for both process pools: [`ProcessPool`](crate::ProcessPool)'s slots ask it
//! when a worker dies under an item, the async pool's process mode when a session's
//! worker does.
//!
//! Only a worker process lost under the item is retried: it crashed
//! ([`ErrorKind::Crashed`]), or it was killed because the item ran past its timeout
//! ([`ErrorKind::TimedOut`]). Such a loss may be the worker's (memory exhausted by
//! earlier items, a signal from outside, a machine under load) rather than the item's, and
//! a fresh worker may succeed. A panic or a returned error is the function's own answer
//! to its item, the same on every run in the common case, and runs once; so do transport
//! errors and cancellations, which would fail again the same way.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::ErrorKind;

/// Whether an item that failed so runs again (when the pool has retries left for it).
pub(crate) fn is_retried(kind: &ErrorKind) -> bool {
    matches!(kind, ErrorKind::Crashed { .. } | ErrorKind::TimedOut { .. })
}

/// What becomes of an item whose worker was lost under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It runs again, on a fresh worker; `runs` runs of it failed so far.
    Again { runs: u32 },
    /// It fails after `attempts` runs.
    Fail { attempts: u32 },
}

/// The runs of the items of one call whose worker was lost under them, and the call's
/// limit of retries. Shared by the call and the threads that run its items; touched only
/// when a worker is lost and when an item fails, never on the way of a result.
#[derive(Debug)]
pub(crate) struct Attempts {
    retries: u32,
    /// Whether any item was lost: until then every failure had one run.
    any: AtomicBool,
    lost: Mutex<HashMap<usize, u32>>,
}

impl Attempts {
    /// A call whose items run again up to `retries` times.
    pub(crate) fn new(retries: u32) -> Self {
        Attempts {
            retries,
            any: AtomicBool::new(false),
            lost: Mutex::new(HashMap::new()),
        }
    }

    /// The item at `index` just failed so (its worker crashed, or it timed out): whether
    /// it runs again.
    pub(crate) fn lost(&self, index: usize, kind: &ErrorKind) -> Verdict {
        let mut lost = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        let runs = lost.entry(index).or_insert(0);
        *runs = runs.saturating_add(1);
        self.any.store(true, Ordering::Relaxed);
        if is_retried(kind) && *runs <= self.retries {
            Verdict::Again { runs: *runs }
        } else {
            Verdict::Fail { attempts: *runs }
        }
    }

    /// How many runs the item at `index` had, counting the one that just answered: one
    /// more than the runs lost under it before.
    pub(crate) fn runs(&self, index: usize) -> u32 {
        if !self.any.load(Ordering::Relaxed) {
            return 1;
        }
        let lost = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        lost.get(&index).map_or(1, |runs| runs.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn crashed() -> ErrorKind {
        ErrorKind::Crashed {
            status: "was killed by signal 9 (SIGKILL)".into(),
        }
    }

    #[test]
    fn lost_items_run_again_up_to_the_limit_and_count_their_runs() {
        let attempts = Attempts::new(2);
        assert_eq!(attempts.runs(7), 1);
        assert_eq!(attempts.lost(7, &crashed()), Verdict::Again { runs: 1 });
        let timed_out = ErrorKind::TimedOut {
            after: Duration::from_millis(5),
        };
        assert_eq!(attempts.lost(7, &timed_out), Verdict::Again { runs: 2 });
        assert_eq!(attempts.runs(7), 3);
        assert_eq!(attempts.lost(7, &crashed()), Verdict::Fail { attempts: 3 });
        // Other items keep their own count.
        assert_eq!(attempts.runs(8), 1);
        assert_eq!(attempts.lost(8, &crashed()), Verdict::Again { runs: 1 });
    }

    #[test]
    fn without_retries_or_for_other_failures_an_item_fails_at_once() {
        assert_eq!(
            Attempts::new(0).lost(0, &crashed()),
            Verdict::Fail { attempts: 1 }
        );
        let transport = ErrorKind::Transport("no".into());
        assert_eq!(
            Attempts::new(5).lost(0, &transport),
            Verdict::Fail { attempts: 1 }
        );
        assert!(!is_retried(&ErrorKind::Panicked {
            message: "boom".into()
        }));
    }
}
