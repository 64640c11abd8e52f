//! The site's routes: the API under `/api`, and the site's root, `/`.

// Visible to the crate for `openapi`, which lists the handlers' `#[utoipa::path]`s.
pub(crate) mod accounts;
pub(crate) mod auth;
pub(crate) mod conversations;
pub(crate) mod docs;
pub(crate) mod health;
pub(crate) mod index;
pub(crate) mod realtime;
pub(crate) mod replies;
pub(crate) mod web_client;

use actix_governor::Governor;
use actix_web::middleware::Condition;
use actix_web::web;

use crate::HttpConfig;
use crate::error::{ApiError, ErrorKind};
use crate::respond::method_not_allowed;

/// Registers every route of the site: `/`, then the API under `/api`. A known path with
/// an unknown method is a 405 whose `Allow` header lists the methods the path takes.
///
/// A test (`crates/server/tests/api/openapi.rs`) reads the paths of the [`resource`]
/// calls in this file and compares them with the OpenAPI document's: the calls before
/// the `/api` scope's are the site's own paths, those after it are under `/api`.
pub(crate) fn configure(site: &mut web::ServiceConfig, config: &HttpConfig) {
    use web_client as client;
    site.service(readable(resource("/", "GET, HEAD"), client::page))
        .service(readable(resource("/login", "GET, HEAD"), client::login))
        .service(readable(
            resource("/c/{id}", "GET, HEAD"),
            client::conversation,
        ))
        .service(readable(
            resource("/settings", "GET, HEAD"),
            client::settings,
        ))
        .service(readable(resource("/verify", "GET, HEAD"), client::verify))
        .service(readable(resource("/reset", "GET, HEAD"), client::reset))
        .service(readable(
            resource("/assets/{name}", "GET, HEAD"),
            client::asset,
        ))
        .service(web::scope("/api").configure(|api| configure_api(api, config)));
}

/// Registers the API's routes, relative to `/api`.
fn configure_api(api: &mut web::ServiceConfig, config: &HttpConfig) {
    let limited = config.rate_limits_enabled;
    let per_address = || Condition::new(limited, Governor::new(&config.rate_limiters.auth));
    let per_user = Condition::new(limited, Governor::new(&config.rate_limiters.messages));
    // Every other change a user makes, each route on the one per-user allowance.
    let writes = || Condition::new(limited, Governor::new(&config.rate_limiters.writes));
    let mail_per_address = || Condition::new(limited, Governor::new(&config.rate_limiters.mail));
    let documents = web::Data::new(docs::Documents::new(
        &config.cookie_name,
        config.max_message_chars,
    ));
    // `""` is `/api` itself (and `/api/` is not).
    api.service(
        resource("", "GET, HEAD")
            .route(web::get().to(index::api))
            .route(web::head().to(index::api)),
    )
    .service(resource("/health", "GET").route(web::get().to(health::health)))
    .service(resource("/ready", "GET").route(web::get().to(health::ready)))
    .service(
        resource("/openapi.json", "GET")
            .app_data(documents.clone())
            .route(web::get().to(docs::json)),
    )
    .service(
        resource("/docs", "GET")
            .app_data(documents)
            .route(web::get().to(docs::page)),
    )
    .service(
        resource("/test", "GET, HEAD")
            .route(web::get().to(auth::test))
            .route(web::head().to(auth::test)),
    )
    .service(
        resource("/signup", "POST")
            .wrap(per_address())
            .route(web::post().to(auth::sign_up)),
    )
    .service(
        resource("/login", "POST")
            .wrap(per_address())
            .route(web::post().to(auth::log_in)),
    )
    .service(
        resource("/logout", "GET, POST")
            .route(web::get().to(auth::log_out))
            .route(web::post().to(auth::log_out)),
    )
    .service(
        resource("/conversations", "GET, HEAD, POST")
            .route(web::get().to(conversations::list))
            .route(web::head().to(conversations::list))
            .route(web::post().to(conversations::create).wrap(writes())),
    )
    .service(
        resource("/conversations/{id}", "PUT, DELETE")
            .route(web::put().to(conversations::rename).wrap(writes()))
            .route(web::delete().to(conversations::delete).wrap(writes())),
    )
    .service(
        resource("/conversations/{id}/messages", "GET, HEAD, POST")
            .route(web::get().to(conversations::list_messages))
            .route(web::head().to(conversations::list_messages))
            .route(web::post().to(conversations::send_message).wrap(per_user)),
    )
    .service(
        resource("/conversations/{id}/messages/{message_id}/events", "GET")
            .route(web::get().to(replies::events)),
    )
    .service(
        resource("/conversations/{id}/messages/{message_id}/stop", "POST")
            .route(web::post().to(replies::stop).wrap(writes())),
    )
    .service(resource("/ws", "GET").route(web::get().to(realtime::open)))
    .service(
        resource("/me", "GET, PATCH, DELETE")
            .route(web::get().to(accounts::profile))
            .route(web::patch().to(accounts::update_profile).wrap(writes()))
            // A password check: limited like a login too.
            .route(
                web::delete()
                    .to(accounts::delete_account)
                    .wrap(per_address())
                    .wrap(writes()),
            ),
    )
    .service(
        resource("/me/password", "POST")
            .wrap(per_address())
            .route(web::post().to(accounts::change_password).wrap(writes())),
    )
    .service(
        resource("/me/sessions", "GET, DELETE")
            .route(web::get().to(accounts::sessions))
            .route(
                web::delete()
                    .to(accounts::end_other_sessions)
                    .wrap(writes()),
            ),
    )
    .service(
        resource("/me/sessions/{id}", "DELETE")
            .app_data(web::PathConfig::default().error_handler(|_, _| {
                ApiError::new(ErrorKind::NotFound, "Session not found.").into()
            }))
            .route(web::delete().to(accounts::end_session).wrap(writes())),
    )
    .service(
        resource("/me/email/verify", "POST")
            .wrap(mail_per_address())
            .route(web::post().to(accounts::send_verification).wrap(writes())),
    )
    .service(resource("/email/verify", "POST").route(web::post().to(accounts::verify_email)))
    .service(
        resource("/password/forgot", "POST")
            .wrap(mail_per_address())
            .route(web::post().to(accounts::forgot_password)),
    )
    .service(
        resource("/password/reset", "POST")
            .wrap(per_address())
            .route(web::post().to(accounts::reset_password)),
    );
}

/// `resource` answering GET and HEAD with `handler` (HEAD without the body).
fn readable<F, Args>(resource: actix_web::Resource, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    resource
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
}

/// The resource at `path`, whose routes take the methods `allow` lists (comma-separated,
/// as the `Allow` header of its 405s says; a test holds it to the OpenAPI document).
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || method_not_allowed(allow)))
}
