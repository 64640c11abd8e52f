//! The API describing itself: its OpenAPI document, and a page to read it in.

use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use utoipa_scalar::Scalar;

use crate::error::{ApiError, ErrorKind};
use crate::openapi;

/// The document and the page, rendered once when the app is built.
#[derive(Debug)]
pub(crate) struct Documents {
    /// `None` if the document could not be serialized (which would be a bug).
    json: Option<Bytes>,
    page: Bytes,
}

impl Documents {
    /// The document with the session cookie named `cookie_name`, and its page.
    pub(crate) fn new(cookie_name: &str) -> Self {
        let document = openapi::with_cookie_name(cookie_name);
        let json = match serde_json::to_vec(&document) {
            Ok(json) => Some(Bytes::from(json)),
            Err(error) => {
                tracing::error!(%error, "the OpenAPI document cannot be serialized");
                None
            }
        };
        let page = match json {
            // The page embeds the document; its script comes from a CDN when viewed.
            Some(_) => Bytes::from(Scalar::new(document).to_html()),
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
    description = "An HTML page (Scalar) showing this document. The browser loads the page's \
        script from a CDN (cdn.jsdelivr.net), so reading it needs that host to be reachable.",
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
