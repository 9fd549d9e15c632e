//! What crosses to a worker process of [`AsyncProcessPool`](super::AsyncProcessPool),
//! and what runs there: a *group* of items is one item of the underlying
//! [`ProcessPool`](crate::ProcessPool), run on the worker process's own tokio runtime.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::aio::dispatch::CatchPanic;
use crate::panic_capture::{self, RemotePanic};
use crate::process::CrossProcess;
use crate::process::remote::{Callee, ErrorWire, NoError, RemoteFn, Split};

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
    Panicked(RemotePanic),
    TimedOut(Duration),
    /// The function's error could not be encoded.
    Unsendable(String),
}

thread_local! {
    /// The worker process's runtime, built on its first group.
    static RUNTIME: std::cell::OnceCell<tokio::runtime::Runtime> = const { std::cell::OnceCell::new() };
}

/// Runs one group in a worker process with the function `f`: every item at once (up to
/// its concurrency) on the process's own runtime; one answer per item, in order. `K`
/// splits each future's output into its value and its own error, which crosses as `W`
/// says.
fn run_group<P, T, K, W>(f: P, group: Group<T>) -> Vec<Answer<K::Ok>>
where
    P: Callee<T>,
    P::Output: Future + 'static,
    T: 'static,
    K: Split<<P::Output as Future>::Output>,
    K::Ok: 'static,
    W: ErrorWire<K::Err>,
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
                        run_one::<P, T, K, W>(f, item, timeout).await
                    })
                })
                .collect();
            let mut answers = Vec::with_capacity(handles.len());
            for handle in handles {
                answers.push(handle.await.unwrap_or_else(|err| {
                    Answer::Panicked(RemotePanic::message(format!("the task was lost: {err}")))
                }));
            }
            answers
        })
    })
}

async fn run_one<P, T, K, W>(f: P, item: T, timeout: Option<Duration>) -> Answer<K::Ok>
where
    P: Callee<T>,
    P::Output: Future,
    K: Split<<P::Output as Future>::Output>,
    W: ErrorWire<K::Err>,
{
    let panicked = |caught| Answer::Panicked(RemotePanic::new(caught));
    let future = match panic_capture::catch(|| f.call(item)) {
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
    match outcome.map(K::split) {
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

/// The group runner for the async function `P`, as the underlying process pool runs it:
/// one item of that pool is a whole [`Group`]. The user's function pointer is what
/// crosses.
pub(super) struct Grouped<P, T, K, W> {
    f: P,
    types: PhantomData<fn(T) -> (K, W)>,
}

impl<P: Copy, T, K, W> Clone for Grouped<P, T, K, W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Copy, T, K, W> Copy for Grouped<P, T, K, W> {}

impl<P, T, K, W> Grouped<P, T, K, W> {
    pub(super) fn new(f: P) -> Self {
        Grouped {
            f,
            types: PhantomData,
        }
    }
}

impl<P, T, K, W> RemoteFn for Grouped<P, T, K, W>
where
    P: Callee<T>,
    P::Output: Future + 'static,
    T: CrossProcess,
    K: Split<<P::Output as Future>::Output>,
    K::Ok: CrossProcess,
    W: ErrorWire<K::Err>,
{
    type In = Group<T>;
    type Out = Vec<Answer<K::Ok>>;
    type Err = Infallible;
    type Wire = NoError;
    type Code = P::Code;
    fn code(self) -> P::Code {
        self.f.code()
    }
    fn from_code(code: P::Code) -> Self {
        Grouped::new(P::from_code(code))
    }
    fn call(self, group: Group<T>) -> Result<Self::Out, Infallible> {
        Ok(run_group::<P, T, K, W>(self.f, group))
    }
}
