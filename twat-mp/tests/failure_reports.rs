//! What a user sees on stderr when a failure goes uncaught, or is caught: each failure is
//! printed once, where it matters, naming the item and the cause, at the user's code.
//!
//! Each scenario is an ignored test that this file runs again in a child process
//! (`--ignored --exact`), so that its panic reaches the panic hook as it would in a
//! program, and the child's stderr is read back.
#![cfg(target_os = "linux")]

use std::process::Command;
use std::sync::{Arc, Barrier};

use twat_mp::{ThreadPool, pmap};

use crate::support;

/// Runs the ignored test `name` in a child process; returns its stderr.
fn stderr_of(name: &str) -> String {
    let name = support::test_name(module_path!(), name);
    let output = Command::new(std::env::current_exe().expect("the test binary is known"))
        .args([
            name.as_str(),
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the test binary runs again");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The line in this file on which `needle` first appears (1-based).
fn line_of(needle: &str) -> usize {
    include_str!("failure_reports.rs")
        .lines()
        .position(|line| line.contains(needle))
        .expect("the needle is in this file")
        + 1
}

fn assert_no_library_location(stderr: &str) {
    assert!(!stderr.contains("Box<dyn Any>"), "{stderr}");
    assert!(!stderr.contains("twat-mp/src/"), "{stderr}");
}

#[pmap(process)]
fn abort_on_three(x: u32) -> u32 {
    if x == 3 {
        std::process::abort();
    }
    x
}

#[test]
#[ignore = "run in a child process by a_crash_under_an_attribute_names_item_cause_and_call"]
fn scenario_crash() {
    abort_on_three(0..6); // the call: scenario_crash
}

#[test]
fn a_crash_under_an_attribute_names_item_cause_and_call() {
    let stderr = stderr_of("scenario_crash");
    let call = line_of("// the call: scenario_crash");
    assert!(
        stderr.contains(&format!(
            "panicked at twat-mp/tests/failure_reports.rs:{call}:"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("item 3 (input 3)"), "{stderr}");
    assert!(
        stderr.contains("crashed: the worker process was killed by signal 6 (SIGABRT)"),
        "{stderr}"
    );
    assert_no_library_location(&stderr);
}

#[pmap]
fn panic_on_three(x: u32) -> u32 {
    if x == 3 {
        panic!("three is not allowed"); // the panic: panic_on_three
    }
    x
}

#[test]
#[ignore = "run in a child process by an_item_panic_under_an_attribute_prints_once_in_the_caller"]
fn scenario_thread_panic() {
    panic_on_three(0..6); // the call: scenario_thread_panic
}

/// Runs `scenario`, whose item panics with `message` on the line marked `// the panic:
/// {panic}`: the message is printed once, at that line, with a note naming the item
/// (`item`) and the scenario's call (marked `// the call: {scenario}`).
fn assert_item_panic_printed_once(scenario: &str, message: &str, panic: &str, item: &str) {
    let stderr = stderr_of(scenario);
    assert_eq!(stderr.matches(message).count(), 1, "{stderr}");
    let panic = line_of(&format!("// the panic: {panic}"));
    let call = line_of(&format!("// the call: {scenario}"));
    let file = "twat-mp/tests/failure_reports.rs";
    let expected = [
        format!(
            "thread '{}' panicked at {file}:{panic}:",
            support::test_name(module_path!(), scenario)
        ),
        format!("\n{message}\nnote: the panic was in {item} on worker"),
        format!("of the parallel call at {file}:{call}:"),
    ];
    for expected in expected {
        assert!(stderr.contains(&expected), "no {expected:?} in {stderr}");
    }
    assert_no_library_location(&stderr);
}

#[test]
fn an_item_panic_under_an_attribute_prints_once_in_the_caller() {
    let message = "three is not allowed";
    assert_item_panic_printed_once("scenario_thread_panic", message, "panic_on_three", "item 3");
}

#[pmap(process)]
fn panic_on_three_in_a_process(x: u32) -> u32 {
    if x == 3 {
        panic!("three is not allowed here either"); // the panic: in a process
    }
    x
}

#[test]
#[ignore = "run in a child process by a_process_item_panic_prints_once_at_its_line"]
fn scenario_process_panic() {
    panic_on_three_in_a_process(0..6); // the call: scenario_process_panic
}

#[test]
fn a_process_item_panic_prints_once_at_its_line() {
    assert_item_panic_printed_once(
        "scenario_process_panic",
        "three is not allowed here either",
        "in a process",
        "item 3 (input 3)",
    );
}

fn no_connection() -> u32 {
    panic!("no connection in this worker"); // the panic: in init
}

#[pmap(process, init = no_connection)]
fn with_connection(connection: &mut u32, x: u32) -> u32 {
    *connection + x
}

#[test]
#[ignore = "run in a child process by a_process_init_panic_prints_once_where_init_panicked"]
fn scenario_process_init_panic() {
    with_connection(0..6); // the call: scenario_process_init_panic
}

#[test]
fn a_process_init_panic_prints_once_where_init_panicked() {
    let stderr = stderr_of("scenario_process_init_panic");
    assert_eq!(
        stderr.matches("no connection in this worker").count(),
        1,
        "{stderr}"
    );
    let call = line_of("the call: scenario_process_init_panic");
    assert!(
        stderr.contains(&format!(
            "panicked at twat-mp/tests/failure_reports.rs:{call}:"
        )),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("could not run: its worker's `init` panicked: no connection in this worker"),
        "{stderr}"
    );
    let init = line_of("the panic: in init");
    assert!(
        stderr.contains(&format!(
            "note: the panic was at twat-mp/tests/failure_reports.rs:{init}:5, in a worker process"
        )),
        "{stderr}"
    );
    assert_no_library_location(&stderr);
}

#[test]
fn a_resumed_panic_keeps_the_item_payload() {
    let payload = std::panic::catch_unwind(|| panic_on_three(0..6)).unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"three is not allowed")
    );
}

#[test]
fn an_uncaught_crash_keeps_its_worker_error_payload() {
    let payload = std::panic::catch_unwind(|| abort_on_three(0..6)).unwrap_err();
    let err = payload
        .downcast_ref::<twat_mp::WorkerError>()
        .expect("the payload is the WorkerError");
    assert_eq!(err.index(), 3);
    assert!(matches!(err.kind(), twat_mp::ErrorKind::Crashed { .. }));
}

#[test]
#[ignore = "run in a child process by a_failure_returned_as_a_value_prints_nothing"]
fn scenario_returned_panic() {
    let pool = ThreadPool::with_nodes(2).expect("a pool");
    let err = pool
        .map(
            |x: u32| if x == 3 { panic!("a quiet failure") } else { x },
            0..6,
        )
        .unwrap_err();
    assert_eq!(err.index(), 3);
    eprintln!("the caller got: {err}");
}

#[test]
fn a_failure_returned_as_a_value_prints_nothing() {
    let stderr = stderr_of("scenario_returned_panic");
    assert_eq!(stderr.matches("a quiet failure").count(), 1, "{stderr}");
    assert!(stderr.contains("the caller got: item 3"), "{stderr}");
}

#[test]
#[ignore = "run in a child process by a_failure_nobody_receives_is_printed"]
fn scenario_unreceived_panic() {
    let pool = ThreadPool::with_nodes(2).expect("a pool");
    // The item fails after its result was dropped: dropped before the item started, the
    // call would be cancelled instead (and a cancelled call prints nothing).
    let (started, dropped) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let (in_item, after_drop) = (Arc::clone(&started), Arc::clone(&dropped));
    let result = pool.apipe(
        move |x: u32| -> u32 {
            in_item.wait();
            after_drop.wait();
            panic!("nobody waits for {x}")
        },
        5,
    );
    started.wait();
    drop(result);
    dropped.wait();
    drop(pool);
}

#[test]
fn a_failure_nobody_receives_is_printed() {
    let stderr = stderr_of("scenario_unreceived_panic");
    assert!(stderr.contains("nobody waits for 5"), "{stderr}");
    assert!(stderr.contains("nothing received this failure"), "{stderr}");
}

#[cfg(feature = "aio")]
#[twat_mp::apmap(timeout = "100ms")]
async fn sleep_for(millis: u64) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    millis
}

#[cfg(feature = "aio")]
#[test]
#[ignore = "run in a child process by an_uncaught_timeout_names_the_item_and_the_cause"]
fn scenario_timeout() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(sleep_for(vec![1, 60_000]));
}

#[cfg(feature = "aio")]
#[test]
fn an_uncaught_timeout_names_the_item_and_the_cause() {
    let stderr = support::within(
        std::time::Duration::from_secs(60),
        "the timeout scenario",
        || stderr_of("scenario_timeout"),
    );
    let function = line_of("#[twat_mp::apmap(timeout = \"100ms\")]");
    assert!(
        stderr.contains(&format!(
            "panicked at twat-mp/tests/failure_reports.rs:{function}:"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("item 1"), "{stderr}");
    assert!(stderr.contains("timed out after 100ms"), "{stderr}");
    assert_no_library_location(&stderr);
}
