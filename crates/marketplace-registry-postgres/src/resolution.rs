//! Dependency resolution in a few set-based queries instead of a round trip per read.
//!
//! Before the core's resolver runs, the graph is fetched on one connection: in one recursive
//! query, every version of every package reachable from the root through the dependency
//! edges stored at registration, when that is at most `MAX_REACHABLE` versions. A wider graph
//! is fetched level by level:
//! the version lists of every package the level names (one query, `key = ANY($1)`), then the
//! metadata of the version each requirement would pick — the highest match that is not yanked,
//! as the resolver tries first — (one query), whose dependencies make the next level. A
//! 50-package graph five levels deep costs about ten queries. The resolver then reads from
//! what was fetched; anything it needs beyond that (a backtrack to an older version) is read
//! live, so the hint can only save trips, never change the answer.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use marketplace_core::semver::VersionReq;
use marketplace_core::{
    PackageId, PackageMetadata, PackageRef, ResolutionSource, Result, VersionState, is_exact_pin,
};

use crate::PostgresRegistry;
use crate::queries::{self, QResult};

/// Most versions the one-query prefetch reads (every version of every reachable package);
/// a wider graph is fetched level by level instead.
const MAX_REACHABLE: usize = 2_000;

/// Most levels fetched ahead; deeper graphs are read live past them.
const MAX_LEVELS: usize = 32;

/// What the prefetch read, handed out to the resolver, falling back to live reads.
pub(crate) struct Prefetched<'a> {
    registry: &'a PostgresRegistry,
    states: Mutex<HashMap<String, Vec<VersionState>>>,
    metadata: Mutex<HashMap<String, PackageMetadata>>,
    /// Stored rows read by the one-query prefetch, parsed when the resolver asks.
    rows: Mutex<HashMap<String, String>>,
}

impl<'a> Prefetched<'a> {
    /// Fetches `root`'s graph as far as the likely choices lead. A failed prefetch leaves
    /// what it has: the resolver reads the rest (and meets the failure there, if it lasts).
    pub(crate) async fn fetch(registry: &'a PostgresRegistry, root: &PackageId) -> Prefetched<'a> {
        let prefetched = Prefetched {
            registry,
            states: Mutex::new(HashMap::new()),
            metadata: Mutex::new(HashMap::new()),
            rows: Mutex::new(HashMap::new()),
        };
        if let Ok(client) = registry.client("prefetch a dependency graph").await {
            let location = registry.location();
            let _ = prefetched.walk(&client, location, root).await;
        }
        prefetched
    }

    async fn walk(
        &self,
        client: &impl GenericClient,
        location: &str,
        root: &PackageId,
    ) -> QResult<()> {
        // Usually one query: the whole reachable graph, every version.
        if let Some(reached) = queries::reachable(client, location, root, MAX_REACHABLE).await? {
            self.lock_states().extend(reached.states);
            *lock(&self.rows) = reached.metadata;
            return Ok(());
        }
        // Too wide for that: level by level, the versions the requirements would pick.
        let mut fetched = queries::get_many(client, location, &[root.canonical()]).await?;
        let mut seen: HashSet<String> = HashSet::new();
        seen.insert(root.package().canonical());
        for _ in 0..MAX_LEVELS {
            // The requirements this level's versions place, by package.
            let mut wanted: HashMap<String, (PackageRef, Vec<VersionReq>)> = HashMap::new();
            for metadata in fetched.values() {
                for (package, requirement) in metadata.all_dependencies() {
                    wanted
                        .entry(package.canonical())
                        .or_insert_with(|| (package.clone(), Vec::new()))
                        .1
                        .push(requirement.clone());
                }
            }
            self.lock_metadata().extend(fetched.drain());
            let packages: Vec<String> = wanted
                .keys()
                .filter(|key| seen.insert((*key).clone()))
                .cloned()
                .collect();
            if packages.is_empty() {
                return Ok(());
            }
            let states = queries::version_states_many(client, location, &packages).await?;
            let mut picks: Vec<String> = Vec::new();
            for (key, versions) in &states {
                let Some((package, requirements)) = wanted.get(key) else {
                    continue;
                };
                for requirement in requirements {
                    let pin = is_exact_pin(requirement);
                    if let Some(state) = versions
                        .iter()
                        .rev()
                        .find(|s| requirement.matches(&s.version) && (pin || !s.is_yanked()))
                    {
                        picks.push(package.at(state.version.clone()).canonical());
                    }
                }
            }
            picks.sort_unstable();
            picks.dedup();
            self.lock_states().extend(states);
            fetched = queries::get_many(client, location, &picks).await?;
        }
        self.lock_metadata().extend(fetched);
        Ok(())
    }

    fn lock_states(&self) -> MutexGuard<'_, HashMap<String, Vec<VersionState>>> {
        lock(&self.states)
    }

    fn lock_metadata(&self) -> MutexGuard<'_, HashMap<String, PackageMetadata>> {
        lock(&self.metadata)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl ResolutionSource for Prefetched<'_> {
    async fn version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        let cached = self.lock_states().get(&package.canonical()).cloned();
        match cached {
            Some(states) => Ok(states),
            None => self.registry.read_version_states(package).await,
        }
    }

    async fn metadata(&self, id: &PackageId) -> Result<PackageMetadata> {
        let key = id.canonical();
        let cached = self.lock_metadata().get(&key).cloned();
        if let Some(metadata) = cached {
            return Ok(metadata);
        }
        let row = lock(&self.rows).remove(&key);
        match row {
            Some(row) => crate::finish(
                queries::parse_metadata(self.registry.location(), &row),
                || format!("read {id}"),
            ),
            None => self.registry.read_metadata(id).await,
        }
    }
}
