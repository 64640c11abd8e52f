//! Server-sent events, as far as chat completion streams use them: the `data` of each
//! event, from bytes as they arrive from the network.
//!
//! Lines end with LF, optionally preceded by CR. `data:` is followed by an optional
//! space; several `data` lines in one event are joined with `\n`; a line starting with
//! `:` is a comment (servers send them as keep-alives); other fields (`event`, `id`,
//! `retry`) are ignored; a blank line ends an event. Bytes are buffered until a line is
//! whole, so a UTF-8 character split across network reads comes out whole.

use std::collections::VecDeque;

/// The longest line accepted: a chunk of a chat completion is a few hundred bytes.
const MAX_LINE_BYTES: usize = 1 << 20;

/// Why the bytes are not an event stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SseError {
    /// A line is not UTF-8.
    #[error("a line of the event stream is not UTF-8")]
    NotUtf8,
    /// A line is longer than [`MAX_LINE_BYTES`].
    #[error("a line of the event stream is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
}

/// Turns bytes into the data of events.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// The bytes of the line being received, without its end.
    line: Vec<u8>,
    /// The data of the event being received.
    data: String,
    /// Whether the event being received has a `data` field yet (it may be empty).
    has_data: bool,
}

impl SseParser {
    /// Reads `bytes`, appending the data of each event they complete to `events`.
    pub(crate) fn feed(
        &mut self,
        mut bytes: &[u8],
        events: &mut VecDeque<String>,
    ) -> Result<(), SseError> {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&bytes[..end]);
            bytes = &bytes[end + 1..];
            let line = std::mem::take(&mut self.line);
            self.line_done(line, events)?;
        }
        self.line.extend_from_slice(bytes);
        if self.line.len() > MAX_LINE_BYTES {
            return Err(SseError::LineTooLong);
        }
        Ok(())
    }

    /// The stream ended: a last line without its end, and a last event without its
    /// blank line, still count.
    pub(crate) fn finish(&mut self, events: &mut VecDeque<String>) -> Result<(), SseError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(line, events)?;
        }
        self.dispatch(events);
        Ok(())
    }

    fn line_done(
        &mut self,
        mut line: Vec<u8>,
        events: &mut VecDeque<String>,
    ) -> Result<(), SseError> {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.is_empty() {
            self.dispatch(events);
            return Ok(());
        }
        let line = std::str::from_utf8(&line).map_err(|_| SseError::NotUtf8)?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            if self.has_data {
                self.data.push('\n');
            }
            self.data.push_str(value);
            self.has_data = true;
        }
        Ok(())
    }

    fn dispatch(&mut self, events: &mut VecDeque<String>) {
        if std::mem::take(&mut self.has_data) {
            events.push_back(std::mem::take(&mut self.data));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The events of `pieces` fed one after the other, then finished.
    fn parse(pieces: &[&[u8]]) -> Result<Vec<String>, SseError> {
        let mut parser = SseParser::default();
        let mut events = VecDeque::new();
        for piece in pieces {
            parser.feed(piece, &mut events)?;
        }
        parser.finish(&mut events)?;
        Ok(events.into())
    }

    #[test]
    fn data_with_or_without_a_space() {
        assert_eq!(
            parse(&[b"data: one\n\ndata:two\n\n"]).unwrap(),
            ["one", "two"]
        );
        // Only one space goes.
        assert_eq!(parse(&[b"data:  indented\n\n"]).unwrap(), [" indented"]);
    }

    #[test]
    fn lines_end_with_lf_or_crlf() {
        assert_eq!(
            parse(&[b"data: one\r\n\r\ndata: two\n\r\ndata: three\r\n\n"]).unwrap(),
            ["one", "two", "three"]
        );
    }

    #[test]
    fn comments_are_ignored() {
        assert_eq!(
            parse(&[b": keep-alive\n\n:\n\ndata: one\n: inside an event\n\n: ping\r\n\r\n"])
                .unwrap(),
            ["one"]
        );
    }

    #[test]
    fn a_blank_line_ends_an_event_and_blank_lines_alone_make_none() {
        assert_eq!(
            parse(&[b"\n\n\ndata: one\n\n\n\ndata: two\n\n"]).unwrap(),
            ["one", "two"]
        );
        // An empty `data` is an event with empty data.
        assert_eq!(parse(&[b"data:\n\n"]).unwrap(), [""]);
    }

    #[test]
    fn data_lines_of_one_event_are_joined_with_newlines() {
        assert_eq!(
            parse(&[b"data: {\"a\":\ndata: 1}\n\ndata: x\ndata:\ndata: y\n\n"]).unwrap(),
            ["{\"a\":\n1}", "x\n\ny"]
        );
    }

    #[test]
    fn other_fields_are_ignored() {
        assert_eq!(
            parse(&[b"event: message\nid: 7\nretry: 100\ndata: one\nnonsense\n\nevent: x\n\n"])
                .unwrap(),
            ["one"]
        );
    }

    #[test]
    fn events_split_anywhere_across_reads_come_out_whole() {
        let stream: &[u8] =
            b"data: {\"c\":\"h\xc3\xa9\xf0\x9f\x99\x82\"}\r\n\r\n: ka\n\ndata: [DONE]\n\n";
        let expected = ["{\"c\":\"hé🙂\"}", "[DONE]"];
        // Every split in two, including inside the two- and four-byte characters and
        // between CR and LF.
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(parse(&[a, b]).unwrap(), expected, "split at {at}");
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse(&bytes).unwrap(), expected);
    }

    #[test]
    fn an_event_is_dispatched_only_once_its_blank_line_arrives() {
        let mut parser = SseParser::default();
        let mut events = VecDeque::new();
        parser.feed(b"data: one\n", &mut events).unwrap();
        assert!(events.is_empty());
        parser.feed(b"\n", &mut events).unwrap();
        assert_eq!(events, ["one"]);
    }

    #[test]
    fn the_end_of_the_stream_completes_a_last_line_and_event() {
        assert_eq!(
            parse(&[b"data: one\n\ndata: [DONE]"]).unwrap(),
            ["one", "[DONE]"]
        );
        assert_eq!(parse(&[b"data: [DONE]\n"]).unwrap(), ["[DONE]"]);
        assert!(parse(&[b": only a comment"]).unwrap().is_empty());
    }

    #[test]
    fn invalid_utf8_and_endless_lines_are_errors() {
        assert_eq!(parse(&[b"data: \xff\xfe\n\n"]), Err(SseError::NotUtf8));
        let mut parser = SseParser::default();
        let mut events = VecDeque::new();
        let long = vec![b'a'; MAX_LINE_BYTES + 1];
        assert_eq!(parser.feed(&long, &mut events), Err(SseError::LineTooLong));
    }
}
