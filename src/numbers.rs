//! CPU-bound number work.

/// How many steps the Collatz sequence starting at `n` takes to reach 1 (`n >= 1`).
///
/// ```
/// assert_eq!(twat_mp_workspace::numbers::collatz_steps(27), 111);
/// ```
pub fn collatz_steps(mut n: u64) -> u32 {
    let mut steps = 0;
    while n > 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

/// Whether `n` is prime, by trial division (deliberately plain: it is the work).
///
/// ```
/// use twat_mp_workspace::numbers::is_prime;
/// assert!(is_prime(7919));
/// assert!(!is_prime(7917));
/// ```
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
///
/// ```
/// assert_eq!(twat_mp_workspace::numbers::count_primes(0, 100), 25);
/// ```
pub fn count_primes(start: u64, end: u64) -> usize {
    (start..end).filter(|&n| is_prime(n)).count()
}

/// A splitmix64 chain of `rounds` steps from `seed`: a fixed amount of CPU work whose
/// result the optimizer cannot skip. About 1 ns a round on this project's machines.
///
/// ```
/// use twat_mp_workspace::numbers::mix_rounds;
/// assert_eq!(mix_rounds(1, 3), mix_rounds(1, 3));
/// assert_ne!(mix_rounds(1, 3), mix_rounds(2, 3));
/// ```
pub fn mix_rounds(seed: u64, rounds: u64) -> u64 {
    let mut x = seed;
    for _ in 0..rounds {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x = z ^ (z >> 31);
    }
    x
}
