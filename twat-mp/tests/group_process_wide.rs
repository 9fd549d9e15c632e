//! The integration tests are compiled into a few test binaries (`autotests = false` in
//! Cargo.toml, one `[[test]]` per `group_*.rs`), not one per file: each binary compiles
//! the generic pools for its items again and links every dependency, which for forty files
//! took most of CI's test build. Each file of `tests/` stays a file of its own, a module
//! of one group; `support` is declared once per group, and a test that runs itself again
//! in a child process names itself with `support::test_name`.
//!
//! This binary holds the tests that look at the whole process: its threads, file
//! descriptors and child processes (leaks, a dropped pool's threads, workers that outlive
//! their parent), its global tracing subscriber and debug mode. Each of them holds
//! `support::alone()` from its first line, so they run one at a time, and no test of
//! another file runs beside them.

#[macro_use]
mod support;

mod aio_drop;
mod debug_mode;
mod leaks;
mod process_lifecycle;
mod thread_pool_drop;
