//! Parallel map with one attribute: a Rust port of Python's
//! [twat-mp](https://pypi.org/project/twat-mp/) (pathos + aiomultiprocess).
//!
//! Write the function for one item, put `#[pmap]` on it, and call it with any iterable:
//! every item runs in parallel and the results come back in input order.
//!
//! ```
//! use twat_mp::pmap;
//!
//! /// How many steps the Collatz sequence from `n` takes to reach 1.
//! #[pmap]
//! fn collatz_steps(mut n: u64) -> u32 {
//!     let mut steps = 0;
//!     while n != 1 {
//!         n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
//!         steps += 1;
//!     }
//!     steps
//! }
//!
//! let steps = collatz_steps(1..=10);
//! assert_eq!(steps, [0, 1, 7, 2, 5, 8, 16, 3, 19, 6]);
//! ```
//!
//! | attribute | turns `fn f(x: T) -> R` into | as Python's |
//! |---|---|---|
//! | [`#[pmap]`](pmap) | `fn f(items) -> Vec<R>` | `@pmap` |
//! | [`#[imap]`](imap) | `fn f(items) -> impl Iterator<Item = R>` (lazy) | `@imap` |
//! | [`#[amap]`](amap) | `fn f(items) -> AsyncResult<Vec<R>>` (returns at once) | `@amap` |
//!
//! A function returning `Result<R, E>` gives `Result<Vec<R>, E>`: the error of the lowest
//! failing item, as it was returned. A panic in an item resumes in the caller with its
//! original payload. The pools behind the attributes are also usable directly:
//! [`ThreadPool`] with pathos's methods (`map`, `imap`, `uimap`, `amap`, `starmap`,
//! `apply`, `apipe`), each failure a [`WorkerError`] naming the item.
//!
//! Debug mode ([`set_debug_mode`], or `TWAT_MP_DEBUG=1`) reports pools, workers and
//! failures through [`tracing`].

#![warn(missing_docs)]

#[cfg(feature = "aio")]
mod aio;
mod async_result;
mod debug;
mod engine;
mod error;
mod mapped;
#[cfg(all(feature = "mpi", target_os = "linux"))]
mod mpi;
mod panic_capture;
#[cfg(target_os = "linux")]
mod process;
mod thread_pool;
mod tuple_fn;

#[cfg(feature = "aio")]
pub use aio::{
    AsyncMultiPool, AsyncMultiPoolBuilder, DEFAULT_CONCURRENCY, ImapStream, UimapStream,
};
#[cfg(all(feature = "aio", target_os = "linux"))]
pub use aio::{AsyncProcessPool, AsyncProcessPoolBuilder, ProcessImapStream, ProcessUimapStream};
pub use async_result::AsyncResult;
pub use debug::{debug_mode, set_debug_mode};
pub use engine::feed::LazyInput;
pub use engine::insights::{Insights, SlowItem, WorkerInsights};
pub use engine::settings::{MAX_CONCURRENCY, MAX_NODES};
pub use error::{BoxError, BuildError, ErrorKind, WorkerError};
#[cfg(all(feature = "mpi", target_os = "linux"))]
pub use mpi::{MpiPool, MpiPoolBuilder};
#[cfg(target_os = "linux")]
pub use process::{
    CrossProcess, CrossProcessError, ProcessImap, ProcessPool, ProcessPoolBuilder, ProcessUimap,
    RemoteError, StarArgs, via,
};
pub use thread_pool::{Imap, ThreadPool, ThreadPoolBuilder, Uimap};
pub use tuple_fn::TupleFn;
pub use twat_mp_macros::{amap, imap, pmap};
// Without the `aio` feature too: the attribute itself then says which feature to enable.
pub use twat_mp_macros::apmap;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// What the attributes' expansions call; not a public API, no stability promised.
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "aio")]
    pub use crate::aio::{apmap, apmap_result};
    #[cfg(all(feature = "aio", target_os = "linux"))]
    pub use crate::aio::{apmap_process, apmap_result_process};
    #[cfg(not(feature = "progress"))]
    pub use crate::engine::progress::ProgressFeature;
    pub use crate::engine::registry::Config;
    pub use crate::engine::render::{RenderDebug, RenderNothing, RenderProbe};
    pub use crate::mapped::{Fallible, MappedError};
    #[cfg(target_os = "linux")]
    pub use crate::process::attribute::*;
    pub use crate::thread_pool::attribute::*;
}
