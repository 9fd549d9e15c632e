//! What the attributes require of the function they map, as traits whose unmet bounds
//! explain themselves in the user's terms rather than in the runtime's. Reachable as
//! `twat_mp::__private` only, for the expansions.

/// The error of a function under `#[pmap]`, `#[imap]`, `#[amap]` or `#[apmap]` on threads:
/// the lowest failing item's error is handed back from the pool's thread that ran it, so
/// it must be `Send`. (The attribute itself refuses the common `Box<dyn Error>` on the
/// return type; this bound speaks for every other error type.)
#[diagnostic::on_unimplemented(
    message = "the error type `{Self}` must be `Send`: the failing item's error comes back \
               from the pool's threads",
    label = "the function's error type is not `Send`",
    note = "a boxed error must say so: `Box<dyn Error + Send + Sync>`; for an error of your \
            own, hold `Arc` rather than `Rc`, and `Mutex` rather than `RefCell`"
)]
pub trait MappedError: Send {}

impl<E: Send> MappedError for E {}

/// A `Result` behind a type alias the attribute cannot see through, marked with the
/// `result` option: what the mapper returns for it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Result`: the `result` option marks a function that returns \
               a `Result` behind a type alias",
    label = "not a `Result`",
    note = "remove `result` from the attribute"
)]
pub trait Fallible {
    /// `Result<Vec<R>, E>` for `Result<R, E>`: every item's value, or the lowest failing
    /// item's own error.
    type Collected;
}

impl<R, E> Fallible for Result<R, E> {
    type Collected = Result<Vec<R>, E>;
}
