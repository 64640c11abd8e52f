//! The reliability suite: the real `chatbot` binary under concurrent writers, killed
//! with SIGKILL in the middle of a write load, and on a SQLite database that stops
//! taking writes. Each scenario runs on SQLite and, when `TEST_DATABASE_URL` names a
//! server, on PostgreSQL (the read-only scenarios are SQLite's own).
//!
//! The scenarios are `#[ignore]`d, so that `cargo test --workspace` stays fast; run
//! them with `scripts/reliability.sh` (bounded: 5 s of load) or
//! `scripts/reliability.sh --full` (20 s), which run
//!
//! ```text
//! cargo test -p chatbot-server --test reliability -- --ignored --test-threads=1
//! ```
//!
//! Environment: `RELIABILITY_SECONDS` (seconds of load, 5), `RELIABILITY_CLIENTS`
//! (concurrent clients, 200), `RELIABILITY_KILLS` (SIGKILLs in the crash scenario, 3),
//! `RELIABILITY_REPORT` (a file each scenario appends its figures to, as Markdown).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

#[path = "support/process.rs"]
#[allow(dead_code)]
mod process;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use awc::http::Method;
use chatbot_persistence::testing::TestDb;
use process::{Chatbot, Launch};
use serde_json::{Value, json};

/// How long a client waits for an answer before it gives up on a request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// `Launch::unset` of every scenario: the server runs one worker per core, its
/// default, rather than the test environment's single worker.
const DEFAULT_WORKERS: &[&str] = &["CHATBOT__SERVER__WORKERS"];

// ---------------------------------------------------------------------------------
// Load: clients, what they were told, and what went wrong.
// ---------------------------------------------------------------------------------

/// The size of the load, from the environment.
#[derive(Debug, Clone, Copy)]
struct Load {
    clients: usize,
    duration: Duration,
    kills: u32,
}

impl Load {
    fn from_env() -> Self {
        fn number(name: &str, default: f64) -> f64 {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
                })
                .unwrap_or(default)
        }
        let seconds = number("RELIABILITY_SECONDS", 5.0);
        assert!(seconds > 0.0, "RELIABILITY_SECONDS must be positive");
        Self {
            clients: number("RELIABILITY_CLIENTS", 200.0) as usize,
            duration: Duration::from_secs_f64(seconds),
            kills: (number("RELIABILITY_KILLS", 3.0) as u32).max(1),
        }
    }
}

/// One client: a keep-alive connection of its own and a session cookie. Unlike the
/// API tests' client, a failed request is an outcome to count, not a panic.
struct Agent {
    base: String,
    cookie: Option<String>,
    http: awc::Client,
}

/// An answer, read whole.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: Value,
    raw: String,
}

impl Agent {
    fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            cookie: None,
            http: awc::Client::builder().timeout(REQUEST_TIMEOUT).finish(),
        }
    }

    /// The same user (cookie) on another server, e.g. the restarted one.
    fn moved_to(&mut self, base: &str) {
        base.clone_into(&mut self.base);
        self.http = awc::Client::builder().timeout(REQUEST_TIMEOUT).finish();
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.insert_header((COOKIE, cookie.clone()));
        }
        let sent = match body {
            Some(body) => {
                request
                    .insert_header((CONTENT_TYPE, "application/json"))
                    .send_body(body.to_string())
                    .await
            }
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| format!("no answer: {e}"))?;
        let bytes = response
            .body()
            .limit(16 << 20)
            .await
            .map_err(|e| format!("answer cut short: {e}"))?;
        if let Some(set) = response
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
        {
            let pair = set.split(';').next().unwrap_or_default();
            let expired = set.contains("Max-Age=0") || pair.ends_with('=');
            self.cookie = if expired { None } else { Some(pair.to_owned()) };
        }
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        Ok(Answer {
            status: response.status().as_u16(),
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw,
        })
    }
}

/// A message exchange the API acknowledged with 201.
#[derive(Debug, Clone)]
struct Ack {
    /// The index of the agent that sent it.
    agent: usize,
    user_id: i64,
    bot_id: i64,
    text: String,
    bot_text: String,
}

/// What every client saw, together.
#[derive(Debug, Default)]
struct Tally {
    requests: usize,
    statuses: BTreeMap<u16, usize>,
    /// Messages acknowledged with 201.
    acks: Vec<Ack>,
    /// Conversations acknowledged with 201.
    conversations: Vec<i64>,
    /// Messages sent and not acknowledged: their text, and what came back instead.
    unacked: Vec<(String, String)>,
    /// Every answer that was not a success, and every request without an answer.
    failures: Vec<String>,
    /// Requests that got no (whole) answer.
    unanswered: usize,
    /// Answers that mention "database is locked".
    locked: usize,
    /// How long each acknowledged message took.
    latencies: Vec<Duration>,
}

impl Tally {
    fn server_errors(&self) -> usize {
        self.statuses
            .iter()
            .filter(|(status, _)| **status >= 500)
            .map(|(_, n)| n)
            .sum()
    }

    fn latency(&self, quantile: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let at = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
        sorted[at.min(sorted.len() - 1)]
    }

    fn first_failures(&self) -> Vec<&String> {
        self.failures.iter().take(10).collect()
    }
}

/// The load's shared state on the (single-threaded) test runtime.
#[derive(Clone, Default)]
struct Shared {
    tally: Rc<RefCell<Tally>>,
    /// Requests sent and not answered yet.
    in_flight: Rc<Cell<usize>>,
}

impl Shared {
    /// Sends one request through `agent`, counting what comes back.
    async fn request(
        &self,
        agent: &mut Agent,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        self.in_flight.set(self.in_flight.get() + 1);
        let outcome = agent.send(method.clone(), path, body).await;
        self.in_flight.set(self.in_flight.get() - 1);
        let mut tally = self.tally.borrow_mut();
        tally.requests += 1;
        match &outcome {
            Ok(answer) => {
                *tally.statuses.entry(answer.status).or_default() += 1;
                if answer.raw.contains("database is locked") {
                    tally.locked += 1;
                }
                if answer.status >= 300 {
                    tally
                        .failures
                        .push(format!("{method} {path}: {} {}", answer.status, answer.raw));
                }
            }
            Err(error) => {
                tally.unanswered += 1;
                tally.failures.push(format!("{method} {path}: {error}"));
            }
        }
        outcome
    }
}

/// The text of message `k` of user `name`: unique, and plain (no quotes), so that
/// SQL can look for it.
fn message_text(name: &str, k: usize) -> String {
    format!("{name} message {k}: how does the weather look for hiking on day {k}?")
}

/// One client's write load: signs `name` up, logs in, then, until `until` or until
/// a request goes unanswered (the server is gone), creates a conversation and sends
/// five messages to it, again and again.
async fn write_load(
    mut agent: Agent,
    index: usize,
    name: String,
    until: Instant,
    shared: Shared,
) -> Agent {
    let credentials = json!({"username": name, "password": "correct horse"});
    for (path, expected) in [("/api/signup", 201), ("/api/login", 200)] {
        match shared
            .request(&mut agent, Method::POST, path, Some(&credentials))
            .await
        {
            Ok(answer) if answer.status == expected => {}
            _ => return agent,
        }
    }
    let mut conversation: Option<i64> = None;
    let mut k = 0;
    while Instant::now() < until {
        if conversation.is_none() || k % 5 == 0 {
            let body = json!({"name": format!("{name} talk {}", k / 5)});
            match shared
                .request(&mut agent, Method::POST, "/api/conversations", Some(&body))
                .await
            {
                Ok(answer) if answer.status == 201 => {
                    let id = answer.body["id"].as_i64().expect("a conversation id");
                    shared.tally.borrow_mut().conversations.push(id);
                    conversation = Some(id);
                }
                Ok(_) => {
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(_) => return agent,
            }
        }
        let Some(id) = conversation else { continue };
        let text = message_text(&name, k);
        k += 1;
        let sent = Instant::now();
        let outcome = shared
            .request(
                &mut agent,
                Method::POST,
                &format!("/api/conversations/{id}/messages"),
                Some(&json!({"text": text})),
            )
            .await;
        let mut tally = shared.tally.borrow_mut();
        match outcome {
            Ok(answer) if answer.status == 201 => {
                let (user, bot) = (&answer.body[0], &answer.body[1]);
                assert_eq!(user["sender"], "user", "{}", answer.raw);
                assert_eq!(user["text"], text.as_str(), "{}", answer.raw);
                assert_eq!(bot["sender"], "bot", "{}", answer.raw);
                tally.latencies.push(sent.elapsed());
                tally.acks.push(Ack {
                    agent: index,
                    user_id: user["id"].as_i64().unwrap(),
                    bot_id: bot["id"].as_i64().unwrap(),
                    text,
                    bot_text: bot["text"].as_str().unwrap().to_owned(),
                });
            }
            Ok(answer) => {
                tally
                    .unacked
                    .push((text, format!("{} {}", answer.status, answer.raw)));
            }
            Err(error) => {
                tally.unacked.push((text, error));
                return agent;
            }
        }
    }
    agent
}

/// Starts `clients` clients on `base`, users `{prefix}{index}` (agent indexes from
/// `first`), writing until `until`.
fn start_load(
    base: &str,
    clients: usize,
    first: usize,
    prefix: &str,
    until: Instant,
    shared: &Shared,
) -> Vec<actix_web::rt::task::JoinHandle<Agent>> {
    (0..clients)
        .map(|i| {
            let index = first + i;
            actix_web::rt::spawn(write_load(
                Agent::new(base),
                index,
                format!("{prefix}{index}"),
                until,
                shared.clone(),
            ))
        })
        .collect()
}

async fn join(load: Vec<actix_web::rt::task::JoinHandle<Agent>>) -> Vec<Agent> {
    let mut agents = Vec::with_capacity(load.len());
    for client in load {
        agents.push(client.await.expect("a client panicked"));
    }
    agents
}

// ---------------------------------------------------------------------------------
// Checks on the database and through the API.
// ---------------------------------------------------------------------------------

/// How many of `ids` are rows of `table`.
fn present(db: &TestDb, table: &str, ids: &[i64]) -> i64 {
    ids.chunks(500)
        .map(|chunk| {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            db.count(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE id IN ({list})"
            ))
        })
        .sum()
}

/// User messages whose next message in their conversation is not a bot reply,
/// restricted by `and` (an SQL condition on `u`, or `TRUE`).
fn orphans(db: &TestDb, and: &str) -> i64 {
    db.count(&format!(
        "SELECT COUNT(*) AS n FROM messages u WHERE u.sender = 'user' AND ({and}) AND \
         COALESCE((SELECT m.sender FROM messages m WHERE m.conversation_id = u.conversation_id \
                   AND m.id > u.id ORDER BY m.id LIMIT 1), '') <> 'bot'"
    ))
}

/// Orphaned user messages among `ids`.
fn orphans_among(db: &TestDb, ids: &[i64]) -> i64 {
    ids.chunks(500)
        .map(|chunk| {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            orphans(db, &format!("u.id IN ({list})"))
        })
        .sum()
}

/// How many of `texts` are stored as user messages.
fn stored_texts(db: &TestDb, texts: &[&str]) -> i64 {
    texts
        .chunks(200)
        .map(|chunk| {
            let list = chunk
                .iter()
                .map(|t| format!("'{}'", t.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(",");
            db.count(&format!(
                "SELECT COUNT(*) AS n FROM messages WHERE sender = 'user' AND text IN ({list})"
            ))
        })
        .sum()
}

/// Rows of the tables that hold data, and of the migrations table.
fn row_counts(db: &TestDb) -> BTreeMap<&'static str, i64> {
    [
        "users",
        "conversations",
        "messages",
        "__diesel_schema_migrations",
    ]
    .into_iter()
    .map(|table| {
        (
            table,
            db.count(&format!("SELECT COUNT(*) AS n FROM {table}")),
        )
    })
    .collect()
}

/// SQLite's own checks of the file: `PRAGMA integrity_check` and
/// `PRAGMA foreign_key_check`. Returns what integrity_check said.
fn sqlite_checks(db: &TestDb) -> String {
    let integrity = db.texts("SELECT integrity_check AS t FROM pragma_integrity_check");
    assert_eq!(integrity, ["ok"], "PRAGMA integrity_check");
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM pragma_foreign_key_check"),
        0,
        "PRAGMA foreign_key_check"
    );
    integrity.join(" ")
}

/// Checks, through the API and each agent's own session, that every message in
/// `acks` is listed with the text it was acknowledged with, and its reply after it.
/// Returns how many exchanges were checked.
async fn check_through_api(agents: &mut [Agent], acks: &[Ack]) -> usize {
    let mut by_agent: HashMap<usize, Vec<&Ack>> = HashMap::new();
    for ack in acks {
        by_agent.entry(ack.agent).or_default().push(ack);
    }
    let mut checked = 0;
    for (index, acks) in by_agent {
        let agent = &mut agents[index];
        let listed = agent
            .send(Method::GET, "/api/conversations", None)
            .await
            .unwrap();
        assert_eq!(listed.status, 200, "{}", listed.raw);
        let mut stored: HashMap<i64, (String, String)> = HashMap::new();
        for conversation in listed.body.as_array().unwrap() {
            for message in conversation["messages"].as_array().unwrap() {
                stored.insert(
                    message["id"].as_i64().unwrap(),
                    (
                        message["sender"].as_str().unwrap().to_owned(),
                        message["text"].as_str().unwrap().to_owned(),
                    ),
                );
            }
        }
        for ack in acks {
            assert_eq!(
                stored.get(&ack.user_id),
                Some(&("user".to_owned(), ack.text.clone())),
                "acknowledged message {} of agent {index}",
                ack.user_id
            );
            assert_eq!(
                stored.get(&ack.bot_id),
                Some(&("bot".to_owned(), ack.bot_text.clone())),
                "acknowledged reply {} of agent {index}",
                ack.bot_id
            );
            checked += 1;
        }
    }
    checked
}

/// Server log lines (and stderr lines) that mention a locked database.
fn locked_in_logs(server: &Chatbot) -> usize {
    server
        .logged(|line| line.to_string().contains("database is locked"))
        .len()
        + server
            .stderr()
            .iter()
            .filter(|line| line.contains("database is locked"))
            .count()
}

/// Asserts that the server has not reported a panic.
fn assert_no_panic(server: &Chatbot) {
    let panics: Vec<String> = server
        .stderr()
        .into_iter()
        .filter(|line| line.contains("panicked"))
        .collect();
    assert!(panics.is_empty(), "{panics:#?}");
}

/// Request log lines with a 5xx status.
fn server_errors_in_logs(server: &Chatbot) -> Vec<Value> {
    server.logged(|line| line["status"].as_u64().is_some_and(|s| s >= 500))
}

/// Prints `line` and appends it to `RELIABILITY_REPORT`, if set.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
    if let Ok(path) = std::env::var("RELIABILITY_REPORT") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot append to RELIABILITY_REPORT={path}: {e}"));
        writeln!(file, "{line}").unwrap();
    }
}

fn millis(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

/// Runs `chatbot migrations` on `url`; returns each migration's state.
fn migration_states(url: &str) -> Vec<String> {
    let folder = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_chatbot"))
        .arg("migrations")
        .current_dir(folder.path())
        .env_clear()
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(output.status.success(), "chatbot migrations: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            line.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Runs `test` on SQLite, and on PostgreSQL (`scripts/reliability.sh` skips those
/// when `TEST_DATABASE_URL` is not set).
macro_rules! on_both_databases {
    ($($name:ident => $scenario:ident;)*) => {
        $(
            mod $name {
                use super::*;

                #[actix_web::test]
                #[ignore = "reliability suite: scripts/reliability.sh"]
                async fn sqlite() {
                    $scenario(&TestDb::sqlite(), "SQLite").await;
                }

                #[actix_web::test]
                #[ignore = "reliability suite: scripts/reliability.sh"]
                async fn postgres() {
                    let db = TestDb::postgres();
                    $scenario(&db, "PostgreSQL").await;
                }
            }
        )*
    };
}

on_both_databases! {
    concurrent_writers => concurrent_writers;
    sigkill_during_writes => sigkill_during_writes;
}

// ---------------------------------------------------------------------------------
// Scenario 1: concurrent writers.
// ---------------------------------------------------------------------------------

/// Many clients at once, each its own user on a keep-alive connection, creating
/// conversations and sending messages: no 5xx, no "database is locked", every
/// acknowledged message stored with its reply, nothing unacknowledged half-written.
async fn concurrent_writers(db: &TestDb, database: &str) {
    let load = Load::from_env();
    let server = Chatbot::launch(&Launch {
        unset: DEFAULT_WORKERS,
        ..Launch::on(db.url())
    });
    let shared = Shared::default();
    let started = Instant::now();
    let until = started + load.duration;
    let clients = start_load(&server.base(), load.clients, 0, "writer", until, &shared);
    let mut agents = join(clients).await;
    let elapsed = started.elapsed();
    let tally = shared.tally.take();

    // What the clients were told.
    assert_eq!(
        tally.server_errors(),
        0,
        "5xx: {:#?}",
        tally.first_failures()
    );
    assert_eq!(tally.locked, 0, "{:#?}", tally.first_failures());
    assert!(
        tally.failures.is_empty(),
        "{} requests failed: {:#?}",
        tally.failures.len(),
        tally.first_failures()
    );
    assert!(!tally.acks.is_empty(), "no message was acknowledged");
    // What the server logged.
    assert_eq!(locked_in_logs(&server), 0);
    assert_no_panic(&server);
    let logged_errors = server_errors_in_logs(&server);
    assert!(logged_errors.is_empty(), "{logged_errors:#?}");

    // Every acknowledged conversation and message is stored.
    assert_eq!(
        present(db, "conversations", &tally.conversations),
        tally.conversations.len() as i64
    );
    let ids: Vec<i64> = tally
        .acks
        .iter()
        .flat_map(|ack| [ack.user_id, ack.bot_id])
        .collect();
    assert_eq!(present(db, "messages", &ids), ids.len() as i64);
    let checked = check_through_api(&mut agents, &tally.acks).await;
    assert_eq!(checked, tally.acks.len());
    // Nothing else is: no user message without its reply (the simulated bot never
    // fails), and no message that was not acknowledged.
    let stored_user_messages = db.count("SELECT COUNT(*) AS n FROM messages WHERE sender = 'user'");
    let orphaned = orphans(db, "TRUE");
    assert_eq!(orphaned, 0, "user messages without a reply");
    let unacked_texts: Vec<&str> = tally.unacked.iter().map(|(t, _)| t.as_str()).collect();
    let unacked_stored = stored_texts(db, &unacked_texts);
    assert_eq!(stored_user_messages, tally.acks.len() as i64);
    assert_eq!(
        db.count("SELECT COUNT(*) AS n FROM messages"),
        2 * stored_user_messages
    );
    if let Some(path) = db.sqlite_path() {
        assert!(path.exists());
        sqlite_checks(db);
    }
    drop(server);

    let seconds = elapsed.as_secs_f64();
    report(&format!(
        "| 1 concurrent writers | {database} | {clients} clients, {seconds:.1} s | \
         {requests} requests ({rate:.0}/s), {conversations} conversations, {acks} messages \
         acknowledged ({mps:.0}/s); send p50 {p50}, p99 {p99}, max {max} | 5xx: {e5}; \
         \"database is locked\": 0 (answers and logs); acknowledged and stored: {checked}/{acks} \
         (checked in SQL and through the API); unacknowledged: {unacked} (stored: \
         {unacked_stored}); user messages without a reply: {orphaned} |",
        clients = load.clients,
        requests = tally.requests,
        rate = tally.requests as f64 / seconds,
        conversations = tally.conversations.len(),
        acks = tally.acks.len(),
        mps = tally.acks.len() as f64 / seconds,
        p50 = millis(tally.latency(0.5)),
        p99 = millis(tally.latency(0.99)),
        max = millis(tally.latency(1.0)),
        e5 = tally.server_errors(),
        unacked = tally.unacked.len(),
    ));
}

// ---------------------------------------------------------------------------------
// Scenario 2: SIGKILL in the middle of writes.
// ---------------------------------------------------------------------------------

/// Kills the server with SIGKILL while clients write, `RELIABILITY_KILLS` times, and
/// restarts it on the same database each time: every message acknowledged before a
/// kill is there after it, the database passes its checks, and a restart neither
/// re-runs a migration nor changes a row.
async fn sigkill_during_writes(db: &TestDb, database: &str) {
    let load = Load::from_env();
    let launch = Launch {
        unset: DEFAULT_WORKERS,
        ..Launch::on(db.url())
    };
    let migrations = row_counts(db)["__diesel_schema_migrations"];
    let round_length = (load.duration / load.kills).max(Duration::from_secs(1));
    let mut server = Chatbot::launch(&launch);
    let mut agents: Vec<Agent> = Vec::new();
    let mut acks: Vec<Ack> = Vec::new();
    let mut unacked: Vec<(String, String)> = Vec::new();
    let mut in_flight_at_kills = Vec::new();
    let mut restarts = Vec::new();
    let started = Instant::now();
    for round in 0..load.kills {
        // Clients write until the server is gone; it is killed in the middle.
        let shared = Shared::default();
        let clients = start_load(
            &server.base(),
            load.clients,
            agents.len(),
            &format!("k{round}u"),
            Instant::now() + Duration::from_secs(3600),
            &shared,
        );
        actix_web::rt::time::sleep(round_length).await;
        in_flight_at_kills.push(shared.in_flight.get());
        assert_no_panic(&server);
        server.signal("KILL");
        let status = server.exit_within(Duration::from_secs(10));
        assert_eq!(status.signal(), Some(9), "{status:?}");
        agents.extend(join(clients).await);
        let tally = shared.tally.take();
        assert_eq!(tally.locked, 0, "{:#?}", tally.first_failures());
        assert_eq!(
            tally.server_errors(),
            0,
            "5xx before the kill: {:#?}",
            tally.first_failures()
        );
        acks.extend(tally.acks);
        unacked.extend(tally.unacked);

        // The database as the kill left it: every acknowledged message is there.
        if db.sqlite_path().is_some() {
            sqlite_checks(db);
        }
        let ids: Vec<i64> = acks
            .iter()
            .flat_map(|ack| [ack.user_id, ack.bot_id])
            .collect();
        assert_eq!(
            present(db, "messages", &ids),
            ids.len() as i64,
            "acknowledged messages missing after kill {round}"
        );
        let user_ids: Vec<i64> = acks.iter().map(|ack| ack.user_id).collect();
        assert_eq!(
            orphans_among(db, &user_ids),
            0,
            "an acknowledged message lost its reply"
        );
        let before = row_counts(db);
        assert_eq!(before["__diesel_schema_migrations"], migrations);

        // A restart applies no migration and changes no row.
        let restarting = Instant::now();
        server = Chatbot::launch(&launch);
        restarts.push(restarting.elapsed());
        let applied = server.logged(|line| line["message"] == "applied migration");
        assert!(applied.is_empty(), "{applied:#?}");
        assert_eq!(row_counts(db), before, "rows changed by the restart");
        assert!(
            migration_states(db.url()).iter().all(|s| s == "applied"),
            "every migration stays applied"
        );
        // And the acknowledged messages read back through the API, with the
        // sessions from before the kill.
        for agent in &mut agents {
            agent.moved_to(&server.base());
        }
        assert_eq!(check_through_api(&mut agents, &acks).await, acks.len());
    }
    let elapsed = started.elapsed();

    // The restarted server takes writes.
    let mut last = server.client();
    last.sign_up_and_log_in("after-the-kills").await;
    let conversation = last.create_conversation("after").await;
    let sent = last
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            json!({"text": "still there?"}),
        )
        .await;
    assert_eq!(sent.status, 201, "{sent:?}");
    let integrity = db
        .sqlite_path()
        .map_or_else(|| "n/a".to_owned(), |_| sqlite_checks(db));

    // Messages not acknowledged (in flight at a kill) may be stored or not; a user
    // message whose reply was not written yet stays, as when the bot fails.
    let texts: Vec<&str> = unacked.iter().map(|(t, _)| t.as_str()).collect();
    let unacked_stored = stored_texts(db, &texts);
    let orphaned = orphans(db, "TRUE");
    drop(server);
    report(&format!(
        "| 2 SIGKILL during writes | {database} | {clients} clients, {kills} kills, one every \
         {round:.1} s ({total:.1} s in all) | {acks} messages acknowledged before the kills; \
         requests in flight at the kills: {in_flight:?}; restarts took {restarts} | \
         acknowledged and present after each kill and restart: {acks}/{acks} (SQL and API); \
         integrity_check: {integrity}; migrations re-run: 0, rows changed by a restart: 0; \
         unacknowledged: {unacked} (stored: {unacked_stored}, of which without a reply: \
         {orphaned}) |",
        clients = load.clients,
        kills = load.kills,
        round = round_length.as_secs_f64(),
        total = elapsed.as_secs_f64(),
        acks = acks.len(),
        in_flight = in_flight_at_kills,
        restarts = restarts
            .iter()
            .map(|d| millis(*d))
            .collect::<Vec<_>>()
            .join(", "),
        unacked = unacked.len(),
    ));
}

// ---------------------------------------------------------------------------------
// Scenario 4: a SQLite database that stops taking writes.
// ---------------------------------------------------------------------------------

/// Whether this process runs as root (a container's usual user).
fn is_root() -> bool {
    let output = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?}: {status:?}");
}

/// Whether signal `number` is ignored by process `pid`.
fn ignores(pid: u32, number: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (number - 1)) != 0
}

/// The write requests of the read-only scenarios, in the session of `client`, with
/// the conversation `id` in place; each must fail with a 503 (or 500) JSON error.
/// Returns a summary of the statuses.
async fn writes_fail_cleanly(client: &mut support::Client, base: &str, id: i64) -> String {
    let mut statuses: BTreeMap<(u16, String), usize> = BTreeMap::new();
    let messages = format!("/api/conversations/{id}/messages");
    let conversation = format!("/api/conversations/{id}");
    let mut replies = vec![
        client
            .post(&messages, json!({"text": "is this stored?"}))
            .await,
        client
            .post("/api/conversations", json!({"name": "new"}))
            .await,
        client.put(&conversation, json!({"name": "renamed"})).await,
        client.delete(&conversation).await,
    ];
    let mut stranger = support::Client::new(base);
    replies.push(
        stranger
            .post(
                "/api/signup",
                json!({"username": "stranger", "password": "correct horse"}),
            )
            .await,
    );
    replies.push(
        stranger
            .post(
                "/api/login",
                json!({"username": "reader", "password": "correct horse"}),
            )
            .await,
    );
    for reply in replies {
        match reply.status.as_u16() {
            503 => reply.assert_error(503, "unavailable"),
            500 => reply.assert_error(500, "internal"),
            _ => panic!("a write while the database refuses writes: {reply:?}"),
        }
        let code = reply.body["code"].as_str().unwrap_or_default().to_owned();
        *statuses.entry((reply.status.as_u16(), code)).or_default() += 1;
    }
    statuses
        .iter()
        .map(|((status, code), n)| format!("{n}× {status} `{code}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads while writes fail, after the session's renewal has come due (so that
/// loading the session wants to write): each must answer as before. Returns how
/// many were checked.
async fn reads_work(client: &mut support::Client, id: i64, listed: &Value) -> usize {
    // The servers of these scenarios renew a session at most every 2 s.
    actix_web::rt::time::sleep(Duration::from_millis(2_500)).await;
    let mut checked = 0;
    for _ in 0..3 {
        let list = client.get("/api/conversations").await;
        assert_eq!(list.status, 200, "{list:?}");
        assert_eq!(&list.body, listed);
        let page = client
            .get(&format!("/api/conversations/{id}/messages?limit=2"))
            .await;
        assert_eq!(page.status, 200, "{page:?}");
        assert_eq!(page.body["messages"].as_array().unwrap().len(), 2);
        assert_eq!(client.get("/api/health").await.status, 200);
        checked += 3;
    }
    checked
}

/// A user `reader` with one conversation of `n` exchanges; returns the conversation.
async fn some_data(client: &mut support::Client, n: usize) -> i64 {
    client.sign_up_and_log_in("reader").await;
    let id = client.create_conversation("kept").await;
    for k in 0..n {
        let sent = client
            .post(
                &format!("/api/conversations/{id}/messages"),
                json!({"text": format!("message {k}")}),
            )
            .await;
        assert_eq!(sent.status, 201, "{sent:?}");
    }
    id
}

/// The session renewal is due 2 s after the last one: reads in the read-only
/// periods below want to write.
const FAST_RENEWAL: (&str, &str) = ("CHATBOT__SESSION__IDLE_TIMEOUT_SECONDS", "20");

/// The disk stops taking writes under a running server (as on a full disk or a file
/// system remounted read-only): every write of the process to a file fails, through
/// the file descriptors it already holds too. Emulated, without root's mount
/// privileges, by lowering the process's file-size limit (RLIMIT_FSIZE) to 0 with
/// prlimit, SIGXFSZ ignored: write(2) then fails with EFBIG, which SQLite reports as
/// an I/O error, like EIO or EROFS.
#[actix_web::test]
#[ignore = "reliability suite: scripts/reliability.sh"]
async fn sqlite_disk_refusing_writes_under_a_running_server() {
    let db = TestDb::sqlite();
    // `sh` keeps an ignored signal ignored across exec (bash resets it).
    let server = Chatbot::launch(&Launch {
        overrides: &[FAST_RENEWAL],
        unset: DEFAULT_WORKERS,
        wrapper: &["sh", "-c", "trap '' XFSZ; exec \"$0\""],
        ..Launch::on(db.url())
    });
    assert!(
        ignores(server.pid(), 25),
        "the server must ignore SIGXFSZ, or it dies at its first refused write"
    );
    let pid = server.pid().to_string();
    let mut client = server.client();
    let id = some_data(&mut client, 3).await;
    let listed = client.get("/api/conversations").await.body;
    let before = row_counts(&db);

    let refusing = Instant::now();
    run("prlimit", &["--pid", &pid, "--fsize=0:unlimited"]);
    let writes = writes_fail_cleanly(&mut client, &server.base(), id).await;
    let reads = reads_work(&mut client, id, &listed).await;
    let ready = client.get("/api/ready").await.status.as_u16();
    // Again, after a while.
    let writes_again = writes_fail_cleanly(&mut client, &server.base(), id).await;
    assert_eq!(writes, writes_again);
    assert_eq!(row_counts(&db), before, "a refused write left something");
    let refused_for = refusing.elapsed();
    run("prlimit", &["--pid", &pid, "--fsize=unlimited:unlimited"]);

    // Writes work again at once, and nothing stored before was lost.
    let sent = client
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"text": "back"}),
        )
        .await;
    assert_eq!(
        sent.status, 201,
        "the first write once the disk takes writes: {sent:?}"
    );
    let mut stranger = server.client();
    stranger.sign_up_and_log_in("stranger").await;
    let after = client.get("/api/conversations").await;
    assert_eq!(after.status, 200);
    let messages = after.body[0]["messages"].as_array().unwrap();
    assert_eq!(&messages[..6], listed[0]["messages"].as_array().unwrap());
    assert_eq!(messages.len(), 8);
    let integrity = sqlite_checks(&db);
    assert!(server.accepts(), "the server is still serving");
    assert_no_panic(&server);
    let errors = server.logged(|line| line["message"] == "request failed");
    let causes: Vec<String> = errors
        .iter()
        .filter_map(|line| line["error"].as_str().map(str::to_owned))
        .collect();
    drop(server);
    report(&format!(
        "| 4a disk refuses every write of the running server (RLIMIT_FSIZE=0) | SQLite | \
         6 kinds of write twice and {reads} reads in {seconds:.1} s of refused writes, then \
         the limit lifted | writes: {writes} (each time); /api/ready: {ready}; logged: \
         \"{cause}\" | reads: {reads}/{reads} answered as before, with sessions due for \
         renewal; rows changed by refused writes: 0; first write once writable: 201; \
         integrity_check: {integrity} |",
        seconds = refused_for.as_secs_f64(),
        cause = causes.first().map_or("none", String::as_str),
    ));
}

/// The database file is read-only when the server starts (`chmod a-w`; the server
/// runs as an unprivileged user, as in the container, since root ignores file
/// modes), and is made writable again while it runs.
#[actix_web::test]
#[ignore = "reliability suite: scripts/reliability.sh"]
async fn sqlite_read_only_file() {
    let db = TestDb::sqlite();
    let file = db.sqlite_path().unwrap();
    let folder = file.parent().unwrap().to_owned();
    let file = file.to_string_lossy().into_owned();
    let mut wrapper: Vec<&str> = Vec::new();
    let user;
    if is_root() {
        run("chown", &["-R", "nobody:", &folder.to_string_lossy()]);
        wrapper = vec![
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
        ];
        user = "nobody";
    } else {
        user = "the current user";
    }
    let launch = Launch {
        overrides: &[FAST_RENEWAL],
        unset: DEFAULT_WORKERS,
        wrapper: &wrapper,
        ..Launch::on(db.url())
    };
    let mut server = Chatbot::launch(&launch);
    let mut client = server.client();
    let id = some_data(&mut client, 3).await;
    let listed = client.get("/api/conversations").await.body;
    server.signal("TERM");
    assert_eq!(server.exit_within(Duration::from_secs(30)).code(), Some(0));
    let before = row_counts(&db);

    run("chmod", &["a-w", &file]);
    let server = Chatbot::launch(&launch);
    let applied = server.logged(|line| line["message"] == "applied migration");
    assert!(applied.is_empty(), "{applied:#?}");
    client = {
        let mut moved = server.client();
        moved.cookie = client.cookie.take();
        moved
    };
    let writes = writes_fail_cleanly(&mut client, &server.base(), id).await;
    let reads = reads_work(&mut client, id, &listed).await;
    assert_eq!(row_counts(&db), before, "a refused write left something");

    run("chmod", &["u+w", &file]);
    let sent = client
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"text": "back"}),
        )
        .await;
    assert_eq!(
        sent.status, 201,
        "the first write once the file is writable: {sent:?}"
    );
    let after = client.get("/api/conversations").await;
    let messages = after.body[0]["messages"].as_array().unwrap();
    assert_eq!(&messages[..6], listed[0]["messages"].as_array().unwrap());
    assert_eq!(messages.len(), 8);
    let integrity = sqlite_checks(&db);
    assert_no_panic(&server);
    drop(server);
    report(&format!(
        "| 4b database file read-only (chmod a-w) when the server starts, as {user} | \
         SQLite | 6 kinds of write and {reads} reads, then chmod u+w under the running \
         server | writes: {writes}; start-up: served, no migration re-run | reads: \
         {reads}/{reads} answered as before; rows changed: 0; first write once writable, \
         without a restart: 201; integrity_check: {integrity} |"
    ));
}
