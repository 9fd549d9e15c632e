//! Leaks (issue 14): pools created, used and dropped, and one pool used for many calls
//! that fail, leave nothing behind: this process's open file descriptors
//! (`/proc/self/fd`), its threads (`/proc/self/task`) and its child processes (every
//! `/proc/<pid>/stat` whose parent is this process, zombies — state `Z` — included) come
//! back to what they were before.
//!
//! What a pool leaves is only seen from outside the pool, in the whole process, so this
//! file has one `#[test]`, and it runs alone in its test binary (`support::alone()`):
//! another test's pool, running at the same time, would count as a leak. Threads end and processes are reaped a little after a pool's drop returns
//! (a rayon thread finishes its loop, a worker process reads its socket's end), so each
//! check waits for the counts to come back, up to a deadline, and then fails naming what
//! is left (file descriptors by their target, threads by name, children by pid and
//! state).
#![cfg(target_os = "linux")]

use crate::support;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use support::numbers::collatz_steps;
use twat_mp::{ErrorKind, ProcessPool, ThreadPool};

/// Pools of each kind created, used and dropped.
const POOLS: usize = 200;
/// Calls that fail, on one pool of each kind.
const FAILING_CALLS: usize = 1_000;
/// How long what a dropped pool leaves may take to go away before it counts as a leak.
const SETTLE: Duration = Duration::from_secs(30);

/// What this process holds: the resources a pool could leak.
#[derive(PartialEq, Eq)]
struct Held {
    /// Open file descriptors, by number, with what each refers to.
    fds: BTreeMap<u32, String>,
    /// Threads, by id, with their names.
    threads: BTreeMap<u32, String>,
    /// Child processes, by pid, with their state (`Z` for a zombie) and command.
    children: BTreeMap<u32, String>,
}

impl Held {
    fn now() -> Self {
        let mut threads = entries("/proc/self/task", |path| {
            std::fs::read_to_string(path.join("comm")).map(|name| name.trim().to_owned())
        });
        threads.retain(|_, name| !waits_its_turn(name));
        Held {
            fds: fds(),
            threads,
            children: children(),
        }
    }

    /// What `self` holds beyond `baseline`, in words, or `None` if nothing: the threads
    /// and children whose ids are new, and the descriptors whose targets are more than
    /// before (a descriptor number is reused as soon as it is closed, so it names
    /// nothing).
    fn beyond(&self, baseline: &Held) -> Option<String> {
        fn new_ids(now: &BTreeMap<u32, String>, before: &BTreeMap<u32, String>) -> Vec<String> {
            now.iter()
                .filter(|(id, _)| !before.contains_key(id))
                .map(|(id, what)| format!("{id} {what}"))
                .collect()
        }
        let mut fds: Vec<String> = self.fds.values().cloned().collect();
        for before in baseline.fds.values() {
            if let Some(at) = fds.iter().position(|now| now == before) {
                fds.remove(at);
            }
        }
        let threads = new_ids(&self.threads, &baseline.threads);
        let children = new_ids(&self.children, &baseline.children);
        if fds.is_empty() && threads.is_empty() && children.is_empty() {
            None
        } else {
            Some(format!(
                "file descriptors {fds:?}, threads {threads:?}, child processes {children:?}"
            ))
        }
    }
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} file descriptors, {} threads, {} child processes",
            self.fds.len(),
            self.threads.len(),
            self.children.len()
        )
    }
}

/// The numeric entries of a `/proc` directory, each with `describe` of its path (an
/// entry gone meanwhile is skipped: it no longer counts).
fn entries(
    dir: &str,
    describe: impl Fn(&std::path::Path) -> std::io::Result<String>,
) -> BTreeMap<u32, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let id = entry.file_name().to_str()?.parse().ok()?;
            Some((id, describe(&entry.path()).ok()?))
        })
        .collect()
}

/// This process's open file descriptors, with their targets, but for the one that
/// reads the list.
fn fds() -> BTreeMap<u32, String> {
    let listing = format!("/proc/{}/fd", std::process::id());
    let mut fds = entries("/proc/self/fd", |path| {
        std::fs::read_link(path).map(|target| target.display().to_string())
    });
    fds.retain(|_, target| *target != listing);
    fds
}

/// Whether a thread of this name is the test harness's thread of another test of this
/// binary, waiting in `support::alone()` for its turn: the harness names each test's
/// thread after the test (`process_lifecycle::…`, cut to 15 bytes by the kernel), and
/// with two test threads one such thread starts or ends whenever a test does, while the
/// leak checks count. Only other files' tests are recognized: a thread this file's test
/// starts without a name takes its name (the kernel copies the creator's), so it counts.
fn waits_its_turn(name: &str) -> bool {
    static OTHER_TESTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let other_tests = OTHER_TESTS.get_or_init(|| {
        // The group's modules (its `mod NAME;` lines) and its own tests, by name.
        let group = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/group_process_wide.rs");
        let group = std::fs::read_to_string(group).expect("the group's file is readable");
        let own = module_path!().rsplit("::").next().unwrap_or_default();
        let mut names: Vec<String> = group
            .lines()
            .filter_map(|line| line.trim().strip_prefix("mod ")?.strip_suffix(';'))
            .filter(|module| *module != "support" && *module != own)
            .map(|module| format!("{module}::"))
            .collect();
        names.extend(group.lines().filter_map(|line| {
            let name = line.trim().strip_prefix("fn ")?.split('(').next()?;
            Some(name.to_owned())
        }));
        assert!(
            names.len() >= 4,
            "the group's modules were not found: {names:?}"
        );
        names
    });
    name.len() >= 5 && other_tests.iter().any(|test| test.starts_with(name))
}

/// This process's children, from `/proc/<pid>/stat`: `pid (comm) state ppid …`, where
/// `comm` may hold spaces and parentheses, so the fields are read after its last `)`.
fn children() -> BTreeMap<u32, String> {
    let me = std::process::id();
    entries("/proc", |path| {
        let stat = std::fs::read_to_string(path.join("stat"))?;
        let not_ours = || std::io::Error::other("not a child of this process");
        let close = stat.rfind(')').ok_or_else(not_ours)?;
        let mut fields = stat[close + 1..].split_whitespace();
        let state = fields.next().ok_or_else(not_ours)?;
        let ppid: u32 = fields
            .next()
            .and_then(|ppid| ppid.parse().ok())
            .ok_or_else(not_ours)?;
        if ppid != me {
            return Err(not_ours());
        }
        let comm = stat[..close].split_once('(').map_or("", |(_, comm)| comm);
        Ok(format!("{comm} (state {state})"))
    })
}

/// Waits until this process holds no more than `baseline` (ids may differ: a thread or
/// descriptor closed and opened again is not a leak, so counts are compared, and what is
/// beyond is named), or fails after [`SETTLE`].
#[track_caller]
fn settles_back_to(baseline: &Held, after: &str, started: Instant) {
    let settling = Instant::now();
    let deadline = settling + SETTLE;
    loop {
        let now = Held::now();
        let back = now.fds.len() <= baseline.fds.len()
            && now.threads.len() <= baseline.threads.len()
            && now.children.len() <= baseline.children.len();
        if back {
            eprintln!(
                "after {after} ({:.1?}): {now}, as before them (settled in {:.1?})",
                settling - started,
                settling.elapsed()
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {after}, {SETTLE:?} later, this process holds {now} (baseline {baseline}); \
             beyond the baseline: {}",
            now.beyond(baseline).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn square(x: u64) -> u64 {
    x * x
}

fn steps(x: u64) -> u32 {
    collatz_steps(x + 1)
}

/// Which failing call this is, for [`panics_and_crashes`]: item 3 of every 50th call
/// panics through the panic hook, as `panic!` does.
const HOOKED_PANIC_EVERY: u64 = 50;

/// The failures of every failing call of a process pool: item 3 panics and item 5
/// aborts its worker process. Item 3 of call `call` is `call * 8 + 3`.
///
/// A `panic!` in a worker process has its backtrace captured and resolved there (it
/// crosses as text with the error): in a debug build on a loaded machine that took 50 ms
/// a panic, and 300 ms in a worker just started, which every call's crash makes. So
/// item 3 panics with `std::panic::resume_unwind` (an unwinding panic that skips the
/// hook: the same catch, report and clean-up, without a backtrace) in every call but
/// every 50th, where it calls `panic!`.
fn panics_and_crashes(x: u64) -> u64 {
    match x % 8 {
        3 if (x / 8) % HOOKED_PANIC_EVERY == 0 => panic!("item {x} panics"),
        3 => std::panic::resume_unwind(Box::new(format!("item {x} panics"))),
        5 => std::process::abort(),
        _ => x * x,
    }
}

fn thread_pools(baseline: &Held) {
    let started = Instant::now();
    for _ in 0..POOLS {
        let pool = ThreadPool::with_nodes(2).unwrap();
        let expected: Vec<u32> = (0..100).map(steps).collect();
        assert_eq!(pool.map(steps, 0..100).unwrap(), expected);
        let lazy: Vec<u32> = pool.imap(steps, 0..100).map(Result::unwrap).collect();
        assert_eq!(lazy, expected);
    }
    settles_back_to(baseline, &format!("{POOLS} thread pools"), started);

    let pool = ThreadPool::with_nodes(2).unwrap();
    let started = Instant::now();
    for _ in 0..FAILING_CALLS {
        let err = pool
            .map(
                |x: u64| if x == 3 { panic!("item 3 panics") } else { x },
                0..8,
            )
            .unwrap_err();
        assert_eq!(err.index(), 3);
        assert!(matches!(err.kind(), ErrorKind::Panicked { .. }), "{err}");
    }
    drop(pool);
    settles_back_to(
        baseline,
        &format!("{FAILING_CALLS} failing calls on a thread pool"),
        started,
    );
}

/// The items of failing call `call` of a process pool.
fn call_items(call: usize) -> std::ops::Range<u64> {
    let first = call as u64 * 8;
    first..first + 8
}

/// The outcomes of failing call `call` of a process pool: its item 3's panic, its item
/// 5's crash, and every other item's value.
fn check_failing_call(call: usize, outcomes: &[Result<u64, twat_mp::WorkerError>]) {
    assert_eq!(outcomes.len(), 8, "call {call}");
    for (x, outcome) in call_items(call).zip(outcomes) {
        match (x % 8, outcome) {
            (3, Err(err)) => match err.kind() {
                ErrorKind::Panicked { message } => assert_eq!(*message, format!("item {x} panics")),
                _ => panic!("call {call}: {err}"),
            },
            (5, Err(err)) => assert!(
                matches!(err.kind(), ErrorKind::Crashed { .. }),
                "call {call}: {err}"
            ),
            (_, Ok(value)) => assert_eq!(*value, x * x),
            (_, outcome) => panic!("call {call}, item {x}: {outcome:?}"),
        }
    }
}

fn process_pools(baseline: &Held) {
    let started = Instant::now();
    for _ in 0..POOLS {
        let pool = ProcessPool::with_nodes(2).unwrap();
        assert_eq!(
            pool.map(square, 0..100).unwrap(),
            (0..100).map(square).collect::<Vec<_>>()
        );
    }
    settles_back_to(baseline, &format!("{POOLS} process pools"), started);

    let pool = ProcessPool::builder()
        .nodes(2)
        .chunksize(1)
        .build()
        .unwrap();
    let started = Instant::now();
    for call in 0..FAILING_CALLS {
        let outcomes: Vec<_> = pool.imap(panics_and_crashes, call_items(call)).collect();
        check_failing_call(call, &outcomes);
    }
    drop(pool);
    settles_back_to(
        baseline,
        &format!("{FAILING_CALLS} failing calls on a process pool"),
        started,
    );
}

#[cfg(feature = "aio")]
fn async_pools(baseline: &Held) {
    use twat_mp::AsyncMultiPool;

    async fn async_square(x: u64) -> u64 {
        x * x
    }

    async fn async_panics_and_crashes(x: u64) -> u64 {
        panics_and_crashes(x)
    }

    let expected: Vec<u64> = (0..100).map(square).collect();
    let started = Instant::now();
    for _ in 0..POOLS {
        let pool = AsyncMultiPool::with_nodes(2).unwrap();
        assert_eq!(
            pollster::block_on(pool.map(async_square, 0..100)).unwrap(),
            expected
        );
    }
    settles_back_to(baseline, &format!("{POOLS} async pools"), started);

    let pool = AsyncMultiPool::with_nodes(2).unwrap();
    let started = Instant::now();
    for _ in 0..FAILING_CALLS {
        let failing = |x: u64| async move {
            assert!(x != 3, "item 3 panics");
            x
        };
        let err = pollster::block_on(pool.map(failing, 0..8)).unwrap_err();
        assert_eq!(err.index(), 3);
        assert!(matches!(err.kind(), ErrorKind::Panicked { .. }), "{err}");
    }
    drop(pool);
    settles_back_to(
        baseline,
        &format!("{FAILING_CALLS} failing calls on an async pool"),
        started,
    );

    let started = Instant::now();
    for _ in 0..POOLS {
        let pool = AsyncMultiPool::builder()
            .nodes(2)
            .processes()
            .build()
            .unwrap();
        assert_eq!(
            pollster::block_on(pool.map(async_square, 0..100)).unwrap(),
            expected
        );
    }
    settles_back_to(baseline, &format!("{POOLS} async process pools"), started);

    let pool = AsyncMultiPool::builder()
        .nodes(2)
        .processes()
        .build()
        .unwrap();
    let started = Instant::now();
    for call in 0..FAILING_CALLS {
        let outcomes = pollster::block_on(async {
            let mut stream = pool.imap(async_panics_and_crashes, call_items(call));
            let mut outcomes = Vec::new();
            while let Some(outcome) = stream.next().await {
                outcomes.push(outcome);
            }
            outcomes
        });
        check_failing_call(call, &outcomes);
    }
    drop(pool);
    settles_back_to(
        baseline,
        &format!("{FAILING_CALLS} failing calls on an async process pool"),
        started,
    );
}

/// The instrument first: a descriptor, a thread and a zombie left on purpose are seen,
/// and named, as what this process holds beyond the baseline.
fn the_counts_see_a_leak(baseline: &Held) {
    let started = Instant::now();
    let file = std::fs::File::open("/proc/self/stat").unwrap();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (ready, running) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("left-on-purpose".into())
        .spawn(move || {
            // Named (by the thread itself, as it starts) before it says it runs.
            ready.send(()).unwrap();
            stopped.recv()
        })
        .unwrap();
    running.recv().unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    // `true` exits at once, and stays a zombie until it is waited for.
    let deadline = Instant::now() + SETTLE;
    let held = loop {
        let held = Held::now();
        if held
            .children
            .values()
            .any(|child| child.ends_with("(state Z)"))
        {
            break held;
        }
        assert!(Instant::now() < deadline, "no zombie seen: {held}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let beyond = held.beyond(baseline).expect("a leak is seen");
    assert!(
        beyond.contains("/proc/") && beyond.contains("/stat"),
        "{beyond}"
    );
    assert!(beyond.contains("left-on-purpose"), "{beyond}");
    assert!(beyond.contains("true (state Z)"), "{beyond}");
    drop(file);
    stop.send(()).unwrap();
    thread.join().unwrap().unwrap();
    child.wait().unwrap();
    settles_back_to(baseline, "a leak left on purpose and undone", started);
}

/// One test: what each kind of pool leaves, measured against the process as it was
/// before any pool.
#[test]
fn dropped_pools_leave_no_descriptor_thread_or_process() {
    let _alone = support::alone();
    support::within(Duration::from_secs(600), "the leak checks", || {
        let baseline = Held::now();
        assert!(
            baseline.children.is_empty(),
            "no pool yet, but children: {:?}",
            baseline.children
        );
        eprintln!("baseline: {baseline}");
        the_counts_see_a_leak(&baseline);
        thread_pools(&baseline);
        process_pools(&baseline);
        #[cfg(feature = "aio")]
        async_pools(&baseline);
    });
}
