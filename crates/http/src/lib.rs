//! The chatbot's HTTP API on actix-web: the seed's routes and JSON shapes, JSON
//! errors for every failure, server-side sessions, CORS and a CSRF defence.
//!
//! [`Api`] turns the domain's use cases ([`Services`], built by the caller) and an
//! [`HttpConfig`] into an actix [`App`] per server worker. This crate knows the
//! domain's use case traits, never a service's construction, a port or an adapter.

// Request paths must not panic or misread numbers on what a client sends: no indexing
// or slicing that can panic, no `as` casts that can truncate (Lemmy's stricter set).
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::as_conversions
    )
)]

use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::{App, Error, middleware, web};
use chatbot_domain::use_cases::{Accounts, Chat, Health, Realtime, Sessions};

mod csrf;
mod dto;
mod error;
mod json;
mod list_cache;
pub mod openapi;
mod rate_limit;
mod request_log;
mod respond;
mod revalidate;
mod routes;
mod session;
mod sse;

use list_cache::ListCache;

pub use error::{ApiError, ErrorBody, ErrorKind};
pub use rate_limit::{Limit, RateLimitConfig, RateLimiters};
pub use session::{CurrentSession, CurrentUser, SessionStoreAdapter};

/// The use cases the API serves, finished: the caller builds them over its adapters.
#[derive(Clone)]
pub struct Services {
    /// Signing up and logging in.
    pub accounts: Arc<dyn Accounts>,
    /// Conversations and messages.
    pub chat: Arc<dyn Chat>,
    /// The sessions behind the session cookies.
    pub sessions: Arc<dyn Sessions>,
    /// Readiness.
    pub health: Arc<dyn Health>,
    /// Each user's events, for their WebSockets.
    pub realtime: Arc<dyn Realtime>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

/// What the handlers share: the use cases, and the rendered lists they reuse.
pub(crate) struct State {
    pub(crate) services: Services,
    pub(crate) lists: ListCache,
    pub(crate) max_message_chars: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) realtime: routes::realtime::RealtimeConfig,
    /// The per-user message limit, for messages sent over a WebSocket (the routes
    /// have it as middleware); `None` when limits are off.
    pub(crate) limits: Option<RateLimiters>,
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
    /// The origin people reach the service at (`https://chat.example.com`), when
    /// configured: the server's own origin, whatever the request's `Host` says (else
    /// the scheme and `Host` of each request, or a trusted proxy's forwarding headers).
    pub public_origin: Option<String>,
    /// Proxies whose forwarding headers (`X-Forwarded-For`, `Forwarded`,
    /// `X-Forwarded-Host`, `X-Forwarded-Proto`) are believed; no one else's are.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// The longest message text accepted, in characters.
    pub max_message_chars: usize,
    /// How long a request body may take to arrive once its head has: then 408.
    pub body_timeout: Duration,
    /// The rate limiters; build them once, so every worker shares them.
    pub rate_limiters: RateLimiters,
    /// Whether the rate limits apply.
    pub rate_limits_enabled: bool,
    /// How long an event stream may go without sending anything before it sends a
    /// keep-alive comment (so proxies and clients do not take it for dead).
    pub stream_keep_alive: Duration,
    /// How often an idle WebSocket is pinged and its session checked; one that
    /// answers nothing for two of these is dropped.
    pub socket_ping_interval: Duration,
    /// How long a frame may take to leave a WebSocket before its client counts as too
    /// slow (closed with 4008).
    pub socket_send_timeout: Duration,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("cookie_key", &"[redacted]")
            .field("cookie_name", &self.cookie_name)
            .field("cookie_secure", &self.cookie_secure)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .field("allowed_origins", &self.allowed_origins)
            .field("public_origin", &self.public_origin)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_message_chars", &self.max_message_chars)
            .field("body_timeout", &self.body_timeout)
            .field("rate_limits_enabled", &self.rate_limits_enabled)
            .field("stream_keep_alive", &self.stream_keep_alive)
            .field("socket_ping_interval", &self.socket_ping_interval)
            .field("socket_send_timeout", &self.socket_send_timeout)
            .finish_non_exhaustive()
    }
}

/// The API over finished use cases: build it once, then one [`App`] per server worker
/// with [`Api::app`]; every app shares the use cases and the rendered lists.
#[derive(Clone)]
pub struct Api {
    state: web::Data<State>,
    config: HttpConfig,
    /// Hashed and compressed once, shared by every worker's app.
    web_client: web::Data<routes::web_client::WebClient>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The API serving `services` as `config` says.
    pub fn new(services: Services, config: HttpConfig) -> Self {
        let state = State {
            services,
            lists: ListCache::default(),
            max_message_chars: config.max_message_chars,
            keep_alive: config.stream_keep_alive,
            realtime: routes::realtime::RealtimeConfig {
                cookie_name: config.cookie_name.clone(),
                cookie_key: config.cookie_key.clone(),
                ping_every: config.socket_ping_interval,
                send_timeout: config.socket_send_timeout,
                max_frame_bytes: config.max_body_bytes,
            },
            limits: config
                .rate_limits_enabled
                .then(|| config.rate_limiters.clone()),
        };
        Self {
            state: web::Data::new(state),
            config,
            web_client: web::Data::new(routes::web_client::WebClient::built_in()),
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The API as an actix [`App`], for a server worker or an in-process test.
    pub fn app(
        &self,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody + use<>>,
            Error = Error,
            InitError = (),
        > + use<>,
    > {
        let config = &self.config;
        let sessions = SessionStoreAdapter::new(Arc::clone(&self.state.services.sessions));
        let site_config = config.clone();
        App::new()
            .app_data(self.state.clone())
            .app_data(self.web_client.clone())
            .app_data(web::Data::new(csrf::TrustedOrigins {
                public: config.public_origin.clone(),
                allowed: config.allowed_origins.clone(),
                proxies: config.trusted_proxies.clone(),
            }))
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
            .configure(move |site| routes::configure(site, &site_config))
            .default_service(web::to(respond::not_found))
    }
}

/// Headers that keep browsers from sniffing, framing, leaking or caching responses.
fn security_headers() -> middleware::DefaultHeaders {
    middleware::DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CACHE_CONTROL, "no-store"))
}

fn session_middleware(
    sessions: SessionStoreAdapter,
    config: &HttpConfig,
) -> SessionMiddleware<SessionStoreAdapter> {
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
        .allowed_headers([
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::AUTHORIZATION,
            header::IF_NONE_MATCH,
        ])
        // A frontend on another origin revalidates its lists with the tag.
        .expose_headers([header::ETAG])
        .supports_credentials()
        .max_age(3600)
}
