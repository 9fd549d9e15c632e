//! ThreadPool through its public API, as a user calls it.

use crate::support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use support::numbers::{collatz_steps, count_primes};
use twat_mp::{BuildError, ErrorKind, ThreadPool, WorkerError};

/// Generous bound for waits that only a broken pool would reach.
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn map_returns_results_in_input_order() {
    let pool = ThreadPool::with_nodes(3).unwrap();
    let steps = pool.map(collatz_steps, 1..=1_000).unwrap();
    let serial: Vec<u32> = (1..=1_000).map(collatz_steps).collect();
    assert_eq!(steps, serial);
}

#[test]
fn map_closures_may_borrow_from_the_caller() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let limits = vec![10_u64, 100, 1_000];
    let offset = 5;
    let counts = pool
        .map(|limit: &u64| count_primes(0, *limit) + offset, &limits)
        .unwrap();
    assert_eq!(counts, [4 + 5, 25 + 5, 168 + 5]);
}

#[test]
fn default_nodes_is_the_usable_cpu_count_and_zero_is_an_error() {
    let pool = ThreadPool::new().unwrap();
    assert_eq!(
        pool.nodes(),
        std::thread::available_parallelism().unwrap().get()
    );
    assert!(matches!(
        ThreadPool::with_nodes(0),
        Err(BuildError::NoNodes)
    ));
    assert!(matches!(
        ThreadPool::builder().nodes(0).build(),
        Err(BuildError::NoNodes)
    ));
}

#[test]
fn empty_input_gives_empty_output() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    assert!(pool.map(|x: u8| x, Vec::new()).unwrap().is_empty());
    assert_eq!(pool.imap(|x: u8| x, Vec::new()).count(), 0);
    assert!(pool.amap(|x: u8| x, Vec::new()).get().unwrap().is_empty());
}

#[test]
fn a_panic_names_the_item_worker_message_and_backtrace() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let err = pool
        .map(
            |x: u32| {
                if x == 7 {
                    panic!("cannot handle {x}");
                }
                x
            },
            0..20,
        )
        .unwrap_err();
    assert_eq!(err.index(), 7);
    assert!(err.worker().is_some_and(|w| w < 2));
    assert!(matches!(err.kind(), ErrorKind::Panicked { message } if message == "cannot handle 7"));
    assert!(err.traceback().is_some_and(|t| !t.is_empty()));
    let shown = err.to_string();
    assert!(shown.starts_with("item 7 on worker "), "{shown}");
    assert!(shown.ends_with(" panicked: cannot handle 7"), "{shown}");
    // The pool is still usable after a failure.
    assert_eq!(pool.map(|x: u32| x + 1, [1, 2]).unwrap(), [2, 3]);
}

#[test]
fn the_lowest_failing_index_is_reported_every_time() {
    let pool = ThreadPool::with_nodes(4).unwrap();
    for _ in 0..25 {
        let err = pool
            .map(
                |x: usize| {
                    assert!(x < 300 || x % 50 != 0, "item {x}");
                    x
                },
                0..2_000,
            )
            .unwrap_err();
        assert_eq!(err.index(), 300);
    }
}

#[derive(Debug)]
struct TooLarge(u64);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is too large", self.0)
    }
}

impl std::error::Error for TooLarge {}

#[test]
fn try_map_reports_the_functions_own_error_as_source() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let check = |x: u64| if x > 5 { Err(TooLarge(x)) } else { Ok(x * 10) };
    assert_eq!(pool.try_map(check, 0..4).unwrap(), [0, 10, 20, 30]);
    let err = pool.try_map(check, 0..10).unwrap_err();
    assert_eq!(err.index(), 6);
    assert!(matches!(err.kind(), ErrorKind::Failed(_)));
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.downcast_ref::<TooLarge>().unwrap().0, 6);
    assert_eq!(
        // The message names the item, its source says why: a chain prints each once.
        format!("{err}: {}", std::error::Error::source(&err).unwrap()),
        format!(
            "item 6 on worker {} failed: 6 is too large",
            err.worker().unwrap()
        )
    );
}

/// An endless input that counts how many items were pulled from it.
fn counted(pulled: &Arc<AtomicUsize>) -> impl Iterator<Item = u64> + 'static {
    let pulled = Arc::clone(pulled);
    (0_u64..).inspect(move |_| {
        pulled.fetch_add(1, Ordering::SeqCst);
    })
}

#[test]
fn imap_over_an_endless_input_pulls_only_a_bounded_window() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut results = pool.imap(|n: u64| n * n, counted(&pulled));
    let first: Vec<u64> = results.by_ref().take(5).map(Result::unwrap).collect();
    assert_eq!(first, [0, 1, 4, 9, 16]);
    let after_five = pulled.load(Ordering::SeqCst);
    // Window: two jobs per thread ahead of the consumer, a job growing up to 1,024 items
    // while its items are trivial, plus the rest of a job being filled; an input that
    // gives its items at once (this one) may be read 128 items further.
    let window = 2 * 2 * 1_024 + 1_023 + 128;
    assert!(
        after_five <= 5 + window,
        "pulled {after_five} items for 5 results"
    );
    let next: Vec<u64> = results.by_ref().take(1_000).map(Result::unwrap).collect();
    assert_eq!(next[999], 1_004 * 1_004);
    let after_more = pulled.load(Ordering::SeqCst);
    assert!(
        after_more <= 1_005 + window,
        "pulled {after_more} items for 1,005 results"
    );
}

#[test]
fn lazy_maps_pull_their_owned_input_on_a_thread_of_its_own() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let words = vec!["parallel".to_owned(), "map".to_owned(), "lazily".to_owned()];
    let caller = std::thread::current().id();
    let (pullers, pulled_on) = mpsc::channel();
    let input = words.clone().into_iter().inspect(move |_| {
        pullers.send(std::thread::current().id()).unwrap();
    });
    let lengths: Vec<usize> = pool
        .imap(|w: String| w.len(), input)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(lengths, [8, 3, 6]);
    let pullers: Vec<_> = pulled_on.iter().collect();
    assert_eq!(pullers.len(), 3);
    assert!(pullers.iter().all(|&puller| puller != caller));
    // A borrowed input is copied first (a compile error says so otherwise).
    let mut lengths: Vec<usize> = pool
        .uimap(|w: String| w.len(), words.to_vec())
        .collect::<Result<_, _>>()
        .unwrap();
    lengths.sort_unstable();
    assert_eq!(lengths, [3, 6, 8]);
}

#[test]
fn imap_keeps_input_order_and_goes_on_after_a_failure() {
    let pool = ThreadPool::builder().nodes(3).chunksize(4).build().unwrap();
    let results: Vec<Result<u64, WorkerError>> = pool
        .imap(
            |n: u64| {
                assert!(n != 13, "unlucky");
                collatz_steps(n + 1) as u64
            },
            0..100,
        )
        .collect();
    assert_eq!(results.len(), 100);
    for (n, result) in results.iter().enumerate() {
        match result {
            Ok(steps) => assert_eq!(*steps, collatz_steps(n as u64 + 1) as u64),
            Err(err) => {
                assert_eq!(n, 13);
                assert_eq!(err.index(), 13);
            }
        }
    }
    assert!(results[13].is_err());
}

#[test]
fn uimap_yields_the_quickest_item_first() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let mut results = pool.uimap(
        move |name: &'static str| {
            if name == "slow" {
                // Held until the test has seen the quick result: input order would hang here.
                gate.lock()
                    .unwrap()
                    .recv_timeout(PATIENCE)
                    .expect("released by the test");
            }
            name
        },
        vec!["slow", "fast"],
    );
    assert_eq!(results.next().unwrap().unwrap(), "fast");
    release.send(()).unwrap();
    assert_eq!(results.next().unwrap().unwrap(), "slow");
    assert!(results.next().is_none());
}

#[test]
fn dropping_an_imap_cancels_the_items_not_started() {
    let pool = ThreadPool::with_nodes(1).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let mut results = pool.imap(
        move |n: u64| {
            counter.fetch_add(1, Ordering::SeqCst);
            n
        },
        0..1_000_000,
    );
    assert_eq!(results.next().unwrap().unwrap(), 0);
    drop(results);
    // Wait for what was queued to drain: a map on the same single thread runs after it.
    pool.map(|x: u8| x, [0]).unwrap();
    assert!(
        ran.load(Ordering::SeqCst) <= 4,
        "ran {}",
        ran.load(Ordering::SeqCst)
    );
}

#[test]
fn amap_returns_before_the_work_is_done() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let mut pending = pool.amap(
        move |x: u64| {
            if x == 0 {
                gate.lock()
                    .unwrap()
                    .recv_timeout(PATIENCE)
                    .expect("released by the test");
            }
            x * 3
        },
        vec![0, 1, 2],
    );
    assert!(!pending.ready());
    assert!(!pending.wait(Duration::from_millis(20)));
    release.send(()).unwrap();
    assert!(pending.wait(PATIENCE));
    assert!(pending.ready());
    assert_eq!(pending.get().unwrap(), [0, 3, 6]);
}

#[test]
fn amap_results_can_be_awaited() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let pending = pool.amap(collatz_steps, 1..=50);
    let steps = pollster::block_on(pending).unwrap();
    assert_eq!(steps, (1..=50).map(collatz_steps).collect::<Vec<_>>());
}

#[test]
fn amap_reports_the_lowest_failure() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let pending = pool.amap(|x: u32| assert!(x % 10 != 9, "nine"), 0..100);
    assert_eq!(pending.get().unwrap_err().index(), 9);
}

#[test]
fn starmap_spreads_tuples_over_arguments() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let primes = pool
        .starmap(
            |start: u64, end: u64| count_primes(start, end),
            vec![(0, 10), (10, 100), (100, 1_000)],
        )
        .unwrap();
    assert_eq!(primes, [4, 21, 143]);
    let joined = pool
        .starmap(
            |a: &str, b: char, n: usize| format!("{a}{}", b.to_string().repeat(n)),
            [("x", '-', 2)],
        )
        .unwrap();
    assert_eq!(joined, ["x--"]);
}

#[test]
fn apply_and_apipe_run_one_call_on_a_worker() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let caller = std::thread::current().id();
    assert!(
        pool.apply(|_: ()| std::thread::current().id() != caller, ())
            .unwrap()
    );
    assert_eq!(pool.apply(collatz_steps, 27).unwrap(), 111);
    let err = pool
        .apply(|x: u8| -> u8 { panic!("apply {x}") }, 1)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "item 0 on worker {} panicked: apply 1",
            err.worker().unwrap()
        )
    );
    assert_eq!(pool.apipe(collatz_steps, 27).get().unwrap(), 111);
}

#[test]
fn a_pool_is_shared_by_several_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ThreadPool>();
    let pool = ThreadPool::with_nodes(2).unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4_u64)
            .map(|t| {
                let pool = &pool;
                scope.spawn(move || pool.map(|x: u64| x + t, 0..100).unwrap())
            })
            .collect();
        for (t, handle) in handles.into_iter().enumerate() {
            assert_eq!(
                handle.join().unwrap(),
                (0..100).map(|x| x + t as u64).collect::<Vec<_>>()
            );
        }
    });
}

#[test]
fn items_run_on_every_thread_of_the_pool() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    // Each of the two items waits for the other to have started: only two threads at once
    // can finish this.
    let (tx_a, rx_a) = mpsc::channel::<()>();
    let (tx_b, rx_b) = mpsc::channel::<()>();
    let pairs = vec![(tx_a, rx_b), (tx_b, rx_a)];
    let pairs: Vec<_> = pairs
        .into_iter()
        .map(|p| std::sync::Mutex::new(Some(p)))
        .collect();
    let names = pool
        .map(
            |slot: &std::sync::Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>| {
                let (tell, hear) = slot.lock().unwrap().take().unwrap();
                tell.send(()).unwrap();
                hear.recv_timeout(PATIENCE).expect("both items run at once");
                std::thread::current().name().unwrap().to_owned()
            },
            &pairs,
        )
        .unwrap();
    let distinct: HashSet<_> = names.iter().collect();
    assert_eq!(distinct.len(), 2);
    assert!(names.iter().all(|n| n.starts_with("twat-mp-")));
}

#[test]
fn dropping_during_a_panic_cancels_queued_work() {
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&ran);
    let pending = std::thread::spawn(move || {
        // Declared before the pool so that they are dropped after it (a dropped
        // `AsyncResult` would cancel its call).
        let (_hold, held) = mpsc::channel::<()>();
        let _busy;
        let pool = ThreadPool::with_nodes(1).unwrap();
        // Occupies the only thread long enough (even while the panic hook prints a
        // backtrace) that the map below is still queued when the pool is dropped.
        _busy = pool.apipe(move |_: ()| held.recv_timeout(Duration::from_secs(3)), ());
        let pending = pool.amap(
            move |x: u32| {
                counter.fetch_add(1, Ordering::SeqCst);
                x
            },
            0..100,
        );
        std::panic::panic_any(pending)
    })
    .join()
    .unwrap_err()
    .downcast::<twat_mp::AsyncResult<Result<Vec<u32>, WorkerError>>>()
    .unwrap();
    let err = pending.get().unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Cancelled), "{err}");
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}
