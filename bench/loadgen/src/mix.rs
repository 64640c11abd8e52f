//! `loadgen mix`: a chat service's traffic, many users at once, for a fixed time.
//!
//! `--connections` keep-alive connections each send one request after another until
//! `--duration` is over (requests in flight then finish and count). Every request is
//! made as a user picked at random among those no other connection is using at that
//! moment, so that no two requests of one user ever overlap: a user is one person at
//! one browser, and the server's per-user serialisation (PostgreSQL's revision lock, a
//! conversation's one reply at a time) is not what this measures. `--same-user` turns
//! that around: every connection acts as the first user, and each POSTs to its own
//! conversation of that user (it must have at least `--connections`), which measures
//! that serialisation.
//!
//! The request types, picked at random by weight (`--mix list=60,page=20,post=15,
//! rename=5`, the default):
//! - `list`: `GET /api/conversations?limit=20`, the web client's first page of the
//!   conversation list (`--flask`: the seed's whole list, `GET /api/conversations`,
//!   since the Flask reference has no pages);
//! - `page`: `GET /api/conversations/{id}/messages?limit=30`, the web client's latest
//!   page of a conversation (dropped with `--flask`: the other weights stay as they
//!   are, and the output lists the types that ran);
//! - `post`: `POST /api/conversations/{id}/messages`, plain JSON (the simulated bot's
//!   reply comes in the answer, 201);
//! - `rename`: `PUT /api/conversations/{id}`.
//!
//! Every request's latency (send to the end of the body) is kept, per type, for exact
//! percentiles; statuses are counted; a non-2xx status or a transport failure is an
//! error of its type. POSTs answered 201 are counted as acknowledged: `loadgen count`
//! afterwards should find two stored messages for each.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use awc::http::Method;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::api::{self, Conn};
use crate::args::Args;
use crate::seed::User;
use crate::{Result, read_users, stats};

/// A request type of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Page,
    Post,
    Rename,
}

const KINDS: [Kind; 4] = [Kind::List, Kind::Page, Kind::Post, Kind::Rename];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::List => "list",
            Kind::Page => "page",
            Kind::Post => "post",
            Kind::Rename => "rename",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The status that means success.
    fn success(self) -> u16 {
        if self == Kind::Post { 201 } else { 200 }
    }
}

/// What the run is asked for.
#[derive(Debug)]
struct Config {
    url: String,
    /// The weight of each of [`KINDS`]; zero leaves a type out.
    weights: [u32; 4],
    list_path: &'static str,
    connections: usize,
    threads: usize,
    duration: Duration,
    timeout: Duration,
    same_user: bool,
}

/// What one connection (then one thread, then the run) saw.
#[derive(Debug, Default)]
struct Record {
    /// Milliseconds, per type.
    latencies: [Vec<f64>; 4],
    statuses: [BTreeMap<u16, u64>; 4],
    transport_errors: [u64; 4],
    /// POSTs answered 201.
    acknowledged: u64,
    /// When the last request ended.
    last: Option<Instant>,
    /// The first few failures, to show what went wrong.
    examples: Vec<String>,
}

impl Record {
    fn add(&mut self, kind: Kind, outcome: std::result::Result<u16, String>, took: Duration) {
        let k = kind.index();
        match outcome {
            Ok(status) => {
                self.latencies[k].push(stats::ms(took));
                *self.statuses[k].entry(status).or_default() += 1;
                if kind == Kind::Post && status == 201 {
                    self.acknowledged += 1;
                }
                if status != kind.success() && self.examples.len() < 5 {
                    self.examples
                        .push(format!("{}: HTTP {status}", kind.name()));
                }
            }
            Err(error) => {
                self.transport_errors[k] += 1;
                if self.examples.len() < 5 {
                    self.examples.push(format!("{}: {error}", kind.name()));
                }
            }
        }
        self.last = Some(Instant::now());
    }

    fn merge(&mut self, other: Record) {
        for k in 0..KINDS.len() {
            self.latencies[k].extend_from_slice(&other.latencies[k]);
            for (status, n) in &other.statuses[k] {
                *self.statuses[k].entry(*status).or_default() += n;
            }
            self.transport_errors[k] += other.transport_errors[k];
        }
        self.acknowledged += other.acknowledged;
        self.last = self.last.max(other.last);
        let room = 5_usize.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }
}

pub(crate) fn run(mut args: Args) -> Result<Value> {
    let url = args.required("url")?;
    let users = read_users(&args.required("users")?)?;
    let flask = args.flag("flask")?;
    let mut weights = parse_mix(
        &args
            .value("mix")?
            .unwrap_or_else(|| "list=60,page=20,post=15,rename=5".to_owned()),
    )?;
    let mut dropped = Vec::new();
    if flask && weights[Kind::Page.index()] > 0 {
        weights[Kind::Page.index()] = 0;
        dropped.push("page");
    }
    if weights.iter().all(|w| *w == 0) {
        return Err("--mix leaves no request type to run".into());
    }
    let config = Config {
        url,
        weights,
        list_path: if flask {
            "/api/conversations"
        } else {
            "/api/conversations?limit=20"
        },
        connections: args.parsed("connections", 32)?,
        threads: args.parsed("threads", 1)?,
        duration: Duration::from_secs_f64(args.parsed("duration", 30.0)?),
        timeout: Duration::from_secs(args.parsed("timeout", 30)?),
        same_user: args.flag("same-user")?,
    };
    args.finish()?;
    check(&config, &users)?;

    eprintln!(
        "  mix: {} connections on {} thread(s) for {:?}, {} users{}",
        config.connections,
        config.threads,
        config.duration,
        if config.same_user { 1 } else { users.len() },
        if config.same_user { " (same user)" } else { "" },
    );
    let start = Instant::now();
    let deadline = start + config.duration;
    let record = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.threads)
            .map(|thread| {
                let (config, users) = (&config, &users);
                scope.spawn(move || run_thread(config, users, thread, deadline))
            })
            .collect();
        let mut total = Record::default();
        for handle in handles {
            total.merge(handle.join().map_err(|_| "a client thread panicked")?);
        }
        Ok::<Record, crate::Error>(total)
    })?;
    Ok(report(&config, &users, &dropped, record, start))
}

/// `list=60,page=20,...` as weights of [`KINDS`].
fn parse_mix(raw: &str) -> Result<[u32; 4]> {
    let mut weights = [0; 4];
    for part in raw.split(',').filter(|part| !part.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("--mix: `{part}` is not name=weight"))?;
        let kind = KINDS
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| format!("--mix: unknown type `{name}` (list, page, post, rename)"))?;
        weights[kind.index()] = weight
            .parse()
            .map_err(|_| format!("--mix: `{weight}` is not a whole number"))?;
    }
    Ok(weights)
}

/// Refuses a run that cannot give each connection what it needs.
fn check(config: &Config, users: &[User]) -> Result<()> {
    if config.connections == 0 || config.threads == 0 || config.threads > config.connections {
        return Err("need 1 <= --threads <= --connections".into());
    }
    if let Some(user) = users.iter().find(|user| user.conversations.is_empty()) {
        return Err(format!("{} has no conversations", user.username).into());
    }
    if config.same_user && config.weights[Kind::Post.index()] > 0 {
        let have = users[0].conversations.len();
        if have < config.connections {
            return Err(format!(
                "--same-user: {} has {have} conversations, fewer than the {} connections \
                 (each posts to its own: a conversation takes one reply at a time)",
                users[0].username, config.connections
            )
            .into());
        }
    } else if !config.same_user && users.len() < config.connections {
        return Err(format!(
            "{} users for {} connections: each connection needs a user of its own",
            users.len(),
            config.connections
        )
        .into());
    }
    Ok(())
}

/// One thread's share: connections `thread`, `thread + threads`, ... and, unless all
/// act as one user, the users at the same positions, on a runtime of its own.
fn run_thread(config: &Config, users: &[User], thread: usize, deadline: Instant) -> Record {
    let mine: Vec<&User> = if config.same_user {
        users.iter().take(1).collect()
    } else {
        users.iter().skip(thread).step_by(config.threads).collect()
    };
    let busy: Vec<Cell<bool>> = mine.iter().map(|_| Cell::new(false)).collect();
    let connections = (thread..config.connections).step_by(config.threads);
    let (mine, busy) = (&mine, &busy);
    crate::block_on(async move {
        let records = futures_util::future::join_all(
            connections.map(|index| connection(config, mine, busy, index, deadline)),
        )
        .await;
        let mut total = Record::default();
        for record in records {
            total.merge(record);
        }
        total
    })
}

/// One connection's requests until `deadline`.
async fn connection(
    config: &Config,
    users: &[&User],
    busy: &[Cell<bool>],
    index: usize,
    deadline: Instant,
) -> Record {
    let conn = Conn::new(&config.url, config.timeout);
    let mut rng = SmallRng::seed_from_u64(rand::random());
    let mut record = Record::default();
    let total_weight: u32 = config.weights.iter().sum();
    // Message texts and names, different on every connection.
    let mut n = index * 10_000_000;
    while Instant::now() < deadline {
        let slot = if config.same_user {
            None
        } else {
            // At most connections - 1 others are busy, and there are at least as many
            // users as connections on this thread: this ends.
            loop {
                let slot = rng.random_range(0..users.len());
                if !busy[slot].replace(true) {
                    break Some(slot);
                }
            }
        };
        let user = slot.map_or(users[0], |slot| users[slot]);
        let kind = pick(&config.weights, rng.random_range(0..total_weight));
        let conversation = if config.same_user && kind == Kind::Post {
            user.conversations[index]
        } else {
            user.conversations[rng.random_range(0..user.conversations.len())]
        };
        n += 1;
        let (method, path, body) = match kind {
            Kind::List => (Method::GET, config.list_path.to_owned(), None),
            Kind::Page => (
                Method::GET,
                format!("/api/conversations/{conversation}/messages?limit=30"),
                None,
            ),
            Kind::Post => (
                Method::POST,
                format!("/api/conversations/{conversation}/messages"),
                Some(api::message_body(n)),
            ),
            Kind::Rename => (
                Method::PUT,
                format!("/api/conversations/{conversation}"),
                Some(json!({ "name": format!("Renamed {n}") })),
            ),
        };
        let started = Instant::now();
        let outcome = conn
            .call(method, &path, Some(&user.cookie), body.as_ref())
            .await;
        let took = started.elapsed();
        if let Some(slot) = slot {
            busy[slot].set(false);
        }
        record.add(
            kind,
            outcome
                .map(|answer| answer.status)
                .map_err(|error| error.to_string()),
            took,
        );
    }
    record
}

/// The type whose share of the weights `roll` (0 to their sum) falls in.
fn pick(weights: &[u32; 4], mut roll: u32) -> Kind {
    for kind in KINDS {
        let weight = weights[kind.index()];
        if roll < weight {
            return kind;
        }
        roll -= weight;
    }
    Kind::List
}

/// The run's figures as JSON.
fn report(
    config: &Config,
    users: &[User],
    dropped: &[&str],
    mut record: Record,
    start: Instant,
) -> Value {
    let elapsed = record
        .last
        .map_or(config.duration, |last| last.duration_since(start))
        .as_secs_f64();
    let mut types = serde_json::Map::new();
    let mut ran = serde_json::Map::new();
    let (mut requests, mut errors) = (0, 0);
    let mut all_statuses: BTreeMap<u16, u64> = BTreeMap::new();
    let mut all_latencies = Vec::new();
    for kind in KINDS {
        let k = kind.index();
        if config.weights[k] == 0 {
            continue;
        }
        ran.insert(kind.name().to_owned(), json!(config.weights[k]));
        let statuses = &record.statuses[k];
        let answered: u64 = statuses.values().sum();
        let ok = statuses.get(&kind.success()).copied().unwrap_or(0);
        let count = answered + record.transport_errors[k];
        let type_errors = count - ok;
        requests += count;
        errors += type_errors;
        for (status, n) in statuses {
            *all_statuses.entry(*status).or_default() += n;
        }
        all_latencies.extend_from_slice(&record.latencies[k]);
        types.insert(
            kind.name().to_owned(),
            json!({
                "count": count,
                "rps": stats::round(count as f64 / elapsed),
                "latency_ms": stats::summary(&mut record.latencies[k]),
                "errors": type_errors,
                "transport_errors": record.transport_errors[k],
                "statuses": statuses_json(statuses),
            }),
        );
    }
    json!({
        "url": config.url,
        "connections": config.connections,
        "threads": config.threads,
        "users": if config.same_user { 1 } else { users.len() },
        "same_user": config.same_user,
        "duration_s": config.duration.as_secs_f64(),
        "elapsed_s": stats::round(elapsed),
        "ran": ran,
        "dropped": dropped,
        "list_path": config.list_path,
        "requests": requests,
        "rps": stats::round(requests as f64 / elapsed),
        "latency_ms": stats::summary(&mut all_latencies),
        "errors": errors,
        "acknowledged_posts": record.acknowledged,
        "statuses": statuses_json(&all_statuses),
        "types": types,
        "error_examples": record.examples,
    })
}

fn statuses_json(statuses: &BTreeMap<u16, u64>) -> Value {
    statuses
        .iter()
        .map(|(status, n)| (status.to_string(), json!(n)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_weights() -> Result<()> {
        assert_eq!(
            parse_mix("list=60,page=20,post=15,rename=5")?,
            [60, 20, 15, 5]
        );
        assert_eq!(parse_mix("post=100")?, [0, 0, 100, 0]);
        assert!(parse_mix("posts=1").is_err());
        assert!(parse_mix("post").is_err());
        Ok(())
    }

    #[test]
    fn picks_by_weight() {
        let weights = [60, 0, 15, 5];
        assert_eq!(pick(&weights, 0), Kind::List);
        assert_eq!(pick(&weights, 59), Kind::List);
        assert_eq!(pick(&weights, 60), Kind::Post);
        assert_eq!(pick(&weights, 74), Kind::Post);
        assert_eq!(pick(&weights, 75), Kind::Rename);
        assert_eq!(pick(&weights, 79), Kind::Rename);
    }
}
