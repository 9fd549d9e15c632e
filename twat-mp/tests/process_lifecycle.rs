//! No worker process outlives its pool or its parent: not after `drop`, not after a panic
//! in the caller, not after Ctrl-C (SIGINT) or `kill -9` of the parent. Children are
//! counted from `/proc`, so the tests of this file run one at a time.

use std::io::{BufRead, BufReader};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use twat_mp::{ErrorKind, ProcessPool};

/// Set in the environment of the helper parent this file starts (itself, running only
/// `helper_parent`).
const HELPER: &str = "TWAT_MP_LIFECYCLE_HELPER";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn square(x: u64) -> u64 {
    x * x
}

fn aborts(x: u64) -> u64 {
    if x == 3 {
        std::process::abort();
    }
    x
}

/// An item that never finishes by itself.
fn hangs(x: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(3600));
    x
}

/// The pids of this process's children, zombies included (they are children until reaped).
fn children() -> Vec<u32> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let path = task.unwrap().path().join("children");
        let list = std::fs::read_to_string(path).unwrap_or_default();
        pids.extend(
            list.split_whitespace()
                .map(|pid| pid.parse::<u32>().unwrap()),
        );
    }
    pids
}

/// Whether `pid` is a live process (not gone, not a zombie waiting for its reaper).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}

#[test]
fn no_child_remains_after_drop() {
    let _serial = serial();
    assert_eq!(children(), [], "no children before the pool");
    let pool = ProcessPool::with_nodes(2).unwrap();
    assert_eq!(children(), [], "workers start lazily");
    assert_eq!(pool.map(square, 0..1000).unwrap().len(), 1000);
    let running = children();
    assert!((1..=2).contains(&running.len()), "{running:?}");
    // A crash replaces a worker; the dead one is reaped, not left a zombie.
    let outcomes: Vec<_> = pool.imap(aborts, 0..10).collect();
    assert!(matches!(
        outcomes[3].as_ref().unwrap_err().kind(),
        ErrorKind::Crashed { .. }
    ));
    assert!(children().len() <= 2, "{:?}", children());
    assert!(children().iter().all(|&pid| alive(pid)));
    drop(pool);
    assert_eq!(children(), [], "every worker is reaped by drop");
}

#[test]
fn a_panic_in_the_caller_kills_the_workers_at_once() {
    let _serial = serial();
    let start = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let pool = ProcessPool::with_nodes(2).unwrap();
        let pending = pool.apipe(hangs, 1);
        assert!(wait_until(Duration::from_secs(30), || !children().is_empty()));
        drop(pending);
        panic!("the caller fails while an item hangs");
    }));
    assert!(outcome.is_err());
    assert_eq!(children(), [], "the hanging worker was killed and reaped");
    assert!(
        start.elapsed() < Duration::from_secs(600),
        "nothing waited for the item"
    );
}

/// Starts this test binary as a parent whose two workers hang; returns it and their pids.
fn start_helper_parent() -> (std::process::Child, Vec<u32>) {
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_parent",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(HELPER, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(helper.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        // libtest prints "test helper_parent ... " on the same line first.
        if let Some((_, pids)) = line.split_once("workers:") {
            let pids: Vec<u32> = pids
                .split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect();
            assert_eq!(pids.len(), 2, "{line}");
            assert!(pids.iter().all(|&pid| alive(pid)));
            return (helper, pids);
        }
    }
    let _ = helper.kill();
    let status = helper.wait();
    panic!("the helper parent ended ({status:?}) without reporting its workers");
}

/// Whether the process `pid` ignores SIGINT: a program started in the background by a
/// shell without job control inherits that, and SIGINT cannot end it then.
fn ignores_sigint(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (SIGINT - 1)) != 0)
}

/// SIGINT's number on Linux.
const SIGINT: u32 = 2;

fn workers_end_with_their_parent(signal: &str) {
    let _serial = serial();
    let (mut helper, workers) = start_helper_parent();
    if signal == "-INT" && ignores_sigint(helper.id()) {
        // Nothing to test: this environment makes the parent deaf to Ctrl-C.
        let _ = helper.kill();
        let _ = helper.wait();
        eprintln!("skipped: SIGINT is ignored in this test's environment (inherited)");
        return;
    }
    let status = Command::new("kill")
        .args([signal, &helper.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // A watchdog: the parent must end at once; never wait for it without bound.
    let ended = wait_until(Duration::from_secs(30), || {
        helper.try_wait().unwrap().is_some()
    });
    if !ended {
        let _ = helper.kill();
        let _ = helper.wait();
        panic!("the parent did not end within 30 s of `kill {signal}`");
    }
    // Within a second of the parent's end, no worker is left running.
    assert!(
        wait_until(Duration::from_secs(1), || workers
            .iter()
            .all(|&w| !alive(w))),
        "workers {workers:?} outlived their parent"
    );
}

#[test]
fn ctrl_c_to_the_parent_ends_its_workers() {
    workers_end_with_their_parent("-INT");
}

#[test]
fn killing_the_parent_ends_its_workers() {
    workers_end_with_their_parent("-KILL");
}

/// Not a test of its own: the parent program of the two tests above, when started by them.
#[test]
fn helper_parent() {
    if std::env::var_os(HELPER).is_none() {
        return;
    }
    let pool = ProcessPool::with_nodes(2).unwrap();
    let _pending = pool.amap(hangs, 0..2);
    assert!(wait_until(Duration::from_secs(60), || children().len() == 2));
    let pids: Vec<String> = children().iter().map(u32::to_string).collect();
    println!("workers: {}", pids.join(" "));
    // Wait to be interrupted or killed (bounded, should the test that started it fail).
    std::thread::sleep(Duration::from_secs(120));
}
