//! One keep-alive HTTP/1.1 connection to the server, and the calls the subcommands
//! share.
//!
//! Each [`Conn`] is an awc client whose pool holds at most one connection: a benchmark
//! of "32 connections" must open 32 TCP connections, no more (awc's default pool
//! opens up to 100 when requests overlap) and no fewer (one shared client would
//! multiplex the simulated users onto whatever its pool holds). Requests carry the
//! user's session cookie by hand; there is no cookie jar, since one connection acts
//! as many users in turn. No `Origin` header is sent: the server's CSRF check refuses
//! foreign origins, and a client that is not a browser sends none (as bench/seed.py).

use std::time::Duration;

use awc::http::Method;
use awc::http::header::{self, HeaderMap};

use crate::Result;

/// The most a response body may hold: the seed's whole list of a long history runs to
/// megabytes.
const BODY_LIMIT: usize = 256 << 20;

/// How long an idle pooled connection is kept: longer than any pause of a run, so that
/// a connection opened once serves the whole run (the server keeps it 75 s).
const KEEP_ALIVE: Duration = Duration::from_secs(3600);

/// One keep-alive connection to the server at `base` (e.g. `http://127.0.0.1:5000`).
/// Not `Clone`: a clone would share the connection.
pub(crate) struct Conn {
    client: awc::Client,
    base: String,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A response read to its end.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Conn {
    /// A client with a pool of one connection, opened on first use. `timeout` bounds
    /// the wait for a response's head (awc's default, 5 s, is short under load).
    pub(crate) fn new(base: &str, timeout: Duration) -> Self {
        let connector = awc::Connector::new()
            .limit(1)
            .conn_keep_alive(KEEP_ALIVE)
            .conn_lifetime(KEEP_ALIVE);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(timeout)
            .disable_redirects()
            .finish();
        Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// A request for `path` (starting with `/`), with the session `cookie` if given.
    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
    ) -> awc::ClientRequest {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match cookie {
            Some(cookie) => request.insert_header((header::COOKIE, cookie)),
            None => request,
        }
    }

    /// Sends a request with an optional JSON body and reads the whole answer. Only
    /// transport failures (connect, timeout, a broken response) are errors; any status
    /// is an [`Answer`].
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        cookie: Option<&str>,
        json: Option<&serde_json::Value>,
    ) -> Result<Answer> {
        let request = self.request(method, path, cookie);
        let mut response = match json {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        }
        .map_err(|error| format!("{path}: {error}"))?;
        let body = response
            .body()
            .limit(BODY_LIMIT)
            .await
            .map_err(|error| format!("{path}: reading the body: {error}"))?;
        Ok(Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: body.to_vec(),
        })
    }

    /// GETs `path`, with the session `cookie` if given, which must answer 200: otherwise
    /// an error naming the request, the status and the start of the body.
    pub(crate) async fn get(&self, path: &str, cookie: Option<&str>) -> Result<Answer> {
        let answer = self.call(Method::GET, path, cookie, None).await?;
        check(answer, &format!("GET {path}"), &[200])
    }

    /// POSTs `json` to `path` as the user of `cookie`, which must answer 201 (created):
    /// otherwise an error as [`get`](Self::get)'s.
    pub(crate) async fn post(
        &self,
        path: &str,
        cookie: &str,
        json: &serde_json::Value,
    ) -> Result<Answer> {
        let answer = self
            .call(Method::POST, path, Some(cookie), Some(json))
            .await?;
        check(answer, &format!("POST {path}"), &[201])
    }

    /// GETs `path` as the user of `cookie`, as [`get`](Self::get); the body parsed as
    /// JSON.
    pub(crate) async fn get_json(&self, path: &str, cookie: &str) -> Result<serde_json::Value> {
        let answer = self.get(path, Some(cookie)).await?;
        parse_json(path, &answer)
    }

    /// Signs `username` up (201).
    pub(crate) async fn sign_up(&self, username: &str, password: &str) -> Result<()> {
        self.password_call("/api/signup", username, password, 201)
            .await
            .map(drop)
    }

    /// Logs `username` in; the session cookie as a `Cookie` header value (the
    /// `name=value` pairs of every `Set-Cookie`).
    pub(crate) async fn log_in(&self, username: &str, password: &str) -> Result<String> {
        let answer = self
            .password_call("/api/login", username, password, 200)
            .await?;
        let pairs: Vec<&str> = answer
            .headers
            .get_all(header::SET_COOKIE)
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| value.split(';').next())
            .map(str::trim)
            .collect();
        if pairs.is_empty() {
            return Err(format!("POST /api/login of {username}: 200 but no Set-Cookie").into());
        }
        Ok(pairs.join("; "))
    }

    /// A signup or login, which must answer `expected`. The server hashes passwords on
    /// a bounded queue and answers 503 with `Retry-After` when it is full (many
    /// signups at once, at the default `auth.hash_queue_per_thread`): wait and retry,
    /// for up to a minute.
    async fn password_call(
        &self,
        path: &str,
        username: &str,
        password: &str,
        expected: u16,
    ) -> Result<Answer> {
        let body = serde_json::json!({ "username": username, "password": password });
        for _ in 0..60 {
            let answer = self.call(Method::POST, path, None, Some(&body)).await?;
            if answer.status != 503 {
                return check(answer, &format!("POST {path} of {username}"), &[expected]);
            }
            let wait = answer
                .headers
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok()?.parse().ok())
                .unwrap_or(1);
            actix_rt::time::sleep(Duration::from_secs(wait)).await;
        }
        Err(format!("POST {path} of {username}: still 503 after a minute").into())
    }

    /// Creates a conversation named `name`; its id.
    pub(crate) async fn new_conversation(&self, cookie: &str, name: &str) -> Result<i64> {
        let path = "/api/conversations";
        let body = serde_json::json!({ "name": name });
        let answer = self.post(path, cookie, &body).await?;
        let created = parse_json(path, &answer)?;
        created["id"]
            .as_i64()
            .ok_or_else(|| format!("POST {path}: no id in {created}").into())
    }
}

/// `answer` if its status is one of `expected`; otherwise an error naming the request
/// (`what`), the status and the start of the body.
fn check(answer: Answer, what: &str, expected: &[u16]) -> Result<Answer> {
    if expected.contains(&answer.status) {
        Ok(answer)
    } else {
        let start =
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(300)]).into_owned();
        Err(format!("{what}: HTTP {} {start}", answer.status).into())
    }
}

/// The body of `answer`, the response to `path`, parsed as JSON.
fn parse_json(path: &str, answer: &Answer) -> Result<serde_json::Value> {
    serde_json::from_slice(&answer.body).map_err(|error| format!("{path}: {error}").into())
}

/// Texts of 60-100 characters, as people write them, so that stored messages and
/// replies weigh what real ones would: one a line, the file bench/seed.py reads too.
const TEXTS: &str = include_str!("../../texts.txt");

/// The `n`th message text: one of [`TEXTS`], numbered so that no two are the same.
pub(crate) fn text(n: usize) -> String {
    let count = TEXTS.lines().count();
    let text = TEXTS.lines().nth(n % count).unwrap_or_default();
    format!("{text} (#{n})")
}

/// The body of a message POST with the `n`th text.
pub(crate) fn message_body(n: usize) -> serde_json::Value {
    serde_json::json!({ "text": text(n) })
}

/// `raw` percent-encoded for a query string (cursors are opaque).
pub(crate) fn encode_query(raw: &str) -> String {
    let mut encoded = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
