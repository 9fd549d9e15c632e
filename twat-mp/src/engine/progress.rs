//! Progress bars (feature `progress`): what one call of a pool built with
//! `.progress(true)` counts, and the bar that shows it.
//!
//! A call makes one [`Progress`] ([`Progress::start`]) and feeds it the items that finish
//! and the ones that failed ([`Progress::add`]); the bar shows items done of the total when
//! the input's length is known (a spinner with a count otherwise), the rate, the ETA and
//! the failures so far. Every bar of the program is a line of one
//! [`indicatif::MultiProgress`] on stderr, drawn at most 15 times a second and not at all
//! when stderr is not a terminal; several calls at once each get their own line. When the
//! call ends (returns, fails, or its lazy iterator is dropped) its bar gives way to a line
//! that stays, printed above the bars still running: what the call did, in how long.
//!
//! The counting costs nothing per item where items are trivial: `ThreadPool::map` counts
//! each rayon leaf's items when the leaf ends ([`Counted`], a parallel iterator adaptor
//! whose leaves hold at most a sixteenth of each thread's share; a leaf left by unwinding
//! counts its failed item); the other calls count where
//! their outcomes already arrive one by one or in chunks: the lazy maps and the async
//! pools as each result is handed over, the process pools as each batch of results
//! arrives in the parent. Counting is two relaxed atomic additions at most: the bar is
//! never told by the counting thread, but by the program's one drawing thread, which sets
//! each shown bar's position and failures 15 times a second (and sleeps while no bar is
//! shown; a hidden bar, when stderr is not a terminal, is never drawn).
//! Without the feature, [`Progress::start`] gives `None` and nothing is counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::iter::plumbing::{
    Consumer, Folder, Producer, ProducerCallback, UnindexedConsumer, bridge,
};
use rayon::iter::{IndexedParallelIterator, ParallelIterator};

/// What a builder's `.progress(..)` asks of its argument without the `progress` feature:
/// nothing implements it, so that the call is an error that names the feature.
#[cfg(not(feature = "progress"))]
#[diagnostic::on_unimplemented(
    message = "progress bars need twat-mp's `progress` feature",
    label = "`.progress(..)` needs the `progress` feature",
    note = "enable it in Cargo.toml: `twat-mp = {{ version = \"0.1\", features = [\"progress\"] }}`"
)]
pub trait ProgressFeature {}

/// The `progress` setter of a builder whose settings are in `self.settings`: with the
/// feature, `progress(bool)`; without it, a method whose every call is a compile error
/// naming the feature. `$doc` says what the bar counts for that pool, with an example.
macro_rules! progress_setter {
    ($(#[$doc:meta])*) => {
        $(#[$doc])*
        #[cfg(feature = "progress")]
        #[cfg_attr(docsrs, doc(cfg(feature = "progress")))]
        pub fn progress(mut self, progress: bool) -> Self {
            self.settings.progress = progress;
            self
        }

        /// A progress bar per call: needs twat-mp's `progress` feature
        /// (`features = ["progress"]` in Cargo.toml); without it, calling this is a
        /// compile error that says so:
        ///
        /// ```compile_fail
        /// // Without the `progress` feature:
        /// let builder = twat_mp::ThreadPool::builder().progress(true);
        /// ```
        #[cfg(not(feature = "progress"))]
        pub fn progress<B: crate::engine::progress::ProgressFeature>(self, progress: B) -> Self {
            let _ = progress;
            self
        }
    };
}
pub(crate) use progress_setter;

/// The counts (and, with the feature, the bar) of one call. Without the feature none is
/// ever made.
#[cfg_attr(not(feature = "progress"), allow(dead_code))]
pub(crate) struct Progress {
    counts: Arc<Counts>,
    total: Option<u64>,
    #[cfg(feature = "progress")]
    bar: bar::Bar,
}

/// What a call counted: atomics only, so that counting never waits on the bar. The bar is
/// told by the program's one drawing thread, at most 15 times a second.
#[derive(Default)]
pub(crate) struct Counts {
    done: AtomicU64,
    failed: AtomicU64,
}

#[cfg_attr(not(feature = "progress"), allow(dead_code))]
impl Progress {
    /// The progress of a call over an input with this `size_hint`, if the pool shows
    /// progress (`on`), the `progress` feature is built, and the call maps several items
    /// (a call of one item, as `apply`, or none, has nothing to show).
    pub(crate) fn start(on: bool, size_hint: (usize, Option<usize>)) -> Option<Progress> {
        let total = exact(size_hint);
        if !on || !cfg!(feature = "progress") || total.is_some_and(|total| total < 2) {
            return None;
        }
        Some(Progress::counting(total))
    }

    /// Counts without a bar (and, with the feature, draws one on the program's bars).
    fn counting(total: Option<u64>) -> Progress {
        let counts = Arc::<Counts>::default();
        Progress {
            #[cfg(feature = "progress")]
            bar: bar::Bar::start(&bar::multi(), total, &counts),
            counts,
            total,
        }
    }

    /// `finished` more items have finished, `failed` of them by failing.
    pub(crate) fn add(&self, finished: u64, failed: u64) {
        if finished == 0 {
            return;
        }
        self.counts.done.fetch_add(finished, Ordering::Relaxed);
        if failed > 0 {
            self.counts.failed.fetch_add(failed, Ordering::Relaxed);
        }
    }

    /// One item has finished, successfully or not.
    pub(crate) fn item(&self, ok: bool) {
        self.add(1, u64::from(!ok));
    }

    /// Items finished so far.
    pub(crate) fn done(&self) -> u64 {
        self.counts.done.load(Ordering::Relaxed)
    }

    /// Items failed so far.
    pub(crate) fn failed(&self) -> u64 {
        self.counts.failed.load(Ordering::Relaxed)
    }

    /// The number of items of the call, when the input said it exactly.
    #[cfg(test)]
    pub(crate) fn total(&self) -> Option<u64> {
        self.total
    }

    /// `items` (of `ThreadPool::map`), counting each rayon leaf's items when it ends:
    /// nothing is done per item. The leaves hold at most about a sixteenth of each
    /// thread's share, so that the bar moves while the call runs. With
    /// `unwinding_failed`, a leaf left by unwinding was left because its current item
    /// failed: that item is counted, as failed (the items it ran before are not).
    pub(crate) fn counted<I: IndexedParallelIterator>(
        &self,
        items: I,
        unwinding_failed: bool,
    ) -> Counted<'_, I> {
        let threads = rayon::current_num_threads().max(1);
        let max_len = items.len().div_ceil(threads * LEAVES_PER_THREAD).max(1);
        Counted {
            base: items,
            leaf: Leaf {
                progress: self,
                max_len,
                unwinding_failed,
            },
        }
    }

    /// `f`, counting each item that fails (returns `Err` or panics) as done and failed
    /// (it leaves its rayon leaf by unwinding, so its leaf is not counted). The other
    /// items are counted by their leaf ([`Progress::counted`]): nothing is added here
    /// per item that succeeds.
    pub(crate) fn watch<T, R, E>(
        &self,
        f: impl FnOnce(T) -> Result<R, E>,
    ) -> impl FnOnce(T) -> Result<R, E> {
        move |item| {
            let unwinding = FailOnUnwind(self);
            let outcome = f(item);
            std::mem::forget(unwinding);
            if outcome.is_err() {
                self.add(1, 1);
            }
            outcome
        }
    }
}

/// Counts the item that is running as failed if it unwinds.
struct FailOnUnwind<'a>(&'a Progress);

impl Drop for FailOnUnwind<'_> {
    #[cold]
    fn drop(&mut self) {
        // Only reached while unwinding: a finished item forgets this guard.
        self.0.add(1, 1);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        #[cfg(feature = "progress")]
        self.bar.end(self.total, self.done(), self.failed());
    }
}

/// The exact number of items of an input with this `size_hint`, if it says so.
fn exact((lower, upper): (usize, Option<usize>)) -> Option<u64> {
    (upper == Some(lower)).then_some(lower as u64)
}

/// How many leaves (at least) each thread's share of `ThreadPool::map` is split into.
const LEAVES_PER_THREAD: usize = 16;

/// A parallel iterator whose leaves are counted when they end (see
/// [`Progress::counted`]).
pub(crate) struct Counted<'p, I> {
    base: I,
    leaf: Leaf<'p>,
}

/// What each leaf of a [`Counted`] needs.
#[derive(Clone, Copy)]
struct Leaf<'p> {
    progress: &'p Progress,
    max_len: usize,
    unwinding_failed: bool,
}

impl<I: IndexedParallelIterator> ParallelIterator for Counted<'_, I> {
    type Item = I::Item;

    fn drive_unindexed<C: UnindexedConsumer<I::Item>>(self, consumer: C) -> C::Result {
        bridge(self, consumer)
    }

    fn opt_len(&self) -> Option<usize> {
        Some(self.base.len())
    }
}

impl<I: IndexedParallelIterator> IndexedParallelIterator for Counted<'_, I> {
    fn len(&self) -> usize {
        self.base.len()
    }

    fn drive<C: Consumer<I::Item>>(self, consumer: C) -> C::Result {
        bridge(self, consumer)
    }

    fn with_producer<CB: ProducerCallback<I::Item>>(self, callback: CB) -> CB::Output {
        let len = self.base.len();
        return self.base.with_producer(Callback {
            callback,
            leaf: self.leaf,
            len,
        });

        struct Callback<'p, CB> {
            callback: CB,
            leaf: Leaf<'p>,
            len: usize,
        }

        impl<T, CB: ProducerCallback<T>> ProducerCallback<T> for Callback<'_, CB> {
            type Output = CB::Output;

            fn callback<P: Producer<Item = T>>(self, base: P) -> CB::Output {
                self.callback.callback(CountedProducer {
                    base,
                    leaf: self.leaf,
                    len: self.len,
                })
            }
        }
    }
}

struct CountedProducer<'p, P> {
    base: P,
    leaf: Leaf<'p>,
    /// The items of this part.
    len: usize,
}

impl<P: Producer> Producer for CountedProducer<'_, P> {
    type Item = P::Item;
    type IntoIter = P::IntoIter;

    fn into_iter(self) -> P::IntoIter {
        // Consumers that iterate (rather than fold) count the part as it starts.
        self.leaf.progress.add(self.len as u64, 0);
        self.base.into_iter()
    }

    fn min_len(&self) -> usize {
        self.base.min_len()
    }

    fn max_len(&self) -> usize {
        self.base.max_len().min(self.leaf.max_len)
    }

    fn split_at(self, index: usize) -> (Self, Self) {
        let (left, right) = self.base.split_at(index);
        (
            CountedProducer {
                base: left,
                leaf: self.leaf,
                len: index,
            },
            CountedProducer {
                base: right,
                leaf: self.leaf,
                len: self.len - index,
            },
        )
    }

    fn fold_with<F: Folder<P::Item>>(self, folder: F) -> F {
        let unwinding = LeafUnwinding(self.leaf);
        let folder = self.base.fold_with(folder);
        std::mem::forget(unwinding);
        self.leaf.progress.add(self.len as u64, 0);
        folder
    }
}

/// Counts the item that ended a leaf by unwinding, when that means it failed.
struct LeafUnwinding<'p>(Leaf<'p>);

impl Drop for LeafUnwinding<'_> {
    fn drop(&mut self) {
        // Only reached while unwinding: a leaf that ends forgets this guard.
        if self.0.unwinding_failed {
            self.0.progress.add(1, 1);
        }
    }
}

#[cfg(feature = "progress")]
mod bar {
    //! The bars on the terminal.

    use std::fmt::Write as _;
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
    use std::time::{Duration, Instant};

    use super::Counts;

    use indicatif::{
        HumanCount, HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState,
        ProgressStyle,
    };

    /// How often a bar is drawn at most, per second.
    const HZ: u8 = 15;

    /// The program's bars: one line each, on stderr. Tests draw them elsewhere.
    static BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);

    pub(super) fn multi() -> MultiProgress {
        BARS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| {
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(HZ))
            })
            .clone()
    }

    /// Draws every bar started from now on into `target` (the unit tests' terminal).
    #[cfg(test)]
    pub(super) fn draw_into(target: ProgressDrawTarget) {
        *BARS.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(MultiProgress::with_draw_target(target));
    }

    /// The bar of one call, a line of `multi`.
    pub(super) struct Bar {
        pub(super) bar: ProgressBar,
        multi: MultiProgress,
        started: Instant,
        counts: Weak<Counts>,
    }

    /// The bars on show: their counts, the bar, and the failures it shows.
    static SHOWN: Mutex<Vec<(Weak<Counts>, ProgressBar, u64)>> = Mutex::new(Vec::new());
    /// Wakes the drawing thread when a bar is shown.
    static SHOWING: Condvar = Condvar::new();
    static DRAWER: OnceLock<()> = OnceLock::new();

    /// The drawing thread: while bars are on show, tells each its counts and redraws it
    /// (rate, ETA and spinner move on while items take long), `HZ` times a second; it
    /// sleeps while there is none.
    fn draw_shown_bars() {
        let mut shown = SHOWN.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            shown.retain(|(counts, _, _)| counts.strong_count() > 0);
            if shown.is_empty() {
                shown = SHOWING.wait(shown).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            for (counts, bar, failures) in shown.iter_mut() {
                let Some(counts) = counts.upgrade() else {
                    continue;
                };
                bar.set_position(counts.done.load(Ordering::Relaxed));
                let failed = counts.failed.load(Ordering::Relaxed);
                if failed != *failures {
                    *failures = failed;
                    bar.set_message(format!("  {failed} failed"));
                }
                bar.tick();
            }
            drop(shown);
            std::thread::sleep(Duration::from_millis(1000 / u64::from(HZ)));
            shown = SHOWN.lock().unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Items per second, as a whole number with separators: `41,873,802/s`.
    fn rate(state: &ProgressState, out: &mut dyn std::fmt::Write) {
        let _ = write!(out, "{}/s", HumanCount(state.per_sec() as u64));
    }

    impl Bar {
        pub(super) fn start(
            multi: &MultiProgress,
            total: Option<u64>,
            counts: &Arc<Counts>,
        ) -> Bar {
            let (bar, template) = match total {
                Some(total) => (
                    ProgressBar::new(total),
                    "{bar:30} {human_pos}/{human_len} items  {rate:.dim}  ETA {eta}{msg}",
                ),
                None => (
                    ProgressBar::no_length(),
                    "{spinner} {human_pos} items  {rate:.dim}  {elapsed}{msg}",
                ),
            };
            let style = ProgressStyle::with_template(template)
                .expect("the progress templates are valid")
                .with_key("rate", rate)
                .progress_chars("=> ");
            let bar = multi.add(bar.with_style(style));
            if !bar.is_hidden() {
                DRAWER.get_or_init(|| {
                    // Without its thread a bar stays still; the counts and the result are
                    // the same.
                    let _ = std::thread::Builder::new()
                        .name("twat-mp-progress".into())
                        .spawn(draw_shown_bars);
                });
                let mut shown = SHOWN.lock().unwrap_or_else(|p| p.into_inner());
                shown.push((Arc::downgrade(counts), bar.clone(), 0));
                SHOWING.notify_all();
            }
            Bar {
                bar,
                multi: multi.clone(),
                started: Instant::now(),
                counts: Arc::downgrade(counts),
            }
        }

        /// Replaces the bar with a line that stays: what the call did, in how long.
        pub(super) fn end(&self, total: Option<u64>, done: u64, failed: u64) {
            // Off the drawing thread's list first, so that it draws this bar no more.
            SHOWN
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|(counts, _, _)| !counts.ptr_eq(&self.counts));
            let _ = self
                .multi
                .println(summary(total, done, failed, self.started.elapsed()));
            self.bar.finish_and_clear();
            self.multi.remove(&self.bar);
        }
    }

    /// `2,000,000 items in 2.00s (1,000,000/s), 2 failed`; `stopped at 437/600 items
    /// ...` when the call ended before its last item.
    pub(super) fn summary(total: Option<u64>, done: u64, failed: u64, took: Duration) -> String {
        let mut line = match total {
            Some(total) if done < total => format!(
                "stopped at {}/{} items",
                HumanCount(done),
                HumanCount(total)
            ),
            _ => format!("{} items", HumanCount(done)),
        };
        let rate = done as f64 / took.as_secs_f64().max(1e-9);
        // Under a minute to two decimals (`44.23ms`, `3.42s`): whole seconds would say
        // "0 seconds" of a short call.
        let _ = if took < Duration::from_secs(60) {
            write!(line, " in {took:.2?} ({}/s)", HumanCount(rate as u64))
        } else {
            write!(
                line,
                " in {} ({}/s)",
                HumanDuration(took),
                HumanCount(rate as u64)
            )
        };
        if failed > 0 {
            let _ = write!(line, ", {failed} failed");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::iter::IntoParallelIterator;
    #[cfg(feature = "progress")]
    use std::time::{Duration, Instant};

    /// Counts without drawing anywhere (other tests may draw the program's bars).
    fn quiet(total: Option<u64>) -> Progress {
        let counts = Arc::<Counts>::default();
        Progress {
            #[cfg(feature = "progress")]
            bar: bar::Bar::start(
                &indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden()),
                total,
                &counts,
            ),
            counts,
            total,
        }
    }

    #[test]
    fn counts_items_and_failures() {
        let progress = quiet(Some(10));
        for ok in [true, false, true] {
            progress.item(ok);
        }
        progress.add(5, 2);
        progress.add(0, 0);
        assert_eq!(
            (progress.done(), progress.failed(), progress.total()),
            (8, 3, Some(10))
        );
    }

    #[test]
    fn an_exact_size_hint_is_the_total() {
        assert_eq!(exact((7, Some(7))), Some(7));
        assert_eq!(exact((0, None)), None);
        assert_eq!(exact((3, Some(9))), None);
    }

    #[test]
    fn off_or_without_the_feature_nothing_is_counted() {
        assert!(Progress::start(false, (3, Some(3))).is_none());
        assert!(Progress::start(true, (1, Some(1))).is_none(), "one item");
        assert_eq!(
            Progress::start(true, (3, Some(3))).is_some(),
            cfg!(feature = "progress")
        );
    }

    /// A map over `counted` items on a pool of `threads`.
    fn counted_map(progress: &Progress, threads: usize, len: u64) -> Vec<u64> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let items: Vec<u64> = (0..len).collect();
            progress
                .counted(items.into_par_iter(), true)
                .map(|x| x + 1)
                .collect()
        })
    }

    #[test]
    fn every_leaf_is_counted_when_it_ends() {
        for (threads, len) in [(1, 1), (2, 10), (2, 100_000), (3, 12_345)] {
            let progress = quiet(Some(len));
            let out = counted_map(&progress, threads, len);
            assert_eq!(out, (1..=len).collect::<Vec<_>>());
            assert_eq!((progress.done(), progress.failed()), (len, 0));
        }
    }

    #[test]
    fn the_leaves_are_small_enough_for_the_bar_to_move() {
        let progress = quiet(Some(100_000));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let leaves = std::sync::Mutex::new(Vec::new());
        pool.install(|| {
            let items: Vec<u64> = (0..100_000).collect();
            progress
                .counted(items.into_par_iter(), true)
                .map_init(|| leaves.lock().unwrap().push(()), |_, x| x)
                .collect::<Vec<u64>>()
        });
        // At least 16 leaves per thread.
        assert!(leaves.lock().unwrap().len() >= 32);
    }

    #[test]
    fn a_leaf_left_by_unwinding_counts_its_item_as_failed() {
        for unwinding_failed in [true, false] {
            let progress = quiet(Some(10));
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.install(|| {
                    progress
                        .counted((0..10u32).into_par_iter(), unwinding_failed)
                        .with_max_len(10)
                        .for_each(|x| assert!(x != 9, "the last item fails"));
                })
            }));
            assert!(unwound.is_err());
            assert_eq!(progress.failed(), u64::from(unwinding_failed));
        }
    }

    #[test]
    fn watch_counts_errors_and_panics_as_failures() {
        let progress = quiet(Some(3));
        let op = |x: u32| match x {
            0 => Ok(x),
            1 => Err("one"),
            _ => panic!("two"),
        };
        let f = |x| progress.watch(op)(x);
        assert_eq!(f(0), Ok(0));
        assert_eq!(f(1), Err("one"));
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(2)));
        assert!(unwound.is_err());
        // The failures are done too; the item that succeeded is its leaf's to count.
        assert_eq!((progress.done(), progress.failed()), (2, 2));
    }

    /// A terminal in memory, and the bars drawn into it.
    #[cfg(feature = "progress")]
    fn terminal() -> (indicatif::InMemoryTerm, indicatif::MultiProgress) {
        let term = indicatif::InMemoryTerm::new(6, 120);
        let target = indicatif::ProgressDrawTarget::term_like(Box::new(term.clone()));
        (term, indicatif::MultiProgress::with_draw_target(target))
    }

    /// What `term` shows once `progress` is drawn again and shows every one of `expected`
    /// (draws are rate-limited: a tick draws only once the limiter allows it again, and
    /// the count and the failures can reach the screen in different draws).
    #[cfg(feature = "progress")]
    fn redrawn(term: &indicatif::InMemoryTerm, progress: &Progress, expected: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            progress.bar.bar.tick();
            let shown = term.contents();
            if expected.iter().all(|e| shown.contains(e)) || Instant::now() > deadline {
                return shown;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[cfg(feature = "progress")]
    fn drawn(total: Option<u64>, multi: &indicatif::MultiProgress) -> Progress {
        let counts = Arc::<Counts>::default();
        Progress {
            bar: bar::Bar::start(multi, total, &counts),
            counts,
            total,
        }
    }

    #[cfg(feature = "progress")]
    #[test]
    fn the_bar_shows_done_of_total_and_failures_then_a_summary() {
        let (term, multi) = terminal();
        let progress = drawn(Some(10), &multi);
        progress.add(7, 0);
        progress.item(false);
        let shown = redrawn(&term, &progress, &["8/10 items", "1 failed", "ETA"]);
        assert!(shown.contains("8/10 items"), "{shown}");
        assert!(shown.contains("1 failed"), "{shown}");
        assert!(shown.contains("ETA"), "{shown}");
        progress.add(2, 0);
        drop(progress);
        let shown = term.contents();
        assert!(shown.starts_with("10 items in "), "{shown}");
        assert!(shown.contains("/s), 1 failed"), "{shown}");
        assert!(!shown.contains("10/10"), "the bar is gone: {shown}");
    }

    #[cfg(feature = "progress")]
    #[test]
    fn a_call_that_stops_early_says_how_far_it_got() {
        let (term, multi) = terminal();
        let progress = drawn(Some(2_000_000), &multi);
        progress.add(1_400_000, 2);
        drop(progress);
        let shown = term.contents();
        assert!(
            shown.starts_with("stopped at 1,400,000/2,000,000 items in "),
            "{shown}"
        );
        assert!(shown.trim_end().ends_with(", 2 failed"), "{shown}");
    }

    #[cfg(feature = "progress")]
    #[test]
    fn without_a_length_the_bar_is_a_count() {
        let (term, multi) = terminal();
        let progress = drawn(None, &multi);
        progress.add(42, 0);
        let shown = redrawn(&term, &progress, &["42 items"]);
        assert!(shown.contains("42 items"), "{shown}");
        // No `42/<total>` (a rate such as `2,442/s` may end in 42/ all the same).
        let with_total = shown.split_whitespace().any(|word| {
            word.strip_prefix("42/")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        });
        assert!(!with_total, "no total: {shown}");
        drop(progress);
        assert!(term.contents().starts_with("42 items in "));
    }

    #[cfg(feature = "progress")]
    #[test]
    fn the_summary_reads_as_one_line() {
        let second = Duration::from_secs(2);
        assert_eq!(
            bar::summary(Some(4), 4, 0, second),
            "4 items in 2.00s (2/s)"
        );
        assert_eq!(
            bar::summary(None, 3_000, 1, second),
            "3,000 items in 2.00s (1,500/s), 1 failed"
        );
        assert_eq!(
            bar::summary(Some(261), 261, 0, Duration::from_micros(44_230)),
            "261 items in 44.23ms (5,900/s)"
        );
        assert_eq!(
            bar::summary(Some(10), 10, 0, Duration::from_secs(125)),
            "10 items in 2 minutes (0/s)"
        );
    }

    /// Through a pool: the line a call leaves counts the items and the failure, for
    /// `map`, `try_map` and a `uimap` over an input of unknown length.
    #[cfg(feature = "progress")]
    #[test]
    fn a_pool_call_draws_its_bar_to_the_end() {
        use indicatif::{InMemoryTerm, ProgressDrawTarget};

        let term = InMemoryTerm::new(8, 120);
        bar::draw_into(ProgressDrawTarget::term_like(Box::new(term.clone())));
        let pool = crate::ThreadPool::builder()
            .nodes(2)
            .progress(true)
            .build()
            .unwrap();
        let all = pool.map(|x: u64| x + 1, 0..50_000).unwrap();
        assert_eq!(all.len(), 50_000);
        let shown = term.contents();
        assert!(shown.contains("50,000 items in "), "{shown}");
        // The failing item is the last one: every other item runs.
        let err = pool
            .try_map(|x: u64| if x == 999 { Err("no") } else { Ok(x) }, 0..1_000)
            .unwrap_err();
        assert_eq!(err.index(), 999);
        // The items its leaf ran before it are not counted (see `counted`): the line says
        // `stopped at 990/1,000 items` unless rayon ran that item in a leaf of its own, as
        // work stealing decides, and then `1,000 items`.
        let shown = term.contents();
        assert!(shown.contains("1,000 items in "), "{shown}");
        assert!(shown.contains("/s), 1 failed"), "{shown}");
        let mut n = 0;
        let unknown = std::iter::from_fn(move || {
            n += 1;
            (n <= 300).then_some(n)
        });
        let lazy = pool.uimap(|x: u64| x, unknown).count();
        assert_eq!(lazy, 300);
        let shown = term.contents();
        assert!(shown.contains("\n300 items in "), "{shown}");
    }
}
