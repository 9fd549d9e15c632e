//! The seed's "Web Scraping (I/O-Bound)": fetch pages and read their titles on a
//! `ThreadPool`, with a real blocking HTTP client (`ureq`). The site is an `axum` server
//! this example starts on 127.0.0.1 (`examples/local_site`), so nothing leaves the
//! machine; one URL names a page the site does not have and one a closed port, so that
//! both kinds of failure show in the report.
//!
//! The same requests run twice in the same run: one at a time on the main thread, then on
//! the pool, and the report compares the two wall times.
//!
//! Run: `cargo run --release --example web_titles`

mod local_site;

use std::time::{Duration, Instant};

use local_site::{LocalSite, closed_port_url, title};
use twat_mp::ThreadPool;

/// How many pages the site has, and how many the example fetches.
const PAGES: usize = 120;
/// Threads of the pool: more than cores, as suits work that waits on sockets.
const THREADS: usize = 16;
/// Rows of the table before it sums up the rest.
const SHOWN: usize = 8;

/// What one request found.
#[derive(Debug)]
struct Fetched {
    url: String,
    /// The page, or why there is none (refused connection, timeout, bad response).
    outcome: Result<Page, ureq::Error>,
    /// From the start of the request to the last byte of the body.
    time: Duration,
}

/// An answer of the server, whatever its status.
#[derive(Debug)]
struct Page {
    status: u16,
    bytes: usize,
    title: Option<String>,
}

impl Fetched {
    /// Whether the page was there: status 200.
    fn found(&self) -> bool {
        matches!(&self.outcome, Ok(page) if page.status == 200)
    }

    /// What the request got, to compare two runs: status and size, or `None` for an error.
    fn answer(&self) -> Option<(u16, usize)> {
        self.outcome
            .as_ref()
            .ok()
            .map(|page| (page.status, page.bytes))
    }
}

/// One line of the report.
fn print_row(f: &Fetched) {
    let time = format!("{:.2?}", f.time);
    match &f.outcome {
        Ok(page) => println!(
            "{:<36} {:>6} {:>7} {time:>9}  {}",
            f.url,
            page.status,
            page.bytes,
            page.title.as_deref().unwrap_or("(no title)")
        ),
        Err(err) => println!(
            "{:<36} {:>6} {:>7} {time:>9}  error: {err}",
            f.url, "-", "-"
        ),
    }
}

/// The median time of the requests.
fn median_time(fetched: &[Fetched]) -> Duration {
    let mut times: Vec<Duration> = fetched.iter().map(|f| f.time).collect();
    times.sort();
    times[times.len() / 2]
}

/// A client for every thread: `ureq::Agent` is shared (it keeps a pool of open
/// connections), and a 404 is an answer to report, not an error.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .max_idle_connections_per_host(THREADS)
        // The site is on this machine: never ask a proxy from the environment.
        .proxy(None)
        .build()
        .into()
}

/// Fetches `url` and reads the title of its page.
fn fetch_title(agent: &ureq::Agent, url: String) -> Fetched {
    let started = Instant::now();
    let outcome = agent.get(&url).call().and_then(|mut response| {
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string()?;
        Ok(Page {
            status,
            bytes: body.len(),
            title: title(&body).map(str::to_owned),
        })
    });
    Fetched {
        url,
        outcome,
        time: started.elapsed(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let site = LocalSite::start(PAGES)?;
    let mut urls = site.page_urls(PAGES);
    urls.push(site.url(&format!("/page/{PAGES}")));
    urls.push(closed_port_url()?);
    let agent = agent();
    let pool = ThreadPool::with_nodes(THREADS)?;

    // One request first, so that neither run below pays for the server's start.
    fetch_title(&agent, urls[0].clone()).outcome?;

    let started = Instant::now();
    let one_by_one: Vec<Fetched> = urls
        .iter()
        .map(|url| fetch_title(&agent, url.clone()))
        .collect();
    let one_by_one_wall = started.elapsed();

    let started = Instant::now();
    let fetched = pool.map_with(&agent, fetch_title, urls)?;
    let pool_wall = started.elapsed();

    println!(
        "{} URLs fetched from {} with {THREADS} threads\n",
        fetched.len(),
        site.url("/")
    );
    println!(
        "{:<36} {:>6} {:>7} {:>9}  title",
        "url", "status", "bytes", "time"
    );
    let (first, rest) = fetched.split_at(SHOWN.min(fetched.len()));
    let (found, others): (Vec<&Fetched>, Vec<&Fetched>) = rest.iter().partition(|f| f.found());
    first.iter().for_each(print_row);
    if !found.is_empty() {
        println!("{:<36} ({} more pages like these)", "…", found.len());
    }
    others.into_iter().for_each(print_row);

    let pages: Vec<&Page> = fetched
        .iter()
        .filter_map(|f| f.outcome.as_ref().ok())
        .filter(|page| page.status == 200)
        .collect();
    println!(
        "\n{} pages with a title, {} bytes; {} URLs failed or missing",
        pages.iter().filter(|page| page.title.is_some()).count(),
        pages.iter().map(|page| page.bytes).sum::<usize>(),
        fetched.len() - pages.len(),
    );
    println!(
        "time per request: one at a time median {:.2?}, on the pool median {:.2?}",
        median_time(&one_by_one),
        median_time(&fetched)
    );
    let same = one_by_one
        .iter()
        .map(Fetched::answer)
        .eq(fetched.iter().map(Fetched::answer));
    println!(
        "wall time: one at a time {one_by_one_wall:.1?}, on the pool {pool_wall:.1?}: {:.1}x as fast, {}",
        one_by_one_wall.as_secs_f64() / pool_wall.as_secs_f64(),
        if same {
            "with the same answers"
        } else {
            "but the answers differ!"
        }
    );
    println!(
        "(on the pool each request waits longer for one of this machine's {} cores, which the \
         server shares, but {THREADS} are in flight at once; against remote servers the threads \
         mostly wait on the network, and the gain grows with their number)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}
