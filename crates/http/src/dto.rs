//! The JSON shapes of requests and responses: the seed API's, field for field.
//!
//! Each also describes itself for the OpenAPI document (`ToSchema`, `IntoParams`):
//! doc comments here are what API users read there, and the schema names are the
//! ones given with `as`.

use chatbot_domain::{
    Conversation, ConversationCursor, ConversationWithMessages, Message, MessageCursor, Page,
    Sender, Timestamp, User,
};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// A username and a password to log in with: any pair that does not match an account,
/// whatever its shape, is a 401, so that an account made under older rules can still
/// log in.
#[derive(Debug, Deserialize, ToSchema)]
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

/// A new account's username and password, which must follow the rules below (400
/// `validation_failed` otherwise).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(
    as = NewAccount,
    examples(json!({"username": "alice", "password": "correct horse"}))
)]
pub(crate) struct SignUpBody {
    /// 3 to 32 characters of `A-Z a-z 0-9 _ . -`, kept as typed; two names differing
    /// only in letter case are the same account.
    #[schema(pattern = r"^[A-Za-z0-9_.-]{3,32}$", min_length = 3, max_length = 32)]
    pub(crate) username: String,
    /// At least 8 characters, and at most 72 bytes of UTF-8 (bcrypt's limit: longer is
    /// refused, never truncated), so at most 72 characters, and fewer where some take
    /// more than one byte. Not trimmed.
    #[schema(format = Password, min_length = 8, max_length = 72)]
    pub(crate) password: String,
}

/// A new conversation; without a name (or with `null`) it is called "New conversation".
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewConversation, examples(json!({"name": "Trip to Oslo"})))]
pub(crate) struct NewConversationBody {
    /// Trimmed (of Unicode white space), then 1 to 100 characters without control
    /// characters; the pattern says exactly that.
    #[serde(default)]
    #[schema(
        pattern = r"^[\u0009-\u000d \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f]{0,98}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub(crate) name: Option<String>,
}

/// A conversation's new name.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = RenameConversation, examples(json!({"name": "Norway"})))]
pub(crate) struct RenameBody {
    /// Trimmed (of Unicode white space), then 1 to 100 characters without control
    /// characters; the pattern says exactly that.
    #[schema(
        pattern = r"^[\u0009-\u000d \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f]{0,98}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub(crate) name: String,
}

/// What the user says.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(
    as = NewMessage,
    examples(json!({"text": "Where should I go hiking in Norway?"}))
)]
pub(crate) struct MessageBody {
    /// Trimmed (of Unicode white space), then 1 to 16,000 characters (the server's
    /// `limits.max_message_chars`), without NUL characters: the pattern says "not blank,
    /// no NUL".
    #[schema(
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$",
        min_length = 1,
        max_length = 16000
    )]
    pub(crate) text: String,
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
    #[param(
        value_type = Option<String>,
        pattern = r"^(0|[1-9][0-9]{0,14})_[1-9][0-9]{0,17}$",
        example = "1795586834123_2"
    )]
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
            created_at: message.created_at,
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
