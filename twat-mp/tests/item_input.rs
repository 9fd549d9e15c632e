//! `WorkerError::input()` is filled by the process pools' own methods, not only by the
//! attributes: a failed item is rendered from its serialized copy.
#![cfg(target_os = "linux")]

use twat_mp::{ErrorKind, ProcessPool};

fn crash_on_three(x: u64) -> u64 {
    if x == 3 {
        std::process::abort();
    }
    x
}

fn panic_on_word(word: String) -> usize {
    assert!(word != "boom", "no booms");
    word.len()
}

#[test]
fn a_crashed_item_shows_its_input() {
    let pool = ProcessPool::with_nodes(2).expect("a pool");
    let err = pool.map(crash_on_three, 0..6).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Crashed { .. }));
    assert_eq!(err.input(), Some("3"));
    assert!(err.to_string().starts_with("item 3 (input 3)"), "{err}");
}

#[test]
fn a_panicked_or_failed_item_shows_its_input() {
    let pool = ProcessPool::with_nodes(2).expect("a pool");
    let words = ["a", "boom", "c"].map(String::from);
    let err = pool.map(panic_on_word, words).unwrap_err();
    assert_eq!(err.input(), Some("\"boom\""));
    let err = pool
        .try_map(
            |s: String| s.parse::<u8>().map_err(|err| err.to_string()),
            ["1", "x"].map(String::from),
        )
        .unwrap_err();
    assert_eq!(err.input(), Some("\"x\""));
    let outcomes: Vec<_> = pool.imap(crash_on_three, 2..5).collect();
    assert_eq!(outcomes[1].as_ref().unwrap_err().input(), Some("3"));
}

#[test]
fn a_huge_input_is_shown_shortened() {
    let pool = ProcessPool::with_nodes(1).expect("a pool");
    let err = pool
        .map(
            |v: Vec<u8>| -> usize { panic!("too long: {}", v.len()) },
            [vec![7; 100_000]],
        )
        .unwrap_err();
    let input = err.input().expect("rendered");
    assert!(
        input.ends_with('…') && input.chars().count() <= 201,
        "{input}"
    );
}

#[cfg(feature = "aio")]
async fn abort_on_seven(x: u64) -> u64 {
    if x == 7 {
        std::process::abort();
    }
    x
}

#[cfg(feature = "aio")]
#[test]
fn the_async_process_pool_shows_a_failed_items_input() {
    let pool = twat_mp::AsyncMultiPool::builder()
        .nodes(2)
        .processes()
        .build()
        .expect("a pool");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let err = runtime
        .block_on(pool.map(abort_on_seven, 5..10))
        .unwrap_err();
    assert_eq!(err.index(), 2);
    assert_eq!(err.input(), Some("7"));
}
