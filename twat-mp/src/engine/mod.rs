//! The engine under every pool. Read `ARCHITECTURE.md` at the repository's root first.
//!
//! A pool decides only how an item reaches a worker and how its outcome comes back; what a
//! call does with the outcomes is decided here, once, for [`ThreadPool`](crate::ThreadPool),
//! [`ProcessPool`](crate::ProcessPool) and both modes of `AsyncMultiPool`:
//!
//! | module | what every pool gets from it |
//! |---|---|
//! | `item` | one item run with its panic caught; [`ItemFailure`](item::ItemFailure) keeps the function's own error typed; cancellation flags |
//! | `failure` | the lowest failure wins ([`LowestFailure`](failure::LowestFailure)), and the mark workers read to skip items after it |
//! | `order` | the lazy maps' window ([`Window`](order::Window)): how far ahead of the consumer to pull input, and input order restored ([`Reorder`](order::Reorder)) |
//! | `feed` | the lazy maps' input, pulled on a thread of its own within the window ([`Feed`](feed::Feed)), so that a live input never holds back a result that is ready |
//! | `gather` | the eager maps' end ([`Gather`](gather::Gather)): input order, the lowest failure, and the moment the outcome is decided |
//! | `progress` | the progress bar of a call (feature `progress`): items done of the total and failures, counted in atomics (per rayon leaf in `ThreadPool::map`) and drawn by one thread for the program ([`Progress`](progress::Progress)) |
//! | `settings` | builder settings and their checks ([`Settings`](settings::Settings)) |
//! | `registry` | the attribute pools, one per pool type and configuration ([`Registry`](registry::Registry)) |
//! | `insights` | what `pool.insights()` reports: the [`Recorder`](insights::Recorder) each pool built with `.insights(true)` feeds, and [`Insights`](insights::Insights) |
//! | `render` | items shown in errors through `Debug` where the type has it |
//! | `retry` | which failures run an item again on a fresh worker, and how many runs an item had ([`Attempts`](retry::Attempts)) |
//! | `state` | per-worker state of `map_init` and `init = ...` ([`WorkerStates`](state::WorkerStates)): made at most once per worker per call, on that worker, dropped with the call |

pub(crate) mod failure;
pub(crate) mod feed;
pub(crate) mod gather;
pub(crate) mod insights;
pub(crate) mod item;
pub(crate) mod order;
pub(crate) mod progress;
pub(crate) mod registry;
pub(crate) mod render;
pub(crate) mod retry;
pub(crate) mod settings;
pub(crate) mod state;
