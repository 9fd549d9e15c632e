//! Real workloads shared by the workspace's examples, tests and benchmarks.
//!
//! This package is not published; it exists so that `examples/`, `tests/` and `benches/`
//! at the workspace root measure and show the same honest work (number crunching), never
//! `sleep` standing in for work.

pub mod factors;
pub mod numbers;
