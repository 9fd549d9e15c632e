//! What `WorkerError` prints in a terminal, through the public API, for each pool: `{}`
//! is one sentence; `{:#}` (and `report()`) is that sentence, then each detail that is
//! known on an indented line of its own (input, worker and its pid, attempts, where a
//! panic happened, each cause once, the traceback).
#![cfg(target_os = "linux")]

use crate::support;

use std::time::Duration;

use twat_mp::{ErrorKind, ProcessPool, ThreadPool, WorkerError};

const LIMIT: Duration = Duration::from_secs(60);

/// Checks the shape every report has, and returns its detail lines (without their
/// indentation).
fn details(err: &WorkerError) -> Vec<String> {
    let sentence = err.to_string();
    assert!(!sentence.contains('\n'), "{sentence}");
    let report = format!("{err:#}");
    assert_eq!(err.report().to_string(), report);
    let mut lines = report.lines();
    assert_eq!(lines.next(), Some(sentence.as_str()), "{report}");
    let details: Vec<String> = lines
        .map(|line| {
            assert!(line.starts_with("    "), "a detail is indented: {report}");
            line[4..].to_owned()
        })
        .collect();
    let attempts = format!("attempts: {}", err.attempts());
    assert!(
        details.iter().any(|line| line.starts_with(&attempts)),
        "{report}"
    );
    details
}

/// The detail that starts with `label: `, without it; fails the test if there is none.
fn field<'a>(details: &'a [String], label: &str) -> &'a str {
    let prefix = format!("{label}: ");
    details
        .iter()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {label:?} in {details:#?}"))
}

/// The frames of the traceback, as the report shows them: the lines after `traceback:`.
fn traceback_lines(details: &[String]) -> &[String] {
    let at = details
        .iter()
        .position(|line| line == "traceback:")
        .expect("a traceback");
    &details[at + 1..]
}

fn panic_on_three(x: u32) -> u32 {
    if x == 3 {
        panic!("three is not allowed"); // the panic: panic_on_three
    }
    x
}

fn line_of(needle: &str) -> usize {
    include_str!("error_reports.rs")
        .lines()
        .position(|line| line.contains(needle))
        .expect("the needle is in this file")
        + 1
}

#[test]
fn a_thread_panic_reports_worker_place_and_traceback() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let err = pool.map(panic_on_three, 0..8).unwrap_err();
    let worker = err.worker().expect("a thread ran it");
    assert_eq!(
        err.to_string(),
        format!("item 3 on worker {worker} panicked: three is not allowed")
    );
    let details = details(&err);
    // A thread runs in this process: no pid.
    assert_eq!(err.pid(), None);
    assert_eq!(field(&details, "worker"), worker.to_string());
    assert_eq!(field(&details, "attempts"), "1");
    let line = line_of("// the panic: panic_on_three");
    assert!(
        field(&details, "panicked at")
            .starts_with(&format!("twat-mp/tests/error_reports.rs:{line}:")),
        "{details:#?}"
    );
    // The panic message is in the sentence, not repeated as a cause.
    assert!(
        !details
            .iter()
            .any(|line| line.contains("three is not allowed"))
    );
    let frames = traceback_lines(&details);
    assert!(
        frames.iter().any(|frame| frame.contains("panic_on_three")),
        "{details:#?}"
    );
    assert!(
        frames.iter().all(|frame| frame.starts_with("    ")),
        "{details:#?}"
    );
}

#[derive(Debug, thiserror::Error)]
#[error("could not read config {path}")]
struct ConfigError {
    path: String,
    source: std::io::Error,
}

fn read_config(path: String) -> Result<String, ConfigError> {
    std::fs::read_to_string(&path).map_err(|source| ConfigError { path, source })
}

fn missing() -> String {
    "/nonexistent/twat-mp/error_reports.toml".to_owned()
}

#[test]
fn a_returned_error_on_a_thread_prints_each_cause_once() {
    let pool = ThreadPool::with_nodes(1).unwrap();
    let err = pool.try_map(read_config, [missing()]).unwrap_err();
    assert_eq!(err.to_string(), "item 0 on worker 0 failed");
    let details = details(&err);
    let io = std::fs::read_to_string(missing()).unwrap_err().to_string();
    let causes: Vec<&String> = details
        .iter()
        .filter(|line| line.starts_with("caused by: "))
        .collect();
    assert_eq!(
        causes,
        [
            &format!("caused by: could not read config {}", missing()),
            &format!("caused by: {io}")
        ]
    );
    // anyhow's forms print each message once too.
    let chain = anyhow::Error::from(err);
    assert_eq!(
        format!("{chain:#}"),
        format!(
            "item 0 on worker 0 failed: could not read config {}: {io}",
            missing()
        )
    );
    let debug = format!("{chain:?}");
    assert_eq!(debug.matches(&io).count(), 1, "{debug}");
    assert_eq!(debug.matches("could not read config").count(), 1, "{debug}");
}

fn abort_on_two(x: u32) -> u32 {
    if x == 2 {
        std::process::abort();
    }
    x
}

#[test]
fn a_process_crash_reports_the_pid_that_died_and_each_attempt() {
    support::within(LIMIT, "a crash with retries", || {
        let pool = ProcessPool::builder().nodes(1).retries(1).build().unwrap();
        let err = pool.map(abort_on_two, 0..4).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Crashed { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "item 2 (input 2) on worker 0 crashed after 2 attempts: the worker process was \
             killed by signal 6 (SIGABRT)"
        );
        let details = details(&err);
        let pid = err.pid().expect("a worker process ran it");
        assert_ne!(pid, std::process::id());
        assert_eq!(field(&details, "input"), "2");
        assert_eq!(field(&details, "worker"), format!("0 (pid {pid})"));
        assert_eq!(field(&details, "attempts"), "2");
        // The process that died is gone: the pool's next call runs on another.
        assert_eq!(pool.map(abort_on_two, [0, 1]).unwrap(), [0, 1]);
    });
}

fn hang_on_one(x: u64) -> u64 {
    if x == 1 {
        // An item that never finishes, for the timeout to end.
        std::thread::sleep(Duration::from_secs(3600));
    }
    x
}

#[test]
fn a_process_timeout_reports_the_killed_worker() {
    support::within(LIMIT, "a timeout", || {
        let timeout = Duration::from_millis(300);
        let pool = ProcessPool::builder()
            .nodes(1)
            .timeout(timeout)
            .build()
            .unwrap();
        let err = pool.map(hang_on_one, 0..3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "item 1 (input 1) on worker 0 timed out after 300ms"
        );
        let details = details(&err);
        let pid = err.pid().expect("a worker process ran it");
        assert_eq!(field(&details, "worker"), format!("0 (pid {pid})"));
        assert_eq!(field(&details, "attempts"), "1");
        assert!(!details.iter().any(|line| line.starts_with("caused by")));
    });
}

/// `read_config` with an error that crosses from a worker process: an `anyhow::Error`
/// crosses with its chain of messages.
fn read_config_anyhow(path: String) -> anyhow::Result<String> {
    Ok(read_config(path)?)
}

#[test]
fn a_returned_error_from_a_process_names_its_process_and_causes() {
    support::within(LIMIT, "a returned error", || {
        let pool = ProcessPool::with_nodes(1).unwrap();
        let err = pool.try_map(read_config_anyhow, [missing()]).unwrap_err();
        let details = details(&err);
        let pid = err.pid().expect("a worker process ran it");
        assert_eq!(field(&details, "worker"), format!("0 (pid {pid})"));
        assert_eq!(
            field(&details, "input"),
            format!("{:?}", missing()),
            "{details:#?}"
        );
        let report = format!("{err:#}");
        // The error crossed as its message: every message of its chain is there, once.
        assert_eq!(
            report.matches("could not read config").count(),
            1,
            "{report}"
        );
        let io = std::fs::read_to_string(missing()).unwrap_err().to_string();
        assert_eq!(report.matches(&io).count(), 1, "{report}");
    });
}

fn panic_on_five(x: u32) -> u32 {
    assert!(x != 5, "five is not allowed");
    x
}

#[test]
fn a_process_panic_carries_its_traceback_and_place_across() {
    support::within(LIMIT, "a panic in a worker process", || {
        let pool = ProcessPool::with_nodes(1).unwrap();
        let err = pool.map(panic_on_five, 0..8).unwrap_err();
        let details = details(&err);
        let pid = err.pid().expect("a worker process ran it");
        assert_eq!(field(&details, "worker"), format!("0 (pid {pid})"));
        assert!(
            field(&details, "panicked at").starts_with("twat-mp/tests/error_reports.rs:"),
            "{details:#?}"
        );
        let frames = traceback_lines(&details);
        assert!(
            frames.iter().any(|frame| frame.contains("panic_on_five")),
            "{details:#?}"
        );
    });
}

#[cfg(feature = "aio")]
mod aio {
    use super::{details, field};
    use twat_mp::{AsyncMultiPool, ErrorKind};

    on_both_flavours!(
        an_async_panic_reports_its_worker,
        an_async_process_crash_names_its_pid
    );

    async fn panic_on_four(x: u32) -> u32 {
        assert!(x != 4, "four is not allowed");
        x
    }

    async fn an_async_panic_reports_its_worker() {
        let pool = AsyncMultiPool::with_nodes(2).unwrap();
        let err = pool.map(panic_on_four, 0..8).await.unwrap_err();
        let details = details(&err);
        let worker = err.worker().expect("a worker thread ran it");
        assert_eq!(field(&details, "worker"), worker.to_string());
        assert!(
            field(&details, "panicked at").starts_with("twat-mp/tests/error_reports.rs:"),
            "{details:#?}"
        );
    }

    async fn abort_on_six(x: u32) -> u32 {
        if x == 6 {
            std::process::abort();
        }
        x
    }

    async fn an_async_process_crash_names_its_pid() {
        let pool = AsyncMultiPool::builder()
            .nodes(1)
            .processes()
            .build()
            .unwrap();
        let err = pool.map(abort_on_six, 0..8).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Crashed { .. }), "{err}");
        let details = details(&err);
        let pid = err.pid().expect("a worker process ran it");
        assert_ne!(pid, std::process::id());
        assert!(
            field(&details, "worker").contains(&format!("pid {pid}")),
            "{details:#?}"
        );
        assert_eq!(field(&details, "input"), "6");
    }
}
