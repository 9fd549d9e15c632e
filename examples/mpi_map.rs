//! `MpiPool` on real work: the primes below 4.8 million, counted in 96 blocks over the
//! ranks of an MPI job (feature `mpi`).
//!
//! ```text
//! cargo build --release --features mpi --example mpi_map
//! mpirun -n 4 target/release/examples/mpi_map      # rank 0 drives, ranks 1..=3 count
//! target/release/examples/mpi_map                  # alone: a job of one rank, on its threads
//! target/debug/examples/mpi_map 16                 # the first 16 blocks only (as CI runs it)
//! ```
//!
//! It prints how many blocks each rank counted, and the speedup against one rank: the
//! same blocks counted one after another on rank 0, which is how a single serving rank
//! runs them (one item at a time). Every count is checked against that baseline, then
//! the last line is `OK mpi_map (<n> ranks)`.

use std::collections::BTreeMap;
use std::time::Instant;

use twat_mp::MpiPool;
use twat_mp_workspace::numbers::count_primes;

/// Numbers per block.
const BLOCK: u64 = 50_000;
/// Blocks by default (the first argument sets another count): the primes below
/// `BLOCKS * BLOCK`.
const BLOCKS: u64 = 96;

/// The rank this process is, as the MPI launcher tells it (0 when run alone).
fn rank() -> usize {
    ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
        .unwrap_or(0)
}

/// The primes in block `n`, and the rank that counted them.
fn primes_in_block(n: u64) -> (usize, usize) {
    (count_primes(n * BLOCK, (n + 1) * BLOCK), rank())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Everything before this line runs on every rank; only rank 0 gets past it.
    let pool = MpiPool::new()?;
    let blocks = match std::env::args().nth(1) {
        None => BLOCKS,
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("the block count must be a whole number, not {arg:?}"))?,
    };
    let ranks = pool.ranks();
    let who = if ranks == 1 {
        let threads = pool.nodes();
        let plural = if threads == 1 { "" } else { "s" };
        format!("a job of one rank: rank 0 counts on {threads} thread{plural}")
    } else if ranks == 2 {
        "a job of 2 ranks: rank 0 drives, rank 1 counts".to_owned()
    } else {
        format!(
            "a job of {ranks} ranks: rank 0 drives, ranks 1 to {} count",
            ranks - 1
        )
    };
    println!(
        "mpi_map: the primes below {} in {blocks} blocks of {BLOCK} numbers, on {who}",
        blocks * BLOCK
    );

    let started = Instant::now();
    let counted = pool.map(primes_in_block, 0..blocks)?;
    let parallel = started.elapsed();

    let mut per_rank: BTreeMap<usize, usize> = BTreeMap::new();
    for &(_, rank) in &counted {
        *per_rank.entry(rank).or_default() += 1;
    }
    for (rank, blocks) in &per_rank {
        println!("  rank {rank}: {blocks} blocks");
    }

    // The baseline: one rank's way, the blocks one after another, here on rank 0 while
    // the serving ranks wait.
    let started = Instant::now();
    let alone: Vec<usize> = (0..blocks)
        .map(|n| count_primes(n * BLOCK, (n + 1) * BLOCK))
        .collect();
    let serial = started.elapsed();

    let total: usize = alone.iter().sum();
    if counted
        .iter()
        .map(|&(primes, _)| primes)
        .ne(alone.iter().copied())
    {
        return Err("the ranks' prime counts differ from rank 0's own".into());
    }
    println!(
        "  MpiPool::map: {:.3} s; one rank (the same blocks one after another): {:.3} s; \
         speedup {:.2}x",
        parallel.as_secs_f64(),
        serial.as_secs_f64(),
        serial.as_secs_f64() / parallel.as_secs_f64()
    );
    println!("  {total} primes below {}", blocks * BLOCK);
    // The serving ranks stop when the pool is dropped; then rank 0 says OK.
    drop(pool);
    println!("OK mpi_map ({ranks} ranks)");
    Ok(())
}
