//! Code in a worker process behaves as it does in a thread of the program, although a
//! worker is entered before `main` and so misses std's start-up: a write to a closed pipe
//! is an `io::Error`, not a SIGPIPE that kills the worker; a stack overflow is reported
//! as std reports it; and a process pool used inside a worker works, its workers being
//! the worker's children, down to the nesting limit.
#![cfg(target_os = "linux")]

use crate::support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use twat_mp::{ErrorKind, ProcessPool};

/// Set in the environment of the copy of this binary that `overflow_helper` runs in.
const HELPER: &str = "TWAT_MP_RUNTIME_HELPER";

/// Writes to the standard input of a program that has already exited, as a program piping
/// into `head` does: the write fails with `BrokenPipe`.
fn write_to_exited_program(_: u8) -> String {
    let mut child = Command::new("true")
        .stdin(Stdio::piped())
        .spawn()
        .expect("`true` starts");
    let mut stdin = child.stdin.take().expect("its stdin is piped");
    child.wait().expect("`true` ends");
    match stdin.write_all(&[b'x'; 1 << 16]) {
        Ok(()) => "written".to_owned(),
        Err(err) => format!("{:?}", err.kind()),
    }
}

#[test]
fn writing_to_a_closed_pipe_is_an_error_as_in_a_thread() {
    let in_a_thread = std::thread::spawn(|| write_to_exited_program(0))
        .join()
        .unwrap();
    assert_eq!(in_a_thread, "BrokenPipe");
    let pool = ProcessPool::with_nodes(1).unwrap();
    let in_a_worker = pool.map(write_to_exited_program, [0, 1]);
    assert_eq!(in_a_worker.unwrap(), ["BrokenPipe", "BrokenPipe"]);
    // The worker is still the same pool, and still works.
    assert_eq!(pool.map(|x: u8| x + 1, [1]).unwrap(), [2]);
}

/// Recurses until the stack runs out (each frame keeps an array alive).
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == 0 {
        0
    } else {
        recurse(depth - 1) + std::hint::black_box(frame[7])
    }
}

fn overflow(n: u64) -> u64 {
    if n == 1 { recurse(u64::MAX) } else { n }
}

#[test]
fn a_stack_overflow_is_reported_as_one() {
    let pool = ProcessPool::with_nodes(1).unwrap();
    let err = pool.map(overflow, [0, 1, 2]).unwrap_err();
    assert_eq!(err.index(), 1);
    let ErrorKind::Crashed { status } = err.kind() else {
        panic!("not a crash: {err}");
    };
    assert!(status.starts_with("overflowed its stack"), "{status}");
    assert!(
        err.to_string().contains(
            "crashed: the worker process overflowed its stack and was killed by signal 6 (SIGABRT"
        ),
        "{err}"
    );
    // Only that item was lost.
    assert_eq!(pool.map(overflow, [0, 2]).unwrap(), [0, 2]);
}

#[test]
fn a_stack_overflow_prints_std_message() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &support::test_name(module_path!(), "overflow_helper"),
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(HELPER, "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // The worker wrote std's two lines, as a thread of the program would.
    assert!(
        stderr.contains("has overflowed its stack\nfatal runtime error: stack overflow"),
        "{stderr}"
    );
}

/// Not a test of its own: the program whose worker overflows, for the test above.
#[test]
fn overflow_helper() {
    if std::env::var_os(HELPER).is_none() {
        return;
    }
    let pool = ProcessPool::with_nodes(1).unwrap();
    assert!(pool.map(overflow, [1]).is_err());
}

/// In a worker: maps with a process pool of its own, and tells which process it is.
fn map_in_a_nested_pool(count: u64) -> (u32, Vec<(u64, u32)>) {
    let pool = ProcessPool::with_nodes(2).expect("a worker may build a process pool");
    let tens = pool
        .map(
            |y: u64| (y * 10, std::os::unix::process::parent_id()),
            0..count,
        )
        .expect("the nested pool maps");
    (std::process::id(), tens)
}

#[test]
fn a_process_item_can_use_a_process_pool_of_its_own() {
    let answers = support::within(Duration::from_secs(120), "nested process pools", || {
        let pool = ProcessPool::with_nodes(2).unwrap();
        pool.map(map_in_a_nested_pool, [3, 4])
    })
    .unwrap();
    assert_eq!(answers.len(), 2);
    for ((worker, tens), count) in answers.into_iter().zip([3, 4]) {
        assert_ne!(worker, std::process::id(), "the item ran in a worker");
        let values: Vec<u64> = tens.iter().map(|t| t.0).collect();
        assert_eq!(values, (0..count).map(|y| y * 10).collect::<Vec<_>>());
        // The nested pool's workers are the worker's own children.
        assert!(tens.iter().all(|t| t.1 == worker), "{worker}: {tens:?}");
    }
}

/// Builds a pool in every worker and maps itself one level deeper, without end.
fn nest(level: u32) -> Result<u32, String> {
    let pool = ProcessPool::with_nodes(1).map_err(|err| format!("level {level}: {err}"))?;
    pool.map(nest, [level + 1])
        .map_err(|err| format!("level {level}: {err}"))?
        .remove(0)
}

#[test]
fn nesting_stops_at_a_clear_error_instead_of_forking_without_bound() {
    let deepest = support::within(Duration::from_secs(120), "recursive pools", || {
        let pool = ProcessPool::with_nodes(1).unwrap();
        pool.map(nest, [1]).unwrap().remove(0)
    });
    assert_eq!(
        deepest.unwrap_err(),
        "level 2: a worker process 2 levels deep cannot start worker processes of its own: \
         worker processes nest at most 2 levels deep"
    );
}
