//! What `#[pmap(process)]`, `#[imap(process)]` and `#[amap(process)]` expand to. Not a
//! public API: reachable as `twat_mp::__private` only so that the expansions can name it.
//! The argument lists are those of the thread versions in `thread_pool/attribute.rs`.
//!
//! With `init = make_state` (the `_init_process` functions), `init` and the user's
//! function are function pointers, as for [`ProcessPool::map_init`]: `init` runs in each
//! worker process at most once per call, when it gets its first item, and the state stays
//! there.

use super::ProcessPool;
use super::remote::{
    AsValue, CrossProcess, CrossProcessError, Fallible, Plain, StateSpec, WithState,
    WithStateFallible,
};
use super::unsafe_code::StateFn;
use crate::async_result::AsyncResult;
use crate::engine::feed::LazyInput;
use crate::engine::item::resume_cancelled;
use crate::engine::registry::{Config, Registry};
use crate::engine::render::Render;
use std::panic::Location;
use std::sync::Arc;

/// The process pool every attribute with this configuration shares, built on first use
/// and kept for the life of the program. Its workers die with the program.
fn process_pool(config: &Config) -> &'static ProcessPool {
    #[cfg(feature = "mpi")]
    if config.mpi {
        // `#[pmap(mpi)]`, `#[imap(mpi)]`: the program's one `MpiPool`, whose batches go to
        // the job's ranks instead of worker processes.
        return crate::mpi::attribute::mpi_pool(config);
    }
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
        .run_map(Plain::new(f), items, render, Arc::default())
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
        .run_map(
            Fallible::<_, _, _, AsValue<Via>>::new(f),
            items,
            render,
            Arc::default(),
        )
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
        .lazy_call(Plain::new(f), items.into_iter(), render, ordered, None)
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
        .lazy_call(function, items.into_iter(), render, ordered, None)
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
    pool.background_call(resume_cancelled, move |cancel, completer| {
        let outcome = pool.run_map(function, items, render, cancel);
        completer.finish_outcome(outcome, move |outcome| {
            outcome.unwrap_or_else(|failure| failure.resume(call))
        });
    })
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
    pool.background_call(resume_cancelled, move |cancel, completer| {
        let outcome = pool.run_map(function, items, render, cancel);
        completer.finish_outcome(outcome, move |outcome| {
            outcome.map_err(|failure| failure.into_original(call))
        });
    })
}

/// The `init` of an attribute under `process`, checked against the state `S` its
/// function takes (`&mut S`), so that a mismatch is reported on `init`, once: a function
/// that captures nothing, which a worker process can find (see [`state_init`] for threads).
///
/// [`state_init`]: crate::__private::state_init
pub fn state_init_process<S>(init: fn() -> S) -> fn() -> S {
    init
}

/// `#[pmap(process, init = make_state)]` on `fn(&mut S, T) -> R`: as [`pmap_process`],
/// with a state made in each worker process for the call (see
/// [`ProcessPool::map_init`]).
#[track_caller]
pub fn pmap_init_process<T: CrossProcess, S: 'static, R: CrossProcess>(
    config: &Config,
    render: Option<Render<T>>,
    init: fn() -> S,
    f: fn(&mut S, T) -> R,
    items: impl IntoIterator<Item = T>,
) -> Vec<R> {
    let call = Location::caller();
    process_pool(config)
        .run_map_init(
            init,
            WithState::new(StateFn(f)),
            items,
            render,
            Arc::default(),
        )
        .unwrap_or_else(|failure| failure.resume(call))
}

/// `#[pmap(process, init = make_state)]` on `fn(&mut S, T) -> Result<R, E>`.
#[track_caller]
pub fn pmap_result_init_process<T, S, R, E, Via>(
    config: &Config,
    render: Option<Render<T>>,
    init: fn() -> S,
    f: fn(&mut S, T) -> Result<R, E>,
    items: impl IntoIterator<Item = T>,
) -> Result<Vec<R>, E>
where
    T: CrossProcess,
    S: 'static,
    R: CrossProcess,
    E: CrossProcessError<Via>,
    Via: 'static,
{
    let call = Location::caller();
    let function = WithStateFallible::<_, _, _, _, AsValue<Via>>::new(StateFn(f));
    process_pool(config)
        .run_map_init(init, function, items, render, Arc::default())
        .map_err(|failure| failure.into_original(call))
}

/// `#[imap(process, init = make_state)]` on `fn(&mut S, T) -> R`: the state lives in
/// each worker until the iterator is exhausted or dropped.
#[track_caller]
pub fn imap_init_process<T, S, R, I>(
    config: &Config,
    ordered: bool,
    render: Option<Render<T>>,
    init: fn() -> S,
    f: fn(&mut S, T) -> R,
    items: I,
) -> impl Iterator<Item = R> + 'static
where
    T: CrossProcess,
    S: 'static,
    R: CrossProcess,
    I: IntoIterator<Item = T>,
    I::IntoIter: LazyInput,
{
    let call = Location::caller();
    let state = Some(StateSpec::init(init));
    process_pool(config)
        .lazy_call(
            WithState::new(StateFn(f)),
            items.into_iter(),
            render,
            ordered,
            state,
        )
        .map(|outcome| outcome.unwrap_or_else(|failure| failure.resume(call)))
}

/// `#[imap(process, init = make_state)]` on `fn(&mut S, T) -> Result<R, E>`.
#[track_caller]
pub fn imap_result_init_process<T, S, R, E, Via, I>(
    config: &Config,
    ordered: bool,
    render: Option<Render<T>>,
    init: fn() -> S,
    f: fn(&mut S, T) -> Result<R, E>,
    items: I,
) -> impl Iterator<Item = Result<R, E>> + 'static
where
    T: CrossProcess,
    S: 'static,
    R: CrossProcess,
    E: CrossProcessError<Via>,
    Via: 'static,
    I: IntoIterator<Item = T>,
    I::IntoIter: LazyInput,
{
    let call = Location::caller();
    let function = WithStateFallible::<_, _, _, _, AsValue<Via>>::new(StateFn(f));
    let state = Some(StateSpec::init(init));
    process_pool(config)
        .lazy_call(function, items.into_iter(), render, ordered, state)
        .map(|outcome| outcome.map_err(|failure| failure.into_original(call)))
}

/// `#[amap(process, init = make_state)]` on `fn(&mut S, T) -> R`: returns at once;
/// `get()` gives what `#[pmap(process, init = ..)]` would.
#[track_caller]
pub fn amap_init_process<T: CrossProcess, S: 'static, R: CrossProcess>(
    config: &Config,
    render: Option<Render<T>>,
    init: fn() -> S,
    f: fn(&mut S, T) -> R,
    items: impl IntoIterator<Item = T>,
) -> AsyncResult<Vec<R>> {
    let call = Location::caller();
    let pool = process_pool(config);
    let function = WithState::new(StateFn(f));
    let items: Vec<T> = items.into_iter().collect();
    pool.background_call(resume_cancelled, move |cancel, completer| {
        let outcome = pool.run_map_init(init, function, items, render, cancel);
        completer.finish_outcome(outcome, move |outcome| {
            outcome.unwrap_or_else(|failure| failure.resume(call))
        });
    })
}

/// `#[amap(process, init = make_state)]` on `fn(&mut S, T) -> Result<R, E>`.
#[track_caller]
pub fn amap_result_init_process<T, S, R, E, Via>(
    config: &Config,
    render: Option<Render<T>>,
    init: fn() -> S,
    f: fn(&mut S, T) -> Result<R, E>,
    items: impl IntoIterator<Item = T>,
) -> AsyncResult<Result<Vec<R>, E>>
where
    T: CrossProcess,
    S: 'static,
    R: CrossProcess,
    E: CrossProcessError<Via>,
    Via: 'static,
{
    let call = Location::caller();
    let pool = process_pool(config);
    let function = WithStateFallible::<_, _, _, _, AsValue<Via>>::new(StateFn(f));
    let items: Vec<T> = items.into_iter().collect();
    pool.background_call(resume_cancelled, move |cancel, completer| {
        let outcome = pool.run_map_init(init, function, items, render, cancel);
        completer.finish_outcome(outcome, move |outcome| {
            outcome.map_err(|failure| failure.into_original(call))
        });
    })
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

    fn offset() -> u64 {
        100
    }

    fn add(base: &mut u64, x: u64) -> u64 {
        *base += 1;
        *base + x
    }

    fn checked_add(base: &mut u64, x: u64) -> Result<u64, String> {
        checked(x).map(|x| *base + x)
    }

    #[test]
    fn the_attribute_runtime_keeps_a_state_per_worker_process() {
        // One worker: one state for the call, its count going on across the items.
        let one = Config {
            nodes: Some(1),
            ..CONFIG
        };
        assert_eq!(
            pmap_init_process(&one, None, offset, add, [0, 0, 0]),
            [101, 102, 103]
        );
        assert_eq!(
            pmap_result_init_process(&CONFIG, None, offset, checked_add, 0..5),
            Err("3 is odd".to_owned())
        );
        let lazy: Vec<u64> = imap_init_process(&one, true, None, offset, add, 0..)
            .take(3)
            .collect();
        assert_eq!(lazy, [101, 103, 105]);
        let each: Vec<_> =
            imap_result_init_process(&CONFIG, true, None, offset, checked_add, 2..5).collect();
        assert_eq!(each, [Ok(102), Err("3 is odd".to_owned()), Ok(104)]);
        assert_eq!(amap_init_process(&one, None, offset, add, [7]).get(), [108]);
        assert_eq!(
            amap_result_init_process(&CONFIG, None, offset, checked_add, [1, 2]).get(),
            Ok(vec![101, 102])
        );
    }
}
