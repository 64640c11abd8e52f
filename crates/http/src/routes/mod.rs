//! The API's routes under `/api`.

mod auth;
mod conversations;

use actix_web::web;

use crate::Adapters;
use crate::respond::method_not_allowed;

/// Registers every route of the API; a known path with an unknown method is a 405.
pub(crate) fn configure<A: Adapters>(config: &mut web::ServiceConfig) {
    config
        .service(
            resource("/test")
                .route(web::get().to(auth::test))
                .route(web::head().to(auth::test)),
        )
        .service(resource("/signup").route(web::post().to(auth::sign_up::<A>)))
        .service(resource("/login").route(web::post().to(auth::log_in::<A>)))
        .service(
            resource("/logout")
                .route(web::get().to(auth::log_out))
                .route(web::post().to(auth::log_out)),
        )
        .service(
            resource("/conversations")
                .route(web::get().to(conversations::list::<A>))
                .route(web::head().to(conversations::list::<A>))
                .route(web::post().to(conversations::create::<A>)),
        )
        .service(
            resource("/conversations/{id}")
                .route(web::put().to(conversations::rename::<A>))
                .route(web::delete().to(conversations::delete::<A>)),
        )
        .service(
            resource("/conversations/{id}/messages")
                .route(web::post().to(conversations::send_message::<A>)),
        );
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}
