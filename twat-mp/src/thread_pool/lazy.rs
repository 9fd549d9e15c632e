//! The lazy maps of [`ThreadPool`](crate::ThreadPool): [`Imap`] (input order) and
//! [`Uimap`] (completion order), over the engine's [`Counts`] of items in flight and its
//! [`Feed`] of input.
//!
//! The consumer's thread starts *jobs* on the pool: a run of consecutive items (a chunk)
//! that one pool thread works through. A job and the consumer share the job's items not
//! started yet and its outcomes not yet taken ([`JobState`], behind a mutex that only
//! they two take, almost never at once): the job's thread publishes each outcome there
//! as the item ends, so a result is never held back behind the items after it, and the
//! consumer takes the outcomes of many items at once. The job wakes the consumer only
//! when the consumer said it waits for that job's next outcome, and when it ends.
//!
//! **Adaptive chunks.** Without a [`chunksize`](crate::ThreadPoolBuilder::chunksize), a
//! map starts with one item per job; each job reports how long its items took, and the
//! chunk doubles while jobs end well within [`JOB_TARGET`], up to [`MAX_CHUNK`], and
//! falls at once to what fits in `JOB_TARGET` when a job was slow. The window (how far
//! the map may run ahead of its consumer) is two chunks per thread, so it grows and
//! shrinks with the chunk.
//!
//! **Stealing.** A thread that has nothing to do while another job still has items not
//! started (a slow item holds up the rest of its chunk, or the input has ended) takes
//! the later half of those items as a job of its own, as rayon's adaptive splitting
//! does: the items behind a slow one run on the idle thread instead of waiting for it.
//! The consumer looks for such items whenever a thread may have become idle (a job
//! ended) *and* whenever items may have appeared for a thread already idle (a job was
//! started while fewer jobs than threads were working): the last items of an input, or
//! a live input's latest, that come as one chunk while another thread is idle are
//! shared at once, since no job's end may ever come to make that thread look again.
//! The latter holds for the adaptive chunk size only: a fixed
//! [`chunksize`](crate::ThreadPoolBuilder::chunksize) is the caller's choice of items per
//! job, split only once a job has ended (it would otherwise be halved whenever the
//! feeder lags behind a fast consumer: measured, a quarter more jobs for `chunksize(64)`
//! on trivial items).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::iter::FusedIterator;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use crate::engine::feed::{Feed, READ_AHEAD, Take};
use crate::engine::item::{CancelFlag, ItemFailure, Outcome};
use crate::engine::order::Counts;
use crate::engine::progress::Progress;
use crate::error::WorkerError;
use crate::sync::mpsc::{self, Receiver, Sender};
use crate::sync::{AtomicUsize, Mutex, MutexGuard};

/// How long a job of the adaptive chunk size aims to take: long against the few
/// microseconds a job costs to start and end (so trivial items pay next to nothing for
/// it), short enough that the threads share the work evenly.
pub(crate) const JOB_TARGET: Duration = Duration::from_micros(100);

/// The most items the adaptive chunk size gives one job: it bounds the window, two chunks
/// per thread, and so the input pulled ahead of the consumer.
pub(crate) const MAX_CHUNK: usize = 1024;

/// An outcome as a job publishes it and the consumer keeps it until handed over: the
/// failure boxed, so that the buffers of a window of trivial results (up to
/// 2 × threads × [`MAX_CHUNK`] of them, in the jobs and in the consumer) are as small as
/// the results themselves and a pointer, not as large as an [`ItemFailure`] (its rendered
/// input, its worker…). Failures are rare; their box costs nothing on the way of results.
type Published<R, E> = Result<R, Box<ItemFailure<E>>>;

/// What reaches the consumer of a lazy map, on one channel: it waits in one place for
/// results and for input.
pub(crate) enum Message {
    /// The feed has the items the map asked for, or the input has ended; or the time to
    /// look at the feed again has come.
    Input,
    /// A job published the outcome the consumer waits for.
    Published,
    /// A job ended: its thread ran `ran` items in `elapsed`.
    Ended { ran: usize, elapsed: Duration },
}

/// What a job and the consumer share.
pub(crate) struct JobShared<T, R, E> {
    state: Mutex<JobState<T, R, E>>,
    /// How many outcomes the job published in all: what the consumer looks at, without
    /// the lock, for a moment before it asks to be woken.
    published: AtomicUsize,
}

/// A job's items not started yet (the job takes from the front, a thief from the back)
/// and its outcomes not yet taken, in input order.
struct JobState<T, R, E> {
    pending: VecDeque<T>,
    /// The job's thread has taken an item: what is pending waits behind a running one.
    started: bool,
    outcomes: Vec<Published<R, E>>,
    /// The consumer waits for this job's next outcome: publish it with a wake-up.
    hungry: bool,
}

pub(crate) type Shared<T, R, E> = Arc<JobShared<T, R, E>>;

fn lock<T, R, E>(shared: &Shared<T, R, E>) -> MutexGuard<'_, JobState<T, R, E>> {
    // Nothing panics while holding the lock; a poisoned lock still holds good data.
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many times the consumer yields its core, looking for a published outcome, before
/// it asks a job to wake it: with trivial items the next outcome is a moment away, and a
/// wake-up for each would cost far more than the item.
const SPINS: usize = 16;

/// The consumer's record of a job: its items are `first..end` (a thief shortens `end`),
/// and `taken` of their outcomes were moved to the consumer.
struct Job<T, R, E> {
    shared: Shared<T, R, E>,
    first: usize,
    end: usize,
    taken: usize,
}

impl<T, R, E> Job<T, R, E> {
    fn is_taken(&self) -> bool {
        self.first + self.taken == self.end
    }

    /// Whether the job published an outcome the consumer has not taken.
    fn has_published(&self) -> bool {
        self.shared.published.load(Ordering::Relaxed) > self.taken
    }
}

/// The consumer's side of the jobs of one map: the jobs whose outcomes are not all taken
/// and the outcomes taken from them, all that the consumer does with the state it shares
/// with the jobs ([`JobShared`]). Apart from the pool and the input, so that the loom
/// model checks (`model_checks`) drive it, and [`run_job`], on loom's threads.
pub(crate) struct Jobs<T, R, E> {
    /// The jobs whose outcomes are not all taken, in input order.
    jobs: VecDeque<Job<T, R, E>>,
    /// Outcomes taken from the jobs, in the order they are handed over.
    ready: VecDeque<Published<R, E>>,
    /// An empty buffer that changes place with a job's outcomes.
    spare: Vec<Published<R, E>>,
    /// Outcomes are handed over in input order (`imap`), else as they come (`uimap`).
    ordered: bool,
}

impl<T, R, E> Jobs<T, R, E> {
    pub(crate) fn new(ordered: bool) -> Self {
        Jobs {
            jobs: VecDeque::new(),
            ready: VecDeque::new(),
            spare: Vec::new(),
            ordered,
        }
    }

    /// How many jobs have outcomes not all taken.
    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Records a job of `items`, the first at index `first`, at `at` in input order;
    /// returns what its thread shares with the consumer.
    pub(crate) fn add(&mut self, at: usize, first: usize, items: VecDeque<T>) -> Shared<T, R, E> {
        let end = first + items.len();
        let shared = Arc::new(JobShared {
            state: Mutex::new(JobState {
                pending: items,
                started: false,
                outcomes: Vec::new(),
                hungry: false,
            }),
            published: AtomicUsize::new(0),
        });
        self.jobs.insert(
            at,
            Job {
                shared: Arc::clone(&shared),
                first,
                end,
                taken: 0,
            },
        );
        shared
    }

    /// Takes the later half of the items not started of the job that has the most, for
    /// a job of their own: where to record it, its first index, and its items; `None`
    /// when no job has any worth taking ([`stealable`]).
    pub(crate) fn steal(&mut self) -> Option<(usize, usize, VecDeque<T>)> {
        let mut victim = None;
        let mut most = 0;
        for (at, job) in self.jobs.iter().enumerate() {
            let pending = stealable(&lock(&job.shared));
            if pending > most {
                (victim, most) = (Some(at), pending);
            }
        }
        let at = victim?;
        let stolen = {
            let mut state = lock(&self.jobs[at].shared);
            if stealable(&state) == 0 {
                return None;
            }
            let pending = state.pending.len();
            state.pending.split_off(pending / 2)
        };
        let job = &mut self.jobs[at];
        job.end -= stolen.len();
        Some((at + 1, job.end, stolen))
    }

    /// Moves the outcomes the jobs published to `ready`, in the order they are handed
    /// over: in input order only the first jobs' outcomes, up to one still missing. When
    /// there is none, marks the jobs whose next outcome would do as waited for, so that
    /// their threads wake the consumer; `false` then.
    pub(crate) fn collect(&mut self) -> bool {
        if self.take_published(false) {
            return true;
        }
        self.take_published(true)
    }

    /// One pass of [`collect`](Self::collect); `hungry`: mark what is empty as waited for.
    fn take_published(&mut self, hungry: bool) -> bool {
        let mut at = 0;
        let mut found = false;
        while at < self.jobs.len() {
            let job = &mut self.jobs[at];
            {
                let mut state = lock(&job.shared);
                state.hungry = hungry && state.outcomes.is_empty();
                std::mem::swap(&mut state.outcomes, &mut self.spare);
            }
            let count = self.spare.len();
            job.taken += count;
            found |= count > 0;
            self.ready.extend(self.spare.drain(..));
            if job.is_taken() {
                self.jobs.remove(at);
                continue;
            }
            if self.ordered {
                // Its next outcome is the one missing: nothing later may be handed over.
                break;
            }
            at += 1;
        }
        found
    }

    /// Whether a job published an outcome that the consumer could hand over and has not
    /// taken: a look without the locks, for a moment before it asks to be woken.
    pub(crate) fn has_published(&self) -> bool {
        if self.ordered {
            self.jobs.front().is_some_and(Job::has_published)
        } else {
            self.jobs.iter().any(Job::has_published)
        }
    }

    /// The next outcome to hand over, of those taken.
    pub(crate) fn next_ready(&mut self) -> Option<Published<R, E>> {
        self.ready.pop_front()
    }
}

/// The lazy map shared by `imap`, `uimap` and the `#[imap]` attribute (the item type is
/// hidden behind [`Lazy`]).
pub(crate) struct LazyMap<'pool, R, E> {
    inner: Box<dyn NextOutcome<R, E> + 'pool>,
}

/// A lazy map whose item type is hidden.
trait NextOutcome<R, E> {
    fn next_outcome(&mut self) -> Option<Outcome<R, E>>;
    fn window(&self) -> &Counts;
}

impl<'pool, R: Send + 'static, E: Send + 'static> LazyMap<'pool, R, E> {
    /// A lazy map of `run` over `input`, `chunk` items per job (adaptive when `None`).
    pub(crate) fn new<T, I, F>(
        pool: &'pool rayon::ThreadPool,
        input: I,
        progress: Option<Progress>,
        run: F,
        chunk: Option<usize>,
        ordered: bool,
    ) -> Self
    where
        I: Iterator<Item = T> + Send + 'static,
        T: Send + 'static,
        F: Fn(usize, T) -> Outcome<R, E> + Send + Sync + 'static,
    {
        LazyMap {
            inner: Box::new(Lazy::new(pool, input, progress, run, chunk, ordered)),
        }
    }
}

impl<R, E> LazyMap<'_, R, E> {
    /// How far the map runs ahead of its consumer.
    pub(crate) fn window(&self) -> &Counts {
        self.inner.window()
    }
}

impl<R, E> Iterator for LazyMap<'_, R, E> {
    type Item = Outcome<R, E>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next_outcome()
    }
}

impl<R, E> FusedIterator for LazyMap<'_, R, E> {}

/// The lazy map itself. Its input is pulled by a [`Feed`] only while the window ([`Counts`]) has
/// room; the consumer starts jobs of what the feed has whenever it is in `next`, takes
/// the outcomes the jobs published, and waits on one channel for wake-ups and input.
struct Lazy<'pool, T, F, R, E> {
    pool: &'pool rayon::ThreadPool,
    feed: Feed<T>,
    run: Arc<F>,
    sender: Sender<Message>,
    messages: Receiver<Message>,
    cancel: Arc<CancelFlag>,
    window: Counts,
    /// Items per job: fixed by the pool's `chunksize`, else adapted to the items' cost.
    chunk: usize,
    adaptive: bool,
    /// The least allowance worth granting the feeder between waits: half the window, so
    /// that it pulls in runs rather than an item at a time.
    step: usize,
    /// The jobs whose outcomes are not all taken, and the outcomes taken from them.
    jobs: Jobs<T, R, E>,
    /// Jobs started whose thread has not ended them.
    working: usize,
    /// A thread may be idle while a job has items not started: a job ended, or one was
    /// started, since the last look for items to steal.
    may_steal: bool,
    nodes: usize,
    input_done: bool,
    /// When to look at the feed again even if no message comes: a short chunk's patience.
    look_again: Option<Instant>,
    /// The call's progress bar, fed each outcome handed over; ends with the map.
    progress: Option<Progress>,
}

impl<'pool, T, F, R, E> Lazy<'pool, T, F, R, E>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
    F: Fn(usize, T) -> Outcome<R, E> + Send + Sync + 'static,
{
    fn new<I>(
        pool: &'pool rayon::ThreadPool,
        input: I,
        progress: Option<Progress>,
        run: F,
        chunk: Option<usize>,
        ordered: bool,
    ) -> Self
    where
        I: Iterator<Item = T> + Send + 'static,
    {
        let (sender, messages) = mpsc::channel();
        let nodes = pool.current_num_threads();
        let adaptive = chunk.is_none();
        let chunk = chunk.unwrap_or(1).max(1);
        let limit = 2 * nodes * chunk;
        // Two windows, if that is more than the least read-ahead.
        let mut feed = Feed::spawn(input, (2 * limit).max(READ_AHEAD));
        if adaptive {
            // The chunk is only an upper bound: an idle thread gets what is there.
            feed.set_patience(Duration::ZERO);
        }
        let wake = sender.clone();
        feed.wake_with(move || {
            let _ = wake.send(Message::Input);
        });
        let mut lazy = Lazy {
            pool,
            feed,
            run: Arc::new(run),
            sender,
            messages,
            cancel: Arc::default(),
            window: Counts::new(limit, ordered),
            chunk,
            adaptive,
            step: (limit / 2).max(1),
            jobs: Jobs::new(ordered),
            working: 0,
            may_steal: false,
            nodes,
            input_done: false,
            look_again: None,
            progress,
        };
        // The feeder starts pulling at once; jobs start at the first `next`.
        let allowance = lazy.allowance();
        lazy.feed.allow(allowance, 0);
        lazy
    }

    /// Starts jobs of what the feed has while the window has room, lets an idle thread
    /// steal from a job that still has items not started, and lets the feeder pull what
    /// the window allows. A chunk stays whole: the last one may reach past the window by
    /// less than a chunk, as it always could.
    fn start_jobs(&mut self) {
        self.look_again = None;
        while !self.input_done && self.window.has_room() {
            let idle = self.working < self.nodes;
            match self.feed.take(self.chunk, idle) {
                Take::Items(batch) => {
                    let first = self.window.start(batch.len());
                    let at = self.jobs.len();
                    self.spawn(at, first, batch.into());
                    // A thread still idle once the feed has nothing more gets part of it
                    // (adaptive chunks: a fixed chunk is split only after a job's end).
                    self.may_steal |= self.adaptive;
                }
                Take::Later(deadline) => {
                    self.look_again = deadline;
                    break;
                }
                Take::Ended => self.input_done = true,
            }
        }
        // Looked at once after each job's end or start, not on every call: the jobs'
        // items are not counted for free.
        if self.may_steal {
            while self.working < self.nodes && self.steal() {}
            self.may_steal = false;
        }
        self.feed.allow(self.allowance(), self.step);
    }

    /// Starts a job of `items`, the first at index `first`, recorded at `at` in `jobs`.
    fn spawn(&mut self, at: usize, first: usize, items: VecDeque<T>) {
        let shared = self.jobs.add(at, first, items);
        self.working += 1;
        let (run, sender, cancel) = (
            Arc::clone(&self.run),
            self.sender.clone(),
            Arc::clone(&self.cancel),
        );
        self.pool
            .spawn(move || run_job(&shared, first, &*run, &sender, &cancel));
    }

    /// Gives an idle thread the later half of the items not started of the job that has
    /// the most; `false` when no job has any worth taking. A job that no thread has begun
    /// keeps at least one item (a thread takes it soon, and a job emptied before it began
    /// would only end to be stolen from again).
    fn steal(&mut self) -> bool {
        let Some((at, first, stolen)) = self.jobs.steal() else {
            return false;
        };
        self.spawn(at, first, stolen);
        true
    }

    /// How many items the feeder may have pulled in all: what the window lets start, and
    /// the rest of the chunk that may reach past it.
    fn allowance(&self) -> usize {
        self.window.allowance() + self.chunk - 1
    }

    /// Yields the core a few times while no outcome the consumer could hand over was
    /// published and no message came; `true` once one is there (a message is handled).
    fn spin(&mut self) -> bool {
        for _ in 0..SPINS {
            std::thread::yield_now();
            if self.jobs.has_published() {
                return true;
            }
            if let Ok(message) = self.messages.try_recv() {
                self.handle(message);
                return true;
            }
        }
        false
    }

    /// Handles every message already there, without waiting; `true` if there was one.
    fn drain_messages(&mut self) -> bool {
        let mut any = false;
        while let Ok(message) = self.messages.try_recv() {
            self.handle(message);
            any = true;
        }
        any
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Input | Message::Published => {}
            Message::Ended { ran, elapsed } => {
                self.working -= 1;
                self.may_steal = true;
                self.adapt(ran, elapsed);
            }
        }
    }

    /// Changes the chunk after a job ran `ran` items in `elapsed` (adaptive chunks only):
    /// it doubles while a job ends well within [`JOB_TARGET`], and falls at once to what
    /// fits in it after a slow one.
    fn adapt(&mut self, ran: usize, elapsed: Duration) {
        if !self.adaptive || ran == 0 {
            return;
        }
        let per_item = (elapsed.as_nanos() / ran as u128).max(1);
        let fits = usize::try_from(JOB_TARGET.as_nanos() / per_item)
            .unwrap_or(MAX_CHUNK)
            .clamp(1, MAX_CHUNK);
        self.chunk = if fits > self.chunk {
            (2 * self.chunk).min(fits)
        } else {
            fits
        };
        let limit = 2 * self.nodes * self.chunk;
        self.window.set_limit(limit);
        self.step = (limit / 2).max(1);
    }

    /// Waits for the next message: a wake-up, a job's end, or input (or the time to look
    /// again).
    fn receive(&mut self) -> Message {
        // On one of the pool's own threads a blocking wait could starve the very jobs it
        // waits for: help run them instead.
        if self.pool.current_thread_index().is_some() {
            loop {
                match self.messages.try_recv() {
                    Ok(message) => return message,
                    Err(TryRecvError::Empty) => {
                        if self.look_again.is_some_and(|at| Instant::now() >= at) {
                            return Message::Input;
                        }
                        if self.pool.yield_now() != Some(rayon::Yield::Executed) {
                            std::thread::yield_now();
                        }
                    }
                    Err(TryRecvError::Disconnected) => unreachable!("the map holds a sender"),
                }
            }
        }
        match self.look_again {
            Some(at) => {
                match self
                    .messages
                    .recv_timeout(at.saturating_duration_since(Instant::now()))
                {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => Message::Input,
                    Err(RecvTimeoutError::Disconnected) => unreachable!("the map holds a sender"),
                }
            }
            None => self.messages.recv().expect("the map holds a sender"),
        }
    }
}

impl<T, F, R, E> NextOutcome<R, E> for Lazy<'_, T, F, R, E>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
    F: Fn(usize, T) -> Outcome<R, E> + Send + Sync + 'static,
{
    fn next_outcome(&mut self) -> Option<Outcome<R, E>> {
        loop {
            self.start_jobs();
            if let Some(outcome) = self.jobs.next_ready() {
                // Counted as finished only now: in completion order the window bounds
                // the items not handed over, as the outcomes taken early wait here.
                self.window.finish(1);
                self.window.hand_over();
                if let Some(progress) = &self.progress {
                    progress.item(outcome.is_ok());
                }
                return Some(outcome.map_err(|failure| *failure));
            }
            // Messages left unread pile up in the channel while the consumer finds
            // outcomes without waiting (every job's end, a wake-up it no longer needed):
            // read them all once per batch of outcomes, which also keeps the count of
            // working jobs and the chunk size current. One may say input is there, or a
            // thread is idle: start jobs again before anything else.
            if self.drain_messages() {
                continue;
            }
            if self.jobs.collect() || self.spin() {
                continue;
            }
            if self.input_done && self.window.running() == 0 {
                self.feed.finish();
                return None;
            }
            // Something runs (a job will wake us), or the feed was asked for input.
            let message = self.receive();
            self.handle(message);
        }
    }

    fn window(&self) -> &Counts {
        &self.window
    }
}

impl<T, F, R, E> Drop for Lazy<'_, T, F, R, E> {
    fn drop(&mut self) {
        // Items not started yet are skipped; the pool stays free for other work. The feed,
        // dropped with the map, stops its feeder.
        self.cancel.cancel();
    }
}

/// How many items not started of a job an idle thread may take half of: all of them once
/// the job's thread runs one of its items, else only when there are two or more.
fn stealable<T, R, E>(state: &JobState<T, R, E>) -> usize {
    let pending = state.pending.len();
    if state.started || pending >= 2 {
        pending
    } else {
        0
    }
}

/// A job on a pool thread: runs the items of `shared` from the front, the first at index
/// `first`, publishing each outcome as it ends, until none is left (or the map was
/// dropped); then says how long it took.
pub(crate) fn run_job<T, R, E, F>(
    shared: &Shared<T, R, E>,
    first: usize,
    run: &F,
    sender: &Sender<Message>,
    cancel: &CancelFlag,
) where
    F: Fn(usize, T) -> Outcome<R, E>,
{
    let started = Instant::now();
    let mut ran = 0;
    let mut finished = None;
    loop {
        let (item, wake) = {
            let mut state = lock(shared);
            let wake = match finished.take() {
                Some(outcome) => {
                    state.outcomes.push(outcome);
                    shared.published.store(ran, Ordering::Relaxed);
                    std::mem::take(&mut state.hungry)
                }
                None => false,
            };
            let item = if cancel.is_cancelled() {
                None
            } else {
                state.pending.pop_front()
            };
            state.started = true;
            (item, wake)
        };
        let Some(item) = item else {
            // The job's end wakes the consumer anyway.
            break;
        };
        if wake && sender.send(Message::Published).is_err() {
            return;
        }
        finished = Some(run(first + ran, item).map_err(Box::new));
        ran += 1;
    }
    let _ = sender.send(Message::Ended {
        ran,
        elapsed: started.elapsed(),
    });
}

macro_rules! lazy_iterator {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[must_use = "iterators are lazy: the results come only as it is consumed"]
        pub struct $name<'pool, R> {
            lazy: LazyMap<'pool, R, Infallible>,
        }

        impl<'pool, R> $name<'pool, R> {
            pub(crate) fn new(lazy: LazyMap<'pool, R, Infallible>) -> Self {
                $name { lazy }
            }
        }

        impl<R: Send + 'static> Iterator for $name<'_, R> {
            type Item = Result<R, WorkerError>;

            fn next(&mut self) -> Option<Self::Item> {
                Some(self.lazy.next()?.map_err(ItemFailure::into_infallible_worker_error))
            }
        }

        impl<R: Send + 'static> FusedIterator for $name<'_, R> {}

        impl<R> fmt::Debug for $name<'_, R> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("yielded", &self.lazy.window().yielded())
                    .field("in_flight", &self.lazy.window().running())
                    .finish_non_exhaustive()
            }
        }
    };
}

lazy_iterator! {
    /// The iterator of [`ThreadPool::imap`](crate::ThreadPool::imap): results in input
    /// order, computed a bounded window ahead of the consumer.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let mut squares = pool.imap(|x: u64| x * x, 1..);
    /// assert_eq!(squares.next().transpose()?, Some(1));
    /// assert_eq!(squares.next().transpose()?, Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    Imap
}

lazy_iterator! {
    /// The iterator of [`ThreadPool::uimap`](crate::ThreadPool::uimap): results in the
    /// order they finish.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::with_nodes(2)?;
    /// let mut squares = pool.uimap(|x: u64| x * x, 1..=4).collect::<Result<Vec<_>, _>>()?;
    /// squares.sort();
    /// assert_eq!(squares, [1, 4, 9, 16]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    Uimap
}
