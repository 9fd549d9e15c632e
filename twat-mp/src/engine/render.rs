//! How an item is shown in [`WorkerError::input`](crate::WorkerError::input): with its
//! `Debug` form when it has one, chosen without requiring it.

use std::fmt::Debug;
use std::marker::PhantomData;

/// Renders an item for [`WorkerError::input`](crate::WorkerError::input).
pub(crate) type Render<T> = fn(&T) -> String;

/// The longest rendering kept, in characters: an error message stays readable when an
/// item is a 64 MiB buffer.
pub(crate) const RENDER_LIMIT: usize = 200;

/// `text`, cut to [`RENDER_LIMIT`] characters with an ellipsis when it is longer.
pub(crate) fn shorten(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(RENDER_LIMIT) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Picks a `Debug` renderer for an item type when it has one, without requiring it
/// (autoref specialization; see the `__render!` macro).
pub struct RenderProbe<T>(PhantomData<fn(&T)>);

impl<T> RenderProbe<T> {
    /// A probe for the item type `T`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        RenderProbe(PhantomData)
    }
}

/// Chosen when the item type is `Debug`.
pub trait RenderDebug<T> {
    /// `Some` renderer.
    fn renderer(&self) -> Option<Render<T>>;
}

impl<T: Debug> RenderDebug<T> for RenderProbe<T> {
    fn renderer(&self) -> Option<Render<T>> {
        Some(|item| shorten(format!("{item:?}")))
    }
}

/// Chosen otherwise.
pub trait RenderNothing<T> {
    /// No renderer.
    fn renderer(&self) -> Option<Render<T>>;
}

impl<T> RenderNothing<T> for &RenderProbe<T> {
    fn renderer(&self) -> Option<Render<T>> {
        None
    }
}

/// `Some(renderer)` when the type is `Debug`, else `None`: used by the expansions so that
/// [`WorkerError::input`] shows the item in debug mode.
#[doc(hidden)]
#[macro_export]
macro_rules! __render {
    ($item:ty) => {{
        #[allow(unused_imports)]
        use $crate::__private::{RenderDebug as _, RenderNothing as _};
        (&$crate::__private::RenderProbe::<$item>::new()).renderer()
    }};
}

#[cfg(test)]
mod tests {
    struct Opaque;

    #[test]
    fn render_probe_picks_debug_when_there_is_one() {
        let render = crate::__render!(Vec<u8>).unwrap();
        assert_eq!(render(&vec![1, 2]), "[1, 2]");
        assert!(crate::__render!(Opaque).is_none());
    }

    #[test]
    fn long_renderings_are_cut() {
        let render = crate::__render!(Vec<u8>).unwrap();
        let text = render(&vec![7; 10_000]);
        assert_eq!(text.chars().count(), super::RENDER_LIMIT + 1);
        assert!(text.ends_with('…'));
    }
}
