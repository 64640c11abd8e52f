//! What can go wrong, in the domain and behind its ports.

use crate::ValidationError;

/// Any error an adapter wants to pass on as the cause of a port error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A cause that can be shared: a bot's error reaches every reader of a reply.
pub type SharedError = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why a use case failed. Each variant is something a caller can act on; the
/// `Display` text is safe to show to a user, the `source` chain is for logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input broke a rule; the error names the field and the rule.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// Sign-up with a name that is taken, in any letter case.
    #[error("that username is already taken")]
    UsernameTaken,
    /// Sign-up or a profile change with an email address another account has, in any
    /// letter case.
    #[error("that email address belongs to another account")]
    EmailTaken,
    /// A password given to confirm a change (a new password, deleting the account)
    /// is not the user's.
    #[error("the password is wrong")]
    WrongPassword,
    /// A mailed token that is unknown, used, expired, or no longer about the
    /// account's address.
    #[error("this link is invalid, used or expired: ask for a new one")]
    InvalidToken,
    /// A verification mail was asked for an account without an email address.
    #[error("add an email address to your profile first")]
    NoEmail,
    /// A verification mail was asked for an address already verified.
    #[error("your email address is already verified")]
    EmailAlreadyVerified,
    /// The account acting no longer exists (deleted meanwhile).
    #[error("this account no longer exists")]
    AccountGone,
    /// The user has no such session (it ended, or it is someone else's).
    #[error("session not found")]
    SessionNotFound,
    /// Login with an unknown name or a wrong password; deliberately one error for both.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The conversation does not exist or belongs to someone else; deliberately one
    /// error for both, so other users' ids stay secret.
    #[error("conversation not found")]
    ConversationNotFound,
    /// The storage cannot be reached right now; retrying later may succeed.
    #[error("the database is unavailable, try again shortly")]
    StorageUnavailable(#[source] StorageError),
    /// The storage failed in a way retrying will not fix.
    #[error("the database operation failed")]
    Storage(#[source] StorageError),
    /// The bot did not reply. The user's message was stored before the bot was asked
    /// and stays.
    #[error("the bot is unavailable, try again shortly")]
    BotUnavailable(#[source] BotError),
    /// The message does not exist in that conversation, or the conversation is not
    /// the user's.
    #[error("message not found")]
    MessageNotFound,
    /// A reply is still being written in that conversation; send again once it is
    /// done or stopped.
    #[error("a reply is still being written in this conversation: wait for it or stop it")]
    ReplyInProgress,
    /// The user holds as many live connections as allowed; close one first.
    #[error("too many connections: at most {most} per user; close another tab or device first")]
    TooManyConnections {
        /// How many a user may hold.
        most: usize,
    },
    /// The service is shutting down and starts no new reply.
    #[error("the service is shutting down, try again shortly")]
    ShuttingDown,
    /// Too many passwords are waiting to be checked (a flood of logins): the request
    /// was refused at once rather than queued; retrying shortly may succeed.
    #[error("too many logins are being checked right now, try again in a moment")]
    Busy,
    /// Too many logins with this username failed lately; its logins are refused,
    /// right password or not, until `retry_after` has passed.
    #[error("too many failed logins for this username, try again in {} s", retry_after.as_millis().div_ceil(1000).max(1))]
    LoginsSuspended {
        /// How long until logins with the username are taken again.
        retry_after: std::time::Duration,
    },
    /// The user has as many conversations as allowed; deleting one makes room.
    #[error("you have {most} conversations, the most allowed: delete some first")]
    TooManyConversations {
        /// How many conversations a user may have.
        most: u32,
    },
    /// Hashing or verifying a password failed.
    #[error("password hashing failed")]
    Hashing(#[source] HashError),
}

impl From<HashError> for Error {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self::Busy,
            HashError::Failed(_) => Self::Hashing(error),
        }
    }
}

impl From<crate::ReplyFailure> for Error {
    fn from(failure: crate::ReplyFailure) -> Self {
        match failure {
            crate::ReplyFailure::Bot(error) => Self::BotUnavailable(error),
            crate::ReplyFailure::BrokeOff => {
                let cause: BoxError = crate::ReplyFailure::BrokeOff.to_string().into();
                Self::BotUnavailable(BotError::Broken(cause.into()))
            }
            crate::ReplyFailure::Gone => Self::ConversationNotFound,
            crate::ReplyFailure::Unstored => Self::StorageUnavailable(StorageError::Unavailable(
                "the reply could not be stored".into(),
            )),
        }
    }
}

impl From<StorageError> for Error {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(_) => Self::StorageUnavailable(error),
            StorageError::Conflict | StorageError::Failed(_) => Self::Storage(error),
        }
    }
}

/// Why a storage port failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database cannot be reached, or is too busy to answer in time.
    #[error("the database is unavailable")]
    Unavailable(#[source] BoxError),
    /// A record with the same unique key already exists.
    #[error("a record with the same unique key already exists")]
    Conflict,
    /// Anything else: a bug, a broken schema, corrupt data.
    #[error("the database operation failed")]
    Failed(#[source] BoxError),
}

/// Why the bot could not produce a reply (or all of one). The texts name no provider
/// detail a user should not see; causes are for the log.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// The model provider cannot be reached (refused, unknown host, TLS).
    #[error("the model provider cannot be reached")]
    Unreachable(#[source] SharedError),
    /// The provider answered with an error status (its body is not kept: it may echo
    /// the request or a key).
    #[error("the model provider answered with status {status}")]
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// No text within the first-token timeout, or a silence longer than the idle
    /// timeout once text came.
    #[error("the model provider did not answer in time")]
    Timeout,
    /// The reply stream broke: cut off, a chunk that is not valid, an error reported
    /// inside the stream, or an end without the provider saying it was finished.
    #[error("the reply stream broke")]
    Broken(#[source] SharedError),
    /// The bot finished without a word.
    #[error("the bot replied with nothing")]
    Empty,
}

/// A password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// As many passwords as the hasher queues are waiting: it refused this one at
    /// once, so that a flood of logins cannot make anyone wait long.
    #[error("too many passwords are waiting to be hashed")]
    Busy,
    /// The hasher failed.
    #[error("the password hasher failed")]
    Failed(#[source] BoxError),
}

impl HashError {
    /// A hasher failure caused by `source`.
    pub fn new(source: impl Into<BoxError>) -> Self {
        Self::Failed(source.into())
    }
}
