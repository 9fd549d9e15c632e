//! Debug mode: detailed events about pools, workers and failures, through `tracing`.

use std::sync::Once;
use std::sync::atomic::{AtomicU8, Ordering};

/// 0 = not decided yet (read `TWAT_MP_DEBUG` on first use), 1 = off, 2 = on.
static MODE: AtomicU8 = AtomicU8::new(0);
static SUBSCRIBER: Once = Once::new();

/// Turns debug mode on or off for the whole program.
///
/// In debug mode every pool reports, through [`tracing`] events with target `twat_mp`:
/// its start and stop, each worker's start, exit and replacement, and each failed item
/// with its index and cause. When the program has no `tracing` subscriber of its own, one
/// is installed that prints these events to stderr. Setting the environment variable
/// `TWAT_MP_DEBUG=1` turns debug mode on from the start.
///
/// A single pool or attribute can be put in debug mode alone with its `debug` option
/// (`ThreadPool::builder().debug(true)`, `#[pmap(debug)]`).
///
/// ```
/// twat_mp::set_debug_mode(true);
/// assert!(twat_mp::debug_mode());
/// twat_mp::set_debug_mode(false);
/// assert!(!twat_mp::debug_mode());
/// ```
pub fn set_debug_mode(enabled: bool) {
    MODE.store(if enabled { 2 } else { 1 }, Ordering::Relaxed);
    if enabled {
        install_stderr_subscriber();
    }
}

/// Whether debug mode is on for the whole program (see [`set_debug_mode`]).
pub fn debug_mode() -> bool {
    match MODE.load(Ordering::Relaxed) {
        0 => {
            let from_env = std::env::var("TWAT_MP_DEBUG")
                .is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "no" | "off"));
            set_debug_mode(from_env);
            from_env
        }
        mode => mode == 2,
    }
}

/// Whether a pool with its own `debug` setting should report events now.
pub(crate) fn enabled(pool_debug: bool) -> bool {
    if pool_debug {
        install_stderr_subscriber();
        true
    } else {
        debug_mode()
    }
}

/// Prints twat-mp's events to stderr unless the program set a subscriber of its own.
fn install_stderr_subscriber() {
    SUBSCRIBER.call_once(|| {
        if tracing::dispatcher::has_been_set() {
            return;
        }
        let subscriber = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_max_level(tracing::Level::DEBUG)
            .with_target(true)
            .finish();
        // Someone may have set one in between; theirs wins.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Emits a `tracing` debug event with target `twat_mp` when `$on` is true.
macro_rules! event {
    ($on:expr, $($arg:tt)+) => {
        if $on {
            ::tracing::debug!(target: "twat_mp", $($arg)+);
        }
    };
}
pub(crate) use event;
