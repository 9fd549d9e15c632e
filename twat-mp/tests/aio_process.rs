//! `AsyncMultiPool`'s process mode (`AsyncProcessPool`) and `#[apmap(process)]` through the
//! public API, on both tokio runtime flavours.
#![cfg(all(feature = "aio", target_os = "linux"))]

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use twat_mp::{AsyncMultiPool, AsyncProcessPool, BuildError, ErrorKind, apmap};

on_both_flavours!(
    map_runs_in_worker_processes_in_input_order,
    starmap_spreads_tuples_over_arguments,
    a_crash_costs_exactly_its_item,
    panics_errors_and_timeouts_cost_only_their_task,
    a_blocking_task_past_the_timeout_is_stopped,
    maxtasksperchild_recycles_workers,
    imap_is_ordered_and_lazy,
    uimap_yields_every_item,
    the_attribute_runs_in_processes,
    large_byte_items_cross_exactly,
);

fn pool() -> AsyncProcessPool {
    AsyncMultiPool::builder()
        .nodes(2)
        .concurrency(8)
        .processes()
        .build()
        .unwrap()
}

async fn tagged(x: u64) -> (u32, u64) {
    tokio::time::sleep(Duration::from_millis(x % 3)).await;
    (std::process::id(), x * 10)
}

async fn map_runs_in_worker_processes_in_input_order() {
    let pool = pool();
    let out = pool.map(tagged, 0..50).await.unwrap();
    assert_eq!(
        out.iter().map(|(_, x)| *x).collect::<Vec<_>>(),
        (0..50).map(|x| x * 10).collect::<Vec<_>>()
    );
    assert!(out.iter().all(|(pid, _)| *pid != std::process::id()));
    assert_eq!(pool.apply(tagged, 7).await.unwrap().1, 70);
    assert!(pool.map(tagged, Vec::new()).await.unwrap().is_empty());
}

async fn scaled_sum(a: u64, b: u64, scale: u64) -> (u32, u64) {
    tokio::task::yield_now().await;
    (std::process::id(), (a + b) * scale)
}

async fn starmap_spreads_tuples_over_arguments() {
    let pool = pool();
    // An `async fn` of several parameters becomes a function pointer first.
    let scaled_sum: fn(u64, u64, u64) -> _ = scaled_sum;
    let out = pool
        .starmap(scaled_sum, (0..20).map(|n| (n, n + 1, 10)))
        .await
        .unwrap();
    assert_eq!(
        out.iter().map(|(_, x)| *x).collect::<Vec<_>>(),
        (0..20).map(|n| (2 * n + 1) * 10).collect::<Vec<_>>()
    );
    assert!(out.iter().all(|(pid, _)| *pid != std::process::id()));
}

async fn abort_on_seven(x: u32) -> u32 {
    tokio::task::yield_now().await;
    if x == 7 {
        std::process::abort();
    }
    x
}

async fn a_crash_costs_exactly_its_item() {
    let pool = pool();
    let outcomes: Vec<_> = pool.imap(abort_on_seven, 0..20).collect().await;
    assert_eq!(outcomes.len(), 20);
    for (index, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(x) => assert_eq!(x as usize, index),
            Err(err) => {
                assert_eq!(err.index(), 7, "{err}");
                assert!(
                    matches!(err.kind(), ErrorKind::Crashed { status } if status.contains("SIGABRT")),
                    "{err}"
                );
            }
        }
    }
    // Reused after, with fresh workers.
    assert_eq!(
        pool.map(abort_on_seven, 0..5).await.unwrap(),
        [0, 1, 2, 3, 4]
    );
    let err = pool.map(abort_on_seven, 0..10).await.unwrap_err();
    assert_eq!(err.index(), 7);
}

async fn moody(x: u32) -> Result<u32, String> {
    match x {
        3 => panic!("three panics"),
        5 => Err("five refuses".to_owned()),
        8 => {
            tokio::time::sleep(Duration::from_secs(3_600)).await;
            Ok(x)
        }
        _ => Ok(x),
    }
}

async fn panics_errors_and_timeouts_cost_only_their_task() {
    let pool = AsyncMultiPool::builder()
        .nodes(2)
        .timeout(Duration::from_millis(200))
        .processes()
        .build()
        .unwrap();
    let plain = |x: u32| async move { moody(x).await.unwrap() };
    let outcomes: Vec<_> = pool.imap(plain, 0..10).collect().await;
    for (index, outcome) in outcomes.iter().enumerate() {
        match index {
            3 => assert!(
                matches!(outcome.as_ref().unwrap_err().kind(), ErrorKind::Panicked { message } if message == "three panics")
            ),
            5 => assert!(matches!(
                outcome.as_ref().unwrap_err().kind(),
                ErrorKind::Panicked { .. }
            )),
            8 => assert!(
                matches!(outcome.as_ref().unwrap_err().kind(), ErrorKind::TimedOut { after } if *after == Duration::from_millis(200))
            ),
            _ => assert_eq!(*outcome.as_ref().unwrap() as usize, index),
        }
    }
    let panicked = outcomes[3].as_ref().unwrap_err();
    assert!(panicked.traceback().is_some());
    let err = pool.try_map(moody, [0, 1, 5, 6]).await.unwrap_err();
    assert_eq!(err.index(), 2);
    // A `String` error crosses back as itself.
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "five refuses");
    assert_eq!(pool.try_map(moody, [1, 2]).await.unwrap(), [1, 2]);
}

async fn a_blocking_task_past_the_timeout_is_stopped() {
    let pool = AsyncMultiPool::builder()
        .nodes(1)
        .timeout(Duration::from_millis(100))
        .processes()
        .build()
        .unwrap();
    // Item 1 blocks its worker's thread: no `.await` can stop it, so its worker is killed.
    let stuck = |x: u32| async move {
        if x == 1 {
            std::thread::sleep(Duration::from_secs(3_600));
        }
        x
    };
    let outcomes: Vec<_> = pool.imap(stuck, 0..4).collect().await;
    for (index, outcome) in outcomes.into_iter().enumerate() {
        if index == 1 {
            let err = outcome.unwrap_err();
            assert_eq!(err.index(), 1);
            assert!(matches!(err.kind(), ErrorKind::TimedOut { .. }), "{err}");
        } else {
            assert_eq!(outcome.unwrap() as usize, index);
        }
    }
}

async fn maxtasksperchild_recycles_workers() {
    let pool = AsyncMultiPool::builder()
        .nodes(2)
        .concurrency(2)
        .processes()
        .maxtasksperchild(3)
        .build()
        .unwrap();
    assert_eq!(pool.maxtasksperchild(), Some(3));
    let mut tasks_per_process: HashMap<u32, usize> = HashMap::new();
    for _ in 0..3 {
        for (pid, _) in pool.map(tagged, 0..10).await.unwrap() {
            *tasks_per_process.entry(pid).or_default() += 1;
        }
    }
    assert!(
        tasks_per_process.values().all(|&tasks| tasks <= 3),
        "{tasks_per_process:?}"
    );
    assert!(tasks_per_process.len() >= 10, "{tasks_per_process:?}");
}

async fn imap_is_ordered_and_lazy() {
    let pool = pool(); // groups of 8, at most 2 per worker out: 32 items ahead at most
    let pulled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&pulled);
    let endless = (0_u64..).inspect(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    });
    let mut stream = pool.imap(tagged, endless);
    for expected in 0..20 {
        assert_eq!(stream.next().await.unwrap().unwrap().1, expected * 10);
    }
    let seen = pulled.load(std::sync::atomic::Ordering::SeqCst);
    assert!(seen <= 20 + 32 + 8, "pulled {seen}");
}

async fn uimap_yields_every_item() {
    let pool = pool();
    let mut got: Vec<u64> = pool
        .uimap(tagged, 0..30)
        .map(|outcome| outcome.unwrap().1)
        .collect()
        .await;
    got.sort_unstable();
    assert_eq!(got, (0..30).map(|x| x * 10).collect::<Vec<_>>());
}

#[apmap(process, nodes = 2)]
async fn pid_of(x: u32) -> (u32, u32) {
    tokio::task::yield_now().await;
    (std::process::id(), x)
}

#[apmap(process, nodes = 2)]
async fn checked(x: u32) -> Result<u32, String> {
    if x == 4 {
        Err(format!("{x} is bad"))
    } else {
        Ok(x)
    }
}

async fn the_attribute_runs_in_processes() {
    let out = pid_of(0..10).await;
    assert_eq!(
        out.iter().map(|(_, x)| *x).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    assert!(out.iter().all(|(pid, _)| *pid != std::process::id()));
    assert_eq!(checked([1, 2]).await.unwrap(), [1, 2]);
    assert_eq!(checked([1, 4, 6]).await.unwrap_err(), "4 is bad");
}

#[test]
fn process_settings_are_checked() {
    assert!(matches!(
        AsyncMultiPool::builder().nodes(0).processes().build(),
        Err(BuildError::NoNodes)
    ));
    assert!(matches!(
        AsyncMultiPool::builder()
            .processes()
            .maxtasksperchild(0)
            .build(),
        Err(BuildError::Zero("maxtasksperchild"))
    ));
    let err = AsyncMultiPool::builder()
        .initializer(|| {})
        .processes()
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::Unsupported(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("`.processes().initializer(f)`, with a function that captures nothing"),
        "{err}"
    );
}

/// The bytes reversed; an item whose first byte is 0 panics.
async fn flipped(mut bytes: Vec<u8>) -> Vec<u8> {
    assert!(bytes.first() != Some(&0), "a zero first");
    bytes.reverse();
    bytes
}

async fn flipped_buf(bytes: serde_bytes::ByteBuf) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(flipped(bytes.into_vec()).await)
}

async fn flipped_bytes(bytes: bytes::Bytes) -> bytes::Bytes {
    bytes::Bytes::from(flipped(Vec::from(bytes)).await)
}

/// Byte strings on both sides of the size from which they cross without a frame buffer
/// of their own (1 MiB), as `Vec<u8>`, `ByteBuf` and `Bytes`: each comes back exactly, and
/// a failing one shows its input.
async fn large_byte_items_cross_exactly() {
    let pool = pool();
    let items: Vec<Vec<u8>> = [(1 << 20) - 1, 1 << 20, (1 << 20) + 5, 3 << 20]
        .into_iter()
        .map(|len: usize| (0..len).map(|i| (i % 251) as u8 + 1).collect())
        .collect();
    let reversed = |bytes: &[u8]| bytes.iter().rev().copied().collect::<Vec<u8>>();
    let expected: Vec<Vec<u8>> = items.iter().map(|item| reversed(item)).collect();
    let back = pool.map(flipped, items.clone()).await.unwrap();
    assert!(back == expected);
    let bufs = items.iter().cloned().map(serde_bytes::ByteBuf::from);
    let back = pool.map(flipped_buf, bufs).await.unwrap();
    assert!(back.iter().map(|b| b.to_vec()).eq(expected.iter().cloned()));
    let shared: Vec<_> = items.iter().cloned().map(bytes::Bytes::from).collect();
    let back = pool.map(flipped_bytes, shared.clone()).await.unwrap();
    assert!(back.iter().map(|b| b.to_vec()).eq(expected.iter().cloned()));
    assert!(shared.iter().map(|b| b.to_vec()).eq(items.iter().cloned()));
    let applied = pool.apply(flipped, items[3].clone()).await.unwrap();
    assert!(applied == expected[3]);

    let mut failing = items[2].clone();
    failing[0] = 0;
    let err = pool.apply(flipped, failing.clone()).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Panicked { .. }), "{err}");
    let shown = err.input().expect("the item is shown");
    assert!(shown.starts_with("[0,2,3,"), "{shown}");
}
