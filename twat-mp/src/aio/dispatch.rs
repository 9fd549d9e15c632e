//! How [`AsyncMultiPool`](super::AsyncMultiPool) dispatches: a job for one item, the
//! reply it owes its caller, and [`AsyncCall`], the caller's side of a call, which feeds
//! jobs to the workers within the engine's [`Window`] and gathers their replies.
//!
//! The caller's future never touches the workers' runtimes: it sends jobs over a channel
//! and awaits replies over another, so it runs on any executor without blocking it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tracing::Instrument;

use super::replies::Replies;
use super::scheduler::{BATCH, SlotGuard};
use super::watchdog::{Expire, Watchdog};
use crate::engine::failure::FailureMark;
use crate::engine::gather::InOrder;
use crate::engine::insights::Recorder;
use crate::engine::item::{ItemFailure, Outcome};
use crate::engine::order::Window;
use crate::engine::progress::Progress;
use crate::engine::render::Render;
use crate::error::{ErrorKind, WorkerError};
use crate::panic_capture::{self, CaughtPanic};

/// One item's work: once a worker takes it, it spawns the item's task on that worker's
/// single-threaded runtime (so the user's future need not be `Send`).
pub(crate) type Job = Box<dyn FnOnce(Start) + Send>;

/// What a worker gives the job it takes.
pub(crate) struct Start {
    pub(crate) worker: usize,
    /// The worker's slot the task holds until it ends (none for nested work).
    pub(crate) slot: Option<SlotGuard>,
}

type ReplySender<R, E> = Arc<Replies<R, E>>;

/// Where jobs go: the pool's queue, a batch at a time. Once the pool has shut down the
/// jobs are dropped, which answers each item with [`ErrorKind::Cancelled`].
pub(crate) trait Dispatch: Send + Sync {
    fn dispatch(&self, jobs: Vec<Job>);
}

/// The settings one call shares with all of its jobs.
pub(crate) struct CallCtx<T> {
    pub(crate) render: Option<Render<T>>,
    pub(crate) debug: bool,
    pub(crate) timeout: Option<Duration>,
    /// Answers `TimedOut` at the deadline of a task whose thread is blocked.
    watchdog: Option<Arc<Watchdog>>,
    /// For `map`: items after the lowest failure so far need not run.
    pub(crate) skip_after_failure: bool,
    failed: FailureMark,
    /// The call's span in debug mode; each task runs in a span of its own inside it.
    span: tracing::Span,
    /// With insights: the pool's recorder and this call's number on it.
    insights: Option<(Arc<Recorder>, u64)>,
}

impl<T> CallCtx<T> {
    /// `watchdog` holds the pool's `timeout`, if it has one.
    pub(crate) fn new(
        debug: bool,
        render: Option<Render<T>>,
        watchdog: Option<Arc<Watchdog>>,
        skip_after_failure: bool,
    ) -> Self {
        CallCtx {
            // Rendering every item costs; it is done only where debug mode asks for it.
            render: render.filter(|_| debug),
            debug,
            timeout: watchdog.as_ref().map(|w| w.after()),
            watchdog,
            skip_after_failure,
            failed: FailureMark::default(),
            span: crate::debug::call_span(debug, "async"),
            insights: None,
        }
    }

    /// Times the call's tasks on `recorder` (the pool's, if it keeps insights), as a new
    /// call.
    pub(crate) fn with_insights(mut self, recorder: Option<&Arc<Recorder>>) -> Self {
        self.insights = recorder.map(|recorder| (Arc::clone(recorder), recorder.begin_call()));
        self
    }

    fn is_past_failure(&self, index: usize) -> bool {
        self.skip_after_failure && self.failed.is_past(index)
    }

    /// Answers a failed item: marks it for `map`, reports it in debug mode.
    fn fail<R, E>(&self, failure: ItemFailure<E>, reply: Reply<R, E>) {
        if self.skip_after_failure {
            self.failed.mark(failure.index());
        }
        failure.log_in(&self.span, self.debug);
        reply.send(Err(failure));
    }
}

fn timed_out<E>(
    index: usize,
    worker: usize,
    input: Option<String>,
    after: Duration,
) -> ItemFailure<E> {
    ItemFailure::Worker(
        WorkerError::new(index, ErrorKind::TimedOut { after })
            .with_worker(Some(worker))
            .with_input(input),
    )
}

/// The reply of a task under a timeout, shared with the pool's [`Watchdog`]: whichever
/// comes first, the task's own outcome or its deadline, answers the item.
struct TimedReply<T, R, E> {
    reply: Mutex<Option<Reply<R, E>>>,
    call: Arc<CallCtx<T>>,
    worker: usize,
    input: Option<String>,
    after: Duration,
}

impl<T, R, E> TimedReply<T, R, E> {
    fn take(&self) -> Option<Reply<R, E>> {
        self.reply.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl<T, R: Send, E: Send> Expire for TimedReply<T, R, E> {
    fn expire(&self) {
        if let Some(reply) = self.take() {
            let failure = timed_out(reply.index, self.worker, self.input.clone(), self.after);
            self.call.fail(failure, reply);
        }
    }
}

impl<T, R, E> Drop for TimedReply<T, R, E> {
    fn drop(&mut self) {
        if let Some(watchdog) = &self.call.watchdog {
            watchdog.finished();
        }
    }
}

/// Where a running task's answer goes.
enum Answer<T, R, E> {
    Direct(Option<Reply<R, E>>),
    /// Shared with the watchdog; dropping the task drops the reply (`Cancelled`) unless
    /// the watchdog answered first.
    Timed(Arc<TimedReply<T, R, E>>),
}

impl<T, R, E> Answer<T, R, E> {
    fn take(&mut self) -> Option<Reply<R, E>> {
        match self {
            Answer::Direct(reply) => reply.take(),
            Answer::Timed(shared) => shared.take(),
        }
    }
}

/// The answer one job owes its caller. Dropped unanswered (the job was never run, or the
/// pool shut down under it), it answers [`ErrorKind::Cancelled`], so that the caller never
/// waits for an item that will not come.
pub(crate) struct Reply<R, E> {
    index: usize,
    worker: Option<usize>,
    sender: Option<ReplySender<R, E>>,
}

impl<R, E> Reply<R, E> {
    pub(crate) fn new(index: usize, sender: ReplySender<R, E>) -> Self {
        Reply {
            index,
            worker: None,
            sender: Some(sender),
        }
    }

    fn send(mut self, outcome: Outcome<R, E>) {
        if let Some(sender) = self.sender.take() {
            // The caller may have gone: then nobody wants the result.
            sender.send(self.index, outcome);
        }
    }

    fn is_abandoned(&self) -> bool {
        self.sender.as_ref().is_none_or(|s| s.is_closed())
    }
}

impl<R, E> Drop for Reply<R, E> {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let err = WorkerError::new(self.index, ErrorKind::Cancelled).with_worker(self.worker);
            sender.send(self.index, Err(ItemFailure::Worker(err)));
        }
    }
}

/// Makes the job that runs `g(item, worker)` on the worker that takes it and answers
/// `lift` of its output through `reply` (`Ok` for a function that cannot fail, the output
/// itself for one that returns `Result`).
pub(crate) fn make_job<T, O, R, E, G, Fut>(
    item: T,
    g: G,
    lift: fn(O) -> Result<R, E>,
    call: Arc<CallCtx<T>>,
    reply: Reply<R, E>,
) -> Job
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
    G: FnOnce(T, usize) -> Fut + Send + 'static,
    Fut: Future<Output = O> + 'static,
    O: 'static,
{
    Box::new(move |start: Start| {
        // The task's future lives in the task itself: one allocation per item here.
        tokio::task::spawn_local(async move {
            run_job(item, g, lift, call, reply, start.worker).await;
            drop(start.slot);
        });
    })
}

async fn run_job<T, O, R, E, G, Fut>(
    item: T,
    g: G,
    lift: fn(O) -> Result<R, E>,
    call: Arc<CallCtx<T>>,
    mut reply: Reply<R, E>,
    worker: usize,
) where
    T: 'static,
    R: Send + 'static,
    E: Send + 'static,
    G: FnOnce(T, usize) -> Fut,
    Fut: Future<Output = O>,
{
    reply.worker = Some(worker);
    let index = reply.index;
    if reply.is_abandoned() || call.is_past_failure(index) {
        return; // `reply` answers Cancelled, to a caller who no longer needs the item.
    }
    // From the task's first poll (this line) to its end; a task whose caller went away
    // still counts in its worker's busy time, but not as an item.
    let clock = call
        .insights
        .as_ref()
        .map(|(recorder, _)| recorder.task(worker));
    let input = call.render.map(|render| render(&item));
    let sender = reply
        .sender
        .clone()
        .expect("an unanswered reply has its sender");
    let mut answer = match &call.watchdog {
        None => Answer::Direct(Some(reply)),
        Some(watchdog) => {
            let shared = Arc::new(TimedReply {
                reply: Mutex::new(Some(reply)),
                call: Arc::clone(&call),
                worker,
                input: input.clone(),
                after: watchdog.after(),
            });
            let weak = Arc::downgrade(&shared);
            watchdog.watch(weak);
            Answer::Timed(shared)
        }
    };
    let work = async {
        let future = panic_capture::catch(|| g(item, worker))?;
        let future = std::pin::pin!(future);
        let future = CatchPanic(future);
        match call.timeout {
            None => future.await.map(Ok),
            // Boxed: a timer is a large part of a task, which every task would carry
            // (and copy as it is spawned) whether or not its pool has a timeout.
            Some(after) => match Box::pin(tokio::time::timeout(after, future)).await {
                Ok(outcome) => outcome.map(Ok),
                Err(_elapsed) => Ok(Err(after)),
            },
        }
    };
    // A disabled span (debug mode off) costs a branch per poll.
    let work = work.instrument(crate::debug::item_span(&call.span, index, Some(worker)));
    let outcome = tokio::select! {
        // The work first: a task done at its first poll never looks at the channel.
        biased;
        outcome = work => outcome,
        // The caller dropped its future or stream: stop here, dropping the user's future.
        () = sender.closed() => return,
    };
    drop(sender);
    if let (Some(clock), Some((_, number))) = (clock, &call.insights) {
        clock.finish(*number, index);
    }
    // The watchdog may have answered already, while this thread was blocked.
    let Some(reply) = answer.take() else { return };
    let failure = match outcome.map(|output| output.map(lift)) {
        Ok(Ok(Ok(value))) => return reply.send(Ok(value)),
        Ok(Ok(Err(error))) => ItemFailure::Returned {
            index,
            worker: Some(worker),
            pid: None,
            input,
            error,
            attempts: 1,
        },
        Ok(Err(after)) => timed_out(index, worker, input, after),
        Err(caught) => ItemFailure::Worker(
            WorkerError::from_panic(index, caught.payload, caught.backtrace)
                .with_origin(caught.origin)
                .with_worker(Some(worker))
                .with_input(input),
        ),
    };
    call.fail(failure, reply);
}

/// Polls a future, turning a panic inside it into a [`CaughtPanic`] with its backtrace
/// (the worker threads are marked for capture).
pub(crate) struct CatchPanic<F>(pub(crate) F);

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Result<F::Output, CaughtPanic>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = Pin::new(&mut self.0);
        match panic_capture::catch(|| inner.poll(cx)) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(caught) => Poll::Ready(Err(caught)),
        }
    }
}

/// The caller's side of one call: pulls jobs from the input only while the window has
/// room, and yields each reply once.
pub(crate) struct AsyncCall<R, E> {
    pool: Arc<dyn Dispatch>,
    jobs: Box<dyn Iterator<Item = Job> + Send>,
    jobs_done: bool,
    replies: Arc<Replies<R, E>>,
    /// Answers taken from `replies`, not yet in the window.
    arrived: Vec<(usize, Outcome<R, E>)>,
    window: Window<Outcome<R, E>>,
    /// The call's progress bar, fed each reply as it is handed over.
    progress: Option<Progress>,
}

impl<R: Send + 'static, E: Send + 'static> AsyncCall<R, E> {
    /// A call over `items`, each made into a job by `make` (given the item's index and its
    /// reply). `window` bounds the items in flight (`usize::MAX` for all at once);
    /// `ordered` yields replies in input order instead of completion order.
    pub(crate) fn new<T, I, M>(
        pool: Arc<dyn Dispatch>,
        items: I,
        mut make: M,
        window: usize,
        ordered: bool,
    ) -> Self
    where
        I: Iterator<Item = T> + Send + 'static,
        M: FnMut(T, Reply<R, E>) -> Job + Send + 'static,
    {
        let replies = Replies::new();
        let sender = Arc::clone(&replies);
        let jobs = items
            .enumerate()
            .map(move |(index, item)| make(item, Reply::new(index, Arc::clone(&sender))));
        AsyncCall {
            pool,
            jobs: Box::new(jobs),
            jobs_done: false,
            replies,
            arrived: Vec::new(),
            window: Window::new(window, ordered),
            progress: None,
        }
    }

    /// Shows the call's progress when `on`.
    pub(crate) fn with_progress(mut self, on: bool) -> Self {
        self.progress = Progress::start(on, self.jobs.size_hint());
        self
    }

    /// Dispatches jobs while the window has room, in batches: one lock and at most one
    /// wake-up per batch.
    fn fill(&mut self) {
        let mut batch = Vec::new();
        while !self.jobs_done && self.window.has_room() {
            // Pulling the input runs the caller's iterator: a panic there is the caller's
            // own and unwinds through the caller's poll, as it would in a plain loop.
            match self.jobs.next() {
                Some(job) => {
                    self.window.start(1);
                    batch.push(job);
                    if batch.len() == BATCH {
                        self.pool.dispatch(std::mem::take(&mut batch));
                    }
                }
                None => self.jobs_done = true,
            }
        }
        if !batch.is_empty() {
            self.pool.dispatch(batch);
        }
    }

    /// The next reply, with its item's index; `None` once every item has answered.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Outcome<R, E>)>> {
        loop {
            self.fill();
            if let Some(next) = self.window.pop() {
                if let Some(progress) = &self.progress {
                    progress.item(next.1.is_ok());
                }
                return Poll::Ready(Some(next));
            }
            if self.window.running() == 0 {
                return Poll::Ready(None);
            }
            std::task::ready!(self.replies.poll_take(cx, &mut self.arrived));
            for (index, outcome) in self.arrived.drain(..) {
                self.window.finish(index, outcome);
            }
        }
    }

    /// The next reply, awaited.
    pub(crate) async fn next(&mut self) -> Option<(usize, Outcome<R, E>)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl<R, E> Drop for AsyncCall<R, E> {
    fn drop(&mut self) {
        // The caller is gone: its tasks still running stop, queued ones are skipped.
        self.replies.close();
    }
}

impl<R, E> AsyncCall<R, E> {
    pub(crate) fn yielded(&self) -> usize {
        self.window.yielded()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.window.running()
    }
}

/// Gathers every reply of an eager call into input order. Returns as soon as the result
/// is decided: every item below the lowest failure has answered. Dropping the call then
/// cancels the items still running.
pub(crate) async fn collect_in_order<R: Send + 'static, E: Send + 'static>(
    mut call: AsyncCall<R, E>,
) -> Result<Vec<R>, ItemFailure<E>> {
    let mut gather = InOrder::new(call.jobs.size_hint().0);
    while let Some((index, outcome)) = call.next().await {
        gather.outcome(index, outcome);
        if gather.is_decided() {
            break;
        }
    }
    // Only the items the call started have places.
    gather.truncate(call.window.started());
    gather.finish()
}
