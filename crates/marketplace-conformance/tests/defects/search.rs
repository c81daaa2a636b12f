//! Search engines with one defect each: the reference engine behind an override that makes a
//! mistake a third-party engine makes (a filter compared loosely, a page boundary off by one,
//! a count of versions where packages were meant).

use std::sync::Arc;

use marketplace_conformance::layer::{Layered, SearchOverride};
use marketplace_conformance::reference::MemorySearchEngine;
use marketplace_conformance::{Capabilities, SuiteReport, search_suite};
use marketplace_core::{
    DownloadCount, Facets, IndexStats, PackageId, PackageRecord, PackageRef, Result, SearchEngine,
    SearchQuery, SearchResult, SortOrder, async_trait,
};

use crate::common::defect;

async fn search<O: SearchOverride + 'static>(fault: O) -> SuiteReport {
    let inner: Arc<dyn SearchEngine> = Arc::new(MemorySearchEngine::new());
    search_suite(
        &Layered::new(inner).with_override(fault),
        &Capabilities::default(),
    )
    .await
}

/// Every hit of `query` with `change` applied to it, before paging.
async fn unpaged(
    inner: &dyn SearchEngine,
    query: &SearchQuery,
    change: impl FnOnce(&mut SearchQuery),
) -> Result<Vec<SearchResult>> {
    let mut all = query.clone();
    all.limit = usize::MAX / 2;
    all.offset = 0;
    change(&mut all);
    inner.search(&all).await
}

fn page(hits: Vec<SearchResult>, query: &SearchQuery) -> Vec<SearchResult> {
    hits.into_iter()
        .skip(query.offset)
        .take(query.limit)
        .collect()
}

/// A keyword filter written as `LIKE '%kw%'`: `http` also selects `https-client`.
struct KeywordBySubstring;

#[async_trait]
impl SearchOverride for KeywordBySubstring {
    async fn search(
        &self,
        inner: &dyn SearchEngine,
        query: &SearchQuery,
    ) -> Result<Vec<SearchResult>> {
        let wanted = query.keywords.clone();
        let hits = unpaged(inner, query, |q| q.keywords.clear()).await?;
        let kept = hits
            .into_iter()
            .filter(|h| {
                wanted
                    .iter()
                    .all(|w| h.keywords.iter().any(|k| k.contains(w.as_str())))
            })
            .collect();
        Ok(page(kept, query))
    }
}
defect!(
    keyword_filter_matches_substrings,
    search(KeywordBySubstring),
    ["search::filters_are_query_clauses"]
);

/// Categories joined with OR: a package with any one of them passes.
struct CategoriesAnyOf;

#[async_trait]
impl SearchOverride for CategoriesAnyOf {
    async fn search(
        &self,
        inner: &dyn SearchEngine,
        query: &SearchQuery,
    ) -> Result<Vec<SearchResult>> {
        let wanted = query.categories.clone();
        let hits = unpaged(inner, query, |q| q.categories.clear()).await?;
        let kept = hits
            .into_iter()
            .filter(|h| wanted.is_empty() || wanted.iter().any(|w| h.categories.contains(w)))
            .collect();
        Ok(page(kept, query))
    }
}
defect!(
    categories_any_of,
    search(CategoriesAnyOf),
    ["search::filters_are_query_clauses"]
);

/// The namespace filter is not applied.
struct NamespaceIgnored;

#[async_trait]
impl SearchOverride for NamespaceIgnored {
    async fn search(
        &self,
        inner: &dyn SearchEngine,
        query: &SearchQuery,
    ) -> Result<Vec<SearchResult>> {
        let mut q = query.clone();
        q.namespace = None;
        inner.search(&q).await
    }
}
defect!(
    namespace_filter_ignored,
    search(NamespaceIgnored),
    ["search::filters_are_query_clauses"]
);

/// `downloads > min` where `downloads >= min` was meant.
struct MinDownloadsExclusive;

#[async_trait]
impl SearchOverride for MinDownloadsExclusive {
    async fn search(
        &self,
        inner: &dyn SearchEngine,
        query: &SearchQuery,
    ) -> Result<Vec<SearchResult>> {
        let mut q = query.clone();
        q.min_downloads = query.min_downloads.map(|m| m + 1);
        inner.search(&q).await
    }
}
defect!(
    min_downloads_is_exclusive,
    search(MinDownloadsExclusive),
    ["search::filters_are_query_clauses"]
);

/// Pages after the first start one hit late.
struct OffsetOffByOne;

#[async_trait]
impl SearchOverride for OffsetOffByOne {
    async fn search(
        &self,
        inner: &dyn SearchEngine,
        query: &SearchQuery,
    ) -> Result<Vec<SearchResult>> {
        let mut q = query.clone();
        if q.offset > 0 {
            q.offset += 1;
        }
        inner.search(&q).await
    }
}
defect!(
    offset_off_by_one,
    search(OffsetOffByOne),
    ["search::limit_and_offset"]
);

/// A page size capped at 10 whatever the limit asked (an engine default left in).
struct LimitCappedAtTen;

#[async_trait]
impl SearchOverride for LimitCappedAtTen {
    async fn search(
        &self,
        inner: &dyn SearchEngine,
        query: &SearchQuery,
    ) -> Result<Vec<SearchResult>> {
        let mut q = query.clone();
        q.limit = q.limit.min(10);
        inner.search(&q).await
    }
}
defect!(
    limit_capped_at_ten,
    search(LimitCappedAtTen),
    ["search::limit_and_offset"]
);

/// The package count is the document count.
struct PackagesAreDocuments;

#[async_trait]
impl SearchOverride for PackagesAreDocuments {
    async fn stats(&self, inner: &dyn SearchEngine) -> Result<IndexStats> {
        let stats = inner.stats().await?;
        Ok(IndexStats::new(stats.documents, stats.documents))
    }
}
defect!(
    packages_counted_as_documents,
    search(PackagesAreDocuments),
    ["search::stats_count_documents_and_packages"]
);

/// Suggestions per version, not per package: a package with three versions appears three
/// times.
struct SuggestPerVersion;

#[async_trait]
impl SearchOverride for SuggestPerVersion {
    async fn suggest(
        &self,
        inner: &dyn SearchEngine,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<PackageRef>> {
        let packages = inner.suggest(prefix, limit).await?;
        let mut out = Vec::new();
        for p in packages {
            out.push(p.clone());
            out.push(p);
        }
        out.truncate(limit);
        Ok(out)
    }
}
defect!(
    suggestions_repeat_packages,
    search(SuggestPerVersion),
    ["search::suggest_by_prefix"]
);

/// The prefix compared as given: `Quill` suggests nothing for `quillmarker`.
struct SuggestCaseSensitive;

#[async_trait]
impl SearchOverride for SuggestCaseSensitive {
    async fn suggest(
        &self,
        inner: &dyn SearchEngine,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<PackageRef>> {
        if prefix.chars().any(|c| c.is_ascii_uppercase()) || prefix.contains('_') {
            return Ok(Vec::new());
        }
        inner.suggest(prefix, limit).await
    }
}
defect!(
    suggest_is_case_sensitive,
    search(SuggestCaseSensitive),
    ["search::suggest_by_prefix"]
);

/// A batch written with an off-by-one loop: the last record is never indexed.
struct BatchDropsTheLast;

#[async_trait]
impl SearchOverride for BatchDropsTheLast {
    async fn index_batch(&self, inner: &dyn SearchEngine, records: &[PackageRecord]) -> Result<()> {
        let keep = records.len().saturating_sub(1);
        inner.index_batch(&records[..keep]).await
    }
}
defect!(
    index_batch_drops_the_last_record,
    search(BatchDropsTheLast),
    ["search::index_batch_indexes_every_record"]
);

/// An update that only writes yanks: lifting one (an unyank) is never indexed.
struct UpdateOnlyYanks;

#[async_trait]
impl SearchOverride for UpdateOnlyYanks {
    async fn update(&self, inner: &dyn SearchEngine, record: &PackageRecord) -> Result<()> {
        if record.yanked.is_some() {
            inner.update(record).await
        } else {
            Ok(())
        }
    }
}
defect!(
    an_unyank_is_never_indexed,
    search(UpdateOnlyYanks),
    ["search::update_replaces"]
);

/// `similar` forgets to leave the package itself out.
struct SimilarIncludesItself;

#[async_trait]
impl SearchOverride for SimilarIncludesItself {
    async fn similar(
        &self,
        inner: &dyn SearchEngine,
        id: &PackageId,
        limit: usize,
    ) -> Result<Vec<SearchResult>> {
        let mut hits = inner.similar(id, limit).await?;
        let mut me = inner
            .search(&SearchQuery::text(id.name.as_str()))
            .await?
            .into_iter()
            .filter(|h| h.id.package() == id.package())
            .collect::<Vec<_>>();
        me.append(&mut hits);
        me.truncate(limit);
        Ok(me)
    }
}
defect!(
    similar_includes_the_package_itself,
    search(SimilarIncludesItself),
    ["search::similar_packages"]
);

/// Most-downloaded sorted the wrong way round.
struct DownloadsAscending;

#[async_trait]
impl SearchOverride for DownloadsAscending {
    async fn search(
        &self,
        inner: &dyn SearchEngine,
        query: &SearchQuery,
    ) -> Result<Vec<SearchResult>> {
        if query.sort != SortOrder::Downloads {
            return inner.search(query).await;
        }
        let mut hits = unpaged(inner, query, |_| {}).await?;
        hits.reverse();
        Ok(page(hits, query))
    }
}
defect!(
    downloads_sorted_ascending,
    search(DownloadsAscending),
    ["search::sort_orders"]
);

/// "Recent" read as the highest version, not the latest publication.
struct RecentByVersion;

#[async_trait]
impl SearchOverride for RecentByVersion {
    async fn search(
        &self,
        inner: &dyn SearchEngine,
        query: &SearchQuery,
    ) -> Result<Vec<SearchResult>> {
        if query.sort != SortOrder::Recent {
            return inner.search(query).await;
        }
        let mut hits = unpaged(inner, query, |_| {}).await?;
        hits.sort_by(|a, b| b.id.version.cmp(&a.id.version));
        Ok(page(hits, query))
    }
}
defect!(
    recent_sorted_by_version,
    search(RecentByVersion),
    ["search::sort_orders"]
);

/// Facets counted over versions: a package with two matching versions counts twice.
struct FacetsCountVersions;

#[async_trait]
impl SearchOverride for FacetsCountVersions {
    async fn facets(&self, inner: &dyn SearchEngine, query: &SearchQuery) -> Result<Facets> {
        let mut facets = inner.facets(query).await?;
        for (_, n) in facets.keywords.iter_mut() {
            *n *= 2;
        }
        Ok(facets)
    }
}
defect!(
    facets_count_versions,
    search(FacetsCountVersions),
    ["search::facets_count_packages"]
);

/// Text compared case-sensitively: `QuillMarker` finds nothing.
struct CaseSensitiveText;

#[async_trait]
impl SearchOverride for CaseSensitiveText {
    async fn search(
        &self,
        inner: &dyn SearchEngine,
        query: &SearchQuery,
    ) -> Result<Vec<SearchResult>> {
        if query.text.chars().any(|c| c.is_uppercase()) {
            return Ok(Vec::new());
        }
        inner.search(query).await
    }
}
defect!(
    text_is_case_sensitive,
    search(CaseSensitiveText),
    ["search::finds_by_name_keyword_and_description"]
);

/// A rebuild that adds to the index instead of replacing it.
struct RebuildAppends;

#[async_trait]
impl SearchOverride for RebuildAppends {
    async fn rebuild(
        &self,
        inner: &dyn SearchEngine,
        records: Box<dyn Iterator<Item = PackageRecord> + Send>,
    ) -> Result<u64> {
        let records: Vec<PackageRecord> = records.collect();
        inner.index_batch(&records).await?;
        inner.apply_feed(&[], 0).await?;
        Ok(records.len() as u64)
    }
}
defect!(
    rebuild_keeps_what_was_there,
    search(RebuildAppends),
    ["search::rebuild_replaces_everything"]
);

/// Removing one version removes every version of the package.
struct RemoveWholePackage;

#[async_trait]
impl SearchOverride for RemoveWholePackage {
    async fn remove(&self, inner: &dyn SearchEngine, id: &PackageId) -> Result<()> {
        let mut q = SearchQuery::text(id.name.as_str());
        q.include_yanked = true;
        q.limit = 1000;
        inner.remove(id).await?;
        // Every other version the engine still shows for the package goes too.
        loop {
            let hits = inner.search(&q).await?;
            let Some(hit) = hits.into_iter().find(|h| h.id.package() == id.package()) else {
                return Ok(());
            };
            inner.remove(&hit.id).await?;
        }
    }
}
defect!(
    remove_takes_the_whole_package,
    search(RemoveWholePackage),
    ["search::remove_deletes"]
);

/// Download totals applied to the position only: the documents keep their old counts.
struct DownloadTotalsNeverWritten;

#[async_trait]
impl SearchOverride for DownloadTotalsNeverWritten {
    async fn apply_downloads(
        &self,
        inner: &dyn SearchEngine,
        _counts: &[DownloadCount],
        position: u64,
    ) -> Result<()> {
        inner.apply_downloads(&[], position).await
    }
}
defect!(
    download_totals_never_written,
    search(DownloadTotalsNeverWritten),
    ["search::apply_downloads_sets_every_version"]
);

/// Totals applied newest first, so an older total of a package overwrites the newer one.
struct OlderDownloadTotalWins;

#[async_trait]
impl SearchOverride for OlderDownloadTotalWins {
    async fn apply_downloads(
        &self,
        inner: &dyn SearchEngine,
        counts: &[DownloadCount],
        position: u64,
    ) -> Result<()> {
        let mut reversed = counts.to_vec();
        reversed.reverse();
        inner.apply_downloads(&reversed, position).await
    }
}
defect!(
    an_older_download_total_wins,
    search(OlderDownloadTotalWins),
    ["search::apply_downloads_sets_every_version"]
);

/// A retry that does not loosen anything: `forgive_short_typos` ignored, so a short misspelt
/// name still finds nothing.
struct ShortTyposNeverForgiven;

#[async_trait]
impl SearchOverride for ShortTyposNeverForgiven {
    async fn search(
        &self,
        inner: &dyn SearchEngine,
        query: &SearchQuery,
    ) -> Result<Vec<SearchResult>> {
        let strict = query.clone().with_forgive_short_typos(false);
        inner.search(&strict).await
    }
}
defect!(
    short_typos_never_forgiven,
    search(ShortTyposNeverForgiven),
    ["search::typo_tolerance"]
);
