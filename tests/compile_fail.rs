//! Misuse of the attributes is a compile error on the offending token, with a hint of the
//! fix: each `tests/ui/<case>.rs` is compiled and its errors compared with
//! `tests/ui/<case>.stderr`. After a deliberate change, regenerate them with
//! `TRYBUILD=overwrite cargo test --all-features --test compile_fail` and read every diff.

#[test]
fn misuse_is_a_compile_error_on_the_offending_token() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
    // With `aio` off, `#[apmap]` is refused for that alone (pinned by the macro crate's
    // `apmap_without_aio` snapshot).
    #[cfg(feature = "aio")]
    cases.compile_fail("tests/ui/aio/*.rs");
    // Without `progress`, the attributes' option and the builders' setter each say which
    // feature to enable (`cargo test --test compile_fail`, default features, runs them).
    #[cfg(not(feature = "progress"))]
    cases.compile_fail("tests/ui/without_progress/*.rs");
    // Without `mpi`, the attributes' option says which feature to enable.
    #[cfg(not(feature = "mpi"))]
    cases.compile_fail("tests/ui/without_mpi/*.rs");
    // `process` is built on Linux only.
    #[cfg(target_os = "linux")]
    cases.compile_fail("tests/ui/linux/*.rs");
}
