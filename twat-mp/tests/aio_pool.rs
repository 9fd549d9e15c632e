//! `AsyncMultiPool` through its public API, each behaviour on both tokio runtime flavours
//! (the caller's runtime; the pool always runs its own workers).
#![cfg(feature = "aio")]

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::sync::{Barrier, watch};
use twat_mp::{AsyncMultiPool, BuildError, ErrorKind, WorkerError};

on_both_flavours!(
    map_keeps_input_order,
    map_of_nothing_returns_at_once,
    try_map_reports_the_functions_own_error,
    starmap_spreads_tuples,
    imap_is_ordered_and_lazy_over_an_endless_input,
    uimap_yields_in_completion_order,
    apply_runs_one_item,
    initializer_runs_once_in_each_worker,
    timeout_fails_only_that_task,
    a_panic_costs_only_its_task,
    dropping_the_future_cancels_its_tasks,
    dropping_a_stream_cancels_its_tasks,
    does_not_block_the_callers_runtime,
    concurrency_bounds_the_tasks_in_flight,
    dropping_the_pool_cancels_pending_calls,
    lowest_failure_is_reported,
);

fn small_pool() -> AsyncMultiPool {
    AsyncMultiPool::builder()
        .nodes(2)
        .concurrency(4)
        .build()
        .unwrap()
}

/// Waits, without a deadline of its own, until `counter` reaches `target`; the test's
/// outer timeout turns a hang into a failure.
async fn until(counter: &AtomicUsize, target: usize) {
    tokio::time::timeout(Duration::from_secs(60), async {
        while counter.load(Ordering::SeqCst) < target {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the counter never reached its target");
}

async fn map_keeps_input_order() {
    let pool = small_pool();
    // Later items finish first: the results still come back in input order.
    let doubled = pool
        .map(
            |x: u64| async move {
                tokio::time::sleep(Duration::from_millis((40 - x) % 5)).await;
                x * 2
            },
            0..40,
        )
        .await
        .unwrap();
    assert_eq!(doubled, (0..40).map(|x| x * 2).collect::<Vec<_>>());
}

async fn map_of_nothing_returns_at_once() {
    let pool = small_pool();
    // Ready on the very first poll: nothing is sent to the workers.
    let empty = pool
        .map(|x: u32| async move { x }, Vec::new())
        .now_or_never()
        .expect("an empty map is ready at once");
    assert_eq!(empty.unwrap(), Vec::<u32>::new());
    let empty = pool
        .imap(|x: u32| async move { x }, Vec::new())
        .next()
        .now_or_never()
        .expect("an empty imap ends at once");
    assert!(empty.is_none());
}

async fn try_map_reports_the_functions_own_error() {
    let pool = small_pool();
    let parse = |s: &'static str| async move { s.parse::<i32>() };
    assert_eq!(pool.try_map(parse, ["1", "-2"]).await.unwrap(), [1, -2]);
    let err = pool.try_map(parse, ["1", "two", "3"]).await.unwrap_err();
    assert_eq!(err.index(), 1);
    assert!(err.worker().is_some());
    assert!(matches!(err.kind(), ErrorKind::Failed(_)));
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.downcast_ref::<std::num::ParseIntError>().is_some());
    assert_eq!(
        // The message names the item, its source says why: a chain prints each once.
        format!("{err}: {}", std::error::Error::source(&err).unwrap()),
        format!(
            "item 1 on worker {} failed: invalid digit found in string",
            err.worker().unwrap()
        )
    );
}

async fn add_later(a: u32, b: u32) -> u32 {
    tokio::task::yield_now().await;
    a + b
}

async fn starmap_spreads_tuples() {
    let pool = small_pool();
    let sums = pool
        .starmap(add_later, [(1, 2), (3, 4), (5, 6)])
        .await
        .unwrap();
    assert_eq!(sums, [3, 7, 11]);
    let joined = pool
        .starmap(
            |word: &'static str, times: usize| async move { word.repeat(times) },
            [("ab", 2), ("c", 3)],
        )
        .await
        .unwrap();
    assert_eq!(joined, ["abab", "ccc"]);
}

async fn imap_is_ordered_and_lazy_over_an_endless_input() {
    let pool = small_pool(); // 2 × 4 = 8 tasks in flight at most
    let window = pool.nodes() * pool.concurrency();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let endless = (0_u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let mut squares = pool.imap(
        |x: u64| async move {
            // Out-of-order completion, in-order results.
            tokio::time::sleep(Duration::from_millis(7 - x % 7)).await;
            x * x
        },
        endless,
    );
    let mut first = Vec::new();
    for _ in 0..30 {
        first.push(squares.next().await.unwrap().unwrap());
    }
    assert_eq!(first, (0..30).map(|x| x * x).collect::<Vec<_>>());
    let after = pulled.load(Ordering::SeqCst);
    assert!(after <= 30 + window, "pulled {after} items for 30 results");
    // Nothing more is pulled while nobody consumes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(pulled.load(Ordering::SeqCst), after);
}

async fn uimap_yields_in_completion_order() {
    let pool = small_pool();
    // Item 0 can finish only once the consumer has seen another result, so the first
    // result must be item 1's.
    let (seen, seen_rx) = watch::channel(false);
    let mut results = pool.uimap(
        move |x: u32| {
            let mut seen_rx = seen_rx.clone();
            async move {
                if x == 0 {
                    seen_rx.wait_for(|seen| *seen).await.unwrap();
                }
                x
            }
        },
        [0, 1],
    );
    assert_eq!(results.next().await.unwrap().unwrap(), 1);
    seen.send_replace(true);
    assert_eq!(results.next().await.unwrap().unwrap(), 0);
    assert!(results.next().await.is_none());
}

async fn apply_runs_one_item() {
    let pool = small_pool();
    let text = String::from("one two three");
    let words = pool
        .apply(
            |t: String| async move { t.split_whitespace().count() },
            text,
        )
        .await
        .unwrap();
    assert_eq!(words, 3);
    let err = pool
        .apply(|_: ()| async { panic!("apply went wrong") }, ())
        .await
        .unwrap_err();
    assert_eq!(err.index(), 0);
    assert!(matches!(err.kind(), ErrorKind::Panicked { message } if message == "apply went wrong"));
}

thread_local! {
    static WORKER_TAG: Cell<usize> = const { Cell::new(usize::MAX) };
}

async fn initializer_runs_once_in_each_worker() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let pool = AsyncMultiPool::builder()
        .nodes(3)
        .concurrency(2)
        .initializer(move || {
            let tag = counter.fetch_add(1, Ordering::SeqCst);
            WORKER_TAG.with(|t| t.set(tag));
        })
        .build()
        .unwrap();
    // `build` returns once every worker has run it.
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    let tags = pool
        .map(
            |_: u32| async {
                tokio::task::yield_now().await;
                WORKER_TAG.with(Cell::get)
            },
            0..60,
        )
        .await
        .unwrap();
    // Every task saw its worker's initialized state, and no worker ran it twice.
    assert!(tags.iter().all(|&tag| tag < 3), "{tags:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

async fn timeout_fails_only_that_task() {
    let pool = AsyncMultiPool::builder()
        .nodes(2)
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut results = pool.imap(
        |x: u32| async move {
            if x == 2 {
                tokio::time::sleep(Duration::from_secs(3_600)).await;
            }
            x
        },
        0..5,
    );
    let mut outcomes = Vec::new();
    while let Some(outcome) = results.next().await {
        outcomes.push(outcome);
    }
    assert_eq!(outcomes.len(), 5);
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(x) => assert_eq!(x as usize, index),
            Err(err) => {
                assert_eq!(err.index(), 2);
                assert!(
                    matches!(err.kind(), ErrorKind::TimedOut { after } if *after == Duration::from_millis(100))
                );
            }
        }
    }
    // Still usable.
    assert_eq!(
        pool.map(|x: u8| async move { x + 1 }, [1]).await.unwrap(),
        [2]
    );
}

async fn a_panic_costs_only_its_task() {
    let pool = small_pool();
    let outcomes: Vec<Result<u32, WorkerError>> = pool
        .imap(
            |x: u32| async move {
                tokio::task::yield_now().await;
                assert!(x != 3, "item {x} is cursed");
                x
            },
            0..8,
        )
        .collect()
        .await;
    for (index, outcome) in outcomes.iter().enumerate() {
        if index == 3 {
            let err = outcome.as_ref().unwrap_err();
            assert_eq!(err.index(), 3);
            assert!(
                matches!(err.kind(), ErrorKind::Panicked { message } if message == "item 3 is cursed")
            );
            assert!(err.traceback().is_some());
        } else {
            assert_eq!(*outcome.as_ref().unwrap() as usize, index);
        }
    }
    // The pool goes on: every worker still answers.
    let again = pool
        .map(|x: u32| async move { x * 10 }, 0..20)
        .await
        .unwrap();
    assert_eq!(again, (0..20).map(|x| x * 10).collect::<Vec<_>>());
    // A panic before the future even exists (in the function itself) too.
    let err = pool
        .map(
            |x: u32| -> std::future::Ready<u32> {
                assert!(x != 1, "sync panic");
                std::future::ready(x)
            },
            0..3,
        )
        .await
        .unwrap_err();
    assert_eq!(err.index(), 1);
}

/// Counts its drops: a task dropped before it finished still drops this.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A task that announces its start, then would set `finished` after a long wait.
fn long_task(
    started: &Arc<AtomicUsize>,
    dropped: &Arc<AtomicUsize>,
    finished: &Arc<AtomicBool>,
) -> impl Fn(u32) -> std::pin::Pin<Box<dyn Future<Output = u32>>> + Send + Sync + 'static {
    let (started, dropped, finished) = (
        Arc::clone(started),
        Arc::clone(dropped),
        Arc::clone(finished),
    );
    move |x| {
        let (started, dropped, finished) = (
            Arc::clone(&started),
            Arc::clone(&dropped),
            Arc::clone(&finished),
        );
        Box::pin(async move {
            let _guard = DropCounter(dropped);
            started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3_600)).await;
            finished.store(true, Ordering::SeqCst);
            x
        })
    }
}

async fn dropping_the_future_cancels_its_tasks() {
    let pool = small_pool();
    let (started, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let finished = Arc::new(AtomicBool::new(false));
    let call = pool.map(long_task(&started, &dropped, &finished), 0..20);
    let running = tokio::spawn(call);
    // All 8 slots are busy; 12 items wait in the queue.
    until(&started, 8).await;
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    // The running tasks are dropped; the queued ones never start.
    until(&dropped, 8).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(started.load(Ordering::SeqCst), 8);
    assert!(!finished.load(Ordering::SeqCst));
    // The freed slots serve the next call.
    assert_eq!(
        pool.map(|x: u32| async move { x }, 0..10)
            .await
            .unwrap()
            .len(),
        10
    );
}

async fn dropping_a_stream_cancels_its_tasks() {
    let pool = small_pool();
    let (started, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let finished = Arc::new(AtomicBool::new(false));
    let mut stream = pool.uimap(long_task(&started, &dropped, &finished), 0..);
    assert!(stream.next().now_or_never().is_none());
    until(&started, 8).await;
    drop(stream);
    until(&dropped, 8).await;
    assert!(!finished.load(Ordering::SeqCst));
}

async fn does_not_block_the_callers_runtime() {
    let pool = small_pool();
    // The pool's tasks wait for a signal that only another task on the caller's runtime
    // sends: if `map` blocked that runtime (on a current-thread runtime, its only thread),
    // the signal would never come.
    let (go, go_rx) = watch::channel(false);
    let signal = tokio::spawn(async move {
        tokio::task::yield_now().await;
        go.send_replace(true);
    });
    let results = tokio::time::timeout(
        Duration::from_secs(60),
        pool.map(
            move |x: u32| {
                let mut go_rx = go_rx.clone();
                async move {
                    go_rx.wait_for(|go| *go).await.unwrap();
                    x
                }
            },
            0..16,
        ),
    )
    .await
    .expect("map blocked the caller's runtime")
    .unwrap();
    assert_eq!(results, (0..16).collect::<Vec<_>>());
    signal.await.unwrap();
    // And from an executor that is not tokio at all.
    let elsewhere = std::thread::spawn(move || {
        pollster::block_on(pool.map(|x: u32| async move { x + 1 }, [1, 2])).unwrap()
    });
    assert_eq!(elsewhere.join().unwrap(), [2, 3]);
}

async fn concurrency_bounds_the_tasks_in_flight() {
    let pool = small_pool(); // 2 workers × 4 = 8
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    // Eight tasks must all be in flight together to pass the barrier: fewer slots would
    // hang (and fail on the timeout); the peak shows there were never more.
    let barrier = Arc::new(Barrier::new(8));
    let (in_flight, peak) = (Arc::clone(&now), Arc::clone(&most));
    let run = pool.map(
        move |x: u32| {
            let (now, most, barrier) = (
                Arc::clone(&in_flight),
                Arc::clone(&peak),
                Arc::clone(&barrier),
            );
            async move {
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(current, Ordering::SeqCst);
                if x < 8 {
                    barrier.wait().await;
                }
                tokio::task::yield_now().await;
                now.fetch_sub(1, Ordering::SeqCst);
                x
            }
        },
        0..40,
    );
    let results = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the eight slots were never all in use")
        .unwrap();
    assert_eq!(results.len(), 40);
    assert_eq!(most.load(Ordering::SeqCst), 8);
}

async fn dropping_the_pool_cancels_pending_calls() {
    let pool = small_pool();
    let (started, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let finished = Arc::new(AtomicBool::new(false));
    // The returned future is 'static: it can outlive the pool, and then ends cancelled.
    let call = tokio::spawn(pool.map(long_task(&started, &dropped, &finished), 0..20));
    until(&started, 8).await;
    // Dropping joins the worker threads, which drop their tasks.
    drop(pool);
    assert_eq!(dropped.load(Ordering::SeqCst), 8);
    let err = call.await.unwrap().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Cancelled), "{err}");
    assert!(!finished.load(Ordering::SeqCst));
}

async fn lowest_failure_is_reported() {
    let pool = small_pool();
    for _ in 0..5 {
        let err = pool
            .map(
                |x: u32| async move {
                    tokio::time::sleep(Duration::from_millis(u64::from(30 - x))).await;
                    assert!(x % 10 != 7, "bad {x}");
                    x
                },
                0..30,
            )
            .await
            .unwrap_err();
        assert_eq!(err.index(), 7);
        assert_eq!(
            err.to_string(),
            format!("item 7 on worker {} panicked: bad 7", err.worker().unwrap())
        );
    }
}

#[test]
fn settings_are_checked() {
    assert!(matches!(
        AsyncMultiPool::with_nodes(0),
        Err(BuildError::NoNodes)
    ));
    assert!(matches!(
        AsyncMultiPool::builder().concurrency(0).build(),
        Err(BuildError::Zero("concurrency"))
    ));
    assert!(matches!(
        AsyncMultiPool::builder().timeout(Duration::ZERO).build(),
        Err(BuildError::Zero("timeout"))
    ));
    let err = AsyncMultiPool::builder()
        .nodes(2)
        .initializer(|| panic!("no config file"))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::NotReady(_)), "{err:?}");
    assert!(
        err.to_string().contains("panicked: no config file"),
        "{err}"
    );
    let pool = AsyncMultiPool::new().unwrap();
    assert!(pool.nodes() >= 1);
    assert_eq!(pool.concurrency(), twat_mp::DEFAULT_CONCURRENCY);
    assert_eq!(pool.timeout(), None);
}

#[test]
fn pool_is_send_and_sync_and_its_futures_are_send() {
    fn check<T: Send + Sync>(_: &T) {}
    fn check_send<T: Send + 'static>(_: &T) {}
    let pool = AsyncMultiPool::with_nodes(1).unwrap();
    check(&pool);
    check_send(&pool.map(|x: u8| async move { x }, [1]));
    check_send(&pool.imap(|x: u8| async move { x }, [1]));
    // The user's futures need not be Send: they stay on one worker thread.
    let not_send = pool.map(
        |x: u8| async move {
            let rc = std::rc::Rc::new(x);
            tokio::task::yield_now().await;
            *rc
        },
        [4],
    );
    check_send(&not_send);
    assert_eq!(pollster::block_on(not_send).unwrap(), [4]);
}
