//! The function's own error inside a [`WorkerError`]: how it is boxed when an item fails
//! (an [`anyhow::Error`] kept whole, so that the error inside it can still be found), and
//! how a caller takes it back as a value of its type.

use std::any::Any;
use std::error::Error;
use std::fmt;

use super::{BoxError, ErrorKind, WorkerError};

/// Boxes the error a function returned, as [`ErrorKind::Failed`] keeps it.
///
/// Every error type goes through its own `Into<BoxError>`, except [`anyhow::Error`]:
/// anyhow's conversion boxes a type of anyhow's own, in which no downcast finds the error
/// the function returned, so it is kept whole in an [`AnyhowSource`] instead.
pub(crate) fn box_returned<E: Into<BoxError> + 'static>(error: E) -> BoxError {
    let mut slot = Some(error);
    if let Some(anyhow) = (&mut slot as &mut dyn Any).downcast_mut::<Option<anyhow::Error>>() {
        if let Some(anyhow) = anyhow.take() {
            return Box::new(AnyhowSource(anyhow));
        }
    }
    match slot {
        Some(error) => error.into(),
        None => unreachable!("the error was taken only when it was an anyhow::Error"),
    }
}

/// An [`anyhow::Error`] that a function returned, as the source of its [`WorkerError`]:
/// it reads as the anyhow error does (its message, then its chain of sources), and
/// [`WorkerError::downcast_ref`] looks into it with anyhow's own downcast.
struct AnyhowSource(anyhow::Error);

impl fmt::Display for AnyhowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for AnyhowSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Error for AnyhowSource {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        // The error anyhow holds: its sources are the rest of anyhow's chain.
        let inner: &(dyn Error + 'static) = self.0.as_ref();
        inner.source()
    }
}

/// The function's own error: taking it back, typed.
impl WorkerError {
    /// The function's own error, by value: the `Err` it returned (for
    /// [`ErrorKind::Failed`]), `None` for every other kind of failure.
    ///
    /// From a process pool it is the error as it was made again in this process (see
    /// [`CrossProcessError`](crate::CrossProcessError)).
    ///
    /// ```
    /// use twat_mp::ThreadPool;
    ///
    /// let pool = ThreadPool::with_nodes(2)?;
    /// let err = pool
    ///     .try_map(|x: u32| if x == 3 { Err("three") } else { Ok(x) }, 0..5)
    ///     .unwrap_err();
    /// let source = err.into_source().expect("the function's own error");
    /// assert_eq!(source.to_string(), "three");
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn into_source(self) -> Option<BoxError> {
        match self.inner.kind {
            ErrorKind::Failed(error) => match error.downcast::<AnyhowSource>() {
                Ok(anyhow) => Some(anyhow.0.into()),
                Err(error) => Some(error),
            },
            _ => None,
        }
    }

    /// The function's own error, if it is an `E`: as [`Box<dyn Error>::downcast_ref`]
    /// does, and also inside an [`anyhow::Error`] the function returned (the error it was
    /// made from, or one below a context), as anyhow's `downcast_ref` finds it. `None`
    /// for another type or another kind of failure.
    ///
    /// ```
    /// use twat_mp::ThreadPool;
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct TooLarge(u32);
    ///
    /// impl std::fmt::Display for TooLarge {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         write!(f, "{} is too large", self.0)
    ///     }
    /// }
    ///
    /// impl std::error::Error for TooLarge {}
    ///
    /// fn check(x: u32) -> anyhow::Result<u32> {
    ///     if x > 2 { Err(TooLarge(x))? } else { Ok(x) }
    /// }
    ///
    /// let pool = ThreadPool::with_nodes(2)?;
    /// let err = pool.try_map(check, 0..5).unwrap_err();
    /// assert_eq!(err.downcast_ref::<TooLarge>(), Some(&TooLarge(3)));
    /// assert!(err.downcast_ref::<std::io::Error>().is_none());
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    ///
    /// [`Box<dyn Error>::downcast_ref`]: https://doc.rust-lang.org/std/error/trait.Error.html#method.downcast_ref
    pub fn downcast_ref<E: Error + Send + Sync + 'static>(&self) -> Option<&E> {
        let ErrorKind::Failed(error) = &self.inner.kind else {
            return None;
        };
        match error.downcast_ref::<AnyhowSource>() {
            Some(anyhow) => anyhow.0.downcast_ref::<E>(),
            None => error.downcast_ref::<E>(),
        }
    }

    /// The function's own error, by value, if it is an `E` (found as
    /// [`downcast_ref`](Self::downcast_ref) finds it); otherwise this error, unchanged.
    ///
    /// # Errors
    /// `self`, whole, when the failure is not the function's own error of type `E`.
    ///
    /// ```
    /// use std::io;
    /// use twat_mp::ThreadPool;
    ///
    /// fn open(path: &str) -> io::Result<std::fs::File> {
    ///     std::fs::File::open(path)
    /// }
    ///
    /// let pool = ThreadPool::with_nodes(2)?;
    /// let err = pool.try_map(open, ["/no/such/file"]).unwrap_err();
    /// let err = err.downcast::<std::fmt::Error>().unwrap_err(); // not that type
    /// let io: io::Error = err.downcast().unwrap();
    /// assert_eq!(io.kind(), io::ErrorKind::NotFound);
    /// # Ok::<(), twat_mp::BuildError>(())
    /// ```
    pub fn downcast<E: Error + Send + Sync + 'static>(mut self) -> Result<E, WorkerError> {
        let kind = std::mem::replace(&mut self.inner.kind, ErrorKind::Cancelled);
        let ErrorKind::Failed(error) = kind else {
            self.inner.kind = kind;
            return Err(self);
        };
        let error = match error.downcast::<AnyhowSource>() {
            Ok(anyhow) => match anyhow.0.downcast::<E>() {
                Ok(found) => return Ok(found),
                Err(anyhow) => Box::new(AnyhowSource(anyhow)) as BoxError,
            },
            Err(error) => match error.downcast::<E>() {
                Ok(found) => return Ok(*found),
                Err(error) => error,
            },
        };
        self.inner.kind = ErrorKind::Failed(error);
        Err(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Mine(u8);

    impl fmt::Display for Mine {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "mine {}", self.0)
        }
    }

    impl Error for Mine {}

    fn failed<E: Into<BoxError> + 'static>(error: E) -> WorkerError {
        WorkerError::new(3, ErrorKind::Failed(box_returned(error))).with_worker(Some(1))
    }

    #[test]
    fn an_anyhow_error_is_kept_whole_and_reads_as_anyhow_reads() {
        use anyhow::Context as _;
        let anyhow = Err::<(), _>(Mine(7)).context("outer").unwrap_err();
        let err = failed(anyhow);
        assert_eq!(err.source().unwrap().to_string(), "outer");
        assert_eq!(
            format!(
                "{:#}",
                anyhow::Error::from(failed(anyhow::Error::new(Mine(2))))
            ),
            "item 3 on worker 1 failed: mine 2"
        );
        assert_eq!(
            format!("{:#}", anyhow::Error::from(err)),
            "item 3 on worker 1 failed: outer: mine 7"
        );
    }

    #[test]
    fn downcasts_find_the_error_directly_or_inside_anyhow() {
        for err in [failed(Mine(1)), failed(anyhow::Error::new(Mine(1)))] {
            assert_eq!(err.downcast_ref::<Mine>(), Some(&Mine(1)));
            assert!(err.downcast_ref::<fmt::Error>().is_none());
            let err = err.downcast::<fmt::Error>().unwrap_err();
            assert_eq!(err.index(), 3);
            assert_eq!(err.worker(), Some(1));
            assert_eq!(err.downcast::<Mine>().unwrap(), Mine(1));
        }
        let cancelled = WorkerError::new(0, ErrorKind::Cancelled);
        assert!(cancelled.downcast_ref::<Mine>().is_none());
        let cancelled = cancelled.downcast::<Mine>().unwrap_err();
        assert!(matches!(cancelled.kind(), ErrorKind::Cancelled));
        assert!(cancelled.into_source().is_none());
    }

    #[test]
    fn into_source_gives_the_boxed_error() {
        let source = failed(Mine(4)).into_source().unwrap();
        assert_eq!(source.downcast_ref::<Mine>(), Some(&Mine(4)));
        let from_anyhow = failed(anyhow::anyhow!("plain")).into_source().unwrap();
        assert_eq!(from_anyhow.to_string(), "plain");
        let text = failed("text").into_source().unwrap();
        assert_eq!(text.to_string(), "text");
    }
}
