//! The chatbot's HTTP API on actix-web: the seed's routes and JSON shapes, JSON
//! errors for every failure, server-side sessions, CORS and a CSRF defence.
//!
//! [`app`] builds the actix [`App`] from an [`AppState`] (the domain's services over
//! the adapters named by an [`Adapters`] type) and an [`HttpConfig`]. This crate knows
//! the domain's ports, never the adapters behind them.

use std::time::Duration;

use actix_cors::Cors;
use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::{App, Error, middleware, web};
use chatbot_domain::SystemClock;
use chatbot_domain::ports::{
    Bot, ConversationRepository, MessageRepository, PasswordHasher, SessionRepository, StoreProbe,
    UserRepository,
};
use chatbot_domain::services::{AccountService, ChatService};

mod csrf;
mod dto;
mod error;
mod json;
mod list_cache;
pub mod openapi;
mod rate_limit;
mod request_log;
mod respond;
mod routes;
mod session;

use list_cache::ListCache;

pub use error::{ApiError, ErrorBody, ErrorKind};
pub use rate_limit::{Limit, RateLimitConfig, RateLimiters};
pub use session::{CurrentUser, DatabaseSessionStore};

/// The adapters the API runs on, named once so handlers need one type parameter.
pub trait Adapters: 'static {
    /// Where users, conversations, messages and sessions are stored.
    type Store: UserRepository
        + ConversationRepository
        + MessageRepository
        + SessionRepository
        + StoreProbe
        + Clone
        + 'static;
    /// How passwords are hashed.
    type Hasher: PasswordHasher + 'static;
    /// Who replies to messages.
    type Bot: Bot + 'static;
}

/// The services the handlers call.
#[derive(Debug)]
pub struct AppState<A: Adapters> {
    accounts: AccountService<A::Store, A::Hasher, SystemClock>,
    chat: ChatService<A::Store, A::Store, A::Bot, SystemClock>,
    lists: ListCache,
    store: A::Store,
    max_message_chars: usize,
}

impl<A: Adapters> AppState<A> {
    /// The services over `store`, `hasher` and `bot`; messages may hold up to
    /// `max_message_chars` characters.
    pub fn new(store: A::Store, hasher: A::Hasher, bot: A::Bot, max_message_chars: usize) -> Self {
        Self {
            accounts: AccountService::new(store.clone(), hasher, SystemClock),
            chat: ChatService::new(store.clone(), store.clone(), bot, SystemClock),
            lists: ListCache::default(),
            store,
            max_message_chars,
        }
    }
}

/// How the HTTP layer behaves.
#[derive(Clone)]
pub struct HttpConfig {
    /// Signs session cookies; at least 32 bytes of secret.
    pub cookie_key: Key,
    /// The session cookie's name.
    pub cookie_name: String,
    /// Whether the session cookie is sent over HTTPS only.
    pub cookie_secure: bool,
    /// How long a session lives without use.
    pub session_idle_timeout: Duration,
    /// The origins browsers may call the API from, with credentials; pages on other
    /// origins (but the server's own) may not change data.
    pub allowed_origins: Vec<String>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive once its head has: then 408.
    pub body_timeout: Duration,
    /// The rate limiters; build them once, so every worker shares them.
    pub rate_limiters: RateLimiters,
    /// Whether the rate limits apply.
    pub rate_limits_enabled: bool,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("cookie_key", &"[redacted]")
            .field("cookie_name", &self.cookie_name)
            .field("cookie_secure", &self.cookie_secure)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .field("allowed_origins", &self.allowed_origins)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("body_timeout", &self.body_timeout)
            .field("rate_limits_enabled", &self.rate_limits_enabled)
            .finish_non_exhaustive()
    }
}

/// The API as an actix [`App`]: build one per worker, sharing `state` and `store`.
pub fn app<A: Adapters>(
    state: web::Data<AppState<A>>,
    store: A::Store,
    config: &HttpConfig,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody + use<A>>,
        Error = Error,
        InitError = (),
    > + use<A>,
> {
    let sessions = DatabaseSessionStore::new(store, config.session_idle_timeout);
    App::new()
        .app_data(state)
        .app_data(web::Data::new(csrf::TrustedOrigins(
            config.allowed_origins.clone(),
        )))
        .app_data(web::PayloadConfig::new(config.max_body_bytes))
        .app_data(json::BodyTimeout(config.body_timeout))
        .app_data(web::PathConfig::default().error_handler(|_, _| {
            ApiError::new(ErrorKind::NotFound, "Conversation not found.").into()
        }))
        .wrap(session_middleware(sessions, config))
        .wrap(middleware::from_fn(csrf::refuse_foreign_writes))
        .wrap(cors(&config.allowed_origins))
        .wrap(middleware::from_fn(respond::json_errors))
        .wrap(security_headers())
        .wrap(middleware::from_fn(request_log::log_requests))
        .configure(|site| routes::configure::<A>(site, config))
        .default_service(web::to(respond::not_found))
}

/// Headers that keep browsers from sniffing, framing, leaking or caching responses.
fn security_headers() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CACHE_CONTROL, "no-store"))
}

fn session_middleware<R: SessionRepository + Clone + 'static>(
    sessions: DatabaseSessionStore<R>,
    config: &HttpConfig,
) -> SessionMiddleware<DatabaseSessionStore<R>> {
    let idle = i64::try_from(config.session_idle_timeout.as_secs()).unwrap_or(i64::MAX);
    // A browser-session cookie: the server's idle deadline decides when the session
    // ends, and the store renews that deadline as the session is used.
    let lifecycle = BrowserSession::default()
        .state_ttl(actix_web::cookie::time::Duration::seconds(idle))
        .state_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges);
    SessionMiddleware::builder(sessions, config.cookie_key.clone())
        .cookie_name(config.cookie_name.clone())
        .cookie_secure(config.cookie_secure)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_path("/".to_owned())
        .cookie_content_security(CookieContentSecurity::Signed)
        .session_lifecycle(lifecycle)
        .build()
}

fn cors(allowed_origins: &[String]) -> Cors {
    allowed_origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([header::CONTENT_TYPE, header::ACCEPT, header::AUTHORIZATION])
        .supports_credentials()
        .max_age(3600)
}
