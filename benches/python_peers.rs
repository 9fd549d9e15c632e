//! Our side of `benches/compare-python.sh`: the workloads of `benches/python/compare.py`
//! (Python twat-mp 2.6.5 and mpire), measured the same way, then the Python script run
//! with `TWAT_MP_PYTHON` (the script's virtualenv) and the ratios printed:
//!
//! - trivial items: `ProcessPool::map` of 1,000,000 `u64` through a multiply-and-mask,
//!   warm pool of 2 workers, best of 3 runs (goal: at least 100× Python's items/s);
//! - CPU-bound: 32 items of about 25 ms of CPU each, calibrated in each language (the
//!   same share of the machine, not the same arithmetic: Rust's would take Python 100×
//!   longer), `ProcessPool::map` on 2 workers, best of 3 (goal: at least as fast).
//!
//! `benches/compare-python.sh` (it makes the virtualenv), or with Python twat-mp and mpire
//! already installed: `TWAT_MP_PYTHON=python3 cargo bench --bench python_peers`.

use std::hint::black_box;
use std::time::{Duration, Instant};

mod peers;
mod report;

use twat_mp::ProcessPool;

const TRIVIAL_ITEMS: u64 = 1_000_000;
const CPU_ITEMS: u64 = 32;
const RUNS: usize = 3;

fn mix(x: u64) -> u64 {
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The best time of `RUNS` calls of `run`, after one to warm up.
fn best_time(mut run: impl FnMut()) -> Duration {
    run();
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .min()
        .expect("RUNS > 0")
}

fn main() {
    if std::env::args().any(|arg| arg == "--list" || arg == "--test") {
        return;
    }
    let pool = ProcessPool::with_nodes(2).unwrap();
    let trivial = best_time(|| {
        black_box(pool.map(mix, 0..TRIVIAL_ITEMS).unwrap());
    });
    let ours_rate = TRIVIAL_ITEMS as f64 / trivial.as_secs_f64();
    let cpu = peers::spin_items(CPU_ITEMS, Duration::from_millis(25));
    let ours_cpu = best_time(|| {
        black_box(pool.map(peers::spin, cpu.iter().copied()).unwrap());
    });
    println!("ours (Rust twat-mp ProcessPool, 2 workers):");
    println!(
        "  trivial items: {}",
        report::show_rate(ours_rate, "items/s")
    );
    println!("  32 x 25 ms CPU-bound: {:.3} s", ours_cpu.as_secs_f64());
    report::record(&[
        "python",
        "Rust twat-mp",
        "trivial",
        &format!("{ours_rate:.0}"),
    ]);
    report::record(&[
        "python",
        "Rust twat-mp",
        "cpu_s",
        &format!("{:.4}", ours_cpu.as_secs_f64()),
    ]);

    let python = match report::run_python("compare.py") {
        Ok(out) => out,
        Err(why) => {
            println!("python: {why}; benches/compare-python.sh makes a virtualenv with both");
            return;
        }
    };
    let value = |key: &str| {
        python.lines().find_map(|line| {
            let (k, v) = line.split_once(' ')?;
            (k == key).then(|| v.trim().parse::<f64>().ok()).flatten()
        })
    };
    let version = python
        .lines()
        .find_map(|line| line.strip_prefix("python "))
        .unwrap_or("?");
    println!("Python {version}, pools of 2 workers:");
    for (peer, label) in [("twat_mp", "Python twat-mp 2.6.5"), ("mpire", "mpire")] {
        if let (Some(rate), Some(cpu_s)) = (
            value(&format!("{peer}_trivial_items_per_s")),
            value(&format!("{peer}_cpu_s")),
        ) {
            println!(
                "  {label}: trivial {} ({:.0}x slower than ours); CPU-bound {cpu_s:.3} s ({:.2}x ours)",
                report::show_rate(rate, "items/s"),
                ours_rate / rate,
                cpu_s / ours_cpu.as_secs_f64()
            );
            report::record(&["python", label, "trivial", &format!("{rate:.0}")]);
            report::record(&["python", label, "cpu_s", &format!("{cpu_s:.4}")]);
            report::goal(
                &format!("python_trivial_{}", peer.trim_end_matches("_mp")),
                ours_rate / rate,
                &format!(
                    "{} vs {}",
                    report::show_rate(ours_rate, "items/s"),
                    report::show_rate(rate, "items/s")
                ),
            );
            report::goal(
                &format!("python_cpu_{}", peer.trim_end_matches("_mp")),
                cpu_s / ours_cpu.as_secs_f64(),
                &format!("{cpu_s:.3} s vs {:.3} s", ours_cpu.as_secs_f64()),
            );
        }
    }
    if let Some(serial) = value("serial_cpu_s") {
        println!("  Python serial CPU-bound: {serial:.3} s (the 2-core limit is half of it)");
    }
    if let Some(life) = value("twat_mp_life_ms") {
        println!("  Python twat-mp start + one item + close: {life:.1} ms");
        report::record(&[
            "python",
            "Python twat-mp 2.6.5",
            "life_ms",
            &format!("{life:.2}"),
        ]);
    }
}
