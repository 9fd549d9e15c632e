//! One test binary (see `group_process_wide.rs` for why the files are grouped): the
//! thread pool's tests, the tests of every pool's features that need few worker processes
//! (chunks, nesting, live input, limits, insights, typed errors, progress, worker state),
//! and the one-minute soak of every pool beside them.

#[macro_use]
mod support;

mod adaptive_chunks;
mod early_exit;
mod fn_pointers;
mod insights;
mod item_input;
mod limits;
mod live_input;
mod nesting;
mod par_map;
mod progress;
mod soak;
mod thread_pool;
mod typed_errors;
mod worker_state;
