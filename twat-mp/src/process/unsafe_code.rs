//! Every `unsafe` of twat-mp, in one place, each with the argument for why it is sound.
//!
//! The crate denies `unsafe_code` (the workspace's `[lints]`); this module alone allows it
//! (its test `unsafe_code_is_denied_everywhere_but_here` keeps that configuration).
//! It is a leaf: it uses std and libc and nothing else of the crate, except the one call of
//! the pre-`main` hook into [`super::worker::enter_if_marked`] (see [`BEFORE_MAIN`]: a
//! `#[link_section]` static is unsafe code, so it must be here, and it has to name the
//! function it runs). Everything it offers is a safe API that is sound for any caller:
//! no function outside this module has to uphold a condition for it.
//!
//! All of it serves [`ProcessPool`](crate::ProcessPool) on Linux:
//!
//! | item | what | why it is sound |
//! |---|---|---|
//! | [`BEFORE_MAIN`] | turns a re-started copy of the program into a worker before `main` | an `.init_array` entry of the right ABI |
//! | [`EntryPoint`], [`CodePointer`], [`EntryOffset`], [`Key`], [`Resolved`] | run in a worker a function the parent named by its place in the code | the worker calls only addresses the parent computed from function values, under a key |
//! | [`die_with_parent`], [`replace_stdin`] | two system calls | integers only; no memory of ours |
//! | `at_exit` (feature `mpi`) | a hook when the program exits | a function pointer of the ABI `atexit` calls |
//! | [`ignore_sigpipe`], [`report_stack_overflow`] | what std sets up before `main`, done in a worker that never reaches it | std's own steps; the fault handler only reads what was set before it was installed, and calls async-signal-safe functions only |
//!
//! # Functions by their place in the code
//!
//! Rust cannot send a function to another process, but a worker runs the same executable,
//! so a function pointer of the parent names the same code in the worker once it is taken
//! as a distance from a fixed function. A function value `a` (an [`EntryPoint`]) is a
//! function pointer of the user's (its [`CodePointer`], `a.code()`) with types around it
//! that say how to call it. The parent turns `a` into an [`EntryOffset`]: two distances
//! from an anchor function, one to `entry::<A, S>` (this module's generic function that
//! makes `a` again in the worker, from the user's function, and runs it) and one to the
//! user's function. Both cross with a tag, a keyed hash ([`Key::tag`]) of the two offsets,
//! the [`Signature`] and the frame's other fields; the key is random per pool and known
//! only to the pool and its workers. In the worker, [`Resolved::resolve`] accepts the
//! offsets only if their tag matches and both land inside the executable's code, and only
//! a [`Resolved`] can be called.
//!
//! So a call through a [`Resolved`] reaches `entry::<A, S>` for an `A` of which the parent
//! held a value, with the address of that value's function pointer: [`EntryOffset::of`]
//! takes that value, it is the only way to an offset, it measures both distances at once,
//! and a tag is made only for an [`EntryOffset`], so the two cannot be paired otherwise.
//! Within one executable image the distance between two functions is fixed at link time
//! (ASLR moves the image as a whole), and the worker runs `/proc/self/exe` of its parent,
//! so each address is that of the same function in the worker. What remains outside the
//! proof is what no Rust program can rule out: that another party knows the pool's key
//! and forges tags by recomputing this module's hash, or that the process's own memory or
//! executable is changed under it.

#![allow(unsafe_code)]

use std::any::type_name;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::ops::Range;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------
// Before `main`
// ---------------------------------------------------------------------------------------

/// Runs [`super::worker::enter_if_marked`] before `main`, in every program that links
/// twat-mp, so that a worker process needs no line of setup in `main` — and so that it
/// works in `cargo test` binaries and doctests, whose `main` is not the user's.
///
/// A program that is not a worker returns from it at once (it reads one environment
/// variable). A worker never returns: it serves its parent and exits.
///
/// This is the module's single reference to the rest of the crate. It cannot be avoided:
/// the linker collects `.init_array` entries only from statics with that section, a
/// `#[link_section]` static is unsafe code (so it lives here), statics are not generic,
/// and a function named from elsewhere without a path would need `#[no_mangle]`, which is
/// unsafe code too.
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
    super::worker::enter_if_marked();
}

// ---------------------------------------------------------------------------------------
// Functions by their place in the code
// ---------------------------------------------------------------------------------------

/// The shape of the functions a worker runs by their place in the code:
/// `fn(&mut Self::Cx<'_>) -> Self::Out`.
pub(crate) trait Signature: 'static {
    /// What the function works on (the job, its items and where its results go).
    type Cx<'a>;
    /// What it returns.
    type Out;
}

/// A function value that a worker can run by its place in the code: the user's function
/// as a [`CodePointer`], with the types that say how to call it.
pub(crate) trait EntryPoint<S: Signature>: Sized + 'static {
    /// The user's function pointer type.
    type Code: CodePointer;
    /// The user's function.
    fn code(self) -> Self::Code;
    /// The value again, around the user's function.
    fn from_code(code: Self::Code) -> Self;
    /// Runs it, in the worker.
    fn run(self, cx: &mut S::Cx<'_>) -> S::Out;
}

/// A function pointer type (`fn(A, B) -> R`, of up to eight parameters): the part of an
/// [`EntryPoint`] that is the user's function.
///
/// Sealed: implemented here for function pointer types only, so that an address taken
/// from one can be turned back into the same type (`address::FromAddress`, which no other
/// module can name). `pub` in this crate-private module only so that the public
/// `StarArgs::Fn` can have it as its bound; nothing outside the crate can name it.
pub trait CodePointer: Copy + Send + Sync + 'static + address::FromAddress {
    /// Where the function is in this process.
    fn address(self) -> usize;
}

mod address {
    /// Turning an address back into a function pointer: for [`super::CodePointer`] only.
    pub trait FromAddress: Sized {
        /// The function pointer at `address`.
        ///
        /// # Safety
        ///
        /// `address` must be the address of a function of exactly this type, in this
        /// process: one that a value of this type pointed to.
        unsafe fn from_address(address: usize) -> Self;
    }
}

macro_rules! code_pointer {
    ($($arg:ident),*) => {
        impl<Ret: 'static, $($arg: 'static),*> CodePointer for fn($($arg),*) -> Ret {
            fn address(self) -> usize {
                self as usize
            }
        }

        impl<Ret: 'static, $($arg: 'static),*> address::FromAddress for fn($($arg),*) -> Ret {
            unsafe fn from_address(address: usize) -> Self {
                // SAFETY: a function pointer is the address of its function; the caller
                // guarantees that `address` is that of a function of exactly this type
                // (signature and ABI), so the value made is one that existed.
                unsafe { std::mem::transmute::<usize, Self>(address) }
            }
        }
    };
}

code_pointer!();
code_pointer!(A);
code_pointer!(A, B);
code_pointer!(A, B, C);
code_pointer!(A, B, C, D);
code_pointer!(A, B, C, D, E);
code_pointer!(A, B, C, D, E, F);
code_pointer!(A, B, C, D, E, F, G);
code_pointer!(A, B, C, D, E, F, G, H);

macro_rules! state_pointer {
    ($(#[$doc:meta])* $name:ident, $($state:tt)+) => {
        $(#[$doc])*
        pub(crate) struct $name<S, T, R>(pub(crate) for<'a> fn($($state)+ S, T) -> R);

        impl<S, T, R> Clone for $name<S, T, R> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<S, T, R> Copy for $name<S, T, R> {}

        impl<S: 'static, T: 'static, R: 'static> CodePointer for $name<S, T, R> {
            fn address(self) -> usize {
                self.0 as usize
            }
        }

        impl<S: 'static, T: 'static, R: 'static> address::FromAddress for $name<S, T, R> {
            unsafe fn from_address(address: usize) -> Self {
                // SAFETY: as for the plain function pointers above: the caller guarantees
                // that `address` is that of a function of exactly the wrapped type, which
                // a value of this type pointed to.
                $name(unsafe { std::mem::transmute::<usize, for<'a> fn($($state)+ S, T) -> R>(address) })
            }
        }
    };
}

state_pointer! {
    /// A function of a worker's per-call state and an item, `fn(&mut S, T) -> R`
    /// (`map_init`). A type of its own rather than the function pointer itself: an
    /// implementation for `for<'a> fn(&'a mut S, T) -> R` beside the one for `fn(A, B) ->
    /// R` is a future-incompatible overlap (rustc's `coherence_leak_check`).
    StateFn, &'a mut
}

state_pointer! {
    /// A function of a call's shared value and an item, `fn(&S, T) -> R` (`map_with`);
    /// a type of its own for the same reason as [`StateFn`].
    SharedFn, &'a
}

/// The function pointer type of every `entry::<_, S>`: the address of the user's function,
/// and what the entry point works on.
type EntryFn<S> = for<'a, 'r> fn(usize, &'r mut <S as Signature>::Cx<'a>) -> <S as Signature>::Out;

/// What a worker calls for `A`: makes `A` again around the user's function at `code` and
/// runs it.
///
/// Private: its address leaves this module only through [`EntryOffset::of`], which takes
/// a value of `A` and measures the place of that value's function with it, and it is
/// called only through a [`Resolved`], with the address paired with it there.
fn entry<A: EntryPoint<S>, S: Signature>(code: usize, cx: &mut S::Cx<'_>) -> S::Out {
    // SAFETY: `from_address` needs that `code` is the address of a function of type
    // `A::Code`. This function is private, so it is called only through a `Resolved`
    // (see `Resolved::call`), with the code address that `Resolved::resolve` accepted
    // together with this entry point's address: both offsets were measured by one call of
    // `EntryOffset::of::<A>` on a value `a` of `A` — the entry offset from `entry::<A, S>`
    // and the code offset from `a.code()`, a value of type `A::Code` — since the tag that
    // pairs them is made only from an `EntryOffset` and covers both. In a worker, both
    // addresses are those of the same functions as in the parent (see `Resolved::resolve`).
    // Should the linker have merged `entry::<A, S>` with a byte-identical `entry::<B, S>`,
    // the code run is that of `entry::<A, S>` all the same.
    let code = unsafe { <A::Code as address::FromAddress>::from_address(code) };
    A::from_code(code).run(cx)
}

/// Where a function is, as a job carries it: the distances from the anchor function to
/// `entry::<A, S>` and to the user's function of a value of `A` that the parent held.
pub(crate) struct EntryOffset<S> {
    entry: u64,
    code: u64,
    signature: PhantomData<fn() -> S>,
}

impl<S> Clone for EntryOffset<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for EntryOffset<S> {}

impl<S> fmt::Debug for EntryOffset<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryOffset({:#x}, {:#x})", self.entry, self.code)
    }
}

impl<S: Signature> EntryOffset<S> {
    /// The place of `a`'s entry point and of its function.
    ///
    /// # Errors
    /// [`EntryError::OutsideImage`] when either is not in the executable's own mapping (a
    /// function of a shared library, or twat-mp linked into one: the offset would mean
    /// nothing in a worker), [`EntryError::NoImage`] when that mapping cannot be found.
    pub(crate) fn of<A: EntryPoint<S>>(a: A) -> Result<Self, EntryError> {
        let code = a.code().address();
        let entry = entry::<A, S> as EntryFn<S> as usize;
        Ok(EntryOffset {
            entry: offset_of(entry)?,
            code: offset_of(code)?,
            signature: PhantomData,
        })
    }

    /// The entry point's offset, for the frame.
    pub(crate) fn entry(self) -> u64 {
        self.entry
    }

    /// The function's offset, for the frame.
    pub(crate) fn code(self) -> u64 {
        self.code
    }
}

/// The distance from the anchor to `address`, when both lie in the executable's code.
fn offset_of(address: usize) -> Result<u64, EntryError> {
    let image = code_range().ok_or(EntryError::NoImage)?;
    if !image.contains(&address) || !image.contains(&anchor_address()) {
        return Err(EntryError::OutsideImage);
    }
    Ok(address.wrapping_sub(anchor_address()) as u64)
}

/// The secret a pool shares with its workers to tag job frames.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(u64, u64);

impl Key {
    /// A fresh random key (std's `RandomState` is seeded from the OS).
    pub(crate) fn random() -> Key {
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        let pid = u64::from(std::process::id());
        Key(state.hash_one((pid, 0_u8)), state.hash_one((pid, 1_u8)))
    }

    /// The key a worker received in its handshake.
    pub(crate) fn from_parts(first: u64, second: u64) -> Key {
        Key(first, second)
    }

    /// The key's two halves, for the handshake.
    pub(crate) fn parts(self) -> (u64, u64) {
        (self.0, self.1)
    }

    /// The tag of a job naming `entry`, over `signed`: the frame's other fields, which the
    /// worker hashes the same way to check them.
    pub(crate) fn tag<S: Signature>(self, entry: EntryOffset<S>, signed: &impl Hash) -> u64 {
        keyed_hash::<S>(self, (entry.entry, entry.code), signed)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

/// A keyed hash of the two offsets, the signature they are for, and `signed`: only a
/// holder of the key makes a valid one.
fn keyed_hash<S: Signature>(key: Key, offsets: (u64, u64), signed: &impl Hash) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (key.0, key.1).hash(&mut hasher);
    type_name::<S>().hash(&mut hasher);
    offsets.hash(&mut hasher);
    signed.hash(&mut hasher);
    (key.1, key.0).hash(&mut hasher);
    hasher.finish()
}

/// Why an offset names no function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryError {
    /// The tag does not match: not an offset this pool sent (or not with these fields).
    Forged,
    /// The address lies outside the executable's code.
    OutsideImage,
    /// The executable's code mapping cannot be found in `/proc/self/maps`.
    NoImage,
}

/// An entry point that passed every check of [`resolve`](Self::resolve), with its
/// function: the only way to call a function a job names.
pub(crate) struct Resolved<S: Signature> {
    function: EntryFn<S>,
    code: usize,
}

// A copy of a function that passed the checks is that same function: copying makes no
// unchecked one (a worker keeps its last job's, see `wire::verify_job_again`).
impl<S: Signature> Clone for Resolved<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Signature> Copy for Resolved<S> {}

impl<S: Signature> Resolved<S> {
    /// The entry point at `entry` from the anchor, with the function at `code`, if `tag`
    /// is the tag of these offsets and `signed` under `key`, and both addresses lie in the
    /// executable's code.
    ///
    /// # Errors
    /// [`EntryError::Forged`] for a tag that does not match, [`EntryError::OutsideImage`]
    /// and [`EntryError::NoImage`] as for [`EntryOffset::of`].
    pub(crate) fn resolve(
        key: Key,
        entry: u64,
        code: u64,
        signed: &impl Hash,
        tag: u64,
    ) -> Result<Self, EntryError> {
        if tag != keyed_hash::<S>(key, (entry, code), signed) {
            return Err(EntryError::Forged);
        }
        let image = code_range().ok_or(EntryError::NoImage)?;
        let address = anchor_address().wrapping_add(entry as usize);
        let code = anchor_address().wrapping_add(code as usize);
        if !image.contains(&address) || !image.contains(&code) {
            return Err(EntryError::OutsideImage);
        }
        // SAFETY: the address is that of `entry::<A, S>` for some `A`, a function of type
        // `EntryFn<S>`, in this process, and `code` that of the function of a value of
        // `A` (what `entry` relies on). (1) The tag matches under the pool's key, and
        // tags are made only by `Key::tag` from an `EntryOffset<S>` (the signature `S` is
        // in the hash, so offsets for another signature do not pass), whose only
        // constructor, `EntryOffset::of`, measured the distances from `anchor` to
        // `entry::<A, S> as EntryFn<S>` and to `a.code()` for a value `a` of `A`. (2) They
        // were measured in this executable: a worker runs `/proc/self/exe` of its parent,
        // and the distance between two functions of one image is fixed at link time
        // (ASLR moves the image as a whole). (3) Both addresses lie in the executable's
        // code mapping, a last guard against a layout that differs after all.
        let function = unsafe { std::mem::transmute::<usize, EntryFn<S>>(address) };
        Ok(Resolved { function, code })
    }

    /// Calls the function.
    pub(crate) fn call(self, cx: &mut S::Cx<'_>) -> S::Out {
        (self.function)(self.code, cx)
    }
}

/// The function every offset is measured from.
#[inline(never)]
fn anchor() -> u64 {
    // Distinct code, so that no pass merges it with another function.
    std::hint::black_box(0x0074_7761_742d_6d70)
}

/// Where the anchor function is in this process.
pub(crate) fn anchor_address() -> usize {
    anchor as fn() -> u64 as usize
}

/// The executable mapping of this process that holds the anchor: this program's code.
pub(crate) fn code_range() -> Option<Range<usize>> {
    static RANGE: OnceLock<Option<Range<usize>>> = OnceLock::new();
    RANGE
        .get_or_init(|| {
            let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
            find_mapping(&maps, anchor_address())
        })
        .clone()
}

fn find_mapping(maps: &str, address: usize) -> Option<Range<usize>> {
    maps.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?;
        let range = usize::from_str_radix(start, 16).ok()?..usize::from_str_radix(end, 16).ok()?;
        (perms.contains('x') && range.contains(&address)).then_some(range)
    })
}

// ---------------------------------------------------------------------------------------
// System calls
// ---------------------------------------------------------------------------------------

/// Has the C library call `hook` when the program exits: `main` returns, or
/// `std::process::exit` is called (not on a signal, an abort or `_exit`). `false` when the
/// library has no room for another hook. Used by the `mpi` attributes, whose one
/// `MpiPool` is never dropped, to stop the serving ranks and finalise MPI at exit.
#[cfg(feature = "mpi")]
pub(crate) fn at_exit(hook: extern "C" fn()) -> bool {
    // SAFETY: `atexit` stores a pointer to a function of exactly the ABI it calls
    // (`extern "C" fn()`, no arguments), and calls it once, on the exiting thread, while
    // the process and Rust's runtime are still whole (before the C library's own
    // teardown). Its only other condition, that the hook not unwind into C, is on the
    // hook, whose type cannot express it: the one hook passed (`mpi::attribute`) catches
    // every panic.
    unsafe { libc::atexit(hook) == 0 }
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
    // SAFETY: `dup2` takes two descriptor numbers and touches no memory of ours. `file`
    // is borrowed, so open, for the whole call. Replacing descriptor 0 cannot break
    // memory safety either: at worst a Rust object that owned descriptor 0 would now read
    // `file` (I/O safety, not memory safety), and in a worker none does — the protocol
    // socket was cloned to a new descriptor first.
    let result = unsafe { libc::dup2(file.as_raw_fd(), 0) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

// ---------------------------------------------------------------------------------------
// What std sets up before `main`, for a worker that never reaches it
// ---------------------------------------------------------------------------------------
//
// std's runtime start-up (`std::rt::init`, run by the `main` that rustc generates) is not
// public, and a worker never gets to it: it is entered before `main`. Two of its steps
// change what code sees in a thread, so a worker takes them itself, the way std does
// (`library/std/src/sys/pal/unix/mod.rs` and `stack_overflow.rs`): SIGPIPE is ignored, and
// a SIGSEGV/SIGBUS handler on an alternate signal stack tells a stack overflow from other
// faults. The rest of std's start-up needs nothing here: the standard descriptors are set
// by the parent, and the arguments are read by std's own `.init_array` entry.

/// Ignores SIGPIPE, as std does before `main`: writing to a closed pipe or socket then
/// fails with [`std::io::ErrorKind::BrokenPipe`] instead of killing the process. Programs
/// started from the worker get the default action back, as from any Rust program (std's
/// `Command` resets it in the child).
pub(crate) fn ignore_sigpipe() -> std::io::Result<()> {
    // SAFETY: `signal(SIGPIPE, SIG_IGN)` takes integers only and installs no code: the
    // kernel then drops the signal. It touches no memory of ours.
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    if previous == libc::SIG_ERR {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// What the fault handler needs, set once before it is installed and never changed.
struct Overflow {
    /// Where a fault means that the reporting thread ran out of stack.
    guard: Range<usize>,
    /// That thread's id.
    tid: libc::pid_t,
    /// std's message, ready to write: nothing may be formatted or allocated in the handler.
    message: Box<[u8]>,
    /// What to write to `notice_to` first (a frame telling the parent why the worker dies).
    notice: Box<[u8]>,
    notice_to: OwnedFd,
}

static OVERFLOW: OnceLock<Overflow> = OnceLock::new();

/// Makes a stack overflow of the calling thread end the process as it would in `main`:
/// std's message on stderr (`thread '…' (tid) has overflowed its stack`, then `fatal
/// runtime error: stack overflow, aborting`) and an abort, instead of a bare SIGSEGV.
/// Before the message, `notice` is written to `notice_to`, so that the parent can say why
/// the worker died.
///
/// Works once per process: later calls (from any thread) change nothing. Threads other
/// than the calling one are not covered (a fault there keeps its default action), as std
/// covers only threads it sets up itself.
///
/// # Errors
/// When the calling thread's stack cannot be located, or the alternate signal stack or the
/// handler cannot be installed.
pub(crate) fn report_stack_overflow(notice_to: OwnedFd, notice: Vec<u8>) -> std::io::Result<()> {
    if OVERFLOW.get().is_some() {
        return Ok(());
    }
    let tid = current_tid();
    let guard = current_guard(tid).ok_or_else(|| {
        std::io::Error::other("the stack of the serving thread cannot be located")
    })?;
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unknown>");
    let message = format!(
        "\nthread '{name}' ({tid}) has overflowed its stack\nfatal runtime error: stack overflow, aborting\n"
    );
    let overflow = Overflow {
        guard,
        tid,
        message: message.into_bytes().into_boxed_slice(),
        notice: notice.into_boxed_slice(),
        notice_to,
    };
    if OVERFLOW.set(overflow).is_err() {
        // Another thread got there first.
        return Ok(());
    }
    install_alternate_stack()?;
    for signal in [libc::SIGSEGV, libc::SIGBUS] {
        // SAFETY: `sigaction` reads and writes the `sigaction` structs we pass, which live
        // on this stack for the call; all-zero is a valid `sigaction` (no handler, empty
        // mask, no flags). The handler installed is `on_fault`, of exactly the
        // `SA_SIGINFO` signature, and only where no other handler is set (as std does).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut action) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if action.sa_sigaction != libc::SIG_DFL {
                continue;
            }
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            action.sa_sigaction = on_fault
                as unsafe extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as libc::sighandler_t;
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The SIGSEGV/SIGBUS handler: std's, for the thread that [`report_stack_overflow`] set
/// up. It runs on the alternate signal stack (the thread's own is exhausted) and calls
/// only async-signal-safe functions (`syscall`, `write`, `abort`, `sigaction`); it reads
/// [`OVERFLOW`], which was complete before the handler was installed.
///
/// # Safety
/// Called by the kernel only, as an `SA_SIGINFO` handler.
unsafe extern "C" fn on_fault(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    _context: *mut libc::c_void,
) {
    // SAFETY: for an `SA_SIGINFO` handler the kernel passes a valid `siginfo_t`. A
    // positive `si_code` means the kernel raised the signal for a fault, and then
    // `si_addr` is the faulting address; otherwise a process sent it (`kill`, `tkill`,
    // `sigqueue`) and the union holds other fields.
    let (fault, address) = unsafe { ((*info).si_code > 0, (*info).si_addr() as usize) };
    if let Some(overflow) = OVERFLOW.get() {
        if fault && overflow.guard.contains(&address) && current_tid() == overflow.tid {
            write_all_raw(overflow.notice_to.as_raw_fd(), &overflow.notice);
            write_all_raw(libc::STDERR_FILENO, &overflow.message);
            // SAFETY: `abort` is async-signal-safe and ends the process.
            unsafe { libc::abort() };
        }
    }
    // Not a stack overflow of the reporting thread: restore the default action. A fault
    // happens again when the handler returns and ends the process as it would have (as
    // std does); a signal sent by a process does not, so it is raised again (std's handler
    // would swallow it once).
    // SAFETY: all-zero is a valid `sigaction` whose handler is `SIG_DFL`; `sigaction` and
    // `raise` are async-signal-safe and read nothing but the struct on this stack. The
    // raised signal is blocked until the handler returns, then takes its default action.
    unsafe {
        let action: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, &action, std::ptr::null_mut());
        if !fault {
            libc::raise(signal);
        }
    }
}

/// Writes all of `bytes` to `fd` with `write(2)` alone (async-signal-safe), giving up on
/// an error.
fn write_all_raw(fd: libc::c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a live slice for the call; `write` reads at most its length.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(written) {
            Ok(0) => return,
            Ok(n) => bytes = &bytes[n.min(bytes.len())..],
            Err(_) if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {
            }
            Err(_) => return,
        }
    }
}

/// The calling thread's id (`gettid`, async-signal-safe).
fn current_tid() -> libc::pid_t {
    // SAFETY: `gettid` takes no arguments, cannot fail, and touches no memory.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    libc::pid_t::try_from(tid).unwrap_or(-1)
}

fn page_size() -> usize {
    // SAFETY: `sysconf` takes an integer and touches no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// Where a fault means that the calling thread `tid` overflowed its stack, as std computes
/// it: for the main thread (a worker serves on it) the page below the lowest address its
/// stack may grow to, where the kernel faults; for another thread the guard area next to
/// its stack's base.
fn current_guard(tid: libc::pid_t) -> Option<Range<usize>> {
    let page = page_size();
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::zeroed();
    // SAFETY: `pthread_getattr_np` fills the attribute object we own for this thread;
    // on success it is initialized and must be destroyed, which is done below.
    if unsafe { libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) } != 0 {
        return None;
    }
    let mut base: *mut libc::c_void = std::ptr::null_mut();
    let mut size = 0;
    let mut guard_size = 0;
    // SAFETY: `attr` was initialized above; the getters write to the locals passed; the
    // object is destroyed once, after its last use.
    let found = unsafe {
        let found = libc::pthread_attr_getstack(attr.as_ptr(), &mut base, &mut size) == 0;
        libc::pthread_attr_getguardsize(attr.as_ptr(), &mut guard_size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        found
    };
    if !found || base.is_null() {
        return None;
    }
    let base = base as usize;
    // SAFETY: `getpid` takes no arguments and touches no memory.
    if tid == unsafe { libc::getpid() } {
        let lowest = base.checked_next_multiple_of(page)?;
        Some(lowest.checked_sub(page)?..lowest)
    } else {
        let guard = guard_size.max(page);
        Some(base.checked_sub(guard)?..base.checked_add(guard)?)
    }
}

/// Gives the calling thread an alternate signal stack (with a guard page below it), unless
/// it has one: a handler for a stack overflow cannot run on the exhausted stack. The
/// mapping is never freed, as std never frees the main thread's.
fn install_alternate_stack() -> std::io::Result<()> {
    // SAFETY: `sigaltstack(NULL, &old)` only writes the current setting to a local.
    let current = unsafe {
        let mut current: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut current);
        current
    };
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return Ok(());
    }
    let page = page_size();
    // SAFETY: `getauxval` reads the auxiliary vector and touches no memory of ours.
    let dynamic = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) };
    let size = libc::SIGSTKSZ.max(usize::try_from(dynamic).unwrap_or(0));
    // SAFETY: a fresh private anonymous mapping aliases no memory of ours; its first page
    // is made inaccessible (a guard), and the rest is handed to the kernel as this
    // thread's signal stack, never used by Rust code otherwise and never unmapped.
    unsafe {
        let map = libc::mmap(
            std::ptr::null_mut(),
            size + page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        );
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        if libc::mprotect(map, page, libc::PROT_NONE) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stack = libc::stack_t {
            ss_sp: map.cast::<u8>().add(page).cast(),
            ss_flags: 0,
            ss_size: size,
        };
        if libc::sigaltstack(&stack, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signature of the tests' own: `fn(&mut Vec<u8>) -> usize`.
    enum Push {}

    impl Signature for Push {
        type Cx<'a> = Vec<u8>;
        type Out = usize;
    }

    /// Another, to show that a tag is for one signature only.
    enum Other {}

    impl Signature for Other {
        type Cx<'a> = Vec<u8>;
        type Out = usize;
    }

    /// An entry point of the tests' own: pushes what its function makes of the length.
    struct Pushes(fn(usize) -> u8);

    impl EntryPoint<Push> for Pushes {
        type Code = fn(usize) -> u8;
        fn code(self) -> Self::Code {
            self.0
        }
        fn from_code(code: Self::Code) -> Self {
            Pushes(code)
        }
        fn run(self, out: &mut Vec<u8>) -> usize {
            out.push((self.0)(out.len()));
            out.len()
        }
    }

    fn seven(_: usize) -> u8 {
        7
    }

    fn resolve_pushes(key: Key, offset: EntryOffset<Push>, signed: &impl Hash) -> Resolved<Push> {
        let tag = key.tag(offset, signed);
        Resolved::<Push>::resolve(key, offset.entry(), offset.code(), signed, tag).unwrap()
    }

    #[test]
    fn an_offset_made_from_a_value_resolves_and_runs_it() {
        let key = Key::random();
        let offset = EntryOffset::<Push>::of(Pushes(seven)).unwrap();
        let resolved = resolve_pushes(key, offset, &("fields", 3_u32));
        let mut out = vec![1];
        assert_eq!(resolved.call(&mut out), 2);
        assert_eq!(out, [1, 7]);
    }

    #[test]
    fn function_pointers_chosen_at_run_time_resolve_to_themselves() {
        let table: [fn(usize) -> u8; 3] = [seven, |len| len as u8 * 10, |_| 42];
        let key = Key::random();
        let offsets: Vec<EntryOffset<Push>> = table
            .iter()
            .map(|&f| EntryOffset::of(Pushes(std::hint::black_box(f))).unwrap())
            .collect();
        // One entry point for the type, one place per function.
        assert!(offsets.iter().all(|o| o.entry() == offsets[0].entry()));
        assert_ne!(offsets[0].code(), offsets[1].code());
        assert_ne!(offsets[1].code(), offsets[2].code());
        let mut out = vec![1, 1];
        for offset in offsets {
            resolve_pushes(key, offset, &()).call(&mut out);
        }
        assert_eq!(out, [1, 1, 7, 30, 42]);
    }

    #[test]
    fn a_wrong_key_field_offset_or_signature_is_refused() {
        let key = Key::random();
        let offset = EntryOffset::<Push>::of(Pushes(seven)).unwrap();
        let other = EntryOffset::<Push>::of(Pushes(|_| 8)).unwrap();
        let tag = key.tag(offset, &1_u8);
        let (entry, code) = (offset.entry(), offset.code());
        let resolve = Resolved::<Push>::resolve;
        assert_eq!(
            resolve(Key::random(), entry, code, &1_u8, tag).err(),
            Some(EntryError::Forged)
        );
        assert_eq!(
            resolve(key, entry, code, &2_u8, tag).err(),
            Some(EntryError::Forged)
        );
        assert_eq!(
            resolve(key, entry ^ 0x40, code, &1_u8, tag).err(),
            Some(EntryError::Forged)
        );
        // Another function under this one's tag: not what the parent sent.
        assert_eq!(
            resolve(key, entry, other.code(), &1_u8, tag).err(),
            Some(EntryError::Forged)
        );
        assert_eq!(
            resolve(key, entry, code ^ 0x40, &1_u8, tag).err(),
            Some(EntryError::Forged)
        );
        assert_eq!(
            Resolved::<Other>::resolve(key, entry, code, &1_u8, tag).err(),
            Some(EntryError::Forged)
        );
    }

    #[test]
    fn addresses_outside_the_code_are_refused_even_with_a_valid_tag() {
        let key = Key::random();
        let far = 1_u64 << 62;
        let near = EntryOffset::<Push>::of(Pushes(seven)).unwrap();
        for offsets in [(far, near.code()), (near.entry(), far)] {
            let tag = keyed_hash::<Push>(key, offsets, &());
            assert_eq!(
                Resolved::<Push>::resolve(key, offsets.0, offsets.1, &(), tag).err(),
                Some(EntryError::OutsideImage)
            );
        }
        assert_eq!(offset_of(0x10), Err(EntryError::OutsideImage));
        let ours = offset_of(code_range as fn() -> _ as usize).unwrap();
        assert_eq!(
            anchor_address().wrapping_add(ours as usize),
            code_range as fn() -> _ as usize
        );
    }

    #[test]
    fn the_code_mapping_is_found() {
        let maps = "00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/x\n\
                    00651000-00652000 r--p 00051000 08:02 173521 /usr/bin/x\n";
        assert_eq!(find_mapping(maps, 0x400100), Some(0x400000..0x452000));
        assert_eq!(find_mapping(maps, 0x651000), None);
        assert!(code_range().is_some());
    }

    #[test]
    fn the_key_does_not_show_in_debug_output() {
        assert_eq!(format!("{:?}", Key::from_parts(1, 2)), "Key(..)");
        assert_eq!(Key::from_parts(1, 2).parts(), (1, 2));
    }

    /// The compiler keeps `unsafe` here: the workspace denies `unsafe_code`, every package
    /// takes the workspace's lints, and this is the only file that allows it. (Without the
    /// first two, an `unsafe` block elsewhere would compile again; this test fails first.)
    #[test]
    fn unsafe_code_is_denied_everywhere_but_here() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
        let workspace = read("Cargo.toml");
        assert!(
            workspace.contains("[workspace.lints.rust]\nunsafe_code = \"deny\""),
            "the workspace denies unsafe_code"
        );
        for manifest in [
            "Cargo.toml",
            "twat-mp/Cargo.toml",
            "twat-mp-macros/Cargo.toml",
        ] {
            assert!(
                read(manifest).contains("[lints]\nworkspace = true"),
                "{manifest} takes the workspace's lints"
            );
        }
        let mut allowed = Vec::new();
        let mut dirs = vec![root.join("twat-mp/src"), root.join("twat-mp-macros/src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if std::fs::read_to_string(&path)
                    .unwrap()
                    .contains(concat!("allow(", "unsafe_code)"))
                {
                    allowed.push(path.strip_prefix(&root).unwrap().to_owned());
                }
            }
        }
        assert_eq!(
            allowed,
            [std::path::Path::new("twat-mp/src/process/unsafe_code.rs")]
        );
    }
}
