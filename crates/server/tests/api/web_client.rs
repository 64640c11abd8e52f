//! The web client as a browser fetches it: its page at every client route, with a
//! strict Content-Security-Policy and revalidated on every visit, and its assets under
//! hashed names, kept for a year, compressed for those who take gzip.

use awc::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING};
use awc::http::{Method, StatusCode};

use crate::support::{Server, api_tests, settings};

/// `path` as a browser fetches it: status, headers, and the body as sent (compressed
/// when `gzip`; awc here does not decompress).
async fn fetch(
    server: &Server,
    method: Method,
    path: &str,
    gzip: bool,
) -> (StatusCode, awc::http::header::HeaderMap, Vec<u8>) {
    let http = awc::Client::default();
    let mut request = http.request(method, format!("{}{path}", server.base));
    if gzip {
        request = request.insert_header((ACCEPT_ENCODING, "gzip, deflate, br"));
    }
    let mut response = request.send().await.unwrap();
    let body = response.body().limit(10 << 20).await.unwrap().to_vec();
    (response.status(), response.headers().clone(), body)
}

fn header<'a>(headers: &'a awc::http::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The `/assets/...` addresses a page names.
fn assets_of(page: &str) -> Vec<String> {
    page.split("\"/assets/")
        .skip(1)
        .filter_map(|rest| rest.split_once('"'))
        .map(|(name, _)| format!("/assets/{name}"))
        .collect()
}

api_tests! {
    async fn every_client_route_serves_the_page_with_a_strict_policy(db) {
        let server = Server::start(settings(&db, &[])).await;
        let (status, headers, body) = fetch(&server, Method::GET, "/", false).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&headers, "cache-control"), "no-cache");
        let policy = header(&headers, "content-security-policy");
        for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"] {
            assert!(policy.contains(directive), "{directive} in {policy}");
        }
        assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{policy}");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        let page = String::from_utf8(body).unwrap();
        assert!(page.starts_with("<!doctype html>") || page.starts_with("<!DOCTYPE html>"), "{page}");
        // No inline script or style the policy would block.
        assert!(!page.contains("<script>") && !page.contains("style=\"") && !page.contains(" onclick="), "{page}");

        for path in ["/login", "/c/12", "/settings", "/verify?token=abc", "/reset?token=abc"] {
            let (status, headers, body) = fetch(&server, Method::GET, path, false).await;
            assert_eq!(status, 200, "{path}");
            assert_eq!(String::from_utf8(body).unwrap(), page, "{path}: the same page");
            assert_eq!(header(&headers, "content-security-policy"), policy, "{path}");
            let (status, _, body) = fetch(&server, Method::HEAD, path, false).await;
            assert_eq!((status, body.len()), (StatusCode::OK, 0), "HEAD {path}");
        }
        // The API and unknown paths are not the client's.
        let (status, headers, _) = fetch(&server, Method::GET, "/nope", false).await;
        assert_eq!((status, header(&headers, "content-type")), (StatusCode::NOT_FOUND, "application/json"));
        server.stop().await;
    }

    async fn assets_have_hashed_names_are_immutable_and_compressed(db) {
        let server = Server::start(settings(&db, &[])).await;
        let (_, _, page) = fetch(&server, Method::GET, "/", false).await;
        let page = String::from_utf8(page).unwrap();
        let assets = assets_of(&page);
        assert!(assets.len() >= 3, "{assets:?}");
        let (_, page_headers, page_gzip) = fetch(&server, Method::GET, "/", true).await;
        assert_eq!(header(&page_headers, CONTENT_ENCODING.as_str()), "gzip");
        let mut first_load = page_gzip.len();
        for asset in &assets {
            // A hash of 16 hex digits before the extension.
            let name = asset.rsplit('/').next().unwrap();
            let hash = name.rsplit('.').nth(1).unwrap();
            assert!(hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()), "{asset}");

            let (status, headers, plain) = fetch(&server, Method::GET, asset, false).await;
            assert_eq!(status, 200, "{asset}");
            assert_eq!(header(&headers, "cache-control"), "public, max-age=31536000, immutable", "{asset}");
            let kind = header(&headers, "content-type");
            assert!(kind.starts_with("text/javascript") || kind.starts_with("text/css"), "{asset}: {kind}");
            assert!(header(&headers, CONTENT_ENCODING.as_str()).is_empty(), "{asset}: plain when gzip is not taken");
            assert!(header(&headers, "vary").contains("Accept-Encoding"), "{asset}");

            let (status, headers, compressed) = fetch(&server, Method::GET, asset, true).await;
            assert_eq!(status, 200);
            assert_eq!(header(&headers, CONTENT_ENCODING.as_str()), "gzip", "{asset}");
            assert!(compressed.len() < plain.len() && compressed.starts_with(&[0x1f, 0x8b]), "{asset}");
            first_load += compressed.len();
        }
        assert!(first_load < 150 * 1024, "the first load is {first_load} bytes compressed");
        // An old hash, or the file's own name, is not an asset.
        let stale = assets[0].replacen('.', ".0000000000000000.", 1);
        for path in [stale.as_str(), "/assets/app.js", "/assets/"] {
            let (status, headers, _) = fetch(&server, Method::GET, path, false).await;
            assert_eq!((status, header(&headers, "content-type")), (StatusCode::NOT_FOUND, "application/json"), "{path}");
        }
        server.stop().await;
    }
}
