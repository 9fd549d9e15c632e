//! What several integration-test binaries share. Each binary uses only part of it.
#![allow(dead_code, unused_macros)]

pub mod numbers;

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
