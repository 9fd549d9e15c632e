//! The lazy maps of [`ThreadPool`](crate::ThreadPool): [`Imap`] (input order) and
//! [`Uimap`] (completion order), over the engine's [`Window`] of items in flight.

use std::convert::Infallible;
use std::fmt;
use std::iter::FusedIterator;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};

use crate::engine::item::{CancelFlag, ItemFailure, Outcome};
use crate::engine::order::Window;
use crate::error::WorkerError;

/// Pulls up to one chunk of input, starts it on the pool from the given index, and says
/// how many items it pulled (0 once the input has ended).
type Feed<'pool> = Box<dyn FnMut(&rayon::ThreadPool, usize) -> usize + 'pool>;

/// The lazy map shared by `imap`, `uimap` and the `#[imap]` attribute: pulls input on the
/// consumer's thread, a chunk at a time, only while fewer than `window` items run ahead
/// of the consumer.
pub(crate) struct LazyMap<'pool, R, E> {
    pool: &'pool rayon::ThreadPool,
    feed: Feed<'pool>,
    input_done: bool,
    results: Receiver<(usize, Outcome<R, E>)>,
    cancel: Arc<CancelFlag>,
    window: Window<Outcome<R, E>>,
}

impl<'pool, R: Send + 'static, E: Send + 'static> LazyMap<'pool, R, E> {
    pub(crate) fn new<T, I, F>(
        pool: &'pool rayon::ThreadPool,
        mut input: I,
        run: F,
        chunk: usize,
        window: usize,
        ordered: bool,
    ) -> Self
    where
        I: Iterator<Item = T> + 'pool,
        T: Send + 'static,
        F: Fn(usize, T) -> Outcome<R, E> + Send + Sync + 'static,
    {
        let (sender, results) = mpsc::channel();
        let cancel = Arc::new(CancelFlag::default());
        let run = Arc::new(run);
        let job_cancel = Arc::clone(&cancel);
        let feed = move |pool: &rayon::ThreadPool, first: usize| {
            let batch: Vec<T> = input.by_ref().take(chunk).collect();
            let pulled = batch.len();
            if pulled > 0 {
                spawn_chunk(pool, first, batch, &run, &sender, &job_cancel);
            }
            pulled
        };
        let mut lazy = LazyMap {
            pool,
            feed: Box::new(feed),
            input_done: false,
            results,
            cancel,
            window: Window::new(window.max(chunk), ordered),
        };
        // Start work at once, as Python's imap does, rather than on the first `next`.
        lazy.fill();
        lazy
    }

    /// Starts chunks while the window has room.
    fn fill(&mut self) {
        while !self.input_done && self.window.has_room() {
            let pulled = (self.feed)(self.pool, self.window.started());
            self.window.start(pulled);
            self.input_done = pulled == 0;
        }
    }

    /// Waits for the next finished item. Called only with items in flight.
    fn receive(&mut self) -> (usize, Outcome<R, E>) {
        // On one of the pool's own threads a blocking wait could starve the very jobs it
        // waits for: help run them instead.
        if self.pool.current_thread_index().is_some() {
            loop {
                match self.results.try_recv() {
                    Ok(message) => return message,
                    Err(TryRecvError::Empty) => {
                        if self.pool.yield_now() != Some(rayon::Yield::Executed) {
                            std::thread::yield_now();
                        }
                    }
                    Err(TryRecvError::Disconnected) => unreachable!("the map holds a sender"),
                }
            }
        }
        self.results
            .recv()
            .expect("every job in flight holds a sender")
    }
}

impl<R: Send + 'static, E: Send + 'static> Iterator for LazyMap<'_, R, E> {
    type Item = Outcome<R, E>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.fill();
            if let Some((_, outcome)) = self.window.pop() {
                return Some(outcome);
            }
            if self.window.running() == 0 {
                return None;
            }
            let (index, outcome) = self.receive();
            self.window.finish(index, outcome);
        }
    }
}

impl<R: Send + 'static, E: Send + 'static> FusedIterator for LazyMap<'_, R, E> {}

impl<R, E> Drop for LazyMap<'_, R, E> {
    fn drop(&mut self) {
        // Items not started yet are skipped; the pool stays free for other work.
        self.cancel.cancel();
    }
}

fn spawn_chunk<T, R, E, F>(
    pool: &rayon::ThreadPool,
    first: usize,
    batch: Vec<T>,
    run: &Arc<F>,
    sender: &Sender<(usize, Outcome<R, E>)>,
    cancel: &Arc<CancelFlag>,
) where
    T: Send + 'static,
    R: Send + 'static,
    E: Send + 'static,
    F: Fn(usize, T) -> Outcome<R, E> + Send + Sync + 'static,
{
    let (run, sender, cancel) = (Arc::clone(run), sender.clone(), Arc::clone(cancel));
    pool.spawn(move || {
        for (index, item) in (first..).zip(batch) {
            if cancel.is_cancelled() || sender.send((index, run(index, item))).is_err() {
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
    Imap
}

lazy_iterator! {
    /// The iterator of [`ThreadPool::uimap`](crate::ThreadPool::uimap): results in the
    /// order they finish.
    Uimap
}
