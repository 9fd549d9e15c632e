//! What `#[pmap(mpi)]` and `#[imap(mpi)]` expand to (feature `mpi`). Not a public API:
//! reachable as `twat_mp::__private` only so that the expansions can name it. The
//! argument lists are those of `process/attribute.rs`.
//!
//! # The program's one `MpiPool`
//!
//! MPI starts once per program run, so every `mpi` attribute shares one [`MpiPool`],
//! built by the first call of any of them, with that call's options (`nodes` = the local
//! threads of a job of one rank, `chunksize`, `debug`, `progress`); a later call with
//! other options panics, saying so. That first call is where the ranks part:
//!
//! - on rank 0 it returns, and so does every later call, as any mapper's;
//! - on every other rank it never returns: the rank serves rank 0's items until rank 0's
//!   program exits, then exits with status 0. **Code before the first `mpi` call runs on
//!   every rank; nothing after it runs on ranks other than 0.**
//!
//! The pool is never dropped: when rank 0's program exits (`main` returns, or
//! `std::process::exit`), a hook registered with the C library's `atexit` waits for the
//! calls in flight, stops the serving ranks and finalises MPI, so that `mpirun` sees every
//! rank end cleanly. A program killed by a signal or `abort` ends the job as MPI decides.

use std::panic::Location;
use std::sync::OnceLock;

use super::MpiPool;
use crate::engine::feed::LazyInput;
use crate::engine::registry::Config;
use crate::engine::render::Render;
use crate::process::ProcessPool;
use crate::process::remote::{
    AsValue, CrossProcess, CrossProcessError, Fallible, Plain, StateSpec, WithState,
    WithStateFallible,
};
use crate::process::unsafe_code::{StateFn, at_exit};

/// The program's one pool of the `mpi` attributes, with the options it was built with.
static POOL: OnceLock<(Config, MpiPool)> = OnceLock::new();

/// The pool every `mpi` attribute shares; built by the first call (where serving ranks
/// stay: see the module's documentation).
///
/// # Panics
/// When MPI cannot start (an `MpiPool` was built by other code), or when `config` is not
/// the first call's: an attribute has no error to return it in.
fn mpi_pool(config: &Config) -> &'static ProcessPool {
    let (first, pool) = POOL.get_or_init(|| {
        let mut builder = MpiPool::builder().debug(config.debug);
        if let Some(nodes) = config.nodes {
            builder = builder.local_threads(nodes);
        }
        if let Some(chunksize) = config.chunksize {
            builder = builder.chunksize(chunksize);
        }
        builder.settings.progress = config.progress;
        // On a serving rank, `build` does not return.
        let pool = builder.build().unwrap_or_else(|err| {
            panic!("twat-mp could not build the MpiPool of the `mpi` attributes: {err}")
        });
        if !at_exit(finish_at_exit) {
            tracing::warn!(
                "twat-mp could not register its exit hook: end the program with every \
                 rank's `MpiPool` work done, or `mpirun` may report rank 0 as ended without \
                 finalising MPI"
            );
        }
        (*config, pool)
    });
    assert!(
        first == config,
        "the `mpi` attributes share the program's one MpiPool, built by the first call with {}, \
         and this call asks for {}: give every `mpi` attribute the same `nodes`, `chunksize`, \
         `debug` and `progress`",
        options(first),
        options(config)
    );
    &pool.inner
}

/// The options of an `mpi` attribute that make its pool, as written.
fn options(config: &Config) -> String {
    let mut written = Vec::new();
    if let Some(nodes) = config.nodes {
        written.push(format!("nodes = {nodes}"));
    }
    if let Some(chunksize) = config.chunksize {
        written.push(format!("chunksize = {chunksize}"));
    }
    if config.debug {
        written.push("debug".to_owned());
    }
    if config.progress {
        written.push("progress".to_owned());
    }
    format!(
        "`#[pmap(mpi{})]`",
        written.iter().map(|o| format!(", {o}")).collect::<String>()
    )
}

/// The exit hook: stops the serving ranks and finalises MPI; never unwinds into C.
extern "C" fn finish_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some((_, pool)) = POOL.get() {
            pool.finish();
        }
    });
}

/// `#[pmap(mpi)]` on `fn(T) -> R`: the results, or the lowest failing item's failure
/// resumed as a panic.
#[track_caller]
pub fn pmap_mpi<T: CrossProcess, R: CrossProcess>(
    config: &Config,
    render: Option<Render<T>>,
    f: fn(T) -> R,
    items: impl IntoIterator<Item = T>,
) -> Vec<R> {
    let call = Location::caller();
    mpi_pool(config)
        .run_map(Plain::new(f), items, render)
        .unwrap_or_else(|failure| failure.resume(call))
}

/// `#[pmap(mpi)]` on `fn(T) -> Result<R, E>`: the results, or the lowest failing item's
/// own `E`, carried back from its rank.
#[track_caller]
pub fn pmap_result_mpi<T, R, E, Via>(
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
    mpi_pool(config)
        .run_map(Fallible::<_, _, _, AsValue<Via>>::new(f), items, render)
        .map_err(|failure| failure.into_original(call))
}

/// `#[imap(mpi)]` on `fn(T) -> R`: the results, lazily; a failed item resumes as a panic
/// when the iteration reaches it.
#[track_caller]
pub fn imap_mpi<T, R, I>(
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
    mpi_pool(config)
        .lazy_call(Plain::new(f), items.into_iter(), render, ordered, None)
        .map(|outcome| outcome.unwrap_or_else(|failure| failure.resume(call)))
}

/// `#[imap(mpi)]` on `fn(T) -> Result<R, E>`: each item's own `Result`, lazily.
#[track_caller]
pub fn imap_result_mpi<T, R, E, Via, I>(
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
    mpi_pool(config)
        .lazy_call(function, items.into_iter(), render, ordered, None)
        .map(|outcome| outcome.map_err(|failure| failure.into_original(call)))
}

/// `#[pmap(mpi, init = make_state)]` on `fn(&mut S, T) -> R`: as [`pmap_mpi`], with a
/// state made on each serving rank for the call (see [`MpiPool::map_init`]).
#[track_caller]
pub fn pmap_init_mpi<T: CrossProcess, S: 'static, R: CrossProcess>(
    config: &Config,
    render: Option<Render<T>>,
    init: fn() -> S,
    f: fn(&mut S, T) -> R,
    items: impl IntoIterator<Item = T>,
) -> Vec<R> {
    let call = Location::caller();
    mpi_pool(config)
        .run_map_init(init, WithState::new(StateFn(f)), items, render)
        .unwrap_or_else(|failure| failure.resume(call))
}

/// `#[pmap(mpi, init = make_state)]` on `fn(&mut S, T) -> Result<R, E>`.
#[track_caller]
pub fn pmap_result_init_mpi<T, S, R, E, Via>(
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
    mpi_pool(config)
        .run_map_init(init, function, items, render)
        .map_err(|failure| failure.into_original(call))
}

/// `#[imap(mpi, init = make_state)]` on `fn(&mut S, T) -> R`: the state lives on each
/// rank until the iterator is exhausted or dropped.
#[track_caller]
pub fn imap_init_mpi<T, S, R, I>(
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
    mpi_pool(config)
        .lazy_call(
            WithState::new(StateFn(f)),
            items.into_iter(),
            render,
            ordered,
            state,
        )
        .map(|outcome| outcome.unwrap_or_else(|failure| failure.resume(call)))
}

/// `#[imap(mpi, init = make_state)]` on `fn(&mut S, T) -> Result<R, E>`.
#[track_caller]
pub fn imap_result_init_mpi<T, S, R, E, Via, I>(
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
    mpi_pool(config)
        .lazy_call(function, items.into_iter(), render, ordered, state)
        .map(|outcome| outcome.map_err(|failure| failure.into_original(call)))
}
