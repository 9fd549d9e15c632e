//! What `#[apmap(process)]` calls. Not a public API: reachable as `twat_mp::__private`
//! only so that the expansions can name it.

use std::future::Future;

use super::AsyncProcessPool;
use crate::engine::registry::{Config, Registry};
use crate::engine::render::Render;
use crate::process::remote::{AsValue, NoError, Partial, Total};
use crate::process::{CrossProcess, CrossProcessError};
use std::panic::Location;

/// The process pool every `#[apmap(process)]` with this configuration shares.
fn async_process_pool(config: &Config) -> &'static AsyncProcessPool {
    static POOLS: Registry<AsyncProcessPool> = Registry::new();
    POOLS.get(config)
}

/// `#[apmap(process)]` on `async fn(T) -> R`: the results in input order, or the lowest
/// failing item's failure resumed in the caller (a panic's message as its payload, a
/// crash or timeout as its `WorkerError`).
#[track_caller]
pub fn apmap_process<T, R, Fut, I>(
    config: &Config,
    render: Option<Render<T>>,
    f: fn(T) -> Fut,
    items: I,
) -> impl Future<Output = Vec<R>> + Send + use<T, R, Fut, I>
where
    Fut: Future<Output = R> + 'static,
    I: IntoIterator<Item = T>,
    T: CrossProcess,
    R: CrossProcess,
{
    let call = Location::caller();
    let run = async_process_pool(config).run_map::<_, _, Total, NoError, _>(f, items, render);
    async move { run.await.unwrap_or_else(|failure| failure.resume(call)) }
}

/// `#[apmap(process)]` on `async fn(T) -> Result<R, E>`: the results in input order, or
/// the lowest failing item's own `E` (which crosses back as [`CrossProcessError`] says).
#[track_caller]
pub fn apmap_result_process<T, R, E, Via, Fut, I>(
    config: &Config,
    render: Option<Render<T>>,
    f: fn(T) -> Fut,
    items: I,
) -> impl Future<Output = Result<Vec<R>, E>> + Send + use<T, R, E, Via, Fut, I>
where
    Fut: Future<Output = Result<R, E>> + 'static,
    I: IntoIterator<Item = T>,
    T: CrossProcess,
    R: CrossProcess,
    E: CrossProcessError<Via>,
    Via: 'static,
{
    let call = Location::caller();
    let run =
        async_process_pool(config).run_map::<_, _, Partial, AsValue<Via>, _>(f, items, render);
    async move { run.await.map_err(|failure| failure.into_original(call)) }
}
