//! What the code written by `#[apmap]` calls. Not a public API: reachable as
//! `twat_mp::__private` only so that the expansions can name it.

use super::pool::AsyncMultiPool;
use crate::engine::registry::{Config, Registry};
use crate::engine::render::Render;
use crate::mapped::MappedError;
use std::future::Future;
use std::panic::Location;

/// The pool every `#[apmap]` with this configuration shares, built on first use and kept
/// for the life of the program.
fn async_pool(config: &Config) -> &'static AsyncMultiPool {
    static POOLS: Registry<AsyncMultiPool> = Registry::new();
    POOLS.get(config)
}

/// `#[apmap]` on `async fn(T) -> R`: the results in input order, or the lowest failing
/// item's panic resumed in the caller. A timed-out or cancelled item, which has no
/// original panic, resumes as a panic whose payload is its `WorkerError`.
#[track_caller]
pub fn apmap<T, R, F, Fut, I>(
    config: &Config,
    render: Option<Render<T>>,
    f: F,
    items: I,
) -> impl Future<Output = Vec<R>> + Send + use<T, R, F, Fut, I>
where
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + 'static,
    I: IntoIterator<Item = T>,
    T: Send + 'static,
    R: Send + 'static,
{
    let call = Location::caller();
    let run = async_pool(config).run_map(f, Ok, items, render);
    async move { run.await.unwrap_or_else(|failure| failure.resume(call)) }
}

/// `#[apmap]` on `async fn(T) -> Result<R, E>`: the results in input order, or the lowest
/// failing item's own `E`.
#[track_caller]
pub fn apmap_result<T, R, E, F, Fut, I>(
    config: &Config,
    render: Option<Render<T>>,
    f: F,
    items: I,
) -> impl Future<Output = Result<Vec<R>, E>> + Send + use<T, R, E, F, Fut, I>
where
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + 'static,
    I: IntoIterator<Item = T>,
    T: Send + 'static,
    R: Send + 'static,
    E: MappedError + 'static,
{
    let call = Location::caller();
    let run = async_pool(config).run_map(f, std::convert::identity, items, render);
    async move { run.await.map_err(|failure| failure.into_original(call)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_share_one_pool() {
        let config = Config {
            nodes: Some(1),
            concurrency: Some(7),
            ..Config::DEFAULT
        };
        assert!(std::ptr::eq(async_pool(&config), async_pool(&config)));
        assert_eq!(async_pool(&config).concurrency(), 7);
    }
}
