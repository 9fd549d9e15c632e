//! `MpiPool` scaling (issue 11, "Performance"): 64 items of about 25 ms of CPU work, and
//! the per-item cost of trivial items, timed on rank 0 of whatever job this runs in.
//!
//! MPI jobs cannot run under criterion's harness (every rank runs `main`, and only one
//! `MpiPool` may exist per run), so this bench does its own timing: a warm-up call, then
//! the median of several calls. `benches/mpi_scaling.sh` runs it under `mpirun` with 1,
//! 2 and 4 ranks and prints the table. Alone:
//!
//! ```text
//! cargo bench --features mpi --bench mpi_scaling
//! ```
//!
//! A job of n ranks has n - 1 serving ranks (rank 0 only sends and receives). A job of
//! one rank runs the items on rank 0's local threads; this bench gives it one thread,
//! so that its row is one worker running the items one after another: the baseline.
//! Without `--bench` (as `cargo test --benches` runs it) it takes a few milliseconds.

use std::time::{Duration, Instant};

use twat_mp::MpiPool;
use twat_mp_workspace::numbers::mix_rounds;

/// The CPU-bound item: `rounds` splitmix64 steps from `seed`.
fn work((seed, rounds): (u64, u64)) -> u64 {
    mix_rounds(seed, rounds)
}

/// The trivial item: what is left is the cost of moving it.
fn trivial(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// The median of `runs` timings of `call` (after one warm-up call).
fn median(runs: usize, mut call: impl FnMut()) -> Duration {
    call();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

/// Splitmix rounds that take about `target` here (measured on rank 0 only, then sent
/// with every item, so that every rank does the same work).
fn rounds_for(target: Duration) -> u64 {
    let probe = 4_000_000;
    let took = median(3, || {
        std::hint::black_box(mix_rounds(std::hint::black_box(7), probe));
    });
    ((probe as f64) * target.as_secs_f64() / took.as_secs_f64()).max(1.0) as u64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let full = std::env::args().any(|arg| arg == "--bench");
    // Everything before this line runs on every rank; only rank 0 gets past it. A job of
    // one rank gets one local thread: the one-worker baseline.
    let pool = MpiPool::builder().local_threads(1).build()?;
    let (items, item_time, trivial_items, runs) = if full {
        (64, Duration::from_millis(25), 4_000_000, 5)
    } else {
        (8, Duration::from_millis(1), 10_000, 1)
    };
    let rounds = rounds_for(item_time);
    let inputs: Vec<(u64, u64)> = (0..items).map(|seed| (seed, rounds)).collect();

    let expected: Vec<u64> = inputs.iter().copied().map(work).collect();
    let started = Instant::now();
    for &input in &inputs {
        std::hint::black_box(work(input));
    }
    let serial = started.elapsed();

    let mut results = Vec::new();
    let cpu = median(runs, || {
        results = pool
            .map(work, inputs.iter().copied())
            .expect("no item panics");
    });
    assert_eq!(results, expected, "the ranks computed other values");

    let mut sum = 0;
    let overhead = median(runs, || {
        let out = pool.map(trivial, 0..trivial_items).expect("no item panics");
        sum = out.iter().fold(0u64, |acc, &x| acc.wrapping_add(x));
    });
    let n = trivial_items;
    assert_eq!(sum, n * (n + 1) / 2, "the trivial results are wrong");
    let rate = n as f64 / overhead.as_secs_f64();

    let ranks = pool.ranks();
    let workers = pool.nodes();
    drop(pool);
    println!(
        "{ranks} ranks ({workers} running items): {items} items of {:.1} ms: median {:.3} s \
         (serial on rank 0: {:.3} s, {:.2}x); {n} trivial items: median {:.3} s, {:.2} M items/s \
         ({:.0} ns/item)",
        serial.as_secs_f64() * 1e3 / items as f64,
        cpu.as_secs_f64(),
        serial.as_secs_f64(),
        serial.as_secs_f64() / cpu.as_secs_f64(),
        overhead.as_secs_f64(),
        rate / 1e6,
        overhead.as_secs_f64() * 1e9 / n as f64,
    );
    // One line for benches/mpi_scaling.sh to tabulate.
    println!(
        "ROW ranks={ranks} workers={workers} cpu_s={:.4} serial_s={:.4} trivial_mps={:.2}",
        cpu.as_secs_f64(),
        serial.as_secs_f64(),
        rate / 1e6
    );
    Ok(())
}
