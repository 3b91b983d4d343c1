//! A raw Server-Sent Events reader for tests of the gateway's `/app/events` stream: parses the
//! `id:`/`event:`/`data:` blocks of a streaming response and counts comment lines (the
//! connected comment, heartbeats), so a test sees exactly what went over the wire.

use std::time::Duration;

use serde_json::Value;

/// One parsed SSE event that carried data.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// Its `id:` (every data event of the gateway has one).
    pub id: i64,
    /// Its `event:` name (`message` when absent).
    pub kind: String,
    /// Its `data:` lines joined, as JSON.
    pub data: Value,
}

/// Reads the byte stream of an SSE response block by block.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
    comments: usize,
}

impl SseReader {
    /// Reads `resp`, an open `text/event-stream` response.
    pub fn new(resp: reqwest::Response) -> SseReader {
        SseReader {
            resp,
            buf: String::new(),
            comments: 0,
        }
    }

    /// Comment lines (`:` ...) read so far.
    pub fn comments(&self) -> usize {
        self.comments
    }

    /// The next event with data, or `None` if nothing arrives within `wait` or the stream
    /// ends. Panics on a data event without an id or with data that is not JSON (a test
    /// failure: the gateway never sends either).
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf[..pos].to_string();
                self.buf.drain(..pos + 2);
                let (mut id, mut kind, mut data) = (None, String::from("message"), Vec::new());
                for line in block.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                    } else if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        kind = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push(v.to_string());
                    }
                }
                if !data.is_empty() {
                    return Some(SseEvent {
                        id: id.expect("every data event has an id"),
                        kind,
                        data: serde_json::from_str(&data.join("\n")).expect("JSON data"),
                    });
                }
            }
            let left = deadline.checked_duration_since(tokio::time::Instant::now())?;
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(std::str::from_utf8(&bytes).ok()?),
                _ => return None,
            }
        }
    }
}

impl SseReader {
    /// The next event with data, which must arrive within `wait` (panics otherwise: a test
    /// failure saying so).
    pub async fn expect(&mut self, wait: Duration) -> SseEvent {
        self.next(wait)
            .await
            .unwrap_or_else(|| panic!("no SSE event within {wait:?}"))
    }

    /// Whether the stream ends (the server closes it, or the connection fails) within `wait`
    /// with no further bytes.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        matches!(
            tokio::time::timeout(wait, self.resp.chunk()).await,
            Ok(Ok(None)) | Ok(Err(_))
        )
    }
}
