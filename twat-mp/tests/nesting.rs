//! A pool used from inside its own work: the blocking handles (`amap(..).get()`,
//! `apipe(..).get()`, `wait`) finish however few threads the pool has, because a pool
//! thread that waits runs the pool's pending jobs meanwhile.

use std::sync::Arc;
use std::time::Duration;

use twat_mp::ThreadPool;

use crate::support;

const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn amap_get_inside_map_finishes() {
    for nodes in [1, 2] {
        let sums = support::within(PATIENCE, "amap(..).get() inside map", move || {
            let pool = ThreadPool::with_nodes(nodes).expect("a pool");
            pool.map(
                |n: u64| {
                    let squares = pool.amap(|x: u64| x * x, 0..n).get().expect("inner map");
                    squares.iter().sum::<u64>()
                },
                0..8,
            )
            .expect("outer map")
        });
        let expected: Vec<u64> = (0..8u64).map(|n| (0..n).map(|x| x * x).sum()).collect();
        assert_eq!(sums, expected, "nodes = {nodes}");
    }
}

#[test]
fn apipe_get_inside_map_finishes() {
    for nodes in [1, 2] {
        let doubled = support::within(PATIENCE, "apipe(..).get() inside map", move || {
            let pool = ThreadPool::with_nodes(nodes).expect("a pool");
            pool.map(
                |n: u64| pool.apipe(|x: u64| 2 * x, n).get().expect("inner job"),
                0..8,
            )
            .expect("outer map")
        });
        assert_eq!(doubled, (0..8).map(|n| 2 * n).collect::<Vec<u64>>());
    }
}

#[test]
fn wait_inside_map_finishes() {
    let done = support::within(PATIENCE, "wait(..) inside map", || {
        let pool = ThreadPool::with_nodes(1).expect("a pool");
        pool.map(
            |n: u64| {
                let mut pending = pool.apipe(|x: u64| x + 1, n);
                pending.wait(PATIENCE) && pending.get().expect("inner job") == n + 1
            },
            0..4,
        )
        .expect("outer map")
    });
    assert_eq!(done, [true; 4]);
}

#[test]
fn amap_get_inside_imap_and_apply_finishes() {
    let (lazy, applied) = support::within(PATIENCE, "get() inside imap and apply", || {
        let pool = Arc::new(ThreadPool::with_nodes(1).expect("a pool"));
        let same = Arc::clone(&pool);
        let lazy: Vec<u64> = pool
            .imap(
                move |n: u64| same.amap(move |x: u64| x + n, [1, 2]).get().expect("inner")[1],
                0..4,
            )
            .map(Result::unwrap)
            .collect();
        let applied = pool
            .apply(
                |n: u64| pool.apipe(|x: u64| x * 3, n).get().expect("inner"),
                5,
            )
            .expect("apply");
        (lazy, applied)
    });
    assert_eq!(lazy, [2, 3, 4, 5]);
    assert_eq!(applied, 15);
}
