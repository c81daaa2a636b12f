//! A small marketplace for the catalogue's tests: packages with readmes, categories,
//! dependencies (and so dependents), a yanked version, and one package whose every field a
//! hostile author chose.

use bytes::Bytes;
use marketplace_core::{PackageId, PackageMetadata, parse_requirement};

use super::Running;

/// What the hostile package's description and readme carry.
pub const HOSTILE_DESCRIPTION: &str =
    "<script>alert('description')</script> <img src=x onerror=alert(1)> \u{202E}txt.exe";

/// Markdown (and raw HTML) that would run script if it were not made inert.
pub const HOSTILE_README: &str = "# Hostile\n\n\
<script>alert('readme')</script>\n\n\
<img src=\"x\" onerror=\"alert('img')\">\n\n\
[click me](javascript:alert('link'))\n\n\
<a href=\"javascript:alert('a')\" onclick=\"alert('click')\">also</a>\n\n\
<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert('svg')\"><script>alert('svg-script')</script></svg>\n\n\
<iframe src=\"https://example.com\"></iframe>\n\n\
<form action=\"https://example.com\"><input name=x></form>\n\n\
Right-to-left: \u{202E}gnp.exe\u{202C} and \u{2067}isolate\u{2069}\n\n\
<details open ontoggle=\"alert('toggle')\"><summary>x</summary></details>\n";

/// The readme of the package whose readme is 5 MB.
pub const HUGE_README_BYTES: usize = 5 * 1024 * 1024;

fn archive(
    id: &str,
    about: &str,
    categories: &[&str],
    deps: &[(&str, &str)],
    readme: &str,
) -> Bytes {
    let id: PackageId = id.parse().expect("id");
    let mut metadata =
        PackageMetadata::new(id, about, marketplace_core::ContentHash::sha256(b""), 0);
    metadata.keywords = vec!["http".into()];
    metadata.categories = categories.iter().map(|c| (*c).to_owned()).collect();
    for (name, req) in deps {
        metadata.dependencies.insert(
            name.parse().expect("dependency"),
            parse_requirement(req).expect("requirement"),
        );
    }
    marketplace_testing::corpus::archive_with(&metadata, &[("README.md", readme.as_bytes())])
}

/// Publishes the catalogue's packages through `server` (and yanks `acme/http-core@1.0.0`).
pub async fn seed(server: &Running) {
    let huge = format!(
        "# Huge\n\n{}",
        "All work and no play. ".repeat(HUGE_README_BYTES / 22)
    );
    let packages = [
        archive(
            "acme/http-core@1.0.0",
            "HTTP primitives for servers and clients",
            &["web"],
            &[],
            "# HTTP core\n\nFirst release.\n",
        ),
        archive(
            "acme/http-core@1.1.0",
            "HTTP primitives for servers and clients",
            &["web"],
            &[],
            "# HTTP core\n\nFast *HTTP* primitives. See [the docs](https://example.com/docs).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        ),
        archive(
            "web-router@2.0.0",
            "A request router on top of http-core",
            &["web"],
            &[("acme/http-core", "^1.0")],
            "# web-router\n\nRoutes requests.\n",
        ),
        archive(
            "json-tools@0.3.0",
            "Parse and pretty-print JSON documents",
            &["parsing"],
            &[],
            "# json-tools\n",
        ),
        archive(
            "hostile@1.0.0",
            HOSTILE_DESCRIPTION,
            &["web"],
            &[],
            HOSTILE_README,
        ),
        archive(
            "huge-readme@1.0.0",
            "A readme of five megabytes",
            &["parsing"],
            &[],
            &huge,
        ),
    ];
    for package in &packages {
        let response = server.publish(package).await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
    }
    let response = server
        .call(
            reqwest::Method::PUT,
            "/api/v1/packages/acme%2Fhttp-core/1.0.0/yank",
            Some(&server.token),
            Some(serde_json::json!({"reason": "security: CVE-2026-0001"})),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    server.client.sync_index().await.expect("index");
}
