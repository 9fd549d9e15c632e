//! Per-worker state against the plain map, in the same run:
//!
//! - `map_init_10m_trivial`: `ThreadPool::map_init` whose `init` computes for about 1 ms
//!   (a lookup table, as a real state would be built), over 10,000,000 trivial items on 2
//!   nodes, vs `ThreadPool::map` of the same items reading a table made beforehand (goal:
//!   at most 1.05×). `init` runs at most twice per call here; the bench prints how often it
//!   ran, and how often rayon's own `map_init` (once per split) would have run it.
//!
//! Run with `cargo bench --bench worker_state`; the ratio is printed at the end, with the
//! median ratio of runs of the two in turn (less moved by the load of a shared machine).

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod report;

use criterion::{BatchSize, Criterion, criterion_group};
use rayon::prelude::*;
use twat_mp::ThreadPool;
use twat_mp_workspace::numbers::mix_rounds;

const ITEMS: u64 = 10_000_000;
const NODES: usize = 2;

fn trivial(x: u64) -> u64 {
    x.wrapping_mul(3) ^ 0x5555
}

/// The rounds of `mix_rounds` that take about `target` on this machine.
fn calibrate(target: Duration) -> u64 {
    let probe = 2_000_000;
    let start = Instant::now();
    black_box(mix_rounds(black_box(1), probe));
    let per_round = start.elapsed().as_secs_f64() / probe as f64;
    (target.as_secs_f64() / per_round) as u64
}

/// A state that takes about 1 ms to make: a small table of mixed numbers.
fn make_state(rounds: u64) -> [u64; 16] {
    let mut table = [0u64; 16];
    for (i, slot) in table.iter_mut().enumerate() {
        *slot = mix_rounds(i as u64, rounds / 16);
    }
    table
}

static INITS: AtomicUsize = AtomicUsize::new(0);

fn map_init_10m_trivial(c: &mut Criterion) {
    let rounds = calibrate(Duration::from_millis(1));
    let data: Vec<u64> = (0..ITEMS).collect();
    let pool = ThreadPool::with_nodes(NODES).unwrap();
    let init = || {
        INITS.fetch_add(1, Ordering::Relaxed);
        make_state(rounds)
    };
    let mut group = c.benchmark_group("map_init_10m_trivial");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    // The same work per item: the plain map reads one table made beforehand, so that the
    // ratio measures what the states cost (making them included), not the lookup.
    let table = make_state(rounds);
    group.bench_function("thread_pool_map", |b| {
        b.iter_batched(
            || data.clone(),
            |items| {
                let out = pool.map(|x: u64| trivial(x) ^ table[(x & 15) as usize], items);
                black_box(out.unwrap())
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function("thread_pool_map_init", |b| {
        b.iter_batched(
            || data.clone(),
            |items| {
                let out = pool.map_init(
                    init,
                    |table: &mut [u64; 16], x: u64| trivial(x) ^ table[(x & 15) as usize],
                    items,
                );
                black_box(out.unwrap())
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();

    // How often `init` runs in one call: ours, and rayon's own `map_init` (per split).
    INITS.store(0, Ordering::Relaxed);
    let out = pool.map_init(
        init,
        |table: &mut [u64; 16], x: u64| trivial(x) ^ table[(x & 15) as usize],
        data.clone(),
    );
    black_box(out.unwrap());
    let ours = INITS.swap(0, Ordering::Relaxed);
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(NODES)
        .build()
        .unwrap();
    let out: Vec<u64> = rayon_pool.install(|| {
        data.clone()
            .into_par_iter()
            .map_init(init, |table, x| trivial(x) ^ table[(x & 15) as usize])
            .collect()
    });
    black_box(out);
    let rayons = INITS.swap(0, Ordering::Relaxed);
    println!("\ninit ran {ours} times per call (rayon's own map_init: {rayons} times)");

    // The two, run in turn, for a ratio that the load of a shared machine moves less than
    // two separate measurements: the median of the paired runs.
    let mut ratios = Vec::new();
    for _ in 0..PAIRS {
        let items = data.clone();
        let start = Instant::now();
        let out = pool.map(|x: u64| trivial(x) ^ table[(x & 15) as usize], items);
        black_box(out.unwrap());
        let plain = start.elapsed().as_secs_f64();
        let items = data.clone();
        let start = Instant::now();
        let out = pool.map_init(
            init,
            |table: &mut [u64; 16], x: u64| trivial(x) ^ table[(x & 15) as usize],
            items,
        );
        black_box(out.unwrap());
        ratios.push(start.elapsed().as_secs_f64() / plain);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    // Printed with the ratios at the end.
    PAIRED.lock().unwrap().replace(median);
}

const PAIRS: usize = 15;
static PAIRED: std::sync::Mutex<Option<f64>> = std::sync::Mutex::new(None);

criterion_group!(benches, map_init_10m_trivial);

fn report_ratios() {
    println!("\nratios (mean time; lower is better for the first name):");
    let (group, ours, peer, goal) = (
        "map_init_10m_trivial",
        "thread_pool_map_init",
        "thread_pool_map",
        "<= 1.05",
    );
    report::print_ratio(group, ours, peer, goal, "");
    if let Some(median) = *PAIRED.lock().unwrap() {
        println!("  {group}, {PAIRS} runs of each in turn: median ratio {median:.3} (goal {goal})");
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report_ratios();
}
