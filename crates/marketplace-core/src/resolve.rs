//! Dependency resolution over any [`Registry`], built on PubGrub.
//!
//! The registry is asynchronous and the solver is not, so resolution alternates: the solver
//! runs over what has been fetched so far; when it needs a version list or a version's
//! dependencies that are not fetched yet it stops, the data is fetched (together with a greedy
//! guess of what it will need next), and the solver runs again. Each round fetches something
//! new, so resolution terminates; in the common case (no backtracking) the greedy prefetch
//! fetches everything before the first run.
//!
//! Version sets are built from the versions that exist: a requirement becomes the set of
//! existing versions that match it (pre-release rules of semver included) and are not yanked,
//! unless it is an exact pin. Because the universe of versions is finite and known, these sets
//! are exact, and PubGrub's set algebra stays correct.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};

use futures_util::future::join_all;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyConstraints, DependencyProvider,
    PackageResolutionStatistics, PubGrubError, Ranges, Reporter, VersionSet,
};
use semver::{Op, Version, VersionReq};

use crate::error::{Error, Result};
use crate::metadata::PackageMetadata;
use crate::name::{PackageId, PackageRef};
use crate::registry::{DependencyGraph, Registry, VersionState};

/// Whether `requirement` pins one exact version (`=1.2.3`), the only kind that may select a
/// yanked version.
pub fn is_exact_pin(requirement: &VersionReq) -> bool {
    match requirement.comparators.as_slice() {
        [c] => c.op == Op::Exact && c.minor.is_some() && c.patch.is_some(),
        _ => false,
    }
}

/// Resolves the dependency graph of `root`; the provided implementation of
/// [`Registry::resolve_dependencies`] (see there for the semantics and errors).
pub async fn resolve_graph<R: Registry + ?Sized>(
    registry: &R,
    root: &PackageId,
    transitive: bool,
) -> Result<DependencyGraph> {
    let root_meta = registry.get(root).await?;
    let root_pkg = Pkg::new(root_meta.id.package());
    let mut cache = Cache::default();
    cache.store_deps(
        &root_pkg,
        root_meta.id.version.clone(),
        &root_meta.dependencies,
    );
    cache
        .prefetch(registry, &root_pkg, &root_meta.id.version)
        .await?;

    loop {
        let provider = Provider {
            cache: &cache,
            missing: RefCell::new(None),
        };
        let outcome = pubgrub::resolve(&provider, root_pkg.clone(), root_meta.id.version.clone());
        let missing = provider.missing.into_inner();
        match outcome {
            Ok(solution) => {
                let chosen: HashMap<Pkg, Version> = solution.into_iter().collect();
                return build_graph(&cache, &root_pkg, root_meta.id.clone(), &chosen, transitive);
            }
            Err(PubGrubError::NoSolution(mut tree)) => {
                tree.collapse_no_versions();
                let mut explanation = DefaultStringReporter::report(&tree);
                explanation.push_str(&cache.notes());
                return Err(Error::Conflict {
                    root: root.to_string(),
                    explanation,
                });
            }
            Err(_) => match missing {
                Some(Missing::Versions(pkg)) => cache.fetch_versions(registry, &pkg).await?,
                Some(Missing::Deps(pkg, version)) => {
                    cache.prefetch(registry, &pkg, &version).await?;
                }
                None => {
                    return Err(Error::Conflict {
                        root: root.to_string(),
                        explanation: "the resolver stopped without a reason".into(),
                    });
                }
            },
        }
    }
}

/// A package as the solver sees it: identified by its canonical key, shown as spelled.
#[derive(Clone, Debug)]
struct Pkg {
    key: Arc<str>,
    package: Arc<PackageRef>,
}

impl Pkg {
    fn new(package: PackageRef) -> Self {
        Pkg {
            key: package.canonical().into(),
            package: Arc::new(package),
        }
    }
}

impl PartialEq for Pkg {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Pkg {}
impl Hash for Pkg {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}
impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.package.fmt(f)
    }
}

/// A set of versions, shown as the requirement it came from when it has one.
#[derive(Clone, Debug)]
struct ReqSet {
    ranges: Ranges<Version>,
    label: Option<Arc<str>>,
}

impl ReqSet {
    fn unlabelled(ranges: Ranges<Version>) -> Self {
        ReqSet {
            ranges,
            label: None,
        }
    }
}

impl PartialEq for ReqSet {
    fn eq(&self, other: &Self) -> bool {
        self.ranges == other.ranges
    }
}
impl Eq for ReqSet {}

impl fmt::Display for ReqSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.label {
            Some(label) => f.write_str(label),
            None => self.ranges.fmt(f),
        }
    }
}

impl VersionSet for ReqSet {
    type V = Version;

    fn empty() -> Self {
        ReqSet::unlabelled(Ranges::empty())
    }
    fn singleton(v: Version) -> Self {
        ReqSet::unlabelled(Ranges::singleton(v))
    }
    fn complement(&self) -> Self {
        ReqSet::unlabelled(self.ranges.complement())
    }
    fn intersection(&self, other: &Self) -> Self {
        let ranges = self.ranges.intersection(&other.ranges);
        // Keep a requirement's wording when intersecting leaves its set unchanged.
        let label = if ranges == self.ranges {
            self.label.clone()
        } else if ranges == other.ranges {
            other.label.clone()
        } else {
            None
        };
        ReqSet { ranges, label }
    }
    fn contains(&self, v: &Version) -> bool {
        self.ranges.contains(v)
    }
    fn full() -> Self {
        ReqSet::unlabelled(Ranges::full())
    }
    fn union(&self, other: &Self) -> Self {
        ReqSet::unlabelled(self.ranges.union(&other.ranges))
    }
    fn is_disjoint(&self, other: &Self) -> bool {
        self.ranges.is_disjoint(&other.ranges)
    }
    fn subset_of(&self, other: &Self) -> bool {
        self.ranges.subset_of(&other.ranges)
    }
}

async fn get_owned<R: Registry + ?Sized>(registry: &R, id: PackageId) -> Result<PackageMetadata> {
    registry.get(&id).await
}

async fn list_owned<R: Registry + ?Sized>(
    registry: &R,
    package: PackageRef,
) -> Result<Vec<VersionState>> {
    registry.list_version_states(&package).await
}

/// What the solver needed and the cache did not have.
enum Missing {
    Versions(Pkg),
    Deps(Pkg, Version),
}

#[derive(Debug, thiserror::Error)]
#[error("dependency data not fetched yet")]
struct NotFetched;

type DepList = Vec<(Pkg, VersionReq)>;

#[derive(Default)]
struct Cache {
    /// Version lists; `None` when the package does not exist.
    versions: HashMap<Pkg, Option<Vec<VersionState>>>,
    /// Direct dependencies of fetched versions.
    deps: HashMap<(Pkg, Version), DepList>,
    /// The spelling a package was registered with.
    spelled: HashMap<Pkg, PackageRef>,
}

impl Cache {
    fn store_deps(&mut self, pkg: &Pkg, version: Version, deps: &BTreeMap<PackageRef, VersionReq>) {
        let list = deps
            .iter()
            .map(|(p, req)| (Pkg::new(p.clone()), req.clone()))
            .collect();
        self.deps.insert((pkg.clone(), version), list);
    }

    async fn fetch_versions<R: Registry + ?Sized>(
        &mut self,
        registry: &R,
        pkg: &Pkg,
    ) -> Result<()> {
        if self.versions.contains_key(pkg) {
            return Ok(());
        }
        let states = match registry.list_version_states(&pkg.package).await {
            Ok(states) => Some(states),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        self.versions.insert(pkg.clone(), states);
        Ok(())
    }

    /// Fetches the dependencies of `pkg@version` and, breadth first, the version lists of
    /// everything reachable and the dependencies of the version most likely to be chosen
    /// (the highest allowed one). Each level of the walk is fetched with concurrent registry
    /// calls, so a registry with a pool of readers answers them in parallel.
    async fn prefetch<R: Registry + ?Sized>(
        &mut self,
        registry: &R,
        pkg: &Pkg,
        version: &Version,
    ) -> Result<()> {
        let mut level = vec![(pkg.clone(), version.clone())];
        let mut visited: HashSet<(Pkg, Version)> = HashSet::new();
        while !level.is_empty() {
            level.retain(|key| visited.insert(key.clone()));
            let need: Vec<&(Pkg, Version)> = level
                .iter()
                .filter(|key| !self.deps.contains_key(*key))
                .collect();
            let metas = join_all(
                need.iter()
                    .map(|(pkg, version)| get_owned(registry, pkg.package.at(version.clone()))),
            )
            .await;
            for ((pkg, version), meta) in need.into_iter().zip(metas) {
                let meta = meta?;
                self.spelled.insert(pkg.clone(), meta.id.package());
                self.store_deps(pkg, version.clone(), &meta.dependencies);
            }
            let mut packages: Vec<Pkg> = Vec::new();
            for key in &level {
                for (dep, _) in &self.deps[key] {
                    if !self.versions.contains_key(dep) && !packages.contains(dep) {
                        packages.push(dep.clone());
                    }
                }
            }
            let lists = join_all(
                packages
                    .iter()
                    .map(|p| list_owned(registry, PackageRef::clone(&p.package))),
            )
            .await;
            for (dep, states) in packages.into_iter().zip(lists) {
                let states = match states {
                    Ok(states) => Some(states),
                    Err(Error::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                };
                self.versions.insert(dep, states);
            }
            let mut next = Vec::new();
            for key in &level {
                for (dep, req) in &self.deps[key] {
                    if let Some(best) = self.allowed(dep, req).and_then(|v| v.last().cloned()) {
                        next.push((dep.clone(), best));
                    }
                }
            }
            level = next;
        }
        Ok(())
    }

    /// The existing versions of `pkg` that `req` may select, ascending.
    fn allowed(&self, pkg: &Pkg, req: &VersionReq) -> Option<Vec<Version>> {
        let states = self.versions.get(pkg)?.as_ref()?;
        let pin = is_exact_pin(req);
        Some(
            states
                .iter()
                .filter(|s| (pin || !s.yanked) && req.matches(&s.version))
                .map(|s| s.version.clone())
                .collect(),
        )
    }

    /// The exact set of existing versions `req` may select, as ranges over the known versions.
    fn requirement_set(&self, pkg: &Pkg, req: &VersionReq) -> Option<ReqSet> {
        let states = self.versions.get(pkg)?;
        let mut ranges = Ranges::empty();
        if let Some(states) = states {
            let pin = is_exact_pin(req);
            let mut run_start: Option<&Version> = None;
            let mut run_end: Option<&Version> = None;
            for state in states {
                let ok = (pin || !state.yanked) && req.matches(&state.version);
                if ok {
                    run_start.get_or_insert(&state.version);
                    run_end = Some(&state.version);
                } else if let (Some(start), Some(end)) = (run_start.take(), run_end.take()) {
                    ranges = ranges.union(&Ranges::from_range_bounds(start.clone()..=end.clone()));
                }
            }
            if let (Some(start), Some(end)) = (run_start, run_end) {
                ranges = ranges.union(&Ranges::from_range_bounds(start.clone()..=end.clone()));
            }
        }
        Some(ReqSet {
            ranges,
            label: Some(req.to_string().into()),
        })
    }

    /// Hints appended to a conflict: dependencies that do not exist, and requirements that only
    /// yanked versions match.
    fn notes(&self) -> String {
        let mut notes = std::collections::BTreeSet::new();
        for ((pkg, version), deps) in &self.deps {
            for (dep, req) in deps {
                match self.versions.get(dep) {
                    Some(None) => {
                        notes.insert(format!(
                            "note: {pkg} {version} depends on {dep} {req}, but no package named {dep} exists"
                        ));
                    }
                    Some(Some(states)) if !is_exact_pin(req) => {
                        let yanked: Vec<String> = states
                            .iter()
                            .filter(|s| s.yanked && req.matches(&s.version))
                            .map(|s| s.version.to_string())
                            .collect();
                        let live = states.iter().any(|s| !s.yanked && req.matches(&s.version));
                        if !yanked.is_empty() && !live {
                            notes.insert(format!(
                                "note: {dep} {req} (required by {pkg} {version}) matches only yanked versions ({}); yanked versions are used only when pinned exactly, e.g. ={}",
                                yanked.join(", "),
                                yanked.last().map_or("", String::as_str)
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
        notes.into_iter().map(|n| format!("\n{n}")).collect()
    }
}

struct Provider<'a> {
    cache: &'a Cache,
    missing: RefCell<Option<Missing>>,
}

impl DependencyProvider for Provider<'_> {
    type P = Pkg;
    type V = Version;
    type VS = ReqSet;
    type M = String;
    type Err = NotFetched;
    type Priority = (u32, Reverse<usize>);

    fn prioritize(
        &self,
        package: &Pkg,
        range: &ReqSet,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let candidates = match self.cache.versions.get(package) {
            Some(Some(states)) => states.iter().filter(|s| range.contains(&s.version)).count(),
            _ => 0,
        };
        (stats.conflict_count(), Reverse(candidates))
    }

    fn choose_version(&self, package: &Pkg, range: &ReqSet) -> Result<Option<Version>, NotFetched> {
        match self.cache.versions.get(package) {
            Some(states) => Ok(states.as_ref().and_then(|states| {
                states
                    .iter()
                    .rev()
                    .find(|s| range.contains(&s.version))
                    .map(|s| s.version.clone())
            })),
            None => {
                *self.missing.borrow_mut() = Some(Missing::Versions(package.clone()));
                Err(NotFetched)
            }
        }
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, ReqSet, String>, NotFetched> {
        let Some(deps) = self.cache.deps.get(&(package.clone(), version.clone())) else {
            *self.missing.borrow_mut() = Some(Missing::Deps(package.clone(), version.clone()));
            return Err(NotFetched);
        };
        let mut constraints = Vec::with_capacity(deps.len());
        for (dep, req) in deps {
            match self.cache.requirement_set(dep, req) {
                Some(set) => constraints.push((dep.clone(), set)),
                None => {
                    *self.missing.borrow_mut() = Some(Missing::Versions(dep.clone()));
                    return Err(NotFetched);
                }
            }
        }
        Ok(Dependencies::Available(
            constraints
                .into_iter()
                .collect::<DependencyConstraints<_, _>>(),
        ))
    }
}

fn build_graph(
    cache: &Cache,
    root_pkg: &Pkg,
    root: PackageId,
    chosen: &HashMap<Pkg, Version>,
    transitive: bool,
) -> Result<DependencyGraph> {
    let id_of = |pkg: &Pkg, version: &Version| -> PackageId {
        if pkg == root_pkg {
            return root.clone();
        }
        let package = cache.spelled.get(pkg).unwrap_or(&pkg.package);
        // Use the registered spelling of the version (with any build metadata).
        let version = cache
            .versions
            .get(pkg)
            .and_then(Option::as_ref)
            .and_then(|states| states.iter().find(|s| &s.version == version))
            .map_or_else(|| version.clone(), |s| s.version.clone());
        package.at(version)
    };
    let mut edges: HashMap<Pkg, Vec<Pkg>> = HashMap::new();
    let mut nodes = BTreeMap::new();
    for (pkg, version) in chosen {
        let deps = cache
            .deps
            .get(&(pkg.clone(), version.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut ids = Vec::with_capacity(deps.len());
        for (dep, _) in deps {
            if let Some(v) = chosen.get(dep) {
                ids.push(id_of(dep, v));
                edges.entry(pkg.clone()).or_default().push(dep.clone());
            }
        }
        ids.sort();
        nodes.insert(id_of(pkg, version), ids);
    }
    if let Some(cycle) = find_cycle(&edges, root_pkg) {
        let path: Vec<String> = cycle
            .iter()
            .map(|pkg| id_of(pkg, &chosen[pkg]).to_string())
            .collect();
        return Err(Error::Conflict {
            root: root.to_string(),
            explanation: format!("dependency cycle: {}", path.join(" -> ")),
        });
    }
    if !transitive {
        let keep: HashSet<PackageId> = nodes
            .get(&root)
            .into_iter()
            .flatten()
            .cloned()
            .chain([root.clone()])
            .collect();
        nodes.retain(|id, _| keep.contains(id));
        for deps in nodes.values_mut() {
            deps.retain(|d| keep.contains(d));
        }
    }
    Ok(DependencyGraph { root, nodes })
}

/// A cycle reachable from `start`, as a path that begins and ends with the same package.
fn find_cycle(edges: &HashMap<Pkg, Vec<Pkg>>, start: &Pkg) -> Option<Vec<Pkg>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut marks: HashMap<Pkg, Mark> = HashMap::new();
    let mut path: Vec<Pkg> = vec![start.clone()];
    let mut stack: Vec<(Pkg, usize)> = vec![(start.clone(), 0)];
    marks.insert(start.clone(), Mark::Active);
    while let Some((node, next)) = stack.pop() {
        let children = edges.get(&node).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(child) = children.get(next) {
            stack.push((node, next + 1));
            match marks.get(child) {
                Some(Mark::Active) => {
                    let from = path.iter().position(|p| p == child).unwrap_or(0);
                    let mut cycle = path[from..].to_vec();
                    cycle.push(child.clone());
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    marks.insert(child.clone(), Mark::Active);
                    path.push(child.clone());
                    stack.push((child.clone(), 0));
                }
            }
        } else {
            marks.insert(node, Mark::Done);
            path.pop();
        }
    }
    None
}
