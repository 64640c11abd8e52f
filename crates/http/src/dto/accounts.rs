//! The JSON shapes of the account routes (SPEC §11).

use chatbot_domain::{DisplayName, Email, Profile, SessionId, SessionRecord, Timestamp};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};

use std::sync::LazyLock;

use super::{class, password, rfc3339, trimmed};

/// A user's profile.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Profile)]
pub(crate) struct ProfileOut<'a> {
    #[schema(minimum = 1)]
    id: i64,
    /// As typed at signup; it does not change.
    username: &'a str,
    /// The name shown for them; their username until they choose one.
    display_name: &'a str,
    /// Where mail reaches them; `null` when they gave none.
    #[schema(required = true)]
    email: Option<&'a str>,
    /// Whether they opened the link mailed to that address.
    email_verified: bool,
    /// When they signed up: RFC 3339, UTC, milliseconds.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime, examples("2026-11-25T06:07:14.123Z"))]
    created_at: Timestamp,
}

impl<'a> From<&'a Profile> for ProfileOut<'a> {
    fn from(profile: &'a Profile) -> Self {
        Self {
            id: profile.user.id.get(),
            username: profile.user.username.as_str(),
            display_name: profile.display_name.as_str(),
            email: profile.email.as_ref().map(Email::as_str),
            email_verified: profile.email_verified,
            created_at: profile.user.created_at,
        }
    }
}

/// A change to the profile: a field left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(
    as = ProfileChange,
    examples(json!({"display_name": "Alice Liddell", "email": "alice@example.com"}))
)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileBody {
    #[serde(default, deserialize_with = "not_null")]
    #[schema(schema_with = display_name)]
    pub(crate) display_name: Option<String>,
    /// Left out: kept. `null`: removed. An address: stored unverified, and a link to
    /// verify it is mailed there (the same address in other letter case is no change).
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = optional_email)]
    pub(crate) email: Option<Option<String>>,
}

/// A field that is present, even as `null`, is `Some`; a field left out is `None`
/// (through `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A field that may be left out (`None`, through `#[serde(default)]`) but, when
/// present, is a string: `null` is refused.
fn not_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    String::deserialize(deserializer).map(Some)
}

/// The password a user has and the one they want instead.
#[derive(Deserialize, ToSchema)]
#[schema(
    as = PasswordChange,
    examples(json!({"current_password": "correct horse battery", "new_password": "battery staple"}))
)]
pub(crate) struct PasswordChangeBody {
    /// The password now (400 `validation_failed` when wrong).
    #[schema(format = Password)]
    pub(crate) current_password: String,
    #[schema(schema_with = password)]
    pub(crate) new_password: String,
}

/// The account's password, to confirm deleting it.
#[derive(Deserialize, ToSchema)]
#[schema(as = PasswordConfirmation, examples(json!({"password": "correct horse battery"})))]
pub(crate) struct PasswordBody {
    /// The password now (400 `validation_failed` when wrong).
    #[schema(format = Password)]
    pub(crate) password: String,
}

/// One of the user's sessions: where they are logged in.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub(crate) struct SessionOut<'a> {
    /// A handle to end it with; not its key, which logs no one in.
    #[schema(minimum = 1)]
    id: i64,
    /// When it started (the login): RFC 3339, UTC, milliseconds.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime, examples("2026-11-25T06:07:14.123Z"))]
    created_at: Timestamp,
    /// When it was last used, to the minute (a session is renewed at most once a
    /// minute): RFC 3339, UTC, milliseconds.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime, examples("2026-11-25T06:09:55.020Z"))]
    last_seen_at: Timestamp,
    /// What the client said it was when it logged in; `null` when it said nothing.
    #[schema(
        required = true,
        examples("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")
    )]
    user_agent: Option<&'a str>,
    /// Whether it is the session of this request.
    current: bool,
}

impl<'a> SessionOut<'a> {
    /// `record` as listed to the session `current`.
    pub(crate) fn new(record: &'a SessionRecord, current: SessionId) -> Self {
        Self {
            id: record.id.get(),
            created_at: record.created_at,
            last_seen_at: record.last_seen_at,
            user_agent: record.user_agent.as_deref(),
            current: record.id == current,
        }
    }
}

/// A token from a mailed link.
#[derive(Deserialize, ToSchema)]
#[schema(as = Token, examples(json!({"token": "q2Xb8vQ0kD7rT1mZ4yW9cN3pH6sJ5fL0aE2uG8iK1oB"})))]
pub(crate) struct TokenBody {
    /// The `token` of the link's query string, as it came.
    pub(crate) token: String,
}

/// Where to mail a link to reset the password.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ForgotPassword, examples(json!({"email": "alice@example.com"})))]
pub(crate) struct ForgotBody {
    #[schema(schema_with = email)]
    pub(crate) email: String,
}

/// A token from a reset link, and the new password.
#[derive(Deserialize, ToSchema)]
#[schema(
    as = PasswordReset,
    examples(json!({"token": "q2Xb8vQ0kD7rT1mZ4yW9cN3pH6sJ5fL0aE2uG8iK1oB", "new_password": "battery staple"}))
)]
pub(crate) struct ResetBody {
    /// The `token` of the link's query string, as it came.
    pub(crate) token: String,
    #[schema(schema_with = password)]
    pub(crate) new_password: String,
}

// Passwords and tokens stay out of `{:?}`, and so out of any log.
super::secret_debug!(PasswordChangeBody, PasswordBody, TokenBody, ResetBody);

/// An email address.
pub(super) fn email() -> ObjectBuilder {
    static PATTERN: LazyLock<String> = LazyLock::new(|| {
        let space = class(char::is_whitespace);
        let specials: String = Email::LOCAL_SPECIALS
            .chars()
            .map(|c| format!("\\u{:04x}", u32::from(c)))
            .collect();
        let atom = format!("[A-Za-z0-9{specials}]+");
        let label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
        format!("^{space}*{atom}(?:\\.{atom})*@{label}(?:\\.{label})*{space}*$")
    });
    // No `format: email`: white space around an address is trimmed, which the format
    // would refuse; the pattern says what the server takes.
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(PATTERN.as_str()))
        .description(Some(format!(
            "An email address (`name@example.com`, ASCII), at most {} characters, \
             trimmed; unique among accounts, letter case aside.",
            Email::MAX_CHARS
        )))
        .max_length(Some(Email::MAX_CHARS))
}

/// An email address, or `null`.
fn optional_email() -> ObjectBuilder {
    email().schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

/// A display name.
fn display_name() -> ObjectBuilder {
    static PATTERN: LazyLock<String> = LazyLock::new(|| {
        trimmed(
            DisplayName::trims,
            DisplayName::allows,
            DisplayName::MAX_CHARS,
        )
    });
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(format!(
            "Trimmed (of Unicode white space), then 1 to {} characters without control \
             characters; the pattern says exactly that.",
            DisplayName::MAX_CHARS
        )))
        .pattern(Some(PATTERN.as_str()))
}
