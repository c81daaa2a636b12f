//! Who depends on whom: the catalogue's reverse dependencies, built from the registry on first
//! use and kept current from its change feed (see [`crate::feed`]).
//!
//! A package's dependents are the packages whose newest version (yanked or not) names it as a
//! dependency, under any requirement: what a maintainer asks before changing an API.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

use marketplace_core::semver::Version;
use marketplace_core::{EventKind, PackageMetadata, PackageRef, Result};

use crate::AppState;
use crate::feed::Follower;

/// Records read per page when the graph is built.
const LIST_PAGE: usize = 1000;

/// One package's newest version and what it depends on.
#[derive(Debug, Clone)]
struct Newest {
    package: PackageRef,
    version: Version,
    /// Canonical names of its dependencies, with the requirement on each.
    dependencies: BTreeMap<String, String>,
}

impl Newest {
    fn of(metadata: &PackageMetadata) -> Self {
        let mut dependencies = BTreeMap::new();
        for (package, req) in &metadata.dependencies {
            dependencies.insert(package.canonical(), req.to_string());
        }
        for renamed in metadata.renamed_dependencies.values() {
            dependencies.insert(renamed.package.canonical(), renamed.requirement.to_string());
        }
        Newest {
            package: metadata.id.package(),
            version: metadata.id.version.clone(),
            dependencies,
        }
    }
}

/// One dependent, as the page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dependent {
    /// The package that depends.
    pub(crate) package: PackageRef,
    /// Its newest version.
    pub(crate) version: Version,
    /// The requirement it puts on the package.
    pub(crate) requirement: String,
}

#[derive(Debug, Default)]
struct Graph {
    /// By canonical name.
    newest: HashMap<String, Newest>,
    /// Canonical name → canonical names of its dependents, in order.
    dependents: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    /// Takes `metadata` as its package's newest version if it is newer than the one held.
    fn offer(&mut self, metadata: &PackageMetadata) {
        let key = metadata.id.package().canonical();
        if let Some(held) = self.newest.get(&key)
            && held.version >= metadata.id.version
        {
            return;
        }
        let newest = Newest::of(metadata);
        if let Some(old) = self.newest.remove(&key) {
            for dependency in old.dependencies.keys() {
                if let Some(set) = self.dependents.get_mut(dependency) {
                    set.remove(&key);
                }
            }
        }
        for dependency in newest.dependencies.keys() {
            self.dependents
                .entry(dependency.clone())
                .or_default()
                .insert(key.clone());
        }
        self.newest.insert(key, newest);
    }
}

/// The reverse-dependency graph of the registry.
#[derive(Debug, Default)]
pub(crate) struct Dependents {
    graph: tokio::sync::OnceCell<RwLock<Graph>>,
    follower: Follower,
}

impl Dependents {
    /// The graph, built on first use.
    async fn graph(&self, state: &AppState) -> Result<&RwLock<Graph>> {
        self.graph
            .get_or_try_init(|| async {
                let registry = state.client.registry();
                // The follower starts at the head first, so nothing written while the graph is
                // read is missed (what is read twice is offered twice: a no-op).
                self.follower.catch_up(registry, true, |_| {}).await?;
                let mut graph = Graph::default();
                let mut offset = 0;
                loop {
                    let records = registry.list(LIST_PAGE, offset).await?;
                    for record in &records {
                        graph.offer(&record.metadata);
                    }
                    if records.len() < LIST_PAGE {
                        break;
                    }
                    offset += records.len();
                }
                Ok(RwLock::new(graph))
            })
            .await
    }

    /// Applies the change feed: every version registered since is offered to the graph.
    async fn catch_up(&self, state: &AppState, graph: &RwLock<Graph>) -> Result<()> {
        let mut registered = Vec::new();
        self.follower
            .catch_up(state.client.registry(), false, |events| {
                registered.extend(events.iter().filter_map(|event| match &event.kind {
                    EventKind::Registered { id, .. } => Some(id.clone()),
                    _ => None,
                }));
            })
            .await?;
        for id in registered {
            let metadata = state.client.registry().get(&id).await?;
            graph
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .offer(&metadata);
        }
        Ok(())
    }

    /// The dependents of `package` from `offset`, at most `limit`, by name; and how many there
    /// are in all.
    pub(crate) async fn of(
        &self,
        state: &AppState,
        package: &PackageRef,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Dependent>, usize)> {
        let graph = self.graph(state).await?;
        self.catch_up(state, graph).await?;
        let graph = graph.read().unwrap_or_else(|p| p.into_inner());
        let key = package.canonical();
        let Some(names) = graph.dependents.get(&key) else {
            return Ok((Vec::new(), 0));
        };
        let page = names
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|name| graph.newest.get(name))
            .map(|newest| Dependent {
                package: newest.package.clone(),
                version: newest.version.clone(),
                requirement: newest.dependencies.get(&key).cloned().unwrap_or_default(),
            })
            .collect();
        Ok((page, names.len()))
    }
}
