//! Registries with one defect each.

use std::collections::BTreeMap;
use std::sync::Arc;

use marketplace_conformance::layer::{Layered, RegistryOverride};
use marketplace_conformance::reference::MemoryRegistry;
use marketplace_conformance::{Capabilities, SuiteReport, registry_suite};
use marketplace_core::semver::{Version, VersionReq};
use marketplace_core::{
    ContentHash, DependencyGraph, DownloadCount, Error, MetadataUpdate, PackageId, PackageMetadata,
    PackageRecord, PackageRef, PackageStats, Registry, RegistryEvent, ResolveOptions, Result,
    VersionState, async_trait,
};

use crate::common::defect;

async fn registry<O: RegistryOverride + 'static>(fault: O) -> SuiteReport {
    let inner: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    registry_suite(
        &Layered::new(inner).with_override(fault),
        &Capabilities::default(),
    )
    .await
}

/// Every record the registry holds, through the inner listing.
async fn everything(inner: &dyn Registry) -> Result<Vec<PackageRecord>> {
    let mut all = Vec::new();
    loop {
        let page = inner.list(500, all.len()).await?;
        if page.is_empty() {
            return Ok(all);
        }
        all.extend(page);
    }
}

/// Pages by `offset + 1` after the first page (an off-by-one in the OFFSET clause).
struct ListSkipsARowBetweenPages;

#[async_trait]
impl RegistryOverride for ListSkipsARowBetweenPages {
    async fn list(
        &self,
        inner: &dyn Registry,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        inner
            .list(limit, if offset > 0 { offset + 1 } else { 0 })
            .await
    }
}
defect!(
    list_skipping_a_row_between_pages,
    registry(ListSkipsARowBetweenPages),
    ["registry::list_paginates_in_registration_order"]
);

/// Newest first: a listing without the ORDER BY the contract needs.
struct ListNewestFirst;

#[async_trait]
impl RegistryOverride for ListNewestFirst {
    async fn list(
        &self,
        inner: &dyn Registry,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        let mut all = everything(inner).await?;
        all.reverse();
        Ok(all.into_iter().skip(offset).take(limit).collect())
    }
}
defect!(
    list_newest_first,
    registry(ListNewestFirst),
    ["registry::list_paginates_in_registration_order"]
);

/// `LIKE 'author%'`: an author whose name starts with the one asked for matches too.
struct AuthorByPrefix;

#[async_trait]
impl RegistryOverride for AuthorByPrefix {
    async fn list_by_author(
        &self,
        inner: &dyn Registry,
        author: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        Ok(everything(inner)
            .await?
            .into_iter()
            .filter(|r| r.metadata.authors.iter().any(|a| a.starts_with(author)))
            .skip(offset)
            .take(limit)
            .collect())
    }
}
defect!(
    author_matched_by_prefix,
    registry(AuthorByPrefix),
    ["registry::list_by_author"]
);

/// Compares authors case-insensitively (a collation the contract does not allow).
struct AuthorIgnoresCase;

#[async_trait]
impl RegistryOverride for AuthorIgnoresCase {
    async fn list_by_author(
        &self,
        inner: &dyn Registry,
        author: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        Ok(everything(inner)
            .await?
            .into_iter()
            .filter(|r| {
                r.metadata
                    .authors
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(author))
            })
            .skip(offset)
            .take(limit)
            .collect())
    }
}
defect!(
    author_matched_ignoring_case,
    registry(AuthorIgnoresCase),
    ["registry::list_by_author"]
);

/// Looks a version up by name and version only: the namespace is not part of the key.
struct GetIgnoresNamespace;

#[async_trait]
impl RegistryOverride for GetIgnoresNamespace {
    async fn get(&self, inner: &dyn Registry, id: &PackageId) -> Result<PackageMetadata> {
        let all = everything(inner).await?;
        all.into_iter()
            .map(|r| r.metadata)
            .find(|m| m.id.name == id.name && m.id.version == id.version)
            .ok_or_else(|| Error::not_found(id))
    }
}
defect!(
    get_ignoring_the_namespace,
    registry(GetIgnoresNamespace),
    ["registry::get_missing_is_not_found"]
);

/// An unknown version of a known package answers with the newest version.
struct UnknownVersionGivesNewest;

#[async_trait]
impl RegistryOverride for UnknownVersionGivesNewest {
    async fn get(&self, inner: &dyn Registry, id: &PackageId) -> Result<PackageMetadata> {
        match inner.get(id).await {
            Err(Error::NotFound { .. }) => {
                let package = id.package();
                let newest = inner
                    .list_versions(&package)
                    .await?
                    .pop()
                    .ok_or_else(|| Error::not_found(id))?;
                inner.get(&package.at(newest)).await
            }
            other => other,
        }
    }
}
defect!(
    unknown_version_answered_with_the_newest,
    registry(UnknownVersionGivesNewest),
    ["registry::get_missing_is_not_found"]
);

/// Versions ordered as text: 1.10.0 before 1.9.0.
struct VersionsSortedAsText;

#[async_trait]
impl RegistryOverride for VersionsSortedAsText {
    async fn list_version_states(
        &self,
        inner: &dyn Registry,
        package: &PackageRef,
    ) -> Result<Vec<VersionState>> {
        let mut states = inner.list_version_states(package).await?;
        states.sort_by_key(|s| s.version.to_string());
        Ok(states)
    }
}
defect!(
    versions_sorted_as_text,
    registry(VersionsSortedAsText),
    ["registry::list_versions_sorted"]
);

/// `=1.2` taken as the exact pin `=1.2.0`: a yanked 1.2.x is then chosen by a range.
struct PartialEqualsIsAPin;

#[async_trait]
impl RegistryOverride for PartialEqualsIsAPin {
    async fn resolve_version(
        &self,
        inner: &dyn Registry,
        package: &PackageRef,
        requirement: &VersionReq,
    ) -> Result<Option<PackageId>> {
        let states = match inner.list_version_states(package).await {
            Ok(states) => states,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let pin = requirement.to_string().starts_with('=');
        Ok(states
            .into_iter()
            .rev()
            .find(|s| requirement.matches(&s.version) && (!s.is_yanked() || pin))
            .map(|s| package.at(s.version)))
    }
}
defect!(
    a_partial_equals_requirement_taken_as_a_pin,
    registry(PartialEqualsIsAPin),
    ["registry::resolve_version_skips_yanked"]
);

/// Pre-releases compared without their tag, so `^1` picks `1.3.0-beta.1` over `1.2.0`.
struct PrereleasesLeak;

#[async_trait]
impl RegistryOverride for PrereleasesLeak {
    async fn resolve_version(
        &self,
        inner: &dyn Registry,
        package: &PackageRef,
        requirement: &VersionReq,
    ) -> Result<Option<PackageId>> {
        let states = match inner.list_version_states(package).await {
            Ok(states) => states,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(states
            .into_iter()
            .rev()
            .find(|s| {
                let released = Version::new(s.version.major, s.version.minor, s.version.patch);
                requirement.matches(&released) && !s.is_yanked()
            })
            .map(|s| package.at(s.version)))
    }
}
defect!(
    prereleases_matched_by_ranges,
    registry(PrereleasesLeak),
    ["registry::resolve_version_semantics"]
);

/// Stores the yank without its reason.
struct YankReasonLost;

#[async_trait]
impl RegistryOverride for YankReasonLost {
    async fn yank(&self, inner: &dyn Registry, id: &PackageId, _reason: &str) -> Result<()> {
        inner.yank(id, "").await
    }
}
defect!(
    yank_reason_lost,
    registry(YankReasonLost),
    ["registry::yank_and_unyank"]
);

/// Unyank answers Ok and does nothing.
struct UnyankDoesNothing;

#[async_trait]
impl RegistryOverride for UnyankDoesNothing {
    async fn unyank(&self, inner: &dyn Registry, id: &PackageId) -> Result<()> {
        inner.get(id).await.map(|_| ())
    }
}
defect!(
    unyank_does_nothing,
    registry(UnyankDoesNothing),
    ["registry::yank_and_unyank"]
);

/// `list` reads a table that never sees yanks: every record comes back unyanked.
struct ListForgetsYanks;

#[async_trait]
impl RegistryOverride for ListForgetsYanks {
    async fn list(
        &self,
        inner: &dyn Registry,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        let mut page = inner.list(limit, offset).await?;
        page.iter_mut().for_each(|r| r.yanked = None);
        Ok(page)
    }
}
defect!(
    list_forgets_yanks,
    registry(ListForgetsYanks),
    ["registry::yank_and_unyank"]
);

/// `list_by_author` keeps a yank after the unyank (a stale join).
struct AuthorListingKeepsUnyanked;

#[async_trait]
impl RegistryOverride for AuthorListingKeepsUnyanked {
    async fn list_by_author(
        &self,
        inner: &dyn Registry,
        author: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        let mut page = inner.list_by_author(author, limit, offset).await?;
        for record in &mut page {
            if record.yanked.is_none() {
                let events = inner.events_since(0, usize::MAX).await?;
                let ever_yanked = events.iter().find_map(|e| match &e.kind {
                    marketplace_core::EventKind::Yanked { id, reason }
                        if *id == record.metadata.id =>
                    {
                        Some(reason.clone())
                    }
                    _ => None,
                });
                if let Some(reason) = ever_yanked {
                    record.yanked = Some(marketplace_core::YankInfo::new(
                        reason,
                        record.metadata.published_at,
                    ));
                }
            }
        }
        Ok(page)
    }
}
defect!(
    author_listing_keeps_a_lifted_yank,
    registry(AuthorListingKeepsUnyanked),
    ["registry::yank_and_unyank"]
);

/// `is_yanked` answers from a cache that is never invalidated: always false.
struct IsYankedAlwaysFalse;

#[async_trait]
impl RegistryOverride for IsYankedAlwaysFalse {
    async fn is_yanked(&self, inner: &dyn Registry, id: &PackageId) -> Result<bool> {
        inner.get(id).await.map(|_| false)
    }
}
defect!(
    is_yanked_always_false,
    registry(IsYankedAlwaysFalse),
    ["registry::yank_and_unyank"]
);

/// Yanking a missing version succeeds (an UPDATE that matched no row is not checked).
struct YankOfMissingSucceeds;

#[async_trait]
impl RegistryOverride for YankOfMissingSucceeds {
    async fn yank(&self, inner: &dyn Registry, id: &PackageId, reason: &str) -> Result<()> {
        match inner.yank(id, reason).await {
            Err(Error::NotFound { .. }) => Ok(()),
            other => other,
        }
    }
}
defect!(
    yank_of_a_missing_version_succeeds,
    registry(YankOfMissingSucceeds),
    ["registry::yank_and_unyank"]
);

/// A download counted on every version of the package.
struct DownloadCountsEveryVersion;

#[async_trait]
impl RegistryOverride for DownloadCountsEveryVersion {
    async fn record_download(&self, inner: &dyn Registry, id: &PackageId) -> Result<()> {
        inner.get(id).await?;
        let package = id.package();
        for version in inner.list_versions(&package).await? {
            inner.record_download(&package.at(version)).await?;
        }
        Ok(())
    }
}
defect!(
    a_download_counted_on_every_version,
    registry(DownloadCountsEveryVersion),
    ["registry::download_stats"]
);

/// A version nobody downloaded has no statistics row, and says NotFound.
struct NoStatsWithoutDownloads;

#[async_trait]
impl RegistryOverride for NoStatsWithoutDownloads {
    async fn get_stats(&self, inner: &dyn Registry, id: &PackageId) -> Result<PackageStats> {
        let stats = inner.get_stats(id).await?;
        if stats.version_downloads == 0 {
            return Err(Error::not_found(id));
        }
        Ok(stats)
    }
}
defect!(
    no_statistics_before_the_first_download,
    registry(NoStatsWithoutDownloads),
    ["registry::download_stats"]
);

/// Downloading a missing version is counted nowhere and reported as success.
struct DownloadOfMissingSucceeds;

#[async_trait]
impl RegistryOverride for DownloadOfMissingSucceeds {
    async fn record_download(&self, inner: &dyn Registry, id: &PackageId) -> Result<()> {
        match inner.record_download(id).await {
            Err(Error::NotFound { .. }) => Ok(()),
            other => other,
        }
    }
}
defect!(
    download_of_a_missing_version_succeeds,
    registry(DownloadOfMissingSucceeds),
    ["registry::download_stats"]
);

/// `seq >= after` instead of `seq > after`: a follower sees its last event twice.
struct EventsIncludeTheCursor;

#[async_trait]
impl RegistryOverride for EventsIncludeTheCursor {
    async fn events_since(
        &self,
        inner: &dyn Registry,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RegistryEvent>> {
        inner.events_since(after.saturating_sub(1), limit).await
    }
}
defect!(
    events_include_the_cursor,
    registry(EventsIncludeTheCursor),
    ["registry::events_log_every_mutation"]
);

/// The limit is not applied.
struct EventsIgnoreTheLimit;

#[async_trait]
impl RegistryOverride for EventsIgnoreTheLimit {
    async fn events_since(
        &self,
        inner: &dyn Registry,
        after: u64,
        _limit: usize,
    ) -> Result<Vec<RegistryEvent>> {
        inner.events_since(after, usize::MAX).await
    }
}
defect!(
    events_ignore_the_limit,
    registry(EventsIgnoreTheLimit),
    ["registry::events_log_every_mutation"]
);

/// The newest `limit` events instead of the oldest after the cursor.
struct EventsNewestFirst;

#[async_trait]
impl RegistryOverride for EventsNewestFirst {
    async fn events_since(
        &self,
        inner: &dyn Registry,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RegistryEvent>> {
        let mut all = inner.events_since(after, usize::MAX).await?;
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }
}
defect!(
    events_newest_first,
    registry(EventsNewestFirst),
    ["registry::events_log_every_mutation"]
);

/// The newest event's seq read with the wrong sort: the oldest.
struct LatestSeqIsTheOldest;

#[async_trait]
impl RegistryOverride for LatestSeqIsTheOldest {
    async fn latest_event_seq(&self, inner: &dyn Registry) -> Result<u64> {
        Ok(inner.events_since(0, 1).await?.first().map_or(0, |e| e.seq))
    }
}
defect!(
    latest_event_seq_is_the_oldest,
    registry(LatestSeqIsTheOldest),
    ["registry::events_log_every_mutation"]
);

/// A partial update that drops the keywords it was given.
struct UpdateDropsKeywords;

#[async_trait]
impl RegistryOverride for UpdateDropsKeywords {
    async fn update_metadata(
        &self,
        inner: &dyn Registry,
        id: &PackageId,
        mut update: MetadataUpdate,
    ) -> Result<PackageMetadata> {
        update.keywords = None;
        inner.update_metadata(id, update).await
    }
}
defect!(
    update_drops_keywords,
    registry(UpdateDropsKeywords),
    ["registry::update_metadata"]
);

/// `Some(None)` (clear) read as `None` (unchanged): a URL can never be removed.
struct UpdateCannotClear;

#[async_trait]
impl RegistryOverride for UpdateCannotClear {
    async fn update_metadata(
        &self,
        inner: &dyn Registry,
        id: &PackageId,
        mut update: MetadataUpdate,
    ) -> Result<PackageMetadata> {
        if update.homepage == Some(None) {
            update.homepage = None;
        }
        if update.repository == Some(None) {
            update.repository = None;
        }
        inner.update_metadata(id, update).await
    }
}
defect!(
    update_cannot_clear_a_url,
    registry(UpdateCannotClear),
    ["registry::update_metadata"]
);

/// An update keyed by package, not version: every version changes.
struct UpdateChangesEveryVersion;

#[async_trait]
impl RegistryOverride for UpdateChangesEveryVersion {
    async fn update_metadata(
        &self,
        inner: &dyn Registry,
        id: &PackageId,
        update: MetadataUpdate,
    ) -> Result<PackageMetadata> {
        let changed = inner.update_metadata(id, update.clone()).await?;
        let package = id.package();
        for version in inner.list_versions(&package).await? {
            if version != id.version {
                inner
                    .update_metadata(&package.at(version), update.clone())
                    .await?;
            }
        }
        Ok(changed)
    }
}
defect!(
    update_changes_every_version,
    registry(UpdateChangesEveryVersion),
    ["registry::update_metadata"]
);

/// `list` serves the metadata as registered: updates never reach it.
struct ListShowsRegisteredMetadata;

#[async_trait]
impl RegistryOverride for ListShowsRegisteredMetadata {
    async fn list(
        &self,
        inner: &dyn Registry,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        let mut page = inner.list(limit, offset).await?;
        let events = inner.events_since(0, usize::MAX).await?;
        for record in &mut page {
            let updated = events.iter().any(|e| {
                matches!(&e.kind, marketplace_core::EventKind::MetadataUpdated { id, .. } if *id == record.metadata.id)
            });
            if updated {
                record.metadata.description = format!(
                    "The {} package, version {}.",
                    record.metadata.id.name, record.metadata.id.version
                );
                record.metadata.keywords.clear();
            }
        }
        Ok(page)
    }
}
defect!(
    list_shows_metadata_as_registered,
    registry(ListShowsRegisteredMetadata),
    ["registry::update_metadata"]
);

/// A batch registered one by one: a failure leaves the earlier items registered.
struct BatchNotAtomic;

#[async_trait]
impl RegistryOverride for BatchNotAtomic {
    async fn register_batch(
        &self,
        inner: &dyn Registry,
        items: Vec<(PackageMetadata, ContentHash)>,
    ) -> Result<Vec<PackageId>> {
        let mut ids = Vec::new();
        for (metadata, hash) in items {
            ids.push(inner.register(metadata, hash).await?);
        }
        Ok(ids)
    }
}

async fn atomic_registry<O: RegistryOverride + 'static>(fault: O) -> SuiteReport {
    let inner: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let mut caps = Capabilities::default();
    caps.atomic_batch = true;
    registry_suite(&Layered::new(inner).with_override(fault), &caps).await
}
defect!(
    batch_registered_one_by_one,
    atomic_registry(BatchNotAtomic),
    ["registry::register_batch_is_atomic"]
);

/// A batch that repeats a version registers the first and skips the rest, successfully.
struct BatchSkipsRepeats;

#[async_trait]
impl RegistryOverride for BatchSkipsRepeats {
    async fn register_batch(
        &self,
        inner: &dyn Registry,
        items: Vec<(PackageMetadata, ContentHash)>,
    ) -> Result<Vec<PackageId>> {
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<_> = items
            .into_iter()
            .filter(|(m, _)| seen.insert(m.id.canonical()))
            .collect();
        inner.register_batch(unique).await
    }
}
defect!(
    batch_skips_repeated_versions,
    registry(BatchSkipsRepeats),
    ["registry::register_batch"]
);

/// Direct dependencies at the highest matching version, not the one full resolution chose.
struct DirectOnlyTakesHighest;

#[async_trait]
impl RegistryOverride for DirectOnlyTakesHighest {
    async fn resolve_dependencies(
        &self,
        inner: &dyn Registry,
        id: &PackageId,
        options: ResolveOptions,
    ) -> Result<DependencyGraph> {
        if options.transitive {
            return inner.resolve_dependencies(id, options).await;
        }
        let root = inner.get(id).await?;
        let mut nodes = BTreeMap::new();
        let mut direct = Vec::new();
        for (dep, req) in &root.dependencies {
            let chosen = inner
                .resolve_version(dep, req)
                .await?
                .ok_or_else(|| Error::Conflict {
                    root: id.to_string(),
                    explanation: format!("nothing matches {dep} {req}"),
                    trace: String::new(),
                })?;
            let metadata = inner.get(&chosen).await?;
            nodes.insert(
                chosen.clone(),
                marketplace_core::GraphNode::new(metadata, Vec::new()),
            );
            direct.push(chosen);
        }
        nodes.insert(id.clone(), marketplace_core::GraphNode::new(root, direct));
        Ok(DependencyGraph::new(id.clone(), nodes))
    }
}
defect!(
    direct_dependencies_at_the_highest_version,
    registry(DirectOnlyTakesHighest),
    ["registry::resolve_direct_only"]
);

/// The categories column is never read back.
struct CategoriesNotStored;

#[async_trait]
impl RegistryOverride for CategoriesNotStored {
    async fn get(&self, inner: &dyn Registry, id: &PackageId) -> Result<PackageMetadata> {
        let mut m = inner.get(id).await?;
        m.categories.clear();
        Ok(m)
    }
}
defect!(
    categories_not_stored,
    registry(CategoriesNotStored),
    ["registry::register_then_get"]
);

/// Only one author column: every author after the first is dropped.
struct OnlyTheFirstAuthor;

#[async_trait]
impl RegistryOverride for OnlyTheFirstAuthor {
    async fn get(&self, inner: &dyn Registry, id: &PackageId) -> Result<PackageMetadata> {
        let mut m = inner.get(id).await?;
        m.authors.truncate(1);
        Ok(m)
    }
}
defect!(
    only_the_first_author_kept,
    registry(OnlyTheFirstAuthor),
    ["registry::register_then_get"]
);

/// A checksum column sized for SHA-256: other algorithms are refused.
struct OnlySha256;

#[async_trait]
impl RegistryOverride for OnlySha256 {
    async fn register(
        &self,
        inner: &dyn Registry,
        metadata: PackageMetadata,
        hash: ContentHash,
    ) -> Result<PackageId> {
        if hash.algorithm() != marketplace_core::HashAlgorithm::Sha256 {
            return Err(Error::invalid(
                "checksum",
                hash.to_string(),
                "only sha256 is supported",
            ));
        }
        inner.register(metadata, hash).await
    }
}
defect!(
    only_sha256_checksums,
    registry(OnlySha256),
    ["registry::register_then_get"]
);

/// A registry whose second handle is the same storage seen through `fault`: what a backend
/// that kept part of its state in process memory shows after a restart.
async fn reopened<O: RegistryOverride + Clone + 'static>(fault: O) -> SuiteReport {
    let inner: Arc<dyn Registry> = Arc::new(MemoryRegistry::new());
    let storage = Arc::clone(&inner);
    let caps = Capabilities::default().with_registry_reopen(move || {
        Ok(
            Arc::new(Layered::new(Arc::clone(&storage)).with_override(fault.clone()))
                as Arc<dyn Registry>,
        )
    });
    registry_suite(&Layered::new(inner), &caps).await
}

/// Yank reasons kept in a cache: after a restart a yanked version has no reason.
#[derive(Clone)]
struct YankReasonsInMemory;

#[async_trait]
impl RegistryOverride for YankReasonsInMemory {
    async fn list(
        &self,
        inner: &dyn Registry,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        let mut page = inner.list(limit, offset).await?;
        for record in &mut page {
            if let Some(yank) = &mut record.yanked {
                yank.reason.clear();
            }
        }
        Ok(page)
    }
}
defect!(
    yank_reasons_lost_on_restart,
    reopened(YankReasonsInMemory),
    ["registry::state_survives_reopening"]
);

/// Download counts buffered in memory and never written: a restart starts from zero.
#[derive(Clone)]
struct DownloadsInMemory;

#[async_trait]
impl RegistryOverride for DownloadsInMemory {
    async fn get_stats(&self, inner: &dyn Registry, id: &PackageId) -> Result<PackageStats> {
        let mut stats = inner.get_stats(id).await?;
        stats.version_downloads = 0;
        stats.total_downloads = 0;
        stats.per_version.values_mut().for_each(|n| *n = 0);
        stats.last_30_days.iter_mut().for_each(|d| d.downloads = 0);
        Ok(stats)
    }
}
defect!(
    downloads_lost_on_restart,
    reopened(DownloadsInMemory),
    ["registry::state_survives_reopening"]
);

/// An event log kept in memory: a restart starts a new log.
#[derive(Clone)]
struct EventsInMemory;

#[async_trait]
impl RegistryOverride for EventsInMemory {
    async fn events_since(
        &self,
        _inner: &dyn Registry,
        _after: u64,
        _limit: usize,
    ) -> Result<Vec<RegistryEvent>> {
        Ok(Vec::new())
    }
    async fn latest_event_seq(&self, _inner: &dyn Registry) -> Result<u64> {
        Ok(0)
    }
}
defect!(
    events_lost_on_restart,
    reopened(EventsInMemory),
    ["registry::state_survives_reopening"]
);

/// Events written as JSON with `null` for both "unchanged" and "cleared": after a restart a
/// cleared URL reads as unchanged (the example third-party registry did this).
#[derive(Clone)]
struct ClearsLostInStoredEvents;

#[async_trait]
impl RegistryOverride for ClearsLostInStoredEvents {
    async fn events_since(
        &self,
        inner: &dyn Registry,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RegistryEvent>> {
        let mut events = inner.events_since(after, limit).await?;
        for event in &mut events {
            if let marketplace_core::EventKind::MetadataUpdated { update, .. } = &mut event.kind {
                update.homepage = update.homepage.take().flatten().map(Some);
                update.repository = update.repository.take().flatten().map(Some);
            }
        }
        Ok(events)
    }
}
defect!(
    cleared_urls_lost_in_stored_events,
    reopened(ClearsLostInStoredEvents),
    ["registry::state_survives_reopening"]
);

/// Download totals compared with `>=` on the stamp: the last one read comes back again.
struct DownloadStampsInclusive;

#[async_trait]
impl RegistryOverride for DownloadStampsInclusive {
    async fn downloads_since(
        &self,
        inner: &dyn Registry,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DownloadCount>> {
        inner.downloads_since(after.saturating_sub(1), limit).await
    }
}
defect!(
    download_stamps_compared_inclusively,
    registry(DownloadStampsInclusive),
    ["registry::downloads_since_gives_each_package_once"]
);

/// Download totals without a LIMIT: every changed package in one page.
struct DownloadsSinceIgnoresTheLimit;

#[async_trait]
impl RegistryOverride for DownloadsSinceIgnoresTheLimit {
    async fn downloads_since(
        &self,
        inner: &dyn Registry,
        after: u64,
        _limit: usize,
    ) -> Result<Vec<DownloadCount>> {
        inner.downloads_since(after, usize::MAX).await
    }
}
defect!(
    downloads_since_ignores_the_limit,
    registry(DownloadsSinceIgnoresTheLimit),
    ["registry::downloads_since_gives_each_package_once"]
);
