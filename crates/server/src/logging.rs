//! The log: one line per event, at a level that says who must act.
//!
//! Two things need care beyond the `tracing-subscriber` defaults:
//! - actix-http logs each malformed request and oversized head as an `ERROR`
//!   ("stream error: …") after answering 400 or 431 itself. Anyone can make those, so
//!   they must not page anyone: they are logged again at `INFO`, as one refusal, and
//!   the `ERROR` is dropped. (A client too slow to send its head gets 408 with a
//!   `TRACE` line only.)
//! - Drivers' messages, panics and backtraces span several lines; a log pipeline
//!   reading line by line would split one event into many. In text, every line break
//!   inside an event is written as `\n`; JSON escapes them anyway.

use std::io::{self, Write};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::settings::{LogFormat, LogSettings};

/// The subscriber `log` describes, writing to `writer`: what the binary installs (on
/// standard output), and what tests install on a buffer.
pub fn subscriber<W>(log: &LogSettings, writer: W, ansi: bool) -> impl Subscriber + Send + Sync
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let writer = OneLinePerEvent(writer);
    let output = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer);
    // Fields at the top level and the request's span (its id) on every line, so a log
    // pipeline can filter on them without unpacking.
    let output: Box<dyn Layer<Layered<EnvFilter, Registry>> + Send + Sync> = match log.format {
        LogFormat::Text => output.boxed(),
        LogFormat::Json => output
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter(log))
        .with(output.with_filter(filter_fn(|metadata| !is_protocol_error(metadata))))
        .with(ProtocolErrors)
}

/// Installs [`subscriber`] on standard output for the whole process (colours only for
/// a person at a terminal), and logs panics through it.
pub fn init(log: &LogSettings) {
    use std::io::IsTerminal;
    // With the libraries' `log` records; a second call (tests) keeps the first.
    if subscriber(log, io::stdout, io::stdout().is_terminal())
        .try_init()
        .is_ok()
    {
        log_panics();
    }
}

/// The filter of `log.level` (checked with the settings; `RUST_LOG` already put in
/// its place when it is a filter).
fn filter(log: &LogSettings) -> EnvFilter {
    let mut filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    // actix-server tells at info how it starts its runtime and workers; the start-up
    // line says what matters. A filter that names it still gets it.
    if !log.level.contains("actix_server") {
        if let Ok(quieter) = "actix_server=warn".parse() {
            filter = filter.add_directive(quieter);
        }
    }
    filter
}

/// Panics are logged as `ERROR` events (one line, with the backtrace when
/// `RUST_BACKTRACE` asks for one) instead of the default hook's lines on stderr.
fn log_panics() {
    std::panic::set_hook(Box::new(|panic| {
        let message = panic
            .payload()
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| panic.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = panic
            .location()
            .map(ToString::to_string)
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => {
                tracing::error!(%message, %location, thread, %backtrace, "panicked");
            }
            _ => tracing::error!(%message, %location, thread, "panicked"),
        }
    }));
}

/// The target actix-http logs its protocol errors under.
const DISPATCHER: &str = "actix_http::h1::dispatcher";

/// Whether `metadata` is that of an `ERROR` of actix-http's HTTP/1 dispatcher, which
/// [`ProtocolErrors`] logs again.
fn is_protocol_error(metadata: &Metadata<'_>) -> bool {
    *metadata.level() == Level::ERROR && metadata.target() == DISPATCHER
}

/// Logs each of actix-http's `ERROR`s again: a refused request (its "stream error")
/// at `INFO`, anything else (a response body or an upgrade that failed: the server's
/// own failures) still at `ERROR`, under the service's target.
struct ProtocolErrors;

impl<S: Subscriber> Layer<S> for ProtocolErrors {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if !is_protocol_error(event.metadata()) {
            return;
        }
        let mut message = Message::default();
        event.record(&mut message);
        match message.0.strip_prefix("stream error: ") {
            Some(refusal) => tracing::info!(
                target: "chatbot::protocol",
                error = %refusal,
                "refused a malformed request, or a client too slow to send one"
            ),
            None => {
                tracing::error!(target: "chatbot::protocol", error = %message.0, "HTTP failure")
            }
        }
    }
}

/// An event's `message` field.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Writes each event on one line: line breaks inside it become `\n`.
struct OneLinePerEvent<M>(M);

impl<'writer, M: MakeWriter<'writer>> MakeWriter<'writer> for OneLinePerEvent<M> {
    type Writer = OneLine<M::Writer>;

    fn make_writer(&'writer self) -> Self::Writer {
        OneLine(self.0.make_writer())
    }
}

/// The writer of one event: the formatter hands it the whole event, ending with its
/// line break, in one `write`.
struct OneLine<W>(W);

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let (body, end) = match bytes.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (bytes, &b""[..]),
        };
        if !body.contains(&b'\n') && !body.contains(&b'\r') {
            self.0.write_all(bytes)?;
            return Ok(bytes.len());
        }
        let mut line = Vec::with_capacity(bytes.len() + 16);
        for &byte in body {
            match byte {
                b'\n' => line.extend_from_slice(b"\\n"),
                b'\r' => line.extend_from_slice(b"\\r"),
                other => line.push(other),
            }
        }
        line.extend_from_slice(end);
        self.0.write_all(&line)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_inside_an_event_are_escaped_and_its_end_kept() {
        let mut written = Vec::new();
        let mut writer = OneLine(&mut written);
        writer
            .write_all(b"ERROR failed: relation \"x\" does not exist\nLINE 1: SELECT\r\n\n")
            .unwrap();
        writer.write_all(b"INFO plain\n").unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            "ERROR failed: relation \"x\" does not exist\\nLINE 1: SELECT\\r\\n\nINFO plain\n"
        );
    }
}
