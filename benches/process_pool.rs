//! `ProcessPool` throughput on trivial `u64` items, warm pool: `map` and `imap` with the
//! automatic batching against one item per message (`chunksize = 1`); and the cost of a
//! pool's whole life with one item (start, first worker, one item, drop).
//!
//! `cargo bench --bench process_pool`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
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
criterion_main!(benches);
