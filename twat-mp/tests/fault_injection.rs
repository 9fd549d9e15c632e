//! Fault injection (issue 14): 10,000 items, of which a seeded ~1 % panic, return an
//! error and (in worker processes) abort, segfault, are `kill -9`ed or overflow their
//! stack, plus a few that hang past the pool's timeout. On every pool, over three seeds:
//! exactly those indices fail, each with the right `ErrorKind`, and every other result is
//! exact. With `retries(1)`, the items that crash (or hang) on their first run only
//! succeed, and those that crash on every run fail after 2 attempts.
//!
//! The per-item APIs are used (`imap`, `uimap`: a `Result` per item, the iteration goes
//! on past a failure), so that every failure is seen, not only the lowest; the eager
//! `try_map` is checked to report the lowest one. The plans are in `support/faults.rs`:
//! a failing run names its seed, and the seed reproduces it.
#![cfg(target_os = "linux")]

use crate::support;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use support::faults::{self, Fault, error_message, panic_message, plan, value};
use support::run_marks::{self, mark_run, runs};
use twat_mp::{ErrorKind, ProcessPool, ThreadPool, WorkerError};

/// Items per run.
const ITEMS: usize = 10_000;
/// The seeds of the runs (any seed works; these are the suite's).
const SEEDS: [u64; 3] = [0x5EED_0001, 0x5EED_0002, 0x5EED_0003];
/// The per-item timeout of the pools that have one: generous, since a loaded machine
/// makes even a short item slow (a panic's backtrace, resolved in a fresh worker process
/// of a debug build, took over 2 s under a load of 11 on 2 cores).
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole test may take before it counts as a hang.
const LIMIT: Duration = Duration::from_secs(300);

/// The faults a thread may suffer without taking the test process down, with their
/// weights in a plan.
const THREAD_FAULTS: [(Fault, u64); 2] = [(Fault::Panic, 1), (Fault::Error, 1)];
/// The faults of a worker process, with their weights. A `panic!` in a worker process
/// has its backtrace resolved there, to cross as text: in a worker just started (as a
/// crash leaves one) of a debug build, that took 300 ms on a loaded machine, most of
/// this suite's time when panics were drawn as often as crashes. So panics are 1 in 16
/// of the faults here (they are half of them on threads), and errors 3 in 16 (a `String`
/// that crosses as the item's value).
const PROCESS_FAULTS: [(Fault, u64); 6] = [
    (Fault::Panic, 1),
    (Fault::Error, 3),
    (Fault::Abort, 3),
    (Fault::Segfault, 3),
    (Fault::Kill, 3),
    (Fault::StackOverflow, 3),
];

type Outcome = Result<Result<u64, String>, WorkerError>;

fn item((x, fault): (u64, Fault)) -> Result<u64, String> {
    faults::run(x, fault)
}

/// Checks the outcome of item `x`, whose fault is `fault`, against what that fault must
/// give. `attempts` is what `WorkerError::attempts` must say of a failure.
fn check_one(seed: u64, x: u64, fault: Fault, outcome: &Outcome, attempts: u32) {
    match (fault, outcome) {
        (Fault::None, Ok(Ok(got))) => assert_eq!(*got, value(x), "seed {seed:#x}, item {x}"),
        (Fault::Error, Ok(Err(message))) => {
            assert_eq!(*message, error_message(x), "seed {seed:#x}, item {x}");
        }
        (Fault::None | Fault::Error, outcome) | (_, outcome @ Ok(_)) => {
            panic!("seed {seed:#x}, item {x} ({fault:?}): the wrong outcome: {outcome:?}")
        }
        (_, Err(err)) => check_failure(seed, x, fault, err, attempts),
    }
}

/// Checks the failure of item `x`, whose fault is `fault` (not `None`, not `Error`).
fn check_failure(seed: u64, x: u64, fault: Fault, err: &WorkerError, attempts: u32) {
    let context = format!("seed {seed:#x}, item {x} ({fault:?}): {err}");
    assert_eq!(err.index() as u64, x, "{context}");
    assert_eq!(err.attempts(), attempts, "{context}");
    match (fault, err.kind()) {
        (Fault::Panic, ErrorKind::Panicked { message }) => {
            assert_eq!(*message, panic_message(x), "{context}");
        }
        (Fault::Hang, ErrorKind::TimedOut { after }) => assert_eq!(*after, TIMEOUT, "{context}"),
        (crash, ErrorKind::Crashed { status }) if crash.is_crash() => {
            assert!(status.contains(crash.crash_status()), "{context}");
        }
        (_, kind) => panic!("{context}: the wrong kind: {kind:?}"),
    }
}

/// Checks outcomes in input order (`imap`): one per item, each the right one.
fn check_in_order(seed: u64, plan: &[Fault], outcomes: &[Outcome]) {
    assert_eq!(
        outcomes.len(),
        plan.len(),
        "seed {seed:#x}: one outcome per item"
    );
    for ((x, &fault), outcome) in (0_u64..).zip(plan).zip(outcomes) {
        check_one(seed, x, fault, outcome, 1);
    }
}

/// Checks outcomes in completion order (`uimap`): each item's exactly once, each the
/// right one. An outcome is matched to its item by its value, its message or its index.
fn check_unordered(seed: u64, plan: &[Fault], outcomes: Vec<Outcome>) {
    let by_value: HashMap<u64, u64> = (0..plan.len() as u64).map(|x| (value(x), x)).collect();
    let mut seen: Vec<Option<Outcome>> = std::iter::repeat_with(|| None).take(plan.len()).collect();
    for outcome in outcomes {
        let x = match &outcome {
            Ok(Ok(got)) => *by_value
                .get(got)
                .unwrap_or_else(|| panic!("seed {seed:#x}: {got} is no item's value")),
            Ok(Err(message)) => message
                .strip_prefix("injected error in item ")
                .and_then(|x| x.parse().ok())
                .unwrap_or_else(|| panic!("seed {seed:#x}: an unknown error {message:?}")),
            Err(err) => err.index() as u64,
        };
        let slot = &mut seen[x as usize];
        assert!(slot.is_none(), "seed {seed:#x}: item {x} came twice");
        *slot = Some(outcome);
    }
    for ((x, &fault), outcome) in (0_u64..).zip(plan).zip(&seen) {
        let outcome = outcome
            .as_ref()
            .unwrap_or_else(|| panic!("seed {seed:#x}: item {x} ({fault:?}) never came"));
        check_one(seed, x, fault, outcome, 1);
    }
}

/// `try_map`'s error is the lowest failing item's (a returned error as `Failed`).
fn check_lowest(seed: u64, plan: &[Fault], err: &WorkerError) {
    let lowest = plan
        .iter()
        .position(|&fault| fault != Fault::None)
        .expect("the plan has faults");
    assert_eq!(err.index(), lowest, "seed {seed:#x}: {err}");
    match (plan[lowest], err.kind()) {
        (Fault::Error, ErrorKind::Failed(source)) => {
            assert_eq!(source.to_string(), error_message(lowest as u64));
        }
        (Fault::Error, kind) => panic!("seed {seed:#x}: a returned error as {kind:?}"),
        (fault, _) => check_failure(seed, lowest as u64, fault, err, 1),
    }
}

/// Describes a plan for the test's output: what was injected.
fn describe(seed: u64, plan: &[Fault]) -> String {
    let kinds = [
        Fault::Panic,
        Fault::Error,
        Fault::Abort,
        Fault::Segfault,
        Fault::Kill,
        Fault::StackOverflow,
        Fault::Hang,
    ];
    let counts: Vec<String> = kinds
        .iter()
        .filter(|&&kind| faults::count(plan, kind) > 0)
        .map(|&kind| format!("{kind:?} {}", faults::count(plan, kind)))
        .collect();
    format!(
        "seed {seed:#x}: {} items, {}",
        plan.len(),
        counts.join(", ")
    )
}

/// Runs `check` for each seed at once, on threads of its own: several calls share each
/// pool, so a fault must cost its own item whichever call it belongs to, and the hangs'
/// timeouts overlap instead of adding up. The last seed goes through `uimap` (completion
/// order), the others through `imap` (input order).
fn each_seed(check: impl Fn(u64, bool) + Sync) {
    std::thread::scope(|scope| {
        let check = &check;
        for (run, seed) in SEEDS.into_iter().enumerate() {
            scope.spawn(move || check(seed, run == SEEDS.len() - 1));
        }
    });
}

#[test]
fn thread_pool_fails_exactly_the_faulty_items() {
    support::within(LIMIT, "thread pool fault injection", || {
        let pool = ThreadPool::with_nodes(4).unwrap();
        each_seed(|seed, unordered| {
            let plan = plan(seed, ITEMS, &THREAD_FAULTS, 0);
            eprintln!("ThreadPool {}", describe(seed, &plan));
            if unordered {
                let outcomes: Vec<Outcome> = pool.uimap(item, faults::items(&plan)).collect();
                check_unordered(seed, &plan, outcomes);
            } else {
                let outcomes: Vec<Outcome> = pool.imap(item, faults::items(&plan)).collect();
                check_in_order(seed, &plan, &outcomes);
            }
            let err = pool.try_map(item, faults::items(&plan)).unwrap_err();
            check_lowest(seed, &plan, &err);
        });
    });
}

fn process_pool(retries: u32) -> ProcessPool {
    ProcessPool::builder()
        .nodes(2)
        .timeout(TIMEOUT)
        .retries(retries)
        .build()
        .unwrap()
}

#[test]
fn process_pool_fails_exactly_the_faulty_items() {
    support::within(LIMIT, "process pool fault injection", || {
        let pool = process_pool(0);
        each_seed(|seed, unordered| {
            let plan = plan(seed, ITEMS, &PROCESS_FAULTS, 1);
            eprintln!("ProcessPool {}", describe(seed, &plan));
            if unordered {
                let outcomes: Vec<Outcome> = pool.uimap(item, faults::items(&plan)).collect();
                check_unordered(seed, &plan, outcomes);
            } else {
                let outcomes: Vec<Outcome> = pool.imap(item, faults::items(&plan)).collect();
                check_in_order(seed, &plan, &outcomes);
            }
            let err = pool.try_map(item, faults::items(&plan)).unwrap_err();
            check_lowest(seed, &plan, &err);
        });
        // The pool is whole after some 200 crashes.
        assert_eq!(pool.map(|x: u64| x + 1, 0..4).unwrap(), [1, 2, 3, 4]);
    });
}

/// An item of the retry runs: where its runs leave their marks, its index, its fault,
/// and whether the fault strikes on its first run only.
type RetryItem = (String, u64, Fault, bool);

/// Faulty items mark each run (so the test counts them, across processes); an item
/// marked `once` has its fault on its first run only, and then returns its value.
fn retried_item((dir, x, fault, once): RetryItem) -> Result<u64, String> {
    if fault != Fault::None && mark_run(&dir, x) > 0 && once {
        return Ok(value(x));
    }
    faults::run(x, fault)
}

/// The items of a retry run: every other crashing or panicking item strikes on its first
/// run only, and so do the hangs (a hang on every run would cost two timeouts).
fn retry_items(dir: &Path, plan: &[Fault]) -> Vec<RetryItem> {
    let dir = dir.to_str().unwrap().to_owned();
    let mut faulty = 0_usize;
    (0_u64..)
        .zip(plan)
        .map(|(x, &fault)| {
            let once = match fault {
                Fault::None => false,
                Fault::Hang => true,
                _ => {
                    faulty += 1;
                    faulty % 2 == 1
                }
            };
            (dir.clone(), x, fault, once)
        })
        .collect()
}

/// The crashes and the hangs are retried once; panics and errors are not. Each faulty
/// item ran as often as that says, plus at most `unpinned` runs that a worker's death
/// interrupted before it was found which of its tasks killed it (not counted in
/// `attempts`, as `WorkerError::attempts` documents).
fn check_retried(
    seed: u64,
    items: &[RetryItem],
    dir: &Path,
    outcomes: &[Outcome],
    unpinned: usize,
) {
    assert_eq!(
        outcomes.len(),
        items.len(),
        "seed {seed:#x}: one outcome per item"
    );
    for ((_, x, fault, once), outcome) in items.iter().zip(outcomes) {
        let (x, fault) = (*x, *fault);
        let retried = fault.is_crash() || fault == Fault::Hang;
        let expected_runs = match fault {
            Fault::None => 0,
            _ if retried => 2,
            _ => 1,
        };
        if *once && retried {
            // It failed on its first run only, and succeeded on its retry.
            check_one(seed, x, Fault::None, outcome, 1);
        } else {
            check_one(seed, x, fault, outcome, if retried { 2 } else { 1 });
        }
        let runs = runs(dir, x).len();
        assert!(
            (expected_runs..=expected_runs + unpinned).contains(&runs),
            "seed {seed:#x}, item {x} ({fault:?}, once: {once}): {runs} runs, not \
             {expected_runs} (+ up to {unpinned} unpinned)"
        );
    }
}

/// The faults of the retry runs: the crashes, and panics (which are not retried).
const RETRY_FAULTS: [(Fault, u64); 5] = [
    (Fault::Panic, 1),
    (Fault::Abort, 3),
    (Fault::Segfault, 3),
    (Fault::Kill, 3),
    (Fault::StackOverflow, 3),
];

#[test]
fn process_pool_retries_the_items_that_crash_once() {
    support::within(LIMIT, "process pool fault injection with retries", || {
        let pool = process_pool(1);
        each_seed(|seed, _| {
            let plan = plan(seed, ITEMS, &RETRY_FAULTS, 1);
            eprintln!("ProcessPool, retries(1): {}", describe(seed, &plan));
            let dir = run_marks::scratch("fault-injection", &format!("process-{seed:x}"));
            let items = retry_items(&dir, &plan);
            let outcomes: Vec<Outcome> = pool.imap(retried_item, items.clone()).collect();
            check_retried(seed, &items, &dir, &outcomes, 0);
        });
    });
}

/// The async pools (feature `aio`): threads and worker processes.
#[cfg(feature = "aio")]
mod async_pools {
    use super::*;
    use twat_mp::AsyncMultiPool;

    /// What an item does as a task: a hang is a future that never completes (the async
    /// pools' timeout drops it at its `.await`); the other faults are the same as in a
    /// thread or a process.
    async fn async_item((x, fault): (u64, Fault)) -> Result<u64, String> {
        if fault == Fault::Hang {
            std::future::pending::<()>().await;
        }
        faults::run(x, fault)
    }

    /// [`retried_item`] as a task.
    async fn retried_async_item((dir, x, fault, once): RetryItem) -> Result<u64, String> {
        if fault != Fault::None && mark_run(&dir, x) > 0 && once {
            return Ok(value(x));
        }
        if fault == Fault::Hang {
            std::future::pending::<()>().await;
        }
        faults::run(x, fault)
    }

    /// Every outcome of an async stream, in the order it gives them.
    macro_rules! drain {
        ($stream:expr) => {{
            let mut stream = $stream;
            let mut outcomes = Vec::new();
            while let Some(outcome) = stream.next().await {
                outcomes.push(outcome);
            }
            outcomes
        }};
    }

    /// Runs one seed's plan through `pool` (an `AsyncMultiPool` or an `AsyncProcessPool`,
    /// which share their methods but not a type): `imap` or `uimap`, then `try_map`.
    macro_rules! check_plan {
        ($pool:expr, $seed:expr, $unordered:expr, $plan:expr) => {
            async {
                let (pool, seed, plan) = (&$pool, $seed, $plan);
                if $unordered {
                    let outcomes = drain!(pool.uimap(async_item, faults::items(plan)));
                    check_unordered(seed, plan, outcomes);
                } else {
                    let outcomes = drain!(pool.imap(async_item, faults::items(plan)));
                    check_in_order(seed, plan, &outcomes);
                }
                let err = pool
                    .try_map(async_item, faults::items(plan))
                    .await
                    .unwrap_err();
                check_lowest(seed, plan, &err);
            }
        };
    }

    #[test]
    fn async_pool_fails_exactly_the_faulty_items() {
        support::within(LIMIT, "async pool fault injection", || {
            let pool = AsyncMultiPool::builder()
                .nodes(2)
                .timeout(TIMEOUT)
                .build()
                .unwrap();
            each_seed(|seed, unordered| {
                let plan = plan(seed, ITEMS, &THREAD_FAULTS, 1);
                eprintln!("AsyncMultiPool {}", describe(seed, &plan));
                pollster::block_on(check_plan!(pool, seed, unordered, &plan));
            });
        });
    }

    fn async_process_pool(retries: u32) -> twat_mp::AsyncProcessPool {
        // A few tasks at once per worker: a worker that dies under several tasks has each
        // of them run again alone, so the crashes cost less with fewer at once.
        AsyncMultiPool::builder()
            .nodes(2)
            .concurrency(4)
            .processes()
            .timeout(TIMEOUT)
            .retries(retries)
            .build()
            .unwrap()
    }

    #[test]
    fn async_process_pool_fails_exactly_the_faulty_items() {
        support::within(LIMIT, "async process pool fault injection", || {
            let pool = async_process_pool(0);
            each_seed(|seed, unordered| {
                let plan = plan(seed, ITEMS, &PROCESS_FAULTS, 1);
                eprintln!("AsyncProcessPool {}", describe(seed, &plan));
                pollster::block_on(check_plan!(pool, seed, unordered, &plan));
            });
        });
    }

    #[test]
    fn async_process_pool_retries_the_items_that_crash_once() {
        support::within(
            LIMIT,
            "async process pool fault injection with retries",
            || {
                let pool = async_process_pool(1);
                each_seed(|seed, _| {
                    let plan = plan(seed, ITEMS, &RETRY_FAULTS, 1);
                    eprintln!("AsyncProcessPool, retries(1): {}", describe(seed, &plan));
                    let dir = run_marks::scratch("fault-injection", &format!("async-{seed:x}"));
                    let items = retry_items(&dir, &plan);
                    let outcomes = pollster::block_on(async {
                        drain!(pool.imap(retried_async_item, items.clone()))
                    });
                    // A task interrupted by another's crash runs again alone: one run more.
                    check_retried(seed, &items, &dir, &outcomes, 1);
                });
            },
        );
    }
}
