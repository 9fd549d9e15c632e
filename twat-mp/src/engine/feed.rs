//! The input of a lazy map, pulled on a thread of its own: the [`Feed`].
//!
//! A lazy map's input may be live — a channel, a socket, the lines of a pipe — and its
//! `next` may block until more input comes. One thread cannot wait for the next input
//! item and for the next result at once: pulled on the consumer's thread, such an input
//! either withholds results that are ready (the consumer is stuck in `next` of the input)
//! or starves the workers. So the input is pulled by a *feeder* thread, as Python's
//! `Pool.imap` does with its task-handler thread:
//!
//! - the feeder pulls only while the consumer's window has room: the consumer grants it
//!   an *allowance* ([`Feed::allow`], the number of items it may have pulled in all), so
//!   an endless input runs in bounded memory. An input that gives its items at once may
//!   be read a bounded way further ahead (see [`Feed::spawn`]): with a window of a few
//!   items, waking the feeder for each one would cost more than the items;
//! - each item pulled is put at once where the consumer can take it, so nothing pulled is
//!   held back while the feeder waits in the input's `next` for the following item;
//! - the consumer takes items in chunks ([`Feed::take`]): a full chunk, or, when a
//!   worker is idle and a chunk short of full has waited [`CHUNK_PATIENCE`] for the rest
//!   (a live input that stopped giving), what is there. When it waits for input it asks
//!   to be woken, and the feeder calls the consumer's wake function — which sends a
//!   message on the very channel that brings the consumer its results, so the consumer
//!   waits in one place for both — once a chunk is full, or at the first item, or at the
//!   end of the input. While every worker is busy the consumer needs no wake-up: their
//!   outcomes wake it.
//!
//! Dropping the `Feed` stops the feeder: it pulls nothing more once its current `next`
//! returns. A feeder blocked in a live input's `next` (a channel whose sender stays open)
//! notices only when that call returns; until then its thread stays blocked there.
//!
//! Pools whose eager calls pull an ordinary iterator on the spot and whose lazy calls pull
//! a `Feed` share their batching code through [`Pull`], which both implement.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

// loom's in the model checks (`crate::model_checks`), the feeder's thread included.
use crate::sync::{AtomicBool, Condvar, Mutex, MutexGuard, thread};

/// What the lazy maps (`imap`, `uimap`, [`#[imap]`](crate::imap)) take as input: an
/// iterator that can move to a thread of its own (`Send + 'static`).
///
/// A lazy map pulls its input on a thread of its own so that a live input (a channel, a
/// socket, the lines of a pipe) never holds back a result that is ready: the caller's
/// thread waits for results while the input's thread waits for input. A returned iterator
/// cannot keep a borrowed input on another thread soundly, hence `'static`. Every
/// `Iterator + Send + 'static` is a `LazyInput`; the trait exists to say so in the
/// compile error of one that is not:
///
/// - a borrowed input (`words.iter()`): collect it first, or use `map`, which may borrow;
/// - standard input: `std::io::stdin().lines()` holds a lock that cannot move to another
///   thread; `BufReader::new(std::io::stdin()).lines()` can.
///
/// ```
/// use std::io::{BufRead, BufReader};
///
/// fn lengths(input: impl twat_mp::LazyInput<Item = String>) -> usize {
///     let pool = twat_mp::ThreadPool::with_nodes(2).unwrap();
///     pool.imap(|line: String| line.len(), input).map(Result::unwrap).sum()
/// }
///
/// // An owned input: a Vec, a channel, a range, lines read from a reader it owns.
/// let words = vec!["parallel".to_owned(), "map".to_owned()];
/// assert_eq!(lengths(words.clone().into_iter()), 11);
/// let text = std::io::Cursor::new("one\ntwo\nthree\n");
/// assert_eq!(lengths(BufReader::new(text).lines().map(Result::unwrap)), 11);
/// ```
#[diagnostic::on_unimplemented(
    message = "the input of a lazy map must be `Send + 'static`: it is pulled on a thread of its own",
    label = "this input is borrowed, or cannot be sent to another thread",
    note = "collect a borrowed input first (`.collect::<Vec<_>>()`), or use `map`, which may borrow",
    note = "for standard input, use `BufReader::new(std::io::stdin()).lines()`: `stdin().lines()` holds a lock that cannot move to another thread"
)]
pub trait LazyInput: Iterator + Send + 'static {}

impl<I: Iterator + Send + 'static> LazyInput for I {}

/// An input that gives an item in less than this, on average, gives its items at once:
/// an in-memory collection, a range, items already waiting in a channel.
pub(crate) const INSTANT: Duration = Duration::from_micros(5);

/// How far past its allowance an input that gives its items at once may be read, at the
/// least: with one item per job a lazy map's window is a few items, and waking the
/// feeder for each would cost far more than the items (a thread pool's `imap` of trivial
/// items ran at half speed with 32, and at full speed from 128 on).
pub(crate) const READ_AHEAD: usize = 128;

/// How long a chunk short of full waits for the rest of its items while a worker is idle,
/// before it goes as it is: long against the microseconds a flowing input takes to give a
/// chunk, short against anything a person or a network would notice.
pub(crate) const CHUNK_PATIENCE: Duration = Duration::from_millis(1);

/// The input of a lazy map, pulled on a feeder thread within the allowance its consumer
/// grants (see the module documentation).
pub(crate) struct Feed<T> {
    shared: Arc<Shared<T>>,
    /// The allowance last granted to the feeder.
    granted: usize,
    /// The largest allowance the consumer offered: granted at the next step, or as soon
    /// as the consumer waits for input.
    offered: usize,
    /// Since when the consumer, with a worker idle, has seen a chunk short of full.
    short_since: Option<Instant>,
    /// How long a chunk short of full waits for the rest while a worker is idle
    /// ([`CHUNK_PATIENCE`] unless [`set_patience`](Self::set_patience) said otherwise).
    patience: Duration,
    /// Items moved from the feeder's buffer, not yet given out.
    local: VecDeque<T>,
    /// An empty buffer that changes place with the feeder's full one: taking what the
    /// feeder pulled costs the feeder no wait and no allocation.
    spare: Vec<T>,
    /// When the consumer, told [`Take::Later`], should look again, for [`Pull`].
    deadline: Option<Instant>,
    /// The input has ended: every item it gave is in `local`.
    over: bool,
    /// The input's panic, once seen, until every item before it was handed over.
    panic: Option<Box<dyn Any + Send + 'static>>,
    /// The lower bound of the input's `size_hint` when it was handed over.
    min_len: usize,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// How far past its allowance the feeder may read an input that gives its items at
    /// once (see [`Feed::spawn`]).
    read_ahead: usize,
    /// The input gave its last run of items at once (see [`INSTANT`]).
    instant: AtomicBool,
    /// Wakes the feeder when it is given more allowance or stopped.
    allowance: Condvar,
    /// The feeder waits for allowance: a grant must wake it.
    hungry: AtomicBool,
}

struct State<T> {
    /// Items pulled and not yet taken, in input order.
    items: Vec<T>,
    /// How many items the feeder may have pulled in all.
    allowed: usize,
    /// How many items the feeder has pulled in all.
    pulled: usize,
    end: End,
    /// The consumer is gone: pull nothing more.
    stopped: bool,
    /// Wake the consumer once this many items are there, or the input ends; 0: not asked.
    wake_at: usize,
    wake: Option<Box<dyn Fn() + Send + 'static>>,
}

enum End {
    Open,
    Ended,
    Panicked(Box<dyn Any + Send + 'static>),
}

/// Whether a chunk may go now: what [`Feed::take`] and [`Pull::ready`] decide.
enum Ready {
    Go,
    Later(Option<Instant>),
}

/// What [`Feed::take`] gives.
pub(crate) enum Take<T> {
    /// Items to start, in input order, right after those taken before.
    Items(Vec<T>),
    /// Not enough items now. With a deadline, take again by then: a chunk short of full
    /// then goes as it is.
    Later(Option<Instant>),
    /// The input has ended and every item was taken.
    Ended,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; a poisoned lock still holds good data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a grant: wakes the feeder if it waits for one.
    fn wake_feeder(&self) {
        if self.hungry.load(Ordering::Relaxed) {
            self.allowance.notify_one();
        }
    }
}

impl<T: Send + 'static> Feed<T> {
    /// Starts pulling `input` on a thread of its own. The feeder pulls nothing before the
    /// first [`allow`](Self::allow). From an input that gives its items at once (each in
    /// less than [`INSTANT`] on average over the last run), it may read `read_ahead` items
    /// past its allowance: that costs next to no memory (such items are small, or were in
    /// memory already) and lets the feeder hand items over in runs instead of being woken
    /// for each one when the window is small.
    ///
    /// # Panics
    /// When the system refuses a thread, as [`std::thread::spawn`] does.
    pub(crate) fn spawn<I>(input: I, read_ahead: usize) -> Self
    where
        I: Iterator<Item = T> + Send + 'static,
    {
        let min_len = input.size_hint().0;
        let shared = Arc::new(Shared {
            read_ahead,
            instant: AtomicBool::new(false),
            state: Mutex::new(State {
                items: Vec::new(),
                allowed: 0,
                pulled: 0,
                end: End::Open,
                stopped: false,
                wake_at: 0,
                wake: None,
            }),
            allowance: Condvar::new(),
            hungry: AtomicBool::new(false),
        });
        let feeder = Arc::clone(&shared);
        thread::Builder::new()
            .name("twat-mp-feed".into())
            .spawn(move || feed(&feeder, input))
            .unwrap_or_else(|err| {
                panic!("twat-mp could not start the thread that pulls a lazy map's input: {err}")
            });
        Feed {
            shared,
            granted: 0,
            offered: 0,
            short_since: None,
            patience: CHUNK_PATIENCE,
            local: VecDeque::new(),
            spare: Vec::new(),
            deadline: None,
            over: false,
            panic: None,
            min_len,
        }
    }
}

impl<T> Feed<T> {
    /// How the feeder wakes the consumer that asked for items (see [`take`](Self::take)).
    /// Set before the first `take`.
    pub(crate) fn wake_with(&mut self, wake: impl Fn() + Send + 'static) {
        self.shared.lock().wake = Some(Box::new(wake));
    }

    /// How long a chunk short of full waits for the rest of its items while a worker is
    /// idle. Zero for a consumer whose chunk size is only an upper bound (the thread
    /// pool's adaptive chunks): then an idle worker gets what is there at once.
    pub(crate) fn set_patience(&mut self, patience: Duration) {
        self.patience = patience;
    }

    /// Lets the feeder pull until it has pulled `total` items in all. The allowance only
    /// grows. An offer less than `step` above the last grant (half the read-ahead, while
    /// the feeder reads ahead) waits for a larger one, so that the feeder runs rather than
    /// being woken for every item, or until the consumer, with a worker idle, waits for
    /// input ([`take`](Self::take)).
    pub(crate) fn allow(&mut self, total: usize, step: usize) {
        let step = if self.shared.instant.load(Ordering::Relaxed) {
            step.max(self.shared.read_ahead / 2)
        } else {
            step
        };
        self.offered = self.offered.max(total);
        if self.offered > self.granted && self.offered - self.granted >= step {
            self.granted = self.offered;
            self.shared.lock().allowed = self.granted;
            self.shared.wake_feeder();
        }
    }

    /// Takes up to `max` items: `max` of them once they are there; fewer at the end of
    /// the input, or when `idle` (a worker waits for work) and a chunk short of full has
    /// waited [`CHUNK_PATIENCE`] for the rest of its items (a live input that stopped
    /// giving). Otherwise gives [`Take::Later`]: when `idle`, the feeder wakes the
    /// consumer once a full chunk is there, or at the first item when there was none,
    /// or at the end of the input; without `idle`, every worker is busy and their
    /// outcomes wake the consumer.
    pub(crate) fn take(&mut self, max: usize, idle: bool) -> Take<T> {
        match self.gather(max, idle) {
            Ready::Later(deadline) => Take::Later(deadline),
            Ready::Go if self.local.is_empty() => Take::Ended,
            Ready::Go => {
                let count = max.clamp(1, self.local.len());
                Take::Items(self.local.drain(..count).collect())
            }
        }
    }

    /// Moves what the feeder pulled into `local`, and says whether a chunk of up to `max`
    /// may go now (see [`take`](Self::take)).
    fn gather(&mut self, max: usize, idle: bool) -> Ready {
        let max = max.max(1);
        if self.local.len() >= max || self.over {
            self.short_since = None;
            return Ready::Go;
        }
        let mut state = self.shared.lock();
        std::mem::swap(&mut state.items, &mut self.spare);
        if !matches!(state.end, End::Open) {
            if let End::Panicked(payload) = std::mem::replace(&mut state.end, End::Ended) {
                self.panic = Some(payload);
            }
            self.over = true;
        }
        let there = self.local.len() + self.spare.len();
        let overdue = idle
            && there > 0
            && (self.patience.is_zero()
                || self
                    .short_since
                    .is_some_and(|since| since.elapsed() >= self.patience));
        let mut grant = false;
        let ready = if self.over || there >= max || overdue {
            state.wake_at = 0;
            self.short_since = None;
            Ready::Go
        } else if !idle {
            state.wake_at = 0;
            Ready::Later(None)
        } else {
            // A worker waits: the feeder may pull all that was offered, and says when
            // there is enough.
            grant = self.offered > self.granted;
            if grant {
                self.granted = self.offered;
                state.allowed = self.granted;
            }
            if there == 0 {
                state.wake_at = 1;
                self.short_since = None;
                Ready::Later(None)
            } else {
                state.wake_at = max - there;
                let since = *self.short_since.get_or_insert_with(Instant::now);
                Ready::Later(Some(since + self.patience))
            }
        };
        drop(state);
        if grant {
            self.shared.wake_feeder();
        }
        self.local.extend(self.spare.drain(..));
        ready
    }

    /// Called once every item the input gave has been handed over: resumes the input's
    /// panic there, if it panicked, as a panic of the consumer's own loop would.
    pub(crate) fn finish(&mut self) {
        if let Some(payload) = self.panic.take() {
            panic::resume_unwind(payload);
        }
    }
}

impl<T> Drop for Feed<T> {
    fn drop(&mut self) {
        let unused = {
            let mut state = self.shared.lock();
            state.stopped = true;
            state.wake = None;
            std::mem::take(&mut state.items)
        };
        self.shared.allowance.notify_one();
        // Outside the lock: an item's `Drop` may take long.
        drop(unused);
    }
}

/// The feeder thread: pulls while the allowance has room, until the input ends, panics,
/// or the consumer is gone.
fn feed<T, I: Iterator<Item = T>>(shared: &Shared<T>, mut input: I) {
    loop {
        // An input that gave its last run of items at once may be read ahead.
        let instant = shared.instant.load(Ordering::Relaxed);
        let room = {
            let mut state = shared.lock();
            loop {
                if state.stopped {
                    return;
                }
                let limit = state.allowed + if instant { shared.read_ahead } else { 0 };
                if state.pulled < limit {
                    shared.hungry.store(false, Ordering::Relaxed);
                    break limit - state.pulled;
                }
                shared.hungry.store(true, Ordering::Relaxed);
                state = shared
                    .allowance
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        let run = Instant::now();
        for _ in 0..room {
            // A panic of the input is the consumer's: it resumes there (`Feed::finish`).
            let next = panic::catch_unwind(AssertUnwindSafe(|| input.next()));
            let mut state = shared.lock();
            if state.stopped {
                return;
            }
            let ended = match next {
                Ok(Some(item)) => {
                    state.items.push(item);
                    state.pulled += 1;
                    false
                }
                Ok(None) => {
                    state.end = End::Ended;
                    true
                }
                Err(payload) => {
                    state.end = End::Panicked(payload);
                    true
                }
            };
            if state.wake_at != 0 && (ended || state.items.len() >= state.wake_at) {
                state.wake_at = 0;
                if let Some(wake) = &state.wake {
                    wake();
                }
            }
            drop(state);
            if ended {
                return;
            }
        }
        let instant =
            run.elapsed() < INSTANT.saturating_mul(u32::try_from(room).unwrap_or(u32::MAX));
        shared.instant.store(instant, Ordering::Relaxed);
    }
}

/// What [`Pull::pull`] gives.
pub(crate) enum Pulled<T> {
    Item(T),
    /// Nothing more now; more may come later.
    Later,
    Ended,
}

/// Where a call's items come from, one at a time: an iterator pulled on the spot (eager
/// maps, whose caller waits for the whole result anyway), or a [`Feed`] (lazy maps).
pub(crate) trait Pull {
    type Item;

    /// Whether a chunk of up to `want` items may be started now (see [`Feed::take`]):
    /// `want` of them are there, or the input has ended, or `idle` and a short chunk has
    /// waited long enough. When not, [`deadline`](Self::deadline) says by when to ask
    /// again.
    fn ready(&mut self, want: usize, idle: bool) -> bool;

    /// When the consumer should ask [`ready`](Self::ready) again, even if nothing woke
    /// it; taken by the call.
    fn deadline(&mut self) -> Option<Instant> {
        None
    }

    /// The next item, if there is one now.
    fn pull(&mut self) -> Pulled<Self::Item>;

    /// A lower bound of the number of items.
    fn min_len(&self) -> usize;

    /// How the source wakes its consumer after [`ready`](Self::ready) said no; only a
    /// [`Feed`] ever does.
    fn wake_with(&mut self, wake: impl Fn() + Send + 'static) {
        drop(wake);
    }
}

impl<I: Iterator> Pull for I {
    type Item = I::Item;

    fn ready(&mut self, _want: usize, _idle: bool) -> bool {
        true
    }

    #[inline]
    fn pull(&mut self) -> Pulled<I::Item> {
        match self.next() {
            Some(item) => Pulled::Item(item),
            None => Pulled::Ended,
        }
    }

    fn min_len(&self) -> usize {
        self.size_hint().0
    }
}

impl<T> Pull for Feed<T> {
    type Item = T;

    fn ready(&mut self, want: usize, idle: bool) -> bool {
        match self.gather(want, idle) {
            Ready::Go => {
                self.deadline = None;
                true
            }
            Ready::Later(deadline) => {
                self.deadline = deadline;
                false
            }
        }
    }

    fn deadline(&mut self) -> Option<Instant> {
        self.deadline.take()
    }

    #[inline]
    fn pull(&mut self) -> Pulled<T> {
        match self.local.pop_front() {
            Some(item) => Pulled::Item(item),
            None if self.over => Pulled::Ended,
            None => Pulled::Later,
        }
    }

    fn min_len(&self) -> usize {
        self.min_len
    }

    fn wake_with(&mut self, wake: impl Fn() + Send + 'static) {
        Feed::wake_with(self, wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const PATIENCE: Duration = Duration::from_secs(30);

    /// A feed whose wake-ups arrive on a channel.
    fn woken<T: Send + 'static>(
        input: impl Iterator<Item = T> + Send + 'static,
    ) -> (Feed<T>, mpsc::Receiver<()>) {
        read_ahead(input, 0)
    }

    /// A feed that may read `ahead` items past its allowance, its wake-ups on a channel.
    fn read_ahead<T: Send + 'static>(
        input: impl Iterator<Item = T> + Send + 'static,
        ahead: usize,
    ) -> (Feed<T>, mpsc::Receiver<()>) {
        let (wake, woken) = mpsc::channel();
        let mut feed = Feed::spawn(input, ahead);
        feed.wake_with(move || {
            let _ = wake.send(());
        });
        (feed, woken)
    }

    /// Takes with a worker idle until items come, as a lazy map does: waiting for each
    /// wake-up, or until the deadline.
    fn take_when_woken<T>(feed: &mut Feed<T>, woken: &mpsc::Receiver<()>, max: usize) -> Take<T> {
        loop {
            match feed.take(max, true) {
                Take::Later(None) => woken.recv_timeout(PATIENCE).expect("the feeder wakes us"),
                Take::Later(Some(deadline)) => {
                    let _ = woken.recv_timeout(deadline.saturating_duration_since(Instant::now()));
                }
                other => return other,
            }
        }
    }

    fn pulled<T>(feed: &Feed<T>) -> usize {
        feed.shared.lock().pulled
    }

    fn wait_until_pulled<T>(feed: &Feed<T>, count: usize) {
        while pulled(feed) < count {
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_live_input_gives_each_item_as_it_comes() {
        let (sender, receiver) = mpsc::channel::<u32>();
        let (mut feed, woken) = woken(receiver.into_iter());
        feed.allow(100, 0);
        assert!(matches!(feed.take(8, true), Take::Later(None)));
        for n in 0..3 {
            sender.send(n).unwrap();
            match take_when_woken(&mut feed, &woken, 8) {
                Take::Items(items) => assert_eq!(items, [n]),
                _ => panic!("item {n} was not given"),
            }
        }
        drop(sender);
        assert!(matches!(take_when_woken(&mut feed, &woken, 8), Take::Ended));
    }

    #[test]
    fn the_feeder_pulls_no_more_than_allowed() {
        let (mut feed, woken) = woken(0_u32..);
        feed.allow(5, 0);
        let mut taken = Vec::new();
        while taken.len() < 5 {
            match take_when_woken(&mut feed, &woken, 100) {
                Take::Items(items) => taken.extend(items),
                _ => panic!("an endless input ended"),
            }
        }
        assert_eq!(taken, [0, 1, 2, 3, 4]);
        assert!(matches!(feed.take(100, true), Take::Later(None)));
        assert_eq!(pulled(&feed), 5);
        // An offer below the step waits, unless the consumer waits for input.
        feed.allow(7, 10);
        assert_eq!(feed.shared.lock().allowed, 5);
        match take_when_woken(&mut feed, &woken, 100) {
            Take::Items(items) => assert!(items.len() <= 2 && items[0] == 5),
            _ => panic!("an endless input ended"),
        }
        assert!(pulled(&feed) <= 7);
    }

    #[test]
    fn a_full_chunk_goes_at_once_and_a_short_one_after_its_patience() {
        let (sender, receiver) = mpsc::channel::<u32>();
        let (mut feed, _woken) = woken(receiver.into_iter());
        feed.allow(100, 0);
        for n in 0..3 {
            sender.send(n).unwrap();
        }
        wait_until_pulled(&feed, 3);
        match feed.take(3, false) {
            Take::Items(items) => assert_eq!(items, [0, 1, 2]),
            _ => panic!("the full chunk was not given"),
        }
        sender.send(3).unwrap();
        wait_until_pulled(&feed, 4);
        // Every worker busy: no hurry.
        assert!(matches!(feed.take(3, false), Take::Later(None)));
        // A worker idle: the short chunk waits for the rest, but not for long.
        let Take::Later(Some(deadline)) = feed.take(3, true) else {
            panic!("a short chunk went at once");
        };
        assert!(deadline <= Instant::now() + CHUNK_PATIENCE);
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        match feed.take(3, true) {
            Take::Items(items) => assert_eq!(items, [3]),
            _ => panic!("the short chunk was not given after its patience"),
        }
    }

    /// Waits (a while at most) until the feeder has pulled `count` items; returns how
    /// many it pulled.
    fn wait_for_pulled<T>(feed: &Feed<T>, count: usize, patience: Duration) -> usize {
        let start = Instant::now();
        while pulled(feed) < count && start.elapsed() < patience {
            std::thread::yield_now();
        }
        pulled(feed)
    }

    #[test]
    fn an_input_that_gives_its_items_at_once_is_read_ahead_and_a_costly_one_is_not() {
        let (mut at_once, _woken) = read_ahead(0_u64.., 10);
        // A run of pulls that a busy machine interrupted does not count as "at once":
        // try a few runs.
        let read_ahead_seen = (1..=20).any(|run| {
            at_once.allow(5 * run, 0);
            let pulled = wait_for_pulled(&at_once, 5 * run + 10, Duration::from_millis(100));
            assert!(
                pulled <= 5 * run + 10,
                "read {pulled} items, allowed {}",
                5 * run
            );
            pulled == 5 * run + 10
        });
        assert!(
            read_ahead_seen,
            "an input that gives its items at once was not read ahead"
        );

        // Each item costs far more than `INSTANT`: nothing past the allowance.
        let costly = (0_u64..).inspect(|&n| assert!(count_divisors(n + 40_000) > 0));
        let (mut costly, _woken) = read_ahead(costly, 10);
        costly.allow(5, 0);
        assert_eq!(wait_for_pulled(&costly, 5, PATIENCE), 5);
        assert_eq!(wait_for_pulled(&costly, 6, Duration::from_millis(100)), 5);
    }

    /// Real work for an input item: the divisors of `n`, counted the slow way.
    fn count_divisors(n: u64) -> usize {
        (1..=n).filter(|d| n % d == 0).count()
    }

    #[test]
    fn a_panic_of_the_input_resumes_in_finish() {
        let input = (0_u32..).inspect(|&n| assert!(n < 2, "input broke"));
        let (mut feed, woken) = woken(input);
        feed.allow(10, 0);
        let mut taken = Vec::new();
        loop {
            match take_when_woken(&mut feed, &woken, 10) {
                Take::Items(items) => taken.extend(items),
                Take::Ended => break,
                Take::Later(_) => unreachable!(),
            }
        }
        assert_eq!(taken, [0, 1]);
        let payload = panic::catch_unwind(AssertUnwindSafe(|| feed.finish())).unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"input broke"));
    }
}
