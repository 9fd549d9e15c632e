//! Model checks of the hand-written coordination between threads, with loom (as tokio and
//! crossbeam check theirs): the real code, its `Mutex`, `Condvar`, atomics and threads
//! swapped for loom's by [`crate::sync`], run under every interleaving loom explores.
//! A lost wake-up shows as a deadlock (loom fails the model when every thread waits).
//!
//! Run them with (`.ci/run` does):
//!
//! ```text
//! RUSTFLAGS="--cfg twat_mp_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p twat-mp --features aio --release --lib model_checks
//! ```
//!
//! Each test prints how many interleavings it explored.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering};

use loom::sync::atomic::AtomicUsize;
use loom::sync::mpsc;

use crate::engine::feed::{Feed, Take};

/// Explores `model` under loom, every interleaving, or (`Some`) those with at most
/// `preemptions` forced switches between threads (the bugs that matter need few, as
/// loom's authors observe), and returns how many interleavings it ran.
fn explore(preemptions: Option<usize>, model: impl Fn() + Sync + Send + 'static) -> usize {
    let runs = Arc::new(StdAtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemptions;
    builder.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        model();
    });
    runs.load(Ordering::Relaxed)
}

/// A waker for [`block_on`]: a flag under a loom mutex, and a condition variable. (Not
/// loom's `park`/`unpark`: a late wake-up would unpark a thread waiting in `join`, which
/// loom's `join` does not allow.)
#[derive(Default)]
struct Signal {
    woken: loom::sync::Mutex<bool>,
    wakes: loom::sync::Condvar,
}

impl std::task::Wake for Signal {
    fn wake(self: Arc<Self>) {
        *self.woken.lock().unwrap() = true;
        self.wakes.notify_one();
    }
}

/// Runs `future` to its end on this loom thread, waiting while it is pending until its
/// waker is called: a wake-up that is lost makes every thread wait, which loom reports.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let signal = Arc::new(Signal::default());
    let waker = std::task::Waker::from(Arc::clone(&signal));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        let mut woken = signal.woken.lock().unwrap();
        while !*woken {
            woken = signal.wakes.wait(woken).unwrap();
        }
        *woken = false;
    }
}

fn report(name: &str, runs: usize) {
    eprintln!("{name}: {runs} interleavings explored");
    assert!(runs > 1, "loom explored more than one interleaving");
}

/// The consumer of a lazy map and the feeder thread that pulls its input: every item is
/// handed over once, in input order; the feeder never pulls past the allowance the
/// consumer granted; and a consumer told to wait for input is always woken (the
/// `wake_at` / `hungry` handshake loses no wake-up: loom would find every thread waiting).
#[test]
fn the_feed_hands_over_every_item_within_its_allowance() {
    // Three preemptions: without a bound, this model runs for more than a quarter hour.
    let runs = explore(Some(3), || {
        const ITEMS: usize = 3;
        let pulled = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&pulled);
        let input = (0..ITEMS).inspect(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let mut feed = Feed::spawn(input, 0);
        // As the thread pool's adaptive chunks: a short chunk goes at once to an idle
        // worker, so the consumer waits only when nothing is there.
        feed.set_patience(std::time::Duration::ZERO);
        let (wake, woken) = mpsc::channel();
        feed.wake_with(move || {
            let _ = wake.send(());
        });
        let mut got = Vec::new();
        loop {
            // A window of two items past those taken.
            let allowance = got.len() + 2;
            feed.allow(allowance, 1);
            match feed.take(2, true) {
                Take::Items(items) => got.extend(items),
                Take::Later(None) => woken.recv().expect("the feeder wakes the consumer"),
                Take::Later(Some(_)) => unreachable!("no patience: no deadline"),
                Take::Ended => break,
            }
            assert!(pulled.load(Ordering::SeqCst) <= got.len() + 2);
        }
        assert_eq!(got, (0..ITEMS).collect::<Vec<_>>());
        feed.finish();
    });
    report("the_feed_hands_over_every_item_within_its_allowance", runs);
}

/// Sends on its channel when dropped: the feeder dropped its input, so it has ended.
struct Ends(mpsc::Sender<()>);

impl Drop for Ends {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// An endless input that says when it is dropped: when the feeder that owns it returns.
struct Endless {
    next: u64,
    _ends: Ends,
}

impl Iterator for Endless {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.next += 1;
        Some(self.next - 1)
    }
}

/// A consumer that drops its feed of an endless input, whatever the feeder is doing then
/// (pulling, or waiting for allowance), stops the feeder: its thread ends.
#[test]
fn dropping_the_feed_stops_its_feeder() {
    let runs = explore(None, || {
        let (ended, feeder_ended) = mpsc::channel();
        let input = Endless {
            next: 0,
            _ends: Ends(ended),
        };
        let mut feed = Feed::spawn(input, 0);
        feed.allow(1, 1);
        if let Take::Items(items) = feed.take(1, false) {
            assert_eq!(items, [0]);
        }
        drop(feed);
        feeder_ended.recv().expect("the feeder ends");
    });
    report("dropping_the_feed_stops_its_feeder", runs);
}

#[cfg(feature = "aio")]
mod replies {
    use super::*;
    use crate::aio::replies::Replies;

    use crate::engine::item::Outcome;

    /// Two workers answer a call while its caller polls for answers: the caller gets
    /// both, once each, and is always woken for an answer that came after it looked (the
    /// waker is stored before the answers are looked at).
    #[test]
    fn the_caller_is_woken_for_every_answer() {
        let runs = explore(None, || {
            let replies = Replies::<usize, Infallible>::new();
            let workers: Vec<_> = (0..2)
                .map(|index| {
                    let replies = Arc::clone(&replies);
                    loom::thread::spawn(move || replies.send(index, Ok(index * 10)))
                })
                .collect();
            let mut got = Vec::new();
            while got.len() < 2 {
                let mut into: Vec<(usize, Outcome<usize, Infallible>)> = Vec::new();
                block_on(std::future::poll_fn(|cx| replies.poll_take(cx, &mut into)));
                got.extend(into.into_iter().map(|(i, outcome)| (i, outcome.ok())));
            }
            got.sort_unstable();
            assert_eq!(got, [(0, Some(0)), (1, Some(10))]);
            for worker in workers {
                worker.join().unwrap();
            }
        });
        report("the_caller_is_woken_for_every_answer", runs);
    }

    /// A caller that goes away while a worker answers: neither side blocks, and the
    /// answer (handed over, refused, or left behind by a send that passed the closed
    /// check just before the close) is dropped exactly once by the time the call's last
    /// holder lets go: loom's `Arc` counts it.
    #[test]
    fn a_closed_call_drops_its_answer_once() {
        let runs = explore(None, || {
            let answer = loom::sync::Arc::new(());
            let replies = Replies::<loom::sync::Arc<()>, Infallible>::new();
            let worker = {
                let replies = Arc::clone(&replies);
                let answer = loom::sync::Arc::clone(&answer);
                loom::thread::spawn(move || replies.send(0, Ok(answer)))
            };
            replies.close();
            assert!(replies.is_closed());
            worker.join().unwrap();
            drop(replies);
            assert_eq!(loom::sync::Arc::strong_count(&answer), 1);
        });
        report("a_closed_call_drops_its_answer_once", runs);
    }
}
