//! One call of an [`AsyncProcessPool`](super::AsyncProcessPool) on the caller's side:
//! [`SessionCall`] keeps a *session* open on up to one worker process per node, sends each
//! of them items one at a time while it has room (its share of the input, at most
//! `concurrency` at once, and never past the worker's `maxtasksperchild`), and turns each
//! answer into that item's outcome within the engine's [`Window`] as soon as it comes.
//!
//! A worker that dies costs exactly its item: with one item running, that item failed;
//! with several, each of them runs again alone, so that the one that kills a worker is
//! found. With `retries`, an item that killed its worker or timed out runs again (alone,
//! if it killed its worker), as the engine's [`Attempts`] decides. A task reported stuck past its deadline fails as timed out, its worker is killed,
//! and the worker's other items run again. Dropping the call stops every session that
//! still runs items (their workers are killed and replaced when work next needs them).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io::{self, BufReader, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;

use super::session::{ANSWER, Answer, HELLO, ITEM, STUCK, SessionStart};
use crate::aio::stream::{ResultSource, result_stream};
use crate::async_result::AsyncResult;
use crate::debug::event;
use crate::engine::insights::Recorder;
use crate::engine::item::{ItemFailure, Outcome};
use crate::engine::order::Window;
use crate::engine::progress::Progress;
use crate::engine::retry::{Attempts, Verdict};
use crate::error::{ErrorKind, WorkerError};
use crate::process::Stopper;
use crate::process::slot::FRAME_STALL;
use crate::process::wire::{self, Key};

/// What a session's job in the underlying process pool ends with.
type JobEnd = Result<Option<String>, WorkerError>;

/// The input, each item encoded (or why it cannot cross, in words).
pub(super) type Input = dyn Iterator<Item = Result<Vec<u8>, String>> + Send;
/// Starts a session in the underlying process pool: its end, and what stops it.
pub(super) type OpenSession = dyn Fn(SessionStart) -> (AsyncResult<JobEnd>, Stopper) + Send;
/// Renders an item from its encoded copy, in debug mode.
pub(super) type RenderBytes = dyn Fn(&[u8]) -> Option<String> + Send;
/// Decodes the function's own error as its `ErrorWire` encoded it.
pub(super) type DecodeError<S> = fn(&[u8]) -> postcard::Result<(S, &[u8])>;

/// How a call reaches the workers: made by the pool for one function.
pub(super) struct Transport<R, S> {
    pub(super) input: Box<Input>,
    pub(super) open: Box<OpenSession>,
    pub(super) render: Box<RenderBytes>,
    pub(super) decode_answer: fn(&[u8]) -> postcard::Result<Answer<R>>,
    pub(super) decode_error: DecodeError<S>,
    /// Set when the pool is dropped: everything not yet answered is cancelled.
    pub(super) closed: Arc<AtomicBool>,
}

/// The pool's settings a call follows.
#[derive(Clone, Copy)]
pub(super) struct Limits {
    pub(super) nodes: usize,
    pub(super) concurrency: usize,
    pub(super) maxtasksperchild: Option<usize>,
    pub(super) timeout: Option<Duration>,
    pub(super) debug: bool,
    /// How many more times an item whose worker was lost, or that timed out, runs.
    pub(super) retries: u32,
}

/// What a session's reader thread reports.
enum Event {
    Hello {
        session: u64,
        pid: u32,
        tasks_run: u64,
        writer: UnixStream,
    },
    Answer {
        session: u64,
        index: usize,
        /// The task's time, and the session's busy time since its previous answer.
        took: Duration,
        busy: Duration,
        body: Vec<u8>,
    },
    Stuck {
        session: u64,
        index: usize,
        after: Duration,
    },
    /// What came from the worker is not a session's answer (code in a task wrote onto
    /// the session's socket, say), for this reason; the connection ends next.
    Garbled { session: u64, reason: String },
    /// The connection ended (or never came).
    Closed { session: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Takes items.
    Open,
    /// Takes no more items; ends by itself once its worker sees the end of its input.
    Closing,
    /// Its worker is being killed: a task stuck past its deadline, or its
    /// `maxtasksperchild` reached. Its unanswered items run again.
    Killed,
}

/// One session: a worker process serving this call.
struct Session {
    id: u64,
    name: Vec<u8>,
    job: Option<AsyncResult<JobEnd>>,
    /// How the session's job ended, once it has.
    ended: Option<JobEnd>,
    stopper: Stopper,
    /// Set once the worker said hello, until this side is shut.
    writer: Option<UnixStream>,
    connected: bool,
    /// The connection is over.
    closed: bool,
    pid: Option<u32>,
    state: State,
    /// Items sent and not answered, by index, with their encoded copy.
    in_flight: HashMap<usize, Vec<u8>>,
    /// Items it may still take (`maxtasksperchild`).
    budget: Option<usize>,
    /// It runs one suspect item alone.
    alone: bool,
    /// The slot of the pool's worker processes that runs it (with insights).
    slot: Option<usize>,
    /// The highest index sent to it, if any.
    highest: Option<usize>,
    /// Why its answers were garbled, if they were: its worker was killed, and its items
    /// fail (or run again alone) with this reason.
    garbled: Option<String>,
}

impl Session {
    fn shut(&mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = writer.shutdown(std::net::Shutdown::Write);
        }
    }

    /// Wakes the reader thread still waiting for a worker that will not come.
    fn wake_listener(&self) {
        if let Ok(address) = SocketAddr::from_abstract_name(&self.name) {
            let _ = UnixStream::connect_addr(&address);
        }
    }

    /// Its answers were garbled: its worker is killed (and replaced when work needs one),
    /// and the items it has fail with `reason`, or run again alone to find the one that
    /// did it.
    fn garble(&mut self, reason: String) {
        if self.garbled.is_none() && self.state != State::Killed {
            self.garbled = Some(reason);
            self.stopper.stop();
        }
        self.shut();
    }

    fn takes_items(&self) -> bool {
        self.connected
            && self.writer.is_some()
            && self.state == State::Open
            && !self.alone
            && self.budget != Some(0)
    }
}

/// One call: its sessions, the items to run again, and the window of outcomes.
pub(crate) struct SessionCall<R, S> {
    transport: Transport<R, S>,
    limits: Limits,
    /// The call's span in debug mode.
    span: tracing::Span,
    input_done: bool,
    sessions: Vec<Session>,
    next_session: u64,
    events: mpsc::UnboundedReceiver<Event>,
    events_in: mpsc::UnboundedSender<Event>,
    /// Items whose worker was killed for another item: they run again.
    retry: VecDeque<(usize, Vec<u8>)>,
    /// Items of a worker that died running several: each runs again alone.
    suspects: VecDeque<(usize, Vec<u8>)>,
    in_flight: usize,
    window: Window<Outcome<R, S>>,
    /// With insights: the pool's recorder and this call's number on it.
    insights: Option<(Arc<Recorder>, u64)>,
    /// The runs of items lost to a crash or a timeout.
    attempts: Attempts,
    /// The call's progress bar, fed each outcome as it is handed over.
    progress: Option<Progress>,
}

impl<R: Send + 'static, S: Send + 'static> SessionCall<R, S> {
    pub(super) fn new(transport: Transport<R, S>, limits: Limits, ordered: bool) -> Self {
        let (events_in, events) = mpsc::unbounded_channel();
        let window = limits
            .nodes
            .saturating_mul(limits.concurrency)
            .saturating_mul(2);
        SessionCall {
            transport,
            span: crate::debug::call_span(limits.debug, "async process"),
            limits,
            input_done: false,
            sessions: Vec::new(),
            next_session: 0,
            events,
            events_in,
            retry: VecDeque::new(),
            suspects: VecDeque::new(),
            in_flight: 0,
            window: Window::new(window, ordered),
            insights: None,
            attempts: Attempts::new(limits.retries),
            progress: None,
        }
    }

    /// Records the call's tasks on `recorder` (the pool's, with insights), as a new call.
    pub(super) fn with_insights(mut self, recorder: Option<&Arc<Recorder>>) -> Self {
        self.insights = recorder.map(|recorder| (Arc::clone(recorder), recorder.begin_call()));
        self
    }

    /// Shows the call's progress when `on`.
    pub(super) fn with_progress(mut self, on: bool) -> Self {
        self.progress = Progress::start(on, self.transport.input.size_hint());
        self
    }

    /// The next outcome in the window, counted.
    fn pop(&mut self) -> Option<(usize, Outcome<R, S>)> {
        let next = self.window.pop()?;
        if let Some(progress) = &self.progress {
            progress.item(next.1.is_ok());
        }
        Some(next)
    }

    /// Pulls no more input: the items pulled so far still answer.
    pub(super) fn stop_input(&mut self) {
        self.input_done = true;
    }

    fn fail(&mut self, index: usize, kind: ErrorKind, bytes: &[u8]) {
        let err = WorkerError::new(index, kind).with_input((self.transport.render)(bytes));
        self.failed(index, ItemFailure::Worker(err));
    }

    fn failed(&mut self, index: usize, failure: ItemFailure<S>) {
        failure.log_in(&self.span, self.limits.debug);
        self.window.finish(index, Err(failure));
    }

    /// The item at `index` failed so (`kind`: its worker process `pid` died under it, or
    /// it timed out): it runs again (`alone` on its worker, when it may have killed the
    /// last one), or fails after its runs.
    fn lost(
        &mut self,
        index: usize,
        (kind, pid): (ErrorKind, Option<u32>),
        bytes: Vec<u8>,
        alone: bool,
    ) {
        match self.attempts.lost(index, &kind) {
            Verdict::Again { runs } => {
                event!(
                    self.limits.debug,
                    index,
                    runs,
                    cause = %kind,
                    "item runs again on another worker process"
                );
                if alone {
                    self.suspects.push_back((index, bytes));
                } else {
                    self.retry.push_back((index, bytes));
                }
            }
            Verdict::Fail { attempts } => {
                let err = WorkerError::new(index, kind)
                    .with_pid(pid)
                    .with_input((self.transport.render)(&bytes))
                    .with_attempts(attempts);
                self.failed(index, ItemFailure::Worker(err));
            }
        }
    }

    /// The worker process `pid` answered the item at `index`.
    fn answered(&mut self, index: usize, bytes: Vec<u8>, body: &[u8], pid: Option<u32>) {
        let input = || (self.transport.render)(&bytes);
        let answer = match (self.transport.decode_answer)(body) {
            Ok(answer) => answer,
            Err(err) => Answer::Broken(format!("the answer could not be decoded: {err}")),
        };
        let failure = match answer {
            Answer::Done(value) => {
                self.window.finish(index, Ok(value));
                return;
            }
            Answer::Returned(encoded) => match (self.transport.decode_error)(&encoded) {
                Ok((error, _)) => ItemFailure::Returned {
                    index,
                    worker: None,
                    pid,
                    input: input(),
                    error,
                    attempts: 1,
                },
                Err(err) => ItemFailure::Worker(
                    WorkerError::new(
                        index,
                        ErrorKind::Transport(format!(
                            "the function's error could not be decoded: {err}"
                        )),
                    )
                    .with_input(input()),
                ),
            },
            Answer::Unsendable(why) => ItemFailure::Worker(
                WorkerError::new(
                    index,
                    ErrorKind::Transport(format!(
                        "the function's error could not be serialized: {why}"
                    )),
                )
                .with_input(input()),
            ),
            Answer::Broken(why) => ItemFailure::Worker(
                WorkerError::new(index, ErrorKind::Transport(why)).with_input(input()),
            ),
            Answer::Panicked(panic) => {
                ItemFailure::Worker(panic.into_worker_error(index).with_input(input()))
            }
            Answer::TimedOut(after) => {
                // Its worker goes on: it may run again on any of them.
                return self.lost(index, (ErrorKind::TimedOut { after }, pid), bytes, false);
            }
        };
        let mut failure = failure;
        failure.set_attempts(self.attempts.runs(index));
        if let ItemFailure::Worker(err) = &mut failure {
            err.set_pid(pid);
        }
        self.failed(index, failure);
    }

    fn session(&mut self, id: u64) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|s| s.id == id)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Hello {
                session,
                pid,
                tasks_run,
                writer,
            } => {
                let max = self.limits.maxtasksperchild;
                let slot = self
                    .insights
                    .as_ref()
                    .and_then(|(recorder, _)| recorder.worker_of_pid(pid));
                let Some(session) = self.session(session) else {
                    return;
                };
                session.connected = true;
                session.pid = Some(pid);
                session.slot = slot;
                session.budget =
                    max.map(|max| max.saturating_sub(usize::try_from(tasks_run).unwrap_or(max)));
                session.writer = Some(writer);
                if session.state != State::Open {
                    session.shut();
                }
            }
            Event::Answer {
                session,
                index,
                took,
                busy,
                body,
            } => {
                let Some(session) = self.session(session) else {
                    return;
                };
                if session.garbled.is_some() {
                    // Nothing it says counts any more: its items are lost.
                    return;
                }
                let Some(bytes) = session.in_flight.remove(&index) else {
                    // An answer may come late (for a task reported stuck), never for an
                    // item the session was not sent.
                    if session.highest.is_none_or(|highest| index > highest) {
                        session.garble(format!("it answered item {index}, never sent to it"));
                    }
                    return;
                };
                session.alone = false;
                let (slot, pid) = (session.slot, session.pid);
                if let (Some((recorder, call)), Some(slot)) = (&self.insights, slot) {
                    recorder.task_done(slot, *call, index, took, busy);
                }
                self.in_flight -= 1;
                self.answered(index, bytes, &body, pid);
            }
            Event::Stuck {
                session,
                index,
                after,
            } => {
                let debug = self.limits.debug;
                let Some(session) = self.session(session) else {
                    return;
                };
                if session.garbled.is_some() {
                    return;
                }
                let Some(bytes) = session.in_flight.remove(&index) else {
                    if session.highest.is_none_or(|highest| index > highest) {
                        session.garble(format!("it reported item {index}, never sent to it"));
                    }
                    return;
                };
                event!(
                    debug,
                    index,
                    pid = session.pid.unwrap_or_default(),
                    ?after,
                    "task blocked its worker process past its timeout; the worker is killed"
                );
                session.state = State::Killed;
                session.alone = false;
                session.stopper.stop();
                session.shut();
                let pid = session.pid;
                self.in_flight -= 1;
                self.lost(index, (ErrorKind::TimedOut { after }, pid), bytes, true);
            }
            Event::Garbled { session, reason } => {
                let debug = self.limits.debug;
                if let Some(session) = self.session(session) {
                    event!(debug, pid = session.pid.unwrap_or_default(), reason = %reason, "worker process garbled its session's answers; the worker is killed");
                    session.garble(reason);
                }
            }
            Event::Closed { session } => {
                if let Some(session) = self.session(session) {
                    session.closed = true;
                    session.shut();
                }
            }
        }
    }

    /// Takes over the items of the sessions that are over; whether any was.
    fn end_sessions(&mut self) -> bool {
        let mut any = false;
        let mut at = 0;
        while at < self.sessions.len() {
            let session = &self.sessions[at];
            if !(session.closed && session.ended.is_some()) {
                at += 1;
                continue;
            }
            any = true;
            let mut session = self.sessions.swap_remove(at);
            let ended = session.ended.take().expect("checked above");
            let mut items: Vec<(usize, Vec<u8>)> = session.in_flight.drain().collect();
            items.sort_unstable_by_key(|(index, _)| *index);
            self.in_flight -= items.len();
            if self.transport.closed.load(Ordering::Relaxed) {
                for (index, bytes) in items {
                    self.fail(index, ErrorKind::Cancelled, &bytes);
                }
                continue;
            }
            if session.state == State::Killed {
                self.retry.extend(items);
                continue;
            }
            let kind = match (&session.garbled, &ended) {
                (Some(why), _) => ErrorKind::Transport(format!(
                    "its worker process garbled its answers ({why}); the worker was killed \
                     and replaced"
                )),
                (None, Err(err)) => same_kind(err.kind()),
                (None, Ok(Some(why))) => ErrorKind::Transport(why.clone()),
                (None, Ok(None)) => {
                    ErrorKind::Transport("the worker ended the session unanswered".into())
                }
            };
            if !session.connected {
                // The session never reached a worker: that costs one waiting item, so that
                // a pool whose workers cannot start fails instead of trying forever.
                if ended.is_err() || matches!(ended, Ok(Some(_))) {
                    if let Some((index, bytes)) = self.next_waiting() {
                        self.fail(index, kind, &bytes);
                    }
                }
                continue;
            }
            match items.len() {
                0 => {}
                1 => {
                    let (index, bytes) = items.pop().expect("one item");
                    event!(self.limits.debug, index, pid = session.pid.unwrap_or_default(), cause = %kind, "worker process died on an item");
                    self.lost(index, (kind, session.pid), bytes, true);
                }
                n => {
                    event!(self.limits.debug, items = n, pid = session.pid.unwrap_or_default(), cause = %kind, "a worker process died running several items; each runs again alone");
                    self.suspects.extend(items);
                }
            }
        }
        any
    }

    /// An item waiting to be sent: one to run again, else the next of the input.
    fn next_waiting(&mut self) -> Option<(usize, Vec<u8>)> {
        if let Some(item) = self.suspects.pop_front() {
            return Some(item);
        }
        if let Some(item) = self.retry.pop_front() {
            return Some(item);
        }
        self.pull()
    }

    /// The next item of the input, started in the window; items that cannot cross fail
    /// at once.
    fn pull(&mut self) -> Option<(usize, Vec<u8>)> {
        while !self.input_done && self.window.has_room() {
            let Some(next) = self.transport.input.next() else {
                self.input_done = true;
                return None;
            };
            let index = self.window.start(1);
            match next {
                Ok(bytes) => return Some((index, bytes)),
                Err(why) => {
                    let err = WorkerError::new(index, ErrorKind::Transport(why));
                    self.window.finish(index, Err(ItemFailure::Worker(err)));
                }
            }
        }
        None
    }

    fn work_waiting(&self) -> bool {
        !self.retry.is_empty()
            || !self.suspects.is_empty()
            || (!self.input_done && self.window.has_room())
    }

    /// The most items one session runs at once now: its share of what is left, so that a
    /// short input is spread over every worker, and at most `concurrency`.
    fn share(&self) -> usize {
        let left = if self.input_done {
            0
        } else {
            self.transport.input.size_hint().1.unwrap_or(usize::MAX)
        };
        let outstanding = left
            .saturating_add(self.in_flight)
            .saturating_add(self.retry.len());
        outstanding
            .div_ceil(self.limits.nodes)
            .clamp(1, self.limits.concurrency)
    }

    fn send(&mut self, at: usize, index: usize, bytes: Vec<u8>) {
        let session = &mut self.sessions[at];
        let mut frame = Vec::with_capacity(bytes.len() + 16);
        let start = wire::begin_frame(&mut frame, ITEM);
        frame.extend_from_slice(&(index as u64).to_le_bytes());
        frame.extend_from_slice(&bytes);
        wire::end_frame(&mut frame, start);
        let sent = session
            .writer
            .as_mut()
            .is_some_and(|writer| writer.write_all(&frame).is_ok());
        if sent {
            session.highest = Some(session.highest.map_or(index, |h| h.max(index)));
            session.in_flight.insert(index, bytes);
            if let Some(budget) = &mut session.budget {
                *budget -= 1;
            }
            self.in_flight += 1;
        } else {
            // The worker is gone; the session's end says how.
            session.writer = None;
            self.retry.push_front((index, bytes));
        }
    }

    /// The session taking items with the fewest running, if it has room under `share`.
    fn least_busy(&self, share: usize) -> Option<usize> {
        self.sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| s.takes_items() && s.in_flight.len() < share)
            .min_by_key(|(_, s)| s.in_flight.len())
            .map(|(at, _)| at)
    }

    /// Sends items to the sessions with room, opens sessions while there is work for
    /// them, and closes those with nothing left to do; whether anything changed that
    /// needs another look.
    fn fill(&mut self) -> bool {
        let mut changed = false;
        if self.transport.closed.load(Ordering::Relaxed) {
            self.input_done = true;
            let waiting: Vec<_> = self
                .suspects
                .drain(..)
                .chain(self.retry.drain(..))
                .collect();
            for (index, bytes) in waiting {
                self.fail(index, ErrorKind::Cancelled, &bytes);
                changed = true;
            }
            return changed;
        }
        // Suspects, each alone on a session with nothing else running.
        while !self.suspects.is_empty() {
            let Some(at) = self
                .sessions
                .iter()
                .position(|s| s.takes_items() && s.in_flight.is_empty())
            else {
                break;
            };
            let (index, bytes) = self.suspects.pop_front().expect("not empty");
            self.sessions[at].alone = true;
            self.send(at, index, bytes);
        }
        // Everything else, to the least busy session with room.
        let share = self.share();
        while let Some(at) = self.least_busy(share) {
            let next = match self.retry.pop_front() {
                Some(item) => Some(item),
                None => {
                    let started = self.window.started();
                    let item = self.pull();
                    changed |= self.window.started() != started && item.is_none();
                    item
                }
            };
            let Some((index, bytes)) = next else {
                break;
            };
            self.send(at, index, bytes);
        }
        let waiting = self.work_waiting();
        for session in &mut self.sessions {
            if session.state != State::Open || !session.in_flight.is_empty() {
                continue;
            }
            if session.connected && session.budget == Some(0) {
                // This worker ran its `maxtasksperchild`: it is replaced.
                session.state = State::Killed;
                session.stopper.stop();
                session.shut();
            } else if !waiting {
                session.state = State::Closing;
                session.shut();
            }
        }
        if waiting {
            let open = self
                .sessions
                .iter()
                .filter(|s| s.state == State::Open)
                .count();
            for _ in open..self.limits.nodes {
                match self.open_session() {
                    Ok(session) => self.sessions.push(session),
                    Err(why) => {
                        if let Some((index, bytes)) = self.next_waiting() {
                            self.fail(index, ErrorKind::Transport(why), &bytes);
                        }
                    }
                }
                changed = true;
            }
        }
        changed
    }

    /// Listens for a new session's worker and starts the session's job.
    fn open_session(&mut self) -> Result<Session, String> {
        let id = self.next_session;
        self.next_session += 1;
        let key = Key::random().parts();
        let name = format!(
            "twat-mp-{}-{:x}-{id}",
            std::process::id(),
            key.0 ^ key.1.rotate_left(17)
        )
        .into_bytes();
        let listener = SocketAddr::from_abstract_name(&name)
            .and_then(|address| UnixListener::bind_addr(&address))
            .map_err(|err| format!("could not listen for a worker process: {err}"))?;
        let events = self.events_in.clone();
        std::thread::Builder::new()
            .name("twat-mp-aio-session".into())
            .spawn(move || read_session(id, key, &listener, &events))
            .map_err(|err| format!("could not start a thread: {err}"))?;
        let (job, stopper) = (self.transport.open)(SessionStart {
            name: name.clone(),
            key,
            timeout: self.limits.timeout,
        });
        Ok(Session {
            id,
            name,
            job: Some(job),
            ended: None,
            stopper,
            writer: None,
            connected: false,
            closed: false,
            pid: None,
            state: State::Open,
            in_flight: HashMap::new(),
            budget: None,
            alone: false,
            slot: None,
            highest: None,
            garbled: None,
        })
    }

    /// The next outcome with its index; `None` once every item has answered.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Outcome<R, S>)>> {
        loop {
            if let Some(next) = self.pop() {
                return Poll::Ready(Some(next));
            }
            let mut changed = false;
            while let Poll::Ready(Some(event)) = self.events.poll_recv(cx) {
                self.handle(event);
                changed = true;
            }
            for session in &mut self.sessions {
                let Some(job) = session.job.as_mut() else {
                    continue;
                };
                if let Poll::Ready(end) = Pin::new(job).poll(cx) {
                    session.job = None;
                    session.ended = Some(end);
                    if !session.connected {
                        session.wake_listener();
                    }
                    changed = true;
                }
            }
            changed |= self.end_sessions();
            changed |= self.fill();
            if let Some(next) = self.pop() {
                return Poll::Ready(Some(next));
            }
            if self.input_done
                && self.retry.is_empty()
                && self.suspects.is_empty()
                && self.in_flight == 0
            {
                debug_assert_eq!(self.window.running(), 0, "every item sent has answered");
                return Poll::Ready(None);
            }
            if !changed {
                return Poll::Pending;
            }
        }
    }

    /// The next outcome, awaited.
    pub(super) async fn next(&mut self) -> Option<(usize, Outcome<R, S>)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl<R, S> Drop for SessionCall<R, S> {
    fn drop(&mut self) {
        // Nobody wants the answers still out (a `map` decided by a failure, a future or a
        // stream dropped): stop the sessions running items, so that their workers are free
        // at once, and end the others.
        for session in &mut self.sessions {
            if !session.in_flight.is_empty() || !session.connected {
                session.stopper.stop();
            }
            session.shut();
            if !session.connected {
                session.wake_listener();
            }
        }
    }
}

/// The reader thread of session `id`: waits for its worker, checks its hello, then passes
/// every frame on as an [`Event`] until the connection ends.
fn read_session(
    id: u64,
    key: (u64, u64),
    listener: &UnixListener,
    events: &mpsc::UnboundedSender<Event>,
) {
    let closed = || {
        let _ = events.send(Event::Closed { session: id });
    };
    let Ok((stream, _)) = listener.accept() else {
        return closed();
    };
    let (Ok(reader), Ok(writer)) = (stream.try_clone(), stream.try_clone()) else {
        return closed();
    };
    let mut reader = SessionReader {
        reader: BufReader::with_capacity(1 << 16, reader),
        bounded: false,
        begun: false,
    };
    let mut body = Vec::new();
    let hello = match reader.next_frame(&mut body) {
        Ok(true) if body.len() == 29 && body[0] == HELLO => {
            let word = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8"));
            let pid = u32::from_le_bytes(body[17..21].try_into().expect("4"));
            ((word(1), word(9)) == key).then(|| (pid, word(21)))
        }
        _ => None,
    };
    let Some((pid, tasks_run)) = hello else {
        return closed();
    };
    if events
        .send(Event::Hello {
            session: id,
            pid,
            tasks_run,
            writer,
        })
        .is_err()
    {
        return;
    }
    loop {
        let garbled = match reader.next_frame(&mut body) {
            Ok(true) => match session_event(id, &body) {
                Ok(event) => {
                    if events.send(event).is_err() {
                        return;
                    }
                    continue;
                }
                Err(reason) => reason,
            },
            Ok(false) => break,
            Err(err)
                if reader.begun
                    && matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
            {
                format!("a frame it began did not arrive in full within {FRAME_STALL:?}")
            }
            Err(err) if err.kind() == io::ErrorKind::InvalidData => format!("it sent a {err}"),
            Err(_) => break,
        };
        let _ = events.send(Event::Garbled {
            session: id,
            reason: garbled,
        });
        break;
    }
    closed();
}

/// The event of a frame from a session's worker, or why it is not one a worker sends.
fn session_event(id: u64, body: &[u8]) -> Result<Event, String> {
    let kind = body[0];
    if body.len() < 9 {
        return Err(format!(
            "it sent a frame of kind {kind} too short to name an item"
        ));
    }
    let index = u64::from_le_bytes(body[1..9].try_into().expect("8 bytes"));
    let index = usize::try_from(index).unwrap_or(usize::MAX);
    let nanos = |at: usize| {
        Duration::from_nanos(u64::from_le_bytes(
            body[at..at + 8].try_into().expect("8 bytes"),
        ))
    };
    match kind {
        ANSWER if body.len() >= 25 => Ok(Event::Answer {
            session: id,
            index,
            took: nanos(9),
            busy: nanos(17),
            body: body[25..].to_vec(),
        }),
        STUCK if body.len() == 17 => Ok(Event::Stuck {
            session: id,
            index,
            after: nanos(9),
        }),
        ANSWER | STUCK => Err(format!("it sent a malformed frame of kind {kind}")),
        _ => Err(format!(
            "it sent a frame of kind {kind}, which it never sends"
        )),
    }
}

/// A session's stream, read frame by frame: between frames a read waits as long as the
/// tasks run, but once a byte of a frame came, a read waits at most [`FRAME_STALL`] (a
/// worker writes each frame whole, in one go), and [`SessionReader::begun`] tells a stall
/// inside a frame from a wait between frames.
struct SessionReader {
    reader: BufReader<UnixStream>,
    /// Whether the socket's reads are bounded now.
    bounded: bool,
    /// Whether a byte of the frame being read came.
    begun: bool,
}

impl SessionReader {
    fn next_frame(&mut self, body: &mut Vec<u8>) -> io::Result<bool> {
        if self.bounded {
            self.reader.get_ref().set_read_timeout(None)?;
            self.bounded = false;
        }
        self.begun = false;
        wire::read_frame(self, body)
    }
}

impl Read for SessionReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Bytes already buffered cost no system call, and no bound.
        if self.begun && !self.bounded && self.reader.buffer().is_empty() {
            self.reader.get_ref().set_read_timeout(Some(FRAME_STALL))?;
            self.bounded = true;
        }
        let read = self.reader.read(buf)?;
        self.begun |= read > 0;
        Ok(read)
    }
}

/// A copy of `kind` (the process pool numbers a session as its item 0).
fn same_kind(kind: &ErrorKind) -> ErrorKind {
    match kind {
        ErrorKind::Panicked { message } => ErrorKind::Panicked {
            message: message.clone(),
        },
        ErrorKind::Crashed { status } => ErrorKind::Crashed {
            status: status.clone(),
        },
        ErrorKind::TimedOut { after } => ErrorKind::TimedOut { after: *after },
        ErrorKind::Transport(why) => ErrorKind::Transport(why.clone()),
        ErrorKind::Cancelled => ErrorKind::Cancelled,
        ErrorKind::InitializerFailed { reason } => ErrorKind::InitializerFailed {
            reason: reason.clone(),
        },
        ErrorKind::InitPanicked { message } => ErrorKind::InitPanicked {
            message: message.clone(),
        },
        other => ErrorKind::Transport(other.to_string()),
    }
}

impl<R: Send + 'static> ResultSource<R> for SessionCall<R, Infallible> {
    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<R, WorkerError>>> {
        self.poll_next(cx).map(|next| {
            next.map(|(_, outcome)| outcome.map_err(ItemFailure::into_infallible_worker_error))
        })
    }

    fn progress(&self, out: &mut fmt::DebugStruct<'_, '_>) {
        out.field("yielded", &self.window.yielded())
            .field("in_flight", &self.in_flight)
            .field("sessions", &self.sessions.len());
    }
}

result_stream! {
    /// The stream of [`AsyncProcessPool::imap`](super::AsyncProcessPool::imap): results in
    /// input order.
    ///
    /// ```
    /// async fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// let mut squares = pool.imap(square, 1..=3);
    /// let mut all = Vec::new();
    /// while let Some(result) = squares.next().await {
    ///     all.push(result?);
    /// }
    /// assert_eq!(all, [1, 4, 9]);
    /// # Ok(())
    /// # }
    /// ```
    ProcessImapStream(SessionCall<R, Infallible>) {
        /// ```
        /// async fn square(x: u64) -> u64 {
        ///     x * x
        /// }
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).processes().build()?;
        /// let mut squares = pool.imap(square, 1..=3);
        /// assert_eq!(squares.next().await.transpose()?, Some(1));
        /// assert_eq!(squares.next().await.transpose()?, Some(4));
        /// # Ok(())
        /// # }
        /// ```
    }
}

result_stream! {
    /// The stream of [`AsyncProcessPool::uimap`](super::AsyncProcessPool::uimap): results
    /// as each task finishes.
    ///
    /// ```
    /// async fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// let mut squares = pool.uimap(square, 1..=3);
    /// let mut all = Vec::new();
    /// while let Some(result) = squares.next().await {
    ///     all.push(result?);
    /// }
    /// all.sort();
    /// assert_eq!(all, [1, 4, 9]);
    /// # Ok(())
    /// # }
    /// ```
    ProcessUimapStream(SessionCall<R, Infallible>) {
        /// ```
        /// async fn square(x: u64) -> u64 {
        ///     x * x
        /// }
        ///
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).processes().build()?;
        /// let mut squares = pool.uimap(square, 1..=3);
        /// let first = squares.next().await.transpose()?;
        /// assert!(matches!(first, Some(1 | 4 | 9)));
        /// # Ok(())
        /// # }
        /// ```
    }
}
