//! ThreadPool against its peers, in the same run:
//!
//! - `map_2m_trivial`: `ThreadPool::map` vs rayon's `par_iter().map().collect()` over
//!   2,000,000 trivial items (goal: at most 1.10× rayon). Both are given the items the
//!   same way: owned (`Vec<u64>` moved in, rayon's `into_par_iter`) and borrowed (`&[u64]`;
//!   `map` then first gathers the references, since it takes any iterable);
//! - `pmap_2m_trivial`: `#[pmap]` vs a direct `ThreadPool::map` (goal: at most 1.05×);
//! - `cpu_32x25ms`: 32 CPU-bound items of about 25 ms, `ThreadPool::map` vs serial (goal:
//!   at least 1.85× faster on 2 cores).
//!
//! Run with `cargo bench --bench thread_pool`; the ratios are printed at the end.

use std::hint::black_box;
use std::time::{Duration, Instant};

mod report;

use criterion::{BatchSize, Criterion, criterion_group};
use rayon::prelude::*;
use twat_mp::{ThreadPool, pmap};
use twat_mp_workspace::numbers::mix_rounds;

const TRIVIAL_ITEMS: u64 = 2_000_000;

fn trivial(x: u64) -> u64 {
    x.wrapping_mul(3) ^ 0x5555
}

#[pmap]
fn trivial_pmap(x: u64) -> u64 {
    trivial(x)
}

/// The rounds of `mix_rounds` that take about `target` on this machine.
fn calibrate(target: Duration) -> u64 {
    let probe = 2_000_000;
    let start = Instant::now();
    black_box(mix_rounds(black_box(1), probe));
    let per_round = start.elapsed().as_secs_f64() / probe as f64;
    (target.as_secs_f64() / per_round) as u64
}

fn map_2m_trivial(c: &mut Criterion) {
    let data: Vec<u64> = (0..TRIVIAL_ITEMS).collect();
    let pool = ThreadPool::new().unwrap();
    // rayon's global pool, sized the same way, is the peer.
    let mut group = c.benchmark_group("map_2m_trivial");
    group.sample_size(30);
    group.bench_function("rayon_par_iter", |b| {
        b.iter(|| {
            let out: Vec<u64> = data.par_iter().map(|&x| trivial(x)).collect();
            black_box(out)
        })
    });
    group.bench_function("rayon_into_par_iter", |b| {
        b.iter_batched(
            || data.clone(),
            |items| {
                let out: Vec<u64> = items.into_par_iter().map(trivial).collect();
                black_box(out)
            },
            BatchSize::LargeInput,
        )
    });
    // The same owned map on a rayon pool of our own size, as ThreadPool runs it: rayon's
    // global pool is markedly slower on owned input on this machine (page placement).
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(pool.nodes())
        .build()
        .unwrap();
    group.bench_function("rayon_pool_into_par_iter", |b| {
        b.iter_batched(
            || data.clone(),
            |items| {
                let out: Vec<u64> =
                    rayon_pool.install(|| items.into_par_iter().map(trivial).collect());
                black_box(out)
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("thread_pool_map_owned", |b| {
        b.iter_batched(
            || data.clone(),
            |items| black_box(pool.map(trivial, items).unwrap()),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("thread_pool_map_borrowed", |b| {
        b.iter(|| black_box(pool.map(|x: &u64| trivial(*x), &data).unwrap()))
    });
    group.finish();
}

fn pmap_2m_trivial(c: &mut Criterion) {
    let data: Vec<u64> = (0..TRIVIAL_ITEMS).collect();
    let pool = ThreadPool::new().unwrap();
    let mut group = c.benchmark_group("pmap_2m_trivial");
    group.sample_size(30);
    group.bench_function("thread_pool_map", |b| {
        b.iter_batched(
            || data.clone(),
            |items| black_box(pool.map(trivial, items).unwrap()),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("pmap_attribute", |b| {
        b.iter_batched(
            || data.clone(),
            |items| black_box(trivial_pmap(items)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn cpu_32x25ms(c: &mut Criterion) {
    let rounds = calibrate(Duration::from_millis(25));
    let pool = ThreadPool::new().unwrap();
    let seeds: Vec<u64> = (0..32).collect();
    let mut group = c.benchmark_group("cpu_32x25ms");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("serial", |b| {
        b.iter(|| {
            black_box(
                seeds
                    .iter()
                    .map(|&s| mix_rounds(s, rounds))
                    .collect::<Vec<_>>(),
            )
        })
    });
    group.bench_function("thread_pool_map", |b| {
        b.iter(|| black_box(pool.map(|s: &u64| mix_rounds(*s, rounds), &seeds).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, map_2m_trivial, pmap_2m_trivial, cpu_32x25ms);

fn report_ratios() {
    println!("\nratios (mean time; lower is better for the first name):");
    for (group, ours, peer, goal) in [
        (
            "map_2m_trivial",
            "thread_pool_map_owned",
            "rayon_pool_into_par_iter",
            "<= 1.10",
        ),
        (
            "map_2m_trivial",
            "thread_pool_map_owned",
            "rayon_into_par_iter",
            "<= 1.10",
        ),
        (
            "map_2m_trivial",
            "thread_pool_map_owned",
            "rayon_par_iter",
            "<= 1.10",
        ),
        (
            "map_2m_trivial",
            "thread_pool_map_borrowed",
            "rayon_par_iter",
            "(informative)",
        ),
        (
            "pmap_2m_trivial",
            "pmap_attribute",
            "thread_pool_map",
            "<= 1.05",
        ),
        (
            "cpu_32x25ms",
            "thread_pool_map",
            "serial",
            "<= 0.54 (>= 1.85x faster)",
        ),
    ] {
        report::print_ratio(group, ours, peer, goal, "");
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report_ratios();
}
