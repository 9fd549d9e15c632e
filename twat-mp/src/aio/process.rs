//! Process mode of the async pool: [`AsyncProcessPool`], async functions in worker
//! processes that each run their own tokio runtime, on top of the
//! [`ProcessPool`](crate::ProcessPool) machinery.
//!
//! Items travel in *groups*: a group is one item of the underlying process pool, and the
//! worker process that takes it runs all of its items at once on its runtime (up to
//! `concurrency`), each under the per-task timeout, and answers every item. When a worker
//! process dies during a group (an abort, a segfault, `kill -9`, a task stuck in
//! blocking code past the timeout), the group's items run again one by one on fresh
//! workers, so that exactly the item that kills a worker is lost.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::engine::CatchPanic;
use super::stream::{ResultSource, result_stream};
use crate::async_result::AsyncResult;
use crate::debug::{self, event};
use crate::error::{BoxError, BuildError, ErrorKind, WorkerError};
use crate::item::{ItemFailure, Render};
use crate::panic_capture;
use crate::process::unsafe_code::Witness;
use crate::process::{CrossProcess, ProcessPool, RemoteError};
use crate::tuple_fn::TupleFn;

/// A group of items, as it crosses to a worker process.
#[derive(Serialize, Deserialize)]
struct Group<T> {
    items: Vec<T>,
    concurrency: u32,
    timeout: Option<Duration>,
}

/// One item's answer from a worker process.
#[derive(Serialize, Deserialize)]
enum Answer<R, S> {
    Done(R),
    /// The function's own error, as its [`ErrorMode`] sends it.
    Returned(S),
    Panicked {
        message: String,
        backtrace: Option<String>,
    },
    TimedOut(Duration),
}

/// How a function's own error crosses back.
pub(crate) trait ErrorMode<E>: 'static {
    type Sent: CrossProcess;
    fn send(error: E) -> Self::Sent;
}

/// As its `Display` and `Debug` texts (`try_map`: the parent gets a [`RemoteError`]).
pub(crate) enum ByText {}

impl<E: Into<BoxError>> ErrorMode<E> for ByText {
    type Sent = (String, String);
    fn send(error: E) -> (String, String) {
        let boxed: BoxError = error.into();
        (boxed.to_string(), format!("{boxed:?}"))
    }
}

/// As itself (`#[apmap(process)]`: the caller gets its own `E`).
pub(crate) enum ByValue {}

impl<E: CrossProcess> ErrorMode<E> for ByValue {
    type Sent = E;
    fn send(error: E) -> E {
        error
    }
}

thread_local! {
    /// The worker process's runtime, built on its first group.
    static RUNTIME: std::cell::OnceCell<tokio::runtime::Runtime> = const { std::cell::OnceCell::new() };
}

/// Runs one group in a worker process: every item at once (up to its concurrency) on the
/// process's own runtime; one answer per item, in order.
fn run_group<F, Fut, T, R, E, M>(function: Witness<F>, group: Group<T>) -> Vec<Answer<R, M::Sent>>
where
    F: Fn(T) -> Fut + Copy + 'static,
    Fut: Future<Output = Result<R, E>> + 'static,
    T: 'static,
    R: 'static,
    E: 'static,
    M: ErrorMode<E>,
{
    let f: F = function.get();
    let Group {
        items,
        concurrency,
        timeout,
    } = group;
    RUNTIME.with(|runtime| {
        let runtime = runtime.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_start(panic_capture::mark_worker_thread)
                .build()
                .expect("a worker process builds its tokio runtime")
        });
        let tasks = tokio::task::LocalSet::new();
        tasks.block_on(runtime, async move {
            let slots = std::rc::Rc::new(tokio::sync::Semaphore::new(concurrency.max(1) as usize));
            let handles: Vec<_> = items
                .into_iter()
                .map(|item| {
                    let slots = std::rc::Rc::clone(&slots);
                    tokio::task::spawn_local(async move {
                        let _slot = slots.acquire().await;
                        run_one::<F, Fut, T, R, E, M>(f, item, timeout).await
                    })
                })
                .collect();
            let mut answers = Vec::with_capacity(handles.len());
            for handle in handles {
                answers.push(handle.await.unwrap_or_else(|err| Answer::Panicked {
                    message: format!("the task was lost: {err}"),
                    backtrace: None,
                }));
            }
            answers
        })
    })
}

async fn run_one<F, Fut, T, R, E, M>(f: F, item: T, timeout: Option<Duration>) -> Answer<R, M::Sent>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    M: ErrorMode<E>,
{
    let panicked = |caught: panic_capture::CaughtPanic| Answer::Panicked {
        message: crate::error::panic_message(caught.payload.as_ref()),
        backtrace: caught.backtrace.map(|b| b.to_string()),
    };
    let future = match panic_capture::catch(|| f(item)) {
        Ok(future) => future,
        Err(caught) => return panicked(caught),
    };
    let future = CatchPanic(std::pin::pin!(future));
    let outcome = match timeout {
        None => future.await,
        Some(after) => match tokio::time::timeout(after, future).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => return Answer::TimedOut(after),
        },
    };
    match outcome {
        Ok(Ok(value)) => Answer::Done(value),
        Ok(Err(error)) => Answer::Returned(M::send(error)),
        Err(caught) => panicked(caught),
    }
}

/// The group runner for `f`, as a function the process pool can name.
fn group_runner<F, Fut, T, R, E, M>(
    f: F,
) -> impl Fn(Group<T>) -> Vec<Answer<R, M::Sent>> + Copy + Send + Sync + 'static
where
    F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + 'static,
    T: CrossProcess,
    R: CrossProcess,
    E: 'static,
    M: ErrorMode<E>,
{
    // Zero-sized, as `f` is: the worker gets it back from the witness.
    let function = Witness::of(f);
    move |group| run_group::<F, Fut, T, R, E, M>(function, group)
}

/// Process mode: async functions in worker processes, each running its own tokio
/// runtime with many tasks at once. Made by [`AsyncMultiPoolBuilder::processes`](super::AsyncMultiPoolBuilder::processes).
///
/// Use it where [`AsyncMultiPool`](super::AsyncMultiPool)'s threads are not enough: async
/// code that may crash, abort, leak or block, or that is not thread-safe. As with
/// [`ProcessPool`], the function must capture nothing (an `async fn` item or a closure
/// without captures) and the items and results cross as serde values ([`CrossProcess`]);
/// the worker processes are this executable started again, with no setup (see
/// [`ProcessPool`] for how). Available on Linux.
///
/// - A panic, error or timeout in one task costs that task only, and the worker process
///   goes on.
/// - A worker process that dies (abort, segfault, out of memory, `kill -9`) is replaced;
///   the items it was running run again one by one on fresh workers, so that exactly
///   the item that kills a worker fails, with [`ErrorKind::Crashed`]. Items that had
///   finished in the dead worker may thus run twice.
/// - A task stuck past the timeout in code that never yields (blocking code) is stopped
///   by killing its worker, as above.
/// - With [`maxtasksperchild`](AsyncProcessPoolBuilder::maxtasksperchild), no worker
///   process runs more tasks than that: the pool moves to a fresh set of workers, and
///   the old set exits once its work is done.
///
/// Results travel a group at a time: a worker process answers its group once every task
/// in it is done. Dropping a returned future sends no further groups; groups already in a
/// worker run to their end (their results are discarded). Dropping the pool waits for
/// groups still running, then stops its workers.
///
/// ```
/// use twat_mp::AsyncMultiPool;
///
/// async fn pid_and_square(x: u64) -> (u32, u64) {
///     tokio::task::yield_now().await;
///     (std::process::id(), x * x)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = AsyncMultiPool::builder().nodes(2).processes().build()?;
/// let answers = pool.map(pid_and_square, 0..6).await?;
/// assert_eq!(answers.iter().map(|a| a.1).collect::<Vec<_>>(), [0, 1, 4, 9, 16, 25]);
/// // The tasks ran in worker processes, not in this one.
/// assert!(answers.iter().all(|a| a.0 != std::process::id()));
/// # Ok(())
/// # }
/// ```
pub struct AsyncProcessPool {
    generations: Arc<Generations>,
    nodes: usize,
    concurrency: usize,
    timeout: Option<Duration>,
    maxtasksperchild: Option<usize>,
    debug: bool,
}

/// The worker processes, a generation at a time, shared with the calls in progress.
struct Generations {
    current: Mutex<Generation>,
    /// Older generations exiting once their last groups are done.
    retiring: Mutex<Vec<std::thread::JoinHandle<()>>>,
    nodes: usize,
    timeout: Option<Duration>,
    maxtasksperchild: Option<usize>,
    debug: bool,
}

/// The current set of worker processes and how many tasks it was given.
struct Generation {
    pool: Arc<ProcessPool>,
    given: usize,
    number: usize,
}

impl Generations {
    /// The workers for a group of `tasks`: a fresh generation first when this group would
    /// take the current one past `maxtasksperchild` tasks (a bound on every worker in it,
    /// since none can have run more than the whole generation was given).
    fn pool_for(&self, tasks: usize) -> Arc<ProcessPool> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(max) = self.maxtasksperchild
            && current.given > 0
            && current.given + tasks > max
        {
            match process_pool(self.nodes, self.timeout, self.debug) {
                Ok(fresh) => {
                    let old = std::mem::replace(&mut current.pool, Arc::new(fresh));
                    current.given = 0;
                    current.number += 1;
                    event!(
                        self.debug,
                        generation = current.number,
                        "async process pool moved to fresh worker processes (maxtasksperchild)"
                    );
                    self.retire(old);
                }
                Err(err) => {
                    event!(self.debug, %err, "could not start fresh worker processes; the current ones go on");
                }
            }
        }
        current.given += tasks;
        Arc::clone(&current.pool)
    }

    /// Lets `old` finish its groups and stop its workers, off the caller's thread.
    fn retire(&self, old: Arc<ProcessPool>) {
        let mut retiring = self.retiring.lock().unwrap_or_else(|p| p.into_inner());
        retiring.retain(|thread| !thread.is_finished());
        // Should no thread be had, `old` is dropped here, waiting for its groups.
        if let Ok(thread) = std::thread::Builder::new()
            .name("twat-mp-aio-retire".into())
            .spawn(move || drop(old))
        {
            retiring.push(thread);
        }
    }
}

impl Drop for Generations {
    fn drop(&mut self) {
        let retiring =
            std::mem::take(&mut *self.retiring.lock().unwrap_or_else(|p| p.into_inner()));
        for thread in retiring {
            let _ = thread.join();
        }
    }
}

/// Settings for an [`AsyncProcessPool`]; made by
/// [`AsyncMultiPoolBuilder::processes`](super::AsyncMultiPoolBuilder::processes).
///
/// ```
/// use twat_mp::AsyncMultiPool;
///
/// let pool = AsyncMultiPool::builder()
///     .nodes(2)
///     .concurrency(100)
///     .processes()
///     .maxtasksperchild(1_000)
///     .build()?;
/// assert_eq!(pool.nodes(), 2);
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `.build()`"]
pub struct AsyncProcessPoolBuilder {
    pub(crate) nodes: Option<usize>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) debug: bool,
    pub(crate) has_initializer: bool,
    pub(crate) maxtasksperchild: Option<usize>,
}

impl AsyncProcessPoolBuilder {
    /// The number of worker processes; the default is the number of usable CPUs.
    pub fn nodes(mut self, nodes: usize) -> Self {
        self.nodes = Some(nodes);
        self
    }

    /// The most tasks one worker process runs at once (default
    /// [`DEFAULT_CONCURRENCY`](super::DEFAULT_CONCURRENCY)).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = Some(concurrency);
        self
    }

    /// The longest one task may run; the task then fails with
    /// [`ErrorKind::TimedOut`]. A task that cannot be stopped at an `.await` (it blocks)
    /// is stopped by killing its worker process.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The most tasks one worker process runs in its life, as Python's
    /// `maxtasksperchild`: a bound on what a leak can accumulate. No limit by default.
    pub fn maxtasksperchild(mut self, tasks: usize) -> Self {
        self.maxtasksperchild = Some(tasks);
        self
    }

    /// Reports this pool's events even when the global debug mode is off.
    pub fn debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }

    /// Makes the pool; its worker processes start when work first needs them.
    ///
    /// # Errors
    /// [`BuildError::NoNodes`] for `nodes(0)`; [`BuildError::Zero`] for a zero
    /// `concurrency`, `timeout` or `maxtasksperchild`; [`BuildError::Unsupported`] when an
    /// initializer was set (a closure cannot run in another process);
    /// [`BuildError::Spawn`] when the system refuses a thread.
    pub fn build(self) -> Result<AsyncProcessPool, BuildError> {
        let nodes = self.nodes.unwrap_or_else(crate::thread_pool::default_nodes);
        if nodes == 0 {
            return Err(BuildError::NoNodes);
        }
        let concurrency = self.concurrency.unwrap_or(super::DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(BuildError::Zero("concurrency"));
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(BuildError::Zero("timeout"));
        }
        if self.maxtasksperchild == Some(0) {
            return Err(BuildError::Zero("maxtasksperchild"));
        }
        if self.has_initializer {
            return Err(BuildError::Unsupported(
                "an initializer cannot run in worker processes (a closure cannot cross to \
                 another process): build the pool without `initializer`, or without `processes`",
            ));
        }
        let debug = debug::enabled(self.debug);
        let pool = AsyncProcessPool {
            generations: Arc::new(Generations {
                current: Mutex::new(Generation {
                    pool: Arc::new(process_pool(nodes, self.timeout, debug)?),
                    given: 0,
                    number: 0,
                }),
                retiring: Mutex::new(Vec::new()),
                nodes,
                timeout: self.timeout,
                maxtasksperchild: self.maxtasksperchild,
                debug,
            }),
            nodes,
            concurrency,
            timeout: self.timeout,
            maxtasksperchild: self.maxtasksperchild,
            debug,
        };
        event!(debug, nodes, concurrency, "async process pool started");
        Ok(pool)
    }
}

/// The process pool under one generation of workers. Each group is one item of it; the
/// per-task timeout runs inside the workers, and the pool's own timeout only backs it up
/// for tasks that block.
fn process_pool(
    nodes: usize,
    timeout: Option<Duration>,
    debug: bool,
) -> Result<ProcessPool, BuildError> {
    let mut builder = ProcessPool::builder()
        .nodes(nodes)
        .chunksize(1)
        .debug(debug);
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout.saturating_mul(2) + Duration::from_secs(1));
    }
    builder.build()
}

impl AsyncProcessPool {
    /// The number of worker processes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The most tasks one worker process runs at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The per-task timeout, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The most tasks one worker process runs in its life, if limited.
    pub fn maxtasksperchild(&self) -> Option<usize> {
        self.maxtasksperchild
    }

    /// Runs `f` on every item in the worker processes; results in input order.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item: its panic (message and backtrace
    /// text), its timeout, or the crash of the worker process that ran it.
    ///
    /// ```
    /// use twat_mp::{AsyncMultiPool, ErrorKind};
    ///
    /// async fn checked_half(x: u32) -> u32 {
    ///     assert!(x % 2 == 0, "{x} is odd");
    ///     x / 2
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// assert_eq!(pool.map(checked_half, [2, 4]).await?, [1, 2]);
    /// let err = pool.map(checked_half, [2, 3, 4, 5]).await.unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert!(matches!(err.kind(), ErrorKind::Panicked { message } if message == "3 is odd"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn map<T, R, F, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<T, R, F, Fut, I>
    where
        F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
    {
        let f = move |x: T| {
            let future = f(x);
            async move { Ok::<R, Infallible>(future.await) }
        };
        let run = self.run_map::<_, _, _, _, _, ByText, _>(f, items, None);
        async move {
            run.await.map_err(|failure| match failure {
                ItemFailure::Returned { error, .. } => {
                    unreachable!("a function that cannot fail returned {error:?}")
                }
                ItemFailure::Worker(err) => err,
            })
        }
    }

    /// Applies an async function of several arguments to every tuple of arguments, in
    /// the worker processes, as Python's `starmap`; results in input order. The function
    /// must capture nothing, as for [`map`](Self::map); see [`TupleFn`] for closures.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use twat_mp::AsyncMultiPool;
    ///
    /// async fn power(base: u64, exponent: u32) -> u64 {
    ///     base.pow(exponent)
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// assert_eq!(pool.starmap(power, vec![(2, 10), (3, 3)]).await?, [1024, 27]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn starmap<Args, R, F, I>(
        &self,
        f: F,
        tuples: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<Args, R, F, I>
    where
        F: TupleFn<Args> + Copy + Send + Sync + 'static,
        F::Output: Future<Output = R> + 'static,
        I: IntoIterator<Item = Args>,
        Args: CrossProcess,
        R: CrossProcess,
    {
        // Captures only `f`, which captures nothing: still zero-sized, so it can be named
        // in a worker process.
        self.map(move |args: Args| f.call_tuple(args), tuples)
    }

    /// Like [`map`](Self::map) for a function that returns `Result`: the first `Err` (by
    /// index) comes back as a [`WorkerError`] of kind [`ErrorKind::Failed`] whose
    /// [`source`](std::error::Error::source) is a [`RemoteError`] with the error's text
    /// (the value itself stayed in the worker), as [`ProcessPool::try_map`] does.
    ///
    /// # Errors
    /// A [`WorkerError`] for the lowest failing item.
    ///
    /// ```
    /// use twat_mp::{AsyncMultiPool, ErrorKind};
    ///
    /// async fn parse(text: String) -> Result<u8, std::num::ParseIntError> {
    ///     text.parse()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = AsyncMultiPool::builder().nodes(1).processes().build()?;
    /// let err = pool.try_map(parse, ["1", "x"].map(String::from)).await.unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert!(matches!(err.kind(), ErrorKind::Failed(e) if e.to_string() == "invalid digit found in string"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_map<T, R, E, F, Fut, I>(
        &self,
        f: F,
        items: I,
    ) -> impl Future<Output = Result<Vec<R>, WorkerError>> + Send + use<T, R, E, F, Fut, I>
    where
        F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + 'static,
        I: IntoIterator<Item = T>,
        T: CrossProcess,
        R: CrossProcess,
        E: Into<BoxError> + 'static,
    {
        let run = self.run_map::<_, _, _, _, _, ByText, _>(f, items, None);
        async move { run.await.map_err(text_failure) }
    }

    /// Runs `f` on one item in a worker process.
    ///
    /// # Errors
    /// A [`WorkerError`] (index 0) when the item fails.
    ///
    /// ```
    /// async fn shout(text: String) -> String {
    ///     text.to_uppercase()
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(1).processes().build()?;
    /// assert_eq!(pool.apply(shout, "hey".to_owned()).await?, "HEY");
    /// # Ok(())
    /// # }
    /// ```
    pub fn apply<T, R, F, Fut>(
        &self,
        f: F,
        item: T,
    ) -> impl Future<Output = Result<R, WorkerError>> + Send + use<T, R, F, Fut>
    where
        F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        T: CrossProcess,
        R: CrossProcess,
    {
        let run = self.map(f, std::iter::once(item));
        async move {
            run.await?
                .pop()
                .ok_or_else(|| WorkerError::new(0, ErrorKind::Cancelled))
        }
    }

    /// Runs `f` on every item lazily and yields the results in input order, as a
    /// [`Stream`](futures_core::Stream). At most two groups per worker process are pulled
    /// ahead of the consumer, so an endless input runs in bounded memory.
    ///
    /// ```
    /// async fn cube(x: u64) -> u64 {
    ///     x * x * x
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).concurrency(8).processes().build()?;
    /// let mut cubes = pool.imap(cube, 1..);
    /// let mut first = Vec::new();
    /// while first.len() < 3 {
    ///     first.push(cubes.next().await.unwrap()?);
    /// }
    /// assert_eq!(first, [1, 8, 27]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn imap<T, R, F, Fut, I>(&self, f: F, items: I) -> ProcessImapStream<R>
    where
        F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: CrossProcess,
        R: CrossProcess,
    {
        ProcessImapStream::new(self.lazy(f, items, true))
    }

    /// Like [`imap`](Self::imap), in completion order (a group at a time).
    ///
    /// ```
    /// async fn twice(x: u64) -> u64 {
    ///     2 * x
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::builder().nodes(2).processes().build()?;
    /// let mut all = Vec::new();
    /// let mut doubled = pool.uimap(twice, 0..10);
    /// while let Some(x) = doubled.next().await {
    ///     all.push(x?);
    /// }
    /// all.sort();
    /// assert_eq!(all, (0..10).map(|x| 2 * x).collect::<Vec<_>>());
    /// # Ok(())
    /// # }
    /// ```
    pub fn uimap<T, R, F, Fut, I>(&self, f: F, items: I) -> ProcessUimapStream<R>
    where
        F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: CrossProcess,
        R: CrossProcess,
    {
        ProcessUimapStream::new(self.lazy(f, items, false))
    }

    fn lazy<T, R, F, Fut, I>(&self, f: F, items: I, ordered: bool) -> GroupCall<R, (String, String)>
    where
        F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: CrossProcess,
        R: CrossProcess,
    {
        let f = move |x: T| {
            let future = f(x);
            async move { Ok::<R, Infallible>(future.await) }
        };
        let group = self.group_size(None);
        self.call::<_, _, _, _, _, ByText, _>(f, items.into_iter(), group, None, ordered)
    }

    /// The engine of `map`, `try_map` and the attribute: the items are gathered now.
    pub(crate) fn run_map<T, R, E, F, Fut, M, I>(
        &self,
        f: F,
        items: I,
        render: Option<Render<T>>,
    ) -> impl Future<Output = Result<Vec<R>, ItemFailure<M::Sent>>> + Send + use<T, R, E, F, Fut, M, I>
    where
        I: IntoIterator<Item = T>,
        F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + 'static,
        T: CrossProcess,
        R: CrossProcess,
        E: 'static,
        M: ErrorMode<E>,
    {
        let items: Vec<T> = items.into_iter().collect();
        let len = items.len();
        let group = self.group_size(Some(len));
        let mut call = self.call::<_, _, _, _, _, M, _>(f, items.into_iter(), group, render, false);
        async move {
            let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(len).collect();
            let mut failure: Option<ItemFailure<M::Sent>> = None;
            while let Some((index, outcome)) = std::future::poll_fn(|cx| call.poll_next(cx)).await {
                match outcome {
                    Ok(value) => slots[index] = Some(value),
                    Err(err) => {
                        if failure.as_ref().is_none_or(|kept| index < kept.index()) {
                            failure = Some(err);
                        }
                    }
                }
            }
            match failure {
                Some(failure) => Err(failure),
                None => Ok(slots
                    .into_iter()
                    .map(|slot| slot.expect("every item answered"))
                    .collect()),
            }
        }
    }

    /// Items per group: enough to keep every task slot of a worker busy, spread over the
    /// workers when the input is short, and never past `maxtasksperchild`.
    fn group_size(&self, len: Option<usize>) -> usize {
        let spread = len.map_or(usize::MAX, |len| len.div_ceil(self.nodes).max(1));
        self.concurrency
            .min(spread)
            .min(self.maxtasksperchild.unwrap_or(usize::MAX))
    }

    fn call<T, R, E, F, Fut, M, I>(
        &self,
        f: F,
        items: I,
        group: usize,
        render: Option<Render<T>>,
        ordered: bool,
    ) -> GroupCall<R, M::Sent>
    where
        F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + 'static,
        I: Iterator<Item = T> + Send + 'static,
        T: CrossProcess,
        R: CrossProcess,
        E: 'static,
        M: ErrorMode<E>,
    {
        let runner = group_runner::<F, Fut, T, R, E, M>(f);
        let settings = (
            u32::try_from(self.concurrency).unwrap_or(u32::MAX),
            self.timeout,
        );
        let generations = Arc::clone(&self.generations);
        let send = move |bytes: &[Vec<u8>]| -> Pending<R, M::Sent> {
            let items: Result<Vec<T>, _> = bytes.iter().map(|b| postcard::from_bytes(b)).collect();
            let items = match items {
                Ok(items) => items,
                Err(err) => {
                    return Pending::Broken(format!("an item could not be decoded again: {err}"));
                }
            };
            let pool = generations.pool_for(items.len());
            let group = Group {
                items,
                concurrency: settings.0,
                timeout: settings.1,
            };
            Pending::Running(pool.apipe(runner, group))
        };
        let encode = move |item: &T| postcard::to_allocvec(item).map_err(|err| err.to_string());
        let mut input = items;
        let pull = move |count: usize| -> Vec<Result<Vec<u8>, String>> {
            input
                .by_ref()
                .take(count)
                .map(|item| encode(&item))
                .collect()
        };
        let render_bytes = move |bytes: &[u8]| -> Option<String> {
            let render = render?;
            postcard::from_bytes::<T>(bytes)
                .ok()
                .map(|item| render(&item))
        };
        GroupCall {
            pull: Box::new(pull),
            send: Box::new(send),
            render: Box::new(render_bytes),
            input_done: false,
            group,
            window: 2 * self.nodes,
            running: Vec::new(),
            retry: VecDeque::new(),
            pulled: 0,
            ready: VecDeque::new(),
            ordered: ordered.then(VecDeque::new),
            yielded: 0,
            debug: self.debug,
        }
    }
}

impl fmt::Debug for AsyncProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncProcessPool")
            .field("nodes", &self.nodes)
            .field("concurrency", &self.concurrency)
            .field("timeout", &self.timeout)
            .field("maxtasksperchild", &self.maxtasksperchild)
            .field("debug", &self.debug)
            .finish()
    }
}

impl Drop for AsyncProcessPool {
    fn drop(&mut self) {
        event!(self.debug, nodes = self.nodes, "async process pool stopped");
    }
}

/// A `try_map` failure: the function's error as a [`RemoteError`].
fn text_failure(failure: ItemFailure<(String, String)>) -> WorkerError {
    match failure {
        ItemFailure::Returned {
            index,
            worker,
            input,
            error: (message, debug),
        } => WorkerError::new(
            index,
            ErrorKind::Failed(Box::new(RemoteError::from_texts(message, debug))),
        )
        .with_worker(worker)
        .with_input(input),
        ItemFailure::Worker(err) => err,
    }
}

type Outcome<R, S> = Result<R, ItemFailure<S>>;

/// A group on its way: the answer of the process pool, or why it could not be sent.
enum Pending<R, S> {
    Running(AsyncResult<Result<Vec<Answer<R, S>>, WorkerError>>),
    Broken(String),
}

struct RunningGroup<R, S> {
    /// The input index of each item, and its encoded copy (to run it again alone).
    items: Vec<(usize, Vec<u8>)>,
    pending: Pending<R, S>,
}

/// Pulls up to that many items, each encoded (or why it could not be).
type Pull = dyn FnMut(usize) -> Vec<Result<Vec<u8>, String>> + Send;
/// Sends a group of encoded items to the current generation of workers.
type SendGroup<R, S> = dyn Fn(&[Vec<u8>]) -> Pending<R, S> + Send;
/// Renders an item from its encoded copy, in debug mode.
type RenderBytes = dyn Fn(&[u8]) -> Option<String> + Send;

/// One call on the caller's side: pulls and encodes the input a group at a time, keeps
/// at most `window` groups out, and turns the answers into per-item outcomes.
pub(crate) struct GroupCall<R, S> {
    pull: Box<Pull>,
    send: Box<SendGroup<R, S>>,
    render: Box<RenderBytes>,
    input_done: bool,
    group: usize,
    window: usize,
    running: Vec<RunningGroup<R, S>>,
    /// Items of a group whose worker died, to run alone.
    retry: VecDeque<(usize, Vec<u8>)>,
    pulled: usize,
    /// Outcomes waiting to be yielded (completion order).
    ready: VecDeque<(usize, Outcome<R, S>)>,
    /// For input order: outcomes by index, waiting for their turn.
    ordered: Option<VecDeque<Option<Outcome<R, S>>>>,
    yielded: usize,
    debug: bool,
}

impl<R: Send + 'static, S: Send + 'static> GroupCall<R, S> {
    fn push(&mut self, index: usize, outcome: Outcome<R, S>) {
        match &mut self.ordered {
            None => self.ready.push_back((index, outcome)),
            Some(buffer) => {
                let slot = index - self.yielded;
                if buffer.len() <= slot {
                    buffer.resize_with(slot + 1, || None);
                }
                buffer[slot] = Some(outcome);
            }
        }
    }

    fn pop(&mut self) -> Option<(usize, Outcome<R, S>)> {
        match &mut self.ordered {
            None => self.ready.pop_front(),
            Some(buffer) => {
                if let Some(Some(_)) = buffer.front() {
                    let index = self.yielded;
                    self.yielded += 1;
                    buffer.pop_front().flatten().map(|outcome| (index, outcome))
                } else {
                    None
                }
            }
        }
    }

    fn dispatch(&mut self, items: Vec<(usize, Vec<u8>)>) {
        let bytes: Vec<Vec<u8>> = items.iter().map(|(_, b)| b.clone()).collect();
        let pending = (self.send)(&bytes);
        self.running.push(RunningGroup { items, pending });
    }

    /// Sends groups while the window has room: items to run alone first.
    fn fill(&mut self) {
        while self.running.len() < self.window {
            if let Some(single) = self.retry.pop_front() {
                self.dispatch(vec![single]);
                continue;
            }
            let ahead = self.pulled - self.yielded;
            if self.input_done
                || (self.ordered.is_some() && ahead >= self.window.saturating_mul(self.group))
            {
                break;
            }
            let pulled = (self.pull)(self.group);
            if pulled.is_empty() {
                self.input_done = true;
                break;
            }
            let mut items = Vec::with_capacity(pulled.len());
            for encoded in pulled {
                let index = self.pulled;
                self.pulled += 1;
                match encoded {
                    Ok(bytes) => items.push((index, bytes)),
                    Err(why) => {
                        let kind = ErrorKind::Transport(format!(
                            "the item could not be serialized: {why}"
                        ));
                        self.push(
                            index,
                            Err(ItemFailure::Worker(WorkerError::new(index, kind))),
                        );
                    }
                }
            }
            if !items.is_empty() {
                self.dispatch(items);
            }
        }
    }

    /// Turns a finished group into outcomes, or sends its items again one by one.
    fn absorb(
        &mut self,
        group: RunningGroup<R, S>,
        answer: Result<Vec<Answer<R, S>>, WorkerError>,
    ) {
        let answers = match answer {
            Ok(answers) if answers.len() == group.items.len() => answers,
            Ok(_) => {
                for (index, bytes) in group.items {
                    let kind = ErrorKind::Transport("the worker answered a group partly".into());
                    let err = WorkerError::new(index, kind).with_input((self.render)(&bytes));
                    self.push(index, Err(ItemFailure::Worker(err)));
                }
                return;
            }
            Err(err) if group.items.len() > 1 => {
                event!(self.debug, cause = %err.kind(), items = group.items.len(), "a worker process failed during a group; its items run again one by one");
                self.retry.extend(group.items);
                return;
            }
            Err(err) => {
                let (index, bytes) = group.items.into_iter().next().expect("a group has items");
                let err = WorkerError::new(index, same_kind(err.kind()))
                    .with_worker(err.worker())
                    .with_input((self.render)(&bytes))
                    .with_traceback_text(err.traceback().map(str::to_owned));
                event!(self.debug, index, cause = %err.kind(), "item failed");
                self.push(index, Err(ItemFailure::Worker(err)));
                return;
            }
        };
        for ((index, bytes), answer) in group.items.into_iter().zip(answers) {
            let input = || (self.render)(&bytes);
            let outcome = match answer {
                Answer::Done(value) => Ok(value),
                Answer::Returned(error) => Err(ItemFailure::Returned {
                    index,
                    worker: None,
                    input: input(),
                    error,
                }),
                Answer::Panicked { message, backtrace } => Err(ItemFailure::Worker(
                    WorkerError::from_panic(index, Box::new(message), None)
                        .with_traceback_text(backtrace)
                        .with_input(input()),
                )),
                Answer::TimedOut(after) => Err(ItemFailure::Worker(
                    WorkerError::new(index, ErrorKind::TimedOut { after }).with_input(input()),
                )),
            };
            if outcome.is_err() {
                event!(self.debug, index, "item failed");
            }
            self.push(index, outcome);
        }
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
            self.fill();
            if let Some(next) = self.pop() {
                return Poll::Ready(Some(next));
            }
            if self.running.is_empty() {
                return Poll::Ready(None);
            }
            let mut finished = Vec::new();
            for at in (0..self.running.len()).rev() {
                let answer = match &mut self.running[at].pending {
                    Pending::Running(pending) => match Pin::new(pending).poll(cx) {
                        Poll::Ready(answer) => answer,
                        Poll::Pending => continue,
                    },
                    Pending::Broken(why) => {
                        Err(WorkerError::new(0, ErrorKind::Transport(why.clone())))
                    }
                };
                finished.push((self.running.swap_remove(at), answer));
            }
            if finished.is_empty() {
                return Poll::Pending;
            }
            for (group, answer) in finished {
                if let Pending::Broken(_) = group.pending {
                    for (index, bytes) in group.items {
                        let kind = match &answer {
                            Err(err) => same_kind(err.kind()),
                            Ok(_) => ErrorKind::Cancelled,
                        };
                        let err = WorkerError::new(index, kind).with_input((self.render)(&bytes));
                        self.push(index, Err(ItemFailure::Worker(err)));
                    }
                } else {
                    self.absorb(group, answer);
                }
            }
        }
    }
}

/// A copy of `kind` for another index (the process pool numbers a group as its item 0).
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
        other => ErrorKind::Transport(other.to_string()),
    }
}

impl<R: Send + 'static> ResultSource<R> for GroupCall<R, (String, String)> {
    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<R, WorkerError>>> {
        self.poll_next(cx)
            .map(|next| next.map(|(_, outcome)| outcome.map_err(text_failure)))
    }

    fn progress(&self, out: &mut fmt::DebugStruct<'_, '_>) {
        out.field("pulled", &self.pulled)
            .field("groups_running", &self.running.len());
    }
}

result_stream! {
    /// The stream of [`AsyncProcessPool::imap`]: results in input order.
    ProcessImapStream(GroupCall<R, (String, String)>)
}

result_stream! {
    /// The stream of [`AsyncProcessPool::uimap`]: results as their groups finish.
    ProcessUimapStream(GroupCall<R, (String, String)>)
}

/// The process pool every `#[apmap(process)]` with this configuration shares.
fn async_process_pool(config: &crate::attribute_support::Config) -> &'static AsyncProcessPool {
    type Pools = Vec<(crate::attribute_support::Config, &'static AsyncProcessPool)>;
    static POOLS: Mutex<Pools> = Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, pool)) = pools.iter().find(|(c, _)| c == config) {
        return pool;
    }
    let mut builder = super::AsyncMultiPool::builder().debug(config.debug);
    if let Some(nodes) = config.nodes {
        builder = builder.nodes(nodes);
    }
    if let Some(concurrency) = config.concurrency {
        builder = builder.concurrency(concurrency);
    }
    if let Some(timeout) = config.timeout {
        builder = builder.timeout(timeout);
    }
    let pool: &'static AsyncProcessPool =
        Box::leak(Box::new(builder.processes().build().unwrap_or_else(
            |err| panic!("twat-mp could not build the #[apmap(process)] pool: {err}"),
        )));
    pools.push((*config, pool));
    pool
}

/// `#[apmap(process)]` on `async fn(T) -> R`: the results in input order, or the lowest
/// failing item's failure resumed in the caller (a panic's message as its payload, a
/// crash or timeout as its `WorkerError`).
pub fn apmap_process<T, R, F, Fut, I>(
    config: &crate::attribute_support::Config,
    render: Option<Render<T>>,
    f: F,
    items: I,
) -> impl Future<Output = Vec<R>> + Send + use<T, R, F, Fut, I>
where
    F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = R> + 'static,
    I: IntoIterator<Item = T>,
    T: CrossProcess,
    R: CrossProcess,
{
    let f = move |x: T| {
        let future = f(x);
        async move { Ok::<R, Infallible>(future.await) }
    };
    let run = async_process_pool(config).run_map::<_, _, _, _, _, ByText, _>(f, items, render);
    async move {
        match run.await {
            Ok(results) => results,
            Err(ItemFailure::Worker(err)) => err.resume_unwind(),
            Err(ItemFailure::Returned { error, .. }) => {
                unreachable!("a function that cannot fail returned {error:?}")
            }
        }
    }
}

/// `#[apmap(process)]` on `async fn(T) -> Result<R, E>`: the results in input order, or
/// the lowest failing item's own `E` (which crosses back as a serde value).
pub fn apmap_result_process<T, R, E, F, Fut, I>(
    config: &crate::attribute_support::Config,
    render: Option<Render<T>>,
    f: F,
    items: I,
) -> impl Future<Output = Result<Vec<R>, E>> + Send + use<T, R, E, F, Fut, I>
where
    F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + 'static,
    I: IntoIterator<Item = T>,
    T: CrossProcess,
    R: CrossProcess,
    E: CrossProcess,
{
    let run = async_process_pool(config).run_map::<_, _, _, _, _, ByValue, _>(f, items, render);
    async move { run.await.map_err(ItemFailure::into_original) }
}
