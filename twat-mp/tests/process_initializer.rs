//! `initializer(f)` on both process pools, through the public API: it runs once in each
//! worker process when it starts, before its first item, again in every replacement
//! worker, never in the caller; a failing initializer is a clear error, not a crash loop.
//!
//! The initializers capture nothing, so they find their test's directory from their
//! parent's pid (the test process): each leaves a file named by its own pid there.
#![cfg(target_os = "linux")]

use crate::support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use twat_mp::{ErrorKind, ProcessPool, WorkerError};

/// How many times the initializer ran in this process.
static INITIALIZED: AtomicU32 = AtomicU32::new(0);

/// Where the initializers of `test` leave their marks: a directory named after the test
/// process, which is the parent of every worker.
fn marks(test: &str, parent: u32) -> PathBuf {
    std::env::temp_dir().join(format!("twat-mp-initializer-{parent}-{test}"))
}

fn fresh_marks(test: &str) -> PathBuf {
    let dir = marks(test, std::process::id());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Leaves this worker's mark for `test`.
fn mark(test: &str) {
    let dir = marks(test, std::os::unix::process::parent_id());
    std::fs::write(dir.join(std::process::id().to_string()), "").unwrap();
}

/// The pids of the workers whose initializer ran for `test`.
fn marked(dir: &PathBuf) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    pids.sort_unstable();
    pids
}

fn count() {
    INITIALIZED.fetch_add(1, Ordering::SeqCst);
}

/// This worker's pid, and how many times its initializer had run when the item ran.
fn seen(x: u64) -> (u32, u32, u64) {
    (std::process::id(), INITIALIZED.load(Ordering::SeqCst), x)
}

fn aborts(x: u64) -> u64 {
    if x == 3 {
        std::process::abort();
    }
    x
}

fn panicking() {
    mark("panicking");
    panic!("no config file");
}

fn aborting() {
    std::process::abort();
}

#[test]
fn the_initializer_runs_once_in_each_worker_before_its_items() {
    support::within(Duration::from_secs(60), "initialized workers", || {
        let pool = ProcessPool::builder()
            .nodes(2)
            .chunksize(1)
            .initializer(count)
            .build()
            .unwrap();
        let first = pool.map(seen, 0..40).unwrap();
        let second = pool.map(seen, 0..40).unwrap();
        let mut pids: Vec<u32> = first.iter().chain(&second).map(|s| s.0).collect();
        pids.sort_unstable();
        pids.dedup();
        assert!(!pids.is_empty() && pids.len() <= 2, "{pids:?}");
        assert!(!pids.contains(&std::process::id()));
        // Every item, in every call, saw its worker initialized exactly once.
        assert!(first.iter().chain(&second).all(|s| s.1 == 1), "{first:?}");
        // Never in the caller.
        assert_eq!(INITIALIZED.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn a_replacement_worker_runs_the_initializer_again() {
    support::within(Duration::from_secs(60), "a replaced worker", || {
        let pool = ProcessPool::builder()
            .nodes(1)
            .initializer(count)
            .build()
            .unwrap();
        let (before, runs, _) = pool.apply(seen, 0).unwrap();
        assert_eq!(runs, 1);
        let err = pool.map(aborts, 0..5).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Crashed { .. }), "{err}");
        let (after, runs, _) = pool.apply(seen, 0).unwrap();
        assert_ne!(before, after, "the worker was replaced");
        assert_eq!(runs, 1, "the replacement ran the initializer once");
    });
}

fn initializer_failed(err: &WorkerError) -> &str {
    match err.kind() {
        ErrorKind::InitializerFailed { reason } => reason,
        _ => panic!("not an initializer failure: {err}"),
    }
}

#[test]
fn a_panicking_initializer_fails_the_items_clearly_and_starts_no_more_workers() {
    let dir = fresh_marks("panicking");
    support::within(
        Duration::from_secs(60),
        "a panicking initializer",
        move || {
            let pool = ProcessPool::builder()
                .nodes(2)
                .initializer(panicking)
                .build()
                .unwrap();
            let err = pool.map(seen, 0..10).unwrap_err();
            let reason = initializer_failed(&err);
            assert!(
                reason.starts_with("panicked at twat-mp/tests/process_initializer.rs:")
                    && reason.ends_with(": no config file"),
                "{reason}"
            );
            assert_eq!(err.index(), 0);
            assert_eq!(err.attempts(), 0, "the item never ran");
            let message = err.to_string();
            assert!(
                message
                    .contains(" was not run: the initializer of its worker process panicked at ")
                    && message.starts_with("item 0 (input 0) on worker "),
                "{message}"
            );
            // Later calls fail at once, every item, without starting workers again.
            let outcomes: Vec<_> = pool.imap(seen, 0..200).collect();
            assert_eq!(outcomes.len(), 200);
            for outcome in outcomes {
                let err = outcome.unwrap_err();
                assert!(initializer_failed(&err).ends_with(": no config file"));
            }
            let started = marked(&dir).len();
            assert!((1..=2).contains(&started), "{started} workers started");
        },
    );
}

#[test]
fn an_initializer_that_kills_its_worker_is_a_clear_error_too() {
    support::within(Duration::from_secs(60), "an aborting initializer", || {
        let pool = ProcessPool::builder()
            .nodes(1)
            .initializer(aborting)
            .build()
            .unwrap();
        let err = pool.apply(seen, 7).unwrap_err();
        assert_eq!(
            initializer_failed(&err),
            "crashed: the worker process was killed by signal 6 (SIGABRT)"
        );
        assert!(
            err.to_string().ends_with(
                "was not run: the initializer of its worker process crashed: the worker \
                 process was killed by signal 6 (SIGABRT)"
            ),
            "{err}"
        );
        assert!(pool.map(seen, 0..3).is_err());
    });
}

#[test]
fn the_initializer_is_not_part_of_the_first_items_timeout() {
    fn slow() {
        std::thread::sleep(Duration::from_millis(600));
        count();
    }
    support::within(Duration::from_secs(60), "a slow initializer", || {
        let pool = ProcessPool::builder()
            .nodes(1)
            .timeout(Duration::from_millis(300))
            .initializer(slow)
            .build()
            .unwrap();
        assert_eq!(pool.map(seen, [5]).unwrap()[0].1, 1);
    });
}

#[cfg(feature = "aio")]
mod async_process {
    use super::*;
    use twat_mp::{AsyncMultiPool, BuildError};

    async fn seen_async(x: u64) -> (u32, u32, u64) {
        seen(x)
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn each_worker_process_runs_the_initializer_once() {
        support::within(Duration::from_secs(60), "initialized async workers", || {
            let pool = AsyncMultiPool::builder()
                .nodes(2)
                .concurrency(4)
                .processes()
                .initializer(count)
                .build()
                .unwrap();
            let first = block_on(pool.map(seen_async, 0..40)).unwrap();
            let second = block_on(pool.map(seen_async, 0..40)).unwrap();
            assert!(first.iter().chain(&second).all(|s| s.1 == 1), "{first:?}");
            assert!(first.iter().all(|s| s.0 != std::process::id()));
            assert_eq!(INITIALIZED.load(Ordering::SeqCst), 0);
        });
    }

    #[test]
    fn a_panicking_initializer_fails_every_task_without_hanging() {
        support::within(
            Duration::from_secs(60),
            "an async panicking initializer",
            || {
                let _ = fresh_marks("panicking-async");
                fn panicking_async() {
                    mark("panicking-async");
                    panic!("no model file");
                }
                let pool = AsyncMultiPool::builder()
                    .nodes(2)
                    .processes()
                    .initializer(panicking_async)
                    .build()
                    .unwrap();
                let err = block_on(pool.map(seen_async, 0..10)).unwrap_err();
                assert!(
                    initializer_failed(&err).ends_with(": no model file"),
                    "{err}"
                );
                assert_eq!(err.attempts(), 0);
                assert!(block_on(pool.map(seen_async, 0..10)).is_err());
            },
        );
    }

    #[test]
    fn a_closure_set_before_processes_is_refused_with_the_way_to_do_it() {
        let err = AsyncMultiPool::builder()
            .initializer(|| println!("ready"))
            .processes()
            .build()
            .unwrap_err();
        assert!(matches!(err, BuildError::Unsupported(_)));
        assert_eq!(
            err.to_string(),
            "these settings cannot be used together: an initializer set before \
             `processes()` is a closure, and a closure cannot cross to a worker process: set \
             it after, `.processes().initializer(f)`, with a function that captures nothing"
        );
    }
}
