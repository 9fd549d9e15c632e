//! The settings every pool builder shares, checked in one place.

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
}

/// Settings that passed [`Settings::check`]: what a pool is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checked {
    pub(crate) nodes: usize,
    pub(crate) chunksize: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) maxtasksperchild: Option<usize>,
    /// The pool's own `debug`, or the global debug mode.
    pub(crate) debug: bool,
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
        })
    }
}

/// The number of CPUs this process may use: cgroup quotas and affinity included.
pub(crate) fn default_nodes() -> usize {
    num_cpus::get().max(1)
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
    fn defaults_are_filled_in() {
        let checked = Settings::default().check().unwrap();
        assert_eq!(checked.nodes, default_nodes());
        assert_eq!(checked.chunksize, None);
    }
}
