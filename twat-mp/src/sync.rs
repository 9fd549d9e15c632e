//! The synchronisation primitives of the hand-written coordination that the loom model
//! checks cover (`model_checks`): the lazy maps' input [`Feed`](crate::engine::feed), the
//! async pool's reply channel (`aio::replies`), the thread pool's lazy-map job buffers
//! (`thread_pool::lazy`) and the process pool's queue of batches and slot stops
//! (`process::dispatch`). They are std's, except in the test build made with
//! `RUSTFLAGS="--cfg twat_mp_loom"`, where they are loom's, so that the model checks run
//! the real code under every interleaving loom explores.

#[cfg(all(test, twat_mp_loom))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(all(test, twat_mp_loom))]
pub(crate) use loom::sync::mpsc;
#[cfg(all(test, twat_mp_loom))]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
#[cfg(all(test, twat_mp_loom))]
pub(crate) use loom::thread;
#[cfg(not(all(test, twat_mp_loom)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize};
#[cfg(not(all(test, twat_mp_loom)))]
pub(crate) use std::sync::mpsc;
#[cfg(not(all(test, twat_mp_loom)))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};
#[cfg(not(all(test, twat_mp_loom)))]
pub(crate) use std::thread;
