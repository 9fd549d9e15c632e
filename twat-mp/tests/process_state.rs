//! Per-worker state (`map_init`, `imap_init`, `uimap_init`) and shared data (`map_with`)
//! on `ProcessPool`, through the public API: how often `init` runs and where, that the
//! state lasts across the batches of one call and not beyond it, that the shared value
//! crosses once per worker, and what a crash or a panicking `init` does.

use crate::support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use twat_mp::{ErrorKind, ProcessPool};

use support::within;

const LIMIT: Duration = Duration::from_secs(60);

/// `init` runs counted in each worker process (this static lives in the worker).
static INITS: AtomicU64 = AtomicU64::new(0);
/// States dropped in each worker process.
static DROPS: AtomicU64 = AtomicU64::new(0);

/// A worker's state: which process made it, its how-manieth `init` there, how many items
/// it served, and how many states that worker had dropped when it was made.
struct Probe {
    pid: u32,
    nth: u64,
    items: u64,
    dropped_before: u64,
}

impl Drop for Probe {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

fn probe() -> Probe {
    Probe {
        pid: std::process::id(),
        nth: INITS.fetch_add(1, Ordering::SeqCst) + 1,
        items: 0,
        dropped_before: DROPS.load(Ordering::SeqCst),
    }
}

/// What one item saw of its worker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    pid: u32,
    nth: u64,
    /// This item is the state's how-manieth.
    item: u64,
    dropped_before: u64,
}

fn see(state: &mut Probe, _: u64) -> Seen {
    state.items += 1;
    Seen {
        pid: state.pid,
        nth: state.nth,
        item: state.items,
        dropped_before: state.dropped_before,
    }
}

/// Per worker process: the `init`s its items saw, and how many items each state served.
fn by_worker(seen: &[Seen]) -> BTreeMap<u32, Vec<Seen>> {
    let mut workers = BTreeMap::<u32, Vec<Seen>>::new();
    for s in seen {
        workers.entry(s.pid).or_default().push(*s);
    }
    workers
}

/// Every item of a worker saw one state, made once, whose item counter went 1, 2, 3, …
/// without a gap: the state lasted across all of that worker's batches of the call.
fn assert_one_state_per_worker(seen: &[Seen]) {
    for (pid, items) in by_worker(seen) {
        let nths: Vec<u64> = items.iter().map(|s| s.nth).collect();
        assert!(
            nths.iter().all(|&n| n == nths[0]),
            "worker {pid} made its state more than once in one call: {nths:?}"
        );
        let mut counts: Vec<u64> = items.iter().map(|s| s.item).collect();
        counts.sort_unstable();
        let expected: Vec<u64> = (1..=counts.len() as u64).collect();
        assert_eq!(
            counts, expected,
            "worker {pid}'s state did not last the call"
        );
    }
}

fn pool(nodes: usize, chunksize: usize) -> ProcessPool {
    ProcessPool::builder()
        .nodes(nodes)
        .chunksize(chunksize)
        .build()
        .unwrap()
}

#[test]
fn init_runs_once_per_worker_per_call_and_the_state_lasts_across_batches() {
    let pool = pool(2, 3);
    let seen = pool.map_init(probe, see, 0..300).unwrap();
    assert_eq!(seen.len(), 300);
    // 100 batches over 2 workers: each worker ran many batches with one state.
    let workers = by_worker(&seen);
    assert!(workers.len() <= 2, "{} workers", workers.len());
    assert_one_state_per_worker(&seen);
    for items in workers.values() {
        assert_eq!(
            items[0].nth, 1,
            "the first call in a worker made its first state"
        );
    }
}

#[test]
fn a_second_call_inits_again_after_the_first_state_was_dropped() {
    let pool = pool(2, 4);
    let first = by_worker(&pool.map_init(probe, see, 0..100).unwrap());
    // A plain map on the same workers sees the first call's states dropped already.
    let drops = pool
        .map(
            |_: u64| (std::process::id(), DROPS.load(Ordering::SeqCst)),
            0..100,
        )
        .unwrap();
    for (pid, dropped) in drops {
        if first.contains_key(&pid) {
            assert_eq!(
                dropped, 1,
                "worker {pid} still holds the ended call's state"
            );
        }
    }
    let second = pool.map_init(probe, see, 0..100).unwrap();
    assert_one_state_per_worker(&second);
    for (pid, items) in by_worker(&second) {
        if let Some(before) = first.get(&pid) {
            assert_eq!(
                items[0].nth,
                before[0].nth + 1,
                "worker {pid} did not init again"
            );
            assert_eq!(items[0].dropped_before, 1);
        }
    }
}

#[test]
fn concurrent_calls_each_have_their_own_state_in_each_worker() {
    let pool = std::sync::Arc::new(pool(2, 2));
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let pool = std::sync::Arc::clone(&pool);
            std::thread::spawn(move || pool.map_init(probe, see, 0..200).unwrap())
        })
        .collect();
    let mut inits = HashMap::<u32, Vec<u64>>::new();
    for call in calls {
        let seen = call.join().unwrap();
        assert_eq!(seen.len(), 200);
        assert_one_state_per_worker(&seen);
        for (pid, items) in by_worker(&seen) {
            inits.entry(pid).or_default().push(items[0].nth);
        }
    }
    // No two calls shared a state in one worker.
    for (pid, mut nths) in inits {
        let all = nths.len();
        nths.sort_unstable();
        nths.dedup();
        assert_eq!(nths.len(), all, "worker {pid}: calls shared a state");
    }
}

fn abort_on_50(state: &mut Probe, item: u64) -> Seen {
    if item == 50 {
        std::process::abort();
    }
    see(state, item)
}

#[test]
fn a_worker_replaced_mid_call_inits_again_and_the_other_items_complete() {
    let outcomes = within(LIMIT, "imap_init over a crash", || {
        let pool = pool(1, 8);
        pool.imap_init(probe, abort_on_50, 0..200)
            .collect::<Vec<_>>()
    });
    assert_eq!(outcomes.len(), 200);
    let mut seen = Vec::new();
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(s) => seen.push(s),
            Err(err) => {
                assert_eq!(index, 50, "{err}");
                assert!(matches!(err.kind(), ErrorKind::Crashed { .. }), "{err}");
            }
        }
    }
    assert_eq!(seen.len(), 199);
    let workers = by_worker(&seen);
    // One worker before the crash, at least one after (the batch is replayed one item at
    // a time to find the culprit): each made its own state, its first.
    assert!(workers.len() >= 2, "{workers:?}");
    for (pid, items) in &workers {
        assert!(items.iter().all(|s| s.nth == 1), "worker {pid}: {items:?}");
    }
}

fn no_connection() -> u32 {
    panic!("no connection to the database");
}

#[test]
fn a_panicking_init_fails_the_items_clearly_and_the_pool_goes_on() {
    let pool = pool(2, 4);
    let err = pool
        .map_init(no_connection, |_: &mut u32, x: u64| x, 0..20)
        .unwrap_err();
    assert_eq!(err.index(), 0);
    let ErrorKind::InitPanicked { message } = err.kind() else {
        panic!("{err}");
    };
    // The same kind, and the same words, as on the thread pools.
    assert_eq!(message, "no connection to the database");
    assert!(
        err.to_string().ends_with(
            "could not run: its worker's `init` panicked: no connection to the database"
        ),
        "{err}"
    );
    assert!(err.traceback().is_some(), "{err}");
    // Every item fails so, once per item, without a crash loop.
    let outcomes = within(LIMIT, "imap_init with a panicking init", move || {
        let outcomes: Vec<_> = pool
            .imap_init(no_connection, |_: &mut u32, x: u64| x, 0..20)
            .collect();
        (outcomes, pool.map(|x: u64| x + 1, 0..3).unwrap())
    });
    assert_eq!(outcomes.0.len(), 20);
    assert!(outcomes.0.iter().all(|outcome| matches!(
        outcome.as_ref().unwrap_err().kind(),
        ErrorKind::InitPanicked { message } if message == "no connection to the database"
    )));
    assert_eq!(outcomes.1, [1, 2, 3]);
}

#[test]
fn imap_init_takes_from_an_endless_input() {
    let first = within(LIMIT, "imap_init over 0..", || {
        let pool = pool(2, 4);
        pool.imap_init(|| 1000_u64, |base: &mut u64, x: u64| *base + x, 0..)
            .take(50)
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    });
    assert_eq!(first, (1000..1050).collect::<Vec<_>>());
}

#[test]
fn uimap_init_yields_every_result() {
    let pool = pool(2, 3);
    let seen: Vec<Seen> = pool
        .uimap_init(probe, see, 0..90)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(seen.len(), 90);
    assert_one_state_per_worker(&seen);
}

/// Deserializations of a `Table` in this process.
static DECODES: AtomicU64 = AtomicU64::new(0);

/// A lookup table that counts how often it is made from its serde form.
#[derive(Serialize)]
struct Table(Vec<u64>);

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        DECODES.fetch_add(1, Ordering::SeqCst);
        Vec::deserialize(deserializer).map(Table)
    }
}

fn look_up(table: &Table, at: usize) -> (u64, u32, u64) {
    (
        table.0[at],
        std::process::id(),
        DECODES.load(Ordering::SeqCst),
    )
}

#[test]
fn map_with_sends_the_shared_value_once_per_worker_per_call() {
    let pool = pool(2, 2);
    let table = Table((0..1000).map(|x| x * 7).collect());
    let first = pool.map_with(table, look_up, 0..400).unwrap();
    for (at, (value, pid, decodes)) in first.iter().enumerate() {
        assert_eq!(*value, at as u64 * 7);
        // 200 batches, and the worker decoded the table once.
        assert_eq!(*decodes, 1, "worker {pid}");
    }
    let table = Table((0..1000).collect());
    let second = pool.map_with(table, look_up, 0..400).unwrap();
    for (at, (value, pid, decodes)) in second.iter().enumerate() {
        assert_eq!(*value, at as u64);
        let before = first.iter().any(|(_, p, _)| p == pid);
        // Once more per call, in a worker that had the first call's table.
        assert_eq!(*decodes, if before { 2 } else { 1 }, "worker {pid}");
    }
}

/// Item 30 kills its worker the first time it runs (it leaves a mark at `mark`), and
/// succeeds when it runs again on the replacement.
fn look_up_or_die_once(table: &Table, (at, mark): (usize, String)) -> (u64, u32, u64) {
    if at == 30 && std::fs::create_dir(&mark).is_ok() {
        std::process::abort();
    }
    look_up(table, at)
}

#[test]
fn a_worker_replaced_mid_call_gets_the_shared_value_again() {
    let mark = std::env::temp_dir().join(format!("twat-mp-state-{}", std::process::id()));
    let _ = std::fs::remove_dir(&mark);
    let mark = mark.to_str().unwrap().to_owned();
    let items: Vec<(usize, String)> = (0..100).map(|at| (at, mark.clone())).collect();
    let seen = within(LIMIT, "map_with over a crash", move || {
        let pool = pool(1, 8);
        pool.map_with(Table((0..100).collect()), look_up_or_die_once, items)
    })
    .unwrap();
    std::fs::remove_dir(&mark).unwrap();
    let mut pids: Vec<u32> = seen.iter().map(|(_, pid, _)| *pid).collect();
    pids.dedup();
    assert!(pids.len() >= 2, "the worker was not replaced: {pids:?}");
    for (at, (value, pid, decodes)) in seen.into_iter().enumerate() {
        assert_eq!(value, at as u64);
        // The replacement decoded the table itself, once.
        assert_eq!(decodes, 1, "item {at} on worker {pid}");
    }
}

#[test]
fn map_with_of_an_unserializable_value_fails_every_item_clearly() {
    struct Refuses;
    impl Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("this value stays here"))
        }
    }
    impl<'de> Deserialize<'de> for Refuses {
        fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
            Ok(Refuses)
        }
    }
    let pool = pool(1, 4);
    let err = pool
        .map_with(Refuses, |_: &Refuses, x: u64| x, 0..10)
        .unwrap_err();
    assert_eq!(err.index(), 0);
    let ErrorKind::Transport(why) = err.kind() else {
        panic!("{err}");
    };
    assert!(
        why.contains("the shared value could not be serialized"),
        "{why}"
    );
}
