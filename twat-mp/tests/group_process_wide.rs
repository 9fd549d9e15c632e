//! The integration tests are compiled into a few test binaries (`autotests = false` in
//! Cargo.toml, one `[[test]]` per `group_*.rs`), not one per file: each binary compiles
//! the generic pools for its items again and links every dependency, which for forty files
//! took most of CI's test build. Each file of `tests/` stays a file of its own, a module
//! of one group; `support` is declared once per group, and a test that runs itself again
//! in a child process names itself with `support::test_name`.
//!
//! This binary holds the tests that look at the whole process: its threads, file
//! descriptors and child processes (leaks, a dropped pool's threads, workers that outlive
//! their parent), its global tracing subscriber and debug mode. Each of them holds
//! `support::alone()` from its first line, so they run one at a time, and no test of
//! another file runs beside them.

#[macro_use]
mod support;

mod aio_drop;
mod debug_mode;
mod leaks;
mod process_lifecycle;
mod thread_pool_drop;

/// With `autotests = false`, a file of `tests/` that no group declares would never be
/// compiled or run, silently: every file is a `mod` of exactly one group (or is a group,
/// or a `[[test]]` of its own in Cargo.toml).
#[test]
fn every_file_of_tests_is_a_module_of_one_group() {
    // It opens files: not while a test of this binary counts file descriptors.
    let _alone = support::alone();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(".rs").map(str::to_owned))
        .collect();
    files.sort();
    let groups: Vec<&String> = files.iter().filter(|f| f.starts_with("group_")).collect();
    let manifest = std::fs::read_to_string(dir.with_file_name("Cargo.toml")).unwrap();
    for group in &groups {
        let path = format!("path = \"tests/{group}.rs\"");
        assert!(
            manifest.contains(&path),
            "{group}.rs is no [[test]] of Cargo.toml"
        );
    }
    // A file that is a [[test]] of its own (compile_fail) is not a module of a group.
    let is_test_target = |file: &str| manifest.contains(&format!("path = \"tests/{file}.rs\""));
    for file in files
        .iter()
        .filter(|f| !f.starts_with("group_") && !is_test_target(f))
    {
        let declaration = format!("\nmod {file};");
        let renamed = format!("\n#[path = \"{file}.rs\"]\nmod ");
        let declared_in: Vec<&&String> = groups
            .iter()
            .filter(|group| {
                let text = read(&format!("{group}.rs"));
                text.contains(&declaration) || text.contains(&renamed)
            })
            .collect();
        assert_eq!(
            declared_in.len(),
            1,
            "tests/{file}.rs must be a module of exactly one group_*.rs, is in {declared_in:?}"
        );
    }
}
