//! `ProcessPool` against its peers, each group in the same run (the goals of issue 13):
//!
//! - `process_u64_warm`: `map` and `imap` of 4,000,000 trivial `u64` on a warm pool (goal:
//!   at least 50 M items/s) vs serial code, our `ThreadPool`, and procspawn's pool given
//!   one chunk of the items per process (a spawn per item would take minutes);
//! - `process_chunksize_1`: 10,000 trivial items, one per message (goal: at least
//!   300 k items/s), vs procspawn's pool (one spawn per item, its unit);
//! - `process_64mib`: one 64 MiB item that comes back as the result, as `Vec<u8>` (goal:
//!   400 MB/s each way), `serde_bytes::ByteBuf` and `bytes::Bytes` (goal: 1 GB/s each way),
//!   vs procspawn's pool with `Vec<u8>` and `ByteBuf`;
//! - `process_life`: start a pool of 2 workers, run one item, drop it (goal: at most
//!   2 ms), vs the same with procspawn's pool;
//! - `procspawn_10k_10us` and `procspawn_10k_1ms`: 10,000 CPU-bound items of about 10 µs
//!   and 1 ms, `ProcessPool::map` vs procspawn's pool (goal: at most 0.5× and 1.02× its
//!   time).
//!
//! Python twat-mp and mpire run the same trivial and CPU-bound workloads through
//! `benches/compare-python.sh`.
//!
//! `cargo bench --bench process_pool`

use std::hint::black_box;
use std::time::Duration;

mod peers;
mod report;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use peers::{procspawn_each, spin, trivial};
use report::{Work, goal, goal_rate, goal_ratio, mean_ns, report_group};
use serde_bytes::ByteBuf;
use twat_mp::{ProcessPool, ThreadPool};

/// About 100 ms of work per measured run at the goal's speed.
const BATCHED: u64 = 4_000_000;
const UNBATCHED: u64 = 10_000;
const BIG: usize = 64 << 20;

fn throughput(c: &mut Criterion, procspawn_pool: &procspawn::Pool) {
    let batched = ProcessPool::with_nodes(2).unwrap();
    let threads = ThreadPool::with_nodes(2).unwrap();
    let data: Vec<u64> = (0..BATCHED).collect();
    // Warm: workers started, batch sizes learned.
    batched.map(trivial, 0..BATCHED).unwrap();
    peers::procspawn_chunks(procspawn_pool, &data);

    let mut group = c.benchmark_group("process_u64_warm");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(BATCHED));
    group.bench_function("process_pool_map", |b| {
        b.iter(|| black_box(batched.map(trivial, 0..BATCHED).unwrap()));
    });
    group.bench_function("process_pool_imap", |b| {
        b.iter(|| {
            batched
                .imap(trivial, 0..BATCHED)
                .map(Result::unwrap)
                .fold(0_u64, |acc, x| acc ^ x)
        });
    });
    group.bench_function("serial", |b| {
        b.iter(|| black_box((0..BATCHED).map(trivial).collect::<Vec<_>>()));
    });
    group.bench_function("thread_pool_map", |b| {
        b.iter(|| black_box(threads.map(trivial, 0..BATCHED).unwrap()));
    });
    group.bench_function("procspawn_chunks", |b| {
        b.iter(|| black_box(peers::procspawn_chunks(procspawn_pool, &data)));
    });
    group.finish();

    let unbatched = ProcessPool::builder()
        .nodes(2)
        .chunksize(1)
        .build()
        .unwrap();
    unbatched.map(trivial, 0..UNBATCHED).unwrap();
    let mut group = c.benchmark_group("process_chunksize_1");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(UNBATCHED));
    group.bench_function("process_pool_map", |b| {
        b.iter(|| black_box(unbatched.map(trivial, 0..UNBATCHED).unwrap()));
    });
    group.bench_function("process_pool_imap", |b| {
        b.iter(|| {
            unbatched
                .imap(trivial, 0..UNBATCHED)
                .map(Result::unwrap)
                .fold(0_u64, |acc, x| acc ^ x)
        });
    });
    group.bench_function("procspawn_pool", |b| {
        b.iter(|| black_box(procspawn_each(procspawn_pool, 0..UNBATCHED, trivial)));
    });
    group.finish();
}

/// The item comes back as the result: the bytes cross both ways.
fn echo<T>(item: T) -> T {
    item
}

fn big_items(c: &mut Criterion, procspawn_pool: &procspawn::Pool) {
    let pool = ProcessPool::with_nodes(2).unwrap();
    pool.map(echo::<Vec<u8>>, [vec![1_u8; 16]]).unwrap();
    let content: Vec<u8> = (0..BIG).map(|i| (i * 31 % 251) as u8).collect();
    let mut group = c.benchmark_group("process_64mib");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes(2 * BIG as u64));
    group.bench_function("process_pool_vec_u8", |b| {
        b.iter_batched(
            || content.clone(),
            |item| black_box(pool.apply(echo::<Vec<u8>>, item).unwrap()),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("process_pool_serde_bytes", |b| {
        b.iter_batched(
            || ByteBuf::from(content.clone()),
            |item| black_box(pool.apply(echo::<ByteBuf>, item).unwrap()),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("process_pool_bytes", |b| {
        b.iter_batched(
            || Bytes::from(content.clone()),
            |item| black_box(pool.apply(echo::<Bytes>, item).unwrap()),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("procspawn_vec_u8", |b| {
        b.iter_batched(
            || content.clone(),
            |item| black_box(procspawn_each(procspawn_pool, [item], echo::<Vec<u8>>)),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("procspawn_serde_bytes", |b| {
        b.iter_batched(
            || ByteBuf::from(content.clone()),
            |item| black_box(procspawn_each(procspawn_pool, [item], echo::<ByteBuf>)),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn lifecycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("process_life");
    group.sample_size(30);
    group.bench_function("process_pool_2_nodes", |b| {
        b.iter(|| {
            let pool = ProcessPool::with_nodes(2).unwrap();
            let result = pool.apply(trivial, 7).unwrap();
            drop(pool);
            result
        });
    });
    group.bench_function("procspawn_pool_2", |b| {
        b.iter(|| {
            let pool = procspawn::Pool::new(2).unwrap();
            let result = pool.spawn(7, trivial).join().unwrap();
            pool.shutdown();
            result
        });
    });
    group.finish();
}

fn against_procspawn(c: &mut Criterion, procspawn_pool: &procspawn::Pool) {
    let pool = ProcessPool::with_nodes(2).unwrap();
    for (name, each) in [
        ("procspawn_10k_10us", Duration::from_micros(10)),
        ("procspawn_10k_1ms", Duration::from_millis(1)),
    ] {
        let items = peers::spin_items(UNBATCHED, each);
        pool.map(spin, items.iter().copied().take(100)).unwrap();
        let mut group = c.benchmark_group(name);
        group.sample_size(10);
        group.throughput(Throughput::Elements(UNBATCHED));
        group.bench_function("process_pool_map", |b| {
            b.iter(|| black_box(pool.map(spin, items.iter().copied()).unwrap()));
        });
        group.bench_function("procspawn_pool", |b| {
            b.iter(|| black_box(procspawn_each(procspawn_pool, items.iter().copied(), spin)));
        });
        group.finish();
    }
}

fn groups(c: &mut Criterion) {
    let procspawn_pool = procspawn::Pool::new(2).unwrap();
    throughput(c, &procspawn_pool);
    big_items(c, &procspawn_pool);
    lifecycle(c);
    against_procspawn(c, &procspawn_pool);
    procspawn_pool.shutdown();
}

criterion_group!(benches, groups);

fn report_ratios() {
    let batched = Work::Items(BATCHED);
    report_group(
        "process_u64_warm",
        batched,
        &["process_pool_map", "process_pool_imap"],
        &["serial", "thread_pool_map", "procspawn_chunks"],
    );
    goal_rate(
        "process_u64",
        "process_u64_warm",
        "process_pool_map",
        batched,
    );
    let unbatched = Work::Items(UNBATCHED);
    report_group(
        "process_chunksize_1",
        unbatched,
        &["process_pool_map", "process_pool_imap"],
        &["procspawn_pool"],
    );
    goal_rate(
        "process_chunksize_1",
        "process_chunksize_1",
        "process_pool_map",
        unbatched,
    );
    // Each way: the item's bytes there and the result's back, so a run moves 2 × 64 MiB.
    let both_ways = Work::Bytes(2 * BIG as u64);
    report_group(
        "process_64mib",
        both_ways,
        &[
            "process_pool_vec_u8",
            "process_pool_serde_bytes",
            "process_pool_bytes",
        ],
        &["procspawn_vec_u8", "procspawn_serde_bytes"],
    );
    for (id, name) in [
        ("process_64mib_vec", "process_pool_vec_u8"),
        ("process_64mib_serde_bytes", "process_pool_serde_bytes"),
        ("process_64mib_bytes", "process_pool_bytes"),
    ] {
        goal_rate(id, "process_64mib", name, both_ways);
    }
    report_group(
        "process_life",
        Work::Items(1),
        &["process_pool_2_nodes"],
        &["procspawn_pool_2"],
    );
    if let Some(ns) = mean_ns("process_life", "process_pool_2_nodes") {
        goal("process_life", ns / 1e6, "mean of a whole life");
    }
    for (id, group) in [
        ("procspawn_10us", "procspawn_10k_10us"),
        ("procspawn_1ms", "procspawn_10k_1ms"),
    ] {
        report_group(group, unbatched, &["process_pool_map"], &["procspawn_pool"]);
        goal_ratio(id, group, "process_pool_map", "procspawn_pool", false);
    }
}

fn main() {
    peers::init();
    report::begin();
    benches();
    Criterion::default().configure_from_args().final_summary();
    report_ratios();
}
