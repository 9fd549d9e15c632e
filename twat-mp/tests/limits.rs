//! Absurd settings and sizes fail cleanly, with an error that names the limit: a pool of
//! 100 000 nodes is refused before any thread starts (it used to abort the program or
//! spin for minutes), an endless timeout is no timeout (it used to cancel every item),
//! and an item or result over a process pool's size limit fails alone, before it is sent,
//! while the pool goes on working (it used to fail as a malformed frame, or kill the
//! worker).

use crate::support;

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

#[test]
fn an_endless_timeout_is_no_timeout() {
    #[cfg(target_os = "linux")]
    {
        let pool = twat_mp::ProcessPool::builder()
            .nodes(1)
            .timeout(Duration::MAX)
            .build()
            .unwrap();
        assert_eq!(pool.map(|x: u8| x + 1, [1, 2]).unwrap(), [2, 3]);
    }
    #[cfg(all(feature = "aio", target_os = "linux"))]
    {
        async fn next(x: u8) -> u8 {
            x + 1
        }
        let pool = twat_mp::AsyncMultiPool::builder()
            .nodes(1)
            .timeout(Duration::MAX)
            .processes()
            .build()
            .unwrap();
        assert_eq!(pollster::block_on(pool.map(next, [1, 2])).unwrap(), [2, 3]);
    }
}

#[cfg(target_os = "linux")]
mod process_sizes {
    use twat_mp::{ErrorKind, ProcessPool};

    /// What the item and the result that are too large fail with.
    fn too_large(what: &str) -> String {
        format!(
            "{what} takes more than 1 GiB serialized, the limit for one item or result of a \
             process pool (`ProcessPool::MAX_ITEM_BYTES`); send smaller pieces, or where to \
             find the data"
        )
    }

    /// A string of `len` bytes, made cheaply: zeros are valid UTF-8, and zeroed memory is
    /// not touched until written.
    fn zeros(len: usize) -> String {
        String::from_utf8(vec![0; len]).expect("zeros are UTF-8")
    }

    fn length(text: String) -> usize {
        text.len()
    }

    fn transport(err: &twat_mp::WorkerError) -> &str {
        match err.kind() {
            ErrorKind::Transport(why) => why,
            other => panic!("not a transport error: {other}"),
        }
    }

    #[test]
    fn an_item_over_the_limit_fails_alone_before_it_is_sent() {
        let pool = ProcessPool::builder()
            .nodes(1)
            .chunksize(8)
            .build()
            .unwrap();
        let items = vec![
            "a".to_owned(),
            zeros(ProcessPool::MAX_ITEM_BYTES),
            "abc".to_owned(),
        ];
        let err = pool.map(length, items).unwrap_err();
        assert_eq!(err.index(), 1);
        assert_eq!(transport(&err), too_large("the item"));
        assert!(
            err.to_string().starts_with("item 1 could not cross"),
            "{err}"
        );
        // The items around it crossed, and the pool goes on.
        let fine = vec!["a".to_owned(), "abc".to_owned()];
        assert_eq!(pool.map(length, fine).unwrap(), [1, 3]);
    }

    #[test]
    fn a_result_over_the_limit_fails_alone_in_the_worker() {
        let pool = ProcessPool::with_nodes(1).unwrap();
        let lengths = [3, ProcessPool::MAX_ITEM_BYTES, 4];
        let outcomes: Vec<_> = pool.imap(zeros, lengths).collect();
        assert_eq!(outcomes[0].as_ref().unwrap().len(), 3);
        assert_eq!(outcomes[2].as_ref().unwrap().len(), 4);
        let err = outcomes[1].as_ref().unwrap_err();
        assert_eq!(err.index(), 1);
        assert_eq!(transport(err), too_large("the result"));
        // The worker goes on.
        assert_eq!(pool.map(length, [zeros(5)]).unwrap(), [5]);
    }
}
