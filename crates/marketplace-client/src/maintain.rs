//! Keeping a marketplace in shape: yank and unyank (with the index updated), rebuilding the
//! search index from the registry, and garbage collection of unreferenced archives and
//! interrupted uploads.

use std::collections::BTreeSet;
use std::time::Duration;

use marketplace_core::time::OffsetDateTime;
use marketplace_core::{ContentHash, Error, PackageId, PackageRecord, Result, YankInfo};

use crate::client::MarketplaceClient;
use crate::instrument::INDEX_FAILURES_TOTAL;

/// What [`MarketplaceClient::gc`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Objects in the store.
    pub scanned: u64,
    /// Objects no registered version refers to.
    pub orphaned: u64,
    /// Orphans deleted (those older than the grace period).
    pub deleted: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Leftovers of interrupted uploads removed (older than the grace period).
    pub staging_removed: u64,
}

impl MarketplaceClient {
    /// Yanks a version (kept for exact pins and lockfiles, no longer chosen by ranges or shown
    /// by search) — through the upstream when there is one. Idempotent. `NotFound` if absent.
    pub async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
        let span = tracing::info_span!("marketplace.yank", package = %id);
        self.flow("yank", span, async {
            if let Some(upstream) = &self.upstream {
                // The upstream indexes what it yanks.
                return self
                    .call("upstream", "yank", true, || upstream.yank(id, reason))
                    .await;
            }
            self.call("registry", "yank", true, || self.registry.yank(id, reason))
                .await?;
            self.reindex(id, Some(YankInfo::new(reason, OffsetDateTime::now_utc())))
                .await;
            Ok(())
        })
        .await
    }

    /// Restores a yanked version. Idempotent. `NotFound` if absent.
    pub async fn unyank(&self, id: &PackageId) -> Result<()> {
        let span = tracing::info_span!("marketplace.unyank", package = %id);
        self.flow("unyank", span, async {
            if let Some(upstream) = &self.upstream {
                return self
                    .call("upstream", "unyank", true, || upstream.unyank(id))
                    .await;
            }
            self.call("registry", "unyank", true, || self.registry.unyank(id))
                .await?;
            self.reindex(id, None).await;
            Ok(())
        })
        .await
    }

    /// Updates the search index entry of `id` after a change; a failure is logged (the
    /// registry is the truth and `rebuild_index` repairs the index).
    async fn reindex(&self, id: &PackageId, yanked: Option<YankInfo>) {
        let result = async {
            // An engine that follows the change feed takes the change from there.
            if self.follow(&crate::follow::Known::new()).await?.is_some() {
                return Ok(());
            }
            let metadata = self.get_checked("reindex", id).await?;
            let downloads = self
                .call("registry", "get_stats", true, || {
                    self.registry.get_stats(id)
                })
                .await?
                .total_downloads;
            let record = PackageRecord::new(metadata)
                .with_yank(yanked)
                .with_downloads(downloads);
            self.call("search", "update", true, || self.search.update(&record))
                .await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(package = %id, error = %e, "search index not updated; rebuild_index repairs this");
            self.count(INDEX_FAILURES_TOTAL, &[]);
        }
    }

    /// Every registered version with its yank state and downloads, from the registry.
    pub(crate) async fn all_records(&self) -> Result<Vec<PackageRecord>> {
        // Large pages: registries page by offset, which costs a scan of the rows skipped.
        const PAGE: usize = 10_000;
        let mut records = Vec::new();
        loop {
            let offset = records.len();
            let page = self
                .call("registry", "list", true, || {
                    self.registry.list(PAGE, offset)
                })
                .await?;
            // Only an empty page ends the listing: the trait does not promise full pages, and
            // a registry that caps its pages would otherwise hide versions from `gc` (which
            // would delete their archives).
            if page.is_empty() {
                return Ok(records);
            }
            records.extend(page);
        }
    }

    /// Rebuilds the search index from the registry (the source of truth) and returns how many
    /// versions it holds. Repairs an index that missed a publish, a yank or download counts.
    pub async fn rebuild_index(&self) -> Result<u64> {
        let span = tracing::info_span!("marketplace.rebuild_index");
        self.flow("rebuild_index", span, async {
            if self.follows_feed().await? {
                let head = self
                    .call("registry", "latest_event_seq", true, || {
                        self.registry.latest_event_seq()
                    })
                    .await?;
                return self.rebuild_at(head).await;
            }
            let records = self.all_records().await?;
            let mut records = Some(records);
            self.call("search", "rebuild", false, || {
                let batch = records.take().unwrap_or_default();
                self.search.rebuild(Box::new(batch.into_iter()))
            })
            .await
        })
        .await
    }

    /// Deletes blobs that no registered version refers to and that are older than `grace`,
    /// and the leftovers of interrupted uploads older than `grace` (a publish stores its bytes
    /// before it registers, so a young orphan may be a publish in progress; `Duration::ZERO`
    /// deletes every orphan).
    pub async fn gc(&self, grace: Duration) -> Result<GcReport> {
        let span = tracing::info_span!("marketplace.gc");
        self.flow("gc", span, async {
            let stored = self
                .call("store", "list", true, || self.store.list("", usize::MAX))
                .await?;
            let referenced: BTreeSet<ContentHash> = self
                .all_records()
                .await?
                .into_iter()
                .map(|r| r.metadata.checksum)
                .collect();
            let cutoff = OffsetDateTime::now_utc() - grace;
            let mut report = GcReport {
                scanned: stored.len() as u64,
                ..GcReport::default()
            };
            for hash in stored {
                if referenced.contains(&hash) {
                    continue;
                }
                report.orphaned += 1;
                let meta = match self
                    .call("store", "metadata", true, || self.store.metadata(&hash))
                    .await
                {
                    Ok(meta) => meta,
                    Err(Error::NotFound { .. }) => continue,
                    Err(e) => return Err(e),
                };
                if meta.created > cutoff {
                    continue;
                }
                if self
                    .call("store", "delete", true, || self.store.delete(&hash))
                    .await?
                {
                    report.deleted += 1;
                    report.bytes_freed += meta.size;
                }
            }
            report.staging_removed = self
                .call("store", "cleanup_staging", true, || {
                    self.store.cleanup_staging(grace)
                })
                .await?;
            Ok(report)
        })
        .await
    }
}
