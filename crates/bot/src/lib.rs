//! Bot adapters behind the domain's [`Bot`] port.
//!
//! [`SimulatedBot`] needs no model server: it replies instantly, the same way to the
//! same words, and what it says depends visibly on what the user wrote.

use async_trait::async_trait;
use chatbot_domain::ports::Bot;
use chatbot_domain::{BotError, Message};

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
pub struct SimulatedBot;

/// How much of the user's message the reply quotes.
const QUOTE_CHARS: usize = 120;
/// Words too common to be what a message is about.
const STOP_WORDS: [&str; 16] = [
    "what", "when", "where", "which", "who's", "whom", "that", "this", "with", "have", "your",
    "about", "there", "would", "could", "should",
];
/// How much of one word the reply repeats.
const TOPIC_CHARS: usize = 40;

impl SimulatedBot {
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

#[async_trait]
impl Bot for SimulatedBot {
    async fn reply(&self, message: &Message) -> Result<String, BotError> {
        Ok(Self::compose(&message.text))
    }
}

#[cfg(test)]
mod tests {
    use chatbot_domain::{ConversationId, MessageId, Sender, Timestamp};

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

    #[tokio::test]
    async fn the_port_replies_to_the_stored_message() {
        let message = Message {
            id: MessageId::new(1),
            conversation_id: ConversationId::new(1),
            sender: Sender::User,
            text: "hey".to_owned(),
            created_at: Timestamp::from_unix_millis(1_795_586_834_123).unwrap(),
        };
        let reply = SimulatedBot.reply(&message).await.unwrap();
        assert_eq!(reply, SimulatedBot::compose("hey"));
    }
}
