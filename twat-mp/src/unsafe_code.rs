//! Every `unsafe` of twat-mp, in one place, each with the argument for why it is sound.
//!
//! All of it serves [`ProcessPool`](crate::ProcessPool) on Linux: turning a re-started
//! copy of the program into a worker before `main`, and running in that worker a function
//! the parent named by its place in the executable. Nothing else in the crate contains
//! `unsafe`.

use std::os::fd::AsRawFd;

use crate::process::wire::VerifiedTrampoline;
use crate::process::worker::Trampoline;

/// Runs [`crate::process::worker::enter_if_marked`] before `main`, in every program that
/// links twat-mp, so that a worker process needs no line of setup in `main` — and so that
/// it works in `cargo test` binaries and doctests, whose `main` is not the user's.
///
/// A program that is not a worker returns from it at once (it reads one environment
/// variable). A worker never returns: it serves its parent and exits.
// SAFETY: `.init_array` holds pointers to functions that the C runtime calls, with the
// (argc, argv, envp) arguments that an `extern "C" fn()` may ignore, once, before `main`,
// on the main thread, after the C library (and so `getenv`, `fork`, `malloc`) is set up.
// The pointer stored is to a function of exactly that ABI. `#[used]` keeps the static
// (rustc also makes the linker keep `#[used]` statics of rlibs). The function it points
// to catches every panic (an unwind out of an `extern "C"` function would abort) and uses
// nothing of Rust's runtime that `main`'s start-up sets: std's `thread::current`, I/O and
// allocation all work before `main`.
#[used]
#[unsafe(link_section = ".init_array")]
static BEFORE_MAIN: extern "C" fn() = before_main;

extern "C" fn before_main() {
    crate::process::worker::enter_if_marked();
}

/// Makes a value of a zero-sized `Copy` type out of nothing: how a worker gets "the same"
/// non-capturing function the parent passed, which has no bytes to send.
///
/// Fails to compile for any `F` that is not zero-sized.
pub(crate) fn conjure_zero_sized<F: Copy + 'static>() -> F {
    const {
        assert!(
            size_of::<F>() == 0,
            "a ProcessPool function must capture nothing (a fn item or a closure without captures)"
        )
    };
    // SAFETY: `F` has size 0, so it has no bytes whose validity could be violated: the
    // all-zero value is the only bit pattern there is. Its safety invariant (that such a
    // value may exist at all) holds because this is reached only for a type of which the
    // parent process held a value — `RemoteFn` adapters are made only from a value of the
    // user's function, and the trampoline that calls this runs only when a frame carries
    // that adapter's identity, which only the parent can make (see `wire::verify_job`).
    // `F: Copy` means duplicating that value has no side effects, and a copy of a
    // zero-sized value is exactly what this makes in the worker.
    unsafe { std::mem::zeroed::<F>() }
}

/// The function a verified job frame names.
pub(crate) fn trampoline_at(verified: VerifiedTrampoline) -> Trampoline {
    // SAFETY: a `VerifiedTrampoline` is made only by `wire::verify_job`, and only for an
    // address that (1) lies inside this executable's code mapping, (2) is the worker's
    // anchor function plus an offset that the job frame carries under a keyed hash only the
    // parent could compute (the key came in the `Hello` frame on a private socket), and
    // (3) the parent computed as `trampoline::<A> as Trampoline as usize - anchor as usize`
    // in the same executable file: the worker runs `/proc/self/exe` of the parent, and the
    // `Hello` handshake checked that both see the same code layout. Within one executable
    // image the distance between two functions is fixed at link time (ASLR moves the image
    // as a whole), so the address is that of a function of type `Trampoline` in this
    // process. A `Trampoline` re-checks the type fingerprint before it reads anything.
    unsafe { std::mem::transmute::<usize, Trampoline>(verified.address()) }
}

/// Asks the kernel to kill this process when its parent (the thread of the parent that
/// started it) ends: a worker whose parent was killed does not outlive it.
pub(crate) fn die_with_parent() -> std::io::Result<()> {
    // SAFETY: `prctl(PR_SET_PDEATHSIG, sig)` takes integers only, touches no memory of
    // ours, and changes nothing but this process's parent-death signal.
    let result = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Points file descriptor 0 at `file`, so that code run in a worker that reads its
/// standard input reads nothing instead of the pool's protocol.
pub(crate) fn replace_stdin(file: &std::fs::File) -> std::io::Result<()> {
    // SAFETY: `dup2` takes two descriptor numbers. `file` is open for the whole call, and
    // descriptor 0 is owned by no Rust object in a worker (the protocol socket was cloned
    // to a new descriptor first), so atomically replacing it closes nothing another owner
    // still uses.
    let result = unsafe { libc::dup2(file.as_raw_fd(), 0) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
