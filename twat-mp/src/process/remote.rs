//! What crosses between a pool and its workers: the [`CrossProcess`] bound of items and
//! results, the [`CrossProcessError`] bound of the functions' own errors, the functions
//! (as [`RemoteFn`] adapters around the user's function pointer, with a [`trampoline`]
//! each), and the per-item result records.
//!
//! A `RESULTS` frame holds records, one per item, in item order:
//!
//! | tag | record after the tag |
//! |---|---|
//! | `OK` | the result, postcard |
//! | `ERR` | the item's bytes (u32 length + bytes), then its error as the [`ErrorWire`] writes it |
//! | `PANIC` | the item's bytes, then the `RemotePanic` (message, backtrace, location), postcard |
//! | `BROKEN` | the item's bytes, then why it could not cross (`String`), postcard |
//! | `INIT_PANIC` | the item's bytes, then the `RemotePanic` of the call's `init` in this worker, postcard |

use std::any::{Any, type_name};
use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::unsafe_code::{CodePointer, EntryOffset, EntryPoint, SharedFn, StateFn};
use super::wire::{self, FrameError, FunctionId};
use super::worker::{Job, RunInit, RunJob, SetUp, SetUpJob, Sink, StateSlot, Stop};
use crate::engine::item::ItemFailure;
use crate::engine::render::{Render, shorten};
use crate::error::{BoxError, ErrorKind, WorkerError};
use crate::panic_capture::{self, RemotePanic};

/// A type that can cross to a worker process and back: items and results of a process
/// pool (and, through [`CrossProcessError`], the functions' own errors).
///
/// It is implemented for every `Serialize + DeserializeOwned + Send + 'static` type; derive
/// serde's traits to make a type of your own cross:
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Job {
///     path: String,
///     depth: u32,
/// }
///
/// fn crosses<T: twat_mp::CrossProcess>() {}
/// crosses::<Job>();
/// crosses::<(u64, Vec<String>)>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross to a worker process: it is not serde-serializable",
    label = "items, results and errors of a process pool must cross between processes",
    note = "derive serde's traits for it: `#[derive(serde::Serialize, serde::Deserialize)]` \
            (borrowed data such as `&str` cannot cross: use an owned type such as `String`)"
)]
pub trait CrossProcess: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> CrossProcess for T {}

/// An error type that can cross back from a worker process as itself: the caller gets the
/// function's error again, as a value of its own type (`#[pmap(process)]` returns it as
/// it is; [`WorkerError::downcast`] takes it from the pools' `try_map`).
///
/// It is implemented for:
///
/// - every [`CrossProcess`] (serde) type, which crosses as itself ([`via::Serde`]);
/// - [`std::io::Error`], made again in the caller with its [`kind`](io::Error::kind), its
///   message and its OS error code ([`via::Io`]), so that `io::Result` functions work
///   under `process` as they do on threads;
/// - `Box<dyn Error + Send + Sync>` and [`anyhow::Error`], made again from the messages
///   of their chains of sources, as a chain of [`RemoteError`]s ([`via::Messages`]): the
///   original types stayed in the worker.
///
/// Any other error type is refused at compile time, with this hint: derive serde's traits
/// for it, map it to an error type of your own that does, or return `Result<R, String>`
/// (`.map_err(|e| e.to_string())`). The parameter `Via` says how the type crosses; it is
/// inferred, so calls never write it.
///
/// ```
/// use std::io;
/// use twat_mp::ProcessPool;
///
/// fn size(path: String) -> io::Result<u64> {
///     Ok(std::fs::metadata(path)?.len())
/// }
///
/// let pool = ProcessPool::with_nodes(1)?;
/// let err = pool.try_map(size, ["/no/such/file".to_owned()]).unwrap_err();
/// let io = err.downcast::<io::Error>().unwrap();
/// assert_eq!(io.kind(), io::ErrorKind::NotFound);
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
///
/// An error type of another crate that is not serde can be made to cross with a marker
/// type of your own, by saying what of it crosses and how it is made again:
///
/// ```
/// use twat_mp::{CrossProcessError, ProcessPool};
///
/// enum Unit {}
///
/// impl CrossProcessError<Unit> for std::fmt::Error {
///     type Wire = ();
///     fn into_wire(self) {}
///     fn from_wire((): ()) -> Self {
///         std::fmt::Error
///     }
/// }
///
/// let pool = ProcessPool::with_nodes(1)?;
/// let err = pool
///     .try_map(|x: u32| if x == 1 { Err(std::fmt::Error) } else { Ok(x) }, 0..3)
///     .unwrap_err();
/// assert_eq!(err.index(), 1);
/// assert!(err.downcast_ref::<std::fmt::Error>().is_some());
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` cannot cross back from a worker process",
    label = "the function's error must cross back to the caller",
    note = "errors cross when they are serde types, `std::io::Error`, `anyhow::Error` or \
            `Box<dyn Error + Send + Sync>`: derive serde's traits for it, map it to an error \
            type of your own that does, or return `Result<R, String>` \
            (`.map_err(|e| e.to_string())`)"
)]
pub trait CrossProcessError<Via>: Sized + Send + 'static {
    /// What crosses in its place: a serde form of the error.
    type Wire: Serialize + DeserializeOwned;
    /// The error's serde form, made in the worker.
    ///
    /// ```
    /// use std::io;
    /// use twat_mp::{CrossProcessError, via};
    ///
    /// // An `io::Error` crosses as its kind, its message and its OS error code.
    /// let wire = <io::Error as CrossProcessError<via::Io>>::into_wire(io::Error::other("disk full"));
    /// let again = <io::Error as CrossProcessError<via::Io>>::from_wire(wire);
    /// assert_eq!((again.kind(), again.to_string()), (io::ErrorKind::Other, "disk full".to_owned()));
    /// ```
    fn into_wire(self) -> Self::Wire;
    /// The error again, made in the caller from its serde form.
    ///
    /// ```
    /// use twat_mp::{CrossProcessError, via};
    ///
    /// // A serde type crosses as itself.
    /// let wire = <String as CrossProcessError<via::Serde>>::into_wire("not found".to_owned());
    /// assert_eq!(<String as CrossProcessError<via::Serde>>::from_wire(wire), "not found");
    /// ```
    fn from_wire(wire: Self::Wire) -> Self;
}

/// How an error type crosses back from a worker process: the marker types of
/// [`CrossProcessError`], inferred from the error type, so that calls never name them.
///
/// ```
/// use twat_mp::{CrossProcessError, via};
///
/// fn crosses<E: CrossProcessError<Via>, Via>() {}
/// crosses::<String, via::Serde>();
/// crosses::<std::io::Error, via::Io>();
/// crosses::<anyhow::Error, via::Messages>();
/// ```
pub mod via {
    /// Serde types cross as themselves.
    ///
    /// ```
    /// use twat_mp::ProcessPool;
    ///
    /// #[derive(Debug, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
    /// #[error("{0} is too large")]
    /// struct TooLarge(u64);
    ///
    /// let pool = ProcessPool::with_nodes(1)?;
    /// let err = pool
    ///     .try_map(|x: u64| if x > 9 { Err(TooLarge(x)) } else { Ok(x) }, [3, 12])
    ///     .unwrap_err();
    /// assert_eq!(err.downcast::<TooLarge>().ok(), Some(TooLarge(12)));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    #[derive(Debug)]
    pub enum Serde {}

    /// [`std::io::Error`] crosses as its kind, its message and its OS error code.
    ///
    /// ```
    /// use std::io;
    /// use twat_mp::ProcessPool;
    ///
    /// fn read(path: String) -> io::Result<String> {
    ///     std::fs::read_to_string(path)
    /// }
    ///
    /// let pool = ProcessPool::with_nodes(1)?;
    /// let err = pool.try_map(read, ["/no/such/file".to_owned()]).unwrap_err();
    /// let io = err.downcast::<io::Error>().unwrap();
    /// assert_eq!((io.kind(), io.raw_os_error()), (io::ErrorKind::NotFound, Some(2)));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    #[derive(Debug)]
    pub enum Io {}

    /// `Box<dyn Error + Send + Sync>` and [`anyhow::Error`] cross as the messages of their
    /// chains of sources.
    ///
    /// ```
    /// use anyhow::Context;
    /// use twat_mp::{ProcessPool, RemoteError};
    ///
    /// fn load(path: String) -> anyhow::Result<String> {
    ///     std::fs::read_to_string(&path).with_context(|| format!("cannot load {path}"))
    /// }
    ///
    /// let pool = ProcessPool::with_nodes(1)?;
    /// let err = pool.try_map(load, ["/no/such/file".to_owned()]).unwrap_err();
    /// let remote = err.downcast_ref::<RemoteError>().unwrap();
    /// assert_eq!(remote.to_string(), "cannot load /no/such/file");
    /// let cause = std::error::Error::source(remote).unwrap();
    /// assert!(cause.to_string().starts_with("No such file or directory"));
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    #[derive(Debug)]
    pub enum Messages {}
}

impl<E: CrossProcess> CrossProcessError<via::Serde> for E {
    type Wire = E;
    fn into_wire(self) -> E {
        self
    }
    fn from_wire(wire: E) -> E {
        wire
    }
}

/// The kinds of [`io::ErrorKind`] that cross by name (those stable in Rust 1.85); any other
/// becomes `Other`, unless its OS error code says more.
const IO_KINDS: &[io::ErrorKind] = {
    use io::ErrorKind::*;
    &[
        NotFound,
        PermissionDenied,
        ConnectionRefused,
        ConnectionReset,
        HostUnreachable,
        NetworkUnreachable,
        ConnectionAborted,
        NotConnected,
        AddrInUse,
        AddrNotAvailable,
        NetworkDown,
        BrokenPipe,
        AlreadyExists,
        WouldBlock,
        NotADirectory,
        IsADirectory,
        DirectoryNotEmpty,
        ReadOnlyFilesystem,
        StaleNetworkFileHandle,
        InvalidInput,
        InvalidData,
        TimedOut,
        WriteZero,
        StorageFull,
        NotSeekable,
        QuotaExceeded,
        FileTooLarge,
        ResourceBusy,
        ExecutableFileBusy,
        Deadlock,
        CrossesDevices,
        TooManyLinks,
        ArgumentListTooLong,
        Interrupted,
        Unsupported,
        UnexpectedEof,
        OutOfMemory,
        Other,
    ]
};

/// `(kind by name, OS error code, messages of the error and its sources)`.
impl CrossProcessError<via::Io> for io::Error {
    type Wire = (String, Option<i32>, Vec<(String, String)>);
    fn into_wire(self) -> Self::Wire {
        let kind = format!("{:?}", self.kind());
        (kind, self.raw_os_error(), messages(&self))
    }
    fn from_wire((kind, code, messages): Self::Wire) -> Self {
        if let Some(code) = code {
            // The same kind and message as in the worker: both come from the code.
            return io::Error::from_raw_os_error(code);
        }
        let kind = IO_KINDS
            .iter()
            .copied()
            .find(|known| format!("{known:?}") == kind)
            .unwrap_or(io::ErrorKind::Other);
        match RemoteError::chain(messages) {
            Some(chain) => io::Error::new(kind, chain),
            None => io::Error::from(kind),
        }
    }
}

/// The messages (`Display`, `Debug`) of the chain of sources: `(message, debug text)`.
impl CrossProcessError<via::Messages> for BoxError {
    type Wire = Vec<(String, String)>;
    fn into_wire(self) -> Self::Wire {
        messages(self.as_ref())
    }
    fn from_wire(wire: Self::Wire) -> Self {
        match RemoteError::chain(wire) {
            Some(chain) => Box::new(chain),
            None => "an error without a message".into(),
        }
    }
}

/// As for `Box<dyn Error>`: the messages of its chain.
impl CrossProcessError<via::Messages> for anyhow::Error {
    type Wire = Vec<(String, String)>;
    fn into_wire(self) -> Self::Wire {
        let top: &(dyn Error + 'static) = self.as_ref();
        messages(top)
    }
    fn from_wire(wire: Self::Wire) -> Self {
        match RemoteError::chain(wire) {
            Some(chain) => anyhow::Error::new(chain),
            None => anyhow::anyhow!("an error without a message"),
        }
    }
}

/// `(Display, Debug)` of `error` and of each of its sources, outermost first.
fn messages(error: &(dyn Error + 'static)) -> Vec<(String, String)> {
    let mut levels = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        levels.push((error.to_string(), format!("{error:?}")));
        next = error.source();
    }
    levels
}

/// The most levels of an error's chain of sources made again in the caller (see
/// [`RemoteError`]); real chains have a handful.
const MAX_CHAIN: usize = 256;

/// An error that a function in a worker process returned, made again in the caller from
/// its messages, for error types that cannot cross as themselves (`Box<dyn Error>`,
/// [`anyhow::Error`]; see [`CrossProcessError`]). Its [`source`](Error::source) is the
/// next error of the original's chain, made again the same way.
///
/// ```
/// use twat_mp::{ProcessPool, RemoteError};
///
/// fn parse(s: String) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
///     Ok(s.parse()?)
/// }
///
/// let pool = ProcessPool::with_nodes(1)?;
/// let err = pool.try_map(parse, ["7".to_owned(), "x".to_owned()]).unwrap_err();
/// let remote = err.downcast_ref::<RemoteError>().unwrap();
/// assert_eq!(remote.message(), "invalid digit found in string");
/// assert!(remote.debug_text().contains("InvalidDigit"));
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteError {
    message: String,
    debug: String,
    source: Option<Box<RemoteError>>,
}

impl RemoteError {
    /// The error's `Display` text, as the worker rendered it.
    ///
    /// ```
    /// use twat_mp::{ProcessPool, RemoteError};
    ///
    /// fn open(path: String) -> anyhow::Result<String> {
    ///     anyhow::ensure!(!path.is_empty(), "an empty path");
    ///     Ok(path)
    /// }
    ///
    /// let pool = ProcessPool::with_nodes(1)?;
    /// let err = pool.try_map(open, [String::new()]).unwrap_err();
    /// assert_eq!(err.downcast_ref::<RemoteError>().unwrap().message(), "an empty path");
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error's `Debug` text, as the worker rendered it.
    ///
    /// ```
    /// use twat_mp::{ProcessPool, RemoteError};
    ///
    /// fn parse(s: String) -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    ///     Ok(s.parse()?)
    /// }
    ///
    /// let pool = ProcessPool::with_nodes(1)?;
    /// let err = pool.try_map(parse, ["300".to_owned()]).unwrap_err();
    /// let remote = err.downcast_ref::<RemoteError>().unwrap();
    /// assert_eq!(remote.debug_text(), "ParseIntError { kind: PosOverflow }");
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn debug_text(&self) -> &str {
        &self.debug
    }

    /// The chain of `(message, debug text)`, outermost first, made again; `None` for none.
    /// Past [`MAX_CHAIN`] levels the rest is one level that says how many were left out:
    /// a chain is dropped (and cloned, and compared) level by level on the stack, and a
    /// damaged frame may hold a million levels in two megabytes.
    fn chain(mut levels: Vec<(String, String)>) -> Option<RemoteError> {
        if levels.len() > MAX_CHAIN {
            let left_out = levels.len() - (MAX_CHAIN - 1);
            levels.truncate(MAX_CHAIN - 1);
            let message = format!("... and {left_out} more sources, not shown");
            levels.push((message.clone(), message));
        }
        levels
            .into_iter()
            .rev()
            .fold(None, |source, (message, debug)| {
                Some(RemoteError {
                    message,
                    debug,
                    source: source.map(Box::new),
                })
            })
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.debug)
    }
}

impl Error for RemoteError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn Error + 'static))
    }
}

/// How a function's own error crosses back to the parent.
pub(crate) trait ErrorWire<E>: 'static {
    /// What the parent gets.
    type Remote: Send + 'static;
    fn encode(error: E, out: &mut Vec<u8>) -> postcard::Result<()>;
    fn decode(bytes: &[u8]) -> postcard::Result<(Self::Remote, &[u8])>;
}

/// For functions that cannot fail.
pub(crate) enum NoError {}

impl ErrorWire<Infallible> for NoError {
    type Remote = Infallible;
    fn encode(error: Infallible, _: &mut Vec<u8>) -> postcard::Result<()> {
        match error {}
    }
    fn decode(_: &[u8]) -> postcard::Result<(Infallible, &[u8])> {
        Err(postcard::Error::DeserializeBadEnum)
    }
}

/// The error crosses as its [`CrossProcessError`] implementation says, and the parent gets
/// a value of its own type.
pub(crate) struct AsValue<Via>(Infallible, PhantomData<Via>);

impl<E: CrossProcessError<Via>, Via: 'static> ErrorWire<E> for AsValue<Via> {
    type Remote = E;
    fn encode(error: E, out: &mut Vec<u8>) -> postcard::Result<()> {
        write(&error.into_wire(), out)
    }
    fn decode(bytes: &[u8]) -> postcard::Result<(E, &[u8])> {
        let (wire, rest) = postcard::take_from_bytes::<E::Wire>(bytes)?;
        Ok((E::from_wire(wire), rest))
    }
}

/// A tuple of arguments that the process pools' `starmap` spreads over a function of as
/// many parameters: `(A, B)` for `fn(A, B) -> R`, up to eight.
///
/// `starmap` takes the function as that function pointer type, so a closure without
/// captures fits as it is, and so does a function pointer; a `fn` item of several
/// parameters is cast to one with its parameter types (`power as fn(u64, u32) -> u64`;
/// passed as it is, rustc reports a type mismatch, `expected fn pointer, found fn item`,
/// and suggests the cast), or wrapped in a closure that calls it.
///
/// ```
/// fn power(base: u64, exponent: u32) -> u64 {
///     base.pow(exponent)
/// }
///
/// let pool = twat_mp::ProcessPool::with_nodes(1)?;
/// let by_closure = pool.starmap(|base: u64, exp: u32| base.pow(exp), [(2, 3)])?;
/// let by_cast = pool.starmap(power as fn(u64, u32) -> u64, [(2, 3)])?;
/// assert_eq!((by_closure, by_cast), (vec![8], vec![8]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait StarArgs<R>: Sized + 'static {
    /// The function pointer type of these arguments: `fn(A, B) -> R` for `(A, B)`.
    type Fn: CodePointer;
    /// Calls `f` with the tuple's fields as its arguments.
    ///
    /// ```
    /// use twat_mp::StarArgs;
    ///
    /// let add: fn(u32, u32) -> u32 = |a, b| a + b;
    /// assert_eq!(<(u32, u32)>::spread(add, (2, 3)), 5);
    /// ```
    fn spread(f: Self::Fn, args: Self) -> R;
}

macro_rules! star_args {
    ($($arg:ident),+) => {
        impl<Ret: 'static, $($arg: 'static),+> StarArgs<Ret> for ($($arg,)+) {
            type Fn = fn($($arg),+) -> Ret;
            #[allow(non_snake_case)]
            fn spread(f: Self::Fn, ($($arg,)+): Self) -> Ret {
                f($($arg),+)
            }
        }
    };
}

star_args!(A);
star_args!(A, B);
star_args!(A, B, C);
star_args!(A, B, C, D);
star_args!(A, B, C, D, E);
star_args!(A, B, C, D, E, F);
star_args!(A, B, C, D, E, F, G);
star_args!(A, B, C, D, E, F, G, H);

/// The user's function as a worker calls it: a function pointer, called with one item
/// (and the call's state in the worker, for `map_init` and `map_with`).
pub(crate) trait Callee<In>: Copy + Send + Sync + 'static {
    /// What the function returns.
    type Output;
    /// The per-call state it takes in the worker: `()` for none.
    type State: 'static;
    /// The function pointer that crosses.
    type Code: CodePointer;
    fn code(self) -> Self::Code;
    fn from_code(code: Self::Code) -> Self;
    fn call(self, state: &mut Self::State, input: In) -> Self::Output;
}

impl<T: 'static, R: 'static> Callee<T> for fn(T) -> R {
    type Output = R;
    type State = ();
    type Code = Self;
    fn code(self) -> Self {
        self
    }
    fn from_code(code: Self) -> Self {
        code
    }
    #[inline]
    fn call(self, (): &mut (), input: T) -> R {
        self(input)
    }
}

/// `map_init`: the worker's state for the call, then the item.
impl<S: 'static, T: 'static, R: 'static> Callee<T> for StateFn<S, T, R> {
    type Output = R;
    type State = S;
    type Code = Self;
    fn code(self) -> Self {
        self
    }
    fn from_code(code: Self) -> Self {
        code
    }
    #[inline]
    fn call(self, state: &mut S, input: T) -> R {
        (self.0)(state, input)
    }
}

/// `map_with`: the call's shared value, then the item.
impl<S: 'static, T: 'static, R: 'static> Callee<T> for SharedFn<S, T, R> {
    type Output = R;
    type State = S;
    type Code = Self;
    fn code(self) -> Self {
        self
    }
    fn from_code(code: Self) -> Self {
        code
    }
    #[inline]
    fn call(self, state: &mut S, input: T) -> R {
        (self.0)(state, input)
    }
}

/// A function of several arguments, called with a tuple of them (`starmap`).
pub(crate) struct Spread<Args: StarArgs<R>, R>(Args::Fn);

impl<Args: StarArgs<R>, R> Clone for Spread<Args, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Args: StarArgs<R>, R> Copy for Spread<Args, R> {}

impl<Args: StarArgs<R>, R> Spread<Args, R> {
    pub(crate) fn new(f: Args::Fn) -> Self {
        Spread(f)
    }
}

impl<Args: StarArgs<R>, R: 'static> Callee<Args> for Spread<Args, R> {
    type Output = R;
    type State = ();
    type Code = Args::Fn;
    fn code(self) -> Args::Fn {
        self.0
    }
    fn from_code(code: Args::Fn) -> Self {
        Spread(code)
    }
    #[inline]
    fn call(self, (): &mut (), input: Args) -> R {
        Args::spread(self.0, input)
    }
}

/// How a function's output splits into its value and its own error.
pub(crate) trait Split<Output>: 'static {
    type Ok;
    type Err;
    fn split(output: Output) -> Result<Self::Ok, Self::Err>;
}

/// Every output is a value: the function cannot fail (`map`).
pub(crate) enum Total {}

impl<R> Split<R> for Total {
    type Ok = R;
    type Err = Infallible;
    #[inline]
    fn split(output: R) -> Result<R, Infallible> {
        Ok(output)
    }
}

/// The output is a `Result` whose `Err` is the function's own error (`try_map`, the
/// `Result` attributes).
pub(crate) enum Partial {}

impl<R, E> Split<Result<R, E>> for Partial {
    type Ok = R;
    type Err = E;
    #[inline]
    fn split(output: Result<R, E>) -> Result<R, E> {
        output
    }
}

/// A function as it runs in a worker: what it can be called with and what it gives.
pub(crate) trait RemoteFn: Copy + Send + Sync + 'static {
    type In: CrossProcess;
    type Out: CrossProcess;
    type Err;
    type Wire: ErrorWire<Self::Err>;
    /// The per-call state its items take in the worker (see [`StateSpec`]); `()` for none.
    type State: 'static;
    /// The user's function pointer, whose place in the code crosses.
    type Code: CodePointer;
    fn code(self) -> Self::Code;
    fn from_code(code: Self::Code) -> Self;
    fn call(self, state: &mut Self::State, input: Self::In) -> Result<Self::Out, Self::Err>;
}

/// What the parent gets for a failed item of `A`.
pub(crate) type Failure<A> =
    ItemFailure<<<A as RemoteFn>::Wire as ErrorWire<<A as RemoteFn>::Err>>::Remote>;

/// The user's function `P` of items `T`, its output split by `K`, its error crossing as
/// `W` says.
pub(crate) struct Remote<P, T, K, W> {
    f: P,
    types: PhantomData<fn(T) -> (K, W)>,
}

impl<P: Copy, T, K, W> Clone for Remote<P, T, K, W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Copy, T, K, W> Copy for Remote<P, T, K, W> {}

impl<P, T, K, W> Remote<P, T, K, W> {
    pub(crate) const fn new(f: P) -> Self {
        Remote {
            f,
            types: PhantomData,
        }
    }
}

/// `map`: `fn(T) -> R`.
pub(crate) type Plain<T, R> = Remote<fn(T) -> R, T, Total, NoError>;
/// `try_map` and the `Result` attributes: `fn(T) -> Result<R, E>`, the error crossing as
/// `W` says.
pub(crate) type Fallible<T, R, E, W> = Remote<fn(T) -> Result<R, E>, T, Partial, W>;
/// `starmap`: a function of several arguments, called with a tuple.
pub(crate) type Starred<Args, R> = Remote<Spread<Args, R>, Args, Total, NoError>;
/// `map_init`: `fn(&mut S, T) -> R`, `S` made in the worker by the call's `init`.
pub(crate) type WithState<S, T, R> = Remote<StateFn<S, T, R>, T, Total, NoError>;
/// The attributes' `init` on a `Result`: `fn(&mut S, T) -> Result<R, E>`.
pub(crate) type WithStateFallible<S, T, R, E, W> =
    Remote<StateFn<S, T, Result<R, E>>, T, Partial, W>;
/// `map_with`: `fn(&S, T) -> R`, `S` the call's shared value.
pub(crate) type WithShared<S, T, R> = Remote<SharedFn<S, T, R>, T, Total, NoError>;

impl<P, T, K, W> RemoteFn for Remote<P, T, K, W>
where
    P: Callee<T>,
    T: CrossProcess,
    K: Split<P::Output>,
    K::Ok: CrossProcess,
    W: ErrorWire<K::Err>,
{
    type In = T;
    type Out = K::Ok;
    type Err = K::Err;
    type Wire = W;
    type State = P::State;
    type Code = P::Code;
    fn code(self) -> P::Code {
        self.f.code()
    }
    fn from_code(code: P::Code) -> Self {
        Remote::new(P::from_code(code))
    }
    #[inline]
    fn call(self, state: &mut P::State, input: T) -> Result<K::Ok, K::Err> {
        K::split(self.f.call(state, input))
    }
}

/// The identity a job carries for `f`.
pub(crate) fn function_id<A: RemoteFn>(f: A) -> Result<FunctionId<RunJob>, FrameError> {
    Ok(FunctionId {
        entry: EntryOffset::of(f)?,
        fingerprint: fingerprint::<A>(),
    })
}

/// What a worker runs for a job that names `A`: [`trampoline`].
impl<A: RemoteFn> EntryPoint<RunJob> for A {
    type Code = A::Code;
    fn code(self) -> A::Code {
        RemoteFn::code(self)
    }
    fn from_code(code: A::Code) -> Self {
        RemoteFn::from_code(code)
    }
    fn run(self, job: &mut Job<'_>) -> Result<(), Stop> {
        trampoline(self, job)
    }
}

/// A pool's initializer (`ProcessPoolBuilder::initializer`): a function that captures
/// nothing, run once in each worker process before its first job. It crosses in the
/// `HELLO` as a job's function crosses in its frame.
#[derive(Clone, Copy)]
pub(crate) struct Initializer(pub(crate) fn());

impl Initializer {
    /// Where it is, as the `HELLO` carries it.
    pub(crate) fn offset(self) -> Result<EntryOffset<RunInit>, FrameError> {
        Ok(EntryOffset::of(self)?)
    }
}

impl EntryPoint<RunInit> for Initializer {
    type Code = fn();
    fn code(self) -> fn() {
        self.0
    }
    fn from_code(code: fn()) -> Self {
        Initializer(code)
    }
    fn run(self, (): &mut ()) {
        (self.0)();
    }
}

/// A hash of what `A` is: its full type name (function pointer, item, result and error
/// types) and the sizes of its item and result.
pub(crate) fn fingerprint<A: RemoteFn>() -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        type_name::<A>(),
        size_of::<A::In>(),
        size_of::<A::Out>(),
        type_name::<A::Wire>(),
    )
        .hash(&mut hasher);
    hasher.finish()
}

/// What a pool remembers the cost of an item by: the function itself, not only its types
/// (two functions of one type may differ a thousandfold in cost).
pub(crate) fn cost_key<A: RemoteFn>(f: A) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (fingerprint::<A>(), f.code().address()).hash(&mut hasher);
    hasher.finish()
}

pub(crate) const OK: u8 = 0;
pub(crate) const ERR: u8 = 1;
pub(crate) const PANIC: u8 = 2;
pub(crate) const BROKEN: u8 = 3;
/// The item never ran: the call's `init` panicked in its worker (`map_init`, the
/// attributes' `init`), reported as [`ErrorKind::InitPanicked`] as on every pool.
pub(crate) const INIT_PANIC: u8 = 4;

/// In a failure record, the length of the item's copy that says there is none because the
/// worker took the item out of its frame: the parent puts in its own copy
/// ([`restore_input`]). No copy is that long (an item takes at most `MAX_ITEM`).
pub(crate) const INPUT_KEPT: u32 = u32::MAX;
const _: () = assert!(wire::MAX_ITEM < INPUT_KEPT as usize);

/// Puts `input`, the parent's copy of the one item a `RESULTS` frame `body` answers, into
/// the frame's failure record when the worker sent none ([`INPUT_KEPT`]): it took that
/// large item out of its frame instead of copying it, and had nothing left to send back
/// when the item failed. Any other frame is left as it is.
pub(crate) fn restore_input(body: &mut Vec<u8>, input: &[u8]) {
    let one = body.get(1..5) == Some(&1_u32.to_le_bytes()[..]);
    let kept = body.get(6..10) == Some(&INPUT_KEPT.to_le_bytes()[..]);
    let failed = body.get(5).is_some_and(|&tag| tag != OK);
    let Ok(len) = u32::try_from(input.len()) else {
        return;
    };
    if one && kept && failed && len != INPUT_KEPT {
        body[6..10].copy_from_slice(&len.to_le_bytes());
        body.splice(10..10, input.iter().copied());
    }
}

/// Runs one item with `f` and records its value, or its failure with `input` (the item's
/// bytes; `None` for an item taken out of its frame, whose copy the parent puts in). The
/// value is given back once recorded, for its buffer to be reused.
fn run_item<A: RemoteFn>(
    f: A,
    state: &mut A::State,
    item: A::In,
    input: Option<&[u8]>,
    sink: &mut Sink<'_>,
) -> io::Result<Option<A::Out>> {
    match panic_capture::catch(|| f.call(state, item)) {
        Ok(Ok(value)) => {
            sink.record_ok(&value)?;
            return Ok(Some(value));
        }
        Ok(Err(error)) => sink.record_failure_of(ERR, input, |out| A::Wire::encode(error, out))?,
        Err(caught) => {
            let panic = RemotePanic::new(caught);
            sink.record_failure_of(PANIC, input, |out| write(&panic, out))?;
        }
    }
    Ok(None)
}

/// Runs the items of one job with `f`, in the worker: what the job's entry point runs.
pub(crate) fn trampoline<A: RemoteFn>(f: A, job: &mut Job<'_>) -> Result<(), Stop> {
    let Job {
        header,
        frame,
        payload_at,
        sink,
        state,
    } = job;
    let payload = &frame[*payload_at..];
    if header.fingerprint != fingerprint::<A>() {
        return Err(FrameError::TypeMismatch.into());
    }
    let mut none = ();
    let state: &mut dyn Any = match (header.state, state) {
        (0, _) => &mut none,
        (_, Some(StateSlot::Ready(state))) => &mut **state,
        (_, Some(StateSlot::Failed { tag, why })) => {
            // Its `init` panicked (or its shared value could not be decoded) in this
            // worker: each item fails so, and `init` does not run again for this call.
            return fail_every_item::<A>(header.count, payload, sink, *tag, why);
        }
        (_, None) => {
            let mut why = Vec::new();
            write(
                "the worker has no state for this call: its set-up never arrived",
                &mut why,
            )
            .map_err(io::Error::other)?;
            return fail_every_item::<A>(header.count, payload, sink, BROKEN, &why);
        }
    };
    let Some(state) = state.downcast_mut::<A::State>() else {
        return Err(FrameError::TypeMismatch.into());
    };
    if header.count == 1 {
        // One large byte string, the frame's last bytes: taken out of the frame's own
        // memory instead of copied into fresh memory (whose page faults cost more).
        if let Some(taken) = wire::take_large::<A::In>(frame, *payload_at) {
            let item = match taken {
                Ok(item) => item,
                Err(err) => {
                    let why = format!("the item could not be decoded in the worker: {err}");
                    return Ok(sink.record_failure_of(BROKEN, None, |out| write(&why, out))?);
                }
            };
            if let Some(value) = run_item(f, state, item, None, sink)? {
                wire::recycle(value, frame);
            }
            return Ok(());
        }
    }
    let mut rest = &frame[*payload_at..];
    for done in 0..header.count {
        let (item, after) = match wire::take_item::<A::In>(rest) {
            Ok(decoded) => decoded,
            Err(err) => {
                // Item boundaries are lost: every item left is reported.
                let why = format!("the item could not be decoded in the worker: {err}");
                for _ in done..header.count {
                    sink.record_failure(BROKEN, &[], |out| write(&why, out))?;
                }
                return Ok(());
            }
        };
        let input = &rest[..rest.len() - after.len()];
        rest = after;
        run_item(f, state, item, Some(input), sink)?;
    }
    if !rest.is_empty() {
        return Err(FrameError::Count {
            header: header.count,
            found: header.count.saturating_add(1),
        }
        .into());
    }
    Ok(())
}

/// Records the same failure (`tag`, then the encoded `why`) for every item of a job.
fn fail_every_item<A: RemoteFn>(
    count: u32,
    payload: &[u8],
    sink: &mut Sink<'_>,
    tag: u8,
    why: &[u8],
) -> Result<(), Stop> {
    let mut rest = payload;
    for _ in 0..count {
        // The item's copy goes with its failure, so that the error can show it.
        let input = match postcard::take_from_bytes::<A::In>(rest) {
            Ok((_, after)) => {
                let input = &rest[..rest.len() - after.len()];
                rest = after;
                input
            }
            Err(_) => &[],
        };
        sink.record_failure(tag, input, |out| {
            out.extend_from_slice(why);
            Ok(())
        })?;
    }
    Ok(())
}

/// How a job's items get their per-call state in the worker (`map_init`, `map_with`): a
/// `SETUP` frame, sent by the slot before the first job of the call that its worker runs,
/// names one of these entry points and carries the payload it takes. What it makes stays
/// in the worker under the call's state id until a `FORGET` (the call ended) or the
/// worker's exit.
#[derive(Clone)]
pub(crate) struct StateSpec {
    pub(crate) function: FunctionId<SetUp>,
    /// The shared value, serialized once per call (`map_with`); empty for `map_init`.
    pub(crate) payload: Arc<Vec<u8>>,
}

impl StateSpec {
    /// The state made by `init` in each worker (`map_init`).
    ///
    /// # Errors
    /// Why `init` cannot be named in a worker, in words.
    pub(crate) fn init<S: 'static>(init: fn() -> S) -> Result<Self, String> {
        let function = setup_id(MakeState(init)).map_err(|err| {
            format!("the `init` function cannot be sent to a worker process: {err}")
        })?;
        Ok(StateSpec {
            function,
            payload: Arc::new(Vec::new()),
        })
    }

    /// `shared`, serialized now, made again once in each worker (`map_with`); `code` is
    /// the call's function, which names the entry point's place.
    ///
    /// # Errors
    /// Why `shared` cannot cross, in words.
    pub(crate) fn shared<S: CrossProcess, C: CodePointer>(
        shared: &S,
        code: C,
    ) -> Result<Self, String> {
        // Measured first, so that a large value (a table of many megabytes) is written
        // once into a buffer of its size instead of being copied as the buffer grows.
        let size = postcard::serialize_with_flavor(shared, postcard::ser_flavors::Size::default())
            .unwrap_or(0);
        let mut payload = Vec::with_capacity(size.min(wire::MAX_ITEM));
        wire::write_bounded(shared, &mut payload)
            .map_err(|err| err.describe("the shared value"))?;
        let function = setup_id(DecodeShared::<S, C>(code, PhantomData))
            .map_err(|err| format!("the function cannot be sent to a worker process: {err}"))?;
        Ok(StateSpec {
            function,
            payload: Arc::new(payload),
        })
    }
}

fn setup_id<E: EntryPoint<SetUp>>(entry: E) -> Result<FunctionId<SetUp>, FrameError> {
    Ok(FunctionId {
        entry: EntryOffset::of(entry)?,
        fingerprint: setup_fingerprint::<E>(),
    })
}

/// A hash of the set-up entry point's type (which names the state's type).
fn setup_fingerprint<E>() -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (type_name::<E>(), "setup").hash(&mut hasher);
    hasher.finish()
}

/// `map_init`'s set-up: runs `init` in the worker, its panic caught.
struct MakeState<S>(fn() -> S);

impl<S> Clone for MakeState<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for MakeState<S> {}

impl<S: 'static> EntryPoint<SetUp> for MakeState<S> {
    type Code = fn() -> S;
    fn code(self) -> Self::Code {
        self.0
    }
    fn from_code(code: Self::Code) -> Self {
        MakeState(code)
    }
    fn run(self, job: &mut SetUpJob<'_>) -> StateSlot {
        if job.header.fingerprint != setup_fingerprint::<Self>() {
            return StateSlot::broken(&FrameError::TypeMismatch.to_string());
        }
        match panic_capture::catch(self.0) {
            Ok(state) => StateSlot::Ready(Box::new(state)),
            Err(caught) => StateSlot::panicked(INIT_PANIC, RemotePanic::new(caught)),
        }
    }
}

/// `map_with`'s set-up: decodes the shared value in the worker. `C` is the call's
/// function, which only names the place.
struct DecodeShared<S, C>(C, PhantomData<fn() -> S>);

impl<S, C: Copy> Clone for DecodeShared<S, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S, C: Copy> Copy for DecodeShared<S, C> {}

impl<S: CrossProcess, C: CodePointer> EntryPoint<SetUp> for DecodeShared<S, C> {
    type Code = C;
    fn code(self) -> C {
        self.0
    }
    fn from_code(code: C) -> Self {
        DecodeShared(code, PhantomData)
    }
    fn run(self, job: &mut SetUpJob<'_>) -> StateSlot {
        if job.header.fingerprint != setup_fingerprint::<Self>() {
            return StateSlot::broken(&FrameError::TypeMismatch.to_string());
        }
        match panic_capture::catch(|| postcard::from_bytes::<S>(job.payload)) {
            Ok(Ok(shared)) => StateSlot::Ready(Box::new(shared)),
            Ok(Err(err)) => StateSlot::broken(&format!(
                "the shared value could not be decoded in the worker: {err}"
            )),
            Err(caught) => StateSlot::panicked(
                PANIC,
                RemotePanic::new(caught).in_set_up("decoding the shared value"),
            ),
        }
    }
}

/// Appends `value` in postcard to `out`; on error `out` is left as it was.
pub(crate) fn write<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> postcard::Result<()> {
    let mark = out.len();
    postcard::serialize_with_flavor(value, VecFlavor(out)).inspect_err(|_| out.truncate(mark))
}

/// postcard output straight into a borrowed `Vec`.
struct VecFlavor<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for VecFlavor<'_> {
    type Output = ();
    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        super::wire::extend(self.0, data);
        Ok(())
    }
    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }
    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// The results of one `RESULTS` frame, decoded in the parent.
pub(crate) struct Decoded<A: RemoteFn> {
    /// The index of the first item.
    pub(crate) first: usize,
    pub(crate) count: usize,
    /// The results of the items that succeeded, in order.
    pub(crate) values: Vec<A::Out>,
    /// The items that failed: (index, failure), in order.
    pub(crate) failures: Vec<(usize, Failure<A>)>,
}

/// Decodes `count` records for the items from `first` on, run by worker `worker` (its
/// process `pid`, where it is a process).
pub(crate) fn decode_records<A: RemoteFn>(
    mut bytes: &[u8],
    first: usize,
    count: usize,
    (worker, pid): (usize, Option<u32>),
    render: Option<Render<A::In>>,
) -> Decoded<A> {
    let mut decoded = Decoded {
        first,
        count,
        values: Vec::with_capacity(count),
        failures: Vec::new(),
    };
    for index in first..first + count {
        match decode_record::<A>(bytes, index, (worker, pid), render) {
            Ok((Ok(value), rest)) => {
                decoded.values.push(value);
                bytes = rest;
            }
            Ok((Err(failure), rest)) => {
                decoded.failures.push((index, failure));
                bytes = rest;
            }
            Err(err) => {
                // The records after a broken one cannot be found: all of them fail.
                for index in index..first + count {
                    let kind = ErrorKind::Transport(format!(
                        "the worker's result could not be decoded: {err}"
                    ));
                    decoded.failures.push((
                        index,
                        ItemFailure::Worker(
                            WorkerError::new(index, kind)
                                .with_worker(Some(worker))
                                .with_pid(pid),
                        ),
                    ));
                }
                break;
            }
        }
    }
    decoded
}

type Record<'a, A> = (Result<<A as RemoteFn>::Out, Failure<A>>, &'a [u8]);

fn decode_record<A: RemoteFn>(
    bytes: &[u8],
    index: usize,
    (worker, pid): (usize, Option<u32>),
    render: Option<Render<A::In>>,
) -> postcard::Result<Record<'_, A>> {
    let (&tag, bytes) = bytes
        .split_first()
        .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
    if tag == OK {
        let (value, rest) = wire::take_item::<A::Out>(bytes)?;
        return Ok((Ok(value), rest));
    }
    let (len, bytes) = bytes
        .split_first_chunk::<4>()
        .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
    let len = u32::from_le_bytes(*len);
    // The parent's copy of the item would have been put here (`restore_input`); without
    // it, the failure shows no item, as one too large to send back.
    let len = if len == INPUT_KEPT { 0 } else { len as usize };
    if bytes.len() < len {
        return Err(postcard::Error::DeserializeUnexpectedEnd);
    }
    let (input, bytes) = bytes.split_at(len);
    let input = render_input::<A::In>(input, render);
    let worker = Some(worker);
    match tag {
        ERR => {
            let (error, rest) = A::Wire::decode(bytes)?;
            let failure = ItemFailure::Returned {
                index,
                worker,
                pid,
                input,
                error,
                attempts: 1,
            };
            Ok((Err(failure), rest))
        }
        PANIC => {
            let (panic, rest) = postcard::take_from_bytes::<RemotePanic>(bytes)?;
            let err = panic
                .into_worker_error(index)
                .with_worker(worker)
                .with_pid(pid)
                .with_input(input);
            Ok((Err(ItemFailure::Worker(err)), rest))
        }
        INIT_PANIC => {
            let (panic, rest) = postcard::take_from_bytes::<RemotePanic>(bytes)?;
            let err = panic
                .into_init_worker_error(index)
                .with_worker(worker)
                .with_pid(pid)
                .with_input(input);
            Ok((Err(ItemFailure::Worker(err)), rest))
        }
        BROKEN => {
            let (why, rest) = postcard::take_from_bytes::<String>(bytes)?;
            let err = WorkerError::new(index, ErrorKind::Transport(why))
                .with_worker(worker)
                .with_pid(pid)
                .with_input(input);
            Ok((Err(ItemFailure::Worker(err)), rest))
        }
        _ => Err(postcard::Error::DeserializeBadEnum),
    }
}

/// Renders an item from its serialized copy: with `render` (its `Debug` form) when the
/// caller knows one, else in its serde form as RON (which reads like Rust's `Debug`), so
/// that the pools' own methods show the failed item too. `None` only when the copy
/// cannot be read back.
pub(crate) fn render_input<T: CrossProcess>(
    bytes: &[u8],
    render: Option<Render<T>>,
) -> Option<String> {
    let item = postcard::from_bytes::<T>(bytes).ok()?;
    match render {
        Some(render) => Some(render(&item)),
        None => ron::to_string(&item).ok().map(shorten),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u64) -> u64 {
        x * 2
    }

    #[test]
    fn fingerprints_tell_types_apart_and_cost_keys_functions() {
        let plain = Plain::<u64, u64>::new(double);
        let closure = Plain::<u64, u64>::new(|x| x + 1);
        assert_eq!(fingerprint_of(plain), fingerprint_of(closure));
        assert_ne!(cost_key(plain), cost_key(closure));
        let other_types = Plain::<u32, u64>::new(u64::from);
        assert_ne!(fingerprint_of(closure), fingerprint_of(other_types));
        let fallible = Fallible::<u64, u64, String, AsValue<via::Serde>>::new(Ok);
        assert_ne!(fingerprint_of(plain), fingerprint_of(fallible));
    }

    fn fingerprint_of<A: RemoteFn>(_: A) -> u64 {
        fingerprint::<A>()
    }

    fn round_trip<E: CrossProcessError<V>, V: 'static>(error: E) -> E {
        let mut out = Vec::new();
        <AsValue<V> as ErrorWire<E>>::encode(error, &mut out).unwrap();
        let (error, rest) = <AsValue<V> as ErrorWire<E>>::decode(&out).unwrap();
        assert!(rest.is_empty());
        error
    }

    #[test]
    fn io_errors_cross_with_their_kind_message_and_code() {
        let custom = round_trip(io::Error::new(io::ErrorKind::InvalidData, "bad header"));
        assert_eq!(custom.kind(), io::ErrorKind::InvalidData);
        assert_eq!(custom.to_string(), "bad header");
        let os = round_trip(io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(os.kind(), io::ErrorKind::NotFound);
        assert_eq!(os.raw_os_error(), Some(libc::ENOENT));
        assert_eq!(
            os.to_string(),
            io::Error::from_raw_os_error(libc::ENOENT).to_string()
        );
        let simple = round_trip(io::Error::from(io::ErrorKind::QuotaExceeded));
        assert_eq!(simple.kind(), io::ErrorKind::QuotaExceeded);
        assert_eq!(
            simple.to_string(),
            io::Error::from(io::ErrorKind::QuotaExceeded).to_string()
        );
        // Every kind that crosses by name comes back as itself.
        for &kind in IO_KINDS {
            assert_eq!(round_trip(io::Error::new(kind, "x")).kind(), kind);
        }
        // The chain below the error crosses as messages.
        let wrapped = io::Error::other(io::Error::new(io::ErrorKind::NotFound, "inner"));
        let wrapped = round_trip(wrapped);
        assert_eq!(wrapped.to_string(), "inner");
    }

    #[test]
    fn boxed_and_anyhow_errors_cross_as_their_chains_of_messages() {
        let parse = "x".parse::<u8>().unwrap_err();
        let boxed: BoxError = Box::new(io::Error::other(parse.clone()));
        let boxed = round_trip(boxed);
        assert_eq!(boxed.to_string(), "invalid digit found in string");
        let remote = boxed.downcast_ref::<RemoteError>().unwrap();
        assert!(remote.debug_text().contains("InvalidDigit"), "{remote:?}");
        let chained = anyhow::Error::new(parse).context("reading the header");
        let chained = round_trip(chained);
        assert_eq!(
            format!("{chained:#}"),
            "reading the header: invalid digit found in string"
        );
        assert_eq!(chained.chain().count(), 2);
    }

    #[test]
    fn a_broken_record_fails_it_and_every_later_item() {
        type A = Plain<u64, u64>;
        let mut bytes = vec![OK];
        write(&7_u64, &mut bytes).unwrap();
        bytes.push(9); // no such tag
        let decoded = decode_records::<A>(&bytes, 10, 3, (1, None), None);
        assert_eq!(decoded.values, [7]);
        let indices: Vec<usize> = decoded.failures.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, [11, 12]);
        let err = decoded.failures.into_iter().next().unwrap().1;
        let ItemFailure::Worker(err) = err;
        assert!(matches!(err.kind(), ErrorKind::Transport(_)));
        assert_eq!(err.worker(), Some(1));
    }

    #[test]
    fn failed_items_are_rendered_from_their_bytes() {
        type A = Plain<u64, u64>;
        let mut bytes = vec![PANIC];
        let mut input = Vec::new();
        write(&42_u64, &mut input).unwrap();
        bytes.extend_from_slice(&u32::try_from(input.len()).unwrap().to_le_bytes());
        bytes.extend_from_slice(&input);
        // As in a worker process: the panic hook records its backtrace and location.
        let panic = std::thread::spawn(|| {
            panic_capture::mark_worker_thread();
            RemotePanic::new(panic_capture::catch(|| panic!("boom")).unwrap_err())
        })
        .join()
        .unwrap();
        write(&panic, &mut bytes).unwrap();
        let render: Render<u64> = |x| format!("{x:?}");
        let decoded = decode_records::<A>(&bytes, 5, 1, (0, None), Some(render));
        let ItemFailure::Worker(err) = decoded.failures.into_iter().next().unwrap().1;
        assert_eq!(
            err.to_string(),
            "item 5 (input 42) on worker 0 panicked: boom"
        );
        let traceback = err
            .traceback()
            .expect("a worker's panic carries its traceback");
        // File names come from debug info, which the dev profile has and release has not.
        if cfg!(debug_assertions) {
            assert!(traceback.contains("remote.rs"), "{err:?}");
        }
        assert_eq!(
            err.take_panic().unwrap().downcast_ref::<String>().unwrap(),
            "boom"
        );
    }
}
