//! Model checks of the hand-written coordination between threads, with loom (as tokio and
//! crossbeam check theirs): the real code, its `Mutex`, `Condvar`, atomics and threads
//! swapped for loom's by [`crate::sync`], run under every interleaving loom explores.
//! A lost wake-up shows as a deadlock (loom fails the model when every thread waits).
//!
//! Run them with (`.ci/run` does):
//!
//! ```text
//! RUSTFLAGS="--cfg twat_mp_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p twat-mp --features aio --profile loom --lib model_checks -- --nocapture
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

/// The thread pool's lazy maps (`thread_pool/lazy.rs`): the consumer's [`Jobs`] and the
/// real [`run_job`] of each job on a loom thread standing for a pool thread, sharing each
/// job's buffer (items not started, outcomes published, the `hungry` flag) and the
/// consumer's one channel of messages.
mod lazy_jobs {
    use std::collections::VecDeque;

    use super::*;
    use crate::engine::item::{CancelFlag, Outcome};
    use crate::thread_pool::lazy::{Jobs, Message, run_job};

    /// The function of the map: an item's index must be the item (a thief's first index
    /// is right), and its result is the item times ten.
    fn times_ten(index: usize, item: usize) -> Outcome<usize, Infallible> {
        assert_eq!(index, item, "an item runs under its own index");
        Ok(item * 10)
    }

    /// How many outcomes the consumer handed over: an item that waits for it stands for
    /// a live input, whose next item comes only once the consumer used the last result.
    #[derive(Clone, Default)]
    struct HandedOver(Arc<(loom::sync::Mutex<usize>, loom::sync::Condvar)>);

    impl HandedOver {
        fn set(&self, count: usize) {
            *self.0.0.lock().unwrap() = count;
            self.0.1.notify_all();
        }

        /// Waits until the consumer handed over `count` outcomes.
        fn wait_for(&self, count: usize) {
            let mut handed = self.0.0.lock().unwrap();
            while *handed < count {
                handed = self.0.1.wait(handed).unwrap();
            }
        }
    }

    /// Records a job of `items` at `at` in `jobs` and runs it with `run` on a loom
    /// thread, as `Lazy::spawn` does on the pool.
    fn spawn_job(
        jobs: &mut Jobs<usize, usize, Infallible>,
        (at, first, items): (usize, usize, VecDeque<usize>),
        run: impl Fn(usize, usize) -> Outcome<usize, Infallible> + Send + Sync + 'static,
        sender: &mpsc::Sender<Message>,
        cancel: &Arc<CancelFlag>,
    ) -> loom::thread::JoinHandle<()> {
        let shared = jobs.add(at, first, items);
        let (sender, cancel) = (sender.clone(), Arc::clone(cancel));
        loom::thread::spawn(move || run_job(&shared, first, &run, &sender, &cancel))
    }

    /// Counts the jobs that ended, and the items they ran, from one message.
    fn count_end(message: Message, ended: &mut usize, ran_in_all: &mut usize) {
        if let Message::Ended { ran, .. } = message {
            *ended += 1;
            *ran_in_all += ran;
        }
    }

    /// A job of three items and a thief that takes the later half of those not started
    /// (an idle thread's steal) run while the consumer of an `imap` takes their outcomes
    /// as `Lazy::next_outcome` does (the messages there, then the outcomes published,
    /// then a look without the locks, then a wait for a message): each item runs once
    /// under its own index, each outcome is handed over once and in input order, and a
    /// consumer that marked a job as waited for is woken by the outcome it waits for,
    /// not by the job's end: item `i` runs only once `i` outcomes were handed over, so
    /// an outcome held back behind the next item leaves every thread waiting, which
    /// loom reports.
    #[test]
    fn a_job_and_its_thief_hand_over_every_outcome_once_in_order() {
        // Four preemptions (see RELIABILITY.md for the counts): unbounded, these models
        // run for minutes, past the loom step's minute.
        let runs = explore(Some(4), || {
            let (sender, messages) = mpsc::channel();
            let cancel = Arc::new(CancelFlag::default());
            let handed = HandedOver::default();
            let live = {
                let handed = handed.clone();
                move |index, item| {
                    handed.wait_for(item);
                    times_ten(index, item)
                }
            };
            let mut jobs = Jobs::new(true);
            let mut threads = vec![spawn_job(
                &mut jobs,
                (0, 0, (0..3).collect()),
                live.clone(),
                &sender,
                &cancel,
            )];
            if let Some(stolen) = jobs.steal() {
                threads.push(spawn_job(&mut jobs, stolen, live, &sender, &cancel));
            }
            let (mut got, mut ended, mut ran) = (Vec::new(), 0, 0);
            loop {
                while let Some(outcome) = jobs.next_ready() {
                    got.push(outcome.ok().expect("no item fails"));
                    handed.set(got.len());
                }
                if got.len() == 3 {
                    break;
                }
                while let Ok(message) = messages.try_recv() {
                    count_end(message, &mut ended, &mut ran);
                }
                if jobs.collect() || jobs.has_published() {
                    continue;
                }
                let message = messages.recv().expect("the consumer holds a sender");
                count_end(message, &mut ended, &mut ran);
            }
            assert_eq!(got, [0, 10, 20]);
            assert_eq!(jobs.len(), 0, "every job's outcomes are taken");
            // Every job tells its end, once all its items ran.
            while ended < threads.len() {
                let message = messages.recv().expect("the consumer holds a sender");
                count_end(message, &mut ended, &mut ran);
            }
            assert_eq!(ran, 3, "each item ran once");
            for thread in threads {
                thread.join().unwrap();
            }
        });
        report(
            "a_job_and_its_thief_hand_over_every_outcome_once_in_order",
            runs,
        );
    }

    /// The consumer of a `uimap` that is dropped after its first outcome (as `Lazy`'s
    /// drop: the map's cancel flag set, then its jobs dropped), whatever its two jobs are
    /// doing then: both jobs stop, end and say so, no item runs twice, and the outcome
    /// handed over was right.
    #[test]
    fn the_jobs_of_a_dropped_map_end() {
        // Four preemptions (see RELIABILITY.md for the counts): unbounded, these models
        // run for minutes, past the loom step's minute.
        let runs = explore(Some(4), || {
            let (sender, messages) = mpsc::channel();
            let cancel = Arc::new(CancelFlag::default());
            let mut jobs = Jobs::new(false);
            let mut threads = vec![spawn_job(
                &mut jobs,
                (0, 0, (0..2).collect()),
                times_ten,
                &sender,
                &cancel,
            )];
            if let Some(stolen) = jobs.steal() {
                threads.push(spawn_job(&mut jobs, stolen, times_ten, &sender, &cancel));
            }
            drop(sender);
            let (mut ended, mut ran) = (0, 0);
            let first = loop {
                if let Some(outcome) = jobs.next_ready() {
                    break outcome.ok().expect("no item fails");
                }
                if jobs.collect() || jobs.has_published() {
                    continue;
                }
                let message = messages
                    .recv()
                    .expect("a job runs until its outcomes are taken");
                count_end(message, &mut ended, &mut ran);
            };
            assert!(first == 0 || first == 10, "an outcome of the map: {first}");
            cancel.cancel();
            drop(jobs);
            // Every job ends and says so (else loom finds the consumer waiting forever).
            // Read to the end: loom's channel, unlike std's, may not be dropped with
            // messages in it, nor tells a receiver that every sender is gone.
            while ended < threads.len() {
                let message = messages.recv().expect("the jobs hold senders");
                count_end(message, &mut ended, &mut ran);
            }
            assert!((1..=2).contains(&ran), "each item runs at most once");
            for thread in threads {
                thread.join().unwrap();
            }
        });
        report("the_jobs_of_a_dropped_map_end", runs);
    }
}

/// The process pool's queue of batches and the stops of its slots
/// (`process/dispatch.rs`), driven by loom threads that do what a slot thread does
/// (`process/slot.rs`: `slot_main` and `Slot::run`) with a socket that only a stop can
/// shut: its worker never answers.
mod process_dispatch {
    use super::*;
    use crate::process::dispatch::{Cancel, Dispatch, Interrupt, Next, Polled};

    /// A worker's socket, seen by its slot: a read that blocks until the socket is shut.
    #[derive(Clone, Default)]
    struct Socket(Arc<(loom::sync::Mutex<bool>, loom::sync::Condvar)>);

    impl Interrupt for Socket {
        fn interrupt(&self) {
            *self.0.0.lock().unwrap() = true;
            self.0.1.notify_all();
        }
    }

    impl Socket {
        /// Reads from a worker that never answers: returns only once the socket is shut.
        fn read(&self) {
            let mut shut = self.0.0.lock().unwrap();
            while !*shut {
                shut = self.0.1.wait(shut).unwrap();
            }
        }
    }

    /// A batch of a call, which loom's `Arc` counts: dropped once, it is gone.
    struct Batch {
        cancel: Arc<Cancel>,
        _counted: loom::sync::Arc<()>,
    }

    type Shared = Arc<Dispatch<Batch, Socket>>;

    /// A slot thread: takes batches until the pool closes or terminates; for each, serves
    /// its call, and unless the call is stopped (or the pool terminating) starts a worker,
    /// publishes its socket and reads it until a stop shuts it. Returns the batches taken.
    fn slot(dispatch: &Shared, index: usize) -> loom::thread::JoinHandle<usize> {
        let dispatch = Arc::clone(dispatch);
        loom::thread::spawn(move || {
            let (mut seen, mut taken) = (0, 0);
            loop {
                match dispatch.poll(&mut seen, false, None) {
                    Polled::Next(Next::Batch(batch)) => {
                        taken += 1;
                        dispatch.serve(index, Some(&batch.cancel));
                        if !dispatch.stopping(&batch.cancel) {
                            let socket = Socket::default();
                            dispatch.publish(index, socket.clone());
                            socket.read();
                            dispatch.withdraw(index);
                        }
                        dispatch.serve(index, None);
                    }
                    Polled::Next(Next::Forget) | Polled::Nothing => {
                        unreachable!("no call with a state; no time limit")
                    }
                    Polled::Over => return taken,
                }
            }
        })
    }

    fn batch(cancel: &Arc<Cancel>, counted: &loom::sync::Arc<()>) -> Batch {
        Batch {
            cancel: Arc::clone(cancel),
            _counted: loom::sync::Arc::clone(counted),
        }
    }

    /// Batches queued in two submits reach two slot threads that wait for work (a submit
    /// wakes only as many as the slots counted as waiting), each batch one slot, and
    /// closing the pool ends both slots once the queue is empty: no wake-up lost.
    #[test]
    fn every_queued_batch_reaches_one_slot_and_close_ends_them() {
        // Four preemptions (see RELIABILITY.md for the counts): unbounded, these models
        // run for minutes, past the loom step's minute.
        let runs = explore(Some(4), || {
            let dispatch = Arc::new(Dispatch::<usize, Socket>::new(2));
            let slots: Vec<_> = (0..2)
                .map(|_| {
                    let dispatch = Arc::clone(&dispatch);
                    loom::thread::spawn(move || {
                        let (mut seen, mut taken) = (0, Vec::new());
                        loop {
                            match dispatch.poll(&mut seen, false, None) {
                                Polled::Next(Next::Batch(batch)) => taken.push(batch),
                                Polled::Next(Next::Forget) | Polled::Nothing => {
                                    unreachable!("no call with a state; no time limit")
                                }
                                Polled::Over => return taken,
                            }
                        }
                    })
                })
                .collect();
            dispatch.submit(&mut vec![0, 1]);
            dispatch.submit(&mut vec![2]);
            dispatch.close();
            let mut taken: Vec<usize> = slots
                .into_iter()
                .flat_map(|slot| slot.join().unwrap())
                .collect();
            taken.sort_unstable();
            assert_eq!(taken, [0, 1, 2]);
        });
        report(
            "every_queued_batch_reaches_one_slot_and_close_ends_them",
            runs,
        );
    }

    /// A batch sent ahead to a worker that died before it began it goes back to the front
    /// of the queue while another slot waits and the pool closes: it runs once, on
    /// either slot, and both slots end.
    #[test]
    fn a_batch_sent_ahead_goes_back_and_runs_once() {
        // Four preemptions (see RELIABILITY.md for the counts): unbounded, these models
        // run for minutes, past the loom step's minute.
        let runs = explore(Some(4), || {
            let dispatch = Arc::new(Dispatch::<usize, Socket>::new(2));
            let poll_all = |dispatch: Arc<Dispatch<usize, Socket>>, requeue: bool| {
                loom::thread::spawn(move || {
                    let (mut seen, mut ran) = (0, Vec::new());
                    loop {
                        match dispatch.poll(&mut seen, false, None) {
                            Polled::Next(Next::Batch(batch)) => {
                                // The next batch sent ahead; the worker dies on `batch`.
                                let ahead = dispatch.take_if(|_| requeue);
                                ran.push(batch);
                                dispatch.requeue(ahead.into_iter());
                            }
                            Polled::Next(Next::Forget) | Polled::Nothing => {
                                unreachable!("no call with a state; no time limit")
                            }
                            Polled::Over => return ran,
                        }
                    }
                })
            };
            let sends_ahead = poll_all(Arc::clone(&dispatch), true);
            let waits = poll_all(Arc::clone(&dispatch), false);
            dispatch.submit(&mut vec![0, 1]);
            dispatch.close();
            let mut ran = sends_ahead.join().unwrap();
            ran.extend(waits.join().unwrap());
            ran.sort_unstable();
            assert_eq!(ran, [0, 1]);
        });
        report("a_batch_sent_ahead_goes_back_and_runs_once", runs);
    }

    /// A call stopped (`Slots::stop_call`) while a slot takes its batch, serves it, starts
    /// its worker or reads from it: the slot is never left reading a worker that will not
    /// answer (the stop finds the slot serving the call and shuts the socket, or the slot
    /// sees the stop before it starts the worker), and the pool then closes.
    #[test]
    fn a_stopped_call_always_wakes_its_slot() {
        let runs = explore(None, || {
            let dispatch: Shared = Arc::new(Dispatch::new(1));
            let slot = slot(&dispatch, 0);
            let (cancel, counted) = (Arc::new(Cancel::default()), loom::sync::Arc::new(()));
            dispatch.submit(&mut vec![batch(&cancel, &counted)]);
            dispatch.stop_call(&cancel);
            dispatch.close();
            assert_eq!(slot.join().unwrap(), 1, "close lets the queue finish");
            drop(dispatch);
            assert_eq!(loom::sync::Arc::strong_count(&counted), 1);
        });
        report("a_stopped_call_always_wakes_its_slot", runs);
    }

    /// A pool terminating while its two slots take batches, start workers or read from
    /// them: every slot is woken and ends, and every batch, taken or still queued, is
    /// dropped once (a batch's drop tells its call about its items).
    #[test]
    fn terminate_wakes_every_slot_and_drops_every_batch_once() {
        // Four preemptions (see RELIABILITY.md for the counts): unbounded, these models
        // run for minutes, past the loom step's minute.
        let runs = explore(Some(4), || {
            let dispatch: Shared = Arc::new(Dispatch::new(2));
            let slots = [slot(&dispatch, 0), slot(&dispatch, 1)];
            let (cancel, counted) = (Arc::new(Cancel::default()), loom::sync::Arc::new(()));
            dispatch.submit(&mut vec![
                batch(&cancel, &counted),
                batch(&cancel, &counted),
            ]);
            dispatch.terminate();
            let taken: usize = slots.into_iter().map(|slot| slot.join().unwrap()).sum();
            assert!(taken <= 2);
            drop(dispatch);
            assert_eq!(loom::sync::Arc::strong_count(&counted), 1);
        });
        report(
            "terminate_wakes_every_slot_and_drops_every_batch_once",
            runs,
        );
    }
}
