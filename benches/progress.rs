//! What a progress bar costs, in the same run:
//!
//! - `map_2m_trivial`: `ThreadPool::map` of 2,000,000 trivial items with `.progress(true)`
//!   against the same map without (goal: at most 1.05×), owned (`Vec<u64>` moved in) and
//!   borrowed (`&[u64]`);
//! - `imap_200k_trivial`: the same for `imap` (chunks of 256), whose results are counted one
//!   by one as they are handed over (informative).
//!
//! Each measured run makes 16 calls (≥ 100 ms of work on 2 cores), so that what a call
//! pays once (its bar, a line of the program's `MultiProgress`) counts as it would. Run
//! with `cargo bench --bench progress`; when stderr is a terminal the bars are drawn
//! (at most 15 times a second), else they are hidden; the ratios are printed at the end.

use std::hint::black_box;

mod report;

use criterion::{BatchSize, Criterion, criterion_group};
use twat_mp::ThreadPool;

const ITEMS: u64 = 2_000_000;
const LAZY_ITEMS: u64 = 200_000;
/// Calls per measured run.
const CALLS: usize = 16;

fn trivial(x: u64) -> u64 {
    x.wrapping_mul(3) ^ 0x5555
}

fn pools() -> [(&'static str, ThreadPool); 2] {
    [
        ("without_progress", ThreadPool::builder().build().unwrap()),
        (
            "with_progress",
            ThreadPool::builder().progress(true).build().unwrap(),
        ),
    ]
}

fn map_2m_trivial(c: &mut Criterion) {
    let data: Vec<u64> = (0..ITEMS).collect();
    let mut group = c.benchmark_group("map_2m_trivial");
    group.sample_size(20);
    for (name, pool) in pools() {
        group.bench_function(format!("owned_{name}"), |b| {
            b.iter_batched(
                || vec![data.clone(); CALLS],
                |inputs| {
                    for items in inputs {
                        black_box(pool.map(trivial, items).unwrap());
                    }
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function(format!("borrowed_{name}"), |b| {
            b.iter(|| {
                for _ in 0..CALLS {
                    black_box(pool.map(|x: &u64| trivial(*x), &data).unwrap());
                }
            })
        });
    }
    group.finish();
}

fn imap_200k_trivial(c: &mut Criterion) {
    let mut group = c.benchmark_group("imap_200k_trivial");
    group.sample_size(10);
    for (name, _) in pools() {
        let pool = ThreadPool::builder()
            .chunksize(256)
            .progress(name == "with_progress")
            .build()
            .unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..CALLS {
                    let sum: u64 = pool
                        .imap(trivial, 0..LAZY_ITEMS)
                        .map(Result::unwrap)
                        .fold(0, u64::wrapping_add);
                    black_box(sum);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, map_2m_trivial, imap_200k_trivial);

fn report_ratios() {
    println!("\nratios (mean time; with progress / without):");
    for (group, ours, peer, goal) in [
        (
            "map_2m_trivial",
            "owned_with_progress",
            "owned_without_progress",
            "<= 1.05",
        ),
        (
            "map_2m_trivial",
            "borrowed_with_progress",
            "borrowed_without_progress",
            "<= 1.05",
        ),
        (
            "imap_200k_trivial",
            "with_progress",
            "without_progress",
            "(informative)",
        ),
    ] {
        report::print_ratio(group, ours, peer, goal, &format!(" per {CALLS} calls"));
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report_ratios();
}
