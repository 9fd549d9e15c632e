//! What the benchmarks share to report against their peers: criterion's own estimates,
//! and the Python twat-mp scripts under `benches/python/`.

#![allow(dead_code)] // each bench uses what it needs

use std::path::{Path, PathBuf};
use std::process::Command;

/// Criterion's mean estimate (ns) of one benchmark, read from its output directory.
pub fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    let path = dir
        .join("criterion")
        .join(group)
        .join(function)
        .join("new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let mean = json.split("\"mean\":").nth(1)?;
    let point = mean.split("\"point_estimate\":").nth(1)?;
    point.split([',', '}']).next()?.trim().parse().ok()
}

/// Prints `ours / peer`, the ratio of two benchmarks of `group` from criterion's mean
/// estimates, with the goal it is held to and both times (`per` says what one run was).
pub fn print_ratio(group: &str, ours: &str, peer: &str, goal: &str, per: &str) {
    match (mean_ns(group, ours), mean_ns(group, peer)) {
        (Some(a), Some(b)) => println!(
            "  {group}: {ours} / {peer} = {:.3} (goal {goal}); {:.2} ms vs {:.2} ms{per}",
            a / b,
            a / 1e6,
            b / 1e6
        ),
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
