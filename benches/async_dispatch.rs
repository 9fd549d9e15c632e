//! What one task costs `AsyncMultiPool` to hand out and answer, beside tokio and futures
//! on the same work, in the same run (issue 9 point 7):
//!
//! - `sleeps_100000x10ms`: 100,000 tasks that each sleep 10 ms, all allowed in flight at
//!   once (the pool with `concurrency` 100,000; tokio's `JoinSet` alone, and with a
//!   `Semaphore` of 100,000 permits; futures' `buffer_unordered(100_000)`). Goal: the pool
//!   ≤ 1.2 × `JoinSet`.
//! - `trivial_1000000`: 1,000,000 tasks that return their input. Goal: the pool
//!   ≤ 2 × `JoinSet`.
//!
//! For both, `nodes = 2` must not be slower than `nodes = 1`. The callers await on a
//! tokio multi-thread runtime at its defaults. The machine is what it is: compare the
//! ratios of one run, printed at the end.
//!
//! Run with `cargo bench --bench async_dispatch --features aio` (add `-- --sample-size 10`
//! for a shorter run).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

mod report;

use criterion::{Criterion, criterion_group};
use futures_util::StreamExt;
use report::mean_ns;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use twat_mp::AsyncMultiPool;

const SLEEPS: u64 = 100_000;
const NAP: Duration = Duration::from_millis(10);
const TRIVIAL: u64 = 1_000_000;

fn pool(nodes: usize, concurrency: usize) -> AsyncMultiPool {
    AsyncMultiPool::builder()
        .nodes(nodes)
        .concurrency(concurrency)
        .build()
        .unwrap()
}

/// The contenders of one group: `task(i)` is the work of item `i`, `limit` the tasks
/// allowed in flight.
fn contenders<Fut>(c: &mut Criterion, group: &str, items: u64, limit: usize, task: fn(u64) -> Fut)
where
    Fut: std::future::Future<Output = u64> + Send + 'static,
{
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group(group);
    group.sample_size(10);
    group.bench_function("tokio_joinset", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut set = JoinSet::new();
                for i in 0..items {
                    set.spawn(task(i));
                }
                let mut sum = 0_u64;
                while let Some(i) = set.join_next().await {
                    sum += i.unwrap();
                }
                black_box(sum)
            })
        })
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
    group.finish();
}

async fn nap(i: u64) -> u64 {
    tokio::time::sleep(NAP).await;
    i
}

async fn trivial(i: u64) -> u64 {
    i
}

fn sleeps_100000x10ms(c: &mut Criterion) {
    contenders(c, "sleeps_100000x10ms", SLEEPS, SLEEPS as usize, nap);
}

fn trivial_1000000(c: &mut Criterion) {
    contenders(c, "trivial_1000000", TRIVIAL, 100_000, trivial);
}

criterion_group!(benches, sleeps_100000x10ms, trivial_1000000);

fn report_ratios() {
    for (group, goal) in [
        ("sleeps_100000x10ms", "goal <= 1.2"),
        ("trivial_1000000", "goal <= 2.0"),
    ] {
        println!("\n{group}: mean time, and ratio to tokio_joinset");
        let Some(peer) = mean_ns(group, "tokio_joinset") else {
            println!("  tokio_joinset was not run");
            continue;
        };
        for name in [
            "tokio_joinset",
            "tokio_joinset_semaphore",
            "futures_buffer_unordered",
            "pool_map_nodes_1",
            "pool_map_nodes_2",
        ] {
            match mean_ns(group, name) {
                Some(mean) => println!(
                    "  {name:<26} {:>9.1} ms  ratio {:.2}{}",
                    mean / 1e6,
                    mean / peer,
                    if name.starts_with("pool") {
                        format!(" ({goal})")
                    } else {
                        String::new()
                    }
                ),
                None => println!("  {name} was not run"),
            }
        }
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report_ratios();
}
