//! Per-session state (`map_init`, `imap_init`, `uimap_init`) and shared data (`map_with`)
//! on `AsyncProcessPool`, through the public API, on both tokio runtime flavours.
#![cfg(all(feature = "aio", target_os = "linux"))]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use twat_mp::{AsyncMultiPool, AsyncProcessPool, ErrorKind};

on_both_flavours!(
    init_runs_once_per_worker_per_call,
    a_second_call_inits_again,
    a_recycled_or_crashed_worker_inits_again,
    a_panicking_init_fails_the_items_clearly,
    imap_init_takes_from_an_endless_input,
    uimap_init_yields_every_item,
    map_with_sends_the_shared_value_once_per_worker,
);

const LIMIT: Duration = Duration::from_secs(60);

fn pool() -> AsyncProcessPool {
    AsyncMultiPool::builder()
        .nodes(2)
        .concurrency(8)
        .processes()
        .build()
        .unwrap()
}

async fn within<T>(what: &str, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, work)
        .await
        .unwrap_or_else(|_| panic!("hang: {what} did not finish within {LIMIT:?}"))
}

/// `init`s run in each worker process (the static lives in the worker).
static INITS: AtomicU64 = AtomicU64::new(0);

/// A worker's state for one call: which process made it and its how-manieth `init` there.
fn made_here() -> (u32, u64) {
    (std::process::id(), INITS.fetch_add(1, Ordering::SeqCst) + 1)
}

/// A named function returns a future that does not borrow the state: `+ use<>` says so
/// (an `impl Trait` return type would otherwise capture the state's lifetime).
fn report(state: &mut (u32, u64), item: u64) -> impl Future<Output = (u32, u64, u64)> + use<> {
    let (pid, nth) = *state;
    async move {
        tokio::task::yield_now().await;
        (pid, nth, item)
    }
}

/// Per worker process, the `init`s its items saw.
fn inits_by_worker(seen: &[(u32, u64, u64)]) -> BTreeMap<u32, Vec<u64>> {
    let mut workers = BTreeMap::<u32, Vec<u64>>::new();
    for (pid, nth, _) in seen {
        workers.entry(*pid).or_default().push(*nth);
    }
    for nths in workers.values_mut() {
        nths.sort_unstable();
        nths.dedup();
    }
    workers
}

async fn init_runs_once_per_worker_per_call() {
    let pool = pool();
    let seen = pool.map_init(made_here, report, 0..200).await.unwrap();
    let items: Vec<u64> = seen.iter().map(|(_, _, item)| *item).collect();
    assert_eq!(items, (0..200).collect::<Vec<_>>());
    let workers = inits_by_worker(&seen);
    assert!(workers.len() <= 2, "{workers:?}");
    for (pid, nths) in workers {
        assert_eq!(nths, [1], "worker {pid} made its state more than once");
        assert_ne!(pid, std::process::id());
    }
}

async fn a_second_call_inits_again() {
    let pool = pool();
    let first = inits_by_worker(&pool.map_init(made_here, report, 0..50).await.unwrap());
    let second = inits_by_worker(&pool.map_init(made_here, report, 0..50).await.unwrap());
    for (pid, nths) in second {
        assert_eq!(nths.len(), 1, "worker {pid}: {nths:?}");
        if let Some(before) = first.get(&pid) {
            assert!(
                nths[0] > before[0],
                "worker {pid} reused the first call's state"
            );
        }
    }
}

fn report_or_abort(
    state: &mut (u32, u64),
    item: u64,
) -> impl Future<Output = (u32, u64, u64)> + use<> {
    let (pid, nth) = *state;
    async move {
        if item == 30 {
            std::process::abort();
        }
        (pid, nth, item)
    }
}

async fn a_recycled_or_crashed_worker_inits_again() {
    // Recycled after 10 tasks: every worker of the call is a fresh process that made
    // its own state, once.
    let pool = AsyncMultiPool::builder()
        .nodes(2)
        .concurrency(4)
        .processes()
        .maxtasksperchild(10)
        .build()
        .unwrap();
    let seen = within(
        "map_init with maxtasksperchild",
        pool.map_init(made_here, report, 0..100),
    )
    .await
    .unwrap();
    let workers = inits_by_worker(&seen);
    assert!(
        workers.len() >= 10,
        "{} workers for 100 tasks",
        workers.len()
    );
    assert!(workers.values().all(|nths| nths == &[1]), "{workers:?}");

    // A worker that dies costs its item; the one that replaces it makes its own state.
    // One node, so that the items after the crash can only run on the replacement (with
    // two, the other worker may take them all).
    let pool = AsyncMultiPool::builder()
        .nodes(1)
        .concurrency(8)
        .processes()
        .build()
        .unwrap();
    let outcomes: Vec<_> = within("imap_init over a crash", async {
        let mut stream = pool.imap_init(made_here, report_or_abort, 0..100);
        let mut outcomes = Vec::new();
        while let Some(outcome) = stream.next().await {
            outcomes.push(outcome);
        }
        outcomes
    })
    .await;
    assert_eq!(outcomes.len(), 100);
    let mut seen = Vec::new();
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(s) => seen.push(s),
            Err(err) => {
                assert_eq!(index, 30, "{err}");
                assert!(matches!(err.kind(), ErrorKind::Crashed { .. }), "{err}");
            }
        }
    }
    let workers = inits_by_worker(&seen);
    assert!(
        workers.len() >= 2,
        "the crashed worker was not replaced: {workers:?}"
    );
    assert!(workers.values().all(|nths| nths.len() == 1), "{workers:?}");
}

fn no_client() -> String {
    panic!("no client today");
}

async fn a_panicking_init_fails_the_items_clearly() {
    let pool = pool();
    let echo = |_: &mut String, x: u64| async move { x };
    let err = within(
        "map_init with a panicking init",
        pool.map_init(no_client, echo, 0..10),
    )
    .await
    .unwrap_err();
    assert_eq!(err.index(), 0);
    assert!(
        matches!(err.kind(), ErrorKind::InitPanicked { message } if message == "no client today"),
        "{err}"
    );
    // The pool goes on.
    let ok = pool.map(|x: u64| async move { x * 2 }, 0..3).await.unwrap();
    assert_eq!(ok, [0, 2, 4]);
}

async fn imap_init_takes_from_an_endless_input() {
    let pool = pool();
    let first = within("imap_init over 0..", async {
        let mut stream = pool.imap_init(made_here, report, 0..);
        let mut first = Vec::new();
        while first.len() < 40 {
            first.push(stream.next().await.unwrap().unwrap().2);
        }
        first
    })
    .await;
    assert_eq!(first, (0..40).collect::<Vec<_>>());
}

async fn uimap_init_yields_every_item() {
    let pool = pool();
    let mut stream = pool.uimap_init(made_here, report, 0..60);
    let mut seen = Vec::new();
    while let Some(outcome) = stream.next().await {
        seen.push(outcome.unwrap());
    }
    let mut items: Vec<u64> = seen.iter().map(|(_, _, item)| *item).collect();
    items.sort_unstable();
    assert_eq!(items, (0..60).collect::<Vec<_>>());
    assert!(inits_by_worker(&seen).values().all(|nths| nths.len() == 1));
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

fn look_up(table: &Table, at: usize) -> impl Future<Output = (u64, u32, u64)> + use<> {
    let value = table.0[at];
    async move {
        tokio::task::yield_now().await;
        (value, std::process::id(), DECODES.load(Ordering::SeqCst))
    }
}

async fn map_with_sends_the_shared_value_once_per_worker() {
    let pool = pool();
    let table = Table((0..500).map(|x| x * 3).collect());
    let seen = pool.map_with(table, look_up, 0..500).await.unwrap();
    for (at, (value, pid, decodes)) in seen.iter().enumerate() {
        assert_eq!(*value, at as u64 * 3);
        assert_eq!(*decodes, 1, "worker {pid} decoded the table more than once");
    }
}
