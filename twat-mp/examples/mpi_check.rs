//! The MPI scenario check of `MpiPool` (feature `mpi`): run it alone and under `mpirun`
//! with 1, 2 and 4 ranks; each run asserts, prints `OK` once (from rank 0 only), and
//! exits with status 0.
//!
//! ```text
//! cargo build -p twat-mp --features mpi --example mpi_check
//! timeout 120 target/debug/examples/mpi_check
//! timeout 120 mpirun --oversubscribe --allow-run-as-root -n 4 target/debug/examples/mpi_check
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use twat_mp::{ErrorKind, MpiPool};

/// The rank this process is, as `mpirun` tells it (0 when run alone).
fn rank() -> usize {
    std::env::var("OMPI_COMM_WORLD_RANK")
        .or_else(|_| std::env::var("PMI_RANK"))
        .ok()
        .and_then(|rank| rank.parse().ok())
        .unwrap_or(0)
}

/// About a millisecond of CPU work, then the rank it ran on.
fn busy_rank(x: u64) -> (u64, usize) {
    let until = Instant::now() + Duration::from_millis(1);
    let mut acc = x;
    while Instant::now() < until {
        acc = acc.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    }
    std::hint::black_box(acc);
    (x, rank())
}

fn square(x: u64) -> u64 {
    x * x
}

fn panics_on_13(x: u64) -> u64 {
    assert!(x != 13, "thirteen is unlucky");
    x
}

fn parse(text: String) -> Result<u32, String> {
    text.parse().map_err(|err| format!("{text:?}: {err}"))
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}

fn count(seen: &mut u64, x: u64) -> (u64, u64) {
    *seen += 1;
    (x, *seen)
}

fn lookup(table: &BTreeMap<usize, u64>, at: usize) -> u64 {
    table[&at]
}

fn main() {
    // Runs on every rank: each says it started.
    eprintln!("rank {} started", rank());
    let pool = MpiPool::new().expect("the pool starts");
    // From here on, rank 0 alone.
    assert_eq!(rank(), 0, "only rank 0 gets past MpiPool::new()");
    let ranks = pool.ranks();

    // Results, in input order, over many batches.
    let n = 100_000;
    let squares = pool.map(square, 0..n).expect("map");
    assert_eq!(squares.len(), n as usize);
    assert!(
        squares
            .iter()
            .enumerate()
            .all(|(i, &s)| s == (i as u64).pow(2))
    );

    // Dynamic balancing: every serving rank takes part (rank 0 alone when it is alone).
    let done = pool.map(busy_rank, 0..200).expect("map of slow items");
    assert!(done.iter().enumerate().all(|(i, &(x, _))| x == i as u64));
    let used: BTreeSet<usize> = done.iter().map(|&(_, rank)| rank).collect();
    let expected: BTreeSet<usize> = if ranks == 1 {
        [0].into()
    } else {
        (1..ranks).collect()
    };
    assert_eq!(used, expected, "the ranks that ran items");
    for rank in &used {
        let items = done.iter().filter(|&&(_, r)| r == *rank).count();
        println!("rank {rank} ran {items} items");
    }

    // A panicking item: its index, its rank, its message; the lowest index wins.
    let err = pool.map(panics_on_13, 0..1000).unwrap_err();
    assert_eq!(err.index(), 13);
    let worker = err.worker().expect("the rank is known");
    assert!(expected.contains(&worker), "rank {worker}");
    assert!(
        matches!(err.kind(), ErrorKind::Panicked { message, .. } if message == "thirteen is unlucky"),
        "{err}"
    );
    // The pool goes on after a failure.
    assert_eq!(pool.map(square, [3]).expect("after a failure"), [9]);

    // try_map: the function's own error, typed.
    let err = pool
        .try_map(parse, ["1".to_owned(), "x".to_owned(), "3".to_owned()])
        .unwrap_err();
    assert_eq!(err.index(), 1);
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(
        source.as_deref(),
        Some("\"x\": invalid digit found in string")
    );

    // starmap, imap (lazy over an endless input), uimap, amap.
    assert_eq!(
        pool.starmap(add as fn(u64, u64) -> u64, [(1, 2), (3, 4)])
            .expect("starmap"),
        [3, 7]
    );
    let firsts: Vec<u64> = pool
        .imap(square, 0..)
        .take(1000)
        .collect::<Result<_, _>>()
        .expect("imap");
    assert_eq!(firsts, (0..1000).map(|x| x * x).collect::<Vec<_>>());
    let mut any_order: Vec<u64> = pool
        .uimap(square, 0..1000)
        .collect::<Result<_, _>>()
        .expect("uimap");
    any_order.sort_unstable();
    assert_eq!(any_order, firsts);
    assert_eq!(pool.amap(square, 0..4).get().expect("amap"), [0, 1, 4, 9]);

    // map_init: one state per rank (or local thread) and call, counted from 1 there.
    let counted = pool.map_init(|| 0, count, 0..5000).expect("map_init");
    assert!(counted.iter().enumerate().all(|(i, &(x, _))| x == i as u64));
    let states = counted.iter().filter(|&&(_, seen)| seen == 1).count();
    assert!(states >= 1 && states <= pool.nodes(), "{states} states");
    // map_with: the shared value reaches every rank.
    let table: BTreeMap<usize, u64> = (0..100).map(|x| (x, x as u64 * 7)).collect();
    let looked = pool
        .map_with(table, lookup, (0..100).rev())
        .expect("map_with");
    assert_eq!(looked[0], 99 * 7);
    assert_eq!(looked[99], 0);

    drop(pool);
    println!("OK ({ranks} ranks)");
}
