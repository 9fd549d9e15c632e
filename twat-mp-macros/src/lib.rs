//! The `#[pmap]`, `#[imap]`, `#[amap]` and `#[apmap]` attributes of
//! [twat-mp](https://docs.rs/twat-mp). Depend on `twat-mp` and use them from there
//! (`use twat_mp::pmap;`): the code they write calls twat-mp's runtime.
//!
//! ```
//! use twat_mp::pmap;
//!
//! /// The number of divisors of `n`, for many `n` at once, on a thread pool.
//! #[pmap]
//! fn divisors(n: u64) -> usize {
//!     (1..=n).filter(|d| n % d == 0).count()
//! }
//!
//! assert_eq!(divisors(1..=6), [1, 2, 2, 3, 2, 4]);
//! ```
//!
//! | attribute | turns `fn f(x: T) -> R` into |
//! |---|---|
//! | [`#[pmap]`](macro@pmap) | `fn f(items: impl IntoIterator<Item = T>) -> Vec<R>`: eager, input order |
//! | [`#[imap]`](macro@imap) | `fn f(items) -> impl Iterator<Item = R>`: lazy, bounded memory |
//! | [`#[amap]`](macro@amap) | `fn f(items) -> AsyncResult<Vec<R>>`: returns at once |
//! | [`#[apmap]`](macro@apmap) | `async fn f(x: T) -> R` into `async fn f(items) -> Vec<R>` (twat-mp's `aio` feature) |
//!
//! A function returning `Result<R, E>` gives `Result<Vec<R>, E>`, the lowest failing
//! item's own error; a panic resumes in the caller with its payload.
//!
//! **Threads, processes or async?** By default the items run on a thread pool: any
//! function, `Send` items, and a panic costs its item (a segfault or abort, the program).
//! With `process` they run in worker processes: the items must be serde types, and a
//! crash, abort or `timeout` costs only its item. `#[apmap]` runs async functions, many
//! tasks per worker, for I/O. With `mpi` (twat-mp's `mpi` feature), `#[pmap]` and
//! `#[imap]` run the items on the ranks of an MPI job. twat-mp's
//! [front page](https://docs.rs/twat-mp/latest/twat_mp/#threads-processes-or-async)
//! compares them in full, and
//! [`twat_mp::expansion`](https://docs.rs/twat-mp/latest/twat_mp/expansion/index.html)
//! shows what each attribute writes (what `cargo expand` shows).
//!
//! | option | taken by | meaning |
//! |---|---|---|
//! | `nodes = 4` | all | workers in the pool (default: the usable CPUs) |
//! | `chunksize = 64` | `pmap`, `imap`, `amap` | items handed to a worker at a time |
//! | `debug` | all | the pool's events and each failure, through `tracing` |
//! | `process` | all | run the items in worker processes |
//! | `timeout = "5s"` | all, with `process`; `apmap` alone too | an item running longer fails as timed out |
//! | `retries = 2` | all, with `process` | run an item whose worker crashed or timed out again |
//! | `init = make_state` | `pmap`, `imap`, `amap` | a state per worker, the first parameter `&mut S` |
//! | `ordered = false` | `imap` | results in completion order |
//! | `concurrency = 100` | `apmap` | tasks in flight per worker |
//! | `result` | all | the return type is a `Result` behind an alias |
//! | `progress` | all (feature `progress`) | a progress bar per call on stderr |
//! | `mpi` | `pmap`, `imap` (feature `mpi`) | run the items on the ranks of the MPI job |
//!
//! Inside, each attribute goes through `parse` (the options and the signature),
//! `validate` (misuse refused with an error on the offending token, from `options`, the
//! one table of every option and where it has an effect) and `expand` (the mapper).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;

mod expand;
mod options;
mod parse;
mod validate;

#[cfg(test)]
mod snapshots;

use parse::{Errors, Kind};

/// Turns `fn f(x: T) -> R` into `fn f(items: impl IntoIterator<Item = T>) -> Vec<R>`: every
/// item runs in parallel on a thread pool, the results come back in input order.
///
/// ```
/// use twat_mp::pmap;
///
/// /// The number of divisors of `n`.
/// #[pmap(nodes = 2)]
/// pub fn divisors(n: u64) -> usize {
///     (1..=n).filter(|d| n % d == 0).count()
/// }
///
/// assert_eq!(divisors(1..=6), [1, 2, 2, 3, 2, 4]);
/// ```
///
/// # What the function may be
///
/// - Several parameters map over tuples: `fn f(a: A, b: B)` takes
///   `impl IntoIterator<Item = (A, B)>`.
/// - Returning `Result<R, E>` gives `Result<Vec<R>, E>`: the lowest failing item's own
///   error, as it returned it. The error must be `Send`, as it comes back from the pool's
///   threads: `Box<dyn Error + Send + Sync>`, not `Box<dyn Error>`.
/// - A panic in an item resumes in the caller with its original payload (the lowest
///   failing item's, if several fail).
/// - Visibility, docs, generics and where clauses are kept; items and results must be
///   `Send`. Items may borrow (`fn f(line: &str)`): the call blocks until all are done
///   (with `process` they must own their data: `String`, not `&str`).
/// - An associated function (in an `impl`) maps as a free one does, `Self` and the impl's
///   generics included: `Type::f(items)`.
/// - Docs, lint levels, `cfg`, `deprecated` and `must_use` stay on the function you call;
///   other attributes (`#[inline]`, `#[tracing::instrument]`, ...) stay on your function of
///   one item, which the mapper then keeps inside it unchanged, as a nested function. A
///   nested function cannot see `Self` or the impl's generics: an associated function
///   with such an attribute (or returning `impl Trait`) is refused where it writes `Self`;
///   move its body into an associated function of its own that carries the attribute.
///
/// # Which functions return a `Result`
///
/// An attribute sees the names in the signature, not the types behind them: the function
/// returns a `Result` when its return type's path ends in `Result` — `Result<R, E>`,
/// `io::Result<R>`, `anyhow::Result<R>`, your crate's own `Result<R>`, `fmt::Result`. Any
/// other name is a plain value, even an alias of a `Result`; mark such an alias with
/// `result`, and the mapper returns the `Result<Vec<R>, E>` it stands for:
///
/// ```
/// use twat_mp::pmap;
///
/// #[derive(Debug, PartialEq)]
/// struct NotANumber(String);
///
/// type Parsed<T> = Result<T, NotANumber>;
///
/// #[pmap(result)]
/// fn parse(text: &str) -> Parsed<u32> {
///     text.parse().map_err(|_| NotANumber(text.to_owned()))
/// }
///
/// assert_eq!(parse(["1", "22"]), Ok(vec![1, 22]));
/// assert_eq!(parse(["1", "x"]), Err(NotANumber("x".to_owned())));
/// ```
///
/// # Options
///
/// | option | meaning |
/// |---|---|
/// | `nodes = 4` | workers in the pool (default: the usable CPUs) |
/// | `chunksize = 64` | items handed to a worker at a time (default: chosen per call) |
/// | `debug` | report the pool's events and each failure with its item through `tracing` |
/// | `process` | run the items in worker processes (a `ProcessPool`) instead of threads |
/// | `mpi` | run the items on the ranks of an MPI job (the program's one `MpiPool`; twat-mp's `mpi` feature, else a compile error that says how to enable it): not with `process`, `timeout` or `retries`; see "Over the ranks of an MPI job" below |
/// | `timeout = "5s"` | with `process`: kill an item's worker after this long (`ms`, `s`, `m`, `h`) |
/// | `retries = 2` | with `process`: run an item whose worker crashed or timed out again, on a fresh worker, up to this many more times |
/// | `result` | the return type is a `Result` behind an alias of another name (see above) |
/// | `progress` | a progress bar on stderr per call (twat-mp's `progress` feature; without it, a compile error that says how to enable it) |
/// | `init = make_state` | a state per worker (thread, or process with `process`), the function's first parameter (see below) |
///
/// Mappers with the same options share one pool, built on first use.
///
/// # Over the ranks of an MPI job: `mpi`
///
/// `#[pmap(mpi)]` and `#[imap(mpi)]` send the items to the ranks of the MPI job the
/// program runs in (`mpirun -n 4 prog`; alone, or under `mpirun -n 1`, rank 0's threads
/// map them), as `MpiPool` does, with `process`'s rules for the function and the types.
/// Every `mpi` attribute shares the program's one `MpiPool`, built by the **first call**
/// of any of them, with that call's `nodes` (rank 0's threads in a job of one rank),
/// `chunksize`, `debug` and `progress`; a later call with other values of these panics,
/// saying so. That first call is where the ranks part: on rank 0 it returns; on every
/// other rank it never returns, the rank serves until rank 0's program exits, then exits
/// with status 0. So **code before the first `mpi` call runs on every rank, and nothing
/// after it runs on ranks other than 0**: make that call before any side effect that
/// only rank 0 should have. When rank 0's program exits (`main` returns, or
/// `std::process::exit`), a hook stops the serving ranks and finalises MPI, so the job
/// ends cleanly. `#[amap]` and `#[apmap]` do not take `mpi`.
///
/// # A state per worker: `init`
///
/// With `init = make_state`, the function's first parameter is the worker's state,
/// `state: &mut S` where `make_state` returns `S`, and the mapper maps over the remaining
/// parameters. `make_state()` runs on a pool thread before that thread's first item of the
/// call, at most once per thread per call (a thread that gets no item never runs it); the
/// state stays with that thread for the call and is dropped when the call ends, as
/// `ThreadPool::map_init` does it. A panic in `make_state` resumes in the caller as the
/// failing item's panic would.
///
/// ```
/// use twat_mp::pmap;
///
/// fn make_buffer() -> String {
///     String::with_capacity(64)
/// }
///
/// /// How many digits `n` has, written into the thread's reused buffer.
/// #[pmap(nodes = 2, init = make_buffer)]
/// fn digits(buffer: &mut String, n: u64) -> usize {
///     buffer.clear();
///     buffer.push_str(&n.to_string());
///     buffer.len()
/// }
///
/// assert_eq!(digits([7, 42, 1000]), [1, 2, 4]);
/// ```
///
/// With `process`, the state is made and kept **in each worker process**, as
/// `ProcessPool::map_init` does it: `make_state()` runs there at most once per worker
/// process per call, before that worker's first item of the call, and the state stays
/// there (it never crosses, so it needs no serde) until the call ends; a worker that
/// replaces one that died makes its own. `make_state` is a function, as the mapped
/// function itself is. A panic in `make_state` fails that worker's items of the call with
/// `ErrorKind::InitPanicked`, resumed in the caller as a panic whose payload is that
/// `WorkerError` (the original payload stayed in the worker process).
///
/// ```
/// use twat_mp::pmap;
///
/// /// Runs in each worker process, once per call.
/// fn worker_pid() -> u32 {
///     std::process::id()
/// }
///
/// /// Which worker process ran each item.
/// #[pmap(process, nodes = 2, init = worker_pid)]
/// fn ran_by(pid: &mut u32, _item: u64) -> u32 {
///     *pid
/// }
///
/// let pids = ran_by(0..100);
/// assert!(pids.iter().all(|&pid| pid != std::process::id()));
/// let mut distinct = pids.clone();
/// distinct.sort();
/// distinct.dedup();
/// assert!(distinct.len() <= 2);
/// ```
///
/// `#[imap]` and `#[amap]` take `init` too, with or without `process`; `#[apmap]` does not
/// (a worker's tasks run at once and cannot share one `&mut S` across `.await`: use
/// `AsyncMultiPool::map_init`).
///
/// # Errors at compile time
///
/// A function without a parameter, a method (`self`), an `async fn` (use [`apmap`]), an
/// `unsafe`, `const` or `extern` fn, `impl Trait` parameters, `-> !`, two of these
/// attributes on one function, borrowed items or results where they cannot be (with
/// `process`; in [`imap`], [`amap`], [`apmap`]), a `Box<dyn Error>` error type, unknown or
/// mistyped options, options that would do nothing where they are written (`timeout`
/// without `process`, `ordered` outside [`imap`], `result` on a recognised `Result`, ...),
/// and `init` without a first `&mut` parameter or with a function of another state type
/// are refused with an error on the offending token that says what to write.
#[proc_macro_attribute]
pub fn pmap(attr: TokenStream, item: TokenStream) -> TokenStream {
    mapper(Kind::Pmap, attr.into(), item.into(), cfg!(feature = "aio")).into()
}

/// Turns `fn f(x: T) -> R` into `fn f(items) -> impl Iterator<Item = R>`: a lazy parallel
/// map that pulls its input on a thread of its own, only as workers free up, so an endless
/// input runs in bounded memory and a live input (a channel, a socket, the lines of a
/// pipe) never holds back a result that is ready.
///
/// ```
/// use twat_mp::imap;
///
/// #[imap]
/// fn cube(n: u64) -> u64 {
///     n * n * n
/// }
///
/// // An endless input: only what is needed is computed.
/// let first: Vec<u64> = cube(1..).take(4).collect();
/// assert_eq!(first, [1, 8, 27, 64]);
///
/// // `ordered = false`: each result as soon as it is ready.
/// #[imap(ordered = false)]
/// fn halve(n: u64) -> u64 {
///     n / 2
/// }
///
/// let mut halves: Vec<u64> = halve(vec![2, 4, 6]).collect();
/// halves.sort();
/// assert_eq!(halves, [1, 2, 3]);
/// ```
///
/// The results come in input order, or in completion order with `ordered = false`. A
/// function returning `Result<R, E>` (by the rule of [`pmap`]) gives an iterator of each
/// item's own `Result`. A panic in an item resumes in the caller when the iteration reaches it. The items and results
/// must be `Send + 'static`, and so must the input iterator (`twat_mp::LazyInput`): it is
/// pulled on a thread of its own, so that the caller's thread can wait for results while
/// that one waits for input. Collect a borrowed input first; for standard input, use
/// `BufReader::new(io::stdin()).lines()`. Dropping the iterator stops the pulling, though
/// a pull blocked in a live input's `next` ends only when that call returns. Options:
/// those of [`pmap`], and `ordered = false`.
#[proc_macro_attribute]
pub fn imap(attr: TokenStream, item: TokenStream) -> TokenStream {
    mapper(Kind::Imap, attr.into(), item.into(), cfg!(feature = "aio")).into()
}

/// Turns `fn f(x: T) -> R` into `fn f(items) -> AsyncResult<Vec<R>>`: the call returns at
/// once while the items run in the background; `get()` (or `.await`) gives what [`pmap`]
/// would have returned.
///
/// ```
/// use twat_mp::amap;
///
/// #[amap]
/// fn word_count(text: String) -> usize {
///     text.split_whitespace().count()
/// }
///
/// let pending = word_count(vec!["a b".to_string(), "c d e".to_string()]);
/// // ... other work here, while the pool counts ...
/// assert_eq!(pending.get(), [2, 3]);
/// ```
///
/// With `Result<R, E>` (by the rule of [`pmap`]), `get()` gives `Result<Vec<R>, E>`; a
/// panic in an item resumes in the caller of `get()`. The items and results must be
/// `Send + 'static`: they own their data (`String`, not `&str`). Options: those of
/// [`pmap`] but `mpi` (a call in the background of the program's one `MpiPool` is
/// `MpiPool::amap`).
#[proc_macro_attribute]
pub fn amap(attr: TokenStream, item: TokenStream) -> TokenStream {
    mapper(Kind::Amap, attr.into(), item.into(), cfg!(feature = "aio")).into()
}

/// Turns `async fn f(x: T) -> R` into `async fn f(items) -> Vec<R>`: many items in flight
/// at once on twat-mp's async pool. Needs twat-mp's `aio` feature:
///
/// ```toml
/// twat-mp = { version = "0.1", features = ["aio"] }
/// ```
///
/// ```
/// use twat_mp::apmap;
///
/// /// How many words a line has, after a wait as I/O would have.
/// #[apmap(concurrency = 16)]
/// async fn word_count(line: String) -> usize {
///     tokio::task::yield_now().await;
///     line.split_whitespace().count()
/// }
///
/// #[tokio::main]
/// async fn main() {
///     let lines = ["a b c", "", "one"].map(String::from);
///     assert_eq!(word_count(lines).await, [3, 0, 1]);
/// }
/// ```
///
/// Mappers with the same options share one async pool. A function returning
/// `Result<R, E>` gives `Result<Vec<R>, E>`, as with [`pmap`] (and by its rule). The items
/// and results must be `Send + 'static`: they own their data (`String`, not `&str`).
/// Without the `aio` feature the attribute is a compile error that says how to enable it.
///
/// # Options
///
/// | option | meaning |
/// |---|---|
/// | `nodes = 4` | workers in the pool, each with its own runtime (default: the usable CPUs) |
/// | `concurrency = 100` | tasks in flight per worker at a time (default: 512) |
/// | `timeout = "5s"` | a task that runs past it fails as timed out (`ms`, `s`, `m`, `h`) |
/// | `debug` | report the pool's events and each failure with its item through `tracing` |
/// | `process` | run the tasks in worker processes, each with its own runtime |
/// | `retries = 2` | with `process`: run a task whose worker process died under it, or that timed out, again (up to this many more times) |
/// | `result` | the return type is a `Result` behind an alias of another name |
/// | `progress` | a progress bar on stderr per call (twat-mp's `progress` feature) |
#[proc_macro_attribute]
pub fn apmap(attr: TokenStream, item: TokenStream) -> TokenStream {
    mapper(Kind::Apmap, attr.into(), item.into(), cfg!(feature = "aio")).into()
}

/// One attribute, start to end. On misuse, the errors come with what keeps the function's
/// callers free of follow-on errors: the mapper without its options when only options are
/// wrong (or when only `process` cannot take the types), a stand-in mapper when the types
/// cannot be mapped in any mode, else the function as written.
pub(crate) fn mapper(
    kind: Kind,
    attr: TokenStream2,
    item: TokenStream2,
    aio: bool,
) -> TokenStream2 {
    if kind == Kind::Apmap && !aio {
        let error = syn::Error::new(
            proc_macro2::Span::call_site(),
            "`#[apmap]` needs twat-mp's `aio` feature: in Cargo.toml, write \
             `twat-mp = { version = \"0.1\", features = [\"aio\"] }`",
        )
        .to_compile_error();
        return quote!(#error #item);
    }
    let mut errors = Errors::default();
    let options = parse::parse_options(kind, attr, &mut errors);
    let mut model = match parse::parse_function(kind, options, item.clone()) {
        Ok(model) => model,
        Err(err) => {
            errors.push(err);
            return failed(errors, item);
        }
    };
    if let Err(err) = validate::signature(&model) {
        errors.push(err);
        let mut func = model.func;
        validate::without_never(&mut func);
        return failed(errors, quote!(#func));
    }
    let mut wrong = false;
    for check in [validate::options, validate::types] {
        if let Err(err) = check(&model) {
            errors.push(err);
            wrong = true;
        }
    }
    // The mapper on the default thread pool, or, where threads cannot take the types
    // either, a stand-in.
    let mut stand_in = false;
    if wrong {
        let not_a_state = validate::state_parameter(&model).is_err();
        model.options = without_pool_options(&model);
        if not_a_state {
            // A first parameter that cannot be the state is an item, as without `init`.
            if let Some(state) = model.state.take() {
                model.args.insert(0, state);
            }
        }
        // A state parameter without its `init` cannot be mapped as written.
        stand_in = validate::types(&model).is_err()
            || (model.state.is_some() && model.options.init.is_none());
    }
    let expanded = if stand_in {
        expand::stand_in(&model)
    } else {
        expand::expand(&model)
    };
    match errors.finish(()) {
        Ok(()) => expanded,
        Err(err) => {
            let error = err.to_compile_error();
            quote!(#error #expanded)
        }
    }
}

/// The errors, then `item`.
fn failed(errors: Errors, item: TokenStream2) -> TokenStream2 {
    let error = errors.finish(()).expect_err("an error was pushed");
    let error = error.to_compile_error();
    quote!(#error #item)
}

/// The options of a mapper on the default thread pool: none, but `result` where it is
/// rightly given, since it is about the function's signature (callers rely on it), not
/// the pool.
fn without_pool_options(model: &parse::Model) -> parse::Options {
    parse::Options {
        result: validate::result_option(model)
            .ok()
            .and(model.options.result.clone()),
        // `init` where it is honoured and its state parameter is right: it is about the
        // function's signature too.
        init: (validate::state_parameter(model).is_ok()
            && options::rule("init")
                .is_some_and(|rule| rule.honoured(model.kind, options::Mode::Threads)))
        .then(|| model.options.init.clone())
        .flatten(),
        ..parse::Options::default()
    }
}
