//! The JSON shapes of requests and responses: the seed API's, field for field.
//!
//! Each also describes itself for the OpenAPI document (`ToSchema`, `IntoParams`):
//! doc comments here are what API users read there, and the schema names are the
//! ones given with `as`. The fields that follow a domain rule get their schemas, words
//! included, from functions that build them out of the domain's constants and
//! predicates (see "The input rules" below).

mod accounts;

use std::sync::LazyLock;

use chatbot_domain::{
    Conversation, ConversationCursor, ConversationName, ConversationWithMessages, Message,
    MessageCursor, MessageStatus, MessageText, Page, Password, Sender, Timestamp, User, Username,
};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

pub(crate) use accounts::{
    ForgotBody, PasswordBody, PasswordChangeBody, ProfileBody, ProfileOut, ResetBody, SessionOut,
    TokenBody,
};

/// A username and a password to log in with: any pair that does not match an account,
/// whatever its shape, is a 401, so that an account made under older rules can still
/// log in.
#[derive(Deserialize, ToSchema)]
#[schema(
    as = Credentials,
    examples(json!({"username": "alice", "password": "correct horse"}))
)]
pub(crate) struct CredentialsBody {
    /// The name the account was made with (letter case aside).
    pub(crate) username: String,
    #[schema(format = Password)]
    pub(crate) password: String,
}

/// A new account's username and password (and, optionally, email address), which must
/// follow the rules below (400 `validation_failed` otherwise).
#[derive(Deserialize, ToSchema)]
#[schema(
    as = NewAccount,
    examples(json!({"username": "alice", "password": "correct horse"}))
)]
pub(crate) struct SignUpBody {
    #[schema(schema_with = username)]
    pub(crate) username: String,
    #[schema(schema_with = password)]
    pub(crate) password: String,
    /// Where mail may reach them (optional): a link to verify it is mailed there.
    #[serde(default)]
    #[schema(schema_with = optional_signup_email)]
    pub(crate) email: Option<String>,
}

/// A new account's email address, which may be `null` (or left out).
fn optional_signup_email() -> ObjectBuilder {
    accounts::email().schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

/// Implements `Debug` for request bodies that carry a password or a token as
/// `Name { .. }`: nothing of them reaches a log.
macro_rules! secret_debug {
    ($($name:ident),+) => {
        $(impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        })+
    };
}
use secret_debug;

secret_debug!(CredentialsBody, SignUpBody);

/// A new conversation; without a name (or with `null`) it is called "New conversation".
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewConversation, examples(json!({"name": "Trip to Oslo"})))]
pub(crate) struct NewConversationBody {
    #[serde(default)]
    #[schema(schema_with = optional_conversation_name)]
    pub(crate) name: Option<String>,
}

/// A conversation's new name.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = RenameConversation, examples(json!({"name": "Norway"})))]
pub(crate) struct RenameBody {
    #[schema(schema_with = conversation_name)]
    pub(crate) name: String,
}

/// What the user says.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(
    as = NewMessage,
    examples(json!({"text": "Where should I go hiking in Norway?"}))
)]
pub(crate) struct MessageBody {
    /// Derived with the default limit; the served document has the configured one
    /// ([`MessageBody::with_max_chars`]).
    #[schema(schema_with = message_text_by_default)]
    pub(crate) text: String,
}

impl MessageBody {
    /// The name of [`MessageBody::text`] in JSON, and in the document.
    pub(crate) const TEXT: &str = "text";

    /// The schema of the body with a text of at most `max_chars` characters (the
    /// server's `limits.max_message_chars`).
    pub(crate) fn with_max_chars(schema: &mut Object, max_chars: usize) {
        schema
            .properties
            .insert(Self::TEXT.to_owned(), message_text(max_chars).into());
    }
}

// The input rules, as JSON Schema, built from the domain's own rules: its constants for
// the lengths, and its predicates (`allows`, `trims`) for the character classes of the
// patterns, which list every character the predicate accepts. Nothing here restates a
// rule, so the document cannot drift from what the server accepts.
//
// utoipa's `#[schema(...)]` attributes take literals only, hence `schema_with`, which
// also drops the field's doc comment: these functions write the descriptions too.

/// A new account's username.
fn username() -> ObjectBuilder {
    static PATTERN: LazyLock<String> = LazyLock::new(|| {
        let (min, max) = (Username::MIN_CHARS, Username::MAX_CHARS);
        format!("^{}{{{min},{max}}}$", class(Username::allows))
    });
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(format!(
            "{} to {} characters, which may only be {} (of ASCII: the pattern lists \
             them); kept as typed, and two names differing only in letter case are the same \
             account.",
            Username::MIN_CHARS,
            Username::MAX_CHARS,
            Username::ALLOWED,
        )))
        .pattern(Some(PATTERN.as_str()))
        .min_length(Some(Username::MIN_CHARS))
        .max_length(Some(Username::MAX_CHARS))
}

/// A new account's password.
fn password() -> ObjectBuilder {
    static PATTERN: LazyLock<String> =
        LazyLock::new(|| format!("^{}*$", class_except(|c| !Password::allows(c))));
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .description(Some(format!(
            "At least {min} characters, and at most {max} bytes of UTF-8 (bcrypt's limit: \
             longer is refused, never truncated), so at most {max} characters, and fewer \
             where some take more than one byte; no control characters (bcrypt would stop \
             at a NUL). Not trimmed.",
            min = Password::MIN_CHARS,
            max = Password::MAX_BYTES,
        )))
        .pattern(Some(PATTERN.as_str()))
        .min_length(Some(Password::MIN_CHARS))
        // Every character takes at least one byte.
        .max_length(Some(Password::MAX_BYTES))
}

/// A conversation's name.
fn conversation_name() -> ObjectBuilder {
    static PATTERN: LazyLock<String> = LazyLock::new(|| {
        trimmed(
            ConversationName::trims,
            ConversationName::allows,
            ConversationName::MAX_CHARS,
        )
    });
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(format!(
            "Trimmed (of Unicode white space), then 1 to {} characters without control \
             characters; the pattern says exactly that.",
            ConversationName::MAX_CHARS,
        )))
        .pattern(Some(PATTERN.as_str()))
}

/// A new conversation's name, which may be `null` (or left out).
fn optional_conversation_name() -> ObjectBuilder {
    conversation_name().schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

/// A message's text, of at most the default number of characters.
fn message_text_by_default() -> AnyOfBuilder {
    message_text(MessageText::DEFAULT_MAX_CHARS)
}

/// A message's text, of at most `max_chars` characters after trimming.
///
/// JSON Schema cannot count after trimming, and a pattern counting to 16,000 is too
/// big for regex engines to compile. So the text is one of two shapes: without white
/// space around it, where `maxLength` is the limit exactly; or with white space around
/// it, which the server trims before counting, where the document sets no length (it
/// is looser than the server only for such a text over the limit).
fn message_text(max_chars: usize) -> AnyOfBuilder {
    static SHAPES: LazyLock<(String, String)> = LazyLock::new(|| {
        let space = class(MessageText::trims);
        let core = core(MessageText::trims, MessageText::allows);
        (
            format!("^{core}$"),
            format!("^{space}+{core}{space}*$|^{core}{space}+$"),
        )
    });
    let (bare, padded) = &*SHAPES;
    AnyOfBuilder::new()
        .description(Some(format!(
            "Trimmed (of Unicode white space), then 1 to {max_chars} characters (the \
             server's `limits.max_message_chars`), without NUL characters. Without white \
             space around it, `maxLength` is that limit; with white space around it, \
             which is not counted, the document cannot say the limit."
        )))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(bare.as_str()))
                .min_length(Some(1))
                .max_length(Some(max_chars)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(padded.as_str())),
        )
}

/// The text form of a [`ConversationCursor`]: milliseconds and an id, joined by `_`,
/// both in plain decimal digits without a leading zero, the id not zero.
pub(crate) fn conversation_cursor_pattern() -> String {
    let digits = |max: usize| format!("[0-9]{{0,{}}}", max.saturating_sub(1));
    format!(
        "^(0|[1-9]{millis})_[1-9]{id}$",
        millis = digits(ConversationCursor::MAX_MILLIS_DIGITS),
        id = digits(ConversationCursor::MAX_ID_DIGITS),
    )
}

/// The pattern of the values a parser accepts that trims both ends of the characters
/// `trims` accepts, then wants 1 to `max_chars` characters left, each accepted by
/// `allows`: trimmed characters at both ends, around a first and a
/// last character that `allows` and does not trim (one and the same when alone), with
/// up to `max_chars - 2` allowed characters between those two.
fn trimmed(trims: fn(char) -> bool, allows: fn(char) -> bool, max_chars: usize) -> String {
    let space = class(trims);
    let inner = class_except(|c| !allows(c));
    let edge = class_except(|c| !allows(c) || trims(c));
    let more = match max_chars {
        0 | 1 => String::new(),
        max => format!("(?:{inner}{{0,{}}}{edge})?", max - 2),
    };
    format!("^{space}*{edge}{more}{space}*$")
}

/// What remains of a text once trimmed, of any length: a first and a last character
/// that `allows` and does not trim (one and the same when alone), and any allowed
/// characters between.
fn core(trims: fn(char) -> bool, allows: fn(char) -> bool) -> String {
    let inner = class_except(|c| !allows(c));
    let edge = class_except(|c| !allows(c) || trims(c));
    format!("{edge}(?:{inner}*{edge})?")
}

/// The character class of every character `member` accepts, as ECMA-262 and Rust's
/// `regex` both read it.
fn class(member: impl Fn(char) -> bool) -> String {
    format!("[{}]", class_items(member))
}

/// The character class of every character `excluded` does not accept.
fn class_except(excluded: impl Fn(char) -> bool) -> String {
    format!("[^{}]", class_items(excluded))
}

/// The characters `member` accepts, in order, as the items of a character class: runs
/// of three or more as ranges. Every character is tried, so the class is exact.
fn class_items(member: impl Fn(char) -> bool) -> String {
    let mut items = String::new();
    let mut push = |first: char, last: char| {
        items.push_str(&class_char(first));
        match u32::from(last) - u32::from(first) {
            0 => {}
            1 => items.push_str(&class_char(last)),
            _ => {
                items.push('-');
                items.push_str(&class_char(last));
            }
        }
    };
    let mut run: Option<(char, char)> = None;
    for c in (char::MIN..=char::MAX).filter(|&c| member(c)) {
        run = match run {
            Some((first, last)) if u32::from(last) + 1 == u32::from(c) => Some((first, c)),
            Some((first, last)) => {
                push(first, last);
                Some((c, c))
            }
            None => Some((c, c)),
        };
    }
    if let Some((first, last)) = run {
        push(first, last);
    }
    items
}

/// `c` in a character class: letters, digits, `_` and `.` as themselves, anything else
/// escaped by its code point (`\uXXXX`; `\u{X}` beyond the Basic Multilingual Plane).
fn class_char(c: char) -> String {
    match c {
        'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '.' => c.to_string(),
        '\0'..='\u{ffff}' => format!("\\u{:04x}", u32::from(c)),
        _ => format!("\\u{{{:x}}}", u32::from(c)),
    }
}

/// The query of `GET /api/conversations`: any of these asks for a page instead of the
/// seed's whole list. Values stay text here, so that the domain's parsers can say
/// precisely what is wrong with one; the document shows their real types.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConversationPageQuery {
    /// How many conversations the page holds at most.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 20)]
    pub(crate) limit: Option<String>,
    /// Where the page starts: the `next` of the page before, passed back unchanged. The
    /// first page leaves it out.
    // Its pattern, `conversation_cursor_pattern`, is added to the document afterwards
    // (`openapi::CursorPattern`): with `schema_with`, utoipa would drop this description.
    #[param(value_type = Option<String>, example = "1795586834123_2")]
    pub(crate) before: Option<String>,
    /// `messages` adds each conversation's messages, oldest first.
    #[param(schema_with = include_messages)]
    pub(crate) include: Option<String>,
}

/// The one value `include` takes.
fn include_messages() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["messages"]))
}

/// The query of `GET /api/conversations/{id}/messages`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MessagePageQuery {
    /// How many messages the page holds at most.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 20)]
    pub(crate) limit: Option<String>,
    /// Where the page starts: the `next` of the page before (a message id). The first
    /// page, which holds the latest messages, leaves it out.
    #[param(value_type = Option<i64>, minimum = 1)]
    pub(crate) before: Option<String>,
}

/// An acknowledgement, in a sentence.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Notice {
    pub(crate) message: &'static str,
}

/// How the service is: `ok` when it serves, `ready` when it can reach its database too.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    #[schema(examples("ok", "ready"))]
    pub(crate) status: &'static str,
}

/// A successful login; the session cookie comes with it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Login)]
pub(crate) struct LoginOut<'a> {
    #[schema(examples("Login successful"))]
    pub(crate) message: &'static str,
    pub(crate) user: UserOut<'a>,
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub(crate) struct UserOut<'a> {
    #[schema(minimum = 1)]
    id: i64,
    /// As typed at signup.
    username: &'a str,
}

impl<'a> From<&'a User> for UserOut<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            id: user.id.get(),
            username: user.username.as_str(),
        }
    }
}

/// A message.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Message)]
pub(crate) struct MessageOut<'a> {
    #[schema(minimum = 1)]
    id: i64,
    sender: SenderOut,
    text: &'a str,
    status: StatusOut,
    /// When it was stored: RFC 3339, UTC, milliseconds.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime, examples("2026-11-25T06:07:14.123Z"))]
    created_at: Timestamp,
}

impl<'a> From<&'a Message> for MessageOut<'a> {
    fn from(message: &'a Message) -> Self {
        Self {
            id: message.id.get(),
            sender: message.sender.into(),
            text: &message.text,
            status: message.status.into(),
            created_at: message.created_at,
        }
    }
}

/// A piece of a reply's text, the `data` of a `delta` event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Delta)]
pub(crate) struct DeltaOut<'a> {
    /// The reply it belongs to.
    #[schema(minimum = 1)]
    message_id: i64,
    /// The text that came; appended to what came before, it makes the reply.
    text: &'a str,
}

impl<'a> From<&'a chatbot_domain::Delta> for DeltaOut<'a> {
    fn from(delta: &'a chatbot_domain::Delta) -> Self {
        Self {
            message_id: delta.message_id.get(),
            text: &delta.text,
        }
    }
}

/// Whether a message is whole: `complete` (user messages always are), `streaming` (the
/// bot is still writing it), `interrupted` (stopped before the bot finished; the text
/// is what had come) or `failed` (the bot broke off; the text is what had come).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = MessageStatus)]
pub(crate) enum StatusOut {
    Complete,
    Streaming,
    Interrupted,
    Failed,
}

impl From<MessageStatus> for StatusOut {
    fn from(status: MessageStatus) -> Self {
        match status {
            MessageStatus::Complete => Self::Complete,
            MessageStatus::Streaming => Self::Streaming,
            MessageStatus::Interrupted => Self::Interrupted,
            MessageStatus::Failed => Self::Failed,
        }
    }
}

/// Who wrote a message: the user, or the bot replying.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = Sender)]
pub(crate) enum SenderOut {
    User,
    Bot,
}

impl From<Sender> for SenderOut {
    fn from(sender: Sender) -> Self {
        match sender {
            Sender::User => Self::User,
            Sender::Bot => Self::Bot,
        }
    }
}

/// A conversation (without its messages).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Conversation)]
pub(crate) struct ConversationOut<'a> {
    #[schema(minimum = 1)]
    id: i64,
    name: &'a str,
    /// When it was created: RFC 3339, UTC, milliseconds.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime, examples("2026-11-25T06:07:14.123Z"))]
    created_at: Timestamp,
    /// When it was last renamed or sent a message: RFC 3339, UTC, milliseconds.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime, examples("2026-11-25T06:09:55.020Z"))]
    updated_at: Timestamp,
}

impl<'a> From<&'a Conversation> for ConversationOut<'a> {
    fn from(conversation: &'a Conversation) -> Self {
        Self {
            id: conversation.id.get(),
            name: conversation.name.as_str(),
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
        }
    }
}

/// A conversation with its messages, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ConversationWithMessages)]
pub(crate) struct ConversationWithMessagesOut<'a> {
    #[serde(flatten)]
    conversation: ConversationOut<'a>,
    messages: Vec<MessageOut<'a>>,
}

impl<'a> From<&'a ConversationWithMessages> for ConversationWithMessagesOut<'a> {
    fn from(listed: &'a ConversationWithMessages) -> Self {
        Self {
            conversation: (&listed.conversation).into(),
            messages: listed.messages.iter().map(MessageOut::from).collect(),
        }
    }
}

/// A page of conversations, the most recently active first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConversationPageOut<T> {
    conversations: Vec<T>,
    /// Pass it as `before` for the next page; `null` on the last page. Opaque.
    #[serde(serialize_with = "display_or_null")]
    #[schema(value_type = Option<String>, required = true, examples("1795586834123_2"))]
    next: Option<ConversationCursor>,
}

impl<'a, T> ConversationPageOut<T> {
    /// The page's items as `T`s, made from references to the domain's items.
    pub(crate) fn new<I>(page: &'a Page<I, ConversationCursor>) -> Self
    where
        T: From<&'a I>,
    {
        Self {
            conversations: page.items.iter().map(T::from).collect(),
            next: page.next,
        }
    }
}

/// A page of a conversation's messages, oldest first within the page; the first page
/// holds the latest.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MessagePage)]
pub(crate) struct MessagePageOut<'a> {
    messages: Vec<MessageOut<'a>>,
    /// Pass it as `before` for the page of older messages; `null` on the last page.
    #[schema(required = true, minimum = 1)]
    next: Option<i64>,
}

impl<'a> From<&'a Page<Message, MessageCursor>> for MessagePageOut<'a> {
    fn from(page: &'a Page<Message, MessageCursor>) -> Self {
        Self {
            messages: page.items.iter().map(MessageOut::from).collect(),
            next: page.next.map(|cursor| cursor.0.get()),
        }
    }
}

fn display_or_null<S: Serializer>(
    value: &Option<ConversationCursor>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(cursor) => serializer.collect_str(cursor),
        None => serializer.serialize_none(),
    }
}

fn rfc3339<S: Serializer>(timestamp: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(timestamp)
}

/// What `GET /api/conversations` answers, for the OpenAPI document: the seed's whole
/// list without a query, a page with `limit`, `before` or `include`. The handler
/// writes one of the three shapes directly; `anyOf`, since an empty page fits both
/// page shapes.
pub(crate) struct ConversationListing;

/// The names the two page shapes go by in the document (a generic schema has one name
/// for all its instances).
const PAGE: &str = "ConversationPage";
const PAGE_WITH_MESSAGES: &str = "ConversationPageWithMessages";

impl PartialSchema for ConversationListing {
    fn schema() -> RefOr<Schema> {
        let whole = ArrayBuilder::new()
            .items(Ref::from_schema_name(
                ConversationWithMessagesOut::name().into_owned(),
            ))
            .description(Some(
                "Without `limit`, `before` and `include`: every conversation, with its messages.",
            ));
        AnyOfBuilder::new()
            .item(whole)
            .item(described(PAGE, "With `limit` or `before`."))
            .item(described(PAGE_WITH_MESSAGES, "With `include=messages`."))
            .into()
    }
}

/// A reference to the schema `name`, saying when it applies.
fn described(name: &str, description: &str) -> Ref {
    let mut reference = Ref::from_schema_name(name);
    description.clone_into(&mut reference.description);
    reference
}

impl ToSchema for ConversationListing {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            ConversationWithMessagesOut::name().into_owned(),
            ConversationWithMessagesOut::schema(),
        ));
        <ConversationWithMessagesOut<'_> as ToSchema>::schemas(schemas);
        schemas.push((
            PAGE.to_owned(),
            ConversationPageOut::<ConversationOut<'_>>::schema(),
        ));
        <ConversationPageOut<ConversationOut<'_>> as ToSchema>::schemas(schemas);
        schemas.push((
            PAGE_WITH_MESSAGES.to_owned(),
            ConversationPageOut::<ConversationWithMessagesOut<'_>>::schema(),
        ));
        <ConversationPageOut<ConversationWithMessagesOut<'_>> as ToSchema>::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The characters the class `class` (as [`class`] and [`class_except`] write
    /// them) holds, as a membership test.
    fn members(class: &str) -> impl Fn(char) -> bool {
        fn item(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<char> {
            let c = chars.next()?;
            if c != '\\' {
                return Some(c);
            }
            assert_eq!(chars.next(), Some('u'));
            let hex: String = chars.by_ref().take(4).collect();
            char::from_u32(u32::from_str_radix(&hex, 16).ok()?)
        }
        let items = class.strip_prefix('[').and_then(|c| c.strip_suffix(']'));
        let items = items.expect("a class");
        let (negated, items) = match items.strip_prefix('^') {
            Some(items) => (true, items),
            None => (false, items),
        };
        let mut chars = items.chars().peekable();
        let mut ranges = Vec::new();
        while let Some(first) = item(&mut chars) {
            let last = if chars.next_if_eq(&'-').is_some() {
                item(&mut chars).expect("a range's end")
            } else {
                first
            };
            ranges.push(first..=last);
        }
        move |c| ranges.iter().any(|range| range.contains(&c)) != negated
    }

    /// Asserts that `class` holds exactly the characters `accepts` accepts.
    fn assert_exact(class: &str, accepts: impl Fn(char) -> bool) {
        assert!(!class.contains("\\u{"), "{class} lists the BMP only");
        let holds = members(class);
        for c in char::MIN..=char::MAX {
            assert_eq!(holds(c), accepts(c), "{c:?} in {class}");
        }
    }

    #[test]
    fn classes_hold_exactly_what_the_domain_s_predicates_accept() {
        // The classes the patterns are made of.
        assert_exact(&class(Username::allows), Username::allows);
        type Rule = fn(char) -> bool;
        let names: (Rule, Rule) = (ConversationName::trims, ConversationName::allows);
        let texts: (Rule, Rule) = (MessageText::trims, MessageText::allows);
        for (trims, allows) in [names, texts] {
            assert_exact(&class(trims), trims);
            assert_exact(&class_except(|c| !allows(c)), allows);
            let edge = |c| allows(c) && !trims(c);
            assert_exact(&class_except(|c| !edge(c)), edge);
        }
        assert_eq!(class(Username::allows), r"[\u002d.0-9A-Z_a-z]");
        assert_eq!(class_except(|c| c == '\0'), r"[^\u0000]");
    }

    #[test]
    fn the_cursor_pattern_counts_the_domain_s_digits() {
        assert_eq!(
            conversation_cursor_pattern(),
            "^(0|[1-9][0-9]{0,14})_[1-9][0-9]{0,17}$"
        );
    }

    #[test]
    fn no_rule_is_written_by_hand() {
        // The attributes that would restate a rule take literals only: none may be here.
        let source = include_str!("dto.rs");
        for keyword in ["pattern", "min_length", "max_length"] {
            let attribute = format!("{keyword} = ");
            assert!(!source.contains(&attribute), "`{attribute}` in dto.rs");
        }
    }
}
