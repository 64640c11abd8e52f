//! The index at `/api`: what this service is, and where its documentation and probes
//! are, so that the API's address in the start-up log leads somewhere.

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;

/// What the service is and where to go from here: every field but `version` is a path
/// on this server.
#[derive(Debug, PartialEq, Eq, Serialize, ToSchema)]
pub(crate) struct Index {
    /// The service's name.
    #[schema(examples("chatbot"))]
    pub(crate) service: &'static str,
    /// The server's version (its release's `Cargo.toml` version).
    #[schema(examples("0.1.0"))]
    pub(crate) version: &'static str,
    /// The API's documentation as a page to read and try the API in.
    #[schema(examples("/api/docs"))]
    pub(crate) docs: &'static str,
    /// The API's OpenAPI 3.1 document.
    #[schema(examples("/api/openapi.json"))]
    pub(crate) openapi: &'static str,
    /// Liveness: whether the process serves requests.
    #[schema(examples("/api/health"))]
    pub(crate) health: &'static str,
    /// Readiness: whether the database answers too.
    #[schema(examples("/api/ready"))]
    pub(crate) ready: &'static str,
}

impl Index {
    /// This server's index.
    pub(crate) const CURRENT: Self = Self {
        service: "chatbot",
        version: env!("CARGO_PKG_VERSION"),
        docs: "/api/docs",
        openapi: "/api/openapi.json",
        health: "/api/health",
        ready: "/api/ready",
    };
}

/// The index of the API.
#[utoipa::path(
    method(get, head),
    path = "/api",
    operation_id = "api_index",
    tag = "operations",
    summary = "Index: where the documentation and probes are",
    description = "Names the service and its version, and gives the paths of this \
        documentation (`docs`: the page, `openapi`: this document) and of the probes.",
    responses(
        (status = 200, description = "The index.", body = Index),
    ),
)]
pub(super) async fn api() -> HttpResponse {
    HttpResponse::Ok().json(Index::CURRENT)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_index_points_at_the_documentation_and_the_probes() {
        assert_eq!(
            serde_json::to_value(Index::CURRENT).unwrap(),
            json!({
                "service": "chatbot",
                "version": env!("CARGO_PKG_VERSION"),
                "docs": "/api/docs",
                "openapi": "/api/openapi.json",
                "health": "/api/health",
                "ready": "/api/ready",
            }),
        );
    }
}
