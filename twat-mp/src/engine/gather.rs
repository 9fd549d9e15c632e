//! The eager maps' end: results gathered into input order, or the lowest failure, decided
//! as early as it can be: [`Gather`] for answers of single items and chunks in any
//! number, `InOrder` (the async pool's) for single items whose number is known ahead (a
//! place each).

use std::collections::BTreeMap;

use super::failure::{Indexed, LowestFailure};

/// Results of one eager call (`map` and the attributes), arriving in any order, one item
/// or one chunk of consecutive items at a time.
///
/// The outcome is *decided* once a failure is known and every item below it has
/// answered: no later answer can change it, so the call may return then and cancel what
/// still runs. After a failure no more values are kept.
#[derive(Debug)]
pub(crate) struct Gather<R, F> {
    parts: Vec<(usize, Part<R>)>,
    /// Every item below `answered` has answered.
    answered: usize,
    /// Spans that answered above `answered`: first index → length.
    beyond: BTreeMap<usize, usize>,
    lowest: LowestFailure<F>,
}

#[derive(Debug)]
enum Part<R> {
    One(R),
    Many(Vec<R>),
}

impl<R, F: Indexed> Default for Gather<R, F> {
    fn default() -> Self {
        Gather {
            parts: Vec::new(),
            answered: 0,
            beyond: BTreeMap::new(),
            lowest: LowestFailure::default(),
        }
    }
}

impl<R, F: Indexed> Gather<R, F> {
    /// The item at `index` gave `value`.
    pub(crate) fn value(&mut self, index: usize, value: R) {
        if self.lowest.index().is_none() {
            self.parts.push((index, Part::One(value)));
        }
        self.answered(index, 1);
    }

    /// The items from `first` on gave `values`.
    pub(crate) fn values(&mut self, first: usize, values: Vec<R>) {
        let len = values.len();
        if len == 0 {
            return;
        }
        if self.lowest.index().is_none() {
            self.parts.push((first, Part::Many(values)));
        }
        self.answered(first, len);
    }

    /// An item failed.
    pub(crate) fn failure(&mut self, failure: F) {
        let index = failure.index();
        if self.lowest.offer(failure) {
            // Values are no longer needed: the call fails whatever comes.
            self.parts = Vec::new();
        }
        self.answered(index, 1);
    }

    /// The outcome of the item at `index`.
    pub(crate) fn outcome(&mut self, index: usize, outcome: Result<R, F>) {
        match outcome {
            Ok(value) => self.value(index, value),
            Err(failure) => self.failure(failure),
        }
    }

    fn answered(&mut self, first: usize, len: usize) {
        if first == self.answered {
            self.answered += len;
            while let Some(len) = self.beyond.remove(&self.answered) {
                self.answered += len;
            }
        } else if first > self.answered {
            self.beyond.insert(first, len);
        }
    }

    /// Whether an item has failed (the call will fail, whatever comes).
    #[cfg_attr(not(feature = "aio"), allow(dead_code))]
    pub(crate) fn has_failed(&self) -> bool {
        self.lowest.index().is_some()
    }

    /// Whether the outcome can no longer change: a failure is known and every item below
    /// it has answered.
    pub(crate) fn is_decided(&self) -> bool {
        self.lowest
            .index()
            .is_some_and(|lowest| self.answered >= lowest)
    }

    /// Every value in input order, or the lowest failure.
    pub(crate) fn finish(self) -> Result<Vec<R>, F> {
        if let Some(failure) = self.lowest.into_inner() {
            return Err(failure);
        }
        let mut parts = self.parts;
        parts.sort_unstable_by_key(|(first, _)| *first);
        let mut values = Vec::with_capacity(self.answered);
        for (first, part) in parts {
            debug_assert_eq!(first, values.len(), "the answers are contiguous");
            match part {
                Part::One(value) => values.push(value),
                Part::Many(many) => values.extend(many),
            }
        }
        Ok(values)
    }
}

/// One item's place in an eager call's results.
#[cfg(feature = "aio")]
enum Place<R> {
    Waiting,
    Value(R),
    Failed,
}

/// An eager call's results, one item at a time and their number known ahead (the async
/// pool's): each written into its item's place as it arrives: no sort at
/// the end and no map of the items answered out of turn, so the cost per item stays the
/// same however many items there are.
#[cfg(feature = "aio")]
pub(crate) struct InOrder<R, F> {
    places: Vec<Place<R>>,
    /// Every item below this one has answered.
    answered: usize,
    lowest: LowestFailure<F>,
}

#[cfg(feature = "aio")]
impl<R, F: Indexed> InOrder<R, F> {
    /// A call of `items` items, as far as it knows (more may come).
    pub(crate) fn new(items: usize) -> Self {
        let mut places = Vec::new();
        places.resize_with(items, || Place::Waiting);
        InOrder {
            places,
            answered: 0,
            lowest: LowestFailure::default(),
        }
    }

    /// The outcome of the item at `index`.
    pub(crate) fn outcome(&mut self, index: usize, outcome: Result<R, F>) {
        if index >= self.places.len() {
            // More items than the input's size hint said.
            self.places.resize_with(index + 1, || Place::Waiting);
        }
        self.places[index] = match outcome {
            Ok(value) => Place::Value(value),
            Err(failure) => {
                self.lowest.offer(failure);
                Place::Failed
            }
        };
        while self
            .places
            .get(self.answered)
            .is_some_and(|slot| !matches!(slot, Place::Waiting))
        {
            self.answered += 1;
        }
    }

    /// A failure is known and every item below it has answered: no later answer can
    /// change the outcome.
    pub(crate) fn is_decided(&self) -> bool {
        self.lowest
            .index()
            .is_some_and(|lowest| self.answered >= lowest)
    }

    /// Keeps the places of the first `started` items only: those the call started.
    pub(crate) fn truncate(&mut self, started: usize) {
        self.places.truncate(started);
    }

    /// Every value in input order, or the lowest failure.
    pub(crate) fn finish(self) -> Result<Vec<R>, F> {
        if let Some(failure) = self.lowest.into_inner() {
            return Err(failure);
        }
        Ok(self
            .places
            .into_iter()
            .map(|slot| match slot {
                Place::Value(value) => value,
                // A call ends once every item it started has answered.
                Place::Waiting | Place::Failed => {
                    unreachable!("every item of a call without failure has its value")
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct At(usize);

    impl Indexed for At {
        fn index(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn gathers_items_and_chunks_into_input_order() {
        let mut gather: Gather<u32, At> = Gather::default();
        gather.values(2, vec![20, 30]);
        gather.value(4, 40);
        gather.value(0, 0);
        gather.values(1, vec![10]);
        assert!(!gather.is_decided());
        assert_eq!(gather.finish(), Ok(vec![0, 10, 20, 30, 40]));
    }

    #[test]
    fn decided_once_everything_below_the_lowest_failure_answered() {
        let mut gather: Gather<u32, At> = Gather::default();
        gather.failure(At(3));
        assert!(!gather.is_decided());
        gather.values(0, vec![0, 1]);
        assert!(!gather.is_decided());
        gather.failure(At(2));
        assert!(gather.is_decided());
        gather.value(5, 5);
        assert_eq!(gather.finish(), Err(At(2)));
    }

    #[test]
    fn a_failure_at_zero_decides_at_once() {
        let mut gather: Gather<u32, At> = Gather::default();
        gather.value(1, 1);
        gather.failure(At(0));
        assert!(gather.has_failed());
        assert!(gather.is_decided());
    }

    #[cfg(feature = "aio")]
    #[test]
    fn in_order_puts_each_answer_in_its_place_and_decides_as_gather_does() {
        let mut places: InOrder<u32, At> = InOrder::new(3);
        places.outcome(2, Ok(20));
        places.outcome(0, Ok(0));
        places.outcome(3, Ok(30));
        places.outcome(1, Ok(10));
        assert!(!places.is_decided());
        assert_eq!(places.finish(), Ok(vec![0, 10, 20, 30]));

        let mut places: InOrder<u32, At> = InOrder::new(4);
        places.outcome(2, Err(At(2)));
        assert!(!places.is_decided());
        places.outcome(1, Ok(1));
        places.outcome(0, Ok(0));
        assert!(places.is_decided());
        places.truncate(3);
        assert_eq!(places.finish(), Err(At(2)));
    }
}
