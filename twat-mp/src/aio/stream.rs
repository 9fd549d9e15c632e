//! The streams of [`AsyncMultiPool`](super::AsyncMultiPool): [`ImapStream`] (input
//! order) and [`UimapStream`] (completion order).

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::{FusedStream, Stream};

use super::engine::Engine;
use crate::error::WorkerError;
use crate::item::ItemFailure;

macro_rules! result_stream {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[must_use = "streams are lazy: the items run only as it is polled"]
        pub struct $name<R> {
            engine: Engine<R, Infallible>,
            done: bool,
        }

        impl<R: Send + 'static> $name<R> {
            pub(crate) fn new(engine: Engine<R, Infallible>) -> Self {
                $name { engine, done: false }
            }

            /// The next result, or `None` once every item has been yielded — the same as
            /// `StreamExt::next`, without importing it.
            #[allow(clippy::should_implement_trait)]
            pub async fn next(&mut self) -> Option<Result<R, WorkerError>> {
                std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
            }
        }

        // Never pinned structurally: the results are moved out, never polled in place.
        impl<R> Unpin for $name<R> {}

        impl<R: Send + 'static> Stream for $name<R> {
            type Item = Result<R, WorkerError>;

            fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
                if self.done {
                    return Poll::Ready(None);
                }
                let next = std::task::ready!(self.engine.poll_next(cx));
                self.done = next.is_none();
                Poll::Ready(match next {
                    None => None,
                    Some((_, outcome)) => {
                        Some(outcome.map_err(ItemFailure::into_infallible_worker_error))
                    }
                })
            }
        }

        impl<R: Send + 'static> FusedStream for $name<R> {
            fn is_terminated(&self) -> bool {
                self.done
            }
        }

        impl<R> fmt::Debug for $name<R> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("yielded", &self.engine.yielded())
                    .field("in_flight", &self.engine.in_flight())
                    .finish_non_exhaustive()
            }
        }
    };
}

result_stream! {
    /// The stream of [`AsyncMultiPool::imap`](super::AsyncMultiPool::imap): results in
    /// input order, computed a bounded window ahead of the consumer. Dropping it cancels
    /// the items still queued or running.
    ImapStream
}

result_stream! {
    /// The stream of [`AsyncMultiPool::uimap`](super::AsyncMultiPool::uimap): results in
    /// the order they finish. Dropping it cancels the items still queued or running.
    UimapStream
}
