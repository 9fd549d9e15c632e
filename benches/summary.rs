//! Turns what the other benches recorded (`target/bench-results/*.tsv`, written by
//! `report::record`) into `BENCHMARKS.md` and its chart `BENCHMARKS.svg`: every goal of
//! issue 13 with its figure, each group's contenders, the per-item overhead and RSS
//! tables, the Python peers, and the machine they ran on. `benches/notes.md`, written by
//! hand, is appended as it is.
//!
//! `benches/run-all.sh` runs every bench and then this one with `TWAT_MP_WRITE_BENCHMARKS=1`;
//! without it (as in a plain `cargo bench`), the goals table is only printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

mod report;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use report::{GOALS, Limit, show_figure, show_rate};

/// One contender of a criterion group, as `report_group` recorded it.
struct Run {
    name: String,
    ns: f64,
    rate: f64,
    unit: String,
    ours: bool,
}

#[derive(Default)]
struct Results {
    /// Groups in the order the benches ran them, each with its bench.
    groups: Vec<(String, String, Vec<Run>)>,
    goals: BTreeMap<String, (f64, String)>,
    overhead: Vec<(String, u64, f64)>,
    rss: Vec<(String, u64, u64)>,
    python: Vec<(String, String, f64)>,
    /// `print_ratio`'s records: bench, group, ours, peer, ratio, goal, times.
    ratios: Vec<[String; 7]>,
}

fn read_results(dir: &Path) -> Results {
    let mut results = Results::default();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|path| path.extension().is_some_and(|ext| ext == "tsv"));
    files.sort();
    for path in files {
        let bench = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            match f.as_slice() {
                ["run", group, name, _, _, unit, role] => {
                    let (Some(ns), Some(rate)) = (num(3), num(4)) else {
                        continue;
                    };
                    let run = Run {
                        name: (*name).to_owned(),
                        ns,
                        rate,
                        unit: (*unit).to_owned(),
                        ours: *role == "ours",
                    };
                    match results
                        .groups
                        .iter_mut()
                        .find(|(g, b, _)| g == group && *b == bench)
                    {
                        Some((_, _, runs)) => runs.push(run),
                        None => {
                            results
                                .groups
                                .push(((*group).to_owned(), bench.clone(), vec![run]))
                        }
                    }
                }
                ["goal", id, _, detail] => {
                    if let Some(figure) = num(2) {
                        results
                            .goals
                            .insert((*id).to_owned(), (figure, (*detail).to_owned()));
                    }
                }
                ["overhead", pool, n, _] => {
                    if let (Ok(n), Some(ns)) = (n.parse(), num(3)) {
                        results.overhead.push(((*pool).to_owned(), n, ns));
                    }
                }
                ["rss", pool, n, kb] => {
                    if let (Ok(n), Ok(kb)) = (n.parse(), kb.parse()) {
                        results.rss.push(((*pool).to_owned(), n, kb));
                    }
                }
                ["ratio", group, ours, peer, ratio, goal, times] => {
                    results.ratios.push([
                        bench.clone(),
                        (*group).to_owned(),
                        (*ours).to_owned(),
                        (*peer).to_owned(),
                        (*ratio).to_owned(),
                        (*goal).to_owned(),
                        (*times).to_owned(),
                    ]);
                }
                ["python", who, key, _] => {
                    if let Some(value) = num(3) {
                        results
                            .python
                            .push(((*who).to_owned(), (*key).to_owned(), value));
                    }
                }
                _ => {}
            }
        }
    }
    results
}

fn command_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The machine, named: CPU model, cores, memory, kernel, rustc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb: f64 = m.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
    format!(
        "{model}, {cores} cores available, {memory} of memory; Linux {kernel}; {}",
        command_line("rustc", &["-V"])
    )
}

fn goals_table(results: &Results) -> String {
    let mut out =
        String::from("| workload | goal | measured | met | how |\n|---|---|---|---|---|\n");
    for goal in GOALS {
        let limit = match goal.limit {
            Limit::AtMost(x) => format!("≤ {}", show_figure(x, goal.unit)),
            Limit::AtLeast(x) => format!("≥ {}", show_figure(x, goal.unit)),
        };
        let (figure, met, how) = match results.goals.get(goal.id) {
            Some((figure, detail)) => (
                show_figure(*figure, goal.unit),
                if goal.limit.met(*figure) {
                    "yes"
                } else {
                    "**no**"
                },
                detail.clone(),
            ),
            None => (
                "not measured".to_owned(),
                "–",
                format!("`benches/{}.rs` did not record it", goal.bench),
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {limit} | {figure} | {met} | {how} |",
            goal.workload
        );
    }
    out
}

fn peers_tables(results: &Results) -> String {
    let mut out = String::new();
    for (group, bench, runs) in &results.groups {
        let Some(ours) = runs.iter().find(|run| run.ours) else {
            continue;
        };
        let _ = writeln!(
            out,
            "\n**`{group}`** (`benches/{bench}.rs`; time ÷ `{}`: above 1, slower than ours)\n",
            ours.name
        );
        out.push_str(
            "| contender | | time of one run | rate | time ÷ ours |\n|---|---|---|---|---|\n",
        );
        for run in runs {
            let _ = writeln!(
                out,
                "| `{}` | {} | {:.3} ms | {} | {:.2} |",
                run.name,
                if run.ours { "ours" } else { "peer" },
                run.ns / 1e6,
                show_rate(run.rate, &run.unit),
                run.ns / ours.ns
            );
        }
    }
    out
}

/// The ratios the benches of earlier issues print (insights, progress, shared data, ...).
fn ratios_table(results: &Results) -> String {
    let mut out = String::from(
        "| bench | group | ours / peer | ratio | goal | times |\n|---|---|---|---|---|---|\n",
    );
    for [bench, group, ours, peer, ratio, goal, times] in &results.ratios {
        let ratio = ratio
            .parse::<f64>()
            .map_or_else(|_| ratio.clone(), |r| format!("{r:.3}"));
        let _ = writeln!(
            out,
            "| `{bench}` | `{group}` | `{ours}` / `{peer}` | {ratio} | {goal} | {times} |"
        );
    }
    out
}

fn overhead_table(results: &Results) -> String {
    let mut counts: Vec<u64> = results.overhead.iter().map(|(_, n, _)| *n).collect();
    counts.sort_unstable();
    counts.dedup();
    let mut pools: Vec<&str> = Vec::new();
    for (pool, _, _) in &results.overhead {
        if !pools.contains(&pool.as_str()) {
            pools.push(pool);
        }
    }
    let mut out = String::from("| pool |");
    for n in &counts {
        let _ = write!(out, " 10^{} |", n.ilog10());
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(counts.len()));
    out.push('\n');
    for pool in pools {
        let _ = write!(out, "| {pool} |");
        for n in &counts {
            match results
                .overhead
                .iter()
                .find(|(p, m, _)| p == pool && m == n)
            {
                Some((_, _, ns)) => {
                    let _ = write!(out, " {ns:.2} |");
                }
                None => out.push_str(" – |"),
            }
        }
        out.push('\n');
    }
    out
}

fn rss_table(results: &Results) -> String {
    let mut out = String::from("| lazy map | items | peak RSS of the caller |\n|---|---:|---:|\n");
    for (pool, n, kb) in &results.rss {
        let _ = writeln!(out, "| {pool} | {n} | {:.1} MiB |", *kb as f64 / 1024.0);
    }
    out
}

fn python_table(results: &Results) -> String {
    let mut out = String::from(
        "| pool (2 workers) | trivial items | 32 × 25 ms CPU-bound | start + one item + close |\n|---|---:|---:|---:|\n",
    );
    let mut whos: Vec<&str> = Vec::new();
    for (who, _, _) in &results.python {
        if !whos.contains(&who.as_str()) {
            whos.push(who);
        }
    }
    for who in whos {
        let get = |key: &str| {
            results
                .python
                .iter()
                .find(|(w, k, _)| w == who && k == key)
                .map(|(_, _, v)| *v)
        };
        let _ = writeln!(
            out,
            "| {who} | {} | {} | {} |",
            get("trivial").map_or("–".to_owned(), |r| show_rate(r, "items/s")),
            get("cpu_s").map_or("–".to_owned(), |s| format!("{s:.3} s")),
            get("life_ms").map_or("see `process_life` above".to_owned(), |ms| format!(
                "{ms:.1} ms"
            )),
        );
    }
    out
}

/// A rate short enough for an axis: `12.3M`, `450k`, `980`.
fn short(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.1}M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.0}k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

/// One panel per criterion group: each contender's rate (items/s or MB/s), ours in blue.
fn draw_chart(results: &Results, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let groups: Vec<_> = results
        .groups
        .iter()
        .filter(|(_, _, runs)| runs.len() > 1)
        .collect();
    let columns = 2;
    let rows = groups.len().div_ceil(columns).max(1);
    let root = SVGBackend::new(path, (1200, 60 + rows as u32 * 240)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "twat-mp and its peers: throughput by workload (blue: ours; longer is faster)",
        ("sans-serif", 22),
    )?;
    for (panel, (group, _, runs)) in root.split_evenly((rows, columns)).iter().zip(groups) {
        let unit = &runs[0].unit;
        let top = runs.iter().map(|run| run.rate).fold(0.0, f64::max) * 1.25;
        let names: Vec<&str> = runs.iter().map(|run| run.name.as_str()).collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{group} ({unit})"), ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(22)
            .y_label_area_size(190)
            // An integer range's end is one of its values: `0..last` has a bar for each run.
            .build_cartesian_2d(0.0..top, (0..runs.len() - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(runs.len())
            .y_label_formatter(&|value| match value {
                SegmentValue::CenterOf(i) => names.get(*i).copied().unwrap_or_default().to_owned(),
                _ => String::new(),
            })
            .x_labels(5)
            .x_label_formatter(&|rate| short(*rate))
            .draw()?;
        chart.draw_series(runs.iter().enumerate().map(|(i, run)| {
            let color = if run.ours {
                RGBColor(31, 119, 180)
            } else {
                RGBColor(160, 160, 160)
            };
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(i)),
                    (run.rate, SegmentValue::Exact(i + 1)),
                ],
                color.filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))?;
        chart.draw_series(runs.iter().enumerate().map(|(i, run)| {
            Text::new(
                format!(" {}", short(run.rate)),
                (run.rate, SegmentValue::CenterOf(i)),
                ("sans-serif", 12),
            )
        }))?;
    }
    root.present()?;
    Ok(())
}

fn write_markdown(results: &Results, load: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let notes = std::fs::read_to_string(root.join("benches/notes.md")).unwrap_or_default();
    let mut md = String::new();
    let _ = write!(
        md,
        "# Benchmarks\n\n\
         Generated by `benches/run-all.sh` (every bench, then `benches/summary.rs`; about\n\
         45 minutes on 2 cores): do not edit by hand, edit `benches/notes.md` (appended below)\n\
         or the benches. Each figure is from **one run** on the machine below, which was\n\
         **shared and noisy** (other builds and benches ran beside it: {load}), so read\n\
         the ratios of contenders measured in the same group, not absolute times, and expect\n\
         some noise in those too.\n\n\
         Machine: {}.\n\n\
         ## Goals (issue 13)\n\n{}\n\
         ## Peers, by workload\n\n\
         Each group is one criterion group: ours and the peers a user would pick instead,\n\
         measured in the same run. `rate` is items (or MB moved) per second of one run.\n\
         ![throughput by workload and pool](BENCHMARKS.svg)\n{}\n\
         ## Other ratios\n\n\
         The benches of earlier issues (the cost of insights, progress bars, shared data and\n\
         per-worker state), against the same pool without the feature.\n\n{}\n\
         ## Per-item overhead (ns per item)\n\n\
         The median time of a call over 10^3 … 10^7 trivial items, divided by the items\n\
         (`benches/scaling.rs`). A call's fixed cost shows at 10^3; after that, flat is good.\n\n{}\n\
         ## `imap` peak RSS\n\n\
         Each figure is a child process that runs one `imap` to the end and reads its own peak\n\
         RSS (`VmHWM`); median of 3 (`benches/scaling.rs`).\n\n{}\n\
         ## Python peers\n\n\
         `benches/compare-python.sh` (Python twat-mp 2.6.5 and mpire 2.10.2 in a virtualenv\n\
         under `target/`; `benches/python/compare.py`). Trivial items: 1,000,000 integers through\n\
         a multiply-and-mask; CPU-bound: 32 items of about 25 ms of CPU calibrated in each\n\
         language (the same share of the machine, not the same arithmetic).\n\n{}\n",
        machine(),
        goals_table(results),
        peers_tables(results),
        ratios_table(results),
        overhead_table(results),
        rss_table(results),
        python_table(results),
    );
    if !notes.is_empty() {
        md.push('\n');
        md.push_str(&notes);
    }
    md
}

fn main() {
    if std::env::args().any(|arg| arg == "--list" || arg == "--test") {
        return;
    }
    let results = read_results(&report::results_dir());
    println!("\ngoals of issue 13, from target/bench-results/:");
    print!("{}", goals_table(&results));
    if std::env::var_os("TWAT_MP_WRITE_BENCHMARKS").is_none() {
        println!("(benches/run-all.sh writes BENCHMARKS.md from these)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let load = std::fs::read_to_string(report::results_dir().join("load.txt"))
        .map_or_else(|_| "load not recorded".to_owned(), |l| l.trim().to_owned());
    std::fs::write(root.join("BENCHMARKS.md"), write_markdown(&results, &load))
        .expect("BENCHMARKS.md");
    draw_chart(&results, &root.join("BENCHMARKS.svg")).expect("BENCHMARKS.svg");
    println!("wrote BENCHMARKS.md and BENCHMARKS.svg");
}
