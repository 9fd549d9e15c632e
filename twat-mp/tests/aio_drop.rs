//! Dropping an `AsyncMultiPool` joins its worker threads. Alone in its test binary while it
//! runs (`support::alone()`), so that no other pool's threads are counted.
#![cfg(feature = "aio")]

use twat_mp::AsyncMultiPool;

use crate::support;

/// The threads of this process whose name marks them as async workers.
fn aio_threads() -> Option<usize> {
    support::threads_named("twat-mp-aio")
}

#[test]
fn no_worker_thread_outlives_the_pool() {
    let _alone = support::alone();
    let Some(before) = aio_threads() else {
        return; // No /proc here: nothing to count with.
    };
    assert_eq!(before, 0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for round in 0..3 {
        let pool = AsyncMultiPool::with_nodes(3).unwrap();
        assert_eq!(aio_threads(), Some(3), "round {round}");
        let out = runtime
            .block_on(pool.map(
                |x: u32| async move {
                    tokio::task::yield_now().await;
                    x
                },
                0..100,
            ))
            .unwrap();
        assert_eq!(out.len(), 100);
        drop(pool);
        assert_eq!(aio_threads(), Some(0), "round {round}");
    }
}
