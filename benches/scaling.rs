//! How each pool's cost grows with the number of items (issue 13):
//!
//! - per-item overhead: the time of one call over 10^3 .. 10^7 trivial items divided by
//!   the items, for every pool and lazy map, beside serial code and rayon (it should stay
//!   flat: a call's fixed cost shows at 10^3, and nothing should grow per item after);
//! - `imap`'s peak RSS over 2,000,000 items against 20,000 (goal: at most 1.2×): each
//!   figure is measured by a child process of its own (this bench started again), which
//!   runs one `imap` and reads its own peak RSS (`VmHWM` in `/proc/self/status`).
//!
//! Its own timing, not criterion's: each cell is the median of repeated calls (at least 2,
//! and at least 300 ms of calls). Run with `cargo bench --bench scaling`.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

mod peers;
mod report;

use peers::trivial;
use rayon::prelude::*;
use twat_mp::{AsyncMultiPool, ProcessPool, ThreadPool};

const COUNTS: [u64; 5] = [1_000, 10_000, 100_000, 1_000_000, 10_000_000];
/// The environment variable that makes this bench a child measuring one `imap`'s RSS.
const RSS_CHILD: &str = "TWAT_MP_BENCH_RSS_CHILD";
const RSS_COUNTS: [u64; 2] = [20_000, 2_000_000];

async fn trivial_task(x: u64) -> u64 {
    trivial(x)
}

/// The median time of one call of `run`, repeated for at least 300 ms and twice.
fn median_time(mut run: impl FnMut()) -> Duration {
    run(); // warm: pools started, caches and allocator primed
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < 2 || (started.elapsed() < Duration::from_millis(300) && times.len() < 1000)
    {
        let start = Instant::now();
        run();
        times.push(start.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

type Runner<'a> = Box<dyn Fn(u64) + 'a>;

fn overhead_table() {
    let threads = ThreadPool::new().unwrap();
    let processes = ProcessPool::new().unwrap();
    let tasks = AsyncMultiPool::new().unwrap();
    let fold = |acc: u64, x: Result<u64, twat_mp::WorkerError>| acc ^ x.unwrap();
    let pools: Vec<(&str, Runner<'_>)> = vec![
        (
            "serial",
            Box::new(|n| {
                black_box((0..n).map(trivial).collect::<Vec<_>>());
            }),
        ),
        (
            "rayon into_par_iter",
            Box::new(|n| {
                black_box((0..n).into_par_iter().map(trivial).collect::<Vec<_>>());
            }),
        ),
        (
            "ThreadPool::map",
            Box::new(|n| {
                black_box(threads.map(trivial, 0..n).unwrap());
            }),
        ),
        (
            "ThreadPool::imap",
            Box::new(|n| {
                black_box(threads.imap(trivial, 0..n).fold(0, fold));
            }),
        ),
        (
            "ProcessPool::map",
            Box::new(|n| {
                black_box(processes.map(trivial, 0..n).unwrap());
            }),
        ),
        (
            "ProcessPool::imap",
            Box::new(|n| {
                black_box(processes.imap(trivial, 0..n).fold(0, fold));
            }),
        ),
        (
            "AsyncMultiPool::map",
            Box::new(|n| {
                black_box(pollster::block_on(tasks.map(trivial_task, 0..n)).unwrap());
            }),
        ),
    ];
    println!("per-item overhead, ns per item (median call time / items; trivial items):");
    print!("  {:<22}", "pool");
    for n in COUNTS {
        print!("{:>12}", format!("10^{}", n.ilog10()));
    }
    println!();
    for (name, run) in &pools {
        print!("  {name:<22}");
        for n in COUNTS {
            let per_item = median_time(|| run(n)).as_nanos() as f64 / n as f64;
            print!("{per_item:>12.2}");
            report::record(&["overhead", name, &n.to_string(), &format!("{per_item:.3}")]);
        }
        println!();
    }
}

/// In the child: one `imap` of `n` items on `pool`, then its own peak RSS, printed.
fn rss_child(spec: &str) {
    let (pool, n) = spec.split_once(':').expect("pool:items");
    let n: u64 = n.parse().expect("a count of items");
    let fold = |acc: u64, x: Result<u64, twat_mp::WorkerError>| acc ^ x.unwrap();
    let out = match pool {
        "thread" => ThreadPool::new().unwrap().imap(trivial, 0..n).fold(0, fold),
        "process" => ProcessPool::new()
            .unwrap()
            .imap(trivial, 0..n)
            .fold(0, fold),
        other => panic!("no pool `{other}`"),
    };
    black_box(out);
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let peak = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    println!("{}", peak.trim().trim_end_matches("kB").trim());
}

/// The peak RSS (kB) of a child that runs one `imap` of `n` items on `pool`: the
/// median of 3 children.
fn peak_rss_kb(pool: &str, n: u64) -> u64 {
    let exe = std::env::current_exe().expect("this bench's executable");
    let mut peaks: Vec<u64> = (0..3)
        .map(|_| {
            let out = Command::new(&exe)
                .env(RSS_CHILD, format!("{pool}:{n}"))
                .output()
                .expect("a child of this bench");
            assert!(
                out.status.success(),
                "the RSS child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("kB from the child")
        })
        .collect();
    peaks.sort_unstable();
    peaks[1]
}

fn rss_table() {
    println!("\nimap peak RSS of the calling process (median of 3 children each):");
    for (pool, id, name) in [
        ("thread", "rss_thread", "ThreadPool::imap"),
        ("process", "rss_process", "ProcessPool::imap"),
    ] {
        let [small, large] = RSS_COUNTS.map(|n| peak_rss_kb(pool, n));
        for (n, kb) in RSS_COUNTS.iter().zip([small, large]) {
            println!("  {name:<20} {n:>9} items: {:>8.1} MiB", kb as f64 / 1024.0);
            report::record(&["rss", name, &n.to_string(), &kb.to_string()]);
        }
        report::goal(
            id,
            large as f64 / small as f64,
            &format!(
                "{:.1} MiB vs {:.1} MiB",
                large as f64 / 1024.0,
                small as f64 / 1024.0
            ),
        );
    }
}

fn main() {
    if let Ok(spec) = std::env::var(RSS_CHILD) {
        return rss_child(&spec);
    }
    if std::env::args().any(|arg| arg == "--list" || arg == "--test") {
        // `cargo test --benches` and criterion's listing: nothing to measure.
        return;
    }
    overhead_table();
    rss_table();
}
