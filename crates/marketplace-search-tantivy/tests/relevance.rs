//! Relevance on a fixture of 203 package records written for this project
//! (`tests/fixtures/packages.json`, made by `make_packages.py`), and hostile queries.

use std::collections::BTreeMap;

use marketplace_core::{PackageRecord, SearchEngine, SearchQuery};
use marketplace_search_tantivy::TantivySearchEngine;

async fn engine() -> (TantivySearchEngine, Vec<PackageRecord>) {
    let records: Vec<PackageRecord> =
        serde_json::from_str(include_str!("fixtures/packages.json")).expect("fixture parses");
    assert!(records.len() >= 200);
    let engine = TantivySearchEngine::in_memory().expect("index");
    engine
        .index_batch(&records)
        .await
        .expect("index the fixture");
    (engine, records)
}

async fn ids(engine: &TantivySearchEngine, query: SearchQuery) -> Vec<String> {
    engine
        .search(&query)
        .await
        .expect("search")
        .iter()
        .map(|h| h.id.package().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_name_comes_first() {
    let (engine, _) = engine().await;
    for (query, first) in [
        ("scaffold", "tmpl/scaffold"),
        ("websocket", "net/websocket"),
        ("pager", "cli/pager"),
        ("serializer", "acme/serializer"),
        ("arg_parser", "cli/arg-parser"),
        ("net/websocket", "net/websocket"),
    ] {
        let found = ids(&engine, SearchQuery::text(query)).await;
        assert_eq!(
            found.first().map(String::as_str),
            Some(first),
            "{query}: {found:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misspellings_still_find_the_package() {
    let (engine, _) = engine().await;
    for (query, wanted) in [
        ("scafold", "tmpl/scaffold"),          // 1 edit, 7 letters
        ("serialiser", "acme/serializer"),     // 1 edit, 10 letters
        ("kaliedoscope", "tmpl/kaleidoscope"), // transposition, 12 letters
        ("kaleidscop", "tmpl/kaleidoscope"),   // 2 edits, 10 letters
        ("websockte", "net/websocket"),        // transposition, 9 letters
        ("markdwn", "text/markdown-render"),   // 1 edit, 7 letters
    ] {
        let found = ids(&engine, SearchQuery::text(query)).await;
        assert!(
            found.iter().take(3).any(|p| p == wanted),
            "{query:?} should find {wanted} near the top: {found:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyword_outranks_description_mention() {
    let (engine, _) = engine().await;
    let found = ids(&engine, SearchQuery::text("realtime")).await;
    assert_eq!(
        found.first().map(String::as_str),
        Some("net/websocket"),
        "{found:?}"
    );
    // misc/notes-app says "websocket" three times in its description; packages with it as a
    // keyword or in their name rank above it.
    let found = ids(&engine, SearchQuery::text("websocket")).await;
    let notes = found
        .iter()
        .position(|p| p == "misc/notes-app")
        .expect("notes-app matches");
    for keyword_match in [
        "net/websocket",
        "net/websocket-cli",
        "net/websocket-core",
        "net/websocket-testing",
    ] {
        let at = found
            .iter()
            .position(|p| p == keyword_match)
            .expect("keyword match found");
        assert!(
            at < notes,
            "{keyword_match} ({at}) should rank above the description mention ({notes}): {found:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yanked_only_packages_do_not_appear() {
    let (engine, _) = engine().await;
    let found = ids(&engine, SearchQuery::text("abandoned parser")).await;
    assert!(
        !found.contains(&"old/abandoned-parser".to_owned()),
        "{found:?}"
    );
    let with_yanked = SearchQuery::text("abandoned-parser").with_include_yanked(true);
    let found = engine.search(&with_yanked).await.expect("search");
    assert_eq!(found[0].id.to_string(), "old/abandoned-parser@1.1.0");
    assert!(found[0].yanked);
    assert!(
        engine
            .suggest("abandoned", 5)
            .await
            .expect("suggest")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_and_facets_count_correctly() {
    let (engine, records) = engine().await;
    let live: Vec<&PackageRecord> = records.iter().filter(|r| !r.is_yanked()).collect();

    // Every live package is in exactly one version, so counts are over packages.
    let mut categories: BTreeMap<String, u64> = BTreeMap::new();
    for r in &live {
        for c in &r.metadata.categories {
            *categories.entry(c.clone()).or_default() += 1;
        }
    }
    let facets = engine
        .facets(&SearchQuery::default())
        .await
        .expect("facets");
    let got: BTreeMap<String, u64> = facets.categories.iter().cloned().collect();
    assert_eq!(got, categories);

    let query = SearchQuery::default()
        .with_categories(vec!["database".into()])
        .with_limit(100);
    let found = ids(&engine, query).await;
    assert_eq!(found.len() as u64, categories["database"]);

    let query = SearchQuery::default()
        .with_keywords(vec!["testing".into()])
        .with_namespace("test")
        .with_limit(100);
    let found = ids(&engine, query).await;
    let expected = live
        .iter()
        .filter(|r| {
            r.metadata.keywords.contains(&"testing".to_owned())
                && r.metadata
                    .id
                    .namespace
                    .as_ref()
                    .is_some_and(|n| n.as_str() == "test")
        })
        .count();
    assert_eq!(found.len(), expected);
    assert!(found.iter().all(|p| p.starts_with("test/")));

    let query = SearchQuery::default()
        .with_min_downloads(40_000)
        .with_limit(100);
    let expected = live.iter().filter(|r| r.downloads >= 40_000).count();
    assert_eq!(ids(&engine, query).await.len(), expected);

    let text_facets = engine
        .facets(&SearchQuery::text("testing"))
        .await
        .expect("facets");
    assert!(
        text_facets
            .keywords
            .iter()
            .any(|(k, n)| k == "testing" && *n > 10),
        "{:?}",
        text_facets.keywords
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_and_similar_packages() {
    let (engine, _) = engine().await;
    let names: Vec<String> = engine
        .suggest("web", 10)
        .await
        .expect("suggest")
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(
        names.contains(&"acme/web-framework".to_owned())
            && names.contains(&"net/websocket".to_owned()),
        "{names:?}"
    );
    let similar = engine
        .similar(&"sec/jwt-verify@1.0.0".parse().expect("id"), 5)
        .await
        .expect("similar");
    assert!(!similar.is_empty());
    assert!(
        similar
            .iter()
            .all(|h| h.id.package().to_string() != "sec/jwt-verify")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_queries_never_fail() {
    let (engine, _) = engine().await;
    let junk = "\"(]{:*?~^!\\/".repeat(1000);
    let queries: Vec<String> = [
        "\"",
        "\"\"",
        "\"unterminated phrase",
        "'",
        "''",
        "name:",
        ":",
        "::",
        "a:b",
        "name:web AND",
        "AND",
        "OR",
        "NOT",
        "AND OR NOT",
        "(",
        ")",
        "((web)",
        "[",
        "]",
        "[1 TO",
        "{",
        "}",
        "{* TO 5}",
        "*",
        "?",
        "**",
        "web*",
        "*web",
        "w?b",
        "~",
        "web~2",
        "^",
        "web^10",
        "+",
        "-",
        "+web -http",
        "!",
        "&&",
        "||",
        "\\",
        "\\\\",
        "/",
        "/regex/",
        "<b>web</b>",
        "<script>alert(1)</script>",
        "'; DROP TABLE packages; --",
        "%",
        "%00",
        "\u{0}",
        "\t\n\r",
        "   ",
        "😀",
        "🚀 web",
        "Ω≈ç√",
        "ｗｅｂ",
        "a\u{202e}b",
        "\u{feff}web",
        "日本語のパッケージ",
        "web\u{0}http",
        "1e309",
        "-1",
        "9999999999999999999999",
        "NaN",
        "null",
        "undefined",
        "$where",
        "{\"$gt\": 1}",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([junk, "a ".repeat(5000), "x".repeat(10_000)])
    .collect();
    assert!(queries.len() >= 50);
    for q in &queries {
        let shown: String = q.chars().take(20).collect();
        engine
            .search(&SearchQuery::text(q.clone()))
            .await
            .unwrap_or_else(|e| panic!("search {shown:?}: {e}"));
        engine
            .suggest(q, 5)
            .await
            .unwrap_or_else(|e| panic!("suggest {shown:?}: {e}"));
        engine
            .facets(&SearchQuery::text(q.clone()))
            .await
            .unwrap_or_else(|e| panic!("facets {shown:?}: {e}"));
        let filtered = SearchQuery::text("web")
            .with_categories(vec![q.clone()])
            .with_keywords(vec![q.clone()])
            .with_namespace(q.clone());
        engine
            .search(&filtered)
            .await
            .unwrap_or_else(|e| panic!("filters {shown:?}: {e}"));
    }
}
