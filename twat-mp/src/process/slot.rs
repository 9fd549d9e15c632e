//! The parent side of the worker processes: one slot thread per node, each owning (at
//! most) one worker process, started lazily and replaced when it dies.
//!
//! Calls put [`Batch`]es of encoded items on the pool's queue; a free slot takes the next
//! one, sends it to its worker and hands every answer back to the call as a
//! [`Delivery`]. When the worker dies mid-batch, the results it already sent stand; the
//! rest of the batch goes to a fresh worker "carefully" (each result sent as soon as it is
//! ready), so that the item that kills a worker is found exactly and is the only one lost.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::unsafe_code::code_range;
use super::wire::{self, FLUSH_EACH, FunctionId, JobHeader, Key};
use super::worker::RunJob;
use super::worker::{MARKER, is_failed_worker, marker_for_child};
use crate::debug::event;
use crate::error::ErrorKind;

/// How long a new worker may take to answer the handshake before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a worker asked to exit (its socket closed) gets before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// The slots of one pool: its settings, the queue of batches its slot threads take from,
/// and what they need to stop their workers.
pub(crate) struct Slots {
    pub(crate) nodes: usize,
    pub(crate) chunksize: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) debug: bool,
    /// A progress bar per call (feature `progress`).
    pub(crate) progress: bool,
    key: Key,
    queue: Mutex<Queue>,
    work: Condvar,
    /// What other threads need of each slot to stop its worker.
    states: Vec<Mutex<SlotState>>,
    /// Per function fingerprint, the last measured cost of one item in nanoseconds: a new
    /// call of the same function starts with batches of the right size.
    costs: Mutex<HashMap<u64, u64>>,
}

struct Queue {
    batches: VecDeque<Batch>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Finish what is queued, then stop the workers.
    Closing,
    /// Stop now: queued work is cancelled and the workers are killed.
    Terminating,
}

/// What other threads need of one slot to stop its worker (a call stopped, the pool
/// terminating): shutting the worker's socket down wakes the slot thread blocked reading
/// it, which then kills the worker.
#[derive(Default)]
struct SlotState {
    /// The current worker's socket.
    socket: Option<UnixStream>,
    /// The call whose items the slot's worker is running, while some are unanswered.
    serving: Option<Arc<Cancel>>,
    /// The worker was stopped for that call: it is killed and replaced after the batch.
    stopped: bool,
}

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
            progress: false,
            key: Key::random(),
            queue: Mutex::new(Queue {
                batches: VecDeque::new(),
                state: State::Running,
            }),
            work: Condvar::new(),
            states: (0..nodes).map(|_| Mutex::default()).collect(),
            costs: Mutex::new(HashMap::new()),
        }
    }

    /// Queues a batch; a pool that is stopping cancels it instead.
    pub(crate) fn submit(&self, batch: Batch) {
        let mut queue = lock(&self.queue);
        if queue.state == State::Running {
            queue.batches.push_back(batch);
            drop(queue);
            self.work.notify_one();
        } else {
            drop(queue);
            drop(batch);
        }
    }

    fn next_batch(&self) -> Option<Batch> {
        let mut queue = lock(&self.queue);
        loop {
            if queue.state == State::Terminating {
                return None;
            }
            if let Some(batch) = queue.batches.pop_front() {
                return Some(batch);
            }
            if queue.state == State::Closing {
                return None;
            }
            queue = self.work.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn terminating(&self) -> bool {
        lock(&self.queue).state == State::Terminating
    }

    /// Lets the slots finish the queue, then stop their workers.
    pub(crate) fn close(&self) {
        let mut queue = lock(&self.queue);
        if queue.state == State::Running {
            queue.state = State::Closing;
        }
        drop(queue);
        self.work.notify_all();
    }

    /// Cancels all queued work and kills every worker now.
    pub(crate) fn terminate(&self) {
        let cancelled = {
            let mut queue = lock(&self.queue);
            queue.state = State::Terminating;
            std::mem::take(&mut queue.batches)
        };
        drop(cancelled);
        self.work.notify_all();
        for state in &self.states {
            if let Some(socket) = lock(state).socket.as_ref() {
                // Wakes the slot thread blocked reading it; it then kills its worker.
                let _ = socket.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Stops the call of `cancel`: its batches still queued are skipped, and every worker
    /// running one of its items is killed (and replaced when work next needs one). Items
    /// that never answer come back as [`Delivery::Cancelled`].
    pub(crate) fn stop_call(&self, cancel: &Arc<Cancel>) {
        cancel.set();
        for state in &self.states {
            let mut state = lock(state);
            if state
                .serving
                .as_ref()
                .is_some_and(|serving| Arc::ptr_eq(serving, cancel))
            {
                state.stopped = true;
                if let Some(socket) = state.socket.as_ref() {
                    let _ = socket.shutdown(std::net::Shutdown::Both);
                }
            }
        }
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

/// Whether a call was stopped; also what names the call to [`Slots::stop_call`].
#[derive(Debug, Default)]
pub(crate) struct Cancel(AtomicBool);

impl Cancel {
    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
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
    },
    /// One item failed outside the function: a crash, a timeout, a transport error.
    Failed {
        index: usize,
        worker: Option<usize>,
        input: Vec<u8>,
        kind: ErrorKind,
    },
    /// Items that never ran.
    Cancelled { first: usize, count: usize },
    /// A batch is over (every one of its items was delivered before this), with the time
    /// its last job took when it ran to the end in one go.
    BatchEnd { measured: Option<(usize, Duration)> },
    /// The call's input has the items the call asked for, or has ended: sent by the
    /// input's feeder (`engine::feed`) to a lazy call, never by a slot.
    Input,
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
        }
    }

    fn count(&self) -> usize {
        self.offsets.len()
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

    /// The next undelivered item failed with `kind`.
    fn fail_next(&mut self, worker: Option<usize>, kind: ErrorKind) {
        let at = self.delivered;
        self.deliver(Delivery::Failed {
            index: self.first + at,
            worker,
            input: self.item_bytes(at).to_vec(),
            kind,
        });
        self.delivered += 1;
    }

    /// Every undelivered item failed with `kind`.
    fn fail_rest(&mut self, worker: Option<usize>, kind: impl Fn() -> ErrorKind) {
        while self.delivered < self.count() {
            self.fail_next(worker, kind());
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // Whatever happened, the call learns about every item, so it never waits forever.
        let left = self.count() - self.delivered;
        if left > 0 {
            self.deliver(Delivery::Cancelled {
                first: self.first + self.delivered,
                count: left,
            });
        }
        let measured = self.measured.take();
        self.deliver(Delivery::BatchEnd { measured });
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
    read_timeout: Option<Duration>,
    body: Vec<u8>,
    /// How it said it dies (a `DYING` frame), if it did.
    last_words: Option<String>,
}

impl WorkerProcess {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if self.read_timeout != timeout {
            self.reader
                .get_ref()
                .set_read_timeout(timeout.map(|t| t.max(Duration::from_micros(1))))?;
            self.read_timeout = timeout;
        }
        Ok(())
    }
}

/// How one job sent to a worker ended.
enum Exchange {
    /// `DONE` arrived, after `elapsed` of work.
    Finished { elapsed: Duration },
    /// The worker refused the job (`fatal`: and cannot go on).
    Refused { reason: String, fatal: bool },
    /// The worker is gone (or was killed because an item ran past the timeout).
    Died { timed_out: bool },
}

/// The thread of slot `index`.
pub(crate) fn slot_main(shared: Arc<Slots>, index: usize) {
    let mut slot = Slot {
        shared,
        index,
        worker: None,
    };
    while let Some(mut batch) = slot.shared.next_batch() {
        slot.serve(Some(&batch.link.cancel));
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| slot.run(&mut batch)));
        if outcome.is_err() {
            // A bug in this module: the worker's state is unknown, so start afresh. The
            // batch's drop still answers every item.
            slot.discard_worker();
        }
        if slot.serve(None) {
            // Stopped for a call that no longer wanted the batch: the worker may still be
            // running one of its items, and its socket is shut.
            slot.discard_worker();
        }
    }
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
}

impl Slot {
    fn debug(&self) -> bool {
        self.shared.debug
    }

    fn state(&self) -> MutexGuard<'_, SlotState> {
        lock(&self.shared.states[self.index])
    }

    /// Marks the slot as running items of the call of `cancel` (`None`: of no call any
    /// more); returns whether its worker was stopped meanwhile.
    fn serve(&self, cancel: Option<&Arc<Cancel>>) -> bool {
        let mut state = self.state();
        state.serving = cancel.cloned();
        std::mem::take(&mut state.stopped)
    }

    fn run(&mut self, batch: &mut Batch) {
        let timeout = self.shared.timeout;
        let mut careful = timeout.is_some();
        while batch.delivered < batch.count() {
            if batch.link.cancel.is_set() || self.shared.terminating() {
                return;
            }
            if self.worker.is_none() {
                match self.spawn() {
                    Ok(worker) => self.worker = Some(worker),
                    Err(err) => {
                        let why = format!("could not start a worker process: {err}");
                        batch.fail_rest(None, || ErrorKind::Transport(why.clone()));
                        return;
                    }
                }
            }
            let was_ready = self.worker.as_ref().is_some_and(|w| w.ready);
            let whole = batch.delivered == 0;
            match self.exchange(batch, careful) {
                Exchange::Finished { elapsed } => {
                    if whole {
                        batch.measured = Some((batch.count(), elapsed));
                    }
                    if batch.delivered < batch.count() {
                        batch.fail_rest(Some(self.index), || {
                            ErrorKind::Transport(
                                "the worker ended the job without answering".into(),
                            )
                        });
                    }
                    return;
                }
                Exchange::Refused { reason, fatal } => {
                    if fatal {
                        self.discard_worker();
                    }
                    let why = format!("the worker refused the job: {reason}");
                    batch.fail_rest(Some(self.index), || ErrorKind::Transport(why.clone()));
                    return;
                }
                Exchange::Died { timed_out } => {
                    // The worker that just ended: its pid is known (0 would mean none ran).
                    let pid = self.worker.as_ref().map_or(0, |w| w.pid);
                    let became_ready = self.worker.as_ref().is_some_and(|w| w.ready);
                    let status = self.discard_worker();
                    if self.shared.terminating() || batch.link.cancel.is_set() {
                        // Killed on purpose: nobody wants these items any more.
                        return;
                    }
                    if !was_ready && !became_ready {
                        let why = format!("the worker process failed to start: it {status}");
                        batch.fail_rest(Some(self.index), || ErrorKind::Transport(why.clone()));
                        return;
                    }
                    if timed_out {
                        let after = timeout.unwrap_or_default();
                        event!(
                            self.debug(),
                            worker = self.index,
                            pid,
                            index = batch.first + batch.delivered,
                            ?after,
                            "item timed out; its worker process was killed"
                        );
                        batch.fail_next(Some(self.index), ErrorKind::TimedOut { after });
                    } else if careful {
                        event!(self.debug(), worker = self.index, pid, index = batch.first + batch.delivered, %status, "worker process crashed on an item");
                        batch.fail_next(Some(self.index), ErrorKind::Crashed { status });
                        careful = timeout.is_some();
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

    /// Sends the undelivered rest of `batch` to the worker and passes its answers on.
    fn exchange(&mut self, batch: &mut Batch, careful: bool) -> Exchange {
        let key = self.shared.key;
        let timeout = self.shared.timeout;
        let slot = self.index;
        let worker = self.worker.as_mut().expect("a worker was started");
        let from = batch.delivered;
        let function = batch
            .link
            .function
            .expect("a call whose function cannot be sent queues no batch");
        let header = JobHeader {
            fingerprint: function.fingerprint,
            flags: if careful { FLUSH_EACH } else { 0 },
            count: u32::try_from(batch.count() - from).expect("batches hold under 4 billion items"),
        };
        let payload = &batch.bytes[batch.offsets[from] as usize..];
        let head = wire::encode_job_header(key, function.entry, &header, payload.len());
        if worker
            .writer
            .write_all(&head)
            .and_then(|()| worker.writer.write_all(payload))
            .is_err()
        {
            return Exchange::Died { timed_out: false };
        }
        let mut started = Instant::now();
        let mut last_progress = started;
        loop {
            let read_timeout = match timeout {
                _ if !worker.ready => Some(START_TIMEOUT.saturating_sub(started.elapsed())),
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
            if worker.set_read_timeout(read_timeout).is_err() {
                return Exchange::Died { timed_out: false };
            }
            match wire::read_frame(&mut worker.reader, &mut worker.body) {
                Ok(true) => {}
                Ok(false) => return Exchange::Died { timed_out: false },
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
                    }
                    Err(err) => {
                        return Exchange::Refused {
                            reason: err.to_string(),
                            fatal: true,
                        };
                    }
                },
                wire::RESULTS => {
                    let count = wire::Cursor::new(&worker.body[1..])
                        .u32()
                        .unwrap_or(u32::MAX) as usize;
                    if count > batch.count() - batch.delivered {
                        return Exchange::Refused {
                            reason: "it answered more items than it was sent".into(),
                            fatal: true,
                        };
                    }
                    if count == batch.count() - batch.delivered {
                        // The call has every answer once it gets these: it no longer
                        // needs this worker stopped, whatever it decides.
                        lock(&self.shared.states[slot]).serving = None;
                    }
                    batch.deliver(Delivery::Results {
                        first: batch.first + batch.delivered,
                        count,
                        body: std::mem::take(&mut worker.body),
                        worker: slot,
                    });
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
                    let (fatal, reason) = wire::decode_refused(&worker.body)
                        .unwrap_or((true, "it sent a malformed refusal".into()));
                    return Exchange::Refused { reason, fatal };
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
        let (ours, theirs) = UnixStream::pair()?;
        let mut child = Command::new("/proc/self/exe")
            .arg0("twat-mp-worker")
            .env(MARKER, marker_for_child())
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .spawn()?;
        let pid = child.id();
        let mut hello = Vec::new();
        wire::encode_hello(&mut hello, self.shared.key);
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
        let mut state = self.state();
        if state.stopped || self.shared.terminating() {
            // `stop_call` or `terminate` ran before the socket was published.
            let _ = ours.shutdown(std::net::Shutdown::Both);
        }
        state.socket = Some(wake);
        drop(state);
        event!(
            self.debug(),
            worker = self.index,
            pid,
            "worker process started"
        );
        Ok(WorkerProcess {
            child,
            pid,
            reader: BufReader::with_capacity(1 << 16, ours),
            writer,
            ready: false,
            read_timeout: None,
            body: Vec::new(),
            last_words: None,
        })
    }

    /// Kills the worker (if any) and reaps it; returns how it ended, in words.
    fn discard_worker(&mut self) -> String {
        let Some(mut worker) = self.worker.take() else {
            return "was not running".into();
        };
        self.state().socket = None;
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
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        self.state().socket = None;
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
