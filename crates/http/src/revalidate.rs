//! Conditional GETs of what a user's [`Revision`] versions: their conversation list
//! (both forms) and a conversation's messages page.
//!
//! The entity tag names the user, their revision and the request's path and query. A
//! revision changes in the transaction of every write of the user's, so a client that
//! sends back the current tag can be answered 304 after two indexed reads (session,
//! revision), before anything is read, rendered or sent.

use std::hash::{DefaultHasher, Hash, Hasher};

use actix_web::http::header::{self, CACHE_CONTROL, EntityTag, Header, IfNoneMatch, VARY};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use chatbot_domain::{Revision, UserId};

/// The strong tag of one resource of one user at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    tag: EntityTag,
    /// Whether the resource is known to exist, which `If-None-Match: *` asks.
    exists: bool,
}

impl Version {
    /// The version of what `request` asks for of `user`'s data at `revision`.
    ///
    /// The path and query are in the tag so that a tag is only ever current for the
    /// resource that sent it: another conversation's page at the same revision, or one
    /// that does not exist, has another tag. The API's version is in it because a
    /// newer server may render the same data differently.
    pub(crate) fn of(request: &HttpRequest, user: UserId, revision: Revision) -> Self {
        let mut resource = DefaultHasher::new();
        (
            env!("CARGO_PKG_VERSION"),
            request.path(),
            request.query_string(),
        )
            .hash(&mut resource);
        let tag = format!(
            "{:x}-{:x}-{:016x}",
            user.get(),
            revision.0,
            resource.finish()
        );
        Self {
            tag: EntityTag::new_strong(tag),
            exists: true,
        }
    }

    /// The same version of a resource that may not exist (a conversation's page):
    /// `If-None-Match: *` is then no reason for a 304, since only reading it would
    /// tell. A tag still is: it was sent with that resource at this revision, so the
    /// resource existed then, and nothing of the user's has changed since.
    pub(crate) fn perhaps_missing(self) -> Self {
        Self {
            exists: false,
            ..self
        }
    }

    /// 304, with no body, when `request`'s `If-None-Match` names this version (or
    /// `*`); `None` when the representation must be sent.
    pub(crate) fn unchanged(&self, request: &HttpRequest) -> Option<HttpResponse> {
        // If-None-Match compares weakly (RFC 9110, 13.1.2): `W/"…"` of our tag matches.
        let current = match IfNoneMatch::parse(request).ok()? {
            IfNoneMatch::Any => self.exists,
            IfNoneMatch::Items(tags) => tags.iter().any(|tag| tag.weak_eq(&self.tag)),
        };
        current.then(|| self.headers(&mut HttpResponse::NotModified()).finish())
    }

    /// Adds the tag, and the caching rules that make a browser revalidate, to
    /// `response`.
    pub(crate) fn headers<'r>(
        &self,
        response: &'r mut HttpResponseBuilder,
    ) -> &'r mut HttpResponseBuilder {
        response
            .insert_header(header::ETag(self.tag.clone()))
            // Kept by the browser only (it is one user's), and revalidated before each
            // use; the session cookie decides whose data it is.
            .insert_header((CACHE_CONTROL, "private, no-cache"))
            .insert_header((VARY, "Cookie"))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::http::header::ETAG;
    use actix_web::test::TestRequest;

    use super::*;

    const ALICE: UserId = UserId::new(1);

    fn version(uri: &str, user: UserId, revision: i64) -> Version {
        Version::of(
            &TestRequest::get().uri(uri).to_http_request(),
            user,
            Revision(revision),
        )
    }

    fn sent(version: &Version) -> String {
        version.tag.to_string()
    }

    #[test]
    fn a_tag_is_one_users_resource_at_one_revision() {
        let list = version("/api/conversations", ALICE, 7);
        assert_eq!(list, version("/api/conversations", ALICE, 7));
        for other in [
            version("/api/conversations", ALICE, 8),
            version("/api/conversations", UserId::new(2), 7),
            version("/api/conversations?limit=20", ALICE, 7),
            version("/api/conversations/1/messages", ALICE, 7),
        ] {
            assert_ne!(list, other);
        }
        assert!(sent(&list).starts_with("\"1-7-"), "{}", sent(&list));
    }

    #[test]
    fn the_current_tag_weak_or_strong_or_any_is_unchanged() {
        let list = version("/api/conversations", ALICE, 7);
        let weak = format!("W/{}", sent(&list));
        for given in [
            sent(&list),
            weak,
            "*".to_owned(),
            format!("\"x\", {}", sent(&list)),
        ] {
            let request = TestRequest::get()
                .uri("/api/conversations")
                .insert_header((header::IF_NONE_MATCH, given.as_str()))
                .to_http_request();
            let response = list.unchanged(&request).expect(&given);
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
            assert_eq!(
                response.headers().get(ETAG).unwrap().to_str().unwrap(),
                sent(&list)
            );
        }
    }

    #[test]
    fn another_tag_or_none_is_sent_again() {
        let list = version("/api/conversations", ALICE, 7);
        let older = version("/api/conversations", ALICE, 6);
        let with = |given: &str| {
            TestRequest::get()
                .insert_header((header::IF_NONE_MATCH, given))
                .to_http_request()
        };
        assert!(list.unchanged(&with(&sent(&older))).is_none());
        assert!(list.unchanged(&with("not a tag")).is_none());
        assert!(
            list.unchanged(&TestRequest::get().to_http_request())
                .is_none()
        );
    }
}
