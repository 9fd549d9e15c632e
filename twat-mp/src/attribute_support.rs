//! What the code written by `#[pmap]`, `#[imap]` and `#[amap]` calls. Not a public API:
//! reachable as `twat_mp::__private` only so that the expansions can name it.

use std::convert::Infallible;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Mutex;

use crate::async_result::{AsyncResult, async_result};
use crate::error::{BuildError, ErrorKind, WorkerError};
use crate::item::{ItemFailure, Render};
use crate::thread_pool::ThreadPool;

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
    };
}

/// The pool of type `P` every attribute with this configuration shares, built by `build`
/// on first use and kept for the life of the program (as rayon's global pool is).
pub(crate) fn shared_pool<P: Sync + 'static>(
    pools: &'static Mutex<Vec<(Config, &'static P)>>,
    config: &Config,
    build: impl FnOnce(&Config) -> Result<P, BuildError>,
) -> &'static P {
    let mut pools = pools.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, pool)) = pools.iter().find(|(c, _)| c == config) {
        return pool;
    }
    let pool: &'static P = Box::leak(Box::new(build(config).unwrap_or_else(|err| {
        panic!("twat-mp could not build the pool of an attribute with {config:?}: {err}")
    })));
    pools.push((*config, pool));
    pool
}

/// The thread pool of the attributes with this configuration.
fn thread_pool(config: &Config) -> &'static ThreadPool {
    static POOLS: Mutex<Vec<(Config, &'static ThreadPool)>> = Mutex::new(Vec::new());
    shared_pool(&POOLS, config, |config| {
        let mut builder = ThreadPool::builder().debug(config.debug);
        if let Some(nodes) = config.nodes {
            builder = builder.nodes(nodes);
        }
        if let Some(chunksize) = config.chunksize {
            builder = builder.chunksize(chunksize);
        }
        builder.build()
    })
}

/// `#[pmap]` on `fn(T) -> R`: the results, or the lowest failing item's panic resumed.
pub fn pmap<T: Send, R: Send>(
    config: &Config,
    render: Option<Render<T>>,
    f: impl Fn(T) -> R + Sync,
    items: impl IntoIterator<Item = T>,
) -> Vec<R> {
    thread_pool(config)
        .run_map(|x| Ok::<R, Infallible>(f(x)), items, render)
        .unwrap_or_else(|failure| failure.into_original().into_never())
}

/// `#[pmap]` on `fn(T) -> Result<R, E>`: the results, or the lowest failing item's `E`.
pub fn pmap_result<T: Send, R: Send, E: Send>(
    config: &Config,
    render: Option<Render<T>>,
    f: impl Fn(T) -> Result<R, E> + Sync,
    items: impl IntoIterator<Item = T>,
) -> Result<Vec<R>, E> {
    thread_pool(config)
        .run_map(f, items, render)
        .map_err(ItemFailure::into_original)
}

/// `#[imap]` on `fn(T) -> R`: the results, lazily; a failed item resumes its panic when
/// the iteration reaches it.
pub fn imap<T, R, I>(
    config: &Config,
    ordered: bool,
    render: Option<Render<T>>,
    f: impl Fn(T) -> R + Send + Sync + 'static,
    items: I,
) -> impl Iterator<Item = R> + 'static
where
    T: Send + 'static,
    R: Send + 'static,
    I: IntoIterator<Item = T>,
    I::IntoIter: 'static,
{
    thread_pool(config)
        .lazy_map(move |x| Ok::<R, Infallible>(f(x)), items, render, ordered)
        .map(|outcome| outcome.unwrap_or_else(|failure| failure.into_original().into_never()))
}

/// `#[imap]` on `fn(T) -> Result<R, E>`: each item's own `Result`, lazily.
pub fn imap_result<T, R, E, I>(
    config: &Config,
    ordered: bool,
    render: Option<Render<T>>,
    f: impl Fn(T) -> Result<R, E> + Send + Sync + 'static,
    items: I,
) -> impl Iterator<Item = Result<R, E>> + 'static
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
    I: IntoIterator<Item = T>,
    I::IntoIter: 'static,
{
    thread_pool(config)
        .lazy_map(f, items, render, ordered)
        .map(|outcome| outcome.map_err(ItemFailure::into_original))
}

/// `#[amap]` on `fn(T) -> R`: returns at once; `get()` gives what `#[pmap]` would.
pub fn amap<T, R>(
    config: &Config,
    render: Option<Render<T>>,
    f: impl Fn(T) -> R + Send + Sync + 'static,
    items: impl IntoIterator<Item = T>,
) -> AsyncResult<Vec<R>>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let pool = thread_pool(config);
    let job = pool.background_map(move |x| Ok::<R, Infallible>(f(x)), items, render);
    let (completer, pending) = async_result(resume_cancelled);
    pool.spawn(move || {
        let outcome = job();
        completer.finish_with(move || {
            outcome.unwrap_or_else(|failure| failure.into_original().into_never())
        });
    });
    pending
}

/// `#[amap]` on `fn(T) -> Result<R, E>`: returns at once; `get()` gives what `#[pmap]`
/// would.
pub fn amap_result<T, R, E>(
    config: &Config,
    render: Option<Render<T>>,
    f: impl Fn(T) -> Result<R, E> + Send + Sync + 'static,
    items: impl IntoIterator<Item = T>,
) -> AsyncResult<Result<Vec<R>, E>>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
{
    let pool = thread_pool(config);
    let job = pool.background_map(f, items, render);
    let (completer, pending) = async_result(resume_cancelled);
    pool.spawn(move || {
        let outcome = job();
        completer.finish_with(move || outcome.map_err(ItemFailure::into_original));
    });
    pending
}

/// What an attribute's [`AsyncResult`] gives when its job never ran.
fn resume_cancelled<T>() -> T {
    WorkerError::new(0, ErrorKind::Cancelled).resume_unwind()
}

trait IntoNever {
    fn into_never(self) -> !;
}

impl IntoNever for Infallible {
    fn into_never(self) -> ! {
        match self {}
    }
}

/// Picks a `Debug` renderer for an item type when it has one, without requiring it
/// (autoref specialization; see the `__render!` macro).
pub struct RenderProbe<T>(PhantomData<fn(&T)>);

impl<T> RenderProbe<T> {
    /// A probe for the item type `T`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        RenderProbe(PhantomData)
    }
}

/// Chosen when the item type is `Debug`.
pub trait RenderDebug<T> {
    /// `Some` renderer.
    fn renderer(&self) -> Option<Render<T>>;
}

impl<T: Debug> RenderDebug<T> for RenderProbe<T> {
    fn renderer(&self) -> Option<Render<T>> {
        Some(|item| format!("{item:?}"))
    }
}

/// Chosen otherwise.
pub trait RenderNothing<T> {
    /// No renderer.
    fn renderer(&self) -> Option<Render<T>>;
}

impl<T> RenderNothing<T> for &RenderProbe<T> {
    fn renderer(&self) -> Option<Render<T>> {
        None
    }
}

/// `Some(renderer)` when the type is `Debug`, else `None`: used by the expansions so that
/// [`WorkerError::input`] shows the item in debug mode.
#[doc(hidden)]
#[macro_export]
macro_rules! __render {
    ($item:ty) => {{
        #[allow(unused_imports)]
        use $crate::__private::{RenderDebug as _, RenderNothing as _};
        (&$crate::__private::RenderProbe::<$item>::new()).renderer()
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Opaque;

    #[test]
    fn render_probe_picks_debug_when_there_is_one() {
        let render = crate::__render!(Vec<u8>).unwrap();
        assert_eq!(render(&vec![1, 2]), "[1, 2]");
        assert!(crate::__render!(Opaque).is_none());
    }

    #[test]
    fn configurations_share_one_pool() {
        let config = Config {
            nodes: Some(3),
            ..Config::DEFAULT
        };
        assert!(std::ptr::eq(thread_pool(&config), thread_pool(&config)));
        assert_eq!(thread_pool(&config).nodes(), 3);
    }
}
