//! Debug mode reports pools, workers and failures through `tracing`. Each test runs alone
//! in its test binary (`support::alone()`): it installs a global subscriber and switches
//! debug mode on for the whole process.

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

use twat_mp::ThreadPool;

use crate::support;

/// Collects everything the subscriber prints.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn debug_mode_reports_pool_worker_and_failure_events() {
    let _alone = support::alone();
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .init();

    // Off: nothing is reported.
    twat_mp::set_debug_mode(false);
    let quiet = ThreadPool::with_nodes(1).unwrap();
    let _ = quiet.map(|x: u8| x, [1]);
    drop(quiet);
    assert_eq!(captured.text(), "");

    twat_mp::set_debug_mode(true);
    let pool = ThreadPool::with_nodes(2).unwrap();
    let err = pool
        .map(|x: u32| assert!(x != 5, "five"), 0..10)
        .unwrap_err();
    assert_eq!(err.index(), 5);
    drop(pool);
    #[cfg(feature = "aio")]
    {
        let pool = twat_mp::AsyncMultiPool::with_nodes(1).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = runtime
            .block_on(pool.map(|x: u32| async move { assert!(x != 2, "two") }, 0..4))
            .unwrap_err();
        assert_eq!(err.index(), 2);
        let log = captured.text();
        assert!(
            log.contains("call{pool=\"async\"}:item{index=2 worker=0}"),
            "no span for the async call and item in:\n{log}"
        );
    }
    twat_mp::set_debug_mode(false);

    let log = captured.text();
    for expected in [
        "thread pool started nodes=2",
        "worker thread started worker=0",
        "worker thread started worker=1",
        // The program's own subscriber sees each call and item as a span.
        "call{pool=\"thread\"}:item{index=5 worker=",
        "item failed index=5 worker=",
        "cause=panicked: five",
        "error=item 5 on worker",
        "index=5",
        "worker thread stopped worker=1",
        "thread pool stopped nodes=2",
    ] {
        assert!(log.contains(expected), "missing {expected:?} in:\n{log}");
    }
    assert!(
        !log.contains("Some("),
        "a field is its value, not an Option:\n{log}"
    );
    assert!(
        log.contains("twat_mp"),
        "events have the twat_mp target:\n{log}"
    );
}

#[test]
fn the_environment_variable_turns_debug_mode_on() {
    let _alone = support::alone();
    if std::env::var_os("TWAT_MP_DEBUG_CHILD").is_some() {
        assert!(twat_mp::debug_mode());
        return;
    }
    // Run this same test in a fresh process, where the variable is read on first use.
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &support::test_name(
                module_path!(),
                "the_environment_variable_turns_debug_mode_on",
            ),
            "--nocapture",
        ])
        .env("TWAT_MP_DEBUG", "1")
        .env("TWAT_MP_DEBUG_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
    assert!(String::from_utf8_lossy(&status.stdout).contains("1 passed"));
}

#[test]
fn without_a_subscriber_events_go_to_stderr_and_the_global_default_stays_free() {
    let _alone = support::alone();
    if std::env::var_os("TWAT_MP_STDERR_CHILD").is_some() {
        twat_mp::set_debug_mode(true);
        let pool = ThreadPool::with_nodes(2).unwrap();
        assert_eq!(pool.map(|x: u8| x + 1, [1, 2]).unwrap(), [2, 3]);
        drop(pool);
        // The program can still install its own subscriber afterwards.
        assert!(tracing_subscriber::fmt().try_init().is_ok());
        return;
    }
    // Run this same test in a fresh process, which has no subscriber at all.
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &support::test_name(
                module_path!(),
                "without_a_subscriber_events_go_to_stderr_and_the_global_default_stays_free",
            ),
            "--nocapture",
        ])
        .env("TWAT_MP_STDERR_CHILD", "1")
        .env_remove("TWAT_MP_DEBUG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(child.status.success(), "{stderr}");
    for expected in ["thread pool started nodes=2", "thread pool stopped nodes=2"] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}
