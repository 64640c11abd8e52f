//! `loadgen seed`: users with conversations and messages, made through the public API
//! as a client would, and the file the other subcommands read them from.
//!
//! Each user is signed up, logged in (its session cookie kept), and given
//! `--conversations` conversations of `--messages` messages each; every message POST
//! stores the user's message and the bot's reply, so 20 messages are 10 POSTs. Users
//! are seeded `--concurrency` at a time, each worker on its own connection. The server
//! should run with rate limits off, a low `auth.bcrypt_cost` and a deep hashing queue
//! (`auth.hash_queue_per_thread`), or the signups and logins are refused or slow.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{self, Conn};
use crate::args::Args;
use crate::{Result, stats};

/// The password of every seeded user.
pub(crate) const PASSWORD: &str = "correct horse";

/// A seeded user, as the users file lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct User {
    pub(crate) username: String,
    /// The `Cookie` header value of its session.
    pub(crate) cookie: String,
    /// Its conversations' ids, in the order they were made.
    pub(crate) conversations: Vec<i64>,
}

/// What one seeding run is asked for.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) users: usize,
    pub(crate) conversations: usize,
    /// Message POSTs per conversation (each stores two messages).
    pub(crate) posts_per_conversation: usize,
    /// Usernames are the prefix and the user's number, four digits or more.
    pub(crate) prefix: String,
}

pub(crate) fn run(mut args: Args) -> Result<serde_json::Value> {
    let url = args.required("url")?;
    let out = args.required("out")?;
    let messages: usize = args.parsed("messages", 20)?;
    if messages % 2 != 0 {
        return Err("--messages must be even: each POST stores two".into());
    }
    let plan = Plan {
        users: args.parsed("users", 1000)?,
        conversations: args.parsed("conversations", 20)?,
        posts_per_conversation: messages / 2,
        prefix: args.value("prefix")?.unwrap_or_else(|| "u".to_owned()),
    };
    let concurrency: usize = args.parsed("concurrency", 32)?;
    let timeout = Duration::from_secs(args.parsed("timeout", 60)?);
    args.finish()?;

    let started = Instant::now();
    let users = crate::block_on(seed(&url, &plan, concurrency.max(1), timeout))?;
    let seconds = started.elapsed().as_secs_f64();
    crate::write_json(&out, &users)?;

    let posts = plan.users * plan.conversations * plan.posts_per_conversation;
    let requests = plan.users * (2 + plan.conversations) + posts;
    Ok(json!({
        "users": plan.users,
        "conversations": plan.users * plan.conversations,
        "message_posts": posts,
        "messages_stored": posts * 2,
        "requests": requests,
        "seconds": stats::round(seconds),
        "requests_per_s": stats::round(requests as f64 / seconds),
        "out": out,
    }))
}

/// Seeds every user of `plan`, `concurrency` workers taking the next user in turn.
pub(crate) async fn seed(
    url: &str,
    plan: &Plan,
    concurrency: usize,
    timeout: Duration,
) -> Result<Vec<User>> {
    let next = Cell::new(0);
    let done = Cell::new(0);
    let seeded: RefCell<Vec<Option<User>>> = RefCell::new(vec![None; plan.users]);
    let report_every = (plan.users / 10).max(1);
    let started = Instant::now();
    let (next, done, seeded_ref) = (&next, &done, &seeded);
    let worker = move |_| async move {
        let conn = Conn::new(url, timeout);
        loop {
            let index = next.get();
            if index >= plan.users {
                return Ok::<(), crate::Error>(());
            }
            next.set(index + 1);
            let user = seed_user(&conn, plan, index).await?;
            if let Some(slot) = seeded_ref.borrow_mut().get_mut(index) {
                *slot = Some(user);
            }
            done.set(done.get() + 1);
            if done.get() % report_every == 0 {
                eprintln!(
                    "  seed: {}/{} users, {:.0} s",
                    done.get(),
                    plan.users,
                    started.elapsed().as_secs_f64()
                );
            }
        }
    };
    futures_util::future::try_join_all((0..concurrency.min(plan.users)).map(worker)).await?;
    Ok(seeded.into_inner().into_iter().flatten().collect())
}

/// Signs up and logs in user `index`, then makes its conversations and messages.
async fn seed_user(conn: &Conn, plan: &Plan, index: usize) -> Result<User> {
    let username = format!("{}{index:04}", plan.prefix);
    conn.sign_up(&username, PASSWORD).await?;
    let cookie = conn.log_in(&username, PASSWORD).await?;
    let mut conversations = Vec::with_capacity(plan.conversations);
    for c in 0..plan.conversations {
        let id = conn
            .new_conversation(&cookie, &format!("Conversation {} of {username}", c + 1))
            .await?;
        for m in 0..plan.posts_per_conversation {
            let n = (index * plan.conversations + c) * plan.posts_per_conversation + m;
            let path = format!("/api/conversations/{id}/messages");
            let body = api::message_body(n);
            conn.post(&path, &cookie, &body).await?;
        }
        conversations.push(id);
    }
    Ok(User {
        username,
        cookie,
        conversations,
    })
}
