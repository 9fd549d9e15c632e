//! Code in a worker process behaves as it does in a thread of the program, although a
//! worker is entered before `main` and so misses std's start-up: a write to a closed pipe
//! is an `io::Error`, not a SIGPIPE that kills the worker; a stack overflow is reported
//! as std reports it.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::process::{Command, Stdio};

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
        err.to_string()
            .contains("crashed: the worker process overflowed its stack and was killed by signal 6 (SIGABRT"),
        "{err}"
    );
    // Only that item was lost.
    assert_eq!(pool.map(overflow, [0, 2]).unwrap(), [0, 2]);
}

#[test]
fn a_stack_overflow_prints_std_message() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "overflow_helper", "--nocapture", "--test-threads", "1"])
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
