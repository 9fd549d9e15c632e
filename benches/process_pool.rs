//! `ProcessPool` throughput on trivial `u64` items, warm pool: `map` and `imap` with the
//! automatic batching against one item per message (`chunksize = 1`); and the cost of a
//! pool's whole life with one item (start, first worker, one item, drop).
//!
//! Python twat-mp's ProcessPool runs the same two workloads afterwards, when `python3`
//! can import it (`pip install twat-mp`): `benches/python/process_pool.py`.
//!
//! `cargo bench --bench process_pool`

use std::hint::black_box;
use std::time::Duration;

mod report;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use twat_mp::ProcessPool;

fn mix(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17)
}

/// Enough items for about 100 ms of work per measured run at the expected speeds.
const BATCHED: u64 = 4_000_000;
const UNBATCHED: u64 = 10_000;

fn throughput(c: &mut Criterion) {
    let batched = ProcessPool::with_nodes(2).unwrap();
    let unbatched = ProcessPool::builder()
        .nodes(2)
        .chunksize(1)
        .build()
        .unwrap();
    // Warm: workers started, batch sizes learned.
    batched.map(mix, 0..BATCHED).unwrap();
    unbatched.map(mix, 0..UNBATCHED).unwrap();

    let mut group = c.benchmark_group("process_pool_u64");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));

    group.throughput(Throughput::Elements(BATCHED));
    group.bench_function("map_auto_chunks", |b| {
        b.iter(|| black_box(batched.map(mix, 0..BATCHED).unwrap()));
    });
    group.bench_function("imap_auto_chunks", |b| {
        b.iter(|| {
            batched
                .imap(mix, 0..BATCHED)
                .map(Result::unwrap)
                .fold(0_u64, |acc, x| acc ^ x)
        });
    });

    group.throughput(Throughput::Elements(UNBATCHED));
    group.bench_function("map_chunksize_1", |b| {
        b.iter(|| black_box(unbatched.map(mix, 0..UNBATCHED).unwrap()));
    });
    group.bench_function("imap_chunksize_1", |b| {
        b.iter(|| {
            unbatched
                .imap(mix, 0..UNBATCHED)
                .map(Result::unwrap)
                .fold(0_u64, |acc, x| acc ^ x)
        });
    });
    group.finish();
}

fn lifecycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("process_pool_life");
    group.sample_size(50);
    group.bench_function("start_one_item_drop_2_nodes", |b| {
        b.iter_batched(
            || (),
            |()| {
                let pool = ProcessPool::with_nodes(2).unwrap();
                let result = pool.apply(mix, 7).unwrap();
                drop(pool);
                result
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, throughput, lifecycle);

/// Our results beside Python twat-mp's ProcessPool on the same workloads.
fn report_against_python() {
    let ours_rate = report::mean_ns("process_pool_u64", "map_auto_chunks")
        .map(|ns| BATCHED as f64 / (ns / 1e9));
    let ours_life = report::mean_ns("process_pool_life", "start_one_item_drop_2_nodes");
    println!("\nagainst Python twat-mp's ProcessPool (benches/python/process_pool.py):");
    let python = match report::run_python("process_pool.py") {
        Ok(out) => out,
        Err(why) => return println!("  python {why}"),
    };
    let value = |key: &str| {
        python
            .lines()
            .find_map(|line| line.strip_prefix(key)?.trim().parse::<f64>().ok())
    };
    if let (Some(ours), Some(theirs)) = (ours_rate, value("map_items_per_s")) {
        println!(
            "  map, trivial items: {:.1} M/s vs {:.2} M/s: {:.0}x faster",
            ours / 1e6,
            theirs / 1e6,
            ours / theirs
        );
    }
    if let (Some(ours), Some(theirs)) = (ours_life, value("life_ms")) {
        println!(
            "  start + one item + drop: {:.2} ms vs {:.2} ms: {:.1}x faster",
            ours / 1e6,
            theirs,
            theirs / (ours / 1e6)
        );
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    report_against_python();
}
