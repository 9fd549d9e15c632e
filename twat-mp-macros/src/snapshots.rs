//! Expansion snapshots: what `cargo expand` shows for representative inputs, pinned in
//! `tests/snapshots/<name>.rs` (input as a comment on top, then the expansion).
//!
//! A changed expansion fails the test with both texts; after checking the new one, write
//! it with `UPDATE_SNAPSHOTS=1 cargo test -p twat-mp-macros snapshots`.
//!
//! twat-mp's page on what the attributes expand to (`twat-mp/src/expansion.md`, the docs
//! of `twat_mp::expansion`) shows some of these snapshots: each code block after a line
//! `<!-- snapshot: NAME -->` holds the snapshot `NAME` between hidden doctest lines (`# `)
//! that set it up and call it. A block that differs from its snapshot fails
//! `the_expansion_page_shows_the_snapshots`; `UPDATE_SNAPSHOTS=1` rewrites those blocks too,
//! keeping their hidden lines.

use std::path::PathBuf;

use crate::parse::Kind;

struct Case {
    name: &'static str,
    kind: Kind,
    attr: &'static str,
    item: &'static str,
    aio: bool,
}

const fn case(name: &'static str, kind: Kind, attr: &'static str, item: &'static str) -> Case {
    Case {
        name,
        kind,
        attr,
        item,
        aio: true,
    }
}

const CASES: &[Case] = &[
    case("pmap", Kind::Pmap, "", "fn square(x: u64) -> u64 { x * x }"),
    case(
        "pmap_options",
        Kind::Pmap,
        "nodes = 4, chunksize = 64, debug",
        "/// Squares one number.\npub fn square(x: u64) -> u64 { x * x }",
    ),
    case(
        "pmap_result",
        Kind::Pmap,
        "",
        "fn parse(line: &str) -> Result<u32, std::num::ParseIntError> { line.trim().parse() }",
    ),
    case(
        "pmap_io_result",
        Kind::Pmap,
        "",
        "pub fn size(path: PathBuf) -> io::Result<u64> { Ok(fs::metadata(path)?.len()) }",
    ),
    case(
        "pmap_unit",
        Kind::Pmap,
        "",
        "fn touch(path: PathBuf) { let _ = fs::write(path, b\"\"); }",
    ),
    case(
        "pmap_several_args",
        Kind::Pmap,
        "",
        "fn label((x, y): (u8, u8), mut n: u64, name: &str) -> String { n += 1; format!(\"{name}{x}{y}{n}\") }",
    ),
    case(
        "pmap_generic",
        Kind::Pmap,
        "",
        "pub(crate) fn describe<T: Debug>(x: T) -> String where T: Clone { format!(\"{x:?}\") }",
    ),
    case(
        "pmap_generic_unbounded",
        Kind::Pmap,
        "",
        "fn identity<T>(x: T) -> T { x }",
    ),
    case(
        "pmap_named_items",
        Kind::Pmap,
        "",
        "fn items(item: u32, items: u32) -> u32 { item + items }",
    ),
    case(
        "pmap_borrowed_result",
        Kind::Pmap,
        "",
        "fn first_word(line: &str) -> &str { line.split(' ').next().unwrap_or(\"\") }",
    ),
    case(
        "pmap_attributes",
        Kind::Pmap,
        "",
        "/// Docs.\n#[must_use]\n#[allow(clippy::cast_possible_truncation)]\n#[inline]\n#[tracing::instrument]\nfn low_byte(x: u64) -> u8 { x as u8 }",
    ),
    case(
        "pmap_process",
        Kind::Pmap,
        "process, nodes = 2, timeout = \"1.5s\"",
        "fn square(x: u64) -> u64 { x * x }",
    ),
    case(
        "pmap_process_retries",
        Kind::Pmap,
        "process, retries = 2",
        "fn square(x: u64) -> u64 { x * x }",
    ),
    case(
        "pmap_process_result",
        Kind::Pmap,
        "process",
        "fn parse(line: String) -> Result<u32, String> { line.parse().map_err(|_| line) }",
    ),
    case(
        "pmap_associated",
        Kind::Pmap,
        "",
        "fn scaled(x: u64) -> Self { Self(x * Self::FACTOR) }",
    ),
    case(
        "pmap_recursive",
        Kind::Pmap,
        "",
        "fn fib(n: u64) -> u64 { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }",
    ),
    case(
        "pmap_result_alias",
        Kind::Pmap,
        "result",
        "fn parse(line: String) -> Parsed<u32> { line.parse().map_err(Bad) }",
    ),
    case(
        "pmap_fmt_result",
        Kind::Pmap,
        "",
        "fn check(x: u8) -> fmt::Result { if x > 9 { Err(fmt::Error) } else { Ok(()) } }",
    ),
    case(
        "pmap_process_borrowed_item",
        Kind::Pmap,
        "process",
        "fn length(line: &str) -> usize { line.len() }",
    ),
    case(
        "pmap_never",
        Kind::Pmap,
        "",
        "fn fail(x: u8) -> ! { panic!(\"{x}\") }",
    ),
    case("imap", Kind::Imap, "", "fn square(x: u64) -> u64 { x * x }"),
    case(
        "imap_unordered_result",
        Kind::Imap,
        "ordered = false, nodes = 8",
        "fn parse(line: String) -> Result<u32, std::num::ParseIntError> { line.parse() }",
    ),
    case(
        "imap_generic",
        Kind::Imap,
        "",
        "fn wrap<T: Clone>(x: T) -> Vec<T> { vec![x] }",
    ),
    case(
        "imap_borrowed_item",
        Kind::Imap,
        "",
        "fn length(line: &str) -> usize { line.len() }",
    ),
    case(
        "imap_process",
        Kind::Imap,
        "process, timeout = \"250ms\"",
        "fn square(x: u64) -> u64 { x * x }",
    ),
    case("amap", Kind::Amap, "", "fn square(x: u64) -> u64 { x * x }"),
    case(
        "amap_result",
        Kind::Amap,
        "chunksize = 16",
        "fn load(path: PathBuf) -> anyhow::Result<String> { Ok(fs::read_to_string(path)?) }",
    ),
    case(
        "amap_process_result",
        Kind::Amap,
        "process",
        "fn load(path: PathBuf) -> Result<String, String> { fs::read_to_string(path).map_err(|e| e.to_string()) }",
    ),
    case(
        "apmap",
        Kind::Apmap,
        "concurrency = 32, timeout = \"5s\"",
        "pub async fn fetch(url: String) -> usize { get(&url).await.len() }",
    ),
    case(
        "apmap_result_generic",
        Kind::Apmap,
        "",
        "async fn fetch<U: AsRef<str>>(url: U) -> Result<Bytes, Error> { get(url.as_ref()).await }",
    ),
    case(
        "apmap_process",
        Kind::Apmap,
        "process, nodes = 4",
        "async fn fetch(url: String) -> usize { get(&url).await.len() }",
    ),
    Case {
        aio: false,
        ..case(
            "apmap_without_aio",
            Kind::Apmap,
            "",
            "async fn fetch(url: String) -> usize { get(&url).await.len() }",
        )
    },
    case(
        "pmap_init",
        Kind::Pmap,
        "init = make_buffer, nodes = 2",
        "fn render(buffer: &mut String, n: u64) -> usize { buffer.clear(); buffer.push_str(&n.to_string()); buffer.len() }",
    ),
    case(
        "pmap_process_init",
        Kind::Pmap,
        "process, init = connect",
        "fn lookup(db: &mut Db, key: String) -> Option<String> { db.get(&key) }",
    ),
    case(
        "imap_init_result_several_args",
        Kind::Imap,
        "init = Client::connect",
        "fn fetch(client: &mut Client, url: String, tries: u8) -> Result<Vec<u8>, Error> { client.get(&url, tries) }",
    ),
    case(
        "amap_init_inner_function",
        Kind::Amap,
        "init = Vec::new",
        "#[inline]\nfn push(seen: &mut Vec<u8>, x: u8) -> usize { seen.push(x); seen.len() }",
    ),
    case(
        "error_init_without_state",
        Kind::Pmap,
        "init = make_buffer",
        "fn length(x: u64) -> usize { x.to_string().len() }",
    ),
    case(
        "error_in_the_signature",
        Kind::Pmap,
        "nodes = 0",
        "async fn square(x: u64) -> u64 { x * x }",
    ),
    case(
        "error_in_the_options",
        Kind::Pmap,
        "nodes = 0, debug, process",
        "fn square<T: Mul + Copy>(x: T) -> T::Output { x * x }",
    ),
];

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

fn render(case: &Case) -> String {
    let attr = case.attr.parse().expect("the attribute tokenizes");
    let item = case.item.parse().expect("the item tokenizes");
    let expanded = crate::mapper(case.kind, attr, item, case.aio);
    let file: syn::File = syn::parse2(expanded.clone()).unwrap_or_else(|err| {
        panic!(
            "{}: the expansion does not parse ({err}):\n{expanded}",
            case.name
        )
    });
    let mut header = format!("// #[{}", case.kind.name());
    if !case.attr.is_empty() {
        header += &format!("({})", case.attr);
    }
    header += "]";
    for line in case.item.lines() {
        header += &format!("\n// {line}");
    }
    if !case.aio {
        header += "\n// (without the `aio` feature)";
    }
    format!("{header}\n\n{}", prettyplease::unparse(&file))
}

#[test]
fn expansions_match_their_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v != "0");
    let mut changed = Vec::new();
    for case in CASES {
        let path = snapshot_dir().join(format!("{}.rs", case.name));
        let actual = render(case);
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if actual == expected {
            continue;
        }
        if update {
            std::fs::create_dir_all(snapshot_dir()).unwrap();
            std::fs::write(&path, &actual).unwrap();
        } else {
            changed.push(format!(
                "--- {} (expected)\n{expected}\n+++ (actual)\n{actual}",
                path.display()
            ));
        }
    }
    assert!(
        changed.is_empty(),
        "{} expansion(s) differ from their snapshots; check the new ones and write them with \
         `UPDATE_SNAPSHOTS=1 cargo test -p twat-mp-macros snapshots`:\n\n{}",
        changed.len(),
        changed.join("\n\n")
    );
}

#[test]
fn every_snapshot_file_has_a_case() {
    let stale: Vec<String> = std::fs::read_dir(snapshot_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|file| {
            !CASES
                .iter()
                .any(|case| format!("{}.rs", case.name) == *file)
        })
        .collect();
    assert!(
        stale.is_empty(),
        "snapshots without a case (delete them): {stale:?}"
    );
}

/// The page of twat-mp that shows the expansions, in this workspace.
fn expansion_page() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../twat-mp/src/expansion.md")
}

/// The attributes the expansion page must show, by snapshot: one of each attribute, and
/// `process` and `init`.
const ON_THE_PAGE: &[&str] = &["pmap", "imap", "amap", "apmap", "pmap_process", "pmap_init"];

/// One code block of the expansion page that shows a snapshot.
struct PageBlock {
    name: String,
    /// Where the block's lines start and end in the page's lines (without the fences).
    lines: std::ops::Range<usize>,
}

/// The page's blocks marked `<!-- snapshot: NAME -->`, each the code block that follows
/// its marker.
fn page_blocks(page: &str) -> Vec<PageBlock> {
    let lines: Vec<&str> = page.lines().collect();
    let mut blocks = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        let marker = lines[at]
            .trim()
            .strip_prefix("<!-- snapshot:")
            .and_then(|rest| rest.strip_suffix("-->"));
        at += 1;
        let Some(name) = marker else { continue };
        let open = lines[at..]
            .iter()
            .position(|line| line.starts_with("```"))
            .map(|offset| at + offset)
            .unwrap_or_else(|| panic!("no code block after the marker of {name}"));
        let close = lines[open + 1..]
            .iter()
            .position(|line| line.starts_with("```"))
            .map(|offset| open + 1 + offset)
            .unwrap_or_else(|| panic!("the code block of {name} is not closed"));
        blocks.push(PageBlock {
            name: name.trim().to_owned(),
            lines: open + 1..close,
        });
        at = close + 1;
    }
    blocks
}

/// Whether a line of a doctest is hidden from the rendered page.
fn hidden(line: &str) -> bool {
    line == "#" || line.starts_with("# ")
}

/// The block's visible lines (between its hidden set-up and its hidden calls).
fn visible(lines: &[&str], block: &PageBlock) -> std::ops::Range<usize> {
    let body = &lines[block.lines.clone()];
    let start = body
        .iter()
        .position(|line| !hidden(line))
        .unwrap_or(body.len());
    let end = body
        .iter()
        .rposition(|line| !hidden(line))
        .map_or(start, |at| at + 1);
    block.lines.start + start..block.lines.start + end
}

#[test]
fn the_expansion_page_shows_the_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v != "0");
    let path = expansion_page();
    let page = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let lines: Vec<&str> = page.lines().collect();
    let blocks = page_blocks(&page);
    let mut wrong = Vec::new();
    // The page with each block's visible lines replaced by its snapshot.
    let mut updated: Vec<String> = Vec::new();
    let mut copied = 0;
    for block in &blocks {
        let Some(case) = CASES.iter().find(|case| case.name == block.name) else {
            wrong.push(format!("`{}` is not a snapshot", block.name));
            continue;
        };
        let shown = visible(&lines, block);
        let expected = render(case);
        let actual = lines[shown.clone()].join("\n");
        if actual.trim_end() != expected.trim_end() {
            wrong.push(format!(
                "the block of `{}` differs from its snapshot:\n--- page\n{actual}\n+++ snapshot\n{expected}",
                block.name
            ));
        }
        updated.extend(
            lines[copied..shown.start]
                .iter()
                .map(|line| line.to_string()),
        );
        updated.extend(expected.trim_end().lines().map(str::to_owned));
        copied = shown.end;
    }
    updated.extend(lines[copied..].iter().map(|line| line.to_string()));
    let missing: Vec<&str> = ON_THE_PAGE
        .iter()
        .copied()
        .filter(|name| !blocks.iter().any(|block| block.name == *name))
        .collect();
    assert!(
        missing.is_empty(),
        "{} shows no block of {missing:?}",
        path.display()
    );
    // A block naming no snapshot stays an error: there is nothing to write into it.
    let unknown = blocks
        .iter()
        .any(|block| !CASES.iter().any(|case| case.name == block.name));
    if update && !unknown {
        if !wrong.is_empty() {
            std::fs::write(&path, updated.join("\n") + "\n").unwrap();
        }
        return;
    }
    assert!(
        wrong.is_empty(),
        "{} is out of date; write it with `UPDATE_SNAPSHOTS=1 cargo test -p twat-mp-macros \
         snapshots`:\n\n{}",
        path.display(),
        wrong.join("\n\n")
    );
}

#[test]
fn page_blocks_are_found_between_their_hidden_lines() {
    let page = "text\n<!-- snapshot: pmap -->\n```rust\n# fn setup() {}\n// shown\nfn f() {}\n# f();\n```\nafter\n";
    let blocks = page_blocks(page);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].name, "pmap");
    let lines: Vec<&str> = page.lines().collect();
    assert_eq!(
        lines[visible(&lines, &blocks[0])],
        ["// shown", "fn f() {}"]
    );
}
