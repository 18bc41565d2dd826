//! A bare HTTP/1.1 client over one loopback connection (`Connection: close`), for the webhook
//! stories and the benches: the request goes out byte for byte as written, so a missing or forged
//! signature header reaches the receiver untouched, and there is no client of its own to warm up
//! inside a timed section. Enough for webhooks, `/healthz`, `/metrics` and the registry's
//! manifest GET and PUT; chunked responses are refused.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response: its status code and its whole body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request to `addr` (`host:port`) with exactly `headers` (plus Host, Connection and
/// Content-Length).
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream
        .write_all(&request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "not an HTTP response: {:?}",
                String::from_utf8_lossy(&response)
            )
        })?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err("chunked responses are not supported here".into());
    }
    Ok(Response {
        status,
        body: response[split + 4..].to_vec(),
    })
}

/// POSTs `body` to `http://{addr}{path}` and returns the status code; panics when no HTTP
/// answer comes.
pub async fn post<V: AsRef<str>>(addr: &str, path: &str, headers: &[(&str, V)], body: &str) -> u16 {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_ref())).collect();
    request(addr, "POST", path, &headers, body.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("POST {addr}{path}: {e}"))
        .status
}
