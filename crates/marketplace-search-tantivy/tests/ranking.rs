//! How text search ranks: every query word found beats one word in a name, stems match in
//! descriptions and keywords (not in names), a phrase counts, and popularity — the packages
//! whose current version depends on a hit — breaks ties, following every change.

use marketplace_conformance::fixtures::{record, yanked};
use marketplace_core::{PackageRecord, SearchEngine, SearchQuery};
use marketplace_search_tantivy::TantivySearchEngine;

fn depending(mut record: PackageRecord, on: &[&str]) -> PackageRecord {
    for package in on {
        record.metadata.dependencies.insert(
            package.parse().expect("package"),
            "^1".parse().expect("requirement"),
        );
    }
    record
}

async fn names(engine: &TantivySearchEngine, text: &str) -> Vec<String> {
    engine
        .search(&SearchQuery::text(text))
        .await
        .expect("search")
        .iter()
        .map(|hit| hit.id.package().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_matching_every_word_outranks_one_word_in_a_name() {
    let engine = TantivySearchEngine::in_memory().expect("index");
    let records = [
        record(
            "security-framework@1.0.0",
            "Bindings for a platform security service.",
            &["tls"],
            &[],
            0,
        ),
        record(
            "serde@1.0.0",
            "A generic serialization/deserialization framework",
            &["serialization"],
            &[],
            0,
        ),
    ];
    engine.index_batch(&records).await.expect("index");
    assert_eq!(
        names(&engine, "serialization framework").await,
        ["serde", "security-framework"]
    );
    // One word alone: the name match still leads.
    assert_eq!(names(&engine, "framework").await[0], "security-framework");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stems_match_in_descriptions_and_keywords_but_not_in_names() {
    let engine = TantivySearchEngine::in_memory().expect("index");
    let records = [
        record(
            "workpool@1.0.0",
            "Simple work-stealing parallelism.",
            &[],
            &[],
            0,
        ),
        record("tagged@1.0.0", "Unrelated text.", &["parallelisms"], &[], 0),
        record("parallelism@1.0.0", "Unrelated words.", &[], &[], 0),
    ];
    engine.index_batch(&records).await.expect("index");
    // "parallel" finds "parallelism" in a description and "parallelisms" in keywords, stemmed,
    // but not the name "parallelism": names are matched as written (or within a typo or two).
    let mut found = names(&engine, "parallel").await;
    found.sort();
    assert_eq!(found, ["tagged", "workpool"]);
    assert_eq!(names(&engine, "parallelism").await[0], "parallelism");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_words_as_a_phrase_in_the_description_count() {
    let engine = TantivySearchEngine::in_memory().expect("index");
    let records = [
        record(
            "scattered@1.0.0",
            "Time zones for every date format, with leap seconds.",
            &[],
            &[],
            0,
        ),
        record(
            "together@1.0.0",
            "Leap seconds for a date time library.",
            &[],
            &[],
            0,
        ),
    ];
    engine.index_batch(&records).await.expect("index");
    assert_eq!(names(&engine, "date time").await, ["together", "scattered"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_break_ties_and_follow_every_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = TantivySearchEngine::open(dir.path()).expect("index");
    let twin = |name: &str| record(&format!("{name}@1.0.0"), "A queue library.", &[], &[], 0);
    engine
        .index_batch(&[twin("alpha"), twin("beta")])
        .await
        .expect("index");
    let order = || async { names(&engine, "queue library").await };
    let first = order().await;

    // Whichever led, two dependents of the other put it first.
    let (leader, other) = (first[0].clone(), first[1].clone());
    let user = |name: &str, on: &str| {
        depending(
            record(&format!("{name}@1.0.0"), "An app.", &[], &[], 0),
            &[on],
        )
    };
    engine
        .index_batch(&[user("app-one", &other), user("app-two", &other)])
        .await
        .expect("index");
    assert_eq!(order().await, [other.clone(), leader.clone()]);

    // A dependent's new version that depends on the leader instead moves one count over: a
    // tie again, so the index's own order (as at first) decides.
    let moved = depending(record("app-one@2.0.0", "An app.", &[], &[], 0), &[&leader]);
    engine.index(&moved).await.expect("index");
    assert_eq!(order().await, first);

    // Yanking that version makes 1.0.0 current again: two for `other` once more.
    engine.update(&yanked(moved.clone())).await.expect("yank");
    assert_eq!(order().await, [other.clone(), leader.clone()]);

    // Removing a dependent takes its count away.
    engine
        .remove(&"app-two@1.0.0".parse().expect("id"))
        .await
        .expect("remove");
    engine
        .remove(&"app-one@1.0.0".parse().expect("id"))
        .await
        .expect("remove");
    assert_eq!(order().await, first);

    // A rebuild counts from the records alone, and so does a reopened index.
    let records = vec![
        twin("alpha"),
        twin("beta"),
        user("app-three", &other),
        depending(
            record("self-user@2.0.0", "An app.", &[], &[], 0),
            &["self-user", &leader],
        ),
        user("app-four", &other),
    ];
    engine
        .rebuild(Box::new(records.into_iter()))
        .await
        .expect("rebuild");
    assert_eq!(order().await, [other.clone(), leader.clone()]);
    drop(engine);
    let engine = TantivySearchEngine::open(dir.path()).expect("reopen");
    assert_eq!(
        names(&engine, "queue library").await,
        [other.clone(), leader.clone()]
    );
}

/// An index another version of this crate wrote (another schema) is emptied on open, with no
/// feed position, so the client rebuilds it; its files are gone, not searched wrongly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_with_another_schema_is_emptied_for_a_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut builder = tantivy::schema::Schema::builder();
        let text = builder.add_text_field("text", tantivy::schema::TEXT);
        let index = tantivy::Index::create_in_dir(dir.path(), builder.build()).expect("old index");
        let mut writer: tantivy::IndexWriter = index.writer(15_000_000).expect("writer");
        writer
            .add_document(tantivy::doc!(text => "an old document"))
            .expect("add");
        writer.commit().expect("commit");
    }
    let engine = TantivySearchEngine::open(dir.path()).expect("open over the old index");
    assert_eq!(engine.stats().await.expect("stats").documents, 0);
    assert_eq!(engine.feed_position().await.expect("position"), Some(0));
    let r = record("zoo/okapi@1.0.0", "Okapi tools.", &[], &[], 1);
    engine.index(&r).await.expect("index");
    assert_eq!(names(&engine, "okapi").await, ["zoo/okapi"]);
}

/// Typos of a word are searched where the word is rare, not where it is common (at least one
/// document in 100 and at least 50 have it in that field): there it was typed as meant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typos_are_searched_for_rare_words_not_for_common_ones() {
    let engine = TantivySearchEngine::in_memory().expect("index");
    let mut records = vec![
        record("tokio-parsr@1.0.0", "Streams.", &[], &[], 0),
        record("yaml-parser@1.0.0", "Documents.", &[], &[], 0),
    ];
    engine.index_batch(&records).await.expect("index");
    // "parser" is in one name of two: rare, so its typo "parsr" is found too.
    let found = names(&engine, "parser").await;
    assert_eq!(found, ["yaml-parser", "tokio-parsr"]);
    // Sixty more packages named with "parser": now common in names.
    records.clear();
    for i in 0..60 {
        records.push(record(&format!("parser-{i}@1.0.0"), "Text.", &[], &[], 0));
    }
    engine.index_batch(&records).await.expect("index");
    let found = names(&engine, "parser").await;
    assert!(!found.contains(&"tokio-parsr".to_owned()), "{found:?}");
    // A search for the rare word itself still finds it.
    assert!(
        names(&engine, "parsr")
            .await
            .contains(&"tokio-parsr".to_owned()),
        "an exact match for a rare word"
    );
}
