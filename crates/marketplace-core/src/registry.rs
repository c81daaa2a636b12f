//! The `Registry` trait: package metadata, the source of truth of what exists.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use async_trait::async_trait;
use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::metadata::{MetadataUpdate, PackageMetadata, PackageRecord, YankInfo};
use crate::name::{PackageId, PackageRef};
use crate::resolve::ResolveOptions;

// `YYYY-MM-DD`: the full-date of RFC 3339, for days.
time::serde::format_description!(calendar_date, Date, "[year]-[month]-[day]");

/// One version of a package and whether it is yanked (with why and when), as used by
/// dependency resolution and shown by version listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VersionState {
    /// The version.
    pub version: Version,
    /// Set when the version is yanked: the reason given and when.
    pub yanked: Option<YankInfo>,
}

impl VersionState {
    /// The state of `version`: yanked when `yanked` is set.
    pub fn new(version: Version, yanked: Option<YankInfo>) -> Self {
        VersionState { version, yanked }
    }

    /// Whether the version is yanked.
    pub fn is_yanked(&self) -> bool {
        self.yanked.is_some()
    }
}

/// A resolved dependency graph: one version per package (or, under cargo's policy, per
/// semver-compatible series), every requirement satisfied, each with the metadata the resolver
/// read (so a caller needs no second read to verify or install it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DependencyGraph {
    /// The package whose dependencies were resolved.
    pub root: PackageId,
    /// Every package of the graph (the root included).
    pub nodes: BTreeMap<PackageId, GraphNode>,
}

/// One package of a [`DependencyGraph`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GraphNode {
    /// Its metadata, as the registry returned it.
    pub metadata: PackageMetadata,
    /// Its resolved direct dependencies, in id order.
    pub dependencies: Vec<PackageId>,
    /// Set when this version is yanked (chosen by an exact pin, or kept from a lockfile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yanked: Option<YankInfo>,
}

impl GraphNode {
    /// A node for `metadata` with its resolved direct `dependencies`, not yanked.
    pub fn new(metadata: PackageMetadata, dependencies: Vec<PackageId>) -> Self {
        GraphNode {
            metadata,
            dependencies,
            yanked: None,
        }
    }

    /// The node, marked yanked when `yanked` is set.
    pub fn with_yank(mut self, yanked: Option<YankInfo>) -> Self {
        self.yanked = yanked;
        self
    }
}

impl DependencyGraph {
    /// The graph of `root`.
    pub fn new(root: PackageId, nodes: BTreeMap<PackageId, GraphNode>) -> Self {
        DependencyGraph { root, nodes }
    }

    /// Every package of the graph, root included, in id order.
    pub fn packages(&self) -> impl Iterator<Item = &PackageId> {
        self.nodes.keys()
    }

    /// How many packages the graph holds, root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph is empty (never true for a resolved graph: it holds its root).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The resolved direct dependencies of `id` (empty when `id` is not in the graph).
    pub fn dependencies_of(&self, id: &PackageId) -> &[PackageId] {
        self.nodes
            .get(id)
            .map_or(&[], |node| node.dependencies.as_slice())
    }

    /// The metadata of `id`, if it is in the graph.
    pub fn metadata_of(&self, id: &PackageId) -> Option<&PackageMetadata> {
        self.nodes.get(id).map(|node| &node.metadata)
    }

    /// The version chosen for `package`, if it is in the graph.
    pub fn version_of(&self, package: &PackageRef) -> Option<&PackageId> {
        let key = package.canonical();
        self.nodes.keys().find(|id| id.package().canonical() == key)
    }

    /// Every package with its dependencies before it: the order to install in. Resolution
    /// rejects cycles; for a hand-built graph with a cycle, the edge that closes it is ignored.
    pub fn install_order(&self) -> Vec<PackageId> {
        let mut done: HashSet<&PackageId> = HashSet::new();
        let mut active: HashSet<&PackageId> = HashSet::new();
        let mut order = Vec::with_capacity(self.nodes.len());
        // Iterative post-order depth-first walk from every node.
        for start in self.nodes.keys() {
            if done.contains(start) {
                continue;
            }
            let mut stack: Vec<(&PackageId, usize)> = vec![(start, 0)];
            active.insert(start);
            while let Some((node, next)) = stack.pop() {
                if let Some(dep) = self.dependencies_of(node).get(next) {
                    stack.push((node, next + 1));
                    if self.nodes.contains_key(dep) && !done.contains(dep) && active.insert(dep) {
                        stack.push((dep, 0));
                    }
                } else {
                    active.remove(node);
                    done.insert(node);
                    order.push(node.clone());
                }
            }
        }
        order
    }
}

/// Downloads of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DailyDownloads {
    /// The day (UTC), serialised as `YYYY-MM-DD` (the date part of RFC 3339).
    #[serde(with = "calendar_date")]
    pub date: Date,
    /// Downloads of the package (all versions) that day.
    pub downloads: u64,
}

impl DailyDownloads {
    /// Downloads on `date`.
    pub fn new(date: Date, downloads: u64) -> Self {
        DailyDownloads { date, downloads }
    }
}

/// A package's download total as of one download: what [`Registry::downloads_since`] returns, so
/// a follower (the search index) learns new totals without an event per download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DownloadCount {
    /// The package.
    pub package: PackageRef,
    /// Downloads of all its versions.
    pub total: u64,
    /// The stamp of its latest download: stamps grow with every download the registry counts.
    pub stamp: u64,
}

impl DownloadCount {
    /// A package's download total as of `stamp`.
    pub fn new(package: PackageRef, total: u64, stamp: u64) -> Self {
        DownloadCount {
            package,
            total,
            stamp,
        }
    }
}

/// Download statistics of a package version and its package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PackageStats {
    /// The version asked about.
    pub id: PackageId,
    /// Downloads of this version.
    pub version_downloads: u64,
    /// Downloads of all versions of the package.
    pub total_downloads: u64,
    /// Downloads per version, for every version of the package (zero included).
    pub per_version: BTreeMap<Version, u64>,
    /// The last 30 days (UTC), oldest first, today last, days without downloads included as 0.
    pub last_30_days: Vec<DailyDownloads>,
}

impl PackageStats {
    /// A version's download statistics.
    pub fn new(
        id: PackageId,
        version_downloads: u64,
        total_downloads: u64,
        per_version: BTreeMap<Version, u64>,
        last_30_days: Vec<DailyDownloads>,
    ) -> Self {
        PackageStats {
            id,
            version_downloads,
            total_downloads,
            per_version,
            last_30_days,
        }
    }
}

/// What a registry event records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A version was registered.
    Registered {
        /// The version.
        id: PackageId,
        /// Its archive's content hash.
        checksum: ContentHash,
    },
    /// A version was yanked.
    Yanked {
        /// The version.
        id: PackageId,
        /// The reason given.
        reason: String,
    },
    /// A yanked version was restored.
    Unyanked {
        /// The version.
        id: PackageId,
    },
    /// Mutable metadata of a version changed.
    MetadataUpdated {
        /// The version.
        id: PackageId,
        /// The change (boxed: it is much larger than the other events).
        update: Box<MetadataUpdate>,
    },
}

impl EventKind {
    /// The version the event is about.
    pub fn id(&self) -> &PackageId {
        match self {
            EventKind::Registered { id, .. }
            | EventKind::Yanked { id, .. }
            | EventKind::Unyanked { id }
            | EventKind::MetadataUpdated { id, .. } => id,
        }
    }
}

/// One entry of the registry's append-only event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RegistryEvent {
    /// Position in the log: 1 for the first event, then +1 per event, never reused or skipped.
    pub seq: u64,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened.
    pub kind: EventKind,
}

impl RegistryEvent {
    /// Event `seq` of the change feed.
    pub fn new(seq: u64, at: OffsetDateTime, kind: EventKind) -> Self {
        RegistryEvent { seq, at, kind }
    }
}

/// Package metadata: the source of truth of what exists.
///
/// Lookups are by canonical form: `Acme/Web_Framework@1.0.0` finds `acme/web-framework@1.0.0`,
/// and versions are compared ignoring `+build` metadata. Every method that changes state appends
/// exactly one [`RegistryEvent`] in the same atomic step as the change (and none when it changes
/// nothing), so the log is a complete audit trail and change feed.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Registers a new version. `content_hash` must equal `metadata.checksum`.
    ///
    /// Errors: `Invalid` if the metadata breaks a rule of the data model (see
    /// [`PackageMetadata::validate`]) or the hashes differ; `AlreadyExists` if the version (ignoring
    /// build metadata, in canonical name form) exists, even when yanked. Of several concurrent
    /// registrations of one version exactly one succeeds. Returns the id as stored.
    async fn register(
        &self,
        metadata: PackageMetadata,
        content_hash: ContentHash,
    ) -> Result<PackageId>;

    /// Registers many versions. Errors as [`Registry::register`].
    ///
    /// The provided implementation validates every item and checks every name first (so bad
    /// input or a duplicate inside the batch changes nothing), then registers one by one; a
    /// concurrent registration can still make a later item fail after earlier ones landed.
    /// Backends with transactions override it to make the whole batch atomic, and say so with
    /// `Capabilities::atomic_batch` in the conformance kit.
    async fn register_batch(
        &self,
        items: Vec<(PackageMetadata, ContentHash)>,
    ) -> Result<Vec<PackageId>> {
        crate::provided::register_batch(self, items).await
    }

    /// The metadata of one version (with any metadata updates applied). `NotFound` if absent.
    async fn get(&self, id: &PackageId) -> Result<PackageMetadata>;

    /// Every version of `package`, ascending (semver order), with its yank state. `NotFound` if
    /// the package has no versions at all.
    async fn list_version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>>;

    /// Every version of `package`, ascending, yanked ones included. `NotFound` as
    /// [`Registry::list_version_states`], from which the provided implementation derives it.
    async fn list_versions(&self, package: &PackageRef) -> Result<Vec<Version>> {
        crate::provided::list_versions(self, package).await
    }

    /// The highest version matching `requirement` that is not yanked, or `None`.
    ///
    /// Pre-releases match only when the requirement names a pre-release of the same
    /// `major.minor.patch` (semver/cargo rules). A yanked version matches only an exact pin
    /// (`=1.2.3`), as in cargo and PEP 592. An unknown package gives `Ok(None)`.
    async fn resolve_version(
        &self,
        package: &PackageRef,
        requirement: &VersionReq,
    ) -> Result<Option<PackageId>> {
        crate::provided::resolve_version(self, package, requirement).await
    }

    /// Resolves the dependencies of `id` (plain and renamed): under `options.policy` one
    /// version per package or one per semver-compatible series, the highest that satisfies
    /// every requirement on it, with backtracking (PubGrub). Yanked versions are used only
    /// when pinned exactly. With `options.transitive = false` the graph holds the root and its
    /// direct dependencies, at the versions the full resolution chose.
    ///
    /// Errors: `NotFound` if `id` does not exist; `Conflict` with an explanation naming the
    /// packages and requirements that clash when no solution exists, when a dependency does
    /// not exist or has only yanked matches, or when the chosen versions form a cycle.
    ///
    /// Each node carries the metadata of its version exactly as [`Registry::get`] returns it.
    async fn resolve_dependencies(
        &self,
        id: &PackageId,
        options: ResolveOptions,
    ) -> Result<DependencyGraph> {
        crate::resolve::resolve_graph(self, id, options).await
    }

    /// Changes the mutable fields of a version (description, keywords, categories, homepage,
    /// repository) and returns the new metadata. Version, checksum, dependencies and the
    /// signed fields never change. `Invalid` for bad values, `NotFound` if absent.
    async fn update_metadata(
        &self,
        id: &PackageId,
        update: MetadataUpdate,
    ) -> Result<PackageMetadata>;

    /// Yanks a version: it stays downloadable by exact pin but is no longer chosen by ranges.
    /// Yanking a yanked version changes nothing and records no event. `NotFound` if absent.
    async fn yank(&self, id: &PackageId, reason: &str) -> Result<()>;

    /// Restores a yanked version. Unyanking a version that is not yanked changes nothing and
    /// records no event. `NotFound` if absent.
    async fn unyank(&self, id: &PackageId) -> Result<()>;

    /// Whether a version is yanked. `NotFound` if absent.
    async fn is_yanked(&self, id: &PackageId) -> Result<bool>;

    /// Versions listing `author` exactly among their authors, in registration order,
    /// paginated.
    async fn list_by_author(
        &self,
        author: &str,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<PackageRecord>>;

    /// Every version, in registration order (a stable order that new registrations only
    /// extend), paginated.
    async fn list(&self, limit: usize, offset: usize) -> Result<Vec<PackageRecord>>;

    /// Download statistics of a version and its package. `NotFound` if absent.
    async fn get_stats(&self, id: &PackageId) -> Result<PackageStats>;

    /// Counts one download of a version, today (UTC). `NotFound` if absent. Downloads are
    /// statistics, not mutations: they record no event, but give the package a new download
    /// stamp, larger than every stamp before it (see [`Registry::downloads_since`]).
    async fn record_download(&self, id: &PackageId) -> Result<()>;

    /// The packages downloaded since stamp `after`, each once with its current total and the
    /// stamp of its latest download, in ascending stamp order, at most `limit`. A follower that
    /// keeps the last stamp it applied reads each changed package once per catch-up, however
    /// many downloads it had: download totals reach the search index batched. Packages never
    /// downloaded are not listed; `downloads_since(0, n)` starts at the beginning.
    async fn downloads_since(&self, after: u64, limit: usize) -> Result<Vec<DownloadCount>>;

    /// Events with `seq > after`, ascending, at most `limit`. `events_since(0, n)` starts at
    /// the beginning.
    async fn events_since(&self, after: u64, limit: usize) -> Result<Vec<RegistryEvent>>;

    /// The `seq` of the newest event, 0 when the log is empty: where a follower that applied
    /// everything stands. Provided: pages through [`Registry::events_since`]; backends answer it
    /// with one lookup.
    async fn latest_event_seq(&self) -> Result<u64> {
        crate::provided::latest_event_seq(self).await
    }
}

/// Checks that a registration is well-formed: valid metadata and matching hashes. Backends call
/// this at the start of [`Registry::register`].
pub fn check_registration(metadata: &PackageMetadata, content_hash: &ContentHash) -> Result<()> {
    metadata.validate()?;
    if &metadata.checksum != content_hash {
        return Err(Error::invalid(
            "checksum",
            metadata.checksum.to_string(),
            format!("must equal the content hash being registered ({content_hash})"),
        ));
    }
    Ok(())
}

/// The last 30 days ending today (UTC), oldest first, filled from `by_day` (missing days are 0).
pub fn last_30_days(by_day: &BTreeMap<Date, u64>, today: Date) -> Vec<DailyDownloads> {
    let mut days: BTreeSet<Date> = BTreeSet::new();
    let mut day = today;
    for _ in 0..30 {
        days.insert(day);
        day = match day.previous_day() {
            Some(d) => d,
            None => break,
        };
    }
    days.into_iter()
        .map(|date| DailyDownloads {
            date,
            downloads: by_day.get(&date).copied().unwrap_or(0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PackageId {
        s.parse().expect("test id")
    }

    #[test]
    fn install_order_puts_dependencies_first_and_survives_a_cycle() {
        let (a, b, c) = (id("a@1.0.0"), id("b@1.0.0"), id("c@1.0.0"));
        let node = |id: &PackageId, dependencies: Vec<PackageId>| {
            GraphNode::new(
                PackageMetadata::new(id.clone(), "", ContentHash::sha256(b""), 0),
                dependencies,
            )
        };
        let mut nodes = BTreeMap::new();
        nodes.insert(a.clone(), node(&a, vec![b.clone(), c.clone()]));
        nodes.insert(b.clone(), node(&b, vec![c.clone()]));
        nodes.insert(c.clone(), node(&c, vec![]));
        let graph = DependencyGraph {
            root: a.clone(),
            nodes,
        };
        assert_eq!(graph.install_order(), vec![c.clone(), b.clone(), a.clone()]);

        let mut cyclic = graph.clone();
        cyclic.nodes.insert(c.clone(), node(&c, vec![a.clone()]));
        let order = cyclic.install_order();
        assert_eq!(order.len(), 3, "{order:?}");
    }

    #[test]
    fn last_30_days_fills_gaps_with_zero() {
        let today = time::macros::date!(2026 - 03 - 01);
        let mut by_day = BTreeMap::new();
        by_day.insert(today, 4);
        by_day.insert(time::macros::date!(2026 - 02 - 28), 2);
        by_day.insert(time::macros::date!(2025 - 01 - 01), 99);
        let days = last_30_days(&by_day, today);
        assert_eq!(days.len(), 30);
        assert_eq!(
            days.first().map(|d| d.date),
            Some(time::macros::date!(2026 - 01 - 31))
        );
        assert_eq!(days.iter().map(|d| d.downloads).sum::<u64>(), 6);
    }
}
