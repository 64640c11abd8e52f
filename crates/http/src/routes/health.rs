//! Probes for orchestrators and load balancers: is the process serving, and can it
//! reach its database.

use std::time::Duration;

use actix_web::{HttpResponse, web};

use crate::State;
use crate::dto::Status;
use crate::error::{ApiError, ErrorBody, ErrorKind};

/// How long readiness waits for the database: a probe must answer well within the
/// prober's own timeout, whatever the pool's connection timeout is.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up and serving requests.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "operations",
    summary = "Liveness: the process serves requests",
    description = "Does not touch the database.",
    responses(
        (status = 200, description = "Serving.", body = Status, example = json!({"status": "ok"})),
    ),
)]
pub(super) async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// The database answers a query within [`READY_TIMEOUT`]; 503 otherwise.
#[utoipa::path(
    get,
    path = "/api/ready",
    tag = "operations",
    summary = "Readiness: the database answers",
    description = "Answers within about 2 seconds whether the database answered a query.",
    responses(
        (status = 200, description = "Ready to serve.", body = Status,
            example = json!({"status": "ready"})),
        (status = 503, description = "`unavailable`: the database cannot be reached (or did \
            not answer in time).", body = ErrorBody),
    ),
)]
pub(super) async fn ready(state: web::Data<State>) -> Result<HttpResponse, ApiError> {
    match actix_web::rt::time::timeout(READY_TIMEOUT, state.services.health.ready()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(Status { status: "ready" })),
        Ok(Err(error)) => Err(ApiError::caused_by(ErrorKind::Unavailable, error)),
        Err(elapsed) => Err(ApiError::caused_by(ErrorKind::Unavailable, elapsed)),
    }
}
