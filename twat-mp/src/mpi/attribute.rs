//! The pool of `#[pmap(mpi)]` and `#[imap(mpi)]` (feature `mpi`): they expand to the
//! `process` attributes' entry points (`process/attribute.rs`), with `mpi` set in their
//! `Config`, and those take this pool instead of a pool of worker processes.
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

use std::sync::OnceLock;

use super::MpiPool;
use crate::engine::registry::Config;
use crate::process::ProcessPool;
use crate::process::unsafe_code::at_exit;

/// The program's one pool of the `mpi` attributes, with the options it was built with.
static POOL: OnceLock<(Config, MpiPool)> = OnceLock::new();

/// The pool every `mpi` attribute shares; built by the first call (where serving ranks
/// stay: see the module's documentation).
///
/// # Panics
/// When MPI cannot start (an `MpiPool` was built by other code), or when `config` is not
/// the first call's: an attribute has no error to return it in.
pub(crate) fn mpi_pool(config: &Config) -> &'static ProcessPool {
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
