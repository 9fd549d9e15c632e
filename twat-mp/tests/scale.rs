//! Scale, through the public API (issue 14): `imap` over ten million lazily generated items
//! runs in constant memory; a 512 MiB item and its 512 MiB result cross the process
//! boundary intact; 100,000 tiny items through `uimap` arrive exactly once, on every pool
//! that has `uimap`.
//!
//! Peak memory is measured in a child process: the test runs its own test binary again
//! (the same test, `--exact`, with [`CHILD`] set), and the child does the one call and
//! prints its peak resident set (`VmHWM` in `/proc/self/status`), so that no other test of
//! this binary counts. Memory is compared between sizes, never against a fixed figure of
//! this machine.
#![cfg(target_os = "linux")]

use crate::support;

use std::hash::Hasher;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use support::within;
use twat_mp::{ProcessPool, ThreadPool, WorkerError};

/// Set in a child: what it measures (`pool:items` for `imap`, `big` for the large item).
const CHILD: &str = "TWAT_MP_SCALE_CHILD";
/// The line of a child's output that carries its figures.
const REPORT: &str = "scale-child-report:";

const KIB: u64 = 1024;
/// The batch size of the process pool's `imap` in the memory test.
const PROCESS_BATCH: usize = 1024;
const MIB: usize = 1 << 20;

/// The peak resident set of this process so far, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Runs the test `test` of this binary in a child with `CHILD=spec` and returns the
/// numbers of its report line. A child that has not finished within `limit` is killed and
/// fails the test.
fn in_child(test: &str, spec: &str, limit: Duration) -> Vec<u64> {
    let exe = std::env::current_exe().expect("this test binary");
    let test = support::test_name(module_path!(), test);
    let what = format!("the child `{test}` with {CHILD}={spec}");
    let mut child = Command::new(exe)
        .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, spec)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the child test binary starts");
    let mut stdout = child.stdout.take().expect("the child's stdout");
    let read = std::panic::catch_unwind(|| {
        within(limit, &what, move || {
            let mut text = String::new();
            stdout.read_to_string(&mut text).map(|_| text)
        })
    });
    let stdout = match read {
        Ok(text) => text.expect("the child's output"),
        Err(hang) => {
            let _ = child.kill();
            let _ = child.wait();
            std::panic::resume_unwind(hang);
        }
    };
    let status = child.wait().expect("the child's exit");
    assert!(status.success(), "{what} failed: {status}\n{stdout}");
    let line = stdout
        .lines()
        .find_map(|line| line.split_once(REPORT).map(|(_, figures)| figures))
        .unwrap_or_else(|| panic!("{what} printed no report:\n{stdout}"));
    line.split_whitespace()
        .map(|n| n.parse().expect("a number in the report"))
        .collect()
}

/// The lazily generated input: item `x` is made only when the map pulls it.
fn generated(n: u64) -> impl Iterator<Item = u64> + Send + 'static {
    (0..n).map(|x| x.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn odd(x: u64) -> u64 {
    x | 1
}

/// In a child: one `imap` of `n` generated items on `pool`, every result checked in
/// order, then its report: the peak RSS (KiB) and the milliseconds the map took.
fn imap_child(spec: &str) {
    let (pool, n) = spec.split_once(':').expect("pool:items");
    let n: u64 = n.parse().expect("a count of items");
    let start = Instant::now();
    match pool {
        "thread" => {
            let pool = ThreadPool::new().unwrap();
            check_in_order(n, pool.imap(odd, generated(n)));
        }
        "process" => {
            // Batches of a fixed size: the adaptive size follows the measured cost of an
            // item, so how many items the window holds would depend on the machine's load.
            let pool = ProcessPool::builder()
                .chunksize(PROCESS_BATCH)
                .build()
                .unwrap();
            check_in_order(n, pool.imap(odd, generated(n)));
        }
        other => panic!("no pool `{other}`"),
    }
    let millis = start.elapsed().as_millis();
    println!("{REPORT} {} {millis}", peak_rss_kib());
}

/// Checks that `outcomes` are exactly `odd` of the generated items, in input order, and
/// that there are `n` of them.
fn check_in_order(n: u64, outcomes: impl Iterator<Item = Result<u64, WorkerError>>) {
    let mut expected = generated(n);
    let mut count = 0_u64;
    for outcome in outcomes {
        let x = expected.next().expect("no more results than items");
        assert_eq!(
            outcome.expect("a trivial item succeeds"),
            odd(x),
            "item {count}"
        );
        count += 1;
    }
    assert_eq!(count, n, "every item has its result");
}

/// The peak RSS of one `imap` of ten million items stays within 1.5× (+ 4 MiB) of the
/// peak of one million: the lazy map holds a bounded window, not its input or results.
fn imap_runs_in_constant_memory(test: &str, pool: &str) {
    if let Ok(spec) = std::env::var(CHILD) {
        return imap_child(&spec);
    }
    let limit = Duration::from_secs(300);
    let small = in_child(test, &format!("{pool}:1000000"), limit);
    let large = in_child(test, &format!("{pool}:10000000"), limit);
    let (small_kib, large_kib) = (small[0], large[0]);
    println!(
        "{pool} imap peak RSS: 1 M items {:.1} MiB ({} ms), 10 M items {:.1} MiB ({} ms)",
        small_kib as f64 / KIB as f64,
        small[1],
        large_kib as f64 / KIB as f64,
        large[1],
    );
    assert!(
        large_kib <= small_kib * 3 / 2 + 4 * KIB,
        "{pool} imap: 10 M items peaked at {large_kib} KiB, 1 M items at {small_kib} KiB: \
         more than 1.5x + 4 MiB"
    );
}

#[test]
fn thread_pool_imap_of_ten_million_items_runs_in_constant_memory() {
    imap_runs_in_constant_memory(
        "thread_pool_imap_of_ten_million_items_runs_in_constant_memory",
        "thread",
    );
}

#[test]
fn process_pool_imap_of_ten_million_items_runs_in_constant_memory() {
    imap_runs_in_constant_memory(
        "process_pool_imap_of_ten_million_items_runs_in_constant_memory",
        "process",
    );
}

/// The size of the large item and of its result.
const BIG: usize = 512 * MIB;

/// 512 MiB in which every MiB differs from the others (its index in its first 8 bytes),
/// so that a MiB lost, doubled or moved changes the bytes.
fn big_item() -> ByteBuf {
    let block: Vec<u8> = (0_u32..MIB as u32)
        .map(|i| (i.wrapping_mul(0x9E37_79B9) >> 24) as u8)
        .collect();
    let mut bytes = Vec::with_capacity(BIG);
    for index in 0..(BIG / MIB) as u64 {
        let start = bytes.len();
        bytes.extend_from_slice(&block);
        bytes[start..start + 8].copy_from_slice(&index.to_le_bytes());
    }
    ByteBuf::from(bytes)
}

fn checksum(bytes: &[u8]) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// In the worker: the checksum of the item as it arrived, and the item rotated left by
/// one MiB with the checksum of that result as it leaves.
fn rotate_big(mut bytes: ByteBuf) -> (u64, ByteBuf, u64) {
    let arrived = checksum(&bytes);
    bytes.rotate_left(MIB);
    let leaving = checksum(&bytes);
    (arrived, bytes, leaving)
}

/// In the worker: its own peak RSS (KiB).
fn worker_peak_rss(_: ()) -> u64 {
    peak_rss_kib()
}

/// In a child: the 512 MiB item to one worker and its result back, both checked; then
/// the report: this process's and the worker's peak RSS (KiB), the milliseconds of the
/// round trip. The item is moved into the call (not cloned), and made again to compare.
fn big_child() {
    let pool = ProcessPool::with_nodes(1).unwrap();
    let item = big_item();
    let sent = checksum(&item);
    let start = Instant::now();
    let (arrived, result, leaving) = pool.apply(rotate_big, item).unwrap();
    let millis = start.elapsed().as_millis();
    assert_eq!(arrived, sent, "the item arrived as it was sent");
    assert_eq!(
        checksum(&result),
        leaving,
        "the result arrived as it was sent"
    );
    assert_eq!(result.len(), BIG);
    let item = big_item();
    assert!(result[..BIG - MIB] == item[MIB..] && result[BIG - MIB..] == item[..MIB]);
    drop((item, result));
    let worker = pool.apply(worker_peak_rss, ()).unwrap();
    println!("{REPORT} {} {worker} {millis}", peak_rss_kib());
}

/// A 512 MiB item and its 512 MiB result cross the process boundary intact: the worker's
/// checksum of what arrived is the parent's of what it sent, and back; the result is the
/// item rotated by one MiB, byte for byte. The cost is printed (peak RSS of both sides).
#[test]
fn a_512_mib_item_and_result_cross_the_process_boundary_intact() {
    const TEST: &str = "a_512_mib_item_and_result_cross_the_process_boundary_intact";
    if std::env::var(CHILD).is_ok() {
        return big_child();
    }
    let report = in_child(TEST, "big", Duration::from_secs(300));
    let (parent, worker, millis) = (report[0], report[1], report[2]);
    println!(
        "512 MiB round trip: {millis} ms; peak RSS {:.0} MiB in the caller, {:.0} MiB in the worker",
        parent as f64 / KIB as f64,
        worker as f64 / KIB as f64
    );
    // What a round trip costs is the item's bytes a few times over on each side (the
    // value, its frame, the result and its frame), never more: a copy too many of 512 MiB
    // is what exhausts a small machine.
    let bound = 3 * BIG as u64 / 1024 + 64 * KIB;
    assert!(
        parent <= bound && worker <= bound,
        "a 512 MiB round trip peaked at {parent} KiB in the caller and {worker} KiB in the \
         worker: more than 3 x 512 MiB + 64 MiB"
    );
}

/// How many tiny items go through each pool's `uimap`.
const UIMAP_ITEMS: u64 = 100_000;

/// A tiny item's result: the item itself, to see where it came from, and a value of it.
fn tagged(x: u64) -> (u64, u64) {
    (x, x.wrapping_mul(3) + 1)
}

/// Checks that `results` hold every item's result exactly once (in any order).
fn exactly_once(pool: &str, results: impl IntoIterator<Item = Result<(u64, u64), WorkerError>>) {
    let mut seen = vec![0_u8; UIMAP_ITEMS as usize];
    let mut count = 0_u64;
    for result in results {
        let (x, value) = result.unwrap_or_else(|err| panic!("{pool}: {err}"));
        assert_eq!(
            value,
            x.wrapping_mul(3) + 1,
            "{pool}: the result of item {x}"
        );
        let slot = seen
            .get_mut(x as usize)
            .unwrap_or_else(|| panic!("{pool}: a result for item {x}, which was never sent"));
        *slot += 1;
        assert_eq!(*slot, 1, "{pool}: item {x} arrived twice");
        count += 1;
    }
    assert_eq!(count, UIMAP_ITEMS, "{pool}: every item arrived");
}

#[test]
fn thread_pool_uimap_yields_100_000_items_exactly_once() {
    within(Duration::from_secs(120), "ThreadPool::uimap", || {
        let pool = ThreadPool::with_nodes(2).unwrap();
        exactly_once("ThreadPool", pool.uimap(tagged, 0..UIMAP_ITEMS));
    });
}

#[test]
fn process_pool_uimap_yields_100_000_items_exactly_once() {
    within(Duration::from_secs(120), "ProcessPool::uimap", || {
        let pool = ProcessPool::with_nodes(2).unwrap();
        exactly_once("ProcessPool", pool.uimap(tagged, 0..UIMAP_ITEMS));
    });
}

#[cfg(feature = "aio")]
#[test]
fn async_pool_uimap_yields_100_000_items_exactly_once() {
    within(Duration::from_secs(120), "AsyncMultiPool::uimap", || {
        let pool = twat_mp::AsyncMultiPool::with_nodes(2).unwrap();
        let mut stream = pool.uimap(|x: u64| async move { tagged(x) }, 0..UIMAP_ITEMS);
        exactly_once(
            "AsyncMultiPool",
            std::iter::from_fn(|| pollster::block_on(stream.next())),
        );
    });
}

#[cfg(feature = "aio")]
#[test]
fn async_process_pool_uimap_yields_100_000_items_exactly_once() {
    async fn tagged_task(x: u64) -> (u64, u64) {
        tagged(x)
    }
    within(Duration::from_secs(120), "AsyncProcessPool::uimap", || {
        let pool = twat_mp::AsyncMultiPool::builder()
            .nodes(2)
            .processes()
            .build()
            .unwrap();
        let mut stream = pool.uimap(tagged_task, 0..UIMAP_ITEMS);
        exactly_once(
            "AsyncProcessPool",
            std::iter::from_fn(|| pollster::block_on(stream.next())),
        );
    });
}
