//! One call of a process pool, on the caller's side: pulls and encodes the input in
//! batches (sized automatically from the measured cost of an item, unless a `chunksize`
//! was set), keeps a bounded number of them in flight, and decodes what comes back. The
//! eager calls pull their input on the spot; the lazy ones ([`LazyCall`]) take it from a
//! [`Feed`] that pulls it on a thread of its own.

use std::collections::VecDeque;
use std::iter::Peekable;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::remote::{
    Decoded, Failure, OK, RemoteFn, StateSpec, cost_key, decode_records, function_id, render_input,
};
use super::slot::{Batch, CallLife, CallLink, CallState, Cancel, Delivery, PIPELINE_DEPTH, Slots};
use super::wire;
use crate::engine::feed::{Feed, Pull, Pulled, READ_AHEAD};
use crate::engine::gather::Gather;
use crate::engine::item::ItemFailure;
use crate::engine::order::Reorder;
use crate::engine::progress::Progress;
use crate::engine::render::Render;
use crate::engine::retry::Attempts;
use crate::error::{ErrorKind, WorkerError};

/// How long one batch should keep a worker busy: long enough that the round trip is
/// noise, short enough to spread work evenly and to lose little if a worker dies.
const TARGET: Duration = Duration::from_millis(2);
/// The most items in one batch.
const MAX_ITEMS: usize = 1 << 16;
/// A batch is closed once its items take this many bytes.
const MAX_BYTES: usize = 1 << 20;
/// The most items in one batch of a lazy map (`imap`, `uimap`): what the caller holds
/// in flight (pulled ahead, encoded, answered and waiting for its turn) is a few
/// windows of batches, so a batch learned from time alone (hundreds of thousands of
/// trivial items) would make the caller's memory grow with the input's length up to
/// that size (2 M trivial items took 3.6× the peak RSS of 20 k).
const LAZY_MAX_ITEMS: usize = 2048;
/// A lazy map's batch is closed once its items take this many bytes; a batch closed so
/// caps the call's batches at its number of items (the feeder pulls ahead in items).
const LAZY_MAX_BYTES: usize = 64 << 10;
/// Batches of at most this many items may be many per worker at once: its slot sends
/// them ahead (see `slot::PIPELINE_DEPTH`), so the call keeps enough of them queued.
const SMALL_BATCH: usize = 64;
// A batch under `MAX_BYTES` and one more item of the largest size fit in a frame.
const _: () = assert!(MAX_BYTES + wire::MAX_ITEM + 64 <= wire::MAX_FRAME);

/// The engine of every method: yields decoded chunks of results, in completion order.
pub(crate) struct Call<A: RemoteFn, I> {
    shared: Arc<Slots>,
    link: Arc<CallLink>,
    /// Keeps the call's per-call state in the workers, if any, until the call ends here.
    _life: Option<Arc<CallLife>>,
    receiver: Receiver<Delivery>,
    input: I,
    input_done: bool,
    /// Stop pulling input (a failure made the rest useless, or the pool refused).
    stopped: bool,
    /// Items pulled so far: the index of the next one.
    pub(crate) pulled: usize,
    /// Batches queued and not yet ended.
    batches_out: usize,
    /// When to ask the input again even if nothing comes: a short batch's patience.
    look_again: Option<Instant>,
    /// Chunks made here rather than by a worker (an item that could not be encoded).
    local: Vec<Decoded<A>>,
    /// Batches made by `fill`, queued together when it ends (one lock of the queue).
    outgoing: Vec<Batch>,
    /// Deliveries that came together ([`Delivery::Several`]), not yet looked at.
    pending: VecDeque<Delivery>,
    render: Option<Render<A::In>>,
    /// Why the function cannot be sent to a worker, if it cannot: each item fails so.
    refused: Option<String>,
    batch_size: usize,
    fixed: bool,
    max_batch: usize,
    /// A batch is closed once its items take this many bytes.
    max_bytes: usize,
    pub(crate) window: usize,
    /// What the pool remembers the cost of an item of this function by.
    cost_key: u64,
    /// The call's span in debug mode.
    span: tracing::Span,
    /// The call's progress bar, fed each chunk of outcomes as it arrives.
    progress: Option<Progress>,
    _f: PhantomData<A>,
}

/// A call's per-call state in the workers (`map_init`, `map_with`): `None` for none,
/// `Some(Err(why))` when it cannot be made (each item then fails with `why`).
pub(crate) type StateSetup = Option<Result<StateSpec, String>>;

/// A [`StateSetup`] given its id in the workers: what the calls that share one state
/// carry (the sessions of one async process call, which is one call to its `init`). The
/// workers drop the state once the last of them ends.
pub(crate) type MadeState = Option<Result<(Arc<CallState>, Arc<CallLife>), String>>;

/// The state of a call, with an id of its own.
pub(crate) fn make_state(state: StateSetup, shared: &Arc<Slots>) -> MadeState {
    state.map(|state| state.map(|spec| CallState::new(spec, shared)))
}

impl<A: RemoteFn, I: Pull<Item = A::In>> Call<A, I> {
    pub(crate) fn new(
        shared: Arc<Slots>,
        function: A,
        input: I,
        render: Option<Render<A::In>>,
        state: StateSetup,
    ) -> Self {
        let state = make_state(state, &shared);
        Self::stoppable(shared, function, input, render, Arc::default(), state)
    }

    /// A call that [`Slots::stop_call`] with `cancel` stops, from any thread.
    pub(crate) fn stoppable(
        shared: Arc<Slots>,
        function: A,
        mut input: I,
        render: Option<Render<A::In>>,
        cancel: Arc<Cancel>,
        state: MadeState,
    ) -> Self {
        let (sender, receiver) = mpsc::channel();
        let cost_key = cost_key(function);
        let wake = sender.clone();
        input.wake_with(move || {
            let _ = wake.send(Delivery::Input);
        });
        let (function, mut refused) = match function_id(function) {
            Ok(function) => (Some(function), None),
            Err(err) => (
                None,
                Some(format!(
                    "the function cannot be sent to a worker process: {err}"
                )),
            ),
        };
        let (state, life) = match state {
            None => (None, None),
            Some(Ok((state, life))) => (Some(state), Some(life)),
            Some(Err(why)) => {
                refused = refused.or(Some(why));
                (None, None)
            }
        };
        let function = function.filter(|_| refused.is_none());
        let nodes = shared.nodes;
        let hint = input.min_len();
        let max_batch = if hint > 0 {
            hint.div_ceil(2 * nodes).clamp(1, MAX_ITEMS)
        } else {
            MAX_ITEMS
        };
        let (batch_size, fixed) = match shared.chunksize {
            Some(size) => (size, true),
            None => {
                let size = shared.remembered_cost(cost_key).map_or(1, items_for);
                (size.min(max_batch), false)
            }
        };
        Call {
            span: crate::debug::call_span(shared.debug, "process"),
            link: Arc::new(CallLink {
                function,
                sender,
                cancel,
                state,
                call: shared
                    .insights
                    .as_ref()
                    .filter(|_| shared.time_items)
                    .map_or(0, |recorder| recorder.begin_call()),
                attempts: Attempts::new(shared.retries),
            }),
            _life: life,
            shared,
            receiver,
            input,
            input_done: false,
            stopped: false,
            pulled: 0,
            batches_out: 0,
            look_again: None,
            local: Vec::new(),
            outgoing: Vec::new(),
            pending: VecDeque::new(),
            render,
            refused,
            batch_size,
            fixed,
            max_batch,
            max_bytes: MAX_BYTES,
            window: window_for(nodes, batch_size),
            cost_key,
            progress: None,
            _f: PhantomData,
        }
    }

    /// Shows the call's progress if the pool was built with it, for an input with this
    /// `size_hint` (taken before the input went to a feeder).
    pub(crate) fn show_progress(&mut self, size_hint: (usize, Option<usize>)) {
        self.progress = Progress::start(self.shared.progress, size_hint);
    }

    /// Bounds what the call holds in flight, for a lazy map: batches of at most
    /// [`LAZY_MAX_ITEMS`] items and [`LAZY_MAX_BYTES`] bytes (unless a `chunksize` was set:
    /// then the batches have that many items, as asked).
    fn bound_in_flight(&mut self) {
        self.max_bytes = LAZY_MAX_BYTES;
        if !self.fixed {
            self.max_batch = self.max_batch.min(LAZY_MAX_ITEMS);
            self.batch_size = self.batch_size.min(self.max_batch);
            self.window = window_for(self.shared.nodes, self.batch_size);
        }
    }

    /// Pulls no more input.
    pub(crate) fn stop(&mut self) {
        self.stopped = true;
    }

    /// The input, for what only its owner knows about it.
    pub(crate) fn input_mut(&mut self) -> &mut I {
        &mut self.input
    }

    /// Queues batches while fewer than `window` are out. A batch waits to be full, unless
    /// a worker is idle and the input has stopped giving: then what the input gave goes
    /// (a live input never holds back the items it gave).
    pub(crate) fn fill(&mut self) {
        self.look_again = None;
        while !self.input_done
            && !self.stopped
            && self.batches_out < self.window
            && self.local.len() < self.window
        {
            let idle = self.batches_out < self.shared.nodes;
            if !self.input.ready(self.batch_size, idle) {
                self.look_again = self.input.deadline();
                break;
            }
            if !self.push_batch() {
                self.input_done = true;
            }
        }
        self.shared.submit(&mut self.outgoing);
    }

    /// Encodes and queues one batch of what the input has now; `false` once it has ended.
    fn push_batch(&mut self) -> bool {
        let first = self.pulled;
        if let Some(why) = &self.refused {
            // Nothing can run: each item pulled fails, clearly, one at a time (the input
            // may be endless).
            match self.input.pull() {
                Pulled::Item(_) => {}
                Pulled::Later => return true,
                Pulled::Ended => return false,
            }
            let failure = single(first, None, ErrorKind::Transport(why.clone()));
            self.local.push(failure);
            self.pulled = first + 1;
            return true;
        }
        let mut bytes = Vec::with_capacity(self.batch_size.min(MAX_ITEMS) * 8);
        let mut offsets = Vec::with_capacity(self.batch_size.min(MAX_ITEMS));
        let mut ended = false;
        while offsets.len() < self.batch_size && bytes.len() < self.max_bytes {
            let item = match self.input.pull() {
                Pulled::Item(item) => item,
                Pulled::Later => break,
                Pulled::Ended => {
                    ended = true;
                    break;
                }
            };
            let start = bytes.len();
            match wire::write_item_owned(item, &mut bytes) {
                Ok(()) => {
                    // Under `MAX_BYTES` before this item, and one item is under 1 GiB.
                    offsets.push(u32::try_from(start).expect("a batch stays under 4 GiB"));
                }
                Err(err) => {
                    // Nothing of it was sent, and the batch so far goes as it is.
                    let why = err.describe("the item");
                    let index = first + offsets.len();
                    self.local
                        .push(single(index, None, ErrorKind::Transport(why)));
                    // Indices must stay contiguous within a batch: end it here.
                    self.pulled = index + 1;
                    self.dispatch(first, bytes, offsets);
                    return true;
                }
            }
        }
        if offsets.is_empty() {
            return !ended;
        }
        if !self.fixed && bytes.len() >= self.max_bytes && offsets.len() < self.max_batch {
            // Its items are large: later batches hold no more of them than this one.
            self.max_batch = offsets.len();
            self.batch_size = self.batch_size.min(self.max_batch);
            self.window = window_for(self.shared.nodes, self.batch_size);
        }
        self.pulled = first + offsets.len();
        self.dispatch(first, bytes, offsets);
        true
    }

    fn dispatch(&mut self, first: usize, bytes: Vec<u8>, offsets: Vec<u32>) {
        if offsets.is_empty() {
            return;
        }
        self.batches_out += 1;
        self.outgoing
            .push(Batch::new(Arc::clone(&self.link), first, bytes, offsets));
    }

    /// The next chunk of results, in completion order; `None` when every pulled item has
    /// been answered and no input is left (or input was stopped). Failed items are
    /// reported in debug mode.
    pub(crate) fn next_chunk(&mut self) -> Option<Decoded<A>> {
        let chunk = self.receive_chunk()?;
        for (_, failure) in &chunk.failures {
            failure.log_in(&self.span, self.shared.debug);
        }
        if let Some(progress) = &self.progress {
            progress.add(chunk.count as u64, chunk.failures.len() as u64);
        }
        Some(chunk)
    }

    fn receive_chunk(&mut self) -> Option<Decoded<A>> {
        loop {
            if let Some(chunk) = self.local.pop() {
                return Some(chunk);
            }
            self.fill();
            if !self.local.is_empty() {
                continue;
            }
            // With nothing out and input left, the input waits for more: it says when
            // it has some (`Delivery::Input`).
            if self.batches_out == 0 && (self.input_done || self.stopped) {
                return None;
            }
            let delivery = match self.look_again {
                _ if !self.pending.is_empty() => self.pending.pop_front().expect("not empty"),
                Some(at) => match self
                    .receiver
                    .recv_timeout(at.saturating_duration_since(Instant::now()))
                {
                    Ok(delivery) => delivery,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => {
                        unreachable!("the call holds a sender, so receiving cannot fail")
                    }
                },
                None => self
                    .receiver
                    .recv()
                    .expect("the call holds a sender, so receiving cannot fail"),
            };
            match delivery {
                Delivery::Results {
                    first,
                    count,
                    body,
                    worker,
                    pid,
                } => {
                    let mut body = body;
                    if count == 1 && body.get(5) == Some(&OK) {
                        // A large byte string is taken from the frame's own memory.
                        if let Some(Ok(value)) = wire::take_large::<A::Out>(&mut body, 6) {
                            return Some(Decoded {
                                first,
                                count,
                                values: vec![value],
                                failures: Vec::new(),
                            });
                        }
                    }
                    let records = body.get(5..).unwrap_or_default();
                    let by = (worker, pid);
                    let mut chunk = decode_records::<A>(records, first, count, by, self.render);
                    // An item that panicked or returned an error on a retry ran more than
                    // once.
                    for (index, failure) in &mut chunk.failures {
                        failure.set_attempts(self.link.attempts.runs(*index));
                    }
                    return Some(chunk);
                }
                Delivery::Failed {
                    index,
                    worker,
                    pid,
                    input,
                    kind,
                    attempts,
                } => {
                    let input = render_input::<A::In>(&input, self.render);
                    let err = WorkerError::new(index, kind)
                        .with_worker(worker)
                        .with_pid(pid)
                        .with_input(input)
                        .with_attempts(attempts);
                    return Some(Decoded {
                        first: index,
                        count: 1,
                        values: Vec::new(),
                        failures: vec![(index, ItemFailure::Worker(err))],
                    });
                }
                Delivery::Cancelled { first, count } => {
                    let failures = (first..first + count)
                        .map(|index| {
                            (
                                index,
                                ItemFailure::Worker(WorkerError::new(index, ErrorKind::Cancelled)),
                            )
                        })
                        .collect();
                    return Some(Decoded {
                        first,
                        count,
                        values: Vec::new(),
                        failures,
                    });
                }
                Delivery::BatchEnd { measured } => {
                    self.batches_out -= 1;
                    if let Some((items, elapsed)) = measured {
                        self.measured(items, elapsed);
                    }
                }
                Delivery::Input => {}
                Delivery::Several(deliveries) => self.pending.extend(deliveries),
            }
        }
    }

    /// Sizes the next batches from how long the last whole one took.
    fn measured(&mut self, items: usize, elapsed: Duration) {
        if items == 0 {
            return;
        }
        let cost = (elapsed.as_nanos() / items as u128).clamp(1, u128::from(u64::MAX)) as u64;
        self.shared.remember_cost(self.cost_key, cost);
        if !self.fixed {
            let ideal = items_for(cost);
            let size = self.batch_size;
            self.batch_size = ideal
                .clamp((size / 4).max(1), size.saturating_mul(8))
                .clamp(1, self.max_batch);
            self.window = window_for(self.shared.nodes, self.batch_size);
        }
    }
}

/// How many batches of `batch_size` items a call keeps out on `nodes` workers: two per
/// worker (one running, one waiting in the queue), and for small batches enough for each
/// slot to send [`PIPELINE_DEPTH`] ahead.
fn window_for(nodes: usize, batch_size: usize) -> usize {
    if batch_size <= SMALL_BATCH {
        nodes * (2 + PIPELINE_DEPTH)
    } else {
        2 * nodes
    }
}

/// How many items of `cost` nanoseconds fill one batch.
fn items_for(cost: u64) -> usize {
    usize::try_from(TARGET.as_nanos() as u64 / cost.max(1))
        .unwrap_or(MAX_ITEMS)
        .clamp(1, MAX_ITEMS)
}

fn single<A: RemoteFn>(index: usize, worker: Option<usize>, kind: ErrorKind) -> Decoded<A> {
    Decoded {
        first: index,
        count: 1,
        values: Vec::new(),
        failures: vec![(
            index,
            ItemFailure::Worker(WorkerError::new(index, kind).with_worker(worker)),
        )],
    }
}

impl<A: RemoteFn, I> Drop for Call<A, I> {
    fn drop(&mut self) {
        // Batches still queued are skipped, and workers still running items of this call
        // are stopped: the pool is free for other work at once, and its drop waits for
        // nothing of this call.
        self.shared.stop_call(&self.link.cancel);
    }
}

/// The items of one chunk, in index order.
pub(crate) struct ChunkIter<A: RemoteFn> {
    next: usize,
    end: usize,
    values: std::vec::IntoIter<A::Out>,
    failures: Peekable<std::vec::IntoIter<(usize, Failure<A>)>>,
}

impl<A: RemoteFn> From<Decoded<A>> for ChunkIter<A> {
    fn from(chunk: Decoded<A>) -> Self {
        ChunkIter {
            next: chunk.first,
            end: chunk.first + chunk.count,
            values: chunk.values.into_iter(),
            failures: chunk.failures.into_iter().peekable(),
        }
    }
}

impl<A: RemoteFn> Iterator for ChunkIter<A> {
    type Item = (usize, Result<A::Out, Failure<A>>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.next == self.end {
            return None;
        }
        let index = self.next;
        self.next += 1;
        if self.failures.peek().is_some_and(|(at, _)| *at == index) {
            let (_, failure) = self.failures.next()?;
            return Some((index, Err(failure)));
        }
        self.values.next().map(|value| (index, Ok(value)))
    }
}

/// `map`: every result in input order, or the failure with the lowest index. Returns as
/// soon as that is decided; dropping the call then skips its batches still queued and
/// stops the workers still running its items.
pub(crate) fn run_map<A: RemoteFn>(
    shared: Arc<Slots>,
    function: A,
    items: impl IntoIterator<Item = A::In>,
    render: Option<Render<A::In>>,
    state: StateSetup,
) -> Result<Vec<A::Out>, Failure<A>> {
    run_map_until(shared, function, items, render, state, Arc::default())
}

/// [`run_map`], stopped by [`Slots::stop_call`] with `cancel` (from any thread): its
/// queued batches are skipped and its running items' workers killed; the items not yet
/// answered fail as cancelled. What a background call (`amap`) whose `AsyncResult` was
/// dropped does.
pub(crate) fn run_map_until<A: RemoteFn>(
    shared: Arc<Slots>,
    function: A,
    items: impl IntoIterator<Item = A::In>,
    render: Option<Render<A::In>>,
    state: StateSetup,
    cancel: Arc<Cancel>,
) -> Result<Vec<A::Out>, Failure<A>> {
    let items = items.into_iter();
    let size_hint = items.size_hint();
    let state = make_state(state, &shared);
    let mut call = Call::<A, _>::stoppable(shared, function, items, render, cancel, state);
    call.show_progress(size_hint);
    gather(call)
}

/// [`run_map`], stopped from another thread by [`Slots::stop_call`] with `cancel`: its
/// items not yet answered then fail as cancelled.
pub(crate) fn run_map_stoppable<A: RemoteFn>(
    shared: Arc<Slots>,
    function: A,
    items: impl IntoIterator<Item = A::In>,
    render: Option<Render<A::In>>,
    cancel: Arc<Cancel>,
    state: MadeState,
) -> Result<Vec<A::Out>, Failure<A>> {
    gather(Call::<A, _>::stoppable(
        shared,
        function,
        items.into_iter(),
        render,
        cancel,
        state,
    ))
}

/// Every result of `call` in input order, or the failure with the lowest index.
fn gather<A: RemoteFn, I: Pull<Item = A::In>>(
    mut call: Call<A, I>,
) -> Result<Vec<A::Out>, Failure<A>> {
    let mut gather = Gather::default();
    while let Some(chunk) = call.next_chunk() {
        if chunk.failures.is_empty() {
            gather.values(chunk.first, chunk.values);
        } else {
            for (index, outcome) in ChunkIter::from(chunk) {
                gather.outcome(index, outcome);
            }
            // Items after the lowest failure are not needed: pull no more.
            call.stop();
        }
        if gather.is_decided() {
            break;
        }
    }
    gather.finish()
}

/// `imap` and `uimap`: results lazily, in input or completion order. The input is pulled
/// by a [`Feed`] only while few enough items are ahead of the consumer: two rounds of
/// batches (the call's window, of the largest size used so far).
pub(crate) struct LazyCall<A: RemoteFn> {
    call: Call<A, Feed<A::In>>,
    ordered: bool,
    current: Option<ChunkIter<A>>,
    /// For input order: chunks that finished before their turn.
    waiting: Reorder<ChunkIter<A>>,
    yielded: usize,
}

impl<A: RemoteFn> LazyCall<A> {
    pub(crate) fn new<I>(
        shared: Arc<Slots>,
        function: A,
        input: I,
        render: Option<Render<A::In>>,
        ordered: bool,
        state: StateSetup,
    ) -> Self
    where
        I: Iterator<Item = A::In> + Send + 'static,
    {
        let size_hint = input.size_hint();
        let mut call = Call::new(
            shared,
            function,
            Feed::spawn(input, READ_AHEAD),
            render,
            state,
        );
        call.show_progress(size_hint);
        call.bound_in_flight();
        let mut lazy = LazyCall {
            call,
            ordered,
            current: None,
            waiting: Reorder::default(),
            yielded: 0,
        };
        // The feeder starts pulling at once; batches go out at the first `next`.
        lazy.allow();
        lazy
    }

    /// Lets the feeder pull up to about two rounds of batches past the consumer.
    fn allow(&mut self) {
        // Two rounds of batches of the size the call makes now. Not of the largest it ever
        // made: a window of many small batches (a loaded machine makes items look slow)
        // times a batch of the cap let the input run 278,000 items ahead. Batches still in
        // flight from a larger size only hold the feeder back until they are answered.
        let ahead = 2 * self.call.window * self.call.batch_size;
        let total = self.yielded + ahead;
        self.call.input_mut().allow(total, ahead / 2);
    }
}

impl<A: RemoteFn> Iterator for LazyCall<A> {
    type Item = Result<A::Out, Failure<A>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(current) = &mut self.current {
                if let Some((_, outcome)) = current.next() {
                    self.yielded += 1;
                    return Some(outcome);
                }
                self.current = None;
            }
            if let Some((_, chunk)) = self.waiting.pop() {
                self.current = Some(chunk);
                continue;
            }
            self.allow();
            let Some(chunk) = self.call.next_chunk() else {
                // Every item the input gave has been handed over.
                self.call.input_mut().finish();
                return None;
            };
            if self.ordered {
                self.waiting.insert(chunk.first, chunk.count, chunk.into());
            } else {
                self.current = Some(chunk.into());
            }
        }
    }
}
