//! Asking for a conversation's title, and tidying what the model answers.

use chatbot_domain::ConversationName;

/// The instructions of a title request.
pub(crate) const TITLE_PROMPT: &str = "You name conversations. Reply with a short title \
    for the conversation below: at most six words, in the language of the conversation, \
    without quotes and without a final full stop. Reply with the title only.";

/// The most tokens a title may take: a few words.
pub(crate) const TITLE_MAX_TOKENS: u32 = 32;

/// How much of the message and of the reply the title request quotes.
const QUOTE_CHARS: usize = 1_000;

/// The user message of a title request.
pub(crate) fn title_request(message: &str, reply: &str) -> String {
    format!(
        "User: {}\n\nAssistant: {}",
        clip(message.trim(), QUOTE_CHARS),
        clip(reply.trim(), QUOTE_CHARS)
    )
}

/// At most `max` characters of `text`.
fn clip(text: &str, max: usize) -> &str {
    text.char_indices()
        .nth(max)
        .map_or(text, |(at, _)| &text[..at])
}

/// What the model answered, as a title: a reasoning block (`<think>…</think>`) left
/// out, the first line that says something, without a `Title:` label, surrounding
/// quotes or emphasis, or a final full stop, cut to a name's length at a word when it
/// can be; `None` when nothing is left.
pub(crate) fn clean_title(raw: &str) -> Option<String> {
    let text = match raw.find("</think>") {
        Some(end) if raw.trim_start().starts_with("<think>") => &raw[end + "</think>".len()..],
        _ if raw.trim_start().starts_with("<think>") => "",
        _ => raw,
    };
    let line = text.lines().map(str::trim).find(|line| !line.is_empty())?;
    let line = strip_label(line);
    let line = line
        .trim_matches(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    '"' | '\'' | '`' | '*' | '_' | '#' | '“' | '”' | '‘' | '’' | '«' | '»' | '„'
                )
        })
        .trim_end_matches(['.', '。'])
        .trim();
    if line.is_empty() {
        return None;
    }
    Some(ConversationName::clip(line))
}

/// `line` without a leading `Title:` (in any letter case, possibly emphasised).
fn strip_label(line: &str) -> &str {
    let bare = line.trim_start_matches(['*', '#', ' ']);
    match bare.get(..6) {
        Some(label) if label.eq_ignore_ascii_case("title:") => {
            bare[6..].trim_start_matches(['*', ' '])
        }
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_titles_are_kept() {
        assert_eq!(
            clean_title("Rust ownership basics").as_deref(),
            Some("Rust ownership basics")
        );
        assert_eq!(
            clean_title("  Café au lait \n").as_deref(),
            Some("Café au lait")
        );
    }

    #[test]
    fn quotes_labels_emphasis_and_full_stops_go() {
        for raw in [
            "\"Rust ownership basics.\"",
            "'Rust ownership basics'",
            "“Rust ownership basics”",
            "**Rust ownership basics**",
            "Title: Rust ownership basics.",
            "**Title:** \"Rust ownership basics\"",
            "## Rust ownership basics",
            "\n\nRust ownership basics\n\nThis conversation is about...",
        ] {
            assert_eq!(
                clean_title(raw).as_deref(),
                Some("Rust ownership basics"),
                "{raw:?}"
            );
        }
        // Quotes inside stay.
        assert_eq!(
            clean_title("The \"it\" pronoun").as_deref(),
            Some("The \"it\" pronoun")
        );
    }

    #[test]
    fn reasoning_blocks_are_skipped() {
        assert_eq!(
            clean_title("<think>\nThe user asks about Rust.\n</think>\n\nRust questions")
                .as_deref(),
            Some("Rust questions")
        );
        // Cut off while reasoning: no title.
        assert_eq!(clean_title("<think>The user asks"), None);
    }

    #[test]
    fn nothing_is_no_title() {
        for raw in ["", "  \n ", "\"\"", "...", "Title:"] {
            assert_eq!(clean_title(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn long_titles_are_cut_at_a_word() {
        let long = "word ".repeat(40);
        let title = clean_title(&long).unwrap();
        assert!(title.chars().count() <= ConversationName::MAX_CHARS);
        assert!(title.ends_with("word"));
        let unbroken = "x".repeat(150);
        assert_eq!(
            clean_title(&unbroken).unwrap().chars().count(),
            ConversationName::MAX_CHARS
        );
    }

    #[test]
    fn the_request_quotes_both_sides_clipped() {
        let request = title_request(" Hi ", &"é".repeat(2_000));
        assert!(request.starts_with("User: Hi\n\nAssistant: é"));
        assert_eq!(request.chars().filter(|&c| c == 'é').count(), QUOTE_CHARS);
    }
}
