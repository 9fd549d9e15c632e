//! Misuse of the attributes is a compile error on the offending token, with a hint of the
//! fix: each `tests/ui/<case>.rs` is compiled and its errors compared with
//! `tests/ui/<case>.stderr`. After a deliberate change, regenerate them with
//! `TRYBUILD=overwrite cargo test -p twat-mp --features aio,progress --test compile_fail`
//! and read every diff.
//!
//! With `progress` (on in the README's `cargo test --workspace`, through the root
//! package's default features) every case that exists in that build is compiled. Without
//! it (CI's `cargo test --workspace --test compile_fail --no-default-features --features
//! aio`) only the cases whose errors depend on it: those of `tests/ui/without_progress/`,
//! and the two whose option list names `progress` either way. The other cases' errors come
//! from code that `progress` does not switch, so that second build compiles only what it
//! alone can show.
//!
//! These tests live in `twat-mp`, not in the root package: trybuild makes each dev-dependency
//! of the package under test a dependency of every case, and the root package's heavy ones
//! (axum, reqwest, image, criterion) were checked again in trybuild's own target dir.

#[test]
#[cfg(feature = "progress")]
fn misuse_is_a_compile_error_on_the_offending_token() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    // With `aio` off, `#[apmap]` is refused for that alone (pinned by the macro crate's
    // `apmap_without_aio` snapshot).
    #[cfg(feature = "aio")]
    cases.compile_fail("tests/ui/aio/*.rs");
    // Without `mpi`, the attributes' option says which feature to enable.
    #[cfg(not(feature = "mpi"))]
    cases.compile_fail("tests/ui/without_mpi/*.rs");
    // `process` is built on Linux only.
    #[cfg(target_os = "linux")]
    cases.compile_fail("tests/ui/linux/*.rs");
}

#[test]
#[cfg(not(feature = "progress"))]
fn progress_without_its_feature_is_a_compile_error_naming_it() {
    let cases = trybuild::TestCases::new();
    // The attributes' option and the builders' setter each say which feature to enable.
    cases.compile_fail("tests/ui/without_progress/*.rs");
    // An unknown option's error lists `progress` among the options with the feature or
    // without it.
    cases.compile_fail("tests/ui/misspelled_option.rs");
    cases.compile_fail("tests/ui/unknown_option.rs");
}
