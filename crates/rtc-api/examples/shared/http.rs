//! The examples' small HTTP/1.1 server over tokio (`#[path]`-included by
//! the `browser` and `whip` examples): one request per TCP connection
//! (`Connection: close`), heads of 16 KiB at most, bodies capped by the
//! caller, every response `Cache-Control: no-store`. Enough for a page and
//! its fetches on 127.0.0.1; not a general web server.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head (request line and header fields).
const MAX_HEAD: usize = 16 << 10;

/// One HTTP request: the method, the path without its query, the header
/// fields in order, the body.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Request {
    /// The value of the first header field named `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The media type of the body, without parameters, in lower case.
    pub(crate) fn content_type(&self) -> String {
        self.header("content-type").and_then(|v| v.split(';').next()).unwrap_or_default().trim().to_ascii_lowercase()
    }
}

/// A response: status line text (`"201 Created"`), header fields besides
/// `Content-Length`, `Cache-Control` and `Connection`, body.
pub(crate) struct Response {
    pub(crate) status: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: String,
}

impl Response {
    /// A response with a body of `content_type`.
    pub(crate) fn new(status: &'static str, content_type: &str, body: impl Into<String>) -> Self {
        Response { status, headers: vec![("Content-Type", content_type.to_owned())], body: body.into() }
    }

    /// A plain-text response.
    pub(crate) fn text(status: &'static str, body: impl Into<String>) -> Self {
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    /// A response without a body.
    pub(crate) fn empty(status: &'static str) -> Self {
        Response { status, headers: Vec::new(), body: String::new() }
    }

    /// Adds a header field.
    pub(crate) fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// Why a request was not read.
enum ReadError {
    /// The connection closed or sent something that is not HTTP.
    Bad,
    /// The body is longer than the cap.
    TooLarge,
}

/// Reads one request: the head up to its blank line, then `Content-Length`
/// octets of body (`max_body` at most).
async fn read_request(tcp: &mut TcpStream, max_body: usize) -> Result<Request, ReadError> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() >= MAX_HEAD {
            return Err(ReadError::Bad);
        }
        let n = tcp.read(&mut chunk).await.ok().filter(|&n| n > 0).ok_or(ReadError::Bad)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = std::str::from_utf8(&buf[..head]).map_err(|_| ReadError::Bad)?;
    let mut lines = text.lines();
    let mut first = lines.next().ok_or(ReadError::Bad)?.split_whitespace();
    let (method, target) = (first.next().ok_or(ReadError::Bad)?.to_owned(), first.next().ok_or(ReadError::Bad)?);
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    let length = match headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
        Some((_, v)) => v.parse::<usize>().map_err(|_| ReadError::Bad)?,
        None => 0,
    };
    if length > max_body {
        return Err(ReadError::TooLarge);
    }
    let mut body = buf.split_off(head);
    while body.len() < length {
        let n = tcp.read(&mut chunk).await.ok().filter(|&n| n > 0).ok_or(ReadError::Bad)?;
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok(Request { method, path, headers, body })
}

async fn write_response(tcp: &mut TcpStream, r: &Response) {
    let mut head = format!("HTTP/1.1 {}\r\n", r.status);
    for (name, value) in &r.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n", r.body.len()));
    let _ = tcp.write_all(head.as_bytes()).await;
    let _ = tcp.write_all(r.body.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

/// Binds `ip:port` (port 0 for any free port).
pub(crate) async fn bind(ip: IpAddr, port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind((ip, port)).await
}

/// Serves `listener` until Ctrl-C: each request (read within 10 s, bodies
/// of `max_body` octets at most, else `413`) is answered with what
/// `handle` makes of it, each connection in a task of its own.
pub(crate) async fn serve_until_ctrl_c<F, Fut>(listener: TcpListener, max_body: usize, handle: F)
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let handle = Arc::new(handle);
    let mut stop = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut tcp, _)) => {
                    let handle = handle.clone();
                    tokio::spawn(async move {
                        let response = match tokio::time::timeout(Duration::from_secs(10), read_request(&mut tcp, max_body)).await {
                            Ok(Ok(req)) => handle(req).await,
                            Ok(Err(ReadError::TooLarge)) => Response::text("413 Content Too Large", format!("bodies of {max_body} octets at most\n")),
                            Ok(Err(ReadError::Bad)) | Err(_) => return,
                        };
                        write_response(&mut tcp, &response).await;
                    });
                }
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = &mut stop => return,
        }
    }
}
