//! Soak (issue 14, scale): sixteen threads share one pool of each kind — `ThreadPool`,
//! `ProcessPool`, `AsyncMultiPool` and its process mode — all four side by side, for
//! `TWAT_MP_SOAK_SECS` seconds (60 unless set). Each thread goes round the pool's methods
//! (`map`, `try_map`, `imap`, `uimap`, `amap`, `apply`, `apipe`), with panics, errors and
//! (processes) crashes mixed in, nested calls (a thread pool's item waiting on the same
//! pool, an async task awaiting its own pool) and overlapping ones (a process pool's `amap`
//! running while the same thread drains an `imap`). Every result is checked exactly, every
//! failure by its index and kind, and every blocking wait runs under the watchdog
//! `support::within`: a deadlock fails the test instead of hanging it.
//!
//! Each thread finishes the round it is in when the time is up, so even
//! `TWAT_MP_SOAK_SECS=0` goes once round every method of every pool.
#![cfg(target_os = "linux")]

use crate::support;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::within;
use twat_mp::{ErrorKind, ProcessPool, ThreadPool, WorkerError};

/// How many threads share each pool.
const THREADS: u64 = 16;
/// How long one call may take before it counts as hung: generous, since 64 threads
/// share the machine's cores; a call of this test takes milliseconds when it is alone.
const LIMIT: Duration = Duration::from_secs(120);

/// How long the threads go round: `TWAT_MP_SOAK_SECS`, else a minute.
fn soak_time() -> Duration {
    let secs = match std::env::var("TWAT_MP_SOAK_SECS") {
        Ok(secs) => secs
            .trim()
            .parse()
            .expect("TWAT_MP_SOAK_SECS is a whole number of seconds"),
        Err(_) => 60,
    };
    Duration::from_secs(secs)
}

/// One thread's round: which items its calls take.
#[derive(Clone, Copy, Debug)]
struct Round {
    thread: u64,
    round: u64,
}

impl Round {
    /// 20 to 119 items, different for each thread and round.
    fn items(self) -> Range<u64> {
        let len = 20 + (self.thread * 7 + self.round * 13) % 100;
        let start = (self.thread << 40) + (self.round << 12);
        start..start + len
    }

    /// Rounds that crash a worker process: one in four (a new worker costs a start-up),
    /// from the first round on for a quarter of the threads.
    fn crashes(self) -> bool {
        (self.thread + self.round) % 4 == 3
    }

    fn what(self, call: &str) -> String {
        format!("{call} (thread {}, round {})", self.thread, self.round)
    }
}

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// The items that fail in the calls that fail: about one in 61, none in some rounds.
fn is_marked(x: u64) -> bool {
    x % 61 == 0
}

fn panics_on_marked(x: u64) -> u64 {
    if is_marked(x) {
        panic!("item {x} is marked");
    }
    square(x)
}

fn fails_on_marked(x: u64) -> Result<u64, String> {
    if is_marked(x) {
        Err(format!("item {x} is marked"))
    } else {
        Ok(square(x))
    }
}

fn aborts_on_marked(x: u64) -> u64 {
    if is_marked(x) {
        std::process::abort();
    }
    square(x)
}

/// How a marked item fails.
#[derive(Clone, Copy, Debug)]
enum Fails {
    Panicked,
    Failed,
    Crashed,
}

impl Fails {
    fn check(self, what: &str, err: &WorkerError) {
        let right = match self {
            Fails::Panicked => matches!(err.kind(), ErrorKind::Panicked { .. }),
            Fails::Failed => matches!(err.kind(), ErrorKind::Failed(_)),
            Fails::Crashed => matches!(err.kind(), ErrorKind::Crashed { .. }),
        };
        assert!(right, "{what}: {err} is not {self:?}");
    }
}

/// An eager map's outcome: every square in order, or (when `fails` and an item is
/// marked) the lowest marked item's failure of that kind.
fn check_map(
    what: &str,
    items: Range<u64>,
    fails: Option<Fails>,
    outcome: Result<Vec<u64>, WorkerError>,
) {
    let first_marked = items.clone().position(is_marked);
    match (fails.and(first_marked), outcome) {
        (None, Ok(values)) => {
            assert!(
                values.iter().copied().eq(items.map(square)),
                "{what}: wrong results"
            );
        }
        (Some(index), Err(err)) => {
            assert_eq!(err.index(), index, "{what}: {err}");
            fails.unwrap().check(what, &err);
        }
        (expected, outcome) => {
            panic!("{what}: expected a failure at {expected:?}, got {outcome:?}")
        }
    }
}

/// A lazy map's outcomes in input order: each marked item fails with its kind, every
/// other is its square.
fn check_each(
    what: &str,
    items: Range<u64>,
    fails: Fails,
    outcomes: impl IntoIterator<Item = Result<u64, WorkerError>>,
) {
    let mut count = 0;
    for ((index, x), outcome) in items.clone().enumerate().zip(outcomes) {
        match outcome {
            Ok(value) => {
                assert!(!is_marked(x), "{what}: marked item {index} succeeded");
                assert_eq!(value, square(x), "{what}: item {index}");
            }
            Err(err) => {
                assert!(is_marked(x), "{what}: item {index} failed: {err}");
                assert_eq!(err.index(), index, "{what}: {err}");
                fails.check(what, &err);
            }
        }
        count += 1;
    }
    assert_eq!(count, items.count(), "{what}: every item has its outcome");
}

/// A completion-order map's results: every square exactly once.
fn check_unordered(
    what: &str,
    items: Range<u64>,
    results: impl IntoIterator<Item = Result<u64, WorkerError>>,
) {
    let mut got: Vec<u64> = results
        .into_iter()
        .map(|result| result.unwrap_or_else(|err| panic!("{what}: {err}")))
        .collect();
    let mut expected: Vec<u64> = items.map(square).collect();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected, "{what}: not every item exactly once");
}

/// The longest any call of the soak took so far, in milliseconds (reported, not judged).
static SLOWEST_MS: AtomicU64 = AtomicU64::new(0);

/// Runs `work` on `pool` under the watchdog.
fn on<P: Send + Sync + 'static>(pool: &Arc<P>, what: &str, work: impl FnOnce(&P) + Send + 'static) {
    let pool = Arc::clone(pool);
    let start = Instant::now();
    within(LIMIT, what, move || work(&pool));
    let millis = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    SLOWEST_MS.fetch_max(millis, Ordering::Relaxed);
}

fn thread_pool_round(pool: &Arc<ThreadPool>, round: Round) {
    let items = round.items();
    let what = round.what("ThreadPool::map");
    on(pool, &what.clone(), move |pool| {
        check_map(&what, items.clone(), None, pool.map(square, items));
    });
    let (items, what) = (round.items(), round.what("ThreadPool::map, panics"));
    on(pool, &what.clone(), move |pool| {
        let outcome = pool.map(panics_on_marked, items.clone());
        check_map(&what, items, Some(Fails::Panicked), outcome);
    });
    let (items, what) = (round.items(), round.what("ThreadPool::try_map, errors"));
    on(pool, &what.clone(), move |pool| {
        let outcome = pool.try_map(fails_on_marked, items.clone());
        check_map(&what, items, Some(Fails::Failed), outcome);
    });
    let (items, what) = (round.items(), round.what("ThreadPool::imap, panics"));
    on(pool, &what.clone(), move |pool| {
        let outcomes = pool.imap(panics_on_marked, items.clone());
        check_each(&what, items, Fails::Panicked, outcomes);
    });
    let (items, what) = (round.items(), round.what("ThreadPool::uimap"));
    on(pool, &what.clone(), move |pool| {
        check_unordered(&what, items.clone(), pool.uimap(square, items));
    });
    let (items, what) = (round.items(), round.what("ThreadPool::amap"));
    on(pool, &what.clone(), move |pool| {
        check_map(&what, items.clone(), None, pool.amap(square, items).get());
    });
    let (items, what) = (round.items(), round.what("ThreadPool::apply, apipe"));
    on(pool, &what.clone(), move |pool| {
        let x = items.start;
        let piped = pool.apipe(panics_on_marked, x);
        assert_eq!(pool.apply(square, x + 1).unwrap(), square(x + 1), "{what}");
        match piped.get() {
            Ok(value) => assert!(!is_marked(x) && value == square(x), "{what}"),
            Err(err) => Fails::Panicked.check(&what, &err),
        }
    });
    // Nested: each item waits on an `amap` of the same pool.
    let (items, what) = (round.items(), round.what("ThreadPool::map, nested amap"));
    let inner = Arc::clone(pool);
    on(pool, &what.clone(), move |pool| {
        let sums = pool.map(
            move |x: u64| {
                let inner_items = x..x + x % 8;
                let squares = inner.amap(square, inner_items.clone()).get().unwrap();
                assert!(squares.iter().copied().eq(inner_items.map(square)));
                squares.iter().fold(0_u64, |sum, &s| sum.wrapping_add(s))
            },
            items.clone(),
        );
        let expected: Vec<u64> = items
            .map(|x| (x..x + x % 8).map(square).fold(0, u64::wrapping_add))
            .collect();
        assert_eq!(sums.unwrap(), expected, "{what}");
    });
}

fn process_pool_round(pool: &Arc<ProcessPool>, round: Round) {
    let (items, what) = (round.items(), round.what("ProcessPool::map"));
    on(pool, &what.clone(), move |pool| {
        check_map(&what, items.clone(), None, pool.map(square, items));
    });
    let (items, what) = (round.items(), round.what("ProcessPool::map, panics"));
    on(pool, &what.clone(), move |pool| {
        let outcome = pool.map(panics_on_marked, items.clone());
        check_map(&what, items, Some(Fails::Panicked), outcome);
    });
    let (items, what) = (round.items(), round.what("ProcessPool::try_map, errors"));
    on(pool, &what.clone(), move |pool| {
        let outcome = pool.try_map(fails_on_marked, items.clone());
        check_map(&what, items, Some(Fails::Failed), outcome);
    });
    // Overlapping: an `amap` runs while the same thread drains an `imap` (one in four
    // rounds crashing a worker on each marked item), then the `amap` is collected.
    let (items, what) = (round.items(), round.what("ProcessPool::amap over imap"));
    on(pool, &what.clone(), move |pool| {
        let background = pool.amap(square, items.clone());
        if round.crashes() {
            let outcomes = pool.imap(aborts_on_marked, items.clone());
            check_each(&what, items.clone(), Fails::Crashed, outcomes);
        } else {
            let outcomes = pool.imap(panics_on_marked, items.clone());
            check_each(&what, items.clone(), Fails::Panicked, outcomes);
        }
        check_map(&what, items, None, background.get());
    });
    let (items, what) = (round.items(), round.what("ProcessPool::uimap"));
    on(pool, &what.clone(), move |pool| {
        check_unordered(&what, items.clone(), pool.uimap(square, items));
    });
    let (items, what) = (round.items(), round.what("ProcessPool::apply, apipe"));
    on(pool, &what.clone(), move |pool| {
        let x = items.start;
        let piped = pool.apipe(panics_on_marked, x);
        assert_eq!(pool.apply(square, x + 1).unwrap(), square(x + 1), "{what}");
        match piped.get() {
            Ok(value) => assert!(!is_marked(x) && value == square(x), "{what}"),
            Err(err) => Fails::Panicked.check(&what, &err),
        }
    });
}

/// Runs the pool's rounds on `THREADS` threads until `deadline` (each finishing the
/// round it is in) and returns how many rounds they went in all.
fn soak<P: Send + Sync + 'static>(
    pool: &Arc<P>,
    deadline: Instant,
    round_of: fn(&Arc<P>, Round),
) -> Vec<std::thread::JoinHandle<u64>> {
    (0..THREADS)
        .map(|thread| {
            let pool = Arc::clone(pool);
            std::thread::spawn(move || {
                let mut round = 0;
                loop {
                    round_of(&pool, Round { thread, round });
                    round += 1;
                    if Instant::now() >= deadline {
                        return round;
                    }
                }
            })
        })
        .collect()
}

#[cfg(feature = "aio")]
mod asynchronous {
    use super::*;
    use twat_mp::{AsyncMultiPool, AsyncProcessPool};

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        pollster::block_on(future)
    }

    pub fn async_pool_round(pool: &Arc<AsyncMultiPool>, round: Round) {
        let (items, what) = (round.items(), round.what("AsyncMultiPool::map"));
        on(pool, &what.clone(), move |pool| {
            let outcome = block_on(pool.map(|x: u64| async move { square(x) }, items.clone()));
            check_map(&what, items, None, outcome);
        });
        let (items, what) = (round.items(), round.what("AsyncMultiPool::map, panics"));
        on(pool, &what.clone(), move |pool| {
            let outcome =
                block_on(pool.map(|x: u64| async move { panics_on_marked(x) }, items.clone()));
            check_map(&what, items, Some(Fails::Panicked), outcome);
        });
        let (items, what) = (round.items(), round.what("AsyncMultiPool::try_map, errors"));
        on(pool, &what.clone(), move |pool| {
            let outcome =
                block_on(pool.try_map(|x: u64| async move { fails_on_marked(x) }, items.clone()));
            check_map(&what, items, Some(Fails::Failed), outcome);
        });
        let (items, what) = (round.items(), round.what("AsyncMultiPool::imap, panics"));
        on(pool, &what.clone(), move |pool| {
            let mut stream = pool.imap(|x: u64| async move { panics_on_marked(x) }, items.clone());
            let outcomes = std::iter::from_fn(|| block_on(stream.next()));
            check_each(&what, items, Fails::Panicked, outcomes);
        });
        let (items, what) = (round.items(), round.what("AsyncMultiPool::uimap"));
        on(pool, &what.clone(), move |pool| {
            let mut stream = pool.uimap(|x: u64| async move { square(x) }, items.clone());
            check_unordered(&what, items, std::iter::from_fn(|| block_on(stream.next())));
        });
        let (items, what) = (round.items(), round.what("AsyncMultiPool::apply"));
        on(pool, &what.clone(), move |pool| {
            let x = items.start;
            match block_on(pool.apply(|x: u64| async move { panics_on_marked(x) }, x)) {
                Ok(value) => assert!(!is_marked(x) && value == square(x), "{what}"),
                Err(err) => Fails::Panicked.check(&what, &err),
            }
        });
        // Nested: each task awaits a `map` of the same pool.
        let (items, what) = (round.items(), round.what("AsyncMultiPool::map, nested map"));
        let inner = Arc::clone(pool);
        on(pool, &what.clone(), move |pool| {
            let sums = block_on(pool.map(
                move |x: u64| {
                    let inner = Arc::clone(&inner);
                    async move {
                        let squares = inner
                            .map(|y: u64| async move { square(y) }, x..x + x % 8)
                            .await
                            .unwrap();
                        squares.iter().fold(0_u64, |sum, &s| sum.wrapping_add(s))
                    }
                },
                items.clone(),
            ));
            let expected: Vec<u64> = items
                .map(|x| (x..x + x % 8).map(square).fold(0, u64::wrapping_add))
                .collect();
            assert_eq!(sums.unwrap(), expected, "{what}");
        });
    }

    async fn square_task(x: u64) -> u64 {
        square(x)
    }

    async fn panics_on_marked_task(x: u64) -> u64 {
        panics_on_marked(x)
    }

    async fn fails_on_marked_task(x: u64) -> Result<u64, String> {
        fails_on_marked(x)
    }

    async fn aborts_on_marked_task(x: u64) -> u64 {
        aborts_on_marked(x)
    }

    pub fn async_process_pool_round(pool: &Arc<AsyncProcessPool>, round: Round) {
        let (items, what) = (round.items(), round.what("AsyncProcessPool::map"));
        on(pool, &what.clone(), move |pool| {
            check_map(
                &what,
                items.clone(),
                None,
                block_on(pool.map(square_task, items)),
            );
        });
        let (items, what) = (round.items(), round.what("AsyncProcessPool::map, panics"));
        on(pool, &what.clone(), move |pool| {
            let outcome = block_on(pool.map(panics_on_marked_task, items.clone()));
            check_map(&what, items, Some(Fails::Panicked), outcome);
        });
        let (items, what) = (
            round.items(),
            round.what("AsyncProcessPool::try_map, errors"),
        );
        on(pool, &what.clone(), move |pool| {
            let outcome = block_on(pool.try_map(fails_on_marked_task, items.clone()));
            check_map(&what, items, Some(Fails::Failed), outcome);
        });
        let (items, what) = (
            round.items(),
            round.what("AsyncProcessPool::imap, failures"),
        );
        on(pool, &what.clone(), move |pool| {
            if round.crashes() {
                let mut stream = pool.imap(aborts_on_marked_task, items.clone());
                let outcomes = std::iter::from_fn(|| block_on(stream.next()));
                check_each(&what, items, Fails::Crashed, outcomes);
            } else {
                let mut stream = pool.imap(panics_on_marked_task, items.clone());
                let outcomes = std::iter::from_fn(|| block_on(stream.next()));
                check_each(&what, items, Fails::Panicked, outcomes);
            }
        });
        // Overlapping: a `map` and a `uimap` of the same pool awaited together.
        let (items, what) = (
            round.items(),
            round.what("AsyncProcessPool::map with uimap"),
        );
        on(pool, &what.clone(), move |pool| {
            let mut stream = pool.uimap(square_task, items.clone());
            let mut unordered = Vec::new();
            let mapped = block_on(async {
                let map = pool.map(square_task, items.clone());
                let drain = async {
                    while let Some(result) = stream.next().await {
                        unordered.push(result);
                    }
                };
                futures_util::future::join(map, drain).await.0
            });
            check_map(&what, items.clone(), None, mapped);
            check_unordered(&what, items, unordered);
        });
        let (items, what) = (round.items(), round.what("AsyncProcessPool::apply"));
        on(pool, &what.clone(), move |pool| {
            let x = items.start;
            match block_on(pool.apply(panics_on_marked_task, x)) {
                Ok(value) => assert!(!is_marked(x) && value == square(x), "{what}"),
                Err(err) => Fails::Panicked.check(&what, &err),
            }
        });
    }
}

#[test]
fn sixteen_threads_share_one_pool_of_each_kind_without_a_deadlock() {
    let time = soak_time();
    let deadline = Instant::now() + time;
    let thread_pool = Arc::new(ThreadPool::with_nodes(4).unwrap());
    let process_pool = Arc::new(ProcessPool::with_nodes(2).unwrap());
    // Without `aio`, only the two pools above.
    #[cfg_attr(not(feature = "aio"), allow(unused_mut))]
    let mut running = vec![
        (
            "ThreadPool",
            soak(&thread_pool, deadline, thread_pool_round),
        ),
        (
            "ProcessPool",
            soak(&process_pool, deadline, process_pool_round),
        ),
    ];
    #[cfg(feature = "aio")]
    let async_pools = {
        use asynchronous::*;
        let async_pool = Arc::new(
            twat_mp::AsyncMultiPool::builder()
                .nodes(2)
                .concurrency(8)
                .build()
                .unwrap(),
        );
        let async_process_pool = Arc::new(
            twat_mp::AsyncMultiPool::builder()
                .nodes(2)
                .processes()
                .build()
                .unwrap(),
        );
        running.push((
            "AsyncMultiPool",
            soak(&async_pool, deadline, async_pool_round),
        ));
        running.push((
            "AsyncProcessPool",
            soak(&async_process_pool, deadline, async_process_pool_round),
        ));
        (async_pool, async_process_pool)
    };
    let mut report = Vec::new();
    for (pool, threads) in running {
        let rounds: u64 = threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|_| panic!("a thread of {pool} failed"))
            })
            .sum();
        report.push(format!("{pool}: {rounds} rounds"));
    }
    println!(
        "{THREADS} threads per pool for {} s: {}; the slowest call took {} ms",
        time.as_secs(),
        report.join(", "),
        SLOWEST_MS.load(Ordering::Relaxed)
    );
    // Dropping a pool closes and joins its workers: it must not hang either.
    within(LIMIT, "dropping the pools", move || {
        drop((thread_pool, process_pool));
        #[cfg(feature = "aio")]
        drop(async_pools);
    });
}
