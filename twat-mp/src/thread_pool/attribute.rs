//! What the code written by `#[pmap]`, `#[imap]` and `#[amap]` calls. Not a public API:
//! reachable as `twat_mp::__private` only so that the expansions can name it.

use std::convert::Infallible;
use std::sync::Arc;

use super::ThreadPool;
use crate::async_result::{AsyncResult, async_result};
use crate::engine::feed::LazyInput;
use crate::engine::item::resume_cancelled;
use crate::engine::registry::{Config, Registry};
use crate::engine::render::Render;
use crate::mapped::MappedError;
use std::panic::Location;

/// The thread pool of the attributes with this configuration.
fn thread_pool(config: &Config) -> &'static ThreadPool {
    static POOLS: Registry<ThreadPool> = Registry::new();
    POOLS.get(config)
}

/// `#[pmap]` on `fn(T) -> R`: the results, or the lowest failing item's panic resumed.
#[track_caller]
pub fn pmap<T: Send, R: Send>(
    config: &Config,
    render: Option<Render<T>>,
    f: impl Fn(T) -> R + Sync,
    items: impl IntoIterator<Item = T>,
) -> Vec<R> {
    let call = Location::caller();
    thread_pool(config)
        .run_map(|x| Ok::<R, Infallible>(f(x)), items, render)
        .unwrap_or_else(|failure| failure.resume(call))
}

/// `#[pmap]` on `fn(T) -> Result<R, E>`: the results, or the lowest failing item's `E`.
#[track_caller]
pub fn pmap_result<T: Send, R: Send, E: MappedError>(
    config: &Config,
    render: Option<Render<T>>,
    f: impl Fn(T) -> Result<R, E> + Sync,
    items: impl IntoIterator<Item = T>,
) -> Result<Vec<R>, E> {
    let call = Location::caller();
    thread_pool(config)
        .run_map(f, items, render)
        .map_err(|failure| failure.into_original(call))
}

/// `#[imap]` on `fn(T) -> R`: the results, lazily; a failed item resumes its panic when
/// the iteration reaches it.
#[track_caller]
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
    I::IntoIter: LazyInput,
{
    let call = Location::caller();
    thread_pool(config)
        .lazy_map(move |x| Ok::<R, Infallible>(f(x)), items, render, ordered)
        .map(|outcome| outcome.unwrap_or_else(|failure| failure.resume(call)))
}

/// `#[imap]` on `fn(T) -> Result<R, E>`: each item's own `Result`, lazily.
#[track_caller]
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
    E: MappedError + 'static,
    I: IntoIterator<Item = T>,
    I::IntoIter: LazyInput,
{
    let call = Location::caller();
    thread_pool(config)
        .lazy_map(f, items, render, ordered)
        .map(|outcome| outcome.map_err(|failure| failure.into_original(call)))
}

/// `#[amap]` on `fn(T) -> R`: returns at once; `get()` gives what `#[pmap]` would.
#[track_caller]
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
    let call = Location::caller();
    let pool = thread_pool(config);
    let cancel = pool.background_cancel();
    let job = pool.background_map(
        move |x| Ok::<R, Infallible>(f(x)),
        items,
        render,
        Arc::clone(&cancel),
    );
    let (completer, pending) = async_result(resume_cancelled);
    pool.spawn(move || {
        let outcome = job();
        completer.finish_outcome(outcome, move |outcome| {
            outcome.unwrap_or_else(|failure| failure.resume(call))
        });
    });
    pending.cancel_on_drop(move || cancel.cancel())
}

/// `#[amap]` on `fn(T) -> Result<R, E>`: returns at once; `get()` gives what `#[pmap]`
/// would.
#[track_caller]
pub fn amap_result<T, R, E>(
    config: &Config,
    render: Option<Render<T>>,
    f: impl Fn(T) -> Result<R, E> + Send + Sync + 'static,
    items: impl IntoIterator<Item = T>,
) -> AsyncResult<Result<Vec<R>, E>>
where
    T: Send + 'static,
    R: Send + 'static,
    E: MappedError + 'static,
{
    let call = Location::caller();
    let pool = thread_pool(config);
    let cancel = pool.background_cancel();
    let job = pool.background_map(f, items, render, Arc::clone(&cancel));
    let (completer, pending) = async_result(resume_cancelled);
    pool.spawn(move || {
        let outcome = job();
        completer.finish_outcome(outcome, move |outcome| {
            outcome.map_err(|failure| failure.into_original(call))
        });
    });
    pending.cancel_on_drop(move || cancel.cancel())
}

/// The `init` of an attribute, checked against the state `S` its function takes (`&mut
/// S`), so that a mismatch is reported on `init`, once (every mode's runtime takes it this
/// way; the result makes an `S` even then, so the function itself raises no further error).
pub fn state_init<S, N: Fn() -> S>(init: N) -> impl Fn() -> S {
    init
}

/// `#[pmap(init = make_state)]` on `fn(&mut S, T) -> R`: as [`pmap`], with a state per
/// worker thread (see [`ThreadPool::map_init`]).
#[track_caller]
pub fn pmap_init<T: Send, S: Send, R: Send>(
    config: &Config,
    render: Option<Render<T>>,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, T) -> R + Sync,
    items: impl IntoIterator<Item = T>,
) -> Vec<R> {
    let call = Location::caller();
    thread_pool(config)
        .run_map_init(init, |s, x| Ok::<R, Infallible>(f(s, x)), items, render)
        .unwrap_or_else(|failure| failure.resume(call))
}

/// `#[pmap(init = make_state)]` on `fn(&mut S, T) -> Result<R, E>`.
#[track_caller]
pub fn pmap_result_init<T: Send, S: Send, R: Send, E: MappedError>(
    config: &Config,
    render: Option<Render<T>>,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, T) -> Result<R, E> + Sync,
    items: impl IntoIterator<Item = T>,
) -> Result<Vec<R>, E> {
    let call = Location::caller();
    thread_pool(config)
        .run_map_init(init, f, items, render)
        .map_err(|failure| failure.into_original(call))
}

/// `#[imap(init = make_state)]` on `fn(&mut S, T) -> R`.
#[track_caller]
pub fn imap_init<T, S, R, I>(
    config: &Config,
    ordered: bool,
    render: Option<Render<T>>,
    init: impl Fn() -> S + Send + Sync + 'static,
    f: impl Fn(&mut S, T) -> R + Send + Sync + 'static,
    items: I,
) -> impl Iterator<Item = R> + 'static
where
    T: Send + 'static,
    S: Send + 'static,
    R: Send + 'static,
    I: IntoIterator<Item = T>,
    I::IntoIter: LazyInput,
{
    let call = Location::caller();
    let f = move |s: &mut S, x| Ok::<R, Infallible>(f(s, x));
    thread_pool(config)
        .lazy_map_init(init, f, items, render, ordered)
        .map(|outcome| outcome.unwrap_or_else(|failure| failure.resume(call)))
}

/// `#[imap(init = make_state)]` on `fn(&mut S, T) -> Result<R, E>`.
#[track_caller]
pub fn imap_result_init<T, S, R, E, I>(
    config: &Config,
    ordered: bool,
    render: Option<Render<T>>,
    init: impl Fn() -> S + Send + Sync + 'static,
    f: impl Fn(&mut S, T) -> Result<R, E> + Send + Sync + 'static,
    items: I,
) -> impl Iterator<Item = Result<R, E>> + 'static
where
    T: Send + 'static,
    S: Send + 'static,
    R: Send + 'static,
    E: MappedError + 'static,
    I: IntoIterator<Item = T>,
    I::IntoIter: LazyInput,
{
    let call = Location::caller();
    thread_pool(config)
        .lazy_map_init(init, f, items, render, ordered)
        .map(|outcome| outcome.map_err(|failure| failure.into_original(call)))
}

/// `#[amap(init = make_state)]` on `fn(&mut S, T) -> R`.
#[track_caller]
pub fn amap_init<T, S, R>(
    config: &Config,
    render: Option<Render<T>>,
    init: impl Fn() -> S + Send + Sync + 'static,
    f: impl Fn(&mut S, T) -> R + Send + Sync + 'static,
    items: impl IntoIterator<Item = T>,
) -> AsyncResult<Vec<R>>
where
    T: Send + 'static,
    S: Send + 'static,
    R: Send + 'static,
{
    let call = Location::caller();
    let pool = thread_pool(config);
    let f = move |s: &mut S, x| Ok::<R, Infallible>(f(s, x));
    let cancel = pool.background_cancel();
    let job = pool.background_map_init(init, f, items, render, Arc::clone(&cancel));
    let (completer, pending) = async_result(resume_cancelled);
    pool.spawn(move || {
        let outcome = job();
        completer.finish_outcome(outcome, move |outcome| {
            outcome.unwrap_or_else(|failure| failure.resume(call))
        });
    });
    pending.cancel_on_drop(move || cancel.cancel())
}

/// `#[amap(init = make_state)]` on `fn(&mut S, T) -> Result<R, E>`.
#[track_caller]
pub fn amap_result_init<T, S, R, E>(
    config: &Config,
    render: Option<Render<T>>,
    init: impl Fn() -> S + Send + Sync + 'static,
    f: impl Fn(&mut S, T) -> Result<R, E> + Send + Sync + 'static,
    items: impl IntoIterator<Item = T>,
) -> AsyncResult<Result<Vec<R>, E>>
where
    T: Send + 'static,
    S: Send + 'static,
    R: Send + 'static,
    E: MappedError + 'static,
{
    let call = Location::caller();
    let pool = thread_pool(config);
    let cancel = pool.background_cancel();
    let job = pool.background_map_init(init, f, items, render, Arc::clone(&cancel));
    let (completer, pending) = async_result(resume_cancelled);
    pool.spawn(move || {
        let outcome = job();
        completer.finish_outcome(outcome, move |outcome| {
            outcome.map_err(|failure| failure.into_original(call))
        });
    });
    pending.cancel_on_drop(move || cancel.cancel())
}

#[cfg(test)]
mod tests {
    use super::*;

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
