//! What crosses between a pool and its workers: the [`CrossProcess`] bound, the
//! functions (as zero-sized [`RemoteFn`] adapters with a [`trampoline`] each), and the
//! per-item result records.
//!
//! A `RESULTS` frame holds records, one per item, in item order:
//!
//! | tag | record after the tag |
//! |---|---|
//! | `OK` | the result, postcard |
//! | `ERR` | the item's bytes (u32 length + bytes), then its error as the [`ErrorWire`] writes it |
//! | `PANIC` | the item's bytes, then `(message, Option<backtrace>)`, postcard |
//! | `BROKEN` | the item's bytes, then why it could not cross (`String`), postcard |

use std::any::type_name;
use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::unsafe_code::{EntryOffset, EntryPoint};
use super::wire::{FrameError, FunctionId};
use super::worker::{Job, RunJob, Stop};
use crate::engine::item::ItemFailure;
use crate::engine::render::{Render, shorten};
use crate::error::{BoxError, ErrorKind, WorkerError};
use crate::panic_capture;
use crate::tuple_fn::TupleFn;

/// A type that can cross to a worker process and back: items, results, and the errors of
/// `#[pmap(process)]` functions.
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

/// The error a function in a worker process returned, as
/// [`ProcessPool::try_map`](crate::ProcessPool::try_map) reports it: its text, since the
/// value itself stayed in the worker. It is the [`source`](Error::source) of the
/// [`WorkerError`].
///
/// ```
/// use twat_mp::{ProcessPool, RemoteError};
///
/// fn parse(s: String) -> Result<u8, std::num::ParseIntError> {
///     s.parse()
/// }
///
/// let pool = ProcessPool::with_nodes(1)?;
/// let err = pool.try_map(parse, ["7".to_owned(), "x".to_owned()]).unwrap_err();
/// let remote = std::error::Error::source(&err)
///     .and_then(|source| source.downcast_ref::<RemoteError>())
///     .unwrap();
/// assert_eq!(remote.message(), "invalid digit found in string");
/// # Ok::<(), twat_mp::BuildError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteError {
    message: String,
    debug: String,
}

impl RemoteError {
    /// The error's `Display` text, as the worker rendered it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error's `Debug` text, as the worker rendered it.
    pub fn debug_text(&self) -> &str {
        &self.debug
    }
}

/// Hook for the async pool's process mode (`aio/process.rs`), whose errors cross as their
/// texts too.
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

impl Error for RemoteError {}

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

/// The error crosses as its text: [`RemoteError`] (`try_map`).
pub(crate) enum AsText {}

impl<E: Into<BoxError>> ErrorWire<E> for AsText {
    type Remote = RemoteError;
    fn encode(error: E, out: &mut Vec<u8>) -> postcard::Result<()> {
        let boxed: BoxError = error.into();
        write(&(boxed.to_string(), format!("{boxed:?}")), out)
    }
    fn decode(bytes: &[u8]) -> postcard::Result<(RemoteError, &[u8])> {
        let ((message, debug), rest) = postcard::take_from_bytes::<(String, String)>(bytes)?;
        Ok((RemoteError { message, debug }, rest))
    }
}

/// The error crosses as itself (the attributes: the caller gets its own `E` back).
pub(crate) enum AsValue {}

impl<E: CrossProcess> ErrorWire<E> for AsValue {
    type Remote = E;
    fn encode(error: E, out: &mut Vec<u8>) -> postcard::Result<()> {
        write(&error, out)
    }
    fn decode(bytes: &[u8]) -> postcard::Result<(E, &[u8])> {
        postcard::take_from_bytes::<E>(bytes)
    }
}

/// A function as it runs in a worker: zero-sized, so that naming it is enough to have it.
pub(crate) trait RemoteFn: Copy + Send + Sync + 'static {
    type In: CrossProcess;
    type Out: CrossProcess;
    type Err;
    type Wire: ErrorWire<Self::Err>;
    fn call(self, input: Self::In) -> Result<Self::Out, Self::Err>;
}

/// What the parent gets for a failed item of `A`.
pub(crate) type Failure<A> =
    ItemFailure<<<A as RemoteFn>::Wire as ErrorWire<<A as RemoteFn>::Err>>::Remote>;

/// Fails to compile unless `F` captures nothing.
pub(crate) const fn assert_captures_nothing<F>() {
    const {
        assert!(
            size_of::<F>() == 0,
            "ProcessPool runs only functions that capture nothing: pass a fn item or a closure \
             without captures (not a fn pointer, not a closure that borrows or moves values), \
             and send the data as items instead"
        )
    };
}

macro_rules! adapter {
    ($(#[$doc:meta])* $name:ident<$($param:ident),*>) => {
        $(#[$doc])*
        pub(crate) struct $name<F, $($param),*>(F, PhantomData<fn($($param),*)>);

        impl<F: Copy, $($param),*> Clone for $name<F, $($param),*> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<F: Copy, $($param),*> Copy for $name<F, $($param),*> {}

        impl<F, $($param),*> $name<F, $($param),*> {
            pub(crate) const fn new(f: F) -> Self {
                assert_captures_nothing::<F>();
                $name(f, PhantomData)
            }
        }
    };
}

adapter! {
    /// `map`: `Fn(T) -> R`.
    Plain<T, R>
}
adapter! {
    /// `try_map` and the `Result` attributes: `Fn(T) -> Result<R, E>`, the error crossing
    /// as `W` says.
    Fallible<T, R, E, W>
}
adapter! {
    /// `starmap`: a function of several arguments, called with a tuple.
    Starred<Args>
}

impl<F, T, R> RemoteFn for Plain<F, T, R>
where
    F: Fn(T) -> R + Copy + Send + Sync + 'static,
    T: CrossProcess,
    R: CrossProcess,
{
    type In = T;
    type Out = R;
    type Err = Infallible;
    type Wire = NoError;
    fn call(self, input: T) -> Result<R, Infallible> {
        Ok((self.0)(input))
    }
}

impl<F, T, R, E, W> RemoteFn for Fallible<F, T, R, E, W>
where
    F: Fn(T) -> Result<R, E> + Copy + Send + Sync + 'static,
    T: CrossProcess,
    R: CrossProcess,
    E: 'static,
    W: ErrorWire<E>,
{
    type In = T;
    type Out = R;
    type Err = E;
    type Wire = W;
    fn call(self, input: T) -> Result<R, E> {
        (self.0)(input)
    }
}

impl<F, Args> RemoteFn for Starred<F, Args>
where
    F: TupleFn<Args> + Copy + Send + Sync + 'static,
    F::Output: CrossProcess,
    Args: CrossProcess,
{
    type In = Args;
    type Out = F::Output;
    type Err = Infallible;
    type Wire = NoError;
    fn call(self, input: Args) -> Result<F::Output, Infallible> {
        Ok(self.0.call_tuple(input))
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
    fn run(self, job: &mut Job<'_>) -> Result<(), Stop> {
        trampoline(self, job)
    }
}

/// A hash of what `A` is: its full type name (function, item, result and error types)
/// and the sizes of its item and result.
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

pub(crate) const OK: u8 = 0;
pub(crate) const ERR: u8 = 1;
pub(crate) const PANIC: u8 = 2;
pub(crate) const BROKEN: u8 = 3;

/// Runs the items of one job with `f`, in the worker: what the job's entry point runs.
pub(crate) fn trampoline<A: RemoteFn>(f: A, job: &mut Job<'_>) -> Result<(), Stop> {
    let Job {
        header,
        payload,
        sink,
    } = job;
    if header.fingerprint != fingerprint::<A>() {
        return Err(FrameError::TypeMismatch.into());
    }
    let mut rest = *payload;
    for done in 0..header.count {
        let (item, after) = match postcard::take_from_bytes::<A::In>(rest) {
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
        match panic_capture::catch(|| f.call(item)) {
            Ok(Ok(value)) => sink.record_ok(&value)?,
            Ok(Err(error)) => {
                sink.record_failure(ERR, input, |out| A::Wire::encode(error, out))?;
            }
            Err(caught) => {
                let message = crate::error::panic_message(caught.payload.as_ref());
                let backtrace = caught.backtrace.map(|b| b.to_string());
                sink.record_failure(PANIC, input, |out| write(&(message, backtrace), out))?;
            }
        }
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
        self.0.extend_from_slice(data);
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

/// Decodes `count` records for the items from `first` on, run by worker `worker`.
pub(crate) fn decode_records<A: RemoteFn>(
    mut bytes: &[u8],
    first: usize,
    count: usize,
    worker: usize,
    render: Option<Render<A::In>>,
) -> Decoded<A> {
    let mut decoded = Decoded {
        first,
        count,
        values: Vec::with_capacity(count),
        failures: Vec::new(),
    };
    for index in first..first + count {
        match decode_record::<A>(bytes, index, worker, render) {
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
                            WorkerError::new(index, kind).with_worker(Some(worker)),
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
    worker: usize,
    render: Option<Render<A::In>>,
) -> postcard::Result<Record<'_, A>> {
    let (&tag, bytes) = bytes
        .split_first()
        .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
    if tag == OK {
        let (value, rest) = postcard::take_from_bytes::<A::Out>(bytes)?;
        return Ok((Ok(value), rest));
    }
    let (len, bytes) = bytes
        .split_first_chunk::<4>()
        .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
    let len = u32::from_le_bytes(*len) as usize;
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
                input,
                error,
            };
            Ok((Err(failure), rest))
        }
        PANIC => {
            let ((message, backtrace), rest) =
                postcard::take_from_bytes::<(String, Option<String>)>(bytes)?;
            let err = WorkerError::from_panic(index, Box::new(message), None)
                .with_traceback_text(backtrace)
                .with_worker(worker)
                .with_input(input);
            Ok((Err(ItemFailure::Worker(err)), rest))
        }
        BROKEN => {
            let (why, rest) = postcard::take_from_bytes::<String>(bytes)?;
            let err = WorkerError::new(index, ErrorKind::Transport(why))
                .with_worker(worker)
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
    fn adapters_are_zero_sized_and_have_distinct_fingerprints() {
        let plain = Plain::<_, u64, u64>::new(double);
        assert_eq!(size_of_val(&plain), 0);
        let closure = Plain::<_, u64, u64>::new(|x: u64| x + 1);
        assert_ne!(fingerprint_of(plain), fingerprint_of(closure));
        let other_types = Plain::<_, u32, u64>::new(|x: u32| u64::from(x));
        assert_ne!(fingerprint_of(closure), fingerprint_of(other_types));
    }

    fn fingerprint_of<A: RemoteFn>(_: A) -> u64 {
        fingerprint::<A>()
    }

    #[test]
    fn remote_errors_keep_their_texts() {
        let mut out = Vec::new();
        <AsText as ErrorWire<std::io::Error>>::encode(
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            &mut out,
        )
        .unwrap();
        let (remote, rest) = <AsText as ErrorWire<std::io::Error>>::decode(&out).unwrap();
        assert!(rest.is_empty());
        assert_eq!(remote.to_string(), "no such file");
        assert!(remote.debug_text().contains("NotFound"), "{remote:?}");
    }

    #[test]
    fn a_broken_record_fails_it_and_every_later_item() {
        type A = Plain<fn(u64) -> u64, u64, u64>;
        let mut bytes = vec![OK];
        write(&7_u64, &mut bytes).unwrap();
        bytes.push(9); // no such tag
        let decoded = decode_records::<A>(&bytes, 10, 3, 1, None);
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
        type A = Plain<fn(u64) -> u64, u64, u64>;
        let mut bytes = vec![PANIC];
        let mut input = Vec::new();
        write(&42_u64, &mut input).unwrap();
        bytes.extend_from_slice(&u32::try_from(input.len()).unwrap().to_le_bytes());
        bytes.extend_from_slice(&input);
        write(
            &("boom".to_owned(), Some("at line 1".to_owned())),
            &mut bytes,
        )
        .unwrap();
        let render: Render<u64> = |x| format!("{x:?}");
        let decoded = decode_records::<A>(&bytes, 5, 1, 0, Some(render));
        let ItemFailure::Worker(err) = decoded.failures.into_iter().next().unwrap().1;
        assert_eq!(
            err.to_string(),
            "item 5 (input 42) on worker 0 panicked: boom"
        );
        assert_eq!(err.traceback(), Some("at line 1"));
        assert_eq!(
            err.take_panic().unwrap().downcast_ref::<String>().unwrap(),
            "boom"
        );
    }
}
