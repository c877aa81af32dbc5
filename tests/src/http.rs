//! A minimal HTTP/1.1 client over a raw socket: requests go out byte for byte as written, so
//! tests can send `//admin`, duplicate headers or invalid bytes that real clients would fix.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Sends `method target` to `127.0.0.1:port` with `headers` (raw bytes allowed).
pub async fn request(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &[u8])],
) -> std::io::Result<Response> {
    request_with_body(port, method, target, headers, &[]).await
}

/// Like [`request`] with a body (sent with its `content-length`).
pub async fn request_with_body(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut raw = format!("{method} {target} HTTP/1.1\r\nhost: api.test\r\nconnection: close\r\n")
        .into_bytes();
    for (name, value) in headers {
        raw.extend_from_slice(name.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() {
        raw.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(&raw).await?;
    // Read only until the response is complete: Envoy keeps the socket open for its delayed
    // close after local replies, so waiting for EOF would add a second to every denial.
    let read = async {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            buffer.extend_from_slice(chunk.get(..n).unwrap_or_default());
            if n == 0 || is_complete(&buffer) {
                return Ok::<_, std::io::Error>(buffer);
            }
        }
    };
    let buffer = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .map_err(|_| std::io::Error::other("response timed out"))??;
    parse(&buffer).ok_or_else(|| {
        std::io::Error::other(format!(
            "bad response: {}",
            String::from_utf8_lossy(&buffer)
        ))
    })
}

fn is_complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(raw.get(..split).unwrap_or_default()).to_ascii_lowercase();
    let body = raw.get(split + 4..).unwrap_or_default();
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(length) => body.len() >= length,
        None => head.starts_with("http/1.1 204") || head.starts_with("http/1.1 304"),
    }
}

/// `GET target` with an optional bearer token.
pub async fn get(port: u16, target: &str, token: Option<&str>) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &[u8])> = auth
        .iter()
        .map(|a| ("authorization", a.as_bytes()))
        .collect();
    request(port, "GET", target, &headers)
        .await
        .unwrap_or_else(|e| panic!("GET {target}: {e}"))
}

fn parse(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(raw.get(..split)?).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw.get(split + 4..)?.to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(raw.get(..line_end)?).ok()?.trim(), 16)
                .ok()?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(line_end + 2..line_end + 2 + size)?);
        raw = raw.get(line_end + 4 + size..)?;
    }
}
