//! The function's own error comes back typed: `WorkerError::downcast_ref`, `downcast` and
//! `into_source` on every pool (threads, processes, async, async processes), through
//! `anyhow::Error` too; and an `io::Error` crosses back from a worker process with its
//! kind and message, for the pools' `try_map` and for `#[pmap(process)]` on the README's
//! `io::Result` function.

use std::error::Error as _;
use std::fmt;
use std::io;

use twat_mp::{ErrorKind, ThreadPool, WorkerError};

/// An error type of the user's own, serde so that it can cross from a worker process.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct TooLarge {
    value: u64,
    limit: u64,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is over the limit of {}", self.value, self.limit)
    }
}

impl std::error::Error for TooLarge {}

fn at_most_five(x: u64) -> Result<u64, TooLarge> {
    if x > 5 {
        Err(TooLarge { value: x, limit: 5 })
    } else {
        Ok(x)
    }
}

fn at_most_five_anyhow(x: u64) -> anyhow::Result<u64> {
    Ok(at_most_five(x)?)
}

/// `downcast_ref`, `into_source` and `downcast` on the failure of item 6 of 0..10.
fn check_typed(err: WorkerError) {
    assert_eq!(err.index(), 6);
    let expected = TooLarge { value: 6, limit: 5 };
    assert_eq!(err.downcast_ref::<TooLarge>(), Some(&expected));
    assert!(err.downcast_ref::<io::Error>().is_none());
    // A wrong type gives the error back, whole.
    let err = err.downcast::<fmt::Error>().unwrap_err();
    assert_eq!(err.index(), 6);
    let source = WorkerError::into_source(err.downcast::<io::Error>().unwrap_err()).unwrap();
    assert_eq!(source.to_string(), "6 is over the limit of 5");
}

fn check_owned(err: WorkerError) {
    assert_eq!(
        err.downcast::<TooLarge>().unwrap(),
        TooLarge { value: 6, limit: 5 }
    );
}

#[test]
fn thread_pool_errors_come_back_typed() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    check_typed(pool.try_map(at_most_five, 0..10).unwrap_err());
    check_owned(pool.try_map(at_most_five, 0..10).unwrap_err());
    // Errors that are not the function's own have no source to take.
    let panicked = pool.map(|x: u64| assert!(x != 2, "two"), 0..4).unwrap_err();
    assert!(matches!(panicked.kind(), ErrorKind::Panicked { .. }));
    assert!(panicked.downcast_ref::<TooLarge>().is_none());
    assert!(panicked.into_source().is_none());
}

#[test]
fn anyhow_errors_are_looked_through() {
    let pool = ThreadPool::with_nodes(2).unwrap();
    let err = pool.try_map(at_most_five_anyhow, 0..10).unwrap_err();
    assert_eq!(
        err.source().unwrap().to_string(),
        "6 is over the limit of 5"
    );
    // Each message of the chain is printed once.
    let worker = err.worker().unwrap();
    assert_eq!(
        format!("{:#}", anyhow::Error::from(err)),
        format!("item 6 on worker {worker} failed: 6 is over the limit of 5")
    );
    check_typed(pool.try_map(at_most_five_anyhow, 0..10).unwrap_err());
    check_owned(pool.try_map(at_most_five_anyhow, 0..10).unwrap_err());
    // Through a context too: the original is found below it.
    let with_context = |x: u64| -> anyhow::Result<u64> {
        use anyhow::Context as _;
        at_most_five(x).with_context(|| format!("checking {x}"))
    };
    let err = pool.try_map(with_context, 0..10).unwrap_err();
    assert_eq!(err.source().unwrap().to_string(), "checking 6");
    assert_eq!(err.downcast_ref::<TooLarge>().map(|e| e.value), Some(6));
    assert_eq!(err.downcast::<TooLarge>().unwrap().value, 6);
}

#[cfg(target_os = "linux")]
mod process {
    use std::io;
    use std::path::PathBuf;

    use twat_mp::{ProcessPool, pmap};

    use super::{at_most_five, check_owned, check_typed};

    /// The README's example: a function of `io::Result`, under `process`.
    #[pmap(process, nodes = 2)]
    fn checksum(path: PathBuf) -> io::Result<u64> {
        let bytes = std::fs::read(path)?;
        Ok(bytes.iter().map(|&b| u64::from(b)).sum())
    }

    fn file_size(path: PathBuf) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }

    fn refuses(x: u32) -> io::Result<u32> {
        if x == 2 {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "two is not data",
            ))
        } else {
            Ok(x)
        }
    }

    fn missing() -> PathBuf {
        std::env::temp_dir().join(format!("twat-mp-missing-{}", std::process::id()))
    }

    #[test]
    fn process_pool_errors_come_back_as_their_own_type() {
        let pool = ProcessPool::with_nodes(2).unwrap();
        check_typed(pool.try_map(at_most_five, 0..10).unwrap_err());
        check_owned(pool.try_map(at_most_five, 0..10).unwrap_err());
    }

    #[test]
    fn the_readme_checksum_works_under_process() {
        let here = PathBuf::from(file!());
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let exists = root.join(&here);
        let expected = std::fs::read(&exists)
            .unwrap()
            .iter()
            .map(|&b| u64::from(b))
            .sum::<u64>();
        assert_eq!(checksum([exists.clone()]).unwrap(), [expected]);
        let err = checksum([exists, missing()]).unwrap_err();
        let local = std::fs::read(missing()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(err.to_string(), local.to_string());
        assert_eq!(err.raw_os_error(), local.raw_os_error());
    }

    #[test]
    fn io_errors_cross_back_from_try_map_with_kind_and_message() {
        let pool = ProcessPool::with_nodes(2).unwrap();
        let err = pool.try_map(file_size, [missing()]).unwrap_err();
        let io = err.downcast_ref::<io::Error>().expect("an io::Error");
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert_eq!(
            io.to_string(),
            std::fs::metadata(missing()).unwrap_err().to_string()
        );
        let err = pool.try_map(refuses, 0..4).unwrap_err();
        assert_eq!(err.index(), 2);
        let io = err.downcast::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        assert_eq!(io.to_string(), "two is not data");
        // Functions of `Box<dyn Error>` and `anyhow` cross too, as their messages.
        let boxed = |x: u32| -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
            Ok(refuses(x).map_err(|e| format!("boxed: {e}"))?)
        };
        let err = pool.try_map(boxed, 0..4).unwrap_err();
        assert_eq!(
            std::error::Error::source(&err).unwrap().to_string(),
            "boxed: two is not data"
        );
        let with_context = |x: u32| -> anyhow::Result<u32> {
            use anyhow::Context as _;
            refuses(x).context("refused")
        };
        let err = pool.try_map(with_context, 0..4).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert!(
            chain.ends_with("failed: refused: two is not data"),
            "{chain}"
        );
    }
}

#[cfg(feature = "aio")]
mod aio {
    use twat_mp::AsyncMultiPool;

    use super::{at_most_five, at_most_five_anyhow, check_owned, check_typed};

    async fn async_pool_errors_come_back_typed() {
        let pool = AsyncMultiPool::builder().nodes(2).build().unwrap();
        let f = |x: u64| async move { at_most_five(x) };
        check_typed(pool.try_map(f, 0..10).await.unwrap_err());
        check_owned(pool.try_map(f, 0..10).await.unwrap_err());
        let f = |x: u64| async move { at_most_five_anyhow(x) };
        check_typed(pool.try_map(f, 0..10).await.unwrap_err());
    }

    #[cfg(target_os = "linux")]
    async fn async_process_pool_errors_come_back_as_their_own_type() {
        let pool = AsyncMultiPool::builder()
            .nodes(2)
            .processes()
            .build()
            .unwrap();
        let f = |x: u64| async move { at_most_five(x) };
        check_typed(pool.try_map(f, 0..10).await.unwrap_err());
        check_owned(pool.try_map(f, 0..10).await.unwrap_err());
        let io = |x: u64| async move {
            if x == 1 {
                Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))
            } else {
                Ok(x)
            }
        };
        let err = pool.try_map(io, 0..3).await.unwrap_err();
        let io = err.downcast::<std::io::Error>().unwrap();
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            io.to_string(),
            std::io::Error::from(std::io::ErrorKind::PermissionDenied).to_string()
        );
    }

    on_both_flavours!(async_pool_errors_come_back_typed);
    #[cfg(target_os = "linux")]
    on_both_flavours!(async_process_pool_errors_come_back_as_their_own_type);
}
