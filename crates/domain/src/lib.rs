#![warn(missing_docs)]
//! The chatbot's domain: users, conversations and messages, the rules they follow, the
//! ports they are stored and answered through, and the use cases over them.
//!
//! This crate knows no web framework, database or async runtime. Inputs are parsed once
//! at the edge into validated types ([`Username`], [`Password`], [`ConversationName`],
//! [`MessageText`]); the [`services`] take only those, and reach the outside
//! world through the traits in [`ports`], which adapters implement. Driving adapters
//! (the HTTP API) call the services through the traits in [`use_cases`]. Failures are one
//! [`Error`] type whose variants say what a caller can do about them.
//!
//! # Example
//!
//! The services driven by mockall mocks of the ports (the `mocks` feature):
//!
//! ```
//! use std::sync::Arc;
//!
//! use chatbot_domain::ports::{
//!     MockBot, MockConversationRepository, MockMessageRepository, Spawner, Task,
//! };
//! use chatbot_domain::ports::Clock as _;
//! use chatbot_domain::services::{Background, ChatService};
//! use chatbot_domain::use_cases::Chat;
//! use chatbot_domain::{
//!     BegunExchange, Conversation, ConversationId, ConversationName, Error, ManualClock, Message,
//!     MessageId, MessageStatus, MessageText, ReplyStream, Sender, SystemClock, UserId,
//! };
//!
//! // Replies are written in the background: here, by tasks on tokio.
//! struct Tokio;
//! impl Spawner for Tokio {
//!     fn spawn(&self, task: Task) {
//!         tokio::spawn(task);
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let alice = UserId::new(1);
//!
//! // Alice owns conversation 10 and nobody else does. Her message is stored with an
//! // empty reply after it, which the bot's text then fills.
//! let chat_id = ConversationId::new(10);
//! let now = SystemClock.now();
//! let mut messages = MockMessageRepository::new();
//! messages.expect_begin_exchange().returning(move |owner, conversation, new| {
//!     let user_message = Message {
//!         id: MessageId::new(1),
//!         conversation_id: conversation,
//!         sender: new.sender,
//!         text: new.text,
//!         status: new.status,
//!         created_at: new.created_at,
//!     };
//!     let reply = Message {
//!         id: MessageId::new(2),
//!         sender: Sender::Bot,
//!         text: String::new(),
//!         status: MessageStatus::Streaming,
//!         ..user_message.clone()
//!     };
//!     // The conversation is new: it still has the default name.
//!     let conversation_name = ConversationName::default();
//!     Ok((owner == alice).then(|| BegunExchange { user_message, reply, conversation_name }))
//! });
//! // No history yet.
//! messages.expect_list_messages().returning(|_, _, _| Ok(Some(vec![])));
//! // The bot's whole text is stored once it is done.
//! messages.expect_finish_reply().returning(move |id, text, status| {
//!     let (conversation_id, created_at) = (chat_id, now);
//!     Ok(Some(Message { id, conversation_id, sender: Sender::Bot, text, status, created_at }))
//! });
//! // The first reply names the conversation.
//! let mut conversations = MockConversationRepository::new();
//! conversations.expect_title_conversation().returning(move |owner, id, name| {
//!     let (created_at, updated_at) = (now, now);
//!     Ok(Some(Conversation { id, owner, name, created_at, updated_at }))
//! });
//! // The bot's reply arrives as a stream of pieces.
//! let mut bot = MockBot::new();
//! bot.expect_sees_history().return_const(true);
//! bot.expect_reply().returning(|context| {
//!     let pieces = ["You said: ".to_owned(), context.message.text];
//!     let stream: ReplyStream = Box::pin(futures_util::stream::iter(pieces.map(Ok)));
//!     Ok(stream)
//! });
//! bot.expect_title().returning(|message, _| Ok(message.to_owned()));
//! // Checkpoints and followers wait through a timer; a fast bot never makes them wait.
//! let timer = Arc::new(ManualClock::starting_at(now));
//! let background = Background { spawner: Arc::new(Tokio), timer };
//! let chat = ChatService::new(conversations, messages, bot, SystemClock, background);
//!
//! let text = MessageText::parse("  Hello there  ")?;
//! let exchange = chat.send_message(alice, chat_id, text.clone()).await?;
//! assert_eq!(exchange.user_message.text, "Hello there");
//! assert_eq!(exchange.bot_message.text, "You said: Hello there");
//! assert_eq!(exchange.bot_message.status, MessageStatus::Complete);
//!
//! // Bob cannot write into Alice's conversation: to him it does not exist.
//! let bob = UserId::new(2);
//! let refused = chat.send_message(bob, chat_id, text).await;
//! assert!(matches!(refused, Err(Error::ConversationNotFound)));
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```

mod account;
mod conversation;
mod error;
mod event;
mod id;
mod message;
mod page;
pub mod ports;
mod redact;
mod reply;
mod secret;
pub mod services;
mod session;
mod time;
pub mod use_cases;
mod user;
mod validation;

pub use account::{
    AccountMail, AccountToken, DisplayName, Email, NewAccount, NewAccountToken, Profile,
    ProfileChange, TokenPurpose,
};
pub use conversation::{
    Conversation, ConversationName, ConversationWithMessages, NewConversation, Revision,
};
pub use error::{BotError, BoxError, Error, HashError, SharedError, StorageError};
pub use event::{Change, Event};
pub use id::{ConversationId, MessageId, SessionId, UserId};
pub use message::{
    Exchange, Message, MessageStatus, MessageText, NewMessage, Sender, UnknownSender, UnknownStatus,
};
pub use page::{ConversationCursor, MessageCursor, Page, PageRequest, PageSize, Window};
pub use reply::{
    BegunExchange, Delta, ReplyContext, ReplyEvent, ReplyFailure, ReplyFeed, ReplySnapshot,
    ReplyStream, ReplyText, StartedReply,
};
pub use secret::{SecretDigest, SecretToken};
pub use session::{
    MAX_USER_AGENT_CHARS, NewSession, SessionChange, SessionKey, SessionRecord, clip_user_agent,
};
pub use time::{ManualClock, SystemClock, Timestamp};
pub use user::{Credentials, NewUser, Password, PasswordAttempt, PasswordHash, User, Username};
pub use validation::{Field, Rule, ValidationError, is_bidi_control};
