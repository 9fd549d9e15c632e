//! `pool.insights()` on every pool: counts per worker that add up to the items, the
//! slowest items being the ones made slow (real work of different sizes, not `sleep`),
//! start-up times and restarts of worker processes, `reset_insights()`, and the table
//! `Display` prints.

use crate::support;

use std::time::Duration;

use twat_mp::{Insights, ProcessPool, ThreadPool};

const LIMIT: Duration = Duration::from_secs(120);

/// Work that takes time in proportion to `n`, and that the optimizer cannot skip.
fn spin(n: u64) -> u64 {
    let mut acc = 0_u64;
    for x in 0..n {
        acc = std::hint::black_box(acc ^ x.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
    acc
}

/// Items of trivial work, but for a few, much larger, at `slow`.
fn work_with_slow_items(len: u64, slow: &[u64]) -> Vec<u64> {
    (0..len)
        .map(|i| if slow.contains(&i) { 30_000_000 } else { 100 })
        .collect()
}

/// What every snapshot must hold: the workers' counts add up, and the totals agree.
fn check_totals(insights: &Insights, nodes: usize, items: u64) {
    assert_eq!(insights.workers().len(), nodes, "{insights}");
    assert_eq!(insights.items(), items, "{insights}");
    let sum: u64 = insights.workers().iter().map(|w| w.items()).sum();
    assert_eq!(sum, items);
    for (at, worker) in insights.workers().iter().enumerate() {
        assert_eq!(worker.worker(), at);
        assert!(worker.busy() + worker.idle() <= insights.wall() + Duration::from_millis(5));
    }
    assert!((0.0..=1.0).contains(&insights.utilization()));
}

/// The indices of the slowest items kept, slowest first.
fn slowest_indices(insights: &Insights) -> Vec<usize> {
    insights.slowest().iter().map(|s| s.index()).collect()
}

/// `Display`: a header line, a table whose lines all have the same width (right-aligned
/// columns), one row per worker and a total, then the slowest items.
fn check_table(insights: &Insights, process: bool) {
    let text = insights.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("twat-mp insights: "), "{text}");
    let nodes = insights.workers().len();
    let table = &lines[1..nodes + 3];
    let header: Vec<&str> = table[0].split_whitespace().collect();
    if process {
        assert_eq!(
            header,
            ["worker", "items", "busy", "idle", "start-up", "restarts"]
        );
    } else {
        assert_eq!(header, ["worker", "items", "busy", "idle"]);
    }
    let width = table[0].chars().count();
    for line in table {
        assert_eq!(line.chars().count(), width, "aligned:\n{text}");
    }
    assert!(table[nodes + 1].trim_start().starts_with("all"), "{text}");
    if !insights.slowest().is_empty() {
        assert_eq!(lines[nodes + 3], "slowest items:", "{text}");
        let header: Vec<&str> = lines[nodes + 4].split_whitespace().collect();
        assert_eq!(header, ["call", "index", "worker", "duration"]);
        assert_eq!(lines.len(), nodes + 5 + insights.slowest().len(), "{text}");
    }
}

#[test]
fn thread_pool_counts_every_item_and_finds_the_slow_ones() {
    let pool = ThreadPool::builder()
        .nodes(2)
        .insights(true)
        .build()
        .unwrap();
    let items = work_with_slow_items(2_000, &[17, 1_234]);
    let out = pool.map(spin, items.clone()).unwrap();
    assert_eq!(out[17], spin(30_000_000));
    let insights = pool.insights().unwrap();
    check_totals(&insights, 2, 2_000);
    assert_eq!(insights.calls(), 1);
    let slowest = slowest_indices(&insights);
    assert_eq!(slowest.len(), Insights::SLOWEST);
    let mut top_two = slowest[..2].to_vec();
    top_two.sort_unstable();
    assert_eq!(top_two, [17, 1_234], "{insights}");
    assert!(insights.slowest().iter().all(|s| s.call() == 1));
    assert!(insights.workers().iter().all(|w| w.startup().is_none()));
    check_table(&insights, false);

    // The lazy maps and `apply` count too, as later calls.
    let lazy: Vec<u64> = pool
        .imap(spin, work_with_slow_items(50, &[40]))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(lazy.len(), 50);
    pool.apply(spin, 10).unwrap();
    let insights = pool.insights().unwrap();
    check_totals(&insights, 2, 2_051);
    assert_eq!(insights.calls(), 3);
    let third: Vec<(u64, usize)> = insights.slowest()[..3]
        .iter()
        .map(|s| (s.call(), s.index()))
        .collect();
    assert!(third.contains(&(2, 40)), "{insights}");
}

#[test]
fn thread_pool_counts_items_of_a_failed_map_and_amap() {
    let pool = ThreadPool::builder()
        .nodes(2)
        .insights(true)
        .build()
        .unwrap();
    // Every item below the failure runs and counts; those after it may be skipped (and
    // in `map` the item whose failure ends its thread's share is not counted).
    let err = pool
        .map(|x: u64| assert!(x != 500, "five hundred"), 0..1_000)
        .unwrap_err();
    assert_eq!(err.index(), 500);
    let ran = pool.insights().unwrap().items();
    assert!((500..1_000).contains(&ran), "{ran}");
    pool.reset_insights();
    pool.amap(spin, vec![10; 100]).get().unwrap();
    check_totals(&pool.insights().unwrap(), 2, 100);
}

#[test]
fn reset_starts_afresh_and_keeps_call_numbers() {
    let pool = ThreadPool::builder()
        .nodes(2)
        .insights(true)
        .build()
        .unwrap();
    pool.map(spin, [10, 20, 30]).unwrap();
    pool.reset_insights();
    let fresh = pool.insights().unwrap();
    check_totals(&fresh, 2, 0);
    assert_eq!(fresh.calls(), 0);
    assert!(fresh.slowest().is_empty());
    assert!(fresh.wall() < Duration::from_secs(5));
    check_table(&fresh, false);
    pool.map(spin, [10]).unwrap();
    let after = pool.insights().unwrap();
    check_totals(&after, 2, 1);
    assert_eq!(after.slowest()[0].call(), 2);
}

#[test]
fn without_insights_there_are_none() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    pool.map(spin, [1, 2, 3]).unwrap();
    assert!(pool.insights().is_none());
    pool.reset_insights(); // does nothing
    let pool = ProcessPool::with_nodes(1).unwrap();
    assert!(pool.insights().is_none());
}

fn aborts_at_3(x: u64) -> u64 {
    if x == 3 {
        std::process::abort();
    }
    spin(x)
}

#[test]
fn process_pool_times_items_in_the_worker_and_counts_start_ups() {
    let insights = support::within(LIMIT, "a timed process map", || {
        let pool = ProcessPool::builder()
            .nodes(2)
            .insights(true)
            .build()
            .unwrap();
        let items = work_with_slow_items(3_000, &[7, 2_500]);
        let out = pool.map(spin, items).unwrap();
        assert_eq!(out[7], spin(30_000_000));
        pool.insights().unwrap()
    });
    check_totals(&insights, 2, 3_000);
    let slowest = slowest_indices(&insights);
    let mut top_two = slowest[..2].to_vec();
    top_two.sort_unstable();
    assert_eq!(top_two, [7, 2_500], "{insights}");
    // Both slots started a worker process (each of the slow items needs one), once.
    let started = insights
        .workers()
        .iter()
        .filter(|w| w.startup().is_some_and(|t| !t.is_zero()))
        .count();
    assert!(started >= 1, "{insights}");
    assert!(
        insights.workers().iter().all(|w| w.restarts() == Some(0)),
        "{insights}"
    );
    check_table(&insights, true);
}

#[test]
fn process_pool_counts_a_restart_after_a_crash() {
    let (before, after) = support::within(LIMIT, "a crash in a timed process map", || {
        // With a timeout each item is sent back at once, so the pool knows which item
        // killed its worker without running it again: one crash, one restart. (Without,
        // the item that crashed a batch runs once more on a fresh worker to be found, and
        // that is a second restart.)
        let pool = ProcessPool::builder()
            .nodes(1)
            .timeout(Duration::from_secs(60))
            .insights(true)
            .build()
            .unwrap();
        pool.map(spin, [1, 2]).unwrap();
        let before = pool.insights().unwrap();
        // A lazy map goes on past the crash, so that every other item runs.
        let outcomes: Vec<_> = pool.imap(aborts_at_3, vec![1, 2, 3, 4, 5]).collect();
        let failed: Vec<usize> = outcomes
            .iter()
            .filter_map(|outcome| outcome.as_ref().err().map(|err| err.index()))
            .collect();
        assert_eq!(failed, [2]);
        pool.map(spin, [1]).unwrap();
        (before, pool.insights().unwrap())
    });
    assert_eq!(before.workers()[0].restarts(), Some(0));
    assert_eq!(after.workers()[0].restarts(), Some(1), "{after}");
    // The crashed item is not counted; every other item is.
    check_totals(&after, 1, 2 + 4 + 1);
    assert_eq!(after.calls(), 3);
    check_table(&after, true);
}

#[test]
fn process_pool_reset_and_lazy_maps() {
    let insights = support::within(LIMIT, "a lazy timed process map", || {
        let pool = ProcessPool::builder()
            .nodes(2)
            .insights(true)
            .build()
            .unwrap();
        pool.map(spin, [1, 2, 3]).unwrap();
        pool.reset_insights();
        let fresh = pool.insights().unwrap();
        check_totals(&fresh, 2, 0);
        assert!(
            fresh
                .workers()
                .iter()
                .all(|w| w.startup() == Some(Duration::ZERO))
        );
        let lazy: Vec<u64> = pool
            .imap(spin, work_with_slow_items(40, &[33]))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(lazy.len(), 40);
        assert_eq!(pool.apply(spin, 5).unwrap(), spin(5));
        pool.insights().unwrap()
    });
    check_totals(&insights, 2, 41);
    assert_eq!(insights.calls(), 2);
    assert_eq!(
        (insights.slowest()[0].call(), insights.slowest()[0].index()),
        (2, 33),
        "{insights}"
    );
}

#[cfg(all(feature = "aio", target_os = "linux"))]
mod aio {
    use std::time::Duration;

    use twat_mp::AsyncMultiPool;

    use super::{check_table, check_totals, spin, work_with_slow_items};

    /// A task of real work, done on its worker's thread.
    async fn spin_task(n: u64) -> u64 {
        spin(n)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_pool_counts_tasks_and_finds_the_slow_ones() {
        let pool = AsyncMultiPool::builder()
            .nodes(2)
            .concurrency(4)
            .insights(true)
            .build()
            .unwrap();
        let items = work_with_slow_items(300, &[3, 250]);
        let out = pool.map(spin_task, items).await.unwrap();
        assert_eq!(out[3], spin(30_000_000));
        pool.apply(spin_task, 10).await.unwrap();
        let insights = pool.insights().unwrap();
        check_totals(&insights, 2, 301);
        assert_eq!(insights.calls(), 2);
        let mut top_two: Vec<usize> = insights.slowest()[..2].iter().map(|s| s.index()).collect();
        top_two.sort_unstable();
        assert_eq!(top_two, [3, 250], "{insights}");
        assert!(insights.workers().iter().all(|w| w.restarts().is_none()));
        check_table(&insights, false);
        pool.reset_insights();
        let fresh = pool.insights().unwrap();
        check_totals(&fresh, 2, 0);
        assert!(fresh.slowest().is_empty());
    }

    /// About wall-clock accounting, so it sleeps: ten tasks that wait 100 ms at once on
    /// one worker keep it busy for about 100 ms, not a second.
    #[tokio::test(flavor = "current_thread")]
    async fn async_busy_time_counts_overlapping_tasks_once() {
        let pool = AsyncMultiPool::builder()
            .nodes(1)
            .concurrency(10)
            .insights(true)
            .build()
            .unwrap();
        let wait = |_: u32| async { tokio::time::sleep(Duration::from_millis(100)).await };
        pool.map(wait, 0..10).await.unwrap();
        let insights = pool.insights().unwrap();
        check_totals(&insights, 1, 10);
        let busy = insights.workers()[0].busy();
        assert!(busy >= Duration::from_millis(100), "{insights}");
        assert!(busy < Duration::from_millis(500), "{insights}");
        assert!(
            insights
                .slowest()
                .iter()
                .all(|s| s.duration() >= Duration::from_millis(100))
        );
    }

    async fn spin_in_process(n: u64) -> u64 {
        spin(n)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_process_pool_times_tasks_in_the_workers() {
        let pool = AsyncMultiPool::builder()
            .nodes(2)
            .concurrency(2)
            .processes()
            .insights(true)
            .build()
            .unwrap();
        let items = work_with_slow_items(60, &[11, 42]);
        let out = pool.map(spin_in_process, items).await.unwrap();
        assert_eq!(out[42], spin(30_000_000));
        let insights = pool.insights().unwrap();
        check_totals(&insights, 2, 60);
        let mut top_two: Vec<usize> = insights.slowest()[..2].iter().map(|s| s.index()).collect();
        top_two.sort_unstable();
        assert_eq!(top_two, [11, 42], "{insights}");
        assert!(
            insights
                .workers()
                .iter()
                .any(|w| w.startup().is_some_and(|t| !t.is_zero())),
            "{insights}"
        );
        check_table(&insights, true);
    }

    async fn pid_of(_: u64) -> u32 {
        std::process::id()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_process_pool_counts_restarts_after_maxtasksperchild() {
        let build = |max: Option<usize>| {
            let builder = AsyncMultiPool::builder()
                .nodes(1)
                .concurrency(1)
                .processes()
                .insights(true);
            match max {
                Some(max) => builder.maxtasksperchild(max),
                None => builder,
            }
            .build()
            .unwrap()
        };
        let (recycled, kept) = (build(Some(3)), build(None));
        let mut pids = Vec::new();
        for _ in 0..3 {
            pids.extend(recycled.map(pid_of, [1_u64, 2, 3]).await.unwrap());
            kept.map(pid_of, [1_u64, 2, 3]).await.unwrap();
        }
        pids.dedup();
        // Nine tasks, three per process: at least three processes, each after the first
        // one a restart (a process retired at its limit is replaced when the next call
        // wants a worker, which may start one more).
        assert_eq!(pids.len(), 3, "{pids:?}");
        let insights = recycled.insights().unwrap();
        check_totals(&insights, 1, 9);
        let restarts = insights.workers()[0].restarts().unwrap();
        assert!((2..=3).contains(&restarts), "{insights}");
        assert_eq!(insights.calls(), 3);
        let insights = kept.insights().unwrap();
        assert_eq!(insights.workers()[0].restarts(), Some(0), "{insights}");
    }
}
