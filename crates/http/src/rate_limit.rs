//! Rate limits: logins, signups and password checks per client address, messages per
//! user, every other write per user, mails (password resets, verifications) per client
//! address and per account.
//!
//! The limiters live in memory, one per process, shared by its workers. Over a limit
//! the answer is 429 `rate_limited` with `Retry-After`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
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
    /// Every other change a user makes (conversations created, renamed, deleted;
    /// replies stopped; profile, password and sessions), per user.
    pub writes: Limit,
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
    pub(crate) writes: GovernorConfig<SessionUser, NoOpMiddleware<QuantaInstant>>,
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
            writes: limiter(config.writes, SessionUser)?,
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

    /// Counts a change `user` makes outside the routes (a reply stopped over a
    /// WebSocket).
    ///
    /// # Errors
    /// 429 `rate_limited`, saying how long to wait, when over the limit.
    pub(crate) fn check_write(&self, user: chatbot_domain::UserId) -> Result<(), ApiError> {
        self.writes
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
        self.writes.limiter().retain_recent();
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

/// Who a client is, as far as the limits can tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    /// An IPv4 address, or the /64 network of an IPv6 one: a subscriber usually holds a
    /// whole /64, and could otherwise take a fresh bucket with every request.
    Address(IpAddr),
    /// A client a trusted proxy could not name by address (it wrote `unknown`, or an
    /// obfuscated identifier): keyed by what it wrote and which proxy wrote it, so that
    /// it does not share the proxy's own bucket with every other client.
    Unnamed {
        /// The trusted proxy that wrote the entry.
        proxy: IpAddr,
        /// The entry, clipped.
        entry: Box<str>,
    },
}

impl ClientKey {
    /// The key of a client at `address`.
    fn address(address: IpAddr) -> Self {
        match address.to_canonical() {
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !u128::from(u64::MAX);
                Self::Address(IpAddr::V6(Ipv6Addr::from(network)))
            }
            v4 => Self::Address(v4),
        }
    }
}

/// The longest unusable `X-Forwarded-For` entry kept as a key; longer ones are cut.
const MAX_UNNAMED_ENTRY: usize = 64;

impl ClientAddress {
    fn of(&self, peer: IpAddr, forwarded_for: Option<&str>) -> ClientKey {
        let trusts = |address: &IpAddr| self.trusted_proxies.contains(address);
        let mut hop = peer.to_canonical();
        if !trusts(&hop) {
            return ClientKey::address(hop);
        }
        // Each proxy appends the address it received from; read from the right, the
        // first address that is not one of ours is the client. Entries further left
        // are the client's own word, never read.
        for entry in forwarded_for.into_iter().flat_map(|list| list.rsplit(',')) {
            let entry = entry.trim();
            match forwarded_address(entry) {
                Some(address) if trusts(&address) => hop = address,
                Some(address) => return ClientKey::address(address),
                None => {
                    let clipped: String = entry
                        .chars()
                        .scan(0, |length, c| {
                            *length += c.len_utf8();
                            (*length <= MAX_UNNAMED_ENTRY).then_some(c)
                        })
                        .collect();
                    return ClientKey::Unnamed {
                        proxy: hop,
                        entry: clipped.into(),
                    };
                }
            }
        }
        // Only proxies of ours: the farthest one made the request itself.
        ClientKey::address(hop)
    }
}

/// The address in an `X-Forwarded-For` entry: a bare IPv4 or IPv6 address, either
/// with a port (`203.0.113.9:40000`, `[2001:db8::1]:5555`), or an IPv6 one in
/// brackets; `None` for anything else (`unknown`, an obfuscated name).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let address = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
                .map(IpAddr::V6)
        })?;
    Some(address.to_canonical())
}

impl KeyExtractor for ClientAddress {
    type Key = ClientKey;
    type KeyExtractionError = ApiError;

    fn extract(&self, request: &ServiceRequest) -> Result<ClientKey, ApiError> {
        let peer = request
            .peer_addr()
            .map(|address| address.ip())
            .ok_or_else(|| {
                ApiError::new(ErrorKind::BadRequest, "The client address is unknown.")
            })?;
        // A proxy may add its entry as a header line of its own: every line counts, in
        // order, or a client's forged first line would pass for the proxy's word.
        let lines: Vec<&str> = request
            .headers()
            .get_all("x-forwarded-for")
            .map(|value| value.to_str().unwrap_or("unreadable"))
            .collect();
        let forwarded_for = (!lines.is_empty()).then(|| lines.join(","));
        Ok(self.of(peer, forwarded_for.as_deref()))
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

    fn key(text: &str) -> ClientKey {
        ClientKey::Address(ip(text))
    }

    fn behind(proxies: &[&str]) -> ClientAddress {
        ClientAddress {
            trusted_proxies: Arc::new(proxies.iter().map(|p| ip(p)).collect()),
        }
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_forward() {
        let client = behind(&[]);
        assert_eq!(
            client.of(ip("203.0.113.9"), Some("1.2.3.4")),
            key("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_forwarded_address_is_the_client() {
        let client = behind(&["10.0.0.1", "10.0.0.2"]);
        // The client spoofs 1.2.3.4; the proxies append what they saw.
        let forwarded = "1.2.3.4, 198.51.100.7, 10.0.0.2";
        assert_eq!(
            client.of(ip("10.0.0.1"), Some(forwarded)),
            key("198.51.100.7")
        );
        assert_eq!(client.of(ip("10.0.0.1"), None), key("10.0.0.1"));
    }

    #[test]
    fn forwarded_entries_with_ports_and_brackets_name_their_client() {
        let client = behind(&["10.0.0.1"]);
        for (forwarded, client_key) in [
            ("203.0.113.9:40000", key("203.0.113.9")),
            ("[2001:db8::1]:5555", key("2001:db8::")),
            ("[2001:db8::1]", key("2001:db8::")),
            (" 2001:db8::1 ", key("2001:db8::")),
            (
                "1.2.3.4, 203.0.113.9:40000, 10.0.0.1:443",
                key("203.0.113.9"),
            ),
        ] {
            assert_eq!(
                client.of(ip("10.0.0.1"), Some(forwarded)),
                client_key,
                "{forwarded}"
            );
        }
    }

    #[test]
    fn an_unusable_entry_is_a_client_of_its_own_not_the_proxy() {
        let client = behind(&["10.0.0.1", "10.0.0.2"]);
        let unknown = client.of(ip("10.0.0.1"), Some("198.51.100.7, unknown, 10.0.0.2"));
        assert_eq!(
            unknown,
            ClientKey::Unnamed {
                proxy: ip("10.0.0.2"),
                entry: "unknown".into()
            }
        );
        assert_ne!(unknown, key("10.0.0.1"));
        assert_ne!(unknown, key("10.0.0.2"));
        let hidden = client.of(ip("10.0.0.1"), Some("_hidden-client"));
        assert_ne!(hidden, unknown);
        let long = client.of(ip("10.0.0.1"), Some(&"é".repeat(100)));
        assert!(matches!(long, ClientKey::Unnamed { entry, .. } if entry.len() <= 64));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        let client = behind(&[]);
        assert_eq!(
            client.of(ip("2001:db8:1:2:aaaa::1"), None),
            client.of(ip("2001:db8:1:2:ffff::9"), None)
        );
        assert_ne!(
            client.of(ip("2001:db8:1:2::1"), None),
            client.of(ip("2001:db8:1:3::1"), None)
        );
        assert_eq!(
            client.of(ip("::ffff:203.0.113.9"), None),
            key("203.0.113.9")
        );
        // A proxy seen through a dual-stack socket is still trusted.
        let proxied = behind(&["10.0.0.1"]);
        assert_eq!(
            proxied.of(ip("::ffff:10.0.0.1"), Some("198.51.100.7")),
            key("198.51.100.7")
        );
    }
}
