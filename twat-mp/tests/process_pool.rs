//! `ProcessPool` through the public API: every method, and crash isolation — a worker
//! that panics, aborts, segfaults, is `kill -9`ed, runs out of memory or past its timeout
//! costs exactly its item, every other item completes, and the pool stays usable.

use std::process::Command;
use std::time::Duration;

use twat_mp::{BuildError, ErrorKind, ProcessPool, RemoteError, WorkerError};

/// Which item of twenty fails in the crash tests.
const BAD: u64 = 7;

fn square(x: u64) -> u64 {
    x * x
}

/// Sends `signal` to the worker process running this item.
fn signal_self(signal: &str) {
    let pid = std::process::id().to_string();
    let _ = Command::new("kill").args([signal, &pid]).status();
    // The signal is on its way; do not answer before it lands.
    std::thread::sleep(Duration::from_secs(60));
}

fn aborts(x: u64) -> u64 {
    if x == BAD {
        std::process::abort();
    }
    x * x
}

/// A segmentation fault, as the kernel would deliver it for a bad pointer. (A stack
/// overflow is reported as one: see `process_runtime.rs`.)
fn segfaults(x: u64) -> u64 {
    if x == BAD {
        signal_self("-SEGV");
    }
    x * x
}

fn killed(x: u64) -> u64 {
    if x == BAD {
        signal_self("-KILL");
    }
    x * x
}

fn panics(x: u64) -> u64 {
    assert!(x != BAD, "item {x} is bad");
    x * x
}

fn out_of_memory(x: u64) -> u64 {
    if x == BAD {
        // 64 TiB: more than the machine can give, so the allocation fails and Rust aborts.
        let huge = vec![1_u8; 1 << 46];
        return u64::from(huge[12_345]);
    }
    x * x
}

fn hangs(x: u64) -> u64 {
    if x == BAD {
        // An item that never finishes.
        std::thread::sleep(Duration::from_secs(3600));
    }
    x * x
}

/// Runs `f` over 0..20 and checks that only item `BAD` failed, and how.
fn only_the_bad_item_fails(pool: &ProcessPool, f: fn(u64) -> u64) -> WorkerError {
    let outcomes: Vec<Result<u64, WorkerError>> = pool.imap(f, 0..20).collect();
    assert_eq!(outcomes.len(), 20);
    let mut bad = None;
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let x = index as u64;
        match outcome {
            Ok(value) => assert_eq!(value, x * x, "item {index}"),
            Err(err) => {
                assert_eq!(x, BAD, "only item {BAD} may fail, not: {err}");
                assert_eq!(err.index(), index);
                bad = Some(err);
            }
        }
    }
    let err = bad.expect("the bad item failed");
    // The pool is still usable afterwards.
    assert_eq!(pool.map(square, 0..5).unwrap(), [0, 1, 4, 9, 16]);
    err
}

fn crashed_status(err: &WorkerError) -> &str {
    match err.kind() {
        ErrorKind::Crashed { status } => status,
        other => panic!("expected a crash, got {other:?} ({err})"),
    }
}

/// Pools whose batches put the bad item among others (one batch of all twenty), and pools
/// that size batches by themselves.
fn pools() -> [ProcessPool; 2] {
    [
        ProcessPool::builder()
            .nodes(2)
            .chunksize(20)
            .build()
            .unwrap(),
        ProcessPool::with_nodes(2).unwrap(),
    ]
}

#[test]
fn an_abort_costs_exactly_its_item() {
    for pool in pools() {
        let err = only_the_bad_item_fails(&pool, aborts);
        assert!(crashed_status(&err).contains("SIGABRT"), "{err}");
        assert!(err.worker().is_some());
        assert!(
            err.to_string().starts_with("item 7 (input 7) on worker"),
            "{err}"
        );
    }
}

#[test]
fn a_segfault_costs_exactly_its_item() {
    for pool in pools() {
        let err = only_the_bad_item_fails(&pool, segfaults);
        assert!(crashed_status(&err).contains("SIGSEGV"), "{err}");
    }
}

#[test]
fn a_kill_9_costs_exactly_its_item() {
    for pool in pools() {
        let err = only_the_bad_item_fails(&pool, killed);
        assert_eq!(
            crashed_status(&err),
            "was killed by signal 9 (SIGKILL)",
            "{err}"
        );
    }
}

#[test]
fn running_out_of_memory_costs_exactly_its_item() {
    for pool in pools() {
        let err = only_the_bad_item_fails(&pool, out_of_memory);
        assert!(crashed_status(&err).contains("SIGABRT"), "{err}");
    }
}

#[test]
fn a_panic_comes_back_with_its_message_and_backtrace() {
    for pool in pools() {
        let err = only_the_bad_item_fails(&pool, panics);
        assert!(
            matches!(err.kind(), ErrorKind::Panicked { message } if message == "item 7 is bad"),
            "{err}"
        );
        let traceback = err.traceback().expect("a backtrace crossed");
        assert!(traceback.contains("panics"), "{traceback}");
        // The panic's message is kept as its payload, for the attributes to resume.
        let payload = err.take_panic().unwrap();
        assert_eq!(payload.downcast_ref::<String>().unwrap(), "item 7 is bad");
    }
}

#[test]
fn a_timeout_kills_the_item_and_nothing_else() {
    let timeout = Duration::from_millis(500);
    for chunksize in [20, 1] {
        let pool = ProcessPool::builder()
            .nodes(2)
            .chunksize(chunksize)
            .timeout(timeout)
            .build()
            .unwrap();
        let err = only_the_bad_item_fails(&pool, hangs);
        assert!(
            matches!(err.kind(), ErrorKind::TimedOut { after } if *after == timeout),
            "{err}"
        );
    }
}

#[test]
fn map_reports_the_lowest_failure() {
    let pool = ProcessPool::with_nodes(2).unwrap();
    let err = pool.map(panics, 0..100).unwrap_err();
    assert_eq!(err.index(), 7);
    assert_eq!(
        err.to_string().split(" panicked").nth(1),
        Some(": item 7 is bad")
    );
    let err = pool.map(aborts, 0..100).unwrap_err();
    assert_eq!(err.index(), 7);
    assert_eq!(pool.map(square, 0..3).unwrap(), [0, 1, 4]);
}

#[test]
fn every_method_gives_the_thread_pools_answers() {
    let pool = ProcessPool::with_nodes(2).unwrap();
    assert_eq!(pool.nodes(), 2);
    let n = 10_000_u64;
    let expected: Vec<u64> = (0..n).map(square).collect();
    assert_eq!(pool.map(square, 0..n).unwrap(), expected);
    assert_eq!(pool.map(square, Vec::new()).unwrap(), Vec::<u64>::new());
    let lazy: Vec<u64> = pool.imap(square, 0..n).map(Result::unwrap).collect();
    assert_eq!(lazy, expected);
    let mut unordered: Vec<u64> = pool.uimap(square, 0..n).map(Result::unwrap).collect();
    unordered.sort_unstable();
    assert_eq!(unordered, expected);
    assert_eq!(pool.amap(square, 0..n).get().unwrap(), expected);
    assert_eq!(
        pool.starmap(|a: String, b: usize| a.repeat(b), [("ab".to_owned(), 2)])
            .unwrap(),
        ["abab"]
    );
    assert_eq!(pool.apply(square, 12).unwrap(), 144);
    assert_eq!(pool.apipe(square, 13).get().unwrap(), 169);
    let words = ["a", "bb", "ccc"].map(String::from);
    assert_eq!(pool.map(|w: String| w.len(), words).unwrap(), [1, 2, 3]);
}

#[test]
fn imap_runs_an_endless_input_lazily() {
    let pool = ProcessPool::with_nodes(2).unwrap();
    let first: Vec<u64> = pool.imap(square, 1..).take(5).map(Result::unwrap).collect();
    assert_eq!(first, [1, 4, 9, 16, 25]);
}

/// An error without serde: it crosses as its messages, boxed.
fn parse_boxed(s: String) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    Ok(s.parse::<u32>()?)
}

#[test]
fn try_map_carries_the_error_text() {
    let pool = ProcessPool::with_nodes(2).unwrap();
    let err = pool
        .try_map(parse_boxed, ["1", "2", "x3", "4"].map(String::from))
        .unwrap_err();
    assert_eq!(err.index(), 2);
    assert_eq!(
        // The message names the item, its source says why: a chain prints each once.
        format!("{err}: {}", std::error::Error::source(&err).unwrap()),
        format!(
            "item 2 (input \"x3\") on worker {} failed: invalid digit found in string",
            err.worker().unwrap()
        )
    );
    let remote = err.downcast_ref::<RemoteError>().unwrap();
    assert!(remote.debug_text().contains("InvalidDigit"), "{remote:?}");
    let ok = pool.try_map(parse_boxed, ["5".to_owned()]);
    assert_eq!(ok.unwrap(), [5]);
}

#[test]
fn items_of_any_serde_type_cross() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Point {
        x: i32,
        label: String,
    }
    let pool = ProcessPool::with_nodes(1).unwrap();
    let moved = pool
        .map(
            |p: Point| Point {
                x: p.x + 1,
                label: p.label.to_uppercase(),
            },
            vec![Point {
                x: 1,
                label: "a".into(),
            }],
        )
        .unwrap();
    assert_eq!(
        moved,
        [Point {
            x: 2,
            label: "A".into()
        }]
    );
}

#[test]
fn bad_settings_are_build_errors() {
    assert!(matches!(
        ProcessPool::with_nodes(0),
        Err(BuildError::NoNodes)
    ));
    assert!(matches!(
        ProcessPool::builder().chunksize(0).build(),
        Err(BuildError::Zero("chunksize"))
    ));
    assert!(matches!(
        ProcessPool::builder().timeout(Duration::ZERO).build(),
        Err(BuildError::Zero("timeout"))
    ));
}

#[test]
fn the_pool_is_shared_between_threads() {
    fn check<T: Send + Sync>() {}
    check::<ProcessPool>();
    let pool = ProcessPool::with_nodes(2).unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4_u64)
            .map(|t| {
                let pool = &pool;
                scope.spawn(move || pool.map(square, t * 100..t * 100 + 100).unwrap())
            })
            .collect();
        for (t, handle) in handles.into_iter().enumerate() {
            let t = t as u64;
            let expected: Vec<u64> = (t * 100..t * 100 + 100).map(square).collect();
            assert_eq!(handle.join().unwrap(), expected);
        }
    });
}
