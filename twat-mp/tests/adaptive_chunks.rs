//! The thread pool's lazy maps at their default settings: items go to the threads in
//! chunks that grow while the items are fast (so trivial items pay next to nothing per
//! item) and shrink when one is slow. What must hold whatever the chunk: a slow item
//! after many fast ones holds back neither the results before it nor, in completion
//! order, the items after it; the input is pulled only a bounded window ahead. Each test
//! of a possible hang runs under a watchdog.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use support::within;
use twat_mp::ThreadPool;

/// Far more than any of these tests needs; reached only when a result is withheld.
const LIMIT: Duration = Duration::from_secs(60);

/// Many fast items, then the slow one, then as many fast ones again.
const SLOW: u64 = 20_000;
const ITEMS: u64 = 2 * SLOW;

/// Items after the fast ones, fewer than a grown chunk.
const TAIL: u64 = 32;

/// A gate that the slow item waits at until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

/// The item function: `n * 3`, after waiting at `gate` for item [`SLOW`].
fn slow_at(gate: &Arc<Gate>) -> impl Fn(u64) -> u64 + Send + Sync + 'static {
    let gate = Arc::clone(gate);
    move |n| {
        if n == SLOW {
            gate.wait();
        }
        n * 3
    }
}

#[test]
fn imap_hands_over_every_result_before_a_slow_item_while_it_runs() {
    within(LIMIT, "imap, the results before a slow item", || {
        let pool = ThreadPool::with_nodes(2).unwrap();
        let gate = Arc::new(Gate::default());
        let mut results = pool.imap(slow_at(&gate), 0..ITEMS);
        // The slow item waits until every result before it was handed over: a result
        // held back behind it (in its chunk, or unpublished) would never come.
        for n in 0..SLOW {
            assert_eq!(results.next().unwrap().unwrap(), n * 3);
        }
        gate.open();
        let rest: Vec<u64> = results.map(Result::unwrap).collect();
        assert_eq!(rest, (SLOW..ITEMS).map(|n| n * 3).collect::<Vec<_>>());
    });
}

#[test]
fn uimap_runs_the_items_after_a_slow_one_on_the_other_threads() {
    within(LIMIT, "uimap, the items after a slow item", || {
        let pool = ThreadPool::with_nodes(2).unwrap();
        let gate = Arc::new(Gate::default());
        let mut results = pool.uimap(slow_at(&gate), 0..ITEMS);
        // The slow item waits until every other result was handed over: the fast items
        // that followed it in its chunk must run elsewhere, not wait behind it.
        let mut seen: Vec<u64> = results
            .by_ref()
            .take(ITEMS as usize - 1)
            .map(Result::unwrap)
            .collect();
        gate.open();
        assert_eq!(results.next().unwrap().unwrap(), SLOW * 3);
        assert!(results.next().is_none());
        seen.sort_unstable();
        let expected: Vec<u64> = (0..ITEMS).filter(|&n| n != SLOW).map(|n| n * 3).collect();
        assert_eq!(seen, expected);
    });
}

#[test]
fn slow_items_after_many_fast_ones_spread_over_both_threads() {
    // Fast items, then slow ones (a millisecond of waiting each): once the chunks have
    // grown, the slow items must again spread over both threads. Each slow item counts
    // itself while it runs; two at once proves that both threads have slow work.
    within(LIMIT, "imap, slow items after fast ones", || {
        let pool = ThreadPool::with_nodes(2).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (r, m) = (Arc::clone(&running), Arc::clone(&most));
        let f = move |n: u64| {
            if n >= SLOW {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                // Waits for the other thread to be in a slow item too, a while at most:
                // long enough for a loaded machine to schedule it (the waiting ends for
                // good once two have overlapped; if they never can, the 200 slow items
                // take 40 s, within the watchdog's limit, and the assertion fails).
                let start = std::time::Instant::now();
                while m.load(Ordering::SeqCst) < 2 && start.elapsed() < Duration::from_millis(200) {
                    std::thread::yield_now();
                }
                r.fetch_sub(1, Ordering::SeqCst);
            }
            n
        };
        let results: Vec<u64> = pool.imap(f, 0..SLOW + 200).map(Result::unwrap).collect();
        assert_eq!(results, (0..SLOW + 200).collect::<Vec<_>>());
        assert_eq!(
            most.load(Ordering::SeqCst),
            2,
            "the slow items never ran two at once"
        );
    });
}

#[test]
fn the_last_items_are_shared_with_a_thread_left_idle() {
    // The chunks grow on fast items; once every job has ended, the input's last items come
    // at once, fewer than a chunk: one job takes them all while the other thread is idle,
    // and no job is left whose end would make that thread look for work. The first of them
    // waits until the last has run, which only the idle thread can do.
    within(LIMIT, "imap, the last items behind a slow one", || {
        let pool = ThreadPool::with_nodes(2).unwrap();
        let gate = Arc::new(Gate::default());
        let last = SLOW + TAIL - 1;
        let f = {
            let gate = Arc::clone(&gate);
            move |n: u64| {
                if n == SLOW {
                    gate.wait();
                }
                if n == last {
                    gate.open();
                }
                n
            }
        };
        let (sender, input) = mpsc::channel();
        // Runs of items: the feeder finds each run's items at once.
        let mut results = pool.imap(f, input.into_iter().flatten());
        sender.send((0..SLOW).collect::<Vec<u64>>()).unwrap();
        for n in 0..SLOW {
            assert_eq!(results.next().unwrap().unwrap(), n);
        }
        // The tail comes while the consumer waits in `next`, once the pool had a moment
        // to go idle (without it the jobs' ends may still be on their way, and a steal
        // they set off would hide a missing one: the test would pass, never fail wrongly).
        let tail = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            sender.send((SLOW..=last).collect()).unwrap();
        });
        let rest: Vec<u64> = results.map(Result::unwrap).collect();
        assert_eq!(rest, (SLOW..=last).collect::<Vec<_>>());
        tail.join().unwrap();
    });
}

/// Watches `pulled` for a while (the input is pulled on a thread of its own, so the bound
/// must hold while nobody calls `next`) and returns the most it reached.
fn most_pulled_over_a_while(pulled: &AtomicUsize) -> usize {
    let start = std::time::Instant::now();
    let mut most = 0;
    while start.elapsed() < Duration::from_millis(200) {
        most = most.max(pulled.load(Ordering::SeqCst));
        std::thread::yield_now();
    }
    most
}

#[test]
fn the_default_window_is_bounded_however_fast_the_items() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let input = (0_u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let mut results = pool.imap(|n: u64| n + 1, input);
    // Enough results for the chunks to reach their largest size.
    let mut taken = 0;
    for round in 0..20 {
        let take = 10_000;
        assert_eq!(results.by_ref().take(take).count(), take);
        taken += take;
        // At the end, give the feeder a while to pull all it may.
        let ahead = if round == 19 {
            most_pulled_over_a_while(&pulled)
        } else {
            pulled.load(Ordering::SeqCst)
        } - taken;
        // Two chunks of at most 1,024 items per thread, a chunk that may reach past
        // them, and 128 items of an input that gives its items at once.
        assert!(
            ahead <= 2 * 2 * 1024 + 1024 + 128,
            "pulled {ahead} items ahead"
        );
    }
}
