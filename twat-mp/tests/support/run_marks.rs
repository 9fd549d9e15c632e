//! How a test sees how often an item ran in a worker process: the functions that cross to
//! worker processes capture nothing, so each item carries the directory where its runs
//! leave their marks, one line (the pid of the process that ran it) per run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One item: where its runs leave their marks, and its value.
pub type Item = (String, u64);

/// A fresh, empty directory for one test, removed with everything in it when dropped
/// (so that a suite run leaves nothing behind in the temporary directory).
pub struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty directory for one test of the binary `binary`.
pub fn scratch(binary: &str, test: &str) -> Scratch {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "twat-mp-{binary}-{}-{test}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// The items of `values`, each marking its runs in `dir`.
pub fn items(dir: &Path, values: std::ops::Range<u64>) -> Vec<Item> {
    let dir = dir.to_str().unwrap().to_owned();
    values.map(|x| (dir.clone(), x)).collect()
}

/// Marks one run of item `x` in `dir`; returns how many runs it had before this one.
pub fn mark_run(dir: &str, x: u64) -> usize {
    let path = Path::new(dir).join(format!("runs-{x}"));
    let before = std::fs::read_to_string(&path).map_or(0, |runs| runs.lines().count());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    // One short append: visible to every process at once, and never torn.
    writeln!(file, "{}", std::process::id()).unwrap();
    before
}

/// The pids of the processes that ran item `x`, one per run.
pub fn runs(dir: &Path, x: u64) -> Vec<u32> {
    std::fs::read_to_string(dir.join(format!("runs-{x}")))
        .unwrap_or_default()
        .lines()
        .map(|pid| pid.parse().unwrap())
        .collect()
}
