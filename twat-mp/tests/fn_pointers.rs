//! Plain `fn` pointers cross to worker processes, as fn items and closures without
//! captures do: a function picked at run time from a table runs in the workers, through
//! every method of `ProcessPool` and of `AsyncProcessPool`. (A closure that captures is a
//! type error at the user's call: `twat-mp/tests/ui/linux/process_capturing_closure.rs`.)

#![cfg(target_os = "linux")]

use twat_mp::ProcessPool;

fn square(x: u64) -> u64 {
    x * x
}

fn double(x: u64) -> u64 {
    2 * x
}

/// Functions chosen by index at run time: the pool learns which one only from the value.
const TABLE: [fn(u64) -> u64; 3] = [square, double, |x| x + 1];

/// Which of the table's functions to use, decided by data the compiler cannot see.
fn pick(name: &str) -> fn(u64) -> u64 {
    match name {
        "square" => TABLE[0],
        "double" => TABLE[1],
        _ => TABLE[2],
    }
}

#[test]
fn fn_pointers_from_a_table_run_in_the_workers() {
    let pool = ProcessPool::with_nodes(2).unwrap();
    for (index, f) in TABLE.into_iter().enumerate() {
        let expected: Vec<u64> = (0..50).map(f).collect();
        assert_eq!(pool.map(f, 0..50).unwrap(), expected, "function {index}");
        let lazy: Vec<u64> = pool.imap(f, 0..50).map(Result::unwrap).collect();
        assert_eq!(lazy, expected, "function {index}");
        let mut unordered: Vec<u64> = pool.uimap(f, 0..50).map(Result::unwrap).collect();
        unordered.sort_unstable();
        assert_eq!(unordered, expected, "function {index}");
        assert_eq!(pool.amap(f, 0..50).get().unwrap(), expected);
        assert_eq!(pool.apply(f, 7).unwrap(), f(7));
        assert_eq!(pool.apipe(f, 8).get().unwrap(), f(8));
    }
    let chosen = pick(std::hint::black_box("double"));
    assert_eq!(pool.map(chosen, [1, 2, 3]).unwrap(), [2, 4, 6]);
}

#[test]
fn the_workers_run_the_function_that_was_sent_and_no_other() {
    // Two functions of the same type, interleaved on the same workers: each call gets the
    // answers of its own function.
    let pool = ProcessPool::with_nodes(1).unwrap();
    for round in 0..3 {
        assert_eq!(
            pool.map(TABLE[0], [3, 4]).unwrap(),
            [9, 16],
            "round {round}"
        );
        assert_eq!(pool.map(TABLE[1], [3, 4]).unwrap(), [6, 8], "round {round}");
    }
}

#[test]
fn fn_pointers_of_fallible_and_several_argument_functions_cross() {
    let pool = ProcessPool::with_nodes(2).unwrap();
    let checked: fn(u64) -> Result<u64, String> = |x| {
        if x == 3 {
            Err("three".to_owned())
        } else {
            Ok(x)
        }
    };
    let err = pool.try_map(checked, 0..6).unwrap_err();
    assert_eq!(err.index(), 3);
    assert_eq!(pool.try_map(checked, [1, 2]).unwrap(), [1, 2]);
    let power: fn(u64, u32) -> u64 = u64::pow;
    assert_eq!(pool.starmap(power, [(2, 10), (3, 3)]).unwrap(), [1024, 27]);
}

#[cfg(feature = "aio")]
mod async_pool {
    use std::future::Future;
    use std::pin::Pin;

    use futures_util::StreamExt;
    use twat_mp::{AsyncMultiPool, AsyncProcessPool};

    type Answer = Pin<Box<dyn Future<Output = u64>>>;
    type Job = fn(u64) -> Answer;

    const JOBS: [Job; 2] = [
        |x| Box::pin(async move { x * x }),
        |x| {
            Box::pin(async move {
                tokio::task::yield_now().await;
                x + 100
            })
        },
    ];

    fn pool() -> AsyncProcessPool {
        AsyncMultiPool::builder()
            .nodes(2)
            .processes()
            .build()
            .unwrap()
    }

    async fn async_fn_pointers_from_a_table_run_in_the_workers() {
        let pool = pool();
        for (index, job) in JOBS.into_iter().enumerate() {
            let expected: Vec<u64> = match index {
                0 => (0..20).map(|x| x * x).collect(),
                _ => (0..20).map(|x| x + 100).collect(),
            };
            assert_eq!(pool.map(job, 0..20).await.unwrap(), expected);
            let lazy: Vec<u64> = pool.imap(job, 0..20).map(Result::unwrap).collect().await;
            assert_eq!(lazy, expected);
            assert_eq!(pool.apply(job, 3).await.unwrap(), expected[3]);
        }
        let sum: fn(u64, u64) -> Answer = |a, b| Box::pin(async move { a + b });
        assert_eq!(pool.starmap(sum, [(1, 2), (3, 4)]).await.unwrap(), [3, 7]);
    }

    on_both_flavours!(async_fn_pointers_from_a_table_run_in_the_workers);
}
