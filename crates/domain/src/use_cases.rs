//! The inbound side: the use cases a driving adapter (the HTTP API, a CLI, a job) calls.
//!
//! Each trait is one area of the product. The [`services`](crate::services) implement
//! them over the [ports](crate::ports); a driving adapter depends on these traits
//! only (usually as `Arc<dyn Chat>` and so on), so it can be tested against their
//! mockall mocks (`MockChat`, ..., with the `mocks` feature) without a database.

use std::time::Duration;

use async_trait::async_trait;

use crate::{
    Conversation, ConversationCursor, ConversationId, ConversationName, ConversationWithMessages,
    Email, Error, Exchange, Message, MessageCursor, MessageId, MessageText, NewAccount, Page,
    PageRequest, Password, PasswordAttempt, Profile, ProfileChange, ReplyFeed, Revision,
    SecretToken, SessionId, SessionKey, SessionRecord, StartedReply, User, UserId,
};

/// Accounts: signing up and logging in, the profile, the password, leaving, and the
/// mailed links that verify an address or reset a password.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Accounts: Send + Sync {
    /// Registers a user, shown by their username; with an email, mails a link to
    /// verify it. Does not log them in.
    ///
    /// # Errors
    /// [`Error::UsernameTaken`] when the name is taken in any letter case,
    /// [`Error::EmailTaken`] when the address is; storage and hashing failures.
    async fn sign_up(&self, account: NewAccount) -> Result<User, Error>;

    /// The user whose name (in any letter case) and password these are.
    ///
    /// Every failed attempt costs the same work, whether the name is unknown,
    /// malformed, or right with a wrong password, so response times do not tell which
    /// names exist.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] for any wrong name or password; storage and
    /// hashing failures.
    async fn verify_credentials(
        &self,
        username: &str,
        password: &PasswordAttempt,
    ) -> Result<User, Error>;

    /// The profile of `user`.
    ///
    /// # Errors
    /// [`Error::AccountGone`] when the account is gone; storage failures.
    async fn profile(&self, user: UserId) -> Result<Profile, Error>;

    /// Changes the profile of `user`; a new address is unverified, and a link to
    /// verify it is mailed there. The same address in another letter case is no change.
    ///
    /// # Errors
    /// [`Error::EmailTaken`]; [`Error::AccountGone`] when the account is gone;
    /// storage failures.
    async fn update_profile(&self, user: UserId, change: ProfileChange) -> Result<Profile, Error>;

    /// Replaces the password of `user`, who proves it is them with `current`, and
    /// ends every session of theirs but `keep` (the caller then gives that one a new
    /// key).
    ///
    /// # Errors
    /// [`Error::WrongPassword`]; storage and hashing failures.
    async fn change_password(
        &self,
        user: UserId,
        keep: SessionId,
        current: &PasswordAttempt,
        new: Password,
    ) -> Result<(), Error>;

    /// Deletes `user`, who proves it is them with `password`, with everything of
    /// theirs: conversations, messages, sessions, tokens.
    ///
    /// # Errors
    /// [`Error::WrongPassword`]; storage and hashing failures.
    async fn delete_account(&self, user: UserId, password: &PasswordAttempt) -> Result<(), Error>;

    /// Mails `user` a new link to verify their address; older links stop working.
    ///
    /// # Errors
    /// [`Error::NoEmail`], [`Error::EmailAlreadyVerified`]; storage failures.
    async fn send_verification(&self, user: UserId) -> Result<(), Error>;

    /// Marks verified the address the mailed `token` was sent to, if the account still
    /// has it. The token works once.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for a token that is unknown, used, expired, or for an
    /// address the account no longer has; storage failures.
    async fn verify_email(&self, token: &SecretToken) -> Result<(), Error>;

    /// Mails a link to reset the password to the account with `email`, if there is
    /// one. Returns at once, before anything is looked up, so that neither the answer
    /// nor its timing tells whether the address belongs to an account; the work and
    /// its failures happen in the background (and are logged).
    fn forgot_password(&self, email: Email);

    /// Sets the password of the account the mailed `token` was made for, and ends
    /// every session of theirs. The token works once; the address it was mailed to
    /// counts as verified, if the account still has it.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for a token that is unknown, used or expired; storage
    /// and hashing failures.
    async fn reset_password(&self, token: &SecretToken, new: Password) -> Result<(), Error>;

    /// Makes ready, at start-up, what the first failed login would otherwise make
    /// (a decoy hash at the hasher's cost), so that the first login for an unknown
    /// name does not take twice as long as the others and tell that the name is
    /// unknown.
    ///
    /// # Errors
    /// Hashing failures (the decoy is then made on first use).
    async fn prepare(&self) -> Result<(), Error>;

    /// Deletes every mailed token expired by now; returns how many.
    ///
    /// # Errors
    /// Storage failures.
    async fn purge_expired_tokens(&self) -> Result<u64, Error>;
}

/// Conversations and messages, each call on behalf of one user who only ever sees and
/// changes their own: another user's conversation is
/// [not found](Error::ConversationNotFound).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Chat: Send + Sync {
    /// Every conversation of `owner` with its messages: the most recently active
    /// conversation first, messages oldest first.
    ///
    /// # Errors
    /// Storage failures.
    async fn conversations(&self, owner: UserId) -> Result<Vec<ConversationWithMessages>, Error>;

    /// The current [`Revision`] of `owner`'s conversations and messages: while it
    /// stays the same, so does what [`conversations`](Self::conversations) returns.
    ///
    /// # Errors
    /// Storage failures.
    async fn revision(&self, owner: UserId) -> Result<Revision, Error>;

    /// A page of `owner`'s conversations, the most recently active first.
    ///
    /// # Errors
    /// Storage failures.
    async fn conversation_page(
        &self,
        owner: UserId,
        page: PageRequest<ConversationCursor>,
    ) -> Result<Page<Conversation, ConversationCursor>, Error>;

    /// A page of `owner`'s conversations, the most recently active first, each with
    /// all its messages.
    ///
    /// # Errors
    /// Storage failures.
    async fn conversation_page_with_messages(
        &self,
        owner: UserId,
        page: PageRequest<ConversationCursor>,
    ) -> Result<Page<ConversationWithMessages, ConversationCursor>, Error>;

    /// A page of the messages of `owner`'s conversation `id`: the latest ones before
    /// `page.before`, oldest first within the page, so that following `next` walks
    /// back through the history.
    ///
    /// # Errors
    /// [`Error::ConversationNotFound`]; storage failures.
    async fn message_page(
        &self,
        owner: UserId,
        id: ConversationId,
        page: PageRequest<MessageCursor>,
    ) -> Result<Page<Message, MessageCursor>, Error>;

    /// Starts an empty conversation for `owner`.
    ///
    /// # Errors
    /// Storage failures.
    async fn create_conversation(
        &self,
        owner: UserId,
        name: ConversationName,
    ) -> Result<Conversation, Error>;

    /// Renames `owner`'s conversation `id`.
    ///
    /// # Errors
    /// [`Error::ConversationNotFound`]; storage failures.
    async fn rename_conversation(
        &self,
        owner: UserId,
        id: ConversationId,
        name: ConversationName,
    ) -> Result<Conversation, Error>;

    /// Deletes `owner`'s conversation `id` and its messages.
    ///
    /// # Errors
    /// [`Error::ConversationNotFound`]; storage failures.
    async fn delete_conversation(&self, owner: UserId, id: ConversationId) -> Result<(), Error>;

    /// Adds `text` to `owner`'s conversation `id` and the bot's reply after it, and
    /// waits for the reply to end: as [`start_reply`](Self::start_reply), then the
    /// reply as stored at its end (complete, or interrupted by a stop).
    ///
    /// # Errors
    /// As [`start_reply`](Self::start_reply); [`Error::BotUnavailable`] when the bot
    /// fails, in which case the user's message stays stored (and what text came, as a
    /// failed reply).
    async fn send_message(
        &self,
        owner: UserId,
        id: ConversationId,
        text: MessageText,
    ) -> Result<Exchange, Error>;

    /// Adds `text` to `owner`'s conversation `id`, with the bot's reply after it,
    /// empty and streaming, and starts writing the reply in the background: it is
    /// written to its end and stored whether or not anyone follows it. The user's
    /// message is stored before the bot is asked, and no transaction stays open while
    /// the bot writes.
    ///
    /// # Errors
    /// [`Error::ConversationNotFound`] and [`Error::ReplyInProgress`] (a reply is
    /// being written in that conversation, by any process): then nothing is stored
    /// and the bot is not asked; [`Error::ShuttingDown`]; storage failures.
    async fn start_reply(
        &self,
        owner: UserId,
        id: ConversationId,
        text: MessageText,
    ) -> Result<StartedReply, Error>;

    /// Follows the bot's reply `reply` in `owner`'s conversation `id`, wherever it is
    /// being written: its events after delta `after` (from the start, with the reply
    /// as created, when `None`), then its outcome; for a finished reply (or a user's
    /// message), its outcome at once.
    ///
    /// # Errors
    /// [`Error::MessageNotFound`] when the conversation has no such message; storage
    /// failures.
    async fn follow_reply(
        &self,
        owner: UserId,
        id: ConversationId,
        reply: MessageId,
        after: Option<u64>,
    ) -> Result<ReplyFeed, Error>;

    /// Stops the bot's reply `reply` in `owner`'s conversation `id` (any of theirs
    /// when `None`), wherever it is being written: the bot is cancelled, the text so
    /// far kept as interrupted. Returns the reply as stored; a finished one (or a
    /// user's message) is returned as it is.
    ///
    /// # Errors
    /// [`Error::MessageNotFound`] when there is no such message; storage failures.
    async fn stop_reply(
        &self,
        owner: UserId,
        id: Option<ConversationId>,
        reply: MessageId,
    ) -> Result<Message, Error>;

    /// Marks interrupted every streaming reply whose writer has given no sign of life
    /// for too long (its process died), so its conversation takes messages again;
    /// returns how many.
    ///
    /// # Errors
    /// Storage failures.
    async fn interrupt_stale_replies(&self) -> Result<u64, Error>;

    /// For shutting down: starts no new reply, lets the replies being written finish
    /// within `grace`, then stops the rest (kept as interrupted).
    async fn finish_replies(&self, grace: Duration);
}

/// Server-side sessions: what a session cookie's key stands for, how long it lasts,
/// and how it ends.
///
/// A session ends after an idle timeout without use; using it renews the deadline
/// (not on every use: at most once per a tenth of the timeout, and at least once a
/// minute, so an active user's requests do not each cost a write).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Sessions: Send + Sync {
    /// Starts a session for `user` (none: a session that is not logged in) holding
    /// the session layer's opaque `state`, from a client that says it is `user_agent`;
    /// returns its new, random key.
    ///
    /// # Errors
    /// Storage failures.
    async fn start(
        &self,
        user: Option<UserId>,
        user_agent: Option<String>,
        state: String,
    ) -> Result<SessionKey, Error>;

    /// The live session with `key`, its deadline renewed if that is due; `None` when
    /// there is none (never was, ended, or expired).
    ///
    /// A renewal that fails (the database takes no writes for now) does not fail the
    /// load: the session keeps its deadline, and a later use renews it.
    ///
    /// # Errors
    /// Storage failures reading it.
    async fn resume(&self, key: &SessionKey) -> Result<Option<SessionRecord>, Error>;

    /// Replaces the user and state of the session with `key` and renews it; `false`
    /// when it has ended meanwhile (then nothing is stored: saving it again would undo
    /// a logout).
    ///
    /// # Errors
    /// Storage failures.
    async fn update(
        &self,
        key: &SessionKey,
        user: Option<UserId>,
        state: String,
    ) -> Result<bool, Error>;

    /// Moves the deadline of the session with `key` a whole idle timeout from now.
    ///
    /// # Errors
    /// Storage failures.
    async fn renew(&self, key: &SessionKey) -> Result<(), Error>;

    /// Ends the session with `key`, if it exists: its key finds nothing from now on.
    ///
    /// # Errors
    /// Storage failures.
    async fn end(&self, key: &SessionKey) -> Result<(), Error>;

    /// Ends the session `id` of `user`: its key finds nothing from now on.
    ///
    /// # Errors
    /// [`Error::SessionNotFound`] when `user` has no such live session; storage
    /// failures.
    async fn end_one(&self, user: UserId, id: SessionId) -> Result<(), Error>;

    /// Ends every session of `user` but `keep`; returns how many ended.
    ///
    /// # Errors
    /// Storage failures.
    async fn end_all_but(&self, user: UserId, keep: SessionId) -> Result<u64, Error>;

    /// The live sessions of `user`, the latest used first.
    ///
    /// # Errors
    /// Storage failures.
    async fn list(&self, user: UserId) -> Result<Vec<SessionRecord>, Error>;

    /// Whether the session with `key` is live, without renewing it: a connection
    /// open for hours checks this, and must not keep its session alive by itself.
    ///
    /// # Errors
    /// Storage failures.
    async fn is_live(&self, key: &SessionKey) -> Result<bool, Error>;

    /// Deletes every expired session; returns how many.
    ///
    /// # Errors
    /// Storage failures.
    async fn purge_expired(&self) -> Result<u64, Error>;
}

/// Whether the service can do its work, for probes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Health: Send + Sync {
    /// `Ok` when the storage answers.
    ///
    /// # Errors
    /// [`Error::StorageUnavailable`] (or [`Error::Storage`]) when it does not.
    async fn ready(&self) -> Result<(), Error>;
}

/// Each user's events as they happen, for a connection that stays open (a WebSocket).
pub trait Realtime: Send + Sync {
    /// The events of `user` from now on, for one connection; dropping the
    /// subscription closes it.
    ///
    /// # Errors
    /// [`Error::TooManyConnections`] when the user holds as many as allowed.
    fn subscribe(&self, user: UserId) -> Result<crate::services::Subscription, Error>;
}
