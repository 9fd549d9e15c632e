//! Bad input across the process boundary: the decoders of both sides fed over a million
//! arbitrary and mutated frames (issue 14), in this process, without a worker process
//! per frame.
//!
//! - **The worker's side**: whole streams of frames go through
//!   [`serve_message`](super::worker::serve_message), the code that a worker process (and
//!   an MPI rank) runs for each frame after its handshake: `read_frame`, the `SETUP`,
//!   `FORGET` and `JOB` dispatch, `wire::verify_job` with its keyed tag, the function
//!   resolved through its trampoline, the type fingerprint, the items decoded. Each case
//!   is a valid job of one of the functions "the parent sent" (five adapters: plain,
//!   `String` items, a fallible one, `map_init`'s and `map_with`'s with their `SETUP`),
//!   then damaged in one of the ways of [`Damage`]. The answer must be well-formed
//!   frames; a refusal must read as one of the crate's clear sentences; a job that was
//!   accepted must answer exactly its items, each a value or a clear failure (as the
//!   parent's `decode_records` reads them); the functions the parent did not send (they
//!   count their calls) are never called; and the undamaged control cases give exactly
//!   the right results.
//! - **The parent's side**: `decode_records` (each adapter's records, mutated and
//!   arbitrary) and every other decoder of a frame a worker sends (`READY`, `REFUSED`,
//!   `DYING`, `INIT_FAILED`) and of the handshake: never a panic, every item answered
//!   exactly once.
//! - **A live worker**: [`garbage_into_a_live_workers_socket`] starts a worker process as
//!   a pool does and writes garbage into its socket after the handshake.
//!
//! Each case is one arbtest seed (size and random bytes; printed when a case fails, and
//! replayed with `ARBTEST_SEED=<seed>`), the seeds fixed so that every run checks the
//! same million frames.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Debug;

use arbtest::arbitrary::{self, Unstructured};

use super::remote::{
    self, AsValue, Fallible, Plain, RemoteFn, StateSpec, WithShared, WithState, decode_records,
    function_id, via,
};
use super::unsafe_code::{EntryOffset, SharedFn, StateFn};
use super::wire::{self, FunctionId, JobHeader, Key};
use super::worker::{RunJob, SetUp, States, serve_message};
use crate::engine::item::ItemFailure;

thread_local! {
    /// Calls of the item functions the parent sent, on this thread.
    static SENT_RUNS: Cell<u64> = const { Cell::new(0) };
    /// Calls of functions the parent never sent: must stay 0.
    static UNSENT_RUNS: Cell<u64> = const { Cell::new(0) };
}

fn count(runs: &'static std::thread::LocalKey<Cell<u64>>) {
    runs.with(|runs| runs.set(runs.get() + 1));
}

fn triple(x: u64) -> u64 {
    count(&SENT_RUNS);
    x.wrapping_mul(3)
}

fn length(s: String) -> usize {
    count(&SENT_RUNS);
    s.len()
}

fn checked(bytes: Vec<u8>) -> Result<u32, String> {
    count(&SENT_RUNS);
    match bytes.first() {
        Some(0) => Err("starts with a zero".to_owned()),
        _ => Ok(u32::try_from(bytes.len()).unwrap_or(u32::MAX)),
    }
}

fn zero() -> u64 {
    0
}

fn counted(seen: &mut u64, x: u64) -> u64 {
    count(&SENT_RUNS);
    *seen += 1;
    x.wrapping_add(*seen)
}

fn scaled(factor: &u64, x: u64) -> u64 {
    count(&SENT_RUNS);
    x.wrapping_mul(*factor)
}

/// Of the same type as `triple`: only its offsets can be put in a frame.
fn never_sent(x: u64) -> u64 {
    count(&UNSENT_RUNS);
    x
}

/// Of the same type as `length`.
fn never_sent_either(s: String) -> usize {
    count(&UNSENT_RUNS);
    s.len()
}

/// An `init` of the same type as `zero`, never sent.
fn never_made() -> u64 {
    count(&UNSENT_RUNS);
    7
}

type Triple = Plain<u64, u64>;
type Length = Plain<String, usize>;
type Checked = Fallible<Vec<u8>, u32, String, AsValue<via::Serde>>;
type Counted = WithState<u64, u64, u64>;
type Scaled = WithShared<u64, u64, u64>;

/// The shared value of `scaled`'s calls.
const FACTOR: u64 = 5;
/// The state id of the calls with a state.
const STATE: u64 = 77;

/// The functions a parent sent, as its frames name them, and what they answer.
struct Sent {
    triple: FunctionId<RunJob>,
    length: FunctionId<RunJob>,
    checked: FunctionId<RunJob>,
    counted: FunctionId<RunJob>,
    scaled: FunctionId<RunJob>,
    init: StateSpec,
    shared: StateSpec,
    /// Offsets of functions it never sent (`(entry, code)`), and the tag-free way to a
    /// `SETUP` of an `init` it never sent.
    unsent: Vec<(u64, u64)>,
    unsent_init: EntryOffset<SetUp>,
}

impl Sent {
    fn new() -> Self {
        let unsent = [
            EntryOffset::<RunJob>::of(Triple::new(never_sent)).unwrap(),
            EntryOffset::<RunJob>::of(Length::new(never_sent_either)).unwrap(),
        ];
        let unsent_init = StateSpec::init(never_made).unwrap().function.entry;
        Sent {
            triple: function_id(Triple::new(triple)).unwrap(),
            length: function_id(Length::new(length)).unwrap(),
            checked: function_id(Checked::new(checked)).unwrap(),
            counted: function_id(Counted::new(StateFn(counted))).unwrap(),
            scaled: function_id(Scaled::new(SharedFn(scaled))).unwrap(),
            init: StateSpec::init(zero).unwrap(),
            shared: StateSpec::shared(&FACTOR, SharedFn(scaled)).unwrap(),
            unsent: unsent.iter().map(|e| (e.entry(), e.code())).collect(),
            unsent_init,
        }
    }
}

/// One of the sent functions, with its items and what the parent expects back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Function {
    Triple,
    Length,
    Checked,
    Counted,
    Scaled,
}

const FUNCTIONS: [Function; 5] = [
    Function::Triple,
    Function::Length,
    Function::Checked,
    Function::Counted,
    Function::Scaled,
];

/// A job as the parent makes it: the function, its items encoded, and each item's
/// expected outcome (`Ok(Debug of the value)` or `Err(Debug of the error)`).
struct Job {
    function: Function,
    id: FunctionId<RunJob>,
    payload: Vec<u8>,
    expected: Vec<Result<String, String>>,
    flags: u8,
}

impl Job {
    fn count(&self) -> u32 {
        u32::try_from(self.expected.len()).unwrap()
    }

    fn state(&self) -> u64 {
        match self.function {
            Function::Counted | Function::Scaled => STATE,
            _ => 0,
        }
    }

    fn header(&self) -> JobHeader {
        JobHeader {
            fingerprint: self.id.fingerprint,
            flags: self.flags,
            count: self.count(),
            state: self.state(),
        }
    }

    /// The `JOB` frame, length prefix included, signed with `key`.
    fn frame(&self, key: Key) -> Vec<u8> {
        let mut frame = wire::encode_job_header(
            wire::JOB,
            key,
            self.id.entry,
            &self.header(),
            self.payload.len(),
        );
        frame.extend_from_slice(&self.payload);
        frame
    }

    /// The `SETUP` frame its call needs first, if any.
    fn set_up(&self, sent: &Sent, key: Key) -> Option<Vec<u8>> {
        let spec = match self.function {
            Function::Counted => &sent.init,
            Function::Scaled => &sent.shared,
            _ => return None,
        };
        Some(set_up_frame(key, spec, STATE))
    }

    /// The records of the `RESULTS` frames answering it, decoded as the parent decodes
    /// them.
    fn decode(&self, records: &[u8], count: usize) -> Vec<Result<String, String>> {
        match self.function {
            Function::Triple => outcomes::<Triple>(records, count),
            Function::Length => outcomes::<Length>(records, count),
            Function::Checked => outcomes::<Checked>(records, count),
            Function::Counted => outcomes::<Counted>(records, count),
            Function::Scaled => outcomes::<Scaled>(records, count),
        }
    }
}

fn set_up_frame(key: Key, spec: &StateSpec, state: u64) -> Vec<u8> {
    let header = JobHeader {
        fingerprint: spec.function.fingerprint,
        flags: 0,
        count: 0,
        state,
    };
    let mut frame = wire::encode_job_header(
        wire::SETUP,
        key,
        spec.function.entry,
        &header,
        spec.payload.len(),
    );
    frame.extend_from_slice(&spec.payload);
    frame
}

/// `count` records decoded as the parent decodes them, as `(index order)` outcomes.
fn outcomes<A: RemoteFn>(records: &[u8], count: usize) -> Vec<Result<String, String>>
where
    A::Out: Debug,
    <A::Wire as remote::ErrorWire<A::Err>>::Remote: Debug,
{
    let decoded = decode_records::<A>(records, 0, count, (0, None), None);
    let mut values = decoded.values.into_iter();
    let mut failures = decoded.failures.into_iter().peekable();
    let outcomes: Vec<_> = (0..count)
        .map(|index| match failures.next_if(|(at, _)| *at == index) {
            Some((_, ItemFailure::Returned { error, .. })) => Err(format!("{error:?}")),
            Some((_, ItemFailure::Worker(err))) => Err(err.to_string()),
            None => Ok(format!("{:?}", values.next().expect("a value per item"))),
        })
        .collect();
    assert!(values.next().is_none() && failures.next().is_none());
    outcomes
}

fn items<T: for<'a> arbitrary::Arbitrary<'a>>(
    u: &mut Unstructured<'_>,
) -> arbitrary::Result<Vec<T>> {
    let count = u.int_in_range(0..=6)?;
    (0..count).map(|_| u.arbitrary()).collect()
}

fn encode<T: serde::Serialize>(items: &[T]) -> Vec<u8> {
    let mut payload = Vec::new();
    for item in items {
        remote::write(item, &mut payload).unwrap();
    }
    payload
}

/// A valid job of `function`, its items drawn from `u`.
fn job(sent: &Sent, function: Function, u: &mut Unstructured<'_>) -> arbitrary::Result<Job> {
    let ok = |value: &dyn Debug| Ok(format!("{value:?}"));
    let (id, payload, expected) = match function {
        Function::Triple => {
            let items = items::<u64>(u)?;
            let expected = items.iter().map(|x| ok(&x.wrapping_mul(3))).collect();
            (sent.triple, encode(&items), expected)
        }
        Function::Length => {
            let items = items::<String>(u)?;
            let expected = items.iter().map(|s| ok(&s.len())).collect();
            (sent.length, encode(&items), expected)
        }
        Function::Checked => {
            let items = items::<Vec<u8>>(u)?;
            let expected = items
                .iter()
                .map(|b| match b.first() {
                    Some(0) => Err(format!("{:?}", "starts with a zero")),
                    _ => ok(&b.len()),
                })
                .collect();
            (sent.checked, encode(&items), expected)
        }
        Function::Counted => {
            let items = items::<u64>(u)?;
            let expected = (1..)
                .zip(&items)
                .map(|(seen, x)| ok(&x.wrapping_add(seen)))
                .collect();
            (sent.counted, encode(&items), expected)
        }
        Function::Scaled => {
            let items = items::<u64>(u)?;
            let expected = items.iter().map(|x| ok(&x.wrapping_mul(FACTOR))).collect();
            (sent.scaled, encode(&items), expected)
        }
    };
    let flags = if u.arbitrary()? { wire::FLUSH_EACH } else { 0 };
    Ok(Job {
        function,
        id,
        payload,
        expected,
        flags,
    })
}

/// How a case damages the stream of a valid job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Damage {
    /// None: the control case, which must give exactly the right results.
    Valid,
    /// Frames of random bytes (a random length prefix, or a prefix that fits).
    Arbitrary,
    /// A frame cut short: the stream ends inside it, or its prefix says the shorter length.
    Truncated,
    /// A length prefix past the frame limit, or past the end of the stream.
    Oversized,
    /// The job signed with another pool's key.
    WrongKey,
    /// The job signed with the right key for the wrong type fingerprint (a parent bug).
    WrongFingerprint,
    /// One to four bytes of the stream flipped, anywhere (prefix, header, tag, items).
    FlippedBytes,
    /// The offsets of a function the parent never sent, under a tag it made for another
    /// function, another key's tag, or a random one; or random offsets.
    UnsentFunction,
    /// The items replaced by random bytes of the same length: the tag, which covers the
    /// payload's length but not its bytes, still matches.
    GarbageItems,
    /// The call's `SETUP` damaged (or an `init` never sent named), or a `FORGET` of broken
    /// ids, before a valid job.
    BadSetUp,
}

const DAMAGES: [Damage; 10] = [
    Damage::Valid,
    Damage::Arbitrary,
    Damage::Truncated,
    Damage::Oversized,
    Damage::WrongKey,
    Damage::WrongFingerprint,
    Damage::FlippedBytes,
    Damage::UnsentFunction,
    Damage::GarbageItems,
    Damage::BadSetUp,
];

/// How a case went, for the figures.
#[derive(Default)]
struct Tally {
    /// Frames fed, by the damage of their case.
    frames: BTreeMap<Damage, u64>,
    refused: u64,
    answered: u64,
}

/// The sentences a worker refuses with: every refusal must start with one.
const CLEAR_REFUSALS: &[&str] = &[
    "malformed frame: ",
    "unknown function: ",
    "type mismatch: ",
    "protocol version mismatch: ",
    "the worker runs a different executable",
    "cannot locate the executable's code",
];

fn flip(u: &mut Unstructured<'_>, bytes: &mut [u8], flips: usize) -> arbitrary::Result<()> {
    for _ in 0..flips {
        if bytes.is_empty() {
            break;
        }
        let at = u.choose_index(bytes.len())?;
        let mask = u.int_in_range(1..=255_u8)?;
        bytes[at] ^= mask;
    }
    Ok(())
}

/// A body of a job frame with its fields as given (`tag` as it is, unchecked).
fn raw_job(
    kind: u8,
    (entry, code): (u64, u64),
    header: &JobHeader,
    tag: u64,
    payload: &[u8],
) -> Vec<u8> {
    let mut body = vec![kind];
    for word in [entry, code, header.fingerprint] {
        body.extend_from_slice(&word.to_le_bytes());
    }
    body.push(header.flags);
    body.extend_from_slice(&header.count.to_le_bytes());
    body.extend_from_slice(&header.state.to_le_bytes());
    body.extend_from_slice(&tag.to_le_bytes());
    body.extend_from_slice(payload);
    prefixed(&body)
}

fn prefixed(body: &[u8]) -> Vec<u8> {
    let mut frame = u32::try_from(body.len()).unwrap().to_le_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// The tag a frame carries (its last header field).
fn tag_of(frame: &[u8]) -> u64 {
    const TAG_AT: usize = 4 + 1 + 8 + 8 + 8 + 1 + 4 + 8;
    u64::from_le_bytes(frame[TAG_AT..TAG_AT + 8].try_into().unwrap())
}

/// The stream of frames of one case: the frames, and how many there are.
fn damaged_stream(
    sent: &Sent,
    key: Key,
    job: &Job,
    damage: Damage,
    u: &mut Unstructured<'_>,
) -> arbitrary::Result<(Vec<u8>, u64)> {
    let mut frames: Vec<Vec<u8>> = Vec::new();
    frames.extend(job.set_up(sent, key));
    let valid = job.frame(key);
    match damage {
        Damage::Valid => frames.push(valid),
        Damage::Arbitrary => {
            for _ in 0..u.int_in_range(1..=3)? {
                let body: Vec<u8> = u.arbitrary()?;
                if u.arbitrary()? {
                    frames.push(prefixed(&body));
                } else {
                    frames.push(body);
                }
            }
        }
        Damage::Truncated => {
            let cut = u.int_in_range(0..=valid.len() - 1)?;
            let mut frame = valid[..cut].to_vec();
            if cut > 4 && u.arbitrary()? {
                let len = u32::try_from(cut - 4).unwrap();
                frame[..4].copy_from_slice(&len.to_le_bytes());
            }
            frames.push(frame);
        }
        Damage::Oversized => {
            let mut frame = valid;
            let len = if u.arbitrary()? {
                u.int_in_range(u32::try_from(wire::MAX_FRAME).unwrap() + 1..=u32::MAX)?
            } else {
                let body = u32::try_from(frame.len() - 4).unwrap();
                u.int_in_range(body + 1..=body + 4096)?
            };
            frame[..4].copy_from_slice(&len.to_le_bytes());
            frames.push(frame);
        }
        Damage::WrongKey => {
            let other = Key::from_parts(u.arbitrary()?, u.arbitrary()?);
            frames.push(job.frame(other));
        }
        Damage::WrongFingerprint => {
            let others = [
                sent.triple,
                sent.length,
                sent.checked,
                sent.counted,
                sent.scaled,
            ];
            let mut header = job.header();
            header.fingerprint = match u.choose(&others)?.fingerprint {
                same if same == header.fingerprint => same ^ 1,
                other => other,
            };
            let mut frame =
                wire::encode_job_header(wire::JOB, key, job.id.entry, &header, job.payload.len());
            frame.extend_from_slice(&job.payload);
            frames.push(frame);
        }
        Damage::FlippedBytes => {
            frames.push(valid);
            let mut stream = frames.concat();
            let flips = u.int_in_range(1..=4)?;
            flip(u, &mut stream, flips)?;
            return Ok((stream, frames.len() as u64));
        }
        Damage::UnsentFunction => {
            let header = job.header();
            let offsets = match u.int_in_range(0..=3)? {
                0 => *u.choose(&sent.unsent)?,
                // The entry point of the job with the code of a function never sent.
                1 => (job.id.entry.entry(), u.choose(&sent.unsent)?.1),
                2 => (u.arbitrary()?, u.arbitrary()?),
                // The entry point of a function never sent with the job's code (where
                // the entry points differ: functions of one type share theirs).
                _ => match *u.choose(&sent.unsent)? {
                    (entry, _) if entry != job.id.entry.entry() => (entry, job.id.entry.code()),
                    unsent => unsent,
                },
            };
            let offsets = match offsets {
                same if same == (job.id.entry.entry(), job.id.entry.code()) => sent.unsent[0],
                other => other,
            };
            let tag = match u.int_in_range(0..=2)? {
                0 => tag_of(&valid),
                // What another pool's key signs for the job.
                1 => tag_of(&job.frame(Key::from_parts(u.arbitrary()?, u.arbitrary()?))),
                _ => u.arbitrary()?,
            };
            frames.push(raw_job(wire::JOB, offsets, &header, tag, &job.payload));
        }
        Damage::GarbageItems => {
            let mut frame = valid;
            let start = frame.len() - job.payload.len();
            for byte in &mut frame[start..] {
                *byte = u.arbitrary()?;
            }
            frames.push(frame);
        }
        Damage::BadSetUp => {
            match u.int_in_range(0..=3)? {
                0 => {
                    // A `SETUP` of an `init` never sent, under the tag of the sent one.
                    let set_up = set_up_frame(key, &sent.init, STATE);
                    let header = JobHeader {
                        fingerprint: sent.init.function.fingerprint,
                        flags: 0,
                        count: 0,
                        state: STATE,
                    };
                    let offsets = (sent.unsent_init.entry(), sent.unsent_init.code());
                    frames.insert(
                        0,
                        raw_job(wire::SETUP, offsets, &header, tag_of(&set_up), &[]),
                    );
                }
                1 => {
                    // The call's own `SETUP`, its bytes flipped.
                    let spec = if u.arbitrary()? {
                        &sent.init
                    } else {
                        &sent.shared
                    };
                    let mut set_up = set_up_frame(key, spec, STATE);
                    let flips = u.int_in_range(1..=3)?;
                    flip(u, &mut set_up[4..], flips)?;
                    frames.insert(0, set_up);
                }
                2 => {
                    // A `FORGET` whose ids are cut short, or of random ids.
                    let mut body = vec![wire::FORGET];
                    let ids: Vec<u8> = u.arbitrary()?;
                    body.extend_from_slice(&ids);
                    frames.insert(0, prefixed(&body));
                }
                _ => {
                    // The shared value's `SETUP` with garbage for the value.
                    let mut set_up = set_up_frame(key, &sent.shared, STATE);
                    let start = set_up.len() - sent.shared.payload.len();
                    for byte in &mut set_up[start..] {
                        *byte = u.arbitrary()?;
                    }
                    frames.insert(0, set_up);
                }
            }
            frames.push(valid);
        }
    }
    let count = frames.len() as u64;
    Ok((frames.concat(), count))
}

/// Runs one case on the worker's side and checks its answer.
fn worker_case(sent: &Sent, u: &mut Unstructured<'_>, tally: &mut Tally) -> arbitrary::Result<()> {
    let key = Key::from_parts(u.arbitrary()?, u.arbitrary()?);
    let function = *u.choose(&FUNCTIONS)?;
    let damage = *u.choose(&DAMAGES)?;
    let job = job(sent, function, u)?;
    let (stream, frames) = damaged_stream(sent, key, &job, damage, u)?;
    *tally.frames.entry(damage).or_default() += frames;

    let before = (SENT_RUNS.with(Cell::get), UNSENT_RUNS.with(Cell::get));
    let mut states = States::default();
    let mut answer = Vec::new();
    serve_message(key, &stream, &mut states, &mut answer);
    let sent_runs = SENT_RUNS.with(Cell::get) - before.0;
    assert_eq!(
        UNSENT_RUNS.with(Cell::get),
        before.1,
        "{damage:?}: a function the parent never sent was called"
    );

    // The answer: well-formed frames, a refusal in clear words, or the job's records.
    let mut reader = &answer[..];
    let mut body = Vec::new();
    let mut results: Vec<Result<String, String>> = Vec::new();
    let mut done = false;
    while wire::read_frame(&mut reader, &mut body).expect("the worker's answer is well-formed") {
        assert!(!done, "{damage:?}: nothing follows DONE");
        match body[0] {
            wire::RESULTS => {
                let count = wire::Cursor::new(&body[1..]).u32().unwrap() as usize;
                results.extend(job.decode(&body[5..], count));
            }
            wire::DONE => done = true,
            wire::REFUSED => {
                let (_, reason) = wire::decode_refused(&body).unwrap();
                assert!(
                    CLEAR_REFUSALS.iter().any(|clear| reason.starts_with(clear)),
                    "{damage:?}: an unclear refusal: {reason:?}"
                );
                tally.refused += 1;
            }
            kind => panic!("{damage:?}: the worker answered a frame of kind {kind}"),
        }
    }
    if done {
        tally.answered += 1;
        // Accepted: exactly its items are answered, each a value or a clear failure.
        assert_eq!(
            results.len(),
            job.expected.len(),
            "{damage:?}: one outcome per item"
        );
        assert!(
            sent_runs <= u64::from(job.count()),
            "{damage:?}: {sent_runs} runs"
        );
        for outcome in &results {
            if let Err(why) = outcome {
                assert!(!why.is_empty(), "{damage:?}: a failure without words");
            }
        }
    } else {
        assert!(results.is_empty(), "{damage:?}: results without DONE");
        assert_eq!(
            sent_runs, 0,
            "{damage:?}: items ran for a job that was refused"
        );
    }
    match damage {
        Damage::Valid => {
            assert!(done, "a valid job is answered");
            assert_eq!(results, job.expected, "a valid job's results are exact");
        }
        Damage::WrongKey | Damage::WrongFingerprint | Damage::UnsentFunction => {
            assert!(!done, "{damage:?}: the job must be refused");
        }
        _ => {}
    }
    Ok(())
}

/// Worker-side cases per test: four tests, run in parallel, make over a million frames.
const WORKER_CASES: u64 = 165_000;

/// The seed of case `case` of test `test`: a size from 32 to 511 bytes, random bytes from a
/// fixed hash of both, so that every run checks the same cases.
fn seed(test: u64, case: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (test, case).hash(&mut hasher);
    let size = 32 + (hasher.finish() % 480);
    (hasher.finish() & !0xffff_ffff) | size
}

fn worker_side(test: u64) -> Tally {
    let sent = Sent::new();
    let mut tally = Tally::default();
    for case in 0..WORKER_CASES {
        arbtest::arbtest(|u| {
            // A case the seed's bytes run short for is made of what they give.
            match worker_case(&sent, u, &mut tally) {
                Ok(()) | Err(arbitrary::Error::NotEnoughData) => Ok(()),
                Err(err) => Err(err),
            }
        })
        .seed(seed(test, case))
        .run();
    }
    tally
}

fn report(what: &str, tally: &Tally) -> u64 {
    let total: u64 = tally.frames.values().sum();
    if tally.answered + tally.refused > 0 {
        eprintln!(
            "{what}: {total} frames ({} jobs answered, {} refusals): {:?}",
            tally.answered, tally.refused, tally.frames
        );
    } else {
        eprintln!("{what}: {total} frames: {:?}", tally.frames);
    }
    total
}

// Four tests of a quarter each, so that the test harness runs them on every core.
macro_rules! worker_side_tests {
    ($($name:ident = $test:expr),+) => {$(
        #[test]
        fn $name() {
            let tally = worker_side($test);
            let total = report(stringify!($name), &tally);
            // Every kind of damage was tried, and the quarter's share of the million.
            assert_eq!(tally.frames.len(), 10, "{:?}", tally.frames);
            assert!(total >= 250_000, "{total} frames");
            assert!(tally.answered > 0 && tally.refused > 0);
        }
    )+};
}

worker_side_tests!(
    the_worker_survives_damaged_frames_1 = 1,
    the_worker_survives_damaged_frames_2 = 2,
    the_worker_survives_damaged_frames_3 = 3,
    the_worker_survives_damaged_frames_4 = 4
);

/// Error types that cross as messages or as `io::Error`s: decoded on the parent's side
/// only.
type Chained = Fallible<u64, u64, anyhow::Error, AsValue<via::Messages>>;
type IoFailing = Fallible<u64, u64, std::io::Error, AsValue<via::Io>>;

/// How a parent-side case makes the records of a `RESULTS` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Records {
    /// Random bytes.
    Arbitrary,
    /// A worker's real answer to a valid job, one to four bytes flipped.
    Flipped,
    /// A worker's real answer cut short.
    Truncated,
    /// Records of random tags, random item lengths (up to past the end), then random
    /// bytes or an error chain of random messages.
    Forged,
}

const RECORDS: [Records; 4] = [
    Records::Arbitrary,
    Records::Flipped,
    Records::Truncated,
    Records::Forged,
];

/// The records a worker answers to a valid job of `function` (and the job's count).
fn real_records(
    sent: &Sent,
    function: Function,
    u: &mut Unstructured<'_>,
) -> arbitrary::Result<(Vec<u8>, usize)> {
    let key = Key::from_parts(1, 2);
    let job = job(sent, function, u)?;
    let mut stream = job.set_up(sent, key).unwrap_or_default();
    stream.extend_from_slice(&job.frame(key));
    let mut answer = Vec::new();
    serve_message(key, &stream, &mut States::default(), &mut answer);
    let mut reader = &answer[..];
    let mut body = Vec::new();
    let mut records = Vec::new();
    while wire::read_frame(&mut reader, &mut body).unwrap() {
        if body[0] == wire::RESULTS {
            records.extend_from_slice(&body[5..]);
        }
    }
    Ok((records, job.expected.len()))
}

/// Runs one case on the parent's side: records of any kind decoded as each adapter's,
/// and a body of any kind given to every other decoder of a frame from a worker.
fn parent_case(sent: &Sent, u: &mut Unstructured<'_>, tally: &mut Tally) -> arbitrary::Result<()> {
    let how = *u.choose(&RECORDS)?;
    let (records, count) = match how {
        Records::Arbitrary => (u.arbitrary::<Vec<u8>>()?, u.int_in_range(0..=8)?),
        Records::Flipped => {
            let (mut records, count) = real_records(sent, *u.choose(&FUNCTIONS)?, u)?;
            let flips = u.int_in_range(1..=4)?;
            flip(u, &mut records, flips)?;
            (records, count)
        }
        Records::Truncated => {
            let (records, count) = real_records(sent, *u.choose(&FUNCTIONS)?, u)?;
            let cut = u.int_in_range(0..=records.len())?;
            (records[..cut].to_vec(), count)
        }
        Records::Forged => {
            let mut records = Vec::new();
            let count = u.int_in_range(0..=6)?;
            for _ in 0..count {
                records.push(u.int_in_range(0..=5)?);
                let len: u32 = if u.arbitrary()? {
                    u.int_in_range(0..=16)?
                } else {
                    u.arbitrary()?
                };
                records.extend_from_slice(&len.to_le_bytes());
                for _ in 0..len.min(16) {
                    records.push(u.arbitrary()?);
                }
                if u.arbitrary()? {
                    let chain: Vec<(String, String)> = u.arbitrary()?;
                    remote::write(&chain, &mut records).unwrap();
                } else {
                    let bytes: Vec<u8> = u.arbitrary()?;
                    records.extend_from_slice(&bytes);
                }
            }
            (records, count)
        }
    };
    // Every item of the frame is answered exactly once, whatever the bytes (checked in
    // `outcomes`), as each adapter reads them.
    for outcomes in [
        outcomes::<Triple>(&records, count),
        outcomes::<Length>(&records, count),
        outcomes::<Checked>(&records, count),
        outcomes::<Chained>(&records, count),
        outcomes::<IoFailing>(&records, count),
    ] {
        assert_eq!(outcomes.len(), count);
    }
    *tally.frames.entry(Damage::from(how)).or_default() += 1;

    // Any body, as any frame a worker sends or the handshake: refused, never a panic.
    let mut body: Vec<u8> = u.arbitrary()?;
    if let Some(kind) = body.first_mut() {
        *kind = *u.choose(&[
            wire::READY,
            wire::REFUSED,
            wire::DYING,
            wire::INIT_FAILED,
            wire::HELLO,
            wire::FORGET,
            wire::JOB,
            wire::SETUP,
            *kind,
        ])?;
    }
    let _ = wire::decode_ready(&body);
    let _ = wire::decode_refused(&body);
    let _ = wire::decode_dying(&body);
    let _ = wire::decode_init_failed(&body);
    let _ = wire::decode_forget(&body);
    let _ = wire::state_of(&body);
    if let Ok((key, Some(initializer))) = wire::decode_hello(&body) {
        let _ = initializer.resolve::<super::worker::RunInit>(key);
    }
    let _ = wire::read_frame(&mut &body[..], &mut Vec::new());
    *tally.frames.entry(Damage::Arbitrary).or_default() += 1;
    Ok(())
}

impl From<Records> for Damage {
    fn from(how: Records) -> Self {
        match how {
            Records::Arbitrary => Damage::Arbitrary,
            Records::Flipped => Damage::FlippedBytes,
            Records::Truncated => Damage::Truncated,
            Records::Forged => Damage::GarbageItems,
        }
    }
}

/// Parent-side cases: each decodes one `RESULTS` body five ways and one other body
/// seven ways.
const PARENT_CASES: u64 = 60_000;

#[test]
fn the_parent_survives_damaged_answers() {
    let sent = Sent::new();
    let mut tally = Tally::default();
    for case in 0..PARENT_CASES {
        arbtest::arbtest(|u| match parent_case(&sent, u, &mut tally) {
            Ok(()) | Err(arbitrary::Error::NotEnoughData) => Ok(()),
            Err(err) => Err(err),
        })
        .seed(seed(0, case))
        .run();
    }
    let total = report("the_parent_survives_damaged_answers", &tally);
    assert!(total >= PARENT_CASES, "{total} frames");
}

/// An error chain of 100,000 levels (2 bytes each on the wire) comes back as an error
/// the parent can show, drop and clone without overflowing its stack (it aborted the
/// parent before the chain was bounded).
#[test]
fn a_deep_error_chain_does_not_overflow_the_parent() {
    let chain = vec![(String::new(), String::new()); 100_000];
    let mut records = vec![remote::ERR];
    records.extend_from_slice(&0_u32.to_le_bytes());
    remote::write(&chain, &mut records).unwrap();
    let decoded = decode_records::<Chained>(&records, 0, 1, (0, None), None);
    let (_, failure) = decoded.failures.into_iter().next().unwrap();
    let ItemFailure::Returned { error, .. } = failure else {
        panic!("the item failed with its error");
    };
    // The outermost levels, then one that says how many more there were.
    assert_eq!(error.chain().count(), 256);
    let last = error.chain().last().unwrap().to_string();
    assert_eq!(last, "... and 99745 more sources, not shown");
    let copy = error.downcast_ref::<remote::RemoteError>().unwrap().clone();
    drop((error, copy));
}

/// Of the same type as `triple`, for the live worker: if a worker ever called it, the
/// worker process would exit with status 66, which the test sees.
fn exits_if_called(_: u64) -> u64 {
    std::process::exit(66)
}

/// A worker process, started as a pool starts one, over a socket of the test's own.
struct LiveWorker {
    child: std::process::Child,
    socket: std::os::unix::net::UnixStream,
    reader: std::io::BufReader<std::os::unix::net::UnixStream>,
}

impl LiveWorker {
    fn start(key: Key) -> Self {
        use std::os::unix::process::CommandExt;
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let child = std::process::Command::new("/proc/self/exe")
            .arg0("twat-mp-worker")
            .env(super::worker::MARKER, super::worker::marker_for_child())
            .stdin(std::process::Stdio::from(std::os::fd::OwnedFd::from(
                theirs,
            )))
            .spawn()
            .unwrap();
        // A worker that hangs fails the test instead of hanging it.
        ours.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        let reader = std::io::BufReader::new(ours.try_clone().unwrap());
        let mut worker = LiveWorker {
            child,
            socket: ours,
            reader,
        };
        let mut hello = Vec::new();
        wire::encode_hello::<super::worker::RunInit>(&mut hello, key, None);
        worker.send(&hello);
        let ready = worker.answer();
        assert_eq!(ready.len(), 1);
        assert_eq!(wire::decode_ready(&ready[0]), Ok(worker.child.id()));
        worker
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.socket.write_all(bytes).unwrap();
    }

    /// The frames of its next answer: up to `DONE` or `REFUSED` (or `READY`).
    fn answer(&mut self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        loop {
            let mut body = Vec::new();
            let more = wire::read_frame(&mut self.reader, &mut body)
                .expect("the worker answers within a minute");
            assert!(more, "the worker closed its socket without an answer");
            let last = matches!(body[0], wire::DONE | wire::REFUSED | wire::READY);
            frames.push(body);
            if last {
                return frames;
            }
        }
    }

    /// Its answer to `job`, as results decoded by the parent, or its refusal.
    fn run(
        &mut self,
        stream: &[u8],
        job: &Job,
    ) -> Result<Vec<Result<String, String>>, (bool, String)> {
        self.send(stream);
        let mut results = Vec::new();
        for body in self.answer() {
            match body[0] {
                wire::RESULTS => {
                    let count = wire::Cursor::new(&body[1..]).u32().unwrap() as usize;
                    results.extend(job.decode(&body[5..], count));
                }
                wire::DONE => return Ok(results),
                wire::REFUSED => return Err(wire::decode_refused(&body).unwrap()),
                kind => panic!("a frame of kind {kind}"),
            }
        }
        unreachable!("an answer ends with DONE or REFUSED")
    }
}

/// Garbage written into a live worker's socket after its handshake: each damaged job is
/// refused in clear words and the worker serves the next one; a function it was not sent
/// never runs in it; a stream it cannot read on from makes it refuse for good and exit
/// with its own status, 101, at once.
#[test]
fn garbage_into_a_live_workers_socket() {
    let sent = Sent::new();
    let key = Key::random();
    let mut worker = LiveWorker::start(key);
    let seeds = 0..200_u64;
    let mut refused = 0;
    for case in seeds {
        let bytes: Vec<u8> = (0..512_u64).map(|at| seed(case, at) as u8).collect();
        let mut u = Unstructured::new(&bytes);
        let job = job(&sent, *u.choose(&FUNCTIONS).unwrap(), &mut u).unwrap();
        // A valid job, then the same job damaged in each way a worker survives.
        let mut stream = job.set_up(&sent, key).unwrap_or_default();
        stream.extend_from_slice(&job.frame(key));
        assert_eq!(
            worker.run(&stream, &job),
            Ok(job.expected.clone()),
            "case {case}"
        );
        let unsent = (sent.unsent[0].0, sent.unsent[0].1);
        let exits = EntryOffset::<RunJob>::of(Triple::new(exits_if_called)).unwrap();
        for damaged in [
            job.frame(Key::random()),
            raw_job(
                wire::JOB,
                unsent,
                &job.header(),
                tag_of(&job.frame(key)),
                &job.payload,
            ),
            raw_job(
                wire::JOB,
                (exits.entry(), exits.code()),
                &job.header(),
                tag_of(&job.frame(key)),
                &job.payload,
            ),
        ] {
            let (fatal, reason) = worker.run(&damaged, &job).unwrap_err();
            assert!(!fatal, "case {case}: {reason}");
            assert!(
                reason.starts_with("unknown function: "),
                "case {case}: {reason}"
            );
            refused += 1;
        }
        let mut garbage = job.frame(key);
        let start = garbage.len() - job.payload.len();
        for byte in &mut garbage[start..] {
            *byte = u.arbitrary().unwrap_or(0xff);
        }
        // Under a valid tag: answered item by item, each a value or a failure.
        let outcomes = worker
            .run(&garbage, &job)
            .expect("garbage items are answered");
        assert_eq!(outcomes.len(), job.expected.len(), "case {case}");
    }
    assert_eq!(refused, 600);
    // A length past the limit: the stream cannot be read on from.
    worker.send(&u32::MAX.to_le_bytes());
    let answer = worker.answer();
    let (fatal, reason) = wire::decode_refused(&answer[0]).unwrap();
    assert!(fatal);
    assert!(
        reason.starts_with("malformed frame: a length of 4294967295 bytes"),
        "{reason}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not exit"
        );
        // Polling a child's exit: `wait` has no time limit.
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(101));
}
