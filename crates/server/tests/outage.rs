//! PostgreSQL goes down under load and comes back: requests fail fast with 503
//! `unavailable`, never 500 and never hanging, and the service recovers by itself.
//!
//! This stops the machine's PostgreSQL cluster (`pg_ctlcluster`), which every other
//! PostgreSQL test uses, so it is ignored by `cargo test` and run alone by
//! `scripts/reliability.sh`:
//! `cargo test -p chatbot-server --test outage -- --ignored --test-threads=1`.
//! It starts the cluster again whatever happens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use chatbot_persistence::testing::TestDb;
use serde_json::json;
use support::{Client, Server, settings};

/// How long a request may wait for a connection before its 503.
const POOL_TIMEOUT: Duration = Duration::from_secs(2);
/// Clients sending messages throughout.
const CLIENTS: usize = 16;

/// The local cluster, started again when dropped, so no test leaves it down.
struct Cluster {
    version: String,
}

impl Cluster {
    fn local() -> Self {
        let versions = std::fs::read_dir("/etc/postgresql")
            .expect("a local PostgreSQL cluster managed by pg_ctlcluster");
        let mut versions: Vec<String> = versions
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        versions.sort_by_key(|v| v.parse::<u32>().unwrap_or(0));
        Self {
            version: versions.pop().expect("a PostgreSQL version"),
        }
    }

    /// Runs `pg_ctlcluster` on this cluster, off the test's async thread.
    async fn control(&self, action: &'static str) {
        let version = self.version.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let mut command = Command::new("pg_ctlcluster");
            command.args(["--skip-systemctl-redirect", &version, "main", action]);
            if action == "stop" {
                // Connections are cut, as when a server goes away.
                command.args(["-m", "fast"]);
            }
            let status = command.status().unwrap();
            assert!(status.success(), "pg_ctlcluster {action}: {status}");
        })
        .await
        .unwrap();
    }

    fn is_up(&self) -> bool {
        Command::new("pg_isready")
            .args(["-q", "-h", "127.0.0.1"])
            .status()
            .is_ok_and(|status| status.success())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.is_up() {
            let _ = Command::new("pg_ctlcluster")
                .args(["--skip-systemctl-redirect", &self.version, "main", "start"])
                .status();
        }
    }
}

/// One answer under load: when it was asked, how long it took, and what it was.
#[derive(Debug, Clone)]
struct Answer {
    sent: Instant,
    took: Duration,
    status: u16,
    code: Option<String>,
}

#[actix_web::test]
#[ignore = "stops the PostgreSQL cluster: run alone, by scripts/reliability.sh"]
async fn a_database_outage_answers_503_fast_and_the_service_recovers_by_itself() {
    assert_eq!(
        std::env::var("RELIABILITY_STOP_POSTGRES").as_deref(),
        Ok("1"),
        "this test stops the machine's PostgreSQL cluster: set RELIABILITY_STOP_POSTGRES=1 \
         to let it (scripts/reliability.sh does, in CI)"
    );
    let db = TestDb::postgres();
    let cluster = Cluster::local();
    let pool_timeout = POOL_TIMEOUT.as_secs().to_string();
    let server = Server::start(settings(
        &db,
        &[
            ("CHATBOT__DATABASE__CONNECT_TIMEOUT_SECONDS", &pool_timeout),
            ("CHATBOT__SERVER__WORKERS", "2"),
        ],
    ))
    .await;

    let mut writers = Vec::new();
    for n in 0..CLIENTS {
        let mut client = server.client();
        client.sign_up_and_log_in(&format!("writer{n}")).await;
        let conversation = client.create_conversation("under load").await;
        writers.push((client, conversation));
    }
    let answers = Rc::new(RefCell::new(Vec::<Answer>::new()));
    let running = Rc::new(RefCell::new(true));
    let load: Vec<_> = writers
        .into_iter()
        .map(|(mut client, conversation)| {
            let (answers, running) = (Rc::clone(&answers), Rc::clone(&running));
            actix_web::rt::spawn(async move {
                let path = format!("/api/conversations/{conversation}/messages");
                let mut acknowledged = 0_i64;
                while *running.borrow() {
                    let sent = Instant::now();
                    let reply = client.post(&path, json!({"text": "still there?"})).await;
                    let answer = Answer {
                        sent,
                        took: sent.elapsed(),
                        status: reply.status.as_u16(),
                        code: reply.body["code"].as_str().map(str::to_owned),
                    };
                    if answer.status == 201 {
                        acknowledged += 1;
                    } else {
                        // Failing fast must not become a busy loop.
                        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                    }
                    answers.borrow_mut().push(answer);
                }
                acknowledged
            })
        })
        .collect();

    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let down = Instant::now();
    cluster.control("stop").await;
    let stopped = Instant::now();
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    let mut probe = Client::new(&server.base);
    probe
        .get("/api/ready")
        .await
        .assert_error(503, "unavailable");
    assert_eq!(probe.get("/api/health").await.status, 200);

    cluster.control("start").await;
    let up = Instant::now();
    let recovered = loop {
        if probe.get("/api/ready").await.status == 200 {
            break up.elapsed();
        }
        assert!(
            up.elapsed() < Duration::from_secs(5),
            "not ready 5 s after the database came back"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    *running.borrow_mut() = false;
    let mut acknowledged = 0;
    for client in load {
        acknowledged += client.await.unwrap();
    }

    // Real time is back too: the events connections came back after the restart (a
    // socket opened before they did is closed with 4008, and a new one hears).
    let mut watcher = server.client();
    watcher.sign_up_and_log_in("watcher").await;
    let mut heard = false;
    for _ in 0..20 {
        let mut socket = watcher.socket().await;
        watcher.create_conversation("after the outage").await;
        let frame = actix_web::rt::time::timeout(Duration::from_secs(1), socket.frame()).await;
        if let Ok(Some(awc::ws::Frame::Text(text))) = frame {
            let frame: serde_json::Value = serde_json::from_slice(&text).unwrap();
            assert_eq!(frame["type"], "conversation.created", "{frame}");
            heard = true;
            break;
        }
    }
    assert!(
        heard,
        "a socket hears events again after the database restarted"
    );

    let answers = answers.borrow();
    let failed: Vec<&Answer> = answers.iter().filter(|a| a.status != 201).collect();
    let slowest = answers.iter().map(|a| a.took).max().unwrap();
    println!(
        "outage: {} requests, {acknowledged} acknowledged, {} answered 503 (slowest answer {slowest:?}); \
         stopping the cluster took {:?}; ready again {recovered:?} after it was back",
        answers.len(),
        failed.len(),
        stopped - down,
    );
    for answer in &failed {
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.code.as_deref(), Some("unavailable"), "{answer:?}");
    }
    assert!(!failed.is_empty(), "the outage was noticed");
    // A request waits at most the pool's timeout, for a turn and a connection
    // together; a second is left for the rest of the request on a loaded machine.
    let bound = POOL_TIMEOUT + Duration::from_secs(1);
    assert!(
        slowest < bound,
        "a request took {slowest:?}, over {bound:?}"
    );
    // After the recovery, writes succeed again.
    let after = answers
        .iter()
        .filter(|a| a.sent > up + recovered)
        .collect::<Vec<_>>();
    assert!(
        after.iter().any(|a| a.status == 201),
        "no write succeeded after the recovery"
    );
    assert!(after.iter().all(|a| a.status == 201), "{after:?}");
    // Every acknowledged message, and its reply, is stored.
    let stored = db.count("SELECT COUNT(*) AS n FROM messages WHERE text = 'still there?'");
    assert!(
        stored >= acknowledged,
        "{stored} stored, {acknowledged} acknowledged"
    );

    drop(cluster);
}
