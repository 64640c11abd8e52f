//! The web client (SPEC §12), built into the binary: its page at every client route,
//! and its scripts and styles under content-hashed names.
//!
//! `web/index.html` names its assets as `/assets/<file>`; at start-up each is hashed
//! and the page rewritten to `/assets/<stem>.<hash>.<extension>`, so an asset's address
//! changes whenever its content does and browsers may keep it for a year, while the
//! page itself is revalidated on every visit. Text is compressed once, at start-up.

use std::collections::HashMap;
use std::io::Write;

use actix_web::http::header::{
    self, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue, VARY,
};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorKind};

/// The page, as written; its `/assets/<file>` references are rewritten at start-up.
const PAGE: &str = include_str!("../../../../web/index.html");

/// Every asset the page may name, by its file name under `web/`.
const ASSETS: [(&str, &[u8]); 4] = [
    ("app.css", include_bytes!("../../../../web/app.css")),
    ("app.js", include_bytes!("../../../../web/app.js")),
    (
        "vendor/purify.min.js",
        include_bytes!("../../../../web/vendor/purify.min.js"),
    ),
    (
        "vendor/marked.umd.js",
        include_bytes!("../../../../web/vendor/marked.umd.js"),
    ),
];

/// Scripts and styles from this server only, none inline; no plugins, no framing, no
/// `<base>`; requests (fetch, the WebSocket) to this origin only.
pub(crate) const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; \
    script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
    font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// How long a browser may keep a hashed asset: a year, the most HTTP caches honour.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One response body, with its gzip form when that is smaller.
#[derive(Debug, Clone)]
struct Body {
    content_type: &'static str,
    plain: Bytes,
    gzip: Option<Bytes>,
}

impl Body {
    fn new(content_type: &'static str, plain: Vec<u8>) -> Self {
        let gzip = gzip(&plain).filter(|compressed| compressed.len() < plain.len());
        Self {
            content_type,
            plain: plain.into(),
            gzip: gzip.map(Bytes::from),
        }
    }

    /// The response with this body, compressed when the request accepts gzip.
    fn respond(&self, request: &HttpRequest, cache: &'static str) -> HttpResponse {
        let mut response = HttpResponse::Ok();
        response
            .insert_header((CONTENT_TYPE, self.content_type))
            .insert_header((CACHE_CONTROL, cache))
            .insert_header((VARY, "Accept-Encoding"));
        match &self.gzip {
            Some(compressed) if accepts_gzip(request) => response
                .insert_header((CONTENT_ENCODING, "gzip"))
                .body(compressed.clone()),
            _ => response.body(self.plain.clone()),
        }
    }
}

/// The client, ready to serve: the rewritten page and the assets by hashed name.
#[derive(Debug)]
pub(crate) struct WebClient {
    page: Body,
    assets: HashMap<String, Body>,
}

impl WebClient {
    /// The client built into this binary.
    pub(crate) fn built_in() -> Self {
        let mut page = PAGE.to_owned();
        let mut assets = HashMap::new();
        for (file, content) in ASSETS {
            let hashed = hashed_name(file, content);
            page = page.replace(
                &format!("\"/assets/{file}\""),
                &format!("\"/assets/{hashed}\""),
            );
            assets.insert(hashed, Body::new(content_type(file), content.to_vec()));
        }
        Self {
            page: Body::new("text/html; charset=utf-8", page.into_bytes()),
            assets,
        }
    }

    /// The addresses the page names its assets by.
    #[cfg(test)]
    fn asset_names(&self) -> impl Iterator<Item = &str> {
        self.assets.keys().map(String::as_str)
    }
}

/// The name of `file` (its folder left out) with the start of its content's SHA-256
/// before its extension: `vendor/purify.min.js` is served as
/// `purify.min.3f2a9c0d1e4b5a67.js`.
fn hashed_name(file: &str, content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    let hash: String = digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let name = file.rsplit_once('/').map_or(file, |(_, name)| name);
    match name.rsplit_once('.') {
        Some((stem, extension)) => format!("{stem}.{hash}.{extension}"),
        None => format!("{name}.{hash}"),
    }
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit_once('.').map(|(_, extension)| extension) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// `bytes` compressed with gzip at its best; `None` if the encoder fails (it writes to
/// memory, so it does not).
fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

/// Whether `Accept-Encoding` takes gzip (named, or `*`, with a weight above zero).
fn accepts_gzip(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            let weight = parts
                .find_map(|parameter| parameter.strip_prefix("q="))
                .map_or(Some(1.0), |q| q.parse::<f32>().ok());
            (coding.eq_ignore_ascii_case("gzip") || coding == "*")
                && weight.is_some_and(|q| q > 0.0)
        })
}

/// The client's page: at `/` and at every route the client handles itself.
#[utoipa::path(
    method(get, head),
    path = "/",
    operation_id = "web_client",
    tag = "web client",
    summary = "The chat client",
    description = "The web client's page (HTML), also at `/login`, `/c/{id}`, `/settings`, \
        `/verify` and `/reset`: the client reads the address itself. Served with a strict \
        `Content-Security-Policy` and `Cache-Control: no-cache`; gzip-compressed when the \
        request accepts it.",
    responses(
        (status = 200, description = "The page.", content_type = "text/html"),
    ),
)]
pub(super) async fn page(request: HttpRequest, client: web::Data<WebClient>) -> HttpResponse {
    let mut response = client.page.respond(&request, "no-cache");
    response.headers_mut().insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    response
}

/// A route the client handles itself: the same page as at `/`.
macro_rules! client_route {
    ($handler:ident, $path:literal, $operation:literal, $summary:literal) => {
        #[utoipa::path(
                    method(get, head),
                    path = $path,
                    operation_id = $operation,
                    tag = "web client",
                    summary = $summary,
                    description = "The web client's page, as at `/`: the client shows this view.",
                    responses(
                        (status = 200, description = "The page.", content_type = "text/html"),
                    ),
                )]
        pub(super) async fn $handler(
            request: HttpRequest,
            client: web::Data<WebClient>,
        ) -> HttpResponse {
            page(request, client).await
        }
    };
}

client_route!(
    login,
    "/login",
    "web_client_login",
    "The chat client: logging in"
);
client_route!(
    settings,
    "/settings",
    "web_client_settings",
    "The chat client: the account"
);
client_route!(
    verify,
    "/verify",
    "web_client_verify",
    "The chat client: a mailed verification link"
);
client_route!(
    reset,
    "/reset",
    "web_client_reset",
    "The chat client: a mailed reset link"
);

/// The client's page for one conversation; the client checks the id itself.
#[utoipa::path(
    method(get, head),
    path = "/c/{id}",
    operation_id = "web_client_conversation",
    tag = "web client",
    summary = "The chat client: a conversation",
    description = "The web client's page, as at `/`: the client opens conversation `id`.",
    params(("id" = String, Path, description = "The conversation's id.")),
    responses(
        (status = 200, description = "The page.", content_type = "text/html"),
        (status = 404, description = "`not_found`: no id (`/c/`) is no route.",
            body = crate::ErrorBody),
    ),
)]
pub(super) async fn conversation(
    request: HttpRequest,
    client: web::Data<WebClient>,
) -> HttpResponse {
    page(request, client).await
}

/// A script or style of the client, by the hashed name the page gives it.
#[utoipa::path(
    method(get, head),
    path = "/assets/{name}",
    operation_id = "web_client_asset",
    tag = "web client",
    summary = "A script or style of the chat client",
    description = "By the content-hashed name the page gives it (`app.<hash>.js`): cached \
        for a year as immutable; gzip-compressed when the request accepts it.",
    params(("name" = String, Path, description = "The asset's hashed name, as the page names it.")),
    responses(
        (status = 200, description = "The asset.", content(("text/javascript"), ("text/css"))),
        (status = 404, description = "`not_found`: no asset has that name (an old hash: \
            reload the page).", body = crate::ErrorBody),
    ),
)]
pub(super) async fn asset(
    request: HttpRequest,
    name: web::Path<String>,
    client: web::Data<WebClient>,
) -> Result<HttpResponse, ApiError> {
    client
        .assets
        .get(name.as_str())
        .map(|body| body.respond(&request, IMMUTABLE))
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "No such asset: reload the page."))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_page_names_every_asset_by_its_hash_and_nothing_else() {
        let client = WebClient::built_in();
        let page = std::str::from_utf8(&client.page.plain).unwrap();
        for name in client.asset_names() {
            assert!(page.contains(&format!("\"/assets/{name}\"")), "{name}");
        }
        assert_eq!(page.matches("\"/assets/").count(), ASSETS.len(), "{page}");
        for (file, _) in ASSETS {
            assert!(
                !page.contains(&format!("\"/assets/{file}\"")),
                "{file} unhashed"
            );
        }
    }

    #[test]
    fn a_hash_changes_with_the_content() {
        assert_eq!(hashed_name("app.js", b"a"), hashed_name("app.js", b"a"));
        assert_ne!(hashed_name("app.js", b"a"), hashed_name("app.js", b"b"));
        let name = hashed_name("vendor/purify.min.js", b"a");
        assert!(
            name.starts_with("purify.min.") && name.ends_with(".js"),
            "{name}"
        );
        assert_eq!(name.len(), "purify.min..js".len() + 16);
    }

    #[test]
    fn gzip_is_sent_only_to_those_who_take_it() {
        let takes = |value: &str| {
            accepts_gzip(
                &TestRequest::default()
                    .insert_header((header::ACCEPT_ENCODING, value))
                    .to_http_request(),
            )
        };
        assert!(takes("gzip, deflate, br"));
        assert!(takes("br;q=1.0, GZIP;q=0.5"));
        assert!(takes("*"));
        assert!(!takes("gzip;q=0"));
        assert!(!takes("br, identity"));
        assert!(!accepts_gzip(&TestRequest::default().to_http_request()));
    }
}
