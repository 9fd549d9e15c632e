//! No worker process outlives its pool or its parent: not after `drop`, not after a panic
//! in the caller, not after Ctrl-C (SIGINT), SIGTERM or `kill -9` of the parent in the
//! middle of a map. Children are counted from `/proc`, so the tests of this file run one
//! at a time.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, Command, Stdio};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use twat_mp::{ErrorKind, ProcessPool};

use crate::support;

/// Set in the environment of the helper parent this file starts (itself, running only
/// `helper_parent`).
const HELPER: &str = "TWAT_MP_LIFECYCLE_HELPER";

/// Children are counted in the whole process: every test of this file runs alone in its
/// binary.
fn serial() -> MutexGuard<'static, ()> {
    support::alone()
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

/// An item that does not finish by itself: it waits two minutes (bounded, so that a
/// program a failed test left behind ends by itself).
fn hangs(x: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(120));
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
    // The watchdog: a drop that waited for the hanging item (two minutes) fails it.
    support::within(
        Duration::from_secs(60),
        "the pool dropped by a panic",
        || {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                // Declared first, dropped last: the pool's own drop (during the panic) is
                // what stops the item, not the `AsyncResult`'s.
                let _pending;
                let pool = ProcessPool::with_nodes(2).unwrap();
                _pending = pool.apipe(hangs, 1);
                assert!(wait_until(Duration::from_secs(30), || !children().is_empty()));
                panic!("the caller fails while an item hangs");
            }));
            assert!(outcome.is_err());
        },
    );
    assert_eq!(children(), [], "the hanging worker was killed and reaped");
}

/// The parent program of the signal tests (this test binary started again, running only
/// `helper_parent`), the leader of a process group of its own, so that its workers (and
/// any worker started to replace one) are exactly the other members of that group.
struct Helper {
    child: Child,
    workers: Vec<u32>,
}

impl Helper {
    /// Starts the parent, whose map (of a `ProcessPool`, or with `pool` = "async" of an
    /// `AsyncMultiPool` in process mode) runs on two workers, and waits until both run an
    /// item.
    fn start(pool: &str) -> Helper {
        let exe = std::env::current_exe().unwrap();
        let args = [
            "--exact",
            &support::test_name(module_path!(), "helper_parent"),
            "--nocapture",
            "--test-threads",
            "1",
        ];
        // A program started where SIGINT is ignored (a shell's background job without job
        // control) inherits that, and Ctrl-C cannot end it; `env --default-signal`
        // (GNU coreutils 8.31 and later) gives it back SIGINT's default action.
        let mut command = if ignores_sigint(std::process::id()) && env_restores_sigint() {
            let mut command = Command::new("env");
            command.arg("--default-signal=INT").arg(exe).args(args);
            command
        } else {
            let mut command = Command::new(exe);
            command.args(args);
            command
        };
        let mut child = command
            .env(HELPER, pool)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        for line in stdout.lines() {
            let line = line.unwrap();
            // libtest prints "test helper_parent ... " on the same line first.
            if let Some((_, pids)) = line.split_once("workers:") {
                let workers: Vec<u32> = pids
                    .split_whitespace()
                    .map(|p| p.parse().unwrap())
                    .collect();
                let helper = Helper { child, workers };
                assert_eq!(helper.workers.len(), 2, "{line}");
                assert!(helper.workers.iter().all(|&pid| alive(pid)));
                return helper;
            }
        }
        let _ = child.kill();
        let status = child.wait();
        panic!("the helper parent ended ({status:?}) without reporting its workers");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The live processes of the parent's group other than the parent: its workers.
    fn live_workers(&self) -> Vec<u32> {
        let group = self.pid();
        let mut live = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // After the command's name: state, parent, process group.
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let in_group = fields.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(group);
            if in_group && pid != group && alive(pid) {
                live.push(pid);
            }
        }
        live
    }
}

impl Drop for Helper {
    /// Whatever the test's outcome: the parent and its group are gone when it ends.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid())])
            .stderr(Stdio::null())
            .status();
        // Should `kill` be missing: the parent alone, whose workers die with it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the process `pid` ignores SIGINT (from `/proc/<pid>/status`).
fn ignores_sigint(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (SIGINT - 1)) != 0)
}

/// Whether this system's `env` can restore SIGINT's default action.
fn env_restores_sigint() -> bool {
    Command::new("env")
        .args(["--default-signal=INT", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// SIGINT's number on Linux.
const SIGINT: u32 = 2;

/// Where a signal goes.
#[derive(Clone, Copy)]
enum Target {
    /// The parent alone (`kill`, a service manager that signals the main process).
    Parent,
    /// The parent's whole process group: what a terminal does on Ctrl-C.
    Group,
}

/// Sends `signal` to a parent in the middle of a map and checks that it ends, and that
/// no worker of it is running within `limit` of the signal. Prints the figures measured.
fn workers_end_with_their_parent(signal: &'static str, target: Target, pool: &str) {
    let _serial = serial();
    let helper = Helper::start(pool);
    let pool = pool.to_owned();
    let mut signal = signal;
    if signal == "-INT" && ignores_sigint(helper.pid()) {
        // Nothing restored SIGINT's default (no `env --default-signal` here): SIGTERM,
        // whose default action is the same, stands in for it.
        eprintln!("SIGINT is ignored in this environment and cannot be restored: SIGTERM instead");
        signal = "-TERM";
    }
    let to = match target {
        Target::Parent => helper.pid().to_string(),
        Target::Group => format!("-{}", helper.pid()),
    };
    support::within(Duration::from_secs(60), "the parent's end", move || {
        let mut helper = helper;
        let sent = Instant::now();
        let status = Command::new("kill")
            .args([signal, "--", &to])
            .status()
            .unwrap();
        assert!(status.success());
        let status = helper.child.wait().unwrap();
        let parent_gone = sent.elapsed();
        assert!(
            !status.success(),
            "the parent was ended by the signal ({status:?})"
        );
        // Generous, for a loaded machine: the figures printed say how long it took.
        let limit = Duration::from_secs(5);
        let gone = wait_until(limit, || helper.live_workers().is_empty());
        let workers_gone = sent.elapsed();
        assert!(
            gone,
            "workers {:?} of the parent (first ones: {:?}) still ran {limit:?} after `kill {signal}`",
            helper.live_workers(),
            helper.workers
        );
        eprintln!(
            "measured: {pool} map, `kill {signal}` to {}: parent gone after {:.1} ms, every worker after {:.1} ms",
            match target {
                Target::Parent => "the parent",
                Target::Group => "the process group",
            },
            parent_gone.as_secs_f64() * 1e3,
            workers_gone.as_secs_f64() * 1e3,
        );
    });
}

#[test]
fn ctrl_c_in_a_terminal_ends_the_program_and_its_workers() {
    workers_end_with_their_parent("-INT", Target::Group, "process");
}

#[test]
fn sigint_to_the_parent_ends_its_workers() {
    workers_end_with_their_parent("-INT", Target::Parent, "process");
}

#[test]
fn sigterm_to_the_parent_ends_its_workers() {
    workers_end_with_their_parent("-TERM", Target::Parent, "process");
}

#[test]
fn killing_the_parent_ends_its_workers() {
    workers_end_with_their_parent("-KILL", Target::Parent, "process");
}

#[cfg(feature = "aio")]
#[test]
fn ctrl_c_ends_an_async_process_map_and_its_workers() {
    workers_end_with_their_parent("-INT", Target::Group, "async");
}

#[cfg(feature = "aio")]
#[test]
fn sigterm_ends_an_async_process_map_and_its_workers() {
    workers_end_with_their_parent("-TERM", Target::Parent, "async");
}

#[cfg(feature = "aio")]
#[test]
fn killing_the_parent_of_an_async_process_map_ends_its_workers() {
    workers_end_with_their_parent("-KILL", Target::Parent, "async");
}

/// The async form of [`hangs`].
#[cfg(feature = "aio")]
async fn hangs_async(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_secs(120)).await;
    x
}

/// Not a test of its own: the parent program of the signal tests, when started by them.
/// Its main thread is in the middle of a `map` whose items hang when the signal comes.
#[test]
fn helper_parent() {
    // In the parent process too: its thread must not come and go beside another test.
    let _serial = serial();
    let Some(pool) = std::env::var_os(HELPER) else {
        return;
    };
    std::thread::spawn(|| {
        assert!(wait_until(Duration::from_secs(60), || children().len() == 2));
        let pids: Vec<String> = children().iter().map(u32::to_string).collect();
        println!("workers: {}", pids.join(" "));
    });
    // Ends only by a signal (or after the items' two minutes, should the test fail).
    if pool == "async" {
        #[cfg(feature = "aio")]
        {
            let pool = twat_mp::AsyncMultiPool::builder()
                .nodes(2)
                .concurrency(1)
                .processes()
                .build()
                .unwrap();
            let _ = pollster::block_on(pool.map(hangs_async, 0..64));
        }
    } else {
        let pool = ProcessPool::with_nodes(2).unwrap();
        let _ = pool.map(hangs, 0..64);
    }
}
