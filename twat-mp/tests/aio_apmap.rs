//! `#[apmap]` through the public API, on both tokio runtime flavours.
#![cfg(feature = "aio")]

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use twat_mp::{WorkerError, apmap};

on_both_flavours!(
    results_come_in_input_order,
    an_error_is_the_items_own,
    a_panic_resumes_with_its_payload,
    a_timeout_resumes_as_a_worker_error,
    several_arguments_map_over_tuples,
    no_items_return_at_once,
);

/// Counts the words of a line after yielding once, as I/O would.
#[apmap]
async fn word_count(line: String) -> usize {
    tokio::task::yield_now().await;
    line.split_whitespace().count()
}

async fn results_come_in_input_order() {
    let lines = ["a b c", "", "one", "x y"].map(String::from);
    assert_eq!(word_count(lines).await, [3, 0, 1, 2]);
    // The same shared pool serves every call.
    assert_eq!(word_count(vec!["p q".to_owned()]).await, [2]);
}

#[apmap(nodes = 2, concurrency = 8)]
async fn parse_port(text: &'static str) -> Result<u16, std::num::ParseIntError> {
    tokio::task::yield_now().await;
    text.parse()
}

async fn an_error_is_the_items_own() {
    assert_eq!(parse_port(["80", "443"]).await.unwrap(), [80, 443]);
    let err = parse_port(["80", "http", "-1"]).await.unwrap_err();
    assert_eq!(err, "http".parse::<u16>().unwrap_err());
}

#[derive(Debug, PartialEq)]
struct Cursed(u32);

#[apmap]
async fn bless(x: u32) -> u32 {
    tokio::task::yield_now().await;
    if x % 5 == 3 {
        std::panic::panic_any(Cursed(x));
    }
    x
}

async fn a_panic_resumes_with_its_payload() {
    let payload = AssertUnwindSafe(bless(0..20))
        .catch_unwind()
        .await
        .unwrap_err();
    // The lowest failing item's own payload, as the function raised it.
    assert_eq!(payload.downcast_ref::<Cursed>(), Some(&Cursed(3)));
    assert_eq!(bless([1, 2]).await, [1, 2]);
}

#[apmap(timeout = "100ms")]
async fn nap(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

async fn a_timeout_resumes_as_a_worker_error() {
    assert_eq!(nap([0, 1]).await, [0, 1]);
    let payload = AssertUnwindSafe(nap([0, 3_600_000]))
        .catch_unwind()
        .await
        .unwrap_err();
    let err = payload.downcast_ref::<WorkerError>().unwrap();
    assert_eq!(err.index(), 1);
    assert!(matches!(err.kind(), twat_mp::ErrorKind::TimedOut { .. }));
}

#[apmap]
async fn scale(x: f64, factor: f64) -> f64 {
    x * factor
}

async fn several_arguments_map_over_tuples() {
    assert_eq!(scale([(1.0, 2.0), (3.0, 0.5)]).await, [2.0, 1.5]);
}

async fn no_items_return_at_once() {
    let empty = word_count(Vec::new())
        .now_or_never()
        .expect("ready at once");
    assert!(empty.is_empty());
}
