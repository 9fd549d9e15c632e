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
//! A function returning `Result<R, E>` gives `Result<Vec<R>, E>`: the error of the lowest
//! failing item, as it was returned. A panic in an item resumes in the caller with its
//! original payload. The [`expansion`] page shows what each attribute writes.
//!
//! # Threads, processes or async?
//!
//! | pool, and its attributes | where the items run | the function | items and results | what a crash in an item costs | pick it for |
//! |---|---|---|---|---|---|
//! | [`ThreadPool`]: `#[pmap]`, `#[imap]`, `#[amap]` | N OS threads of your process, with work stealing (rayon) | any closure (`Fn(T) -> R + Sync`): it may capture and borrow | `Send` (`map` may take borrowed items, `&str`) | a panic: its item only; a segfault, abort or stack overflow: the whole program | CPU-bound Rust and blocking I/O: **the default**, since Rust threads share no interpreter lock |
//! | [`ProcessPool`]: `#[pmap(process)]`, `#[imap(process)]`, `#[amap(process)]` | N worker processes, this executable started again (Linux) | a function pointer `fn(T) -> R`: a `fn` item or a closure that captures nothing | owned, `Serialize + DeserializeOwned + Send + 'static` ([`CrossProcess`]): they cross as bytes | its item only, whatever it is: a panic, a segfault, an abort, an out-of-memory kill, a hang past `timeout`; the worker is replaced, `retries` runs the item again | native code that may crash, untrusted input, leaks, hangs, code that is not thread-safe, a hard per-item `timeout` |
//! | [`AsyncMultiPool`] (feature `aio`): `#[apmap]` | N OS threads, each a tokio runtime running up to `concurrency` tasks at once | a function returning a future (`Fn(T) -> Fut + Send + Sync + 'static`, e.g. an `async fn`); the future need not be `Send` | `Send + 'static` | a panic or a `timeout`: its task only; a segfault or abort: the whole program | I/O-bound async work (HTTP, databases): thousands of requests in flight |
//! | [`AsyncProcessPool`] (feature `aio`, `.processes()`): `#[apmap(process)]` | N worker processes, each a tokio runtime running up to `concurrency` tasks | a function pointer returning a future, `fn(T) -> Fut` | as [`ProcessPool`]'s | a panic or a `timeout`: its task only; a crash: exactly the task that caused it (the worker's other tasks run again elsewhere) | async code that may crash, leak or block; `maxtasksperchild` |
//! | [`MpiPool`] (feature `mpi`): `#[pmap(mpi)]`, `#[imap(mpi)]` | the ranks of an MPI job (`mpirun`, Slurm `srun`), on many machines; rank 0 drives, the others run the items | as [`ProcessPool`]'s, `fn(T) -> R` | as [`ProcessPool`]'s | a panic: its item only; a rank that dies (segfault, abort, lost node): the whole job | work that outgrows one machine |
//!
//! Start with threads. Move an attribute to worker processes by adding `process` when an
//! item can take its process down or must be stoppable; use `#[apmap]` when an item
//! mostly waits. Every pool reports a failure as a [`WorkerError`] that names the item
//! ([`WorkerError::index`], [`WorkerError::kind`]: [`ErrorKind::Panicked`],
//! [`ErrorKind::Crashed`], [`ErrorKind::TimedOut`], …), and the attributes give back the
//! function's own error or panic.
//!
//! ```
//! use twat_mp::{ErrorKind, ProcessPool, ThreadPool};
//!
//! // Threads: any closure, capturing what it needs.
//! let threads = ThreadPool::with_nodes(2)?;
//! let base = 10;
//! assert_eq!(threads.map(|x: u64| base + x, [1, 2, 3])?, [11, 12, 13]);
//!
//! // Processes: a function pointer and serde items; an abort costs only its item.
//! fn parse_or_abort(text: String) -> u64 {
//!     text.parse().unwrap_or_else(|_| std::process::abort())
//! }
//! let processes = ProcessPool::with_nodes(2)?;
//! let inputs = ["1", "2", "oops", "4"].map(String::from);
//! let err = processes.map(parse_or_abort, inputs).unwrap_err();
//! assert_eq!(err.index(), 2);
//! assert!(matches!(err.kind(), ErrorKind::Crashed { .. }));
//! // The pool replaced the worker and goes on.
//! assert_eq!(processes.map(parse_or_abort, ["5".to_owned()])?, [5]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The attributes
//!
//! Each turns a function of one item into a function over many, on a pool shared by the
//! mappers with the same options, built on first use:
//!
//! | attribute | turns `fn f(x: T) -> R` into | as Python's |
//! |---|---|---|
//! | [`#[pmap]`](pmap) | `fn f(items: impl IntoIterator<Item = T>) -> Vec<R>`: eager, input order | `@pmap` |
//! | [`#[imap]`](imap) | `fn f(items) -> impl Iterator<Item = R>`: lazy, bounded memory | `@imap` |
//! | [`#[amap]`](amap) | `fn f(items) -> AsyncResult<Vec<R>>`: returns at once ([`AsyncResult`]) | `@amap` |
//! | [`#[apmap]`](apmap) (feature `aio`) | `async fn f(x: T) -> R` into `async fn f(items) -> Vec<R>` | `@apmap` |
//!
//! Their options, all optional (`#[pmap(process, nodes = 4, timeout = "5s")]`):
//!
//! | option | taken by | meaning |
//! |---|---|---|
//! | `nodes = 4` | all | workers in the pool (default: the usable CPUs) |
//! | `chunksize = 64` | `pmap`, `imap`, `amap` | items handed to a worker at a time (default: chosen per call) |
//! | `debug` | all | the pool's events and each failure with its item, through `tracing` |
//! | `process` | all | run the items in worker processes: [`ProcessPool`], or [`AsyncProcessPool`] for `#[apmap]` |
//! | `timeout = "5s"` | all, with `process`; `apmap` alone too | an item (task) running longer fails with [`ErrorKind::TimedOut`] (`ms`, `s`, `m`, `h`) |
//! | `retries = 2` | all, with `process` | run an item whose worker crashed or timed out again, on a fresh worker |
//! | `init = make_state` | `pmap`, `imap`, `amap` | a state per worker, the function's first parameter `&mut S` |
//! | `ordered = false` | `imap` | results in completion order |
//! | `concurrency = 100` | `apmap` | tasks in flight per worker (default: [`DEFAULT_CONCURRENCY`]) |
//! | `result` | all | the return type is a `Result` behind an alias of another name |
//! | `progress` | all (feature `progress`) | a progress bar on stderr per call |
//! | `mpi` | `pmap`, `imap` (feature `mpi`) | run the items on the ranks of the MPI job: the program's one [`MpiPool`] |
//!
//! An option that would do nothing where it is written (`timeout` on threads, `ordered`
//! outside `#[imap]`) is a compile error that says what to write instead.
//!
//! ```
//! use twat_mp::{imap, pmap};
//!
//! fn make_buffer() -> String {
//!     String::new()
//! }
//!
//! /// Digits of `n`, written into the worker thread's reused buffer.
//! #[pmap(nodes = 2, init = make_buffer)]
//! fn digits(buffer: &mut String, n: u64) -> usize {
//!     buffer.clear();
//!     buffer.push_str(&n.to_string());
//!     buffer.len()
//! }
//! assert_eq!(digits([7, 42, 1000]), [1, 2, 4]);
//!
//! /// In worker processes, each killed after a second.
//! #[pmap(process, nodes = 2, timeout = "1s", retries = 1)]
//! fn parse(line: String) -> Result<u32, String> {
//!     line.trim().parse().map_err(|_| format!("not a number: {line:?}"))
//! }
//! assert_eq!(parse(["1", " 2"].map(String::from)), Ok(vec![1, 2]));
//! assert_eq!(parse(["1", "x"].map(String::from)), Err("not a number: \"x\"".to_owned()));
//!
//! /// Lazy: each result as soon as it is ready (`ordered = false`).
//! #[imap(ordered = false)]
//! fn square(n: u64) -> u64 {
//!     n * n
//! }
//! let mut squares: Vec<u64> = square(1..=4).collect();
//! squares.sort();
//! assert_eq!(squares, [1, 4, 9, 16]);
//! ```
//!
//! # The pools
//!
//! The pools behind the attributes are usable directly, with pathos's methods: `map`,
//! `try_map` (a function returning `Result`), `starmap` (several arguments), `imap` and
//! `uimap` (lazy, in input or completion order), `apply` (one item), and on
//! [`ThreadPool`] and [`ProcessPool`] `amap` and `apipe` (in the background, an
//! [`AsyncResult`]); `map_init` and `map_with` for a state per worker or data shared by
//! every item. Each is built with `new()`, `with_nodes(n)` or a builder
//! ([`ThreadPoolBuilder`], [`ProcessPoolBuilder`], [`AsyncMultiPoolBuilder`],
//! [`AsyncProcessPoolBuilder`], [`MpiPoolBuilder`]), is `Send + Sync`, and closes and joins
//! its workers on `Drop`. With `.insights(true)`, `pool.insights()` reports per worker the
//! items, busy and idle time ([`Insights`]).
//!
//! Debug mode ([`set_debug_mode`], or `TWAT_MP_DEBUG=1`) reports pools, workers and
//! failures through [`tracing`].
//!
//! # Features
//!
//! | feature | adds |
//! |---|---|
//! | `aio` | [`AsyncMultiPool`], [`AsyncProcessPool`] and `#[apmap]` (tokio) |
//! | `progress` | `.progress(true)` on every builder and the `progress` option: a progress bar per call on stderr (indicatif) |
//! | `mpi` | [`MpiPool`] and the `mpi` option: the items over the ranks of an MPI job (needs an MPI library, its headers and libclang to build) |
//!
//! ```toml
//! twat-mp = { version = "0.1", features = ["aio", "progress"] }
//! ```

// The pools behind features are linked only where they exist; otherwise their names
// point to the feature table above, so that `cargo doc` has no broken link.
#![cfg_attr(feature = "aio", doc = "[`AsyncMultiPool`]: AsyncMultiPool")]
#![cfg_attr(
    feature = "aio",
    doc = "[`AsyncMultiPoolBuilder`]: AsyncMultiPoolBuilder"
)]
#![cfg_attr(feature = "aio", doc = "[`DEFAULT_CONCURRENCY`]: DEFAULT_CONCURRENCY")]
#![cfg_attr(not(feature = "aio"), doc = "[`AsyncMultiPool`]: #features")]
#![cfg_attr(not(feature = "aio"), doc = "[`AsyncMultiPoolBuilder`]: #features")]
#![cfg_attr(not(feature = "aio"), doc = "[`DEFAULT_CONCURRENCY`]: #features")]
#![cfg_attr(
    all(feature = "aio", target_os = "linux"),
    doc = "[`AsyncProcessPool`]: AsyncProcessPool"
)]
#![cfg_attr(
    all(feature = "aio", target_os = "linux"),
    doc = "[`AsyncProcessPoolBuilder`]: AsyncProcessPoolBuilder"
)]
#![cfg_attr(
    not(all(feature = "aio", target_os = "linux")),
    doc = "[`AsyncProcessPool`]: #features"
)]
#![cfg_attr(
    not(all(feature = "aio", target_os = "linux")),
    doc = "[`AsyncProcessPoolBuilder`]: #features"
)]
#![cfg_attr(
    all(feature = "mpi", target_os = "linux"),
    doc = "[`MpiPool`]: MpiPool"
)]
#![cfg_attr(
    all(feature = "mpi", target_os = "linux"),
    doc = "[`MpiPoolBuilder`]: MpiPoolBuilder"
)]
#![cfg_attr(
    not(all(feature = "mpi", target_os = "linux")),
    doc = "[`MpiPool`]: #features"
)]
#![cfg_attr(
    not(all(feature = "mpi", target_os = "linux")),
    doc = "[`MpiPoolBuilder`]: #features"
)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(feature = "aio")]
mod aio;
mod async_result;
mod debug;
mod engine;
mod error;
mod mapped;
#[cfg(all(test, twat_mp_loom))]
mod model_checks;
#[cfg(all(feature = "mpi", target_os = "linux"))]
mod mpi;
mod panic_capture;
#[cfg(target_os = "linux")]
mod process;
mod sync;
mod thread_pool;
mod tuple_fn;

#[cfg(feature = "aio")]
#[cfg_attr(docsrs, doc(cfg(feature = "aio")))]
pub use aio::{
    AsyncMultiPool, AsyncMultiPoolBuilder, DEFAULT_CONCURRENCY, ImapStream, UimapStream,
};
#[cfg(all(feature = "aio", target_os = "linux"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "aio", target_os = "linux"))))]
pub use aio::{AsyncProcessPool, AsyncProcessPoolBuilder, ProcessImapStream, ProcessUimapStream};
pub use async_result::AsyncResult;
pub use debug::{debug_mode, set_debug_mode};
pub use engine::feed::LazyInput;
pub use engine::insights::{Insights, SlowItem, WorkerInsights};
pub use engine::settings::{MAX_CONCURRENCY, MAX_NODES};
pub use error::{BoxError, BuildError, ErrorKind, WorkerError};
#[cfg(all(feature = "mpi", target_os = "linux"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "mpi", target_os = "linux"))))]
pub use mpi::{MpiPool, MpiPoolBuilder};
#[cfg(target_os = "linux")]
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub use process::{
    CrossProcess, CrossProcessError, ProcessImap, ProcessPool, ProcessPoolBuilder, ProcessUimap,
    RemoteError, StarArgs, via,
};
/// rayon, whose parallel iterators [`ThreadPool::par_map`] and [`ThreadPool::try_par_map`]
/// take: `use twat_mp::rayon::prelude::*;` brings `par_iter`, `par_chunks` and `zip` into
/// scope without a dependency of your own.
///
/// ```
/// use twat_mp::rayon::prelude::*;
///
/// let pool = twat_mp::ThreadPool::with_nodes(2)?;
/// let sums = pool.par_map(|pair: &[u32]| pair.iter().sum::<u32>(), [1, 2, 3, 4].par_chunks(2))?;
/// assert_eq!(sums, [3, 7]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub use rayon;
pub use thread_pool::{Imap, ThreadPool, ThreadPoolBuilder, Uimap};
pub use tuple_fn::TupleFn;
pub use twat_mp_macros::{amap, imap, pmap};
// Without the `aio` feature too: the attribute itself then says which feature to enable.
pub use twat_mp_macros::apmap;

#[doc = include_str!("expansion.md")]
pub mod expansion {}

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
