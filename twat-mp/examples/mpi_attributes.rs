//! The MPI scenario check of the `mpi` attribute option (feature `mpi`): `#[pmap(mpi)]`
//! and `#[imap(mpi)]` over the ranks of the job. Run it alone and under `mpirun` with 1, 2
//! and 4 ranks; each run asserts, prints `OK` once (from rank 0 only) and exits with
//! status 0 on every rank: the serving ranks leave when rank 0's `main` returns.
//!
//! ```text
//! cargo build -p twat-mp --features mpi --example mpi_attributes
//! timeout 120 target/debug/examples/mpi_attributes
//! timeout 120 mpirun --oversubscribe --allow-run-as-root -n 4 target/debug/examples/mpi_attributes
//! ```

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use twat_mp::{imap, pmap};

/// Set by `main` before its first `mpi` call: on every rank, since every rank runs that far.
static BEFORE_FIRST_CALL: AtomicBool = AtomicBool::new(false);

/// The rank this process is, as `mpirun` tells it (0 when run alone).
fn rank() -> usize {
    std::env::var("OMPI_COMM_WORLD_RANK")
        .or_else(|_| std::env::var("PMI_RANK"))
        .ok()
        .and_then(|rank| rank.parse().ok())
        .unwrap_or(0)
}

/// About half a millisecond of CPU work; then the item, the rank it ran on, and whether
/// that rank ran `main`'s code before the first `mpi` call.
#[pmap(mpi)]
fn busy_rank(x: u64) -> (u64, usize, bool) {
    let until = Instant::now() + Duration::from_micros(500);
    let mut acc = x;
    while Instant::now() < until {
        acc = acc.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    }
    std::hint::black_box(acc);
    (x, rank(), BEFORE_FIRST_CALL.load(Ordering::SeqCst))
}

#[pmap(mpi)]
fn parse(text: String) -> Result<u32, String> {
    text.parse().map_err(|err| format!("{text:?}: {err}"))
}

#[pmap(mpi)]
fn panics_on_13(x: u64) -> u64 {
    assert!(x != 13, "thirteen is unlucky");
    x
}

#[imap(mpi)]
fn square(x: u64) -> u64 {
    x * x
}

#[imap(mpi, ordered = false)]
fn cube(x: u64) -> u64 {
    x * x * x
}

fn zero() -> u64 {
    0
}

/// With a state per rank: how many items this rank's state has seen in the call.
#[pmap(mpi, init = zero)]
fn count(seen: &mut u64, x: u64) -> (u64, u64) {
    *seen += 1;
    (x, *seen)
}

/// Other options than the first call's: the shared pool cannot honour them.
#[pmap(mpi, chunksize = 8)]
fn other_options(x: u64) -> u64 {
    x
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

fn main() {
    // Runs on every rank.
    BEFORE_FIRST_CALL.store(true, Ordering::SeqCst);
    let size: usize = std::env::var("OMPI_COMM_WORLD_SIZE")
        .ok()
        .and_then(|size| size.parse().ok())
        .unwrap_or(1);

    // The first `mpi` call: serving ranks stay in it; only rank 0 goes on.
    let ran = busy_rank(0..400);
    assert_eq!(
        rank(),
        0,
        "a serving rank came back from the first `mpi` call"
    );
    assert!(ran.iter().map(|r| r.0).eq(0..400), "results in input order");
    assert!(
        ran.iter().all(|r| r.2),
        "every rank ran the code before the first call"
    );
    let ranks: BTreeSet<usize> = ran.iter().map(|r| r.1).collect();
    let expected: BTreeSet<usize> = if size > 1 {
        (1..size).collect()
    } else {
        [0].into()
    };
    assert_eq!(ranks, expected, "the items ran on every serving rank");

    // A `Result` function: the lowest failing item's own error.
    assert_eq!(parse(["1".to_owned(), "22".to_owned()]), Ok(vec![1, 22]));
    let texts = ["1", "x", "3", "y"].map(str::to_owned);
    assert_eq!(
        parse(texts),
        Err("\"x\": invalid digit found in string".to_owned())
    );

    // A panic costs its item; the call resumes it on rank 0, naming the item.
    let caught = catch_unwind(AssertUnwindSafe(|| panics_on_13(0..100)));
    let message = panic_message(caught.expect_err("item 13 panics").as_ref());
    assert!(message.contains("thirteen is unlucky"), "{message}");
    assert_eq!(
        panics_on_13(0..10),
        (0..10).collect::<Vec<_>>(),
        "the pool goes on"
    );

    // Lazy, over an endless input, in order; and in completion order.
    let squares: Vec<u64> = square(0..).take(5_000).collect();
    assert!(squares.iter().copied().eq((0..5_000).map(|x| x * x)));
    let mut cubes: Vec<u64> = cube(0..1_000).collect();
    cubes.sort_unstable();
    assert!(cubes.into_iter().eq((0..1_000).map(|x| x * x * x)));

    // A state per rank, for the call: the counts of all states add up to the items.
    let counted = count(0..1_000);
    assert!(counted.iter().map(|c| c.0).eq(0..1_000));
    let most = counted.iter().map(|c| c.1).max().unwrap_or(0);
    assert!(
        most >= 1_000 / (size.max(2) as u64 * 8),
        "a state spans many items: {most}"
    );

    // Other options than the first call's: refused with a panic that says why.
    let caught = catch_unwind(AssertUnwindSafe(|| other_options(0..3)));
    let message = panic_message(caught.expect_err("other options").as_ref());
    assert!(
        message.contains("share the program's one MpiPool"),
        "{message}"
    );

    println!("OK ({size} ranks)");
    // Returning ends rank 0; the exit hook stops the serving ranks and finalises MPI.
}
