//! The website the HTTP examples (`web_titles`, `thread_status`, `async_fetch`) fetch:
//! an `axum` server on a free port of 127.0.0.1, so that they make real requests over
//! real sockets without any network beyond this machine.
//!
//! It serves `/page/N` for N below its page count: generated articles with a `<title>` of
//! their own and from one to a few dozen paragraphs, so pages differ in size. Any other
//! path gets a `404 Not Found` page.

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::thread;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;

/// A running site; it serves until the program ends.
#[derive(Debug)]
pub struct LocalSite {
    addr: SocketAddr,
}

impl LocalSite {
    /// Starts serving `pages` pages on a free port of 127.0.0.1, on a thread of its own
    /// with its own tokio runtime (two worker threads), so the program may be
    /// synchronous or async, on any runtime.
    pub fn start(pages: usize) -> io::Result<LocalSite> {
        let listener = StdListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("local-site")
            .enable_all()
            .build()?;
        let app = Router::new()
            .route("/page/{n}", get(page))
            .fallback(not_found)
            .with_state(pages);
        thread::Builder::new()
            .name("local-site".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    axum::serve(listener, app).await
                })
            })?;
        Ok(LocalSite { addr })
    }

    /// The URL of `path` (which starts with `/`) on this site.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The URLs of the site's first `count` pages: `/page/0`, `/page/1`, …
    pub fn page_urls(&self, count: usize) -> Vec<String> {
        (0..count)
            .map(|n| self.url(&format!("/page/{n}")))
            .collect()
    }
}

/// A URL of 127.0.0.1 where nobody listens: its port was free a moment ago and is closed
/// again, so a connection to it is refused.
pub fn closed_port_url() -> io::Result<String> {
    let addr = StdListener::bind("127.0.0.1:0")?.local_addr()?;
    Ok(format!("http://{addr}/"))
}

/// The text between `<title>` and `</title>`, if the page has one.
///
/// A plain search is enough for the one tag these examples read; pages of the wider
/// web need an HTML parser.
pub fn title(html: &str) -> Option<&str> {
    let start = html.find("<title>")? + "<title>".len();
    let end = start + html[start..].find("</title>")?;
    Some(html[start..end].trim())
}

/// What the articles are about, one per page in turn.
const TOPICS: [&str; 8] = [
    "Work stealing",
    "Channels and back-pressure",
    "Why processes isolate crashes",
    "Async tasks on worker runtimes",
    "Chunk sizes and overhead",
    "Ordered versus unordered results",
    "Timeouts that cancel",
    "Sharing state with workers",
];

/// `GET /page/{n}`: article `n`, or 404 past the last page.
async fn page(
    State(pages): State<usize>,
    Path(n): Path<usize>,
) -> Result<Html<String>, (StatusCode, Html<&'static str>)> {
    if n >= pages {
        return Err(not_found().await);
    }
    Ok(Html(article(n)))
}

/// Any path the site does not have.
async fn not_found() -> (StatusCode, Html<&'static str>) {
    (
        StatusCode::NOT_FOUND,
        Html(
            "<!doctype html><html><head><title>Not found</title></head><body><p>No such page.</p></body></html>",
        ),
    )
}

/// The HTML of article `n`: its title, and `1 + (n * 7) % 30` paragraphs.
fn article(n: usize) -> String {
    let topic = TOPICS[n % TOPICS.len()];
    let paragraphs: String = (0..1 + (n * 7) % 30)
        .map(|p| {
            format!(
                "<p>{topic}, part {p} of article {n}: a parallel map keeps every worker busy, \
                 returns its results in input order and names the item that failed.</p>\n"
            )
        })
        .collect();
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{topic} (article {n})</title></head>\n\
         <body><h1>{topic}</h1>\n{paragraphs}</body></html>\n"
    )
}
