//! `loadgen count`: every stored message of every user in the users file, counted
//! through the API, so that a run can check that each acknowledged POST is stored.
//!
//! When the server has pages (`GET /api/conversations?limit=1` answers a page object),
//! it walks them: the seed's whole list of a user with a long history is megabytes,
//! and rendering it would raise the server's peak memory, which the benchmarks
//! measure. Without pages (the Flask reference) it reads the seed's whole list.

use std::cell::Cell;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{Conn, encode_query};
use crate::args::Args;
use crate::seed::User;
use crate::{Result, read_users};

/// Items per page: the API's maximum.
const PAGE: usize = 100;

/// Messages of one user, or of all.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    conversations: u64,
    messages: u64,
    user_messages: u64,
    bot_messages: u64,
    /// Bot messages whose `status` is not `complete` (failed, interrupted, streaming).
    incomplete: u64,
}

impl Tally {
    fn add(&mut self, other: Self) {
        self.conversations += other.conversations;
        self.messages += other.messages;
        self.user_messages += other.user_messages;
        self.bot_messages += other.bot_messages;
        self.incomplete += other.incomplete;
    }

    fn message(&mut self, message: &Value) {
        self.messages += 1;
        if message["sender"] == "bot" {
            self.bot_messages += 1;
            // The seed's list (and Flask's) may have no status: complete by contract.
            if message["status"].as_str().is_some_and(|s| s != "complete") {
                self.incomplete += 1;
            }
        } else {
            self.user_messages += 1;
        }
    }
}

pub(crate) fn run(mut args: Args) -> Result<Value> {
    let url = args.required("url")?;
    let users = read_users(&args.required("users")?)?;
    let concurrency: usize = args.parsed("concurrency", 32)?;
    let timeout = Duration::from_secs(args.parsed("timeout", 120)?);
    args.finish()?;
    let (tally, paged) = crate::block_on(count_all(&url, &users, concurrency.max(1), timeout))?;
    Ok(json!({
        "users": users.len(),
        "paged": paged,
        "conversations": tally.conversations,
        "messages": tally.messages,
        "user_messages": tally.user_messages,
        "bot_messages": tally.bot_messages,
        "bot_messages_not_complete": tally.incomplete,
    }))
}

async fn count_all(
    url: &str,
    users: &[User],
    concurrency: usize,
    timeout: Duration,
) -> Result<(Tally, bool)> {
    let probe = Conn::new(url, timeout);
    let first = probe
        .get_json("/api/conversations?limit=1", &users[0].cookie)
        .await?;
    let paged = first.get("conversations").is_some();
    let next = Cell::new(0);
    let next = &next;
    let worker = move |_| async move {
        let conn = Conn::new(url, timeout);
        let mut tally = Tally::default();
        loop {
            let index = next.get();
            let Some(user) = users.get(index) else {
                return Ok::<Tally, crate::Error>(tally);
            };
            next.set(index + 1);
            tally.add(if paged {
                count_pages(&conn, user).await?
            } else {
                count_list(&conn, user).await?
            });
        }
    };
    let tallies =
        futures_util::future::try_join_all((0..concurrency.min(users.len())).map(worker)).await?;
    let mut total = Tally::default();
    for tally in tallies {
        total.add(tally);
    }
    Ok((total, paged))
}

/// One user's messages from the seed's whole list.
async fn count_list(conn: &Conn, user: &User) -> Result<Tally> {
    let list = conn.get_json("/api/conversations", &user.cookie).await?;
    let conversations = list
        .as_array()
        .ok_or_else(|| format!("GET /api/conversations of {}: not a list", user.username))?;
    let mut tally = Tally::default();
    for conversation in conversations {
        tally.conversations += 1;
        for message in conversation["messages"].as_array().into_iter().flatten() {
            tally.message(message);
        }
    }
    Ok(tally)
}

/// One user's messages, page by page: its conversations, then each one's messages.
async fn count_pages(conn: &Conn, user: &User) -> Result<Tally> {
    let mut tally = Tally::default();
    let mut ids = Vec::new();
    let mut path = format!("/api/conversations?limit={PAGE}");
    loop {
        let page = conn.get_json(&path, &user.cookie).await?;
        for conversation in page["conversations"].as_array().into_iter().flatten() {
            ids.extend(conversation["id"].as_i64());
        }
        match page["next"].as_str() {
            Some(cursor) => {
                path = format!(
                    "/api/conversations?limit={PAGE}&before={}",
                    encode_query(cursor)
                );
            }
            None => break,
        }
    }
    for id in ids {
        tally.conversations += 1;
        let first = format!("/api/conversations/{id}/messages?limit={PAGE}");
        let mut path = first.clone();
        loop {
            let page = conn.get_json(&path, &user.cookie).await?;
            for message in page["messages"].as_array().into_iter().flatten() {
                tally.message(message);
            }
            match page["next"].as_i64() {
                Some(before) => path = format!("{first}&before={before}"),
                None => break,
            }
        }
    }
    Ok(tally)
}
