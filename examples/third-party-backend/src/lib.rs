//! `JsonDirRegistry`: a Marketplace `Registry` kept as JSON files in a directory — one file per
//! version (`versions/<n>.json`, `n` = registration order) and an append-only event log
//! (`events.jsonl`). Every change is written to disk (temporary file, fsync, rename) before it
//! is visible; one mutex serialises writers. Loaded into memory on open.
//!
//! It is an example of a third-party backend, not a production registry: it rewrites one file
//! per change and reads everything at start-up.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use marketplace_core::async_trait;
use marketplace_core::time::{Date, OffsetDateTime};
use marketplace_core::{
    ContentHash, DownloadCount, Error, EventKind, MetadataUpdate, PackageId, PackageMetadata,
    PackageRecord, PackageRef, PackageStats, Registry, RegistryEvent, Result, VersionState,
    YankInfo, check_registration, last_30_days,
};
use serde::{Deserialize, Serialize};

/// One version as stored in `versions/<n>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VersionFile {
    /// Registration order, from 0.
    n: usize,
    metadata: PackageMetadata,
    yanked: Option<YankInfo>,
    /// Downloads per day, keyed by Julian day number.
    downloads: BTreeMap<i32, u64>,
    /// The download stamp of its latest download (0: never downloaded).
    #[serde(default)]
    download_stamp: u64,
}

impl VersionFile {
    fn total(&self) -> u64 {
        self.downloads.values().sum()
    }
}

#[derive(Default)]
struct State {
    versions: Vec<VersionFile>,
    by_id: HashMap<String, usize>,
    events: Vec<RegistryEvent>,
}

/// A [`Registry`] in a directory of JSON files.
pub struct JsonDirRegistry {
    dir: PathBuf,
    state: Mutex<State>,
}

fn disk(what: impl Into<String>, e: impl Into<marketplace_core::BoxError>) -> Error {
    Error::backend("jsondir", what, e, false)
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file =
        fs::File::create(&tmp).map_err(|e| disk(format!("create {}", tmp.display()), e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| disk(format!("write {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| disk(format!("rename to {}", path.display()), e))
}

impl JsonDirRegistry {
    /// Opens the registry in `dir`, creating it if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_owned();
        let versions_dir = dir.join("versions");
        fs::create_dir_all(&versions_dir)
            .map_err(|e| disk(format!("create {}", versions_dir.display()), e))?;
        let mut state = State::default();
        let mut files = Vec::new();
        for entry in fs::read_dir(&versions_dir)
            .map_err(|e| disk(format!("read {}", versions_dir.display()), e))?
        {
            let path = entry.map_err(|e| disk("list versions", e))?.path();
            if path.extension().is_some_and(|x| x == "json") {
                let text = fs::read_to_string(&path)
                    .map_err(|e| disk(format!("read {}", path.display()), e))?;
                let file: VersionFile = serde_json::from_str(&text)
                    .map_err(|e| disk(format!("parse {}", path.display()), e))?;
                files.push(file);
            }
        }
        files.sort_by_key(|f| f.n);
        for file in files {
            state
                .by_id
                .insert(file.metadata.id.canonical(), state.versions.len());
            state.versions.push(file);
        }
        let log = dir.join("events.jsonl");
        if let Ok(text) = fs::read_to_string(&log) {
            for line in text.lines().filter(|l| !l.is_empty()) {
                state.events.push(
                    serde_json::from_str(line)
                        .map_err(|e| disk(format!("parse {}", log.display()), e))?,
                );
            }
        }
        Ok(JsonDirRegistry {
            dir,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn save(&self, file: &VersionFile) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(file).map_err(|e| disk("encode a version", e))?;
        write_atomically(
            &self.dir.join("versions").join(format!("{}.json", file.n)),
            &bytes,
        )
    }

    fn append_event(&self, state: &mut State, kind: EventKind) -> Result<()> {
        let event = RegistryEvent::new(
            state.events.len() as u64 + 1,
            OffsetDateTime::now_utc(),
            kind,
        );
        let mut line = serde_json::to_vec(&event).map_err(|e| disk("encode an event", e))?;
        line.push(b'\n');
        let path = self.dir.join("events.jsonl");
        let mut log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| disk(format!("open {}", path.display()), e))?;
        log.write_all(&line)
            .and_then(|()| log.sync_all())
            .map_err(|e| disk(format!("append to {}", path.display()), e))?;
        state.events.push(event);
        Ok(())
    }

    fn index(state: &State, id: &PackageId) -> Result<usize> {
        state
            .by_id
            .get(&id.canonical())
            .copied()
            .ok_or_else(|| Error::not_found(format!("package {id}")))
    }

    /// The versions of `package`, in semver order.
    fn family<'a>(state: &'a State, package: &PackageRef) -> Vec<&'a VersionFile> {
        let key = package.canonical();
        let mut family: Vec<&VersionFile> = state
            .versions
            .iter()
            .filter(|v| v.metadata.id.package().canonical() == key)
            .collect();
        family.sort_by(|a, b| a.metadata.id.version.cmp(&b.metadata.id.version));
        family
    }

    fn record(state: &State, file: &VersionFile) -> PackageRecord {
        PackageRecord::new(file.metadata.clone())
            .with_yank(file.yanked.clone())
            .with_downloads(
                Self::family(state, &file.metadata.id.package())
                    .iter()
                    .map(|v| v.total())
                    .sum(),
            )
    }

    /// Changes one version with `change`, which returns the event to log (or `None` when
    /// nothing changed); persists before the change becomes visible.
    fn modify(
        &self,
        id: &PackageId,
        change: impl FnOnce(&mut VersionFile) -> Option<EventKind>,
    ) -> Result<VersionFile> {
        let mut state = self.lock();
        let i = Self::index(&state, id)?;
        let mut file = state.versions[i].clone();
        if let Some(event) = change(&mut file) {
            self.save(&file)?;
            self.append_event(&mut state, event)?;
            state.versions[i] = file.clone();
        }
        Ok(file)
    }
}

#[async_trait]
impl Registry for JsonDirRegistry {
    async fn register(
        &self,
        metadata: PackageMetadata,
        content_hash: ContentHash,
    ) -> Result<PackageId> {
        check_registration(&metadata, &content_hash)?;
        let mut state = self.lock();
        if let Some(&i) = state.by_id.get(&metadata.id.canonical()) {
            return Err(Error::already_exists(format!(
                "package {}",
                state.versions[i].metadata.id
            )));
        }
        let file = VersionFile {
            n: state.versions.len(),
            metadata,
            yanked: None,
            downloads: BTreeMap::new(),
            download_stamp: 0,
        };
        self.save(&file)?;
        let id = file.metadata.id.clone();
        self.append_event(
            &mut state,
            EventKind::Registered {
                id: id.clone(),
                checksum: content_hash,
            },
        )?;
        let n = state.versions.len();
        state.by_id.insert(id.canonical(), n);
        state.versions.push(file);
        Ok(id)
    }

    async fn get(&self, id: &PackageId) -> Result<PackageMetadata> {
        let state = self.lock();
        Ok(state.versions[Self::index(&state, id)?].metadata.clone())
    }

    async fn list_version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        let state = self.lock();
        let family = Self::family(&state, package);
        if family.is_empty() {
            return Err(Error::not_found(format!("package {package}")));
        }
        Ok(family
            .iter()
            .map(|v| VersionState::new(v.metadata.id.version.clone(), v.yanked.clone()))
            .collect())
    }

    async fn update_metadata(
        &self,
        id: &PackageId,
        update: MetadataUpdate,
    ) -> Result<PackageMetadata> {
        update.validate()?;
        let file = self.modify(id, |file| {
            if update.is_empty() {
                return None;
            }
            update.apply_to(&mut file.metadata);
            Some(EventKind::MetadataUpdated {
                id: file.metadata.id.clone(),
                update: Box::new(update),
            })
        })?;
        Ok(file.metadata)
    }

    async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
        self.modify(id, |file| {
            if file.yanked.is_some() {
                return None;
            }
            file.yanked = Some(YankInfo::new(reason.to_owned(), OffsetDateTime::now_utc()));
            Some(EventKind::Yanked {
                id: file.metadata.id.clone(),
                reason: reason.to_owned(),
            })
        })
        .map(|_| ())
    }

    async fn unyank(&self, id: &PackageId) -> Result<()> {
        self.modify(id, |file| {
            file.yanked.take()?;
            Some(EventKind::Unyanked {
                id: file.metadata.id.clone(),
            })
        })
        .map(|_| ())
    }

    async fn is_yanked(&self, id: &PackageId) -> Result<bool> {
        let state = self.lock();
        Ok(state.versions[Self::index(&state, id)?].yanked.is_some())
    }

    async fn list_by_author(
        &self,
        author: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>> {
        let state = self.lock();
        Ok(state
            .versions
            .iter()
            .filter(|v| v.metadata.authors.iter().any(|a| a == author))
            .skip(offset)
            .take(limit)
            .map(|v| Self::record(&state, v))
            .collect())
    }

    async fn list(&self, limit: usize, offset: usize) -> Result<Vec<PackageRecord>> {
        let state = self.lock();
        Ok(state
            .versions
            .iter()
            .skip(offset)
            .take(limit)
            .map(|v| Self::record(&state, v))
            .collect())
    }

    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats> {
        let state = self.lock();
        let this = &state.versions[Self::index(&state, id)?];
        let mut per_version = BTreeMap::new();
        let mut by_day: BTreeMap<Date, u64> = BTreeMap::new();
        for v in Self::family(&state, &id.package()) {
            per_version.insert(v.metadata.id.version.clone(), v.total());
            for (day, n) in &v.downloads {
                let date =
                    Date::from_julian_day(*day).map_err(|e| disk("read a download day", e))?;
                *by_day.entry(date).or_default() += n;
            }
        }
        Ok(PackageStats::new(
            this.metadata.id.clone(),
            this.total(),
            per_version.values().sum(),
            per_version,
            last_30_days(&by_day, OffsetDateTime::now_utc().date()),
        ))
    }

    async fn record_download(&self, id: &PackageId) -> Result<()> {
        let mut state = self.lock();
        let i = Self::index(&state, id)?;
        let mut file = state.versions[i].clone();
        *file
            .downloads
            .entry(OffsetDateTime::now_utc().date().to_julian_day())
            .or_default() += 1;
        file.download_stamp = 1 + state
            .versions
            .iter()
            .map(|v| v.download_stamp)
            .max()
            .unwrap_or(0);
        // Downloads are statistics: saved, but no event.
        self.save(&file)?;
        state.versions[i] = file;
        Ok(())
    }

    async fn downloads_since(&self, after: u64, limit: usize) -> Result<Vec<DownloadCount>> {
        let state = self.lock();
        // Each package's latest stamp is the largest of its versions'.
        let mut latest: HashMap<String, (u64, PackageRef)> = HashMap::new();
        for v in state.versions.iter().filter(|v| v.download_stamp > after) {
            let package = v.metadata.id.package();
            let entry = latest.entry(package.canonical()).or_insert((0, package));
            entry.0 = entry.0.max(v.download_stamp);
        }
        let mut changed: Vec<(u64, PackageRef)> = latest.into_values().collect();
        changed.sort_by_key(|(stamp, _)| *stamp);
        Ok(changed
            .into_iter()
            .take(limit)
            .map(|(stamp, package)| {
                let total = Self::family(&state, &package)
                    .iter()
                    .map(|v| v.total())
                    .sum();
                DownloadCount::new(package, total, stamp)
            })
            .collect())
    }

    async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>> {
        let state = self.lock();
        Ok(state
            .events
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }
}
