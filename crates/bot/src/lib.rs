//! Bot adapters behind the domain's [`Bot`] port.
//!
//! [`SimulatedBot`] needs no model server: it replies the same way to the same words,
//! word by word (instantly, or with a pause between words to watch streaming), and
//! what it says depends visibly on what the user wrote.

use std::num::NonZeroUsize;
use std::time::Duration;

use async_trait::async_trait;
use chatbot_domain::ports::Bot;
use chatbot_domain::{BotError, ReplyContext, ReplyStream};

/// A bot without a model: it reads the user's message and composes a reply from it.
///
/// Deterministic (the same text always gets the same reply) and cheap (a few string
/// operations), so tests and benchmarks measure the service, not the bot.
///
/// ```
/// # use chatbot_bot::SimulatedBot;
/// assert_eq!(
///     SimulatedBot::compose("What is Rust?"),
///     "You asked: \"What is Rust?\" I am a simulated bot, so I can only guess, but \
///      \"Rust\" sounds like the heart of it."
/// );
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SimulatedBot {
    delay: Duration,
    words: Option<NonZeroUsize>,
}

/// How much of the user's message the reply quotes.
const QUOTE_CHARS: usize = 120;
/// Words too common to be what a message is about.
const STOP_WORDS: [&str; 16] = [
    "what", "when", "where", "which", "who's", "whom", "that", "this", "with", "have", "your",
    "about", "there", "would", "could", "should",
];
/// How much of one word the reply repeats.
const TOPIC_CHARS: usize = 40;

/// Most words of a title.
const TITLE_WORDS: usize = 6;

impl SimulatedBot {
    /// A bot pausing `delay` between the words of a reply (zero: no pause).
    pub fn with_delay(delay: Duration) -> Self {
        Self { delay, words: None }
    }

    /// The same bot, every reply of which has exactly `words` words: the composed
    /// reply, cut, or continued with its own words again. For load tests that need
    /// replies of a known length.
    #[must_use]
    pub fn with_reply_words(self, words: NonZeroUsize) -> Self {
        Self {
            words: Some(words),
            ..self
        }
    }

    /// The reply to `text`.
    pub fn compose(text: &str) -> String {
        let quote = quote(text);
        let words: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .collect();
        // The first of the longest words: reversed, because `max_by_key` keeps the last.
        let topic = words
            .iter()
            .rev()
            .filter(|w| w.chars().count() > 3 && !STOP_WORDS.contains(&w.to_lowercase().as_str()))
            .max_by_key(|w| w.chars().count())
            .map_or_else(|| "that".to_owned(), |w| clip(w, TOPIC_CHARS));
        let first = words.first().map(|w| w.to_lowercase()).unwrap_or_default();

        if matches!(first.as_str(), "hi" | "hello" | "hey" | "greetings") {
            format!("Hello! You said: \"{quote}\". What would you like to talk about?")
        } else if text.to_lowercase().contains("thank") {
            format!("You're welcome! Anything else on your mind after \"{quote}\"?")
        } else if text.trim_end().ends_with('?') {
            format!(
                "You asked: \"{quote}\" I am a simulated bot, so I can only guess, but \
                 \"{topic}\" sounds like the heart of it."
            )
        } else {
            let count = words.len();
            let noun = if count == 1 { "word" } else { "words" };
            format!("You said: \"{quote}\" ({count} {noun}). Tell me more about \"{topic}\".")
        }
    }
}

/// `text` on one line, cut after [`QUOTE_CHARS`] characters.
fn quote(text: &str) -> String {
    clip(
        &text.split_whitespace().collect::<Vec<_>>().join(" "),
        QUOTE_CHARS,
    )
}

/// `text` cut after `max` characters, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `text` in pieces of one word each, with the white space before the next word.
fn words(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut piece = String::new();
    for c in text.chars() {
        if !c.is_whitespace() && piece.ends_with(char::is_whitespace) {
            pieces.push(std::mem::take(&mut piece));
        }
        piece.push(c);
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
}

/// `count` pieces of `pieces`, repeated as often as it takes, with no white space
/// after the last.
fn exactly(pieces: &[String], count: NonZeroUsize) -> Vec<String> {
    let mut sized: Vec<String> = pieces
        .iter()
        .cycle()
        .take(count.get())
        .map(|piece| {
            if piece.ends_with(char::is_whitespace) {
                piece.clone()
            } else {
                format!("{piece} ")
            }
        })
        .collect();
    if let Some(last) = sized.last_mut() {
        last.truncate(last.trim_end().len());
    }
    sized
}

#[async_trait]
impl Bot for SimulatedBot {
    async fn reply(&self, context: ReplyContext) -> Result<ReplyStream, BotError> {
        let mut pieces = words(&Self::compose(&context.message.text));
        if let Some(count) = self.words {
            pieces = exactly(&pieces, count);
        }
        let pieces = pieces.into_iter();
        let delay = self.delay;
        let stream =
            futures_util::stream::unfold((pieces, true), move |(mut rest, first)| async move {
                let piece = rest.next()?;
                if !first && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Some((Ok(piece), (rest, false)))
            });
        Ok(Box::pin(stream))
    }

    /// The simulated bot answers the new message alone.
    fn sees_history(&self) -> bool {
        false
    }

    /// The first words of the user's message.
    async fn title(&self, message: &str, _reply: &str) -> Result<String, BotError> {
        let title = message
            .split_whitespace()
            .take(TITLE_WORDS)
            .collect::<Vec<_>>()
            .join(" ");
        if title.is_empty() {
            return Err(BotError::Empty);
        }
        Ok(title)
    }
}

#[cfg(test)]
mod tests {
    use chatbot_domain::{ConversationId, Message, MessageId, MessageStatus, Sender, Timestamp};
    use futures_util::StreamExt;

    use super::*;

    #[test]
    fn replies_depend_on_the_text_and_repeat_for_the_same_text() {
        let a = SimulatedBot::compose("I went hiking in Norway");
        let b = SimulatedBot::compose("My favourite food is lasagna");
        assert_ne!(a, b);
        assert_eq!(a, SimulatedBot::compose("I went hiking in Norway"));
        assert_eq!(
            a,
            "You said: \"I went hiking in Norway\" (5 words). Tell me more about \"hiking\"."
        );
    }

    #[test]
    fn greetings_thanks_and_questions_get_their_own_kind_of_reply() {
        assert!(SimulatedBot::compose("hello there").starts_with("Hello!"));
        assert!(SimulatedBot::compose("Thanks a lot").starts_with("You're welcome!"));
        assert!(SimulatedBot::compose("Where is Oslo?").starts_with("You asked:"));
    }

    #[test]
    fn long_and_multiline_text_is_quoted_on_one_line_and_cut() {
        let long = format!("{}\n\n{}", "a".repeat(100), "é".repeat(100));
        let reply = SimulatedBot::compose(&long);
        assert!(reply.contains('…') && !reply.contains('\n'));
        assert!(reply.chars().count() < 250, "{reply}");
        let one_huge_word = SimulatedBot::compose(&"x".repeat(10_000));
        assert!(one_huge_word.chars().count() < 250, "{one_huge_word}");
    }

    fn context(text: &str) -> ReplyContext {
        ReplyContext {
            system_prompt: String::new(),
            history: Vec::new(),
            message: Message {
                id: MessageId::new(1),
                conversation_id: ConversationId::new(1),
                sender: Sender::User,
                text: text.to_owned(),
                status: MessageStatus::Complete,
                created_at: Timestamp::from_unix_millis(1_795_586_834_123).unwrap(),
            },
        }
    }

    async fn pieces(bot: SimulatedBot, text: &str) -> Vec<String> {
        let stream = bot.reply(context(text)).await.unwrap();
        stream.map(Result::unwrap).collect().await
    }

    #[tokio::test]
    async fn the_reply_streams_word_by_word_and_adds_up_to_the_composed_one() {
        let pieces = pieces(SimulatedBot::default(), "hey  there\nyou").await;
        assert_eq!(pieces.concat(), SimulatedBot::compose("hey  there\nyou"));
        assert!(pieces.len() > 5, "{pieces:?}");
        assert!(pieces.iter().all(|p| p.split_whitespace().count() == 1));
    }

    #[tokio::test]
    async fn a_reply_of_a_set_length_is_cut_or_continued_with_its_own_words() {
        let sized =
            |words| SimulatedBot::default().with_reply_words(NonZeroUsize::new(words).unwrap());
        let composed = SimulatedBot::compose("hello");
        let long = pieces(sized(100), "hello").await;
        assert_eq!(long.len(), 100);
        assert_eq!(long.concat().split_whitespace().count(), 100);
        assert!(
            long.concat().starts_with(&format!("{composed} Hello!")),
            "{long:?}"
        );
        assert!(!long.concat().ends_with(' '));
        let short = pieces(sized(2), "hello").await;
        assert_eq!(short.concat(), "Hello! You");
    }

    #[tokio::test(start_paused = true)]
    async fn the_delay_comes_between_words() {
        let delay = Duration::from_millis(100);
        let started = tokio::time::Instant::now();
        let pieces = pieces(SimulatedBot::with_delay(delay), "hello").await;
        let gaps = u32::try_from(pieces.len() - 1).unwrap();
        assert_eq!(started.elapsed(), delay * gaps);
    }

    #[tokio::test]
    async fn titles_are_the_first_words_of_the_message() {
        let bot = SimulatedBot::default();
        assert_eq!(
            bot.title("  Where should I go hiking in Norway this summer?", "…")
                .await
                .unwrap(),
            "Where should I go hiking in"
        );
        assert!(matches!(bot.title(" \n ", "…").await, Err(BotError::Empty)));
    }
}
