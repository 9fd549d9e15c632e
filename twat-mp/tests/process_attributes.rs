//! `#[pmap(process)]`, `#[imap(process)]` and `#[amap(process, timeout = ...)]` when an
//! item crashes, panics or hangs: a failure with no original (a crash, a timeout) resumes
//! in the caller as a panic whose payload is the `WorkerError`, naming the item as it was
//! rendered from its serialized copy; a panic resumes with its message.

#![cfg(target_os = "linux")]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use twat_mp::{ErrorKind, WorkerError, amap, imap, pmap};

#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Sample {
    id: u32,
    text: String,
}

#[pmap(process, nodes = 2)]
fn fragile(sample: Sample) -> usize {
    if sample.text == "boom" {
        std::process::abort();
    }
    sample.text.len()
}

#[imap(process, nodes = 2)]
fn picky(x: u32) -> u32 {
    assert!(x != 3, "three is not allowed");
    x * 10
}

#[amap(process, timeout = "1s")]
fn slow(x: u64) -> u64 {
    if x == 2 {
        // An item that never finishes by itself.
        std::thread::sleep(Duration::from_secs(3600));
    }
    x + 1
}

#[amap(process, nodes = 2)]
fn checked(x: u64) -> Result<u64, String> {
    if x == 4 {
        Err(format!("{x} is unlucky"))
    } else {
        Ok(x)
    }
}

fn sample(id: u32, text: &str) -> Sample {
    Sample {
        id,
        text: text.into(),
    }
}

/// The `WorkerError` a resumed panic carries.
fn worker_error(payload: Box<dyn std::any::Any + Send>) -> WorkerError {
    *payload
        .downcast::<WorkerError>()
        .expect("the panic's payload is the WorkerError")
}

#[test]
fn a_crash_under_pmap_resumes_as_the_worker_error() {
    assert_eq!(fragile(vec![sample(1, "ab"), sample(2, "cde")]), [2, 3]);
    let samples = vec![sample(1, "ok"), sample(2, "boom"), sample(3, "fine")];
    let payload = catch_unwind(|| fragile(samples)).unwrap_err();
    let err = worker_error(payload);
    assert_eq!(err.index(), 1);
    assert!(
        matches!(err.kind(), ErrorKind::Crashed { status } if status.contains("SIGABRT")),
        "{err}"
    );
    assert_eq!(err.input(), Some(r#"Sample { id: 2, text: "boom" }"#));
    // The shared pool goes on.
    assert_eq!(fragile(vec![sample(4, "again")]), [5]);
}

#[test]
fn a_panic_under_imap_resumes_with_its_message_where_the_iteration_reaches_it() {
    let mut results = picky(0..6);
    assert_eq!(results.by_ref().take(3).collect::<Vec<_>>(), [0, 10, 20]);
    let payload = catch_unwind(AssertUnwindSafe(|| results.next())).unwrap_err();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("three is not allowed")
    );
    assert_eq!(results.collect::<Vec<_>>(), [40, 50]);
}

#[test]
fn a_timeout_under_amap_resumes_as_the_worker_error() {
    let pending = slow(vec![0, 1, 2, 3]);
    let payload = catch_unwind(AssertUnwindSafe(|| pending.get())).unwrap_err();
    let err = worker_error(payload);
    assert_eq!(err.index(), 2);
    assert!(
        matches!(err.kind(), ErrorKind::TimedOut { after } if *after == Duration::from_secs(1)),
        "{err}"
    );
    assert_eq!(err.input(), Some("2"));
    assert_eq!(slow(vec![5]).get(), [6]);
}

#[test]
fn an_items_own_error_comes_back_as_its_value() {
    assert_eq!(checked(vec![1, 2]).get(), Ok(vec![1, 2]));
    assert_eq!(checked(vec![1, 4, 5]).get(), Err("4 is unlucky".to_owned()));
}
