//! [`AsyncMultiPool`] and the runtime of `#[apmap]` (cargo feature `aio`): async
//! functions on worker runtimes of their own, awaited from any executor.

mod attribute;
mod dispatch;
mod pool;
#[cfg(target_os = "linux")]
mod process;
pub(crate) mod replies;
mod scheduler;
mod stream;
mod watchdog;

pub use attribute::{apmap, apmap_result};
pub use pool::{AsyncMultiPool, AsyncMultiPoolBuilder, DEFAULT_CONCURRENCY};
#[cfg(target_os = "linux")]
pub use process::attribute::{apmap_process, apmap_result_process};
#[cfg(target_os = "linux")]
pub use process::{
    AsyncProcessPool, AsyncProcessPoolBuilder, ProcessImapStream, ProcessUimapStream,
};
pub use stream::{ImapStream, UimapStream};
