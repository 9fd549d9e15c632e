//! One test binary (see `group_process_wide.rs` for why the files are grouped): the
//! thread pool's tests, the tests of every pool's features that need few worker processes
//! (chunks, nesting, live input, limits, insights, typed errors, progress, worker state),
//! (The one-minute soak of every pool is in `group_processes.rs`.)

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
mod thread_pool;
mod typed_errors;
mod worker_state;
