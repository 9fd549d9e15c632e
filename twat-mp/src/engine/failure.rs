//! "The lowest failure wins": the rule that makes a map's error the same on every run,
//! kept once for every pool.
//!
//! [`LowestFailure`] keeps the failure with the lowest index that a call has seen;
//! [`FailureMark`] is its lock-free shadow that workers read to skip items past it.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::item::ItemFailure;

/// Something that failed at an index of the input.
pub(crate) trait Indexed {
    /// The position of the failing item in the input.
    fn index(&self) -> usize;
}

impl<E> Indexed for ItemFailure<E> {
    fn index(&self) -> usize {
        ItemFailure::index(self)
    }
}

/// The failure with the lowest index offered so far.
#[derive(Debug)]
pub(crate) struct LowestFailure<F> {
    kept: Option<F>,
}

impl<F> Default for LowestFailure<F> {
    fn default() -> Self {
        LowestFailure { kept: None }
    }
}

impl<F: Indexed> LowestFailure<F> {
    /// Keeps `failure` if it is lower than the one kept; says whether it was kept.
    pub(crate) fn offer(&mut self, failure: F) -> bool {
        let lower = self
            .kept
            .as_ref()
            .is_none_or(|kept| failure.index() < kept.index());
        if lower {
            self.kept = Some(failure);
        }
        lower
    }

    /// The index of the failure kept, if any.
    pub(crate) fn index(&self) -> Option<usize> {
        self.kept.as_ref().map(Indexed::index)
    }

    /// The failure kept, if any.
    pub(crate) fn take(&mut self) -> Option<F> {
        self.kept.take()
    }

    /// The failure kept, if any, consuming the keeper.
    pub(crate) fn into_inner(self) -> Option<F> {
        self.kept
    }
}

/// The lowest failing index of a call, shared with the workers that run its items so that
/// they can skip the items after it (`map` does not need them).
#[derive(Debug)]
pub(crate) struct FailureMark(AtomicUsize);

impl Default for FailureMark {
    fn default() -> Self {
        FailureMark(AtomicUsize::new(usize::MAX))
    }
}

impl FailureMark {
    /// Records that the item at `index` failed.
    pub(crate) fn mark(&self, index: usize) {
        self.0.fetch_min(index, Ordering::Relaxed);
    }

    /// Whether the item at `index` comes after a failed one.
    pub(crate) fn is_past(&self, index: usize) -> bool {
        index > self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct At(usize);

    impl Indexed for At {
        fn index(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn keeps_the_lowest_whatever_the_order() {
        let mut lowest = LowestFailure::default();
        let kept: Vec<bool> = [7, 3, 9, 3, 5].map(|i| lowest.offer(At(i))).into();
        assert_eq!(kept, [true, true, false, false, false]);
        assert_eq!(lowest.index(), Some(3));
        assert_eq!(lowest.take().map(|f| f.0), Some(3));
        assert_eq!(lowest.index(), None);
    }

    #[test]
    fn the_mark_tells_what_comes_after_a_failure() {
        let mark = FailureMark::default();
        assert!(!mark.is_past(usize::MAX - 1));
        mark.mark(10);
        mark.mark(12);
        assert!(mark.is_past(11));
        assert!(!mark.is_past(10));
        assert!(!mark.is_past(3));
    }
}
