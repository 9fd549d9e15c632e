//! The lazy maps of [`ThreadPool`](crate::ThreadPool): [`Imap`] (input order) and
//! [`Uimap`] (completion order), over the engine's [`Window`] of items in flight and its
//! [`Feed`] of input.

use std::convert::Infallible;
use std::fmt;
use std::iter::FusedIterator;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::Instant;

use crate::engine::feed::{Feed, READ_AHEAD, Take};
use crate::engine::item::{CancelFlag, ItemFailure, Outcome};
use crate::engine::order::Window;
use crate::engine::progress::Progress;
use crate::error::WorkerError;

/// What reaches the consumer of a lazy map, on one channel: it waits in one place for
/// results and for input.
enum Message<R, E> {
    /// The feed has the items the map asked for, or the input has ended; or the time to
    /// look at the feed again has come.
    Input,
    /// The item at `index` has its outcome; `last` when it ends its job.
    Done {
        index: usize,
        outcome: Outcome<R, E>,
        last: bool,
    },
}

/// What [`StartChunks::start`] did.
enum Started {
    /// A job of this many items was started.
    Chunk(usize),
    /// Not enough input now (see [`Feed::take`]): look again when a [`Message::Input`]
    /// comes, or by the deadline.
    Later(Option<Instant>),
    /// The input has ended and every item was started.
    Ended,
}

/// The part of a lazy map that knows the item type: takes chunks from the feed and starts
/// them on the pool.
trait StartChunks {
    /// Starts up to `max` items as one job, their indices from `first`: a full chunk, or
    /// fewer at the end of the input, or when `idle` (a thread waits for work) and the
    /// input has stopped giving (see [`Feed::take`]).
    fn start(&mut self, pool: &rayon::ThreadPool, first: usize, max: usize, idle: bool) -> Started;

    /// See [`Feed::allow`].
    fn allow(&mut self, total: usize, step: usize);

    /// See [`Feed::finish`].
    fn finish(&mut self);
}

struct Chunks<T, F, R, E> {
    feed: Feed<T>,
    run: Arc<F>,
    sender: Sender<Message<R, E>>,
    cancel: Arc<CancelFlag>,
}

impl<T, F, R, E> StartChunks for Chunks<T, F, R, E>
where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
    F: Fn(usize, T) -> Outcome<R, E> + Send + Sync + 'static,
{
    fn start(&mut self, pool: &rayon::ThreadPool, first: usize, max: usize, idle: bool) -> Started {
        match self.feed.take(max, idle) {
            Take::Items(batch) => {
                let count = batch.len();
                spawn_chunk(pool, first, batch, &self.run, &self.sender, &self.cancel);
                Started::Chunk(count)
            }
            Take::Later(deadline) => Started::Later(deadline),
            Take::Ended => Started::Ended,
        }
    }

    fn allow(&mut self, total: usize, step: usize) {
        self.feed.allow(total, step);
    }

    fn finish(&mut self) {
        self.feed.finish();
    }
}

/// The lazy map shared by `imap`, `uimap` and the `#[imap]` attribute. Its input is
/// pulled by a [`Feed`] only while fewer than `window` items run ahead of the consumer;
/// the consumer starts what the feed has, a chunk at a time (or less, when a thread is
/// idle and the input has stopped giving), whenever it is in `next`, and waits on one
/// channel for results and input.
pub(crate) struct LazyMap<'pool, R, E> {
    pool: &'pool rayon::ThreadPool,
    input: Box<dyn StartChunks + 'pool>,
    input_done: bool,
    results: Receiver<Message<R, E>>,
    cancel: Arc<CancelFlag>,
    window: Window<Outcome<R, E>>,
    chunk: usize,
    /// The least allowance worth granting the feeder between waits: half the window, so
    /// that it pulls in runs rather than an item at a time.
    step: usize,
    /// Jobs started and not finished.
    jobs: usize,
    nodes: usize,
    /// When to look at the feed again even if no message comes: a short chunk's patience.
    look_again: Option<Instant>,
    /// The call's progress bar, fed each outcome handed over; ends with the map.
    progress: Option<Progress>,
}

impl<'pool, R: Send + 'static, E: Send + 'static> LazyMap<'pool, R, E> {
    pub(crate) fn new<T, I, F>(
        pool: &'pool rayon::ThreadPool,
        input: I,
        progress: Option<Progress>,
        run: F,
        chunk: usize,
        window: usize,
        ordered: bool,
    ) -> Self
    where
        I: Iterator<Item = T> + Send + 'static,
        T: Send + 'static,
        F: Fn(usize, T) -> Outcome<R, E> + Send + Sync + 'static,
    {
        let (sender, results) = mpsc::channel();
        let cancel = Arc::new(CancelFlag::default());
        let limit = window.max(chunk);
        let window = Window::new(limit, ordered);
        // Two windows, if that is more than the least read-ahead.
        let mut feed = Feed::spawn(input, (2 * limit).max(READ_AHEAD));
        let wake = sender.clone();
        feed.wake_with(move || {
            let _ = wake.send(Message::Input);
        });
        let input = Chunks {
            feed,
            run: Arc::new(run),
            sender,
            cancel: Arc::clone(&cancel),
        };
        let mut lazy = LazyMap {
            pool,
            input: Box::new(input),
            input_done: false,
            results,
            cancel,
            window,
            chunk,
            step: (limit / 2).max(1),
            jobs: 0,
            nodes: pool.current_num_threads(),
            look_again: None,
            progress,
        };
        // The feeder starts pulling at once; jobs start at the first `next`.
        let allowance = lazy.allowance();
        lazy.input.allow(allowance, 0);
        lazy
    }

    /// Starts chunks of what the feed has while the window has room, and lets the feeder
    /// pull what the window allows. A chunk stays whole: the last one may reach past the
    /// window by less than a chunk, as it always could.
    fn start_chunks(&mut self) {
        self.look_again = None;
        while !self.input_done && self.window.has_room() {
            let idle = self.jobs < self.nodes;
            match self
                .input
                .start(self.pool, self.window.started(), self.chunk, idle)
            {
                Started::Chunk(count) => {
                    self.window.start(count);
                    self.jobs += 1;
                }
                Started::Later(deadline) => {
                    self.look_again = deadline;
                    break;
                }
                Started::Ended => self.input_done = true,
            }
        }
        self.input.allow(self.allowance(), self.step);
    }

    /// How many items the feeder may have pulled in all: what the window lets start, and
    /// the rest of the chunk that may reach past it.
    fn allowance(&self) -> usize {
        self.window.allowance() + self.chunk - 1
    }

    /// Waits for the next message: an outcome, or input (or the time to look again).
    fn receive(&mut self) -> Message<R, E> {
        // On one of the pool's own threads a blocking wait could starve the very jobs it
        // waits for: help run them instead.
        if self.pool.current_thread_index().is_some() {
            loop {
                match self.results.try_recv() {
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
                    .results
                    .recv_timeout(at.saturating_duration_since(Instant::now()))
                {
                    Ok(message) => message,
                    Err(RecvTimeoutError::Timeout) => Message::Input,
                    Err(RecvTimeoutError::Disconnected) => unreachable!("the map holds a sender"),
                }
            }
            None => self.results.recv().expect("the map holds a sender"),
        }
    }
}

impl<R: Send + 'static, E: Send + 'static> Iterator for LazyMap<'_, R, E> {
    type Item = Outcome<R, E>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.start_chunks();
            if let Some((_, outcome)) = self.window.pop() {
                if let Some(progress) = &self.progress {
                    progress.item(outcome.is_ok());
                }
                return Some(outcome);
            }
            if self.input_done && self.window.running() == 0 {
                self.input.finish();
                return None;
            }
            // Something runs (its outcome will come), or the feed was asked for input.
            match self.receive() {
                Message::Input => {}
                Message::Done {
                    index,
                    outcome,
                    last,
                } => {
                    self.jobs -= usize::from(last);
                    self.window.finish(index, outcome);
                }
            }
        }
    }
}

impl<R: Send + 'static, E: Send + 'static> FusedIterator for LazyMap<'_, R, E> {}

impl<R, E> Drop for LazyMap<'_, R, E> {
    fn drop(&mut self) {
        // Items not started yet are skipped; the pool stays free for other work. The feed,
        // dropped with the map, stops its feeder.
        self.cancel.cancel();
    }
}

fn spawn_chunk<T, R, E, F>(
    pool: &rayon::ThreadPool,
    first: usize,
    batch: Vec<T>,
    run: &Arc<F>,
    sender: &Sender<Message<R, E>>,
    cancel: &Arc<CancelFlag>,
) where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
    F: Fn(usize, T) -> Outcome<R, E> + Send + Sync + 'static,
{
    let (run, sender, cancel) = (Arc::clone(run), sender.clone(), Arc::clone(cancel));
    let last = first + batch.len() - 1;
    pool.spawn(move || {
        for (index, item) in (first..).zip(batch) {
            if cancel.is_cancelled() {
                return;
            }
            let outcome = run(index, item);
            let done = Message::Done {
                index,
                outcome,
                last: index == last,
            };
            if sender.send(done).is_err() {
                return;
            }
        }
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
                    .field("yielded", &self.lazy.window.yielded())
                    .field("in_flight", &self.lazy.window.running())
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
