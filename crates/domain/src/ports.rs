//! The ports: what the domain needs from the outside world.
//!
//! Adapters implement these traits (diesel storage, bcrypt, a bot); the services in
//! [`crate::services`] are generic over them. With the `mocks` feature, each trait
//! `Foo` has a mockall mock `MockFoo` here.
//!
//! The ports are async because the bot is a network call that will stream, and a
//! storage adapter must not block an async runtime's workers: an adapter over a
//! blocking driver runs it on a blocking thread pool. Every storage method is one
//! atomic unit of work, and the ones that touch a conversation take its owner, so
//! ownership is enforced by the query itself and a foreign conversation is
//! indistinguishable from a missing one.

use async_trait::async_trait;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::{
    AccountMail, AccountToken, BegunExchange, BotError, Conversation, ConversationCursor,
    ConversationId, ConversationName, ConversationWithMessages, Credentials, Email, HashError,
    Message, MessageCursor, MessageId, MessageStatus, NewAccountToken, NewConversation, NewMessage,
    NewSession, NewUser, Password, PasswordAttempt, PasswordHash, Profile, ProfileChange,
    ReplyContext, ReplySnapshot, ReplyStream, ReplyText, Revision, SecretDigest, SecretToken,
    SessionChange, SessionId, SessionKey, SessionRecord, StorageError, Timestamp, TokenPurpose,
    User, UserId, Username, Window,
};

/// Stores users and their profiles.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user, email unverified. Fails with [`StorageError::Conflict`]
    /// when a user with the same [normalized](Username::normalized) name, or the same
    /// [normalized](Email::normalized) email, exists.
    async fn insert_user(&self, user: NewUser) -> Result<User, StorageError>;

    /// The user whose name equals `username` ignoring letter case, with their
    /// password hash.
    async fn find_credentials(
        &self,
        username: &Username,
    ) -> Result<Option<Credentials>, StorageError>;

    /// The user `user`, with their password hash.
    async fn find_credentials_of(&self, user: UserId) -> Result<Option<Credentials>, StorageError>;

    /// The profile of `user`.
    async fn find_profile(&self, user: UserId) -> Result<Option<Profile>, StorageError>;

    /// The profile of the user whose email equals `email` ignoring letter case.
    async fn find_profile_by_email(&self, email: &Email) -> Result<Option<Profile>, StorageError>;

    /// Applies `change` to the profile of `user`: a new email is stored unverified.
    /// `None` when there is no such user. Fails with [`StorageError::Conflict`] when
    /// another user has the new email (letter case aside), and then changes nothing.
    async fn update_profile(
        &self,
        user: UserId,
        change: ProfileChange,
    ) -> Result<Option<Profile>, StorageError>;

    /// Replaces the password hash of `user`; `false` when there is no such user.
    async fn set_password(&self, user: UserId, hash: PasswordHash) -> Result<bool, StorageError>;

    /// Marks the email of `user` verified if it is still `email` (letter case
    /// aside); `false` otherwise (changed since, or no such user).
    async fn mark_email_verified(&self, user: UserId, email: &Email) -> Result<bool, StorageError>;

    /// Deletes `user` with everything of theirs: conversations, messages, sessions,
    /// tokens. `false` when there is no such user.
    async fn delete_user(&self, user: UserId) -> Result<bool, StorageError>;
}

/// Stores the tokens mailed to users, as digests.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TokenRepository: Send + Sync {
    /// Stores `token`, and deletes every other token of its user for the same
    /// purpose (a new one voids the older ones), atomically.
    async fn issue_token(&self, token: NewAccountToken) -> Result<(), StorageError>;

    /// Deletes the token with `digest` for `purpose` and returns it, expired or not:
    /// a token is taken once, however many ask for it at the same time.
    async fn take_token(
        &self,
        digest: &SecretDigest,
        purpose: TokenPurpose,
    ) -> Result<Option<AccountToken>, StorageError>;

    /// Deletes every token of `user` for `purpose` (their address or password
    /// changed: links mailed before must not work).
    async fn revoke_tokens(&self, user: UserId, purpose: TokenPurpose) -> Result<(), StorageError>;

    /// Deletes every token expired by `now`; returns how many.
    async fn purge_expired_tokens(&self, now: Timestamp) -> Result<u64, StorageError>;
}

/// Stores conversations.
///
/// Every change to a conversation or its messages, by these methods or any other
/// write, raises the owner's [`Revision`] in the same transaction, as does every change
/// to the owner's account: an adapter keeps that rule in one place for every write (the
/// diesel adapter, in database triggers). Writes by one owner must not wait for each
/// other to raise it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ConversationRepository: Send + Sync {
    /// The current [`Revision`] of `owner`'s conversations and messages; a user that
    /// does not exist has nothing, like a new user at the first revision.
    async fn revision(&self, owner: UserId) -> Result<Revision, StorageError>;

    /// Stores a new conversation, unless its owner already has `at_most`: then
    /// `None`, and nothing is stored. Concurrent inserts for one owner never take
    /// them past `at_most`.
    async fn insert_conversation(
        &self,
        conversation: NewConversation,
        at_most: u32,
    ) -> Result<Option<Conversation>, StorageError>;

    /// The conversations of `owner` in `window` of the list ordered most recently
    /// active first (ties: highest id first), from just after `window.before`.
    async fn list_conversations(
        &self,
        owner: UserId,
        window: Window<ConversationCursor>,
    ) -> Result<Vec<Conversation>, StorageError>;

    /// As [`list_conversations`](Self::list_conversations), each conversation with all
    /// its messages in the order they were stored, in one consistent read.
    async fn list_conversations_with_messages(
        &self,
        owner: UserId,
        window: Window<ConversationCursor>,
    ) -> Result<Vec<ConversationWithMessages>, StorageError>;

    /// Renames `owner`'s conversation `id` and marks it active at `at`; `None` when
    /// `owner` has no such conversation.
    async fn rename_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
        name: ConversationName,
        at: Timestamp,
    ) -> Result<Option<Conversation>, StorageError>;

    /// Names `owner`'s conversation `id` `title` if its name is still the
    /// [default](ConversationName::default), in one atomic step, so a name the user
    /// gave is never overwritten, even by a title racing the rename; the conversation
    /// as titled when it did. The conversation's activity time stays.
    async fn title_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
        title: ConversationName,
    ) -> Result<Option<Conversation>, StorageError>;

    /// Deletes `owner`'s conversation `id` with its messages; `false` when `owner`
    /// has no such conversation.
    async fn delete_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
    ) -> Result<bool, StorageError>;
}

/// Stores messages.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MessageRepository: Send + Sync {
    /// The last `window.limit` messages of `owner`'s conversation `conversation`
    /// stored before the message `window.before` (all of them when there is no
    /// limit, the latest when there is no cursor), oldest first; `None` when `owner`
    /// has no such conversation.
    async fn list_messages(
        &self,
        owner: UserId,
        conversation: ConversationId,
        window: Window<MessageCursor>,
    ) -> Result<Option<Vec<Message>>, StorageError>;

    /// Appends the user's `message` to `owner`'s conversation `conversation` and,
    /// right after it, the bot's reply: empty, [streaming](MessageStatus::Streaming),
    /// created and last heard of at the message's time; marks the conversation active
    /// then; all atomically. `None` when `owner` has no such conversation.
    ///
    /// # Errors
    /// [`StorageError::Conflict`] when a reply is already streaming in that
    /// conversation (on any instance: the store enforces it); then nothing is stored.
    async fn begin_exchange(
        &self,
        owner: UserId,
        conversation: ConversationId,
        message: NewMessage,
    ) -> Result<Option<BegunExchange>, StorageError>;

    /// Stores `text` (with its delta ends) as the text so far of the streaming reply
    /// `reply`, heard of at `at`; `false` when it is no longer streaming (stopped from
    /// elsewhere, declared dead, or deleted), and then changes nothing.
    async fn checkpoint_reply(
        &self,
        reply: MessageId,
        text: &ReplyText,
        at: Timestamp,
    ) -> Result<bool, StorageError>;

    /// Stores `text` as the final text of the streaming reply `reply`, with `status`;
    /// `None` when it is no longer streaming, and then changes nothing.
    async fn finish_reply(
        &self,
        reply: MessageId,
        text: String,
        status: MessageStatus,
    ) -> Result<Option<Message>, StorageError>;

    /// Deletes the streaming reply `reply` (it got no text), if it is still streaming.
    async fn discard_reply(&self, reply: MessageId) -> Result<(), StorageError>;

    /// The message `reply` in `owner`'s conversation `conversation` (a bot's reply,
    /// or a user's message, which is always complete), with its delta ends while it
    /// streams; `None` when there is no such message there.
    async fn find_reply(
        &self,
        owner: UserId,
        conversation: ConversationId,
        reply: MessageId,
    ) -> Result<Option<ReplySnapshot>, StorageError>;

    /// The conversation of the message `reply` if it is `owner`'s; `None` when
    /// `owner` has no such message.
    async fn reply_conversation(
        &self,
        owner: UserId,
        reply: MessageId,
    ) -> Result<Option<ConversationId>, StorageError>;

    /// Marks the message `reply` in `owner`'s conversation `conversation`
    /// [interrupted](MessageStatus::Interrupted) with its last checkpoint's text if it
    /// is streaming, and returns it as stored then (a finished one, or a user's
    /// message, unchanged); `None` when there is no such message there.
    async fn interrupt_reply(
        &self,
        owner: UserId,
        conversation: ConversationId,
        reply: MessageId,
    ) -> Result<Option<Message>, StorageError>;

    /// Marks every streaming reply last heard of before `silent_since`
    /// [interrupted](MessageStatus::Interrupted) with its last checkpoint's text (its
    /// writer died); returns each as stored then, with its owner.
    async fn interrupt_stale_replies(
        &self,
        silent_since: Timestamp,
    ) -> Result<Vec<(UserId, Message)>, StorageError>;
}

/// Stores server-side sessions, found by the [digest](SessionKey::digest) of their
/// key: the key itself is never stored.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Stores a new session; returns its handle. Fails with
    /// [`StorageError::Conflict`] when its digest exists.
    async fn insert_session(&self, session: NewSession) -> Result<SessionId, StorageError>;

    /// The session whose key has `digest`, unless it has expired by `now`.
    async fn load_session(
        &self,
        digest: &SecretDigest,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StorageError>;

    /// Replaces the user and state of the session whose key has `digest`, and
    /// renews it; `false` when no such session is stored.
    async fn update_session(
        &self,
        digest: &SecretDigest,
        change: SessionChange,
    ) -> Result<bool, StorageError>;

    /// Marks the session whose key has `digest` used at `seen_at` and moves its
    /// expiry; `false` when no such session is stored.
    async fn touch_session(
        &self,
        digest: &SecretDigest,
        seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool, StorageError>;

    /// Deletes the session whose key has `digest`, if stored; returns whose it was.
    async fn delete_session(&self, digest: &SecretDigest) -> Result<Option<UserId>, StorageError>;

    /// Deletes the session `id` of `user`; `false` when `user` has no such session.
    async fn delete_user_session(&self, user: UserId, id: SessionId) -> Result<bool, StorageError>;

    /// Deletes every expired session by `now`; returns how many.
    async fn purge_expired_sessions(&self, now: Timestamp) -> Result<u64, StorageError>;

    /// The sessions of `user` that have not expired by `now`, the latest use first.
    async fn list_sessions(
        &self,
        user: UserId,
        now: Timestamp,
    ) -> Result<Vec<SessionRecord>, StorageError>;

    /// Deletes every session of `user` except `keep` (all of them when `None`);
    /// returns how many.
    async fn delete_other_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<u64, StorageError>;
}

/// Makes the random secrets handed to users: session keys and mailed tokens.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait KeyGenerator: Send + Sync {
    /// A new session key, unguessable: at least 128 random bits.
    fn session_key(&self) -> SessionKey;

    /// A new token to mail, unguessable: at least 128 random bits, and safe in a URL.
    fn secret_token(&self) -> SecretToken;
}

/// Sends mail to users.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Mailer: Send + Sync {
    /// Queues `mail` and returns at once: sending (and retrying a failed send) is the
    /// mailer's work, off the request that caused the mail, which never fails or
    /// waits because of it.
    fn send(&self, mail: AccountMail);
}

/// Says whether the store answers, for a readiness probe.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StoreProbe: Send + Sync {
    /// `Ok` when the store answers a trivial query.
    async fn ping(&self) -> Result<(), StorageError>;
}

/// Hashes and verifies passwords.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A salted hash of `password`.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Whether `attempt` is the password `hash` was made from.
    async fn verify(
        &self,
        attempt: &PasswordAttempt,
        hash: &PasswordHash,
    ) -> Result<bool, HashError>;
}

/// Answers the user's messages: a simulated bot, or a model behind a provider.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Bot: Send + Sync {
    /// Starts the reply to `context.message`. It returns once the reply has begun (the
    /// provider accepted the request); the text then arrives through the stream.
    ///
    /// # Errors
    /// [`BotError`] when no reply could be started.
    async fn reply(&self, context: ReplyContext) -> Result<ReplyStream, BotError>;

    /// Whether the reply depends on the conversation's history. A bot that answers
    /// the new message alone says `false`, and is given no history: reading it would
    /// cost a query per message for nothing.
    fn sees_history(&self) -> bool {
        true
    }

    /// A short title for a conversation that opened with the user's `message` and the
    /// bot's `reply`: a few words, without quotes or a final full stop.
    ///
    /// # Errors
    /// [`BotError`] when none could be made.
    async fn title(&self, message: &str, reply: &str) -> Result<String, BotError>;
}

/// A shared bot is a bot: the server chooses the provider at start-up.
#[async_trait]
impl<B: Bot + ?Sized> Bot for std::sync::Arc<B> {
    async fn reply(&self, context: ReplyContext) -> Result<ReplyStream, BotError> {
        (**self).reply(context).await
    }

    fn sees_history(&self) -> bool {
        (**self).sees_history()
    }

    async fn title(&self, message: &str, reply: &str) -> Result<String, BotError> {
        (**self).title(message, reply).await
    }
}

/// Tells the services what time it is, so tests can fix it or move it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// A shared clock is a clock: services can hold `Arc<dyn Clock>`, and a test keep a
/// handle on the [`ManualClock`](crate::ManualClock) it gave them.
impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// Work the services hand to the runtime: it runs to completion on its own.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs work in the background, apart from the request that started it (a reply
/// outlives its request).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Spawner: Send + Sync {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: Task);
}

/// Waits. Services wait through this port, so that tests drive waiting with the
/// [`ManualClock`](crate::ManualClock) instead of sleeping.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Timer: Send + Sync {
    /// Completes once `duration` has passed.
    fn sleep(&self, duration: Duration) -> Task;
}

/// Passes on changes to users' data: to their connections in this process, and
/// through the shared store to those of every other instance.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait EventPublisher: Send + Sync {
    /// Passes `event` on, without waiting: a publisher queues what it cannot deliver
    /// at once, and never holds up the use case.
    fn publish(&self, event: crate::Event);
}

/// A shared publisher is a publisher: the server chooses it at start-up.
impl<P: EventPublisher + ?Sized> EventPublisher for std::sync::Arc<P> {
    fn publish(&self, event: crate::Event) {
        (**self).publish(event);
    }
}
