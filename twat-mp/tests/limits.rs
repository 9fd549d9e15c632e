//! Absurd settings and sizes fail cleanly, with an error that names the limit: a pool of
//! 100 000 nodes is refused before any thread starts (it used to abort the program or
//! spin for minutes), and an item or result over a process pool's size limit fails alone,
//! before it is sent, while the pool goes on working.

mod support;

use std::time::Duration;

use twat_mp::{BuildError, MAX_NODES, ThreadPool};

/// Refused by every pool's builder, before it starts a thread.
const ABSURD: usize = 100_000;

fn refused(built: Result<impl Sized, BuildError>) -> String {
    match built {
        Ok(_) => panic!("a pool of {ABSURD} nodes was built"),
        Err(err) => {
            assert!(
                matches!(
                    err,
                    BuildError::TooLarge {
                        name: "nodes",
                        value: ABSURD,
                        max: MAX_NODES
                    }
                ),
                "{err:?}"
            );
            err.to_string()
        }
    }
}

#[test]
fn absurd_node_counts_are_refused_by_every_pool() {
    let message = support::within(Duration::from_secs(60), "building absurd pools", || {
        let threads = refused(ThreadPool::with_nodes(ABSURD));
        #[cfg(target_os = "linux")]
        refused(twat_mp::ProcessPool::with_nodes(ABSURD));
        #[cfg(target_os = "linux")]
        refused(twat_mp::ProcessPool::builder().nodes(ABSURD).build());
        #[cfg(feature = "aio")]
        refused(twat_mp::AsyncMultiPool::with_nodes(ABSURD));
        #[cfg(all(feature = "aio", target_os = "linux"))]
        refused(
            twat_mp::AsyncMultiPool::builder()
                .nodes(ABSURD)
                .processes()
                .build(),
        );
        threads
    });
    assert_eq!(
        message,
        "the pool setting `nodes` must be at most 4096, but 100000 was given"
    );
}

#[cfg(feature = "aio")]
#[test]
fn an_absurd_concurrency_is_refused() {
    let err = twat_mp::AsyncMultiPool::builder()
        .nodes(1)
        .concurrency(usize::MAX)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, BuildError::TooLarge { name: "concurrency", max, .. } if max == twat_mp::MAX_CONCURRENCY),
        "{err:?}"
    );
}
