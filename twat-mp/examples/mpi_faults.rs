//! The MPI reliability check of `MpiPool` (feature `mpi`): fault injection and leaks,
//! as the reliability suite checks the other pools (see RELIABILITY.md). Run it alone and
//! under `mpirun` with 1, 2 and 4 ranks; each run asserts, prints `OK` once (from rank 0
//! only), and exits with status 0.
//!
//! - **Fault injection**: 10,000 items, of which a seeded ~1 % panic and ~1 % return an
//!   error, over three seeds, through `imap` (every outcome in input order), `uimap`
//!   (every outcome once, in any order) and `try_map` (the lowest failure): exactly those
//!   indices fail, a panic as `ErrorKind::Panicked` with its message and the rank it ran
//!   on, an error as the function's own value; every other result is exact.
//! - **Leaks**: 300 maps on one pool, each with failures (eager maps decided early by a
//!   failure, lazy maps dropped half-way): the open file descriptors and threads of rank 0,
//!   and of every serving rank, are back to what they were after the first map.
//!
//! A rank that dies (an abort, a segfault, `kill`) is not injected: `MpiPool` promises
//! nothing then (MPI ends the whole job, as `mpirun` decides; see `MpiPool`'s limits).
//!
//! ```text
//! cargo build -p twat-mp --features mpi --example mpi_faults
//! timeout 120 target/debug/examples/mpi_faults
//! timeout 120 mpirun --oversubscribe --allow-run-as-root -n 4 target/debug/examples/mpi_faults
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use twat_mp::{ErrorKind, MpiPool, WorkerError};

/// Items per fault-injection run.
const ITEMS: u64 = 10_000;
/// The seeds of the runs (any seed works; a failing run names its seed).
const SEEDS: [u64; 3] = [0x5EED_0001, 0x5EED_0002, 0x5EED_0003];
/// Maps of the leak check.
const LEAK_MAPS: usize = 300;
/// How long rank 0 may take to be back to its baseline after the maps: a lazy map's
/// input thread, told to stop when the map is dropped, ends on its own shortly after.
const SETTLE: Duration = Duration::from_secs(30);

/// The rank this process is, as `mpirun` tells it (0 when run alone).
fn rank() -> usize {
    std::env::var("OMPI_COMM_WORLD_RANK")
        .or_else(|_| std::env::var("PMI_RANK"))
        .ok()
        .and_then(|rank| rank.parse().ok())
        .unwrap_or(0)
}

/// SplitMix64: a seeded stream of numbers, the same on every machine.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// What an item does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Fault {
    None,
    Panic,
    Error,
}

/// The plan of a seed: for each of `len` items, its fault (~1 % panic, ~1 % error).
fn plan(seed: u64, len: u64) -> Vec<Fault> {
    let mut random = SplitMix64(seed);
    (0..len)
        .map(|_| match random.next_u64() % 100 {
            0 => Fault::Panic,
            1 => Fault::Error,
            _ => Fault::None,
        })
        .collect()
}

fn value(x: u64) -> u64 {
    x.wrapping_mul(2_654_435_761) ^ 0xABCD
}

fn panic_message(x: u64) -> String {
    format!("injected panic in item {x}")
}

fn error_message(x: u64) -> String {
    format!("injected error in item {x}")
}

/// Item `x` with its fault.
fn item((x, fault): (u64, Fault)) -> Result<u64, String> {
    match fault {
        Fault::None => Ok(value(x)),
        Fault::Panic => panic!("{}", panic_message(x)),
        Fault::Error => Err(error_message(x)),
    }
}

type Outcome = Result<Result<u64, String>, WorkerError>;

/// Checks the outcome of item `x` against its fault; `ranks`: the ranks that run items.
fn check(seed: u64, x: u64, fault: Fault, outcome: &Outcome, ranks: &[usize]) {
    let context = format!("seed {seed:#x}, item {x} ({fault:?})");
    match (fault, outcome) {
        (Fault::None, Ok(Ok(got))) => assert_eq!(*got, value(x), "{context}"),
        (Fault::Error, Ok(Err(message))) => assert_eq!(*message, error_message(x), "{context}"),
        (Fault::Panic, Err(err)) => {
            assert_eq!(err.index() as u64, x, "{context}: {err}");
            assert!(
                matches!(err.kind(), ErrorKind::Panicked { message } if *message == panic_message(x)),
                "{context}: the wrong failure: {err}"
            );
            let worker = err.worker().expect("a failure names its rank");
            assert!(ranks.contains(&worker), "{context}: rank {worker}");
        }
        (_, outcome) => panic!("{context}: the wrong outcome: {outcome:?}"),
    }
}

/// One seed's plan through `imap`, `uimap` and `try_map`.
fn fault_injection(pool: &MpiPool, seed: u64, ranks: &[usize]) -> (usize, usize) {
    let plan = plan(seed, ITEMS);
    let items: Vec<(u64, Fault)> = (0..).zip(plan.iter().copied()).collect();

    let outcomes: Vec<Outcome> = pool.imap(item, items.clone()).collect();
    assert_eq!(
        outcomes.len(),
        plan.len(),
        "seed {seed:#x}: one outcome per item"
    );
    for ((x, &fault), outcome) in (0..).zip(&plan).zip(&outcomes) {
        check(seed, x, fault, outcome, ranks);
    }

    let mut seen: Vec<Option<Outcome>> = (0..plan.len()).map(|_| None).collect();
    let by_value: BTreeMap<u64, u64> = (0..ITEMS).map(|x| (value(x), x)).collect();
    for outcome in pool.uimap(item, items.clone()) {
        let x = match &outcome {
            Ok(Ok(got)) => by_value[got],
            Ok(Err(message)) => message
                .strip_prefix("injected error in item ")
                .and_then(|x| x.parse().ok())
                .expect("an injected error"),
            Err(err) => err.index() as u64,
        };
        let slot = &mut seen[x as usize];
        assert!(slot.is_none(), "seed {seed:#x}: item {x} came twice");
        *slot = Some(outcome);
    }
    for ((x, &fault), outcome) in (0..).zip(&plan).zip(&seen) {
        let outcome = outcome
            .as_ref()
            .unwrap_or_else(|| panic!("seed {seed:#x}: item {x} never came"));
        check(seed, x, fault, outcome, ranks);
    }

    // The eager map reports the lowest failure: a panic, or the function's own error.
    let lowest = plan.iter().position(|&fault| fault != Fault::None);
    match pool.try_map(item, items) {
        Ok(values) => assert_eq!(lowest, None, "seed {seed:#x}: {} values", values.len()),
        Err(err) => {
            let at = lowest.expect("a failure where the plan has one");
            assert_eq!(err.index(), at, "seed {seed:#x}: the lowest failure: {err}");
            match plan[at] {
                Fault::Panic => assert!(
                    matches!(err.kind(), ErrorKind::Panicked { .. }),
                    "seed {seed:#x}: {err}"
                ),
                _ => assert_eq!(
                    std::error::Error::source(&err).map(ToString::to_string),
                    Some(error_message(at as u64)),
                    "seed {seed:#x}"
                ),
            }
        }
    }
    let count = |kind| plan.iter().filter(|&&fault| fault == kind).count();
    (count(Fault::Panic), count(Fault::Error))
}

/// This process's open file descriptors and threads (from `/proc/self`).
fn resources() -> (usize, usize) {
    let count = |dir| std::fs::read_dir(dir).map_or(0, Iterator::count);
    (count("/proc/self/fd"), count("/proc/self/task"))
}

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
                .map(|name| name.trim_end().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What an item reports of the rank it runs on: the rank, its descriptors and threads.
/// About a millisecond of work first, so that every serving rank gets items.
fn rank_resources(_: u64) -> (usize, usize, usize) {
    let until = Instant::now() + Duration::from_millis(1);
    let mut acc = 1_u64;
    while Instant::now() < until {
        acc = acc.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    }
    std::hint::black_box(acc);
    let (fds, threads) = resources();
    (rank(), fds, threads)
}

/// The most descriptors and threads each rank that ran an item reported.
fn serving_resources(pool: &MpiPool) -> BTreeMap<usize, (usize, usize)> {
    let n = pool.nodes() as u64 * 40;
    let mut least = BTreeMap::new();
    // The least each rank reported: items counting at the same moment see each other's
    // open `/proc/self/fd` (and, on a rank that also runs the map, the map's own threads).
    for (rank, fds, threads) in pool.map(rank_resources, 0..n).expect("resources") {
        let entry = least.entry(rank).or_insert((usize::MAX, usize::MAX));
        *entry = (entry.0.min(fds), entry.1.min(threads));
    }
    least
}

/// Fails items 3, 50 and 97 of each hundred, one with an error, two with a panic.
fn fails_some(x: u64) -> Result<u64, String> {
    match x % 100 {
        3 => Err(error_message(x)),
        50 | 97 => panic!("{}", panic_message(x)),
        _ => Ok(value(x)),
    }
}

fn squared_or_panic(x: u64) -> u64 {
    assert!(x % 64 != 63, "{}", panic_message(x));
    x * x
}

/// Many maps on one pool, each with failures: rank 0's descriptors and threads, and each
/// serving rank's, end where they began.
fn leaks(pool: &MpiPool) -> usize {
    let before = resources();
    let serving_before = serving_resources(pool);
    for round in 0..LEAK_MAPS as u64 {
        match round % 3 {
            // An eager map, decided by its lowest failure.
            0 => {
                let err = pool.map(squared_or_panic, 0..256).unwrap_err();
                assert_eq!(err.index(), 63, "round {round}: {err}");
            }
            // A lazy map, every outcome: failures in the middle.
            1 => {
                let outcomes: Vec<_> = pool.imap(fails_some, 0..300).collect();
                let failed = outcomes
                    .iter()
                    .filter(|outcome| !matches!(outcome, Ok(Ok(_))))
                    .count();
                assert_eq!(failed, 9, "round {round}");
            }
            // A lazy map dropped half-way, past a failure.
            _ => {
                let taken = pool.uimap(squared_or_panic, 0..1_000).take(100).count();
                assert_eq!(taken, 100, "round {round}");
            }
        }
    }
    let settling = Instant::now();
    let after = loop {
        let now = resources();
        if now.0 <= before.0 && now.1 <= before.1 {
            break now;
        }
        assert!(
            settling.elapsed() < SETTLE,
            "rank 0's (descriptors, threads): {before:?} before {LEAK_MAPS} maps, {now:?} \
             {SETTLE:?} after them; its threads now: {:?}",
            thread_names()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let settled = settling.elapsed();
    // Each serving rank as rank 0: back to where it began within SETTLE.
    let serving_after = loop {
        let now = serving_resources(pool);
        let grown: Vec<_> = now
            .iter()
            .filter(|(rank, after)| {
                serving_before
                    .get(rank)
                    .is_some_and(|before| after > &before)
            })
            .collect();
        if grown.is_empty() {
            break now;
        }
        assert!(
            settling.elapsed() < SETTLE,
            "serving ranks' (descriptors, threads) before {LEAK_MAPS} maps: {serving_before:?}; \
             grown {SETTLE:?} after them: {grown:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    println!(
        "leaks: {LEAK_MAPS} maps with failures; rank 0: {} descriptors and {} threads before, {} and {} after (settled in {settled:.1?}); serving ranks' (descriptors, threads) after: {serving_after:?}",
        before.0, before.1, after.0, after.1
    );
    LEAK_MAPS
}

fn main() {
    let pool = MpiPool::new().expect("the pool starts");
    // From here on, rank 0 alone.
    let ranks = pool.ranks();
    let serving: Vec<usize> = if ranks == 1 {
        vec![0]
    } else {
        (1..ranks).collect()
    };
    // A first map starts what the pool starts lazily: the leak baseline comes after it.
    assert_eq!(
        pool.map(|x: u64| x + 1, 0..100).expect("warm-up").len(),
        100
    );

    let started = Instant::now();
    let (mut panics, mut errors) = (0, 0);
    for seed in SEEDS {
        let (p, e) = fault_injection(&pool, seed, &serving);
        panics += p;
        errors += e;
    }
    println!(
        "fault injection: {} seeds x {ITEMS} items through imap, uimap and try_map: {panics} panics and {errors} errors injected, each reported exactly ({:.1?})",
        SEEDS.len(),
        started.elapsed()
    );
    let started = Instant::now();
    let maps = leaks(&pool);
    println!("leak check: {maps} maps ({:.1?})", started.elapsed());

    drop(pool);
    println!("OK: faults exact, no leak ({ranks} ranks)");
}
