//! The search index as a follower of the registry's change feed. An engine that keeps a feed
//! position ([`marketplace_core::SearchEngine::feed_position`]) is brought up to the newest event
//! after every write of this client and whenever [`MarketplaceClient::sync_index`] is called
//! (`mkt` does on opening a home), so a publish killed between registering and indexing, or an
//! index restored from an old backup, is repaired by the next process — no manual rebuild.
//! Applying an event twice is harmless (each record replaces its version), so the position may
//! lag what is indexed but never runs ahead of it.
//!
//! Download totals follow the same way, batched: downloads record no event, but each gives its
//! package a new download stamp, and an engine that keeps a downloads position
//! ([`marketplace_core::SearchEngine::downloads_position`]) takes the total of every package
//! downloaded since ([`marketplace_core::Registry::downloads_since`]) in one step per page —
//! one update per package, however many downloads it had.

use std::collections::{HashMap, HashSet};

use marketplace_core::{DownloadCount, PackageId, PackageRecord, RegistryEvent, Result, YankInfo};

use crate::client::MarketplaceClient;

/// Events applied per step (one `events_since` page, one `apply_feed`).
const PAGE: usize = 1000;
/// An index this many events or more behind from nothing is rebuilt from the registry's listing
/// (pages of records) rather than replayed event by event (a read per version).
const REBUILD_FROM: u64 = 2_000;

/// Records the calling flow already holds, by canonical id: used instead of reading them back.
pub(crate) type Known = HashMap<String, PackageRecord>;

impl MarketplaceClient {
    /// Brings the search index up to the registry's change feed and download totals, and
    /// returns how many events it applied: 0 when it was caught up, or when the engine keeps no
    /// feed position (then each flow indexes what it changes, and
    /// [`MarketplaceClient::rebuild_index`] repairs). On a read-only home it applies nothing
    /// (see [`MarketplaceClient::index_lag`]).
    pub async fn sync_index(&self) -> Result<u64> {
        let span = tracing::info_span!("marketplace.sync_index");
        self.flow("sync_index", span, async {
            Ok(self.follow(&Known::new()).await?.unwrap_or(0))
        })
        .await
    }

    /// How many registry events the search index has not applied yet, or `None` when the engine
    /// keeps no feed position. 0 after every write of a writable client; on a read-only home,
    /// what an index that cannot follow there misses (its searches do not show them).
    pub async fn index_lag(&self) -> Result<Option<u64>> {
        Ok(self
            .feed_state()
            .await?
            .map(|(position, head)| head.saturating_sub(position)))
    }

    /// Whether download totals recorded in the registry have not reached the search index yet
    /// (`false` when the engine does not follow totals). A writable client applies them at its
    /// next sync; a reader ([`crate::MarketplaceBuilder::local_reader`]) leaves them.
    pub async fn downloads_pending(&self) -> Result<bool> {
        let Some(position) = self.downloads_position().await? else {
            return Ok(false);
        };
        let next = self
            .call("registry", "downloads_since", true, || {
                self.registry.downloads_since(position, 1)
            })
            .await?;
        Ok(!next.is_empty())
    }

    /// The index's feed position and the registry's newest event, or `None` when the engine
    /// keeps no position.
    async fn feed_state(&self) -> Result<Option<(u64, u64)>> {
        let Some(position) = self
            .call("search", "feed_position", true, || {
                self.search.feed_position()
            })
            .await?
        else {
            return Ok(None);
        };
        let head = self
            .call("registry", "latest_event_seq", true, || {
                self.registry.latest_event_seq()
            })
            .await?;
        Ok(Some((position, head)))
    }

    /// The index's downloads position, or `None` when the engine does not follow totals.
    async fn downloads_position(&self) -> Result<Option<u64>> {
        self.call("search", "downloads_position", true, || {
            self.search.downloads_position()
        })
        .await
    }

    /// Whether the search engine follows the change feed.
    pub(crate) async fn follows_feed(&self) -> Result<bool> {
        Ok(self
            .call("search", "feed_position", true, || {
                self.search.feed_position()
            })
            .await?
            .is_some())
    }

    /// The follower: applies every event after the index's position, in pages, then the
    /// download totals after its downloads position (a failure there is logged and counted, and
    /// left to the next follow), and returns how many events it applied; `None` when the engine
    /// keeps no feed position (the caller indexes directly).
    pub(crate) async fn follow(&self, known: &Known) -> Result<Option<u64>> {
        if self.is_index_read_only() {
            // The index is not ours to write; index_lag says what it misses.
            return Ok(None);
        }
        let applied = self.follow_events(known).await?;
        if applied.is_some() {
            // Totals are statistics: a failure leaves them for the next follow, and does not
            // make the events just applied look unapplied.
            if let Err(e) = self.follow_downloads().await {
                tracing::warn!(error = %e, "download totals not applied to the search index; the next sync applies them");
                self.count(crate::instrument::INDEX_FAILURES_TOTAL, &[]);
            }
        }
        Ok(applied)
    }

    /// Applies the download totals of every package downloaded after the index's downloads
    /// position, a page per step; returns how many totals it applied (0 when the engine does
    /// not follow them).
    async fn follow_downloads(&self) -> Result<u64> {
        let Some(mut position) = self.downloads_position().await? else {
            return Ok(0);
        };
        let mut applied = 0;
        loop {
            let counts = self.downloads_after(position).await?;
            // Only an empty page ends it: the trait does not promise full pages.
            let Some(last) = counts.last().map(|c| c.stamp) else {
                return Ok(applied);
            };
            self.call("search", "apply_downloads", true, || {
                self.search.apply_downloads(&counts, last)
            })
            .await?;
            applied += counts.len() as u64;
            position = last;
        }
    }

    /// One page of download totals after stamp `after`.
    async fn downloads_after(&self, after: u64) -> Result<Vec<DownloadCount>> {
        self.call("registry", "downloads_since", true, || {
            self.registry.downloads_since(after, PAGE)
        })
        .await
    }

    /// The stamp of the registry's latest download (0 when nothing was downloaded), read by
    /// paging through the totals.
    async fn latest_download_stamp(&self) -> Result<u64> {
        let mut stamp = 0;
        loop {
            match self.downloads_after(stamp).await?.last() {
                Some(last) => stamp = last.stamp,
                None => return Ok(stamp),
            }
        }
    }

    /// The event half of [`MarketplaceClient::follow`].
    async fn follow_events(&self, known: &Known) -> Result<Option<u64>> {
        let Some((mut position, head)) = self.feed_state().await? else {
            return Ok(None);
        };
        if position == head {
            return Ok(Some(0));
        }
        // An index ahead of the registry followed another registry (or a restored older copy of
        // this one): start again. One far behind from nothing is rebuilt from the listing.
        if position > head || (position == 0 && head >= REBUILD_FROM) {
            self.rebuild_at(head).await?;
            return Ok(Some(head));
        }
        let mut applied = 0;
        // Up to the head read above; events after it are the next follow's.
        while position < head {
            let events = self
                .call("registry", "events_since", true, || {
                    self.registry.events_since(position, PAGE)
                })
                .await?;
            let Some(last) = events.last().map(|e| e.seq) else {
                break;
            };
            let records = self.records_for(&events, known).await?;
            self.call("search", "apply_feed", true, || {
                self.search.apply_feed(&records, last)
            })
            .await?;
            applied += events.len() as u64;
            position = last;
        }
        Ok(Some(applied))
    }

    /// Makes freshly registered `records` searchable: by following the feed (which also applies
    /// whatever an earlier, interrupted flow left), or by indexing them directly when the engine
    /// keeps no position. Returns whether the index took them; a failure is logged and counted
    /// (the registry is the truth, and the next follow or `rebuild_index` repairs the index).
    pub(crate) async fn index_published(&self, records: &[PackageRecord]) -> bool {
        let result = async {
            let known: Known = records
                .iter()
                .map(|r| (r.metadata.id.canonical(), r.clone()))
                .collect();
            if self.follow(&known).await?.is_some() {
                return Ok(());
            }
            match records {
                [one] => {
                    self.call("search", "index", true, || self.search.index(one))
                        .await
                }
                many => {
                    self.call("search", "index_batch", true, || {
                        self.search.index_batch(many)
                    })
                    .await
                }
            }
        }
        .await;
        match result {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, versions = records.len(), "published but not indexed; the next sync or rebuild_index repairs this");
                self.count(crate::instrument::INDEX_FAILURES_TOTAL, &[]);
                false
            }
        }
    }

    /// Rebuilds the index from the registry's listing and records `head` (read before the
    /// listing, so later events are applied again, harmlessly) as its position, and the latest
    /// download stamp (read before the listing too) as its downloads position.
    pub(crate) async fn rebuild_at(&self, head: u64) -> Result<u64> {
        let downloads = match self.downloads_position().await? {
            Some(_) => Some(self.latest_download_stamp().await?),
            None => None,
        };
        let records = self.all_records().await?;
        let mut records = Some(records);
        let count = self
            .call("search", "rebuild", false, || {
                let batch = records.take().unwrap_or_default();
                self.search.rebuild(Box::new(batch.into_iter()))
            })
            .await?;
        self.call("search", "apply_feed", true, || {
            self.search.apply_feed(&[], head)
        })
        .await?;
        if let Some(stamp) = downloads {
            self.call("search", "apply_downloads", true, || {
                self.search.apply_downloads(&[], stamp)
            })
            .await?;
        }
        Ok(count)
    }

    /// The current record of every version a stretch of the feed touched, in first-touched
    /// order. The index keeps of a yank only that it happened, so a yank seen in the stretch
    /// carries its reason and a yank from before it an empty one.
    async fn records_for(
        &self,
        events: &[RegistryEvent],
        known: &Known,
    ) -> Result<Vec<PackageRecord>> {
        let mut order: Vec<&PackageId> = Vec::new();
        let mut seen = HashSet::new();
        let mut yanks: HashMap<String, Option<YankInfo>> = HashMap::new();
        for event in events {
            let id = event.kind.id();
            if seen.insert(id.canonical()) {
                order.push(id);
            }
            match &event.kind {
                marketplace_core::EventKind::Yanked { reason, .. } => {
                    yanks.insert(
                        id.canonical(),
                        Some(YankInfo::new(reason.clone(), event.at)),
                    );
                }
                marketplace_core::EventKind::Unyanked { .. } => {
                    yanks.insert(id.canonical(), None);
                }
                _ => {}
            }
        }
        let mut records = Vec::with_capacity(order.len());
        for id in order {
            let key = id.canonical();
            if let (Some(record), false) = (known.get(&key), yanks.contains_key(&key)) {
                records.push(record.clone());
                continue;
            }
            let metadata = self.get_checked("sync_index", id).await?;
            let downloads = self
                .call("registry", "get_stats", true, || {
                    self.registry.get_stats(id)
                })
                .await?
                .total_downloads;
            let yanked = match yanks.remove(&key) {
                Some(state) => state,
                None => self.yank_of(id).await?,
            };
            records.push(
                PackageRecord::new(metadata)
                    .with_yank(yanked)
                    .with_downloads(downloads),
            );
        }
        Ok(records)
    }
}
