//! Input order out of completion order: [`Reorder`] holds what finished early until every
//! item before it has been handed over, and [`Window`] adds the bound on how far a lazy
//! map may run ahead of its consumer (and so how much of its input its
//! [`Feed`](super::feed::Feed) may pull), counted by [`Counts`]. Every lazy map of every
//! pool uses these; the thread pool's keeps its outcomes in its jobs, in input order, and
//! counts with [`Counts`] alone.

use std::collections::BTreeMap;
#[cfg(feature = "aio")]
use std::collections::VecDeque;

/// Finished spans of items (one item, or a chunk of consecutive items), handed back in
/// input order.
#[derive(Debug)]
pub(crate) struct Reorder<T> {
    /// The index of the next item to hand over.
    next: usize,
    /// Spans that finished before their turn: first index → (length, value).
    waiting: BTreeMap<usize, (usize, T)>,
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Reorder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> Reorder<T> {
    /// A span of `len` items from index `first` has finished.
    pub(crate) fn insert(&mut self, first: usize, len: usize, value: T) {
        debug_assert!(len > 0, "a span holds at least one item");
        debug_assert!(first >= self.next, "span {first} was already handed over");
        self.waiting.insert(first, (len, value));
    }

    /// The span whose turn it is, with its first index, once it has finished.
    pub(crate) fn pop(&mut self) -> Option<(usize, T)> {
        let entry = self.waiting.first_entry()?;
        if *entry.key() != self.next {
            return None;
        }
        let (len, value) = entry.remove();
        let first = self.next;
        self.next += len;
        Some((first, value))
    }
}

/// How far a lazy map runs ahead of its consumer, in items: how many were started, how
/// many are still out, how many were handed over, and whether there is room to start
/// more. [`Window`] adds the outcomes themselves; a pool that keeps its outcomes in order
/// itself (the thread pool's jobs) counts with this alone.
///
/// In input order it bounds the items started and not yet handed over (so the results
/// buffered behind a slow item are bounded too); in completion order it bounds the items
/// still running.
#[derive(Debug)]
pub(crate) struct Counts {
    limit: usize,
    started: usize,
    running: usize,
    yielded: usize,
    ordered: bool,
}

impl Counts {
    /// A bound of `limit` items (at least 1), in input order or in completion order.
    pub(crate) fn new(limit: usize, ordered: bool) -> Self {
        Counts {
            limit: limit.max(1),
            started: 0,
            running: 0,
            yielded: 0,
            ordered,
        }
    }

    /// Changes the limit (at least 1), as an adaptive chunk size grows or shrinks. Items
    /// already started stay started: a smaller limit only leaves less room.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
    }

    /// The items counted against the limit.
    fn ahead(&self) -> usize {
        if self.ordered {
            self.started - self.yielded
        } else {
            self.running
        }
    }

    /// Whether another item may be started now.
    pub(crate) fn has_room(&self) -> bool {
        self.ahead() < self.limit
    }

    /// How many more items may be started now.
    pub(crate) fn room(&self) -> usize {
        self.limit.saturating_sub(self.ahead())
    }

    /// How many items may have been started in all by now: the allowance of the input's
    /// [`Feed`](super::feed::Feed). It grows as items are handed over (input order) or
    /// finish (completion order); a smaller limit may lower it, and the `Feed` keeps the
    /// larger allowance it already granted.
    pub(crate) fn allowance(&self) -> usize {
        self.started + self.room()
    }

    /// Records that `count` more items were started; returns the index of the first.
    pub(crate) fn start(&mut self, count: usize) -> usize {
        let first = self.started;
        self.started += count;
        self.running += count;
        first
    }

    /// Records that `count` started items have their outcomes.
    pub(crate) fn finish(&mut self, count: usize) {
        debug_assert!(count <= self.running, "more items finished than started");
        self.running -= count;
    }

    /// Records that one finished outcome was handed over.
    pub(crate) fn hand_over(&mut self) {
        debug_assert!(
            self.yielded < self.started - self.running,
            "nothing finished to hand over"
        );
        self.yielded += 1;
    }

    /// Items started and not finished.
    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// Items started so far: the index the next one gets.
    #[cfg(feature = "aio")]
    pub(crate) fn started(&self) -> usize {
        self.started
    }

    /// Items handed over so far.
    pub(crate) fn yielded(&self) -> usize {
        self.yielded
    }
}

/// The caller's side of a lazy map: its [`Counts`], and the outcomes that wait to be
/// handed over, in input order or in completion order.
#[cfg(feature = "aio")]
#[derive(Debug)]
pub(crate) struct Window<O> {
    counts: Counts,
    order: Order<O>,
}

#[cfg(feature = "aio")]
#[derive(Debug)]
enum Order<O> {
    Input(Reorder<O>),
    Completion(VecDeque<(usize, O)>),
}

#[cfg(feature = "aio")]
impl<O> Window<O> {
    /// A window of `limit` items (at least 1), in input order or in completion order.
    pub(crate) fn new(limit: usize, ordered: bool) -> Self {
        Window {
            counts: Counts::new(limit, ordered),
            order: if ordered {
                Order::Input(Reorder::default())
            } else {
                Order::Completion(VecDeque::new())
            },
        }
    }

    /// Whether another item may be started now.
    pub(crate) fn has_room(&self) -> bool {
        self.counts.has_room()
    }

    /// Records that `count` more items were started; returns the index of the first.
    pub(crate) fn start(&mut self, count: usize) -> usize {
        self.counts.start(count)
    }

    /// The item at `index` has its outcome.
    pub(crate) fn finish(&mut self, index: usize, outcome: O) {
        debug_assert!(
            index < self.counts.started,
            "item {index} was never started"
        );
        self.counts.finish(1);
        match &mut self.order {
            Order::Input(reorder) => reorder.insert(index, 1, outcome),
            Order::Completion(ready) => ready.push_back((index, outcome)),
        }
    }

    /// The next outcome to hand over, with its index, if it is there.
    pub(crate) fn pop(&mut self) -> Option<(usize, O)> {
        let next = match &mut self.order {
            Order::Input(reorder) => reorder.pop(),
            Order::Completion(ready) => ready.pop_front(),
        };
        if next.is_some() {
            self.counts.hand_over();
        }
        next
    }

    /// Items started and not finished.
    pub(crate) fn running(&self) -> usize {
        self.counts.running()
    }

    /// Items started so far: the index the next one gets.
    #[cfg(feature = "aio")]
    pub(crate) fn started(&self) -> usize {
        self.counts.started()
    }

    /// Items handed over so far.
    pub(crate) fn yielded(&self) -> usize {
        self.counts.yielded()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_come_back_in_input_order() {
        let mut reorder = Reorder::default();
        reorder.insert(3, 2, "d-e");
        reorder.insert(1, 2, "b-c");
        assert_eq!(reorder.pop(), None);
        reorder.insert(0, 1, "a");
        assert_eq!(reorder.pop(), Some((0, "a")));
        assert_eq!(reorder.pop(), Some((1, "b-c")));
        assert_eq!(reorder.pop(), Some((3, "d-e")));
        assert_eq!(reorder.pop(), None);
    }

    #[cfg(feature = "aio")]
    #[test]
    fn an_ordered_window_counts_what_waits_behind_a_slow_item() {
        let mut window = Window::new(2, true);
        assert_eq!(window.start(2), 0);
        assert!(!window.has_room());
        window.finish(1, 'b');
        // Item 1 is done but waits for item 0: still no room.
        assert!(!window.has_room());
        assert_eq!(window.pop(), None);
        window.finish(0, 'a');
        assert_eq!(window.pop(), Some((0, 'a')));
        assert!(window.has_room());
        assert_eq!(window.pop(), Some((1, 'b')));
        assert_eq!(window.yielded(), window.started());
    }

    #[test]
    fn the_allowance_grows_as_items_are_handed_over_or_finish() {
        let mut ordered = Counts::new(3, true);
        assert_eq!((ordered.room(), ordered.allowance()), (3, 3));
        ordered.start(2);
        ordered.finish(1);
        assert_eq!((ordered.room(), ordered.allowance()), (1, 3));
        ordered.finish(1);
        ordered.hand_over();
        assert_eq!((ordered.room(), ordered.allowance()), (2, 4));

        let mut unordered = Counts::new(3, false);
        unordered.start(3);
        assert_eq!(unordered.allowance(), 3);
        unordered.finish(1);
        // Finished, not yet handed over: no longer counted in completion order.
        assert_eq!(unordered.allowance(), 4);
    }

    #[cfg(feature = "aio")]
    #[test]
    fn an_unordered_window_counts_what_runs() {
        let mut window = Window::new(2, false);
        window.start(2);
        window.finish(1, 'b');
        assert!(window.has_room());
        assert_eq!(window.running(), 1);
        assert_eq!(window.pop(), Some((1, 'b')));
        window.finish(0, 'a');
        assert_eq!(window.pop(), Some((0, 'a')));
        assert_eq!(window.yielded(), 2);
        assert_eq!(window.started(), 2);
    }

    #[test]
    fn a_new_limit_changes_the_room_not_what_started() {
        let mut counts = Counts::new(4, true);
        counts.start(4);
        counts.set_limit(2);
        assert!(!counts.has_room());
        counts.finish(4);
        counts.hand_over();
        counts.hand_over();
        // Two still wait to be handed over: the smaller limit is full.
        assert!(!counts.has_room());
        counts.set_limit(8);
        assert_eq!(counts.room(), 6);
        assert_eq!(counts.allowance(), 10);
    }
}
