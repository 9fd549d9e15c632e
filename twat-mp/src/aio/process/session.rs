//! What runs in a worker process of [`AsyncProcessPool`](super::AsyncProcessPool): a
//! *session*, one item of the underlying [`ProcessPool`](crate::ProcessPool) that keeps
//! its worker for one call. The session connects back to the call over a socket of its
//! own, takes items from it one at a time while it runs, runs each as a task of the worker
//! process's tokio runtime the moment it arrives, and sends each task's answer as soon as
//! the task is done.
//!
//! Each task's timeout runs from its first poll. A task that blocks its thread past its
//! deadline cannot be stopped at an `.await`: a watchdog thread of the worker process
//! reports it ([`STUCK`]) at its deadline, and the call then kills the worker; the
//! worker's other tasks run again elsewhere.

use std::convert::Infallible;
use std::future::Future;
use std::io::{self, BufReader, Write};
use std::marker::PhantomData;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::panic_capture::{self, RemotePanic};
use crate::process::CrossProcess;
use crate::process::remote::{Callee, ErrorWire, NoError, RemoteFn, Split};
use crate::process::wire;

/// Worker → call, first frame: the session's key, the worker's pid and how many tasks the
/// worker process ran before this session.
pub(super) const HELLO: u8 = 31;
/// Call → worker: one item, its index in the call, then its postcard bytes.
pub(super) const ITEM: u8 = 32;
/// Worker → call: one item's [`Answer`], after its index, the nanoseconds its task took
/// (first poll to end) and the nanoseconds the session had some task running since its
/// previous answer (for insights; both `u64` LE).
pub(super) const ANSWER: u8 = 33;
/// Worker → call: the task of this index blocks its thread past its deadline (the timeout
/// in nanoseconds follows); kill the worker.
pub(super) const STUCK: u8 = 34;

/// How long past its deadline a task that blocks its thread gets before it is reported.
const GRACE: Duration = Duration::from_millis(10);

/// What crosses to the worker to start a session.
#[derive(Serialize, Deserialize)]
pub(super) struct SessionStart {
    /// The abstract socket name the call listens on.
    pub(super) name: Vec<u8>,
    /// What the worker says first, so that the call knows the connection is its session's.
    pub(super) key: (u64, u64),
    pub(super) timeout: Option<Duration>,
}

/// One item's answer from a worker process.
#[derive(Serialize, Deserialize)]
pub(super) enum Answer<R> {
    Done(R),
    /// The function's own error, encoded as its [`ErrorWire`] says.
    Returned(Vec<u8>),
    Panicked(RemotePanic),
    TimedOut(Duration),
    /// The function's error could not be encoded.
    Unsendable(String),
    /// The item or its result could not cross, in words.
    Broken(String),
}

/// The variant index postcard writes for [`Answer::Done`] (its first).
const DONE: u8 = 0;

impl<R: CrossProcess> Answer<R> {
    /// Appends the answer in postcard to `out`: a result through [`wire::write_item`]
    /// (integers and byte strings without serde's path, the same bytes), anything else
    /// through serde. On error `out` is left as it was.
    fn write(&self, out: &mut Vec<u8>) -> Result<(), wire::Unencodable> {
        let Answer::Done(value) = self else {
            return wire::write_bounded(self, out);
        };
        let mark = out.len();
        out.push(DONE);
        wire::write_item(value, out).inspect_err(|_| out.truncate(mark))
    }

    /// Reads an answer that [`Answer::write`] wrote: a result through
    /// [`wire::take_item`], anything else through serde.
    pub(super) fn read(bytes: &[u8]) -> postcard::Result<Self> {
        match bytes.split_first() {
            Some((&DONE, value)) => {
                wire::take_item::<R>(value).map(|(value, _)| Answer::Done(value))
            }
            _ => postcard::from_bytes(bytes),
        }
    }
}

/// Tasks this worker process started in its life (what `maxtasksperchild` bounds).
static TASKS_STARTED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The worker process's runtime, built on its first session.
    static RUNTIME: std::cell::OnceCell<tokio::runtime::Runtime> = const { std::cell::OnceCell::new() };
}

/// Writes whole frames to the call; shared by the tasks and the watchdog.
type Writer = Arc<Mutex<UnixStream>>;

/// The time a session had at least one task running (its tasks overlap), kept on the
/// session's one thread and reported with each answer.
#[derive(Default)]
struct Busy {
    running: std::cell::Cell<usize>,
    /// Since when the busy time is not reported yet, while a task runs.
    since: std::cell::Cell<Option<Instant>>,
}

impl Busy {
    fn start(&self, now: Instant) {
        if self.running.get() == 0 {
            self.since.set(Some(now));
        }
        self.running.set(self.running.get() + 1);
    }

    /// A task ended at `now`: the busy time to report with its answer, so that each
    /// moment with a task running is reported once.
    fn end(&self, now: Instant) -> Duration {
        self.running.set(self.running.get().saturating_sub(1));
        let busy = self
            .since
            .get()
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        // A task still running counts on from here, in a later answer.
        self.since.set((self.running.get() > 0).then_some(now));
        busy
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn send_frame(writer: &Writer, frame: &[u8]) {
    // A call that is gone no longer needs the answer; the session ends with its input.
    let _ = lock(writer).write_all(frame);
}

/// Runs one session in a worker process with the function `f` and the session's state
/// (`map_init`, `map_with`: made in this worker before the session started, and dropped
/// after it); `Some(why)` when it could not reach its call.
fn run_session<P, T, K, W>(f: P, state: &mut P::State, start: SessionStart) -> Option<String>
where
    P: Callee<T>,
    P::Output: Future + 'static,
    T: CrossProcess,
    K: Split<<P::Output as Future>::Output>,
    K::Ok: CrossProcess,
    W: ErrorWire<K::Err>,
{
    let connect = || -> io::Result<UnixStream> {
        let address = SocketAddr::from_abstract_name(&start.name)?;
        let mut stream = UnixStream::connect_addr(&address)?;
        let mut hello = Vec::with_capacity(40);
        let frame = wire::begin_frame(&mut hello, HELLO);
        hello.extend_from_slice(&start.key.0.to_le_bytes());
        hello.extend_from_slice(&start.key.1.to_le_bytes());
        hello.extend_from_slice(&std::process::id().to_le_bytes());
        hello.extend_from_slice(&TASKS_STARTED.load(Ordering::Relaxed).to_le_bytes());
        wire::end_frame(&mut hello, frame);
        stream.write_all(&hello)?;
        Ok(stream)
    };
    let stream = match connect() {
        Ok(stream) => stream,
        Err(err) => return Some(format!("the worker could not reach its call: {err}")),
    };
    let reader = match stream.try_clone() {
        Ok(reader) => reader,
        Err(err) => return Some(format!("the worker could not read from its call: {err}")),
    };
    let writer: Writer = Arc::new(Mutex::new(stream));
    let (items, mut incoming) = tokio::sync::mpsc::unbounded_channel::<(u64, Vec<u8>)>();
    // Items arrive while tasks run: a thread reads them, so that a task blocking the
    // runtime's thread does not keep the call from sending.
    let receiving = std::thread::Builder::new()
        .name("twat-mp-session".into())
        .spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 16, reader);
            let mut body = Vec::new();
            while let Ok(true) = wire::read_frame(&mut reader, &mut body) {
                if body.len() < 9 || body[0] != ITEM {
                    break;
                }
                let index = u64::from_le_bytes(body[1..9].try_into().expect("8 bytes"));
                // A large item is not copied: the frame's buffer becomes the item's.
                let item = if body.len() - 9 >= wire::LARGE {
                    wire::moved_down(&mut body, 9)
                } else {
                    body[9..].to_vec()
                };
                if items.send((index, item)).is_err() {
                    break;
                }
            }
        });
    if let Err(err) = receiving {
        return Some(format!("the worker could not start a thread: {err}"));
    }
    let watchdog = start.timeout.map(|_| watchdog());
    let timeout = start.timeout;
    RUNTIME.with(|runtime| {
        let runtime = runtime.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_start(panic_capture::mark_worker_thread)
                .build()
                .expect("a worker process builds its tokio runtime")
        });
        let local = tokio::task::LocalSet::new();
        local.block_on(runtime, async move {
            let mut tasks = tokio::task::JoinSet::new();
            let busy = std::rc::Rc::new(Busy::default());
            let mut open = true;
            loop {
                tokio::select! {
                    item = incoming.recv(), if open => match item {
                        Some((index, mut bytes)) => {
                            TASKS_STARTED.fetch_add(1, Ordering::Relaxed);
                            let task = Task {
                                index,
                                writer: Arc::clone(&writer),
                                watchdog: watchdog.clone(),
                                timeout,
                                busy: std::rc::Rc::clone(&busy),
                            };
                            // `f` makes the task's future here, with the state; the
                            // future owns what it needs of it (it is `'static`), so the
                            // tasks of the session run at once.
                            let started = match wire::take_owned_item::<T>(&mut bytes) {
                                Err(err) => Err(Answer::Broken(format!(
                                    "the item could not be decoded in the worker: {err}"
                                ))),
                                Ok(item) => panic_capture::catch(|| f.call(&mut *state, item))
                                    .map_err(|caught| Answer::Panicked(RemotePanic::new(caught))),
                            };
                            tasks.spawn_local(task.run::<P::Output, K, W>(started));
                        }
                        None => open = false,
                    },
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                    else => break,
                }
            }
        });
    });
    None
}

/// One task of a session: where its answer goes, and who watches it.
struct Task {
    index: u64,
    writer: Writer,
    watchdog: Option<Arc<Watchdog>>,
    timeout: Option<Duration>,
    busy: std::rc::Rc<Busy>,
}

impl Task {
    /// Runs the future `f` made for the item (or answers why it could not be made).
    async fn run<Fut, K, W>(self, started: Result<Fut, Answer<K::Ok>>)
    where
        Fut: Future,
        K: Split<Fut::Output>,
        K::Ok: CrossProcess,
        W: ErrorWire<K::Err>,
    {
        let started_at = Instant::now();
        self.busy.start(started_at);
        let answer = match started {
            Err(answer) => answer,
            Ok(future) => {
                let guarded = Guarded {
                    future: std::pin::pin!(future),
                    index: self.index,
                    timeout: self.timeout,
                    deadline: None,
                    sleep: None,
                    watchdog: self.watchdog.as_deref(),
                    writer: &self.writer,
                };
                match guarded.await {
                    // The watchdog reported it stuck: the worker is killed next.
                    None => {
                        let _ = self.busy.end(Instant::now());
                        return;
                    }
                    Some(Err(caught)) => Answer::Panicked(RemotePanic::new(caught)),
                    Some(Ok(None)) => Answer::TimedOut(self.timeout.unwrap_or_default()),
                    Some(Ok(Some(output))) => match K::split(output) {
                        Ok(value) => Answer::Done(value),
                        Err(error) => {
                            let mut bytes = Vec::new();
                            match W::encode(error, &mut bytes) {
                                Ok(()) => Answer::Returned(bytes),
                                Err(err) => Answer::Unsendable(err.to_string()),
                            }
                        }
                    },
                }
            }
        };
        let now = Instant::now();
        let busy = self.busy.end(now);
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let mut frame = Vec::new();
        let start = wire::begin_frame(&mut frame, ANSWER);
        frame.extend_from_slice(&self.index.to_le_bytes());
        frame.extend_from_slice(&nanos(now - started_at).to_le_bytes());
        frame.extend_from_slice(&nanos(busy).to_le_bytes());
        if let Err(err) = answer.write(&mut frame) {
            let broken: Answer<K::Ok> = Answer::Broken(err.describe("the result"));
            wire::write_bounded(&broken, &mut frame).expect("a short message encodes");
        }
        wire::end_frame(&mut frame, start);
        send_frame(&self.writer, &frame);
    }
}

/// A task's future with its panics caught and its deadline kept, from its first poll.
/// `None` when the watchdog took it; `Ok(None)` when it timed out at an `.await`.
struct Guarded<'a, F> {
    future: Pin<&'a mut F>,
    index: u64,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    watchdog: Option<&'a Watchdog>,
    writer: &'a Writer,
}

impl<F: Future> Future for Guarded<'_, F> {
    type Output = Option<Result<Option<F::Output>, panic_capture::CaughtPanic>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let deadline = match (this.timeout, this.deadline) {
            (None, _) => None,
            (Some(_), Some(deadline)) => Some(deadline),
            (Some(after), None) => {
                let deadline = Instant::now().checked_add(after);
                this.deadline = deadline;
                this.sleep = deadline.map(|at| Box::pin(tokio::time::sleep_until(at.into())));
                deadline
            }
        };
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Poll::Ready(Some(Ok(None)));
        }
        let watched = match (this.watchdog, deadline) {
            (Some(watchdog), Some(deadline)) => {
                watchdog.enter(Polling {
                    index: this.index,
                    deadline,
                    after: this.timeout.unwrap_or_default(),
                    writer: Arc::clone(this.writer),
                    reported: false,
                });
                Some(watchdog)
            }
            _ => None,
        };
        let polled = panic_capture::catch(|| this.future.as_mut().poll(cx));
        if watched.is_some_and(Watchdog::leave) {
            return Poll::Ready(None);
        }
        match polled {
            Ok(Poll::Ready(output)) => Poll::Ready(Some(Ok(Some(output)))),
            Err(caught) => Poll::Ready(Some(Err(caught))),
            Ok(Poll::Pending) => {
                let expired = this
                    .sleep
                    .as_mut()
                    .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Some(Ok(None)))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

/// The poll in progress of a task with a deadline.
struct Polling {
    index: u64,
    deadline: Instant,
    after: Duration,
    writer: Writer,
    /// The watchdog reported it stuck.
    reported: bool,
}

/// The worker process's watchdog: a thread that reports a task whose poll runs past its
/// deadline (it blocks its thread, so nothing else in the process can stop it).
struct Watchdog {
    polling: Mutex<Watched>,
    wake: Condvar,
}

#[derive(Default)]
struct Watched {
    now: Option<Polling>,
    /// The watchdog waits with no deadline to come back at: a new poll must wake it.
    idle: bool,
}

impl Watchdog {
    fn enter(&self, polling: Polling) {
        let mut watched = lock(&self.polling);
        watched.now = Some(polling);
        if std::mem::take(&mut watched.idle) {
            self.wake.notify_one();
        }
    }

    /// Ends the poll; whether the watchdog reported it meanwhile.
    fn leave(&self) -> bool {
        lock(&self.polling).now.take().is_some_and(|p| p.reported)
    }

    fn watch(&self) {
        let mut watched = lock(&self.polling);
        loop {
            let fire_at = match &watched.now {
                Some(polling) if !polling.reported => polling.deadline.checked_add(GRACE),
                _ => None,
            };
            let Some(fire_at) = fire_at else {
                watched.idle = true;
                watched = self.wake.wait(watched).unwrap_or_else(|p| p.into_inner());
                continue;
            };
            let now = Instant::now();
            if now < fire_at {
                // Polls that begin meanwhile are seen when this wait ends; a later
                // deadline then sets the next one.
                watched = self
                    .wake
                    .wait_timeout(watched, fire_at - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            let polling = watched.now.as_mut().expect("a poll is in progress");
            polling.reported = true;
            let mut frame = Vec::with_capacity(24);
            let start = wire::begin_frame(&mut frame, STUCK);
            frame.extend_from_slice(&polling.index.to_le_bytes());
            let nanos = u64::try_from(polling.after.as_nanos()).unwrap_or(u64::MAX);
            frame.extend_from_slice(&nanos.to_le_bytes());
            wire::end_frame(&mut frame, start);
            send_frame(&polling.writer, &frame);
        }
    }
}

/// The worker process's watchdog, started on first use.
fn watchdog() -> Arc<Watchdog> {
    static WATCHDOG: OnceLock<Arc<Watchdog>> = OnceLock::new();
    Arc::clone(WATCHDOG.get_or_init(|| {
        let watchdog = Arc::new(Watchdog {
            polling: Mutex::new(Watched::default()),
            wake: Condvar::new(),
        });
        let watching = Arc::clone(&watchdog);
        // Without the thread, blocked tasks are stopped by nothing but the call's drop.
        let _ = std::thread::Builder::new()
            .name("twat-mp-watchdog".into())
            .spawn(move || watching.watch());
        watchdog
    }))
}

/// The session runner for the async function `P`, as the underlying process pool runs it:
/// one item of that pool is a whole session. The user's function pointer is what crosses.
pub(super) struct Sessions<P, T, K, W> {
    f: P,
    types: PhantomData<fn(T) -> (K, W)>,
}

impl<P: Copy, T, K, W> Clone for Sessions<P, T, K, W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Copy, T, K, W> Copy for Sessions<P, T, K, W> {}

impl<P, T, K, W> Sessions<P, T, K, W> {
    pub(super) fn new(f: P) -> Self {
        Sessions {
            f,
            types: PhantomData,
        }
    }
}

impl<P, T, K, W> RemoteFn for Sessions<P, T, K, W>
where
    P: Callee<T>,
    P::Output: Future + 'static,
    T: CrossProcess,
    K: Split<<P::Output as Future>::Output>,
    K::Ok: CrossProcess,
    W: ErrorWire<K::Err>,
{
    type In = SessionStart;
    type Out = Option<String>;
    type Err = Infallible;
    type Wire = NoError;
    type State = P::State;
    type Code = P::Code;
    fn code(self) -> P::Code {
        self.f.code()
    }
    fn from_code(code: P::Code) -> Self {
        Sessions::new(P::from_code(code))
    }
    fn call(self, state: &mut P::State, start: SessionStart) -> Result<Self::Out, Infallible> {
        Ok(run_session::<P, T, K, W>(self.f, state, start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Answer::write` writes what postcard writes (a result through the fast paths of
    /// `wire::write_item`), and `Answer::read` reads either back.
    #[test]
    fn answers_cross_as_postcard_writes_and_reads_them() {
        fn same<R: CrossProcess + PartialEq + std::fmt::Debug>(answer: Answer<R>) {
            let mut ours = vec![7];
            answer.write(&mut ours).unwrap();
            assert_eq!(ours[1..], postcard::to_stdvec(&answer).unwrap()[..]);
            let back = Answer::<R>::read(&ours[1..]).unwrap();
            assert_eq!(
                postcard::to_stdvec(&back).unwrap(),
                postcard::to_stdvec(&answer).unwrap()
            );
            match (back, answer) {
                (Answer::Done(back), Answer::Done(value)) => assert_eq!(back, value),
                (Answer::Done(_), _) | (_, Answer::Done(_)) => panic!("another variant"),
                _ => {}
            }
        }
        same(Answer::Done(300_u64));
        same(Answer::Done(-5_i32));
        same(Answer::Done(
            (0..3 << 20).map(|i| i as u8).collect::<Vec<u8>>(),
        ));
        same(Answer::Done(String::from("text")));
        same::<u64>(Answer::Returned(vec![1, 2]));
        same::<Vec<u8>>(Answer::TimedOut(Duration::from_millis(5)));
        same::<Vec<u8>>(Answer::Broken("why".into()));
    }
}
