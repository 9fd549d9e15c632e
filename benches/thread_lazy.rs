//! The thread pool's lazy maps on trivial items, at their default settings:
//!
//! - `imap_2m_trivial`: `ThreadPool::imap` and `uimap` of 2,000,000 trivial items over a
//!   range (goal: at least 10 M items/s on 2 cores, with the input pulled only a bounded
//!   window ahead), beside `imap` with a fixed `chunksize(64)` and the serial loop.
//!
//! Run with `cargo bench --bench thread_lazy`; the rates are printed at the end.

use std::hint::black_box;

mod report;

use criterion::{Criterion, criterion_group};
use twat_mp::ThreadPool;

const ITEMS: u64 = 2_000_000;

fn trivial(x: u64) -> u64 {
    x.wrapping_mul(3) ^ 0x5555
}

fn imap_2m_trivial(c: &mut Criterion) {
    let pool = ThreadPool::new().unwrap();
    let chunked = ThreadPool::builder().chunksize(64).build().unwrap();
    let mut group = c.benchmark_group("imap_2m_trivial");
    group.sample_size(20);
    group.bench_function("serial", |b| {
        b.iter(|| black_box((0..ITEMS).map(trivial).fold(0, u64::wrapping_add)))
    });
    group.bench_function("imap_default", |b| {
        b.iter(|| {
            let results = pool.imap(trivial, 0..ITEMS).map(Result::unwrap);
            black_box(results.fold(0, u64::wrapping_add))
        })
    });
    group.bench_function("uimap_default", |b| {
        b.iter(|| {
            let results = pool.uimap(trivial, 0..ITEMS).map(Result::unwrap);
            black_box(results.fold(0, u64::wrapping_add))
        })
    });
    group.bench_function("imap_chunksize_64", |b| {
        b.iter(|| {
            let results = chunked.imap(trivial, 0..ITEMS).map(Result::unwrap);
            black_box(results.fold(0, u64::wrapping_add))
        })
    });
    group.finish();
}

criterion_group!(benches, imap_2m_trivial);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    println!("\nrates (2,000,000 items; goal for imap_default: >= 10 M items/s):");
    for name in [
        "imap_default",
        "uimap_default",
        "imap_chunksize_64",
        "serial",
    ] {
        match report::mean_ns("imap_2m_trivial", name) {
            Some(ns) => println!(
                "  imap_2m_trivial/{name}: {:.1} M items/s",
                ITEMS as f64 / ns * 1e3
            ),
            None => println!("  imap_2m_trivial/{name} was not run"),
        }
    }
}
