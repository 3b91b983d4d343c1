//! Incremental server-sent-events parser (WHATWG `EventSource` rules) for the gateway's event
//! stream: bytes in, in chunks split anywhere, dispatched events out.
//!
//! Follows the WHATWG HTML "server-sent events" parsing rules: lines end with LF, CR or CRLF;
//! one leading UTF-8 BOM is skipped; lines starting with `:` are comments; `field: value` has
//! one optional space after the colon removed; a line without a colon is a field with an empty
//! value; `data` lines are joined with `\n`; the event type defaults to `message`; an `id`
//! containing NUL is ignored and the id persists across events; `retry` counts only when all
//! ASCII digits; unknown fields are ignored; a blank line dispatches the event when it has data.
//! Invalid UTF-8 is replaced with U+FFFD, never an error. An incomplete event at the end of the
//! stream is never dispatched (it is simply never completed).
//!
//! Lines and events are bounded ([`SseParser::with_limits`]); going over a bound is an
//! [`SseError`] after which the parser is finished: the caller drops it and reconnects with
//! [`SseParser::last_event_id`].

/// Default bound on one line (bytes, without its line ending) and on one event's data (bytes):
/// 1 MiB each.
pub const DEFAULT_LIMIT: usize = 1024 * 1024;

/// The UTF-8 byte order mark, skipped once at the start of the stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The last event id in effect when the event was dispatched (set by this event's `id:`
    /// field or an earlier one); `None` when no id was ever set or it was reset with an empty
    /// `id:` field.
    pub id: Option<String>,
    /// The event type: the value of the last `event:` field, or `message` when none or empty.
    pub event: String,
    /// The data: the `data:` field values joined with `\n` (no trailing newline).
    pub data: String,
}

/// A stream the parser refuses to buffer. After one, the parser only repeats it: drop the
/// parser and reconnect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line is longer than the limit (bytes, without the line ending).
    #[error("server-sent events line longer than {limit} bytes")]
    LineTooLong {
        /// The line limit in bytes.
        limit: usize,
    },
    /// An event's data is larger than the limit (bytes of the joined `data` values).
    #[error("server-sent event data larger than {limit} bytes")]
    EventTooLarge {
        /// The event data limit in bytes.
        limit: usize,
    },
}

/// An incremental server-sent-events parser. Feed it the response body in chunks of any size
/// with [`SseParser::feed`]; it returns the events each chunk completes.
#[derive(Debug, Clone)]
pub struct SseParser {
    /// Bound on one line in bytes.
    max_line: usize,
    /// Bound on one event's data buffer in bytes.
    max_event: usize,
    /// Whether the start of the stream (a possible BOM) is behind us.
    bom_done: bool,
    /// The first bytes of the stream while they still look like the start of a BOM.
    bom_held: Vec<u8>,
    /// The last byte seen was CR: an LF right after it belongs to the same line ending.
    after_cr: bool,
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The data buffer: each `data` value followed by `\n`.
    data: String,
    /// The event type buffer.
    event_type: String,
    /// The last event id buffer (set by `id` fields, persists across events).
    id_buffer: String,
    /// The last event id string, updated from the buffer when an event is dispatched.
    last_event_id: String,
    /// The last valid `retry` value in milliseconds.
    retry_ms: Option<u64>,
    /// The error the parser stopped on, repeated by every later [`SseParser::feed`].
    failed: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new()
    }
}

impl SseParser {
    /// A parser with the default limits ([`DEFAULT_LIMIT`], 1 MiB per line and per event).
    pub fn new() -> Self {
        SseParser::with_limits(DEFAULT_LIMIT, DEFAULT_LIMIT)
    }

    /// A parser that fails with [`SseError::LineTooLong`] on a line longer than `max_line`
    /// bytes (line ending excluded) and with [`SseError::EventTooLarge`] when one event's data
    /// (the `data` values joined with `\n`) grows beyond `max_event` bytes.
    pub fn with_limits(max_line: usize, max_event: usize) -> Self {
        SseParser {
            max_line,
            max_event,
            bom_done: false,
            bom_held: Vec::new(),
            after_cr: false,
            line: Vec::new(),
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
            retry_ms: None,
            failed: None,
        }
    }

    /// Parses the next chunk of the stream and returns the events it completes, in order.
    ///
    /// Chunks may split the stream anywhere (inside a line, a CRLF pair or a UTF-8 character).
    /// When a limit is exceeded, events completed earlier in the same chunk are still returned
    /// (`Ok`) and the error comes from the next call; with no such events the error is returned
    /// at once. After an error every call returns it again: drop the parser and reconnect.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut events = Vec::new();
        match self.feed_inner(chunk, &mut events) {
            Ok(()) => Ok(events),
            Err(e) => {
                self.failed = Some(e.clone());
                if events.is_empty() {
                    Err(e)
                } else {
                    Ok(events)
                }
            }
        }
    }

    /// The last valid `retry:` value (suggested reconnection delay, milliseconds), if any.
    /// Values that are not all ASCII digits, or do not fit in a `u64`, are ignored.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// The last event id as of the last dispatch (send it as `Last-Event-ID` when
    /// reconnecting); `None` when none was set or it was reset by an empty `id:` field.
    ///
    /// Like a browser's `EventSource`, an `id:` field takes effect when its event is
    /// dispatched by a blank line, even when that event has no data.
    pub fn last_event_id(&self) -> Option<&str> {
        if self.last_event_id.is_empty() {
            None
        } else {
            Some(&self.last_event_id)
        }
    }

    /// Skips a leading BOM, then parses the rest of the chunk.
    fn feed_inner(&mut self, mut chunk: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        while !self.bom_done {
            let Some((&byte, rest)) = chunk.split_first() else {
                return Ok(());
            };
            if BOM.get(self.bom_held.len()) == Some(&byte) {
                chunk = rest;
                self.bom_held.push(byte);
                if self.bom_held.len() == BOM.len() {
                    self.bom_held.clear();
                    self.bom_done = true;
                }
            } else {
                // Not a BOM: the held bytes (a BOM prefix, no line endings) are ordinary data.
                self.bom_done = true;
                let held = std::mem::take(&mut self.bom_held);
                self.parse(&held, events)?;
            }
        }
        self.parse(chunk, events)
    }

    /// Splits bytes into lines and processes each complete one.
    fn parse(&mut self, mut bytes: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        while !bytes.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if bytes[0] == b'\n' {
                    bytes = &bytes[1..];
                    continue;
                }
            }
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.append(bytes)?;
                    break;
                }
                Some(end) => {
                    self.append(&bytes[..end])?;
                    self.after_cr = bytes[end] == b'\r';
                    bytes = &bytes[end + 1..];
                    self.end_line(events)?;
                }
            }
        }
        Ok(())
    }

    /// Appends bytes to the current line, within the line limit.
    fn append(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len().saturating_add(bytes.len()) > self.max_line {
            return Err(SseError::LineTooLong {
                limit: self.max_line,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Processes the completed current line.
    fn end_line(&mut self, events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let bytes = std::mem::take(&mut self.line);
        if bytes.is_empty() {
            self.dispatch(events);
            return Ok(());
        }
        // CR and LF never occur inside a multi-byte UTF-8 sequence, so whole lines decode
        // correctly however the stream was chunked.
        let line = String::from_utf8_lossy(&bytes);
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event_type),
            "data" => {
                let size = self
                    .data
                    .len()
                    .saturating_add(value.len())
                    .saturating_add(1);
                if size > self.max_event {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_event,
                    });
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => value.clone_into(&mut self.id_buffer),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // All digits but too large for a u64: ignored like any invalid value.
                self.retry_ms = value.parse::<u64>().ok().or(self.retry_ms);
            }
            _ => {}
        }
        Ok(())
    }

    /// Handles a blank line: dispatches the pending event when it has data.
    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        self.last_event_id.clone_from(&self.id_buffer);
        let event_type = std::mem::take(&mut self.event_type);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        events.push(SseEvent {
            id: self.last_event_id().map(str::to_string),
            event: if event_type.is_empty() {
                "message".to_string()
            } else {
                event_type
            },
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example stream of the app API docs (§4.2), with the elided parts filled in.
    const EXAMPLE: &str = concat!(
        "retry: 3000\n",
        ": connected\n",
        "\n",
        "id: 41\n",
        "event: payment_request\n",
        r#"data: {"expiresAt":1706500300,"flow":"wallet_qr","merchantName":"Test Coffee","merchantOcid":500,"order":{"id":"ord_abc123"},"orderHash":"b0d9623ba8cb2ee5b1936791491c3ce11c858c7e4dd850c94b1117d6d750a495","sessionId":"13c8f6878f55327769736d2129b2d9cb","signature":"8deb","type":"payment_request"}"#,
        "\n",
        "\n",
        ": heartbeat\n",
        "\n",
        "id: 42\n",
        "event: payment_status\n",
        r#"data: {"paidAt":1706500031,"sessionId":"13c8f6878f55327769736d2129b2d9cb","status":"paid","txid":"tx_6f5329de72cd940afa8bf3dfe62163bb","type":"payment_status"}"#,
        "\n",
        "\n",
    );

    fn ev(id: Option<&str>, event: &str, data: &str) -> SseEvent {
        SseEvent {
            id: id.map(str::to_string),
            event: event.to_string(),
            data: data.to_string(),
        }
    }

    /// Parses `stream` in one feed with a fresh default parser.
    fn parse_all(stream: &[u8]) -> (Vec<SseEvent>, SseParser) {
        let mut p = SseParser::new();
        let events = p.feed(stream).unwrap();
        (events, p)
    }

    fn example_events() -> Vec<SseEvent> {
        vec![
            ev(
                Some("41"),
                "payment_request",
                r#"{"expiresAt":1706500300,"flow":"wallet_qr","merchantName":"Test Coffee","merchantOcid":500,"order":{"id":"ord_abc123"},"orderHash":"b0d9623ba8cb2ee5b1936791491c3ce11c858c7e4dd850c94b1117d6d750a495","sessionId":"13c8f6878f55327769736d2129b2d9cb","signature":"8deb","type":"payment_request"}"#,
            ),
            ev(
                Some("42"),
                "payment_status",
                r#"{"paidAt":1706500031,"sessionId":"13c8f6878f55327769736d2129b2d9cb","status":"paid","txid":"tx_6f5329de72cd940afa8bf3dfe62163bb","type":"payment_status"}"#,
            ),
        ]
    }

    #[test]
    fn example_stream_in_one_feed() {
        let (events, p) = parse_all(EXAMPLE.as_bytes());
        assert_eq!(events, example_events());
        assert_eq!(p.retry_ms(), Some(3000));
        assert_eq!(p.last_event_id(), Some("42"));
    }

    #[test]
    fn example_stream_byte_by_byte() {
        let mut p = SseParser::new();
        let mut events = Vec::new();
        let mut seen_first_at = None;
        for (i, b) in EXAMPLE.as_bytes().iter().enumerate() {
            let got = p.feed(std::slice::from_ref(b)).unwrap();
            if !got.is_empty() && seen_first_at.is_none() {
                seen_first_at = Some(i);
            }
            events.extend(got);
        }
        assert_eq!(events, example_events());
        assert_eq!(p.retry_ms(), Some(3000));
        assert_eq!(p.last_event_id(), Some("42"));
        // The first event is dispatched by the blank line after its data, not earlier.
        let blank = EXAMPLE.find("}\n\n").unwrap() + 2;
        assert_eq!(seen_first_at, Some(blank));
    }

    #[test]
    fn empty_feeds_and_nothing_before_blank_line() {
        let mut p = SseParser::new();
        assert_eq!(p.feed(b"").unwrap(), vec![]);
        assert_eq!(p.feed(b"data: x\n").unwrap(), vec![]);
        assert_eq!(p.feed(b"").unwrap(), vec![]);
        assert_eq!(p.feed(b"\n").unwrap(), vec![ev(None, "message", "x")]);
        // An unterminated event at the end is simply never dispatched.
        assert_eq!(p.feed(b"data: y\nid: 9").unwrap(), vec![]);
        assert_eq!(p.last_event_id(), None);
    }

    /// A stream exercising every rule, with CR, LF and CRLF endings, a BOM, multi-byte UTF-8
    /// and invalid bytes.
    fn tricky_stream() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(&BOM);
        s.extend_from_slice(b"retry: 1500\r\n: comment \xC3\xA9\r");
        s.extend_from_slice("data: caf\u{e9} \u{1F600}\r\ndata:second\rid: 7\n\r\n".as_bytes());
        s.extend_from_slice(b"event: custom\ndata\n\n");
        s.extend_from_slice(b"data: bad \xFF\xFE byte\r\rretry: x1\nid: a\0b\ndata: z\r\n\r\n");
        s.extend_from_slice(b"id\ndata: after reset\n\n");
        s
    }

    fn tricky_events() -> Vec<SseEvent> {
        vec![
            ev(Some("7"), "message", "caf\u{e9} \u{1F600}\nsecond"),
            ev(Some("7"), "custom", ""),
            ev(Some("7"), "message", "bad \u{FFFD}\u{FFFD} byte"),
            ev(Some("7"), "message", "z"),
            ev(None, "message", "after reset"),
        ]
    }

    #[test]
    fn tricky_stream_in_one_feed() {
        let (events, p) = parse_all(&tricky_stream());
        assert_eq!(events, tricky_events());
        assert_eq!(p.retry_ms(), Some(1500));
        assert_eq!(p.last_event_id(), None);
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        for (stream, expected) in [
            (EXAMPLE.as_bytes().to_vec(), example_events()),
            (tricky_stream(), tricky_events()),
        ] {
            for split in 0..=stream.len() {
                let mut p = SseParser::new();
                let mut events = p.feed(&stream[..split]).unwrap();
                events.extend(p.feed(&stream[split..]).unwrap());
                assert_eq!(events, expected, "split at {split}");
            }
        }
    }

    #[test]
    fn every_pair_of_split_points_gives_the_same_events() {
        let stream = tricky_stream();
        let expected = tricky_events();
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut p = SseParser::new();
                let mut events = p.feed(&stream[..a]).unwrap();
                events.extend(p.feed(&stream[a..b]).unwrap());
                events.extend(p.feed(&stream[b..]).unwrap());
                assert_eq!(events, expected, "splits at {a} and {b}");
                assert_eq!(p.retry_ms(), Some(1500));
            }
        }
    }

    #[test]
    fn line_endings_lf_cr_crlf() {
        for ending in ["\n", "\r", "\r\n"] {
            let stream = format!("data: a{ending}data: b{ending}{ending}data: c{ending}{ending}");
            let (events, _) = parse_all(stream.as_bytes());
            assert_eq!(
                events,
                vec![ev(None, "message", "a\nb"), ev(None, "message", "c")],
                "{ending:?}"
            );
        }
        // CR CR is a line end and a blank line; CR LF split across chunks is one line end.
        let (events, _) = parse_all(b"data: a\r\r");
        assert_eq!(events, vec![ev(None, "message", "a")]);
        let mut p = SseParser::new();
        assert_eq!(p.feed(b"data: a\r").unwrap(), vec![]);
        assert_eq!(
            p.feed(b"\n").unwrap(),
            vec![],
            "the LF completes the CRLF, no blank line"
        );
        assert_eq!(p.feed(b"\r").unwrap(), vec![ev(None, "message", "a")]);
        // LF CR: two line endings.
        let (events, _) = parse_all(b"data: a\n\rdata: b\n\n");
        assert_eq!(
            events,
            vec![ev(None, "message", "a"), ev(None, "message", "b")]
        );
    }

    #[test]
    fn leading_bom_is_skipped_once() {
        let (events, _) = parse_all(b"\xEF\xBB\xBFdata: x\n\n");
        assert_eq!(events, vec![ev(None, "message", "x")]);
        // Split inside the BOM.
        let mut p = SseParser::new();
        assert_eq!(p.feed(b"\xEF").unwrap(), vec![]);
        assert_eq!(p.feed(b"\xBB").unwrap(), vec![]);
        assert_eq!(
            p.feed(b"\xBFdata: x\n\n").unwrap(),
            vec![ev(None, "message", "x")]
        );
        // A second BOM is part of the field name: an unknown field, ignored.
        let (events, _) = parse_all(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n");
        assert_eq!(events, vec![ev(None, "message", "y")]);
        // A BOM later in the stream is not skipped either.
        let (events, _) = parse_all(b"data: 1\n\n\xEF\xBB\xBFdata: 2\n\n");
        assert_eq!(events, vec![ev(None, "message", "1")]);
        // An incomplete BOM is data: here it corrupts the field name (lossily decoded).
        let (events, _) = parse_all(b"\xEF\xBBdata: x\n\ndata: y\n\n");
        assert_eq!(events, vec![ev(None, "message", "y")]);
        // An incomplete BOM prefix directly followed by a line ending.
        let (events, _) = parse_all(b"\xEF\ndata: y\n\n");
        assert_eq!(events, vec![ev(None, "message", "y")]);
    }

    #[test]
    fn comments_are_ignored() {
        let (events, p) = parse_all(b":\n: data: no\n:id: 5\ndata: yes\n: retry: 10\n\n");
        assert_eq!(events, vec![ev(None, "message", "yes")]);
        assert_eq!(p.retry_ms(), None);
        assert_eq!(p.last_event_id(), None);
        // A comment alone between blank lines dispatches nothing.
        let (events, _) = parse_all(b": heartbeat\n\n: heartbeat\n\n");
        assert_eq!(events, vec![]);
    }

    #[test]
    fn one_space_after_the_colon_is_stripped() {
        let (events, _) =
            parse_all(b"data:a\n\ndata: b\n\ndata:  c\n\ndata:\td\n\ndata: e \n\ndata:f:g\n\nevent:  x\ndata: h\n\n");
        assert_eq!(
            events,
            vec![
                ev(None, "message", "a"),
                ev(None, "message", "b"),
                ev(None, "message", " c"),
                ev(None, "message", "\td"),
                ev(None, "message", "e "),
                ev(None, "message", "f:g"),
                ev(None, " x", "h"),
            ]
        );
    }

    #[test]
    fn a_line_without_colon_is_a_field_with_empty_value() {
        let (events, _) = parse_all(b"data\n\ndata\ndata\n\nevent\ndata: x\n\n");
        assert_eq!(
            events,
            vec![
                ev(None, "message", ""),
                ev(None, "message", "\n"),
                ev(None, "message", "x")
            ]
        );
        // `data:` with an empty value is the same.
        let (events, _) = parse_all(b"data:\n\n");
        assert_eq!(events, vec![ev(None, "message", "")]);
    }

    #[test]
    fn data_lines_are_joined_with_newlines() {
        let (events, _) = parse_all(b"data: one\ndata: two\ndata:\ndata: four\n\n");
        assert_eq!(events, vec![ev(None, "message", "one\ntwo\n\nfour")]);
    }

    #[test]
    fn event_type_defaults_to_message_and_resets() {
        let (events, _) = parse_all(
            b"event: a\ndata: 1\n\ndata: 2\n\nevent: b\nevent: c\ndata: 3\n\nevent:\ndata: 4\n\nevent: lost\n\ndata: 5\n\n",
        );
        assert_eq!(
            events,
            vec![
                ev(None, "a", "1"),
                ev(None, "message", "2"),
                ev(None, "c", "3"),
                ev(None, "message", "4"),
                // A blank line without data resets the type without dispatching.
                ev(None, "message", "5"),
            ]
        );
    }

    #[test]
    fn id_rules() {
        let mut p = SseParser::new();
        // The id persists across events.
        assert_eq!(
            p.feed(b"id: 1\ndata: a\n\ndata: b\n\n").unwrap(),
            vec![ev(Some("1"), "message", "a"), ev(Some("1"), "message", "b")]
        );
        assert_eq!(p.last_event_id(), Some("1"));
        // An id containing NUL is ignored.
        assert_eq!(
            p.feed(b"id: 2\0\ndata: c\n\n").unwrap(),
            vec![ev(Some("1"), "message", "c")]
        );
        // The id in effect at dispatch is carried, wherever the field sits in the event.
        assert_eq!(
            p.feed(b"data: d\nid: 3\n\n").unwrap(),
            vec![ev(Some("3"), "message", "d")]
        );
        // A pending id is not the last event id until a blank line dispatches.
        assert_eq!(p.feed(b"id: 4\n").unwrap(), vec![]);
        assert_eq!(p.last_event_id(), Some("3"));
        // A blank line without data still updates the last event id.
        assert_eq!(p.feed(b"\n").unwrap(), vec![]);
        assert_eq!(p.last_event_id(), Some("4"));
        // Ids are text: spaces beyond the first and non-ASCII are kept.
        assert_eq!(
            p.feed("id:  \u{e9}5\ndata: e\n\n".as_bytes()).unwrap(),
            vec![ev(Some(" \u{e9}5"), "message", "e")]
        );
        // An empty id resets it.
        assert_eq!(
            p.feed(b"id:\ndata: f\n\n").unwrap(),
            vec![ev(None, "message", "f")]
        );
        assert_eq!(p.last_event_id(), None);
        assert_eq!(
            p.feed(b"id: 6\n\nid\n\ndata: g\n\n").unwrap(),
            vec![ev(None, "message", "g")]
        );
        assert_eq!(p.last_event_id(), None);
    }

    #[test]
    fn retry_only_when_all_digits() {
        let mut p = SseParser::new();
        assert_eq!(p.retry_ms(), None);
        p.feed(b"retry: 3000\n").unwrap();
        assert_eq!(p.retry_ms(), Some(3000));
        for bad in [
            &b"retry: 12a\n"[..],
            b"retry: -1\n",
            b"retry: +5\n",
            b"retry:  5\n",
            b"retry: 5 \n",
            b"retry: 1.5\n",
            b"retry:\n",
            b"retry\n",
            b"retry: 99999999999999999999999\n",
            "retry: \u{0663}\n".as_bytes(),
        ] {
            p.feed(bad).unwrap();
            assert_eq!(
                p.retry_ms(),
                Some(3000),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        p.feed(b"retry:0\n").unwrap();
        assert_eq!(p.retry_ms(), Some(0));
        p.feed(b"retry: 007\n").unwrap();
        assert_eq!(p.retry_ms(), Some(7));
        // Retry applies at once, not at dispatch, and dispatches nothing.
        assert_eq!(p.feed(b"retry: 10\n\n").unwrap(), vec![]);
        assert_eq!(p.retry_ms(), Some(10));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let (events, p) = parse_all(
            b"foo: bar\nData: no\nEVENT: no\n data: no\nid : no\nretry : 5\ndata: yes\n\n",
        );
        assert_eq!(events, vec![ev(None, "message", "yes")]);
        assert_eq!(p.retry_ms(), None);
        assert_eq!(p.last_event_id(), None);
        // Unknown fields alone dispatch nothing.
        let (events, _) = parse_all(b"foo: bar\n\n");
        assert_eq!(events, vec![]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let (events, p) = parse_all(b"id: \xC0\ndata: \xFF\xED\xA0\x80x\nevent: \xF0\x9F\x98\n\n");
        assert_eq!(
            events,
            vec![ev(
                Some("\u{FFFD}"),
                "\u{FFFD}",
                "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}x"
            )]
        );
        assert_eq!(p.last_event_id(), Some("\u{FFFD}"));
        // A multi-byte character split across chunks decodes whole.
        let bytes = "data: \u{1F600}\u{e9}\n\n".as_bytes();
        for split in 7..10 {
            let mut p = SseParser::new();
            let mut events = p.feed(&bytes[..split]).unwrap();
            events.extend(p.feed(&bytes[split..]).unwrap());
            assert_eq!(events, vec![ev(None, "message", "\u{1F600}\u{e9}")]);
        }
    }

    #[test]
    fn line_too_long_is_an_error_and_sticks() {
        let mut p = SseParser::with_limits(16, 1024);
        // Exactly at the limit is fine, line ending not counted.
        assert_eq!(
            p.feed(b"data: 0123456789\r\n\r\n").unwrap(),
            vec![ev(None, "message", "0123456789")]
        );
        // Over the limit, even fed in small pieces and before any line ending.
        assert_eq!(p.feed(b"data: 0123").unwrap(), vec![]);
        assert_eq!(
            p.feed(b"456789a").unwrap_err(),
            SseError::LineTooLong { limit: 16 }
        );
        assert_eq!(
            p.feed(b"\n\n").unwrap_err(),
            SseError::LineTooLong { limit: 16 }
        );
        // Comments count too.
        let mut p = SseParser::with_limits(4, 1024);
        assert_eq!(
            p.feed(b": long comment").unwrap_err(),
            SseError::LineTooLong { limit: 4 }
        );
    }

    #[test]
    fn event_too_large_is_an_error() {
        // 8 bytes of data buffer: "abc\n" + "de\n" = 7 fits, one more line does not.
        let mut p = SseParser::with_limits(1024, 8);
        assert_eq!(
            p.feed(b"data: abc\ndata: de\n\n").unwrap(),
            vec![ev(None, "message", "abc\nde")]
        );
        // The buffer is reset after each dispatch.
        assert_eq!(
            p.feed(b"data: abcdefg\n\n").unwrap(),
            vec![ev(None, "message", "abcdefg")]
        );
        assert_eq!(
            p.feed(b"data: abc\ndata: defg\n").unwrap_err(),
            SseError::EventTooLarge { limit: 8 }
        );
        assert_eq!(
            p.feed(b"\n").unwrap_err(),
            SseError::EventTooLarge { limit: 8 }
        );
    }

    #[test]
    fn events_before_an_error_are_delivered_then_the_error() {
        let mut p = SseParser::with_limits(32, 1024);
        let chunk = b"id: 1\ndata: ok\n\ndata: this line is far too long for the limit\n\n";
        assert_eq!(p.feed(chunk).unwrap(), vec![ev(Some("1"), "message", "ok")]);
        assert_eq!(p.last_event_id(), Some("1"));
        assert_eq!(
            p.feed(b"data: more\n\n").unwrap_err(),
            SseError::LineTooLong { limit: 32 }
        );
        assert_eq!(
            p.feed(b"").unwrap_err(),
            SseError::LineTooLong { limit: 32 }
        );
    }

    #[test]
    fn default_matches_new_and_garbage_never_panics() {
        let mut a = SseParser::default();
        let mut b = SseParser::new();
        // Deterministic pseudo-random tokens: field names, line endings, odd bytes.
        let mut state: u32 = 0x1234_5678;
        let tokens: [&[u8]; 16] = [
            b"data",
            b"data:",
            b"id:",
            b"event: ",
            b"retry:",
            b":",
            b" ",
            b"\r",
            b"\n",
            b"\r\n",
            b"\n\n",
            b"7",
            b"x",
            b"\0",
            b"\xEF\xBB\xBF",
            b"\xFF\xC3\xA9\xE2\x82",
        ];
        let mut bytes = Vec::new();
        for _ in 0..20_000 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            bytes.extend_from_slice(tokens[(state >> 24) as usize % tokens.len()]);
        }
        let all = a.feed(&bytes).unwrap();
        let mut pieces = Vec::new();
        for chunk in bytes.chunks(37) {
            pieces.extend(b.feed(chunk).unwrap());
        }
        assert_eq!(all, pieces);
        assert_eq!(a.retry_ms(), b.retry_ms());
        assert_eq!(a.last_event_id(), b.last_event_id());
        assert!(!all.is_empty(), "the garbage dispatches some events");
        for e in &all {
            assert!(!e.event.is_empty());
            assert!(!e.event.contains(['\r', '\n']) && !e.data.contains('\r'));
            assert!(e
                .id
                .as_deref()
                .is_none_or(|id| !id.is_empty() && !id.contains(['\0', '\r', '\n'])));
        }
    }
}
