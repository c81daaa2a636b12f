//! The OpenAPI document: what `/api/v1/openapi.json` serves is what `docs/openapi.json` holds
//! (`UPDATE_OPENAPI=1 cargo test -p marketplace-server --test openapi` rewrites the file;
//! review the diff), and every path it names is one the server routes.

mod common;

use common::Running;
use reqwest::StatusCode;

fn checked_in() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_the_checked_in_one_and_names_only_real_routes() {
    let server = Running::start().await;
    let response = server
        .http
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let served: serde_json::Value = response.json().await.unwrap();
    let mut text = serde_json::to_string_pretty(&served).unwrap();
    text.push('\n');
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(checked_in(), &text).unwrap();
    }
    let file = std::fs::read_to_string(checked_in()).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (UPDATE_OPENAPI=1 writes it)",
            checked_in().display()
        )
    });
    assert_eq!(
        text, file,
        "docs/openapi.json is not what the server serves"
    );
    assert_eq!(served["openapi"].as_str().unwrap().get(..3), Some("3.1"));

    let paths = served["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{}", paths.len());
    for (path, item) in paths {
        let concrete = path
            .replace("{package}", "web")
            .replace("{version}", "1.0.0")
            .replace("{namespace}", "acme")
            .replace("{user}", "alice")
            .replace("{id}", "0123456789abcdef")
            .replace("{key}", "00000000000000000000000000000000");
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = server
                .http
                .request(method.clone(), server.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !body.contains("no API endpoint"),
                "{method} {path} is documented but not routed"
            );
            assert!(!status.is_server_error(), "{method} {path}: {status}");
        }
    }
    server.stop().await;
}
