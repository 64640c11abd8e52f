//! `loadgen streams`: N streamed replies at once, each on its own connection, every
//! delta timestamped as it arrives.
//!
//! Before measuring, it makes N/10 users (`--users`) with ten conversations each (one
//! per stream: a conversation takes one reply at a time, SPEC §9), and opens N
//! keep-alive connections with a `GET /api/test` each, so that the measurement is of
//! streaming, not of TCP accepts through the listen backlog. Then every stream sends
//! `POST /api/conversations/{id}/messages` with `Accept: text/event-stream` in the same
//! instant and reads its events: `message`, `reply`, `delta` (with `id:` 1, 2, 3...)
//! until `done` or `error`.
//!
//! The server is expected to run the simulated bot with `bot.simulated_delay_ms`
//! (`--delay-ms`, 20) between words and, with `bot.simulated_reply_words`, replies of
//! `--words` words (100; 0 skips that check). Per stream it checks: the reply completed
//! (`done`), the delta ids ran 1, 2, 3... without a gap, the deltas put together are
//! `done`'s text, and, once every stream has ended, the stored message (read back
//! through the API) has that text and is `complete`. Over all streams it reports the
//! added delay of each gap between consecutive deltas (the gap at the client minus the
//! bot's pause: what the server and the client's reading add), the time from sending
//! the POST to its first delta, the wall time, and, given the server's `--pid`, the CPU
//! time the server used while the streams ran (utime + stime from /proc/PID/stat).
//!
//! The client holds N sockets: the caller raises `ulimit -n` (the scripts do).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use awc::http::Method;
use awc::http::header;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use crate::api::Conn;
use crate::args::Args;
use crate::seed::{self, Plan, User};
use crate::{Result, stats};

/// What the run is asked for.
#[derive(Debug)]
struct Config {
    url: String,
    n: usize,
    users: usize,
    delay_ms: f64,
    words: usize,
    text: String,
    pid: Option<u32>,
    clk_tck: f64,
    concurrency: usize,
    timeout: Duration,
    /// Usernames are this and a number.
    prefix: String,
    /// Where to write every delta's arrival, if anywhere.
    arrivals: Option<String>,
}

pub(crate) fn run(mut args: Args) -> Result<Value> {
    let n: usize = args.parsed("n", 1000)?;
    let config = Config {
        url: args.required("url")?,
        n,
        users: args.parsed("users", n.div_ceil(10))?.clamp(1, n.max(1)),
        delay_ms: args.parsed("delay-ms", 20.0)?,
        words: args.parsed("words", 100)?,
        text: args.value("text")?.unwrap_or_else(|| {
            "Tell me a long story about a lighthouse keeper and the sea, please.".to_owned()
        }),
        pid: args.parsed_opt("pid")?,
        clk_tck: args.parsed("clk-tck", 100.0)?,
        concurrency: args.parsed("concurrency", 32)?,
        timeout: Duration::from_secs(args.parsed("timeout", 120)?),
        prefix: args.value("prefix")?.unwrap_or_else(|| "s".to_owned()),
        arrivals: args.value("arrivals")?,
    };
    let out = args.value("out")?;
    args.finish()?;
    if config.n == 0 {
        return Err("--n must be at least 1".into());
    }
    let result = crate::block_on(measure(&config))?;
    if let Some(out) = out {
        crate::write_json(&out, &result)?;
    }
    Ok(result)
}

/// What one stream saw.
#[derive(Debug, Default)]
struct Stream {
    /// The bot message's id, from the `reply` event.
    reply_id: Option<i64>,
    /// When each delta arrived.
    arrivals: Vec<Instant>,
    /// The deltas' texts, put together.
    text: String,
    /// `done`'s message.
    done: Option<Value>,
    /// Why it failed, if it did.
    failure: Option<String>,
    /// From sending the POST to the first delta.
    first_delta: Option<Duration>,
    ended: Option<Instant>,
}

async fn measure(config: &Config) -> Result<Value> {
    let prepare = Instant::now();
    let per_user = config.n.div_ceil(config.users);
    eprintln!(
        "  streams: {} users x {per_user} conversations for {} streams",
        config.users, config.n
    );
    let plan = Plan {
        users: config.users,
        conversations: per_user,
        posts_per_conversation: 0,
        prefix: config.prefix.clone(),
    };
    let users = seed::seed(&config.url, &plan, config.concurrency, config.timeout).await?;
    let targets: Vec<(&User, i64)> = users
        .iter()
        .flat_map(|user| user.conversations.iter().map(move |id| (user, *id)))
        .take(config.n)
        .collect();

    eprintln!("  streams: opening {} connections", config.n);
    let conns: Vec<Conn> = (0..config.n)
        .map(|_| Conn::new(&config.url, config.timeout))
        .collect();
    futures_util::stream::iter(conns.iter().map(Ok))
        .try_for_each_concurrent(200, |conn| async move {
            conn.get("/api/test", None).await.map(drop)
        })
        .await?;
    let prepare = prepare.elapsed();

    eprintln!("  streams: {} replies at once", config.n);
    let cpu_before = config.pid.map(cpu_ticks).transpose()?;
    let start = Instant::now();
    let streams = futures_util::future::join_all(
        conns
            .iter()
            .zip(&targets)
            .map(|(conn, (user, id))| stream(conn, &user.cookie, *id, &config.text)),
    )
    .await;
    let ended = streams
        .iter()
        .filter_map(|s| s.ended)
        .max()
        .unwrap_or(start);
    let cpu_after = config.pid.map(cpu_ticks).transpose()?;
    let wall = ended.duration_since(start);
    drop(conns);
    if let Some(path) = &config.arrivals {
        write_arrivals(path, &streams, start)?;
    }

    eprintln!("  streams: reading the stored replies back");
    let stored = stored_texts(config, &streams, &targets).await?;
    Ok(report(
        config,
        &streams,
        &stored,
        wall,
        prepare,
        cpu_before.zip(cpu_after),
    ))
}

/// One streamed reply on `conn`.
async fn stream(conn: &Conn, cookie: &str, conversation: i64, text: &str) -> Stream {
    let mut seen = Stream::default();
    let started = Instant::now();
    if let Err(error) = follow(conn, cookie, conversation, text, started, &mut seen).await {
        seen.failure = Some(error);
    } else if seen.done.is_none() && seen.failure.is_none() {
        seen.failure = Some("the stream ended without `done`".to_owned());
    }
    seen.ended = Some(Instant::now());
    seen
}

/// Sends the message and reads its events into `seen` until `done` or `error`.
async fn follow(
    conn: &Conn,
    cookie: &str,
    conversation: i64,
    text: &str,
    started: Instant,
    seen: &mut Stream,
) -> std::result::Result<(), String> {
    let path = format!("/api/conversations/{conversation}/messages");
    let mut response = conn
        .request(Method::POST, &path, Some(cookie))
        .insert_header((header::ACCEPT, "text/event-stream"))
        .send_json(&json!({ "text": text }))
        .await
        .map_err(|error| format!("sending: {error}"))?;
    if response.status().as_u16() != 200 {
        let body = response.body().await.unwrap_or_default();
        let start = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(format!("HTTP {} {start}", response.status().as_u16()));
    }
    let mut events = EventReader::default();
    while let Some(chunk) = response.next().await {
        let arrived = Instant::now();
        let chunk = chunk.map_err(|error| format!("reading: {error}"))?;
        for event in events.feed(&chunk) {
            match event.name.as_str() {
                "reply" => seen.reply_id = parse(&event.data)?["id"].as_i64(),
                "delta" => {
                    let expected = seen.arrivals.len() + 1;
                    if event.id.as_deref() != Some(expected.to_string().as_str()) {
                        return Err(format!("delta id {:?} where {expected} was due", event.id));
                    }
                    let delta = parse(&event.data)?;
                    seen.text
                        .push_str(delta["text"].as_str().unwrap_or_default());
                    if seen.arrivals.is_empty() {
                        seen.first_delta = Some(arrived.duration_since(started));
                    }
                    seen.arrivals.push(arrived);
                }
                "done" => {
                    seen.done = Some(parse(&event.data)?);
                    return Ok(());
                }
                "error" => return Err(format!("event `error`: {}", event.data)),
                _ => {}
            }
        }
    }
    Ok(())
}

fn parse(data: &str) -> std::result::Result<Value, String> {
    serde_json::from_str(data).map_err(|error| format!("event data `{data}`: {error}"))
}

/// An event of a `text/event-stream` body.
#[derive(Debug, Default, PartialEq)]
struct Event {
    name: String,
    id: Option<String>,
    data: String,
}

/// Cuts an event stream into events as its bytes arrive, in whatever pieces.
#[derive(Debug, Default)]
struct EventReader {
    pending: Vec<u8>,
}

impl EventReader {
    /// The events `chunk` completes (comments and keep-alives are skipped).
    fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.pending.windows(2).position(|pair| pair == b"\n\n") {
            let block: Vec<u8> = self.pending.drain(..end + 2).collect();
            let mut event = Event {
                name: "message".to_owned(),
                ..Event::default()
            };
            let mut has_data = false;
            for line in String::from_utf8_lossy(&block).lines() {
                let line = line.trim_end_matches('\r');
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => value.clone_into(&mut event.name),
                    "id" => event.id = Some(value.to_owned()),
                    "data" => {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(value);
                        has_data = true;
                    }
                    _ => {}
                }
            }
            if has_data {
                events.push(event);
            }
        }
        events
    }
}

/// The stored text of each completed stream's reply (`None`: not stored complete, or
/// the stream did not complete), read through the API on a few connections.
async fn stored_texts(
    config: &Config,
    streams: &[Stream],
    targets: &[(&User, i64)],
) -> Result<Vec<Option<String>>> {
    let conns: Vec<Conn> = (0..config.concurrency.max(1))
        .map(|_| Conn::new(&config.url, config.timeout))
        .collect();
    let work = streams
        .iter()
        .zip(targets)
        .enumerate()
        .map(|(i, (seen, (user, id)))| {
            let conn = &conns[i % conns.len()];
            async move {
                let Some(reply_id) = seen.reply_id.filter(|_| seen.done.is_some()) else {
                    return Ok(None);
                };
                let path = format!("/api/conversations/{id}/messages?limit=10");
                let page = conn.get_json(&path, &user.cookie).await?;
                let stored = page["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|message| message["id"].as_i64() == Some(reply_id))
                    .filter(|message| message["status"] == "complete")
                    .and_then(|message| message["text"].as_str().map(str::to_owned));
                Ok::<_, crate::Error>(stored)
            }
        });
    // Each connection takes one request at a time; more in flight would just queue.
    futures_util::stream::iter(work)
        .buffered(conns.len())
        .try_collect()
        .await
}

/// Every delta's arrival in milliseconds since the POSTs were sent, one line per
/// stream, for a closer look at where the delays fall (stalls of one stream, or of all
/// at the same moment).
fn write_arrivals(path: &str, streams: &[Stream], start: Instant) -> Result<()> {
    let mut text = String::new();
    for seen in streams {
        let times: Vec<String> = seen
            .arrivals
            .iter()
            .map(|at| format!("{:.3}", stats::ms(at.duration_since(start))))
            .collect();
        text.push_str(&times.join(" "));
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|error| format!("writing {path}: {error}").into())
}

/// The server's CPU time so far, in clock ticks (utime + stime of /proc/PID/stat).
fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|error| format!("{path}: {error}"))?;
    // The command name, in parentheses, may hold spaces: count fields after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the line; the first after the name is field 3.
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| format!("{path}: no field {n}").into())
    };
    Ok(field(14)? + field(15)?)
}

/// The run's figures as JSON.
fn report(
    config: &Config,
    streams: &[Stream],
    stored: &[Option<String>],
    wall: Duration,
    prepare: Duration,
    cpu: Option<(u64, u64)>,
) -> Value {
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let (mut complete, mut text_matches, mut stored_matches, mut words_ok) = (0, 0, 0, 0);
    let (mut added, mut first) = (Vec::new(), Vec::new());
    let mut total_deltas = 0;
    let mut word_counts: Vec<f64> = Vec::new();
    for (seen, stored) in streams.iter().zip(stored) {
        total_deltas += seen.arrivals.len();
        for pair in seen.arrivals.windows(2) {
            added.push(stats::ms(pair[1].duration_since(pair[0])) - config.delay_ms);
        }
        first.extend(seen.first_delta.map(stats::ms));
        if let Some(failure) = &seen.failure {
            let reason: String = failure.chars().take(120).collect();
            *failures.entry(reason).or_default() += 1;
            continue;
        }
        complete += 1;
        let done_text = seen.done.as_ref().and_then(|done| done["text"].as_str());
        if done_text == Some(seen.text.as_str()) {
            text_matches += 1;
        }
        if stored.is_some() && stored.as_deref() == done_text {
            stored_matches += 1;
        }
        let words = done_text.unwrap_or_default().split_whitespace().count();
        word_counts.push(words as f64);
        if words == config.words {
            words_ok += 1;
        }
    }
    let server_cpu =
        cpu.map(|(before, after)| after.saturating_sub(before) as f64 / config.clk_tck);
    json!({
        "n": config.n,
        "users": config.users,
        "delay_ms": config.delay_ms,
        "words_expected": (config.words > 0).then_some(config.words),
        "complete": complete,
        "failed": config.n - complete,
        "failures": failures,
        "text_matches": text_matches,
        "stored_matches": stored_matches,
        "word_count_ok": (config.words > 0).then_some(words_ok),
        "reply_words": stats::summary(&mut word_counts),
        "total_deltas": total_deltas,
        "gaps": added.len(),
        "added_delay_ms": stats::summary(&mut added),
        "first_delta_ms": stats::summary(&mut first),
        "wall_s": stats::round(wall.as_secs_f64()),
        "prepare_s": stats::round(prepare.as_secs_f64()),
        "server_cpu_s": server_cpu.map(stats::round),
        "cpu_s_per_1000_deltas": server_cpu
            .filter(|_| total_deltas > 0)
            .map(|cpu| stats::round(cpu * 1000.0 / total_deltas as f64)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_across_chunks() {
        let mut reader = EventReader::default();
        assert!(reader.feed(b"event: reply\ndata: {\"id\"").is_empty());
        let events = reader.feed(b":1}\n\n: keep-alive\n\nevent: delta\nid: 1\ndata: x\n\nevent");
        assert_eq!(
            events,
            [
                Event {
                    name: "reply".into(),
                    id: None,
                    data: "{\"id\":1}".into()
                },
                Event {
                    name: "delta".into(),
                    id: Some("1".into()),
                    data: "x".into()
                },
            ]
        );
        let events = reader.feed(b": done\ndata: a\ndata: b\n\n");
        assert_eq!(events[0].name, "done", "`event` came in the chunk before");
        assert_eq!(events[0].data, "a\nb");
    }
}
