//! Dependency resolution, built on PubGrub, over anything that can answer two reads: the
//! versions of a package with their yank state, and the metadata of one version
//! ([`ResolutionSource`], implemented for every [`Registry`]).
//!
//! The solver is synchronous and the reads may not be, so resolution is a state machine
//! ([`Resolver`]) that says what it needs next; a driver fetches it and hands it back. There
//! are two drivers over the one machine: [`resolve_graph`] awaits a [`ResolutionSource`] (each
//! batch of reads concurrently), and [`resolve_graph_blocking`] calls a
//! [`BlockingResolutionSource`] — the fast path a backend may offer when its reads are plain
//! function calls (a database connection inside one blocking task).
//!
//! The solver runs over what has been fetched so far; when it needs a version list or a
//! version's dependencies that are not fetched yet it stops, the data is fetched (together with
//! a greedy guess of what it will need next), and the solver runs again. Each round fetches
//! something new, so resolution terminates; in the common case (no backtracking) the greedy
//! prefetch fetches everything before the first run.
//!
//! Two policies say which versions of one package a graph may hold ([`ResolutionPolicy`]): one
//! version of each package, or cargo's rule of one version per semver-compatible series. Under
//! cargo's rule the solver's packages are a name and a series (`itertools 0.13.x` and
//! `itertools 0.15.x` are two packages to PubGrub), and a requirement that spans several series
//! (`>=0.1, <3`) is a constraint on a proxy package whose versions are the versions it allows,
//! each depending on exactly that version of its own series — one solver for both policies.
//!
//! Version sets are built from the versions that exist: a requirement becomes the set of
//! existing versions that match it (pre-release rules of semver included) and are not yanked,
//! unless it is an exact pin. Because the universe of versions is finite and known, these sets
//! are exact, and PubGrub's set algebra stays correct.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::join_all;
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyConstraints, DependencyProvider, DerivationTree,
    External, PackageResolutionStatistics, PubGrubError, Ranges, Reporter, VersionSet,
};
use semver::{Op, Version, VersionReq};

use crate::error::{Error, Result};
use crate::metadata::PackageMetadata;
use crate::name::{PackageId, PackageRef};
use crate::registry::{DependencyGraph, GraphNode, Registry, VersionState};

/// The reads dependency resolution makes. Implemented for every [`Registry`]; a remote or
/// cached source can implement it directly.
#[async_trait]
pub trait ResolutionSource: Send + Sync {
    /// Every version of `package`, ascending, with its yank state. `NotFound` if the package has
    /// no versions.
    async fn version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>>;

    /// The metadata of one version. `NotFound` if absent.
    async fn metadata(&self, id: &PackageId) -> Result<PackageMetadata>;
}

#[async_trait]
impl<R: Registry + ?Sized> ResolutionSource for R {
    async fn version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        self.list_version_states(package).await
    }

    async fn metadata(&self, id: &PackageId) -> Result<PackageMetadata> {
        self.get(id).await
    }
}

/// The same two reads as plain calls: the synchronous fast path for backends whose reads need
/// no awaiting once they hold a connection (see [`resolve_graph_blocking`]).
pub trait BlockingResolutionSource {
    /// As [`ResolutionSource::version_states`].
    fn version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>>;

    /// As [`ResolutionSource::metadata`].
    fn metadata(&self, id: &PackageId) -> Result<PackageMetadata>;
}

/// Whether `requirement` pins one exact version (`=1.2.3`), the only kind that may select a
/// yanked version.
pub fn is_exact_pin(requirement: &VersionReq) -> bool {
    match requirement.comparators.as_slice() {
        [c] => c.op == Op::Exact && c.minor.is_some() && c.patch.is_some(),
        _ => false,
    }
}

/// Which versions of one package a resolved graph may hold together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ResolutionPolicy {
    /// One version of each package: the default for marketplace packages (a tool and its
    /// plugins share one copy of each dependency).
    #[default]
    OneVersion,
    /// Cargo's rule: one version per semver-compatible series — `1.x.y` for 1.0 and above,
    /// `0.x.y` per minor below it, `0.0.x` per patch — so `itertools 0.13` and `0.15` may
    /// both be in a graph, and a package may depend on another series of itself.
    SemverCompatible,
}

/// What [`Registry::resolve_dependencies`] resolves and under which policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ResolveOptions {
    /// The whole graph (`true`), or the root and its direct dependencies at the versions the
    /// whole resolution chose (`false`).
    pub transitive: bool,
    /// Which versions of one package may be used together.
    pub policy: ResolutionPolicy,
}

impl ResolveOptions {
    /// The whole graph, one version per package.
    pub const TRANSITIVE: Self = ResolveOptions {
        transitive: true,
        policy: ResolutionPolicy::OneVersion,
    };
    /// The root and its direct dependencies, one version per package.
    pub const DIRECT: Self = ResolveOptions {
        transitive: false,
        policy: ResolutionPolicy::OneVersion,
    };

    /// These options under `policy`.
    pub const fn with_policy(self, policy: ResolutionPolicy) -> Self {
        ResolveOptions { policy, ..self }
    }
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions::TRANSITIVE
    }
}

/// Resolves the dependency graph of `root` over `source`; the provided implementation of
/// [`Registry::resolve_dependencies`] (see there for the semantics and errors). Each batch of
/// reads the resolver asks for is made concurrently.
pub async fn resolve_graph<S: ResolutionSource + ?Sized>(
    source: &S,
    root: &PackageId,
    options: ResolveOptions,
) -> Result<DependencyGraph> {
    let mut resolver = Resolver::new(root, source.metadata(root).await?, options)?;
    loop {
        match resolver.next() {
            Step::Done(result) => return result,
            Step::Metadata(ids) => {
                let answers = join_all(ids.iter().map(|id| source.metadata(id))).await;
                resolver.supply_metadata(answers)?;
            }
            Step::Versions(packages) => {
                let answers = join_all(packages.iter().map(|p| source.version_states(p))).await;
                resolver.supply_versions(answers)?;
            }
        }
    }
}

/// [`resolve_graph`] over a synchronous source: the same resolver, every read a plain call.
/// A backend runs it inside one blocking task to resolve next to its data.
pub fn resolve_graph_blocking<S: BlockingResolutionSource + ?Sized>(
    source: &S,
    root: &PackageId,
    options: ResolveOptions,
) -> Result<DependencyGraph> {
    let mut resolver = Resolver::new(root, source.metadata(root)?, options)?;
    loop {
        match resolver.next() {
            Step::Done(result) => return result,
            Step::Metadata(ids) => {
                let answers = ids.iter().map(|id| source.metadata(id)).collect();
                resolver.supply_metadata(answers)?;
            }
            Step::Versions(packages) => {
                let answers = packages.iter().map(|p| source.version_states(p)).collect();
                resolver.supply_versions(answers)?;
            }
        }
    }
}

/// Refuses metadata that is not the version it was read for (a registry row holding another
/// version's signed metadata would otherwise be installed in its place): `Integrity`.
pub fn check_identity(asked: &PackageId, metadata: &PackageMetadata) -> Result<()> {
    if metadata.id.canonical() != asked.canonical() {
        return Err(Error::integrity(
            format!("the metadata read for {asked}"),
            asked,
            &metadata.id,
        ));
    }
    Ok(())
}

/// What the resolver needs next, or its result.
enum Step {
    /// The metadata of these versions.
    Metadata(Vec<PackageId>),
    /// The version lists of these packages.
    Versions(Vec<PackageRef>),
    /// Resolution is over.
    Done(Result<DependencyGraph>),
}

/// A breadth-first prefetch in progress: the versions of one level, and which read it waits
/// for.
struct Walk {
    level: Vec<(Named, Version)>,
    visited: HashSet<(Named, Version)>,
    phase: Phase,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Fetch the metadata of the level's versions not fetched yet.
    Metadata,
    /// Fetch the version lists of their dependencies not fetched yet.
    Versions,
    /// Move to the next level: the highest allowed version of each dependency.
    Advance,
}

/// Dependency resolution as a state machine: [`Resolver::next`] says what to read, the
/// driver supplies it. Independent of how the reads are made.
struct Resolver {
    cache: Cache,
    root: PackageId,
    root_pkg: Pkg,
    options: ResolveOptions,
    walk: Option<Walk>,
    /// What the last `Step::Metadata` or `Step::Versions` asked for, in order.
    asked_metadata: Vec<(Named, Version)>,
    asked_versions: Vec<Named>,
}

impl Resolver {
    /// A resolution of `asked` from its metadata (refused unless it is `asked`'s).
    fn new(asked: &PackageId, root_meta: PackageMetadata, options: ResolveOptions) -> Result<Self> {
        check_identity(asked, &root_meta)?;
        let root = root_meta.id.clone();
        let named = Named::new(root.package());
        let mut cache = Cache::default();
        let version = root.version.clone();
        cache.store_metadata(&named, version.clone(), root_meta);
        Ok(Resolver {
            cache,
            walk: Some(Walk::from(named.clone(), version.clone())),
            root_pkg: Pkg::of_version(named, &version, options.policy),
            root,
            options,
            asked_metadata: Vec::new(),
            asked_versions: Vec::new(),
        })
    }

    fn next(&mut self) -> Step {
        loop {
            if let Some(walk) = &mut self.walk {
                match walk.phase {
                    Phase::Metadata => {
                        walk.level.retain(|key| walk.visited.insert(key.clone()));
                        walk.phase = Phase::Versions;
                        let need: Vec<(Named, Version)> = walk
                            .level
                            .iter()
                            .filter(|key| !self.cache.deps.contains_key(*key))
                            .cloned()
                            .collect();
                        if !need.is_empty() {
                            let ids = need.iter().map(|(p, v)| p.package.at(v.clone())).collect();
                            self.asked_metadata = need;
                            return Step::Metadata(ids);
                        }
                    }
                    Phase::Versions => {
                        walk.phase = Phase::Advance;
                        let mut packages: Vec<Named> = Vec::new();
                        for key in &walk.level {
                            for (dep, _) in &self.cache.deps[key] {
                                if !self.cache.versions.contains_key(dep) && !packages.contains(dep)
                                {
                                    packages.push(dep.clone());
                                }
                            }
                        }
                        if !packages.is_empty() {
                            let refs = packages
                                .iter()
                                .map(|p| PackageRef::clone(&p.package))
                                .collect();
                            self.asked_versions = packages;
                            return Step::Versions(refs);
                        }
                    }
                    Phase::Advance => {
                        let mut next = Vec::new();
                        for key in &walk.level {
                            for (dep, req) in &self.cache.deps[key] {
                                if let Some(best) =
                                    self.cache.allowed(dep, req).and_then(|v| v.last().cloned())
                                {
                                    next.push((dep.clone(), best));
                                }
                            }
                        }
                        if next.is_empty() {
                            self.walk = None;
                        } else {
                            walk.level = next;
                            walk.phase = Phase::Metadata;
                        }
                    }
                }
                continue;
            }
            match self.solve() {
                Solved::Done(result) => return Step::Done(result),
                Solved::Missing(Missing::Versions(named)) => {
                    let package = PackageRef::clone(&named.package);
                    self.asked_versions = vec![named];
                    return Step::Versions(vec![package]);
                }
                Solved::Missing(Missing::Deps(named, version)) => {
                    self.walk = Some(Walk::from(named, version));
                }
            }
        }
    }

    fn supply_metadata(&mut self, answers: Vec<Result<PackageMetadata>>) -> Result<()> {
        for ((named, version), meta) in std::mem::take(&mut self.asked_metadata)
            .into_iter()
            .zip(answers)
        {
            let meta = meta?;
            let asked = named.package.at(version.clone());
            check_identity(&asked, &meta)?;
            self.cache.store_metadata(&named, version, meta);
        }
        Ok(())
    }

    fn supply_versions(&mut self, answers: Vec<Result<Vec<VersionState>>>) -> Result<()> {
        for (named, states) in std::mem::take(&mut self.asked_versions)
            .into_iter()
            .zip(answers)
        {
            let states = match states {
                Ok(states) => Some(states),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            self.cache.versions.insert(named, states);
        }
        Ok(())
    }

    /// Runs the solver over what is fetched.
    fn solve(&self) -> Solved {
        let provider = Provider {
            cache: &self.cache,
            policy: self.options.policy,
            missing: RefCell::new(None),
        };
        let outcome = pubgrub::resolve(&provider, self.root_pkg.clone(), self.root.version.clone());
        let missing = provider.missing.into_inner();
        match outcome {
            Ok(solution) => {
                let chosen: HashMap<Pkg, Version> = solution.into_iter().collect();
                Solved::Done(build_graph(
                    &self.cache,
                    &self.root_pkg,
                    &self.root,
                    &chosen,
                    self.options,
                ))
            }
            Err(PubGrubError::NoSolution(tree)) => {
                let exists =
                    |pkg: &Pkg| matches!(self.cache.versions.get(&pkg.named), Some(Some(_)));
                let (short, full) = explain(
                    tree,
                    &self.root_pkg,
                    &self.root.version,
                    self.options.policy,
                    exists,
                );
                let notes = self.cache.notes();
                let (explanation, trace) = match short {
                    Some(short) => (with_notes(short, &notes), full),
                    None => (with_notes(full, &notes), String::new()),
                };
                Solved::Done(Err(Error::Conflict {
                    root: self.root.to_string(),
                    explanation,
                    trace,
                }))
            }
            Err(_) => match missing {
                Some(missing) => Solved::Missing(missing),
                None => Solved::Done(Err(Error::Conflict {
                    root: self.root.to_string(),
                    explanation: "the resolver stopped without a reason".into(),
                    trace: String::new(),
                })),
            },
        }
    }
}

enum Solved {
    Done(Result<DependencyGraph>),
    Missing(Missing),
}

impl Walk {
    fn from(named: Named, version: Version) -> Self {
        Walk {
            level: vec![(named, version)],
            visited: HashSet::new(),
            phase: Phase::Metadata,
        }
    }
}

type Tree = DerivationTree<Pkg, ReqSet, String>;

/// Deepest derivation explained in PubGrub's own words; its reporter (and `collapse_no_versions`)
/// recurse once per level, so deeper trees — a conflict at the end of a chain thousands of
/// packages long — get a summary built without recursion.
const MAX_REPORTED_DEPTH: usize = 200;

/// The explanations of a failed resolution — the short one ([`short_explanation`]) when the
/// conflict has a shape it knows, and the solver's full derivation — and the tree taken apart
/// without recursion (dropping a deep tree the ordinary way would recurse once per level too).
fn explain(
    mut tree: Tree,
    root: &Pkg,
    version: &Version,
    policy: ResolutionPolicy,
    exists: impl Fn(&Pkg) -> bool,
) -> (Option<String>, String) {
    let short = short_explanation(&tree, root, version, policy, exists);
    let full = if depth(&tree) <= MAX_REPORTED_DEPTH {
        tree.collapse_no_versions();
        DefaultStringReporter::report(&tree)
    } else {
        summarise(&tree)
    };
    dismantle(tree);
    (short, full)
}

/// "`.0` depends on `.1` `.2`", as a derivation states it.
type DependsOn<'a> = (&'a Pkg, &'a Pkg, &'a ReqSet);

/// The external facts of a derivation, in the tree's order, walked with an explicit stack (a
/// deep tree would overflow a recursive walk).
fn externals(tree: &Tree) -> Vec<&External<Pkg, ReqSet, String>> {
    let mut found = Vec::new();
    let mut stack = vec![tree];
    while let Some(node) = stack.pop() {
        match node {
            DerivationTree::Derived(derived) => {
                stack.push(&derived.cause2);
                stack.push(&derived.cause1);
            }
            DerivationTree::External(external) => found.push(external),
        }
    }
    found
}

/// The facts a derivation rests on, each once, in the tree's order: who depends on what, and
/// which requirements nothing satisfies.
fn facts(tree: &Tree) -> (Vec<DependsOn<'_>>, Vec<(&Pkg, &ReqSet)>) {
    let mut depends = Vec::new();
    let mut nothing = Vec::new();
    let mut seen_depends = HashSet::new();
    let mut seen_nothing = HashSet::new();
    for external in externals(tree) {
        match external {
            External::FromDependencyOf(pkg, _, dep, set)
                if seen_depends.insert((pkg, dep, set)) =>
            {
                depends.push((pkg, dep, set));
            }
            External::NoVersions(pkg, set) if seen_nothing.insert((pkg, set)) => {
                nothing.push((pkg, set));
            }
            _ => {}
        }
    }
    (depends, nothing)
}

/// A short explanation of a conflict, in names and requirements as they were written: the
/// package needed in two versions that cannot be used together (or in a version that does not
/// exist), and for each of those needs the chain of requirements from the root that leads to
/// it. `None` when the derivation has no such shape (the full one is shown instead).
fn short_explanation(
    tree: &Tree,
    root: &Pkg,
    version: &Version,
    policy: ResolutionPolicy,
    exists: impl Fn(&Pkg) -> bool,
) -> Option<String> {
    let (depends, nothing) = facts(tree);
    let mut children: HashMap<&Pkg, Vec<(&Pkg, &ReqSet)>> = HashMap::new();
    for (pkg, dep, set) in &depends {
        children.entry(*pkg).or_default().push((*dep, *set));
    }
    // The chain of requirements from the root to `holder`, breadth first over the facts.
    let chain = |holder: &Pkg| -> Option<String> {
        let mut came_from: HashMap<&Pkg, (&Pkg, &ReqSet)> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([root]);
        let mut seen: HashSet<&Pkg> = HashSet::from([root]);
        while let Some(at) = queue.pop_front() {
            if at == holder {
                break;
            }
            for (dep, set) in children.get(at).into_iter().flatten() {
                if seen.insert(dep) {
                    came_from.insert(dep, (at, set));
                    queue.push_back(dep);
                }
            }
        }
        let mut steps = Vec::new();
        let mut at = holder;
        while at != root {
            let (parent, set) = came_from.get(at)?;
            steps.push(format!("{at} {set}"));
            at = parent;
        }
        steps.reverse();
        let mut line = format!("{root} {version}");
        for (i, step) in steps.iter().enumerate() {
            line.push_str(if i == 0 {
                " depends on "
            } else {
                ", which depends on "
            });
            line.push_str(step);
        }
        Some(line)
    };
    let needs = |holder: &Pkg, dep: &Pkg, set: &ReqSet| -> Option<String> {
        let line = chain(holder)?;
        Some(if holder == root {
            format!("{line} depends on {dep} {set}")
        } else {
            format!("{line}, which depends on {dep} {set}")
        })
    };
    let mut required: HashMap<&Pkg, Vec<(&Pkg, &ReqSet)>> = HashMap::new();
    for (holder, dep, set) in &depends {
        let earlier = required.entry(*dep).or_default();
        if let Some((other_holder, other_set)) =
            earlier.iter().find(|(_, other)| other.is_disjoint(set))
        {
            let first = needs(other_holder, dep, other_set)?;
            let second = needs(holder, dep, set)?;
            let rule = match policy {
                ResolutionPolicy::OneVersion => "a graph holds one version of each package",
                ResolutionPolicy::SemverCompatible => {
                    "a graph holds one version of each semver-compatible series"
                }
            };
            return Some(format!(
                "{dep} is required in two versions that cannot both be used ({rule}):\n  {first}\n  {second}"
            ));
        }
        earlier.push((*holder, *set));
    }
    // A package that does not exist at all is explained by its note. Requirement sets are
    // built from the versions that exist, so one that none matches is empty where it is stated;
    // otherwise the solver says no version is left in it (a part of the requirement, which is
    // shown as written).
    let empty = depends
        .iter()
        .find(|(_, dep, set)| set.ranges == Ranges::empty() && exists(dep));
    let left_empty = || {
        nothing
            .iter()
            .filter(|(pkg, _)| exists(pkg))
            .find_map(|(pkg, none)| {
                depends
                    .iter()
                    .find(|(_, dep, set)| dep == pkg && none.ranges.subset_of(&set.ranges))
            })
    };
    let (holder, pkg, set) = empty.or_else(left_empty)?;
    let line = needs(holder, pkg, set)?;
    Some(format!("no version of {pkg} matches {set}:\n  {line}"))
}

/// The explanation followed by its notes; a one-line explanation that a note states in full
/// ("a depends on b ^1" and "note: a depends on b ^1, but no package named b exists") is
/// replaced by that note, so the reason is said once.
fn with_notes(explanation: String, notes: &str) -> String {
    let line = explanation.trim();
    if !line.contains('\n') {
        let notes_lines = notes.lines().filter(|n| !n.is_empty());
        if let Some(full) = notes_lines
            .clone()
            .find_map(|n| n.strip_prefix("note: ").filter(|n| n.starts_with(line)))
        {
            let rest: String = notes_lines
                .filter(|n| n.strip_prefix("note: ") != Some(full))
                .map(|n| format!("\n{n}"))
                .collect();
            return format!("{full}{rest}");
        }
    }
    explanation + notes
}

/// The depth of a derivation tree, walked with an explicit stack.
fn depth(tree: &Tree) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(tree, 1usize)];
    while let Some((node, level)) = stack.pop() {
        deepest = deepest.max(level);
        if let DerivationTree::Derived(derived) = node {
            stack.push((&derived.cause1, level + 1));
            stack.push((&derived.cause2, level + 1));
        }
    }
    deepest
}

/// The facts a deep tree was derived from, in order, the middle of a long list elided: what each
/// package needs, and which requirement nothing satisfies.
fn summarise(tree: &Tree) -> String {
    let mut facts: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for external in externals(tree) {
        let fact = match external {
            External::NotRoot(..) => continue,
            External::NoVersions(pkg, set) => format!("no version of {pkg} matches {set}"),
            External::FromDependencyOf(pkg, set, dep, dep_set) => {
                format!("{pkg} {set} depends on {dep} {dep_set}")
            }
            External::Custom(pkg, set, why) => format!("{pkg} {set}: {why}"),
        };
        if seen.insert(fact.clone()) {
            facts.push(fact);
        }
    }
    const EACH_END: usize = 6;
    let mut out =
        String::from("no versions satisfy every requirement; the requirements that clash:");
    let shown: Vec<&String> = if facts.len() > 2 * EACH_END {
        facts
            .iter()
            .take(EACH_END)
            .chain(facts.iter().skip(facts.len() - EACH_END))
            .collect()
    } else {
        facts.iter().collect()
    };
    for (i, fact) in shown.iter().enumerate() {
        if facts.len() > 2 * EACH_END && i == EACH_END {
            out.push_str(&format!("\n  … {} more …", facts.len() - 2 * EACH_END));
        }
        out.push_str(&format!("\n  {fact}"));
    }
    out
}

/// Drops a derivation tree level by level: an `Arc` this tree holds alone is opened and its
/// causes queued, a shared one just released.
fn dismantle(tree: Tree) {
    let mut stack: Vec<Tree> = vec![tree];
    while let Some(node) = stack.pop() {
        if let DerivationTree::Derived(derived) = node {
            for cause in [derived.cause1, derived.cause2] {
                if let Ok(owned) = Arc::try_unwrap(cause) {
                    stack.push(owned);
                }
            }
        }
    }
}

/// A package by name: identified by its canonical key, shown as spelled. What reads are made
/// for (versions and metadata are per name).
#[derive(Clone, Debug)]
struct Named {
    key: Arc<str>,
    package: Arc<PackageRef>,
}

impl Named {
    fn new(package: PackageRef) -> Self {
        Named {
            key: package.canonical().into(),
            package: Arc::new(package),
        }
    }
}

impl PartialEq for Named {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Named {}
impl Hash for Named {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}
impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.package.fmt(f)
    }
}

/// A semver-compatible series: what cargo allows one version of per graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Series {
    /// `x.*.*` for x ≥ 1.
    Major(u64),
    /// `0.x.*` for x ≥ 1.
    Minor(u64),
    /// `0.0.x`.
    Patch(u64),
}

impl Series {
    fn of(version: &Version) -> Self {
        match (version.major, version.minor) {
            (0, 0) => Series::Patch(version.patch),
            (0, minor) => Series::Minor(minor),
            (major, _) => Series::Major(major),
        }
    }
}

/// Which versions of a name a solver package stands for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Part {
    /// Every version (one version per package).
    Whole,
    /// The versions of one series (cargo's rule).
    Series(Series),
    /// A proxy for a requirement that spans several series (cargo's rule), by its text: its
    /// versions are those the requirement allows, version v depending on exactly v of v's
    /// series.
    Spanning(Arc<str>),
}

/// A package as the solver sees it: a name, and which of its versions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Pkg {
    named: Named,
    part: Part,
}

impl Pkg {
    /// The solver package that `version` of `named` belongs to under `policy`.
    fn of_version(named: Named, version: &Version, policy: ResolutionPolicy) -> Self {
        let part = match policy {
            ResolutionPolicy::OneVersion => Part::Whole,
            ResolutionPolicy::SemverCompatible => Part::Series(Series::of(version)),
        };
        Pkg { named, part }
    }
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.named.fmt(f)
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
impl Hash for ReqSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ranges.hash(state);
    }
}

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

/// What the solver needed and the cache did not have.
enum Missing {
    Versions(Named),
    Deps(Named, Version),
}

#[derive(Debug, thiserror::Error)]
#[error("dependency data not fetched yet")]
struct NotFetched;

type DepList = Vec<(Named, VersionReq)>;

#[derive(Default)]
struct Cache {
    /// Version lists; `None` when the package does not exist.
    versions: HashMap<Named, Option<Vec<VersionState>>>,
    /// Direct dependencies of fetched versions, plain and renamed.
    deps: HashMap<(Named, Version), DepList>,
    /// The metadata of fetched versions, handed to the caller with the graph.
    metadata: HashMap<(Named, Version), PackageMetadata>,
}

impl Cache {
    fn store_metadata(&mut self, named: &Named, version: Version, metadata: PackageMetadata) {
        let list = metadata
            .all_dependencies()
            .map(|(p, req)| (Named::new(p.clone()), req.clone()))
            .collect();
        self.deps.insert((named.clone(), version.clone()), list);
        self.metadata.insert((named.clone(), version), metadata);
    }

    /// The existing versions of `named` that `req` may select, ascending.
    fn allowed(&self, named: &Named, req: &VersionReq) -> Option<Vec<Version>> {
        let states = self.versions.get(named)?.as_ref()?;
        let pin = is_exact_pin(req);
        Some(
            states
                .iter()
                .filter(|s| (pin || !s.is_yanked()) && req.matches(&s.version))
                .map(|s| s.version.clone())
                .collect(),
        )
    }

    /// The constraint `req` on `dep` is under `policy`: the solver package it constrains
    /// and the exact set of existing versions it may select, as ranges over the known
    /// versions. `None` when the versions of `dep` are not fetched yet.
    fn constraint(
        &self,
        dep: &Named,
        req: &VersionReq,
        policy: ResolutionPolicy,
    ) -> Option<(Pkg, ReqSet)> {
        let states = self.versions.get(dep)?;
        let mut ranges = Ranges::empty();
        // The series of the allowed versions: one, several (`None`), or none yet.
        let mut series: Option<Option<Series>> = None;
        if let Some(states) = states {
            let pin = is_exact_pin(req);
            let mut run_start: Option<&Version> = None;
            let mut run_end: Option<&Version> = None;
            for state in states {
                let ok = (pin || !state.is_yanked()) && req.matches(&state.version);
                if ok {
                    let this = Series::of(&state.version);
                    series = match series {
                        None => Some(Some(this)),
                        Some(Some(seen)) if seen == this => Some(Some(seen)),
                        Some(_) => Some(None),
                    };
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
        let label: Arc<str> = req.to_string().into();
        let part = match (policy, series) {
            (ResolutionPolicy::OneVersion, _) => Part::Whole,
            (ResolutionPolicy::SemverCompatible, Some(Some(one))) => Part::Series(one),
            // Several series, or none: a proxy (with no versions, the requirement fails on
            // its own).
            (ResolutionPolicy::SemverCompatible, _) => Part::Spanning(label.clone()),
        };
        let pkg = Pkg {
            named: dep.clone(),
            part,
        };
        let set = ReqSet {
            ranges,
            label: Some(label),
        };
        Some((pkg, set))
    }

    /// Hints appended to a conflict: dependencies that do not exist, and requirements that only
    /// yanked versions match.
    fn notes(&self) -> String {
        let mut notes = std::collections::BTreeSet::new();
        for ((named, version), deps) in &self.deps {
            for (dep, req) in deps {
                match self.versions.get(dep) {
                    Some(None) => {
                        notes.insert(format!(
                            "note: {named} {version} depends on {dep} {req}, but no package named {dep} exists"
                        ));
                    }
                    Some(Some(states)) if !is_exact_pin(req) => {
                        let yanked: Vec<String> = states
                            .iter()
                            .filter(|s| s.is_yanked() && req.matches(&s.version))
                            .map(|s| s.version.to_string())
                            .collect();
                        let live = states
                            .iter()
                            .any(|s| !s.is_yanked() && req.matches(&s.version));
                        if !yanked.is_empty() && !live {
                            notes.insert(format!(
                                "note: {dep} {req} (required by {named} {version}) matches only yanked versions ({}); yanked versions are used only when pinned exactly, e.g. ={}",
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
    policy: ResolutionPolicy,
    missing: RefCell<Option<Missing>>,
}

impl Provider<'_> {
    /// The versions of `pkg`, ascending: those of its name, of its series when it has one.
    fn candidates<'s>(
        &'s self,
        pkg: &'s Pkg,
    ) -> Option<impl DoubleEndedIterator<Item = &'s Version>> {
        let states = self.cache.versions.get(&pkg.named)?;
        Some(
            states
                .iter()
                .flatten()
                .map(|s| &s.version)
                .filter(move |v| match pkg.part {
                    Part::Series(series) => Series::of(v) == series,
                    Part::Whole | Part::Spanning(_) => true,
                }),
        )
    }
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
        let candidates = self
            .candidates(package)
            .map_or(0, |c| c.filter(|v| range.contains(v)).count());
        (stats.conflict_count(), Reverse(candidates))
    }

    fn choose_version(&self, package: &Pkg, range: &ReqSet) -> Result<Option<Version>, NotFetched> {
        match self.candidates(package) {
            Some(mut candidates) => Ok(candidates.rfind(|v| range.contains(v)).cloned()),
            None => {
                *self.missing.borrow_mut() = Some(Missing::Versions(package.named.clone()));
                Err(NotFetched)
            }
        }
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, ReqSet, String>, NotFetched> {
        if let Part::Spanning(_) = package.part {
            // A proxy's version v is exactly v of its series.
            let exact = Pkg::of_version(package.named.clone(), version, self.policy);
            let set = ReqSet {
                ranges: Ranges::singleton(version.clone()),
                label: Some(format!("={version}").into()),
            };
            return Ok(Dependencies::Available(
                [(exact, set)]
                    .into_iter()
                    .collect::<DependencyConstraints<_, _>>(),
            ));
        }
        let key = (package.named.clone(), version.clone());
        let Some(deps) = self.cache.deps.get(&key) else {
            *self.missing.borrow_mut() = Some(Missing::Deps(key.0, key.1));
            return Err(NotFetched);
        };
        let mut constraints: Vec<(Pkg, ReqSet)> = Vec::with_capacity(deps.len());
        for (dep, req) in deps {
            let Some((pkg, set)) = self.cache.constraint(dep, req, self.policy) else {
                *self.missing.borrow_mut() = Some(Missing::Versions(dep.clone()));
                return Err(NotFetched);
            };
            // One package required twice (under two names) must meet both requirements.
            match constraints.iter_mut().find(|(p, _)| *p == pkg) {
                Some((_, earlier)) => {
                    let both = earlier.intersection(&set);
                    *earlier = match both.label {
                        Some(_) => both,
                        None => ReqSet {
                            label: Some(format!("{earlier} and {set}").into()),
                            ..both
                        },
                    };
                }
                None => constraints.push((pkg, set)),
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
    root: &PackageId,
    chosen: &HashMap<Pkg, Version>,
    options: ResolveOptions,
) -> Result<DependencyGraph> {
    // Every chosen version had its dependencies asked for, so its metadata was fetched; the
    // metadata carries the registered spelling (with any build metadata).
    let metadata_of = |pkg: &Pkg, version: &Version| -> Result<&PackageMetadata> {
        cache
            .metadata
            .get(&(pkg.named.clone(), version.clone()))
            .ok_or_else(|| Error::Conflict {
                root: root.to_string(),
                explanation: format!("the resolver chose {pkg} {version} without reading it"),
                trace: String::new(),
            })
    };
    // The package and version a constraint was met by: a proxy's choice is a version of its
    // series.
    let met_by = |pkg: Pkg| -> Option<(Pkg, &Version)> {
        let version = chosen.get(&pkg)?;
        Some(match pkg.part {
            Part::Spanning(_) => (Pkg::of_version(pkg.named, version, options.policy), version),
            Part::Whole | Part::Series(_) => (pkg, version),
        })
    };
    let mut edges: HashMap<Pkg, Vec<Pkg>> = HashMap::new();
    let mut nodes = BTreeMap::new();
    for (pkg, version) in chosen {
        if let Part::Spanning(_) = pkg.part {
            continue;
        }
        let deps = cache
            .deps
            .get(&(pkg.named.clone(), version.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut ids = Vec::with_capacity(deps.len());
        for (dep, req) in deps {
            let target = cache
                .constraint(dep, req, options.policy)
                .and_then(|(dep_pkg, _)| met_by(dep_pkg));
            if let Some((dep_pkg, v)) = target {
                ids.push(metadata_of(&dep_pkg, v)?.id.clone());
                edges.entry(pkg.clone()).or_default().push(dep_pkg);
            }
        }
        ids.sort();
        ids.dedup();
        let metadata = metadata_of(pkg, version)?.clone();
        // A yanked version is chosen only by an exact pin; the node says so, with why.
        let yanked = cache
            .versions
            .get(&pkg.named)
            .and_then(Option::as_ref)
            .and_then(|states| states.iter().find(|s| &s.version == version))
            .and_then(|s| s.yanked.clone());
        nodes.insert(
            metadata.id.clone(),
            GraphNode::new(metadata, ids).with_yank(yanked),
        );
    }
    if let Some(cycle) = find_cycle(&edges, root_pkg) {
        let mut path = Vec::with_capacity(cycle.len());
        for pkg in &cycle {
            path.push(metadata_of(pkg, &chosen[pkg])?.id.to_string());
        }
        return Err(Error::Conflict {
            root: root.to_string(),
            explanation: format!("dependency cycle: {}", path.join(" -> ")),
            trace: String::new(),
        });
    }
    if !options.transitive {
        let keep: HashSet<PackageId> = nodes
            .get(root)
            .into_iter()
            .flat_map(|node| node.dependencies.iter().cloned())
            .chain([root.clone()])
            .collect();
        nodes.retain(|id, _| keep.contains(id));
        for node in nodes.values_mut() {
            node.dependencies.retain(|d| keep.contains(d));
        }
    }
    Ok(DependencyGraph {
        root: root.clone(),
        nodes,
    })
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
