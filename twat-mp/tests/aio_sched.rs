//! How `AsyncMultiPool` schedules its tasks, under the uses that used to hang or stall:
//! the pool dropped inside its own task, nested calls into the same pool, a task that
//! blocks its thread, and a timeout on such a task.
#![cfg(feature = "aio")]

use crate::support;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use twat_mp::{AsyncMultiPool, ErrorKind, apmap};

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Point 1: the last `Arc<AsyncMultiPool>` dropped inside one of its own tasks stops the
/// pool instead of deadlocking, with any number of workers.
#[test]
fn dropping_the_last_arc_inside_its_own_task_never_deadlocks() {
    for nodes in [1, 2, 3] {
        let answer = support::within(
            Duration::from_secs(20),
            "the pool dropped inside its own task",
            move || {
                let pool = Arc::new(AsyncMultiPool::with_nodes(nodes).unwrap());
                let inside = Arc::clone(&pool);
                let task = pool.apply(
                    move |x: u32| async move {
                        tokio::task::yield_now().await;
                        drop(inside); // The last handle: the pool stops here.
                        x + 1
                    },
                    41,
                );
                drop(pool);
                current_thread().block_on(task)
            },
        );
        assert_eq!(answer.unwrap(), 42, "nodes = {nodes}");
    }
}

/// The same when many tasks hold the last handles and one of them drops the last.
#[test]
fn dropping_the_last_arc_from_one_of_many_tasks_never_deadlocks() {
    support::within(
        Duration::from_secs(20),
        "the pool dropped by one of many tasks",
        || {
            let pool = Arc::new(AsyncMultiPool::with_nodes(2).unwrap());
            let inside = Arc::clone(&pool);
            let calls = pool.map(
                move |x: u32| {
                    let handle = Arc::clone(&inside);
                    async move {
                        tokio::task::yield_now().await;
                        drop(handle);
                        x
                    }
                },
                0..200,
            );
            drop(pool);
            // Every item answers: a value, or `Cancelled` once the pool has stopped.
            let _ = current_thread().block_on(calls);
        },
    );
}

#[apmap]
async fn inner_double(x: u64) -> u64 {
    tokio::task::yield_now().await;
    x * 2
}

/// An `#[apmap]` function that calls another with the same options: the same pool.
#[apmap]
async fn outer_sum(x: u64) -> u64 {
    inner_double(vec![x, x + 1]).await.iter().sum()
}

/// Point 2: nested calls into the same pool finish whatever the number of outer items,
/// far beyond `nodes × concurrency` (1,024 on two CPUs).
#[test]
fn nested_attributes_with_the_same_options_finish() {
    let sums = support::within(
        Duration::from_secs(60),
        "5,000 outer #[apmap] items each awaiting an inner #[apmap]",
        || current_thread().block_on(outer_sum(0..5_000)),
    );
    assert_eq!(sums.len(), 5_000);
    assert!(sums.iter().enumerate().all(|(x, &s)| s == 4 * x as u64 + 2));
}

#[test]
fn pool_map_awaited_inside_the_same_pool_finishes() {
    let sums = support::within(
        Duration::from_secs(60),
        "5,000 outer items each awaiting pool.map on the same pool",
        || {
            let pool = Arc::new(
                AsyncMultiPool::builder()
                    .nodes(2)
                    .concurrency(4)
                    .build()
                    .unwrap(),
            );
            let inner = Arc::clone(&pool);
            let outer = pool.map(
                move |x: u64| {
                    let pool = Arc::clone(&inner);
                    async move {
                        let doubled = pool.map(|y: u64| async move { y * 2 }, [x, x + 1]);
                        doubled.await.unwrap().iter().sum::<u64>()
                    }
                },
                0..5_000,
            );
            current_thread().block_on(outer).unwrap()
        },
    );
    assert!(sums.iter().enumerate().all(|(x, &s)| s == 4 * x as u64 + 2));
}

/// Point 6: while one task blocks its worker's thread, the other worker runs every other
/// task; none of them waits for the blocked one.
#[test]
fn one_blocked_task_does_not_hold_the_others() {
    let pool = AsyncMultiPool::with_nodes(2).unwrap();
    let (release, blocked) = mpsc::channel::<()>();
    let blocked = Arc::new(std::sync::Mutex::new(blocked));
    let mut results = pool.uimap(
        move |x: u32| {
            let blocked = Arc::clone(&blocked);
            async move {
                if x == 0 {
                    // Blocks this worker's thread until the test lets it go.
                    let _ = blocked
                        .lock()
                        .unwrap()
                        .recv_timeout(Duration::from_secs(30));
                } else {
                    tokio::task::yield_now().await;
                }
                x
            }
        },
        0..40,
    );
    let (results, others) = support::within(
        Duration::from_secs(10),
        "39 quick tasks beside one that blocks its thread",
        move || {
            let others = current_thread().block_on(async {
                let mut others = Vec::new();
                while others.len() < 39 {
                    others.push(results.next().await.unwrap().unwrap());
                }
                others
            });
            (results, others)
        },
    );
    assert!(!others.contains(&0), "{others:?}");
    release.send(()).unwrap();
    let last = current_thread().block_on(async move {
        let mut results = results;
        results.next().await
    });
    assert_eq!(last.unwrap().unwrap(), 0);
}

/// Point 4 (thread mode): a task that blocks its thread past the timeout fails with
/// `TimedOut` at its deadline, not when its thread comes back.
#[test]
fn a_task_blocking_its_thread_times_out_at_its_deadline() {
    let after = Duration::from_millis(200);
    let pool = AsyncMultiPool::builder()
        .nodes(2)
        .timeout(after)
        .build()
        .unwrap();
    let (release, blocked) = mpsc::channel::<()>();
    let task = pool.apply(
        move |()| async move {
            let _ = blocked.recv_timeout(Duration::from_secs(30));
            "came back"
        },
        (),
    );
    let started = Instant::now();
    let err = support::within(
        Duration::from_secs(10),
        "a task blocking its thread under a timeout",
        move || current_thread().block_on(task),
    )
    .unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(err.kind(), ErrorKind::TimedOut { after: a } if *a == after),
        "{err}"
    );
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    // The other worker still serves the pool while the first is blocked.
    let runtime = current_thread();
    let more = support::within(Duration::from_secs(10), "work beside a blocked worker", {
        let again = pool.map(|x: u8| async move { x + 1 }, 0..10);
        move || runtime.block_on(again)
    });
    assert_eq!(more.unwrap(), (1..=10).collect::<Vec<u8>>());
    release.send(()).unwrap();
}
