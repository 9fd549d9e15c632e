//! One call of an [`AsyncProcessPool`](super::AsyncProcessPool) on the caller's side:
//! [`GroupCall`] pulls and encodes the input a group at a time, keeps a bounded number of
//! groups out, and turns their answers into per-item outcomes within the engine's
//! [`Window`].

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::group::Answer;
use crate::aio::stream::{ResultSource, result_stream};
use crate::async_result::AsyncResult;
use crate::debug::event;
use crate::engine::item::{ItemFailure, Outcome};
use crate::engine::order::Window;
use crate::error::{ErrorKind, WorkerError};
use crate::process::Stopper;

/// A group on its way: the answer of the process pool (and what stops it), or why it
/// could not be sent.
pub(super) enum Pending<R> {
    Running(AsyncResult<Result<Vec<Answer<R>>, WorkerError>>, Stopper),
    Broken(String),
}

struct RunningGroup<R> {
    /// The input index of each item, and its encoded copy (to run it again alone).
    items: Vec<(usize, Vec<u8>)>,
    pending: Pending<R>,
}

/// Pulls up to that many items, each encoded (or why it cannot cross, in words).
pub(super) type Pull = dyn FnMut(usize) -> Vec<Result<Vec<u8>, String>> + Send;
/// Sends a group of encoded items to the current generation of workers.
pub(super) type SendGroup<R> = dyn Fn(&[Vec<u8>]) -> Pending<R> + Send;
/// Renders an item from its encoded copy, in debug mode.
pub(super) type RenderBytes = dyn Fn(&[u8]) -> Option<String> + Send;
/// Decodes the function's own error as its `ErrorWire` encoded it.
pub(super) type DecodeError<S> = fn(&[u8]) -> postcard::Result<(S, &[u8])>;

/// How a call reaches the workers: made by the pool for one function.
pub(super) struct Transport<R, S> {
    pub(super) pull: Box<Pull>,
    pub(super) send: Box<SendGroup<R>>,
    pub(super) render: Box<RenderBytes>,
    pub(super) decode_error: DecodeError<S>,
}

/// One call: the groups out, the items to run again alone, and the window of outcomes.
pub(crate) struct GroupCall<R, S> {
    transport: Transport<R, S>,
    input_done: bool,
    group: usize,
    /// The most groups out at once.
    max_groups: usize,
    running: Vec<RunningGroup<R>>,
    /// Items of a group whose worker died, to run alone.
    retry: VecDeque<(usize, Vec<u8>)>,
    window: Window<Outcome<R, S>>,
    debug: bool,
}

impl<R: Send + 'static, S: Send + 'static> GroupCall<R, S> {
    /// A call that sends groups of `group` items, at most `max_groups` at once.
    pub(super) fn new(
        transport: Transport<R, S>,
        group: usize,
        max_groups: usize,
        ordered: bool,
        debug: bool,
    ) -> Self {
        GroupCall {
            transport,
            input_done: false,
            group,
            max_groups,
            running: Vec::new(),
            retry: VecDeque::new(),
            window: Window::new(max_groups.saturating_mul(group), ordered),
            debug,
        }
    }

    /// Pulls no more input: the items pulled so far still answer.
    pub(super) fn stop_input(&mut self) {
        self.input_done = true;
    }

    fn fail(&mut self, index: usize, kind: ErrorKind, bytes: &[u8]) {
        let err = WorkerError::new(index, kind).with_input((self.transport.render)(bytes));
        self.window.finish(index, Err(ItemFailure::Worker(err)));
    }

    fn dispatch(&mut self, items: Vec<(usize, Vec<u8>)>) {
        let bytes: Vec<Vec<u8>> = items.iter().map(|(_, b)| b.clone()).collect();
        let pending = (self.transport.send)(&bytes);
        self.running.push(RunningGroup { items, pending });
    }

    /// Sends groups while there is room: items to run alone first.
    fn fill(&mut self) {
        while self.running.len() < self.max_groups {
            if let Some(single) = self.retry.pop_front() {
                self.dispatch(vec![single]);
                continue;
            }
            if self.input_done || !self.window.has_room() {
                break;
            }
            let pulled = (self.transport.pull)(self.group);
            if pulled.is_empty() {
                self.input_done = true;
                break;
            }
            let first = self.window.start(pulled.len());
            let mut items = Vec::with_capacity(pulled.len());
            for (index, encoded) in (first..).zip(pulled) {
                match encoded {
                    Ok(bytes) => items.push((index, bytes)),
                    Err(why) => {
                        let kind = ErrorKind::Transport(why);
                        self.window.finish(
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
    fn absorb(&mut self, group: RunningGroup<R>, answer: Result<Vec<Answer<R>>, WorkerError>) {
        let answers = match answer {
            Ok(answers) if answers.len() == group.items.len() => answers,
            Ok(_) => {
                for (index, bytes) in group.items {
                    let kind = ErrorKind::Transport("the worker answered a group partly".into());
                    self.fail(index, kind, &bytes);
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
                    .with_input((self.transport.render)(&bytes))
                    .with_traceback_text(err.traceback().map(str::to_owned));
                let failure = ItemFailure::Worker(err);
                failure.log(self.debug);
                self.window.finish(index, Err(failure));
                return;
            }
        };
        for ((index, bytes), answer) in group.items.into_iter().zip(answers) {
            let input = || (self.transport.render)(&bytes);
            let failure = match answer {
                Answer::Done(value) => {
                    self.window.finish(index, Ok(value));
                    continue;
                }
                Answer::Returned(encoded) => match (self.transport.decode_error)(&encoded) {
                    Ok((error, _)) => ItemFailure::Returned {
                        index,
                        worker: None,
                        input: input(),
                        error,
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
                Answer::Panicked(panic) => {
                    ItemFailure::Worker(panic.into_worker_error(index).with_input(input()))
                }
                Answer::TimedOut(after) => ItemFailure::Worker(
                    WorkerError::new(index, ErrorKind::TimedOut { after }).with_input(input()),
                ),
            };
            failure.log(self.debug);
            self.window.finish(index, Err(failure));
        }
    }

    /// The next outcome with its index; `None` once every item has answered.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Outcome<R, S>)>> {
        loop {
            if let Some(next) = self.window.pop() {
                return Poll::Ready(Some(next));
            }
            self.fill();
            if let Some(next) = self.window.pop() {
                return Poll::Ready(Some(next));
            }
            if self.running.is_empty() {
                debug_assert_eq!(self.window.running(), 0, "every item sent has answered");
                return Poll::Ready(None);
            }
            let mut finished = Vec::new();
            for at in (0..self.running.len()).rev() {
                let answer = match &mut self.running[at].pending {
                    Pending::Running(pending, _) => match Pin::new(pending).poll(cx) {
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
                        self.fail(index, kind, &bytes);
                    }
                } else {
                    self.absorb(group, answer);
                }
            }
        }
    }

    /// The next outcome, awaited.
    pub(super) async fn next(&mut self) -> Option<(usize, Outcome<R, S>)> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }
}

impl<R, S> Drop for GroupCall<R, S> {
    fn drop(&mut self) {
        // Nobody wants the answers of the groups still out (a `map` decided by a failure,
        // a stream dropped): stop them, so that their worker processes are free at once
        // and the pool's drop waits for none of them.
        for group in &self.running {
            if let Pending::Running(_, stopper) = &group.pending {
                stopper.stop();
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

impl<R: Send + 'static> ResultSource<R> for GroupCall<R, Infallible> {
    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<R, WorkerError>>> {
        self.poll_next(cx).map(|next| {
            next.map(|(_, outcome)| outcome.map_err(ItemFailure::into_infallible_worker_error))
        })
    }

    fn progress(&self, out: &mut fmt::DebugStruct<'_, '_>) {
        out.field("yielded", &self.window.yielded())
            .field("in_flight", &self.window.running())
            .field("groups_running", &self.running.len());
    }
}

result_stream! {
    /// The stream of [`AsyncProcessPool::imap`](super::AsyncProcessPool::imap): results in
    /// input order.
    ProcessImapStream(GroupCall<R, Infallible>)
}

result_stream! {
    /// The stream of [`AsyncProcessPool::uimap`](super::AsyncProcessPool::uimap): results
    /// as their groups finish.
    ProcessUimapStream(GroupCall<R, Infallible>)
}
