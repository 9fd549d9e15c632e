//! What the integration-test binaries share. Each binary (`group_*.rs`, which declares
//! this module once and the test files as its modules) uses only part of it.
#![allow(dead_code, unused_macros)]

pub mod faults;
pub mod numbers;
pub mod run_marks;

/// Runs the async test function `$name` once on a current-thread tokio runtime and once
/// on a multi-thread one: the pools must work from either.
macro_rules! on_both_flavours {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "current_thread")]
            async fn current_thread() {
                super::$name().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn multi_thread() {
                super::$name().await;
            }
        }
    )+};
}

/// How many threads of this process have a name starting with `prefix`
/// (from `/proc/self/task/*/comm`), or `None` where there is no `/proc`.
pub fn threads_named(prefix: &str) -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    Some(
        tasks
            .filter_map(Result::ok)
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|name| name.starts_with(prefix))
            })
            .count(),
    )
}

/// Runs `work` on its own thread and returns its result, or fails the test if it has not
/// finished within `limit`: a test of a possible hang fails instead of hanging CI. The
/// stuck thread is left behind; the test binary exits without it.
#[track_caller]
pub fn within<T: Send + 'static>(
    limit: std::time::Duration,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let _ = sender.send(outcome);
    });
    match receiver.recv_timeout(limit) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("hang: {what} did not finish within {limit:?}"),
    }
}

/// The name libtest gives the test function `name` of the module `module` (the caller's
/// `module_path!()`): the module's path without the test binary's crate name, then
/// `name`. A test that runs itself again in a child process (`--exact`) names itself so,
/// whichever binary its file is a module of.
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_, path)) => format!("{path}::{name}"),
        None => name.to_owned(),
    }
}

/// Held by every test of a binary whose tests look at the whole process (its threads,
/// file descriptors and children, its global tracing subscriber and debug mode), so that
/// they run one at a time and no other test's pool counts in theirs. Every test of such a
/// binary must hold it from its first line (`group_process_wide.rs`): a test that did not
/// would start and end threads while another one counts them.
pub fn alone() -> std::sync::MutexGuard<'static, ()> {
    static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ALONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
