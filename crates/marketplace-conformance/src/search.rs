//! The `SearchEngine` suite, including a model-based property check.

use std::collections::BTreeMap;

use marketplace_core::semver::Version;
use marketplace_core::{
    ErrorKind, PackageId, PackageRecord, SearchEngine, SearchQuery, SearchResult, SortOrder,
};
use proptest::prelude::*;

use crate::Capabilities;
use crate::fixtures::{record, yanked};
use crate::property::property;
use crate::report::{CheckResult, Context, SuiteReport, ensure, ensure_eq, expect_kind};

/// Runs every `SearchEngine` check against `engine`, which must be empty when the suite starts.
///
/// Checks: finding by name, keyword and description; exact name first; name over keywords over
/// description; one hit per package at its current version; yanked versions; remove and update;
/// filters; sorts; pagination; typo tolerance and highlights (if claimed); hostile query text;
/// suggest; facets; similar; stats; optimize; rebuild (last, as it replaces the index); and a
/// property check against a model over random index/remove sequences.
pub async fn search_suite(engine: &dyn SearchEngine, caps: &Capabilities) -> SuiteReport {
    let e = engine;
    let mut report = SuiteReport::new("search", caps);
    report
        .run("finds_by_name_keyword_and_description", finds(e))
        .await;
    report.run("exact_name_first", exact_name_first(e)).await;
    report
        .run("name_over_keyword_over_description", field_weights(e))
        .await;
    report
        .run(
            "one_hit_per_package_at_its_latest_version",
            one_hit_per_package(e),
        )
        .await;
    report
        .run("yanked_versions_hidden_by_default", yanked_hidden(e))
        .await;
    report
        .run("index_batch_indexes_every_record", index_batch(e))
        .await;
    report.run("remove_deletes", remove(e)).await;
    report.run("update_replaces", update(e)).await;
    report.run("filters_are_query_clauses", filters(e)).await;
    report.run("sort_orders", sorts(e)).await;
    report.run("limit_and_offset", pagination(e)).await;
    report
        .run(
            "exact_name_shows_one_version",
            exact_name_shows_one_version(e),
        )
        .await;
    if caps.typo_tolerance {
        report.run("typo_tolerance", typos(e)).await;
    } else {
        report.skip("typo_tolerance", "backend does not claim typo_tolerance");
    }
    if caps.highlights {
        report.run("highlights_mark_terms", highlights(e)).await;
    } else {
        report.skip("highlights_mark_terms", "backend does not claim highlights");
    }
    report.run("query_text_is_data", hostile_queries(e)).await;
    report.run("suggest_by_prefix", suggest(e)).await;
    report.run("facets_count_packages", facets(e)).await;
    report.run("similar_packages", similar(e)).await;
    report
        .run("stats_count_documents_and_packages", stats(e))
        .await;
    report.run("optimize_keeps_results", optimize(e)).await;
    report
        .run("feed_position_follows_apply_feed", feed_position(e))
        .await;
    report
        .run("apply_downloads_sets_every_version", apply_downloads(e))
        .await;
    report
        .run(
            "model_random_operations",
            model_check(e, caps.property_cases),
        )
        .await;
    report.run("rebuild_replaces_everything", rebuild(e)).await;
    report
}

async fn index_all(e: &dyn SearchEngine, records: &[PackageRecord]) -> CheckResult {
    for r in records {
        e.index(r).await.ctx(format!("index {}", r.metadata.id))?;
    }
    Ok(())
}

async fn search(e: &dyn SearchEngine, query: &SearchQuery) -> Result<Vec<SearchResult>, String> {
    e.search(query)
        .await
        .ctx(format!("search {:?}", query.text))
}

async fn text(e: &dyn SearchEngine, text: &str) -> Result<Vec<SearchResult>, String> {
    search(e, &SearchQuery::text(text)).await
}

fn ids(hits: &[SearchResult]) -> Vec<String> {
    hits.iter().map(|h| h.id.to_string()).collect()
}

async fn finds(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[record(
            "fd/quillmarker@1.0.0",
            "Renders parchment pages from templates.",
            &["scribble"],
            &["templates"],
            10,
        )],
    )
    .await?;
    for (query, how) in [
        ("quillmarker", "name"),
        ("scribble", "keyword"),
        ("parchment", "description"),
        ("QuillMarker", "name in another case"),
        ("SCRIBBLE", "keyword in capitals"),
        ("Parchment Pages", "description words in another case"),
    ] {
        let hits = text(e, query).await?;
        ensure_eq!(
            ids(&hits),
            vec!["fd/quillmarker@1.0.0".to_owned()],
            "search by {how} ({query})"
        );
    }
    ensure!(
        text(e, "nonexistentwordxyz").await?.is_empty(),
        "a word in no document found something"
    );
    Ok(())
}

async fn exact_name_first(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[
            record(
                "ex/zephyr-client@1.0.0",
                "A zephyr client with many features, zephyr everywhere.",
                &["zephyr"],
                &[],
                5000,
            ),
            record(
                "ex/fast-zephyr@1.0.0",
                "Zephyr, but fast. Zephyr zephyr.",
                &["zephyr"],
                &[],
                9000,
            ),
            record("ex/zephyr@1.0.0", "Small library.", &[], &[], 1),
        ],
    )
    .await?;
    let hits = text(e, "zephyr").await?;
    ensure!(
        hits.first()
            .is_some_and(|h| h.id.to_string() == "ex/zephyr@1.0.0"),
        "the exact name must come first despite fewer downloads: {:?}",
        ids(&hits)
    );
    ensure_eq!(hits.len(), 3, "all three packages match");
    Ok(())
}

async fn field_weights(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[
            record(
                "fw/plain@1.0.0",
                "Mentions the word glimmerfox in passing.",
                &[],
                &[],
                100,
            ),
            record(
                "fw/tagged@1.0.0",
                "A package about nothing in particular.",
                &["glimmerfox"],
                &[],
                100,
            ),
            record(
                "fw/glimmerfox-kit@1.0.0",
                "A package about nothing in particular.",
                &[],
                &[],
                100,
            ),
        ],
    )
    .await?;
    let hits = text(e, "glimmerfox").await?;
    ensure_eq!(
        ids(&hits),
        vec![
            "fw/glimmerfox-kit@1.0.0".to_owned(),
            "fw/tagged@1.0.0".into(),
            "fw/plain@1.0.0".into()
        ],
        "name > keyword > description"
    );
    Ok(())
}

async fn one_hit_per_package(e: &dyn SearchEngine) -> CheckResult {
    for v in ["1.0.0", "1.2.0", "1.10.0", "2.0.0-beta.1"] {
        index_all(
            e,
            &[record(
                &format!("oh/marmoset@{v}"),
                "Marmoset toolkit.",
                &[],
                &[],
                10,
            )],
        )
        .await?;
    }
    let hits = text(e, "marmoset").await?;
    ensure_eq!(
        ids(&hits),
        vec!["oh/marmoset@1.10.0".to_owned()],
        "one hit, the latest stable version"
    );
    Ok(())
}

async fn yanked_hidden(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[
            record("yh/ocelot@1.0.0", "Ocelot runner.", &[], &[], 10),
            yanked(record("yh/ocelot@1.1.0", "Ocelot runner.", &[], &[], 10)),
            yanked(record(
                "yh/lynxonly@1.0.0",
                "Lynxonly package, every version yanked.",
                &[],
                &[],
                10,
            )),
        ],
    )
    .await?;
    ensure_eq!(
        ids(&text(e, "ocelot").await?),
        vec!["yh/ocelot@1.0.0".to_owned()],
        "the yanked 1.1.0 is skipped"
    );
    ensure!(
        text(e, "lynxonly").await?.is_empty(),
        "a package with only yanked versions must not be a hit"
    );
    let q = SearchQuery::text("ocelot").with_include_yanked(true);
    ensure_eq!(
        ids(&search(e, &q).await?),
        vec!["yh/ocelot@1.1.0".to_owned()],
        "include_yanked shows the highest version, yanked or not, and only that one"
    );
    let q = SearchQuery::text("lynxonly").with_include_yanked(true);
    let hits = search(e, &q).await?;
    ensure_eq!(
        ids(&hits),
        vec!["yh/lynxonly@1.0.0".to_owned()],
        "include_yanked shows it"
    );
    ensure!(hits[0].yanked, "a yanked hit says it is yanked");
    Ok(())
}

async fn remove(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[
            record("rm/pangolin@1.0.0", "Pangolin parser.", &[], &[], 10),
            record("rm/pangolin@1.1.0", "Pangolin parser.", &[], &[], 10),
        ],
    )
    .await?;
    e.remove(&"rm/pangolin@1.1.0".parse().map_err(|_| "id")?)
        .await
        .ctx("remove 1.1.0")?;
    ensure_eq!(
        ids(&text(e, "pangolin").await?),
        vec!["rm/pangolin@1.0.0".to_owned()],
        "after removing 1.1.0, 1.0.0 is current"
    );
    e.remove(&"rm/pangolin@1.0.0".parse().map_err(|_| "id")?)
        .await
        .ctx("remove 1.0.0")?;
    ensure!(
        text(e, "pangolin").await?.is_empty(),
        "a removed package is still found"
    );
    e.remove(&"rm/pangolin@1.0.0".parse().map_err(|_| "id")?)
        .await
        .ctx("remove twice")?;
    Ok(())
}

/// A batch of one, of several packages, of two versions of one package: every record is
/// searchable (an engine's own `index_batch` is checked directly, not through `index`).
async fn index_batch(e: &dyn SearchEngine) -> CheckResult {
    let before = e.stats().await.ctx("stats")?;
    let single = [record(
        "ib/lonewolf@1.0.0",
        "Howls at batches of one.",
        &[],
        &[],
        0,
    )];
    e.index_batch(&single).await.ctx("index_batch of one")?;
    let batch = [
        record(
            "ib/goshawk@1.0.0",
            "Hovers over batched fields.",
            &[],
            &[],
            3,
        ),
        record(
            "ib/goshawk@1.1.0",
            "Hovers over batched fields.",
            &[],
            &[],
            3,
        ),
        record("ib/merlin@0.1.0", "Falcons in a batch.", &[], &[], 1),
        record("ib/hobby@2.0.0", "Falcons in a batch.", &[], &[], 2),
    ];
    e.index_batch(&batch).await.ctx("index_batch of four")?;
    e.index_batch(&[]).await.ctx("index_batch of nothing")?;
    for (name, want) in [
        ("lonewolf", "ib/lonewolf@1.0.0"),
        ("goshawk", "ib/goshawk@1.1.0"),
        ("merlin", "ib/merlin@0.1.0"),
        ("hobby", "ib/hobby@2.0.0"),
    ] {
        let hits = text(e, name).await?;
        ensure!(
            ids(&hits).first().map(String::as_str) == Some(want),
            "after index_batch, {name} finds {:?}, not {want} first",
            ids(&hits)
        );
    }
    let after = e.stats().await.ctx("stats")?;
    ensure_eq!(
        (
            after.documents - before.documents,
            after.packages - before.packages
        ),
        (5, 4),
        "index_batch adds every document"
    );
    for r in single.iter().chain(&batch) {
        e.remove(&r.metadata.id).await.ctx("clean up")?;
    }
    Ok(())
}

async fn update(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[record(
            "up/narwhal@1.0.0",
            "Old words: xylograph.",
            &[],
            &[],
            10,
        )],
    )
    .await?;
    e.update(&record(
        "up/narwhal@1.0.0",
        "New words: quetzal.",
        &[],
        &[],
        10,
    ))
    .await
    .ctx("update")?;
    ensure!(
        text(e, "xylograph").await?.is_empty(),
        "the old description is still indexed after update"
    );
    ensure_eq!(
        ids(&text(e, "quetzal").await?),
        vec!["up/narwhal@1.0.0".to_owned()],
        "the new description is found"
    );
    ensure_eq!(
        text(e, "narwhal").await?.len(),
        1,
        "update keeps one document"
    );
    Ok(())
}

async fn filters(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[
            record(
                "fl/gizmo-a@1.0.0",
                "Gadgetry for gizmos.",
                &["cli", "gadgetry"],
                &["tools", "web"],
                5,
            ),
            record(
                "fl/gizmo-b@1.0.0",
                "Gadgetry for gizmos.",
                &["gadgetry"],
                &["tools"],
                500,
            ),
            record(
                "other/gizmo-c@1.0.0",
                "Gadgetry for gizmos.",
                &["cli", "gadgetry"],
                &["web"],
                50,
            ),
            // Near misses of every filter: a keyword and a category that extend the ones
            // asked for, a namespace that extends `fl`, one download short of 50.
            record(
                "flx/gizmo-d@1.0.0",
                "Gadgetry for gizmos.",
                &["clinic", "gadgetry"],
                &["web-programming"],
                49,
            ),
        ],
    )
    .await?;
    let base = SearchQuery::text("gadgetry");
    let cases: [(SearchQuery, Vec<&str>); 7] = [
        (
            base.clone().with_categories(vec!["web".into()]),
            vec!["fl/gizmo-a@1.0.0", "other/gizmo-c@1.0.0"],
        ),
        (
            base.clone()
                .with_categories(vec!["web".into(), "tools".into()]),
            vec!["fl/gizmo-a@1.0.0"],
        ),
        (
            base.clone().with_keywords(vec!["cli".into()]),
            vec!["fl/gizmo-a@1.0.0", "other/gizmo-c@1.0.0"],
        ),
        (
            base.clone()
                .with_keywords(vec!["cli".into(), "gadgetry".into()]),
            vec!["fl/gizmo-a@1.0.0", "other/gizmo-c@1.0.0"],
        ),
        (
            base.clone().with_namespace("fl"),
            vec!["fl/gizmo-a@1.0.0", "fl/gizmo-b@1.0.0"],
        ),
        (
            base.clone().with_namespace("flx").with_min_downloads(49),
            vec!["flx/gizmo-d@1.0.0"],
        ),
        (
            base.clone().with_min_downloads(50),
            vec!["fl/gizmo-b@1.0.0", "other/gizmo-c@1.0.0"],
        ),
    ];
    for (query, want) in cases {
        let mut got = ids(&search(e, &query).await?);
        got.sort();
        ensure_eq!(
            got,
            want.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            "filter {query:?}"
        );
    }
    let only_filter = SearchQuery::default().with_namespace("other");
    ensure_eq!(
        ids(&search(e, &only_filter).await?),
        vec!["other/gizmo-c@1.0.0".to_owned()],
        "filters without text"
    );
    // A filter is a query clause: with limit 1 the one hit must still satisfy it.
    let narrow = base.with_limit(1).with_namespace("other");
    ensure_eq!(
        ids(&search(e, &narrow).await?),
        vec!["other/gizmo-c@1.0.0".to_owned()],
        "filters apply before the limit"
    );
    Ok(())
}

async fn sorts(e: &dyn SearchEngine) -> CheckResult {
    // Version order differs from publication order: "recent" is about when, not which.
    let mut older = record("so/bravo-wombat@3.0.0", "Wombat tools.", &[], &[], 300);
    older.metadata.published_at -= marketplace_core::time::Duration::days(30);
    let mut newest = record("so/charlie-wombat@0.2.0", "Wombat tools.", &[], &[], 20);
    newest.metadata.published_at += marketplace_core::time::Duration::days(1);
    index_all(
        e,
        &[
            record("so/alpha-wombat@1.0.0", "Wombat tools.", &[], &[], 100),
            older,
            newest,
        ],
    )
    .await?;
    let order = |sort| SearchQuery::text("wombat").with_sort(sort);
    let cases = [
        (
            SortOrder::Downloads,
            [
                "so/bravo-wombat@3.0.0",
                "so/alpha-wombat@1.0.0",
                "so/charlie-wombat@0.2.0",
            ],
        ),
        (
            SortOrder::Name,
            [
                "so/alpha-wombat@1.0.0",
                "so/bravo-wombat@3.0.0",
                "so/charlie-wombat@0.2.0",
            ],
        ),
        (
            SortOrder::Recent,
            [
                "so/charlie-wombat@0.2.0",
                "so/alpha-wombat@1.0.0",
                "so/bravo-wombat@3.0.0",
            ],
        ),
    ];
    for (sort, want) in cases {
        ensure_eq!(
            ids(&search(e, &order(sort)).await?),
            want.map(str::to_owned).to_vec(),
            "sort {sort:?}"
        );
    }
    Ok(())
}

async fn pagination(e: &dyn SearchEngine) -> CheckResult {
    let records: Vec<PackageRecord> = (0..12)
        .map(|i| {
            record(
                &format!("pa/kestrel{i}@1.0.0"),
                "Kestrel pages.",
                &[],
                &[],
                100 - i,
            )
        })
        .collect();
    index_all(e, &records).await?;
    let q = |limit, offset| {
        SearchQuery::text("kestrel")
            .with_limit(limit)
            .with_offset(offset)
            .with_sort(SortOrder::Downloads)
    };
    let all = ids(&search(e, &q(100, 0)).await?);
    ensure_eq!(
        all.len(),
        12,
        "all twelve found (a page may hold more than ten)"
    );
    let mut paged = Vec::new();
    for offset in (0..12).step_by(5) {
        paged.extend(ids(&search(e, &q(5, offset)).await?));
    }
    ensure_eq!(paged, all, "pages of five concatenate to the full list");
    ensure!(
        search(e, &q(3, 50)).await?.is_empty(),
        "an offset past the end gives nothing"
    );
    ensure!(
        search(e, &q(0, 0)).await?.is_empty(),
        "limit 0 gives nothing"
    );
    // Limits and offsets far beyond the index are answered, never an allocation of that size.
    for (limit, offset) in [
        (usize::MAX, 0),
        (usize::MAX, usize::MAX),
        (1_000_000_000, 0),
        (3, usize::MAX - 1),
    ] {
        for sort in [
            SortOrder::Relevance,
            SortOrder::Downloads,
            SortOrder::Recent,
            SortOrder::Name,
        ] {
            let query = q(limit, offset).with_sort(sort);
            let hits = search(e, &query).await?;
            ensure!(
                hits.len() <= 12,
                "limit {limit}, offset {offset}, {sort:?}: {} hits",
                hits.len()
            );
        }
    }
    e.suggest("kestrel", usize::MAX)
        .await
        .ctx("suggest with the largest limit")?;
    e.similar(&"pa/kestrel0@1.0.0".parse().expect("id"), usize::MAX)
        .await
        .ctx("similar with the largest limit")?;
    Ok(())
}

/// A query that is exactly a package's name shows that package once, at its current version —
/// not every version, and never a yanked one unless asked.
async fn exact_name_shows_one_version(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[
            record("ev-marmoset@1.0.0", "Marmoset tools.", &[], &[], 5),
            record("ev-marmoset@1.1.0", "Marmoset tools.", &[], &[], 5),
            yanked(record("ev-marmoset@2.0.0", "Marmoset tools.", &[], &[], 5)),
            record("evns/ev-tamarin@1.0.0", "Tamarin tools.", &[], &[], 5),
            record("evns/ev-tamarin@1.1.0", "Tamarin tools.", &[], &[], 5),
        ],
    )
    .await?;
    for (query, want) in [
        ("ev-marmoset", "ev-marmoset@1.1.0"),
        ("EV_Marmoset", "ev-marmoset@1.1.0"),
        ("evns/ev-tamarin", "evns/ev-tamarin@1.1.0"),
        ("ev-tamarin", "evns/ev-tamarin@1.1.0"),
    ] {
        let hits = text(e, query).await?;
        let matching: Vec<String> = ids(&hits)
            .into_iter()
            .filter(|id| id.starts_with(want.split('@').next().unwrap_or(want)))
            .collect();
        ensure_eq!(
            matching,
            vec![want.to_owned()],
            "{query:?} shows one version"
        );
    }
    let with_yanked = search(
        e,
        &SearchQuery::text("ev-marmoset").with_include_yanked(true),
    )
    .await?;
    ensure_eq!(
        ids(&with_yanked)
            .into_iter()
            .filter(|id| id.starts_with("ev-marmoset"))
            .collect::<Vec<_>>(),
        vec!["ev-marmoset@2.0.0".to_owned()],
        "with include_yanked, the highest version once"
    );
    Ok(())
}

async fn typos(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[
            record("ty/scaffold@1.0.0", "Project scaffolding.", &[], &[], 10),
            record("ty/kaleidoscope@1.0.0", "Colourful views.", &[], &[], 10),
            record("ty/lynx@1.0.0", "Small name.", &[], &[], 10),
        ],
    )
    .await?;
    for (query, want) in [
        ("scafold", "ty/scaffold@1.0.0"),
        ("kalidoscpe", "ty/kaleidoscope@1.0.0"),
    ] {
        let hits = text(e, query).await?;
        ensure!(
            ids(&hits).contains(&want.to_owned()),
            "{query:?} should find {want} (typo tolerance), got {:?}",
            ids(&hits)
        );
    }
    ensure!(
        !ids(&text(e, "lynk").await?).contains(&"ty/lynx@1.0.0".to_owned()),
        "a 4-letter term allows no typo"
    );
    for (query, want) in [
        ("lynk", true),
        ("lyx", true),
        ("lnkx", false),
        ("ly", false),
    ] {
        let forgiving = SearchQuery::text(query).with_forgive_short_typos(true);
        let found = ids(&search(e, &forgiving).await?).contains(&"ty/lynx@1.0.0".to_owned());
        ensure!(
            found == want,
            "with forgive_short_typos, {query:?} should {}find ty/lynx (one edit for 3–4 letters, none for 2)",
            if want { "" } else { "not " }
        );
    }
    ensure!(
        !ids(&text(e, "scffoldd").await?).contains(&"ty/scaffold@1.0.0".to_owned()),
        "an 8-letter term allows one typo, not two"
    );
    Ok(())
}

async fn highlights(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[record(
            "hl/notes@1.0.0",
            "Write tidy marginalia in your books.",
            &[],
            &[],
            10,
        )],
    )
    .await?;
    let hits = text(e, "marginalia").await?;
    let hit = hits.first().ok_or("no hit for marginalia")?;
    ensure!(
        hit.highlights
            .iter()
            .any(|h| h.contains("<b>marginalia</b>")),
        "highlights do not mark the term: {:?}",
        hit.highlights
    );
    Ok(())
}

async fn hostile_queries(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[record("hq/plain@1.0.0", "Plain package.", &[], &[], 1)],
    )
    .await?;
    let junk = "(]{\"'\\:*?~^!".repeat(800);
    let long_word = "x".repeat(120 * 1024);
    let long_words = "abcdefghij ".repeat(12 * 1024);
    let queries = [
        "\"",
        "\"unterminated",
        "name:",
        ":",
        "a:b:c",
        "[1 TO",
        "{",
        ")",
        "AND",
        "OR NOT",
        "NOT",
        "+-&&||!(){}[]^\"~*?:\\/",
        "*",
        "?",
        "~2",
        "^10",
        "plain^",
        "title:plain AND",
        "😀🚀",
        "ｆｕｌｌｗｉｄｔｈ",
        "\u{0}",
        "\n\t",
        "a\u{202e}b",
        "Ω≈ç√∫",
        "   ",
        &junk,
        &long_word,
        &long_words,
    ];
    for q in queries {
        let shown: String = q.chars().take(30).collect();
        e.search(&SearchQuery::text(q))
            .await
            .ctx(format!("search {shown:?}"))?;
        e.suggest(q, 5).await.ctx(format!("suggest {shown:?}"))?;
        e.facets(&SearchQuery::text(q))
            .await
            .ctx(format!("facets {shown:?}"))?;
    }
    let q = SearchQuery::text("plain")
        .with_categories(vec!["\"]".into()])
        .with_keywords(vec!["a:b".into()])
        .with_namespace("x\"y");
    e.search(&q).await.ctx("search with hostile filters")?;
    Ok(())
}

async fn suggest(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[
            record("sg/tapirshell@1.0.0", "x", &[], &[], 10),
            record("sg/tapir_engine@1.0.0", "x", &[], &[], 1000),
            record("sg/tapirium@1.0.0", "x", &[], &[], 100),
            yanked(record("sg/tapirgone@1.0.0", "x", &[], &[], 99999)),
        ],
    )
    .await?;
    let got: Vec<String> = e
        .suggest("tapir", 10)
        .await
        .ctx("suggest tapir")?
        .iter()
        .map(ToString::to_string)
        .collect();
    ensure_eq!(
        got,
        vec![
            "sg/tapir_engine".to_owned(),
            "sg/tapirium".into(),
            "sg/tapirshell".into()
        ],
        "suggestions by downloads, yanked-only left out"
    );
    let one = e.suggest("Tapir-E", 10).await.ctx("suggest Tapir-E")?;
    ensure_eq!(
        one.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["sg/tapir_engine".to_owned()],
        "suggest ignores case and reads - as _"
    );
    ensure_eq!(
        e.suggest("tapir", 1)
            .await
            .ctx("suggest with limit 1")?
            .len(),
        1,
        "suggest respects its limit"
    );
    Ok(())
}

async fn facets(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[
            record(
                "fa/p1@1.0.0",
                "Quokka helpers.",
                &["quokka", "cli"],
                &["tools", "web"],
                1,
            ),
            record("fa/p2@1.0.0", "Quokka helpers.", &["quokka"], &["tools"], 1),
            record(
                "fb/p3@1.0.0",
                "Quokka helpers.",
                &["quokka", "cli"],
                &["tools"],
                1,
            ),
            yanked(record(
                "fa/p4@1.0.0",
                "Quokka helpers.",
                &["quokka"],
                &["hidden"],
                1,
            )),
        ],
    )
    .await?;
    let f = e
        .facets(&SearchQuery::text("quokka").with_limit(1))
        .await
        .ctx("facets")?;
    let as_map = |v: &[(String, u64)]| v.iter().cloned().collect::<BTreeMap<String, u64>>();
    ensure_eq!(
        as_map(&f.categories),
        BTreeMap::from([("tools".into(), 3), ("web".into(), 1)]),
        "category counts (over all matches, not one page; yanked left out)"
    );
    ensure_eq!(
        as_map(&f.keywords),
        BTreeMap::from([("quokka".into(), 3), ("cli".into(), 2)]),
        "keyword counts"
    );
    ensure_eq!(
        as_map(&f.namespaces),
        BTreeMap::from([("fa".into(), 2), ("fb".into(), 1)]),
        "namespace counts"
    );
    ensure_eq!(
        f.categories.first().map(|c| c.0.as_str()),
        Some("tools"),
        "most frequent first"
    );
    Ok(())
}

async fn similar(e: &dyn SearchEngine) -> CheckResult {
    index_all(
        e,
        &[
            record(
                "si/axolotl-web@1.0.0",
                "Axolotl routing and templating for servers.",
                &["axolotl", "routing"],
                &["web"],
                10,
            ),
            record(
                "si/axolotl-api@1.0.0",
                "Axolotl routing for servers and APIs.",
                &["axolotl", "routing"],
                &["web"],
                10,
            ),
            record(
                "si/unrelated@1.0.0",
                "Counts beans.",
                &["beans"],
                &["accounting"],
                10,
            ),
        ],
    )
    .await?;
    let id: PackageId = "si/axolotl-web@1.0.0".parse().map_err(|_| "id")?;
    let hits = e.similar(&id, 5).await.ctx("similar")?;
    ensure!(
        hits.first()
            .is_some_and(|h| h.id.to_string() == "si/axolotl-api@1.0.0"),
        "the closest package comes first: {:?}",
        ids(&hits)
    );
    ensure!(
        hits.iter().all(|h| h.id.package() != id.package()),
        "similar must not return the package itself"
    );
    ensure!(
        !ids(&hits).contains(&"si/unrelated@1.0.0".to_owned()),
        "an unrelated package is similar: {:?}",
        ids(&hits)
    );
    expect_kind(
        e.similar(&"si/ghost@1.0.0".parse().map_err(|_| "id")?, 5)
            .await,
        ErrorKind::NotFound,
        "similar of an unindexed package",
    )
}

async fn stats(e: &dyn SearchEngine) -> CheckResult {
    let before = e.stats().await.ctx("stats")?;
    index_all(
        e,
        &[
            record("st/p@1.0.0", "x", &[], &[], 1),
            record("st/p@2.0.0", "x", &[], &[], 1),
            record("st/q@1.0.0", "x", &[], &[], 1),
        ],
    )
    .await?;
    let after = e.stats().await.ctx("stats")?;
    ensure_eq!(
        (
            after.documents - before.documents,
            after.packages - before.packages
        ),
        (3, 2),
        "stats grow by (documents, packages)"
    );
    Ok(())
}

async fn optimize(e: &dyn SearchEngine) -> CheckResult {
    index_all(e, &[record("op/flamingo@1.0.0", "Flamingo.", &[], &[], 1)]).await?;
    let before = ids(&text(e, "flamingo").await?);
    e.optimize().await.ctx("optimize")?;
    ensure_eq!(
        ids(&text(e, "flamingo").await?),
        before,
        "results after optimize"
    );
    Ok(())
}

async fn rebuild(e: &dyn SearchEngine) -> CheckResult {
    e.rebuild(Box::new(std::iter::empty()))
        .await
        .ctx("rebuild from nothing")?;
    ensure!(
        text(e, "flamingo").await?.is_empty(),
        "rebuild must drop what was indexed before"
    );
    // A removal as the last write before the rebuild, as a crashed flow leaves it (for tantivy,
    // clearing after a delete made the next commit drop every rebuilt document).
    let gone = record("rb/crane@1.0.0", "Crane.", &[], &[], 1);
    let kept = record("rb/egret@1.0.0", "Egret.", &[], &[], 1);
    e.index_batch(&[gone.clone(), kept])
        .await
        .ctx("index_batch")?;
    e.remove(&gone.metadata.id).await.ctx("remove")?;
    let fresh = vec![
        record("rb/heron@1.0.0", "Heron.", &[], &[], 1),
        record("rb/heron@1.1.0", "Heron.", &[], &[], 1),
        record("rb/egret@1.0.0", "Egret.", &[], &[], 1),
    ];
    let n = e
        .rebuild(Box::new(fresh.into_iter()))
        .await
        .ctx("rebuild")?;
    ensure_eq!(n, 3, "rebuild counts what it indexed");
    ensure_eq!(
        ids(&text(e, "heron").await?),
        vec!["rb/heron@1.1.0".to_owned()],
        "rebuilt documents are searchable"
    );
    let stats = e.stats().await.ctx("stats")?;
    ensure_eq!(
        (stats.documents, stats.packages),
        (3, 2),
        "stats after rebuild"
    );
    if let Some(position) = e.feed_position().await.ctx("feed position")? {
        ensure_eq!(position, 0, "a rebuilt index has followed no feed yet");
    }
    if let Some(position) = e.downloads_position().await.ctx("downloads position")? {
        ensure_eq!(
            position,
            0,
            "a rebuilt index has followed no download totals yet"
        );
    }
    // The writes that follow a rebuild (the client records the feed position with an empty
    // apply, then indexes) keep what the rebuild wrote.
    e.apply_feed(&[], 4).await.ctx("apply_feed after rebuild")?;
    index_all(e, &[record("rb/stork@1.0.0", "Stork.", &[], &[], 1)]).await?;
    ensure_eq!(
        ids(&text(e, "heron").await?),
        vec!["rb/heron@1.1.0".to_owned()],
        "rebuilt documents survive the writes after the rebuild"
    );
    ensure_eq!(
        ids(&text(e, "stork").await?),
        vec!["rb/stork@1.0.0".to_owned()],
        "a version indexed after the rebuild"
    );
    let stats = e.stats().await.ctx("stats")?;
    ensure_eq!(
        (stats.documents, stats.packages),
        (4, 3),
        "stats after writes that follow a rebuild"
    );
    Ok(())
}

/// An engine that keeps a change-feed position records the one `apply_feed` gave it, with the
/// records; one that keeps none indexes the records all the same.
async fn feed_position(e: &dyn SearchEngine) -> CheckResult {
    let first = record("fp/ibis@1.0.0", "Ibis.", &[], &[], 1);
    e.apply_feed(std::slice::from_ref(&first), 3)
        .await
        .ctx("apply_feed")?;
    ensure_eq!(
        ids(&text(e, "ibis").await?),
        vec!["fp/ibis@1.0.0".to_owned()],
        "records given to apply_feed are indexed"
    );
    let kept = e.feed_position().await.ctx("feed position")?;
    if let Some(position) = kept {
        ensure_eq!(position, 3, "the position apply_feed recorded");
        let update = record("fp/ibis@1.1.0", "Ibis.", &[], &[], 1);
        e.apply_feed(&[update], 9).await.ctx("apply_feed")?;
        ensure_eq!(
            e.feed_position().await.ctx("feed position")?,
            Some(9),
            "the position moves with each apply"
        );
        e.apply_feed(&[], 10).await.ctx("apply_feed of nothing")?;
        ensure_eq!(
            e.feed_position().await.ctx("feed position")?,
            Some(10),
            "an empty stretch of the feed still moves the position"
        );
    }
    Ok(())
}

/// An engine that follows download totals sets every indexed version of each counted package
/// (not one whose name only starts the same), skips packages it does not hold, lets the later
/// total of a package win, and records the position; a rebuild resets it.
async fn apply_downloads(e: &dyn SearchEngine) -> CheckResult {
    let Some(before) = e.downloads_position().await.ctx("downloads position")? else {
        return Ok(());
    };
    index_all(
        e,
        &[
            record("ad/okapi@1.0.0", "Okapi.", &[], &[], 0),
            record("ad/okapi@2.0.0", "Okapi.", &[], &[], 0),
            record("ad/okapis@1.0.0", "Okapi set.", &[], &[], 5),
        ],
    )
    .await?;
    let okapi: marketplace_core::PackageRef = "ad/okapi".parse().map_err(|_| "package")?;
    let absent: marketplace_core::PackageRef = "ad/absent".parse().map_err(|_| "package")?;
    let count = |package: &marketplace_core::PackageRef, total, stamp| {
        marketplace_core::DownloadCount::new(package.clone(), total, stamp)
    };
    let by_downloads = SearchQuery::text("okapi").with_sort(SortOrder::Downloads);
    let downloads = |hits: &[SearchResult]| {
        hits.iter()
            .map(|h| (h.id.to_string(), h.downloads))
            .collect::<Vec<_>>()
    };
    e.apply_downloads(
        &[
            count(&okapi, 3, before + 1),
            count(&absent, 9, before + 2),
            count(&okapi, 40, before + 3),
        ],
        before + 3,
    )
    .await
    .ctx("apply_downloads")?;
    ensure_eq!(
        e.downloads_position().await.ctx("downloads position")?,
        Some(before + 3),
        "the position apply_downloads recorded"
    );
    ensure_eq!(
        downloads(&search(e, &by_downloads).await?),
        vec![
            ("ad/okapi@2.0.0".to_owned(), 40),
            ("ad/okapis@1.0.0".to_owned(), 5)
        ],
        "the later total of ad/okapi, and ad/okapis untouched"
    );
    e.remove(&"ad/okapi@2.0.0".parse().map_err(|_| "id")?)
        .await
        .ctx("remove ad/okapi@2.0.0")?;
    ensure_eq!(
        downloads(&search(e, &by_downloads).await?),
        vec![
            ("ad/okapi@1.0.0".to_owned(), 40),
            ("ad/okapis@1.0.0".to_owned(), 5)
        ],
        "the older version got the total too"
    );
    e.apply_downloads(&[], before + 4)
        .await
        .ctx("apply_downloads of nothing")?;
    ensure_eq!(
        e.downloads_position().await.ctx("downloads position")?,
        Some(before + 4),
        "an empty page of totals still moves the position"
    );
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Index {
        package: usize,
        version: u64,
        yanked: bool,
    },
    Remove {
        package: usize,
        version: u64,
    },
}

const WORDS: [&str; 3] = ["capybara", "dugong", "echidna"];

async fn model_check(e: &dyn SearchEngine, cases: u32) -> CheckResult {
    let op = prop_oneof![
        3 => (0..3usize, 0..4u64, any::<bool>()).prop_map(|(package, version, yanked)| Op::Index { package, version, yanked }),
        1 => (0..3usize, 0..4u64).prop_map(|(package, version)| Op::Remove { package, version }),
    ];
    property(cases, proptest::collection::vec(op, 1..20), |ops, case| {
        Box::pin(async move {
            let name = |p: usize| format!("md{case}/{}{case}", WORDS[p]);
            let mut model: BTreeMap<(usize, u64), bool> = BTreeMap::new();
            for op in &ops {
                match op {
                    Op::Index {
                        package,
                        version,
                        yanked: y,
                    } => {
                        let r = record(
                            &format!("{}@1.{version}.0", name(*package)),
                            &format!("The {} package.", WORDS[*package]),
                            &[],
                            &[],
                            1,
                        );
                        e.index(&if *y { yanked(r) } else { r })
                            .await
                            .ctx(format!("{op:?}"))?;
                        model.insert((*package, *version), *y);
                    }
                    Op::Remove { package, version } => {
                        let id: PackageId = format!("{}@1.{version}.0", name(*package))
                            .parse()
                            .map_err(|_| "id")?;
                        e.remove(&id).await.ctx(format!("{op:?}"))?;
                        model.remove(&(*package, *version));
                    }
                }
            }
            for (p, word) in WORDS.iter().enumerate() {
                let want = model
                    .iter()
                    .filter(|((q, _), y)| *q == p && !**y)
                    .map(|((_, v), _)| Version::new(1, *v, 0))
                    .max()
                    .map(|v| format!("{}@{v}", name(p)));
                let query = format!("{word}{case}");
                let hits = text(e, &query).await?;
                let got = hits
                    .iter()
                    .map(|h| h.id.to_string())
                    .find(|id| id.starts_with(&format!("{}@", name(p))));
                ensure_eq!(got, want, "current version of {} after {ops:?}", name(p));
            }
            Ok(())
        })
    })
    .await
}
