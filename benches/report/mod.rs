//! What the benchmarks share to report against their peers: criterion's own estimates,
//! the goals of issue 13 and the records `benches/summary.rs` turns into BENCHMARKS.md,
//! and the Python scripts under `benches/python/`.

#![allow(dead_code)] // each bench uses what it needs

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The target directory (`CARGO_TARGET_DIR`, else the workspace's `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    )
}

static STARTED: Mutex<Option<SystemTime>> = Mutex::new(None);

/// Marks the start of this run: from then on, [`mean_ns`] ignores the estimates of
/// groups that this run did not measure (left from an earlier run).
pub fn begin() {
    *STARTED.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(SystemTime::now());
}

/// Criterion's mean estimate (ns) of one benchmark, read from its output directory.
pub fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let path = target_dir()
        .join("criterion")
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let started = *STARTED.lock().unwrap_or_else(|poison| poison.into_inner());
    if let Some(started) = started {
        if std::fs::metadata(&path).ok()?.modified().ok()? < started {
            return None;
        }
    }
    let json = std::fs::read_to_string(path).ok()?;
    let mean = json.split("\"mean\":").nth(1)?;
    let point = mean.split("\"point_estimate\":").nth(1)?;
    point.split([',', '}']).next()?.trim().parse().ok()
}

/// Prints `ours / peer`, the ratio of two benchmarks of `group` from criterion's mean
/// estimates, with the goal it is held to and both times (`per` says what one run was),
/// and records it for BENCHMARKS.md.
pub fn print_ratio(group: &str, ours: &str, peer: &str, goal: &str, per: &str) {
    match (mean_ns(group, ours), mean_ns(group, peer)) {
        (Some(a), Some(b)) => {
            println!(
                "  {group}: {ours} / {peer} = {:.3} (goal {goal}); {:.2} ms vs {:.2} ms{per}",
                a / b,
                a / 1e6,
                b / 1e6
            );
            let (ratio, times) = (
                format!("{}", a / b),
                format!("{:.2} ms vs {:.2} ms{per}", a / 1e6, b / 1e6),
            );
            record(&["ratio", group, ours, peer, &ratio, goal, &times]);
        }
        _ => println!("  {group}: {ours} or {peer} was not run"),
    }
}

/// Runs `benches/python/<script>` with `python3` (or `TWAT_MP_PYTHON`): its standard
/// output, or why it could not run (Python twat-mp not installed, say).
pub fn run_python(script: &str) -> Result<String, String> {
    let python = std::env::var("TWAT_MP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/python")
        .join(script);
    match Command::new(&python).arg(&path).output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => Err(format!(
            "not measured ({python} failed: {})",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("no message")
        )),
        Err(err) => Err(format!("not measured ({python}: {err})")),
    }
}

/// What one run (one iteration) of a group does, for its rate.
#[derive(Clone, Copy)]
pub enum Work {
    /// Items mapped per run.
    Items(u64),
    /// Bytes moved per run (reported in MB/s, 10^6 bytes).
    Bytes(u64),
}

impl Work {
    /// The rate of one run of `ns` nanoseconds, and its unit.
    pub fn rate(self, ns: f64) -> (f64, &'static str) {
        match self {
            Work::Items(n) => (n as f64 / (ns / 1e9), "items/s"),
            Work::Bytes(n) => (n as f64 / 1e6 / (ns / 1e9), "MB/s"),
        }
    }
}

/// A rate as a person reads it: `12.3 M items/s`.
pub fn show_rate(rate: f64, unit: &str) -> String {
    if rate >= 1e6 && unit == "items/s" {
        format!("{:.2} M {unit}", rate / 1e6)
    } else if rate >= 1e3 && unit == "items/s" {
        format!("{:.1} k {unit}", rate / 1e3)
    } else {
        format!("{rate:.1} {unit}")
    }
}

/// Prints every contender of `group` (mean time of one run, its rate) and the ratio of
/// each of `ours` to each of `peers` (time: below 1 means ours is faster); records them
/// for `benches/summary.rs` (the peers' table and the chart of BENCHMARKS.md).
pub fn report_group(group: &str, work: Work, ours: &[&str], peers: &[&str]) {
    println!("\n{group}:");
    let roles = ours.iter().map(|name| (name, "ours"));
    for (&name, role) in roles.chain(peers.iter().map(|name| (name, "peer"))) {
        match mean_ns(group, name) {
            Some(ns) => {
                let (rate, unit) = work.rate(ns);
                println!(
                    "  {name:<32} {:>10.3} ms  {:>22}",
                    ns / 1e6,
                    show_rate(rate, unit)
                );
                let (ns, rate) = (format!("{ns:.0}"), format!("{rate:.3}"));
                record(&["run", group, name, &ns, &rate, unit, role]);
            }
            None => println!("  {name:<32} not run"),
        }
    }
    for &a in ours {
        for &b in peers {
            if let (Some(x), Some(y)) = (mean_ns(group, a), mean_ns(group, b)) {
                println!("  {a} / {b} = {:.3}", x / y);
            }
        }
    }
}

/// A goal of issue 13, in the order of its table: `at_most` or `at_least` the figure.
pub struct Goal {
    pub id: &'static str,
    pub workload: &'static str,
    pub limit: Limit,
    /// How the figure reads: "ratio", "items/s", "ms"...
    pub unit: &'static str,
    /// The bench that measures it.
    pub bench: &'static str,
}

#[derive(Clone, Copy)]
pub enum Limit {
    AtMost(f64),
    AtLeast(f64),
}

impl Limit {
    pub fn met(self, figure: f64) -> bool {
        match self {
            Limit::AtMost(x) => figure <= x,
            Limit::AtLeast(x) => figure >= x,
        }
    }
}

const fn g(
    id: &'static str,
    workload: &'static str,
    limit: Limit,
    unit: &'static str,
    bench: &'static str,
) -> Goal {
    Goal {
        id,
        workload,
        limit,
        unit,
        bench,
    }
}

/// Every goal, in the order of the table.
pub const GOALS: &[Goal] = &[
    g(
        "map_owned",
        "`ThreadPool::map`, 2 M trivial items, owned, time vs rayon `into_par_iter`",
        Limit::AtMost(1.05),
        "×",
        "thread_pool",
    ),
    g(
        "map_borrowed",
        "`ThreadPool::par_map` over `&vec`, time vs rayon `par_iter`",
        Limit::AtMost(1.10),
        "×",
        "thread_pool",
    ),
    g(
        "pmap_load",
        "`#[pmap]` vs `ThreadPool::map`, rayon's global pool and another pool busy",
        Limit::AtMost(1.05),
        "×",
        "thread_pool",
    ),
    g(
        "imap_rate",
        "`ThreadPool::imap` of trivial items, default settings",
        Limit::AtLeast(10e6),
        "items/s",
        "thread_pool",
    ),
    g(
        "process_u64",
        "`ProcessPool::map`, trivial `u64`, warm",
        Limit::AtLeast(50e6),
        "items/s",
        "process_pool",
    ),
    g(
        "process_chunksize_1",
        "`ProcessPool::map`, `chunksize = 1`",
        Limit::AtLeast(300e3),
        "items/s",
        "process_pool",
    ),
    g(
        "process_64mib_vec",
        "`ProcessPool`, 64 MiB `Vec<u8>` item and result, each way",
        Limit::AtLeast(400.0),
        "MB/s",
        "process_pool",
    ),
    g(
        "process_64mib_serde_bytes",
        "the same as `serde_bytes::ByteBuf`, each way",
        Limit::AtLeast(1000.0),
        "MB/s",
        "process_pool",
    ),
    g(
        "process_64mib_bytes",
        "the same as `bytes::Bytes`, each way",
        Limit::AtLeast(1000.0),
        "MB/s",
        "process_pool",
    ),
    g(
        "process_life",
        "`ProcessPool` start + one item + drop, 2 workers",
        Limit::AtMost(2.0),
        "ms",
        "process_pool",
    ),
    g(
        "procspawn_10us",
        "`ProcessPool::map` vs procspawn's pool, 10,000 items of ~10 µs, time",
        Limit::AtMost(0.5),
        "×",
        "process_pool",
    ),
    g(
        "procspawn_1ms",
        "`ProcessPool::map` vs procspawn's pool, 10,000 items of ~1 ms, time",
        Limit::AtMost(1.02),
        "×",
        "process_pool",
    ),
    g(
        "cpu_thread",
        "32 × 25 ms CPU-bound, `ThreadPool::map` speed-up over serial",
        Limit::AtLeast(1.9),
        "×",
        "thread_pool",
    ),
    g(
        "cpu_process",
        "32 × 25 ms CPU-bound, `ProcessPool::map` speed-up over serial",
        Limit::AtLeast(1.9),
        "×",
        "thread_pool",
    ),
    g(
        "apmap_100k",
        "`#[apmap]`, 100,000 tasks of a 10 ms sleep, all allowed in flight, time vs tokio `JoinSet`",
        Limit::AtMost(1.2),
        "×",
        "async_dispatch",
    ),
    g(
        "rss_thread",
        "`ThreadPool::imap` peak RSS, 2 M vs 20 k items",
        Limit::AtMost(1.2),
        "×",
        "scaling",
    ),
    g(
        "rss_process",
        "`ProcessPool::imap` peak RSS, 2 M vs 20 k items",
        Limit::AtMost(1.2),
        "×",
        "scaling",
    ),
    g(
        "python_trivial_twat",
        "trivial items, items/s vs Python twat-mp 2.6.5 `ProcessPool`",
        Limit::AtLeast(100.0),
        "×",
        "python_peers",
    ),
    g(
        "python_trivial_mpire",
        "trivial items, items/s vs mpire `WorkerPool`",
        Limit::AtLeast(100.0),
        "×",
        "python_peers",
    ),
    g(
        "python_cpu_twat",
        "CPU-bound items, time of Python twat-mp / ours",
        Limit::AtLeast(1.0),
        "×",
        "python_peers",
    ),
    g(
        "python_cpu_mpire",
        "CPU-bound items, time of mpire / ours",
        Limit::AtLeast(1.0),
        "×",
        "python_peers",
    ),
];

/// Looks a goal up by its id.
pub fn goal_of(id: &str) -> &'static Goal {
    GOALS
        .iter()
        .find(|goal| goal.id == id)
        .unwrap_or_else(|| panic!("no goal `{id}` in report::GOALS"))
}

/// A figure shown with its unit: `1.02×`, `12.30 M items/s`, `1.43 ms`.
pub fn show_figure(figure: f64, unit: &str) -> String {
    match unit {
        "×" => format!("{figure:.2}×"),
        "items/s" => show_rate(figure, unit),
        "ms" => format!("{figure:.2} ms"),
        _ => format!("{figure:.0} {unit}"),
    }
}

/// Prints and records the measured `figure` of goal `id`, with `detail` (how it was
/// measured: both times, say).
pub fn goal(id: &str, figure: f64, detail: &str) {
    let goal = goal_of(id);
    let (word, limit) = match goal.limit {
        Limit::AtMost(x) => ("<=", x),
        Limit::AtLeast(x) => (">=", x),
    };
    println!(
        "  goal {id}: {} (goal {word} {}): {}{}",
        show_figure(figure, goal.unit),
        show_figure(limit, goal.unit),
        if goal.limit.met(figure) {
            "met"
        } else {
            "MISSED"
        },
        if detail.is_empty() {
            String::new()
        } else {
            format!("; {detail}")
        }
    );
    record(&["goal", id, &format!("{figure}"), detail]);
}

/// [`goal`] for a ratio of two criterion means of `group`: `ours / peer`, or its inverse
/// (`peer / ours`: a speed-up) when `inverse`.
pub fn goal_ratio(id: &str, group: &str, ours: &str, peer: &str, inverse: bool) {
    match (mean_ns(group, ours), mean_ns(group, peer)) {
        (Some(a), Some(b)) => {
            let figure = if inverse { b / a } else { a / b };
            goal(
                id,
                figure,
                &format!("{ours} {:.2} ms, {peer} {:.2} ms", a / 1e6, b / 1e6),
            );
        }
        _ => println!("  goal {id}: {ours} or {peer} of {group} was not run"),
    }
}

/// [`goal`] for the rate of one contender of `group`.
pub fn goal_rate(id: &str, group: &str, name: &str, work: Work) {
    match mean_ns(group, name) {
        Some(ns) => goal(
            id,
            work.rate(ns).0,
            &format!("{name}: {:.2} ms a run", ns / 1e6),
        ),
        None => println!("  goal {id}: {name} of {group} was not run"),
    }
}

/// Where the benches leave their records for `benches/summary.rs`.
pub fn results_dir() -> PathBuf {
    target_dir().join("bench-results")
}

/// Appends one tab-separated record to `bench-results/<this bench>.tsv`; the first
/// record of a run starts the file anew, so that it holds this run's figures only.
pub fn record(fields: &[&str]) {
    static FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);
    let mut file = FILE.lock().unwrap_or_else(|poison| poison.into_inner());
    if file.is_none() {
        let dir = results_dir();
        let opened = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::File::create(dir.join(concat!(env!("CARGO_CRATE_NAME"), ".tsv")))
        });
        match opened {
            Ok(f) => *file = Some(f),
            Err(err) => return eprintln!("cannot record bench results: {err}"),
        }
    }
    if let Some(f) = file.as_mut() {
        let line: Vec<String> = fields
            .iter()
            .map(|f| f.replace(['\t', '\n'], " "))
            .collect();
        if let Err(err) = writeln!(f, "{}", line.join("\t")) {
            eprintln!("cannot record bench results: {err}");
        }
    }
}

/// Two contenders timed run by run, in turn: what [`in_turn_runs`] measured, in ns per call.
///
/// Criterion times one function after the other, so on a shared machine the load of the
/// moment, and which pool ran last (its threads awake, its memory warm), set a ratio as
/// much as the work does. Taken in turn, each call of one side has a call of the other
/// within a few milliseconds of it, under the same load.
///
/// With [`in_turn_runs`], each side's turn is a run of several calls (≥ 100 ms of work),
/// so that one preemption cannot decide a pair; the times are then per call (the run's
/// time over its calls), and the minor page faults of each side's timed calls are counted
/// too ([`minor_faults`]).
pub struct Paired {
    /// ns per call of ours, one figure per turn.
    pub ours: Vec<f64>,
    /// ns per call of the peer, one figure per turn.
    pub peer: Vec<f64>,
    /// Calls per turn (0 until measured).
    pub calls: u32,
    /// Minor page faults during ours' timed calls, over all turns, where counted.
    pub ours_faults: Option<u64>,
    /// The same for the peer.
    pub peer_faults: Option<u64>,
}

impl Paired {
    /// Nothing measured yet (for a `static`).
    pub const NONE: Paired = Paired {
        ours: Vec::new(),
        peer: Vec::new(),
        calls: 0,
        ours_faults: None,
        peer_faults: None,
    };
}

/// The minor page faults of this process so far (`minflt` of `/proc/self/stat`), where
/// it can be read: each is a page the kernel had to map (and zero) on first touch.
pub fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name (in parentheses, which may hold spaces): state, ppid, pgrp,
    // session, tty_nr, tpgid, flags, minflt.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(7)?.parse().ok()
}

fn median(times: &[f64]) -> f64 {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

impl Paired {
    /// The median time of one call of ours.
    pub fn ours_median(&self) -> f64 {
        median(&self.ours)
    }

    /// The median time of one call of the peer.
    pub fn peer_median(&self) -> f64 {
        median(&self.peer)
    }

    /// Ours over the peer: the ratio of the medians.
    pub fn ratio(&self) -> f64 {
        self.ours_median() / self.peer_median()
    }

    /// The median of the ratios of each pair of calls (run back to back).
    pub fn pair_ratio(&self) -> f64 {
        let ratios: Vec<f64> = self
            .ours
            .iter()
            .zip(&self.peer)
            .map(|(ours, peer)| ours / peer)
            .collect();
        median(&ratios)
    }

    /// One line: both medians and totals, and both ratios (and, for runs of several
    /// calls, each side's page faults per call).
    pub fn describe(&self, ours: &str, peer: &str) -> String {
        let calls = f64::from(self.calls.max(1));
        let total = |times: &[f64]| times.iter().sum::<f64>() * calls / 1e6;
        let turns = if self.calls > 1 {
            format!(
                "{} runs of {} calls each side in turn",
                self.ours.len(),
                self.calls
            )
        } else {
            format!("{} calls each in turn", self.ours.len())
        };
        let faults = match (self.ours_faults, self.peer_faults) {
            (Some(a), Some(b)) if self.calls > 1 => {
                let per_call = |n: u64| n as f64 / (calls * self.ours.len().max(1) as f64);
                format!(
                    "; page faults a call: {ours} {:.0}, {peer} {:.0}",
                    per_call(a),
                    per_call(b)
                )
            }
            _ => String::new(),
        };
        format!(
            "{turns}: {ours} median {:.3} ms (total {:.0} ms), {peer} median \
             {:.3} ms (total {:.0} ms); ratio of medians {:.3}, median pair ratio {:.3}{faults}",
            self.ours_median() / 1e6,
            total(&self.ours),
            self.peer_median() / 1e6,
            total(&self.peer),
            self.ratio(),
            self.pair_ratio()
        )
    }
}

/// Runs `iters` pairs of runs, `ours` and `peer` in turn, for a criterion function's
/// `iter_custom`: adds both times of each pair to `stash` and returns the time of ours.
/// Each side's turn is a run of `calls` calls, each with a fresh, untimed input from
/// `setup`, its output dropped after the clock stops, so that a turn holds enough work
/// (≥ 100 ms) that one preemption cannot decide it. Which side goes first alternates from
/// pair to pair, so neither always runs right after the other (on threads the other just
/// left, or memory it just freed).
/// Adds each run's time per call to `stash`, with the page faults of the timed calls,
/// and returns the time of ours' runs.
pub fn in_turn_runs<I, A, B>(
    stash: &Mutex<Paired>,
    iters: u64,
    calls: u32,
    setup: impl Fn() -> I,
    ours: impl FnMut(I) -> A,
    peer: impl FnMut(I) -> B,
) -> Duration {
    in_turn_each(
        stash,
        iters,
        calls,
        calls > 1,
        (&setup, ours),
        (&setup, peer),
    )
}

/// [`in_turn_runs`] where each side makes its own untimed input: `(setup, call)` for
/// ours, then for the peer (a setup may run something just before the timed call, say);
/// page faults are counted only with `count` (reading them takes tens of microseconds
/// between the setup and the call).
pub fn in_turn_each<I, J, A, B>(
    stash: &Mutex<Paired>,
    iters: u64,
    calls: u32,
    count: bool,
    mut ours: (impl FnMut() -> I, impl FnMut(I) -> A),
    mut peer: (impl FnMut() -> J, impl FnMut(J) -> B),
) -> Duration {
    let mut guard = stash.lock().unwrap_or_else(|poison| poison.into_inner());
    let stash = &mut *guard;
    stash.calls = calls;
    if stash.ours.is_empty() && count {
        (stash.ours_faults, stash.peer_faults) = (Some(0), Some(0));
    }
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let first = stash.ours.len() % 2;
        for side in [first, 1 - first] {
            let (took, faults) = if side == 0 {
                run_calls(calls, count, &mut ours.0, &mut ours.1)
            } else {
                run_calls(calls, count, &mut peer.0, &mut peer.1)
            };
            let per_call = took.as_nanos() as f64 / f64::from(calls);
            let (times, counted) = if side == 0 {
                total += took;
                (&mut stash.ours, &mut stash.ours_faults)
            } else {
                (&mut stash.peer, &mut stash.peer_faults)
            };
            times.push(per_call);
            *counted = counted.zip(faults).map(|(sum, more)| sum + more);
        }
    }
    total
}

/// Times `calls` calls of `f`, each on a fresh input from `setup` (untimed), its output
/// dropped after the clock stops; with `count`, also the page faults of the timed calls.
pub fn run_calls<I, O>(
    calls: u32,
    count: bool,
    mut setup: impl FnMut() -> I,
    mut f: impl FnMut(I) -> O,
) -> (Duration, Option<u64>) {
    use std::hint::black_box;
    let mut took = Duration::ZERO;
    let mut faults = Some(0_u64);
    for _ in 0..calls {
        let input = setup();
        let before = if count { minor_faults() } else { None };
        let start = Instant::now();
        let out = black_box(f(input));
        took += start.elapsed();
        let after = if count { minor_faults() } else { None };
        drop(out);
        faults = match (faults, before, after) {
            (Some(sum), Some(b), Some(a)) => Some(sum + a.saturating_sub(b)),
            _ => None,
        };
    }
    (took, faults)
}

/// Prints an [`in_turn_runs`] measurement of `group` and records its median pair ratio as goal
/// `id` (`ours / peer`): each pair ran back to back, under the same load, so the load's
/// drift over the run cancels out (the ratio of the medians does not cancel it).
pub fn goal_paired(id: &str, group: &str, ours: &str, peer: &str, measured: &Paired) {
    if measured.ours.is_empty() {
        return println!("  goal {id}: {ours} and {peer} of {group} were not run in turn");
    }
    let detail = measured.describe(ours, peer);
    println!("\n{group}, {detail}");
    record(&[
        "ratio",
        group,
        &format!("{ours} (in turn)"),
        &format!("{peer} (in turn)"),
        &format!("{}", measured.pair_ratio()),
        &match goal_of(id).limit {
            Limit::AtMost(x) => format!("<= {x}"),
            Limit::AtLeast(x) => format!(">= {x}"),
        },
        &detail,
    ]);
    goal(id, measured.pair_ratio(), &detail);
}
