//! The settings every pool builder shares, checked in one place.
//!
//! Besides zeros, the checks refuse sizes no machine can honour, before anything is
//! started: each node of every pool is an OS thread (and, for process pools, a process
//! too), and a thread that cannot get its stack or signal stack aborts the program instead
//! of returning an error, so a pool of 100 000 nodes must never get as far as starting them.

use std::time::Duration;

use crate::debug;
use crate::error::BuildError;

/// What a builder was told, before it is checked. Each pool's builder keeps one and
/// exposes the setters that mean something for that pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) nodes: Option<usize>,
    pub(crate) chunksize: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) maxtasksperchild: Option<usize>,
    pub(crate) debug: bool,
    /// Keep [`Insights`](crate::Insights) (`.insights(true)`).
    pub(crate) insights: bool,
    /// Process pools: how many more times an item whose worker was lost runs.
    pub(crate) retries: u32,
    /// A progress bar per call (feature `progress`).
    pub(crate) progress: bool,
}

/// The most nodes a pool may have: each is an OS thread (a process pool's also starts a
/// process), and a few thousand threads already cost gigabytes of address space and
/// exhaust Linux's default limit on memory mappings (`vm.max_map_count`) long before
/// 100 000 of them.
///
/// ```
/// use twat_mp::{BuildError, MAX_NODES, ThreadPool};
///
/// let refused = ThreadPool::with_nodes(MAX_NODES + 1);
/// assert!(matches!(refused, Err(BuildError::TooLarge { .. })));
/// ```
pub const MAX_NODES: usize = 4096;

/// The most tasks one async worker may run at once (`concurrency`): tokio's semaphores
/// refuse more permits than about `usize::MAX / 8`, and no worker has use for more than
/// about a million tasks in flight.
///
/// ```
/// # #[cfg(feature = "aio")] {
/// use twat_mp::{AsyncMultiPool, BuildError, MAX_CONCURRENCY};
///
/// let refused = AsyncMultiPool::builder().concurrency(MAX_CONCURRENCY + 1).build();
/// assert!(matches!(refused, Err(BuildError::TooLarge { name: "concurrency", .. })));
/// # }
/// ```
pub const MAX_CONCURRENCY: usize = 1 << 20;

/// Settings that passed [`Settings::check`]: what a pool is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked {
    pub(crate) nodes: usize,
    pub(crate) chunksize: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    /// Read only by the async pools (feature `aio`).
    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) concurrency: Option<usize>,
    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) maxtasksperchild: Option<usize>,
    /// The pool's own `debug`, or the global debug mode.
    pub(crate) debug: bool,
    pub(crate) insights: bool,
    /// Read only by the process pools.
    pub(crate) retries: u32,
    /// A progress bar per call (feature `progress`).
    pub(crate) progress: bool,
}

impl Settings {
    /// The settings with the defaults filled in, or why they cannot make a pool.
    pub(crate) fn check(self) -> Result<Checked, BuildError> {
        let nodes = self.nodes.unwrap_or_else(default_nodes);
        if nodes == 0 {
            return Err(BuildError::NoNodes);
        }
        let positive = [
            ("chunksize", self.chunksize),
            ("concurrency", self.concurrency),
            ("maxtasksperchild", self.maxtasksperchild),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == Some(0)) {
            return Err(BuildError::Zero(name));
        }
        let bounded = [
            ("nodes", Some(nodes), MAX_NODES),
            ("concurrency", self.concurrency, MAX_CONCURRENCY),
        ];
        for (name, value, max) in bounded {
            if let Some(value) = value.filter(|&value| value > max) {
                return Err(BuildError::TooLarge { name, value, max });
            }
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(BuildError::Zero("timeout"));
        }
        Ok(Checked {
            nodes,
            chunksize: self.chunksize,
            timeout: self.timeout,
            concurrency: self.concurrency,
            maxtasksperchild: self.maxtasksperchild,
            debug: debug::enabled(self.debug),
            insights: self.insights,
            retries: self.retries,
            progress: self.progress,
        })
    }
}

/// The number of CPUs this process may use: cgroup quotas and affinity included.
pub(crate) fn default_nodes() -> usize {
    num_cpus::get().clamp(1, MAX_NODES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_refused_by_name() {
        let zero = |settings: Settings| settings.check().unwrap_err().to_string();
        let base = Settings::default();
        assert!(matches!(
            Settings {
                nodes: Some(0),
                ..base
            }
            .check(),
            Err(BuildError::NoNodes)
        ));
        for (name, settings) in [
            (
                "chunksize",
                Settings {
                    chunksize: Some(0),
                    ..base
                },
            ),
            (
                "concurrency",
                Settings {
                    concurrency: Some(0),
                    ..base
                },
            ),
            (
                "maxtasksperchild",
                Settings {
                    maxtasksperchild: Some(0),
                    ..base
                },
            ),
            (
                "timeout",
                Settings {
                    timeout: Some(Duration::ZERO),
                    ..base
                },
            ),
        ] {
            assert!(zero(settings).contains(&format!("`{name}`")), "{name}");
        }
    }

    #[test]
    fn sizes_no_machine_can_honour_are_refused_by_name() {
        let base = Settings::default();
        let err = Settings {
            nodes: Some(100_000),
            ..base
        }
        .check()
        .unwrap_err();
        assert!(matches!(
            err,
            BuildError::TooLarge {
                name: "nodes",
                value: 100_000,
                max: MAX_NODES
            }
        ));
        assert_eq!(
            err.to_string(),
            "the pool setting `nodes` must be at most 4096, but 100000 was given"
        );
        let err = Settings {
            concurrency: Some(usize::MAX),
            ..base
        }
        .check()
        .unwrap_err();
        assert!(matches!(
            err,
            BuildError::TooLarge {
                name: "concurrency",
                ..
            }
        ));
        let at_most = Settings {
            nodes: Some(MAX_NODES),
            concurrency: Some(MAX_CONCURRENCY),
            ..base
        };
        assert_eq!(at_most.check().unwrap().nodes, MAX_NODES);
    }

    #[test]
    fn defaults_are_filled_in() {
        let checked = Settings::default().check().unwrap();
        assert_eq!(checked.nodes, default_nodes());
        assert_eq!(checked.chunksize, None);
    }
}
