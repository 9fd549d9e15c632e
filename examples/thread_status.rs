//! The seed's "Using ThreadPool for I/O-Bound Tasks": fetch the status of several URLs on
//! as many threads. The pages come from a small site this example serves on 127.0.0.1,
//! plus a missing page and a closed port, so that both kinds of failure show.
//!
//! Run: `cargo run --release --example thread_status`

use std::net::TcpListener;

use twat_mp::ThreadPool;
use twat_mp_workspace::site::{LocalSite, fetch};

fn fetch_url_status(url: String) -> (String, String) {
    let status = match fetch(&url) {
        Ok(response) => response.status.to_string(),
        Err(err) => err.to_string(),
    };
    (url, status)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let site = LocalSite::start(3)?;
    // A port that was free a moment ago and is closed now: its connection is refused.
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let urls = vec![
        site.url("/page/0"),
        site.url("/page/2"),
        site.url("/no-such-page"),
        format!("http://{closed}/"),
    ];
    let pool = ThreadPool::with_nodes(urls.len())?;
    for (url, status) in pool.map(fetch_url_status, urls)? {
        println!("Status for {url}: {status}");
    }
    Ok(())
}
