//! `AsyncProcessPool` under real use (issue 9): a dropped call gives its workers back,
//! `timeout` is per task, short inputs run on every worker with results streaming back
//! per item, and `maxtasksperchild` counts per worker process.
#![cfg(all(feature = "aio", target_os = "linux"))]

use crate::support;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use twat_mp::{AsyncMultiPool, AsyncProcessPool, ErrorKind};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn pool(nodes: usize) -> AsyncProcessPool {
    AsyncMultiPool::builder()
        .nodes(nodes)
        .processes()
        .build()
        .unwrap()
}

/// A fresh, empty file for a test's workers to append to.
fn scratch(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "twat-mp-aio-real-use-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// Appends one line to `path`: a task says it started.
fn note_start(path: &str, x: u32) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(file, "{x}").unwrap();
}

fn lines(path: &PathBuf) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

async fn forever(x: u32) -> u32 {
    std::future::pending::<()>().await;
    x
}

async fn blocks_forever(x: u32) -> u32 {
    let until = Instant::now() + Duration::from_secs(3_600 * u64::from(x + 1));
    while Instant::now() < until {
        std::thread::sleep(Duration::from_secs(3_600));
    }
    x
}

/// Half the tasks block their thread forever, half await forever.
async fn never(x: u32) -> u32 {
    if x % 2 == 0 {
        blocks_forever(x).await
    } else {
        forever(x).await
    }
}

async fn double(x: u32) -> u32 {
    tokio::task::yield_now().await;
    2 * x
}

// Point 3: a call dropped by its caller (no timeout) over tasks that never finish does not
// keep its worker processes: a later `map` on the pool returns, and so does `drop(pool)`.
#[test]
fn a_dropped_map_gives_its_workers_back() {
    support::within(Duration::from_secs(60), "map after a dropped map", || {
        runtime().block_on(async {
            let pool = pool(2);
            for _ in 0..2 {
                let dropped =
                    tokio::time::timeout(Duration::from_millis(300), pool.map(never, 0..40)).await;
                assert!(dropped.is_err(), "the tasks never finish");
                assert_eq!(pool.map(double, 0..4).await.unwrap(), [0, 2, 4, 6]);
            }
            drop(pool);
        });
    });
}

#[test]
fn a_dropped_stream_gives_its_workers_back() {
    support::within(Duration::from_secs(60), "map after a dropped imap", || {
        runtime().block_on(async {
            let pool = pool(2);
            let mut stream = pool.imap(blocks_forever, 0..40);
            let first = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
            assert!(first.is_err(), "the tasks never finish");
            drop(stream);
            let mut stream = pool.uimap(forever, 0..40);
            let first = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
            assert!(first.is_err(), "the tasks never finish");
            drop(stream);
            assert_eq!(pool.map(double, 0..3).await.unwrap(), [0, 2, 4]);
            drop(pool);
        });
    });
}

// Dropping the pool while a call still runs stops what it runs: the call's items come back
// as cancelled, and the drop waits for none of them.
#[test]
fn dropping_the_pool_stops_its_calls() {
    support::within(Duration::from_secs(60), "drop of a busy pool", || {
        runtime().block_on(async {
            let pool = pool(2);
            let mut stream = pool.uimap(blocks_forever, 0..4);
            let first = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
            assert!(first.is_err(), "the tasks never finish");
            drop(pool);
            let err = stream.next().await.unwrap().unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Cancelled), "{err}");
        });
    });
}

async fn blocks_for(args: (String, u32, u64)) -> u32 {
    let (path, x, millis) = args;
    note_start(&path, x);
    std::thread::sleep(Duration::from_millis(millis));
    x
}

// Point 4: each task's own deadline. Tasks that block their thread for less than the
// timeout each are neither killed nor run again, however many share a worker. The 20
// tasks of a worker block it for 1.6 s in all, well past one timeout of 600 ms, which
// leaves each task 520 ms of slack for a loaded machine's scheduling.
#[test]
fn tasks_within_their_own_timeout_run_once() {
    let starts = scratch("within");
    let path = starts.display().to_string();
    let outcome = support::within(Duration::from_secs(60), "40 tasks of 80 ms", move || {
        runtime().block_on(async move {
            let pool = AsyncMultiPool::builder()
                .nodes(2)
                .timeout(Duration::from_millis(600))
                .processes()
                .build()
                .unwrap();
            pool.map(blocks_for, (0..40).map(|x| (path.clone(), x, 80)))
                .await
        })
    });
    assert_eq!(outcome.unwrap(), (0..40).collect::<Vec<_>>());
    assert_eq!(lines(&starts), 40, "each task started once");
    let _ = std::fs::remove_file(starts);
}

// A task that blocks its thread past its deadline fails with `TimedOut` of the pool's
// timeout, at its deadline (long before it would have returned), and only it. The task
// blocks for 60 s: a call that waited for it to return would take over a minute, while
// one that stops it at its 200 ms deadline is done in a few seconds on any machine, so
// the bound below tells the two apart without timing anything close.
#[test]
fn a_task_blocking_past_its_deadline_times_out_alone() {
    let starts = scratch("past");
    let path = starts.display().to_string();
    let (outcomes, took) = support::within(Duration::from_secs(120), "blocking tasks", move || {
        runtime().block_on(async move {
            let pool = AsyncMultiPool::builder()
                .nodes(1)
                .timeout(Duration::from_millis(200))
                .processes()
                .build()
                .unwrap();
            let started = Instant::now();
            let items = [(0, 10), (1, 60_000), (2, 10), (3, 300), (4, 10)];
            let mut stream = pool.imap(blocks_for, items.map(|(x, ms)| (path.clone(), x, ms)));
            let mut outcomes = Vec::new();
            while let Some(outcome) = stream.next().await {
                outcomes.push(outcome);
            }
            (outcomes, started.elapsed())
        })
    });
    assert_eq!(outcomes.len(), 5);
    for (index, outcome) in outcomes.iter().enumerate() {
        if index == 1 || index == 3 {
            let err = outcome.as_ref().unwrap_err();
            assert_eq!(err.index(), index);
            assert!(
                matches!(err.kind(), ErrorKind::TimedOut { after } if *after == Duration::from_millis(200)),
                "{err}"
            );
        } else {
            assert_eq!(*outcome.as_ref().unwrap() as usize, index);
        }
    }
    // Stopped at its deadline, not when it would have returned (after 60 s).
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let _ = std::fs::remove_file(starts);
}

async fn busy(x: u32) -> (u32, u32, u128) {
    let until = Instant::now() + Duration::from_millis(50);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    (std::process::id(), x, now_micros())
}

// Point 5: a short input runs on every worker, and `uimap` yields each result as it
// completes, not once its whole group is done.
#[test]
fn short_inputs_run_on_every_worker() {
    let pids = support::within(Duration::from_secs(60), "imap of 40", || {
        runtime().block_on(async {
            let pool = pool(2);
            let mut stream = pool.imap(busy, 0..40);
            let mut pids: HashMap<u32, usize> = HashMap::new();
            while let Some(outcome) = stream.next().await {
                *pids.entry(outcome.unwrap().0).or_default() += 1;
            }
            pids
        })
    });
    assert_eq!(pids.len(), 2, "ran on two processes: {pids:?}");
}

#[test]
fn uimap_yields_each_result_as_it_completes() {
    let (first_received, last_finished) = support::within(Duration::from_secs(60), "uimap", || {
        runtime().block_on(async {
            let pool = pool(2);
            let mut stream = pool.uimap(busy, 0..40);
            let first = stream.next().await.unwrap().unwrap();
            let first_received = now_micros();
            let mut last_finished = first.2;
            while let Some(outcome) = stream.next().await {
                last_finished = last_finished.max(outcome.unwrap().2);
            }
            (first_received, last_finished)
        })
    });
    assert!(
        first_received < last_finished,
        "the first result came only after the last task finished"
    );
}

async fn pid_after(x: u32) -> (u32, u32) {
    tokio::time::sleep(Duration::from_millis(50)).await;
    (std::process::id(), x)
}

// Point 8: `maxtasksperchild` counts per worker process: a worker runs its limit before it
// is replaced, whatever the other workers ran, and never more.
#[test]
fn maxtasksperchild_counts_per_worker() {
    let per_pid = support::within(Duration::from_secs(60), "maxtasksperchild", || {
        runtime().block_on(async {
            let pool = AsyncMultiPool::builder()
                .nodes(2)
                .concurrency(5)
                .processes()
                .maxtasksperchild(10)
                .build()
                .unwrap();
            let mut per_pid: HashMap<u32, usize> = HashMap::new();
            for (pid, _) in pool.map(pid_after, 0..20).await.unwrap() {
                *per_pid.entry(pid).or_default() += 1;
            }
            per_pid
        })
    });
    assert!(per_pid.values().all(|&tasks| tasks <= 10), "{per_pid:?}");
    assert!(
        per_pid.values().any(|&tasks| tasks == 10),
        "no worker ran its 10 tasks: {per_pid:?}"
    );
}

// A limit under `concurrency` does not cap how many tasks a worker runs at once: each task
// waits until all four have started (so this finishes only if they run together).
async fn rendezvous(args: (String, u32)) -> bool {
    let (path, x) = args;
    note_start(&path, x);
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if lines(&PathBuf::from(&path)) >= 4 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

#[test]
fn maxtasksperchild_does_not_cap_concurrency() {
    let starts = scratch("together");
    let path = starts.display().to_string();
    let met = support::within(Duration::from_secs(60), "rendezvous", move || {
        runtime().block_on(async move {
            let pool = AsyncMultiPool::builder()
                .nodes(1)
                .concurrency(8)
                .processes()
                .maxtasksperchild(4)
                .build()
                .unwrap();
            pool.map(rendezvous, (0..4).map(|x| (path.clone(), x)))
                .await
        })
    });
    assert_eq!(met.unwrap(), [true; 4]);
    let _ = std::fs::remove_file(starts);
}
