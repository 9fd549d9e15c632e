//! The seed's "Using ProcessPool for CPU-Bound Tasks": squares computed in worker
//! processes, each after a real loop of work.
//!
//! Run: `cargo run --release --example process_squares`

use twat_mp::ProcessPool;
use twat_mp_workspace::numbers::mix_rounds;

/// `x * x`, after `x * 10,000` rounds of mixing (the seed's busy loop, made real).
fn calculate_square(x: u64) -> u64 {
    let mixed = mix_rounds(x, x * 10_000);
    // The mixing must not be optimized away: it decides nothing but is used.
    std::hint::black_box(mixed);
    x * x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ProcessPool::new()?;
    let squares = pool.map(calculate_square, 0..10)?;
    println!("Squares: {squares:?}");
    Ok(())
}
