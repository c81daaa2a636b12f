//! `MemoryRegistry`: the reference `Registry`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use marketplace_core::time::{Date, OffsetDateTime};
use marketplace_core::{
    ContentHash, DownloadCount, Error, EventKind, MetadataUpdate, PackageId, PackageMetadata,
    PackageRecord, PackageRef, PackageStats, Registry, RegistryEvent, Result, VersionState,
    YankInfo, check_registration, last_30_days,
};

use super::lock;

struct Entry {
    record: PackageRecord,
    by_day: BTreeMap<Date, u64>,
}

#[derive(Default)]
struct State {
    /// Every version in registration order.
    entries: Vec<Entry>,
    /// Canonical id → index into `entries`.
    index: HashMap<String, usize>,
    events: Vec<RegistryEvent>,
    /// The last download stamp given.
    download_stamp: u64,
    /// Canonical package → its latest download stamp and spelling.
    stamps: HashMap<String, (u64, PackageRef)>,
}

impl State {
    fn find(&self, id: &PackageId) -> Result<usize> {
        self.index
            .get(&id.canonical())
            .copied()
            .ok_or_else(|| Error::not_found(format!("package {id}")))
    }

    fn versions_of(&self, package: &PackageRef) -> Vec<&Entry> {
        let key = package.canonical();
        let mut found: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.record.metadata.id.package().canonical() == key)
            .collect();
        found.sort_by(|a, b| {
            a.record
                .metadata
                .id
                .version
                .cmp(&b.record.metadata.id.version)
        });
        found
    }

    fn package_downloads(&self, package: &PackageRef) -> u64 {
        self.versions_of(package)
            .iter()
            .map(|e| e.by_day.values().sum::<u64>())
            .sum()
    }

    fn log(&mut self, kind: EventKind) {
        let seq = self.events.len() as u64 + 1;
        self.events
            .push(RegistryEvent::new(seq, OffsetDateTime::now_utc(), kind));
    }

    fn record(&self, i: usize) -> PackageRecord {
        let mut record = self.entries[i].record.clone();
        record.downloads = self.package_downloads(&record.metadata.id.package());
        record
    }

    fn insert(&mut self, metadata: PackageMetadata) -> Result<PackageId> {
        let key = metadata.id.canonical();
        if let Some(&i) = self.index.get(&key) {
            return Err(Error::already_exists(format!(
                "package {} (as {})",
                metadata.id, self.entries[i].record.metadata.id
            )));
        }
        let id = metadata.id.clone();
        self.log(EventKind::Registered {
            id: id.clone(),
            checksum: metadata.checksum.clone(),
        });
        self.index.insert(key, self.entries.len());
        self.entries.push(Entry {
            record: PackageRecord::new(metadata),
            by_day: BTreeMap::new(),
        });
        Ok(id)
    }
}

/// The reference [`Registry`]: a vector of versions and an event log behind one mutex.
/// `register_batch` is atomic.
#[derive(Default)]
pub struct MemoryRegistry {
    state: Mutex<State>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn register(
        &self,
        metadata: PackageMetadata,
        content_hash: ContentHash,
    ) -> Result<PackageId> {
        check_registration(&metadata, &content_hash)?;
        lock(&self.state).insert(metadata)
    }

    async fn register_batch(
        &self,
        items: Vec<(PackageMetadata, ContentHash)>,
    ) -> Result<Vec<PackageId>> {
        for (metadata, hash) in &items {
            check_registration(metadata, hash)?;
        }
        let mut state = lock(&self.state);
        let saved = (state.entries.len(), state.events.len(), state.index.clone());
        let mut ids = Vec::with_capacity(items.len());
        for (metadata, _) in items {
            match state.insert(metadata) {
                Ok(id) => ids.push(id),
                Err(e) => {
                    // Roll back: the batch is all or nothing.
                    state.entries.truncate(saved.0);
                    state.events.truncate(saved.1);
                    state.index = saved.2;
                    return Err(e);
                }
            }
        }
        Ok(ids)
    }

    async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
        let state = lock(&self.state);
        let i = state.find(id)?;
        Ok(state.entries[i].record.metadata.clone())
    }

    async fn list_version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        let state = lock(&self.state);
        let versions: Vec<VersionState> = state
            .versions_of(package)
            .iter()
            .map(|e| {
                VersionState::new(
                    e.record.metadata.id.version.clone(),
                    e.record.yanked.clone(),
                )
            })
            .collect();
        if versions.is_empty() {
            return Err(Error::not_found(format!("package {package}")));
        }
        Ok(versions)
    }

    async fn update_metadata(
        &self,
        id: &PackageId,
        update: MetadataUpdate,
    ) -> Result<PackageMetadata> {
        update.validate()?;
        let mut state = lock(&self.state);
        let i = state.find(id)?;
        if update.is_empty() {
            return Ok(state.entries[i].record.metadata.clone());
        }
        update.apply_to(&mut state.entries[i].record.metadata);
        let stored = state.entries[i].record.metadata.id.clone();
        state.log(EventKind::MetadataUpdated {
            id: stored,
            update: Box::new(update),
        });
        Ok(state.entries[i].record.metadata.clone())
    }

    async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
        let mut state = lock(&self.state);
        let i = state.find(id)?;
        if state.entries[i].record.is_yanked() {
            return Ok(());
        }
        state.entries[i].record.yanked =
            Some(YankInfo::new(reason.to_owned(), OffsetDateTime::now_utc()));
        let stored = state.entries[i].record.metadata.id.clone();
        state.log(EventKind::Yanked {
            id: stored,
            reason: reason.to_owned(),
        });
        Ok(())
    }

    async fn unyank(&self, id: &PackageId) -> Result<()> {
        let mut state = lock(&self.state);
        let i = state.find(id)?;
        if state.entries[i].record.yanked.take().is_some() {
            let stored = state.entries[i].record.metadata.id.clone();
            state.log(EventKind::Unyanked { id: stored });
        }
        Ok(())
    }

    async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
        let state = lock(&self.state);
        let i = state.find(id)?;
        Ok(state.entries[i].record.is_yanked())
    }

    async fn list_by_author(
        &self,
        author: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        let state = lock(&self.state);
        Ok((0..state.entries.len())
            .filter(|&i| {
                state.entries[i]
                    .record
                    .metadata
                    .authors
                    .iter()
                    .any(|a| a == author)
            })
            .skip(offset)
            .take(limit)
            .map(|i| state.record(i))
            .collect())
    }

    async fn list(&self, limit: usize, offset: usize) -> Result<Vec<PackageRecord>> {
        let state = lock(&self.state);
        Ok((0..state.entries.len())
            .skip(offset)
            .take(limit)
            .map(|i| state.record(i))
            .collect())
    }

    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
        let state = lock(&self.state);
        let i = state.find(id)?;
        let package = id.package();
        let mut per_version = BTreeMap::new();
        let mut by_day: BTreeMap<Date, u64> = BTreeMap::new();
        for entry in state.versions_of(&package) {
            per_version.insert(
                entry.record.metadata.id.version.clone(),
                entry.by_day.values().sum(),
            );
            for (day, n) in &entry.by_day {
                *by_day.entry(*day).or_default() += n;
            }
        }
        Ok(PackageStats::new(
            state.entries[i].record.metadata.id.clone(),
            state.entries[i].by_day.values().sum(),
            per_version.values().sum(),
            per_version,
            last_30_days(&by_day, OffsetDateTime::now_utc().date()),
        ))
    }

    async fn record_download(&self, id: &PackageId) -> Result<()> {
        let mut state = lock(&self.state);
        let i = state.find(id)?;
        *state.entries[i]
            .by_day
            .entry(OffsetDateTime::now_utc().date())
            .or_default() += 1;
        state.download_stamp += 1;
        let stamp = state.download_stamp;
        let package = state.entries[i].record.metadata.id.package();
        state.stamps.insert(package.canonical(), (stamp, package));
        Ok(())
    }

    async fn downloads_since(&self, after: u64, limit: usize) -> Result<Vec<DownloadCount>> {
        let state = lock(&self.state);
        let mut changed: Vec<&(u64, PackageRef)> =
            state.stamps.values().filter(|(s, _)| *s > after).collect();
        changed.sort_by_key(|(stamp, _)| *stamp);
        Ok(changed
            .into_iter()
            .take(limit)
            .map(|(stamp, package)| {
                DownloadCount::new(package.clone(), state.package_downloads(package), *stamp)
            })
            .collect())
    }

    async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>> {
        let state = lock(&self.state);
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(state.events.len());
        Ok(state.events[start..].iter().take(limit).cloned().collect())
    }
}
