//! The `chatbot` binary's library: configuration, and the wiring: it opens the
//! adapters, builds the domain's use cases over them, and hands those to the HTTP API.

mod background;
pub mod logging;
mod secret;
pub mod settings;

pub use secret::MIN_SECRET_BITS;

use std::net::TcpListener;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpServer;
use actix_web::cookie::Key;
use actix_web::dev::Server;
use actix_web::rt::signal::unix::{SignalKind, signal};
use chatbot_bot::SimulatedBot;
use chatbot_domain::SystemClock;
use chatbot_domain::ports::Bot;
use chatbot_domain::ports::Clock;
use chatbot_domain::ports::EventPublisher;
use chatbot_domain::services::{
    AccountPorts, AccountService, Background, ChatService, EventHub, FailedLoginLimit,
    HealthService, HubSettings, ReplySettings, SessionService, StreamSettings,
};
use chatbot_domain::use_cases::{Accounts, Chat, Sessions};
use chatbot_hashing::{BcryptHasher, BuildError, RandomKeys};
use chatbot_http::{Api, HttpConfig, Limit, RateLimitConfig, RateLimiters, Services};
use chatbot_mail::{LettreMailer, MailConfig, Retry, SmtpTls, Transport};
use chatbot_openai::{OpenAiBot, OpenAiConfig};
use chatbot_persistence::{
    Backend, ConnectError, Database, DatabaseUrl, EventsError, MigrationError, PgEvents,
    PoolOptions, UrlError,
};

use background::ActixRuntime;
use settings::{BotProvider, MailTls, MailTransport};
pub use settings::{Origin, Profile, Setting, Settings, SettingsError};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// `database.url` is unusable.
    #[error("invalid {setting}: {source}")]
    DatabaseUrl {
        /// `database.url` and where it was set.
        setting: Setting,
        /// What is wrong with it.
        #[source]
        source: UrlError,
    },
    /// The database cannot be opened.
    #[error("{setting}: {source}")]
    Connect {
        /// `database.url` and where it was set.
        setting: Setting,
        /// Why.
        #[source]
        source: ConnectError,
    },
    /// A migration failed.
    #[error(transparent)]
    Migration(#[from] MigrationError),
    /// The connections that carry events between instances cannot be opened.
    #[error("{setting}: {source}")]
    Events {
        /// `database.url` and where it was set.
        setting: Setting,
        /// Why (boxed: the driver's error is large, and start-up errors are rare).
        #[source]
        source: Box<EventsError>,
    },
    /// The password hasher cannot be built.
    #[error("invalid {setting}: {source}")]
    Hasher {
        /// `auth.bcrypt_cost` and where it was set.
        setting: Setting,
        /// Why it is unusable.
        #[source]
        source: BuildError,
    },
    /// The model provider cannot be set up.
    #[error("invalid {setting}: {source}")]
    Bot {
        /// `bot.base_url` and where it was set.
        setting: Setting,
        /// Why.
        #[source]
        source: chatbot_openai::BuildError,
    },
    /// The mail settings are unusable.
    #[error("invalid mail settings ({settings}): {source}")]
    Mail {
        /// The `mail.*` and `app.public_url` keys and where they were set.
        settings: String,
        /// What to fix.
        #[source]
        source: chatbot_mail::ConfigError,
    },
    /// A rate limit is zero.
    #[error("invalid rate_limit settings: every limit must be at least 1")]
    RateLimit,
    /// The session secret is missing, too short or too weak for production.
    #[error(
        "SECRET_KEY {problem} ({setting}): production needs at least {MIN_SECRET_BYTES} random bytes, e.g. SECRET_KEY=$(openssl rand -hex 32)"
    )]
    Secret {
        /// `session.secret` and where it was set.
        setting: Setting,
        /// What is wrong with it.
        problem: SecretProblem,
    },
    /// The handlers that stop the server on SIGTERM and SIGINT cannot be installed.
    #[error("cannot handle SIGTERM and SIGINT: {0}")]
    Signals(#[source] std::io::Error),
    /// The address cannot be listened on.
    #[error("cannot listen on {address} ({configured}): {source}")]
    Listen {
        /// `host:port`.
        address: String,
        /// `server.host` and `server.port`, and where they were set.
        configured: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `rollback --all` was neither confirmed nor given `--yes`.
    #[error(
        "not reverting every migration of {0}: that drops every table and all data; confirm on a terminal, or add --yes"
    )]
    NotConfirmed(String),
    /// The server stopped with an error.
    #[error("the server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// What is wrong with a session secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretProblem {
    /// None is set.
    Missing,
    /// It has fewer than [`MIN_SECRET_BYTES`] bytes.
    TooShort,
    /// It is long enough but plainly guessable (repeated, few different characters):
    /// fewer than [`MIN_SECRET_BITS`] bits of estimated entropy.
    Weak {
        /// The estimate.
        bits: u32,
    },
}

impl std::fmt::Display for SecretProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("is not set"),
            Self::TooShort => f.write_str("is too short"),
            Self::Weak { bits } => write!(
                f,
                "is too predictable (about {bits} bits of entropy, from its characters; at least {} needed)",
                secret::MIN_SECRET_BITS
            ),
        }
    }
}

/// The bot `bot.provider` names, as `[bot]` configures it.
///
/// # Errors
/// [`StartError`] when the provider cannot be set up.
fn bot(settings: &Settings) -> Result<Arc<dyn Bot>, StartError> {
    let bot = &settings.bot;
    Ok(match bot.provider {
        BotProvider::Simulated => {
            let simulated = SimulatedBot::with_delay(Duration::from_millis(bot.simulated_delay_ms));
            Arc::new(match bot.simulated_reply_words {
                Some(words) => simulated.with_reply_words(words),
                None => simulated,
            })
        }
        BotProvider::OpenAi => {
            let config = OpenAiConfig {
                base_url: bot.base_url.clone(),
                model: bot.model.clone().unwrap_or_default(),
                api_key: bot.api_key.clone(),
                max_tokens: bot.max_tokens,
                temperature: bot.temperature,
                connect_timeout: Duration::from_secs(bot.connect_timeout_seconds),
                first_token_timeout: Duration::from_secs(bot.first_token_timeout_seconds),
                idle_timeout: Duration::from_secs(bot.idle_timeout_seconds),
            };
            Arc::new(OpenAiBot::new(config).map_err(|source| StartError::Bot {
                setting: settings.setting("bot.base_url"),
                source,
            })?)
        }
    })
}

/// The fewest bytes of a session secret.
pub const MIN_SECRET_BYTES: usize = 32;

/// Opens the database named by the settings.
///
/// # Errors
/// An unusable URL, or a database that cannot be reached.
pub fn open_database(settings: &Settings) -> Result<Database, StartError> {
    connect(settings, &database_url(settings)?)
}

/// `database.url`, parsed.
///
/// # Errors
/// [`StartError::DatabaseUrl`] naming where the unusable URL was set.
pub fn database_url(settings: &Settings) -> Result<DatabaseUrl, StartError> {
    DatabaseUrl::parse(&settings.database.url).map_err(|source| StartError::DatabaseUrl {
        setting: settings.setting("database.url"),
        source,
    })
}

fn connect(settings: &Settings, url: &DatabaseUrl) -> Result<Database, StartError> {
    let options = PoolOptions {
        max_size: settings.database.pool_size,
        connection_timeout: Duration::from_secs(settings.database.connect_timeout_seconds),
    };
    Database::connect(url, &options).map_err(|source| StartError::Connect {
        setting: settings.setting("database.url"),
        source,
    })
}

/// The key signing session cookies, from `session.secret`.
///
/// # Errors
/// In production, a missing, short or plainly guessable secret; in development a
/// missing or short one is replaced by a random key, a weak one kept, with a warning.
pub fn cookie_key(settings: &Settings) -> Result<Key, StartError> {
    let secret = settings.session.secret.as_deref().unwrap_or_default();
    let bits = secret::estimated_entropy_bits(secret);
    let problem = if secret.is_empty() {
        SecretProblem::Missing
    } else if secret.len() < MIN_SECRET_BYTES {
        SecretProblem::TooShort
    } else if bits < secret::MIN_SECRET_BITS {
        SecretProblem::Weak { bits }
    } else {
        return Ok(Key::derive_from(secret.as_bytes()));
    };
    // Development keeps a long but weak key, so that processes sharing it (tests, a
    // second instance) keep sharing sessions.
    if settings.profile == Profile::Development && matches!(problem, SecretProblem::Weak { .. }) {
        tracing::warn!("SECRET_KEY {problem}; fine for development, refused in production");
        return Ok(Key::derive_from(secret.as_bytes()));
    }
    match settings.profile {
        Profile::Production => Err(StartError::Secret {
            setting: settings.setting("session.secret"),
            problem,
        }),
        Profile::Development => {
            tracing::warn!(
                "SECRET_KEY {problem}; using a random key, so sessions end when the server stops"
            );
            Ok(Key::generate())
        }
    }
}

/// The per-username limit on failed logins; `None` when the rate limits are off.
fn failed_login_limit(settings: &Settings) -> Option<FailedLoginLimit> {
    let limits = &settings.rate_limit;
    Some(FailedLoginLimit {
        failures: NonZeroU32::new(limits.failed_logins_per_username)?,
        window: Duration::from_secs(limits.failed_logins_window_seconds),
    })
    .filter(|_| limits.enabled)
}

/// The origin of `app.public_url` (`https://chat.example.com`) when it is configured:
/// then its pages, and no other but `cors.allowed_origins`, may change data, whatever
/// `Host` a request carries. Left at its default (whether or not a copy of
/// `config/default.toml` says it again), the request's own origin counts, so that the
/// client works at `http://127.0.0.1:5000` as well as at `http://localhost:5000`.
fn public_origin(settings: &Settings) -> Option<String> {
    if settings.app.public_url == settings::AppSettings::DEFAULT_PUBLIC_URL {
        return None;
    }
    url::Url::parse(&settings.app.public_url)
        .ok()
        .map(|url| url.origin().ascii_serialization())
        .filter(|origin| origin != "null")
}

/// The service, ready to serve: the database open and migrated, the use cases built
/// over the adapters. Clones share everything (each server worker holds one).
#[derive(Clone)]
pub struct Application {
    api: Api,
    sessions: Arc<dyn Sessions>,
    accounts: Arc<dyn Accounts>,
    chat: Arc<dyn Chat>,
    mailer: Arc<LettreMailer>,
    database: Database,
    settings: Settings,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("api", &self.api)
            .field("database", &self.database)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Opens the database, applies pending migrations (unless
    /// `database.migrate_on_start` is off), and builds the use cases on the system
    /// clock.
    ///
    /// # Errors
    /// [`StartError`] saying what is wrong.
    pub fn build(settings: Settings) -> Result<Self, StartError> {
        Self::build_with_clock(settings, Arc::new(SystemClock))
    }

    /// As [`build`](Self::build), with every "now" read from `clock`: tests about
    /// time move a [`ManualClock`](chatbot_domain::ManualClock) instead of sleeping.
    ///
    /// # Errors
    /// [`StartError`] saying what is wrong.
    pub fn build_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        // Every setting is checked before anything is opened or warned about.
        let url = database_url(&settings)?;
        let cookie_key = cookie_key(&settings)?;
        let hasher = BcryptHasher::with_core_count(
            settings.auth.bcrypt_cost,
            settings.auth.hash_queue_per_thread,
        )
        .map_err(|source| StartError::Hasher {
            setting: settings.setting("auth.bcrypt_cost"),
            source,
        })?;
        let trusted_proxies = settings.trusted_proxies();
        let limits = &settings.rate_limit;
        let rate_limiters = RateLimiters::new(&RateLimitConfig {
            auth: Limit {
                per_minute: limits.auth_per_minute,
                burst: limits.auth_burst,
            },
            messages: Limit {
                per_minute: limits.messages_per_minute,
                burst: limits.messages_burst,
            },
            writes: Limit {
                per_minute: limits.writes_per_minute,
                burst: limits.writes_burst,
            },
            mail: Limit {
                per_minute: limits.mail_per_minute,
                burst: limits.mail_burst,
            },
            trusted_proxies: trusted_proxies.clone(),
        })
        .ok_or(StartError::RateLimit)?;
        let mailer = Arc::new(mailer(&settings)?);
        let database = connect(&settings, &url)?;
        if settings.database.migrate_on_start {
            for name in database.run_pending_migrations()? {
                tracing::info!(migration = %name, "applied migration");
            }
        }
        let hub = EventHub::new(HubSettings {
            max_per_user: settings.realtime.max_sockets_per_user,
            inbox_capacity: settings.realtime.buffer_events,
        });
        let events = events(&settings, &database, &url, &hub)?;
        let sessions: Arc<dyn Sessions> = Arc::new(
            SessionService::new(
                database.clone(),
                RandomKeys,
                Arc::clone(&clock),
                settings.session_idle_timeout(),
            )
            .with_absolute_timeout(Duration::from_secs(
                settings.session.absolute_timeout_seconds,
            ))
            .with_events(Arc::clone(&events)),
        );
        let background = Background {
            spawner: Arc::new(ActixRuntime),
            timer: Arc::new(ActixRuntime),
        };
        let chat: Arc<dyn Chat> = Arc::new(
            ChatService::new(
                database.clone(),
                database.clone(),
                bot(&settings)?,
                Arc::clone(&clock),
                background,
            )
            .with_events(Arc::clone(&events))
            .with_max_conversations(settings.limits.max_conversations_per_user)
            .with_replies(ReplySettings {
                system_prompt: settings.bot.system_prompt.clone(),
                history_messages: settings.bot.history_messages,
                streaming: StreamSettings {
                    stale_after: settings.streaming.stale_after(),
                    ..StreamSettings::DEFAULT
                },
            }),
        );
        let accounts = AccountService::new(AccountPorts {
            users: Arc::new(database.clone()),
            sessions: Arc::new(database.clone()),
            tokens: Arc::new(database.clone()),
            hasher: Arc::new(hasher),
            keys: Arc::new(RandomKeys),
            mailer: Arc::clone(&mailer) as Arc<dyn chatbot_domain::ports::Mailer>,
            clock: Arc::clone(&clock),
            spawner: Arc::new(ActixRuntime),
        })
        .with_events(events);
        let accounts = match failed_login_limit(&settings) {
            Some(limit) => accounts.with_failed_login_limit(limit),
            None => accounts,
        };
        let accounts: Arc<dyn Accounts> = Arc::new(accounts);
        let services = Services {
            accounts: Arc::clone(&accounts),
            chat: Arc::clone(&chat),
            sessions: Arc::clone(&sessions),
            health: Arc::new(HealthService::new(database.clone())),
            realtime: Arc::new(hub),
        };
        let http = HttpConfig {
            cookie_key,
            cookie_name: settings.session.cookie_name.clone(),
            cookie_secure: settings.session.cookie_secure,
            session_idle_timeout: settings.session_idle_timeout(),
            allowed_origins: settings.cors.allowed_origins.clone(),
            public_origin: public_origin(&settings),
            trusted_proxies,
            max_body_bytes: settings.limits.max_body_bytes,
            max_message_chars: settings.limits.max_message_chars,
            body_timeout: settings.server.client_body_timeout(),
            rate_limiters,
            rate_limits_enabled: limits.enabled,
            stream_keep_alive: settings.streaming.keep_alive(),
            socket_ping_interval: Duration::from_secs(settings.realtime.ping_interval_seconds),
            socket_send_timeout: Duration::from_secs(settings.realtime.send_timeout_seconds),
        };
        Ok(Self {
            api: Api::new(services, http),
            sessions,
            accounts,
            chat,
            mailer,
            database,
            settings,
        })
    }

    /// The API as an actix app, for a server or an in-process test.
    pub fn app(
        &self,
    ) -> actix_web::App<
        impl actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody + use<>>,
            Error = actix_web::Error,
            InitError = (),
        > + use<>,
    > {
        self.api.app()
    }

    /// The database the service runs on.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Listens on `server.host:server.port`.
    ///
    /// # Errors
    /// [`StartError::Listen`] when the address is taken or not local.
    pub fn listen(&self) -> Result<TcpListener, StartError> {
        let address = format!(
            "{}:{}",
            self.settings.server.host, self.settings.server.port
        );
        TcpListener::bind(&address).map_err(|source| StartError::Listen {
            address,
            configured: format!(
                "{}, {}",
                self.settings.setting("server.host"),
                self.settings.setting("server.port")
            ),
            source,
        })
    }

    /// Serves the API on `listener`, with the client timeouts, connection limit and
    /// backlog of `[server]`, until the returned server is stopped (see
    /// [`stop_on_signals`]), then gives the requests in flight
    /// `server.shutdown_timeout_seconds` to finish; meanwhile makes the decoy password
    /// hash, deletes expired sessions and forgets idle clients' rate-limit state in the
    /// background.
    /// Must run inside an actix system.
    ///
    /// # Errors
    /// When the listener cannot be used.
    pub fn serve(self, listener: TcpListener) -> std::io::Result<Server> {
        let purge_every = Duration::from_secs(self.settings.session.purge_interval_seconds);
        actix_web::rt::spawn(purge_expired(
            Arc::clone(&self.sessions),
            Arc::clone(&self.accounts),
            self.api.config().rate_limiters.clone(),
            purge_every,
        ));
        let accounts = Arc::clone(&self.accounts);
        actix_web::rt::spawn(async move {
            if let Err(error) = accounts.prepare().await {
                tracing::warn!(%error, "could not make the decoy password hash at start-up; it is made on first use");
            }
        });
        actix_web::rt::spawn(interrupt_stale_replies(
            Arc::clone(&self.chat),
            self.settings.streaming.stale_after() / 2,
        ));
        let config = self.settings.server.clone();
        // `listener` was bound with std's fixed backlog; listening again sets ours
        // (Linux and the BSDs allow it), which `HttpServer::backlog` cannot once bound.
        let backlog = i32::try_from(config.backlog).unwrap_or(i32::MAX);
        socket2::SockRef::from(&listener).listen(backlog)?;
        let mut server = HttpServer::new(move || self.app())
            // Slow and idle clients: each phase of a connection has a deadline, so none
            // can hold one for ever (the body's is `client_body_timeout_seconds`, in the
            // JSON extractor: actix has none of its own).
            .client_request_timeout(config.client_request_timeout())
            .client_disconnect_timeout(config.client_disconnect_timeout())
            .keep_alive(config.keep_alive())
            .max_connections(config.max_connections)
            // A streamed reply is many small writes: each goes out at once, not held
            // back until the client acknowledges the one before (Nagle's algorithm).
            .tcp_nodelay(true)
            .shutdown_timeout(config.shutdown_timeout_seconds)
            // actix would stop abruptly on SIGINT: `stop_on_signals` does it gracefully.
            .disable_signals();
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        Ok(server.listen(listener)?.run())
    }

    /// How long requests in flight may take to finish once the server stops.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.server.shutdown_timeout_seconds)
    }

    /// The chat use cases, for stopping: the replies being written finish first.
    pub fn chat(&self) -> Arc<dyn Chat> {
        Arc::clone(&self.chat)
    }

    /// The mailer, to close once the server has stopped: it sends what is still
    /// queued for at most [`mail_grace`](Self::mail_grace); what is left then is
    /// logged and lost.
    pub fn mailer(&self) -> Arc<LettreMailer> {
        Arc::clone(&self.mailer)
    }

    /// `mail.shutdown_grace_seconds` as a duration.
    pub fn mail_grace(&self) -> Duration {
        Duration::from_secs(self.settings.mail.shutdown_grace_seconds)
    }
}

/// The mailer `[mail]` and `app.public_url` describe.
fn mailer(settings: &Settings) -> Result<LettreMailer, StartError> {
    let mail = &settings.mail;
    let transport = match mail.transport {
        MailTransport::File => Transport::File {
            dir: mail.file_dir.clone(),
        },
        MailTransport::Smtp => Transport::Smtp {
            url: mail.smtp_url.clone(),
            tls: match mail.smtp_tls {
                MailTls::None => SmtpTls::None,
                MailTls::StartTls => SmtpTls::StartTls,
                MailTls::Tls => SmtpTls::Tls,
            },
            username: mail.smtp_username.clone(),
            password: mail.smtp_password.clone(),
        },
    };
    LettreMailer::new(MailConfig {
        transport,
        from: mail.from.clone(),
        public_url: settings.app.public_url.clone(),
        retry: Retry {
            first: Duration::from_millis(mail.retry_first_ms),
            max: Duration::from_millis(mail.retry_max_ms),
        },
    })
    .map_err(|source| StartError::Mail {
        settings: [
            "mail.transport",
            "mail.file_dir",
            "mail.smtp_url",
            "mail.from",
            "mail.retry_first_ms",
            "mail.retry_max_ms",
            "app.public_url",
        ]
        .map(|key| settings.setting(key).to_string())
        .join(", "),
        source,
    })
}

/// Where the use cases' events go: straight to this process's sockets on SQLite (one
/// process per database file), through the database to every instance's on
/// PostgreSQL.
fn events(
    settings: &Settings,
    database: &Database,
    url: &DatabaseUrl,
    hub: &EventHub,
) -> Result<Arc<dyn EventPublisher>, StartError> {
    match database.backend() {
        Backend::Sqlite => Ok(Arc::new(hub.clone())),
        Backend::Postgres => PgEvents::start(url, hub.clone())
            .map(|events| Arc::new(events) as Arc<dyn EventPublisher>)
            .map_err(|source| StartError::Events {
                setting: settings.setting("database.url"),
                source: Box::new(source),
            }),
    }
}

/// Stops `server` gracefully on SIGTERM or SIGINT: it stops accepting connections,
/// gives the replies being written its shutdown timeout to finish (then keeps the rest
/// as interrupted), and gives the requests in flight the same timeout. Must run
/// inside the actix system that runs the server.
///
/// # Errors
/// When a signal handler cannot be installed.
pub fn stop_on_signals(
    server: &Server,
    grace: Duration,
    chat: Arc<dyn Chat>,
) -> std::io::Result<()> {
    for (kind, name) in [
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::interrupt(), "SIGINT"),
    ] {
        let mut received = signal(kind)?;
        let handle = server.handle();
        let chat = Arc::clone(&chat);
        actix_web::rt::spawn(async move {
            if received.recv().await.is_some() {
                tracing::info!(
                    signal = name,
                    grace_seconds = grace.as_secs(),
                    "stopping: no new connections; finishing the replies and requests in flight"
                );
                handle.pause().await;
                chat.finish_replies(grace).await;
                handle.stop(true).await;
            }
        });
    }
    Ok(())
}

/// Marks interrupted the replies whose writer died, at once (after a crash, the
/// restart frees their conversations) and then `every` so often.
async fn interrupt_stale_replies(chat: Arc<dyn Chat>, every: Duration) {
    let mut ticks = actix_web::rt::time::interval(every.max(Duration::from_millis(100)));
    loop {
        ticks.tick().await;
        match chat.interrupt_stale_replies().await {
            Ok(0) => {}
            Ok(count) => tracing::warn!(count, "marked interrupted the replies whose writer died"),
            Err(error) => tracing::warn!(%error, "could not look for replies whose writer died"),
        }
    }
}

/// Deletes expired sessions and mailed tokens, and forgets idle clients' rate-limit
/// state, `every` so often.
async fn purge_expired(
    sessions: Arc<dyn Sessions>,
    accounts: Arc<dyn Accounts>,
    limiters: RateLimiters,
    every: Duration,
) {
    let mut ticks = actix_web::rt::time::interval(every);
    loop {
        ticks.tick().await;
        limiters.forget_idle();
        match sessions.purge_expired().await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "deleted expired sessions"),
            Err(error) => tracing::warn!(%error, "could not delete expired sessions"),
        }
        match accounts.purge_expired_tokens().await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "deleted expired mailed tokens"),
            Err(error) => tracing::warn!(%error, "could not delete expired mailed tokens"),
        }
    }
}
