//! How items travel to worker processes, through the public API: with one item per message
//! (`chunksize = 1`) a worker gets its next jobs before it has answered the current one,
//! and a crash or a timeout still costs exactly its item, every other item running once;
//! large items and results (`Vec<u8>`, `serde_bytes`) arrive intact.
//!
//! The functions cross to worker processes, so they capture nothing: each item carries the
//! directory where its runs leave their marks (one line per run), which is how a test sees
//! how often an item ran.
#![cfg(target_os = "linux")]

use crate::support;

use std::time::Duration;

use support::run_marks::{self, Item, items, mark_run, runs};
use support::within;
use twat_mp::{ErrorKind, ProcessPool};

fn scratch(test: &str) -> run_marks::Scratch {
    run_marks::scratch("transport", test)
}

fn one_per_message() -> twat_mp::ProcessPoolBuilder {
    ProcessPool::builder().nodes(2).chunksize(1)
}

/// Items 17, 57, 97, … abort their worker.
fn aborts_on_17_mod_40((dir, x): Item) -> u64 {
    mark_run(&dir, x);
    if x % 40 == 17 {
        std::process::abort();
    }
    x * 2
}

#[test]
fn with_jobs_in_flight_a_crash_costs_exactly_its_item_and_every_other_runs_once() {
    within(
        Duration::from_secs(120),
        "a pipelined map with crashes",
        || {
            let dir = scratch("crash");
            let pool = one_per_message().build().unwrap();
            let outcomes: Vec<_> = pool
                .imap(aborts_on_17_mod_40, items(&dir, 0..200))
                .collect();
            assert_eq!(outcomes.len(), 200);
            for (x, outcome) in (0_u64..).zip(&outcomes) {
                if x % 40 == 17 {
                    let err = outcome.as_ref().unwrap_err();
                    assert_eq!(err.index() as u64, x);
                    assert!(
                        matches!(err.kind(), ErrorKind::Crashed { .. }),
                        "{x}: {err}"
                    );
                } else {
                    assert_eq!(*outcome.as_ref().unwrap(), x * 2, "{x}");
                }
                // The jobs sent behind a crash had not begun: they ran once, on a new worker.
                assert_eq!(runs(&dir, x).len(), 1, "item {x}");
            }
            // The pool goes on as before.
            assert_eq!(
                pool.map(aborts_on_17_mod_40, items(&dir, 210..230))
                    .unwrap_err()
                    .index(),
                7
            );
        },
    );
}

/// Aborts on its first run only.
fn aborts_once((dir, x): Item) -> u64 {
    if mark_run(&dir, x) == 0 && x == 33 {
        std::process::abort();
    }
    x + 1
}

#[test]
fn with_jobs_in_flight_a_retried_item_runs_again_and_no_other_does() {
    within(
        Duration::from_secs(60),
        "a pipelined map with a retry",
        || {
            let dir = scratch("retry");
            let pool = one_per_message().retries(1).build().unwrap();
            let results = pool.map(aborts_once, items(&dir, 0..120)).unwrap();
            assert_eq!(results, (1..=120).collect::<Vec<u64>>());
            for x in 0..120 {
                assert_eq!(runs(&dir, x).len(), if x == 33 { 2 } else { 1 }, "item {x}");
            }
        },
    );
}

/// Item 30 hangs.
fn hangs_on_30((dir, x): Item) -> u64 {
    mark_run(&dir, x);
    if x == 30 {
        // A hang, as a stuck network call would be: the worker is killed at the timeout.
        std::thread::sleep(Duration::from_secs(600));
    }
    x
}

#[test]
fn with_jobs_in_flight_a_timeout_is_per_item_and_costs_only_that_item() {
    within(
        Duration::from_secs(60),
        "a pipelined map with a hang",
        || {
            let dir = scratch("timeout");
            let limit = Duration::from_millis(700);
            let pool = one_per_message().timeout(limit).build().unwrap();
            let outcomes: Vec<_> = pool.imap(hangs_on_30, items(&dir, 0..150)).collect();
            for (x, outcome) in (0_u64..).zip(&outcomes) {
                if x == 30 {
                    let err = outcome.as_ref().unwrap_err();
                    assert_eq!(err.index(), 30);
                    assert!(
                        matches!(err.kind(), ErrorKind::TimedOut { after } if *after == limit),
                        "{err}"
                    );
                } else {
                    // The jobs queued behind the hung one did not time out with it.
                    assert_eq!(*outcome.as_ref().unwrap(), x);
                }
                assert_eq!(runs(&dir, x).len(), 1, "item {x}");
            }
        },
    );
}

fn reversed(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.reverse();
    bytes
}

fn reversed_buf(bytes: serde_bytes::ByteBuf) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(reversed(bytes.into_vec()))
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn large_byte_items_and_results_arrive_intact() {
    within(Duration::from_secs(120), "large items", || {
        let pool = ProcessPool::with_nodes(2).unwrap();
        let sizes = [0, 1, 127, 128, (1 << 20) - 3, (1 << 20) + 5, 24 << 20];
        let items: Vec<Vec<u8>> = (0_u64..)
            .zip(sizes)
            .map(|(seed, len)| pattern(len, seed))
            .collect();
        let results = pool.map(reversed, items.clone()).unwrap();
        for (item, result) in items.iter().zip(&results) {
            assert_eq!(result.len(), item.len());
            assert!(result.iter().rev().eq(item.iter()));
        }
        let bufs: Vec<_> = items
            .iter()
            .cloned()
            .map(serde_bytes::ByteBuf::from)
            .collect();
        let results = pool.map(reversed_buf, bufs).unwrap();
        for (item, result) in items.iter().zip(&results) {
            assert!(result.iter().rev().eq(item.iter()));
        }
    });
}

/// Of each 3,000 items, 0, 1,000, 1,001 and 2,999 (the first, two in a row, the last)
/// abort their worker.
const CRASHED: [u64; 4] = [0, 1_000, 1_001, 2_999];

fn aborts_on_chosen((dir, x): Item) -> u64 {
    mark_run(&dir, x);
    if CRASHED.contains(&(x % 3_000)) {
        std::process::abort();
    }
    x + 5
}

#[test]
fn answers_handed_over_in_bunches_keep_a_crash_exact_and_every_other_item_run_once() {
    // Short items, one per message: a worker gets up to 32 jobs ahead and its slot hands
    // the call several answers at once; neither may move a crash's blame or run an item
    // twice.
    within(
        Duration::from_secs(120),
        "a long pipelined map with crashes",
        || {
            let dir = scratch("bunches");
            let pool = one_per_message().build().unwrap();
            for ordered in [true, false] {
                let input = items(&dir, if ordered { 0..3_000 } else { 3_000..6_000 });
                let mut outcomes: Vec<(u64, Result<u64, twat_mp::WorkerError>)> = if ordered {
                    (0_u64..).zip(pool.imap(aborts_on_chosen, input)).collect()
                } else {
                    pool.uimap(aborts_on_chosen, input)
                        .map(|outcome| match outcome {
                            Ok(y) => (y - 5, Ok(y)),
                            Err(err) => (3_000 + err.index() as u64, Err(err)),
                        })
                        .collect()
                };
                outcomes.sort_by_key(|(x, _)| *x);
                let first = if ordered { 0 } else { 3_000 };
                assert_eq!(outcomes.len(), 3_000);
                for (x, outcome) in &outcomes {
                    let x = *x;
                    let at = x - first;
                    if CRASHED.contains(&at) {
                        let err = outcome.as_ref().unwrap_err();
                        assert_eq!(err.index() as u64, at);
                        assert!(
                            matches!(err.kind(), ErrorKind::Crashed { .. }),
                            "{x}: {err}"
                        );
                    } else {
                        assert_eq!(*outcome.as_ref().unwrap(), x + 5, "item {x}");
                    }
                    assert_eq!(runs(&dir, x).len(), 1, "item {x}");
                }
            }
        },
    );
}
