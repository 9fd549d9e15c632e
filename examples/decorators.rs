//! The seed's "Using Synchronous Decorators": `#[pmap]`, `#[imap]` and `#[amap]` on
//! functions of one item, here counting primes in blocks of numbers.
//!
//! Run: `cargo run --release --example decorators`

use twat_mp::{amap, imap, pmap};
use twat_mp_workspace::numbers::{collatz_steps, count_primes};

/// Primes in the block `[n * 100_000, (n + 1) * 100_000)`: eager, results in input order.
#[pmap]
fn primes_in_block(n: u64) -> usize {
    count_primes(n * 100_000, (n + 1) * 100_000)
}

/// The longest Collatz chain below `limit`: lazy, each result as soon as its turn comes.
#[imap]
fn longest_chain_below(limit: u64) -> (u64, u32) {
    (1..limit)
        .map(|n| (n, collatz_steps(n)))
        .max_by_key(|&(_, steps)| steps)
        .unwrap_or((1, 0))
}

/// Twin primes (p, p + 2) in a block: started in the background, collected later.
#[amap]
fn twin_primes_in_block(n: u64) -> usize {
    let (start, end) = (n * 50_000, (n + 1) * 50_000);
    (start..end)
        .filter(|&p| {
            twat_mp_workspace::numbers::is_prime(p) && twat_mp_workspace::numbers::is_prime(p + 2)
        })
        .count()
}

fn main() {
    let blocks = 0..8;
    println!(
        "pmap  primes per block of 100,000: {:?}",
        primes_in_block(blocks)
    );

    print!("imap  longest Collatz chains:");
    for (n, steps) in longest_chain_below([10, 100, 1_000, 10_000, 100_000, 1_000_000]) {
        print!(" {n}:{steps}");
    }
    println!();

    let pending = twin_primes_in_block(0..8);
    println!(
        "amap  started; the caller is free meanwhile (ready: {})",
        pending.ready()
    );
    println!("amap  twin primes per block of 50,000: {:?}", pending.get());
}
