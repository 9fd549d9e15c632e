//! One test binary (see `group_process_wide.rs` for why the files are grouped): the
//! process pool's tests: transport, state, initializers, retries, fail-fast, fault
//! injection, and the failure reports of every pool.

#[macro_use]
mod support;

// The one-minute soak of every pool, named to sort first: libtest starts its tests in name
// order, so it runs beside all of this binary's others (whose longest tests mostly wait on
// worker processes) instead of alone after them, a minute added to every CI run.
#[path = "soak.rs"]
mod a_minute_of_soak;

mod error_reports;
mod failure_reports;
mod fault_injection;
mod process_attributes;
mod process_debug;
mod process_fail_fast;
mod process_initializer;
mod process_pool;
mod process_retries;
mod process_runtime;
mod process_state;
mod process_transport;
