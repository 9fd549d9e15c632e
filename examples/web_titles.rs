//! The seed's "Web Scraping (I/O-Bound)": fetch pages and extract their titles, one thread
//! per URL. The site is served by this example on 127.0.0.1 (no outside network).
//!
//! Run: `cargo run --release --example web_titles`

use twat_mp::ThreadPool;
use twat_mp_workspace::site::{LocalSite, fetch, title};

fn fetch_page_title(url: String) -> String {
    match fetch(&url) {
        Ok(response) if response.status == 200 => {
            let words = response.body.split_whitespace().count();
            format!(
                "Title for {url}: {} ({words} words)",
                title(&response.body).unwrap_or("no title")
            )
        }
        Ok(response) => format!("Error fetching {url}: HTTP {}", response.status),
        Err(err) => format!("Error fetching {url}: {err}"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let site = LocalSite::start(12)?;
    let urls: Vec<String> = (0..12).map(|n| site.url(&format!("/page/{n}"))).collect();
    let pool = ThreadPool::with_nodes(urls.len())?;
    for line in pool.map(fetch_page_title, urls)? {
        println!("{line}");
    }
    Ok(())
}
