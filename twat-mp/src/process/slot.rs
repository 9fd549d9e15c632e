//! The parent side of the worker processes: one slot thread per node, each owning (at
//! most) one worker process, started lazily and replaced when it dies.
//!
//! Calls put [`Batch`]es of encoded items on the pool's queue; a free slot takes the next
//! one, sends it to its worker and hands every answer back to the call as a
//! [`Delivery`]. When the worker dies mid-batch, the results it already sent stand; the
//! rest of the batch goes to a fresh worker "carefully" (each result sent as soon as it is
//! ready), so that the item that kills a worker is found exactly and is the only one lost.
//!
//! A slot whose jobs are short (under [`PIPELINE_WORK`] and [`PIPELINE_BYTES`]) keeps
//! the worker fed: it sends the next batches of the same call while the worker still runs
//! the current one, up to [`PIPELINE_DEPTH`] of them, so that the worker never waits for
//! a round trip between two jobs. The worker runs its jobs in order, so the answers
//! still belong to the first batch sent; only that one has begun. If the worker dies, the
//! batches sent behind it go back to the front of the queue, untouched: a crash still costs
//! only the item it happened on, and a timeout's clock still runs per item (from the
//! previous answer, which is when the worker began the next item).
//!
//! With `retries`, an item whose worker crashed or timed out runs again on the fresh
//! worker that replaces it, before the rest of its batch, as the engine's
//! [`Attempts`](crate::engine::retry::Attempts) decides. With an `initializer`, each new
//! worker runs it before its first job; if it fails, the pool is broken for good: every
//! item from then on fails at once, and no worker is started again (no crash loop).
//!
//! A call that no longer wants the results of its items (a `map` decided by a failure, a
//! lazy map dropped) is stopped with [`Slots::stop_call`]: its queued batches are skipped,
//! and the workers still running its items are killed, so that the pool is free at once
//! and its drop waits for nothing. A killed worker is replaced when work next needs one.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::panic::{self, AssertUnwindSafe};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

pub(crate) use super::dispatch::Cancel;
use super::dispatch::{self, Dispatch};
use super::remote::{self, StateSpec};
use super::unsafe_code::{EntryOffset, code_range};
use super::wire::{self, FLUSH_EACH, FunctionId, JobHeader, Key, TIMED};
use super::worker::{MARKER, is_failed_worker, marker_for_child};
use super::worker::{RunInit, RunJob};
use crate::debug::event;
use crate::engine::insights::Recorder;
use crate::engine::retry::{Attempts, Verdict};
use crate::error::ErrorKind;

/// How long a new worker may take to answer the handshake before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a slot keeps a large buffer for its worker's next answer while no work comes
/// (see `Slot::keep_buffer`): longer than a slot waits between two calls of a caller in
/// a loop (with two slots taking turns, a round trip and the caller's own work; 100 and
/// 250 ms were too short for 64 MiB items on a loaded machine), short enough that an
/// idle pool soon gives the memory back.
const KEEP_IDLE: Duration = Duration::from_secs(1);
/// The largest buffer a slot keeps for its worker's next answer: for a larger item the
/// memory it holds matters more than the page faults it saves (a 512 MiB item's caller
/// would hold a third 512 MiB while it makes its next item).
const KEEP_MAX: usize = 128 << 20;
/// How long a worker asked to exit (its socket closed) gets before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// The most batches a slot sends ahead of the one its worker runs. Deep, so that for
/// one-item jobs (`chunksize = 1`) the slot tops its worker up rarely (once half of them
/// ran) and the worker reads many jobs at once: 8 cost a slot wake-up and a worker's
/// read every 4 items. [`PIPELINE_WORK`] and [`PIPELINE_BYTES`] still bound what waits.
pub(crate) const PIPELINE_DEPTH: usize = 32;
/// The most bytes of jobs a slot sends ahead: well under a socket's buffer, so that
/// writing them never blocks while the worker, busy, does not read (and might itself be
/// blocked writing answers that the slot, writing, would not read).
const PIPELINE_BYTES: usize = 64 << 10;
/// The most work (as measured on the call's last job in this slot) sent ahead: enough to
/// hide a round trip, little enough that items do not wait behind a busy worker while
/// another is idle.
const PIPELINE_WORK: Duration = Duration::from_millis(2);

/// The slots of one pool: its settings, the queue of batches its slot threads take from,
/// and what they need to stop their workers.
pub(crate) struct Slots {
    pub(crate) nodes: usize,
    pub(crate) chunksize: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) debug: bool,
    /// How many more times an item whose worker was lost runs.
    pub(crate) retries: u32,
    /// The initializer every new worker runs, where it is (or why it cannot be named).
    pub(crate) initializer: Option<Result<EntryOffset<RunInit>, String>>,
    /// Set for good once a worker's initializer failed: how it failed.
    broken: Mutex<Option<String>>,
    /// A progress bar per call (feature `progress`).
    pub(crate) progress: bool,
    key: Key,
    /// The queue of batches, and what stops each slot's worker.
    dispatch: Dispatch<Batch, UnixStream>,
    /// Per function fingerprint, the last measured cost of one item in nanoseconds: a new
    /// call of the same function starts with batches of the right size.
    costs: Mutex<HashMap<u64, u64>>,
    /// With `.insights(true)`: where start-ups, restarts and (for calls that number
    /// themselves on it, see [`CallLink::call`]) item times go.
    pub(crate) insights: Option<Arc<Recorder>>,
    /// Whether calls time their items on `insights` (not the sessions of an
    /// `AsyncProcessPool`, whose tasks are timed by the session itself).
    pub(crate) time_items: bool,
}

/// What a slot thread does next.
pub(crate) type Next = dispatch::Next<Batch>;

/// What [`Slots::poll_batch`] found.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) type Polled = dispatch::Polled<Batch>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Slots {
    pub(crate) fn new(
        nodes: usize,
        chunksize: Option<usize>,
        timeout: Option<Duration>,
        debug: bool,
    ) -> Self {
        Slots {
            nodes,
            chunksize,
            timeout,
            debug,
            retries: 0,
            initializer: None,
            broken: Mutex::new(None),
            progress: false,
            key: Key::random(),
            dispatch: Dispatch::new(nodes),
            costs: Mutex::new(HashMap::new()),
            insights: None,
            time_items: false,
        }
    }

    /// Reports start-ups and restarts to `recorder`, and with `time_items` the time of
    /// each item of every call.
    pub(crate) fn with_insights(
        mut self,
        recorder: Option<Arc<Recorder>>,
        time_items: bool,
    ) -> Self {
        self.insights = recorder;
        self.time_items = time_items;
        self
    }

    /// Queues `batches` (taking them), in their order, with one lock of the queue; a pool
    /// that is stopping cancels them instead.
    pub(crate) fn submit(&self, batches: &mut Vec<Batch>) {
        self.dispatch.submit(batches);
    }

    /// Puts batches back at the front of the queue, in their order: they were sent ahead to
    /// a worker that is gone before it began them. A pool that is terminating cancels them.
    fn requeue(&self, batches: impl DoubleEndedIterator<Item = Batch>) {
        self.dispatch.requeue(batches);
    }

    /// The batch at the front of the queue, if it is of the call of `link` and `fits`.
    fn take_if(&self, link: &Arc<CallLink>, fits: impl FnOnce(&Batch) -> bool) -> Option<Batch> {
        self.dispatch
            .take_if(|front| Arc::ptr_eq(&front.link, link) && fits(front))
    }

    /// The next batch, or [`Next::Forget`] when `holding` (the worker holds states of
    /// calls) and a call with a state ended since `seen`.
    fn next_batch(&self, seen: &mut u64, holding: bool) -> Option<Next> {
        match self.poll_batch(seen, holding, None) {
            Polled::Next(next) => Some(next),
            Polled::Nothing | Polled::Over => None,
        }
    }

    /// [`next_batch`](Self::next_batch), waiting at most `wait` for it (`None`: until
    /// there is one or the pool stops): for a transport whose one thread also waits for
    /// answers (an `MpiPool`'s ranks).
    pub(crate) fn poll_batch(
        &self,
        seen: &mut u64,
        holding: bool,
        wait: Option<Duration>,
    ) -> Polled {
        self.dispatch.poll(seen, holding, wait)
    }

    /// The key this pool's jobs are tagged with (sent to its workers in `HELLO`).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn key(&self) -> Key {
        self.key
    }

    fn terminating(&self) -> bool {
        self.dispatch.terminating()
    }

    /// Lets the slots finish the queue, then stop their workers.
    pub(crate) fn close(&self) {
        self.dispatch.close();
    }

    /// Cancels all queued work and kills every worker now.
    pub(crate) fn terminate(&self) {
        self.dispatch.terminate();
    }

    /// Stops the call of `cancel`: its batches still queued are skipped, and every worker
    /// running one of its items is killed (and replaced when work next needs one). Items
    /// that never answer come back as [`Delivery::Cancelled`].
    pub(crate) fn stop_call(&self, cancel: &Arc<Cancel>) {
        self.dispatch.stop_call(cancel);
    }

    /// A call with a per-call state ended: the slots whose workers hold states drop the
    /// ones of calls that ended, now rather than when they next get work.
    fn call_ended(&self) {
        self.dispatch.call_ended();
    }

    /// How the initializer failed, once one did: the pool runs nothing more.
    fn broken(&self) -> Option<String> {
        lock(&self.broken).clone()
    }

    /// How long a new worker may take to be ready, its initializer included. Not the
    /// pool's timeout, which is per item (and endless under the async pool's sessions).
    fn start_limit(&self) -> Duration {
        START_TIMEOUT
    }

    pub(crate) fn remembered_cost(&self, fingerprint: u64) -> Option<u64> {
        lock(&self.costs).get(&fingerprint).copied()
    }

    pub(crate) fn remember_cost(&self, fingerprint: u64, nanos: u64) {
        lock(&self.costs).insert(fingerprint, nanos);
    }
}

/// What one call shares with the batches it queued.
pub(crate) struct CallLink {
    /// `None` when the function cannot be sent (the call then queues no batch).
    pub(crate) function: Option<FunctionId<RunJob>>,
    pub(crate) sender: Sender<Delivery>,
    /// Set when the caller no longer wants results (see [`Slots::stop_call`]).
    pub(crate) cancel: Arc<Cancel>,
    /// The call's per-call state (`map_init`, `map_with`), set up in each worker before
    /// the first job of the call it runs.
    pub(crate) state: Option<Arc<CallState>>,
    /// The call's number on the pool's insights recorder; 0 when its items are not timed.
    pub(crate) call: u64,
    /// The runs of the call's items whose worker was lost, and its retries.
    pub(crate) attempts: Attempts,
}

/// A call's per-call state: its id in the workers and how it is made.
pub(crate) struct CallState {
    pub(crate) id: u64,
    pub(crate) spec: StateSpec,
    /// Alive while the call is: the workers drop the state once it is not.
    pub(crate) life: Weak<CallLife>,
}

impl CallState {
    /// A new id, unique in this process: ids of calls that ended are never used again,
    /// so a worker cannot mistake an old state for a new call's. The [`CallLife`] is the
    /// caller's to keep while the call runs.
    pub(crate) fn new(spec: StateSpec, slots: &Arc<Slots>) -> (Arc<CallState>, Arc<CallLife>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let life = Arc::new(CallLife {
            slots: Arc::downgrade(slots),
        });
        let state = CallState {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            spec,
            life: Arc::downgrade(&life),
        };
        (Arc::new(state), life)
    }
}

/// Held by the caller of a call with a per-call state, and dropped when the call ends
/// there: not by the batches, which a slot may still hold for a moment after the caller
/// has its results, so that a call made next already finds the workers told.
pub(crate) struct CallLife {
    slots: Weak<Slots>,
}

impl Drop for CallLife {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.upgrade() {
            slots.call_ended();
        }
    }
}

/// Stops one call from any thread (see [`Slots::stop_call`]).
#[cfg_attr(not(feature = "aio"), allow(dead_code))]
pub(crate) struct Stopper {
    shared: Arc<Slots>,
    cancel: Arc<Cancel>,
}

impl Stopper {
    pub(crate) fn new(shared: Arc<Slots>, cancel: Arc<Cancel>) -> Self {
        Stopper { shared, cancel }
    }

    /// Skips the call's queued batches and kills the workers running its items.
    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) fn stop(&self) {
        self.shared.stop_call(&self.cancel);
    }
}

/// What a slot hands back to a call.
pub(crate) enum Delivery {
    /// A `RESULTS` frame body: `count` records from body byte 5 on, for the items from
    /// `first` on.
    Results {
        first: usize,
        count: usize,
        body: Vec<u8>,
        worker: usize,
        /// The worker process that ran them (`None` for an MPI rank).
        pid: Option<u32>,
    },
    /// One item failed outside the function: a crash, a timeout, a transport error.
    Failed {
        index: usize,
        worker: Option<usize>,
        /// The worker process that ran it, where one did.
        pid: Option<u32>,
        input: Vec<u8>,
        kind: ErrorKind,
        /// How many times it ran ([`WorkerError::attempts`](crate::WorkerError::attempts)).
        attempts: u32,
    },
    /// Items that never ran.
    Cancelled { first: usize, count: usize },
    /// A batch is over (every one of its items was delivered before this), with the time
    /// its last job took when it ran to the end in one go.
    BatchEnd { measured: Option<(usize, Duration)> },
    /// The call's input has the items the call asked for, or has ended: sent by the
    /// input's feeder (`engine::feed`) to a lazy call, never by a slot.
    Input,
    /// Several of the above, in their order: what a slot had at hand at once (see
    /// [`Outbox`]), sent in one message so that the call is woken once for all of them.
    Several(Vec<Delivery>),
}

/// Items of one call, encoded, on their way to a worker.
pub(crate) struct Batch {
    link: Arc<CallLink>,
    first: usize,
    bytes: Vec<u8>,
    /// Where each item starts in `bytes`.
    offsets: Vec<u32>,
    /// Items delivered back (results or failures) so far.
    delivered: usize,
    measured: Option<(usize, Duration)>,
    /// Its end was reported already (through an [`Outbox`]): its drop reports nothing.
    ended: bool,
}

impl Batch {
    pub(crate) fn new(
        link: Arc<CallLink>,
        first: usize,
        bytes: Vec<u8>,
        offsets: Vec<u32>,
    ) -> Self {
        Batch {
            link,
            first,
            bytes,
            offsets,
            delivered: 0,
            measured: None,
            ended: false,
        }
    }

    fn count(&self) -> usize {
        self.offsets.len()
    }

    /// About the bytes of its whole job's frame.
    fn frame_bytes(&self) -> usize {
        self.bytes.len() + 64
    }

    fn item_bytes(&self, at: usize) -> &[u8] {
        let start = self.offsets[at] as usize;
        let end = self
            .offsets
            .get(at + 1)
            .map_or(self.bytes.len(), |&o| o as usize);
        &self.bytes[start..end]
    }

    fn deliver(&self, delivery: Delivery) {
        // A call that stopped listening no longer needs it.
        let _ = self.link.sender.send(delivery);
    }

    /// The index of the next undelivered item.
    fn next_index(&self) -> usize {
        self.first + self.delivered
    }

    /// The next undelivered item failed with `kind`, after `attempts` runs, on `worker`
    /// (its process `pid`).
    fn fail_next(
        &mut self,
        (worker, pid): (Option<usize>, Option<u32>),
        kind: ErrorKind,
        attempts: u32,
    ) {
        let at = self.delivered;
        self.deliver(Delivery::Failed {
            index: self.first + at,
            worker,
            pid,
            input: self.item_bytes(at).to_vec(),
            kind,
            attempts,
        });
        self.delivered += 1;
    }

    /// Every undelivered item failed with `kind`, after `attempts` runs each.
    fn fail_rest(
        &mut self,
        worker: (Option<usize>, Option<u32>),
        kind: impl Fn() -> ErrorKind,
        attempts: u32,
    ) {
        while self.delivered < self.count() {
            self.fail_next(worker, kind(), attempts);
        }
    }
}

impl Batch {
    /// What the call is told when the batch ends: its items never answered, as cancelled,
    /// then its end. Marks the end as told.
    fn end(&mut self, mut tell: impl FnMut(Delivery)) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let left = self.count() - self.delivered;
        if left > 0 {
            tell(Delivery::Cancelled {
                first: self.first + self.delivered,
                count: left,
            });
            self.delivered = self.count();
        }
        tell(Delivery::BatchEnd {
            measured: self.measured.take(),
        });
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // Whatever happened, the call learns about every item, so it never waits forever.
        let sender = self.link.sender.clone();
        self.end(|delivery| {
            // A call that stopped listening no longer needs it.
            let _ = sender.send(delivery);
        });
    }
}

/// What a slot has to tell calls and holds back while it has more at hand: the answers
/// of a worker that already sent more (complete frames in the slot's read buffer), and
/// the ends of the batches they finish. It is sent, as one message, before the slot
/// could wait for anything (a read from its worker that may block, the queue, a worker
/// start), so that nothing is held back while the slot waits: the call is woken once
/// for what one read brought rather than twice per batch, a system call and a context
/// switch each time for one-item batches.
#[derive(Default)]
struct Outbox {
    /// The call it holds deliveries for: all are of one call.
    link: Option<Arc<CallLink>>,
    held: Vec<Delivery>,
}

impl Outbox {
    /// The most deliveries held back at once.
    const MOST: usize = 256;

    fn hold(&mut self, link: &Arc<CallLink>, delivery: Delivery) {
        if self
            .link
            .as_ref()
            .is_some_and(|held| !Arc::ptr_eq(held, link))
        {
            self.flush();
        }
        if self.link.is_none() {
            self.link = Some(Arc::clone(link));
        }
        self.held.push(delivery);
        if self.held.len() >= Self::MOST {
            self.flush();
        }
    }

    /// Holds the end of `batch` (see [`Batch::end`]).
    fn end(&mut self, batch: &mut Batch) {
        let link = Arc::clone(&batch.link);
        batch.end(|delivery| self.hold(&link, delivery));
    }

    /// Sends what it holds.
    fn flush(&mut self) {
        let Some(link) = self.link.take() else {
            return;
        };
        let delivery = if self.held.len() == 1 {
            self.held.pop().expect("one is held")
        } else {
            Delivery::Several(std::mem::take(&mut self.held))
        };
        // A call that stopped listening no longer needs it.
        let _ = link.sender.send(delivery);
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A running worker process, seen from its slot.
struct WorkerProcess {
    child: Child,
    pid: u32,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Whether it answered the handshake.
    ready: bool,
    /// Whether it ran the pool's initializer (or the pool has none).
    initialized: bool,
    /// When it was started: it must be ready (its initializer run) within the start
    /// limit, and its start-up time (insights) ends at its `READY`.
    spawned: Instant,
    read_timeout: Option<Duration>,
    body: Vec<u8>,
    /// How it said it dies (a `DYING` frame), if it did.
    last_words: Option<String>,
}

impl WorkerProcess {
    /// Bounds the next reads to `timeout` (see [`bound_reads`]).
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        bound_reads(&self.reader, &mut self.read_timeout, timeout)
    }
}

/// How one job sent to a worker ended.
enum Exchange {
    /// `DONE` arrived, after `elapsed` of work.
    Finished { elapsed: Duration },
    /// The worker refused the job (`fatal`: and cannot go on).
    Refused { reason: String, fatal: bool },
    /// What came from the worker is not its answer (code in an item wrote onto its
    /// socket, say): the worker cannot be trusted to answer any more.
    Garbled { reason: String },
    /// The worker is gone (or was killed because an item ran past the timeout).
    Died { timed_out: bool },
    /// The worker's initializer failed (how, in words); the worker ends.
    InitFailed { reason: String },
}

/// How long a worker may stop in the middle of a frame before its answers count as
/// garbled. A worker writes each frame whole, in one go, as soon as it is made, so a frame
/// begun and not finished is one that code in an item wrote (a header whose length the
/// worker's real answers never fill up), not one that comes slowly.
pub(crate) const FRAME_STALL: Duration = Duration::from_secs(5);

/// Bounds the next reads of `reader` to `timeout`; `set` is the bound set now. A bound
/// already set that is no more than a little longer (a 64th, at most a millisecond) and
/// not much shorter is kept: a timeout per item asks for a new bound before every read,
/// and a system call each time would cost more than the item.
fn bound_reads(
    reader: &BufReader<UnixStream>,
    set: &mut Option<Duration>,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let close = match (*set, timeout) {
        (Some(set), Some(wanted)) => {
            let slack = (wanted / 64).min(Duration::from_millis(1));
            set <= wanted + slack && set >= wanted / 2
        }
        (set, wanted) => set == wanted,
    };
    if !close {
        reader
            .get_ref()
            .set_read_timeout(timeout.map(|t| t.max(Duration::from_micros(1))))?;
        *set = timeout;
    }
    Ok(())
}

/// A worker's stream read for one frame: once a byte of the frame came, a read that must
/// wait waits at most [`FRAME_STALL`] (or the bound set, if shorter), and [`Begun::begun`]
/// tells a stall inside a frame from a wait between frames.
struct Begun<'a> {
    reader: &'a mut BufReader<UnixStream>,
    read_timeout: &'a mut Option<Duration>,
    begun: bool,
}

impl io::Read for Begun<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Bytes already buffered cost no system call, and no bound.
        if self.begun && self.reader.buffer().is_empty() {
            let bound = self
                .read_timeout
                .map_or(FRAME_STALL, |t| t.min(FRAME_STALL));
            bound_reads(self.reader, self.read_timeout, Some(bound))?;
        }
        let read = self.reader.read(buf)?;
        self.begun |= read > 0;
        Ok(read)
    }
}

/// The thread of slot `index`.
pub(crate) fn slot_main(shared: Arc<Slots>, index: usize) {
    let mut slot = Slot {
        shared,
        index,
        worker: None,
        holding: Vec::new(),
        set_up_sent: false,
        ahead: Ahead::default(),
        pace: None,
        outbox: Outbox::default(),
    };
    let mut seen = 0;
    loop {
        // A batch already sent ahead to the worker comes first: the worker runs it next.
        let (mut batch, sent) = match slot.ahead.pop() {
            Some(batch) => (batch, true),
            None => {
                // The queue may keep this thread waiting: the calls get what it holds.
                slot.outbox.flush();
                let holding = !slot.holding.is_empty();
                match slot.next_batch(&mut seen, holding) {
                    None => break,
                    Some(Next::Batch(batch)) => {
                        slot.serve(Some(&batch.link.cancel));
                        (batch, false)
                    }
                    Some(Next::Forget) => {
                        slot.forget_ended();
                        continue;
                    }
                }
            }
        };
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| slot.run(&mut batch, sent)));
        if outcome.is_err() {
            // A bug in this module: the worker's state is unknown, so start afresh. The
            // batch's drop still answers every item.
            slot.discard_worker();
        }
        slot.outbox.end(&mut batch);
        if outcome.is_ok() {
            slot.keep_buffer(&mut batch);
        }
        drop(batch);
        // Batches sent ahead are of the same call: the slot still serves it.
        let next = slot
            .ahead
            .front()
            .map(|batch| Arc::clone(&batch.link.cancel));
        if slot.serve(next.as_ref()) {
            // Stopped for a call that no longer wanted the batch: the worker may still be
            // running one of its items, and its socket is shut.
            slot.discard_worker();
        }
    }
    slot.outbox.flush();
    if slot.shared.terminating() {
        slot.discard_worker();
    } else {
        slot.close_worker();
    }
}

struct Slot {
    shared: Arc<Slots>,
    index: usize,
    worker: Option<WorkerProcess>,
    /// The per-call states the worker holds: their ids, and the calls they are for.
    holding: Vec<(u64, Weak<CallLife>)>,
    /// The current job followed a `SETUP`.
    set_up_sent: bool,
    /// Batches sent to the worker behind the one it runs (see [`PIPELINE_DEPTH`]).
    ahead: Ahead,
    /// The call whose last whole job this slot timed, and that job's time per item.
    pace: Option<(Weak<CallLink>, Duration)>,
    /// Deliveries held back while the worker's next answers are already at hand.
    outbox: Outbox,
}

/// Batches sent to a worker ahead of the one it runs, all of that one's call, in order.
#[derive(Default)]
struct Ahead {
    batches: VecDeque<Batch>,
    /// Their frames' bytes, and their items.
    bytes: usize,
    items: usize,
}

impl Ahead {
    fn push(&mut self, batch: Batch) {
        self.bytes += batch.frame_bytes();
        self.items += batch.count();
        self.batches.push_back(batch);
    }

    fn pop(&mut self) -> Option<Batch> {
        let batch = self.batches.pop_front()?;
        self.bytes -= batch.frame_bytes();
        self.items -= batch.count();
        Some(batch)
    }

    fn front(&self) -> Option<&Batch> {
        self.batches.front()
    }

    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    fn take(&mut self) -> VecDeque<Batch> {
        self.bytes = 0;
        self.items = 0;
        std::mem::take(&mut self.batches)
    }
}

impl Slot {
    fn debug(&self) -> bool {
        self.shared.debug
    }

    /// The next batch from the queue: [`Slots::next_batch`], but a large buffer kept for
    /// the worker's next answer ([`keep_buffer`](Self::keep_buffer)) is given back once
    /// the slot has waited [`KEEP_IDLE`] for work, so that an idle pool does not hold
    /// memory its caller gave up.
    fn next_batch(&mut self, seen: &mut u64, holding: bool) -> Option<Next> {
        let kept = self
            .worker
            .as_ref()
            .is_some_and(|worker| worker.body.capacity() >= wire::LARGE);
        if kept {
            match self.shared.poll_batch(seen, holding, Some(KEEP_IDLE)) {
                Polled::Next(next) => return Some(next),
                Polled::Over => return None,
                Polled::Nothing => {
                    if let Some(worker) = &mut self.worker {
                        worker.body = Vec::new();
                    }
                }
            }
        }
        self.shared.next_batch(seen, holding)
    }

    /// Keeps the buffer of a batch that ended, when it is large (a large item became it,
    /// `wire::write_item_owned`), for the worker's next answer to be read into: its pages
    /// are mapped already, where a fresh buffer of that size costs a page fault per 4 KiB
    /// page (a 64 MiB result's frame, 16,384). Every item of the batch was answered or
    /// failed with its copy taken, so nothing reads it again. It leaves the slot with
    /// that next answer, or after [`KEEP_IDLE`] without work: a slot holds at most one
    /// such buffer, of at most [`KEEP_MAX`].
    fn keep_buffer(&mut self, batch: &mut Batch) {
        let Some(worker) = &mut self.worker else {
            return;
        };
        let size = batch.bytes.capacity();
        if (wire::LARGE..=KEEP_MAX).contains(&size) && worker.body.capacity() < size {
            worker.body = std::mem::take(&mut batch.bytes);
            worker.body.clear();
        }
    }

    /// What a failure names as its worker: this slot, and its worker process if any.
    fn ran_by(&self) -> (Option<usize>, Option<u32>) {
        (Some(self.index), self.worker.as_ref().map(|w| w.pid))
    }

    /// Marks the slot as running items of the call of `cancel` (`None`: of no call any
    /// more); returns whether its worker was stopped meanwhile.
    fn serve(&self, cancel: Option<&Arc<Cancel>>) -> bool {
        self.shared.dispatch.serve(self.index, cancel)
    }

    /// Runs `batch` to its end, on this slot's worker (replaced as needed); `sent`: its job
    /// was already sent ahead to the current worker, which runs it next.
    fn run(&mut self, batch: &mut Batch, mut sent: bool) {
        let timeout = self.shared.timeout;
        let mut careful = timeout.is_some();
        while batch.delivered < batch.count() {
            let stopped = self.shared.dispatch.stopping(&batch.link.cancel);
            let broken = if stopped { None } else { self.shared.broken() };
            if sent && (stopped || broken.is_some()) {
                // The worker would answer it as if it were the next batch's.
                self.discard_worker();
            }
            if stopped {
                return;
            }
            if let Some(reason) = broken {
                // An initializer failed: no worker starts again, nothing runs.
                batch.fail_rest(
                    (Some(self.index), None),
                    || ErrorKind::InitializerFailed {
                        reason: reason.clone(),
                    },
                    0,
                );
                return;
            }
            if self.worker.is_none() {
                // Starting a worker takes a while: the call gets what is held first.
                self.outbox.flush();
                match self.spawn() {
                    Ok(worker) => self.worker = Some(worker),
                    Err(err) => {
                        let why = format!("could not start a worker process: {err}");
                        batch.fail_rest((None, None), || ErrorKind::Transport(why.clone()), 0);
                        return;
                    }
                }
            }
            let was_ready = self.worker.as_ref().is_some_and(|w| w.ready);
            let whole = batch.delivered == 0;
            self.set_up_sent = false;
            // A job of one item: if its worker dies, that item killed it.
            let alone = batch.count() - batch.delivered == 1;
            let exchange = self.exchange(batch, careful, std::mem::take(&mut sent));
            if !matches!(exchange, Exchange::Finished { .. }) {
                // The results the worker sent before it failed reach the call first.
                self.outbox.flush();
            }
            match exchange {
                Exchange::Finished { elapsed } => {
                    // A job after a `SETUP` waited for the state to be made (`init`, the
                    // shared value decoded): its time says nothing of its items' cost.
                    if whole && !self.set_up_sent {
                        batch.measured = Some((batch.count(), elapsed));
                        let per_item = elapsed / u32::try_from(batch.count()).unwrap_or(u32::MAX);
                        self.pace = Some((Arc::downgrade(&batch.link), per_item));
                    }
                    if batch.delivered < batch.count() {
                        batch.fail_rest(
                            self.ran_by(),
                            || {
                                ErrorKind::Transport(
                                    "the worker ended the job without answering".into(),
                                )
                            },
                            1,
                        );
                    }
                    return;
                }
                Exchange::Refused { reason, fatal } => {
                    let ran_by = self.ran_by();
                    if fatal {
                        self.discard_worker();
                    }
                    let why = format!("the worker refused the job: {reason}");
                    batch.fail_rest(ran_by, || ErrorKind::Transport(why.clone()), 0);
                    return;
                }
                Exchange::InitFailed { reason } => {
                    self.discard_worker();
                    self.initializer_failed(reason);
                }
                Exchange::Garbled { reason } => {
                    let ran_by = self.ran_by();
                    self.discard_worker();
                    if self.shared.terminating() || batch.link.cancel.is_set() {
                        return;
                    }
                    if careful || alone {
                        // Each result was sent as soon as it was ready, before the next
                        // item began: the garbage came while the next item ran.
                        let index = batch.next_index();
                        let kind = ErrorKind::Transport(format!(
                            "its worker process garbled its answers ({reason}); the worker was \
                             killed and replaced"
                        ));
                        event!(self.debug(), worker = self.index, index, reason = %reason, "worker process garbled its answers on an item");
                        let attempts = match batch.link.attempts.lost(index, &kind) {
                            Verdict::Again { runs } | Verdict::Fail { attempts: runs } => runs,
                        };
                        batch.fail_next(ran_by, kind, attempts);
                        careful = timeout.is_some();
                    } else {
                        // Which item wrote it is unknown: run the rest again, one result at
                        // a time, to find it.
                        event!(self.debug(), worker = self.index, reason = %reason, "worker process garbled its answers during a batch; finding the item");
                        careful = true;
                    }
                }
                Exchange::Died { timed_out } => {
                    // The worker that just ended: its pid is known (0 would mean none ran).
                    let pid = self.worker.as_ref().map_or(0, |w| w.pid);
                    let ran_by = (Some(self.index), Some(pid).filter(|&pid| pid != 0));
                    let became_ready = self.worker.as_ref().is_some_and(|w| w.ready);
                    let initializing = self
                        .worker
                        .as_ref()
                        .is_some_and(|w| w.ready && !w.initialized);
                    let status = self.discard_worker();
                    if self.shared.terminating() || batch.link.cancel.is_set() {
                        // Killed on purpose: nobody wants these items any more.
                        return;
                    }
                    if !was_ready && !became_ready {
                        let why = format!("the worker process failed to start: it {status}");
                        batch.fail_rest(ran_by, || ErrorKind::Transport(why.clone()), 0);
                        return;
                    }
                    if initializing {
                        let reason = if timed_out {
                            let limit = self.shared.start_limit();
                            format!("did not finish within {limit:?}")
                        } else {
                            format!("crashed: the worker process {status}")
                        };
                        self.initializer_failed(reason);
                        continue;
                    }
                    if timed_out || careful || alone {
                        let kind = if timed_out {
                            let after = timeout.unwrap_or_default();
                            event!(
                                self.debug(),
                                worker = self.index,
                                pid,
                                index = batch.next_index(),
                                ?after,
                                "item timed out; its worker process was killed"
                            );
                            ErrorKind::TimedOut { after }
                        } else {
                            event!(self.debug(), worker = self.index, pid, index = batch.next_index(), %status, "worker process crashed on an item");
                            ErrorKind::Crashed { status }
                        };
                        match batch.link.attempts.lost(batch.next_index(), &kind) {
                            Verdict::Again { runs } => {
                                event!(
                                    self.debug(),
                                    worker = self.index,
                                    index = batch.next_index(),
                                    runs,
                                    "item runs again on a fresh worker process"
                                );
                                // Its next run is told apart from the rest of the batch.
                                careful = true;
                            }
                            Verdict::Fail { attempts } => {
                                batch.fail_next(ran_by, kind, attempts);
                                careful = timeout.is_some();
                            }
                        }
                    } else {
                        // Which item it died on is unknown: run the rest again, one
                        // result at a time, to find it.
                        event!(self.debug(), worker = self.index, pid, %status, "worker process died during a batch; finding the item");
                        careful = true;
                    }
                    event!(
                        self.debug(),
                        worker = self.index,
                        "worker process will be replaced"
                    );
                }
            }
        }
    }

    /// A worker's initializer failed: the pool is broken for good (the loop then fails the
    /// batch and every later one, and starts no worker again).
    fn initializer_failed(&self, reason: String) {
        event!(self.debug(), worker = self.index, reason = %reason, "worker process initializer failed; the pool runs nothing more");
        let mut broken = lock(&self.shared.broken);
        broken.get_or_insert(reason);
    }

    /// Sends the undelivered rest of `batch` to the worker (unless it was `sent` ahead)
    /// and passes its answers on. While it waits for them, it sends the worker the next
    /// batches of the call when they are short enough (see [`PIPELINE_DEPTH`]).
    fn exchange(&mut self, batch: &mut Batch, careful: bool, sent: bool) -> Exchange {
        let key = self.shared.key;
        let timeout = self.shared.timeout;
        let slot = self.index;
        let worker = self.worker.as_mut().expect("a worker was started");
        let recorder = self.shared.insights.as_deref();
        let call = batch.link.call;
        let timed = recorder.is_some() && call != 0;
        if !sent {
            let head = job_head(key, batch, careful, timed);
            let payload = &batch.bytes[batch.offsets[batch.delivered] as usize..];
            let set_up = set_up_state(&mut self.holding, &batch.link, &mut worker.writer, key);
            if set_up
                .map(|sent| self.set_up_sent = sent)
                .and_then(|()| worker.writer.write_all(&head))
                .and_then(|()| worker.writer.write_all(payload))
                .is_err()
            {
                return Exchange::Died { timed_out: false };
            }
        }
        // The time per item of this call's last job here, if any: whether to send ahead.
        let pace = self
            .pace
            .as_ref()
            .filter(|(link, _)| std::ptr::eq(link.as_ptr(), Arc::as_ptr(&batch.link)))
            .map(|&(_, pace)| pace);
        let start_limit = self.shared.start_limit();
        let mut started = Instant::now();
        let mut last_progress = started;
        loop {
            if let Some(pace) = pace {
                let ahead = SendAhead {
                    shared: &self.shared,
                    holding: &self.holding,
                    ahead: &mut self.ahead,
                    pace,
                    careful: timeout.is_some(),
                    timed,
                };
                ahead.top_up(worker, &batch.link);
            }
            let read_timeout = match timeout {
                _ if !worker.ready || !worker.initialized => {
                    let left = start_limit.saturating_sub(worker.spawned.elapsed());
                    if left.is_zero() {
                        return Exchange::Died {
                            timed_out: worker.ready,
                        };
                    }
                    Some(left)
                }
                // A deadline past what an `Instant` can hold never comes.
                Some(timeout) => match last_progress.checked_add(timeout) {
                    Some(deadline) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Exchange::Died { timed_out: true };
                        }
                        Some(left)
                    }
                    None => None,
                },
                None => None,
            };
            if !wire::frame_at_hand(worker.reader.buffer()) {
                // The read may wait for the worker: the call gets what is held first.
                self.outbox.flush();
            }
            if worker.set_read_timeout(read_timeout).is_err() {
                return Exchange::Died { timed_out: false };
            }
            let mut answer = Begun {
                reader: &mut worker.reader,
                read_timeout: &mut worker.read_timeout,
                begun: false,
            };
            let read = wire::read_frame(&mut answer, &mut worker.body);
            let begun = answer.begun;
            match read {
                Ok(true) => {}
                Ok(false) => return Exchange::Died { timed_out: false },
                Err(err)
                    if begun
                        && matches!(
                            err.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                {
                    return Exchange::Garbled {
                        reason: format!(
                            "a frame it began did not arrive in full within {FRAME_STALL:?}"
                        ),
                    };
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Exchange::Died {
                        timed_out: worker.ready,
                    };
                }
                Err(err) if err.kind() == io::ErrorKind::InvalidData && worker.ready => {
                    return Exchange::Garbled {
                        reason: format!("it sent a {err}"),
                    };
                }
                Err(err) if err.kind() == io::ErrorKind::InvalidData => {
                    return Exchange::Refused {
                        reason: format!("it answered with a {err}"),
                        fatal: true,
                    };
                }
                Err(_) => return Exchange::Died { timed_out: false },
            }
            let now = Instant::now();
            match worker.body[0] {
                wire::READY if !worker.ready => match wire::decode_ready(&worker.body) {
                    Ok(_) => {
                        worker.ready = true;
                        started = now;
                        last_progress = now;
                        if let Some(recorder) = recorder {
                            recorder.worker_started(slot, worker.pid, now - worker.spawned);
                        }
                    }
                    Err(err) => {
                        return Exchange::Refused {
                            reason: err.to_string(),
                            fatal: true,
                        };
                    }
                },
                wire::INITIALIZED if worker.ready && !worker.initialized => {
                    worker.initialized = true;
                    started = now;
                    last_progress = now;
                }
                wire::INIT_FAILED if worker.ready && !worker.initialized => {
                    return Exchange::InitFailed {
                        reason: wire::decode_init_failed(&worker.body)
                            .unwrap_or_else(|_| "failed".into()),
                    };
                }
                wire::RESULTS => {
                    let count = wire::Cursor::new(&worker.body[1..])
                        .u32()
                        .unwrap_or(u32::MAX) as usize;
                    if count > batch.count() - batch.delivered {
                        return Exchange::Garbled {
                            reason: format!(
                                "it answered {count} items where {} were left",
                                batch.count() - batch.delivered
                            ),
                        };
                    }
                    if timed {
                        let first = batch.first + batch.delivered;
                        let recorder = recorder.expect("timed only with a recorder");
                        if !take_timings(&mut worker.body, count, recorder, slot, call, first) {
                            return Exchange::Garbled {
                                reason: "it answered without the item times it was asked for"
                                    .into(),
                            };
                        }
                    }
                    if count == batch.count() - batch.delivered && self.ahead.is_empty() {
                        // The call has every answer once it gets these: it no longer
                        // needs this worker stopped, whatever it decides.
                        self.shared.dispatch.release(slot);
                    }
                    // A large item the worker took out of its frame and that failed is
                    // shown from this copy.
                    remote::restore_input(&mut worker.body, batch.item_bytes(batch.delivered));
                    self.outbox.hold(
                        &batch.link,
                        Delivery::Results {
                            first: batch.first + batch.delivered,
                            count,
                            body: std::mem::take(&mut worker.body),
                            worker: slot,
                            pid: Some(worker.pid),
                        },
                    );
                    batch.delivered += count;
                    last_progress = now;
                }
                wire::DONE => {
                    return Exchange::Finished {
                        elapsed: now - started,
                    };
                }
                wire::DYING => {
                    // The process ends next; the read after this one sees it.
                    worker.last_words = Some(
                        wire::decode_dying(&worker.body)
                            .unwrap_or_else(|_| "said it was dying".into()),
                    );
                }
                wire::REFUSED => {
                    return match wire::decode_refused(&worker.body) {
                        Ok((fatal, reason)) => Exchange::Refused { reason, fatal },
                        Err(err) => Exchange::Garbled {
                            reason: format!("it sent a malformed refusal: {err}"),
                        },
                    };
                }
                kind if worker.ready => {
                    return Exchange::Garbled {
                        reason: format!("it sent a frame of kind {kind}, which it never sends"),
                    };
                }
                kind => {
                    return Exchange::Refused {
                        reason: format!("it sent an unexpected frame of kind {kind}"),
                        fatal: true,
                    };
                }
            }
        }
    }

    /// Starts a worker: this executable again, with the marker set and one end of a
    /// socket pair as its standard input. Its stdout and stderr are the parent's, so what
    /// the function prints shows as it would in a thread.
    fn spawn(&mut self) -> io::Result<WorkerProcess> {
        if is_failed_worker() {
            return Err(io::Error::other(
                "this process was started as a twat-mp worker but reached `main` (the pre-main \
                 hook did not run), so it starts no workers of its own",
            ));
        }
        code_range().ok_or_else(|| io::Error::other(wire::FrameError::NoImage))?;
        let initializer = match &self.shared.initializer {
            None => None,
            Some(Ok(offset)) => Some(*offset),
            Some(Err(why)) => return Err(io::Error::other(why.clone())),
        };
        let (ours, theirs) = UnixStream::pair()?;
        let mut child = Command::new("/proc/self/exe")
            .arg0("twat-mp-worker")
            .env(MARKER, marker_for_child())
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .spawn()?;
        let pid = child.id();
        let mut hello = Vec::new();
        wire::encode_hello(&mut hello, self.shared.key, initializer);
        let spawned = Instant::now();
        let setup = (|| {
            let mut writer = ours.try_clone()?;
            writer.write_all(&hello)?;
            let wake = ours.try_clone()?;
            Ok::<_, io::Error>((writer, wake))
        })();
        let (writer, wake) = match setup {
            Ok(pair) => pair,
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err);
            }
        };
        // Shut at once if `stop_call` or `terminate` ran before it was published.
        self.shared.dispatch.publish(self.index, wake);
        event!(
            self.debug(),
            worker = self.index,
            pid,
            "worker process started"
        );
        if let Some(recorder) = self.shared.insights.as_deref() {
            // Known before the job goes out: an async session in the worker may say hello
            // on its own socket before this slot reads the worker's `READY`.
            recorder.worker_spawned(self.index, pid);
        }
        Ok(WorkerProcess {
            child,
            pid,
            reader: BufReader::with_capacity(1 << 16, ours),
            writer,
            ready: false,
            initialized: initializer.is_none(),
            spawned,
            read_timeout: None,
            body: Vec::new(),
            last_words: None,
        })
    }

    /// Tells the worker to drop the states it holds for calls that ended.
    fn forget_ended(&mut self) {
        let Some(worker) = self.worker.as_mut() else {
            self.holding.clear();
            return;
        };
        if forget_ended(&mut self.holding, &mut worker.writer).is_err() {
            // It is gone: it is replaced when work next needs one.
            self.discard_worker();
        }
    }

    /// Kills the worker (if any) and reaps it; returns how it ended, in words. The batches
    /// sent ahead to it, which it had not begun, go back to the queue (or are cancelled
    /// with their call).
    fn discard_worker(&mut self) -> String {
        // A new worker holds no state: each call sets its state up there again.
        self.holding.clear();
        let ahead = self.ahead.take();
        if ahead
            .front()
            .is_some_and(|batch| !batch.link.cancel.is_set())
        {
            self.shared.requeue(ahead.into_iter());
        }
        let Some(mut worker) = self.worker.take() else {
            return "was not running".into();
        };
        self.shared.dispatch.withdraw(self.index);
        // A worker that already died keeps its exit status: killing a zombie changes nothing.
        let _ = worker.child.kill();
        let status = describe(worker.child.wait());
        let status = match worker.last_words {
            // "overflowed its stack and was killed by signal 6 (SIGABRT)"
            Some(words) => format!("{words} and {status}"),
            None => status,
        };
        event!(self.debug(), worker = self.index, pid = worker.pid, %status, "worker process exited");
        status
    }

    /// Asks the worker to exit (end of its input), waits a little, then kills it.
    fn close_worker(&mut self) {
        self.holding.clear();
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        self.shared.dispatch.withdraw(self.index);
        let _ = worker.writer.shutdown(std::net::Shutdown::Write);
        let deadline = Instant::now() + EXIT_GRACE;
        let mut pause = Duration::from_micros(50);
        let status = loop {
            match worker.child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Ok(None) | Err(_) => {
                    let _ = worker.child.kill();
                    break worker.child.wait();
                }
            }
        };
        event!(self.debug(), worker = self.index, pid = worker.pid, status = %describe(status), "worker process exited");
    }
}

/// A worker reached by whole messages rather than a stream: a rank of an `MpiPool`, or
/// one of its local threads. Each job is one message (the `FORGET` and `SETUP` frames it
/// needs, then the `JOB`), and its answer one message (the `RESULTS` frames, then `DONE`,
/// or `REFUSED`), made by [`worker::serve_message`](super::worker::serve_message): the
/// same frames, and the same code on the worker's side, as a worker process's.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) struct MessageWorker {
    /// What the items' failures name as their worker (an MPI rank).
    pub(crate) index: usize,
    /// The per-call states the worker holds: their ids, and the calls they are for.
    holding: Vec<(u64, Weak<CallLife>)>,
}

#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
impl MessageWorker {
    pub(crate) fn new(index: usize) -> Self {
        MessageWorker {
            index,
            holding: Vec::new(),
        }
    }

    /// Whether the worker holds states of calls (and may need a `FORGET`).
    pub(crate) fn holds_states(&self) -> bool {
        !self.holding.is_empty()
    }

    /// A message telling the worker to drop the states of calls that ended, if any did.
    pub(crate) fn forget_message(&mut self) -> Option<Vec<u8>> {
        let mut message = Vec::new();
        // Writing into a `Vec` cannot fail.
        let _ = forget_ended(&mut self.holding, &mut message);
        (!message.is_empty()).then_some(message)
    }

    /// The message that runs `batch` on the worker, and whether it sets up the call's
    /// state first (then the job's time says nothing of its items' cost); `None` when the
    /// batch's call no longer wants it (dropping it reports its items as cancelled).
    pub(crate) fn job_message(&mut self, key: Key, batch: &Batch) -> Option<(Vec<u8>, bool)> {
        if batch.link.cancel.is_set() {
            return None;
        }
        let function = batch
            .link
            .function
            .expect("a call whose function cannot be sent queues no batch");
        let header = JobHeader {
            fingerprint: function.fingerprint,
            flags: 0,
            count: u32::try_from(batch.count()).expect("batches hold under 4 billion items"),
            state: batch.link.state.as_ref().map_or(0, |state| state.id),
        };
        let mut message = Vec::new();
        // Writing into a `Vec` cannot fail.
        let set_up =
            set_up_state(&mut self.holding, &batch.link, &mut message, key).unwrap_or_default();
        let payload = &batch.bytes[..];
        let head = wire::encode_job_header(wire::JOB, key, function.entry, &header, payload.len());
        message.extend_from_slice(&head);
        message.extend_from_slice(payload);
        Some((message, set_up))
    }

    /// Hands the worker's `answer` to a job of all of `batch` on to its call, as a
    /// worker process's slot does; `elapsed`: from sending the job to its answer.
    pub(crate) fn answered(
        &mut self,
        batch: &mut Batch,
        answer: &[u8],
        elapsed: Duration,
        set_up: bool,
    ) {
        let worker = self.index;
        let mut reader = answer;
        let mut body = Vec::new();
        let problem = loop {
            match wire::read_frame(&mut reader, &mut body) {
                Ok(true) => {}
                Ok(false) => break Some("it ended its answer without DONE".to_owned()),
                Err(err) => break Some(format!("it answered with a {err}")),
            }
            match body[0] {
                wire::RESULTS => {
                    let count = wire::Cursor::new(&body[1..]).u32().unwrap_or(u32::MAX) as usize;
                    if count > batch.count() - batch.delivered {
                        break Some("it answered more items than it was sent".into());
                    }
                    remote::restore_input(&mut body, batch.item_bytes(batch.delivered));
                    batch.deliver(Delivery::Results {
                        first: batch.first + batch.delivered,
                        count,
                        body: std::mem::take(&mut body),
                        worker,
                        pid: None,
                    });
                    batch.delivered += count;
                }
                wire::DONE => {
                    if !set_up {
                        batch.measured = Some((batch.count(), elapsed));
                    }
                    break (batch.delivered < batch.count())
                        .then(|| "the worker ended the job without answering".to_owned());
                }
                wire::REFUSED => {
                    let (_, reason) = wire::decode_refused(&body)
                        .unwrap_or((true, "it sent a malformed refusal".into()));
                    break Some(format!("the worker refused the job: {reason}"));
                }
                kind => break Some(format!("it sent an unexpected frame of kind {kind}")),
            }
        };
        if let Some(why) = problem {
            // The worker's state is unknown: it sets every state up again.
            self.holding.clear();
            batch.fail_rest(
                (Some(worker), None),
                || ErrorKind::Transport(why.clone()),
                0,
            );
        }
    }
}

/// The bytes before the items of the job that sends the undelivered rest of `batch`.
fn job_head(key: Key, batch: &Batch, careful: bool, timed: bool) -> Vec<u8> {
    let function = batch
        .link
        .function
        .expect("a call whose function cannot be sent queues no batch");
    let from = batch.delivered;
    let header = JobHeader {
        fingerprint: function.fingerprint,
        flags: if careful { FLUSH_EACH } else { 0 } | if timed { TIMED } else { 0 },
        count: u32::try_from(batch.count() - from).expect("batches hold under 4 billion items"),
        state: batch.link.state.as_ref().map_or(0, |state| state.id),
    };
    let payload_len = batch.bytes.len() - batch.offsets[from] as usize;
    wire::encode_job_header(wire::JOB, key, function.entry, &header, payload_len)
}

/// What a slot needs to send batches ahead to its worker.
struct SendAhead<'a> {
    shared: &'a Slots,
    holding: &'a [(u64, Weak<CallLife>)],
    ahead: &'a mut Ahead,
    /// The call's time per item on this slot's last job.
    pace: Duration,
    careful: bool,
    timed: bool,
}

impl SendAhead<'_> {
    /// Sends the worker, which runs a batch of the call of `link`, the call's next queued
    /// batches while they are few and short (see [`PIPELINE_DEPTH`]). A write that fails
    /// leaves the batch among those ahead: the worker is gone, which the next read shows,
    /// and they go back to the queue.
    fn top_up(self, worker: &mut WorkerProcess, link: &Arc<CallLink>) {
        // Topped up only once half of them have run: several jobs go in one write, which
        // the worker then reads in one go, instead of a write and a read for every job.
        if !worker.ready || !worker.initialized || self.ahead.batches.len() > PIPELINE_DEPTH / 2 {
            return;
        }
        // A job sent ahead must need no `SETUP` (its payload may be large): the call's
        // state is already in this worker.
        if let Some(state) = &link.state {
            if !self.holding.iter().any(|(id, _)| *id == state.id) {
                return;
            }
        }
        let key = self.shared.key;
        // One write for all of them.
        let mut frames = Vec::new();
        while self.ahead.batches.len() < PIPELINE_DEPTH {
            let (bytes, items) = (self.ahead.bytes, self.ahead.items);
            let pace = self.pace;
            let fits = |batch: &Batch| {
                let items = u32::try_from(items + batch.count()).unwrap_or(u32::MAX);
                bytes + batch.frame_bytes() <= PIPELINE_BYTES
                    && pace.saturating_mul(items) <= PIPELINE_WORK
            };
            let Some(batch) = self.shared.take_if(link, fits) else {
                break;
            };
            frames.extend_from_slice(&job_head(key, &batch, self.careful, self.timed));
            frames.extend_from_slice(&batch.bytes);
            self.ahead.push(batch);
        }
        if !frames.is_empty() {
            let _ = worker.writer.write_all(&frames);
        }
    }
}

/// Sends `worker` what it needs before a job of `link`'s call: `FORGET` for the states of
/// calls that ended (whatever the job), and `SETUP` for the call's own state if it does
/// not hold it yet; whether it sent a `SETUP`.
fn set_up_state(
    holding: &mut Vec<(u64, Weak<CallLife>)>,
    link: &Arc<CallLink>,
    writer: &mut dyn Write,
    key: Key,
) -> io::Result<bool> {
    if !holding.is_empty() {
        forget_ended(holding, writer)?;
    }
    let Some(state) = &link.state else {
        return Ok(false);
    };
    if holding.iter().any(|(id, _)| *id == state.id) {
        return Ok(false);
    }
    let spec = &state.spec;
    let header = JobHeader {
        fingerprint: spec.function.fingerprint,
        flags: 0,
        count: 0,
        state: state.id,
    };
    let head = wire::encode_job_header(
        wire::SETUP,
        key,
        spec.function.entry,
        &header,
        spec.payload.len(),
    );
    writer.write_all(&head)?;
    writer.write_all(&spec.payload)?;
    holding.push((state.id, state.life.clone()));
    Ok(true)
}

/// Sends `worker` a `FORGET` for the states it holds of calls that ended, if any.
fn forget_ended(
    holding: &mut Vec<(u64, Weak<CallLife>)>,
    writer: &mut dyn Write,
) -> io::Result<()> {
    let mut ended = Vec::new();
    holding.retain(|(id, call)| {
        let live = call.strong_count() > 0;
        if !live {
            ended.push(*id);
        }
        live
    });
    if ended.is_empty() {
        return Ok(());
    }
    let mut frame = Vec::new();
    wire::encode_forget(&mut frame, &ended);
    writer.write_all(&frame)
}

/// Takes the item times off the end of a `RESULTS` body of `count` records (see
/// [`TIMED`]) and adds them to `recorder` for worker `slot`, the items from `first` on of
/// call `call`; `false` when the body is too short to hold them.
fn take_timings(
    body: &mut Vec<u8>,
    count: usize,
    recorder: &Recorder,
    slot: usize,
    call: u64,
    first: usize,
) -> bool {
    let Some(at) = body.len().checked_sub(8 * count).filter(|&at| at >= 5) else {
        return false;
    };
    let mut tally = recorder.tally(slot, call);
    for (index, nanos) in (first..).zip(body[at..].chunks_exact(8)) {
        let nanos = u64::from_le_bytes(nanos.try_into().expect("chunks of 8 bytes"));
        tally.add(index, Duration::from_nanos(nanos));
    }
    body.truncate(at);
    true
}

/// How a worker process ended, in words: "exited with status 3", "was killed by signal 9
/// (SIGKILL)".
pub(crate) fn describe(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => {
            if let Some(signal) = status.signal() {
                let core = if status.core_dumped() {
                    ", core dumped"
                } else {
                    ""
                };
                format!(
                    "was killed by signal {signal} ({}{core})",
                    signal_name(signal)
                )
            } else if let Some(code) = status.code() {
                format!("exited with status {code}")
            } else {
                format!("ended ({status})")
            }
        }
        Err(err) => format!("could not be waited for ({err})"),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => "another signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_described_in_words() {
        assert_eq!(
            describe(Ok(ExitStatus::from_raw(3 << 8))),
            "exited with status 3"
        );
        assert_eq!(
            describe(Ok(ExitStatus::from_raw(libc::SIGKILL))),
            "was killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            describe(Ok(ExitStatus::from_raw(libc::SIGSEGV | 0x80))),
            "was killed by signal 11 (SIGSEGV, core dumped)"
        );
    }
}
