//! `#[apmap]` and `AsyncMultiPool` against their peer, in the same run:
//!
//! - `sleeps_1000x10ms`: 1,000 tasks that each sleep 10 ms (here the sleep *is* the
//!   workload: it measures how close the pool gets to running every task at once).
//!   `apmap_default` (`#[apmap]` at default settings; goal ≤ 30 ms, the limit being one
//!   sleep, 10 ms) and `pool_map_default` (`AsyncMultiPool::new().map`) against
//!   `tokio_joinset`, plain tokio spawning the 1,000 sleeps into a `JoinSet`.
//! - Python twat-mp's `AsyncMultiPool` on the same workload, when `python3` can import
//!   `twat_mp` (`pip install 'twat-mp[aio]'`): `benches/python/async_pool.py`, run once
//!   after the criterion groups; `TWAT_MP_PYTHON` names another interpreter.
//!
//! Run with `cargo bench --bench async_pool --features aio`; the ratios are printed at the
//! end.

use std::hint::black_box;
use std::time::Duration;

mod report;

use criterion::{Criterion, criterion_group};
use report::mean_ns;
use tokio::task::JoinSet;
use twat_mp::{AsyncMultiPool, apmap};

const TASKS: u32 = 1_000;
const NAP: Duration = Duration::from_millis(10);

#[apmap]
async fn nap(i: u32) -> u32 {
    tokio::time::sleep(NAP).await;
    i
}

fn sleeps_1000x10ms(c: &mut Criterion) {
    // The caller's runtime, at tokio's defaults, for every contender.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pool = AsyncMultiPool::new().unwrap();
    let mut group = c.benchmark_group("sleeps_1000x10ms");
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("tokio_joinset", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut set = JoinSet::new();
                for i in 0..TASKS {
                    set.spawn(async move {
                        tokio::time::sleep(NAP).await;
                        i
                    });
                }
                let mut sum = 0_u64;
                while let Some(i) = set.join_next().await {
                    sum += u64::from(i.unwrap());
                }
                black_box(sum)
            })
        })
    });
    group.bench_function("apmap_default", |b| {
        b.iter(|| black_box(runtime.block_on(nap(0..TASKS))))
    });
    group.bench_function("pool_map_default", |b| {
        b.iter(|| {
            let naps = pool.map(
                |i: u32| async move {
                    tokio::time::sleep(NAP).await;
                    i
                },
                0..TASKS,
            );
            black_box(runtime.block_on(naps).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, sleeps_1000x10ms);

fn report_ratios() {
    let group = "sleeps_1000x10ms";
    println!("\n{group}: mean time of 1,000 tasks sleeping 10 ms each");
    let peer = mean_ns(group, "tokio_joinset");
    for (ours, goal) in [
        ("apmap_default", "goal <= 30 ms"),
        ("pool_map_default", "informative"),
    ] {
        match (mean_ns(group, ours), peer) {
            (Some(a), Some(b)) => println!(
                "  {ours}: {:.2} ms ({goal}); tokio_joinset: {:.2} ms; ratio {:.2}",
                a / 1e6,
                b / 1e6,
                a / b
            ),
            _ => println!("  {ours} or tokio_joinset was not run"),
        }
    }
    let python = report::run_python("async_pool.py")
        .map(|out| out.lines().last().unwrap_or_default().to_owned());
    println!(
        "  python twat-mp AsyncMultiPool: {}",
        python.unwrap_or_else(|why| why)
    );
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report_ratios();
}
