//! Rate limits: logins, signups and password checks per client address, messages per
//! user, mails (password resets, verifications) per client address and per account.
//!
//! The limiters live in memory, one per process, shared by its workers. Over a limit
//! the answer is 429 `rate_limited` with `Retry-After`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use std::num::NonZeroU32;

use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::governor::{DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use actix_governor::{GovernorConfig, GovernorConfigBuilder, KeyExtractor};
use actix_session::SessionExt;
use actix_web::dev::ServiceRequest;
use actix_web::{HttpResponse, HttpResponseBuilder};

use crate::error::{ApiError, ErrorBody, ErrorKind};
use crate::session::USER_ID;

/// One limit: a sustained rate, and how many requests may come at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed per minute, sustained (at least 1).
    pub per_minute: u32,
    /// Requests allowed in a burst (at least 1).
    pub burst: u32,
}

/// The rate limits of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Logins and signups, per client address.
    pub auth: Limit,
    /// Messages sent, per user.
    pub messages: Limit,
    /// Mails asked for (password resets, verifications), per client address and,
    /// apart, per account.
    pub mail: Limit,
    /// Proxies whose `X-Forwarded-For` header names the client; other peers are the
    /// client themselves, whatever they claim.
    pub trusted_proxies: Vec<IpAddr>,
}

/// The limiters, built once and shared by every worker of a process.
#[derive(Debug, Clone)]
pub struct RateLimiters {
    pub(crate) auth: GovernorConfig<ClientAddress, NoOpMiddleware<QuantaInstant>>,
    pub(crate) messages: GovernorConfig<SessionUser, NoOpMiddleware<QuantaInstant>>,
    pub(crate) mail: GovernorConfig<ClientAddress, NoOpMiddleware<QuantaInstant>>,
    mail_per_account: Arc<DefaultKeyedRateLimiter<String>>,
}

impl RateLimiters {
    /// Limiters enforcing `config`; `None` when a limit is zero.
    pub fn new(config: &RateLimitConfig) -> Option<Self> {
        let client = ClientAddress {
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
        };
        Some(Self {
            auth: limiter(config.auth, client.clone())?,
            messages: limiter(config.messages, SessionUser)?,
            mail: limiter(config.mail, client)?,
            mail_per_account: Arc::new(RateLimiter::keyed(quota(config.mail)?)),
        })
    }

    /// Counts a message `user` sends outside the routes (over a WebSocket).
    ///
    /// # Errors
    /// 429 `rate_limited`, saying how long to wait, when over the limit.
    pub(crate) fn check_message(&self, user: chatbot_domain::UserId) -> Result<(), ApiError> {
        self.messages
            .limiter()
            .check_key(&user.get())
            .map_err(|negative| rate_limited(&negative))
    }

    /// Counts a mail asked for `account` (a user, or the address a reset is asked
    /// for, whether or not an account has it).
    ///
    /// # Errors
    /// 429 `rate_limited`, saying how long to wait, when over the limit.
    pub(crate) fn check_mail(&self, account: String) -> Result<(), ApiError> {
        self.mail_per_account
            .check_key(&account)
            .map_err(|negative| rate_limited(&negative))
    }

    /// Forgets clients and users that have been quiet long enough to be back at their
    /// full allowance, so memory does not grow with every address ever seen.
    pub fn forget_idle(&self) {
        self.auth.limiter().retain_recent();
        self.messages.limiter().retain_recent();
        self.mail.limiter().retain_recent();
        self.mail_per_account.retain_recent();
    }
}

/// The quota of `limit`; `None` when it is zero.
fn quota(limit: Limit) -> Option<Quota> {
    Quota::with_period(period(limit)?)?
        .allow_burst(NonZeroU32::new(limit.burst)?)
        .into()
}

/// The time one request of `limit` takes to come back; `None` when it is zero.
fn period(limit: Limit) -> Option<Duration> {
    Duration::from_secs(60).checked_div(limit.per_minute)
}

/// Seconds to wait after `negative`, at least one.
fn wait_seconds(negative: &NotUntil<QuantaInstant>) -> u64 {
    negative
        .wait_time_from(DefaultClock::default().now())
        .as_secs()
        .max(1)
}

/// 429 for a limit checked in a handler, with `Retry-After`.
fn rate_limited(negative: &NotUntil<QuantaInstant>) -> ApiError {
    ApiError::rate_limited(wait_seconds(negative))
}

fn limiter<K: KeyExtractor>(
    limit: Limit,
    key: K,
) -> Option<GovernorConfig<K, NoOpMiddleware<QuantaInstant>>> {
    if limit.burst == 0 {
        return None;
    }
    GovernorConfigBuilder::default()
        .period(period(limit)?)
        .burst_size(limit.burst)
        .key_extractor(key)
        .finish()
}

/// 429 with the SPEC body; actix-governor adds `Retry-After`.
fn too_many(negative: &NotUntil<QuantaInstant>, mut response: HttpResponseBuilder) -> HttpResponse {
    let wait = wait_seconds(negative);
    response.json(ErrorBody {
        error: &format!("Too many requests: try again in {wait} s."),
        code: ErrorKind::RateLimited.code(),
    })
}

/// Keys requests by the client's address: the peer, or, when the peer is a trusted
/// proxy, the nearest untrusted address in `X-Forwarded-For`.
#[derive(Debug, Clone)]
pub(crate) struct ClientAddress {
    trusted_proxies: Arc<Vec<IpAddr>>,
}

impl ClientAddress {
    fn of(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        // Each proxy appends the address it received from; read from the right, the
        // first address that is not one of ours is the client.
        forwarded_for
            .into_iter()
            .flat_map(|list| list.rsplit(','))
            .map_while(|entry| entry.trim().parse::<IpAddr>().ok())
            .find(|address| !self.trusted_proxies.contains(address))
            .unwrap_or(peer)
    }
}

impl KeyExtractor for ClientAddress {
    type Key = IpAddr;
    type KeyExtractionError = ApiError;

    fn extract(&self, request: &ServiceRequest) -> Result<IpAddr, ApiError> {
        let peer = request
            .peer_addr()
            .map(|address| address.ip())
            .ok_or_else(|| {
                ApiError::new(ErrorKind::BadRequest, "The client address is unknown.")
            })?;
        let forwarded_for = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok());
        Ok(self.of(peer, forwarded_for))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        response: HttpResponseBuilder,
    ) -> HttpResponse {
        too_many(negative, response)
    }
}

/// Keys requests by the logged-in user; a request without one is refused as the
/// handler would refuse it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionUser;

impl KeyExtractor for SessionUser {
    type Key = i64;
    type KeyExtractionError = ApiError;

    fn extract(&self, request: &ServiceRequest) -> Result<i64, ApiError> {
        request
            .get_session()
            .get::<i64>(USER_ID)
            .ok()
            .flatten()
            .ok_or_else(|| ApiError::of_kind(ErrorKind::Unauthorized))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        response: HttpResponseBuilder,
    ) -> HttpResponse {
        too_many(negative, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_forward() {
        let client = ClientAddress {
            trusted_proxies: Arc::new(vec![]),
        };
        assert_eq!(
            client.of(ip("203.0.113.9"), Some("1.2.3.4")),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_forwarded_address_is_the_client() {
        let client = ClientAddress {
            trusted_proxies: Arc::new(vec![ip("10.0.0.1"), ip("10.0.0.2")]),
        };
        // The client spoofs 1.2.3.4; the proxies append what they saw.
        let forwarded = "1.2.3.4, 198.51.100.7, 10.0.0.2";
        assert_eq!(
            client.of(ip("10.0.0.1"), Some(forwarded)),
            ip("198.51.100.7")
        );
        assert_eq!(client.of(ip("10.0.0.1"), None), ip("10.0.0.1"));
        assert_eq!(client.of(ip("10.0.0.1"), Some("garbage")), ip("10.0.0.1"));
    }
}
