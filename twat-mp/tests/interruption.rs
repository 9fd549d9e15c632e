//! A call whose caller gives up stops its pending items, in every pool: an `AsyncResult`
//! dropped unreceived, a lazy iterator dropped by a caller that panics, a future of
//! `AsyncMultiPool` dropped (thread and process modes). Items not started never start.
//!
//! How that is shown exactly, with no timing: every item marks its start (an atomic for
//! threads, a file for worker processes), then waits at a closed gate. Once every worker
//! waits there, no other item *can* start, so the count of started items is exact at the
//! moment the caller gives up; it must still be that count after the gate opens, the pool
//! ran other work and was dropped. Each test runs under the watchdog: a pool whose drop
//! waited for the items at the gate (they wait two minutes at most) fails it.
#![cfg(target_os = "linux")]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use twat_mp::{ProcessPool, ThreadPool};

use crate::support;

use support::run_marks::{self, Item};

/// Far above what any of these tests needs on a loaded machine: only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(60);
/// The longest an item waits at its gate: longer than [`LIMIT`], so that a pool whose
/// drop waited for such items fails the watchdog instead of passing late.
const GATE_PATIENCE: Duration = Duration::from_secs(120);

/// Polls `done` until it holds; the watchdog around each test bounds the wait.
fn wait_for(mut done: impl FnMut() -> bool) {
    while !done() {
        std::thread::sleep(Duration::from_millis(2));
    }
}

// ---------------------------------------------------------------------------------------
// Worker processes: each item leaves a file when it starts; its gate is a file too.
// ---------------------------------------------------------------------------------------

fn gate_path(dir: &str) -> std::path::PathBuf {
    Path::new(dir).join("gate")
}

fn gate_is_open(dir: &str, since: Instant) -> bool {
    gate_path(dir).exists() || since.elapsed() > GATE_PATIENCE
}

/// Item 0 returns at once; every other item marks its start, then waits for the gate.
fn gated((dir, x): Item) -> u64 {
    run_marks::mark_run(&dir, x);
    let since = Instant::now();
    while x != 0 && !gate_is_open(&dir, since) {
        std::thread::sleep(Duration::from_millis(2));
    }
    x
}

#[cfg(feature = "aio")]
async fn gated_async((dir, x): Item) -> u64 {
    run_marks::mark_run(&dir, x);
    let since = Instant::now();
    while x != 0 && !gate_is_open(&dir, since) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    x
}

fn square(x: u64) -> u64 {
    x * x
}

/// How many items of `dir` started (each at most once here: no worker crashes).
fn started_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("runs-")
        })
        .count()
}

fn open_gate(dir: &Path) {
    std::fs::write(dir.join("gate"), b"open").unwrap();
}

#[test]
fn process_amap_whose_result_is_dropped_stops_its_items() {
    support::within(LIMIT, "a process amap dropped", || {
        let dir = run_marks::scratch("interruption", "process-amap");
        let pool = ProcessPool::with_nodes(2).unwrap();
        let pending = pool.amap(gated, run_marks::items(&dir, 1..201));
        // Both workers wait at the gate: no third item can start.
        wait_for(|| started_in(&dir) == 2);
        drop(pending);
        // The pool is free at once: the workers at the gate were stopped and replaced.
        let squares = pool.map(square, 0..100).unwrap();
        assert_eq!(squares, (0..100).map(square).collect::<Vec<_>>());
        // Its drop waits for nothing of the abandoned call (the watchdog shows it).
        drop(pool);
        open_gate(&dir);
        assert_eq!(started_in(&dir), 2, "items not started never started");
    });
}

#[test]
fn process_apipe_whose_result_is_dropped_stops_its_item() {
    support::within(LIMIT, "a process apipe dropped", || {
        let dir = run_marks::scratch("interruption", "process-apipe");
        let pool = ProcessPool::with_nodes(1).unwrap();
        let item = run_marks::items(&dir, 1..2).pop().unwrap();
        let pending = pool.apipe(gated, item);
        wait_for(|| started_in(&dir) == 1);
        drop(pending);
        assert_eq!(pool.apply(square, 7).unwrap(), 49);
        drop(pool);
        open_gate(&dir);
        assert_eq!(started_in(&dir), 1);
    });
}

#[test]
fn process_imap_whose_caller_panics_stops_its_items() {
    support::within(LIMIT, "a process imap whose caller panics", || {
        let dir = run_marks::scratch("interruption", "process-imap");
        let pool = ProcessPool::with_nodes(2).unwrap();
        let items = run_marks::items(&dir, 0..200);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut results = pool.imap(gated, items);
            assert_eq!(results.next().unwrap().unwrap(), 0);
            // Item 0 is done and both workers wait at the gate.
            wait_for(|| started_in(&dir) == 3);
            panic!("the caller fails in the middle of its map");
        }));
        assert!(outcome.is_err());
        assert_eq!(pool.map(square, 0..10).unwrap().len(), 10);
        drop(pool);
        open_gate(&dir);
        assert_eq!(started_in(&dir), 3, "items not started never started");
    });
}

// ---------------------------------------------------------------------------------------
// Threads: an atomic counts the items started; the gate is a flag.
// ---------------------------------------------------------------------------------------

/// What the items of one thread test share.
#[derive(Default)]
struct Marks {
    started: AtomicUsize,
    open: AtomicBool,
}

impl Marks {
    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Marks the item's start; item 0 returns at once, the others wait for the gate.
    fn run(&self, x: u64) -> u64 {
        self.started.fetch_add(1, Ordering::SeqCst);
        let since = Instant::now();
        while x != 0 && !self.open.load(Ordering::SeqCst) && since.elapsed() < GATE_PATIENCE {
            std::thread::sleep(Duration::from_millis(1));
        }
        x
    }

    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[test]
fn thread_amap_whose_result_is_dropped_skips_its_items_not_started() {
    support::within(LIMIT, "a thread amap dropped", || {
        let marks = Arc::new(Marks::default());
        let pool = ThreadPool::with_nodes(2).unwrap();
        let counted = Arc::clone(&marks);
        let pending = pool.amap(move |x: u64| counted.run(x), 1..201);
        wait_for(|| marks.started() == 2);
        drop(pending);
        // A thread cannot be stopped: the two items at the gate finish once it opens.
        marks.open();
        drop(pool);
        assert_eq!(marks.started(), 2, "items not started never started");
    });
}

#[test]
fn thread_apipe_whose_result_is_dropped_never_starts() {
    support::within(LIMIT, "a thread apipe dropped", || {
        let marks = Arc::new(Marks::default());
        let pool = ThreadPool::with_nodes(1).unwrap();
        let counted = Arc::clone(&marks);
        // The pool's one thread waits at the gate; the apipe queues behind it.
        let busy = pool.apipe(move |x: u64| counted.run(x), 1);
        wait_for(|| marks.started() == 1);
        let counted = Arc::clone(&marks);
        let dropped = pool.apipe(move |x: u64| counted.run(x), 2);
        drop(dropped);
        marks.open();
        assert_eq!(busy.get().unwrap(), 1);
        drop(pool);
        assert_eq!(marks.started(), 1, "the dropped apipe never started");
    });
}

#[test]
fn thread_imap_whose_caller_panics_skips_its_items_not_started() {
    support::within(LIMIT, "a thread imap whose caller panics", || {
        let marks = Arc::new(Marks::default());
        let pool = ThreadPool::with_nodes(2).unwrap();
        let counted = Arc::clone(&marks);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut results = pool.imap(move |x: u64| counted.run(x), 0..200);
            assert_eq!(results.next().unwrap().unwrap(), 0);
            wait_for(|| marks.started() == 3);
            panic!("the caller fails in the middle of its map");
        }));
        assert!(outcome.is_err());
        marks.open();
        drop(pool);
        assert_eq!(marks.started(), 3, "items not started never started");
    });
}

// ---------------------------------------------------------------------------------------
// AsyncMultiPool: the caller's future is dropped while items wait at the gate.
// ---------------------------------------------------------------------------------------

/// Runs `call` on a runtime of the test's own until `ready` holds, then drops it
/// unfinished: what `select!`, a timeout or a cancelled task does to a future.
#[cfg(feature = "aio")]
fn drop_when<T>(call: impl Future<Output = T>, mut ready: impl FnMut() -> bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::select! {
            _ = call => panic!("the call cannot finish while its items wait at the gate"),
            () = async {
                while !ready() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            } => {}
        }
    });
}

#[cfg(feature = "aio")]
#[test]
fn async_map_whose_future_is_dropped_skips_its_items_not_started() {
    support::within(LIMIT, "an async map dropped", || {
        let marks = Arc::new(Marks::default());
        let pool = twat_mp::AsyncMultiPool::builder()
            .nodes(2)
            .concurrency(1)
            .build()
            .unwrap();
        let counted = Arc::clone(&marks);
        let call = pool.map(
            move |x: u64| {
                let marks = Arc::clone(&counted);
                async move {
                    marks.started.fetch_add(1, Ordering::SeqCst);
                    while !marks.open.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    x
                }
            },
            1..201,
        );
        drop_when(call, || marks.started() == 2);
        marks.open();
        drop(pool);
        assert_eq!(marks.started(), 2, "items not started never started");
    });
}

#[cfg(feature = "aio")]
#[test]
fn async_process_map_whose_future_is_dropped_stops_its_items() {
    support::within(LIMIT, "an async process map dropped", || {
        let dir = run_marks::scratch("interruption", "async-process-map");
        let pool = twat_mp::AsyncMultiPool::builder()
            .nodes(2)
            .concurrency(1)
            .processes()
            .build()
            .unwrap();
        let call = pool.map(gated_async, run_marks::items(&dir, 1..201));
        drop_when(call, || started_in(&dir) == 2);
        let squares = pollster::block_on(pool.map(gated_async, run_marks::items(&dir, 0..1)));
        assert_eq!(squares.unwrap(), [0], "the pool is free for the next call");
        // Its drop waits for nothing of the abandoned call (the watchdog shows it).
        drop(pool);
        open_gate(&dir);
        assert_eq!(
            started_in(&dir),
            3,
            "items not started never started (item 0 is the second call's)"
        );
    });
}
