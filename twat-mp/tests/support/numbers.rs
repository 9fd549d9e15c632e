//! The CPU-bound workloads the thread-pool tests run: copies of
//! `twat_mp_workspace::numbers` (the workspace root's `src/numbers.rs`), so that the
//! runtime's own tests need nothing outside this package.

/// How many steps the Collatz sequence starting at `n` takes to reach 1 (`n >= 1`).
pub fn collatz_steps(mut n: u64) -> u32 {
    let mut steps = 0;
    while n > 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

/// Whether `n` is prime, by trial division (deliberately plain: it is the work).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

/// How many primes lie in `start..end`.
pub fn count_primes(start: u64, end: u64) -> usize {
    (start..end).filter(|&n| is_prime(n)).count()
}
