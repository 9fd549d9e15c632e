//! What `#[pmap(process)]`, `#[imap(process)]` and `#[amap(process)]` expand to. Not a
//! public API: reachable as `twat_mp::__private` only so that the expansions can name it.
//! The argument lists are those of the thread versions in `attribute_support`.

use super::ProcessPool;
use super::remote::{AsValue, CrossProcess, CrossProcessError, Fallible, Plain};
use crate::async_result::{AsyncResult, async_result};
use crate::engine::feed::LazyInput;
use crate::engine::item::resume_cancelled;
use crate::engine::registry::{Config, Registry};
use crate::engine::render::Render;
use std::panic::Location;

/// The process pool every attribute with this configuration shares, built on first use
/// and kept for the life of the program. Its workers die with the program.
fn process_pool(config: &Config) -> &'static ProcessPool {
    static POOLS: Registry<ProcessPool> = Registry::new();
    POOLS.get(config)
}

/// `#[pmap(process)]` on `fn(T) -> R`: the results, or the lowest failing item's failure
/// resumed as a panic.
#[track_caller]
pub fn pmap_process<T: CrossProcess, R: CrossProcess>(
    config: &Config,
    render: Option<Render<T>>,
    f: fn(T) -> R,
    items: impl IntoIterator<Item = T>,
) -> Vec<R> {
    let call = Location::caller();
    process_pool(config)
        .run_map(Plain::new(f), items, render)
        .unwrap_or_else(|failure| failure.resume(call))
}

/// `#[pmap(process)]` on `fn(T) -> Result<R, E>`: the results, or the lowest failing
/// item's own `E`, carried back from the worker.
#[track_caller]
pub fn pmap_result_process<T, R, E, Via>(
    config: &Config,
    render: Option<Render<T>>,
    f: fn(T) -> Result<R, E>,
    items: impl IntoIterator<Item = T>,
) -> Result<Vec<R>, E>
where
    T: CrossProcess,
    R: CrossProcess,
    E: CrossProcessError<Via>,
    Via: 'static,
{
    let call = Location::caller();
    process_pool(config)
        .run_map(Fallible::<_, _, _, AsValue<Via>>::new(f), items, render)
        .map_err(|failure| failure.into_original(call))
}

/// `#[imap(process)]` on `fn(T) -> R`: the results, lazily; a failed item resumes as a
/// panic when the iteration reaches it.
#[track_caller]
pub fn imap_process<T, R, I>(
    config: &Config,
    ordered: bool,
    render: Option<Render<T>>,
    f: fn(T) -> R,
    items: I,
) -> impl Iterator<Item = R> + 'static
where
    T: CrossProcess,
    R: CrossProcess,
    I: IntoIterator<Item = T>,
    I::IntoIter: LazyInput,
{
    let call = Location::caller();
    process_pool(config)
        .lazy_call(Plain::new(f), items.into_iter(), render, ordered)
        .map(|outcome| outcome.unwrap_or_else(|failure| failure.resume(call)))
}

/// `#[imap(process)]` on `fn(T) -> Result<R, E>`: each item's own `Result`, lazily.
#[track_caller]
pub fn imap_result_process<T, R, E, Via, I>(
    config: &Config,
    ordered: bool,
    render: Option<Render<T>>,
    f: fn(T) -> Result<R, E>,
    items: I,
) -> impl Iterator<Item = Result<R, E>> + 'static
where
    T: CrossProcess,
    R: CrossProcess,
    E: CrossProcessError<Via>,
    Via: 'static,
    I: IntoIterator<Item = T>,
    I::IntoIter: LazyInput,
{
    let call = Location::caller();
    let function = Fallible::<_, _, _, AsValue<Via>>::new(f);
    process_pool(config)
        .lazy_call(function, items.into_iter(), render, ordered)
        .map(|outcome| outcome.map_err(|failure| failure.into_original(call)))
}

/// `#[amap(process)]` on `fn(T) -> R`: returns at once; `get()` gives what
/// `#[pmap(process)]` would.
#[track_caller]
pub fn amap_process<T: CrossProcess, R: CrossProcess>(
    config: &Config,
    render: Option<Render<T>>,
    f: fn(T) -> R,
    items: impl IntoIterator<Item = T>,
) -> AsyncResult<Vec<R>> {
    let call = Location::caller();
    let pool = process_pool(config);
    let function = Plain::new(f);
    let items: Vec<T> = items.into_iter().collect();
    let (completer, pending) = async_result(resume_cancelled);
    pool.background(move || {
        let outcome = pool.run_map(function, items, render);
        completer.finish_outcome(outcome, move |outcome| {
            outcome.unwrap_or_else(|failure| failure.resume(call))
        });
    });
    pending
}

/// `#[amap(process)]` on `fn(T) -> Result<R, E>`: returns at once; `get()` gives what
/// `#[pmap(process)]` would.
#[track_caller]
pub fn amap_result_process<T, R, E, Via>(
    config: &Config,
    render: Option<Render<T>>,
    f: fn(T) -> Result<R, E>,
    items: impl IntoIterator<Item = T>,
) -> AsyncResult<Result<Vec<R>, E>>
where
    T: CrossProcess,
    R: CrossProcess,
    E: CrossProcessError<Via>,
    Via: 'static,
{
    let call = Location::caller();
    let pool = process_pool(config);
    let function = Fallible::<_, _, _, AsValue<Via>>::new(f);
    let items: Vec<T> = items.into_iter().collect();
    let (completer, pending) = async_result(resume_cancelled);
    pool.background(move || {
        let outcome = pool.run_map(function, items, render);
        completer.finish_outcome(outcome, move |outcome| {
            outcome.map_err(|failure| failure.into_original(call))
        });
    });
    pending
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(x: u64) -> u64 {
        x * x
    }

    fn checked(x: u64) -> Result<u64, String> {
        if x == 3 {
            Err(format!("{x} is odd"))
        } else {
            Ok(x)
        }
    }

    const CONFIG: Config = Config {
        nodes: Some(2),
        process: true,
        ..Config::DEFAULT
    };

    #[test]
    fn the_attribute_runtime_maps_in_processes() {
        assert_eq!(pmap_process(&CONFIG, None, square, 0..5), [0, 1, 4, 9, 16]);
        assert_eq!(
            pmap_result_process(&CONFIG, None, checked, 0..5),
            Err("3 is odd".to_owned())
        );
        let lazy: Vec<u64> = imap_process(&CONFIG, true, None, square, 0..4).collect();
        assert_eq!(lazy, [0, 1, 4, 9]);
        let each: Vec<_> = imap_result_process(&CONFIG, true, None, checked, 2..5).collect();
        assert_eq!(each, [Ok(2), Err("3 is odd".to_owned()), Ok(4)]);
        assert_eq!(amap_process(&CONFIG, None, square, [7]).get(), [49]);
        assert_eq!(
            amap_result_process(&CONFIG, None, checked, [1, 2]).get(),
            Ok(vec![1, 2])
        );
        assert!(std::ptr::eq(process_pool(&CONFIG), process_pool(&CONFIG)));
    }
}
