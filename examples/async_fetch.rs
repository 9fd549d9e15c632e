//! Fetching many pages at once with `#[apmap]` and a real async HTTP client (`reqwest`).
//!
//! The example starts the workspace examples' `axum` site on 127.0.0.1
//! (`examples/local_site`), then fetches every page with an `#[apmap]` function: each
//! fetch is an async task on twat-mp's worker runtimes, many in flight at once, and the
//! results come back in input order. One URL names a page that does not exist, to show a
//! 404 among the answers; then `AsyncMultiPool` fetches from a port nobody listens on, to
//! show how a failed item is reported.
//!
//! Run: `cargo run --release --example async_fetch`

mod local_site;

use std::time::{Duration, Instant};

use local_site::{LocalSite, closed_port_url, title};
use twat_mp::{AsyncMultiPool, apmap};

/// How many pages the site has.
const PAGES: usize = 300;

/// What one fetch found.
#[derive(Debug)]
struct Page {
    url: String,
    status: u16,
    bytes: usize,
    title: String,
}

thread_local! {
    /// One client per worker thread: each worker runs its own tokio runtime, and a
    /// `reqwest::Client` keeps its open connections on the runtime that opened them.
    static CLIENT: reqwest::Client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        // The site is on this machine: never ask a proxy from the environment.
        .no_proxy()
        .build()
        .expect("a client without TLS or proxies builds");
}

/// Fetches every URL, up to 64 at once per worker, each within 10 s: the pages in input
/// order, or the `reqwest::Error` of the first URL that failed.
#[apmap(concurrency = 64, timeout = "10s")]
async fn fetch(url: String) -> reqwest::Result<Page> {
    get(url).await
}

/// Fetches one URL and summarizes its page.
async fn get(url: String) -> reqwest::Result<Page> {
    let client = CLIENT.with(reqwest::Client::clone);
    let response = client.get(&url).send().await?;
    let status = response.status().as_u16();
    let body = response.text().await?;
    Ok(Page {
        status,
        bytes: body.len(),
        title: title(&body).unwrap_or("").to_owned(),
        url,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The server runs on a thread and runtime of its own; the fetches on twat-mp's workers.
    let site = LocalSite::start(PAGES)?;

    // Every page, plus one the site does not have.
    let mut urls = site.page_urls(PAGES);
    urls.push(site.url(&format!("/page/{PAGES}")));
    let started = Instant::now();
    let pages = fetch(urls).await?;
    let elapsed = started.elapsed();

    println!(
        "fetched {} URLs from {} in {elapsed:.1?}",
        pages.len(),
        site.url("/")
    );
    println!("{:<36} {:>6} {:>6}  title", "url", "status", "bytes");
    for page in pages.iter().take(5).chain(pages.last()) {
        println!(
            "{:<36} {:>6} {:>6}  {}",
            page.url, page.status, page.bytes, page.title
        );
    }
    let found: Vec<&Page> = pages.iter().filter(|page| page.status == 200).collect();
    let bytes: usize = found.iter().map(|page| page.bytes).sum();
    let longest = found
        .iter()
        .max_by_key(|page| page.bytes)
        .expect("pages were found");
    println!(
        "{} pages found, {} missing: {bytes} bytes; the longest is {:?} ({} bytes)",
        found.len(),
        pages.len() - found.len(),
        longest.title,
        longest.bytes,
    );

    // Where `#[apmap]` gives the function's own error, the pool API says which item
    // failed and why.
    let pool = AsyncMultiPool::with_nodes(2)?;
    let urls = [site.url("/page/1"), closed_port_url()?];
    let err = pool
        .try_map(get, urls)
        .await
        .expect_err("nobody listens on the second URL");
    // `{}` is one sentence; `{:#}` adds the worker, the attempts and each cause on its
    // own line: the fetch's own error and the errors under it.
    println!("and with the pool API: {err}");
    println!("in full:\n{err:#}");
    Ok(())
}
