//! `ThreadPool::par_map` and `try_par_map` through the public API: the input rayon splits
//! where it lies (slices, `&Vec`, `Vec`, index ranges, chunks, zips) gives what `map`
//! gives, with the same failures, debug mode, insights, progress and nesting.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::numbers::collatz_steps;
use twat_mp::rayon::prelude::*;
use twat_mp::{ErrorKind, ThreadPool};

/// Generous bound for waits that only a broken pool would reach.
const PATIENCE: Duration = Duration::from_secs(60);

/// The pools `par_map` must behave the same on: plain (the hot path), debug mode and a
/// fixed chunk (each item watched), insights (each item timed).
fn pools() -> Vec<(&'static str, ThreadPool)> {
    vec![
        ("plain", ThreadPool::with_nodes(2).unwrap()),
        (
            "debug",
            ThreadPool::builder().nodes(2).debug(true).build().unwrap(),
        ),
        (
            "chunksize 64",
            ThreadPool::builder()
                .nodes(3)
                .chunksize(64)
                .build()
                .unwrap(),
        ),
        (
            "insights",
            ThreadPool::builder()
                .nodes(2)
                .insights(true)
                .build()
                .unwrap(),
        ),
    ]
}

#[test]
fn every_splittable_input_gives_the_results_of_map_in_input_order() {
    let data: Vec<u64> = (1..=5_000).collect();
    let serial: Vec<u32> = data.iter().map(|&x| collatz_steps(x)).collect();
    for (name, pool) in pools() {
        let by_ref = pool.par_map(|x: &u64| collatz_steps(*x), &data).unwrap();
        assert_eq!(by_ref, serial, "{name}: &Vec");
        let slice = pool
            .par_map(|x: &u64| collatz_steps(*x), &data[100..200])
            .unwrap();
        assert_eq!(slice, serial[100..200], "{name}: &[T]");
        let owned = pool.par_map(collatz_steps, data.clone()).unwrap();
        assert_eq!(owned, serial, "{name}: Vec<T>");
        let range = pool
            .par_map(|i: usize| collatz_steps(data[i]), 0..data.len())
            .unwrap();
        assert_eq!(range, serial, "{name}: Range<usize>");
        let range_u32 = pool
            .par_map(|x: u32| collatz_steps(u64::from(x)), 1..5_001_u32)
            .unwrap();
        assert_eq!(range_u32, serial, "{name}: Range<u32>");
        let chunks = pool
            .par_map(|c: &[u64]| c.iter().sum::<u64>(), data.par_chunks(1_000))
            .unwrap();
        let serial_chunks: Vec<u64> = data.chunks(1_000).map(|c| c.iter().sum()).collect();
        assert_eq!(chunks, serial_chunks, "{name}: par_chunks");
        let zipped = pool
            .par_map(
                |(a, b): (&u64, &u32)| a * u64::from(*b),
                data.par_iter().zip(&serial),
            )
            .unwrap();
        let serial_zip: Vec<u64> = data
            .iter()
            .zip(&serial)
            .map(|(a, b)| a * u64::from(*b))
            .collect();
        assert_eq!(zipped, serial_zip, "{name}: zip");
        let empty: &[u64] = &[];
        assert!(pool.par_map(|x: &u64| *x, empty).unwrap().is_empty());
    }
}

#[test]
fn a_borrowed_slice_of_owned_items_is_read_in_place_and_stays_the_callers() {
    let words: Vec<String> = (0..3_000).map(|i| format!("word-{i}")).collect();
    let suffix = String::from("!");
    for (name, pool) in pools() {
        let loud = pool
            .par_map(|w: &String| format!("{w}{suffix}"), &words)
            .unwrap();
        assert_eq!(loud.len(), words.len(), "{name}");
        assert_eq!(loud[2_999], "word-2999!", "{name}");
        // The items were borrowed, not moved: each result points into its own item.
        let at = pool
            .par_map(|w: &String| w.as_ptr().addr(), &words)
            .unwrap();
        assert!(
            at.iter().zip(&words).all(|(&p, w)| p == w.as_ptr().addr()),
            "{name}"
        );
    }
    assert_eq!(words[0], "word-0");
}

#[test]
fn the_lowest_panicking_index_is_reported_every_time_and_every_item_before_it_runs() {
    let data: Vec<usize> = (0..5_000).collect();
    for (name, pool) in pools() {
        for _ in 0..10 {
            let ran_below = AtomicUsize::new(0);
            let err = pool
                .par_map(
                    |&x: &usize| {
                        assert!(x % 997 != 613, "bad {x}");
                        ran_below.fetch_add(usize::from(x < 613), Ordering::Relaxed);
                    },
                    &data,
                )
                .unwrap_err();
            assert_eq!(err.index(), 613, "{name}");
            assert!(matches!(err.kind(), ErrorKind::Panicked { .. }), "{name}");
            assert!(err.to_string().contains("613"), "{name}: {err}");
            assert_eq!(ran_below.load(Ordering::Relaxed), 613, "{name}");
        }
        // The pool stays usable after a failure.
        assert_eq!(
            pool.par_map(|x: &usize| x + 1, &data[..3]).unwrap(),
            [1, 2, 3]
        );
    }
}

#[test]
fn try_par_map_returns_the_lowest_err_with_the_functions_error_as_source() {
    let inputs: Vec<String> = (0..2_000)
        .map(|i| match i {
            700 | 1_500 => format!("x{i}"),
            _ => i.to_string(),
        })
        .collect();
    for (name, pool) in pools() {
        let err = pool
            .try_par_map(|s: &String| s.parse::<u32>(), &inputs)
            .unwrap_err();
        assert_eq!(err.index(), 700, "{name}");
        assert!(matches!(err.kind(), ErrorKind::Failed(_)), "{name}");
        let source = std::error::Error::source(&err).expect("the parse error");
        assert_eq!(
            source.to_string(),
            "invalid digit found in string",
            "{name}"
        );
        let parsed = pool
            .try_par_map(|s: &String| s.parse::<u32>(), &inputs[..700])
            .unwrap();
        assert_eq!(parsed, (0..700).collect::<Vec<u32>>(), "{name}");
    }
}

#[test]
fn insights_count_every_item_of_a_par_map() {
    let pool = ThreadPool::builder()
        .nodes(2)
        .insights(true)
        .build()
        .unwrap();
    let data: Vec<u64> = (0..10_000).collect();
    pool.par_map(|x: &u64| x * 2, &data).unwrap();
    pool.par_map(|x: &[u64]| x.len(), data.par_chunks(100))
        .unwrap();
    let insights = pool.insights().unwrap();
    assert_eq!(insights.items(), 10_000 + 100);
    let per_worker: u64 = insights.workers().iter().map(|w| w.items()).sum();
    assert_eq!(per_worker, insights.items());
}

#[test]
fn par_map_inside_an_item_of_the_same_pool_finishes() {
    let pool = std::sync::Arc::new(ThreadPool::with_nodes(1).unwrap());
    let outer = std::sync::Arc::clone(&pool);
    let sums = support::within(PATIENCE, "a nested par_map on one thread", move || {
        let rows: Vec<Vec<u64>> = (0..8).map(|r| (0..100).map(|c| r * c).collect()).collect();
        outer
            .par_map(
                |row: &Vec<u64>| {
                    pool.par_map(|x: &u64| x + 1, row)
                        .unwrap()
                        .iter()
                        .sum::<u64>()
                },
                &rows,
            )
            .unwrap()
    });
    let expected: Vec<u64> = (0..8).map(|r| (0..100).map(|c| r * c + 1).sum()).collect();
    assert_eq!(sums, expected);
}

#[cfg(feature = "progress")]
#[test]
fn with_a_progress_bar_par_map_gives_the_same_results_and_failures() {
    let pool = ThreadPool::builder()
        .nodes(2)
        .progress(true)
        .build()
        .unwrap();
    let data: Vec<u64> = (0..20_000).collect();
    let doubled = pool.par_map(|x: &u64| x * 2, &data).unwrap();
    assert_eq!(doubled, data.iter().map(|x| x * 2).collect::<Vec<_>>());
    let err = pool
        .try_par_map(
            |&x: &u64| if x == 12_345 { Err("unlucky") } else { Ok(x) },
            &data,
        )
        .unwrap_err();
    assert_eq!(err.index(), 12_345);
    let err = pool
        .par_map(|&x: &u64| assert!(x != 99, "ninety-nine"), &data)
        .unwrap_err();
    assert_eq!(err.index(), 99);
}
