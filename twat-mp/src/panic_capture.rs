//! Catching a panic in one item together with its backtrace.
//!
//! A backtrace exists only while the panic is being raised, inside the panic hook. So the
//! first pool installs a hook that, on threads marked as twat-mp workers, captures the
//! backtrace into a thread-local before handing over to the hook that was there before
//! (which still prints the usual "thread '…' panicked at …" line, as any Rust thread does).
//! Programs that install their own hook afterwards keep working; their failures just come
//! without a traceback.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
    static CAPTURED: RefCell<Option<Backtrace>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// A caught panic: its payload and, when captured, its backtrace.
pub(crate) struct CaughtPanic {
    pub(crate) payload: Box<dyn Any + Send + 'static>,
    pub(crate) backtrace: Option<Backtrace>,
}

/// Marks the current thread as a worker whose panics get a backtrace.
pub(crate) fn mark_worker_thread() {
    install_hook();
    IS_WORKER.with(|w| w.set(true));
}

fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IS_WORKER.with(Cell::get) {
                CAPTURED.with(|c| *c.borrow_mut() = Some(Backtrace::force_capture()));
            }
            previous(info);
        }));
    });
}

/// The backtrace of the last panic on this thread, if it was captured and not taken.
pub(crate) fn take_backtrace() -> Option<Backtrace> {
    CAPTURED.with(|c| c.borrow_mut().take())
}

/// Runs `f`, turning a panic into a [`CaughtPanic`].
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, CaughtPanic> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| CaughtPanic {
        payload,
        backtrace: take_backtrace(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_panics_come_with_a_backtrace() {
        std::thread::spawn(|| {
            mark_worker_thread();
            let caught = catch(|| panic!("inside")).unwrap_err();
            assert_eq!(caught.payload.downcast_ref::<&str>(), Some(&"inside"));
            assert!(caught.backtrace.is_some());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn other_threads_get_no_backtrace() {
        std::thread::spawn(|| {
            install_hook();
            let caught = catch(|| panic!("outside")).unwrap_err();
            assert!(caught.backtrace.is_none());
        })
        .join()
        .unwrap();
    }
}
