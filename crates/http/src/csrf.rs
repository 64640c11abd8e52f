//! The CSRF defence: a request that changes data and says it comes from a page on
//! another origin is refused before anything else runs.
//!
//! Browsers send `Origin` with every cross-origin request and with same-origin ones
//! that change data; a session cookie alone (SameSite=Lax still allows top-level
//! POST navigations in some browsers) is not proof that the user meant the request.

use std::net::IpAddr;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HOST, ORIGIN};
use actix_web::middleware::Next;
use actix_web::{Error, web};

use crate::error::{ErrorKind, json_error};

/// The origins whose pages may change data.
#[derive(Debug, Clone)]
pub(crate) struct TrustedOrigins {
    /// The configured public origin (`app.public_url`'s), when there is one: then the
    /// server's own origin, whatever the request says.
    pub(crate) public: Option<String>,
    /// The origins of `cors.allowed_origins`.
    pub(crate) allowed: Vec<String>,
    /// Proxies whose `Forwarded` and `X-Forwarded-*` headers say how the client reached
    /// the server; anyone else's are ignored.
    pub(crate) proxies: Vec<IpAddr>,
}

/// Middleware answering 403 to a POST, PUT, PATCH or DELETE whose `Origin` is neither
/// the server's own nor trusted.
pub(crate) async fn refuse_foreign_writes(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, Error> {
    // A WebSocket is opened with a GET, and then carries commands that change data;
    // so does the seed's `GET /api/logout`, which a link on another site could follow.
    let changes_data = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) || matches!(request.path(), "/api/ws" | "/api/logout");
    if changes_data && comes_from_another_site(&request) {
        let refusal = json_error(
            ErrorKind::Forbidden,
            "Requests from this origin may not change data.",
        );
        return Ok(request.into_response(refusal).map_into_right_body());
    }
    Ok(next.call(request).await?.map_into_left_body())
}

/// Whether a browser says the request comes from a page that may not change data: its
/// `Origin` is neither the server's own nor trusted, or, without an `Origin` (a GET
/// navigation sends none), `Sec-Fetch-Site` says another site made it.
fn comes_from_another_site(request: &ServiceRequest) -> bool {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap_or(""))
    };
    match header(ORIGIN.as_str()) {
        Some(origin) => !is_trusted(request, origin),
        None => header(SEC_FETCH_SITE).is_some_and(|site| site.eq_ignore_ascii_case("cross-site")),
    }
}

/// The Fetch Metadata header saying whose page made a request.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

fn is_trusted(request: &ServiceRequest, origin: &str) -> bool {
    let Some(trusted) = request.app_data::<web::Data<TrustedOrigins>>() else {
        return false;
    };
    let same = |other: &String| origin.eq_ignore_ascii_case(other);
    let own = match &trusted.public {
        Some(public) => same(public),
        None => same(&own_origin(request, &trusted.proxies)),
    };
    own || trusted.allowed.iter().any(same)
}

/// The origin the client reached the server at: the scheme of the connection and its
/// `Host`; through a trusted proxy, as its forwarding headers say. Anyone can write
/// those headers, so they count only from `proxies`.
fn own_origin(request: &ServiceRequest, proxies: &[IpAddr]) -> String {
    let through_proxy = request
        .peer_addr()
        .is_some_and(|peer| proxies.contains(&peer.ip().to_canonical()));
    if through_proxy {
        let connection = request.connection_info();
        return format!("{}://{}", connection.scheme(), connection.host());
    }
    let scheme = if request.app_config().secure() {
        "https"
    } else {
        "http"
    };
    let host = request
        .headers()
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| {
            request
                .uri()
                .authority()
                .map(|authority| authority.as_str())
        })
        .unwrap_or_else(|| request.app_config().host());
    format!("{scheme}://{host}")
}
