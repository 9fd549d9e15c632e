//! Catching a panic in one item together with its backtrace, and printing each failure
//! once, where it matters.
//!
//! A backtrace and a panic's location exist only while the panic is being raised, inside
//! the panic hook. So the first pool (or the first failure an attribute re-raises)
//! installs a hook that chains to the hook that was there before and adds three things:
//!
//! - on threads marked as twat-mp workers, a panic is an item's panic that the pool
//!   catches and hands to the caller as a value: the hook records its backtrace and
//!   location and prints nothing (debug mode logs the failure instead, and a failure that
//!   nobody receives is printed where it is dropped, see [`report_unreceived`]);
//! - an item's panic that an attribute re-raises in the caller is printed once there, as
//!   an ordinary panic would be, at the item's panic location;
//! - a panic whose payload is a [`WorkerError`] (a crash, a timeout, … re-raised by an
//!   attribute) is printed as one sentence naming the item and the cause, at the user's
//!   call, not at a line inside twat-mp.
//!
//! Everything else goes to the previous hook untouched. A program that installs its own
//! hook afterwards replaces all of this: its hook then sees the payloads as they are (the
//! item's own, or a `WorkerError`).

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{ItemLabel, WorkerError};

thread_local! {
    static IS_WORKER: Cell<bool> = const { Cell::new(false) };
    static CAPTURED: RefCell<Option<Captured>> = const { RefCell::new(None) };
    /// Set just before an attribute re-raises an item's panic in the caller: what the
    /// hook prints instead of the re-raise's own location.
    static RESUMING: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Whether the "run with `RUST_BACKTRACE=1`" note was printed, as std prints it once.
static NOTED: AtomicBool = AtomicBool::new(false);

/// What the hook records of a worker's panic.
struct Captured {
    backtrace: Backtrace,
    origin: PanicOrigin,
}

/// Where an item panicked: its thread and the location of the `panic!`.
#[derive(Debug, Clone)]
pub(crate) struct PanicOrigin {
    pub(crate) thread: String,
    pub(crate) location: String,
}

/// A caught panic: its payload and, when captured, its backtrace and origin.
pub(crate) struct CaughtPanic {
    pub(crate) payload: Box<dyn Any + Send + 'static>,
    pub(crate) backtrace: Option<Backtrace>,
    pub(crate) origin: Option<PanicOrigin>,
}

/// A worker process's panic as it crosses to the parent: its message, its backtrace cut
/// to the frames that matter, and the location of its `panic!`.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct RemotePanic {
    message: String,
    backtrace: Option<String>,
    location: Option<String>,
}

impl RemotePanic {
    pub(crate) fn new(caught: CaughtPanic) -> Self {
        RemotePanic {
            message: crate::error::panic_message(caught.payload.as_ref()),
            backtrace: caught
                .backtrace
                .map(|backtrace| short_backtrace(&backtrace.to_string())),
            location: caught.origin.map(|origin| origin.location),
        }
    }

    /// The panic of what makes a call's state in a worker (`what`: "the call's `init`"),
    /// as each item that needed the state reports it.
    pub(crate) fn in_set_up(mut self, what: &str) -> Self {
        self.message = format!("{what} panicked in this worker: {}", self.message);
        self
    }

    /// The failure of the item at `index` whose worker's `init` panicked so, as the
    /// parent reports it: [`ErrorKind::InitPanicked`](crate::ErrorKind::InitPanicked), as
    /// on every pool. It keeps no payload (the panic was in another process): an
    /// attribute resumes it as a panic whose payload is the `WorkerError`.
    pub(crate) fn into_init_worker_error(self, index: usize) -> WorkerError {
        let origin = self.location.map(|location| PanicOrigin {
            thread: "a worker process".to_owned(),
            location,
        });
        let kind = crate::ErrorKind::InitPanicked {
            message: self.message,
        };
        WorkerError::new(index, kind)
            .with_traceback_text(self.backtrace)
            .with_origin(origin)
    }

    /// The failure of the item at `index`, as the parent reports it.
    pub(crate) fn into_worker_error(self, index: usize) -> WorkerError {
        let origin = self.location.map(|location| PanicOrigin {
            thread: "a worker process".to_owned(),
            location,
        });
        WorkerError::from_panic(index, Box::new(self.message), None)
            .with_traceback_text(self.backtrace)
            .with_origin(origin)
    }
}

/// Marks the current thread as a worker: its panics are items' panics, caught and handed
/// over as values, so they get a backtrace and are not printed here.
pub(crate) fn mark_worker_thread() {
    install_hook();
    IS_WORKER.with(|w| w.set(true));
}

/// Installs the hook described in the module's documentation, once per process.
pub(crate) fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let resuming = RESUMING.with(|r| r.borrow_mut().take());
            if IS_WORKER.with(Cell::get) {
                let origin = PanicOrigin {
                    thread: thread_name(),
                    location: info
                        .location()
                        .map_or_else(|| "an unknown location".to_owned(), ToString::to_string),
                };
                CAPTURED.with(|c| {
                    *c.borrow_mut() = Some(Captured {
                        backtrace: Backtrace::force_capture(),
                        origin,
                    });
                });
            } else if let Some((report, traceback)) = resuming {
                print_panic(&report, traceback.as_deref());
            } else if let Some(err) = info.payload().downcast_ref::<WorkerError>() {
                let at = err
                    .call_site()
                    .or(info.location())
                    .map_or_else(|| "an unknown location".to_owned(), ToString::to_string);
                let mut report = format!("thread '{}' panicked at {at}:\n{err}", thread_name());
                // A panic whose payload stayed in a worker process (its `init`'s): where it
                // was, and its own backtrace rather than this thread's.
                if let Some(origin) = err.origin() {
                    report.push_str(&format!(
                        "\nnote: the panic was at {}, in {}",
                        origin.location, origin.thread
                    ));
                }
                print_panic(&report, err.traceback());
            } else {
                previous(info);
            }
        }));
    });
}

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}

/// Prints a panic report as std's hook would: the report, then a backtrace when
/// `RUST_BACKTRACE` asks for one (the item's own, where the panic came from an item,
/// else this thread's), or the note that says how to get one.
fn print_panic(report: &str, item_backtrace: Option<&str>) {
    let backtrace = Backtrace::capture();
    let tail = match backtrace.status() {
        BacktraceStatus::Captured => match item_backtrace {
            Some(item) => format!("stack backtrace of the item:\n{item}\n"),
            None => format!("stack backtrace:\n{backtrace}"),
        },
        _ if !NOTED.swap(true, Ordering::Relaxed) => {
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
                .to_owned()
        }
        _ => String::new(),
    };
    eprint!("\n{report}\n{tail}");
}

/// Re-raises an item's panic in the calling thread so that the hook prints it once, as
/// an ordinary panic: at the item's panic location, with its message, and a note that
/// names the item and the call. The payload is the item's own.
pub(crate) fn resume_item_panic(
    payload: Box<dyn Any + Send + 'static>,
    err: &WorkerError,
    origin: Option<&PanicOrigin>,
) -> ! {
    install_hook();
    let thread = thread_name();
    let message = crate::error::panic_message(payload.as_ref());
    let mut report = match origin {
        Some(origin) => format!(
            "thread '{thread}' panicked at {}:\n{message}",
            origin.location
        ),
        None => format!("thread '{thread}' panicked:\n{message}"),
    };
    report.push_str(&format!("\nnote: {}", ItemNote(err)));
    let traceback = err.traceback().map(str::to_owned);
    RESUMING.with(|r| *r.borrow_mut() = Some((report, traceback)));
    // `panic_any` (unlike `resume_unwind`) runs the hook, which prints the report above.
    let payload = match payload.downcast::<String>() {
        Ok(message) => panic::panic_any(*message),
        Err(payload) => payload,
    };
    match payload.downcast::<&'static str>() {
        Ok(message) => panic::panic_any(*message),
        Err(payload) => {
            // A payload of another type can only be resumed as it is, without the hook.
            if let Some((report, traceback)) = RESUMING.with(|r| r.borrow_mut().take()) {
                print_panic(&report, traceback.as_deref());
            }
            panic::resume_unwind(payload)
        }
    }
}

/// "the panic was in item 3 (input 7) on worker 1 of the parallel call at src/main.rs:9:5".
struct ItemNote<'a>(&'a WorkerError);

impl fmt::Display for ItemNote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let item = ItemLabel::of(self.0);
        match self.0.kind() {
            crate::ErrorKind::InitPanicked { .. } => {
                write!(
                    f,
                    "the panic was in `init`, making the worker's state for {item}"
                )?;
            }
            _ => write!(f, "the panic was in {item}")?,
        }
        if let Some(call) = self.0.call_site() {
            write!(f, " of the parallel call at {call}")?;
        }
        Ok(())
    }
}

/// Prints a failure that nobody will receive (its result handle was dropped), so that it
/// is not lost: a panic as the hook would have printed it in the worker, anything else
/// as one sentence.
pub(crate) fn report_unreceived(err: &WorkerError) {
    let report = match (err.kind(), err.origin()) {
        (crate::ErrorKind::Panicked { message }, Some(origin)) => format!(
            "thread '{}' panicked at {}:\n{message}\nnote: nothing received this failure: {err}",
            origin.thread, origin.location
        ),
        _ => format!("twat-mp: nothing received this failure: {err}"),
    };
    eprintln!("\n{report}");
}

/// A backtrace's text cut to the frames that matter, as std's short backtraces are: from
/// the frame that panicked down to where twat-mp called the item, renumbered from 0
/// (all of it under `RUST_BACKTRACE=full`, or when no frame is recognised).
pub(crate) fn short_backtrace(full: &str) -> String {
    if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v == "full") {
        return full.to_owned();
    }
    // Each frame is a numbered line ("  3: name") and its "at file:line" lines.
    let mut frames: Vec<(String, Vec<&str>)> = Vec::new();
    for line in full.lines() {
        let trimmed = line.trim_start();
        match trimmed.split_once(": ") {
            Some((number, name)) if number.chars().all(|c| c.is_ascii_digit()) => {
                frames.push((name.to_owned(), Vec::new()));
            }
            _ => match frames.last_mut() {
                Some((_, lines)) => lines.push(line),
                None => return full.to_owned(),
            },
        }
    }
    let is_panic_machinery = |name: &str| {
        [
            "std::",
            "core::",
            "alloc::",
            "<alloc::",
            "__rustc::",
            "rust_begin_unwind",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || name.starts_with("twat_mp::panic_capture")
    };
    let Some(first) = frames
        .iter()
        .position(|(name, _)| !is_panic_machinery(name))
    else {
        return full.to_owned();
    };
    let last = frames[first..]
        .iter()
        .position(|(name, _)| name.starts_with("twat_mp::") || name.starts_with("<twat_mp::"))
        .map_or(frames.len(), |offset| first + offset);
    if first >= last {
        return full.to_owned();
    }
    let mut short = String::new();
    for (number, (name, lines)) in frames[first..last].iter().enumerate() {
        short.push_str(&format!("{number:>4}: {name}\n"));
        for line in lines {
            short.push_str(line);
            short.push('\n');
        }
    }
    short.push_str(
        "note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
    );
    short
}

/// The backtrace and origin of the last panic on this thread, if captured and not taken.
pub(crate) fn take_captured() -> (Option<Backtrace>, Option<PanicOrigin>) {
    match CAPTURED.with(|c| c.borrow_mut().take()) {
        Some(captured) => (Some(captured.backtrace), Some(captured.origin)),
        None => (None, None),
    }
}

/// Runs `f`, turning a panic into a [`CaughtPanic`].
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, CaughtPanic> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let (backtrace, origin) = take_captured();
        CaughtPanic {
            payload,
            backtrace,
            origin,
        }
    })
}

/// The location of a call that [`track_caller`](macro@std::panic::Location) reports.
pub(crate) type CallSite = &'static Location<'static>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_panics_come_with_a_backtrace_and_origin() {
        std::thread::spawn(|| {
            mark_worker_thread();
            let caught = catch(|| panic!("inside")).unwrap_err();
            assert_eq!(caught.payload.downcast_ref::<&str>(), Some(&"inside"));
            assert!(caught.backtrace.is_some());
            let origin = caught.origin.expect("the hook saw where it panicked");
            assert!(origin.location.contains("panic_capture.rs"), "{origin:?}");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn other_threads_get_no_backtrace() {
        std::thread::spawn(|| {
            install_hook();
            let caught = catch(|| panic!("outside")).unwrap_err();
            assert!(caught.backtrace.is_none());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_resumed_panic_keeps_its_payload() {
        let err = WorkerError::new(
            3,
            crate::ErrorKind::Panicked {
                message: "boom".into(),
            },
        );
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            resume_item_panic(Box::new(String::from("boom")), &err, None)
        }))
        .unwrap_err();
        assert_eq!(
            caught.downcast_ref::<String>().map(String::as_str),
            Some("boom")
        );
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            resume_item_panic(Box::new("static"), &err, None)
        }))
        .unwrap_err();
        assert_eq!(caught.downcast_ref::<&str>(), Some(&"static"));
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            resume_item_panic(Box::new(17_u8), &err, None)
        }))
        .unwrap_err();
        assert_eq!(caught.downcast_ref::<u8>(), Some(&17));
    }
}
