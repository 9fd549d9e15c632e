//! Debug mode: detailed events about pools, workers and failures, through `tracing`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::Dispatch;

/// 0 = not decided yet (read `TWAT_MP_DEBUG` on first use), 1 = off, 2 = on.
static MODE: AtomicU8 = AtomicU8::new(0);

/// Turns debug mode on or off for the whole program.
///
/// In debug mode every pool reports, through [`tracing`] events with target `twat_mp`:
/// its start and stop, each worker's start, exit and replacement, and each failed item
/// with its index and cause. When the program has no global `tracing` subscriber of its
/// own, these events are printed to stderr (without taking the global default, so the
/// program may still set its own later).
///
/// A program's own subscriber also gets spans: `call` (field `pool`: `"thread"`,
/// `"process"`, `"async"`, `"async process"`) around each call's events, and `item`
/// (fields `index` in the call, and `worker` where known) inside it: around each item of
/// the in-process pools, and around the events of each failed item of the process pools,
/// whose items run in other processes, where no subscriber of the program runs. Every
/// event has the same field types in every pool: `index` and `worker` are numbers, `pid`
/// too, and a failed item's event carries its `cause` and its whole `error` sentence.
///
/// Setting the environment variable
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
}

/// Whether debug mode is on for the whole program (see [`set_debug_mode`]).
///
/// ```
/// // Off unless set, or unless the program started with TWAT_MP_DEBUG=1.
/// if std::env::var_os("TWAT_MP_DEBUG").is_none() {
///     assert!(!twat_mp::debug_mode());
/// }
/// twat_mp::set_debug_mode(true);
/// assert!(twat_mp::debug_mode());
/// # twat_mp::set_debug_mode(false);
/// ```
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
    pool_debug || debug_mode()
}

/// Where twat-mp's events go when the program has no global subscriber: stderr.
static STDERR: OnceLock<Dispatch> = OnceLock::new();

/// Sends an event to the program's own subscriber, or else to stderr. The stderr
/// subscriber is used only for twat-mp's own events and is never made the global default,
/// so a program may still install its subscriber after turning debug mode on.
pub(crate) fn emit(event: impl FnOnce()) {
    // `dispatcher::has_been_set` cannot tell: it also turns true for scoped defaults,
    // such as the one below.
    let own = tracing::dispatcher::get_default(|current| {
        !current.is::<tracing::subscriber::NoSubscriber>()
    });
    if own {
        event();
    } else {
        let stderr = STDERR.get_or_init(|| {
            Dispatch::new(
                tracing_subscriber::fmt()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_max_level(tracing::Level::DEBUG)
                    .with_target(true)
                    .finish(),
            )
        });
        tracing::dispatcher::with_default(stderr, event);
    }
}

/// A `tracing` span for one call of a pool (`pool`: "thread", "process", "async",
/// "async process") when `on`, with target `twat_mp`: the events of the call, and the
/// spans of its items, are inside it. Disabled (free) otherwise, and when the program has
/// no subscriber of its own (the stderr events need none).
pub(crate) fn call_span(on: bool, pool: &'static str) -> tracing::Span {
    if on {
        tracing::debug_span!(target: "twat_mp", "call", pool)
    } else {
        tracing::Span::none()
    }
}

/// A span for one item of the call `call` (index in the call, and the worker running it
/// when known), or a disabled span when the call has none.
pub(crate) fn item_span(
    call: &tracing::Span,
    index: usize,
    worker: Option<usize>,
) -> tracing::Span {
    if call.is_disabled() {
        return tracing::Span::none();
    }
    match worker {
        Some(worker) => {
            tracing::debug_span!(target: "twat_mp", parent: call, "item", index, worker)
        }
        None => tracing::debug_span!(target: "twat_mp", parent: call, "item", index),
    }
}

/// Emits a `tracing` debug event with target `twat_mp` when `$on` is true.
macro_rules! event {
    ($on:expr, $($arg:tt)+) => {
        if $on {
            $crate::debug::emit(|| ::tracing::debug!(target: "twat_mp", $($arg)+));
        }
    };
}
pub(crate) use event;
