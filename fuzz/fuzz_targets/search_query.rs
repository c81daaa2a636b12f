//! Search query text: any text (and any filter values) is answered, never a parser error or a
//! panic, on an index holding a few packages.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use marketplace_core::{ContentHash, PackageMetadata, PackageRecord, SearchEngine, SearchQuery};
use marketplace_search_tantivy::TantivySearchEngine;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    engine: TantivySearchEngine,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let engine = TantivySearchEngine::in_memory().expect("an index");
        runtime.block_on(async {
            for (id, description) in [
                ("acme/web-server@1.0.0", "An HTTP server for web apps"),
                ("acme/web-server@1.1.0", "An HTTP server for web apps"),
                ("json-tools@0.3.0", "Parse and format JSON"),
            ] {
                let m = PackageMetadata::new(
                    id.parse().expect("id"),
                    description,
                    ContentHash::sha256(id.as_bytes()),
                    1,
                );
                engine.index(&PackageRecord::new(m)).await.expect("index");
            }
        });
        Fixture { runtime, engine }
    })
}

fuzz_target!(|text: &str| {
    let f = fixture();
    let mut query = SearchQuery::text(text);
    let mid = (0..=text.len() / 2)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let (head, tail) = text.split_at(mid);
    query.categories = vec![head.to_owned()];
    query.namespace = Some(tail.to_owned());
    f.runtime.block_on(async {
        f.engine.search(&SearchQuery::text(text)).await.expect("text is data");
        f.engine.search(&query).await.expect("filters are data");
        f.engine.suggest(text, 10).await.expect("a prefix is data");
        f.engine.facets(&SearchQuery::text(text)).await.expect("facets of any text");
    });
});
