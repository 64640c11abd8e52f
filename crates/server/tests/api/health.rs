//! `GET /api/health` and `GET /api/ready`: what probes see while the database
//! answers, and once it stops answering.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chatbot_persistence::testing::TestDb;
use serde_json::json;

use crate::support::{Server, api_tests, settings};

api_tests! {
    async fn health_and_readiness_say_ok_while_the_database_answers(db) {
        let server = Server::start(settings(&db, &[])).await;
        let mut probe = server.client();

        let health = probe.get("/api/health").await;
        assert_eq!(health.status, 200);
        assert_eq!(health.body, json!({"status": "ok"}));
        let ready = probe.get("/api/ready").await;
        assert_eq!(ready.status, 200);
        assert_eq!(ready.body, json!({"status": "ready"}));
        assert!(probe.cookie.is_none(), "probes get no session");
    }
}

/// A TCP relay to PostgreSQL that can be cut, as a network failure would.
struct Relay {
    address: String,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn to(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (is_cut, streams) = (Arc::clone(&cut), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if is_cut.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let server = TcpStream::connect(&upstream).unwrap();
                let mut open = streams.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Self { address, cut, open }
    }

    /// Closes every relayed connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buffer = [0; 16 * 1024];
        while let Ok(read @ 1..) = from.read(&mut buffer) {
            if to.write_all(&buffer[..read]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// `url` with its `host:port` replaced by `address`, and the `host:port` it had.
fn through(url: &str, address: &str) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (credentials, rest) = match rest.split_once('@') {
        Some((credentials, rest)) => (format!("{credentials}@"), rest),
        None => (String::new(), rest),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let upstream = rest[..end].to_owned();
    let upstream = if upstream.contains(':') {
        upstream
    } else {
        format!("{upstream}:5432")
    };
    (
        format!("{scheme}://{credentials}{address}{}", &rest[end..]),
        upstream,
    )
}

#[actix_web::test]
#[cfg_attr(no_postgres_tests, ignore = "PostgreSQL: set TEST_DATABASE_URL to run")]
async fn readiness_is_503_unavailable_while_the_database_is_unreachable() {
    let db = TestDb::postgres();
    let (_, upstream) = through(db.url(), "");
    let relay = Relay::to(upstream);
    let (relayed, _) = through(db.url(), &relay.address);
    let server = Server::start(settings(
        &db,
        &[
            ("DATABASE_URL", relayed.as_str()),
            ("CHATBOT__DATABASE__CONNECT_TIMEOUT_SECONDS", "1"),
        ],
    ))
    .await;
    let mut probe = server.client();
    assert_eq!(probe.get("/api/ready").await.status, 200);

    relay.cut();
    probe
        .get("/api/ready")
        .await
        .assert_error(503, "unavailable");
    let health = probe.get("/api/health").await;
    assert_eq!(health.status, 200, "the process itself still serves");
}
