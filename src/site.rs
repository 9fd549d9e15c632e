//! A small website on 127.0.0.1 and a blocking HTTP/1.1 client for it: real sockets for
//! the I/O-bound examples, with no network beyond this machine.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// A website serving `/page/N` (N below its page count) and 404 for everything else.
#[derive(Debug)]
pub struct LocalSite {
    addr: SocketAddr,
}

impl LocalSite {
    /// Starts serving `pages` generated pages on a free port of 127.0.0.1, one thread per
    /// connection, for the rest of the program.
    pub fn start(pages: usize) -> io::Result<LocalSite> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let _ = serve(stream, pages);
                });
            }
        });
        Ok(LocalSite { addr })
    }

    /// The URL of `path` on this site.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// The HTML of page `n`: a title and `n % 7 + 1` paragraphs.
pub fn page_html(n: usize) -> String {
    let paragraphs: String = (0..n % 7 + 1)
        .map(|p| format!("<p>Paragraph {p} of page {n}: parallel maps keep every core busy.</p>"))
        .collect();
    format!("<html><head><title>Page {n}</title></head><body>{paragraphs}</body></html>")
}

fn serve(stream: TcpStream, pages: usize) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let page = path
        .strip_prefix("/page/")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n < pages);
    let (status, body) = match page {
        Some(n) => ("200 OK", page_html(n)),
        None => (
            "404 Not Found",
            "<html><title>Not found</title></html>".to_owned(),
        ),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// A response: its status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

/// Fetches `url` (`http://HOST:PORT/PATH`) with a plain HTTP/1.1 GET.
///
/// # Errors
/// A malformed URL or response, or any socket error (a refused connection, a timeout).
pub fn fetch(url: &str) -> io::Result<Response> {
    let (host, path) = split_url(url)?;
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(get_request(host, path).as_bytes())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    parse_response(&raw)
}

/// `http://HOST:PORT/PATH` as `("HOST:PORT", "/PATH")`.
///
/// ```
/// use twat_mp_workspace::site::split_url;
/// assert_eq!(split_url("http://127.0.0.1:80/a/b").unwrap(), ("127.0.0.1:80", "/a/b"));
/// assert_eq!(split_url("http://127.0.0.1:80").unwrap(), ("127.0.0.1:80", "/"));
/// assert!(split_url("ftp://x").is_err());
/// ```
///
/// # Errors
/// A URL that does not start with `http://`.
pub fn split_url(url: &str) -> io::Result<(&str, &str)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an http:// URL: {url}"),
        )
    })?;
    Ok(match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    })
}

/// The bytes of a plain HTTP/1.1 GET of `path` on `host`, closing the connection after.
pub fn get_request(host: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

/// The status and body of a raw HTTP/1.1 response.
///
/// # Errors
/// A response without a blank line after its head, or without a numeric status.
pub fn parse_response(raw: &str) -> io::Result<Response> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed HTTP response");
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    Ok(Response {
        status,
        body: body.to_owned(),
    })
}

/// The text between `<title>` and `</title>`, if any.
///
/// ```
/// use twat_mp_workspace::site::title;
/// assert_eq!(title("<html><title>Hi</title></html>"), Some("Hi"));
/// ```
pub fn title(html: &str) -> Option<&str> {
    let start = html.find("<title>")? + "<title>".len();
    let end = start + html[start..].find("</title>")?;
    Some(&html[start..end])
}
