//! What crosses to a worker process of [`AsyncProcessPool`](super::AsyncProcessPool),
//! and what runs there: a *group* of items is one item of the underlying
//! [`ProcessPool`](crate::ProcessPool), run on the worker process's own tokio runtime.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::aio::dispatch::CatchPanic;
use crate::panic_capture;
use crate::process::CrossProcess;
use crate::process::remote::ErrorWire;

/// A group of items, as it crosses to a worker process.
#[derive(Serialize, Deserialize)]
pub(super) struct Group<T> {
    pub(super) items: Vec<T>,
    pub(super) concurrency: u32,
    pub(super) timeout: Option<Duration>,
}

/// One item's answer from a worker process.
#[derive(Serialize, Deserialize)]
pub(super) enum Answer<R> {
    Done(R),
    /// The function's own error, encoded as its [`ErrorWire`] says.
    Returned(Vec<u8>),
    Panicked {
        message: String,
        backtrace: Option<String>,
    },
    TimedOut(Duration),
    /// The function's error could not be encoded.
    Unsendable(String),
}

thread_local! {
    /// The worker process's runtime, built on its first group.
    static RUNTIME: std::cell::OnceCell<tokio::runtime::Runtime> = const { std::cell::OnceCell::new() };
}

/// Runs one group in a worker process with the function `f`: every item at once (up to
/// its concurrency) on the process's own runtime; one answer per item, in order.
fn run_group<F, Fut, T, R, E, W>(f: F, group: Group<T>) -> Vec<Answer<R>>
where
    F: Fn(T) -> Fut + Copy + 'static,
    Fut: Future<Output = Result<R, E>> + 'static,
    T: 'static,
    R: 'static,
    E: 'static,
    W: ErrorWire<E>,
{
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
                        run_one::<F, Fut, T, R, E, W>(f, item, timeout).await
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

async fn run_one<F, Fut, T, R, E, W>(f: F, item: T, timeout: Option<Duration>) -> Answer<R>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R, E>>,
    W: ErrorWire<E>,
{
    let panicked = |caught: panic_capture::CaughtPanic| Answer::Panicked {
        message: crate::error::panic_message(caught.payload.as_ref()),
        backtrace: caught.backtrace.map(|b| b.to_string()),
    };
    let future = match panic_capture::catch(|| f(item)) {
        Ok(future) => future,
        Err(caught) => return panicked(caught),
    };
    let future = std::pin::pin!(future);
    let future = CatchPanic(future);
    let outcome = match timeout {
        None => future.await,
        Some(after) => match tokio::time::timeout(after, future).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => return Answer::TimedOut(after),
        },
    };
    match outcome {
        Ok(Ok(value)) => Answer::Done(value),
        Ok(Err(error)) => {
            let mut bytes = Vec::new();
            match W::encode(error, &mut bytes) {
                Ok(()) => Answer::Returned(bytes),
                Err(err) => Answer::Unsendable(err.to_string()),
            }
        }
        Err(caught) => panicked(caught),
    }
}

/// The group runner for `f`: a closure that captures only `f`, which captures nothing,
/// so it too is zero-sized and the process pool can name it in a worker.
pub(super) fn group_runner<F, Fut, T, R, E, W>(
    f: F,
) -> impl Fn(Group<T>) -> Vec<Answer<R>> + Copy + Send + Sync + 'static
where
    F: Fn(T) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + 'static,
    T: CrossProcess,
    R: CrossProcess,
    E: 'static,
    W: ErrorWire<E>,
{
    move |group| run_group::<F, Fut, T, R, E, W>(f, group)
}
