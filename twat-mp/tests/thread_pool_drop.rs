//! Dropping a ThreadPool joins every thread it started. One test, alone in its binary
//! while it runs (`support::alone()`), so that no other test's pool is counted.

use std::sync::mpsc;
use std::time::Duration;

use twat_mp::ThreadPool;

use crate::support;

/// The threads of this process whose name says they are twat-mp workers.
fn worker_threads() -> usize {
    support::threads_named("twat-mp-").expect("Linux /proc")
}

#[test]
fn dropping_a_pool_leaves_no_thread_behind() {
    let _alone = support::alone();
    assert_eq!(worker_threads(), 0);
    let pool = ThreadPool::with_nodes(4).unwrap();
    assert_eq!(pool.map(|x: u32| x * 2, 0..1_000).unwrap().len(), 1_000);
    assert_eq!(worker_threads(), 4);
    drop(pool);
    assert_eq!(worker_threads(), 0);

    // Close and join, as Python's `with` block: outstanding work finishes first.
    let (done, finished) = mpsc::channel();
    let pool = ThreadPool::with_nodes(2).unwrap();
    let pending = pool.amap(
        move |x: u64| {
            let steps = support::numbers::collatz_steps(x + 1);
            done.send(()).unwrap();
            steps
        },
        0..200,
    );
    drop(pool);
    assert_eq!(worker_threads(), 0);
    assert_eq!(finished.try_iter().count(), 200);
    assert_eq!(pending.get().unwrap().len(), 200);
    assert!(finished.recv_timeout(Duration::from_millis(1)).is_err());
}
