//! What one task costs `AsyncMultiPool` to hand out and answer, beside tokio and futures
//! on the same work, in the same run (issue 9 point 7):
//!
//! - `sleeps_100000x10ms`: 100,000 tasks that each sleep 10 ms, all allowed in flight at
//!   once (the pool with `concurrency` 100,000; tokio's `JoinSet` alone, and with a
//!   `Semaphore` of 100,000 permits; futures' `buffer_unordered(100_000)`), and `#[apmap]`
//!   at its defaults (512 tasks in flight per worker) and with `concurrency = 50000` (per
//!   worker: 100,000 in flight on 2 nodes). Goal: `#[apmap]` and the pool ≤ 1.2 × `JoinSet`,
//!   with every task allowed in flight as `JoinSet` has them; its figure is the median
//!   ratio of `apmap_concurrency_50000_in_turn`, which times the attribute and `JoinSet`
//!   in turn, runs of two calls each (`report::in_turn_runs`), so that both see the same
//!   load.
//! - `trivial_1000000`: 1,000,000 tasks that return their input. Goal: the pool
//!   ≤ 2 × `JoinSet`.
//!
//! For both, `nodes = 2` must not be slower than `nodes = 1`. The callers await on a
//! tokio multi-thread runtime at its defaults. The machine is what it is: compare the
//! ratios of one run, printed at the end (each contender's time and tasks/s, and its ratio
//! to each peer).
//!
//! Run with `cargo bench --bench async_dispatch --features aio` (add `-- --sample-size 10`
//! for a shorter run).

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod report;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group};
use futures_util::StreamExt;
use report::{Paired, Work, goal, in_turn_runs, mean_ns, report_group};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use twat_mp::{AsyncMultiPool, apmap};

const SLEEPS: u64 = 100_000;
const NAP: Duration = Duration::from_millis(10);
const TRIVIAL: u64 = 1_000_000;

/// `#[apmap(concurrency = 50000)]` and `JoinSet` over the sleeps, timed in turn.
static SLEEPS_IN_TURN: Mutex<Paired> = Mutex::new(Paired::NONE);

fn pool(nodes: usize, concurrency: usize) -> AsyncMultiPool {
    AsyncMultiPool::builder()
        .nodes(nodes)
        .concurrency(concurrency)
        .build()
        .unwrap()
}

/// The peer of the goal: every task spawned on a `JoinSet`, their sum awaited.
fn joinset<Fut>(runtime: &tokio::runtime::Runtime, items: u64, task: fn(u64) -> Fut) -> u64
where
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    runtime.block_on(async {
        let mut set = JoinSet::new();
        for i in 0..items {
            set.spawn(task(i));
        }
        let mut sum = 0_u64;
        while let Some(i) = set.join_next().await {
            sum += i.unwrap();
        }
        sum
    })
}

/// The contenders of one group: `task(i)` is the work of item `i`, `limit` the tasks
/// allowed in flight. The group is left open for contenders of its own.
fn contenders<'c, Fut>(
    c: &'c mut Criterion,
    runtime: &tokio::runtime::Runtime,
    group: &str,
    items: u64,
    limit: usize,
    task: fn(u64) -> Fut,
) -> BenchmarkGroup<'c, WallTime>
where
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    let mut group = c.benchmark_group(group);
    group.sample_size(10);
    group.bench_function("tokio_joinset", |b| {
        b.iter(|| black_box(joinset(runtime, items, task)))
    });
    group.bench_function("tokio_joinset_semaphore", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let permits = Arc::new(Semaphore::new(limit));
                let mut set = JoinSet::new();
                for i in 0..items {
                    let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
                    set.spawn(async move {
                        let out = task(i).await;
                        drop(permit);
                        out
                    });
                }
                let mut sum = 0_u64;
                while let Some(i) = set.join_next().await {
                    sum += i.unwrap();
                }
                black_box(sum)
            })
        })
    });
    group.bench_function("futures_buffer_unordered", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let sum = futures_util::stream::iter((0..items).map(task))
                    .buffer_unordered(limit)
                    .fold(0_u64, |sum, i| async move { sum + i })
                    .await;
                black_box(sum)
            })
        })
    });
    for nodes in [1, 2] {
        let pool = pool(nodes, limit);
        group.bench_function(format!("pool_map_nodes_{nodes}"), |b| {
            b.iter(|| black_box(runtime.block_on(pool.map(task, 0..items)).unwrap()))
        });
    }
    group
}

async fn nap(i: u64) -> u64 {
    tokio::time::sleep(NAP).await;
    i
}

async fn trivial(i: u64) -> u64 {
    i
}

#[apmap]
async fn nap_apmap(i: u64) -> u64 {
    nap(i).await
}

#[apmap(concurrency = 50000)]
async fn nap_apmap_all_in_flight(i: u64) -> u64 {
    nap(i).await
}

fn sleeps_100000x10ms(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = contenders(
        c,
        &runtime,
        "sleeps_100000x10ms",
        SLEEPS,
        SLEEPS as usize,
        nap,
    );
    group.bench_function("apmap_default", |b| {
        b.iter(|| black_box(runtime.block_on(nap_apmap(0..SLEEPS))))
    });
    group.bench_function("apmap_concurrency_50000", |b| {
        b.iter(|| black_box(runtime.block_on(nap_apmap_all_in_flight(0..SLEEPS))))
    });
    // The goal's pair, run by run in turn (each turn 2 calls, ≥ 100 ms): one after the
    // other, criterion's figures of two contenders follow the machine's load of the moment.
    group.bench_function("apmap_concurrency_50000_in_turn", |b| {
        b.iter_custom(|iters| {
            in_turn_runs(
                &SLEEPS_IN_TURN,
                iters,
                2,
                || (),
                |()| runtime.block_on(nap_apmap_all_in_flight(0..SLEEPS)),
                |()| joinset(&runtime, SLEEPS, nap),
            )
        })
    });
    group.finish();
}

fn trivial_1000000(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    contenders(c, &runtime, "trivial_1000000", TRIVIAL, 100_000, trivial).finish();
}

criterion_group!(benches, sleeps_100000x10ms, trivial_1000000);

fn report_ratios() {
    let peers = [
        "tokio_joinset",
        "tokio_joinset_semaphore",
        "futures_buffer_unordered",
    ];
    report_group(
        "sleeps_100000x10ms",
        Work::Items(SLEEPS),
        &[
            "apmap_default",
            "apmap_concurrency_50000",
            "pool_map_nodes_1",
            "pool_map_nodes_2",
        ],
        &peers,
    );
    // The goal holds for every task allowed in flight, as JoinSet has them: the figure is
    // the median ratio of the pairs timed in turn. At its defaults the attribute runs 512
    // tasks at a time per worker (`DEFAULT_CONCURRENCY`, so that a map of sockets cannot
    // exhaust the open-file limit): the detail gives that figure too.
    let measured = SLEEPS_IN_TURN.lock().unwrap();
    if !measured.ours.is_empty() {
        let ours = "#[apmap(concurrency = 50000)]";
        let detail = measured.describe(ours, "JoinSet");
        println!("\nsleeps_100000x10ms, {detail}");
        let default = match (
            mean_ns("sleeps_100000x10ms", "apmap_default"),
            mean_ns("sleeps_100000x10ms", "tokio_joinset"),
        ) {
            (Some(ours), Some(peer)) => format!(
                "; at its defaults (512 in flight per worker) {:.0} ms, {:.2}x JoinSet's {:.0} ms",
                ours / 1e6,
                ours / peer,
                peer / 1e6
            ),
            _ => String::new(),
        };
        goal(
            "apmap_100k",
            measured.pair_ratio(),
            &format!("{detail}{default}"),
        );
    }
    report_group(
        "trivial_1000000",
        Work::Items(TRIVIAL),
        &["pool_map_nodes_1", "pool_map_nodes_2"],
        &peers,
    );
}

fn main() {
    report::begin();
    benches();
    Criterion::default().configure_from_args().final_summary();
    report_ratios();
}
