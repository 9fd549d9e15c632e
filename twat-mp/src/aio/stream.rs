//! The streams of the async pools: [`ImapStream`] (input order) and [`UimapStream`]
//! (completion order) of [`AsyncMultiPool`](super::AsyncMultiPool), and the same pair of
//! `AsyncProcessPool` (made by the same macro over another source of results).

use std::convert::Infallible;
use std::fmt;
use std::task::{Context, Poll};

use super::dispatch::AsyncCall;
use crate::engine::item::ItemFailure;
use crate::error::WorkerError;

/// Where a result stream's items come from: a call that yields each finished item once.
pub(crate) trait ResultSource<R> {
    /// The next finished item, or `None` once every item has been yielded.
    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<R, WorkerError>>>;
    /// Adds the call's progress to a stream's `Debug`.
    fn progress(&self, out: &mut fmt::DebugStruct<'_, '_>);
}

impl<R: Send + 'static> ResultSource<R> for AsyncCall<R, Infallible> {
    fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<R, WorkerError>>> {
        self.poll_next(cx).map(|next| {
            next.map(|(_, outcome)| outcome.map_err(ItemFailure::into_infallible_worker_error))
        })
    }

    fn progress(&self, out: &mut fmt::DebugStruct<'_, '_>) {
        out.field("yielded", &self.yielded())
            .field("in_flight", &self.in_flight());
    }
}

/// A public stream type `$name<R>` over a [`ResultSource`] of type `$source`; the block
/// holds the example of its `next`.
macro_rules! result_stream {
    ($(#[$doc:meta])* $name:ident($source:ty) { $(#[$next_doc:meta])* }) => {
        $(#[$doc])*
        #[must_use = "streams are lazy: the items run only as it is polled"]
        pub struct $name<R> {
            source: $source,
            done: bool,
        }

        impl<R: Send + 'static> $name<R> {
            pub(crate) fn new(source: $source) -> Self {
                $name { source, done: false }
            }

            /// The next result, or `None` once every item has been yielded — the same as
            /// `StreamExt::next`, without importing it.
            ///
            $(#[$next_doc])*
            #[allow(clippy::should_implement_trait)]
            pub async fn next(&mut self) -> Option<Result<R, WorkerError>> {
                std::future::poll_fn(|cx| {
                    futures_core::Stream::poll_next(std::pin::Pin::new(&mut *self), cx)
                })
                .await
            }
        }

        // Never pinned structurally: the results are moved out, never polled in place.
        impl<R> Unpin for $name<R> {}

        impl<R: Send + 'static> futures_core::Stream for $name<R> {
            type Item = Result<R, WorkerError>;

            fn poll_next(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Self::Item>> {
                use $crate::aio::stream::ResultSource as _;
                if self.done {
                    return std::task::Poll::Ready(None);
                }
                let next = std::task::ready!(self.source.poll_result(cx));
                self.done = next.is_none();
                std::task::Poll::Ready(next)
            }
        }

        impl<R: Send + 'static> futures_core::FusedStream for $name<R> {
            fn is_terminated(&self) -> bool {
                self.done
            }
        }

        impl<R: Send + 'static> std::fmt::Debug for $name<R> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                use $crate::aio::stream::ResultSource as _;
                let mut out = f.debug_struct(stringify!($name));
                self.source.progress(&mut out);
                out.finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use result_stream;

result_stream! {
    /// The stream of [`AsyncMultiPool::imap`](super::AsyncMultiPool::imap): results in
    /// input order, computed a bounded window ahead of the consumer. Dropping it cancels
    /// the items still queued or running.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::with_nodes(2)?;
    /// let mut squares = pool.imap(|x: u64| async move { x * x }, 1..=3);
    /// let mut all = Vec::new();
    /// while let Some(result) = squares.next().await {
    ///     all.push(result?);
    /// }
    /// assert_eq!(all, [1, 4, 9]);
    /// # Ok(())
    /// # }
    /// ```
    ImapStream(AsyncCall<R, Infallible>) {
        /// ```
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// let pool = twat_mp::AsyncMultiPool::with_nodes(2)?;
        /// let mut squares = pool.imap(|x: u64| async move { x * x }, 1..=3);
        /// assert_eq!(squares.next().await.transpose()?, Some(1));
        /// assert_eq!(squares.next().await.transpose()?, Some(4));
        /// # Ok(())
        /// # }
        /// ```
    }
}

result_stream! {
    /// The stream of [`AsyncMultiPool::uimap`](super::AsyncMultiPool::uimap): results in
    /// the order they finish. Dropping it cancels the items still queued or running.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = twat_mp::AsyncMultiPool::with_nodes(2)?;
    /// let mut squares = pool.uimap(|x: u64| async move { x * x }, 1..=3);
    /// let mut all = Vec::new();
    /// while let Some(result) = squares.next().await {
    ///     all.push(result?);
    /// }
    /// all.sort();
    /// assert_eq!(all, [1, 4, 9]);
    /// # Ok(())
    /// # }
    /// ```
    UimapStream(AsyncCall<R, Infallible>) {
        /// ```
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// let pool = twat_mp::AsyncMultiPool::with_nodes(2)?;
        /// let mut squares = pool.uimap(|x: u64| async move { x * x }, 1..=3);
        /// let first = squares.next().await.transpose()?;
        /// assert!(matches!(first, Some(1 | 4 | 9)));
        /// # Ok(())
        /// # }
        /// ```
    }
}
