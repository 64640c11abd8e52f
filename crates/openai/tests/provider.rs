//! `OpenAiBot` against the fake provider: what it sends, what it makes of each answer
//! and fault, and that dropping a reply reaches the provider.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chatbot_domain::ports::Bot;
use chatbot_domain::{
    BotError, ConversationId, Message, MessageId, MessageStatus, ReplyContext, ReplyStream, Sender,
    Timestamp,
};
use chatbot_openai::testing::{FakeProvider, Reply, Step};
use chatbot_openai::{OpenAiBot, OpenAiConfig};
use serde_json::json;
use tokio::time::Instant;

const SYSTEM_PROMPT: &str = "You are a helpful assistant.";
const KEY: &str = "sk-test-0123456789";

fn message(id: i64, sender: Sender, text: &str) -> Message {
    Message {
        id: MessageId::new(id),
        conversation_id: ConversationId::new(1),
        sender,
        text: text.to_owned(),
        status: MessageStatus::Complete,
        created_at: Timestamp::from_unix_millis(1_700_000_000_000 + id).unwrap(),
    }
}

/// A conversation of two exchanges, and a new question.
fn context() -> ReplyContext {
    ReplyContext {
        system_prompt: SYSTEM_PROMPT.to_owned(),
        history: vec![
            message(1, Sender::User, "Hi, I'm Ada."),
            message(2, Sender::Bot, "Hello Ada!"),
            message(3, Sender::User, "I like owls."),
            message(4, Sender::Bot, "Owls are great."),
        ],
        message: message(5, Sender::User, "What is my name?"),
    }
}

/// The fake's settings with short timeouts, so faults show quickly.
fn config(provider: &FakeProvider) -> OpenAiConfig {
    OpenAiConfig {
        connect_timeout: Duration::from_millis(500),
        first_token_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(300),
        max_tokens: 256,
        ..OpenAiConfig::new(provider.base_url(), "fake-model")
    }
}

fn bot(provider: &FakeProvider) -> OpenAiBot {
    OpenAiBot::new(config(provider)).unwrap()
}

async fn next(stream: &mut ReplyStream) -> Option<Result<String, BotError>> {
    std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await
}

/// Everything the stream yields: the pieces, then how it ended (`None`: complete).
async fn collect(mut stream: ReplyStream) -> (Vec<String>, Option<BotError>) {
    let mut pieces = Vec::new();
    while let Some(item) = next(&mut stream).await {
        match item {
            Ok(piece) => pieces.push(piece),
            Err(error) => {
                assert!(next(&mut stream).await.is_none(), "nothing after an error");
                return (pieces, Some(error));
            }
        }
    }
    (pieces, None)
}

/// The reply to [`context`] from `provider`, collected.
async fn reply(provider: &FakeProvider) -> (Vec<String>, Option<BotError>) {
    let stream = bot(provider).reply(context()).await.unwrap();
    collect(stream).await
}

/// `error`, its `Debug` and its whole source chain, as text.
fn everything_about(error: &BotError) -> String {
    let mut text = format!("{error:?}");
    let mut cause: Option<&dyn std::error::Error> = Some(error);
    while let Some(error) = cause {
        text.push_str(&format!(" / {error}"));
        cause = error.source();
    }
    text
}

fn assert_broken(error: Option<BotError>) {
    match error {
        Some(error @ BotError::Broken(_)) => {
            let text = everything_about(&error);
            assert!(!text.contains(FakeProvider::ERROR_BODY), "{text}");
        }
        other => panic!("expected a broken stream, got {other:?}"),
    }
}

#[tokio::test]
async fn streams_the_pieces_and_sends_the_conversation_in_order() {
    let provider = FakeProvider::start([Reply::pieces(["Your name", " is Ada", "."])]).await;

    let (pieces, error) = reply(&provider).await;

    assert_eq!(pieces, ["Your name", " is Ada", "."]);
    assert!(error.is_none(), "{error:?}");
    let requests = provider.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.body["model"], "fake-model");
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["max_tokens"], 256);
    assert!(request.body.get("temperature").is_none());
    let messages = request.messages();
    let expected = [
        ("system", SYSTEM_PROMPT),
        ("user", "Hi, I'm Ada."),
        ("assistant", "Hello Ada!"),
        ("user", "I like owls."),
        ("assistant", "Owls are great."),
        ("user", "What is my name?"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(role, text)| ((*role).to_owned(), (*text).to_owned()))
        .collect();
    assert_eq!(messages, expected);
}

#[tokio::test]
async fn the_key_is_a_bearer_token_and_the_temperature_is_sent_when_set() {
    let provider = FakeProvider::start([Reply::pieces(["Hi"])]).await;
    let bot = OpenAiBot::new(OpenAiConfig {
        api_key: Some(KEY.to_owned()),
        temperature: Some(0.25),
        ..config(&provider)
    })
    .unwrap();

    let (pieces, error) = collect(bot.reply(context()).await.unwrap()).await;

    assert_eq!(pieces, ["Hi"]);
    assert!(error.is_none());
    let request = &provider.requests()[0];
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(request.body["temperature"], json!(0.25));
    assert!(!format!("{bot:?}").contains(KEY), "{bot:?}");
}

#[tokio::test]
async fn an_empty_key_sends_no_authorization() {
    let provider = FakeProvider::start([Reply::pieces(["Hi"])]).await;
    let bot = OpenAiBot::new(OpenAiConfig {
        api_key: Some(String::new()),
        ..config(&provider)
    })
    .unwrap();

    collect(bot.reply(context()).await.unwrap()).await;

    assert_eq!(provider.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn history_messages_without_text_are_left_out() {
    let provider = FakeProvider::start([Reply::pieces(["Hi"])]).await;
    let mut context = context();
    context.history = vec![
        message(1, Sender::User, "Tell me a story."),
        message(2, Sender::Bot, ""),
    ];

    collect(bot(&provider).reply(context).await.unwrap()).await;

    let roles: Vec<String> = provider.requests()[0]
        .messages()
        .into_iter()
        .map(|(role, _)| role)
        .collect();
    assert_eq!(roles, ["system", "user", "user"]);
}

#[tokio::test]
async fn keep_alives_crlf_and_data_without_a_space_are_understood() {
    let chunk = |text: &str| json!({"choices": [{"index": 0, "delta": {"content": text}}]});
    let provider = FakeProvider::start([Reply::sse([
        Step::keep_alive(),
        Step::raw(format!(": ping\r\n\r\ndata:{}\r\n\r\n", chunk("Hel"))),
        Step::keep_alive(),
        Step::raw(format!("data: {}\r\n\r\n", chunk("lo"))),
        Step::raw("data:[DONE]\r\n\r\n"),
    ])])
    .await;

    let (pieces, error) = reply(&provider).await;

    assert_eq!(pieces, ["Hel", "lo"]);
    assert!(error.is_none(), "{error:?}");
}

#[tokio::test]
async fn a_utf8_character_split_across_writes_comes_out_whole() {
    let event = format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"content": "héllo 🦀"}}]})
    )
    .into_bytes();
    // Inside the two-byte é, then inside the four-byte crab.
    let e_acute = event.windows(2).position(|w| w == "é".as_bytes()).unwrap() + 1;
    let crab = event.windows(4).position(|w| w == "🦀".as_bytes()).unwrap() + 2;
    let provider = FakeProvider::start([Reply::sse([
        Step::raw(&event[..e_acute]),
        Step::pause(20),
        Step::raw(&event[e_acute..crab]),
        Step::pause(20),
        Step::raw(&event[crab..]),
        Step::finish("stop"),
    ])])
    .await;

    let (pieces, error) = reply(&provider).await;

    assert_eq!(pieces, ["héllo 🦀"]);
    assert!(error.is_none(), "{error:?}");
}

#[tokio::test]
async fn role_chunks_empty_content_and_usage_chunks_are_skipped() {
    let provider = FakeProvider::start([Reply::sse([
        Step::role(),
        Step::content(""),
        Step::data(&json!({"choices": [{"index": 0, "delta": {"content": null}}]})),
        Step::content("Hello"),
        Step::usage(),
        Step::data(&json!({"choices": null, "usage": {"total_tokens": 1}})),
        Step::content("!"),
        Step::done(),
    ])])
    .await;

    let (pieces, error) = reply(&provider).await;

    assert_eq!(pieces, ["Hello", "!"]);
    assert!(error.is_none(), "{error:?}");
}

#[tokio::test]
async fn a_finish_reason_completes_the_reply_without_waiting_for_done() {
    // The provider would hang after the finish reason: the reply must not wait for it.
    let provider = FakeProvider::start([Reply::sse([
        Step::content("Done"),
        Step::data(&json!({"choices": [
            {"index": 0, "delta": {"content": " here"}, "finish_reason": "length"}
        ]})),
        Step::Hang,
    ])])
    .await;

    let (pieces, error) = reply(&provider).await;

    // Waiting for more would have ended in a timeout.
    assert_eq!(pieces, ["Done", " here"]);
    assert!(error.is_none(), "{error:?}");
}

#[tokio::test]
async fn done_completes_the_reply_without_a_finish_reason() {
    let provider = FakeProvider::start([Reply::sse([
        Step::content("a"),
        Step::content("b"),
        Step::done(),
    ])])
    .await;

    let (pieces, error) = reply(&provider).await;

    assert_eq!(pieces, ["a", "b"]);
    assert!(error.is_none(), "{error:?}");
}

#[tokio::test]
async fn a_stream_ending_without_done_or_finish_reason_is_broken() {
    let provider = FakeProvider::start([Reply::sse([Step::content("Half a")])]).await;

    let (pieces, error) = reply(&provider).await;

    assert_eq!(pieces, ["Half a"]);
    assert_broken(error);
}

#[tokio::test]
async fn a_reset_mid_stream_is_broken() {
    let provider = FakeProvider::start([Reply::sse([
        Step::content("Half"),
        Step::raw("data: {\"choi"),
        Step::Reset,
    ])])
    .await;

    let (pieces, error) = reply(&provider).await;

    assert_eq!(pieces, ["Half"]);
    assert_broken(error);
}

#[tokio::test]
async fn a_chunk_that_is_not_json_is_broken() {
    let provider = FakeProvider::start([Reply::sse([
        Step::content("Half"),
        Step::raw("data: {\"choices\": [{\"delta\": \n\n"),
        Step::content("never seen"),
        Step::done(),
    ])])
    .await;

    let (pieces, error) = reply(&provider).await;

    assert_eq!(pieces, ["Half"]);
    assert_broken(error);
}

#[tokio::test]
async fn an_error_object_in_the_stream_is_broken_and_not_repeated() {
    let provider = FakeProvider::start([
        Reply::sse([Step::content("Half"), Step::error()]),
        // vLLM's older shape.
        Reply::sse([Step::data(&json!({
            "object": "error",
            "message": FakeProvider::ERROR_BODY,
            "code": 500,
        }))]),
    ])
    .await;

    let (pieces, error) = reply(&provider).await;
    assert_eq!(pieces, ["Half"]);
    assert_broken(error);

    let (pieces, error) = reply(&provider).await;
    assert!(pieces.is_empty());
    assert_broken(error);
}

#[tokio::test]
async fn an_error_status_is_a_status_error_without_the_body_or_a_retry() {
    for status in [400, 401, 404, 500] {
        let provider = FakeProvider::start([Reply::status(status), Reply::pieces(["no"])]).await;
        let bot = OpenAiBot::new(OpenAiConfig {
            api_key: Some(KEY.to_owned()),
            ..config(&provider)
        })
        .unwrap();

        let error = bot.reply(context()).await.err().unwrap();

        assert!(
            matches!(error, BotError::Status { status: s } if s == status),
            "{error:?}"
        );
        let text = everything_about(&error);
        assert!(!text.contains(FakeProvider::ERROR_BODY), "{text}");
        assert!(!text.contains(KEY), "{text}");
        assert_eq!(provider.requests().len(), 1, "{status} is not retried");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let provider =
        FakeProvider::start([Reply::json(307, &json!({}))
            .header("Location", "http://127.0.0.1:1/v1/chat/completions")])
        .await;

    let error = bot(&provider).reply(context()).await.err().unwrap();

    assert!(
        matches!(error, BotError::Status { status: 307 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn too_many_requests_is_retried_after_the_time_it_asks() {
    let provider = FakeProvider::start([
        Reply::status(429).header("Retry-After", "1"),
        Reply::pieces(["Hello"]),
    ])
    .await;
    let bot = OpenAiBot::new(OpenAiConfig {
        first_token_timeout: Duration::from_secs(3),
        ..config(&provider)
    })
    .unwrap();
    let started = Instant::now();

    let (pieces, error) = collect(bot.reply(context()).await.unwrap()).await;

    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(pieces, ["Hello"]);
    assert!(error.is_none(), "{error:?}");
    let requests = provider.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn unavailable_is_retried_too_and_without_retry_after_after_a_short_wait() {
    let provider = FakeProvider::start([
        Reply::status(503),
        Reply::status(429).header("Retry-After", "0"),
        Reply::pieces(["Hello"]),
    ])
    .await;
    let bot = OpenAiBot::new(OpenAiConfig {
        first_token_timeout: Duration::from_secs(1),
        ..config(&provider)
    })
    .unwrap();
    let started = Instant::now();

    let (pieces, error) = collect(bot.reply(context()).await.unwrap()).await;

    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");

    assert_eq!(pieces, ["Hello"]);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(provider.requests().len(), 3);
}

#[tokio::test]
async fn a_retry_after_beyond_the_first_token_timeout_gives_up_at_once() {
    let provider = FakeProvider::start([
        Reply::status(429).header("Retry-After", "30"),
        Reply::pieces(["never"]),
    ])
    .await;
    let bot = OpenAiBot::new(OpenAiConfig {
        first_token_timeout: Duration::from_secs(5),
        ..config(&provider)
    })
    .unwrap();
    let started = Instant::now();

    let error = bot.reply(context()).await.err().unwrap();

    assert!(
        matches!(error, BotError::Status { status: 429 }),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no waiting for nothing"
    );
    assert_eq!(provider.requests().len(), 1);
}

#[tokio::test]
async fn a_provider_that_stays_unavailable_fails_within_the_first_token_timeout() {
    let provider = FakeProvider::start((0..10).map(|_| Reply::status(503))).await;
    let bot = OpenAiBot::new(OpenAiConfig {
        first_token_timeout: Duration::from_secs(1),
        ..config(&provider)
    })
    .unwrap();
    let started = Instant::now();

    let error = bot.reply(context()).await.err().unwrap();

    // Retries after 250 ms, then 500 ms more; the next wait (1 s) would be too late.
    assert!(
        matches!(error, BotError::Status { status: 503 }),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!((2..=3).contains(&provider.requests().len()));
}

#[tokio::test]
async fn a_hang_before_the_answer_times_out_and_hangs_up() {
    let provider = FakeProvider::start([Reply::hang()]).await;
    let started = Instant::now();

    let error = bot(&provider).reply(context()).await.err().unwrap();

    assert!(matches!(error, BotError::Timeout), "{error:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(2));
    assert!(provider.wait_for_hang_up(0, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_hang_before_the_first_piece_times_out_and_hangs_up() {
    let provider =
        FakeProvider::start([Reply::sse([Step::role(), Step::keep_alive(), Step::Hang])]).await;
    let started = Instant::now();

    let (pieces, error) = reply(&provider).await;

    assert!(pieces.is_empty());
    assert!(matches!(error, Some(BotError::Timeout)), "{error:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(2));
    assert!(provider.wait_for_hang_up(0, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn the_first_token_timeout_counts_the_retries() {
    let provider = FakeProvider::start([
        Reply::status(429).header("Retry-After", "0.2"),
        Reply::sse([Step::pause(300), Step::content("too late"), Step::done()]),
    ])
    .await;

    let (pieces, error) = reply(&provider).await;

    // With the clock restarted at the retry, the piece would have come in time.
    assert!(pieces.is_empty());
    assert!(matches!(error, Some(BotError::Timeout)), "{error:?}");
}

#[tokio::test]
async fn a_hang_mid_stream_times_out_and_hangs_up() {
    let provider = FakeProvider::start([Reply::sse([Step::content("Half"), Step::Hang])]).await;
    let mut stream = bot(&provider).reply(context()).await.unwrap();
    assert_eq!(next(&mut stream).await.unwrap().unwrap(), "Half");
    let started = Instant::now();

    let error = next(&mut stream).await.unwrap().unwrap_err();

    assert!(matches!(error, BotError::Timeout), "{error:?}");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2));
    assert!(next(&mut stream).await.is_none());
    // The stream let go of the connection at the error, while still held.
    assert!(provider.wait_for_hang_up(0, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn keep_alives_do_not_count_as_progress() {
    let mut steps = vec![Step::content("Half")];
    steps.extend((0..10).flat_map(|_| [Step::pause(100), Step::keep_alive()]));
    steps.push(Step::done());
    let provider = FakeProvider::start([Reply::sse(steps)]).await;

    let (pieces, error) = reply(&provider).await;

    assert_eq!(pieces, ["Half"]);
    assert!(matches!(error, Some(BotError::Timeout)), "{error:?}");
}

#[tokio::test]
async fn a_slow_but_steady_reply_longer_than_every_timeout_completes() {
    let mut steps = Vec::new();
    for word in ["one ", "two ", "three ", "four ", "five ", "six"] {
        steps.extend([Step::pause(100), Step::content(word)]);
    }
    steps.push(Step::done());
    let provider = FakeProvider::start([Reply::sse(steps)]).await;

    let (pieces, error) = reply(&provider).await;

    assert_eq!(pieces.concat(), "one two three four five six");
    assert!(error.is_none(), "{error:?}");
}

#[tokio::test]
async fn dropping_the_stream_closes_the_connection() {
    let provider =
        FakeProvider::start([Reply::sse([Step::content("Once upon"), Step::Hang])]).await;
    let mut stream = bot(&provider).reply(context()).await.unwrap();
    assert_eq!(next(&mut stream).await.unwrap().unwrap(), "Once upon");
    assert!(!provider.hung_up(0));

    drop(stream);

    assert!(provider.wait_for_hang_up(0, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn dropping_the_stream_during_a_pause_closes_the_connection() {
    let provider = FakeProvider::start([Reply::sse([
        Step::content("Once"),
        Step::pause(5_000),
        Step::content(" upon"),
        Step::done(),
    ])])
    .await;
    let mut stream = bot(&provider).reply(context()).await.unwrap();
    assert_eq!(next(&mut stream).await.unwrap().unwrap(), "Once");
    // Waiting for the next piece, then giving up on it.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), next(&mut stream))
            .await
            .is_err()
    );

    drop(stream);

    assert!(provider.wait_for_hang_up(0, Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_completed_reply_leaves_the_connection_for_the_next_request() {
    // Complete at the finish reason; the usage chunk and [DONE] that follow at once are
    // read too, so the body ends and the connection is free again.
    let provider = FakeProvider::start([
        Reply::sse([
            Step::content("one"),
            Step::finish("stop"),
            Step::usage(),
            Step::done(),
        ]),
        Reply::pieces(["two"]),
        Reply::completion("Three"),
    ])
    .await;
    let bot = bot(&provider);

    // The rest of a body is read in the background, after the reply is complete.
    let settle = || tokio::time::sleep(Duration::from_millis(50));
    let (first, _) = collect(bot.reply(context()).await.unwrap()).await;
    settle().await;
    let (second, _) = collect(bot.reply(context()).await.unwrap()).await;
    settle().await;
    let third = bot.title("a", "b").await.unwrap();

    assert_eq!(
        (first, second),
        (vec!["one".to_owned()], vec!["two".to_owned()])
    );
    assert_eq!(third, "Three");
    let connections: Vec<usize> = provider.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [0, 0, 0]);
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_unreachable() {
    // A port nobody listens on: bound, then let go.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let bot = OpenAiBot::new(OpenAiConfig {
        api_key: Some(KEY.to_owned()),
        ..OpenAiConfig::new(format!("http://{address}/v1"), "fake-model")
    })
    .unwrap();

    let error = bot.reply(context()).await.err().unwrap();

    assert!(matches!(error, BotError::Unreachable(_)), "{error:?}");
    assert!(!everything_about(&error).contains(KEY));
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_unreachable() {
    let provider = FakeProvider::start([Reply::close()]).await;

    let error = bot(&provider).reply(context()).await.err().unwrap();

    assert!(matches!(error, BotError::Unreachable(_)), "{error:?}");
}

#[tokio::test]
async fn a_title_is_asked_for_without_streaming_and_tidied() {
    let provider = FakeProvider::start([Reply::completion("  \"Owls and names.\"\n")]).await;
    let bot = OpenAiBot::new(OpenAiConfig {
        api_key: Some(KEY.to_owned()),
        ..config(&provider)
    })
    .unwrap();

    let title = bot.title("I like owls.", "Owls are great.").await.unwrap();

    assert_eq!(title, "Owls and names");
    let request = &provider.requests()[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(request.body["model"], "fake-model");
    assert_eq!(request.body["stream"], false);
    assert!(request.body["max_tokens"].as_u64().unwrap() <= 64);
    let messages = request.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].0, "system");
    assert!(messages[0].1.contains("title"));
    assert_eq!(messages[1].0, "user");
    assert!(messages[1].1.contains("I like owls."));
    assert!(messages[1].1.contains("Owls are great."));
}

#[tokio::test]
async fn a_title_fails_like_a_reply() {
    let provider = FakeProvider::start([
        Reply::status(401),
        Reply::hang(),
        Reply::completion(" \n "),
        Reply::json(200, &json!({"choices": "nope"})),
        Reply::status(429).header("Retry-After", "0"),
        Reply::completion("Retried title"),
    ])
    .await;
    let bot = bot(&provider);
    let title = || bot.title("Hi", "Hello");

    let unauthorized = title().await.unwrap_err();
    assert!(
        matches!(unauthorized, BotError::Status { status: 401 }),
        "{unauthorized:?}"
    );
    assert!(!everything_about(&unauthorized).contains(FakeProvider::ERROR_BODY));
    assert!(matches!(title().await, Err(BotError::Timeout)));
    assert!(matches!(title().await, Err(BotError::Empty)));
    let garbled = title().await.unwrap_err();
    assert!(matches!(garbled, BotError::Broken(_)), "{garbled:?}");
    assert!(!everything_about(&garbled).contains("nope"));
    assert_eq!(title().await.unwrap(), "Retried title");
}

#[test]
fn bad_configurations_are_refused_clearly_and_the_key_never_shows() {
    let refused = |config: OpenAiConfig| OpenAiBot::new(config).unwrap_err().to_string();
    assert!(refused(OpenAiConfig::new("http://127.0.0.1:11434/v1", " ")).contains("model"));
    assert!(refused(OpenAiConfig::new("127.0.0.1:11434/v1", "m")).contains("http://"));
    assert!(refused(OpenAiConfig::new("", "m")).contains("not a valid URL"));
    let bad_key = OpenAiConfig {
        api_key: Some(format!("{KEY}\n")),
        ..OpenAiConfig::new("http://127.0.0.1:11434/v1", "m")
    };
    let message = refused(bad_key.clone());
    assert!(
        message.contains("API key") && !message.contains(KEY),
        "{message}"
    );

    assert!(!format!("{bad_key:?}").contains(KEY));
    assert!(format!("{bad_key:?}").contains("api_key: Some([redacted])"));
}

#[tokio::test]
async fn a_connection_that_is_not_accepted_in_time_is_a_timeout() {
    // A listener whose accept queue is full: the kernel ignores further connection
    // attempts, so connecting hangs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let address = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_millis(100),
            tokio::net::TcpStream::connect(address),
        );
        match attempt.await {
            Ok(stream) => queued.push(stream.unwrap()),
            Err(_) => break,
        }
        assert!(queued.len() < 100, "the accept queue never filled");
    }
    let bot = OpenAiBot::new(OpenAiConfig {
        connect_timeout: Duration::from_millis(200),
        first_token_timeout: Duration::from_secs(5),
        ..OpenAiConfig::new(format!("http://{address}/v1"), "fake-model")
    })
    .unwrap();
    let started = Instant::now();

    let error = bot.reply(context()).await.err().unwrap();

    assert!(matches!(error, BotError::Timeout), "{error:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn timeouts_too_long_to_tell_are_no_problem() {
    let provider = FakeProvider::start([Reply::pieces(["a", "b"])]).await;
    let bot = OpenAiBot::new(OpenAiConfig {
        connect_timeout: Duration::MAX,
        first_token_timeout: Duration::MAX,
        idle_timeout: Duration::MAX,
        ..config(&provider)
    })
    .unwrap();

    let (pieces, error) = collect(bot.reply(context()).await.unwrap()).await;

    assert_eq!(pieces, ["a", "b"]);
    assert!(error.is_none(), "{error:?}");
}
