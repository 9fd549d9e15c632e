//! Seeded fault plans for the fault-injection suite: which items of an input fail, and
//! how. A plan is a pure function of its seed, so a failing run names a seed that
//! reproduces it exactly.
//!
//! An item carries its own fault (the functions that cross to worker processes capture
//! nothing), and its value is [`value`] of its index, so that every result can be checked
//! exactly.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// splitmix64 (Steele, Lea and Flood, 2014): a tiny PRNG, good enough to scatter faults,
/// and the same on every machine.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `bound` (the modulo bias is irrelevant at these bounds).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// What one item does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fault {
    /// Returns its value.
    None,
    /// Panics with [`panic_message`].
    Panic,
    /// Returns `Err(`[`error_message`]`)`.
    Error,
    /// `std::process::abort()`: SIGABRT.
    Abort,
    /// SIGSEGV, sent to its own process.
    Segfault,
    /// SIGKILL, sent to its own process (`kill -9`).
    Kill,
    /// Unbounded recursion until the stack's guard page is hit.
    StackOverflow,
    /// Never finishes: only the pool's timeout ends it.
    Hang,
}

impl Fault {
    /// The faults that cost the whole worker process.
    pub fn is_crash(self) -> bool {
        matches!(
            self,
            Fault::Abort | Fault::Segfault | Fault::Kill | Fault::StackOverflow
        )
    }

    /// How the pool describes the end of a worker process that this fault killed:
    /// a fragment of `ErrorKind::Crashed`'s `status`.
    pub fn crash_status(self) -> &'static str {
        match self {
            Fault::Abort => "was killed by signal 6 (SIGABRT)",
            Fault::Segfault => "was killed by signal 11 (SIGSEGV)",
            Fault::Kill => "was killed by signal 9 (SIGKILL)",
            Fault::StackOverflow => "overflowed its stack and was killed by signal 6 (SIGABRT)",
            other => panic!("{other:?} is not a crash"),
        }
    }
}

/// The value of item `x` when it succeeds: a mix of its bits, so that a result in the
/// wrong place or of the wrong item cannot pass for the right one.
pub fn value(x: u64) -> u64 {
    let z = x.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z ^ (z >> 29)
}

pub fn panic_message(x: u64) -> String {
    format!("injected panic in item {x}")
}

pub fn error_message(x: u64) -> String {
    format!("injected error in item {x}")
}

/// A fault plan: `len` items, about one in a hundred failing with one of `kinds`, drawn
/// in proportion to its weight, plus exactly `hangs` items that hang (hangs cost the
/// pool's timeout in wall time, so they are counted, not drawn). Every kind of `kinds`
/// occurs at least once: the plan is redrawn from the next numbers of its stream
/// otherwise (never needed for the seeds and sizes of the suite, but a plan must not
/// silently skip a kind).
pub fn plan(seed: u64, len: usize, kinds: &[(Fault, u64)], hangs: usize) -> Vec<Fault> {
    let total: u64 = kinds.iter().map(|&(_, weight)| weight).sum();
    let mut rng = SplitMix64::new(seed);
    loop {
        let mut faults: Vec<Fault> = (0..len)
            .map(|_| {
                if rng.below(100) != 0 {
                    return Fault::None;
                }
                let mut draw = rng.below(total);
                for &(kind, weight) in kinds {
                    if draw < weight {
                        return kind;
                    }
                    draw -= weight;
                }
                unreachable!("a draw below the total weight")
            })
            .collect();
        let mut placed = 0;
        while placed < hangs {
            let at = rng.below(len as u64) as usize;
            if faults[at] == Fault::None {
                faults[at] = Fault::Hang;
                placed += 1;
            }
        }
        if kinds.iter().all(|(kind, _)| faults.contains(kind)) {
            return faults;
        }
    }
}

/// How many items of `plan` have the fault `kind`.
pub fn count(plan: &[Fault], kind: Fault) -> usize {
    plan.iter().filter(|&&fault| fault == kind).count()
}

/// The items of a plan, as they cross: each item's index and fault.
pub fn items(plan: &[Fault]) -> Vec<(u64, Fault)> {
    (0_u64..).zip(plan.iter().copied()).collect()
}

/// Sends `signal` (`"SEGV"`, `"KILL"`) to this process with `kill(1)`, and waits for it
/// to land: the process never returns from here. (Tests have no `unsafe`, so no
/// `libc::raise`; a signal sent by a process is what a worker's handler sees from `kill`,
/// and the pool reports it by its number, as it would a fault.)
pub fn signal_self(signal: &str) -> ! {
    let pid = std::process::id().to_string();
    // If `kill` could not be run, the item hangs, and the test reports a timeout where
    // it expected a crash.
    let _ = std::process::Command::new("kill")
        .args(["-s", signal, &pid])
        .status();
    // The signal is on its way: an answer must not overtake it.
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Recurses until the stack runs out (each frame keeps an array alive, so the optimiser
/// cannot turn it into a loop).
pub fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == 0 {
        0
    } else {
        recurse(depth - 1).wrapping_add(std::hint::black_box(frame[7]))
    }
}

/// What item `x` with the fault `fault` does in a thread or a process: its value, its
/// error, or one of the faults.
pub fn run(x: u64, fault: Fault) -> Result<u64, String> {
    match fault {
        Fault::None => Ok(value(x)),
        Fault::Panic => panic!("{}", panic_message(x)),
        Fault::Error => Err(error_message(x)),
        Fault::Abort => std::process::abort(),
        Fault::Segfault => signal_self("SEGV"),
        Fault::Kill => signal_self("KILL"),
        Fault::StackOverflow => Ok(recurse(u64::MAX)),
        Fault::Hang => loop {
            // A hang that only a killed process can stop: no `.await`, no exit.
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
}
