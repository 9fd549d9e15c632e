//! The pools behind the attributes: one per pool type and configuration, built on first
//! use and kept for the life of the program (as rayon's global pool is).

use std::sync::Mutex;

use super::settings::Settings;
use crate::error::BuildError;

/// The options of one attribute, as written in `#[pmap(...)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// `nodes = N`
    pub nodes: Option<usize>,
    /// `chunksize = N`
    pub chunksize: Option<usize>,
    /// `debug`
    pub debug: bool,
    /// `process`: a `ProcessPool` instead of threads.
    pub process: bool,
    /// `timeout = "5s"`: per item, process pools and `#[apmap]` only.
    pub timeout: Option<std::time::Duration>,
    /// `concurrency = N`: tasks in flight per worker, `#[apmap]` only.
    pub concurrency: Option<usize>,
    /// `retries = N`: process pools only.
    pub retries: u32,
    /// `progress`: a progress bar per call (feature `progress`).
    pub progress: bool,
    /// `mpi`: the items go to the ranks of the MPI job (feature `mpi`), through the same
    /// entry points as `process`.
    pub mpi: bool,
}

impl Config {
    /// No options: the expansions write `Config { nodes: Some(4), ..Config::DEFAULT }`.
    pub const DEFAULT: Config = Config {
        nodes: None,
        chunksize: None,
        debug: false,
        process: false,
        timeout: None,
        concurrency: None,
        retries: 0,
        progress: false,
        mpi: false,
    };

    /// The pool settings these options stand for. The macro crate has already refused
    /// every option that a pool would ignore.
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            nodes: self.nodes,
            chunksize: self.chunksize,
            timeout: self.timeout,
            concurrency: self.concurrency,
            maxtasksperchild: None,
            debug: self.debug,
            // Attribute pools are shared and nobody can ask them: no insights.
            insights: false,
            retries: self.retries,
            progress: self.progress,
        }
    }
}

/// A pool that the attributes can build from [`Settings`].
pub(crate) trait FromSettings: Sized + Sync + 'static {
    fn from_settings(settings: Settings) -> Result<Self, BuildError>;
}

/// The attribute pools of one pool type, by configuration.
pub(crate) struct Registry<P: 'static> {
    pools: Mutex<Vec<(Config, &'static P)>>,
}

impl<P: FromSettings> Registry<P> {
    pub(crate) const fn new() -> Self {
        Registry {
            pools: Mutex::new(Vec::new()),
        }
    }

    /// The pool every attribute with this configuration shares.
    ///
    /// # Panics
    /// When the pool cannot be built (the system refuses a thread): an attribute has no
    /// error to return it in.
    pub(crate) fn get(&self, config: &Config) -> &'static P {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, pool)) = pools.iter().find(|(c, _)| c == config) {
            return pool;
        }
        let pool = P::from_settings(config.settings()).unwrap_or_else(|err| {
            panic!("twat-mp could not build the pool of an attribute with {config:?}: {err}")
        });
        let pool: &'static P = Box::leak(Box::new(pool));
        pools.push((*config, pool));
        pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counted(usize);

    impl FromSettings for Counted {
        fn from_settings(settings: Settings) -> Result<Self, BuildError> {
            Ok(Counted(settings.check()?.nodes))
        }
    }

    #[test]
    fn one_pool_per_configuration() {
        static POOLS: Registry<Counted> = Registry::new();
        let three = Config {
            nodes: Some(3),
            ..Config::DEFAULT
        };
        assert!(std::ptr::eq(POOLS.get(&three), POOLS.get(&three)));
        assert_eq!(POOLS.get(&three).0, 3);
        assert!(!std::ptr::eq(
            POOLS.get(&three),
            POOLS.get(&Config::DEFAULT)
        ));
    }
}
