//! How items travel to worker processes, through the public API: with one item per message
//! (`chunksize = 1`) a worker gets its next jobs before it has answered the current one,
//! and a crash or a timeout still costs exactly its item, every other item running once;
//! large items and results (`Vec<u8>`, `serde_bytes::ByteBuf`, `bytes::Bytes`, newtypes
//! of them) arrive intact, and a failing one still shows its input.
//!
//! The functions cross to worker processes, so they capture nothing: each item carries the
//! directory where its runs leave their marks (one line per run), which is how a test sees
//! how often an item ran.
#![cfg(target_os = "linux")]

use crate::support;

use std::time::Duration;

use support::run_marks::{self, Item, items, mark_run, runs};
use support::within;
use twat_mp::{ErrorKind, ProcessPool};

fn scratch(test: &str) -> run_marks::Scratch {
    run_marks::scratch("transport", test)
}

fn one_per_message() -> twat_mp::ProcessPoolBuilder {
    ProcessPool::builder().nodes(2).chunksize(1)
}

/// Items 17, 57, 97, … abort their worker.
fn aborts_on_17_mod_40((dir, x): Item) -> u64 {
    mark_run(&dir, x);
    if x % 40 == 17 {
        std::process::abort();
    }
    x * 2
}

#[test]
fn with_jobs_in_flight_a_crash_costs_exactly_its_item_and_every_other_runs_once() {
    within(
        Duration::from_secs(120),
        "a pipelined map with crashes",
        || {
            let dir = scratch("crash");
            let pool = one_per_message().build().unwrap();
            let outcomes: Vec<_> = pool
                .imap(aborts_on_17_mod_40, items(&dir, 0..200))
                .collect();
            assert_eq!(outcomes.len(), 200);
            for (x, outcome) in (0_u64..).zip(&outcomes) {
                if x % 40 == 17 {
                    let err = outcome.as_ref().unwrap_err();
                    assert_eq!(err.index() as u64, x);
                    assert!(
                        matches!(err.kind(), ErrorKind::Crashed { .. }),
                        "{x}: {err}"
                    );
                } else {
                    assert_eq!(*outcome.as_ref().unwrap(), x * 2, "{x}");
                }
                // The jobs sent behind a crash had not begun: they ran once, on a new worker.
                assert_eq!(runs(&dir, x).len(), 1, "item {x}");
            }
            // The pool goes on as before.
            assert_eq!(
                pool.map(aborts_on_17_mod_40, items(&dir, 210..230))
                    .unwrap_err()
                    .index(),
                7
            );
        },
    );
}

/// Aborts on its first run only.
fn aborts_once((dir, x): Item) -> u64 {
    if mark_run(&dir, x) == 0 && x == 33 {
        std::process::abort();
    }
    x + 1
}

#[test]
fn with_jobs_in_flight_a_retried_item_runs_again_and_no_other_does() {
    within(
        Duration::from_secs(60),
        "a pipelined map with a retry",
        || {
            let dir = scratch("retry");
            let pool = one_per_message().retries(1).build().unwrap();
            let results = pool.map(aborts_once, items(&dir, 0..120)).unwrap();
            assert_eq!(results, (1..=120).collect::<Vec<u64>>());
            for x in 0..120 {
                assert_eq!(runs(&dir, x).len(), if x == 33 { 2 } else { 1 }, "item {x}");
            }
        },
    );
}

/// Item 30 hangs.
fn hangs_on_30((dir, x): Item) -> u64 {
    mark_run(&dir, x);
    if x == 30 {
        // A hang, as a stuck network call would be: the worker is killed at the timeout.
        std::thread::sleep(Duration::from_secs(600));
    }
    x
}

#[test]
fn with_jobs_in_flight_a_timeout_is_per_item_and_costs_only_that_item() {
    within(
        Duration::from_secs(60),
        "a pipelined map with a hang",
        || {
            let dir = scratch("timeout");
            let limit = Duration::from_millis(700);
            let pool = one_per_message().timeout(limit).build().unwrap();
            let outcomes: Vec<_> = pool.imap(hangs_on_30, items(&dir, 0..150)).collect();
            for (x, outcome) in (0_u64..).zip(&outcomes) {
                if x == 30 {
                    let err = outcome.as_ref().unwrap_err();
                    assert_eq!(err.index(), 30);
                    assert!(
                        matches!(err.kind(), ErrorKind::TimedOut { after } if *after == limit),
                        "{err}"
                    );
                } else {
                    // The jobs queued behind the hung one did not time out with it.
                    assert_eq!(*outcome.as_ref().unwrap(), x);
                }
                assert_eq!(runs(&dir, x).len(), 1, "item {x}");
            }
        },
    );
}

fn reversed(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.reverse();
    bytes
}

fn reversed_buf(bytes: serde_bytes::ByteBuf) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(reversed(bytes.into_vec()))
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn large_byte_items_and_results_arrive_intact() {
    within(Duration::from_secs(120), "large items", || {
        let pool = ProcessPool::with_nodes(2).unwrap();
        let sizes = [0, 1, 127, 128, (1 << 20) - 3, (1 << 20) + 5, 24 << 20];
        let items: Vec<Vec<u8>> = (0_u64..)
            .zip(sizes)
            .map(|(seed, len)| pattern(len, seed))
            .collect();
        let results = pool.map(reversed, items.clone()).unwrap();
        for (item, result) in items.iter().zip(&results) {
            assert_eq!(result.len(), item.len());
            assert!(result.iter().rev().eq(item.iter()));
        }
        let bufs: Vec<_> = items
            .iter()
            .cloned()
            .map(serde_bytes::ByteBuf::from)
            .collect();
        let results = pool.map(reversed_buf, bufs).unwrap();
        for (item, result) in items.iter().zip(&results) {
            assert!(result.iter().rev().eq(item.iter()));
        }
        // Alone in its job, a large one crosses without a frame buffer of its own (the
        // item is its batch's buffer, the result is written from the value and read in
        // place): the bytes are the same.
        let big = pattern(3 << 20, 99);
        let back = pool.apply(reversed, big.clone()).unwrap();
        assert!(back.iter().rev().eq(big.iter()));
        let back = pool
            .apply(reversed_buf, serde_bytes::ByteBuf::from(big.clone()))
            .unwrap();
        assert!(back.iter().rev().eq(big.iter()));
        // A large piece among small ones, in a result of several fields.
        let (len, buf, tail) = pool.apply(split, big.clone()).unwrap();
        assert_eq!(len, big.len() as u64);
        assert_eq!(buf.into_vec(), big[..big.len() - 3]);
        assert_eq!(tail, big[big.len() - 3..]);
    });
}

/// From this many bytes on a byte string crosses without a frame buffer of its own
/// (`wire::LARGE`): the tests take sizes on both sides of it.
const LARGE: usize = 1 << 20;

/// A user's newtype of a byte buffer: taken out of its frame as the buffer is.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
struct Blob(serde_bytes::ByteBuf);

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The bytes reversed; an item whose first byte is 0 panics.
fn flipped(mut bytes: Vec<u8>) -> Vec<u8> {
    assert!(bytes.first() != Some(&0), "a zero first");
    bytes.reverse();
    bytes
}

fn flipped_buf(bytes: serde_bytes::ByteBuf) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(flipped(bytes.into_vec()))
}

fn flipped_bytes(bytes: bytes::Bytes) -> bytes::Bytes {
    bytes::Bytes::from(flipped(Vec::from(bytes)))
}

fn flipped_blob(blob: Blob) -> Blob {
    Blob(flipped_buf(blob.0))
}

/// Items of each size around `LARGE`, none starting with 0.
fn byte_items() -> Vec<Vec<u8>> {
    let sizes = [LARGE - 1, LARGE, LARGE + 5];
    (0_u64..)
        .zip(sizes)
        .map(|(seed, len)| {
            let mut bytes = pattern(len, seed + 40);
            bytes[0] = 1;
            bytes
        })
        .collect()
}

/// `map`, `imap` (one at a time and batched) and `apply` of `f` over `items` give each
/// item's bytes reversed, exactly; a failing item (its first byte 0) fails alone and shows
/// its input as its other failures do.
fn crosses_exactly<T>(
    (pool, one_each): (&ProcessPool, &ProcessPool),
    f: fn(T) -> T,
    items: &[T],
    make: fn(Vec<u8>) -> T,
) where
    T: twat_mp::CrossProcess + Clone + AsRef<[u8]> + std::fmt::Debug,
{
    let check = |results: &[T]| {
        assert_eq!(results.len(), items.len());
        for (item, result) in items.iter().zip(results) {
            let (item, result) = (item.as_ref(), result.as_ref());
            assert_eq!(result.len(), item.len());
            assert!(result.iter().rev().eq(item.iter()));
        }
    };
    check(&pool.map(f, items.to_vec()).unwrap());
    let lazy: Result<Vec<T>, _> = pool.imap(f, items.to_vec()).collect();
    check(&lazy.unwrap());
    let lazy: Result<Vec<T>, _> = one_each.imap(f, items.to_vec()).collect();
    check(&lazy.unwrap());
    let applied: Vec<T> = items
        .iter()
        .map(|item| pool.apply(f, item.clone()).unwrap())
        .collect();
    check(&applied);

    let mut failing = items[2].as_ref().to_vec();
    failing[0] = 0;
    let shown_as = |err: &twat_mp::WorkerError| {
        assert!(matches!(err.kind(), ErrorKind::Panicked { .. }), "{err}");
        let shown = err.input().expect("the item is shown").to_owned();
        // Cut to a readable length, the start of its serde form.
        let full = ron::to_string(&make(failing.clone())).unwrap();
        assert!(shown.len() > 100, "{shown}");
        assert!(full.starts_with(shown.trim_end_matches('…')), "{shown}");
        shown
    };
    let err = pool.apply(f, make(failing.clone())).unwrap_err();
    let alone = shown_as(&err);
    let with_others = vec![items[0].clone(), make(failing.clone()), items[1].clone()];
    let err = pool.map(f, with_others.clone()).unwrap_err();
    assert_eq!(err.index(), 1);
    assert_eq!(shown_as(&err), alone);
    let outcomes: Vec<_> = one_each.imap(f, with_others).collect();
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
    assert_eq!(shown_as(outcomes[1].as_ref().unwrap_err()), alone);
}

#[test]
fn large_byte_bufs_bytes_and_newtypes_cross_exactly() {
    within(Duration::from_secs(180), "large byte types", || {
        let pool = ProcessPool::with_nodes(2).unwrap();
        let one_each = ProcessPool::builder()
            .nodes(2)
            .chunksize(1)
            .build()
            .unwrap();
        let pools = (&pool, &one_each);
        let items = byte_items();
        crosses_exactly(pools, flipped, &items, |bytes| bytes);

        let bufs: Vec<_> = items
            .iter()
            .cloned()
            .map(serde_bytes::ByteBuf::from)
            .collect();
        crosses_exactly(pools, flipped_buf, &bufs, serde_bytes::ByteBuf::from);

        let blobs: Vec<_> = bufs.iter().cloned().map(Blob).collect();
        crosses_exactly(pools, flipped_blob, &blobs, |b| Blob(b.into()));

        // `Bytes` alone with its buffer, sharing it with a clone that stays alive, and a
        // slice not at the start of its buffer: each crosses as its bytes, and the clone
        // keeps its own.
        let unique: Vec<_> = items.iter().cloned().map(bytes::Bytes::from).collect();
        crosses_exactly(pools, flipped_bytes, &unique, bytes::Bytes::from);
        let alive = unique.clone();
        let back = pool.map(flipped_bytes, unique).unwrap();
        let back = pool.map(flipped_bytes, back).unwrap();
        assert_eq!(back, alive);
        for (bytes, item) in alive.iter().zip(&items) {
            assert_eq!(bytes, item);
        }
        let sliced: Vec<_> = items
            .iter()
            .map(|item| {
                let mut longer = vec![7_u8; 3];
                longer.extend_from_slice(item);
                longer.push(9);
                bytes::Bytes::from(longer).slice(3..3 + item.len())
            })
            .collect();
        crosses_exactly(pools, flipped_bytes, &sliced, bytes::Bytes::from);
        let applied = pool.apply(flipped_bytes, sliced[2].clone()).unwrap();
        assert!(applied.iter().rev().eq(items[2].iter()));
    });
}

/// Its length, and its bytes as a large piece and a small one.
fn split(bytes: Vec<u8>) -> (u64, serde_bytes::ByteBuf, Vec<u8>) {
    let cut = bytes.len() - 3;
    (
        bytes.len() as u64,
        serde_bytes::ByteBuf::from(bytes[..cut].to_vec()),
        bytes[cut..].to_vec(),
    )
}

/// Of each 3,000 items, 0, 1,000, 1,001 and 2,999 (the first, two in a row, the last)
/// abort their worker.
const CRASHED: [u64; 4] = [0, 1_000, 1_001, 2_999];

fn aborts_on_chosen((dir, x): Item) -> u64 {
    mark_run(&dir, x);
    if CRASHED.contains(&(x % 3_000)) {
        std::process::abort();
    }
    x + 5
}

#[test]
fn answers_handed_over_in_bunches_keep_a_crash_exact_and_every_other_item_run_once() {
    // Short items, one per message: a worker gets up to 32 jobs ahead and its slot hands
    // the call several answers at once; neither may move a crash's blame or run an item
    // twice.
    within(
        Duration::from_secs(120),
        "a long pipelined map with crashes",
        || {
            let dir = scratch("bunches");
            let pool = one_per_message().build().unwrap();
            for ordered in [true, false] {
                let input = items(&dir, if ordered { 0..3_000 } else { 3_000..6_000 });
                let mut outcomes: Vec<(u64, Result<u64, twat_mp::WorkerError>)> = if ordered {
                    (0_u64..).zip(pool.imap(aborts_on_chosen, input)).collect()
                } else {
                    pool.uimap(aborts_on_chosen, input)
                        .map(|outcome| match outcome {
                            Ok(y) => (y - 5, Ok(y)),
                            Err(err) => (3_000 + err.index() as u64, Err(err)),
                        })
                        .collect()
                };
                outcomes.sort_by_key(|(x, _)| *x);
                let first = if ordered { 0 } else { 3_000 };
                assert_eq!(outcomes.len(), 3_000);
                for (x, outcome) in &outcomes {
                    let x = *x;
                    let at = x - first;
                    if CRASHED.contains(&at) {
                        let err = outcome.as_ref().unwrap_err();
                        assert_eq!(err.index() as u64, at);
                        assert!(
                            matches!(err.kind(), ErrorKind::Crashed { .. }),
                            "{x}: {err}"
                        );
                    } else {
                        assert_eq!(*outcome.as_ref().unwrap(), x + 5, "item {x}");
                    }
                    assert_eq!(runs(&dir, x).len(), 1, "item {x}");
                }
            }
        },
    );
}

/// A live worker that writes garbage onto the stream it answers on: what the item
/// function of a buggy program (a stray `write` to a number it took for its own file)
/// does to the pool. Tests have no `unsafe`, and std opens no socket by number, so the
/// item finds its worker's answer socket in `/proc/self/fd` and `nix::sys::socket::send`s
/// onto it.
mod live_garbage {
    use std::path::Path;

    use serde::{Deserialize, Serialize};

    /// What an item writes onto its worker's answer stream before it returns its value.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub enum Garbage {
        /// Nothing: a well-behaved item.
        None,
        /// 256 seeded random bytes.
        Random,
        /// A frame header that says 256 MiB follow (under the frame bound, so the
        /// parent starts reading it), a frame kind of the answer protocol, then 8 bytes.
        HugeLength,
        /// A results frame that says 4,096 bytes follow and stops after 6.
        Truncated,
        /// A well-formed results frame for 1,000 items more than the worker was sent
        /// (the process pool's answers are by position: one past what it sent names an
        /// index the parent never sent).
        UnsentIndex,
    }

    pub const KINDS: [Garbage; 4] = [
        Garbage::Random,
        Garbage::HugeLength,
        Garbage::Truncated,
        Garbage::UnsentIndex,
    ];

    /// Which answer stream the garbage goes to.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub enum Stream {
        /// A process pool worker's: its results by position.
        Worker,
        /// An async process pool session's: each answer names its item's index.
        #[cfg(feature = "aio")]
        Session,
    }

    /// The frame kinds of a worker's results and a session's answers, as `twat-mp`'s
    /// wire has them (a test cannot name the crate's private constants; a wrong value
    /// would only make the garbage cruder).
    const RESULTS: u8 = 12;
    #[cfg(feature = "aio")]
    const ANSWER: u8 = 33;

    /// The bytes of `garbage` for `stream`, seeded with `seed`.
    pub fn bytes(garbage: Garbage, seed: u64, stream: Stream) -> Vec<u8> {
        let kind = match stream {
            Stream::Worker => RESULTS,
            #[cfg(feature = "aio")]
            Stream::Session => ANSWER,
        };
        let mut out = Vec::new();
        match garbage {
            Garbage::None => {}
            Garbage::Random => {
                let mut random = super::support::faults::SplitMix64::new(seed);
                while out.len() < 256 {
                    out.extend_from_slice(&random.next_u64().to_le_bytes());
                }
            }
            Garbage::HugeLength => {
                out.extend_from_slice(&(256_u32 << 20).to_le_bytes());
                out.push(kind);
                out.extend_from_slice(&1_u32.to_le_bytes());
                out.extend_from_slice(&[0, 7, 7, 7]);
            }
            Garbage::Truncated => {
                out.extend_from_slice(&4_096_u32.to_le_bytes());
                out.push(kind);
                out.extend_from_slice(&1_u32.to_le_bytes());
                out.push(0);
            }
            #[cfg(feature = "aio")]
            Garbage::UnsentIndex if stream == Stream::Session => {
                // An answer (`Done(42)`) for item 2^40, its times zero.
                out.extend_from_slice(&27_u32.to_le_bytes());
                out.push(ANSWER);
                out.extend_from_slice(&(1_u64 << 40).to_le_bytes());
                out.extend_from_slice(&[0; 16]);
                out.extend_from_slice(&[0, 42]);
            }
            Garbage::UnsentIndex => {
                out.extend_from_slice(&7_u32.to_le_bytes());
                out.push(RESULTS);
                out.extend_from_slice(&1_000_u32.to_le_bytes());
                out.extend_from_slice(&[0, 42]);
            }
        }
        out
    }

    /// The sockets of this process, as (fd, inode), by fd.
    fn sockets() -> Vec<(i32, String)> {
        let mut sockets: Vec<(i32, String)> = std::fs::read_dir("/proc/self/fd")
            .expect("/proc/self/fd")
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let fd = entry.file_name().to_str()?.parse().ok()?;
                let target = std::fs::read_link(entry.path()).ok()?;
                let target = target.to_str()?;
                target
                    .starts_with("socket:")
                    .then(|| (fd, target.to_owned()))
            })
            .collect();
        sockets.sort();
        sockets
    }

    /// The socket a worker process answers its pool on: the first socket it has (its
    /// standard input, moved, when it started), which is the only one of a process pool's
    /// worker.
    pub fn worker_socket() -> i32 {
        sockets().first().expect("a worker has its socket").0
    }

    /// The socket an async process pool's session answers its call on: a socket of its
    /// own, opened after the worker's, so the last one.
    #[cfg(feature = "aio")]
    pub fn session_socket() -> i32 {
        let sockets = sockets();
        let (fd, inode) = sockets.last().expect("a session has its socket");
        assert_ne!(
            *inode, sockets[0].1,
            "the session's socket is not the worker's"
        );
        *fd
    }

    /// Writes all of `bytes` onto socket `fd`.
    pub fn send_all(fd: i32, mut bytes: &[u8]) {
        use nix::sys::socket::{MsgFlags, send};
        while !bytes.is_empty() {
            match send(fd, bytes, MsgFlags::empty()) {
                Ok(sent) => bytes = &bytes[sent..],
                Err(nix::errno::Errno::EINTR) => {}
                // The parent hung up: the garbage did its work.
                Err(_) => return,
            }
        }
    }

    /// One item: where its runs leave their marks, its value, and what it writes.
    pub type Item = (String, u64, Garbage);

    pub fn items(dir: &Path, values: std::ops::Range<u64>, bad: &[(u64, Garbage)]) -> Vec<Item> {
        let dir = dir.to_str().unwrap().to_owned();
        values
            .map(|x| {
                let garbage = bad
                    .iter()
                    .find(|(at, _)| *at == x)
                    .map_or(Garbage::None, |&(_, garbage)| garbage);
                (dir.clone(), x, garbage)
            })
            .collect()
    }

    /// What every item's result is.
    pub fn value(x: u64) -> u64 {
        x * 3 + 1
    }
}

use live_garbage::Garbage;

/// Writes its garbage onto its worker's answer socket, then answers as usual.
fn writes_garbage((dir, x, garbage): live_garbage::Item) -> u64 {
    mark_run(&dir, x);
    if garbage != Garbage::None {
        let fd = live_garbage::worker_socket();
        let bytes = live_garbage::bytes(garbage, x, live_garbage::Stream::Worker);
        live_garbage::send_all(fd, &bytes);
    }
    live_garbage::value(x)
}

/// Prints to stdout, with and without a newline (a little: it shows in the test's
/// output): a worker's stdout is the parent's, not its answer stream.
fn prints((dir, x): Item) -> u64 {
    mark_run(&dir, x);
    print!("[item {x} prints from its worker] ");
    if x % 10 == 9 {
        println!();
    }
    x * 3 + 1
}

/// Checks a map's outcomes (`(x, outcome)`, any order) against the items in `bad`,
/// which wrote garbage: each of them failed with a `Transport` error that says its
/// worker's answers were garbled, every other item is exact, and no item the test did
/// not send ran. Returns the pids of the workers that ran a garbage item.
fn check_garbled(
    dir: &std::path::Path,
    values: std::ops::Range<u64>,
    bad: &[(u64, Garbage)],
    outcomes: &[(u64, Result<u64, twat_mp::WorkerError>)],
    first: u64,
) -> Vec<u32> {
    assert_eq!(outcomes.len() as u64, values.end - values.start);
    let mut pids = Vec::new();
    for (x, outcome) in outcomes {
        let x = *x;
        match bad.iter().find(|(at, _)| *at == x) {
            Some((_, garbage)) => {
                let err = outcome
                    .as_ref()
                    .expect_err(&format!("item {x} ({garbage:?}) wrote garbage"));
                assert_eq!(err.index() as u64, x - first, "{garbage:?}: {err}");
                match err.kind() {
                    ErrorKind::Transport(why) => assert!(
                        why.contains("garbled"),
                        "{garbage:?}: the error does not say what happened: {err}"
                    ),
                    kind => panic!("{garbage:?}: the wrong kind: {kind:?} ({err})"),
                }
                let pid = err.pid().expect("a failure names its worker process");
                assert!(
                    runs(dir, x).contains(&pid),
                    "{garbage:?}: the error names pid {pid}, which did not run item {x}"
                );
                pids.push(pid);
            }
            None => assert_eq!(
                *outcome
                    .as_ref()
                    .unwrap_or_else(|err| panic!("item {x}: {err}")),
                live_garbage::value(x),
                "item {x}"
            ),
        }
        assert!(!runs(dir, x).is_empty(), "item {x} never ran");
    }
    pids
}

fn garbage_map_case(
    pool: &ProcessPool,
    dir: &std::path::Path,
    ordered: bool,
    round: u64,
) -> Vec<u32> {
    let start = round * 1_000;
    let values = start..start + 300;
    // Each kind of garbage once, at places where a batch has items before and after it,
    // and one at the very end.
    let bad: Vec<(u64, Garbage)> = live_garbage::KINDS
        .iter()
        .enumerate()
        .map(|(at, &garbage)| (start + 37 + 61 * at as u64, garbage))
        .chain([(start + 299, Garbage::Random)])
        .collect();
    let input = live_garbage::items(dir, values.clone(), &bad);
    let outcomes: Vec<(u64, Result<u64, twat_mp::WorkerError>)> = if ordered {
        (start..).zip(pool.imap(writes_garbage, input)).collect()
    } else {
        let mut outcomes: Vec<_> = pool
            .uimap(writes_garbage, input)
            .map(|outcome| match outcome {
                Ok(y) => ((y - 1) / 3, Ok(y)),
                Err(err) => (start + err.index() as u64, Err(err)),
            })
            .collect();
        outcomes.sort_by_key(|(x, _)| *x);
        outcomes
    };
    check_garbled(dir, values, &bad, &outcomes, start)
}

#[test]
fn a_worker_writing_garbage_on_its_answer_stream_costs_exactly_its_items() {
    within(
        Duration::from_secs(300),
        "a map whose items write garbage onto their worker's answer stream",
        || {
            let dir = scratch("garbage");
            for (round, builder) in [ProcessPool::builder().nodes(2), one_per_message()]
                .into_iter()
                .enumerate()
            {
                let pool = builder.build().unwrap();
                let round = round as u64 * 2;
                let mut garbled = garbage_map_case(&pool, &dir, true, round);
                garbled.extend(garbage_map_case(&pool, &dir, false, round + 1));
                // Each worker that wrote garbage was replaced: none of them runs the next
                // map, which is exact.
                let next = pool
                    .map(
                        writes_garbage,
                        live_garbage::items(&dir, 10_000..10_100, &[]),
                    )
                    .unwrap();
                let expected: Vec<u64> = (10_000..10_100).map(live_garbage::value).collect();
                assert_eq!(next, expected);
                for x in 10_000..10_100 {
                    for pid in runs(&dir, x) {
                        assert!(
                            !garbled.contains(&pid),
                            "worker {pid} wrote garbage and still ran item {x}"
                        );
                    }
                }
                for x in 10_000..10_100 {
                    let _ = std::fs::remove_file(dir.join(format!("runs-{x}")));
                }
            }
        },
    );
}

#[test]
fn what_an_item_prints_to_stdout_does_not_reach_the_answer_stream() {
    within(Duration::from_secs(120), "a map whose items print", || {
        let dir = scratch("prints");
        let pool = one_per_message().build().unwrap();
        let outcomes = pool.map(prints, items(&dir, 0..100)).unwrap();
        let expected: Vec<u64> = (0..100).map(|x| x * 3 + 1).collect();
        assert_eq!(outcomes, expected);
        let batched = ProcessPool::builder().nodes(2).build().unwrap();
        let outcomes = batched.map(prints, items(&dir, 100..200)).unwrap();
        let expected: Vec<u64> = (100..200).map(|x| x * 3 + 1).collect();
        assert_eq!(outcomes, expected);
        for x in 0..200 {
            assert_eq!(runs(&dir, x).len(), 1, "item {x}");
        }
    });
}

/// The same for `AsyncProcessPool`: a task writes garbage onto the socket its session
/// answers its call on.
#[cfg(feature = "aio")]
mod async_live_garbage {
    use super::live_garbage::{self, Garbage, Stream};
    use super::*;
    use futures_util::StreamExt;
    use twat_mp::{AsyncMultiPool, AsyncProcessPool};

    async fn writes_garbage((dir, x, garbage): live_garbage::Item) -> u64 {
        mark_run(&dir, x);
        if garbage != Garbage::None {
            let fd = live_garbage::session_socket();
            live_garbage::send_all(fd, &live_garbage::bytes(garbage, x, Stream::Session));
        }
        live_garbage::value(x)
    }

    fn case(pool: &AsyncProcessPool, dir: &std::path::Path, ordered: bool, round: u64) -> Vec<u32> {
        let start = round * 1_000;
        let values = start..start + 200;
        let bad: Vec<(u64, Garbage)> = live_garbage::KINDS
            .iter()
            .enumerate()
            .map(|(at, &garbage)| (start + 23 + 41 * at as u64, garbage))
            .chain([(start + 199, Garbage::Random)])
            .collect();
        let input = live_garbage::items(dir, values.clone(), &bad);
        let outcomes: Vec<(u64, Result<u64, twat_mp::WorkerError>)> = pollster::block_on(async {
            if ordered {
                (start..)
                    .zip(pool.imap(writes_garbage, input).collect::<Vec<_>>().await)
                    .collect()
            } else {
                let mut outcomes: Vec<_> = pool
                    .uimap(writes_garbage, input)
                    .map(|outcome| match outcome {
                        Ok(y) => ((y - 1) / 3, Ok(y)),
                        Err(err) => (start + err.index() as u64, Err(err)),
                    })
                    .collect()
                    .await;
                outcomes.sort_by_key(|(x, _)| *x);
                outcomes
            }
        });
        check_garbled(dir, values, &bad, &outcomes, start)
    }

    #[test]
    fn a_session_writing_garbage_on_its_answer_stream_costs_exactly_its_items() {
        within(
            Duration::from_secs(300),
            "an async process map whose tasks write garbage onto their session's socket",
            || {
                let dir = scratch("async-garbage");
                let pool = AsyncMultiPool::builder()
                    .nodes(2)
                    .concurrency(4)
                    .processes()
                    .build()
                    .unwrap();
                let mut garbled = case(&pool, &dir, true, 20);
                garbled.extend(case(&pool, &dir, false, 21));
                // The workers that garbled their answers were replaced; the next map is
                // exact.
                let next = pollster::block_on(pool.map(
                    writes_garbage,
                    live_garbage::items(&dir, 30_000..30_100, &[]),
                ))
                .unwrap();
                let expected: Vec<u64> = (30_000..30_100).map(live_garbage::value).collect();
                assert_eq!(next, expected);
                for x in 30_000..30_100 {
                    for pid in runs(&dir, x) {
                        assert!(
                            !garbled.contains(&pid),
                            "worker {pid} garbled its answers and still ran item {x}"
                        );
                    }
                }
            },
        );
    }
}
