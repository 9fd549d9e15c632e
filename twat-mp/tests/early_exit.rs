//! Every pool's eager `map` returns as soon as its outcome is decided: once the lowest
//! failing item is known and every item below it has answered, it does not wait for the
//! items above it (the engine's `Gather`). `AsyncProcessPool::map` and
//! `ProcessPool::map` used to wait for every item sent.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use twat_mp::{ErrorKind, ProcessPool, WorkerError};

/// How long a test waits for `map` to return before it calls it a hang.
const PATIENCE: Duration = Duration::from_secs(30);

/// An item whose index is 0 fails at once; any other waits until its gate (a file)
/// exists, for a minute at most.
type Item = (u32, PathBuf);

fn opened(gate: &Path, deadline: Instant) -> bool {
    gate.exists() || Instant::now() > deadline
}

fn fail_first_or_wait((n, gate): Item) -> u32 {
    assert!(n != 0, "item 0 fails at once");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !opened(&gate, deadline) {
        std::thread::sleep(Duration::from_millis(5));
    }
    n
}

#[cfg(feature = "aio")]
async fn fail_first_or_wait_async((n, gate): Item) -> u32 {
    assert!(n != 0, "item 0 fails at once");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !opened(&gate, deadline) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    n
}

/// Where a test's `map` reports its outcome, before its pool is dropped.
type Report = Box<dyn FnOnce(Result<Vec<u32>, WorkerError>) + Send>;

/// Runs `map` over four items under a watchdog: it must fail with item 0 while item 1
/// still waits at its gate. The gate is opened afterwards whatever happened, so that the
/// pool can then be dropped even where it waits for item 1 (the process pools stop it:
/// see `process_fail_fast.rs`).
fn returns_while_item_1_waits(name: &str, map: impl FnOnce(Vec<Item>, Report) + Send + 'static) {
    let gate =
        std::env::temp_dir().join(format!("twat-mp-early-exit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&gate);
    let items: Vec<Item> = (0..4).map(|n| (n, gate.clone())).collect();
    let (sender, receiver) = mpsc::channel();
    let report: Report = Box::new(move |outcome| {
        let _ = sender.send(outcome.map_err(|err| (err.index(), err.kind().to_string())));
    });
    let caller = std::thread::spawn(move || map(items, report));
    let outcome = receiver.recv_timeout(PATIENCE);
    std::fs::write(&gate, b"open").expect("the gate can be opened");
    let outcome = outcome.unwrap_or_else(|_| {
        panic!("{name}: map waited for items above the lowest failure instead of returning")
    });
    caller.join().expect("the caller returns");
    let _ = std::fs::remove_file(&gate);
    let (index, kind) = outcome.expect_err("item 0 fails");
    assert_eq!(index, 0);
    assert_eq!(kind, "panicked: item 0 fails at once");
}

#[test]
fn process_pool_map_returns_once_decided() {
    returns_while_item_1_waits("process", |items, report| {
        let pool = ProcessPool::builder()
            .nodes(2)
            .chunksize(1)
            .build()
            .unwrap();
        report(pool.map(fail_first_or_wait, items));
    });
}

#[cfg(feature = "aio")]
#[test]
fn async_process_pool_map_returns_once_decided() {
    returns_while_item_1_waits("async-process", |items, report| {
        let pool = twat_mp::AsyncMultiPool::builder()
            .nodes(2)
            .concurrency(1)
            .processes()
            .build()
            .unwrap();
        report(pollster::block_on(
            pool.map(fail_first_or_wait_async, items),
        ));
    });
}

#[cfg(feature = "aio")]
#[test]
fn async_pool_map_returns_once_decided() {
    returns_while_item_1_waits("async", |items, report| {
        let pool = twat_mp::AsyncMultiPool::builder()
            .nodes(2)
            .concurrency(1)
            .build()
            .unwrap();
        report(pollster::block_on(
            pool.map(fail_first_or_wait_async, items),
        ));
    });
}

#[test]
fn the_kind_names_the_panic() {
    // The message the tests above compare against.
    assert_eq!(
        ErrorKind::Panicked {
            message: "item 0 fails at once".into()
        }
        .to_string(),
        "panicked: item 0 fails at once"
    );
}
