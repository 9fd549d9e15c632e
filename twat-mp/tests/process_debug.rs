//! Debug mode reports a process pool's worker starts, exits, replacements and timeouts.
//! A subscriber of this test's own collects the events: the global one, since the pool's
//! events come from its slot threads. No other test of its binary installs one or turns
//! debug mode on, so theirs send it nothing.

#![cfg(target_os = "linux")]

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use twat_mp::{ErrorKind, ProcessPool};

static MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Keeps the message of every `twat_mp` event.
struct Collect;

struct Message(String);

/// The message, then `name=value` for each other field.
impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

impl Subscriber for Collect {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "twat_mp"
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Message(String::new());
        span.record(&mut fields);
        let name = span.metadata().name();
        MESSAGES
            .lock()
            .unwrap()
            .push(format!("span {name}{}", fields.0));
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        MESSAGES.lock().unwrap().push(message.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

fn crashes_on_three(x: u64) -> u64 {
    if x == 3 {
        std::process::abort();
    }
    x
}

fn hangs_on_five(x: u64) -> u64 {
    if x == 5 {
        std::thread::sleep(Duration::from_secs(3600));
    }
    x
}

#[test]
fn debug_mode_reports_workers_and_timeouts() {
    tracing::subscriber::set_global_default(Collect).unwrap();
    let pool = ProcessPool::builder()
        .nodes(1)
        .timeout(Duration::from_millis(300))
        .debug(true)
        .build()
        .unwrap();
    let outcomes: Vec<_> = pool.imap(crashes_on_three, 0..5).collect();
    assert!(matches!(
        outcomes[3].as_ref().unwrap_err().kind(),
        ErrorKind::Crashed { .. }
    ));
    let outcomes: Vec<_> = pool.imap(hangs_on_five, 4..7).collect();
    assert!(matches!(
        outcomes[1].as_ref().unwrap_err().kind(),
        ErrorKind::TimedOut { .. }
    ));
    let parsed = pool.try_map(
        |s: String| s.parse::<u8>().map_err(|err| err.to_string()),
        ["1", "x", "3"].map(String::from),
    );
    assert_eq!(parsed.unwrap_err().index(), 1);
    drop(pool);
    let messages = MESSAGES.lock().unwrap().clone();
    assert!(
        messages.iter().any(|m| m.starts_with("item failed")
            && m.contains("index=1")
            && m.contains(r#"input="x""#)
            && m.contains("cause=returned an error")),
        "no event for the item that returned an error in {messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m == "span call pool=process"),
        "no span for the call in {messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("span item index=1 worker=")),
        "no span for the failed item in {messages:#?}"
    );
    for message in &messages {
        // The same field types in every pool: numbers, not `Some(0)`.
        assert!(!message.contains("Some("), "{message}");
    }
    let messages: Vec<String> = messages
        .iter()
        .map(|m| {
            m.split(' ')
                .take_while(|word| !word.contains('='))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    for expected in [
        "process pool started",
        "worker process started",
        "worker process crashed on an item",
        "worker process will be replaced",
        "item timed out; its worker process was killed",
        "worker process exited",
        "process pool stopped",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "no {expected:?} in {messages:#?}"
        );
    }
}
