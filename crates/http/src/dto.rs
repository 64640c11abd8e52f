//! The JSON shapes of requests and responses: the seed API's, field for field.

use chatbot_domain::{
    Conversation, ConversationCursor, ConversationWithMessages, Message, MessageCursor, Page,
    Timestamp, User,
};
use serde::{Deserialize, Serialize, Serializer};

/// `POST /api/signup` and `POST /api/login`.
#[derive(Debug, Deserialize)]
pub(crate) struct CredentialsBody {
    pub(crate) username: String,
    pub(crate) password: String,
}

/// `POST /api/conversations`: the name may be left out (or `null`).
#[derive(Debug, Deserialize)]
pub(crate) struct NewConversationBody {
    #[serde(default)]
    pub(crate) name: Option<String>,
}

/// `PUT /api/conversations/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct RenameBody {
    pub(crate) name: String,
}

/// `POST /api/conversations/{id}/messages`.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageBody {
    pub(crate) text: String,
}

/// The query of `GET /api/conversations`: any of these asks for a page instead of the
/// seed's whole list. Values stay text here, so that the domain's parsers can say
/// precisely what is wrong with one.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ConversationPageQuery {
    pub(crate) limit: Option<String>,
    pub(crate) before: Option<String>,
    pub(crate) include: Option<String>,
}

/// The query of `GET /api/conversations/{id}/messages`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct MessagePageQuery {
    pub(crate) limit: Option<String>,
    pub(crate) before: Option<String>,
}

/// `{"message": "..."}`, the seed's acknowledgement.
#[derive(Debug, Serialize)]
pub(crate) struct Notice {
    pub(crate) message: &'static str,
}

/// `POST /api/login`'s answer.
#[derive(Debug, Serialize)]
pub(crate) struct LoginOut<'a> {
    pub(crate) message: &'static str,
    pub(crate) user: UserOut<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct UserOut<'a> {
    id: i64,
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

/// A message: `{id, sender, text, created_at}`.
#[derive(Debug, Serialize)]
pub(crate) struct MessageOut<'a> {
    id: i64,
    sender: &'static str,
    text: &'a str,
    #[serde(serialize_with = "rfc3339")]
    created_at: Timestamp,
}

impl<'a> From<&'a Message> for MessageOut<'a> {
    fn from(message: &'a Message) -> Self {
        Self {
            id: message.id.get(),
            sender: message.sender.as_str(),
            text: &message.text,
            created_at: message.created_at,
        }
    }
}

/// A conversation: `{id, name}` plus its times.
#[derive(Debug, Serialize)]
pub(crate) struct ConversationOut<'a> {
    id: i64,
    name: &'a str,
    #[serde(serialize_with = "rfc3339")]
    created_at: Timestamp,
    #[serde(serialize_with = "rfc3339")]
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

/// A conversation with its messages, as `GET /api/conversations` lists it.
#[derive(Debug, Serialize)]
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

/// A page of conversations: `{"conversations": [...], "next": "<cursor>" | null}`.
#[derive(Debug, Serialize)]
pub(crate) struct ConversationPageOut<T> {
    conversations: Vec<T>,
    #[serde(serialize_with = "display_or_null")]
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

/// A page of messages: `{"messages": [...], "next": <message id> | null}`.
#[derive(Debug, Serialize)]
pub(crate) struct MessagePageOut<'a> {
    messages: Vec<MessageOut<'a>>,
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
