//! Every endpoint of /api/v1 driven with a real HTTP client against a server on 127.0.0.1.

mod common;

use common::{Running, archive, error_of};
use marketplace_core::{DependencyGraph, SearchResult};
use marketplace_protocol::v1;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_read_every_view() {
    let server = Running::start().await;
    let base = archive("acme/base@1.0.0", "Base types for web services", &[]);
    let app = archive(
        "acme/web@1.2.0",
        "Routing and templates for web services",
        &[("acme/base", "^1")],
    );
    for body in [&base, &app] {
        let response = server.publish(body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let published: v1::PublishResponse = response.json().await.expect("json");
        assert!(published.indexed);
    }

    let versions: v1::VersionList = get_json(&server, "/api/v1/packages/acme%2Fweb/versions").await;
    assert_eq!(versions.package, "acme/web");
    assert_eq!(versions.states().expect("states").len(), 1);

    let metadata: v1::VersionMetadata =
        get_json(&server, "/api/v1/packages/acme%2Fweb/1.2.0").await;
    let metadata = marketplace_core::PackageMetadata::try_from(metadata).expect("valid");
    assert_eq!(metadata.id.to_string(), "acme/web@1.2.0");
    let signature = metadata.signature.clone().expect("the signature is served");
    let verified = server
        .client
        .crypto()
        .verify_signature(&metadata, &signature)
        .await
        .expect("verify");
    assert!(
        verified.is_valid(),
        "the served metadata verifies (the signed publication time was kept): {verified:?}"
    );

    let info: v1::PackageInfo = get_json(&server, "/api/v1/packages/acme%2Fweb/1.2.0/info").await;
    assert!(!info.yanked);
    assert_eq!(info.yank.to_yank("yank", "1.2.0").expect("yank"), None);

    let graph: v1::ResolvedGraph =
        get_json(&server, "/api/v1/resolve?package=acme/web&req=%5E1").await;
    let graph = DependencyGraph::try_from(graph).expect("valid graph");
    assert_eq!(graph.root.to_string(), "acme/web@1.2.0");
    assert_eq!(
        graph.nodes.len(),
        2,
        "the dependency comes in the same response"
    );

    let results: v1::SearchResults = get_json(&server, "/api/v1/search?q=templates").await;
    let hits: Vec<SearchResult> = results
        .hits
        .into_iter()
        .map(|h| SearchResult::try_from(h).expect("valid hit"))
        .collect();
    assert_eq!(hits[0].id.to_string(), "acme/web@1.2.0");

    let filtered: v1::SearchResults = get_json(
        &server,
        "/api/v1/search?q=web&namespace=acme&sort=name&limit=1",
    )
    .await;
    assert_eq!(filtered.hits.len(), 1);
    assert_eq!(filtered.hits[0].id, "acme/base@1.0.0");

    let names: v1::Suggestions = get_json(&server, "/api/v1/suggest?q=we").await;
    assert_eq!(names.names, vec!["acme/web".to_owned()]);

    let feed: v1::EventPage = get_json(&server, "/api/v1/events?since=0&limit=10").await;
    assert_eq!(feed.events.len(), 2);
    assert_eq!(
        feed.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let rest: v1::EventPage = get_json(&server, "/api/v1/events?since=1").await;
    assert_eq!(rest.events.len(), 1);

    let keys: v1::KeyList = get_json(&server, "/api/v1/keys").await;
    assert_eq!(
        keys.keys[0].public_key().expect("key"),
        server.key.public_key
    );

    let stats: v1::Stats = get_json(&server, "/api/v1/packages/acme%2Fweb/1.2.0/stats").await;
    assert_eq!(stats.version_downloads, 0);

    let health = server
        .http
        .get(server.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);
    let ready: serde_json::Value = get_json(&server, "/ready").await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["index_lag"], 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_carry_etags_ranges_and_count() {
    let server = Running::start().await;
    let body = archive("tool@0.1.0", "A tool", &[]);
    assert_eq!(server.publish(&body).await.status(), StatusCode::CREATED);
    let url = server.url("/api/v1/packages/tool/0.1.0/download");

    let full = server.http.get(&url).send().await.expect("download");
    assert_eq!(full.status(), StatusCode::OK);
    let etag = full.headers()["etag"].to_str().expect("etag").to_owned();
    let hash = marketplace_core::ContentHash::sha256(&body);
    assert_eq!(etag, format!("\"{hash}\""));
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert!(
        full.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(full.bytes().await.expect("bytes"), body);

    let cached = server
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("revalidate");
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(cached.headers()["etag"], etag.as_str());
    assert!(cached.bytes().await.expect("body").is_empty());

    let part = server
        .http
        .get(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-19/{}", body.len()).as_str()
    );
    assert_eq!(part.bytes().await.expect("bytes"), body.slice(10..20));

    let past = server
        .http
        .get(&url)
        .header("range", format!("bytes={}-", body.len()))
        .send()
        .await
        .expect("range past the end");
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{}", body.len()).as_str()
    );

    // The full download counted; the revalidation and the resumed range did not.
    let stats = server
        .client
        .registry()
        .get_stats(&"tool@0.1.0".parse().unwrap())
        .await
        .expect("stats");
    assert_eq!(stats.version_downloads, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_by_hash_are_not_counted_until_the_client_says_so() {
    let server = Running::start().await;
    let body = archive("tool@0.1.0", "A tool", &[]);
    assert_eq!(server.publish(&body).await.status(), StatusCode::CREATED);
    let hash = marketplace_core::ContentHash::sha256(&body);
    let url = server.url(&format!("/api/v1/archives/{hash}"));

    let full = server.http.get(&url).send().await.expect("by hash");
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()["etag"], format!("\"{hash}\"").as_str());
    assert_eq!(full.bytes().await.expect("bytes"), body);
    let head = server.http.head(&url).send().await.expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    let part = server
        .http
        .get(&url)
        .header("range", "bytes=0-9")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.expect("bytes"), body.slice(0..10));
    let cached = server
        .http
        .get(&url)
        .header("if-none-match", format!("\"{hash}\""))
        .send()
        .await
        .expect("revalidate");
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    let absent = marketplace_core::ContentHash::sha256(b"nothing");
    let missing = server
        .http
        .get(server.url(&format!("/api/v1/archives/{absent}")))
        .send()
        .await
        .expect("absent");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    for bad in ["sha256:xyz", "md5:00", "..%2F..%2Fetc%2Fpasswd"] {
        let response = server
            .http
            .get(server.url(&format!("/api/v1/archives/{bad}")))
            .send()
            .await
            .expect("bad hash");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }

    async fn downloads(server: &Running) -> u64 {
        server
            .client
            .registry()
            .get_stats(&"tool@0.1.0".parse().unwrap())
            .await
            .expect("stats")
            .version_downloads
    }
    assert_eq!(downloads(&server).await, 0, "reads by hash are not counted");
    let count = server
        .http
        .post(server.url("/api/v1/packages/tool/0.1.0/downloads"))
        .send()
        .await
        .expect("count");
    assert_eq!(count.status(), StatusCode::NO_CONTENT);
    assert_eq!(downloads(&server).await, 1);
    let unknown = server
        .http
        .post(server.url("/api/v1/packages/tool/9.9.9/downloads"))
        .send()
        .await
        .expect("count an unknown version");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_changed_in_the_store_is_never_sent_whole() {
    let server = Running::start().await;
    let body = archive("tool@0.1.0", "A tool", &[]);
    assert_eq!(server.publish(&body).await.status(), StatusCode::CREATED);
    let hash = marketplace_core::ContentHash::sha256(&body).to_string();
    let hex = hash.rsplit(':').next().expect("hex");
    let object = files_under(&server.home().join("store"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains(hex))
        .expect("the archive's object");
    let mut changed = std::fs::read(&object).expect("read");
    let last = changed.len() - 1;
    changed[last] ^= 0xff;
    std::fs::write(&object, &changed).expect("write");

    for range in [None, Some("bytes=0-"), Some("bytes=10-")] {
        let mut request = server
            .http
            .get(server.url("/api/v1/packages/tool/0.1.0/download"));
        if let Some(range) = range {
            request = request.header("range", range);
        }
        // The status went out before the bytes were read, so the refusal is a cut
        // connection: before the response's head is complete, or within the body.
        let received = match request.send().await {
            Ok(response) => response.bytes().await,
            Err(e) => Err(e),
        };
        if let Ok(received) = received {
            panic!(
                "{range:?}: {} bytes accepted as the archive",
                received.len()
            );
        }
    }
    server.stop().await;
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_publishes_change_nothing() {
    let server = Running::start().await;
    let body = archive("acme/web@1.0.0", "Web", &[]);
    let unchanged = || async {
        let registry = server.client.registry();
        assert!(
            registry
                .get(&"acme/web@1.0.0".parse().unwrap())
                .await
                .is_err(),
            "nothing registered"
        );
        assert_eq!(
            server.client.store().stats().await.expect("stats").objects,
            0
        );
        assert_eq!(registry.latest_event_seq().await.expect("seq"), 0);
    };

    // Signed by a key that is not registered to the publisher (nor trusted).
    let stranger = server.client.generate_keypair().await.expect("keypair");
    let signature = server.sign(&body, &stranger.private_key).await;
    let response = server.publish_signed(body.clone(), &signature).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let error = error_of(response).await;
    assert_eq!(error.kind, "unauthorized");
    assert!(
        error.message.contains("not registered to alice"),
        "{}",
        error.message
    );
    unchanged().await;

    // Signed by a key the server trusts but that is not the publisher's.
    server
        .client
        .trust_key(&stranger.public_key, marketplace_core::TrustLevel::Full)
        .await
        .expect("trust");
    let response = server.publish_signed(body.clone(), &signature).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    unchanged().await;

    // A signature over another archive.
    let other = archive("acme/web@1.0.0", "Another web", &[]);
    let signature = server.sign(&other, &server.key.private_key).await;
    let response = server.publish_signed(body.clone(), &signature).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    unchanged().await;

    // No signature at all.
    let response = server
        .http
        .put(server.url("/api/v1/packages"))
        .bearer_auth(&server.token)
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = error_of(response).await;
    assert_eq!(error.field.as_deref(), Some(v1::SIGNATURE_HEADER));
    unchanged().await;

    // A malformed signature header.
    let response = server
        .http
        .put(server.url("/api/v1/packages"))
        .bearer_auth(&server.token)
        .header(v1::SIGNATURE_HEADER, "ed25519 nothex")
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    unchanged().await;

    // No publication time, or one far from the server's clock.
    let signed = server.sign(&body, &server.key.private_key).await;
    let with_time = |time: Option<String>| {
        let mut request = server
            .http
            .put(server.url("/api/v1/packages"))
            .bearer_auth(&server.token)
            .header(
                v1::SIGNATURE_HEADER,
                v1::SignatureBody::from(&signed.signature).header_value(),
            )
            .body(body.clone());
        if let Some(time) = time {
            request = request.header(v1::PUBLISHED_AT_HEADER, time);
        }
        request.send()
    };
    let now = marketplace_core::now_seconds();
    let hours = marketplace_core::time::Duration::hours;
    for time in [
        None,
        Some("yesterday".to_owned()),
        Some(v1::published_at_header(now - hours(2))),
        Some(v1::published_at_header(now + hours(1))),
    ] {
        let response = with_time(time.clone()).await.expect("send");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{time:?}");
        let error = error_of(response).await;
        assert_eq!(
            error.field.as_deref(),
            Some(v1::PUBLISHED_AT_HEADER),
            "{time:?}"
        );
        unchanged().await;
    }

    // Not an archive.
    let signature = server.sign(&body, &server.key.private_key).await;
    let response = server
        .publish_signed(bytes::Bytes::from_static(b"not a tarball"), &signature)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_of(response).await.kind, "invalid");
    unchanged().await;

    // The wrong content type.
    let response = server
        .http
        .put(server.url("/api/v1/packages"))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .header(
            v1::SIGNATURE_HEADER,
            v1::SignatureBody::from(&signature.signature).header_value(),
        )
        .header(
            v1::PUBLISHED_AT_HEADER,
            v1::published_at_header(signature.published_at),
        )
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    unchanged().await;

    // Then the real one, once; the second time is a conflict.
    assert_eq!(server.publish(&body).await.status(), StatusCode::CREATED);
    let again = server.publish(&body).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(error_of(again).await.kind, "already_exists");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413_and_stores_nothing() {
    let server = Running::with_config(
        marketplace_server::ServerConfig::default().with_max_archive_bytes(1024),
    )
    .await;
    let body = archive("big@1.0.0", "Big", &[]);
    let padded = {
        let mut v = body.to_vec();
        v.resize(4096, 0);
        bytes::Bytes::from(v)
    };
    let signature = server.sign(&body, &server.key.private_key).await;
    let response = server.publish_signed(padded.clone(), &signature).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_of(response).await.kind, "invalid");

    // Sent in chunks with no length announced: cut off where it passes the limit.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = padded
        .chunks(512)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let response = server
        .http
        .put(server.url("/api/v1/packages"))
        .bearer_auth(&server.token)
        .header(
            v1::SIGNATURE_HEADER,
            v1::SignatureBody::from(&signature.signature).header_value(),
        )
        .header(
            v1::PUBLISHED_AT_HEADER,
            v1::published_at_header(signature.published_at),
        )
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        server.client.store().stats().await.expect("stats").objects,
        0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_of_the_right_status() {
    let server = Running::start().await;
    assert_eq!(
        server
            .publish(&archive("web@1.0.0", "Web", &[]))
            .await
            .status(),
        StatusCode::CREATED
    );
    for (path, status, kind) in [
        (
            "/api/v1/packages/nope/versions",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/v1/packages/web/9.9.9",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/api/v1/packages/web/not-a-version",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/api/v1/packages/..%2F..%2Fetc/versions",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/api/v1/packages/web/..%2F..%2F1.0.0/download",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/api/v1/packages/%00/1.0.0",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        ("/api/v1/search?limit=0", StatusCode::BAD_REQUEST, "invalid"),
        (
            "/api/v1/search?limit=many",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/api/v1/search?sort=sideways",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/api/v1/events?since=-1",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/api/v1/events?limit=100000",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        ("/api/v1/resolve", StatusCode::BAD_REQUEST, "invalid"),
        (
            "/api/v1/resolve?package=web&req=%3E%3E1",
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/api/v1/resolve?package=web&req=%5E2",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        ("/api/v2/search", StatusCode::NOT_FOUND, "not_found"),
        ("/nothing/here", StatusCode::NOT_FOUND, "not_found"),
    ] {
        let response = server
            .http
            .get(server.url(path))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}"
        );
        assert_eq!(error_of(response).await.kind, kind, "{path}");
    }
    let wrong_method = server
        .http
        .delete(server.url("/api/v1/search"))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_of(wrong_method).await.kind, "invalid");
    server.stop().await;
}

/// 16 publishes of one name@version at once: exactly one is created, the others are told it
/// exists. 16 different packages at once: all are created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_of_one_version_create_it_once() {
    let server = std::sync::Arc::new(Running::start().await);
    let body = archive("race@1.0.0", "Raced", &[]);
    let signature = server.sign(&body, &server.key.private_key).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (server, body, signature) = (server.clone(), body.clone(), signature.clone());
        tasks.push(tokio::spawn(async move {
            server.publish_signed(body, &signature).await.status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("join"));
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 15), "{statuses:?}");
    // Whichever request claimed the new name, its first publisher owns it.
    let owners = server
        .client
        .owners(&marketplace_core::OwnerTarget::Package(
            "race".parse().unwrap(),
        ))
        .await
        .expect("owners");
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].as_str(), "alice");

    let mut tasks = Vec::new();
    for i in 0..16 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let body = archive(&format!("many{i}@1.0.0"), "One of many", &[]);
            server.publish(&body).await.status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("join"), StatusCode::CREATED);
    }
    let hits = server
        .client
        .search(&marketplace_core::SearchQuery::text("many").with_limit(50))
        .await
        .expect("search");
    assert_eq!(hits.len(), 16);
    let Ok(server) = std::sync::Arc::try_unwrap(server) else {
        panic!("every task is done");
    };
    server.stop().await;
}

async fn get_json<T: serde::de::DeserializeOwned>(server: &Running, path: &str) -> T {
    let response = server
        .http
        .get(server.url(path))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facets_and_similar_packages() {
    let server = Running::start().await;
    for id in ["web@1.0.0", "webby@1.0.0", "acme/http-kit@1.0.0"] {
        assert_eq!(
            server
                .publish(&archive(id, "An http toolkit for the web", &[]))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    let facets: v1::FacetCounts = get_json(&server, "/api/v1/facets?q=http").await;
    let http = facets
        .keywords
        .iter()
        .find(|f| f.value == "http")
        .expect("keyword");
    assert_eq!(http.count, 3);
    assert_eq!(facets.namespaces.len(), 1);
    assert_eq!(facets.namespaces[0].value, "acme");
    let similar: v1::SearchResults =
        get_json(&server, "/api/v1/packages/web/1.0.0/similar?limit=5").await;
    assert!(!similar.hits.is_empty());
    assert!(
        similar.hits.iter().all(|h| h.id != "web@1.0.0"),
        "never itself"
    );
    for (path, status) in [
        (
            "/api/v1/packages/web/1.0.0/similar?limit=0",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/packages/nothing/1.0.0/similar",
            StatusCode::NOT_FOUND,
        ),
        ("/api/v1/facets?sort=sideways", StatusCode::BAD_REQUEST),
    ] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_publishes_the_valid_packages_and_lists_each_refusal() {
    let server = Running::with_config(
        marketplace_server::ServerConfig::default().with_max_batch_bytes(64 * 1024),
    )
    .await;
    let item = |body: &bytes::Bytes, signed: &common::Signed| {
        serde_json::to_value(v1::BatchItem::new(
            body,
            &signed.signature,
            signed.published_at,
        ))
        .unwrap()
    };
    let a = archive("a@1.0.0", "A", &[]);
    let b = archive("acme/b@1.0.0", "B", &[]);
    let c = archive("c@1.0.0", "C", &[]);
    let stranger = server.client.generate_keypair().await.unwrap();
    let (signed_a, signed_b) = (
        server.sign(&a, &server.key.private_key).await,
        server.sign(&b, &server.key.private_key).await,
    );
    let signed_c = server.sign(&c, &stranger.private_key).await;
    let mut bad = item(&a, &signed_a);
    bad["archive"] = "not base64!".into();
    let body = serde_json::json!({"packages": [
        item(&a, &signed_a),
        item(&b, &signed_b),
        item(&a, &signed_a),
        bad,
        item(&c, &signed_c),
    ]});

    let response = server
        .call(
            reqwest::Method::POST,
            "/api/v1/batch",
            None,
            Some(body.clone()),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = server
        .call(
            reqwest::Method::POST,
            "/api/v1/batch",
            Some(&server.token),
            Some(serde_json::json!({"packages": []})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        server.client.registry().latest_event_seq().await.unwrap(),
        0
    );

    let response = server
        .call(
            reqwest::Method::POST,
            "/api/v1/batch",
            Some(&server.token),
            Some(body),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let outcome: v1::BatchResponse = response.json().await.unwrap();
    let published: Vec<&str> = outcome.published.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(published, ["a@1.0.0", "acme/b@1.0.0"]);
    let refused: Vec<(usize, &str)> = outcome
        .refused
        .iter()
        .map(|r| (r.index, r.error.kind.as_str()))
        .collect();
    assert_eq!(
        refused,
        [(2, "already_exists"), (3, "invalid"), (4, "unauthorized")]
    );
    assert!(
        server
            .client
            .versions(&"c".parse().unwrap())
            .await
            .is_err_and(|e| e.kind() == marketplace_core::ErrorKind::NotFound)
    );
    let acme = marketplace_core::OwnerTarget::Namespace("acme".parse().unwrap());
    assert_eq!(server.client.owners(&acme).await.unwrap().len(), 1);

    // Over the batch limit: 413 before anything is read.
    let big = (0..400).map(|_| item(&a, &signed_a)).collect::<Vec<_>>();
    let response = server
        .call(
            reqwest::Method::POST,
            "/api/v1/batch",
            Some(&server.token),
            Some(serde_json::json!({ "packages": big })),
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}

/// A batch decides each package's scope from its state before the batch (every version of a
/// new package needs publish-new), and each package's ownership on its own (a namespace owned
/// by someone else refuses every package in it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_checks_scope_and_ownership_for_every_package() {
    let server = Running::start().await;
    let alice = marketplace_core::UserName::new("alice").unwrap();
    let old = archive("acme/old@1.0.0", "Old", &[]);
    assert_eq!(server.publish(&old).await.status(), StatusCode::CREATED);
    let update_only = server
        .client
        .create_token(
            &alice,
            "update-only",
            [marketplace_core::Scope::PublishUpdate],
            None,
            None,
        )
        .await
        .unwrap()
        .secret;
    let batch = async |archives: Vec<bytes::Bytes>, key: &marketplace_core::PrivateKey, token| {
        let mut packages = Vec::new();
        for body in &archives {
            let signed = server.sign(body, key).await;
            packages.push(
                serde_json::to_value(v1::BatchItem::new(
                    body,
                    &signed.signature,
                    signed.published_at,
                ))
                .unwrap(),
            );
        }
        let response = server
            .call(
                reqwest::Method::POST,
                "/api/v1/batch",
                Some(token),
                Some(serde_json::json!({ "packages": packages })),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let outcome: v1::BatchResponse = response.json().await.unwrap();
        let published: Vec<String> = outcome.published.into_iter().map(|p| p.id).collect();
        let refused: Vec<(usize, String)> = outcome
            .refused
            .into_iter()
            .map(|r| (r.index, r.error.kind))
            .collect();
        (published, refused)
    };

    let (published, refused) = batch(
        vec![
            archive("acme/old@1.1.0", "Old", &[]),
            archive("fresh@1.0.0", "Fresh", &[]),
            archive("fresh@1.1.0", "Fresh", &[]),
        ],
        &server.key.private_key,
        &update_only,
    )
    .await;
    assert_eq!(published, ["acme/old@1.1.0"]);
    assert_eq!(
        refused,
        [(1, "unauthorized".into()), (2, "unauthorized".into())]
    );

    let (bob_key, bob_token) =
        common::user_with_key(&server.client, "bob", &common::PUBLISHER).await;
    let (published, refused) = batch(
        vec![
            archive("acme/x@1.0.0", "X", &[]),
            archive("bobs@1.0.0", "Bob's", &[]),
            archive("acme/y@1.0.0", "Y", &[]),
            archive("bobs@1.1.0", "Bob's", &[]),
        ],
        &bob_key.private_key,
        &bob_token,
    )
    .await;
    assert_eq!(published, ["bobs@1.0.0", "bobs@1.1.0"]);
    assert_eq!(
        refused,
        [(0, "unauthorized".into()), (2, "unauthorized".into())]
    );
    let bobs = marketplace_core::OwnerTarget::Package("bobs".parse().unwrap());
    assert_eq!(
        server.client.owners(&bobs).await.unwrap(),
        ["bob".parse().unwrap()]
    );
    for package in ["fresh", "acme/x", "acme/y"] {
        assert!(
            server
                .client
                .versions(&package.parse().unwrap())
                .await
                .is_err_and(|e| e.kind() == marketplace_core::ErrorKind::NotFound),
            "{package}"
        );
    }
    server.stop().await;
}
