//! An `MpiPool` of a job of one rank (a single `mpirun -n 1`, or no `mpirun` at all): the
//! items run on threads of rank 0, through the same messages and the same worker code
//! as on a serving rank, so that results and failures are the same.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Instant;

use crate::process::slot::{MessageWorker, Next, Polled, Slots};
use crate::process::worker::{States, serve_message};

/// The body of one local thread: serves the pool's batches until the pool is closed.
/// `_hold` keeps MPI up while the thread runs (see `ranks::Task::Hold`).
pub(crate) fn local_main(shared: Arc<Slots>, _hold: Sender<()>) {
    crate::panic_capture::mark_worker_thread();
    let key = shared.key();
    // Failures name the rank their item ran on: rank 0.
    let mut worker = MessageWorker::new(0);
    let mut states = States::default();
    let mut seen = 0;
    let mut answer = Vec::new();
    loop {
        match shared.poll_batch(&mut seen, worker.holds_states(), None) {
            Polled::Next(Next::Batch(mut batch)) => {
                // A call that no longer wants it: dropped, its items are cancelled.
                let Some((message, set_up)) = worker.job_message(key, &batch) else {
                    continue;
                };
                let started = Instant::now();
                answer.clear();
                serve_message(key, &message, &mut states, &mut answer);
                worker.answered(&mut batch, &answer, started.elapsed(), set_up);
            }
            Polled::Next(Next::Forget) => {
                if let Some(message) = worker.forget_message() {
                    serve_message(key, &message, &mut states, &mut answer);
                }
            }
            Polled::Nothing | Polled::Over => break,
        }
    }
}
