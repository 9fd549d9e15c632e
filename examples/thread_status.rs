//! The seed's "Using ThreadPool for I/O-Bound Tasks": fetch the status of several URLs
//! on as many threads, with a real blocking HTTP client (`ureq`). The pages come from an
//! `axum` site this example starts on 127.0.0.1 (`examples/local_site`), plus a missing
//! page and a closed port, so that both kinds of failure show: an answer that is an
//! error status, and no answer at all.
//!
//! Run: `cargo run --release --example thread_status`

mod local_site;

use std::time::{Duration, Instant};

use local_site::{LocalSite, closed_port_url, title};
use twat_mp::ThreadPool;

/// The status line of `url` (`200 OK`), or why there is none, with the page's size, title
/// and how long the request took.
fn fetch_url_status(agent: &ureq::Agent, url: String) -> (String, String) {
    let started = Instant::now();
    let status = match agent.get(&url).call() {
        Ok(mut response) => {
            let status = response.status();
            match response.body_mut().read_to_string() {
                Ok(body) => format!(
                    "{status} ({} bytes, {:?}) in {:.2?}",
                    body.len(),
                    title(&body).unwrap_or("no title"),
                    started.elapsed()
                ),
                Err(err) => format!("{status}, but its body failed: {err}"),
            }
        }
        Err(err) => format!("failed after {:.2?}: {err}", started.elapsed()),
    };
    (url, status)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let site = LocalSite::start(3)?;
    let mut urls = site.page_urls(3);
    urls.push(site.url("/no-such-page"));
    urls.push(closed_port_url()?);
    // One client for all threads; a 404 is a status to report, not an error.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        // The site is on this machine: never ask a proxy from the environment.
        .proxy(None)
        .build()
        .into();

    let pool = ThreadPool::with_nodes(urls.len())?;
    let started = Instant::now();
    let statuses = pool.map_with(&agent, fetch_url_status, urls)?;
    let wall = started.elapsed();
    for (url, status) in &statuses {
        println!("Status for {url}: {status}");
    }
    println!(
        "{} URLs on {} threads in {wall:.2?}",
        statuses.len(),
        pool.nodes()
    );
    Ok(())
}
