//! The frames between a pool and its worker processes, and the checks that make a worker
//! refuse what it does not understand.
//!
//! Every frame is `[u32 LE: length of the body][body]`, the body starting with its kind:
//!
//! | kind | from | body after the kind byte |
//! |---|---|---|
//! | `HELLO` | parent | magic, version, executable identity, the pool's key, then `0`, or `1` and the initializer's entry point offset, function offset and tag |
//! | `JOB` | parent | entry point offset, function offset, type fingerprint, flags, item count, state id, tag, items |
//! | `SETUP` | parent | as `JOB`, for the entry point that makes the per-call state `state id` (`map_init`, `map_with`); its payload is the shared value, if any; no answer |
//! | `FORGET` | parent | state ids (u64 each) of calls that ended: the worker drops their states; no answer |
//! | `READY` | worker | magic, version, executable identity, pid |
//! | `RESULTS` | worker | record count, records (see `remote`), and with the `TIMED` flag each item's nanoseconds (`u64` LE) |
//! | `DONE` | worker | — (the job's last frame) |
//! | `REFUSED` | worker | fatal flag, the reason in words |
//! | `DYING` | worker | why it is about to die, in words (a stack overflow), sent by its fault handler |
//! | `INITIALIZED` | worker | — (after `READY`, once the pool's initializer returned; only when `HELLO` named one) |
//! | `INIT_FAILED` | worker | how the initializer failed, in words ("panicked at …: …"); the worker then exits |
//!
//! The initializer crosses as a job's function does (below), under a tag of its own
//! signature, so that neither can pass for the other.
//!
//! A job names its function by two distances from an anchor function: to the entry point
//! for the function's types, and to the user's function itself (an
//! `unsafe_code::EntryOffset`). The worker honours them only under three checks: the
//! `HELLO` handshake showed that parent and worker run the same code layout; the job's
//! `tag`, a keyed hash of both offsets and every other header field with the key that
//! only the parent and this worker know, matches (so only offsets the parent itself
//! computed, paired as it paired them, are ever used); and both targets lie inside the
//! executable's code.
//! The last two are `unsafe_code::Resolved::resolve`, which this module calls with the
//! frame's fields. The function then checks the type fingerprint before it decodes
//! anything. A frame failing any check is refused with a [`FrameError`] that the parent
//! turns into a clear [`ErrorKind::Transport`](crate::ErrorKind).

use std::any::{Any, TypeId};
use std::cell::Cell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::sync::OnceLock;

pub(crate) use super::unsafe_code::Key;
use super::unsafe_code::{
    EntryError, EntryOffset, Resolved, Signature, anchor_address, code_range,
};

pub(crate) const MAGIC: [u8; 4] = *b"TWMP";
pub(crate) const VERSION: u16 = 6;
/// The most bytes one item or one result may take once serialized
/// ([`ProcessPool::MAX_ITEM_BYTES`](crate::ProcessPool::MAX_ITEM_BYTES)): its encoding
/// stops there, before anything is sent, and that item alone fails.
pub(crate) const MAX_ITEM: usize = 1 << 30;
/// Slack in a frame beyond its largest item or record: the small ones before it (a batch
/// is closed, and results are flushed, once they take 1 MiB), record tags, the headers.
const FRAME_SLACK: usize = 8 << 20;
/// Frames larger than this are refused: a garbage length must not allocate gigabytes. No
/// frame a pool or worker makes is larger.
pub(crate) const MAX_FRAME: usize = MAX_ITEM + FRAME_SLACK;

pub(crate) const HELLO: u8 = 1;
pub(crate) const JOB: u8 = 2;
pub(crate) const SETUP: u8 = 3;
pub(crate) const FORGET: u8 = 4;
pub(crate) const READY: u8 = 11;
pub(crate) const RESULTS: u8 = 12;
pub(crate) const DONE: u8 = 13;
pub(crate) const REFUSED: u8 = 14;
pub(crate) const DYING: u8 = 15;
pub(crate) const INITIALIZED: u8 = 16;
pub(crate) const INIT_FAILED: u8 = 17;

/// `JOB` flag: send each result as soon as it is ready (per-item timeouts, crash search).
pub(crate) const FLUSH_EACH: u8 = 1;
/// `JOB` flag: time each item (insights); each `RESULTS` frame then ends with one `u64`
/// LE per record, the nanoseconds its item took, after the records.
pub(crate) const TIMED: u8 = 2;

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    Truncated {
        needed: usize,
        got: usize,
    },
    TooLarge(usize),
    UnexpectedKind {
        expected: &'static str,
        got: u8,
    },
    BadMagic,
    Version {
        ours: u16,
        theirs: u16,
    },
    OtherExecutable,
    UnknownFunction,
    OutsideImage,
    NoImage,
    TypeMismatch,
    Count {
        header: u32,
        found: u32,
    },
    /// The stream ended inside a frame of `len` bytes (`None`: inside its length).
    EndedInside {
        len: Option<usize>,
    },
}

impl From<EntryError> for FrameError {
    fn from(err: EntryError) -> Self {
        match err {
            EntryError::Forged => FrameError::UnknownFunction,
            EntryError::OutsideImage => FrameError::OutsideImage,
            EntryError::NoImage => FrameError::NoImage,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated { needed, got } => write!(
                f,
                "malformed frame: truncated ({got} bytes where at least {needed} are needed)"
            ),
            FrameError::TooLarge(len) => write!(
                f,
                "malformed frame: a length of {len} bytes is over the {MAX_FRAME}-byte limit"
            ),
            FrameError::UnexpectedKind { expected, got } => {
                write!(
                    f,
                    "malformed frame: expected a {expected} frame, got kind {got}"
                )
            }
            FrameError::BadMagic => f.write_str("malformed frame: not a twat-mp frame"),
            FrameError::Version { ours, theirs } => write!(
                f,
                "protocol version mismatch: this side speaks {ours}, the other side {theirs}"
            ),
            FrameError::OtherExecutable => f.write_str(
                "the worker runs a different executable than the pool (was it rebuilt?)",
            ),
            FrameError::UnknownFunction => f.write_str(
                "unknown function: the job's tag does not match any function this pool sent",
            ),
            FrameError::OutsideImage => f.write_str(
                "unknown function: its address is outside the executable's code (a function \
                 of a shared library, or twat-mp linked as one? a worker process can run only \
                 functions linked into the executable itself)",
            ),
            FrameError::NoImage => f.write_str(
                "cannot locate the executable's code in /proc/self/maps, so functions cannot \
                 be named across processes",
            ),
            FrameError::TypeMismatch => f.write_str(
                "type mismatch: the worker's function has other item or result types than \
                 the job says",
            ),
            FrameError::Count { header, found } => write!(
                f,
                "malformed frame: the header announces {header} items but {found} were found"
            ),
            FrameError::EndedInside { len: Some(len) } => write!(
                f,
                "malformed frame: truncated (the stream ended inside a frame of {len} bytes)"
            ),
            FrameError::EndedInside { len: None } => {
                f.write_str("malformed frame: truncated (the stream ended inside a frame's length)")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Why a value could not be written for a frame.
#[derive(Debug)]
pub(crate) enum Unencodable {
    /// It takes more than [`MAX_ITEM`] bytes serialized (its encoding stopped there).
    TooLarge,
    /// Its `Serialize` implementation failed.
    Failed(postcard::Error),
}

impl Unencodable {
    /// Why `what` ("the item", "the result") cannot cross, in words.
    pub(crate) fn describe(&self, what: &str) -> String {
        match self {
            Unencodable::TooLarge => format!(
                "{what} takes more than 1 GiB serialized, the limit for one item or result \
                 of a process pool (`ProcessPool::MAX_ITEM_BYTES`); send smaller pieces, or \
                 where to find the data"
            ),
            Unencodable::Failed(err) => format!("{what} could not be serialized: {err}"),
        }
    }
}

/// Appends `value` in postcard to `out`, unless it takes more than [`MAX_ITEM`] bytes:
/// then the encoding stops as soon as it passes the limit. On error `out` is left as it
/// was (and gives back the memory a too large value took).
pub(crate) fn write_bounded<T: serde::Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), Unencodable> {
    write_limited(value, out, None)
}

/// [`write_bounded`]; with `large`, it stops at the first piece of [`LARGE`] bytes or
/// more instead, sets `large` and leaves `out` as it was (an `Ok`).
#[inline]
fn write_limited<T: serde::Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
    mut large: Option<&mut bool>,
) -> Result<(), Unencodable> {
    let mark = out.len();
    let bounded = Bounded {
        out,
        end: mark + MAX_ITEM,
        large: large.as_deref_mut(),
    };
    match postcard::serialize_with_flavor(value, bounded) {
        Ok(()) => Ok(()),
        Err(_) if large.is_some_and(|large| *large) => {
            out.truncate(mark);
            Ok(())
        }
        Err(err) => {
            out.truncate(mark);
            // Only `Bounded` reports a full buffer (a `Serialize` impl's own errors are
            // `SerdeSerCustom`).
            if err == postcard::Error::SerializeBufferFull {
                out.shrink_to(mark.max(1 << 16));
                Err(Unencodable::TooLarge)
            } else {
                Err(Unencodable::Failed(err))
            }
        }
    }
}

/// [`write_bounded`] for an item or a result: the same bytes, but a `Vec<u8>` (the usual
/// type of a large one) is written as postcard writes it (its length as a varint, then
/// its bytes) in one copy, where serde would take one call per byte (a 64 MiB item
/// crossed at 184 MB/s each way).
#[inline]
pub(crate) fn write_item<T: serde::Serialize + 'static>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), Unencodable> {
    if let Some(number) = as_varint(value) {
        push_varint(out, number);
        return Ok(());
    }
    // Decided when `T` is known: no cost for other types.
    let bytes = if TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
        (value as &dyn Any).downcast_ref::<Vec<u8>>()
    } else {
        None
    };
    if let Some(bytes) = bytes {
        let mut len = [0_u8; 10];
        let len = varint(bytes.len() as u64, &mut len);
        // Past the bound, the general path says why as it always does.
        if len.len() + bytes.len() <= MAX_ITEM {
            extend(out, len);
            out.extend_from_slice(bytes);
            return Ok(());
        }
    }
    write_bounded(value, out)
}

/// `postcard::take_from_bytes` for an item or a result: a `Vec<u8>` is read in one copy
/// (see [`write_item`]); whatever that fast path cannot read, postcard reads (or says
/// why it cannot).
#[inline]
pub(crate) fn take_item<T: serde::de::DeserializeOwned + 'static>(
    bytes: &[u8],
) -> postcard::Result<(T, &[u8])> {
    if let Some(taken) = take_integer(bytes) {
        return Ok(taken);
    }
    if TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
        let taken = take_varint(bytes).and_then(|(len, rest)| {
            let len = usize::try_from(len).ok()?;
            (rest.len() >= len).then(|| rest.split_at(len))
        });
        if let Some((data, rest)) = taken {
            let value: Box<dyn Any> = Box::new(data.to_vec());
            if let Ok(value) = value.downcast::<T>() {
                return Ok((*value, rest));
            }
        }
    }
    postcard::take_from_bytes(bytes)
}

/// The varint postcard writes for `value` when it is an integer of 32 or 64 bits (signed
/// ones zigzagged first): [`write_item`] writes it directly, where serde's path through
/// postcard cost a third of a trivial item's time on each side.
#[inline]
fn as_varint<T: 'static>(value: &T) -> Option<u64> {
    let value = value as &dyn Any;
    let id = TypeId::of::<T>();
    if id == TypeId::of::<u64>() {
        value.downcast_ref::<u64>().copied()
    } else if id == TypeId::of::<usize>() {
        value.downcast_ref::<usize>().map(|&v| v as u64)
    } else if id == TypeId::of::<u32>() {
        value.downcast_ref::<u32>().map(|&v| u64::from(v))
    } else if id == TypeId::of::<i64>() {
        value
            .downcast_ref::<i64>()
            .map(|&v| ((v << 1) ^ (v >> 63)) as u64)
    } else if id == TypeId::of::<i32>() {
        value
            .downcast_ref::<i32>()
            .map(|&v| u64::from(((v << 1) ^ (v >> 31)) as u32))
    } else {
        None
    }
}

/// The integer of type `T` (see [`as_varint`]) at the start of `bytes`, and the bytes
/// after it; `None` for other types, and for what postcard should judge (a malformed or
/// out-of-range varint), so that its error is the one reported.
#[inline]
fn take_integer<T: 'static>(bytes: &[u8]) -> Option<(T, &[u8])> {
    let id = TypeId::of::<T>();
    let mut value: Option<T> = None;
    let slot = &mut value as &mut dyn Any;
    let rest = if id == TypeId::of::<u64>() {
        let (v, rest) = take_varint(bytes)?;
        *slot.downcast_mut::<Option<u64>>()? = Some(v);
        rest
    } else if id == TypeId::of::<usize>() {
        let (v, rest) = take_varint(bytes)?;
        *slot.downcast_mut::<Option<usize>>()? = Some(usize::try_from(v).ok()?);
        rest
    } else if id == TypeId::of::<u32>() {
        let (v, rest) = take_varint(bytes)?;
        *slot.downcast_mut::<Option<u32>>()? = Some(u32::try_from(v).ok()?);
        rest
    } else if id == TypeId::of::<i64>() {
        let (v, rest) = take_varint(bytes)?;
        *slot.downcast_mut::<Option<i64>>()? = Some((v >> 1) as i64 ^ -((v & 1) as i64));
        rest
    } else if id == TypeId::of::<i32>() {
        let (v, rest) = take_varint(bytes)?;
        let v = u32::try_from(v).ok()?;
        *slot.downcast_mut::<Option<i32>>()? = Some((v >> 1) as i32 ^ -((v & 1) as i32));
        rest
    } else {
        return None;
    };
    Some((value?, rest))
}

/// From this many bytes on, a byte string in an item or a result is not copied through a
/// frame buffer on its way: a fresh buffer of that size costs its page faults, more than
/// the copy itself (a 64 MiB item crossed at 400 MB/s each way with three such buffers a
/// side). Below it, copying is cheaper than the extra system calls.
pub(crate) const LARGE: usize = 1 << 20;

/// The `Vec<u8>` that `value` is, if it is one.
fn as_byte_vec<T: 'static>(value: &T) -> Option<&Vec<u8>> {
    if TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
        (value as &dyn Any).downcast_ref::<Vec<u8>>()
    } else {
        None
    }
}

/// [`write_item`] for an item the caller gives away, into an empty `out`: a large byte
/// string that owns its buffer (a `Vec<u8>`, a `serde_bytes::ByteBuf`, a `bytes::Bytes`)
/// becomes `out` itself, its bytes moved up in place by the few bytes of its length
/// (growing a large block remaps its pages, so no fresh memory is touched and nothing is
/// copied twice). postcard writes the three alike (length varint, then the bytes), so the
/// wire is the same. A `Bytes` that shares its buffer is copied out first, as serde would
/// copy it. Anything else is written as [`write_item`] writes it.
pub(crate) fn write_item_owned<T: serde::Serialize + 'static>(
    value: T,
    out: &mut Vec<u8>,
) -> Result<(), Unencodable> {
    let large = out.is_empty()
        && owned_byte_len(&value).is_some_and(|len| len >= LARGE && len + 10 <= MAX_ITEM);
    if !large {
        return write_item(&value, out);
    }
    match into_byte_vec(value) {
        Ok(mut bytes) => {
            let mut prefix = [0_u8; 10];
            let prefix = varint(bytes.len() as u64, &mut prefix);
            let len = bytes.len();
            bytes.reserve_exact(prefix.len());
            bytes.resize(len + prefix.len(), 0);
            bytes.copy_within(..len, prefix.len());
            bytes[..prefix.len()].copy_from_slice(prefix);
            *out = bytes;
            Ok(())
        }
        Err(value) => write_item(&value, out),
    }
}

/// The length of `value` when it is a byte string that [`into_byte_vec`] turns into a
/// `Vec<u8>`.
fn owned_byte_len<T: 'static>(value: &T) -> Option<usize> {
    let value = value as &dyn Any;
    let id = TypeId::of::<T>();
    if id == TypeId::of::<Vec<u8>>() {
        value.downcast_ref::<Vec<u8>>().map(Vec::len)
    } else if id == TypeId::of::<serde_bytes::ByteBuf>() {
        value
            .downcast_ref::<serde_bytes::ByteBuf>()
            .map(|b| b.len())
    } else if id == TypeId::of::<bytes::Bytes>() {
        value.downcast_ref::<bytes::Bytes>().map(bytes::Bytes::len)
    } else {
        None
    }
}

/// `value` as the `Vec<u8>` of its bytes when it is a `Vec<u8>`, a `ByteBuf` (its own
/// buffer) or a `Bytes` (its own buffer when it is the only handle to it, its bytes
/// moved down in place if it was sliced; otherwise a copy); `value` back otherwise.
fn into_byte_vec<T: 'static>(value: T) -> Result<Vec<u8>, T> {
    let mut slot = Some(value);
    let id = TypeId::of::<T>();
    let bytes = if id == TypeId::of::<Vec<u8>>() {
        taken::<T, Vec<u8>>(&mut slot)
    } else if id == TypeId::of::<serde_bytes::ByteBuf>() {
        taken::<T, serde_bytes::ByteBuf>(&mut slot).map(serde_bytes::ByteBuf::into_vec)
    } else if id == TypeId::of::<bytes::Bytes>() {
        taken::<T, bytes::Bytes>(&mut slot).map(Vec::from)
    } else {
        None
    };
    match (bytes, slot) {
        (Some(bytes), _) => Ok(bytes),
        (None, Some(value)) => Err(value),
        (None, None) => unreachable!("a value is only taken as the type it is"),
    }
}

/// The value in `slot`, taken, when `T` is `U`.
fn taken<T: 'static, U: 'static>(slot: &mut Option<T>) -> Option<U> {
    (slot as &mut dyn Any)
        .downcast_mut::<Option<U>>()
        .and_then(Option::take)
}

/// The buffer of a large result the worker has sent, for the worker's next frame to be
/// read into (`recycled`, empty): a `Vec<u8>`, `ByteBuf` or `Bytes` of at least [`LARGE`]
/// bytes that owns its buffer alone. That buffer's pages are mapped already, where a fresh
/// one of the same size costs a page fault per 4 KiB page. `value` is dropped otherwise.
pub(crate) fn recycle<T: 'static>(value: T, recycled: &mut Vec<u8>) {
    let alone = match (&value as &dyn Any).downcast_ref::<bytes::Bytes>() {
        Some(shared) => shared.is_unique(),
        None => true,
    };
    let large = owned_byte_len(&value).is_some_and(|len| len >= LARGE);
    if !(alone && large && recycled.capacity() == 0) {
        return;
    }
    if let Ok(mut bytes) = into_byte_vec(value) {
        bytes.clear();
        *recycled = bytes;
    }
}

/// [`write_item`], unless `value` holds a large byte string (a piece of [`LARGE`] bytes or
/// more): then `Ok(false)`, `out` as it was, and the caller sends it with
/// [`stream_item`], which writes that piece from the value itself.
#[inline]
pub(crate) fn write_item_unless_large<T: serde::Serialize + 'static>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<bool, Unencodable> {
    if let Some(bytes) = as_byte_vec(value) {
        if bytes.len() >= LARGE && bytes.len() + 10 <= MAX_ITEM {
            return Ok(false);
        }
        return write_item(value, out).map(|()| true);
    }
    if as_varint(value).is_some() {
        return write_item(value, out).map(|()| true);
    }
    let mut large = false;
    write_limited(value, out, Some(&mut large))?;
    Ok(!large)
}

/// How many bytes [`write_item`] would write for `value` (nothing is written).
pub(crate) fn encoded_size<T: serde::Serialize + 'static>(value: &T) -> Result<usize, Unencodable> {
    if let Some(bytes) = as_byte_vec(value) {
        return Ok(varint(bytes.len() as u64, &mut [0; 10]).len() + bytes.len());
    }
    postcard::serialize_with_flavor(value, Counted(0)).map_err(Unencodable::Failed)
}

/// Writes `value`, which [`encoded_size`] measured at `size` bytes, after what `out`
/// holds: small pieces are appended to `out`, a large one is written to `writer` straight
/// from the value (after what `out` held, which is then cleared). What is left in `out`
/// at the end is for the caller to write. A value that serializes to another length than
/// it measured (a `Serialize` that is not deterministic) is an `InvalidData` error: the
/// frame's length was already sent.
pub(crate) fn stream_item<T: serde::Serialize + 'static>(
    value: &T,
    size: usize,
    out: &mut Vec<u8>,
    writer: &mut dyn Write,
) -> io::Result<()> {
    if let Some(bytes) = as_byte_vec(value) {
        extend(out, varint(bytes.len() as u64, &mut [0; 10]));
        writer.write_all(out)?;
        out.clear();
        return writer.write_all(bytes);
    }
    let mut failed = None;
    let streamed = Streamed {
        out,
        writer,
        left: size,
        failed: &mut failed,
    };
    let result = postcard::serialize_with_flavor(value, streamed);
    match (failed, result) {
        (Some(err), _) => Err(err),
        (None, Ok(0)) => Ok(()),
        (None, _) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the value serialized to another length than it measured",
        )),
    }
}

/// postcard output that only counts its bytes.
struct Counted(usize);

impl postcard::ser_flavors::Flavor for Counted {
    type Output = usize;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0 += data.len();
        Ok(())
    }

    fn try_push(&mut self, _: u8) -> postcard::Result<()> {
        self.0 += 1;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.0)
    }
}

/// postcard output of [`stream_item`]: its `Output` is how many of the measured bytes it
/// did not get.
struct Streamed<'a> {
    out: &'a mut Vec<u8>,
    writer: &'a mut dyn Write,
    left: usize,
    failed: &'a mut Option<io::Error>,
}

impl Streamed<'_> {
    fn take(&mut self, n: usize) -> postcard::Result<()> {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                *self.failed = Some(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the value serialized to more bytes than it measured",
                ));
                Err(postcard::Error::SerializeBufferFull)
            }
        }
    }
}

impl postcard::ser_flavors::Flavor for Streamed<'_> {
    type Output = usize;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.take(data.len())?;
        if data.len() < LARGE {
            extend(self.out, data);
            return Ok(());
        }
        let written = self
            .writer
            .write_all(self.out)
            .and_then(|()| self.writer.write_all(data));
        self.out.clear();
        written.map_err(|err| {
            *self.failed = Some(err);
            postcard::Error::SerializeBufferFull
        })
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.take(1)?;
        self.out.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.left)
    }
}

/// The value that ends `body` from `at` on, when it is a large byte string (of [`LARGE`]
/// bytes or more) of a type that takes its bytes as one buffer: a `Vec<u8>`, or a type
/// that asks serde for a byte buffer (`serde_bytes::ByteBuf`, `bytes::Bytes`, newtypes
/// of them). It is taken out of `body` in place, its bytes moved down by the few before
/// them, instead of copied into fresh memory (whose page faults cost more than the
/// copy). `None`, with `body` untouched, for anything else: the caller decodes it as
/// usual.
pub(crate) fn take_large<T: serde::de::DeserializeOwned + 'static>(
    body: &mut Vec<u8>,
    at: usize,
) -> Option<postcard::Result<T>> {
    let (len, rest) = take_varint(body.get(at..)?)?;
    if len < LARGE as u64 || rest.len() as u64 != len {
        return None;
    }
    let start = body.len() - rest.len();
    if TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
        let mut value = Some(moved_down(body, start));
        return (&mut value as &mut dyn Any)
            .downcast_mut::<Option<T>>()
            .and_then(Option::take)
            .map(Ok);
    }
    let mut taker = Taker {
        body,
        start,
        taken: false,
    };
    match T::deserialize(&mut taker) {
        Ok(value) => Some(Ok(value)),
        Err(_) if !taker.taken => None,
        Err(err) => Some(Err(err)),
    }
}

/// An item that the caller owns the bytes of (all of `bytes`, postcard, as
/// [`write_item`] writes it): a large byte string is taken out of `bytes` in place
/// ([`take_large`]), anything else read from it ([`take_item`]; bytes after the item are
/// ignored, as `postcard::from_bytes` ignores them). What an async process pool's session
/// does with each item.
#[cfg_attr(not(feature = "aio"), allow(dead_code))]
pub(crate) fn take_owned_item<T: serde::de::DeserializeOwned + 'static>(
    bytes: &mut Vec<u8>,
) -> postcard::Result<T> {
    match take_large(bytes, 0) {
        Some(taken) => taken,
        None => take_item(bytes).map(|(value, _)| value),
    }
}

/// `body` from `start` on, in `body`'s own memory (`body` is left empty).
pub(crate) fn moved_down(body: &mut Vec<u8>, start: usize) -> Vec<u8> {
    let mut bytes = std::mem::take(body);
    bytes.copy_within(start.., 0);
    bytes.truncate(bytes.len() - start);
    bytes
}

/// A deserializer that has one thing to give: the byte buffer `body[start..]`, owned.
struct Taker<'a> {
    body: &'a mut Vec<u8>,
    start: usize,
    /// Whether it gave it (`body` is then empty).
    taken: bool,
}

impl<'de> serde::Deserializer<'de> for &mut Taker<'_> {
    type Error = postcard::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> postcard::Result<V::Value> {
        Err(postcard::Error::WontImplement)
    }

    fn deserialize_byte_buf<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> postcard::Result<V::Value> {
        self.taken = true;
        visitor.visit_byte_buf(moved_down(self.body, self.start))
    }

    fn deserialize_bytes<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> postcard::Result<V::Value> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> postcard::Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn is_human_readable(&self) -> bool {
        false
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string option unit
        unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// `value` as postcard's varint (LEB128) into `buf`: the bytes used.
#[inline]
fn varint(mut value: u64, buf: &mut [u8; 10]) -> &[u8] {
    let mut used = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf[used] = byte;
            return &buf[..=used];
        }
        buf[used] = byte | 0x80;
        used += 1;
    }
}

/// Appends `value` as postcard's varint, byte by byte (see [`extend`]).
#[inline]
fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A varint at the start of `bytes` and the bytes after it; `None` if it is malformed.
#[inline]
fn take_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0_u64;
    for (at, &byte) in bytes.iter().enumerate().take(10) {
        if at == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * at);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[at + 1..]));
        }
    }
    None
}

/// Appends `data` to `out`: what postcard's output flavors do with each piece of a value.
/// A short piece (a varint: every integer, length and enum tag) is copied byte by byte;
/// `extend_from_slice` would call `memcpy` for it, which cost as much as encoding the
/// number (≈10% of a trivial item's time on each side).
#[inline]
pub(crate) fn extend(out: &mut Vec<u8>, data: &[u8]) {
    if data.len() <= 16 {
        out.reserve(data.len());
        for &byte in data {
            out.push(byte);
        }
    } else {
        out.extend_from_slice(data);
    }
}

/// postcard output into a borrowed `Vec`, refused past `end`; with `large`, refused at
/// the first piece of [`LARGE`] bytes or more, which sets it.
struct Bounded<'a> {
    out: &'a mut Vec<u8>,
    end: usize,
    large: Option<&'a mut bool>,
}

impl postcard::ser_flavors::Flavor for Bounded<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if self.out.len() + data.len() > self.end {
            return Err(postcard::Error::SerializeBufferFull);
        }
        if data.len() >= LARGE {
            if let Some(large) = self.large.as_deref_mut() {
                *large = true;
                return Err(postcard::Error::SerializeBufferFull);
            }
        }
        extend(self.out, data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        if self.out.len() >= self.end {
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.out.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Whether `buffered` (bytes read ahead from a stream) begins with a whole frame, so that
/// [`read_frame`] on that stream returns it without waiting.
pub(crate) fn frame_at_hand(buffered: &[u8]) -> bool {
    match buffered.get(..4) {
        Some(len) => {
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            buffered.len() - 4 >= len
        }
        None => false,
    }
}

/// Reads one frame body into `body`. `Ok(false)` at a clean end of stream (no byte of a
/// new frame); a stream that ends inside a frame is an `UnexpectedEof` error.
pub(crate) fn read_frame(reader: &mut impl Read, body: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0_u8; 4];
    let mut got = 0;
    while got < 4 {
        match reader.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(ended_inside(None)),
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameError::TooLarge(len),
        ));
    }
    if len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameError::Truncated { needed: 1, got: 0 },
        ));
    }
    body.clear();
    if len <= 1 << 20 {
        body.resize(len, 0);
        reader.read_exact(body).map_err(|err| match err.kind() {
            io::ErrorKind::UnexpectedEof => ended_inside(Some(len)),
            _ => err,
        })?;
    } else {
        // A large frame (a shared value of `map_with`): read into reserved memory
        // rather than zeroing it first, one pass over it fewer.
        body.reserve_exact(len);
        let got = reader.take(len as u64).read_to_end(body)?;
        if got < len {
            return Err(ended_inside(Some(len)));
        }
    }
    Ok(true)
}

/// A stream that ended inside a frame: still an `UnexpectedEof` (a worker whose parent
/// went away mid-frame is gone), with words that say so where it is reported.
fn ended_inside(len: Option<usize>) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        FrameError::EndedInside { len },
    )
}

/// Starts a frame in `out`: room for the length, then the kind. [`end_frame`] fills in the
/// length.
pub(crate) fn begin_frame(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    start
}

/// Writes the length of the frame begun at `start`.
pub(crate) fn end_frame(out: &mut [u8], start: usize) {
    let len = u32::try_from(out.len() - start - 4).expect("frames stay under 4 GiB");
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// A cursor over a frame body that reports truncation instead of panicking.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, at: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(FrameError::Truncated {
                needed: self.at.saturating_add(n),
                got: self.bytes.len(),
            });
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at..]
    }

    pub(crate) fn kind(&mut self, kind: u8, expected: &'static str) -> Result<(), FrameError> {
        match self.u8()? {
            got if got == kind => Ok(()),
            got => Err(FrameError::UnexpectedKind { expected, got }),
        }
    }
}

/// What a `HELLO` signs for the initializer besides its offsets.
const INIT_SIGNED: &str = "initializer";

/// `HELLO` (parent → worker) and `READY` (worker → parent) share their first fields.
/// `initializer`: the function each worker runs once before its first job.
pub(crate) fn encode_hello<S: Signature>(
    out: &mut Vec<u8>,
    key: Key,
    initializer: Option<EntryOffset<S>>,
) {
    let start = begin_frame(out, HELLO);
    greeting(out);
    let (first, second) = key.parts();
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(&second.to_le_bytes());
    match initializer {
        None => out.push(0),
        Some(entry) => {
            out.push(1);
            out.extend_from_slice(&entry.entry().to_le_bytes());
            out.extend_from_slice(&entry.code().to_le_bytes());
            out.extend_from_slice(&key.tag(entry, &INIT_SIGNED).to_le_bytes());
        }
    }
    end_frame(out, start);
}

/// The initializer a `HELLO` names, before it is checked: entry point, function, tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NamedInitializer {
    entry: u64,
    code: u64,
    tag: u64,
}

impl NamedInitializer {
    /// The initializer, if the tag is the pool's and both offsets land in this
    /// executable's code (see [`verify_job`]).
    pub(crate) fn resolve<S: Signature>(self, key: Key) -> Result<Resolved<S>, FrameError> {
        Ok(Resolved::resolve(
            key,
            self.entry,
            self.code,
            &INIT_SIGNED,
            self.tag,
        )?)
    }
}

fn greeting(out: &mut Vec<u8>) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&identity().to_le_bytes());
}

fn check_greeting(cursor: &mut Cursor<'_>) -> Result<(), FrameError> {
    if cursor.array::<4>()? != MAGIC {
        return Err(FrameError::BadMagic);
    }
    let theirs = cursor.u16()?;
    if theirs != VERSION {
        return Err(FrameError::Version {
            ours: VERSION,
            theirs,
        });
    }
    if cursor.u64()? != identity() {
        return Err(FrameError::OtherExecutable);
    }
    Ok(())
}

/// Checks a `HELLO` body and returns the pool's key and the initializer it names.
pub(crate) fn decode_hello(body: &[u8]) -> Result<(Key, Option<NamedInitializer>), FrameError> {
    let mut cursor = Cursor::new(body);
    cursor.kind(HELLO, "hello")?;
    check_greeting(&mut cursor)?;
    let key = Key::from_parts(cursor.u64()?, cursor.u64()?);
    let initializer = match cursor.u8()? {
        0 => None,
        _ => Some(NamedInitializer {
            entry: cursor.u64()?,
            code: cursor.u64()?,
            tag: cursor.u64()?,
        }),
    };
    Ok((key, initializer))
}

/// `INITIALIZED`: the initializer returned.
pub(crate) fn encode_initialized(out: &mut Vec<u8>) {
    let start = begin_frame(out, INITIALIZED);
    end_frame(out, start);
}

/// `INIT_FAILED`: how the initializer failed, in words.
pub(crate) fn encode_init_failed(out: &mut Vec<u8>, reason: &str) {
    let start = begin_frame(out, INIT_FAILED);
    out.extend_from_slice(reason.as_bytes());
    end_frame(out, start);
}

/// The words of an `INIT_FAILED` body.
pub(crate) fn decode_init_failed(body: &[u8]) -> Result<String, FrameError> {
    let mut cursor = Cursor::new(body);
    cursor.kind(INIT_FAILED, "init-failed")?;
    Ok(String::from_utf8_lossy(cursor.rest()).into_owned())
}

pub(crate) fn encode_ready(out: &mut Vec<u8>) {
    let start = begin_frame(out, READY);
    greeting(out);
    out.extend_from_slice(&std::process::id().to_le_bytes());
    end_frame(out, start);
}

/// Checks a `READY` body and returns the worker's pid.
pub(crate) fn decode_ready(body: &[u8]) -> Result<u32, FrameError> {
    let mut cursor = Cursor::new(body);
    cursor.kind(READY, "ready")?;
    check_greeting(&mut cursor)?;
    cursor.u32()
}

pub(crate) fn encode_refused(out: &mut Vec<u8>, fatal: bool, reason: &str) {
    let start = begin_frame(out, REFUSED);
    out.push(u8::from(fatal));
    out.extend_from_slice(reason.as_bytes());
    end_frame(out, start);
}

/// `(fatal, reason)` of a `REFUSED` body.
pub(crate) fn decode_refused(body: &[u8]) -> Result<(bool, String), FrameError> {
    let mut cursor = Cursor::new(body);
    cursor.kind(REFUSED, "refused")?;
    let fatal = cursor.u8()? != 0;
    Ok((fatal, String::from_utf8_lossy(cursor.rest()).into_owned()))
}

/// `DYING`: the worker's last words, how it dies ("overflowed its stack"). It is made
/// ahead of time, since the fault handler that sends it may not format anything.
pub(crate) fn encode_dying(out: &mut Vec<u8>, how: &str) {
    let start = begin_frame(out, DYING);
    out.extend_from_slice(how.as_bytes());
    end_frame(out, start);
}

/// The words of a `DYING` body.
pub(crate) fn decode_dying(body: &[u8]) -> Result<String, FrameError> {
    let mut cursor = Cursor::new(body);
    cursor.kind(DYING, "dying")?;
    Ok(String::from_utf8_lossy(cursor.rest()).into_owned())
}

/// A function as the parent names it in a job: where its entry point is, and what types
/// it has.
#[derive(Debug)]
pub(crate) struct FunctionId<S> {
    pub(crate) entry: EntryOffset<S>,
    /// A hash of the adapter's type name and its item and result sizes.
    pub(crate) fingerprint: u64,
}

impl<S> Clone for FunctionId<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for FunctionId<S> {}

/// The header of a `JOB` frame, after the function's offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JobHeader {
    /// The fingerprint of the function the parent meant, checked by the function.
    pub(crate) fingerprint: u64,
    pub(crate) flags: u8,
    pub(crate) count: u32,
    /// The per-call state the job's items use (`map_init`, `map_with`), or the one a
    /// `SETUP` makes; 0 for none.
    pub(crate) state: u64,
}

impl JobHeader {
    /// What the tag covers besides the offset: every other field of the frame.
    fn signed(&self, payload_len: usize) -> (u64, u8, u32, u64, u64) {
        (
            self.fingerprint,
            self.flags,
            self.count,
            self.state,
            payload_len as u64,
        )
    }
}

const JOB_HEADER_LEN: usize = 1 + 8 + 8 + 8 + 1 + 4 + 8 + 8;
/// Where a `JOB` or `SETUP` body holds its state id.
const STATE_AT: usize = 1 + 8 + 8 + 8 + 1 + 4;

/// The bytes before a job's items (length prefix included) for `payload_len` bytes of
/// items of the function `entry` names: a frame of `kind` (`JOB` or `SETUP`).
pub(crate) fn encode_job_header<S: Signature>(
    kind: u8,
    key: Key,
    entry: EntryOffset<S>,
    header: &JobHeader,
    payload_len: usize,
) -> Vec<u8> {
    /// What a tag is made of: the same inputs make the same tag.
    #[derive(Clone, Copy, PartialEq)]
    struct Signed {
        key: Key,
        signature: TypeId,
        offsets: (u64, u64),
        fields: (u64, u8, u32, u64, u64),
    }
    thread_local! {
        /// The last tag this thread made, with its inputs: a slot's jobs of one call
        /// differ only in their items, usually not even in their length, and the keyed
        /// hash was ≈4% of a one-item job's time on each side.
        static LAST_TAG: Cell<Option<(Signed, u64)>> = const { Cell::new(None) };
    }
    let mut out = Vec::with_capacity(4 + JOB_HEADER_LEN);
    let len = u32::try_from(JOB_HEADER_LEN + payload_len).expect("a batch stays under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&entry.entry().to_le_bytes());
    out.extend_from_slice(&entry.code().to_le_bytes());
    out.extend_from_slice(&header.fingerprint.to_le_bytes());
    out.push(header.flags);
    out.extend_from_slice(&header.count.to_le_bytes());
    out.extend_from_slice(&header.state.to_le_bytes());
    let signed = Signed {
        key,
        signature: TypeId::of::<S>(),
        offsets: (entry.entry(), entry.code()),
        fields: header.signed(payload_len),
    };
    let tag = match LAST_TAG.get() {
        Some((last, tag)) if last == signed => tag,
        _ => {
            let tag = key.tag(entry, &signed.fields);
            LAST_TAG.set(Some((signed, tag)));
            tag
        }
    };
    out.extend_from_slice(&tag.to_le_bytes());
    out
}

/// Checks a `JOB` (or, with `kind`, `SETUP`) body completely and resolves its function in
/// this process: its header, its items, and the function to run them with.
pub(crate) fn verify_job<S: Signature>(
    kind: u8,
    key: Key,
    body: &[u8],
) -> Result<(JobHeader, &[u8], Resolved<S>), FrameError> {
    let mut cursor = Cursor::new(body);
    cursor.kind(kind, if kind == SETUP { "setup" } else { "job" })?;
    let entry = cursor.u64()?;
    let code = cursor.u64()?;
    let header = JobHeader {
        fingerprint: cursor.u64()?,
        flags: cursor.u8()?,
        count: cursor.u32()?,
        state: cursor.u64()?,
    };
    let tag = cursor.u64()?;
    let payload = cursor.rest();
    let function = Resolved::resolve(key, entry, code, &header.signed(payload.len()), tag)?;
    Ok((header, payload, function))
}

/// The header of the last job [`verify_job_again`] let through, with its function.
pub(crate) struct LastJob<S: Signature> {
    key: Key,
    head: [u8; JOB_HEADER_LEN],
    payload_len: usize,
    function: Resolved<S>,
}

/// [`verify_job`] of a `JOB`, remembering in `last` the header it let through. A header
/// byte for byte the same as the last one, under the same key and before items of the
/// same length, is the same tag over the same fields and offsets: every check of
/// [`verify_job`] gave the same answer for it already, so it is not hashed again (a
/// worker's jobs of one call differ only in their items). Anything else is checked in
/// full.
pub(crate) fn verify_job_again<'b, S: Signature>(
    key: Key,
    body: &'b [u8],
    last: &mut Option<LastJob<S>>,
) -> Result<(JobHeader, &'b [u8], Resolved<S>), FrameError> {
    if let (Some(last), Some(head)) = (last.as_ref(), body.get(..JOB_HEADER_LEN)) {
        if last.key == key && *head == last.head && body.len() - head.len() == last.payload_len {
            let mut cursor = Cursor::new(&head[1 + 8 + 8..]);
            let header = JobHeader {
                fingerprint: cursor.u64()?,
                flags: cursor.u8()?,
                count: cursor.u32()?,
                state: cursor.u64()?,
            };
            return Ok((header, &body[JOB_HEADER_LEN..], last.function));
        }
    }
    let (header, payload, function) = verify_job::<S>(JOB, key, body)?;
    if let Some(head) = body.get(..JOB_HEADER_LEN) {
        *last = Some(LastJob {
            key,
            head: head.try_into().expect("JOB_HEADER_LEN bytes"),
            payload_len: payload.len(),
            function,
        });
    }
    Ok((header, payload, function))
}

/// The state id of a `JOB` or `SETUP` body, read before (or without) the checks of
/// [`verify_job`]: what a refused `SETUP` is recorded under.
pub(crate) fn state_of(body: &[u8]) -> Option<u64> {
    let mut cursor = Cursor::new(body.get(STATE_AT..)?);
    cursor.u64().ok()
}

/// `FORGET`: the worker drops the states of these ids (their calls ended).
pub(crate) fn encode_forget(out: &mut Vec<u8>, states: &[u64]) {
    let start = begin_frame(out, FORGET);
    for state in states {
        out.extend_from_slice(&state.to_le_bytes());
    }
    end_frame(out, start);
}

/// The state ids of a `FORGET` body.
pub(crate) fn decode_forget(body: &[u8]) -> Result<Vec<u64>, FrameError> {
    let mut cursor = Cursor::new(body);
    cursor.kind(FORGET, "forget")?;
    let rest = cursor.rest();
    if rest.len() % 8 != 0 {
        return Err(FrameError::Truncated {
            needed: rest.len().next_multiple_of(8) + 1,
            got: body.len(),
        });
    }
    Ok(rest
        .chunks_exact(8)
        .map(|id| u64::from_le_bytes(id.try_into().expect("8 bytes")))
        .collect())
}

/// What parent and worker compare in the handshake: the size of the code and where a few
/// functions sit in it. Two different builds practically never agree on all of them.
pub(crate) fn identity() -> u64 {
    static IDENTITY: OnceLock<u64> = OnceLock::new();
    *IDENTITY.get_or_init(|| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (VERSION, env!("CARGO_PKG_VERSION")).hash(&mut hasher);
        if let Some(image) = code_range() {
            let probes = [
                anchor_address(),
                identity as fn() -> u64 as usize,
                encode_ready as fn(&mut Vec<u8>) as usize,
                super::worker::enter_if_marked as fn() as usize,
            ];
            (image.end - image.start).hash(&mut hasher);
            for probe in probes {
                probe.wrapping_sub(image.start).hash(&mut hasher);
            }
        }
        hasher.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::unsafe_code::EntryPoint;

    #[test]
    fn byte_vectors_cross_as_postcard_writes_and_reads_them() {
        for len in [0, 1, 127, 128, 16_383, 16_384, 100_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut ours = vec![9];
            write_item(&bytes, &mut ours).unwrap();
            assert_eq!(ours[1..], postcard::to_stdvec(&bytes).unwrap()[..], "{len}");
            ours.push(42);
            let (back, rest) = take_item::<Vec<u8>>(&ours[1..]).unwrap();
            assert_eq!(back, bytes);
            assert_eq!(rest, [42]);
        }
        // What the fast path cannot read, postcard refuses as it would.
        assert!(take_item::<Vec<u8>>(&[5, 1, 2]).is_err());
        assert!(take_item::<Vec<u8>>(&[0xff; 11]).is_err());
        // Other types take the general path.
        let mut out = Vec::new();
        write_item(&(300_u64, vec![1_u8, 2]), &mut out).unwrap();
        assert_eq!(out, postcard::to_stdvec(&(300_u64, vec![1_u8, 2])).unwrap());
        assert_eq!(
            take_item::<(u64, Vec<u8>)>(&out).unwrap().0,
            (300, vec![1, 2])
        );
    }

    #[test]
    fn large_byte_strings_cross_in_place_as_postcard_writes_and_reads_them() {
        let bytes: Vec<u8> = (0..LARGE + 300).map(|i| (i * 13 % 251) as u8).collect();
        let postcard_bytes = postcard::to_stdvec(&bytes).unwrap();

        // An owned `Vec<u8>` becomes the buffer, prefixed with its length.
        let mut out = Vec::new();
        write_item_owned(bytes.clone(), &mut out).unwrap();
        assert_eq!(out, postcard_bytes);
        // Not into a buffer that holds something already, and not a small one.
        let mut out = vec![7];
        write_item_owned(bytes.clone(), &mut out).unwrap();
        assert_eq!(out[1..], postcard_bytes[..]);
        let mut out = Vec::new();
        write_item_owned(vec![1_u8, 2], &mut out).unwrap();
        assert_eq!(out, [2, 1, 2]);

        // Results: a large piece is streamed straight to the writer, small ones gathered,
        // and the frame reads as postcard's bytes.
        let buf = serde_bytes::ByteBuf::from(bytes.clone());
        let pair = (5_u64, serde_bytes::ByteBuf::from(bytes.clone()), 9_u8);
        let mut out = vec![1];
        assert!(!write_item_unless_large(&buf, &mut out).unwrap());
        assert!(!write_item_unless_large(&bytes, &mut out).unwrap());
        assert!(!write_item_unless_large(&pair, &mut out).unwrap());
        assert_eq!(out, [1]);
        assert!(write_item_unless_large(&7_u64, &mut out).unwrap());
        assert_eq!(out, [1, 7]);
        fn streamed<T: serde::Serialize + 'static>(value: &T) -> Vec<u8> {
            let size = encoded_size(value).unwrap();
            let mut out = vec![0xAA];
            let mut written = Vec::new();
            stream_item(value, size, &mut out, &mut written).unwrap();
            written.extend_from_slice(&out);
            assert_eq!(written.len(), 1 + size);
            written.split_off(1)
        }
        assert_eq!(streamed(&buf), postcard::to_stdvec(&buf).unwrap());
        assert_eq!(streamed(&bytes), postcard_bytes);
        assert_eq!(streamed(&pair), postcard::to_stdvec(&pair).unwrap());

        // Reading: taken from the body's own memory when it ends the body.
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Blob(serde_bytes::ByteBuf);
        let mut body = vec![9, 9];
        body.extend_from_slice(&postcard_bytes);
        let taken = take_large::<Vec<u8>>(&mut body.clone(), 2)
            .unwrap()
            .unwrap();
        assert_eq!(taken, bytes);
        let taken = take_large::<serde_bytes::ByteBuf>(&mut body.clone(), 2).unwrap();
        assert_eq!(taken.unwrap().into_vec(), bytes);
        let taken = take_large::<Blob>(&mut body.clone(), 2).unwrap();
        assert_eq!(taken.unwrap().0.into_vec(), bytes);
        // Anything else leaves the body as it was, for the usual decoding.
        let mut kept = body.clone();
        assert!(take_large::<String>(&mut kept, 2).is_none());
        assert!(take_large::<(u8, u8)>(&mut kept, 2).is_none());
        assert_eq!(kept, body);
        let mut longer = body.clone();
        longer.push(0); // something after it
        assert!(take_large::<Vec<u8>>(&mut longer, 2).is_none());
        let mut small = vec![9, 9, 2, 1, 2];
        assert!(take_large::<Vec<u8>>(&mut small, 2).is_none());
        assert_eq!(small, [9, 9, 2, 1, 2]);
    }

    #[test]
    fn owned_byte_bufs_and_bytes_become_their_batch_with_postcards_bytes() {
        use bytes::Bytes;
        use serde_bytes::ByteBuf;
        fn owned<T: serde::Serialize + 'static>(value: T) -> Vec<u8> {
            let mut out = Vec::new();
            write_item_owned(value, &mut out).unwrap();
            out
        }
        for len in [LARGE - 1, LARGE, LARGE + 300] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
            let expected = postcard::to_stdvec(&bytes).unwrap();
            // postcard writes the three alike.
            assert_eq!(
                postcard::to_stdvec(&ByteBuf::from(bytes.clone())).unwrap(),
                expected
            );
            assert_eq!(
                postcard::to_stdvec(&Bytes::from(bytes.clone())).unwrap(),
                expected
            );
            assert_eq!(owned(bytes.clone()), expected, "{len}");
            assert_eq!(owned(ByteBuf::from(bytes.clone())), expected, "{len}");
            assert_eq!(owned(Bytes::from(bytes.clone())), expected, "{len}");
            // A `Bytes` sharing its buffer with a clone still alive: the clone keeps its bytes.
            let shared = Bytes::from(bytes.clone());
            let alive = shared.clone();
            assert_eq!(owned(shared), expected, "{len}");
            assert_eq!(alive, bytes);
            // A slice not at the start of its buffer, alone and shared.
            let mut longer = vec![1_u8, 2, 3];
            longer.extend_from_slice(&bytes);
            longer.push(4);
            let slice = Bytes::from(longer.clone()).slice(3..3 + len);
            assert_eq!(owned(slice), expected, "{len}");
            let whole = Bytes::from(longer);
            let slice = whole.slice(3..3 + len);
            assert_eq!(owned(slice), expected, "{len}");
            assert_eq!(whole.len(), len + 4);
            // Into a buffer that holds something already: written after it.
            let mut out = vec![7];
            write_item_owned(ByteBuf::from(bytes.clone()), &mut out).unwrap();
            assert_eq!(out[1..], expected[..]);
            // And they read back as what they were.
            let mut body = vec![9];
            body.extend_from_slice(&expected);
            let back = take_large::<Bytes>(&mut body.clone(), 1).map(Result::unwrap);
            let back = back.unwrap_or_else(|| take_item::<Bytes>(&body[1..]).unwrap().0);
            assert_eq!(back, bytes);
        }
    }

    #[test]
    fn a_large_result_that_owns_its_buffer_alone_leaves_it_for_the_next_frame() {
        use bytes::Bytes;
        use serde_bytes::ByteBuf;
        let bytes: Vec<u8> = vec![5; LARGE];
        fn recycled<T: 'static>(value: T) -> usize {
            let mut spare = Vec::new();
            recycle(value, &mut spare);
            assert!(spare.is_empty());
            spare.capacity()
        }
        assert!(recycled(bytes.clone()) >= LARGE);
        assert!(recycled(ByteBuf::from(bytes.clone())) >= LARGE);
        // A slice whose whole buffer is gone but for it (bound first: the temporary
        // `Bytes` of the whole would still hold it during the call).
        let sliced = Bytes::from(vec![5_u8; LARGE + 1]).slice(1..);
        assert!(recycled(sliced) >= LARGE);
        // Not a buffer someone else holds, nor a small one, nor another type.
        let shared = Bytes::from(bytes.clone());
        let alive = shared.clone();
        assert_eq!(recycled(shared), 0);
        assert_eq!(alive.len(), LARGE);
        assert_eq!(recycled(vec![5_u8; LARGE - 1]), 0);
        assert_eq!(recycled(vec![5_u16; LARGE]), 0);
        // Nor in place of a buffer there already.
        let mut spare = Vec::with_capacity(10);
        recycle(bytes, &mut spare);
        assert_eq!(spare.capacity(), 10);
    }

    #[test]
    fn integers_cross_as_postcard_writes_and_reads_them() {
        fn round_trip<T>(values: &[T])
        where
            T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + fmt::Debug + 'static,
        {
            for value in values {
                let mut ours = Vec::new();
                write_item(value, &mut ours).unwrap();
                assert_eq!(ours, postcard::to_stdvec(value).unwrap(), "{value:?}");
                ours.push(42);
                let (back, rest) = take_item::<T>(&ours).unwrap();
                assert_eq!(&back, value);
                assert_eq!(rest, [42]);
            }
        }
        round_trip(&[0_u64, 1, 127, 128, 300, u64::MAX]);
        round_trip(&[0_usize, 1, 16_384, usize::MAX]);
        round_trip(&[0_u32, 127, 128, u32::MAX]);
        round_trip(&[0_i64, -1, 1, -64, 64, i64::MIN, i64::MAX]);
        round_trip(&[0_i32, -1, 1, -65, i32::MIN, i32::MAX]);
        // Out of range or malformed: postcard's own error.
        let big = postcard::to_stdvec(&(u64::from(u32::MAX) + 1)).unwrap();
        assert_eq!(
            take_item::<u32>(&big).unwrap_err(),
            postcard::from_bytes::<u32>(&big).unwrap_err()
        );
        assert!(take_item::<i32>(&big).is_err());
        assert!(take_item::<u64>(&[0x80; 3]).is_err());
        assert!(take_item::<u64>(&[0xff; 11]).is_err());
    }

    /// A function of the tests' own, of a signature of their own.
    enum Probe {}

    impl Signature for Probe {
        type Cx<'a> = ();
        type Out = u8;
    }

    /// Calls its function and returns what it gives.
    struct Calls(fn() -> u8);

    impl EntryPoint<Probe> for Calls {
        type Code = fn() -> u8;
        fn code(self) -> Self::Code {
            self.0
        }
        fn from_code(code: Self::Code) -> Self {
            Calls(code)
        }
        fn run(self, (): &mut ()) -> u8 {
            (self.0)()
        }
    }

    fn job(key: Key, payload: &[u8]) -> Vec<u8> {
        let header = JobHeader {
            fingerprint: 42,
            flags: 0,
            count: 1,
            state: 9,
        };
        let entry = EntryOffset::<Probe>::of(Calls(|| 7)).unwrap();
        let mut frame = encode_job_header(JOB, key, entry, &header, payload.len());
        frame.extend_from_slice(payload);
        frame.split_off(4)
    }

    fn decode_job(key: Key, body: &[u8]) -> Result<(JobHeader, &[u8]), FrameError> {
        verify_job::<Probe>(JOB, key, body).map(|(header, payload, _)| (header, payload))
    }

    #[test]
    fn a_job_round_trips_with_the_right_key() {
        let key = Key::random();
        let body = job(key, b"items");
        let (header, payload, function) = verify_job::<Probe>(JOB, key, &body).unwrap();
        assert_eq!(header.fingerprint, 42);
        assert_eq!(header.state, 9);
        assert_eq!(state_of(&body), Some(9));
        assert_eq!(header.count, 1);
        assert_eq!(payload, b"items");
        assert_eq!(function.call(&mut ()), 7);
    }

    #[test]
    fn a_job_with_another_key_or_a_changed_offset_is_an_unknown_function() {
        let key = Key::random();
        let body = job(key, b"items");
        assert_eq!(
            decode_job(Key::random(), &body).unwrap_err(),
            FrameError::UnknownFunction
        );
        let mut forged = body.clone();
        forged[1] ^= 0x40; // another entry point, same tag
        assert_eq!(
            decode_job(key, &forged).unwrap_err(),
            FrameError::UnknownFunction
        );
        let mut other_function = body.clone();
        other_function[9] ^= 0x40; // another function, same tag
        assert_eq!(
            decode_job(key, &other_function).unwrap_err(),
            FrameError::UnknownFunction
        );
        let mut retyped = body.clone();
        retyped[17] ^= 1; // another fingerprint, same tag
        assert_eq!(
            decode_job(key, &retyped).unwrap_err(),
            FrameError::UnknownFunction
        );
        let mut restated = body.clone();
        restated[STATE_AT] ^= 1; // another state, same tag
        assert_eq!(
            decode_job(key, &restated).unwrap_err(),
            FrameError::UnknownFunction
        );
        assert!(matches!(
            verify_job::<Probe>(SETUP, key, &body),
            Err(FrameError::UnexpectedKind { .. })
        ));
        let mut longer = body;
        longer.push(0); // another payload length
        assert_eq!(
            decode_job(key, &longer).unwrap_err(),
            FrameError::UnknownFunction
        );
        assert!(
            FrameError::UnknownFunction
                .to_string()
                .starts_with("unknown function")
        );
    }

    #[test]
    fn a_job_header_seen_before_passes_only_byte_for_byte() {
        let key = Key::random();
        let mut last = None;
        let body = job(key, b"items");
        assert!(verify_job_again::<Probe>(key, &body, &mut last).is_ok());
        assert!(last.is_some());
        let (header, payload, function) = verify_job_again::<Probe>(key, &body, &mut last).unwrap();
        assert_eq!((header.count, header.state, payload), (1, 9, &b"items"[..]));
        assert_eq!(function.call(&mut ()), 7);
        // The same header before items of another length, another key, any changed
        // byte: checked in full, and refused.
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(
            verify_job_again::<Probe>(key, &longer, &mut last).err(),
            Some(FrameError::UnknownFunction)
        );
        assert_eq!(
            verify_job_again::<Probe>(Key::random(), &body, &mut last).err(),
            Some(FrameError::UnknownFunction)
        );
        for at in 1..JOB_HEADER_LEN {
            let mut forged = body.clone();
            forged[at] ^= 1;
            assert!(
                verify_job_again::<Probe>(key, &forged, &mut last).is_err(),
                "byte {at}"
            );
        }
        // The same tag is made again for the same fields, from the memo or not.
        assert_eq!(job(key, b"items"), body);
        assert_eq!(job(key, b"other"), job(key, b"other"));
        assert_ne!(job(key, b"items"), job(Key::random(), b"items"));
    }

    #[test]
    fn truncated_frames_are_refused_at_every_length() {
        let key = Key::random();
        let body = job(key, b"");
        for len in 0..body.len() {
            let err = decode_job(key, &body[..len]).unwrap_err();
            assert!(
                matches!(err, FrameError::Truncated { .. }),
                "{len}: {err:?}"
            );
        }
        let mut hello = Vec::new();
        encode_hello::<Probe>(&mut hello, key, None);
        for len in 4..hello.len() {
            assert!(decode_hello(&hello[4..len]).is_err());
        }
        assert_eq!(decode_hello(&hello[4..]).unwrap(), (key, None));
    }

    #[test]
    fn an_initializer_crosses_in_the_hello_under_the_pools_key_only() {
        let key = Key::random();
        let entry = EntryOffset::<Probe>::of(Calls(|| 9)).unwrap();
        let mut hello = Vec::new();
        encode_hello(&mut hello, key, Some(entry));
        let (got, named) = decode_hello(&hello[4..]).unwrap();
        assert_eq!(got, key);
        let named = named.expect("the hello names the initializer");
        assert_eq!(named.resolve::<Probe>(key).unwrap().call(&mut ()), 9);
        assert_eq!(
            named.resolve::<Probe>(Key::random()).err(),
            Some(FrameError::UnknownFunction)
        );
        // A job's tag for the same offsets does not pass for an initializer's.
        let job_tag = key.tag(entry, &(42_u64, 0_u8, 1_u32, 0_u64));
        let forged = NamedInitializer {
            tag: job_tag,
            ..named
        };
        assert_eq!(
            forged.resolve::<Probe>(key).err(),
            Some(FrameError::UnknownFunction)
        );
        for len in 4..hello.len() {
            assert!(decode_hello(&hello[4..len]).is_err());
        }
    }

    #[test]
    fn init_failures_round_trip() {
        let mut out = Vec::new();
        encode_init_failed(&mut out, "panicked at a.rs:1:2: no config");
        let mut body = Vec::new();
        assert!(read_frame(&mut &out[..], &mut body).unwrap());
        assert_eq!(
            decode_init_failed(&body).unwrap(),
            "panicked at a.rs:1:2: no config"
        );
        let mut done = Vec::new();
        encode_initialized(&mut done);
        assert!(read_frame(&mut &done[..], &mut body).unwrap());
        assert_eq!(body, [INITIALIZED]);
    }

    #[test]
    fn wrong_kind_magic_and_version_are_refused() {
        let key = Key::random();
        let mut hello = Vec::new();
        encode_hello::<Probe>(&mut hello, key, None);
        let body = &mut hello[4..];
        assert!(matches!(
            decode_ready(body),
            Err(FrameError::UnexpectedKind { .. })
        ));
        body[1] = b'X';
        assert_eq!(decode_hello(body).unwrap_err(), FrameError::BadMagic);
        body[1] = b'T';
        body[5] = 99;
        assert!(matches!(
            decode_hello(body),
            Err(FrameError::Version { theirs: 99, .. })
        ));
        body[5] = VERSION.to_le_bytes()[0];
        body[8] ^= 1;
        assert_eq!(decode_hello(body).unwrap_err(), FrameError::OtherExecutable);
    }

    #[test]
    fn bounded_writes_stop_at_the_item_limit_and_leave_the_buffer_as_it_was() {
        let mut out = vec![1, 2, 3];
        write_bounded("four", &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4, b'f', b'o', b'u', b'r']);
        // Zeroed memory is not touched: a string of 1 GiB costs nothing here.
        let huge = String::from_utf8(vec![0; MAX_ITEM]).unwrap();
        let err = write_bounded(&huge, &mut out).unwrap_err();
        assert!(matches!(err, Unencodable::TooLarge));
        assert!(err.describe("the item").contains("1 GiB"));
        assert_eq!(out.len(), 8);
    }

    #[test]
    fn forget_frames_round_trip_and_refuse_a_broken_id() {
        let mut out = Vec::new();
        encode_forget(&mut out, &[3, u64::MAX]);
        let mut body = Vec::new();
        assert!(read_frame(&mut &out[..], &mut body).unwrap());
        assert_eq!(decode_forget(&body).unwrap(), [3, u64::MAX]);
        body.pop();
        assert!(decode_forget(&body).is_err());
    }

    #[test]
    fn last_words_round_trip() {
        let mut out = Vec::new();
        encode_dying(&mut out, "overflowed its stack");
        let mut body = Vec::new();
        assert!(read_frame(&mut &out[..], &mut body).unwrap());
        assert_eq!(decode_dying(&body).unwrap(), "overflowed its stack");
        assert!(decode_dying(&[READY]).is_err());
    }

    #[test]
    fn read_frame_refuses_huge_and_truncated_streams() {
        let mut body = Vec::new();
        let huge = (u32::MAX).to_le_bytes();
        let err = read_frame(&mut &huge[..], &mut body).unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        let short = [5, 0, 0, 0, 1, 2];
        let err = read_frame(&mut &short[..], &mut body).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(!read_frame(&mut &[][..], &mut body).unwrap());
        let half_length = [5, 0];
        assert!(read_frame(&mut &half_length[..], &mut body).is_err());
        let good = [2, 0, 0, 0, 7, 8];
        assert!(read_frame(&mut &good[..], &mut body).unwrap());
        assert_eq!(body, [7, 8]);
    }
}
