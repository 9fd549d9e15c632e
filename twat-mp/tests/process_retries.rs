//! `retries(n)` on both process pools, through the public API: an item whose worker
//! crashed or that timed out runs again, on a fresh worker, up to `n` more times; panics
//! and returned errors run once; `WorkerError::attempts` counts the runs.
//!
//! The functions cross to worker processes, so they capture nothing: each item carries
//! the directory where its runs leave their marks (one line per run), which is how a
//! test sees how often an item ran, and how an item knows it runs again.
#![cfg(target_os = "linux")]

use crate::support;

use std::time::Duration;

use support::run_marks::{self, Item, items, mark_run, runs};
use twat_mp::{ErrorKind, ProcessPool};

fn scratch(test: &str) -> run_marks::Scratch {
    run_marks::scratch("retries", test)
}

/// Item 3 kills its worker on its first run only.
fn crashes_once((dir, x): Item) -> u64 {
    if mark_run(&dir, x) == 0 && x == 3 {
        std::process::abort();
    }
    x * 10
}

/// Item 3 kills its worker on every run.
fn always_crashes((dir, x): Item) -> u64 {
    mark_run(&dir, x);
    if x == 3 {
        std::process::abort();
    }
    x * 10
}

/// Item 2 hangs on its first run only.
fn hangs_once((dir, x): Item) -> u64 {
    if mark_run(&dir, x) == 0 && x == 2 {
        std::thread::sleep(Duration::from_secs(3600));
    }
    x * 10
}

/// Item 2 hangs on every run.
fn always_hangs((dir, x): Item) -> u64 {
    mark_run(&dir, x);
    if x == 2 {
        std::thread::sleep(Duration::from_secs(3600));
    }
    x * 10
}

/// Item 1 panics on every run.
fn panics((dir, x): Item) -> u64 {
    mark_run(&dir, x);
    assert!(x != 1, "one is not allowed");
    x * 10
}

/// Item 1 returns an error on every run.
fn fails((dir, x): Item) -> Result<u64, String> {
    mark_run(&dir, x);
    if x == 1 {
        return Err("one is not allowed".into());
    }
    Ok(x * 10)
}

/// Item 2 kills its worker on its first run, and panics on the next.
fn crashes_then_panics((dir, x): Item) -> u64 {
    let before = mark_run(&dir, x);
    if x == 2 {
        if before == 0 {
            std::process::abort();
        }
        panic!("still broken");
    }
    x * 10
}

fn pool(retries: u32) -> ProcessPool {
    // One item per job, so that a crash is pinned on its item at once.
    ProcessPool::builder()
        .nodes(2)
        .chunksize(1)
        .retries(retries)
        .build()
        .unwrap()
}

#[test]
fn an_item_that_crashes_its_worker_once_succeeds_on_a_retry() {
    support::within(Duration::from_secs(60), "a retried crash", || {
        let dir = scratch("once");
        let err = pool(0)
            .map(crashes_once, items(&dir, 0..6))
            .expect_err("without retries the crash is the item's failure");
        assert_eq!((err.index(), err.attempts()), (3, 1));
        assert!(matches!(err.kind(), ErrorKind::Crashed { .. }), "{err}");

        let dir = scratch("once-retried");
        let results = pool(1).map(crashes_once, items(&dir, 0..6)).unwrap();
        assert_eq!(results, [0, 10, 20, 30, 40, 50]);
        let third = runs(&dir, 3);
        assert_eq!(third.len(), 2, "item 3 ran twice");
        assert_ne!(third[0], third[1], "its retry ran on a fresh worker");
        assert_eq!(runs(&dir, 4).len(), 1, "the other items ran once");
    });
}

#[test]
fn an_item_that_always_crashes_fails_after_every_retry() {
    support::within(Duration::from_secs(60), "retries of a crash", || {
        let dir = scratch("always");
        let err = pool(2).map(always_crashes, items(&dir, 0..6)).unwrap_err();
        assert_eq!((err.index(), err.attempts()), (3, 3));
        assert!(
            err.to_string().starts_with(
                "item 3 (input (\"", // the item's serde form
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains(
                " on worker 0 crashed after 3 attempts: the worker process was killed by \
                 signal 6 (SIGABRT)"
            ) || err.to_string().contains(
                " on worker 1 crashed after 3 attempts: the worker process was killed by \
                 signal 6 (SIGABRT)"
            ),
            "{err}"
        );
        let pids = runs(&dir, 3);
        assert_eq!(pids.len(), 3, "one run and two retries");
        for pair in pids.windows(2) {
            assert_ne!(pair[0], pair[1], "each run on a fresh worker");
        }
    });
}

#[test]
fn items_of_a_batch_whose_worker_died_count_only_the_runs_pinned_on_them() {
    support::within(Duration::from_secs(60), "retries within a batch", || {
        let dir = scratch("batch");
        let pool = ProcessPool::builder()
            .nodes(1)
            .chunksize(8)
            .retries(1)
            .build()
            .unwrap();
        let err = pool.map(always_crashes, items(&dir, 0..8)).unwrap_err();
        assert_eq!((err.index(), err.attempts()), (3, 2));
        // The run of the whole batch, the run that found the item, and its retry.
        assert_eq!(runs(&dir, 3).len(), 3);
        // The items after it never ran: the map was decided.
        assert!(runs(&dir, 4).len() <= 1);

        let dir = scratch("batch-once");
        let results = pool.map(crashes_once, items(&dir, 0..8)).unwrap();
        assert_eq!(results, (0..8).map(|x| x * 10).collect::<Vec<_>>());
    });
}

#[test]
fn a_timed_out_item_runs_again() {
    support::within(Duration::from_secs(60), "a retried timeout", || {
        let pool = ProcessPool::builder()
            .nodes(2)
            .timeout(Duration::from_millis(300))
            .retries(1)
            .build()
            .unwrap();
        let dir = scratch("timeout-once");
        let results = pool.map(hangs_once, items(&dir, 0..4)).unwrap();
        assert_eq!(results, [0, 10, 20, 30]);
        assert_eq!(runs(&dir, 2).len(), 2);

        let dir = scratch("timeout-always");
        let err = pool.map(always_hangs, items(&dir, 0..4)).unwrap_err();
        assert_eq!((err.index(), err.attempts()), (2, 2));
        assert!(
            matches!(err.kind(), ErrorKind::TimedOut { after } if *after == Duration::from_millis(300)),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("timed out after 300ms on the last of its 2 attempts"),
            "{err}"
        );
        assert_eq!(runs(&dir, 2).len(), 2);
    });
}

#[test]
fn panics_and_returned_errors_are_not_retried() {
    support::within(Duration::from_secs(60), "no retries of panics", || {
        let pool = pool(3);
        let dir = scratch("panic");
        let err = pool.map(panics, items(&dir, 0..4)).unwrap_err();
        assert_eq!((err.index(), err.attempts()), (1, 1));
        assert!(
            matches!(err.kind(), ErrorKind::Panicked { message } if message == "one is not allowed")
        );
        assert_eq!(runs(&dir, 1).len(), 1);

        let dir = scratch("error");
        let err = pool.try_map(fails, items(&dir, 0..4)).unwrap_err();
        assert_eq!((err.index(), err.attempts()), (1, 1));
        assert!(matches!(err.kind(), ErrorKind::Failed(_)));
        assert_eq!(runs(&dir, 1).len(), 1);
    });
}

#[test]
fn a_panic_on_a_retry_reports_the_run_it_failed_on() {
    support::within(Duration::from_secs(60), "a panic on a retry", || {
        let dir = scratch("crash-then-panic");
        let err = pool(5)
            .map(crashes_then_panics, items(&dir, 0..4))
            .unwrap_err();
        assert_eq!((err.index(), err.attempts()), (2, 2));
        assert!(matches!(err.kind(), ErrorKind::Panicked { message } if message == "still broken"));
        assert!(
            err.to_string()
                .ends_with(", on its attempt 2, panicked: still broken"),
            "{err}"
        );
        assert_eq!(runs(&dir, 2).len(), 2, "the panic was not retried");
    });
}

#[test]
fn lazy_maps_retry_too() {
    support::within(Duration::from_secs(60), "retries in imap", || {
        let pool = pool(1);
        let dir = scratch("imap");
        let results: Vec<u64> = pool
            .imap(crashes_once, items(&dir, 0..6))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(results, [0, 10, 20, 30, 40, 50]);
        let dir = scratch("uimap");
        let failures: Vec<_> = pool
            .uimap(always_crashes, items(&dir, 0..6))
            .filter_map(Result::err)
            .collect();
        assert_eq!(failures.len(), 1);
        assert_eq!((failures[0].index(), failures[0].attempts()), (3, 2));
    });
}

#[twat_mp::pmap(process, nodes = 2, chunksize = 1, retries = 1)]
fn crashes_once_pmap(item: Item) -> u64 {
    crashes_once(item)
}

#[twat_mp::imap(process, nodes = 2, chunksize = 1, retries = 1)]
fn crashes_once_imap(item: Item) -> u64 {
    crashes_once(item)
}

#[twat_mp::amap(process, nodes = 2, chunksize = 1, retries = 2)]
fn always_crashes_amap(item: Item) -> u64 {
    always_crashes(item)
}

#[test]
fn the_attributes_retry_with_the_retries_option() {
    support::within(Duration::from_secs(60), "attribute retries", || {
        let dir = scratch("pmap");
        assert_eq!(crashes_once_pmap(items(&dir, 0..5)), [0, 10, 20, 30, 40]);
        assert_eq!(runs(&dir, 3).len(), 2);

        let dir = scratch("imap");
        let results: Vec<u64> = crashes_once_imap(items(&dir, 0..5)).collect();
        assert_eq!(results, [0, 10, 20, 30, 40]);

        // A crash has no original to resume: the WorkerError is the panic's payload.
        let dir = scratch("amap");
        let pending = always_crashes_amap(items(&dir, 0..5));
        let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pending.get()))
            .expect_err("the crash resumes as a panic");
        let err = payload
            .downcast_ref::<twat_mp::WorkerError>()
            .expect("the payload is the WorkerError");
        assert_eq!((err.index(), err.attempts()), (3, 3));
        assert_eq!(runs(&dir, 3).len(), 3);
    });
}

#[cfg(feature = "aio")]
mod async_process {
    use super::*;
    use twat_mp::{AsyncMultiPool, AsyncProcessPool};

    async fn crashes_once_async(item: Item) -> u64 {
        crashes_once(item)
    }

    async fn always_crashes_async(item: Item) -> u64 {
        always_crashes(item)
    }

    async fn panics_async(item: Item) -> u64 {
        panics(item)
    }

    /// Item 2 is pending past the timeout on its first run only.
    async fn late_once((dir, x): Item) -> u64 {
        if mark_run(&dir, x) == 0 && x == 2 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        x * 10
    }

    /// Item 2 blocks its worker's thread past the timeout on every run.
    async fn always_blocks((dir, x): Item) -> u64 {
        mark_run(&dir, x);
        if x == 2 {
            std::thread::sleep(Duration::from_secs(3600));
        }
        x * 10
    }

    fn pool(retries: u32) -> AsyncProcessPool {
        pool_of(retries, 4)
    }

    fn pool_of(retries: u32, concurrency: usize) -> AsyncProcessPool {
        AsyncMultiPool::builder()
            .nodes(2)
            .concurrency(concurrency)
            .timeout(Duration::from_millis(300))
            .processes()
            .retries(retries)
            .build()
            .unwrap()
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_task_that_crashes_its_worker_once_succeeds_on_a_retry() {
        support::within(Duration::from_secs(60), "an async retried crash", || {
            // One task per worker at a time, so that a crash is pinned on its task at once
            // (several would each run again alone, which finds a task that crashes once
            // without any retry).
            let dir = scratch("aio-once");
            let err =
                block_on(pool_of(0, 1).map(crashes_once_async, items(&dir, 0..6))).unwrap_err();
            assert_eq!((err.index(), err.attempts()), (3, 1));

            let dir = scratch("aio-once-retried");
            let results =
                block_on(pool_of(1, 1).map(crashes_once_async, items(&dir, 0..6))).unwrap();
            assert_eq!(results, [0, 10, 20, 30, 40, 50]);
            assert_eq!(runs(&dir, 3).len(), 2);
        });
    }

    #[test]
    fn a_task_that_always_crashes_fails_after_every_retry() {
        support::within(Duration::from_secs(60), "async retries of a crash", || {
            let dir = scratch("aio-always");
            let err = block_on(pool(2).map(always_crashes_async, items(&dir, 0..6))).unwrap_err();
            assert_eq!((err.index(), err.attempts()), (3, 3));
            assert!(matches!(err.kind(), ErrorKind::Crashed { .. }), "{err}");
            assert!(
                err.to_string().contains("crashed after 3 attempts"),
                "{err}"
            );
            // Any run beyond these three was a search among tasks sharing a worker.
            assert!(runs(&dir, 3).len() >= 3);
        });
    }

    #[test]
    fn timed_out_tasks_run_again() {
        support::within(Duration::from_secs(60), "async retried timeouts", || {
            let dir = scratch("aio-late");
            let results = block_on(pool(1).map(late_once, items(&dir, 0..4))).unwrap();
            assert_eq!(results, [0, 10, 20, 30]);
            assert_eq!(runs(&dir, 2).len(), 2);

            let dir = scratch("aio-blocks");
            let err = block_on(pool(1).map(always_blocks, items(&dir, 0..4))).unwrap_err();
            assert_eq!((err.index(), err.attempts()), (2, 2));
            assert!(matches!(err.kind(), ErrorKind::TimedOut { .. }), "{err}");
        });
    }

    #[twat_mp::apmap(process, nodes = 2, concurrency = 1, retries = 1)]
    async fn crashes_once_apmap(item: Item) -> u64 {
        crashes_once(item)
    }

    #[test]
    fn the_apmap_attribute_retries_with_the_retries_option() {
        support::within(Duration::from_secs(60), "apmap retries", || {
            let dir = scratch("apmap");
            assert_eq!(
                block_on(crashes_once_apmap(items(&dir, 0..5))),
                [0, 10, 20, 30, 40]
            );
            assert_eq!(runs(&dir, 3).len(), 2);
        });
    }

    #[test]
    fn panicking_tasks_are_not_retried() {
        support::within(
            Duration::from_secs(60),
            "no async retries of panics",
            || {
                let dir = scratch("aio-panic");
                let err = block_on(pool(3).map(panics_async, items(&dir, 0..4))).unwrap_err();
                assert_eq!((err.index(), err.attempts()), (1, 1));
                assert_eq!(runs(&dir, 1).len(), 1);
            },
        );
    }
}
