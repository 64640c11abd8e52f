//! The API describing itself: its OpenAPI document, and a page to read it in.
//!
//! The page is Scalar's API reference (`@scalar/api-reference` on npm), whose script the
//! browser loads from jsDelivr at the pinned [`SCALAR_VERSION`], checked by Subresource
//! Integrity against [`SCALAR_INTEGRITY`]: a changed file is refused, not run.

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use utoipa_scalar::Scalar;

use crate::error::{ApiError, ErrorKind};
use crate::openapi;

/// The version of `@scalar/api-reference` the page loads (npm's `latest` when pinned).
pub(crate) const SCALAR_VERSION: &str = "1.76.0";

/// The package's standalone browser build (its `package.json`'s `browser` field). The
/// path is named in full: jsDelivr serves a file named so byte for byte, as npm has it,
/// but may minify a package's default file on the fly, which would break the hash.
const SCALAR_FILE: &str = "dist/browser/standalone.js";

/// The Subresource Integrity hash of [`SCALAR_FILE`] at [`SCALAR_VERSION`]: the SHA-384
/// of the file as the npm registry has it: `npm pack @scalar/api-reference@1.76.0`, then
/// `openssl dgst -sha384 -binary package/dist/browser/standalone.js | openssl base64 -A`.
/// `scripts/scalar-sri.sh` does that and checks the hash here; to move to another
/// version, `scripts/scalar-sri.sh <version>` prints both lines to copy here.
pub(crate) const SCALAR_INTEGRITY: &str =
    "sha384-oH1C0RwqcwbVXkC+r8A+4qRoyEUQdtxAzOwumkxZtQBBcsy61FOoPt7B50OVJYYQ";

/// The page: utoipa-scalar's own, titled after the service, with the script pinned and
/// checked. utoipa-scalar puts the document, as JSON, where `$spec` is; Scalar reads it
/// from the `api-reference` script element.
fn page_template() -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
    <title>{title}</title>
    <meta charset="utf-8"/>
    <meta name="viewport" content="width=device-width, initial-scale=1"/>
</head>
<body>
<script id="api-reference" type="application/json">
$spec
</script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@{SCALAR_VERSION}/{SCALAR_FILE}"
        integrity="{SCALAR_INTEGRITY}"
        crossorigin="anonymous"></script>
</body>
</html>
"#,
        title = openapi::TITLE,
    )
}

/// The document and the page, rendered once when the app is built.
#[derive(Debug)]
pub(crate) struct Documents {
    /// `None` if the document could not be serialized (which would be a bug).
    json: Option<Bytes>,
    page: Bytes,
}

impl Documents {
    /// The document as the server runs (the session cookie named `cookie_name`, message
    /// texts of at most `max_message_chars` characters), and its page.
    pub(crate) fn new(cookie_name: &str, max_message_chars: usize) -> Self {
        let document = openapi::configured(cookie_name, max_message_chars);
        let json = match serde_json::to_vec(&document) {
            Ok(json) => Some(Bytes::from(json)),
            Err(error) => {
                tracing::error!(%error, "the OpenAPI document cannot be serialized");
                None
            }
        };
        let page = match json {
            // The page embeds the document; its script comes from a CDN when viewed.
            Some(_) => Bytes::from(Scalar::new(document).custom_html(page_template()).to_html()),
            None => Bytes::new(),
        };
        Self { json, page }
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operations",
    summary = "This OpenAPI document",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API.",
            content_type = "application/json", body = Object),
    ),
)]
pub(super) async fn json(documents: web::Data<Documents>) -> Result<HttpResponse, ApiError> {
    let json = documents
        .json
        .clone()
        .ok_or_else(|| ApiError::of_kind(ErrorKind::Internal))?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(json))
}

/// This document as a page to read and try the API in.
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "operations",
    summary = "This document as a page",
    description = "An HTML page (Scalar's API reference) showing this document. The browser \
        loads the page's script from a CDN, `@scalar/api-reference` at a pinned version from \
        cdn.jsdelivr.net, and runs it only if it matches the page's Subresource Integrity \
        hash; reading the page needs that host to be reachable.",
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
    ),
)]
pub(super) async fn page(documents: web::Data<Documents>) -> Result<HttpResponse, ApiError> {
    if documents.json.is_none() {
        return Err(ApiError::of_kind(ErrorKind::Internal));
    }
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(documents.page.clone()))
}

#[cfg(test)]
mod tests {
    use chatbot_domain::MessageText;

    use super::*;

    #[test]
    fn the_page_loads_the_pinned_script_and_checks_it() {
        let page = Documents::new("session", MessageText::DEFAULT_MAX_CHARS).page;
        let page = std::str::from_utf8(&page).unwrap();
        let cdn = "https://cdn.jsdelivr.net/npm/@scalar/api-reference";
        for expected in [
            format!(r#"<script src="{cdn}@{SCALAR_VERSION}/dist/browser/standalone.js""#),
            format!(r#"integrity="{SCALAR_INTEGRITY}""#),
            r#"crossorigin="anonymous"></script>"#.to_owned(),
            "<title>Chatbot API</title>".to_owned(),
            r#""title":"Chatbot API""#.to_owned(),
        ] {
            assert!(page.contains(&expected), "{expected} in {page}");
        }
        assert_eq!(
            page.matches("<script src=").count(),
            1,
            "one script, pinned"
        );
        assert!(!page.contains("$spec"), "the document is in: {page}");
    }

    #[test]
    fn both_show_the_configured_limits() {
        let documents = Documents::new("sid", 50);
        let json: serde_json::Value =
            serde_json::from_slice(documents.json.as_ref().unwrap()).expect("the document is JSON");
        let schemas = &json["components"]["schemas"];
        assert_eq!(
            schemas["NewMessage"]["properties"]["text"]["anyOf"][0]["maxLength"],
            50
        );
        assert_eq!(
            json["components"]["securitySchemes"]["session"]["name"],
            "sid"
        );
        let page = std::str::from_utf8(&documents.page).unwrap();
        assert!(page.contains(r#""maxLength":50,"#), "{page}");
        assert!(page.contains(r#""name":"sid""#), "{page}");
    }

    #[test]
    fn the_pin_is_an_exact_version_and_a_sha_384_hash() {
        let parts: Vec<&str> = SCALAR_VERSION.split('.').collect();
        assert_eq!(parts.len(), 3, "{SCALAR_VERSION}");
        assert!(
            parts.iter().all(|part| part.parse::<u32>().is_ok()),
            "a release, not a range or a tag: {SCALAR_VERSION}"
        );
        // SHA-384 is 48 bytes: 64 base64 characters, without padding.
        let hash = SCALAR_INTEGRITY.strip_prefix("sha384-").unwrap();
        assert_eq!(hash.len(), 64, "{hash}");
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
            "{hash}"
        );
    }
}
