//! Per-worker state for one call (`map_init` and its kin): `init` runs at most once per
//! worker per call, lazily (a worker that never gets an item never runs it), on the
//! worker that uses the state; the states are dropped with the call.
//!
//! [`WorkerStates`] holds one slot per worker. A worker [`take`](WorkerStates::take)s its
//! slot's state into a [`StateGuard`] for a stretch of work (a rayon leaf of `map`, one
//! item of a lazy map, the synchronous start of an async task) and the guard puts it back
//! when it ends. So the hot path costs one uncontended lock per stretch, nothing per item,
//! and `&mut S` is never aliased: work of the same call that runs *inside* a stretch on
//! the same worker (rayon's work stealing while `f` waits on a nested job) finds the slot
//! empty and makes a second state, which is kept if the slot is still empty when it ends
//! and dropped otherwise.
//!
//! A panicking `init` is the failure of the item that needed the state. The slot then
//! remembers it: the worker's later items of the same call fail at once with the same
//! cause, and `init` is not run again in a loop. The failure leaves the item as a panic
//! whose payload is an [`InitPanic`], which [`WorkerError::from_panic`] turns into
//! [`ErrorKind::InitPanicked`](crate::ErrorKind::InitPanicked): every pool reports it
//! through the path it already has for an item's panic.
//!
//! The idea carries over to worker processes: there the slot lives in the worker process,
//! one per process, for the length of a call.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

use crate::error::panic_message;

/// What one worker's slot holds.
enum Slot<S> {
    /// No state: none made yet, or it is taken by a running stretch of work.
    Empty,
    Ready(S),
    /// `init` panicked on this worker in this call, with this message.
    Failed(String),
}

/// The states of one call, one slot per worker, and the function that makes them.
pub(crate) struct WorkerStates<S, I> {
    init: I,
    slots: Box<[Mutex<Slot<S>>]>,
}

impl<S, I: Fn() -> S> WorkerStates<S, I> {
    /// Slots for `workers` workers, all empty: nothing runs `init` yet.
    pub(crate) fn new(init: I, workers: usize) -> Self {
        WorkerStates {
            init,
            slots: (0..workers).map(|_| Mutex::new(Slot::Empty)).collect(),
        }
    }

    /// Takes `worker`'s state for a stretch of work; the guard puts it back. `None` (not
    /// on one of the pool's workers, which the pools never do) gives a guard of its own
    /// whose state is dropped with it.
    pub(crate) fn take(&self, worker: Option<usize>) -> StateGuard<'_, S, I> {
        let slot = worker.and_then(|worker| self.slots.get(worker));
        let taken = match slot {
            Some(slot) => std::mem::replace(&mut *lock(slot), Slot::Empty),
            None => Slot::Empty,
        };
        StateGuard {
            states: self,
            slot,
            taken,
        }
    }
}

fn lock<S>(slot: &Mutex<Slot<S>>) -> std::sync::MutexGuard<'_, Slot<S>> {
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One worker's state, taken out of its slot for a stretch of work.
pub(crate) struct StateGuard<'a, S, I> {
    states: &'a WorkerStates<S, I>,
    slot: Option<&'a Mutex<Slot<S>>>,
    taken: Slot<S>,
}

impl<S, I: Fn() -> S> StateGuard<'_, S, I> {
    /// The state, made by `init` on first use.
    ///
    /// # Panics
    /// With an [`InitPanic`] payload when `init` panics, now or earlier on this worker in
    /// this call: the caller's item fails with that cause.
    #[inline]
    pub(crate) fn get(&mut self) -> &mut S {
        if !matches!(self.taken, Slot::Ready(_)) {
            self.make();
        }
        match &mut self.taken {
            Slot::Ready(state) => state,
            _ => unreachable!("made above, or it unwound"),
        }
    }

    #[cold]
    #[inline(never)]
    fn make(&mut self) {
        if let Slot::Failed(message) = &self.taken {
            // The payload an attribute resumes: the message of `init`'s own panic.
            let payload: Box<dyn Any + Send> = Box::new(message.clone());
            panic::resume_unwind(Box::new(InitPanic { payload }));
        }
        match panic::catch_unwind(AssertUnwindSafe(&self.states.init)) {
            Ok(state) => self.taken = Slot::Ready(state),
            Err(payload) => {
                self.taken = Slot::Failed(panic_message(payload.as_ref()));
                // `resume_unwind` runs no panic hook: the backtrace the hook took of
                // `init`'s panic is still there for the pool that catches this one.
                panic::resume_unwind(Box::new(InitPanic { payload }))
            }
        }
    }
}

impl<S, I> Drop for StateGuard<'_, S, I> {
    fn drop(&mut self) {
        let Some(slot) = self.slot else { return };
        let taken = std::mem::replace(&mut self.taken, Slot::Empty);
        if matches!(taken, Slot::Empty) {
            return;
        }
        let mut slot = lock(slot);
        // Full only when nested work of the same call made a state of its own meanwhile
        // and put it back first: keep that one; `taken` is dropped after the lock.
        if matches!(*slot, Slot::Empty) {
            *slot = taken;
        }
    }
}

/// The panic payload that carries `init`'s own panic out of an item, so that the pool
/// reports [`ErrorKind::InitPanicked`](crate::ErrorKind::InitPanicked).
pub(crate) struct InitPanic {
    pub(crate) payload: Box<dyn Any + Send + 'static>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn init_runs_once_per_worker_and_lazily() {
        let made = AtomicUsize::new(0);
        let states = WorkerStates::new(|| made.fetch_add(1, Ordering::Relaxed), 3);
        for _ in 0..4 {
            *states.take(Some(1)).get() += 10;
        }
        assert_eq!(made.load(Ordering::Relaxed), 1);
        // Taken and never used: nothing made.
        drop(states.take(Some(2)));
        assert_eq!(made.load(Ordering::Relaxed), 1);
        assert_eq!(*states.take(Some(1)).get(), 40);
    }

    #[test]
    fn nested_work_gets_a_state_of_its_own() {
        let made = AtomicUsize::new(0);
        let states = WorkerStates::new(|| made.fetch_add(1, Ordering::Relaxed), 1);
        let mut outer = states.take(Some(0));
        assert_eq!(*outer.get(), 0);
        {
            let mut inner = states.take(Some(0));
            assert_eq!(*inner.get(), 1);
        }
        drop(outer);
        // The nested state went back first and stays; the outer one was dropped.
        assert_eq!(*states.take(Some(0)).get(), 1);
        assert_eq!(made.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_panicking_init_is_remembered() {
        let made = AtomicUsize::new(0);
        let states = WorkerStates::new(
            || -> u8 {
                made.fetch_add(1, Ordering::Relaxed);
                panic!("no database")
            },
            1,
        );
        for _ in 0..3 {
            let payload = panic::catch_unwind(AssertUnwindSafe(|| {
                states.take(Some(0)).get();
            }))
            .unwrap_err();
            let init = payload.downcast::<InitPanic>().expect("an InitPanic");
            assert_eq!(panic_message(init.payload.as_ref()), "no database");
        }
        assert_eq!(made.load(Ordering::Relaxed), 1);
    }
}
