//! What `.insights(true)` costs, against the same pool without it, in the same run:
//!
//! - `insights_thread_map`: `ThreadPool::map` of 2,000,000 trivial items (the worst case:
//!   one clock read per item next to a multiplication);
//! - `insights_process_map`: `ProcessPool::map` of 1,000,000 trivial items (each worker
//!   reads the clock per item and sends 8 more bytes per result);
//! - `insights_async_map`: `AsyncMultiPool::map` of 100,000 trivial tasks.
//!
//! Run with `cargo bench --bench insights`; the ratios are printed at the end.

use std::hint::black_box;

mod report;

use criterion::{Criterion, criterion_group};
use twat_mp::{AsyncMultiPool, ProcessPool, ThreadPool};

fn trivial(x: u64) -> u64 {
    x.wrapping_mul(3) ^ 0x5555
}

async fn trivial_task(x: u64) -> u64 {
    trivial(x)
}

fn thread_map(c: &mut Criterion) {
    let mut group = c.benchmark_group("insights_thread_map");
    group.sample_size(30);
    for (name, insights) in [("off", false), ("on", true)] {
        let pool = ThreadPool::builder().insights(insights).build().unwrap();
        group.bench_function(name, |b| {
            b.iter(|| black_box(pool.map(trivial, 0..2_000_000_u64).unwrap()))
        });
    }
    group.finish();
}

fn process_map(c: &mut Criterion) {
    let mut group = c.benchmark_group("insights_process_map");
    group.sample_size(20);
    for (name, insights) in [("off", false), ("on", true)] {
        let pool = ProcessPool::builder().insights(insights).build().unwrap();
        pool.map(trivial, 0..1_000_u64).unwrap(); // the workers start
        group.bench_function(name, |b| {
            b.iter(|| black_box(pool.map(trivial, 0..1_000_000_u64).unwrap()))
        });
    }
    group.finish();
}

fn async_map(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("insights_async_map");
    group.sample_size(20);
    for (name, insights) in [("off", false), ("on", true)] {
        let pool = AsyncMultiPool::builder()
            .insights(insights)
            .build()
            .unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    runtime
                        .block_on(pool.map(trivial_task, 0..100_000_u64))
                        .unwrap(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, thread_map, process_map, async_map);

fn report_ratios() {
    println!("\n.insights(true) against the same pool without it:");
    for group in [
        "insights_thread_map",
        "insights_process_map",
        "insights_async_map",
    ] {
        match (report::mean_ns(group, "off"), report::mean_ns(group, "on")) {
            (Some(off), Some(on)) => println!(
                "  {group}: {:.2} ms vs {:.2} ms: {:.2}x",
                on / 1e6,
                off / 1e6,
                on / off
            ),
            _ => println!("  {group}: not measured"),
        }
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report_ratios();
}
