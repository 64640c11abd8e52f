//! Replies from a model: the `openai` provider against a scripted OpenAI-compatible
//! server. What the provider receives (model, stream, limits, the system prompt and
//! the history), and what is stored and answered for each of its faults (SPEC §9).

use chatbot_openai::testing::{FakeProvider, Reply, Step};
use serde_json::{Value, json};

use crate::support::{Client, Server, api_tests, on_fake_model};

/// A server whose bot is `provider`, with `overrides` on top.
async fn with_model(
    db: &chatbot_persistence::testing::TestDb,
    provider: &FakeProvider,
    overrides: &[(&str, &str)],
) -> Server {
    let mut all = vec![
        ("CHATBOT__BOT__MAX_TOKENS", "77"),
        ("CHATBOT__BOT__SYSTEM_PROMPT", "Be brief."),
        ("CHATBOT__BOT__FIRST_TOKEN_TIMEOUT_SECONDS", "1"),
        ("CHATBOT__BOT__IDLE_TIMEOUT_SECONDS", "1"),
    ];
    all.extend_from_slice(overrides);
    Server::start(on_fake_model(db, &provider.base_url(), &all)).await
}

/// Alice, logged in, with a conversation of her own (named, so no title is asked for).
async fn alice_with_a_conversation(server: &Server) -> (Client, i64) {
    let mut alice = server.client();
    alice.sign_up_and_log_in("alice").await;
    let id = alice.create_conversation("chat").await;
    (alice, id)
}

async fn send(client: &mut Client, conversation: i64, text: &str) -> crate::support::Reply {
    client
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            json!({"text": text}),
        )
        .await
}

/// The conversation's stored messages as `(sender, text, status)`.
async fn stored(client: &mut Client, conversation: i64) -> Vec<(String, String, String)> {
    let page = client
        .get(&format!("/api/conversations/{conversation}/messages"))
        .await;
    page.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let text = |key: &str| m[key].as_str().unwrap().to_owned();
            (text("sender"), text("text"), text("status"))
        })
        .collect()
}

fn said(sender: &str, text: &str, status: &str) -> (String, String, String) {
    (sender.to_owned(), text.to_owned(), status.to_owned())
}

fn roles(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(role: &str, content: &str) -> (String, String) {
    (role.to_owned(), content.to_owned())
}

api_tests! {
    async fn the_model_sees_the_system_prompt_and_the_history_and_its_reply_is_stored(db) {
        let provider = FakeProvider::start([
            Reply::pieces(["Hello ", "Ada", "!"]),
            Reply::pieces(["Your name ", "is Ada."]),
        ])
        .await;
        let server = with_model(&db, &provider, &[]).await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;

        let first = send(&mut alice, id, "My name is Ada.").await;
        assert_eq!(first.status, 201, "{first:?}");
        assert_eq!(first.body[1]["text"], "Hello Ada!");
        assert_eq!(first.body[1]["status"], "complete");
        let second = send(&mut alice, id, "What is my name?").await;
        assert_eq!(second.body[1]["text"], "Your name is Ada.");

        let requests = provider.requests();
        assert_eq!(requests.len(), 2, "no title for a named conversation");
        let asked = &requests[1];
        assert_eq!(asked.path, "/v1/chat/completions");
        assert_eq!(asked.body["model"], "fake-model");
        assert_eq!(asked.body["stream"], true);
        assert_eq!(asked.body["max_tokens"], 77);
        assert_eq!(asked.header("authorization"), None, "no key, no bearer");
        assert_eq!(
            roles(&asked.body),
            [
                pair("system", "Be brief."),
                pair("user", "My name is Ada."),
                pair("assistant", "Hello Ada!"),
                pair("user", "What is my name?"),
            ]
        );
        assert_eq!(
            stored(&mut alice, id).await,
            [
                said("user", "My name is Ada.", "complete"),
                said("bot", "Hello Ada!", "complete"),
                said("user", "What is my name?", "complete"),
                said("bot", "Your name is Ada.", "complete"),
            ]
        );
    }

    async fn the_history_is_cut_to_the_latest_messages_and_the_key_is_sent_as_a_bearer(db) {
        let provider = FakeProvider::start([
            Reply::pieces(["one"]),
            Reply::pieces(["two"]),
            Reply::pieces(["three"]),
        ])
        .await;
        let server = with_model(
            &db,
            &provider,
            &[("CHATBOT__BOT__HISTORY_MESSAGES", "2"), ("OPENAI_API_KEY", "sk-test-secret")],
        )
        .await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        for text in ["a", "b", "c"] {
            assert_eq!(send(&mut alice, id, text).await.status, 201);
        }
        let last = &provider.requests()[2];
        assert_eq!(last.header("authorization"), Some("Bearer sk-test-secret"));
        assert_eq!(
            roles(&last.body),
            [pair("system", "Be brief."), pair("user", "b"), pair("assistant", "two"), pair("user", "c")]
        );
    }

    async fn the_first_reply_gets_a_title_from_the_model(db) {
        let provider = FakeProvider::start([
            Reply::pieces(["Fjords, mostly."]),
            Reply::completion("\"Hiking in Norway\""),
        ])
        .await;
        let server = with_model(&db, &provider, &[]).await;
        let mut alice = server.client();
        alice.sign_up_and_log_in("alice").await;
        let id = alice.post("/api/conversations", json!({})).await.body["id"].as_i64().unwrap();
        assert_eq!(send(&mut alice, id, "Where should I hike?").await.status, 201);
        let listed = alice.get("/api/conversations").await.body;
        assert_eq!(listed[0]["name"], "Hiking in Norway");
        assert_eq!(provider.requests().len(), 2);
    }

    async fn a_provider_refusing_before_any_text_keeps_the_users_message_and_answers_502(db) {
        for refusal in [Reply::status(401), Reply::status(500), Reply::hang(), Reply::close()] {
            let provider = FakeProvider::start([refusal.clone()]).await;
            let server = with_model(&db, &provider, &[]).await;
            let mut alice = server.client();
            let name = format!("u{}", provider.base_url().len() + rand_suffix());
            alice.sign_up_and_log_in(&name).await;
            let id = alice.create_conversation("chat").await;
            let answer = send(&mut alice, id, "hello").await;
            answer.assert_error(502, "bot_unavailable");
            assert!(
                !answer.body.to_string().contains(FakeProvider::ERROR_BODY),
                "the provider's body stays out of the answer: {answer:?}"
            );
            assert_eq!(
                stored(&mut alice, id).await,
                [said("user", "hello", "complete")],
                "{refusal:?}"
            );
            server.stop().await;
        }
    }

    async fn a_429_is_retried_after_its_retry_after(db) {
        let provider = FakeProvider::start([
            Reply::status(429).header("Retry-After", "0"),
            Reply::status(503).header("Retry-After", "0"),
            Reply::pieces(["at last"]),
        ])
        .await;
        let server = with_model(&db, &provider, &[]).await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let answer = send(&mut alice, id, "hello").await;
        assert_eq!(answer.status, 201, "{answer:?}");
        assert_eq!(answer.body[1]["text"], "at last");
        assert_eq!(provider.requests().len(), 3);
    }

    async fn a_reply_breaking_off_is_stored_as_failed_with_what_came(db) {
        let partial = |end: Step| {
            Reply::sse([Step::role(), Step::content("Half "), Step::content("a reply"), end])
        };
        let faults = [
            partial(Step::Hang),
            partial(Step::Reset),
            partial(Step::raw("data: {not json\n\n")),
            partial(Step::error()),
        ];
        for (n, fault) in faults.into_iter().enumerate() {
            let provider = FakeProvider::start([fault]).await;
            let server = with_model(&db, &provider, &[]).await;
            let mut alice = server.client();
            alice.sign_up_and_log_in(&format!("user{n}")).await;
            let id = alice.create_conversation("chat").await;
            send(&mut alice, id, "hello").await.assert_error(502, "bot_unavailable");
            assert_eq!(
                stored(&mut alice, id).await,
                [said("user", "hello", "complete"), said("bot", "Half a reply", "failed")],
                "fault {n}"
            );
            let listed = alice.get("/api/conversations").await.body;
            assert_eq!(listed[0]["messages"][1]["status"], "failed", "the list shows it too");
            server.stop().await;
        }
    }

    async fn keep_alives_a_usage_chunk_and_a_character_split_across_reads_make_one_reply(db) {
        let provider = FakeProvider::start([Reply::sse([
            Step::keep_alive(),
            Step::role(),
            Step::content("Gr"),
            // "ü" is two bytes: the first ends one write, the second starts the next.
            Step::raw(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xc3".to_vec()),
            Step::pause(20),
            Step::raw(b"\xbc\xc3\x9fe\"},\"finish_reason\":null}]}\r\n\r\n".to_vec()),
            Step::keep_alive(),
            Step::finish("stop"),
            Step::usage(),
            Step::done(),
        ])])
        .await;
        let server = with_model(&db, &provider, &[]).await;
        let (mut alice, id) = alice_with_a_conversation(&server).await;
        let answer = send(&mut alice, id, "hello").await;
        assert_eq!(answer.status, 201, "{answer:?}");
        assert_eq!(answer.body[1]["text"], "Grüße");
    }
}

/// A different number on each call, so that several users of one test differ.
fn rand_suffix() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
