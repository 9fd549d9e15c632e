//! Per-worker state (`map_init`, `imap_init`, `uimap_init`) and shared data (`map_with`)
//! on the thread-based pools, through the public API.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use twat_mp::{ErrorKind, ThreadPool};

/// A state that counts how many were made and how many were dropped.
struct Counted {
    dropped: Arc<AtomicUsize>,
    items: usize,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Counters {
    made: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl Counters {
    fn init(&self) -> impl Fn() -> Counted + Send + Sync + 'static {
        let (made, dropped) = (Arc::clone(&self.made), Arc::clone(&self.dropped));
        move || {
            made.fetch_add(1, Ordering::SeqCst);
            Counted {
                dropped: Arc::clone(&dropped),
                items: 0,
            }
        }
    }

    fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

#[test]
fn map_init_makes_at_most_one_state_per_thread_and_call() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let counters = Counters::default();
    for call in 1..=3 {
        let out = pool
            .map_init(
                counters.init(),
                |state: &mut Counted, x: u64| {
                    state.items += 1;
                    x * 2
                },
                0..200_000u64,
            )
            .unwrap();
        assert_eq!(out.len(), 200_000);
        assert!(out.iter().enumerate().all(|(i, &y)| y == 2 * i as u64));
        // At most one per thread per call, and every call makes its own.
        let made = counters.made();
        assert!(
            made <= 2 * call && made >= call,
            "call {call}: {made} states"
        );
        // The states of a call are dropped when it returns.
        assert_eq!(counters.dropped(), made);
    }
}

#[test]
fn init_runs_on_the_pool_thread_that_uses_the_state_and_only_there() {
    let pool = ThreadPool::with_nodes(4).unwrap();
    let made = AtomicUsize::new(0);
    // One item: the three threads that get none never run `init`.
    let out = pool
        .map_init(
            || {
                made.fetch_add(1, Ordering::SeqCst);
                thread_name()
            },
            |made_on: &mut String, x: u8| (made_on.clone(), thread_name(), x),
            [7u8],
        )
        .unwrap();
    assert_eq!(made.load(Ordering::SeqCst), 1);
    let (made_on, used_on, x) = &out[0];
    assert!(made_on.starts_with("twat-mp-"), "{made_on}");
    assert_eq!(made_on, used_on);
    assert_eq!(*x, 7);
    // An empty input makes nothing.
    let none: Vec<()> = pool
        .map_init(
            || made.fetch_add(1, Ordering::SeqCst),
            |_: &mut usize, ()| (),
            [],
        )
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(made.load(Ordering::SeqCst), 1);
}

#[test]
fn a_state_is_reused_across_items_of_one_thread() {
    let pool = ThreadPool::with_nodes(1).unwrap();
    let seen = pool
        .map_init(
            || 0usize,
            |count: &mut usize, _: u32| {
                *count += 1;
                *count
            },
            0..100,
        )
        .unwrap();
    assert_eq!(seen, (1..=100).collect::<Vec<_>>());
}

#[test]
fn a_panicking_init_fails_its_item_once_per_thread_and_says_so() {
    let pool = ThreadPool::with_nodes(1).unwrap();
    let tries = AtomicUsize::new(0);
    let init = || -> Vec<u8> {
        tries.fetch_add(1, Ordering::SeqCst);
        panic!("no model file")
    };
    let err = pool
        .map_init(init, |_: &mut Vec<u8>, x: u32| x, 0..1_000)
        .unwrap_err();
    assert_eq!(err.index(), 0);
    assert!(
        matches!(err.kind(), ErrorKind::InitPanicked { message } if message == "no model file"),
        "{:?}",
        err.kind()
    );
    assert_eq!(
        err.to_string(),
        "item 0 on worker 0 could not run: its worker's `init` panicked: no model file"
    );
    assert!(err.traceback().is_some());
    assert_eq!(tries.load(Ordering::SeqCst), 1);

    // The lazy form goes on after a failure: every item of the thread fails, `init` is
    // not run again for each.
    let tries = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&tries);
    let outcomes: Vec<_> = pool
        .imap_init(
            move || -> u8 {
                counter.fetch_add(1, Ordering::SeqCst);
                panic!("no model file")
            },
            |_: &mut u8, x: u32| x,
            0..5,
        )
        .collect();
    assert_eq!(outcomes.len(), 5);
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let err = outcome.unwrap_err();
        assert_eq!(err.index(), index);
        assert!(matches!(err.kind(), ErrorKind::InitPanicked { .. }));
    }
    assert_eq!(tries.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failing_item_keeps_the_state_for_the_next_ones() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let err = pool
        .map_init(
            Vec::<u32>::new,
            |seen: &mut Vec<u32>, x: u32| {
                assert!(x != 37, "thirty-seven");
                seen.push(x);
                x
            },
            0..1_000,
        )
        .unwrap_err();
    assert_eq!(err.index(), 37);
    assert!(matches!(err.kind(), ErrorKind::Panicked { message } if message == "thirty-seven"));

    // Lazily, on one thread: the state made before the failure serves the items after it.
    let pool = ThreadPool::with_nodes(1).unwrap();
    let outcomes: Vec<_> = pool
        .imap_init(
            || 0u32,
            |count: &mut u32, x: u32| {
                *count += 1;
                assert!(x != 2, "two");
                *count
            },
            0..5,
        )
        .collect();
    assert_eq!(outcomes[2].as_ref().unwrap_err().index(), 2);
    let counts: Vec<u32> = outcomes.into_iter().filter_map(Result::ok).collect();
    assert_eq!(counts, [1, 2, 4, 5]);
}

#[test]
fn imap_init_runs_over_an_endless_input() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let counters = Counters::default();
    let first: Vec<u64> = support::within(Duration::from_secs(30), "imap_init", {
        let init = counters.init();
        let pool = ThreadPool::with_nodes(2).unwrap();
        move || {
            pool.imap_init(init, |_: &mut Counted, n: u64| n * n, 1..)
                .take(5)
                .collect::<Result<_, _>>()
                .unwrap()
        }
    });
    assert_eq!(first, [1, 4, 9, 16, 25]);
    assert!((1..=2).contains(&counters.made()));
    // The iterator was dropped: so were its states.
    assert_eq!(counters.dropped(), counters.made());

    let mut squares: Vec<u64> = pool
        .uimap_init(|| (), |(): &mut (), n: u64| n * n, vec![3, 1, 2])
        .collect::<Result<_, _>>()
        .unwrap();
    squares.sort_unstable();
    assert_eq!(squares, [1, 4, 9]);
}

#[test]
fn nested_work_of_the_same_call_neither_deadlocks_nor_aliases_the_state() {
    let pool = Arc::new(ThreadPool::with_nodes(1).unwrap());
    let inner = Arc::clone(&pool);
    let sums = support::within(Duration::from_secs(60), "nested map_init", move || {
        inner
            .map_init(
                || false,
                |in_use: &mut bool, x: u64| {
                    // A state in use is never handed to another item.
                    assert!(!*in_use, "the state is aliased");
                    *in_use = true;
                    // While this waits, rayon may run other items of this call here.
                    let sum: u64 = inner.map(|y: u64| y + x, 0..64).unwrap().iter().sum();
                    *in_use = false;
                    sum
                },
                0..64,
            )
            .unwrap()
    });
    assert_eq!(sums.len(), 64);
    assert_eq!(sums[1], (0..64).sum::<u64>() + 64);
}

#[test]
fn map_with_borrows_one_table_for_every_item() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let table: Vec<u64> = (0..4_000_000).collect();
    let out = pool
        .map_with(
            &table,
            |table: &Vec<u64>, i: usize| table[i * 1000],
            0..4_000,
        )
        .unwrap();
    let address = table.as_ptr() as usize;
    // Every item read the caller's table itself: not a copy.
    let seen = pool
        .map_with(
            &table,
            |table: &Vec<u64>, _: u8| table.as_ptr() as usize,
            0..64,
        )
        .unwrap();
    assert!(seen.iter().all(|&a| a == address));
    assert!(out.iter().enumerate().all(|(i, &v)| v == i as u64 * 1000));
    // Unsized data too.
    let words = pool
        .map_with("abc", |s: &str, i: usize| s.as_bytes()[i], 0..3)
        .unwrap();
    assert_eq!(words, b"abc");
}

#[cfg(feature = "aio")]
mod aio {
    use super::*;
    use twat_mp::AsyncMultiPool;

    async fn map_init_makes_a_state_per_worker_and_call() {
        let pool = AsyncMultiPool::with_nodes(2).unwrap();
        let counters = Counters::default();
        for call in 1..=2 {
            let out = pool
                .map_init(
                    counters.init(),
                    |state: &mut Counted, x: u32| {
                        state.items += 1;
                        let seen = state.items;
                        async move {
                            tokio::task::yield_now().await;
                            (x, seen > 0)
                        }
                    },
                    0..500,
                )
                .await
                .unwrap();
            assert_eq!(out.len(), 500);
            assert!(
                out.iter()
                    .enumerate()
                    .all(|(i, &(x, ok))| x == i as u32 && ok)
            );
            let made = counters.made();
            assert!(
                made <= 2 * call && made >= call,
                "call {call}: {made} states"
            );
            // The call is over: its states are dropped.
            assert_eq!(counters.dropped(), made);
        }
    }

    async fn init_runs_on_the_worker_thread() {
        let pool = AsyncMultiPool::with_nodes(2).unwrap();
        let out = pool
            .map_init(
                thread_name,
                |made_on: &mut String, ()| {
                    let pair = (made_on.clone(), thread_name());
                    async move { pair }
                },
                [(), (), ()],
            )
            .await
            .unwrap();
        for (made_on, used_on) in out {
            assert!(made_on.starts_with("twat-mp-aio-"), "{made_on}");
            assert_eq!(made_on, used_on);
        }
    }

    async fn a_panicking_init_is_reported_as_such() {
        let pool = AsyncMultiPool::with_nodes(1).unwrap();
        let tries = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&tries);
        let err = pool
            .map_init(
                move || -> u8 {
                    counter.fetch_add(1, Ordering::SeqCst);
                    panic!("no credentials")
                },
                |_: &mut u8, x: u32| async move { x },
                0..50,
            )
            .await
            .unwrap_err();
        assert_eq!(err.index(), 0);
        assert_eq!(
            err.to_string(),
            "item 0 on worker 0 could not run: its worker's `init` panicked: no credentials"
        );
        assert_eq!(tries.load(Ordering::SeqCst), 1);
        // An item's own failure, with a state.
        let err = pool
            .map_init(
                || 5u32,
                |limit: &mut u32, x: u32| {
                    let limit = *limit;
                    async move {
                        assert!(x < limit, "over the limit");
                        x
                    }
                },
                0..10,
            )
            .await
            .unwrap_err();
        assert_eq!(err.index(), 5);
        assert!(matches!(err.kind(), ErrorKind::Panicked { .. }));
    }

    async fn the_lazy_forms_and_map_with() {
        let pool = AsyncMultiPool::builder()
            .nodes(2)
            .concurrency(4)
            .build()
            .unwrap();
        let counters = Counters::default();
        let mut stream = pool.imap_init(
            counters.init(),
            |_: &mut Counted, n: u64| async move { n + 1 },
            0..,
        );
        let mut first = Vec::new();
        while let Some(value) = stream.next().await {
            first.push(value.unwrap());
            if first.len() == 5 {
                break;
            }
        }
        assert_eq!(first, [1, 2, 3, 4, 5]);
        assert!((1..=2).contains(&counters.made()));

        let mut stream = pool.uimap_init(
            || 3u64,
            |k: &mut u64, n: u64| {
                let k = *k;
                async move { n * k }
            },
            [1, 2],
        );
        let mut got = Vec::new();
        while let Some(value) = stream.next().await {
            got.push(value.unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, [3, 6]);

        let table: Vec<u64> = (0..1_000_000).collect();
        let address = table.as_ptr() as usize;
        let out = pool
            .map_with(
                table,
                |table: &Vec<u64>, i: usize| {
                    let found = (table.as_ptr() as usize, table[i]);
                    async move { found }
                },
                [0, 999_999],
            )
            .await
            .unwrap();
        // Moved in once, never copied: every worker read the same table.
        assert_eq!(out, [(address, 0), (address, 999_999)]);
    }

    on_both_flavours!(
        map_init_makes_a_state_per_worker_and_call,
        init_runs_on_the_worker_thread,
        a_panicking_init_is_reported_as_such,
        the_lazy_forms_and_map_with,
    );
}
