//! Lazy maps over a live input: a channel whose sender stays open, as a socket or a pipe
//! would. A result that is ready is handed over at once, whatever the input is doing;
//! input is pulled only to keep workers busy, within the window. Each test of a possible
//! hang runs under a watchdog.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::numbers::count_primes;
use support::within;
use twat_mp::{ProcessPool, ThreadPool, WorkerError};

/// Far more than any of these tests needs; reached only when a result is withheld.
const LIMIT: Duration = Duration::from_secs(30);

fn plus_one(n: u64) -> u64 {
    n + 1
}

/// Sends `0..n` into a channel and keeps its sender open: the input has `n` items ready
/// and then waits, as a socket would.
fn live_input(n: u64) -> (mpsc::Sender<u64>, mpsc::Receiver<u64>) {
    let (sender, receiver) = mpsc::channel();
    for item in 0..n {
        sender.send(item).unwrap();
    }
    (sender, receiver)
}

/// `take(n)` over exactly `n` items sent, the sender still open, must return.
fn take_all_sent<M>(what: &str, lazy_map: M) -> Vec<u64>
where
    M: FnOnce(mpsc::Receiver<u64>) -> Vec<Result<u64, WorkerError>> + Send + 'static,
{
    within(LIMIT, what, move || {
        let (sender, input) = live_input(5);
        let results = lazy_map(input);
        drop(sender);
        results.into_iter().map(Result::unwrap).collect()
    })
}

#[test]
fn thread_pool_imap_takes_exactly_what_was_sent() {
    let results = take_all_sent("ThreadPool::imap(..).take(5) over a live input", |input| {
        let pool = ThreadPool::with_nodes(2).unwrap();
        pool.imap(plus_one, input).take(5).collect()
    });
    assert_eq!(results, [1, 2, 3, 4, 5]);
}

#[test]
fn thread_pool_uimap_takes_exactly_what_was_sent() {
    let mut results = take_all_sent("ThreadPool::uimap(..).take(5) over a live input", |input| {
        let pool = ThreadPool::with_nodes(2).unwrap();
        pool.uimap(plus_one, input).take(5).collect()
    });
    results.sort_unstable();
    assert_eq!(results, [1, 2, 3, 4, 5]);
}

#[test]
fn thread_pool_imap_in_chunks_takes_exactly_what_was_sent() {
    let results = take_all_sent(
        "ThreadPool::imap(..).take(5) over a live input, chunksize 64",
        |input| {
            let pool = ThreadPool::builder()
                .nodes(2)
                .chunksize(64)
                .build()
                .unwrap();
            pool.imap(plus_one, input).take(5).collect()
        },
    );
    assert_eq!(results, [1, 2, 3, 4, 5]);
}

#[test]
fn process_pool_imap_takes_exactly_what_was_sent() {
    let results = take_all_sent("ProcessPool::imap(..).take(5) over a live input", |input| {
        let pool = ProcessPool::with_nodes(2).unwrap();
        pool.imap(plus_one, input).take(5).collect()
    });
    assert_eq!(results, [1, 2, 3, 4, 5]);
}

#[test]
fn process_pool_uimap_takes_exactly_what_was_sent() {
    let mut results = take_all_sent(
        "ProcessPool::uimap(..).take(5) over a live input",
        |input| {
            let pool = ProcessPool::with_nodes(2).unwrap();
            pool.uimap(plus_one, input).take(5).collect()
        },
    );
    results.sort_unstable();
    assert_eq!(results, [1, 2, 3, 4, 5]);
}

/// Sends one item, waits for its result, then sends the next: each result must come
/// while the input waits for the next item.
fn one_at_a_time(
    sender: mpsc::Sender<u64>,
    results: &mut dyn Iterator<Item = Result<u64, WorkerError>>,
) {
    for item in 0..20 {
        sender.send(item).unwrap();
        let result = results.next().expect("the input is still open");
        assert_eq!(result.unwrap(), item + 1);
    }
    drop(sender);
    assert!(results.next().is_none());
}

#[test]
fn thread_pool_imap_hands_each_result_over_while_the_input_waits() {
    within(LIMIT, "ThreadPool::imap, one item at a time", || {
        let pool = ThreadPool::with_nodes(2).unwrap();
        let (sender, input) = mpsc::channel();
        one_at_a_time(sender, &mut pool.imap(plus_one, input));
    });
}

#[test]
fn thread_pool_uimap_in_chunks_hands_each_result_over_while_the_input_waits() {
    within(
        LIMIT,
        "ThreadPool::uimap, chunksize 64, one item at a time",
        || {
            let pool = ThreadPool::builder()
                .nodes(2)
                .chunksize(64)
                .build()
                .unwrap();
            let (sender, input) = mpsc::channel();
            one_at_a_time(sender, &mut pool.uimap(plus_one, input));
        },
    );
}

#[test]
fn process_pool_imap_hands_each_result_over_while_the_input_waits() {
    within(LIMIT, "ProcessPool::imap, one item at a time", || {
        let pool = ProcessPool::with_nodes(2).unwrap();
        // A trivial function, measured: the pool now sends it in batches of thousands.
        assert_eq!(pool.map(plus_one, 0..200_000).unwrap().len(), 200_000);
        let (sender, input) = mpsc::channel();
        one_at_a_time(sender, &mut pool.imap(plus_one, input));
    });
}

#[test]
fn process_pool_uimap_in_chunks_hands_each_result_over_while_the_input_waits() {
    within(
        LIMIT,
        "ProcessPool::uimap, chunksize 64, one item at a time",
        || {
            let pool = ProcessPool::builder()
                .nodes(2)
                .chunksize(64)
                .build()
                .unwrap();
            let (sender, input) = mpsc::channel();
            one_at_a_time(sender, &mut pool.uimap(plus_one, input));
        },
    );
}

/// An endless input that counts the items pulled from it, and spends `work` on making
/// each one (counting the primes below it): 0 for an input that gives its items at once.
fn counted(pulled: &Arc<AtomicUsize>, work: u64) -> impl Iterator<Item = u64> + Send + 'static {
    let pulled = Arc::clone(pulled);
    (0_u64..).inspect(move |_| {
        assert!(count_primes(0, work) < usize::MAX);
        pulled.fetch_add(1, Ordering::SeqCst);
    })
}

/// Watches `pulled` for a while (the input is pulled on a thread of its own, so the bound
/// must hold while nobody calls `next`) and returns the most it reached.
fn most_pulled_over_a_while(pulled: &AtomicUsize) -> usize {
    let start = Instant::now();
    let mut most = 0;
    while start.elapsed() < Duration::from_millis(200) {
        most = most.max(pulled.load(Ordering::SeqCst));
        std::thread::yield_now();
    }
    most
}

/// A lazy map of `make` (input, ordered) over an endless input, costly (`work`) or
/// instant, pulls at most `ahead` items past the results taken (`takes`, one after the
/// other), and at most one more once dropped.
fn pulls_only_within_the_window<'pool, M>(cases: [(u64, usize); 2], takes: &[usize], make: M)
where
    M: Fn(
        Box<dyn Iterator<Item = u64> + Send>,
        bool,
    ) -> Box<dyn Iterator<Item = Result<u64, WorkerError>> + 'pool>,
{
    for (work, ahead) in cases {
        for ordered in [true, false] {
            let pulled = Arc::new(AtomicUsize::new(0));
            let mut results = make(Box::new(counted(&pulled, work)), ordered);
            let mut taken = 0;
            for &take in takes {
                assert_eq!(results.by_ref().take(take).count(), take);
                taken += take;
                let most = most_pulled_over_a_while(&pulled);
                assert!(
                    most <= taken + ahead,
                    "pulled {most} items for {taken} results (ordered: {ordered}, work {work})"
                );
            }
            drop(results);
            // Dropped: at most the item being pulled at that moment is still taken.
            let at_drop = pulled.load(Ordering::SeqCst);
            assert!(most_pulled_over_a_while(&pulled) <= at_drop + 1);
        }
    }
}

#[test]
fn thread_pool_lazy_maps_pull_an_endless_input_only_within_the_window() {
    // One item per job (the default chunks grow with fast items: see
    // `adaptive_chunks.rs` for their bound).
    let pool = ThreadPool::builder().nodes(2).chunksize(1).build().unwrap();
    // The window: two items per thread ahead of the consumer; an input that gives its
    // items at once may be read 128 items further.
    let cases = [(20_000, 2 * 2), (0, 2 * 2 + 128)];
    pulls_only_within_the_window(cases, &[5, 100], |input, ordered| {
        if ordered {
            Box::new(pool.imap(plus_one, input))
        } else {
            Box::new(pool.uimap(plus_one, input))
        }
    });
}

#[test]
fn process_pool_lazy_maps_pull_an_endless_input_only_within_the_window() {
    let pool = ProcessPool::builder()
        .nodes(2)
        .chunksize(8)
        .build()
        .unwrap();
    // The window: two rounds of batches ahead of the consumer, a round being two batches
    // per worker, and for batches this small (a worker gets up to 32 more while it runs
    // one) 34 per worker; an input that gives its items at once may be read 128 items
    // further.
    let window = 2 * (2 * (2 + 32)) * 8;
    let cases = [(20_000, window), (0, window + 128)];
    pulls_only_within_the_window(cases, &[100], |input, ordered| {
        if ordered {
            Box::new(pool.imap(plus_one, input))
        } else {
            Box::new(pool.uimap(plus_one, input))
        }
    });
}

#[test]
fn process_pool_lazy_maps_of_trivial_items_at_default_settings_keep_a_bounded_window() {
    // Without a `chunksize`, batches of trivial items would grow to hundreds of thousands
    // of items (about 2 ms of work each); a lazy map's batches stop at 2,048 items, so the
    // window is two rounds of two such batches per worker, plus the 128 items an instant
    // input may be read further.
    let pool = ProcessPool::with_nodes(2).unwrap();
    let window = 2 * (2 * 2) * 2048;
    // Twice: the second call starts with the batch size the pool learned in the first.
    let cases = [(0, window + 128), (0, window + 128)];
    pulls_only_within_the_window(cases, &[100, 200_000], |input, ordered| {
        if ordered {
            Box::new(pool.imap(plus_one, input))
        } else {
            Box::new(pool.uimap(plus_one, input))
        }
    });
}

#[test]
fn a_lazy_map_inside_a_job_of_the_same_pool_does_not_deadlock() {
    let sums = within(LIMIT, "imap nested in a job of a one-thread pool", || {
        let pool = Arc::new(ThreadPool::with_nodes(1).unwrap());
        let inner = Arc::clone(&pool);
        pool.apipe(
            move |n: u64| inner.imap(plus_one, 0..n).map(Result::unwrap).sum::<u64>(),
            100,
        )
        .get()
        .unwrap()
    });
    assert_eq!(sums, (1..=100).sum::<u64>());
}

#[test]
fn a_panic_of_the_input_resumes_in_the_consumer_after_the_items_before_it() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let input = (0_u64..).inspect(|&n| assert!(n < 3, "the input broke at {n}"));
    let mut results = pool.imap(plus_one, input);
    let mut seen = Vec::new();
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for result in results.by_ref() {
            seen.push(result.unwrap());
        }
    }))
    .unwrap_err();
    assert_eq!(seen, [1, 2, 3]);
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("the input broke at 3")
    );
}
