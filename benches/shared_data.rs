//! `ProcessPool::map_with`: a 64 MiB lookup table shared with 100,000 items of about
//! 10 µs of real work each (lookups into the table and arithmetic), against the same map
//! with an empty table, in the same run. The table crosses once per worker per call, so
//! the two should be close (the target: at most 1.5×). Also `map_init` against `map`
//! with a state that costs 1 ms to make, over many trivial items.
//!
//! The table serializes as bytes (as `serde_bytes` does), so that postcard copies it in
//! one piece each way instead of one element at a time.
//!
//! `cargo bench --bench shared_data`

use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

mod report;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use twat_mp::ProcessPool;

const TABLE_BYTES: usize = 64 << 20;
const ITEMS: u64 = 100_000;
/// Rounds of arithmetic per item: about 10 µs of work, as the target says (measured on
/// the 2-core CI machine: 2,400 rounds took 4.9 µs).
const ROUNDS: u64 = 5_000;
/// Lookups into the table per item: few, since each one into 64 MiB misses the caches
/// (and costs as much as hundreds of rounds), which the empty table's items never do.
const LOOKUPS: u64 = 4;

/// A lookup table of bytes, read 8 at a time.
struct Table(Vec<u8>);

impl Serialize for Table {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Table {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = Table;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Table, E> {
                Ok(Table(bytes.to_vec()))
            }
            fn visit_byte_buf<E>(self, bytes: Vec<u8>) -> Result<Table, E> {
                Ok(Table(bytes))
            }
        }
        deserializer.deserialize_byte_buf(Bytes)
    }
}

impl Table {
    fn filled(len: usize) -> Table {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        Table(
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect(),
        )
    }

    /// The 8 bytes at a place chosen by `key`, or `key` itself in an empty table.
    fn look_up(&self, key: u64) -> u64 {
        if self.0.len() < 8 {
            return key;
        }
        let at = (key % (self.0.len() as u64 - 7)) as usize;
        u64::from_le_bytes(self.0[at..at + 8].try_into().expect("8 bytes"))
    }
}

fn mix(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ (x >> 29)
}

/// One item's work: arithmetic, with a lookup into the table every so often.
fn score(table: &Table, item: u64) -> u64 {
    let mut acc = item;
    for round in 0..ROUNDS {
        acc = mix(acc ^ round);
        if round % (ROUNDS / LOOKUPS) == 0 {
            acc ^= table.look_up(acc);
        }
    }
    acc
}

fn shared_table(c: &mut Criterion) {
    let pool = ProcessPool::with_nodes(2).unwrap();
    let table = Table::filled(TABLE_BYTES);
    let empty = Table(Vec::new());
    let per_item = |table: &Table| {
        let started = Instant::now();
        black_box((0..10_000).map(|i| score(table, i)).fold(0, |a, b| a ^ b));
        started.elapsed() / 10_000
    };
    println!(
        "one item's work here: {:?} with the {} MiB table, {:?} with the empty one",
        per_item(&table),
        TABLE_BYTES >> 20,
        per_item(&empty),
    );
    // Warm: workers started, batch sizes learned.
    pool.map_with(Table(Vec::new()), score, 0..ITEMS).unwrap();
    // What the table's crossing costs on its own: a call of two items.
    for _ in 0..3 {
        let copy = Table(table.0.clone());
        let started = Instant::now();
        pool.map_with(copy, score, 0..2).unwrap();
        println!(
            "a map_with of 2 items with the table: {:?} (serialized once, sent to and decoded by each of 2 workers)",
            started.elapsed()
        );
    }

    let mut group = c.benchmark_group("shared_data");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(ITEMS));
    // The call takes the table by value: each run gets a copy, made outside the timing.
    group.bench_function("map_with_empty_table", |b| {
        b.iter_batched(
            || Table(empty.0.clone()),
            |empty| black_box(pool.map_with(empty, score, 0..ITEMS).unwrap()),
            BatchSize::PerIteration,
        );
    });
    group.bench_function("map_with_64MiB_table", |b| {
        b.iter_batched(
            || Table(table.0.clone()),
            |table| black_box(pool.map_with(table, score, 0..ITEMS).unwrap()),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// A state that takes 1 ms to make (a connection, a model): spinning, not sleeping.
fn slow_state() -> u64 {
    let started = Instant::now();
    let mut x = 1_u64;
    while started.elapsed() < Duration::from_millis(1) {
        x = mix(x);
    }
    x
}

fn with_state(state: &mut u64, item: u64) -> u64 {
    *state = state.wrapping_add(1);
    mix(item)
}

const TRIVIAL: u64 = 10_000_000;

fn per_worker_state(c: &mut Criterion) {
    let pool = ProcessPool::with_nodes(2).unwrap();
    pool.map(mix, 0..TRIVIAL).unwrap();
    pool.map_init(slow_state, with_state, 0..TRIVIAL).unwrap();
    let mut group = c.benchmark_group("process_map_init");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(TRIVIAL));
    group.bench_function("map", |b| {
        b.iter(|| black_box(pool.map(mix, 0..TRIVIAL).unwrap()));
    });
    group.bench_function("map_init_1ms_init", |b| {
        b.iter(|| black_box(pool.map_init(slow_state, with_state, 0..TRIVIAL).unwrap()));
    });
    group.finish();
}

criterion_group!(benches, shared_table, per_worker_state);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    println!("\nshared data and per-worker state against their plain peers:");
    report::print_ratio(
        "shared_data",
        "map_with_64MiB_table",
        "map_with_empty_table",
        "<= 1.5",
        "",
    );
    report::print_ratio(
        "process_map_init",
        "map_init_1ms_init",
        "map",
        "<= 1.05",
        "",
    );
}
