//! Fail fast: once a process pool's `map` is decided by a failure, the items still running
//! above it are stopped (their workers killed, and replaced when work next needs them).
//! So the pool is at once fully usable again, and dropping it waits for nothing; before,
//! a map whose item 0 failed at once waited for a slow item 1 in the next map or in drop.
#![cfg(target_os = "linux")]

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use twat_mp::ProcessPool;

/// How long the whole sequence (failing map, second map, drop) may take: far less than
/// the minute the slow item runs.
const LIMIT: Duration = Duration::from_secs(30);

/// Item 0 fails at once; any other runs for a minute.
fn fail_first_or_run_a_minute(n: u32) -> u32 {
    assert!(n != 0, "item 0 fails at once");
    std::thread::sleep(Duration::from_secs(60));
    n
}

/// Marks that item `n` (0 or 1) runs, and waits (a minute at most) until the other one
/// runs too: a map of both finishes at once only if two workers are free to run them
/// side by side.
fn meet((n, dir): (u32, PathBuf)) -> u32 {
    std::fs::write(dir.join(n.to_string()), b"here").expect("the mark is written");
    let other = dir.join((1 - n).to_string());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !other.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    n
}

/// A fresh directory for the marks of one test's `meet` items.
fn meeting_place(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("twat-mp-fail-fast-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the directory is made");
    dir
}

fn meetings(dir: &Path) -> Vec<(u32, PathBuf)> {
    (0..2).map(|n| (n, dir.to_owned())).collect()
}

#[test]
fn process_pool_stops_the_items_above_the_lowest_failure() {
    let dir = meeting_place("process");
    let items = meetings(&dir);
    support::within(LIMIT, "fail, map again and drop", move || {
        let pool = ProcessPool::builder()
            .nodes(2)
            .chunksize(1)
            .build()
            .unwrap();
        let err = pool.map(fail_first_or_run_a_minute, [0, 1]).unwrap_err();
        assert_eq!(err.index(), 0);
        // Both workers are free for the next map: item 1 of the last one was stopped.
        assert_eq!(pool.map(meet, items).unwrap(), [0, 1]);
        drop(pool);
    });
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn dropping_a_lazy_map_stops_its_running_items() {
    support::within(LIMIT, "drop the pool after an abandoned imap", || {
        let pool = ProcessPool::builder()
            .nodes(2)
            .chunksize(1)
            .build()
            .unwrap();
        let mut results = pool.imap(fail_first_or_run_a_minute, 0..4);
        assert!(results.next().unwrap().is_err());
        drop(results);
        drop(pool);
    });
}

#[cfg(feature = "aio")]
async fn fail_first_or_run_a_minute_async(n: u32) -> u32 {
    assert!(n != 0, "item 0 fails at once");
    tokio::time::sleep(Duration::from_secs(60)).await;
    n
}

#[cfg(feature = "aio")]
async fn meet_async(item: (u32, PathBuf)) -> u32 {
    meet(item)
}

#[cfg(feature = "aio")]
#[test]
fn async_process_pool_stops_the_items_above_the_lowest_failure() {
    let dir = meeting_place("async-process");
    let items = meetings(&dir);
    support::within(LIMIT, "fail, map again and drop", move || {
        let pool = twat_mp::AsyncMultiPool::builder()
            .nodes(2)
            .concurrency(1)
            .processes()
            .build()
            .unwrap();
        let err =
            pollster::block_on(pool.map(fail_first_or_run_a_minute_async, [0, 1])).unwrap_err();
        assert_eq!(err.index(), 0);
        assert_eq!(
            pollster::block_on(pool.map(meet_async, items)).unwrap(),
            [0, 1]
        );
        drop(pool);
    });
    let _ = std::fs::remove_dir_all(dir);
}
