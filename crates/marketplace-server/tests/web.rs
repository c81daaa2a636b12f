//! The web catalogue over HTTP: every page answers with the right content, headers and size;
//! hostile package content is inert; errors are pages that help.

mod common;

use common::Running;
use common::catalogue::{HUGE_README_BYTES, seed};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};

/// Pages stay under this many bytes.
const MAX_PAGE_BYTES: usize = 100 * 1024;

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(server: &Running, path: &str) -> Page {
    let response = server
        .http
        .get(server.url(path))
        .header("accept", "text/html")
        .send()
        .await
        .expect("send");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    Page {
        status,
        headers,
        body,
    }
}

/// A page that answered `status` as HTML under the catalogue's policy, within the size bound.
async fn page(server: &Running, path: &str, status: StatusCode) -> String {
    let page = get(server, path).await;
    assert_eq!(page.status, status, "{path}: {}", page.body);
    assert_eq!(
        page.headers[CONTENT_TYPE], "text/html; charset=utf-8",
        "{path}"
    );
    let csp = page.headers[CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{path}: {csp}"
    );
    assert!(
        page.body.len() < MAX_PAGE_BYTES,
        "{path}: {} bytes",
        page.body.len()
    );
    assert!(page.body.starts_with("<!DOCTYPE html>"), "{path}");
    page.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_show_what_people_choose_a_package_by() {
    let server = Running::start().await;
    seed(&server).await;

    let home = page(&server, "/", StatusCode::OK).await;
    for wanted in [
        "<title>Packages · Marketplace</title>",
        "Recently published",
        "Most downloaded",
        "href=\"/packages/web-router\"",
        "href=\"/categories/web\"",
    ] {
        assert!(home.contains(wanted), "home lacks {wanted}");
    }

    // Search with a filter, a sort and the match marked.
    let search = page(&server, "/search?q=router", StatusCode::OK).await;
    assert!(search.contains("href=\"/packages/web-router\""), "{search}");
    assert!(search.contains("<mark>router</mark>"), "{search}");
    let parsing = page(
        &server,
        "/search?category=parsing&sort=name",
        StatusCode::OK,
    )
    .await;
    assert!(parsing.contains("json-tools") && !parsing.contains("web-router"));
    let category = page(&server, "/categories/web", StatusCode::OK).await;
    assert!(category.contains("web-router") && !category.contains("json-tools"));
    let respelled = page(&server, "/search?q=ruoter", StatusCode::OK).await;
    assert!(respelled.contains("web-router"), "a typo is forgiven");

    // The package page: description, readme, install lines, details, signer, downloads.
    let package = page(&server, "/packages/acme%2Fhttp-core", StatusCode::OK).await;
    for wanted in [
        "<title>acme/http-core 1.1.0 · Marketplace</title>",
        "HTTP primitives for servers and clients",
        "<h1>HTTP core</h1>",
        "<em>HTTP</em>",
        "<table>",
        "rel=\"nofollow noopener noreferrer\"",
        "install acme/http-core@=1.1.0",
        "Trusted (full)",
        &server.key.public_key.key_id().to_string(),
        "class=\"chart\"",
        "Versions (2)",
    ] {
        assert!(package.contains(wanted), "package page lacks {wanted}");
    }
    assert!(!package.contains("badge yanked"), "1.1.0 is not yanked");

    // The yanked version says so, with the reason.
    let yanked = page(&server, "/packages/acme%2Fhttp-core/1.0.0", StatusCode::OK).await;
    assert!(yanked.contains("badge yanked"));
    assert!(yanked.contains("security: CVE-2026-0001"));
    let versions = page(
        &server,
        "/packages/acme%2Fhttp-core/versions",
        StatusCode::OK,
    )
    .await;
    assert!(versions.contains("security: CVE-2026-0001"));
    assert!(
        versions.find("1.1.0") < versions.find(">1.0.0<"),
        "newest first"
    );

    // Dependencies link to their packages; dependents list who depends.
    let deps = page(
        &server,
        "/packages/web-router/2.0.0/dependencies",
        StatusCode::OK,
    )
    .await;
    assert!(
        deps.contains("href=\"/packages/acme%2Fhttp-core\""),
        "{deps}"
    );
    assert!(deps.contains("^1.0"));
    let dependents = || {
        page(
            &server,
            "/packages/acme%2Fhttp-core/dependents",
            StatusCode::OK,
        )
    };
    let listed = dependents().await;
    assert!(listed.contains("href=\"/packages/web-router\""), "{listed}");
    let none = page(&server, "/packages/json-tools/dependents", StatusCode::OK).await;
    assert!(none.contains("No package depends on json-tools"));

    // A new dependent shows up, and the facet counts follow (the change feed is followed).
    let keyword_count = |page: &str| {
        let after = page
            .split("keyword=http\">http</a> <span class=\"count\">")
            .nth(1)?;
        after.split('<').next()?.parse::<u64>().ok()
    };
    let before = keyword_count(&page(&server, "/search?q=", StatusCode::OK).await);
    assert_eq!(before, Some(5), "every seeded package has the keyword http");
    let archive = common::archive("api-kit@1.0.0", "kit", &[("acme/http-core", "^1.1")]);
    assert_eq!(server.publish(&archive).await.status(), 201);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let listed = dependents().await;
    assert!(listed.contains("href=\"/packages/api-kit\""), "{listed}");
    let after = keyword_count(&page(&server, "/search?q=", StatusCode::OK).await);
    assert_eq!(after, Some(6), "the new package is counted");

    let categories = page(&server, "/categories", StatusCode::OK).await;
    assert!(categories.contains("href=\"/categories/parsing\""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_package_content_is_inert_and_size_limited() {
    let server = Running::start().await;
    seed(&server).await;
    for path in ["/packages/hostile", "/search?q=txt", "/", "/categories/web"] {
        let body = page(&server, path, StatusCode::OK).await;
        for (name, attributes) in tags(&body) {
            // The only script is our own, by URL; no frame, object or form of the package's.
            match name.as_str() {
                "script" => assert!(
                    attributes
                        .iter()
                        .any(|(a, v)| a == "src" && v.starts_with("/static/search.js?v=")),
                    "{path}: a script that is not ours"
                ),
                "iframe" | "object" | "embed" | "foreignobject" | "style" | "base" => {
                    panic!("{path}: a <{name}> reached the page")
                }
                "form" => assert!(
                    attributes
                        .iter()
                        .any(|(a, v)| a == "action" && v == "/search"),
                    "{path}: a form that is not the search box"
                ),
                _ => {}
            }
            for (attribute, value) in &attributes {
                assert!(
                    !attribute.starts_with("on"),
                    "{path}: <{name} {attribute}=…>"
                );
                let scheme = value.trim().to_ascii_lowercase();
                assert!(
                    !scheme.starts_with("javascript:") && !scheme.starts_with("data:text"),
                    "{path}: <{name} {attribute}={value:?}>"
                );
            }
        }
        assert!(
            !body.contains('\u{202E}') && !body.contains('\u{2067}'),
            "{path}: a bidi control reached the page"
        );
    }
    let hostile = page(&server, "/packages/hostile", StatusCode::OK).await;
    assert!(
        hostile.contains("&lt;script&gt;"),
        "the description is shown, escaped"
    );
    assert!(
        hostile.contains("[U+202E]"),
        "bidi controls are shown as code points"
    );
    assert!(
        hostile.contains("<h1>Hostile</h1>"),
        "the rest of the readme renders"
    );

    // A 5 MB readme is cut to fit the page, which says so.
    let huge = page(&server, "/packages/huge-readme", StatusCode::OK).await;
    assert!(
        huge.contains("is longer than this page shows"),
        "notice of the cut"
    );
    assert!(huge.contains(&format!("{} bytes", 2 + 6 + HUGE_README_BYTES / 22 * 22)));
    server.stop().await;
}

/// Every tag of an HTML page, lower-cased, with its attributes (name, unescaped-as-is value).
/// Text never holds a raw `<` (the templates escape it), so a `<` opens a tag or a comment.
fn tags(body: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        if rest.starts_with('/') || rest.starts_with('!') {
            rest = &rest[rest.find('>').map_or(rest.len(), |i| i + 1)..];
            continue;
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = &rest[name_end..];
        let mut attributes = Vec::new();
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
            if rest.is_empty() || rest.starts_with('>') {
                rest = rest.get(1..).unwrap_or("");
                break;
            }
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '=' || c == '>')
                .unwrap_or(rest.len());
            let attribute = rest[..end].to_ascii_lowercase();
            rest = &rest[end..];
            let mut value = String::new();
            if let Some(after) = rest.strip_prefix('=') {
                if let Some(quoted) = after.strip_prefix('"') {
                    let close = quoted.find('"').unwrap_or(quoted.len());
                    value = quoted[..close].to_owned();
                    rest = quoted.get(close + 1..).unwrap_or("");
                } else {
                    let close = after
                        .find(|c: char| c.is_whitespace() || c == '>')
                        .unwrap_or(after.len());
                    value = after[..close].to_owned();
                    rest = &after[close..];
                }
            }
            attributes.push((attribute, value));
        }
        out.push((name, attributes));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_revalidate_and_assets_are_cached() {
    let server = Running::start().await;
    seed(&server).await;
    let first = get(&server, "/packages/web-router").await;
    let etag = first.headers[ETAG].clone();
    assert_eq!(first.headers[CACHE_CONTROL], "no-cache");
    let again = server
        .http
        .get(server.url("/packages/web-router"))
        .header(IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[ETAG], etag);

    let style = get(&server, "/static/style.css").await;
    assert_eq!(style.status, StatusCode::OK);
    assert_eq!(style.headers[CONTENT_TYPE], "text/css; charset=utf-8");
    let home = get(&server, "/").await.body;
    let link = home
        .split("href=\"/static/style.css?")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a versioned style link");
    let versioned = get(&server, &format!("/static/style.css?{link}")).await;
    assert_eq!(
        versioned.headers[CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    let script = get(&server, "/static/search.js").await;
    assert_eq!(
        script.headers[CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        get(&server, "/static/nope.js").await.status,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_pages_that_suggest_and_the_api_keeps_json() {
    let server = Running::start().await;
    seed(&server).await;
    let missing = page(&server, "/packages/web-ruter", StatusCode::NOT_FOUND).await;
    assert!(missing.contains("Did you mean"), "{missing}");
    assert!(
        missing.contains("href=\"/packages/web-router\""),
        "{missing}"
    );
    let no_version = page(&server, "/packages/web-router/9.9.9", StatusCode::NOT_FOUND).await;
    assert!(no_version.contains("web-router@9.9.9"));
    let bad_version = page(
        &server,
        "/packages/web-router/not-a-version",
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(bad_version.contains("not-a-version"), "{bad_version}");
    page(&server, "/packages/..%2F..%2Fetc", StatusCode::NOT_FOUND).await;
    page(&server, "/search?sort=sideways", StatusCode::BAD_REQUEST).await;
    page(&server, "/search?page=0", StatusCode::BAD_REQUEST).await;
    page(&server, "/nothing/here", StatusCode::NOT_FOUND).await;
    // Values from the URL are shown only up to a bound: a page stays under 100 KB however long
    // the URL.
    let long = "x".repeat(30_000);
    page(
        &server,
        &format!("/search?q={long}&keyword={long}"),
        StatusCode::OK,
    )
    .await;
    page(&server, &format!("/packages/{long}"), StatusCode::NOT_FOUND).await;
    page(&server, &format!("/{long}"), StatusCode::NOT_FOUND).await;
    let api = get(&server, "/api/v1/nothing").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(
        api.headers[CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("application/json")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_marketplace_shows_no_catalogue_without_a_token() {
    let server =
        Running::with_config(marketplace_server::ServerConfig::default().with_private(true)).await;
    let body = page(&server, "/", StatusCode::UNAUTHORIZED).await;
    assert!(body.contains("private"), "{body}");
    page(&server, "/packages/anything", StatusCode::UNAUTHORIZED).await;
    let with_token = server
        .http
        .get(server.url("/"))
        .bearer_auth(&server.token)
        .send()
        .await
        .expect("send");
    assert_eq!(with_token.status(), StatusCode::OK);
    server.stop().await;
}
