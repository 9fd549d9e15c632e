//! The one thread of a process that talks MPI: it initialises MPI, and then, on rank 0,
//! sends the pool's batches to the serving ranks and hands their answers back; on every
//! other rank, serves jobs until rank 0 says stop. It finalises MPI when it ends.
//!
//! Messages (tags below) carry the process pool's frames unchanged: `HELLO` (the pool's
//! key, and the executable's identity that the serving rank checks), a job (the `FORGET`
//! and `SETUP` frames it needs, then `JOB`; a message of `FORGET` alone gets no answer),
//! its answer (`RESULTS`…`DONE`, or `REFUSED`), and an empty stop message.
//!
//! Rank 0 sends a rank a job only when the rank has none: so a rank never sends while
//! rank 0 sends to it, and blocking sends cannot deadlock whatever their size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use ::mpi::environment::{Threading, Universe};
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::{Communicator, Destination, MatchedReceiveVec, Source};

use crate::process::slot::{Batch, MessageWorker, Next, Polled, Slots};
use crate::process::wire::{self, Key};
use crate::process::worker::{States, serve_message};

/// Rank 0 → serving rank: the pool's `HELLO` frame.
const HELLO: i32 = 1;
/// Rank 0 → serving rank: frames to serve (answered when they hold a `JOB`).
const JOB: i32 = 2;
/// Serving rank → rank 0: the answer to a job.
const ANSWER: i32 = 3;
/// Rank 0 → serving rank: stop serving (empty).
const STOP: i32 = 4;

/// The shortest and longest pause between two looks for a message, when none came: the
/// looks cost next to nothing, and the pauses keep an idle thread from taking a core
/// from the ranks' work (on a machine with more ranks than cores).
const FIRST_PAUSE: Duration = Duration::from_micros(5);
const LONGEST_PAUSE: Duration = Duration::from_micros(200);

/// Set once MPI was initialised in this process: it can be only once.
static STARTED: AtomicBool = AtomicBool::new(false);

/// Where this process is in the MPI job.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    pub(crate) rank: usize,
    pub(crate) size: usize,
}

/// What the MPI thread does once MPI is up, as the pool tells it.
pub(crate) enum Task {
    /// Rank 0 of several: send the batches of `Slots` to the serving ranks.
    Drive(Arc<Slots>),
    /// Rank 0 alone: keep MPI up until every sender of the receiver is gone (the pool's
    /// local threads ended), then finalise.
    Hold(Receiver<()>),
    /// A serving rank: serve until rank 0 says stop.
    Serve,
}

/// Why MPI could not start, in words.
pub(crate) fn claim() -> Result<(), &'static str> {
    if STARTED.swap(true, Ordering::SeqCst) {
        return Err(
            "MPI can be initialised only once in a program, and an `MpiPool` was built \
             before (MPI is finalised when it is dropped): build one `MpiPool` and use it \
             for the whole program",
        );
    }
    Ok(())
}

/// The body of the MPI thread: initialises MPI, says where this process is on `place`,
/// and does the task it is given (nothing, if none comes).
pub(crate) fn mpi_main(place: Sender<Result<Place, String>>, task: Receiver<Task>) {
    let Some((universe, _level)) = ::mpi::initialize_with_threading(Threading::Funneled) else {
        let _ = place.send(Err("MPI was initialised already, outside twat-mp".into()));
        return;
    };
    let world = universe.world();
    let here = Place {
        rank: usize::try_from(world.rank()).unwrap_or(0),
        size: usize::try_from(world.size()).unwrap_or(1).max(1),
    };
    if place.send(Ok(here)).is_err() {
        return;
    }
    match task.recv() {
        Ok(Task::Drive(shared)) => drive(&world, &shared, here.size),
        Ok(Task::Hold(until)) => while until.recv().is_ok() {},
        Ok(Task::Serve) => serve(&world),
        Err(_) => {}
    }
    finalize(universe);
}

fn finalize(universe: Universe) {
    drop(universe);
}

/// A serving rank, seen from rank 0.
struct Rank {
    worker: MessageWorker,
    /// The batch it runs: when it was sent, and whether a `SETUP` went with it.
    running: Option<(Batch, Instant, bool)>,
}

/// Rank 0: hands the pool's batches to idle ranks, one at a time each, and their
/// answers back to the calls, until the pool is closed and every rank has answered;
/// then tells every rank to stop.
fn drive(world: &SimpleCommunicator, shared: &Slots, size: usize) {
    let key = shared.key();
    let mut hello = Vec::new();
    wire::encode_hello::<crate::process::worker::RunInit>(&mut hello, key, None);
    // The frame without its length: every message is a whole frame sequence but this.
    for rank in 1..size {
        world
            .process_at_rank(rank_id(rank))
            .send_with_tag(&hello[..], HELLO);
    }
    let mut ranks: Vec<Rank> = (1..size)
        .map(|rank| Rank {
            worker: MessageWorker::new(rank),
            running: None,
        })
        .collect();
    let mut seen = 0;
    let mut pause = FIRST_PAUSE;
    let mut over = false;
    loop {
        let mut busy = false;
        // Answers first: they free ranks for the next batches.
        while let Some(probed) = world.any_process().immediate_matched_probe_with_tag(ANSWER) {
            let (answer, status) = probed.matched_receive_vec::<u8>();
            busy = true;
            let Some(rank) = usize::try_from(status.source_rank())
                .ok()
                .and_then(|rank| rank.checked_sub(1))
                .and_then(|at| ranks.get_mut(at))
            else {
                continue;
            };
            if let Some((mut batch, sent, set_up)) = rank.running.take() {
                rank.worker
                    .answered(&mut batch, &answer, sent.elapsed(), set_up);
            }
        }
        let running = ranks.iter().any(|rank| rank.running.is_some());
        if over {
            if !running {
                break;
            }
        } else if let Some(idle) = ranks.iter().position(|rank| rank.running.is_none()) {
            let holding = ranks.iter().any(|rank| rank.worker.holds_states());
            // Nothing out: wait for work as long as it takes (no answer can come).
            let wait = if running { Some(Duration::ZERO) } else { None };
            match shared.poll_batch(&mut seen, holding, wait) {
                Polled::Next(Next::Batch(batch)) => {
                    busy = true;
                    let rank = &mut ranks[idle];
                    if let Some((message, set_up)) = rank.worker.job_message(key, &batch) {
                        world
                            .process_at_rank(rank_id(rank.worker.index))
                            .send_with_tag(&message[..], JOB);
                        rank.running = Some((batch, Instant::now(), set_up));
                    }
                }
                Polled::Next(Next::Forget) => {
                    for rank in ranks.iter_mut().filter(|rank| rank.running.is_none()) {
                        if let Some(message) = rank.worker.forget_message() {
                            world
                                .process_at_rank(rank_id(rank.worker.index))
                                .send_with_tag(&message[..], JOB);
                        }
                    }
                }
                Polled::Nothing => {}
                Polled::Over => over = true,
            }
        }
        if busy {
            pause = FIRST_PAUSE;
        } else if running {
            std::thread::sleep(pause);
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }
    for rank in 1..size {
        world
            .process_at_rank(rank_id(rank))
            .send_with_tag(&[0_u8; 0][..], STOP);
    }
}

fn rank_id(rank: usize) -> i32 {
    i32::try_from(rank).expect("MPI ranks are i32")
}

/// A serving rank: runs each job message from rank 0 as a worker process runs its
/// frames, and answers it, until rank 0 says stop.
fn serve(world: &SimpleCommunicator) {
    crate::panic_capture::mark_worker_thread();
    let lead = world.process_at_rank(0);
    // Until a valid `HELLO`, each job is refused with the reason.
    let mut key: Result<Key, String> = Err("no HELLO came before the job".into());
    // Dropped when serving ends, so that each call's state's `Drop` runs here.
    let mut states = States::default();
    let mut answer = Vec::new();
    let mut pause = FIRST_PAUSE;
    loop {
        let Some(probed) = lead.immediate_matched_probe() else {
            std::thread::sleep(pause);
            pause = (pause * 2).min(LONGEST_PAUSE);
            continue;
        };
        pause = FIRST_PAUSE;
        let (bytes, status) = probed.matched_receive_vec::<u8>();
        match status.tag() {
            HELLO => {
                key = match bytes.get(4..).map(wire::decode_hello) {
                    Some(Ok((key, _))) => Ok(key),
                    Some(Err(err)) => Err(err.to_string()),
                    None => Err("the HELLO was truncated".into()),
                };
            }
            JOB => {
                answer.clear();
                match &key {
                    Ok(key) => serve_message(*key, &bytes, &mut states, &mut answer),
                    Err(why) if holds_job(&bytes) => wire::encode_refused(&mut answer, true, why),
                    Err(_) => {}
                }
                if !answer.is_empty() {
                    lead.send_with_tag(&answer[..], ANSWER);
                }
            }
            _ => break,
        }
    }
    drop(states);
}

/// Whether a message holds a `JOB` frame (and so waits for an answer).
fn holds_job(mut message: &[u8]) -> bool {
    let mut body = Vec::new();
    while let Ok(true) = wire::read_frame(&mut message, &mut body) {
        if body[0] == wire::JOB {
            return true;
        }
    }
    false
}
