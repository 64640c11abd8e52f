//! `GET /api/docs`: a page titled after the service, whose one script is pinned to an
//! exact version of `@scalar/api-reference` and checked by Subresource Integrity.

use awc::http::header::CONTENT_TYPE;

use crate::support::{Server, api_tests, settings};

/// The value of `name="..."` in `tag`.
fn attribute<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let (_, rest) = tag.split_once(&format!(" {name}=\""))?;
    Some(rest.split_once('"')?.0)
}

api_tests! {
    async fn the_docs_page_loads_a_pinned_script_with_its_hash(db) {
        let server = Server::start(settings(&db, &[])).await;
        let http = awc::Client::default();
        let mut page = http.get(format!("{}/api/docs", server.base)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers().get(CONTENT_TYPE).unwrap(), "text/html; charset=utf-8");
        let html = String::from_utf8(page.body().limit(1 << 20).await.unwrap().to_vec()).unwrap();

        assert!(html.contains("<title>Chatbot API</title>"), "titled after the service: {html}");
        assert!(!html.contains("<title>Scalar</title>"));

        let scripts: Vec<&str> = html
            .split("<script")
            .skip(1)
            .map(|rest| rest.split_once('>').unwrap().0)
            .filter(|tag| tag.contains(" src="))
            .collect();
        assert_eq!(scripts.len(), 1, "one script from elsewhere: {scripts:?}");
        let tag = scripts[0].split_whitespace().collect::<Vec<_>>().join(" ");
        let tag = format!(" {tag}");

        let src = attribute(&tag, "src").unwrap();
        let versioned = src
            .strip_prefix("https://cdn.jsdelivr.net/npm/@scalar/api-reference@")
            .unwrap_or_else(|| panic!("Scalar from jsDelivr: {src}"));
        let (version, file) = versioned.split_once('/').unwrap_or_else(|| panic!("a file named: {src}"));
        let parts: Vec<&str> = version.split('.').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|part| part.parse::<u32>().is_ok()),
            "an exact version, not a range or a tag: {src}"
        );
        // The file in full, which jsDelivr serves as npm has it (a package's default
        // file may be minified on the fly, and then fail the hash).
        assert_eq!(file, "dist/browser/standalone.js", "{src}");

        let integrity = attribute(&tag, "integrity").unwrap_or_else(|| panic!("no integrity: {tag}"));
        let hash = integrity.strip_prefix("sha384-").unwrap_or_else(|| panic!("sha384: {integrity}"));
        assert_eq!(hash.len(), 64, "48 bytes of base64: {integrity}");
        assert!(hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'), "{integrity}");
        assert_eq!(attribute(&tag, "crossorigin"), Some("anonymous"), "SRI across origins needs CORS");

        // The script's configuration: the document, embedded where Scalar looks for it.
        assert!(html.contains("<script id=\"api-reference\" type=\"application/json\">"), "{html}");
        assert!(html.contains("\"title\":\"Chatbot API\""), "the page embeds the document");
        server.stop().await;
    }
}
