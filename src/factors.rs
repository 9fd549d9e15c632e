//! Prime factors: a sieve table that a worker makes once and uses for many numbers, and
//! trial division by a shared list of primes. The work behind the examples of per-worker
//! state (`map_init`) and shared data (`map_with`).

/// The smallest prime factor of every number below a limit (a sieve of Eratosthenes):
/// costly to make (milliseconds), cheap to use, and not worth copying per item.
#[derive(Debug, Clone)]
pub struct FactorTable {
    smallest: Vec<u32>,
}

impl FactorTable {
    /// The table of every number below `limit` (at most `u32::MAX`).
    pub fn below(limit: u32) -> FactorTable {
        let limit = limit as usize;
        let mut smallest = vec![0_u32; limit];
        for n in 2..limit {
            if smallest[n] == 0 {
                for multiple in (n..limit).step_by(n) {
                    if smallest[multiple] == 0 {
                        smallest[multiple] = n as u32;
                    }
                }
            }
        }
        FactorTable { smallest }
    }

    /// The prime factors of `n`, smallest first, with multiplicity.
    ///
    /// # Panics
    /// When `n` is not below the table's limit.
    pub fn factors(&self, mut n: u64) -> Vec<u64> {
        let mut factors = Vec::new();
        while n > 1 {
            let p = u64::from(self.smallest[n as usize]);
            factors.push(p);
            n /= p;
        }
        factors
    }
}

/// Every prime below `limit`, in order.
pub fn primes_below(limit: u32) -> Vec<u64> {
    let table = FactorTable::below(limit);
    (2..u64::from(limit))
        .filter(|&n| u64::from(table.smallest[n as usize]) == n)
        .collect()
}

/// The largest prime factor of `n`, by trial division with `primes` (which must hold
/// every prime up to the square root of `n`).
pub fn largest_prime_factor(primes: &Vec<u64>, mut n: u64) -> u64 {
    let mut largest = 1;
    for &p in primes {
        if p * p > n {
            break;
        }
        while n % p == 0 {
            largest = p;
            n /= p;
        }
    }
    if n > 1 { n } else { largest }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_multiply_back() {
        let table = FactorTable::below(10_000);
        for n in 2..10_000 {
            let factors = table.factors(n);
            assert_eq!(factors.iter().product::<u64>(), n);
            assert!(factors.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn largest_prime_factor_is_found() {
        let primes = primes_below(1_000);
        assert_eq!(primes[..5], [2, 3, 5, 7, 11]);
        assert_eq!(largest_prime_factor(&primes, 2 * 2 * 3 * 997), 997);
        assert_eq!(largest_prime_factor(&primes, 999_983), 999_983);
        assert_eq!(largest_prime_factor(&primes, 64), 2);
    }
}
