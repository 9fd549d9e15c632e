//! The workloads the benches share, and the peers that run them: what a user would pick
//! instead of twat-mp (serial code, rayon, `std::thread::scope` with manual chunks,
//! procspawn's pool). The async peers (tokio, futures) live in `async_dispatch.rs`, the
//! only bench that runs them.
//!
//! A bench that runs procspawn calls [`init`] first thing in its `main`: procspawn's
//! children are this executable started again, and `init` is where they take over.

#![allow(dead_code)] // each bench uses what it needs

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use twat_mp_workspace::numbers::mix_rounds;

/// Where a child of procspawn's pool runs its function (it never returns there); in the
/// parent, nothing happens.
pub fn init() {
    procspawn::init();
}

/// A trivial item's work: one multiplication and one xor.
pub fn trivial(x: u64) -> u64 {
    x.wrapping_mul(3) ^ 0x5555
}

/// [`trivial`] over a whole chunk: what a procspawn user sends to amortise a spawn.
pub fn trivial_chunk(chunk: Vec<u64>) -> Vec<u64> {
    chunk.into_iter().map(trivial).collect()
}

/// A CPU-bound item: `(seed, rounds)` of `mix_rounds`, so that the item carries its own
/// size into a worker process. [`calibrate`] gives the rounds of a wanted duration.
pub fn spin((seed, rounds): (u64, u64)) -> u64 {
    mix_rounds(seed, rounds)
}

/// The rounds of `mix_rounds` that take about `target` on this machine (the fastest of
/// three probes, the one least slowed by other work).
pub fn calibrate(target: Duration) -> u64 {
    let probe = 2_000_000;
    let per_round = (0..3)
        .map(|_| {
            let start = Instant::now();
            black_box(mix_rounds(black_box(1), probe));
            start.elapsed().as_secs_f64() / probe as f64
        })
        .fold(f64::INFINITY, f64::min);
    (target.as_secs_f64() / per_round).max(1.0) as u64
}

/// `count` CPU-bound items of about `each`.
pub fn spin_items(count: u64, each: Duration) -> Vec<(u64, u64)> {
    let rounds = calibrate(each);
    (0..count).map(|seed| (seed, rounds)).collect()
}

/// The number of threads the peers use: the machine's cores, as our pools' default.
pub fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// `std::thread::scope` with manual chunks over borrowed items: one contiguous chunk per
/// core, results put back in order.
pub fn scope_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let per_chunk = items.len().div_ceil(cores()).max(1);
    let f = &f;
    thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_chunk)
            .map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for handle in handles {
            out.extend(handle.join().expect("a chunk's thread panicked"));
        }
        out
    })
}

/// `std::thread::scope` with manual chunks over owned items, as a user would write it
/// for a `Vec` that the map consumes: `split_off` moves every chunk but the first into a
/// `Vec` of its own (a copy of those items) before the threads start.
pub fn scope_chunks_owned<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let per_chunk = items.len().div_ceil(cores()).max(1);
    let f = &f;
    let mut chunks = Vec::new();
    let mut rest = items;
    while rest.len() > per_chunk {
        let tail = rest.split_off(per_chunk);
        chunks.push(rest);
        rest = tail;
    }
    chunks.push(rest);
    thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::new();
        for handle in handles {
            out.extend(handle.join().expect("a chunk's thread panicked"));
        }
        out
    })
}

/// procspawn's pool, one spawn per item (its own unit of work), results in input order.
///
/// At most 8 items per process of the pool are spawned ahead of the oldest one not yet
/// joined: each spawn holds its own sockets until joined, and a pooled process hands its
/// result over only when that item is joined, so that spawning every item first would
/// run out of file descriptors, or (large items) block in a send that nothing reads.
pub fn procspawn_each<A, R>(
    pool: &procspawn::Pool,
    items: impl IntoIterator<Item = A>,
    f: fn(A) -> R,
) -> Vec<R>
where
    A: serde::Serialize + serde::de::DeserializeOwned,
    R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let ahead = 8 * pool.size();
    let mut in_flight = std::collections::VecDeque::new();
    let mut out = Vec::new();
    for item in items {
        if in_flight.len() == ahead {
            let handle: procspawn::JoinHandle<R> = in_flight.pop_front().expect("in flight");
            out.push(handle.join().expect("a procspawn item failed"));
        }
        in_flight.push_back(pool.spawn(item, f));
    }
    for handle in in_flight {
        out.push(handle.join().expect("a procspawn item failed"));
    }
    out
}

/// procspawn's pool over trivial items the way a user makes it fast: one `Vec` per
/// process of the pool.
pub fn procspawn_chunks(pool: &procspawn::Pool, items: &[u64]) -> Vec<u64> {
    let per_chunk = items.len().div_ceil(pool.size()).max(1);
    let parts: Vec<Vec<u64>> = items.chunks(per_chunk).map(<[u64]>::to_vec).collect();
    procspawn_each(pool, parts, trivial_chunk)
        .into_iter()
        .flatten()
        .collect()
}
