//! [`AsyncMultiPool`] and the runtime of `#[apmap]` (cargo feature `aio`): async
//! functions on worker runtimes of their own, awaited from any executor.

mod attribute;
mod engine;
mod pool;
mod stream;

pub use attribute::{apmap, apmap_result};
pub use pool::{AsyncMultiPool, AsyncMultiPoolBuilder, DEFAULT_CONCURRENCY};
pub use stream::{ImapStream, UimapStream};
