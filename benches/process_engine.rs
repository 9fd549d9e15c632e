//! The process engine's own figures, one line each, against the goals of issue 13: trivial
//! `u64` items warm, one item per message (`chunksize = 1`), a 64 MiB item and result as
//! `Vec<u8>`, `serde_bytes::ByteBuf` and `bytes::Bytes`, a pool's whole life with one item,
//! and 10,000 items of ~10 µs and of ~1 ms beside procspawn's pool.
//!
//! Each figure is the best of a few runs (the machine is shared: the best run is the one
//! least disturbed), printed with its goal.
//!
//! `cargo bench --bench process_engine` (one group: `cargo bench --bench process_engine --
//! large`; the names are `u64`, `chunk1`, `large`, `life`, `procspawn`)

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_bytes::ByteBuf;
use twat_mp::ProcessPool;

fn mix(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17)
}

/// About `rounds` × 2.5 ns of arithmetic the optimiser cannot drop.
fn spin(rounds: u64) -> u64 {
    (0..rounds).fold(rounds, |acc, x| mix(acc ^ x))
}

/// The best (shortest) of `runs` runs of `f`.
fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .expect("at least one run")
}

fn rate(items: u64, took: Duration) -> f64 {
    items as f64 / took.as_secs_f64()
}

fn trivial_u64() {
    const ITEMS: u64 = 4_000_000;
    let pool = ProcessPool::with_nodes(2).unwrap();
    pool.map(mix, 0..ITEMS).unwrap();
    let took = best(7, || {
        black_box(pool.map(mix, 0..ITEMS).unwrap());
    });
    println!(
        "u64     map, 4 M trivial items, warm:   {:6.1} M items/s   (goal >= 50 M)",
        rate(ITEMS, took) / 1e6
    );
    let took = best(5, || {
        let folded = pool
            .imap(mix, 0..ITEMS)
            .map(Result::unwrap)
            .fold(0, |a, x| a ^ x);
        black_box(folded);
    });
    println!(
        "u64     imap, same:                      {:6.1} M items/s",
        rate(ITEMS, took) / 1e6
    );
}

fn chunksize_1() {
    const ITEMS: u64 = 20_000;
    let pool = ProcessPool::builder()
        .nodes(2)
        .chunksize(1)
        .build()
        .unwrap();
    pool.map(mix, 0..ITEMS).unwrap();
    let took = best(5, || {
        black_box(pool.map(mix, 0..ITEMS).unwrap());
    });
    println!(
        "chunk1  map, chunksize = 1:              {:6.0} k items/s   (goal >= 300 k)",
        rate(ITEMS, took) / 1e3
    );
    let took = best(5, || {
        let folded = pool
            .imap(mix, 0..ITEMS)
            .map(Result::unwrap)
            .fold(0, |a, x| a ^ x);
        black_box(folded);
    });
    println!(
        "chunk1  imap, chunksize = 1:             {:6.0} k items/s",
        rate(ITEMS, took) / 1e3
    );
    let timed = ProcessPool::builder()
        .nodes(2)
        .chunksize(1)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    timed.map(mix, 0..ITEMS).unwrap();
    let took = best(5, || {
        black_box(timed.map(mix, 0..ITEMS).unwrap());
    });
    println!(
        "chunk1  map, chunksize = 1, timeout:     {:6.0} k items/s",
        rate(ITEMS, took) / 1e3
    );
}

const BIG: usize = 64 << 20;
const MB: f64 = 1e6;

fn big_vec(len: u64) -> Vec<u8> {
    (0..len).map(|i| i as u8).collect()
}

fn big_buf(len: u64) -> ByteBuf {
    ByteBuf::from(big_vec(len))
}

fn big_bytes(len: u64) -> Bytes {
    Bytes::from(big_vec(len))
}

fn large() {
    let pool = ProcessPool::with_nodes(2).unwrap();
    pool.map(mix, 0..4).unwrap();
    let each_way = |took: Duration| BIG as f64 / took.as_secs_f64() / MB;

    // Vec<u8>: to the worker, from the worker, both.
    let item = big_vec(BIG as u64);
    let took = best(3, || {
        let len = pool.apply(|v: Vec<u8>| v.len(), item.clone()).unwrap();
        assert_eq!(len, BIG);
    });
    println!(
        "large   Vec<u8> 64 MiB item -> worker:   {:6.0} MB/s   (goal >= 400)",
        each_way(took)
    );
    let took = best(3, || {
        let v = pool.apply(big_vec, BIG as u64).unwrap();
        assert_eq!(v.len(), BIG);
    });
    println!(
        "large   Vec<u8> 64 MiB result <- worker: {:6.0} MB/s   (goal >= 400)",
        each_way(took)
    );
    let took = best(3, || {
        let v = pool.apply(|v: Vec<u8>| v, item.clone()).unwrap();
        assert_eq!(v.len(), BIG);
    });
    println!(
        "large   Vec<u8> 64 MiB there and back:   {:6.0} MB/s each way",
        each_way(took)
    );

    let item = ByteBuf::from(item);
    let took = best(3, || {
        let len = pool.apply(|v: ByteBuf| v.len(), item.clone()).unwrap();
        assert_eq!(len, BIG);
    });
    println!(
        "large   ByteBuf 64 MiB item -> worker:   {:6.0} MB/s   (goal >= 1000)",
        each_way(took)
    );
    let took = best(3, || {
        let v = pool.apply(big_buf, BIG as u64).unwrap();
        assert_eq!(v.len(), BIG);
    });
    println!(
        "large   ByteBuf 64 MiB result <- worker: {:6.0} MB/s   (goal >= 1000)",
        each_way(took)
    );
    let took = best(3, || {
        let v = pool.apply(|v: ByteBuf| v, item.clone()).unwrap();
        assert_eq!(v.len(), BIG);
    });
    println!(
        "large   ByteBuf 64 MiB there and back:   {:6.0} MB/s each way",
        each_way(took)
    );

    let item = Bytes::from(item.into_vec());
    let took = best(3, || {
        let v = pool.apply(|v: Bytes| v, item.clone()).unwrap();
        assert_eq!(v.len(), BIG);
    });
    println!(
        "large   Bytes   64 MiB there and back:   {:6.0} MB/s each way",
        each_way(took)
    );
    let took = best(3, || {
        let v = pool.apply(big_bytes, BIG as u64).unwrap();
        assert_eq!(v.len(), BIG);
    });
    println!(
        "large   Bytes   64 MiB result <- worker: {:6.0} MB/s",
        each_way(took)
    );
}

fn life() {
    let mut times: Vec<Duration> = (0..40)
        .map(|_| {
            let start = Instant::now();
            let pool = ProcessPool::with_nodes(2).unwrap();
            black_box(pool.apply(mix, 7).unwrap());
            drop(pool);
            start.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "life    start + one item + drop, 2 nodes: {:5.2} ms median, {:.2} ms best   (goal <= 2)",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
}

/// ~10 µs and ~1 ms of work per item.
const SHORT: u64 = 6_500;
const LONG: u64 = 650_000;
/// procspawn handles in flight at once.
const OUTSTANDING: usize = 128;

fn against_procspawn() {
    let calibrate = best(20, || {
        black_box(spin(black_box(LONG)));
    });
    println!(
        "procspawn  (an item of {LONG} rounds takes {:.0} µs here)",
        calibrate.as_secs_f64() * 1e6
    );
    let pool = ProcessPool::with_nodes(2).unwrap();
    let theirs = procspawn::Pool::new(2).unwrap();
    for (rounds, items, goal) in [(SHORT, 10_000, 0.5), (LONG, 10_000, 1.02)] {
        let input: Vec<u64> = (0..items).map(|i| rounds + i % 7).collect();
        pool.map(spin, input.iter().copied().take(100)).unwrap();
        let runs = if rounds == LONG { 1 } else { 3 };
        let ours = best(runs, || {
            black_box(pool.map(spin, input.iter().copied()).unwrap());
        });
        let them = best(runs, || {
            // Each handle holds its own channels (file descriptors): at most `OUTSTANDING`
            // at once, the oldest joined first, as a program would bound them.
            let mut handles = std::collections::VecDeque::new();
            for &n in &input {
                if handles.len() == OUTSTANDING {
                    let handle: procspawn::JoinHandle<u64> = handles.pop_front().unwrap();
                    black_box(handle.join().unwrap());
                }
                handles.push_back(theirs.spawn(n, spin));
            }
            for handle in handles {
                black_box(handle.join().unwrap());
            }
        });
        println!(
            "procspawn  10,000 items of {rounds} rounds: ours {:.3} s, procspawn {:.3} s: {:.2}x its time   (goal <= {goal})",
            ours.as_secs_f64(),
            them.as_secs_f64(),
            ours.as_secs_f64() / them.as_secs_f64()
        );
    }
    theirs.shutdown();
}

fn main() {
    procspawn::init();
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    let wants = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if wants("u64") {
        trivial_u64();
    }
    if wants("chunk1") {
        chunksize_1();
    }
    if wants("large") {
        large();
    }
    if wants("life") {
        life();
    }
    if wants("procspawn") {
        against_procspawn();
    }
}
