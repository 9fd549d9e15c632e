//! What a pool did, for `pool.insights()`: a [`Recorder`] that every pool built with
//! `.insights(true)` shares with its workers, fed where each pool runs or receives an
//! item, and the public snapshot it gives, [`Insights`].
//!
//! The pools feed it in three ways, the cheapest each can afford:
//!
//! - a [`Tally`] that one worker fills without any lock (the thread pool's `map`: one per
//!   rayon leaf, one clock read per item) and adds to the recorder when it is dropped;
//! - [`Recorder::item`] for an item timed elsewhere (the lazy maps, `apply`, the process
//!   pools' results, whose durations the worker process measured);
//! - a [`TaskClock`] per async task, which also keeps the time its worker had at least
//!   one task running (tasks overlap on one worker).
//!
//! Process pools add what only the parent knows: each worker process's start-up time and
//! its replacements ([`Recorder::worker_started`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How many of the slowest items [`Insights`] keeps.
pub(crate) const SLOWEST: usize = 5;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one worker did since the pool was built or its insights were reset.
#[derive(Debug, Clone, Copy)]
struct WorkerTally {
    items: u64,
    busy: Duration,
    startup: Duration,
    restarts: u64,
    /// Whether a worker process ever ran in this slot (kept across resets): the next one
    /// started there replaces it.
    ever_started: bool,
    /// Async tasks running on this worker now, and since when at least one has.
    active: usize,
    active_since: Instant,
    /// The pid of its current worker process (0: none yet).
    pid: u32,
}

impl WorkerTally {
    fn new(now: Instant) -> Self {
        WorkerTally {
            items: 0,
            busy: Duration::ZERO,
            startup: Duration::ZERO,
            restarts: 0,
            ever_started: false,
            active: 0,
            active_since: now,
            pid: 0,
        }
    }
}

/// The slowest items seen, slowest first, at most [`SLOWEST`](Insights::SLOWEST).
#[derive(Debug, Clone, Default)]
struct Slowest {
    items: Vec<SlowItem>,
}

impl Slowest {
    /// The shortest duration an item must beat to enter (zero while there is room).
    fn floor(&self) -> Duration {
        if self.items.len() < SLOWEST {
            Duration::ZERO
        } else {
            self.items[SLOWEST - 1].duration
        }
    }

    fn offer(&mut self, item: SlowItem) {
        if self.items.len() == SLOWEST && item.duration <= self.floor() {
            return;
        }
        let at = self
            .items
            .iter()
            .position(|kept| item.duration > kept.duration)
            .unwrap_or(self.items.len());
        self.items.insert(at, item);
        self.items.truncate(SLOWEST);
    }
}

/// The insights of one pool, shared by its workers and its calls.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// Since when the numbers count: the pool's build, or the last reset.
    since: Mutex<Instant>,
    workers: Box<[Mutex<WorkerTally>]>,
    slowest: Mutex<Slowest>,
    /// [`Slowest::floor`] in nanoseconds, read without the lock: most items are not among
    /// the slowest, and need not take it.
    floor: AtomicU64,
    /// Calls begun since the pool was built; and that number at the last reset.
    calls: AtomicU64,
    calls_at_reset: AtomicU64,
    processes: bool,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Recorder {
    /// A recorder for `nodes` workers; `processes` when they are worker processes (then
    /// start-up times and restarts are reported).
    pub(crate) fn new(nodes: usize, processes: bool) -> Self {
        let now = Instant::now();
        Recorder {
            since: Mutex::new(now),
            workers: (0..nodes)
                .map(|_| Mutex::new(WorkerTally::new(now)))
                .collect(),
            slowest: Mutex::default(),
            floor: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            calls_at_reset: AtomicU64::new(0),
            processes,
        }
    }

    /// Numbers a new call: 1 for the pool's first, counted from the pool's build (a reset
    /// does not renumber), so that a [`SlowItem`]'s call names one call for good.
    pub(crate) fn begin_call(&self) -> u64 {
        self.calls.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn worker(&self, worker: usize) -> Option<MutexGuard<'_, WorkerTally>> {
        self.workers.get(worker).map(lock)
    }

    fn offer_slow(&self, item: SlowItem) {
        if nanos(item.duration) <= self.floor.load(Ordering::Relaxed) {
            return;
        }
        let mut slowest = lock(&self.slowest);
        slowest.offer(item);
        self.floor.store(nanos(slowest.floor()), Ordering::Relaxed);
    }

    /// One item that `worker` ran in `duration`, the item at `index` of call `call`.
    pub(crate) fn item(&self, worker: usize, call: u64, index: usize, duration: Duration) {
        if let Some(mut tally) = self.worker(worker) {
            tally.items += 1;
            tally.busy += duration;
        }
        self.offer_slow(SlowItem {
            call,
            index,
            worker,
            duration,
        });
    }

    /// The worker process `pid` of slot `worker` answered its handshake `startup` after
    /// it was started; one started where another ran before counts as a restart.
    pub(crate) fn worker_started(&self, worker: usize, pid: u32, startup: Duration) {
        if let Some(mut tally) = self.worker(worker) {
            tally.pid = pid;
            tally.startup += startup;
            if tally.ever_started {
                tally.restarts += 1;
            }
            tally.ever_started = true;
        }
    }

    /// `worker` (a slot) has started a process `pid`: what [`worker_of_pid`](Self::worker_of_pid)
    /// finds from now on, before its start-up is known ([`worker_started`](Self::worker_started)).
    pub(crate) fn worker_spawned(&self, worker: usize, pid: u32) {
        if let Some(mut tally) = self.worker(worker) {
            tally.pid = pid;
        }
    }

    /// The slot whose current worker process is `pid`.
    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) fn worker_of_pid(&self, pid: u32) -> Option<usize> {
        (pid != 0)
            .then(|| self.workers.iter().position(|tally| lock(tally).pid == pid))
            .flatten()
    }

    /// A task that `worker` (a process) ran, timed there: `took` from its first poll to
    /// its end, and `busy` more time during which the worker had a task running.
    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) fn task_done(
        &self,
        worker: usize,
        call: u64,
        index: usize,
        took: Duration,
        busy: Duration,
    ) {
        if let Some(mut tally) = self.worker(worker) {
            tally.items += 1;
            tally.busy += busy;
        }
        self.offer_slow(SlowItem {
            call,
            index,
            worker,
            duration: took,
        });
    }

    /// Starts counting from now: items, times and restarts go back to zero; calls keep
    /// their numbers. Items running now count in full after the reset, when they end.
    pub(crate) fn reset(&self) {
        let now = Instant::now();
        *lock(&self.since) = now;
        for worker in &*self.workers {
            let mut tally = lock(worker);
            *tally = WorkerTally {
                ever_started: tally.ever_started,
                pid: tally.pid,
                active: tally.active,
                active_since: now,
                ..WorkerTally::new(now)
            };
        }
        *lock(&self.slowest) = Slowest::default();
        self.floor.store(0, Ordering::Relaxed);
        self.calls_at_reset
            .store(self.calls.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// What the pool did since it was built or reset.
    pub(crate) fn snapshot(&self) -> Insights {
        let since = *lock(&self.since);
        let now = Instant::now();
        let wall = now.saturating_duration_since(since);
        let workers = self
            .workers
            .iter()
            .enumerate()
            .map(|(worker, tally)| {
                let tally = *lock(tally);
                let mut busy = tally.busy;
                if tally.active > 0 {
                    busy += now.saturating_duration_since(tally.active_since.max(since));
                }
                WorkerInsights {
                    worker,
                    items: tally.items,
                    busy,
                    idle: wall.saturating_sub(busy).saturating_sub(tally.startup),
                    startup: self.processes.then_some(tally.startup),
                    restarts: self.processes.then_some(tally.restarts),
                }
            })
            .collect();
        let calls = self.calls.load(Ordering::Relaxed);
        Insights {
            wall,
            calls: calls.saturating_sub(self.calls_at_reset.load(Ordering::Relaxed)),
            workers,
            slowest: lock(&self.slowest).items.clone(),
        }
    }

    /// The clock of one async task on `worker`, started at its first poll.
    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) fn task(&self, worker: usize) -> TaskClock<'_> {
        let started = Instant::now();
        if let Some(mut tally) = self.worker(worker) {
            if tally.active == 0 {
                tally.active_since = started;
            }
            tally.active += 1;
        }
        TaskClock {
            recorder: self,
            worker,
            started,
        }
    }

    /// A tally of items that `worker` runs one after the other, added to the recorder
    /// when it is dropped; its clock starts now.
    pub(crate) fn tally(&self, worker: usize, call: u64) -> Tally<'_> {
        Tally {
            recorder: self,
            worker,
            call,
            items: 0,
            busy: Duration::ZERO,
            last: Instant::now(),
            slowest: Slowest::default(),
            floor: Duration::ZERO,
        }
    }
}

/// The items one worker runs one after the other (a rayon leaf), counted without a lock:
/// each item's time runs from the end of the previous one (or the tally's start), one
/// clock read per item. Added to its [`Recorder`] when dropped, also when a failure
/// unwinds out of the leaf.
pub(crate) struct Tally<'a> {
    recorder: &'a Recorder,
    worker: usize,
    call: u64,
    items: u64,
    busy: Duration,
    last: Instant,
    slowest: Slowest,
    floor: Duration,
}

impl Tally<'_> {
    /// The item at `index` just ended.
    #[inline]
    pub(crate) fn ended(&mut self, index: usize) {
        let now = Instant::now();
        let duration = now.saturating_duration_since(self.last);
        self.last = now;
        self.add(index, duration);
    }

    /// The item at `index` took `duration`, timed elsewhere (in a worker process).
    #[inline]
    pub(crate) fn add(&mut self, index: usize, duration: Duration) {
        self.items += 1;
        self.busy += duration;
        if duration > self.floor {
            self.slowest.offer(SlowItem {
                call: self.call,
                index,
                worker: self.worker,
                duration,
            });
            self.floor = self.slowest.floor();
        }
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        if self.items == 0 {
            return;
        }
        if let Some(mut tally) = self.recorder.worker(self.worker) {
            tally.items += self.items;
            tally.busy += self.busy;
        }
        for item in std::mem::take(&mut self.slowest.items) {
            self.recorder.offer_slow(item);
        }
    }
}

/// One async task's time on its worker, from its first poll: [`finish`](Self::finish)
/// records it as an item; dropped (also unfinished, when its caller went away) it closes
/// its share of the worker's busy time.
#[cfg_attr(not(feature = "aio"), allow(dead_code))]
pub(crate) struct TaskClock<'a> {
    recorder: &'a Recorder,
    worker: usize,
    started: Instant,
}

impl TaskClock<'_> {
    /// The task of the item at `index` of call `call` is done.
    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) fn finish(self, call: u64, index: usize) {
        let duration = self.started.elapsed();
        if let Some(mut tally) = self.recorder.worker(self.worker) {
            tally.items += 1;
        }
        self.recorder.offer_slow(SlowItem {
            call,
            index,
            worker: self.worker,
            duration,
        });
    }
}

impl Drop for TaskClock<'_> {
    fn drop(&mut self) {
        if let Some(mut tally) = self.recorder.worker(self.worker) {
            tally.active = tally.active.saturating_sub(1);
            if tally.active == 0 {
                let since = *lock(&self.recorder.since);
                let now = Instant::now();
                let from = tally.active_since.max(since);
                tally.busy += now.saturating_duration_since(from);
            }
        }
    }
}

/// What a pool built with `.insights(true)` did since it was built, or since its
/// `reset_insights()`: returned by `insights()` on every pool
/// ([`ThreadPool::insights`](crate::ThreadPool::insights) and the others).
///
/// Per worker ([`workers`](Self::workers)) the items it ran, its busy and idle time and,
/// for worker processes, their start-up time and restarts; the [`SLOWEST`](Insights::SLOWEST) slowest items
/// ([`slowest`](Self::slowest)); and totals. `Display` prints it as a small table, as
/// mpire's `print_insights` does:
///
/// ```
/// use twat_mp::ThreadPool;
///
/// let pool = ThreadPool::builder().nodes(2).insights(true).build()?;
/// let sums = pool.map(|n: u64| (0..n * 1000).sum::<u64>(), 0..100)?;
/// assert_eq!(sums[1], 499_500);
/// let insights = pool.insights().expect("built with .insights(true)");
/// assert_eq!(insights.items(), 100);
/// assert_eq!(insights.workers().iter().map(|w| w.items()).sum::<u64>(), 100);
/// assert_eq!(insights.slowest()[0].call(), 1);
/// println!("{insights}");
/// // twat-mp insights: 1 call, 100 items in 2.13ms on 2 workers, 71.9% busy
/// // worker  items     busy    idle
/// //      0     52   1.60ms   530µs
/// //      1     48   1.46ms   670µs
/// //    all    100   3.06ms  1.20ms
/// // slowest items:
/// // call  index  worker  duration
/// //    1     99       1     104µs
/// // ...
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Insights {
    wall: Duration,
    calls: u64,
    workers: Vec<WorkerInsights>,
    slowest: Vec<SlowItem>,
}

impl Insights {
    /// How many of the slowest items are kept: 5.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// pool.map(|x: u32| x + 1, 0..100)?;
    /// let insights = pool.insights().unwrap();
    /// assert_eq!(insights.slowest().len(), twat_mp::Insights::SLOWEST);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub const SLOWEST: usize = SLOWEST;

    /// The wall-clock time since the pool was built, or since its insights were reset.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// assert!(!insights.wall().is_zero());
    /// println!("{:?} since the pool was built", insights.wall());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wall(&self) -> Duration {
        self.wall
    }

    /// The calls (`map`, `imap`, `apply`, …) begun in that time.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// pool.apply(|x: u8| x, 1)?;
    /// assert_eq!(pool.insights().unwrap().calls(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Each worker's numbers, in worker order (the `worker()` of a
    /// [`WorkerError`](crate::WorkerError)).
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// assert_eq!(insights.workers().len(), 2);
    /// for worker in insights.workers() {
    ///     println!("worker {}: {} items", worker.worker(), worker.items());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workers(&self) -> &[WorkerInsights] {
        &self.workers
    }

    /// The slowest items (at most [`SLOWEST`](Insights::SLOWEST)), slowest first.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// // Three items, all among the slowest five; the first is likely the one summing two
    /// // million numbers.
    /// assert_eq!(insights.slowest().len(), 3);
    /// println!("slowest: item {}", insights.slowest()[0].index());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn slowest(&self) -> &[SlowItem] {
        &self.slowest
    }

    /// The items every worker ran.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// assert_eq!(insights.items(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn items(&self) -> u64 {
        self.workers.iter().map(|w| w.items).sum()
    }

    /// The busy time of every worker, added up.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// let per_worker: std::time::Duration = insights.workers().iter().map(|w| w.busy()).sum();
    /// assert_eq!(insights.busy(), per_worker);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn busy(&self) -> Duration {
        self.workers.iter().map(|w| w.busy).sum()
    }

    /// The idle time of every worker, added up.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// let per_worker: std::time::Duration = insights.workers().iter().map(|w| w.idle()).sum();
    /// assert_eq!(insights.idle(), per_worker);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn idle(&self) -> Duration {
        self.workers.iter().map(|w| w.idle).sum()
    }

    /// The share of the workers' time spent busy: [`busy`](Self::busy) over
    /// [`wall`](Self::wall) times the number of workers, from 0 to 1.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// assert!((0.0..=1.0).contains(&insights.utilization()));
    /// println!("{:.0}% busy", insights.utilization() * 100.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn utilization(&self) -> f64 {
        let available = self.wall.as_secs_f64() * self.workers.len() as f64;
        if available > 0.0 {
            (self.busy().as_secs_f64() / available).min(1.0)
        } else {
            0.0
        }
    }

    /// Whether the workers are processes (then start-up times and restarts are known).
    fn processes(&self) -> bool {
        self.workers.iter().any(|w| w.startup.is_some())
    }
}

/// What one worker (a thread, a process slot, an async worker) did; see [`Insights`].
///
/// ```
/// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
/// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
/// let insights = pool.insights().expect("built with .insights(true)");
/// for worker in insights.workers() {
///     println!("worker {}: {} items, busy {:?}, idle {:?}", worker.worker(), worker.items(), worker.busy(), worker.idle());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerInsights {
    worker: usize,
    items: u64,
    busy: Duration,
    idle: Duration,
    startup: Option<Duration>,
    restarts: Option<u64>,
}

impl WorkerInsights {
    /// The worker's number, from 0.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// let numbers: Vec<usize> = insights.workers().iter().map(|w| w.worker()).collect();
    /// assert_eq!(numbers, [0, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// The items it ran to an outcome: a value, an error or a panic. Not counted: an item
    /// whose worker process crashed or timed out on it, and in
    /// [`ThreadPool::map`](crate::ThreadPool::map) the item whose failure ended its
    /// thread's share of the items.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// assert_eq!(insights.workers().iter().map(|w| w.items()).sum::<u64>(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn items(&self) -> u64 {
        self.items
    }

    /// The time it spent running items. For the async pools, whose tasks overlap on a
    /// worker, the time during which at least one task ran on it.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// let busiest = insights.workers().iter().map(|w| w.busy()).max().unwrap();
    /// println!("the busiest thread ran items for {busiest:?}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn busy(&self) -> Duration {
        self.busy
    }

    /// The rest of the time since build or reset: neither busy nor starting a worker
    /// process.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// for worker in insights.workers() {
    ///     println!("worker {} waited {:?}", worker.worker(), worker.idle());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Worker processes only: the time from starting each of its processes to its first
    /// answer, added up; `None` for threads.
    ///
    /// ```
    /// use twat_mp::{ProcessPool, ThreadPool};
    ///
    /// let processes = ProcessPool::builder().nodes(1).insights(true).build()?;
    /// processes.map(|x: u8| x, [1])?;
    /// assert!(processes.insights().unwrap().workers()[0].startup().is_some());
    ///
    /// let threads = ThreadPool::builder().nodes(1).insights(true).build()?;
    /// threads.map(|x: u8| x, [1])?;
    /// assert_eq!(threads.insights().unwrap().workers()[0].startup(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn startup(&self) -> Option<Duration> {
        self.startup
    }

    /// Worker processes only: how many processes replaced an earlier one in this slot
    /// (after a crash, a timeout, `maxtasksperchild`, or a call that stopped its items);
    /// `None` for threads.
    ///
    /// ```
    /// /// Aborts its worker process on `0`.
    /// fn abort_on_zero(x: u8) -> u8 {
    ///     if x == 0 {
    ///         std::process::abort();
    ///     }
    ///     x
    /// }
    ///
    /// let pool = twat_mp::ProcessPool::builder().nodes(1).insights(true).build()?;
    /// assert!(pool.map(abort_on_zero, [0]).is_err());
    /// pool.map(abort_on_zero, [1])?; // on a new worker process
    /// assert!(matches!(pool.insights().unwrap().workers()[0].restarts(), Some(n) if n >= 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn restarts(&self) -> Option<u64> {
        self.restarts
    }
}

/// One of the slowest items; see [`Insights::slowest`].
///
/// ```
/// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
/// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
/// let insights = pool.insights().expect("built with .insights(true)");
/// let slowest = &insights.slowest()[0];
/// println!(
///     "call {}, item {}, on worker {}: {:?}",
///     slowest.call(),
///     slowest.index(),
///     slowest.worker(),
///     slowest.duration()
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowItem {
    call: u64,
    index: usize,
    worker: usize,
    duration: Duration,
}

impl SlowItem {
    /// Which call of the pool it belonged to: 1 for the pool's first call (`map`, `imap`,
    /// `apply`, …), counted from the pool's build; a reset does not renumber.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// assert_eq!(insights.slowest()[0].call(), 1);
    /// pool.reset_insights();
    /// pool.map(|n: u64| n + 1, [7])?;
    /// // A reset does not renumber the calls.
    /// assert_eq!(pool.insights().unwrap().slowest()[0].call(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call(&self) -> u64 {
        self.call
    }

    /// Its position in that call's input, as [`WorkerError::index`](crate::WorkerError::index).
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// let mut indices: Vec<usize> = insights.slowest().iter().map(|s| s.index()).collect();
    /// indices.sort();
    /// assert_eq!(indices, [0, 1, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The worker that ran it.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// assert!(insights.slowest()[0].worker() < 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// How long it ran.
    ///
    /// ```
    /// let pool = twat_mp::ThreadPool::builder().nodes(2).insights(true).build()?;
    /// pool.map(|n: u64| (0..n).sum::<u64>(), [10, 20, 2_000_000])?;
    /// let insights = pool.insights().expect("built with .insights(true)");
    /// let durations: Vec<_> = insights.slowest().iter().map(|s| s.duration()).collect();
    /// assert!(durations.windows(2).all(|pair| pair[0] >= pair[1])); // slowest first
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

/// A duration as the table shows it: three significant digits, its unit.
fn short(duration: Duration) -> String {
    if duration.is_zero() {
        return "0".into();
    }
    let secs = duration.as_secs_f64();
    let (value, unit) = if secs >= 1.0 {
        (secs, "s")
    } else if secs >= 1e-3 {
        (secs * 1e3, "ms")
    } else if secs >= 1e-6 {
        (secs * 1e6, "µs")
    } else {
        (secs * 1e9, "ns")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$}{unit}")
}

/// Writes `rows` (the first one the header) as columns aligned to the right.
fn table(f: &mut fmt::Formatter<'_>, rows: &[Vec<String>]) -> fmt::Result {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:>width$}"))
            .collect();
        writeln!(f, "{}", line.join("  "))?;
    }
    Ok(())
}

impl fmt::Display for Insights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        writeln!(
            f,
            "twat-mp insights: {}, {} in {} on {}, {:.1}% busy",
            plural(self.calls, "call", "calls"),
            plural(self.items(), "item", "items"),
            short(self.wall),
            plural(self.workers.len() as u64, "worker", "workers"),
            self.utilization() * 100.0
        )?;
        let processes = self.processes();
        let mut header = vec!["worker", "items", "busy", "idle"];
        if processes {
            header.extend(["start-up", "restarts"]);
        }
        let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
        let row = |name: String,
                   items: u64,
                   busy: Duration,
                   idle: Duration,
                   startup: Option<Duration>,
                   restarts: Option<u64>| {
            let mut row = vec![name, items.to_string(), short(busy), short(idle)];
            if processes {
                row.push(startup.map_or_else(String::new, short));
                row.push(restarts.map_or_else(String::new, |r| r.to_string()));
            }
            row
        };
        for w in &self.workers {
            rows.push(row(
                w.worker.to_string(),
                w.items,
                w.busy,
                w.idle,
                w.startup,
                w.restarts,
            ));
        }
        rows.push(row(
            "all".into(),
            self.items(),
            self.busy(),
            self.idle(),
            Some(self.workers.iter().filter_map(|w| w.startup).sum()),
            Some(self.workers.iter().filter_map(|w| w.restarts).sum()),
        ));
        table(f, &rows)?;
        if self.slowest.is_empty() {
            return Ok(());
        }
        writeln!(f, "slowest items:")?;
        let mut rows = vec![
            ["call", "index", "worker", "duration"]
                .map(String::from)
                .to_vec(),
        ];
        for item in &self.slowest {
            rows.push(vec![
                item.call.to_string(),
                item.index.to_string(),
                item.worker.to_string(),
                short(item.duration),
            ]);
        }
        table(f, &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(index: usize, micros: u64) -> SlowItem {
        SlowItem {
            call: 1,
            index,
            worker: 0,
            duration: Duration::from_micros(micros),
        }
    }

    #[test]
    fn keeps_the_slowest_in_order() {
        let mut slowest = Slowest::default();
        for (index, micros) in [5, 1, 9, 3, 7, 2, 8, 6].into_iter().enumerate() {
            slowest.offer(slow(index, micros));
        }
        let kept: Vec<u64> = slowest
            .items
            .iter()
            .map(|s| s.duration.as_micros() as u64)
            .collect();
        assert_eq!(kept, [9, 8, 7, 6, 5]);
        assert_eq!(slowest.floor(), Duration::from_micros(5));
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(short(Duration::ZERO), "0");
        assert_eq!(short(Duration::from_nanos(512)), "512ns");
        assert_eq!(short(Duration::from_micros(1500)), "1.50ms");
        assert_eq!(short(Duration::from_millis(25_300)), "25.3s");
    }

    #[test]
    fn a_reset_keeps_call_numbers_and_the_slots_history() {
        let recorder = Recorder::new(1, true);
        recorder.worker_started(0, 7, Duration::from_millis(3));
        assert_eq!(recorder.begin_call(), 1);
        recorder.item(0, 1, 0, Duration::from_millis(1));
        recorder.reset();
        let zero = recorder.snapshot();
        assert_eq!((zero.items(), zero.calls()), (0, 0));
        assert!(zero.slowest().is_empty());
        recorder.worker_started(0, 8, Duration::from_millis(3));
        assert_eq!(recorder.worker_of_pid(8), Some(0));
        assert_eq!(recorder.begin_call(), 2);
        let after = recorder.snapshot();
        assert_eq!(after.workers()[0].restarts(), Some(1));
        assert_eq!(after.calls(), 1);
    }
}
