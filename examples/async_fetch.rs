//! Fetching many pages at once with `#[apmap]`, over real sockets.
//!
//! The example starts a small HTTP/1.1 server on 127.0.0.1 (tokio's `TcpListener`,
//! serving the workspace's generated pages), then fetches every page with an `#[apmap]`
//! function: each fetch is an async task on twat-mp's worker runtimes, many in flight at
//! once, and the results come back in input order. One URL names a page that does not
//! exist, to show a 404 among the answers, and one a port nobody listens on, to show how
//! a failed item is reported.
//!
//! Run with `cargo run --example async_fetch --features aio`.

use std::io;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use twat_mp::{AsyncMultiPool, apmap};
use twat_mp_workspace::site::{Response, get_request, page_html, parse_response, split_url, title};

/// How many pages the server has.
const PAGES: usize = 300;

/// What one fetch found.
#[derive(Debug)]
struct Page {
    url: String,
    status: u16,
    bytes: usize,
    words: usize,
    title: String,
}

/// Fetches every URL, up to 64 at once per worker, each within 10 s: the pages in input
/// order, or the `io::Error` of the first URL that failed.
#[apmap(concurrency = 64, timeout = "10s")]
async fn fetch(url: String) -> io::Result<Page> {
    get(url).await
}

/// Fetches one URL with a plain HTTP/1.1 GET and summarizes the page.
async fn get(url: String) -> io::Result<Page> {
    let (host, path) = split_url(&url)?;
    let mut stream = TcpStream::connect(host).await?;
    stream.write_all(get_request(host, path).as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let raw =
        String::from_utf8(raw).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
    let Response { status, body } = parse_response(&raw)?;
    let body = body.as_str();
    Ok(Page {
        status,
        bytes: body.len(),
        words: text_of(body).split_whitespace().count(),
        title: title(body).unwrap_or("").to_owned(),
        url,
    })
}

/// The text of an HTML page: everything outside its tags.
fn text_of(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// Serves `/page/N` for N below `pages`, 404 otherwise, one task per connection.
async fn serve(listener: TcpListener, pages: usize) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            if let Err(err) = answer(stream, pages).await {
                eprintln!("server: {err}");
            }
        });
    }
}

async fn answer(stream: TcpStream, pages: usize) -> io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut header = String::new();
    // The headers end with an empty line.
    while reader.read_line(&mut header).await? > 2 {
        header.clear();
    }
    let page = request_line
        .split_whitespace()
        .nth(1)
        .and_then(|path| path.strip_prefix("/page/"))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n < pages);
    let (status, body) = match page {
        Some(n) => ("200 OK", page_html(n)),
        None => (
            "404 Not Found",
            "<html><head><title>Not found</title></head></html>".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    writer.write_all(response.as_bytes()).await?;
    writer.shutdown().await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    // The server runs on this program's own runtime; the fetches on twat-mp's workers.
    tokio::spawn(serve(listener, PAGES));

    // Every page, plus one the site does not have.
    let urls: Vec<String> = (0..=PAGES)
        .map(|n| format!("http://{addr}/page/{n}"))
        .collect();
    let started = Instant::now();
    let pages = fetch(urls).await?;
    let elapsed = started.elapsed();

    println!(
        "fetched {} URLs from http://{addr} in {elapsed:.1?}",
        pages.len()
    );
    println!(
        "{:<34} {:>6} {:>6} {:>6}  title",
        "url", "status", "bytes", "words"
    );
    for page in pages.iter().take(5).chain(pages.last()) {
        println!(
            "{:<34} {:>6} {:>6} {:>6}  {}",
            page.url, page.status, page.bytes, page.words, page.title
        );
    }
    let found: Vec<&Page> = pages.iter().filter(|page| page.status == 200).collect();
    let bytes: usize = found.iter().map(|page| page.bytes).sum();
    let words: usize = found.iter().map(|page| page.words).sum();
    let longest = found
        .iter()
        .max_by_key(|page| page.words)
        .expect("pages were found");
    println!(
        "{} pages found, {} missing: {bytes} bytes, {words} words; the longest is {:?} ({} words)",
        found.len(),
        pages.len() - found.len(),
        longest.title,
        longest.words,
    );

    // Where `#[apmap]` gives the function's own error, the pool API says which item
    // failed and why.
    let pool = AsyncMultiPool::with_nodes(2)?;
    let nobody = TcpListener::bind("127.0.0.1:0").await?.local_addr()?; // closed at once
    let urls = [
        format!("http://{addr}/page/1"),
        format!("http://{nobody}/page/1"),
    ];
    let err = pool
        .try_map(get, urls)
        .await
        .expect_err("nobody listens on the second URL");
    println!("and with the pool API: {err}");
    Ok(())
}
