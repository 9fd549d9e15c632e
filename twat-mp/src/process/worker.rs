//! The worker side: a copy of the program, started by a pool with [`MARKER`] set, that
//! turns into a worker before `main` and serves jobs until its parent goes away.

use std::any::Any;
use std::io::{self, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::remote::{self, write};
use super::unsafe_code::{
    Signature, die_with_parent, ignore_sigpipe, replace_stdin, report_stack_overflow,
};
use super::wire::{self, FLUSH_EACH, FrameError, JobHeader, Key, TIMED};
use crate::panic_capture::RemotePanic;

/// The environment variable that makes a started copy a worker: `pid/depth`, the pid of
/// the parent that started it (so that a program a worker starts, inheriting it, is not
/// fooled) and how deep the worker is (see [`MAX_DEPTH`]).
pub(crate) const MARKER: &str = "TWAT_MP_WORKER_OF";

/// How deep worker processes nest: a program's workers are 1 deep; code in them may use a
/// process pool of its own, whose workers (2 deep) may not. So nested pools work, and a
/// function that builds a pool and maps itself cannot fork without bound.
pub(crate) const MAX_DEPTH: u32 = 2;

/// This process's depth: 0 in a program, from 1 on in a worker (set before it serves).
static DEPTH: AtomicU32 = AtomicU32::new(0);

/// The marker this process was started with, as (parent pid, depth), if any.
fn marker() -> Option<(u32, u32)> {
    let marker = std::env::var_os(MARKER)?;
    let (pid, depth) = marker.to_str()?.split_once('/')?;
    Some((pid.parse().ok()?, depth.parse().ok()?))
}

/// The depth this process was started at, if it was started as a worker by its parent
/// (which is still alive: a dead parent's child gets another parent).
fn started_as_worker() -> Option<u32> {
    marker()
        .filter(|&(parent, _)| parent == std::os::unix::process::parent_id())
        .map(|(_, depth)| depth.max(1))
}

/// The marker for a worker that this process starts.
pub(crate) fn marker_for_child() -> String {
    format!(
        "{}/{}",
        std::process::id(),
        DEPTH.load(Ordering::Relaxed) + 1
    )
}

/// Whether this process may start worker processes; the reason when it may not: it is a
/// worker already [`MAX_DEPTH`] deep.
pub(crate) fn may_start_workers() -> Result<(), crate::error::BuildError> {
    let depth = DEPTH.load(Ordering::Relaxed);
    if depth >= MAX_DEPTH {
        return Err(crate::error::BuildError::Nested {
            depth,
            max: MAX_DEPTH,
        });
    }
    Ok(())
}

/// The shape of what a job frame names: a function that runs the job's items and writes
/// their records into the sink (`remote::trampoline`, for each function adapter).
pub(crate) enum RunJob {}

impl Signature for RunJob {
    type Cx<'a> = Job<'a>;
    type Out = Result<(), Stop>;
}

/// The shape of a pool's initializer as a worker runs it: `fn()`, once, before its first
/// job (see [`remote::Initializer`]).
pub(crate) enum RunInit {}

impl Signature for RunInit {
    type Cx<'a> = ();
    type Out = ();
}

/// One job, as the function it names gets it.
pub(crate) struct Job<'a> {
    pub(crate) header: JobHeader,
    /// The job's frame, whose bytes from `payload_at` on are its items, postcard, one
    /// after the other. A job's one large byte string is taken out of it in place
    /// ([`wire::take_large`]), leaving it empty; its function may then leave in it the
    /// buffer of a large result, for the next frame to be read into ([`wire::recycle`]).
    pub(crate) frame: &'a mut Vec<u8>,
    pub(crate) payload_at: usize,
    pub(crate) sink: Sink<'a>,
    /// The call's state in this worker, when the job names one (`header.state`) and it
    /// was set up.
    pub(crate) state: Option<&'a mut StateSlot>,
}

/// The shape of what a `SETUP` frame names: a function that makes a call's state in this
/// worker (`remote::StateSpec`).
pub(crate) enum SetUp {}

impl Signature for SetUp {
    type Cx<'a> = SetUpJob<'a>;
    type Out = StateSlot;
}

/// One `SETUP`, as the function it names gets it.
pub(crate) struct SetUpJob<'a> {
    pub(crate) header: JobHeader,
    /// The shared value (`map_with`), postcard; empty for `map_init`.
    pub(crate) payload: &'a [u8],
}

/// A call's state in this worker: made once, when the worker first gets an item of the
/// call, and used by each of its items here.
pub(crate) enum StateSlot {
    /// What `init` returned, or the shared value.
    Ready(Box<dyn Any>),
    /// It could not be made: every item of the call in this worker fails with this
    /// record (`tag`, then `why` as it follows the item's copy).
    Failed { tag: u8, why: Vec<u8> },
}

impl StateSlot {
    /// Its maker panicked: each item records `tag` (`INIT_PANIC` for `init`, `PANIC`
    /// otherwise), then the panic.
    pub(crate) fn panicked(tag: u8, panic: RemotePanic) -> Self {
        let mut why = Vec::new();
        match write(&panic, &mut why) {
            Ok(()) => StateSlot::Failed { tag, why },
            Err(err) => Self::broken(&format!("its panic could not be serialized: {err}")),
        }
    }

    /// It could not be made, for the reason `why`.
    pub(crate) fn broken(why: &str) -> Self {
        let mut bytes = Vec::new();
        // A `String` always encodes.
        let _ = write(why, &mut bytes);
        StateSlot::Failed {
            tag: remote::BROKEN,
            why: bytes,
        }
    }
}

/// The states of the calls this worker serves, by state id: few (one per call running
/// here at once), so a list.
///
/// With them, the header of the last job it ran (see [`wire::verify_job_again`]).
#[derive(Default)]
pub(crate) struct States(Vec<(u64, StateSlot)>, Option<wire::LastJob<RunJob>>);

impl States {
    fn get(&mut self, id: u64) -> Option<&mut StateSlot> {
        self.0
            .iter_mut()
            .find(|(held, _)| *held == id)
            .map(|(_, slot)| slot)
    }

    /// Runs a `SETUP` frame: makes the state it names, or records why it cannot be made.
    fn set_up(&mut self, key: Key, body: &[u8]) {
        let Some(id) = wire::state_of(body).filter(|&id| id != 0) else {
            // Without an id, no job can ask for it: nothing to record.
            return;
        };
        let slot = match wire::verify_job::<SetUp>(wire::SETUP, key, body) {
            Ok((header, payload, function)) => function.call(&mut SetUpJob { header, payload }),
            Err(err) => StateSlot::broken(&format!("the call's state could not be set up: {err}")),
        };
        self.forget(&[id]);
        self.0.push((id, slot));
    }

    /// Drops the states of calls that ended (a `FORGET` frame).
    fn forget(&mut self, ids: &[u64]) {
        self.0.retain(|(held, _)| !ids.contains(held));
    }
}

/// Why a trampoline stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The job is not one this function can run.
    Refused(FrameError),
    /// The parent can no longer be written to.
    Io(io::Error),
}

impl From<FrameError> for Stop {
    fn from(err: FrameError) -> Self {
        Stop::Refused(err)
    }
}

impl From<io::Error> for Stop {
    fn from(err: io::Error) -> Self {
        Stop::Io(err)
    }
}

/// Exit status of a worker that could not serve (bad handshake, lost parent).
const EXIT_REFUSED: i32 = 101;

/// Called before `main` in every program that links twat-mp: returns at once unless this
/// process was started as a worker, and never returns if it was.
pub(crate) fn enter_if_marked() {
    // Without a marker naming our parent, this is a program (or a program that a worker
    // started, which inherited the marker): not ours to serve.
    let Some(depth) = started_as_worker() else {
        return;
    };
    DEPTH.store(depth, Ordering::Relaxed);
    let code = match std::panic::catch_unwind(serve) {
        Ok(Ok(())) => 0,
        Ok(Err(err)) => {
            // The parent is gone or sent something we cannot serve; it already got (or
            // will infer from the exit) the reason.
            if err.kind() != io::ErrorKind::BrokenPipe {
                eprintln!("twat-mp worker {}: {err}", std::process::id());
            }
            EXIT_REFUSED
        }
        Err(_) => EXIT_REFUSED,
    };
    std::process::exit(code);
}

/// Whether this process was started as a worker but reached `main` anyway: then it must
/// not start workers of its own (the pre-`main` hook did not run, and each "worker" would
/// run the whole program again). A worker that serves (and code in its items) is not one.
pub(crate) fn is_failed_worker() -> bool {
    DEPTH.load(Ordering::Relaxed) == 0 && started_as_worker().is_some()
}

fn serve() -> io::Result<()> {
    die_with_parent()?;
    // Our parent may have died before we asked to die with it.
    if started_as_worker().is_none() {
        return Ok(());
    }
    let socket = UnixStream::from(io::stdin().as_fd().try_clone_to_owned()?);
    replace_stdin(&std::fs::File::open("/dev/null")?)?;
    set_up_as_main(&socket)?;
    crate::panic_capture::mark_worker_thread();
    let mut reader = BufReader::with_capacity(1 << 16, socket.try_clone()?);
    let mut writer = socket;
    let mut body = Vec::new();
    let mut out = Vec::new();

    if !wire::read_frame(&mut reader, &mut body)? {
        return Ok(());
    }
    let (key, initializer) = match wire::decode_hello(&body) {
        Ok(hello) => hello,
        Err(err) => return refuse(&mut writer, true, &err),
    };
    wire::encode_ready(&mut out);
    writer.write_all(&out)?;
    if let Some(initializer) = initializer {
        let initializer = match initializer.resolve::<RunInit>(key) {
            Ok(initializer) => initializer,
            Err(err) => return refuse(&mut writer, true, &err),
        };
        out.clear();
        match crate::panic_capture::catch(|| initializer.call(&mut ())) {
            Ok(()) => wire::encode_initialized(&mut out),
            Err(caught) => {
                let reason = match &caught.origin {
                    Some(origin) => format!(
                        "panicked at {}: {}",
                        origin.location,
                        crate::error::panic_message(caught.payload.as_ref())
                    ),
                    None => format!(
                        "panicked: {}",
                        crate::error::panic_message(caught.payload.as_ref())
                    ),
                };
                wire::encode_init_failed(&mut out, &reason);
                writer.write_all(&out)?;
                // The parent reports it; this worker serves nothing.
                return Ok(());
            }
        }
        writer.write_all(&out)?;
    }

    // Dropped when the worker stops serving (its parent closed its input), so that a
    // state's `Drop` runs (a connection closed cleanly) before the process exits.
    let mut states = States::default();
    loop {
        match wire::read_frame(&mut reader, &mut body) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::InvalidData => {
                return refuse(&mut writer, true, &err);
            }
            Err(err) => return Err(err),
        }
        serve_frame(key, &mut body, &mut writer, &mut states)?;
        if body.first() == Some(&wire::SETUP) && body.capacity() > 1 << 20 {
            // A large shared value: its bytes are not kept twice.
            body = Vec::new();
        }
    }
}

/// Serves one frame from the parent: `SETUP` and `FORGET` (no answer), or a job (its
/// answer written to `writer`).
fn serve_frame(
    key: Key,
    body: &mut Vec<u8>,
    writer: &mut dyn Write,
    states: &mut States,
) -> io::Result<()> {
    match body[0] {
        wire::SETUP => states.set_up(key, body),
        wire::FORGET => match wire::decode_forget(body) {
            Ok(ids) => states.forget(&ids),
            Err(err) => return refuse(writer, true, &err),
        },
        _ => run_job(key, body, writer, states)?,
    }
    Ok(())
}

/// Serves one message of a worker reached by messages (an `MpiPool`'s rank or local
/// thread, see `slot::MessageWorker`): its frames one after the other, as a worker
/// process serves its stream, the answers (to a job) appended to `answer`. A malformed
/// message is answered with a `REFUSED` frame.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) fn serve_message(key: Key, message: &[u8], states: &mut States, answer: &mut Vec<u8>) {
    let mut reader = message;
    let mut body = Vec::new();
    loop {
        match wire::read_frame(&mut reader, &mut body) {
            Ok(true) => {}
            Ok(false) => return,
            Err(err) => {
                let _ = refuse(answer, true, &err);
                return;
            }
        }
        // Writing into a `Vec` cannot fail; a refused frame is answered as `REFUSED`.
        if serve_frame(key, &mut body, answer, states).is_err() {
            return;
        }
    }
}

/// How a worker that overflows its stack dies, as the parent reports it.
pub(crate) const OVERFLOWED: &str = "overflowed its stack";

/// Takes the steps of std's start-up that a worker, entered before `main`, would miss and
/// that code in a thread relies on: SIGPIPE ignored (a write to a closed pipe is an
/// `io::Error`), and a stack overflow of the thread running the items reported as std
/// reports it (its message on stderr, then an abort), with the parent told first, over
/// `socket`, so that the item's error says so.
fn set_up_as_main(socket: &UnixStream) -> io::Result<()> {
    ignore_sigpipe()?;
    let mut last_words = Vec::new();
    wire::encode_dying(&mut last_words, OVERFLOWED);
    report_stack_overflow(socket.try_clone()?.into(), last_words)
}

/// Runs one job frame, answering `RESULTS…DONE` or `REFUSED`. The job may take its
/// large item out of `body` and leave another buffer there (see [`Job::frame`]).
pub(crate) fn run_job(
    key: Key,
    body: &mut Vec<u8>,
    writer: &mut dyn Write,
    states: &mut States,
) -> io::Result<()> {
    let (header, payload_at, function) = match wire::verify_job_again(key, body, &mut states.1) {
        // The items are the frame's last bytes.
        Ok((header, payload, function)) => (header, body.len() - payload.len(), function),
        Err(err) => return refuse(writer, false, &err),
    };
    let mut sink =
        Sink::new(writer, header.flags & FLUSH_EACH != 0).timed(header.flags & TIMED != 0);
    if header.count == 1 {
        // Its one record is sent at the job's end, right after the item: no clock read
        // to decide whether to send it earlier.
        sink.until_check = u32::MAX;
    }
    let state = match header.state {
        0 => None,
        id => states.get(id),
    };
    let mut job = Job {
        header,
        frame: body,
        payload_at,
        sink,
        state,
    };
    let outcome = function.call(&mut job);
    let sink = job.sink;
    match outcome {
        Ok(()) => sink.finish(),
        Err(Stop::Io(err)) => Err(err),
        Err(Stop::Refused(err)) if sink.sent == 0 && sink.count == 0 => {
            refuse(sink.writer, false, &err)
        }
        // Refusing after results were sent would confuse the parent: end the job; the
        // parent reports the items it got no answer for.
        Err(Stop::Refused(_)) => sink.finish(),
    }
}

fn refuse(writer: &mut dyn Write, fatal: bool, err: &dyn std::fmt::Display) -> io::Result<()> {
    let mut out = Vec::new();
    wire::encode_refused(&mut out, fatal, &err.to_string());
    writer.write_all(&out)?;
    if fatal {
        Err(io::Error::new(io::ErrorKind::InvalidData, err.to_string()))
    } else {
        Ok(())
    }
}

/// Collects the records of a job and sends them in `RESULTS` frames: at the end of the
/// job, after each item when asked to (`FLUSH_EACH`), and otherwise whenever about a
/// millisecond has passed since the last send — so that slow items reach the parent at
/// once (and are not run again if the worker dies later) while trivial ones go in bulk.
pub(crate) struct Sink<'a> {
    writer: &'a mut dyn Write,
    out: Vec<u8>,
    frame: usize,
    count: u32,
    sent: u32,
    flush_each: bool,
    last_flush: Instant,
    last_check: Instant,
    stride: u32,
    until_check: u32,
    /// With `TIMED`: each record's item time in nanoseconds, sent after the records, and
    /// when the item being run began (the previous one's end, or the last send).
    timings: Option<Vec<u64>>,
    mark: Instant,
}

const FLUSH_AFTER: Duration = Duration::from_millis(1);
const FLUSH_BYTES: usize = 1 << 20;
/// The largest record a frame gets: a result takes at most `MAX_ITEM`, and a failure's
/// copy of its item as much again only with a short error, so that a frame of earlier
/// records (under `FLUSH_BYTES`) and this one stays under `MAX_FRAME`.
const MAX_RECORD: usize = wire::MAX_ITEM + (1 << 20);
const _: () = assert!(FLUSH_BYTES + MAX_RECORD + 64 <= wire::MAX_FRAME);

impl<'a> Sink<'a> {
    pub(crate) fn new(writer: &'a mut dyn Write, flush_each: bool) -> Self {
        let now = Instant::now();
        let mut sink = Sink {
            writer,
            out: Vec::with_capacity(1 << 16),
            frame: 0,
            count: 0,
            sent: 0,
            flush_each,
            last_flush: now,
            last_check: now,
            stride: 1,
            until_check: 1,
            timings: None,
            mark: now,
        };
        sink.begin();
        sink
    }

    /// Times each item (`TIMED`): from the end of the previous one (or of the last send)
    /// to its record, one clock read per item.
    pub(crate) fn timed(mut self, timed: bool) -> Self {
        // `mark` is the sink's start: one clock read fewer per job.
        self.timings = timed.then(Vec::new);
        self
    }

    /// The bytes of the frame being made, the item times included.
    #[inline]
    fn pending_bytes(&self) -> usize {
        self.out.len() + self.timings.as_ref().map_or(0, |t| 8 * t.len())
    }

    fn begin(&mut self) {
        self.out.clear();
        self.frame = wire::begin_frame(&mut self.out, wire::RESULTS);
        self.out.extend_from_slice(&[0; 4]);
        self.count = 0;
        if let Some(timings) = &mut self.timings {
            timings.clear();
        }
    }

    pub(crate) fn record_ok<R: serde::Serialize + 'static>(&mut self, value: &R) -> io::Result<()> {
        self.out.push(remote::OK);
        match wire::write_item_unless_large(value, &mut self.out) {
            Ok(true) => self.item_done(),
            Ok(false) => self.record_large(value),
            Err(err) => self.record_unencodable(&err),
        }
    }

    /// Detected before anything of the result is sent (its `OK` tag is the last byte of
    /// the frame): that item alone fails.
    fn record_unencodable(&mut self, err: &wire::Unencodable) -> io::Result<()> {
        self.out.pop();
        let why = err.describe("the result");
        self.record_failure(remote::BROKEN, &[], |out| write(&why, out))
    }

    /// A result that holds a large byte string (see [`wire::LARGE`]), after its `OK` tag:
    /// sent at once, in one frame with the records before it, the large piece written
    /// from the value itself instead of copied into the frame's buffer (a fresh buffer
    /// as large as the result, whose page faults cost more than the copy). A result of
    /// that size would have been sent at once anyway (`FLUSH_BYTES`).
    fn record_large<R: serde::Serialize + 'static>(&mut self, value: &R) -> io::Result<()> {
        let size = match wire::encoded_size(value) {
            Ok(size) if size <= wire::MAX_ITEM => size,
            Ok(_) => return self.record_unencodable(&wire::Unencodable::TooLarge),
            Err(err) => return self.record_unencodable(&err),
        };
        self.tally();
        let times = self.timings.as_ref().map_or(0, |t| 8 * t.len());
        let body = self.out.len() - self.frame - 4 + size + times;
        let body = u32::try_from(body).expect("a frame stays under 4 GiB");
        self.out[self.frame..self.frame + 4].copy_from_slice(&body.to_le_bytes());
        let at = self.frame + 5;
        self.out[at..at + 4].copy_from_slice(&self.count.to_le_bytes());
        wire::stream_item(value, size, &mut self.out, &mut *self.writer)?;
        self.push_timings();
        self.writer.write_all(&self.out)?;
        self.sent_frame();
        Ok(())
    }

    /// A failure record: `tag`, the item's bytes, then what `encode` writes.
    pub(crate) fn record_failure(
        &mut self,
        tag: u8,
        input: &[u8],
        encode: impl FnOnce(&mut Vec<u8>) -> postcard::Result<()>,
    ) -> io::Result<()> {
        self.record_failure_of(tag, Some(input), encode)
    }

    /// [`record_failure`](Self::record_failure), where `input` is `None` for an item taken
    /// out of its frame ([`wire::take_large`]): the worker has no copy of it left, so the
    /// record says that the parent's copy is the one to show ([`remote::INPUT_KEPT`],
    /// which the slot replaces with that copy).
    pub(crate) fn record_failure_of(
        &mut self,
        tag: u8,
        input: Option<&[u8]>,
        encode: impl FnOnce(&mut Vec<u8>) -> postcard::Result<()>,
    ) -> io::Result<()> {
        let (len, input) = match input {
            Some(input) => {
                let len = u32::try_from(input.len()).unwrap_or(0);
                (len, &input[..len as usize])
            }
            None => (remote::INPUT_KEPT, &[][..]),
        };
        let mark = self.out.len();
        self.out.push(tag);
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(input);
        if let Err(err) = encode(&mut self.out) {
            self.out.truncate(mark);
            let why = format!("the error could not be serialized: {err}");
            self.out.push(remote::BROKEN);
            self.out.extend_from_slice(&0_u32.to_le_bytes());
            write(&why, &mut self.out).map_err(io::Error::other)?;
        }
        if self.out.len() - mark > MAX_RECORD {
            self.shrink_record(mark, 5 + input.len())?;
        }
        self.item_done()
    }

    /// Makes the failure record from `mark` on, too large to send, fit: without the item's
    /// copy (`input_end` bytes from `mark` end it, the tag included), or else a `BROKEN`
    /// record saying why.
    fn shrink_record(&mut self, mark: usize, input_end: usize) -> io::Result<()> {
        let error_len = self.out.len() - mark - input_end;
        if error_len <= MAX_RECORD - 5 {
            self.out.drain(mark + 5..mark + input_end);
            self.out[mark + 1..mark + 5].copy_from_slice(&0_u32.to_le_bytes());
        } else {
            self.out.truncate(mark);
            self.out.shrink_to(mark.max(1 << 16));
            let why = wire::Unencodable::TooLarge.describe("the item's error");
            self.out.push(remote::BROKEN);
            self.out.extend_from_slice(&0_u32.to_le_bytes());
            write(&why, &mut self.out).map_err(io::Error::other)?;
        }
        Ok(())
    }

    /// Counts the record just made, and with `TIMED` its item's time.
    #[inline]
    fn tally(&mut self) {
        self.count += 1;
        if let Some(timings) = &mut self.timings {
            let now = Instant::now();
            let took = now.saturating_duration_since(self.mark);
            timings.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
            self.mark = now;
        }
    }

    #[inline]
    fn item_done(&mut self) -> io::Result<()> {
        self.tally();
        if self.flush_each || self.pending_bytes() >= FLUSH_BYTES {
            return self.flush();
        }
        self.until_check -= 1;
        if self.until_check == 0 {
            let now = Instant::now();
            // Items that come fast are checked on less often, so that reading the clock
            // costs nothing next to them; slow ones after every item.
            self.stride = if now - self.last_check < Duration::from_micros(50) {
                (self.stride * 2).min(4096)
            } else {
                1
            };
            self.until_check = self.stride;
            self.last_check = now;
            if now - self.last_flush >= FLUSH_AFTER {
                return self.flush();
            }
        }
        Ok(())
    }

    /// Appends the items' times, when they are recorded, after the records.
    fn push_timings(&mut self) {
        if let Some(timings) = &self.timings {
            for nanos in timings {
                self.out.extend_from_slice(&nanos.to_le_bytes());
            }
        }
    }

    /// What follows a frame written in full: its items count as sent, and a new frame
    /// begins.
    fn sent_frame(&mut self) {
        self.sent += self.count;
        self.last_flush = Instant::now();
        // Sending is not the next item's time.
        self.mark = self.last_flush;
        self.begin();
    }

    fn seal(&mut self) {
        self.push_timings();
        wire::end_frame(&mut self.out, self.frame);
        let at = self.frame + 5;
        self.out[at..at + 4].copy_from_slice(&self.count.to_le_bytes());
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.count > 0 {
            self.seal();
            self.writer.write_all(&self.out)?;
            self.sent_frame();
        }
        Ok(())
    }

    /// Sends what is left and `DONE`, in one write.
    fn finish(mut self) -> io::Result<()> {
        if self.count > 0 {
            self.seal();
        } else {
            self.out.clear();
        }
        let done = wire::begin_frame(&mut self.out, wire::DONE);
        wire::end_frame(&mut self.out, done);
        self.writer.write_all(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::remote::{Plain, RemoteFn, decode_records, function_id};
    use crate::process::wire::{FunctionId, encode_job_header};

    type Id = FunctionId<RunJob>;

    fn triple(x: u64) -> u64 {
        x * 3
    }

    fn job_frame<A: RemoteFn>(key: Key, function: Id, items: &[A::In]) -> Vec<u8> {
        let mut payload = Vec::new();
        for item in items {
            write(item, &mut payload).unwrap();
        }
        let header = JobHeader {
            fingerprint: function.fingerprint,
            flags: 0,
            count: u32::try_from(items.len()).unwrap(),
            state: 0,
        };
        let mut frame = encode_job_header(wire::JOB, key, function.entry, &header, payload.len());
        frame.extend_from_slice(&payload);
        frame.split_off(4)
    }

    /// The frames a worker answers, as (kind, body) pairs.
    fn answers(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        let mut body = Vec::new();
        while wire::read_frame(&mut bytes, &mut body).unwrap() {
            frames.push((body[0], body.clone()));
        }
        frames
    }

    #[test]
    fn a_job_runs_in_process_through_its_trampoline() {
        type A = Plain<u64, u64>;
        let f = Plain::<u64, u64>::new(triple);
        let function = function_of(f);
        let key = Key::random();
        let body = job_frame::<A>(key, function, &[1, 2, 3]);
        let mut out = Vec::new();
        run_job(key, &mut body.clone(), &mut out, &mut States::default()).unwrap();
        let frames = answers(&out);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].0, wire::RESULTS);
        assert_eq!(frames[1].0, wire::DONE);
        let records = &frames[0].1[5..];
        let decoded = decode_with(f, records, 3);
        assert_eq!(decoded, [3, 6, 9]);
    }

    fn function_of<A: RemoteFn>(f: A) -> Id {
        function_id(f).unwrap()
    }

    fn decode_with<A: RemoteFn>(_: A, records: &[u8], count: usize) -> Vec<A::Out> {
        let decoded = decode_records::<A>(records, 0, count, (0, None), None);
        assert!(decoded.failures.is_empty());
        decoded.values
    }

    fn refusal(out: &[u8]) -> String {
        let frames = answers(out);
        assert_eq!(frames.len(), 1, "one REFUSED frame");
        let (fatal, reason) = wire::decode_refused(&frames[0].1).unwrap();
        assert!(!fatal);
        reason
    }

    #[test]
    fn an_unknown_function_is_refused() {
        let f = Plain::<u64, u64>::new(triple);
        let function = function_of(f);
        let key = Key::random();
        // Tagged with another key: not a function this pool sent.
        let body = job_frame::<Plain<u64, u64>>(Key::random(), function, &[1]);
        let mut out = Vec::new();
        run_job(key, &mut body.clone(), &mut out, &mut States::default()).unwrap();
        assert!(refusal(&out).starts_with("unknown function"));
        // Another offset under the tag of this one. (A valid tag for an offset outside the
        // code cannot be made: `unsafe_code`'s tests check that refusal.)
        let mut body = job_frame::<Plain<u64, u64>>(key, function, &[1]);
        body[1] ^= 0x10;
        out.clear();
        run_job(key, &mut body.clone(), &mut out, &mut States::default()).unwrap();
        assert!(refusal(&out).starts_with("unknown function"));
    }

    #[test]
    fn a_type_mismatch_is_refused_before_anything_is_decoded() {
        let f = Plain::<u64, u64>::new(triple);
        let other = Plain::<String, usize>::new(|s| s.len());
        let mut function = function_of(f);
        function.fingerprint = function_of(other).fingerprint;
        let key = Key::random();
        let body = job_frame::<Plain<u64, u64>>(key, function, &[1]);
        let mut out = Vec::new();
        run_job(key, &mut body.clone(), &mut out, &mut States::default()).unwrap();
        assert!(refusal(&out).starts_with("type mismatch"));
    }

    #[test]
    fn a_malformed_job_is_refused() {
        let key = Key::random();
        let mut out = Vec::new();
        run_job(
            key,
            &mut vec![wire::JOB, 1, 2],
            &mut out,
            &mut States::default(),
        )
        .unwrap();
        assert!(refusal(&out).starts_with("malformed frame: truncated"));
        out.clear();
        run_job(
            key,
            &mut vec![wire::HELLO],
            &mut out,
            &mut States::default(),
        )
        .unwrap();
        assert!(refusal(&out).starts_with("malformed frame: expected a job"));
    }

    #[test]
    fn undecodable_items_fail_without_running() {
        let f = Plain::<String, usize>::new(|s| s.len());
        let function = function_of(f);
        let key = Key::random();
        let payload = [0xff, 0xff, 0xff]; // not a postcard string
        let header = JobHeader {
            fingerprint: function.fingerprint,
            flags: 0,
            count: 2,
            state: 0,
        };
        let mut frame = encode_job_header(wire::JOB, key, function.entry, &header, payload.len());
        frame.extend_from_slice(&payload);
        let mut out = Vec::new();
        run_job(
            key,
            &mut frame[4..].to_vec(),
            &mut out,
            &mut States::default(),
        )
        .unwrap();
        let frames = answers(&out);
        let decoded =
            decode_records::<Plain<String, usize>>(&frames[0].1[5..], 0, 2, (0, None), None);
        assert_eq!(decoded.failures.len(), 2);
    }

    fn flipped(mut bytes: Vec<u8>) -> Vec<u8> {
        assert!(bytes[0] != 0, "a zero first");
        bytes.reverse();
        bytes
    }

    #[test]
    fn a_large_item_alone_in_its_job_is_taken_out_of_its_frame() {
        type A = Plain<Vec<u8>, Vec<u8>>;
        let f = A::new(flipped);
        let function = function_of(f);
        let key = Key::random();
        let item: Vec<u8> = (0..wire::LARGE + 7).map(|i| (i % 251) as u8 + 1).collect();
        let mut body = job_frame::<A>(key, function, std::slice::from_ref(&item));
        let mut out = Vec::new();
        run_job(key, &mut body, &mut out, &mut States::default()).unwrap();
        // The frame gave its memory to the item, and the result's buffer is left for the
        // next frame.
        assert!(body.is_empty());
        assert!(body.capacity() >= wire::LARGE);
        let frames = answers(&out);
        assert_eq!(frames[0].0, wire::RESULTS);
        let decoded = decode_with(f, &frames[0].1[5..], 1);
        assert!(decoded[0].iter().rev().eq(item.iter()));

        // A failure: the worker has no copy to send back; the parent puts its own in.
        let mut failing = item.clone();
        failing[0] = 0;
        let mut body = job_frame::<A>(key, function, std::slice::from_ref(&failing));
        out.clear();
        run_job(key, &mut body, &mut out, &mut States::default()).unwrap();
        let mut results = answers(&out)[0].1.clone();
        assert!(results.len() < 1 << 16, "no copy of the item came back");
        let input_of = |results: &[u8]| {
            let decoded = decode_records::<A>(&results[5..], 0, 1, (0, None), None);
            assert_eq!(decoded.failures.len(), 1);
            match &decoded.failures[0].1 {
                crate::engine::item::ItemFailure::Worker(err) => err.input().map(str::to_owned),
                crate::engine::item::ItemFailure::Returned { input, .. } => input.clone(),
            }
        };
        assert_eq!(input_of(&results), None);
        remote::restore_input(&mut results, &postcard::to_stdvec(&failing).unwrap());
        let shown = input_of(&results).unwrap();
        assert!(shown.starts_with("[0,2,3,"), "{shown}");

        // Just below the threshold, the item is decoded from the frame as always.
        let small = &item[..wire::LARGE - 1];
        let mut body = job_frame::<A>(key, function, &[small.to_vec()]);
        let kept = body.clone();
        out.clear();
        run_job(key, &mut body, &mut out, &mut States::default()).unwrap();
        assert_eq!(body, kept);
        let decoded = decode_with(f, &answers(&out)[0].1[5..], 1);
        assert!(decoded[0].iter().rev().eq(small.iter()));
    }
}
