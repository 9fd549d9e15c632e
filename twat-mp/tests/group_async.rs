//! One test binary (see `group_process_wide.rs` for why the files are grouped): the
//! async pool's tests in both modes, the interruption of every pool, and scale (ten
//! million items, a 512 MiB item).

#[macro_use]
mod support;

mod aio_apmap;
mod aio_pool;
mod aio_process;
mod aio_process_real_use;
mod aio_process_state;
mod aio_sched;
mod interruption;
mod scale;
