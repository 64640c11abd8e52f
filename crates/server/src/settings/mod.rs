//! Configuration: `config/default.toml`, then `config/<APP_ENV>.toml`, then the
//! environment, which always wins.
//!
//! The files are read from the folder named by `CHATBOT_CONFIG_DIR` (default
//! `config`, relative to the working directory), each laid over the copy built into
//! the binary: the binary runs from any directory, and a file there may set only
//! some keys.

mod sources;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, ConfigError, Environment, File, FileFormat};
use serde::Deserialize;

use sources::{ALIASES, Sources};
pub use sources::{Origin, Setting};

/// The configuration profile, from `APP_ENV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Local work: plain-HTTP cookies, a random session secret when none is set.
    Development,
    /// Behind HTTPS: secure cookies, and `SECRET_KEY` is required.
    Production,
}

impl Profile {
    fn parse(name: &str) -> Result<Self, SettingsError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            _ => Err(SettingsError::UnknownProfile(name.to_owned())),
        }
    }

    /// `development` or `production`: the name of its configuration file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

/// Every setting, by section.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Where the server listens.
    pub server: ServerSettings,
    /// The database.
    pub database: DatabaseSettings,
    /// Session cookies and their lifetime.
    pub session: SessionSettings,
    /// Browser origins allowed to call the API.
    pub cors: CorsSettings,
    /// Password hashing.
    pub auth: AuthSettings,
    /// Rate limits.
    pub rate_limit: RateLimitSettings,
    /// Size limits of requests.
    pub limits: LimitSettings,
    /// Who replies to messages.
    pub bot: BotSettings,
    /// Replies as they are written: event streams and their writers.
    pub streaming: StreamingSettings,
    /// WebSockets.
    pub realtime: RealtimeSettings,
    /// The service as people reach it.
    pub app: AppSettings,
    /// Mail to users.
    pub mail: MailSettings,
    /// Logging.
    pub log: LogSettings,
    /// The profile the settings were loaded for.
    #[serde(skip, default = "development")]
    pub profile: Profile,
    /// Where each value came from.
    #[serde(skip)]
    sources: Sources,
    /// What was set but not used, in sentences to log once logging is up.
    #[serde(skip)]
    warnings: Vec<String>,
}

fn development() -> Profile {
    Profile::Development
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// `server.host` (`HOST`).
    pub host: String,
    /// `server.port` (`PORT`).
    pub port: u16,
    /// `server.workers`: request threads; one per core when unset.
    #[serde(default)]
    pub workers: Option<usize>,
    /// `server.shutdown_timeout_seconds`: how long, after SIGTERM or Ctrl-C, requests
    /// in flight may take to finish before their connections are closed.
    pub shutdown_timeout_seconds: u64,
    /// `server.client_request_timeout_seconds`: how long a new connection has to send
    /// its first request's head (request line and headers); then 408 and closed. It
    /// also closes connections that never send a byte.
    pub client_request_timeout_seconds: u64,
    /// `server.client_body_timeout_seconds`: how long a request's body may take to
    /// arrive once its head has; then 408 `request_timeout` and closed.
    pub client_body_timeout_seconds: u64,
    /// `server.client_disconnect_timeout_seconds`: how long a connection being closed
    /// may take to finish (flush the response, and take the client's end of the close)
    /// before it is dropped.
    pub client_disconnect_timeout_seconds: u64,
    /// `server.keep_alive_seconds`: how long an idle connection stays open for the
    /// next request; 0 closes each connection after its response.
    pub keep_alive_seconds: u64,
    /// `server.max_connections`: connections open at once, per worker; beyond it new
    /// connections wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// `server.backlog`: connections the kernel queues before they are accepted
    /// (capped by `net.core.somaxconn`).
    pub backlog: u32,
    /// `server.trusted_proxies`: proxies whose forwarding headers (`X-Forwarded-For`,
    /// `Forwarded`, `X-Forwarded-Host`, `X-Forwarded-Proto`) are believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl ServerSettings {
    /// `client_request_timeout_seconds` as a duration.
    pub fn client_request_timeout(&self) -> Duration {
        Duration::from_secs(self.client_request_timeout_seconds)
    }

    /// `client_body_timeout_seconds` as a duration.
    pub fn client_body_timeout(&self) -> Duration {
        Duration::from_secs(self.client_body_timeout_seconds)
    }

    /// `client_disconnect_timeout_seconds` as a duration.
    pub fn client_disconnect_timeout(&self) -> Duration {
        Duration::from_secs(self.client_disconnect_timeout_seconds)
    }

    /// `keep_alive_seconds` as a duration; zero turns keep-alive off.
    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.keep_alive_seconds)
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `database.url` (`DATABASE_URL`).
    pub url: String,
    /// `database.pool_size`: most connections open at once.
    pub pool_size: u32,
    /// `database.connect_timeout_seconds`: how long a request waits for a connection.
    pub connect_timeout_seconds: u64,
    /// `database.migrate_on_start`: apply pending migrations when serving starts.
    pub migrate_on_start: bool,
}

/// `[session]`
#[derive(Clone, Deserialize)]
pub struct SessionSettings {
    /// `session.secret` (`SECRET_KEY`): signs session cookies.
    #[serde(default)]
    pub secret: Option<String>,
    /// `session.idle_timeout_seconds`: a session ends after this long unused.
    pub idle_timeout_seconds: u64,
    /// `session.absolute_timeout_seconds`: a session ends this long after its login,
    /// however busy.
    pub absolute_timeout_seconds: u64,
    /// `session.cookie_name`.
    pub cookie_name: String,
    /// `session.cookie_secure`: send the cookie over HTTPS only.
    pub cookie_secure: bool,
    /// `session.purge_interval_seconds`: how often expired sessions are deleted.
    pub purge_interval_seconds: u64,
}

impl std::fmt::Debug for SessionSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSettings")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("idle_timeout_seconds", &self.idle_timeout_seconds)
            .field("absolute_timeout_seconds", &self.absolute_timeout_seconds)
            .field("cookie_name", &self.cookie_name)
            .field("cookie_secure", &self.cookie_secure)
            .field("purge_interval_seconds", &self.purge_interval_seconds)
            .finish()
    }
}

/// `[cors]`
#[derive(Debug, Clone, Deserialize)]
pub struct CorsSettings {
    /// `cors.allowed_origins`: exact origins, e.g. `http://localhost:3000`.
    pub allowed_origins: Vec<String>,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// `auth.bcrypt_cost`: 4 to 31; each step doubles the work.
    pub bcrypt_cost: u32,
    /// `auth.hash_queue_per_thread`: passwords that may wait per hashing thread (one
    /// per core); past them a login, signup or password change gets 503 at once.
    pub hash_queue_per_thread: usize,
}

/// `[rate_limit]`
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    /// `rate_limit.enabled`: whether the limits apply.
    pub enabled: bool,
    /// `rate_limit.auth_per_minute`: logins and signups per client address.
    pub auth_per_minute: u32,
    /// `rate_limit.auth_burst`: how many of those may come at once.
    pub auth_burst: u32,
    /// `rate_limit.messages_per_minute`: messages per user.
    pub messages_per_minute: u32,
    /// `rate_limit.messages_burst`: how many of those may come at once.
    pub messages_burst: u32,
    /// `rate_limit.mail_per_minute`: mails asked for, per client address and per account.
    pub mail_per_minute: u32,
    /// `rate_limit.mail_burst`: how many of those may come at once.
    pub mail_burst: u32,
    /// `rate_limit.writes_per_minute`: every other change a user makes, per user.
    pub writes_per_minute: u32,
    /// `rate_limit.writes_burst`: how many of those may come at once.
    pub writes_burst: u32,
    /// `rate_limit.failed_logins_per_username`: failed logins with one username,
    /// from any address, before its logins are refused for the rest of the window.
    pub failed_logins_per_username: u32,
    /// `rate_limit.failed_logins_window_seconds`: how long those failures count.
    pub failed_logins_window_seconds: u64,
    /// `rate_limit.trusted_proxies`: the older name of `server.trusted_proxies`; both
    /// are read.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// `limits.max_body_bytes`: larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `limits.max_message_chars`: longer messages get 400.
    pub max_message_chars: usize,
    /// `limits.max_conversations_per_user`: past it, creating one gets 409.
    pub max_conversations_per_user: u32,
}

/// `[bot]`
#[derive(Clone, Deserialize)]
pub struct BotSettings {
    /// `bot.provider`.
    pub provider: BotProvider,
    /// `bot.base_url`: the OpenAI-compatible API, before `/chat/completions`.
    pub base_url: String,
    /// `bot.model`: required with the `openai` provider.
    #[serde(default)]
    pub model: Option<String>,
    /// `bot.api_key` (`OPENAI_API_KEY`): sent as a bearer token when set.
    #[serde(default)]
    pub api_key: Option<String>,
    /// `bot.system_prompt`.
    pub system_prompt: String,
    /// `bot.history_messages`: the latest messages the model sees besides the new one.
    pub history_messages: usize,
    /// `bot.max_tokens`: the longest reply, in tokens.
    pub max_tokens: u32,
    /// `bot.temperature`: the provider's default when unset.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// `bot.connect_timeout_seconds`.
    pub connect_timeout_seconds: u64,
    /// `bot.first_token_timeout_seconds`: from the request to the first piece of text.
    pub first_token_timeout_seconds: u64,
    /// `bot.idle_timeout_seconds`: the longest silence between two pieces.
    pub idle_timeout_seconds: u64,
    /// `bot.simulated_delay_ms`: the simulated bot's pause between words.
    pub simulated_delay_ms: u64,
    /// `bot.simulated_reply_words`: the length of every simulated reply, in words
    /// (none: as composed).
    #[serde(default)]
    pub simulated_reply_words: Option<NonZeroUsize>,
}

impl std::fmt::Debug for BotSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotSettings")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("history_messages", &self.history_messages)
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .finish_non_exhaustive()
    }
}

/// `[streaming]`
#[derive(Debug, Clone, Deserialize)]
pub struct StreamingSettings {
    /// `streaming.keep_alive_seconds`: the longest an event stream stays silent before
    /// it sends a keep-alive comment.
    pub keep_alive_seconds: u64,
    /// `streaming.stale_after_seconds`: how long a streaming reply may go without a
    /// sign of life from its writer before any instance marks it interrupted.
    pub stale_after_seconds: u64,
}

impl StreamingSettings {
    /// `streaming.keep_alive_seconds` as a duration.
    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.keep_alive_seconds)
    }

    /// `streaming.stale_after_seconds` as a duration.
    pub fn stale_after(&self) -> Duration {
        Duration::from_secs(self.stale_after_seconds)
    }
}

/// `[realtime]`
#[derive(Debug, Clone, Deserialize)]
pub struct RealtimeSettings {
    /// `realtime.max_sockets_per_user`: WebSockets one user may hold per instance.
    pub max_sockets_per_user: usize,
    /// `realtime.ping_interval_seconds`: how often an idle socket is pinged and its
    /// session checked; one silent for two of these is dropped.
    pub ping_interval_seconds: u64,
    /// `realtime.send_timeout_seconds`: how long a frame may take to leave before the
    /// client counts as too slow (closed with 4008).
    pub send_timeout_seconds: u64,
    /// `realtime.buffer_events`: events that may wait for one socket; one more and it
    /// is closed with 4008.
    pub buffer_events: usize,
}

/// `[app]`
#[derive(Debug, Clone, Deserialize)]
pub struct AppSettings {
    /// `app.public_url`: where people reach the service; mailed links point there.
    pub public_url: String,
}

impl AppSettings {
    /// `app.public_url` unless configured otherwise (`config/default.toml`'s).
    pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:5000";
}

/// `[mail]`
#[derive(Clone, Deserialize)]
pub struct MailSettings {
    /// `mail.transport`: files to open by hand, or an SMTP relay.
    pub transport: MailTransport,
    /// `mail.file_dir`: where the `file` transport writes its `.eml` files.
    pub file_dir: PathBuf,
    /// `mail.from`: the sender's mailbox.
    pub from: String,
    /// `mail.smtp_url`: `smtp://[user:password@]host[:port]`.
    pub smtp_url: String,
    /// `mail.smtp_tls`: none, STARTTLS, or implicit TLS.
    pub smtp_tls: MailTls,
    /// `mail.smtp_username`: wins over the URL's.
    #[serde(default)]
    pub smtp_username: Option<String>,
    /// `mail.smtp_password`: wins over the URL's; never logged.
    #[serde(default)]
    pub smtp_password: Option<String>,
    /// `mail.retry_first_ms`: the wait before a failed mail is tried again.
    pub retry_first_ms: u64,
    /// `mail.retry_max_ms`: the longest wait between tries (each doubles the last).
    pub retry_max_ms: u64,
    /// `mail.shutdown_grace_seconds`: how long queued mail may take to go at shutdown.
    pub shutdown_grace_seconds: u64,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("transport", &self.transport)
            .field("file_dir", &self.file_dir)
            .field("from", &self.from)
            // The URL may carry a password.
            .field("smtp_url", &"[redacted]")
            .field("smtp_tls", &self.smtp_tls)
            .field("smtp_username", &self.smtp_username)
            .field(
                "smtp_password",
                &self.smtp_password.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// How mail leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Written as `.eml` files, for development.
    File,
    /// Sent to an SMTP relay.
    Smtp,
}

/// How the connection to the SMTP relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    /// Plain text: a relay on the same machine or network only.
    None,
    /// Plain text upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Who replies to messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BotProvider {
    /// A bot without a model: deterministic, instant (or paced), needs nothing.
    Simulated,
    /// A model behind an OpenAI-compatible Chat Completions API.
    OpenAi,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// `log.level`: a tracing filter such as `info` or `chatbot=debug`; `RUST_LOG`
    /// overrides it.
    pub level: String,
    /// `log.format`: lines for people, or JSON objects for a log pipeline.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event: development's default.
    Text,
    /// One JSON object per line: production's default.
    Json,
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// `APP_ENV` names no profile.
    #[error("APP_ENV={0:?} is not a profile: use development or production")]
    UnknownProfile(String),
    /// A file cannot be read or parsed.
    #[error("invalid configuration: {0}")]
    Unreadable(#[source] Box<ConfigError>),
    /// A value has the wrong type, e.g. text for a number.
    #[error("invalid configuration: {setting}: {source}")]
    WrongType {
        /// The setting and where its value came from.
        setting: Setting,
        /// What is wrong with it.
        #[source]
        source: Box<ConfigError>,
    },
    /// A value is outside what its setting accepts.
    #[error("invalid configuration: {setting}: {problem}")]
    Invalid {
        /// The setting and where its value came from.
        setting: Setting,
        /// What is wrong with the value, and what would be right.
        problem: String,
    },
    /// The `.env` file exists but cannot be read.
    #[error("cannot read .env: {0}")]
    DotEnv(#[from] dotenvy::Error),
}

impl From<ConfigError> for SettingsError {
    fn from(error: ConfigError) -> Self {
        Self::Unreadable(Box::new(error))
    }
}

/// `origin` as browsers send it (`scheme://host[:port]`, no trailing slash), or why it
/// cannot be one.
fn normalize_origin(origin: &str) -> Result<String, String> {
    let origin = origin.trim();
    let refuse = |why: &str| {
        Err(format!(
            "{origin:?} {why}; write origins like https://chat.example.com"
        ))
    };
    if origin == "*" {
        return refuse("is a wildcard, which browsers never combine with cookies");
    }
    let Ok(uri) = origin.parse::<actix_web::http::Uri>() else {
        return refuse("is not a URL");
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return refuse("is not an http:// or https:// origin");
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return refuse("has a path; an origin is only scheme, host and port");
    }
    Ok(origin.trim_end_matches('/').to_owned())
}

/// The key a configuration error is about, when it names one.
fn key_of(error: &ConfigError) -> Option<String> {
    match error {
        ConfigError::Type { key, .. } | ConfigError::At { key, .. } => key.clone(),
        _ => None,
    }
}

/// Keys whose value is one of a few words, and those words.
const CHOICES: [(&str, &[&str]); 4] = [
    ("log.format", &["text", "json"]),
    ("bot.provider", &["simulated", "openai"]),
    ("mail.transport", &["file", "smtp"]),
    ("mail.smtp_tls", &["none", "starttls", "tls"]),
];

const EMBEDDED: [(&str, &str); 3] = [
    ("default", include_str!("../../../../config/default.toml")),
    (
        "development",
        include_str!("../../../../config/development.toml"),
    ),
    (
        "production",
        include_str!("../../../../config/production.toml"),
    ),
];

impl Settings {
    /// Loads the settings from the files and this process's environment, and the
    /// variables of `.env` in the working directory that the environment lacks.
    ///
    /// # Errors
    /// [`SettingsError`] saying which value is wrong and where it was set.
    pub fn load() -> Result<Self, SettingsError> {
        Self::read(std::env::vars().collect(), Some(Path::new(".env")))
    }

    /// Loads the settings from the files and the variables in `environment`.
    ///
    /// # Errors
    /// [`SettingsError`] saying which value is wrong and where it was set.
    pub fn from_environment(environment: HashMap<String, String>) -> Result<Self, SettingsError> {
        Self::read(environment, None)
    }

    fn read(
        mut environment: HashMap<String, String>,
        dotenv: Option<&Path>,
    ) -> Result<Self, SettingsError> {
        let mut sources = Sources::with_dotenv(&mut environment, dotenv)?;
        let profile = Profile::parse(environment.get("APP_ENV").map_or("", String::as_str))?;
        let folder = environment
            .get("CHATBOT_CONFIG_DIR")
            .map_or_else(|| PathBuf::from("config"), PathBuf::from);

        let mut builder = Config::builder();
        for (name, embedded) in EMBEDDED {
            if name != "default" && name != profile.name() {
                continue;
            }
            // The file on disk is laid over the copy built in, so one that sets a few
            // keys, or one from an older release without the newer keys, still works.
            builder = builder.add_source(File::from_str(embedded, FileFormat::Toml));
            let on_disk = folder.join(format!("{name}.toml"));
            if on_disk.is_file() {
                let text = std::fs::read_to_string(&on_disk).map_err(|error| {
                    ConfigError::Message(format!("cannot read {}: {error}", on_disk.display()))
                })?;
                builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
                sources.add_file(on_disk, &text)?;
            }
        }
        let mut warnings = sources.unknown_keys(EMBEDDED[0].1)?;
        // RUST_LOG, the usual variable, wins over log.level when it is a filter.
        let rust_log = environment.remove("RUST_LOG");
        // Aliased keys are set here as text, from the canonical variable or else its
        // alias, and kept from the environment source below, whose list parsing would
        // turn a secret of digits into a number.
        for (alias, key) in ALIASES {
            let canonical_value = environment.remove(&sources::variable_of(key));
            if let Some(value) = canonical_value.as_ref().or_else(|| environment.get(alias)) {
                builder = builder.set_override(key, value.as_str())?;
            }
        }
        builder = builder.add_source(
            Environment::with_prefix("CHATBOT")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("cors.allowed_origins")
                .with_list_parse_key("rate_limit.trusted_proxies")
                .with_list_parse_key("server.trusted_proxies")
                .try_parsing(true)
                .source(Some(environment)),
        );
        let config = builder.build()?;
        for (key, allowed) in CHOICES {
            let value = config.get_string(key)?;
            if !allowed.contains(&value.as_str()) {
                return Err(SettingsError::Invalid {
                    setting: sources.setting(key),
                    problem: format!("{value:?} is not one of {}", allowed.join(", ")),
                });
            }
        }
        let mut settings: Self =
            config
                .try_deserialize()
                .map_err(|error| match key_of(&error) {
                    Some(key) => SettingsError::WrongType {
                        setting: sources.setting(&key),
                        source: Box::new(error),
                    },
                    None => error.into(),
                })?;
        if let Some(filter) = rust_log {
            match tracing_subscriber::EnvFilter::try_new(&filter) {
                Ok(_) => settings.log.level = filter,
                Err(error) => warnings.push(format!(
                    "RUST_LOG{} {filter:?} is not a tracing filter such as info or chatbot=debug ({error}); using log.level {:?} ({}) instead",
                    sources.place_of("RUST_LOG"),
                    settings.log.level,
                    sources.origin("log.level"),
                )),
            }
        }
        settings.profile = profile;
        settings.sources = sources;
        settings.warnings = warnings;
        settings.cors.allowed_origins = settings
            .cors
            .allowed_origins
            .iter()
            .map(|origin| normalize_origin(origin))
            .collect::<Result<_, _>>()
            .map_err(|problem| SettingsError::Invalid {
                setting: settings.setting("cors.allowed_origins"),
                problem,
            })?;
        settings.check()?;
        if settings.profile == Profile::Production {
            let warnings = settings.production_mail_warnings();
            settings.warnings.extend(warnings);
        }
        Ok(settings)
    }

    /// `key` and where its value came from, to name it in a message.
    pub fn setting(&self, key: &str) -> Setting {
        self.sources.setting(key)
    }

    /// What was set but is not used (misspelt keys, a `RUST_LOG` that is no filter),
    /// one sentence each, for the log.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn check(&self) -> Result<(), SettingsError> {
        let at_least_one = [
            ("database.pool_size", u64::from(self.database.pool_size)),
            (
                "database.connect_timeout_seconds",
                self.database.connect_timeout_seconds,
            ),
            (
                "session.idle_timeout_seconds",
                self.session.idle_timeout_seconds,
            ),
            (
                "session.absolute_timeout_seconds",
                self.session.absolute_timeout_seconds,
            ),
            (
                "session.purge_interval_seconds",
                self.session.purge_interval_seconds,
            ),
            ("limits.max_body_bytes", self.limits.max_body_bytes as u64),
            (
                "limits.max_message_chars",
                self.limits.max_message_chars as u64,
            ),
            (
                "server.workers",
                self.server.workers.map_or(1, |w| w as u64),
            ),
            // Zero would turn these timeouts off: a client could then hold a connection
            // for ever.
            (
                "server.client_request_timeout_seconds",
                self.server.client_request_timeout_seconds,
            ),
            (
                "server.client_body_timeout_seconds",
                self.server.client_body_timeout_seconds,
            ),
            (
                "server.client_disconnect_timeout_seconds",
                self.server.client_disconnect_timeout_seconds,
            ),
            ("server.max_connections", self.server.max_connections as u64),
            ("server.backlog", u64::from(self.server.backlog)),
            (
                "rate_limit.auth_per_minute",
                u64::from(self.rate_limit.auth_per_minute),
            ),
            (
                "rate_limit.auth_burst",
                u64::from(self.rate_limit.auth_burst),
            ),
            (
                "rate_limit.messages_per_minute",
                u64::from(self.rate_limit.messages_per_minute),
            ),
            (
                "rate_limit.messages_burst",
                u64::from(self.rate_limit.messages_burst),
            ),
            (
                "rate_limit.mail_per_minute",
                u64::from(self.rate_limit.mail_per_minute),
            ),
            (
                "rate_limit.mail_burst",
                u64::from(self.rate_limit.mail_burst),
            ),
            (
                "rate_limit.writes_per_minute",
                u64::from(self.rate_limit.writes_per_minute),
            ),
            (
                "rate_limit.writes_burst",
                u64::from(self.rate_limit.writes_burst),
            ),
            (
                "rate_limit.failed_logins_per_username",
                u64::from(self.rate_limit.failed_logins_per_username),
            ),
            (
                "rate_limit.failed_logins_window_seconds",
                self.rate_limit.failed_logins_window_seconds,
            ),
            (
                "limits.max_conversations_per_user",
                u64::from(self.limits.max_conversations_per_user),
            ),
            ("mail.retry_first_ms", self.mail.retry_first_ms),
            ("mail.retry_max_ms", self.mail.retry_max_ms),
            ("bot.max_tokens", u64::from(self.bot.max_tokens)),
            (
                "bot.connect_timeout_seconds",
                self.bot.connect_timeout_seconds,
            ),
            (
                "bot.first_token_timeout_seconds",
                self.bot.first_token_timeout_seconds,
            ),
            ("bot.idle_timeout_seconds", self.bot.idle_timeout_seconds),
            (
                "streaming.keep_alive_seconds",
                self.streaming.keep_alive_seconds,
            ),
            (
                "streaming.stale_after_seconds",
                self.streaming.stale_after_seconds,
            ),
            (
                "realtime.max_sockets_per_user",
                self.realtime.max_sockets_per_user as u64,
            ),
            (
                "realtime.ping_interval_seconds",
                self.realtime.ping_interval_seconds,
            ),
            (
                "realtime.send_timeout_seconds",
                self.realtime.send_timeout_seconds,
            ),
            ("realtime.buffer_events", self.realtime.buffer_events as u64),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, value)| *value == 0) {
            return Err(SettingsError::Invalid {
                setting: self.setting(key),
                problem: "must be at least 1".to_owned(),
            });
        }
        // SPEC §9: keep-alives at least every 15 s; a dead writer's reply freed within
        // 60 s, which the sweep every half `stale_after` keeps up to 40 s.
        for (key, value, most) in [
            (
                "streaming.keep_alive_seconds",
                self.streaming.keep_alive_seconds,
                15,
            ),
            (
                "streaming.stale_after_seconds",
                self.streaming.stale_after_seconds,
                40,
            ),
        ] {
            if value > most {
                return Err(SettingsError::Invalid {
                    setting: self.setting(key),
                    problem: format!("must be at most {most}"),
                });
            }
        }
        if self.bot.provider == BotProvider::OpenAi
            && self
                .bot
                .model
                .as_deref()
                .is_none_or(|m| m.trim().is_empty())
        {
            return Err(SettingsError::Invalid {
                setting: self.setting("bot.model"),
                problem: "is required when bot.provider is openai: set CHATBOT__BOT__MODEL \
                    to the model to ask, e.g. llama3.2 for Ollama or gpt-4o-mini for OpenAI"
                    .to_owned(),
            });
        }
        if let Some(temperature) = self.bot.temperature
            && !(0.0..=2.0).contains(&temperature)
        {
            return Err(SettingsError::Invalid {
                setting: self.setting("bot.temperature"),
                problem: format!("{temperature} is not between 0 and 2"),
            });
        }
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(SettingsError::Invalid {
                setting: self.setting("log.level"),
                problem: format!(
                    "{:?} is not a tracing filter such as info or chatbot=debug: {error}",
                    self.log.level
                ),
            });
        }
        Ok(())
    }

    /// What in `[mail]` and `app.public_url` suits development only: production
    /// starts anyway (`docker compose up` must work before a relay is set up), and
    /// says so.
    fn production_mail_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.mail.transport == MailTransport::File {
            warnings.push(format!(
                "{}: mail is written to files under {} and reaches nobody; set \
                 CHATBOT__MAIL__TRANSPORT=smtp and CHATBOT__MAIL__SMTP_URL (README: Accounts and mail)",
                self.setting("mail.transport"),
                self.mail.file_dir.display(),
            ));
        }
        let local = ["://localhost", "://127.", "://[::1]"];
        if local.iter().any(|host| self.app.public_url.contains(host)) {
            warnings.push(format!(
                "{}: mailed links point at {}, which only this machine reaches; set \
                 CHATBOT__APP__PUBLIC_URL to the address people use",
                self.setting("app.public_url"),
                self.app.public_url,
            ));
        }
        warnings
    }

    /// The proxies whose forwarding headers are believed: `server.trusted_proxies`
    /// and the older `rate_limit.trusted_proxies`.
    pub fn trusted_proxies(&self) -> Vec<std::net::IpAddr> {
        // As peers are compared: `::ffff:10.0.0.1` is 10.0.0.1.
        let mut proxies: Vec<std::net::IpAddr> = self
            .server
            .trusted_proxies
            .iter()
            .chain(&self.rate_limit.trusted_proxies)
            .map(std::net::IpAddr::to_canonical)
            .collect();
        proxies.sort_unstable();
        proxies.dedup();
        proxies
    }

    /// `session.idle_timeout_seconds` as a duration.
    pub fn session_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.session.idle_timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let environment = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        Settings::from_environment(environment.collect())
    }

    #[test]
    fn a_config_file_on_disk_needs_to_set_only_what_it_changes() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(
            folder.path().join("default.toml"),
            "[server]\nport = 6001\n",
        )
        .unwrap();
        let settings = load(&[("CHATBOT_CONFIG_DIR", folder.path().to_str().unwrap())]).unwrap();
        assert_eq!(settings.server.port, 6001);
        assert_eq!(settings.server.shutdown_timeout_seconds, 30);
        assert_eq!(settings.log.level, "info");
    }

    #[test]
    fn defaults_match_the_spec() {
        let settings = load(&[]).unwrap();
        assert_eq!(
            (settings.server.host.as_str(), settings.server.port),
            ("127.0.0.1", 5000)
        );
        assert_eq!(settings.database.url, "sqlite://data/chatbot.db");
        assert_eq!(settings.session.idle_timeout_seconds, 1800);
        assert!(!settings.session.cookie_secure);
        assert_eq!(
            settings.cors.allowed_origins,
            ["http://localhost:3000", "http://localhost:5173"]
        );
        assert_eq!(settings.auth.bcrypt_cost, 12);
        assert_eq!(settings.app.public_url, AppSettings::DEFAULT_PUBLIC_URL);
        assert_eq!(settings.limits.max_body_bytes, 65_536);
        assert_eq!(settings.profile, Profile::Development);
    }

    #[test]
    fn client_timeouts_and_connection_limits_have_production_defaults() {
        let server = load(&[]).unwrap().server;
        assert_eq!(server.client_request_timeout(), Duration::from_secs(5));
        assert_eq!(server.client_body_timeout(), Duration::from_secs(15));
        assert_eq!(server.client_disconnect_timeout(), Duration::from_secs(1));
        assert_eq!(server.keep_alive(), Duration::from_secs(75));
        assert_eq!((server.max_connections, server.backlog), (10_000, 1024));
        let tuned = load(&[
            ("CHATBOT__SERVER__CLIENT_BODY_TIMEOUT_SECONDS", "2"),
            ("CHATBOT__SERVER__KEEP_ALIVE_SECONDS", "0"),
            ("CHATBOT__SERVER__MAX_CONNECTIONS", "64"),
        ])
        .unwrap()
        .server;
        assert_eq!(tuned.client_body_timeout(), Duration::from_secs(2));
        assert_eq!(tuned.keep_alive(), Duration::ZERO, "0 turns keep-alive off");
        assert_eq!(tuned.max_connections, 64);
    }

    #[test]
    fn the_streaming_settings_keep_the_spec_bounds() {
        let streaming = load(&[]).unwrap().streaming;
        assert_eq!(
            (streaming.keep_alive_seconds, streaming.stale_after_seconds),
            (15, 30)
        );
        for (key, too_long, most) in [
            ("CHATBOT__STREAMING__KEEP_ALIVE_SECONDS", "16", 15),
            ("CHATBOT__STREAMING__STALE_AFTER_SECONDS", "41", 40),
        ] {
            let error = load(&[(key, too_long)]).unwrap_err().to_string();
            assert!(
                error.contains(&format!("must be at most {most}")),
                "{error}"
            );
            let error = load(&[(key, "0")]).unwrap_err().to_string();
            assert!(error.contains("must be at least 1"), "{error}");
        }
    }

    #[test]
    fn a_timeout_that_would_never_fire_is_refused() {
        for key in [
            "CHATBOT__SERVER__CLIENT_REQUEST_TIMEOUT_SECONDS",
            "CHATBOT__SERVER__CLIENT_BODY_TIMEOUT_SECONDS",
            "CHATBOT__SERVER__CLIENT_DISCONNECT_TIMEOUT_SECONDS",
            "CHATBOT__SERVER__MAX_CONNECTIONS",
            "CHATBOT__SERVER__BACKLOG",
        ] {
            let error = load(&[(key, "0")]).unwrap_err().to_string();
            assert!(error.contains("must be at least 1"), "{key}: {error}");
        }
    }

    #[test]
    fn production_warns_of_mail_that_reaches_nobody() {
        let production =
            load(&[("APP_ENV", "production"), ("SECRET_KEY", &"k".repeat(40))]).unwrap();
        let warnings = production.warnings().join("\n");
        assert!(warnings.contains("mail.transport"), "{warnings}");
        assert!(warnings.contains("app.public_url"), "{warnings}");
        let relayed = load(&[
            ("APP_ENV", "production"),
            ("SECRET_KEY", &"k".repeat(40)),
            ("CHATBOT__MAIL__TRANSPORT", "smtp"),
            ("CHATBOT__MAIL__SMTP_PASSWORD", "secret"),
            ("CHATBOT__APP__PUBLIC_URL", "https://chat.example.com"),
        ])
        .unwrap();
        assert_eq!(
            relayed.warnings(),
            [] as [String; 0],
            "the SMTP password is a known key"
        );
        assert_eq!(relayed.mail.smtp_password.as_deref(), Some("secret"));
        assert!(!format!("{:?}", relayed.mail).contains("secret"));
        assert!(
            load(&[]).unwrap().warnings().is_empty(),
            "development: files are the point"
        );
    }

    #[test]
    fn production_profile_secures_cookies() {
        let settings = load(&[("APP_ENV", "production")]).unwrap();
        assert!(settings.session.cookie_secure);
        assert_eq!(settings.profile, Profile::Production);
    }

    #[test]
    fn environment_wins_and_aliases_work() {
        let settings = load(&[
            ("PORT", "8080"),
            ("HOST", "0.0.0.0"),
            ("DATABASE_URL", "postgres://db/chat"),
            (
                "CHATBOT__SESSION__SECRET",
                "0123456789012345678901234567890123456789",
            ),
            ("CHATBOT__SESSION__COOKIE_SECURE", "true"),
            (
                "CHATBOT__CORS__ALLOWED_ORIGINS",
                " https://a.example/ , http://b.example:8080",
            ),
        ])
        .unwrap();
        assert_eq!(
            (settings.server.host.as_str(), settings.server.port),
            ("0.0.0.0", 8080)
        );
        assert_eq!(settings.database.url, "postgres://db/chat");
        assert_eq!(
            settings.session.secret.as_deref(),
            Some("0123456789012345678901234567890123456789"),
            "an all-digit secret stays a string"
        );
        assert!(settings.session.cookie_secure);
        assert_eq!(
            settings.cors.allowed_origins,
            ["https://a.example", "http://b.example:8080"]
        );
    }

    #[test]
    fn the_canonical_variable_beats_its_alias() {
        let settings = load(&[("PORT", "8080"), ("CHATBOT__SERVER__PORT", "9090")]).unwrap();
        assert_eq!(settings.server.port, 9090);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let settings = load(&[
            ("SECRET_KEY", "a-very-secret-key-of-more-than-32-bytes"),
            ("OPENAI_API_KEY", "sk-a-very-secret-api-key"),
        ])
        .unwrap();
        assert_eq!(
            settings.bot.api_key.as_deref(),
            Some("sk-a-very-secret-api-key")
        );
        let debug = format!("{settings:?}");
        assert!(!debug.contains("a-very-secret"), "{debug}");
    }

    #[test]
    fn the_bot_settings_have_the_spec_defaults() {
        let bot = load(&[]).unwrap().bot;
        assert_eq!(bot.provider, BotProvider::Simulated);
        assert_eq!(bot.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(
            (bot.model, bot.api_key, bot.temperature),
            (None, None, None)
        );
        assert_eq!((bot.history_messages, bot.max_tokens), (20, 1024));
        assert_eq!(
            (
                bot.connect_timeout_seconds,
                bot.first_token_timeout_seconds,
                bot.idle_timeout_seconds,
                bot.simulated_delay_ms
            ),
            (5, 60, 30, 0)
        );
        assert_eq!(bot.simulated_reply_words, None);
        let sized = load(&[("CHATBOT__BOT__SIMULATED_REPLY_WORDS", "100")])
            .unwrap()
            .bot;
        assert_eq!(sized.simulated_reply_words, NonZeroUsize::new(100));
        let openai = load(&[
            ("CHATBOT__BOT__PROVIDER", "openai"),
            ("CHATBOT__BOT__MODEL", "llama3.2"),
            ("CHATBOT__BOT__TEMPERATURE", "0.5"),
        ])
        .unwrap()
        .bot;
        assert_eq!(openai.provider, BotProvider::OpenAi);
        assert_eq!(openai.temperature, Some(0.5));
        let hot = load(&[("CHATBOT__BOT__TEMPERATURE", "3")]).unwrap_err();
        assert!(hot.to_string().contains("bot.temperature"), "{hot}");
    }
}
