//! Configuration: `config/default.toml`, then `config/<APP_ENV>.toml`, then the
//! environment, which always wins.
//!
//! The files are read from the folder named by `CHATBOT_CONFIG_DIR` (default
//! `config`, relative to the working directory); a file missing there is taken from
//! the copy built into the binary, so the binary runs from any directory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

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

    fn file_name(self) -> &'static str {
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
    /// Size limits of requests.
    pub limits: LimitSettings,
    /// Logging.
    pub log: LogSettings,
    /// The profile the settings were loaded for.
    #[serde(skip, default = "development")]
    pub profile: Profile,
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
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// `limits.max_body_bytes`: larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `limits.max_message_chars`: longer messages get 400.
    pub max_message_chars: usize,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// `log.level`: a tracing filter such as `info` or `chatbot=debug`; `RUST_LOG`
    /// overrides it.
    pub level: String,
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// `APP_ENV` names no profile.
    #[error("APP_ENV={0:?} is not a profile: use development or production")]
    UnknownProfile(String),
    /// A file or variable could not be read or has the wrong type.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
    /// A value is out of its range.
    #[error("invalid configuration: {0}")]
    OutOfRange(String),
}

const EMBEDDED: [(&str, &str); 3] = [
    ("default", include_str!("../../../config/default.toml")),
    (
        "development",
        include_str!("../../../config/development.toml"),
    ),
    (
        "production",
        include_str!("../../../config/production.toml"),
    ),
];

/// The seed's variables, and the keys they stand for.
const ALIASES: [(&str, &str); 4] = [
    ("DATABASE_URL", "database.url"),
    ("SECRET_KEY", "session.secret"),
    ("PORT", "server.port"),
    ("HOST", "server.host"),
];

impl Settings {
    /// Loads the settings from the files and this process's environment (after
    /// reading `.env`, if there is one).
    ///
    /// # Errors
    /// [`SettingsError`] saying which value is wrong.
    pub fn load() -> Result<Self, SettingsError> {
        // A missing .env is normal; a broken one should not be ignored silently.
        if let Err(error) = dotenvy::dotenv() {
            if !error.not_found() {
                return Err(SettingsError::OutOfRange(format!(
                    "cannot read .env: {error}"
                )));
            }
        }
        Self::from_environment(std::env::vars().collect())
    }

    /// Loads the settings from the files and the variables in `environment`.
    ///
    /// # Errors
    /// [`SettingsError`] saying which value is wrong.
    pub fn from_environment(environment: HashMap<String, String>) -> Result<Self, SettingsError> {
        let profile = Profile::parse(environment.get("APP_ENV").map_or("", String::as_str))?;
        let folder = environment
            .get("CHATBOT_CONFIG_DIR")
            .map_or_else(|| PathBuf::from("config"), PathBuf::from);

        let mut builder = Config::builder();
        for (name, embedded) in EMBEDDED {
            if name != "default" && name != profile.file_name() {
                continue;
            }
            let on_disk = folder.join(format!("{name}.toml"));
            builder = if on_disk.is_file() {
                builder.add_source(File::from(on_disk))
            } else {
                builder.add_source(File::from_str(embedded, FileFormat::Toml))
            };
        }
        for (alias, key) in ALIASES {
            let canonical = format!("CHATBOT__{}", key.replace('.', "__").to_ascii_uppercase());
            if let (Some(value), false) =
                (environment.get(alias), environment.contains_key(&canonical))
            {
                builder = builder.set_override(key, value.as_str())?;
            }
        }
        builder = builder.add_source(
            Environment::with_prefix("CHATBOT")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("cors.allowed_origins")
                .try_parsing(true)
                .source(Some(environment)),
        );

        let mut settings: Self = builder.build()?.try_deserialize()?;
        settings.profile = profile;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), SettingsError> {
        let out_of_range = |message: String| Err(SettingsError::OutOfRange(message));
        if self.database.pool_size == 0 {
            return out_of_range("database.pool_size must be at least 1".into());
        }
        if self.session.idle_timeout_seconds == 0 {
            return out_of_range("session.idle_timeout_seconds must be at least 1".into());
        }
        if self.session.purge_interval_seconds == 0 {
            return out_of_range("session.purge_interval_seconds must be at least 1".into());
        }
        if self.limits.max_message_chars == 0 {
            return out_of_range("limits.max_message_chars must be at least 1".into());
        }
        if let Some(origin) = self
            .cors
            .allowed_origins
            .iter()
            .find(|o| *o == "*" || !(o.starts_with("http://") || o.starts_with("https://")))
        {
            return out_of_range(format!(
                "cors.allowed_origins: {origin:?} is not an origin such as https://chat.example.com (and * is never allowed with credentials)"
            ));
        }
        Ok(())
    }

    /// `session.idle_timeout_seconds` as a duration.
    pub fn session_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.session.idle_timeout_seconds)
    }
}
