//! `.progress(true)` and the attributes' `progress` option (feature `progress`) through the
//! public API: with a bar, every pool's calls give the same results and the same errors,
//! a lazy map dropped early ends, and several calls at once each finish. (The bar itself
//! is drawn only on a terminal; the unit tests of `engine::progress` draw it into an
//! in-memory one.)
#![cfg(feature = "progress")]

use crate::support;

use std::time::Duration;

use twat_mp::{ErrorKind, ThreadPool, amap, imap, pmap};

const LIMIT: Duration = Duration::from_secs(60);

fn square(x: u64) -> u64 {
    x * x
}

fn checked(x: u64) -> Result<u64, String> {
    if x % 100 == 37 {
        Err(format!("{x} is unlucky"))
    } else {
        Ok(x)
    }
}

fn squares(n: u64) -> Vec<u64> {
    (0..n).map(square).collect()
}

fn thread_pool() -> ThreadPool {
    ThreadPool::builder()
        .nodes(2)
        .progress(true)
        .build()
        .unwrap()
}

#[test]
fn thread_pool_calls_with_a_bar_give_the_same_results_and_errors() {
    support::within(LIMIT, "thread pool calls with a bar", || {
        let pool = thread_pool();
        assert_eq!(pool.map(square, 0..10_000).unwrap(), squares(10_000));
        let err = pool.try_map(checked, 0..1_000).unwrap_err();
        assert_eq!(err.index(), 37);
        assert!(matches!(err.kind(), ErrorKind::Failed(_)));
        let err = pool
            .map(|x: u64| assert!(x != 500, "five hundred"), 0..1_000)
            .unwrap_err();
        assert_eq!(err.index(), 500);
        assert_eq!(
            pool.starmap(|a: u64, b: u64| a + b, vec![(1, 2), (3, 4)])
                .unwrap(),
            [3, 7]
        );
        let lazy: Vec<u64> = pool
            .imap(square, 0..1_000)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(lazy, squares(1_000));
        // An input of unknown length: a spinner with a count.
        let mut n = 0;
        let unknown = std::iter::from_fn(move || {
            n += 1;
            (n <= 500).then_some(n)
        });
        let mut unordered: Vec<u64> = pool
            .uimap(square, unknown)
            .collect::<Result<_, _>>()
            .unwrap();
        unordered.sort_unstable();
        assert_eq!(unordered, (1..=500).map(square).collect::<Vec<_>>());
        let failed: Vec<usize> = pool
            .imap(|x: u64| assert!(x % 10 != 3), 0..30)
            .filter_map(Result::err)
            .map(|err| err.index())
            .collect();
        assert_eq!(failed, [3, 13, 23]);
        assert_eq!(pool.amap(square, 0..100).get().unwrap(), squares(100));
        assert_eq!(pool.apply(square, 9).unwrap(), 81);
    });
}

#[test]
fn a_lazy_map_with_a_bar_dropped_early_ends() {
    support::within(LIMIT, "an endless imap dropped after three results", || {
        let pool = thread_pool();
        let first: Vec<u64> = pool
            .imap(square, 0..)
            .take(3)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(first, [0, 1, 4]);
        // The pool is free for the next call.
        assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);
    });
}

#[test]
fn several_calls_at_once_each_get_their_results() {
    support::within(LIMIT, "maps from several threads, each with a bar", || {
        let pool = thread_pool();
        std::thread::scope(|scope| {
            let calls: Vec<_> = (0..4u64)
                .map(|call| {
                    let pool = &pool;
                    scope.spawn(move || pool.map(move |x: u64| x * call, 0..20_000).unwrap())
                })
                .collect();
            for (call, handle) in (0..4u64).zip(calls) {
                let expected: Vec<u64> = (0..20_000).map(|x| x * call).collect();
                assert_eq!(handle.join().unwrap(), expected);
            }
        });
    });
}

#[pmap(progress, nodes = 2)]
fn squared(x: u64) -> u64 {
    x * x
}

#[imap(progress)]
fn lucky(x: u64) -> Result<u64, String> {
    checked(x)
}

#[amap(progress)]
fn tripled(x: u64) -> u64 {
    3 * x
}

#[test]
fn the_attributes_with_progress_give_the_same_results_and_errors() {
    support::within(LIMIT, "attributes with a bar", || {
        assert_eq!(squared(0..1_000), squares(1_000));
        let outcomes: Vec<Result<u64, String>> = lucky(30..40).collect();
        assert_eq!(outcomes[7], Err("37 is unlucky".to_owned()));
        assert_eq!(outcomes[8], Ok(38));
        assert_eq!(tripled(vec![1, 2, 3]).get(), [3, 6, 9]);
    });
}

#[cfg(target_os = "linux")]
mod process {
    use super::*;
    use twat_mp::ProcessPool;

    fn pool() -> ProcessPool {
        ProcessPool::builder()
            .nodes(2)
            .progress(true)
            .build()
            .unwrap()
    }

    #[test]
    fn process_pool_calls_with_a_bar_give_the_same_results_and_errors() {
        support::within(LIMIT, "process pool calls with a bar", || {
            let pool = pool();
            assert_eq!(pool.map(square, 0..10_000).unwrap(), squares(10_000));
            let err = pool.try_map(checked, 0..1_000).unwrap_err();
            assert_eq!(err.index(), 37);
            let lazy: Vec<u64> = pool
                .imap(square, 0..1_000)
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(lazy, squares(1_000));
            let mut n = 0;
            let unknown = std::iter::from_fn(move || {
                n += 1;
                (n <= 300).then_some(n)
            });
            let mut unordered: Vec<u64> = pool
                .uimap(square, unknown)
                .collect::<Result<_, _>>()
                .unwrap();
            unordered.sort_unstable();
            assert_eq!(unordered, (1..=300).map(square).collect::<Vec<_>>());
            assert_eq!(pool.amap(square, 0..100).get().unwrap(), squares(100));
            assert_eq!(pool.apply(square, 9).unwrap(), 81);
            let first: Vec<u64> = pool
                .imap(square, 0..)
                .take(3)
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(first, [0, 1, 4]);
        });
    }

    #[pmap(process, progress, nodes = 2)]
    fn squared_in_processes(x: u64) -> u64 {
        x * x
    }

    #[test]
    fn the_process_attribute_with_progress_gives_the_same_results() {
        support::within(LIMIT, "#[pmap(process, progress)]", || {
            assert_eq!(squared_in_processes(0..1_000), squares(1_000));
        });
    }
}

#[cfg(feature = "aio")]
mod aio {
    use super::*;
    use futures_util::StreamExt;
    use twat_mp::{AsyncMultiPool, apmap};

    async fn double(x: u64) -> u64 {
        2 * x
    }

    async fn unlucky(x: u64) -> Result<u64, String> {
        checked(x)
    }

    #[apmap(progress, nodes = 2)]
    async fn doubled(x: u64) -> u64 {
        double(x).await
    }

    async fn exercise_threads() {
        let pool = AsyncMultiPool::builder()
            .nodes(2)
            .progress(true)
            .build()
            .unwrap();
        let doubled_all = pool.map(double, 0..1_000).await.unwrap();
        assert_eq!(doubled_all, (0..1_000).map(|x| 2 * x).collect::<Vec<_>>());
        let err = pool.try_map(unlucky, 0..1_000).await.unwrap_err();
        assert_eq!(err.index(), 37);
        let lazy: Vec<u64> = pool
            .imap(double, 0..100)
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(lazy, (0..100).map(|x| 2 * x).collect::<Vec<_>>());
        let first: Vec<u64> = pool
            .imap(double, 0..)
            .take(3)
            .map(Result::unwrap)
            .collect()
            .await;
        assert_eq!(first, [0, 2, 4]);
        assert_eq!(pool.apply(double, 4).await.unwrap(), 8);
        assert_eq!(
            doubled(0..10).await,
            (0..10).map(|x| 2 * x).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_async_pool_with_a_bar_gives_the_same_results_and_errors() {
        support::within(LIMIT, "async pool calls with a bar", || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(exercise_threads());
        });
    }

    #[cfg(target_os = "linux")]
    async fn exercise_processes() {
        let pool = AsyncMultiPool::builder()
            .nodes(2)
            .processes()
            .progress(true)
            .build()
            .unwrap();
        let doubled_all = pool.map(double, 0..1_000).await.unwrap();
        assert_eq!(doubled_all, (0..1_000).map(|x| 2 * x).collect::<Vec<_>>());
        let err = pool.try_map(unlucky, 0..1_000).await.unwrap_err();
        assert_eq!(err.index(), 37);
        let mut lazy: Vec<u64> = pool
            .uimap(double, 0..100)
            .map(Result::unwrap)
            .collect()
            .await;
        lazy.sort_unstable();
        assert_eq!(lazy, (0..100).map(|x| 2 * x).collect::<Vec<_>>());
        assert_eq!(pool.apply(double, 4).await.unwrap(), 8);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_async_process_pool_with_a_bar_gives_the_same_results_and_errors() {
        support::within(LIMIT, "async process pool calls with a bar", || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(exercise_processes());
        });
    }
}
