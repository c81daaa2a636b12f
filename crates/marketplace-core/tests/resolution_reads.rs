//! The resolver reads each version's metadata once and each package's version list once, and
//! its two drivers (awaiting and blocking) give the same graph from the same reads; conflicts
//! are explained briefly; and the two resolution policies (one version per package, cargo's
//! one version per semver-compatible series) hold what they say, renamed dependencies and
//! dependencies on another series of the package itself included.

use std::collections::BTreeMap;
use std::sync::Mutex;

use marketplace_core::semver::VersionReq;
use marketplace_core::{
    BlockingResolutionSource, ContentHash, Error, PackageId, PackageMetadata, PackageRef,
    RenamedDependency, ResolutionPolicy, ResolutionSource, ResolveOptions, Result, VersionState,
    async_trait, resolve_graph, resolve_graph_blocking,
};

/// A universe of versions that counts every read.
#[derive(Default)]
struct Counting {
    versions: BTreeMap<String, Vec<PackageMetadata>>,
    metadata_reads: Mutex<BTreeMap<String, u32>>,
    version_reads: Mutex<BTreeMap<String, u32>>,
}

impl Counting {
    fn add(&mut self, id: &str, deps: &[(&str, &str)]) {
        // (name, requirement) pairs
        let id: PackageId = id.parse().expect("id");
        let mut m = PackageMetadata::new(id.clone(), "", ContentHash::sha256(b""), 0);
        for (dep, req) in deps {
            let requirement = VersionReq::parse(req).expect("req");
            // `alias=package` is a renamed dependency.
            match dep.split_once('=') {
                Some((alias, package)) => {
                    m.renamed_dependencies.insert(
                        alias.parse().expect("alias"),
                        RenamedDependency {
                            package: package.parse().expect("ref"),
                            requirement,
                        },
                    );
                }
                None => {
                    m.dependencies
                        .insert(dep.parse().expect("ref"), requirement);
                }
            }
        }
        self.versions
            .entry(id.package().canonical())
            .or_default()
            .push(m);
    }

    fn read_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        *self
            .version_reads
            .lock()
            .unwrap()
            .entry(package.canonical())
            .or_default() += 1;
        let list = self
            .versions
            .get(&package.canonical())
            .ok_or_else(|| Error::not_found(package))?;
        Ok(list
            .iter()
            .map(|m| VersionState::new(m.id.version.clone(), None))
            .collect())
    }

    fn read_metadata(&self, id: &PackageId) -> Result<PackageMetadata> {
        *self
            .metadata_reads
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default() += 1;
        self.versions
            .get(&id.package().canonical())
            .and_then(|list| list.iter().find(|m| m.id.version == id.version))
            .cloned()
            .ok_or_else(|| Error::not_found(id))
    }

    fn reset(&self) {
        self.metadata_reads.lock().unwrap().clear();
        self.version_reads.lock().unwrap().clear();
    }
}

#[async_trait]
impl ResolutionSource for Counting {
    async fn version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        self.read_states(package)
    }
    async fn metadata(&self, id: &PackageId) -> Result<PackageMetadata> {
        self.read_metadata(id)
    }
}

impl BlockingResolutionSource for Counting {
    fn version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        self.read_states(package)
    }
    fn metadata(&self, id: &PackageId) -> Result<PackageMetadata> {
        self.read_metadata(id)
    }
}

fn universe() -> Counting {
    let mut u = Counting::default();
    u.add("r/base@1.0.0", &[]);
    u.add("r/base@1.1.0", &[]);
    u.add("r/left@1.0.0", &[("r/base", "^1")]);
    u.add("r/right@1.0.0", &[("r/base", "^1.1")]);
    u.add("r/app@1.0.0", &[("r/left", "^1"), ("r/right", "^1")]);
    u
}

#[test]
fn each_read_is_made_once_and_both_drivers_agree() {
    let u = universe();
    let root: PackageId = "r/app@1.0.0".parse().unwrap();
    let graph =
        poll_to_end(resolve_graph(&u, &root, ResolveOptions::TRANSITIVE)).expect("resolves");
    assert_eq!(graph.len(), 4);
    for (id, node) in &graph.nodes {
        assert_eq!(&node.metadata.id, id, "each node carries its own metadata");
    }
    let metadata = u.metadata_reads.lock().unwrap().clone();
    assert!(
        metadata.values().all(|n| *n == 1),
        "metadata read more than once: {metadata:?}"
    );
    for id in graph.packages() {
        assert_eq!(metadata.get(&id.to_string()), Some(&1), "{id} read once");
    }
    let versions = u.version_reads.lock().unwrap().clone();
    assert!(
        versions.values().all(|n| *n == 1),
        "version lists read more than once: {versions:?}"
    );

    u.reset();
    let blocking = resolve_graph_blocking(&u, &root, ResolveOptions::TRANSITIVE).expect("resolves");
    assert_eq!(blocking, graph, "the blocking driver gives the same graph");
    assert!(u.metadata_reads.lock().unwrap().values().all(|n| *n == 1));
}

/// The async driver over a source whose futures are always ready needs no runtime: poll once.
fn poll_to_end<F: std::future::Future>(future: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

#[test]
fn a_conflict_at_the_end_of_a_deep_chain_is_explained_without_overflowing_the_stack() {
    let mut u = Counting::default();
    const DEPTH: usize = 3000;
    u.add("deep/tail@1.0.0", &[]);
    for i in 0..DEPTH {
        let next = if i + 1 == DEPTH {
            ("deep/tail".to_owned(), "^2".to_owned())
        } else {
            (format!("deep/p{}", i + 1), "^1".to_owned())
        };
        u.add(
            &format!("deep/p{i}@1.0.0"),
            &[(next.0.as_str(), next.1.as_str())],
        );
    }
    let root: PackageId = "deep/p0@1.0.0".parse().unwrap();
    // The test thread's default stack (2 MiB) is what a tool's own threads have.
    let result = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            resolve_graph_blocking(&u, &root, ResolveOptions::TRANSITIVE).map(|g| g.len())
        })
        .unwrap()
        .join()
        .expect("resolution must not overflow the stack");
    match result {
        Err(Error::Conflict { explanation, .. }) => {
            assert!(explanation.contains("deep/tail"), "{explanation}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// A conflict is explained in a few lines of names and requirements as written: the package
/// needed in two versions, and the chain of requirements leading to each need. The solver's
/// own derivation (its range notation, "forbidden") is kept apart, for `--verbose`.
#[test]
fn a_conflict_is_explained_briefly_with_each_chain_of_requirements() {
    let mut u = Counting::default();
    u.add("b@1.0.0", &[]);
    u.add("b@2.0.0", &[]);
    u.add("c@1.0.0", &[("b", "^2")]);
    u.add("c@1.1.0", &[("b", "^2")]);
    u.add("d@1.0.0", &[("c", "^1")]);
    u.add("a@1.0.0", &[("b", "^1"), ("d", "^1")]);
    let root: PackageId = "a@1.0.0".parse().unwrap();
    match resolve_graph_blocking(&u, &root, ResolveOptions::TRANSITIVE) {
        Err(Error::Conflict {
            explanation, trace, ..
        }) => {
            let lines: Vec<&str> = explanation.lines().collect();
            assert_eq!(lines.len(), 3, "{explanation}");
            assert!(
                lines[0].starts_with("b is required in two versions that cannot both be used"),
                "{explanation}"
            );
            let mut chains: Vec<&str> = lines[1..].iter().map(|l| l.trim()).collect();
            chains.sort();
            assert_eq!(
                chains,
                [
                    "a 1.0.0 depends on b ^1",
                    "a 1.0.0 depends on d ^1, which depends on c ^1, which depends on b ^2",
                ]
            );
            for internal in [">=", "<=", "∅", "forbidden", "Because"] {
                assert!(!explanation.contains(internal), "{internal}: {explanation}");
            }
            assert!(trace.contains("Because"), "{trace}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }

    // A requirement that no existing version matches names it and its chain.
    let mut u = Counting::default();
    u.add("b@1.0.0", &[]);
    u.add("d@1.0.0", &[("b", "^3")]);
    u.add("a@1.0.0", &[("d", "^1")]);
    let root: PackageId = "a@1.0.0".parse().unwrap();
    match resolve_graph_blocking(&u, &root, ResolveOptions::TRANSITIVE) {
        Err(Error::Conflict { explanation, .. }) => assert_eq!(
            explanation,
            "no version of b matches ^3:\n  a 1.0.0 depends on d ^1, which depends on b ^3"
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

const CARGO: ResolveOptions =
    ResolveOptions::TRANSITIVE.with_policy(ResolutionPolicy::SemverCompatible);

fn ids(u: &Counting, root: &str, options: ResolveOptions) -> Result<Vec<String>> {
    let root: PackageId = root.parse().unwrap();
    let graph = resolve_graph_blocking(u, &root, options)?;
    Ok(graph.packages().map(ToString::to_string).collect())
}

fn conflict(u: &Counting, root: &str, options: ResolveOptions) -> String {
    match ids(u, root, options) {
        Err(Error::Conflict { explanation, .. }) => explanation,
        other => panic!("expected a conflict resolving {root}, got {other:?}"),
    }
}

#[test]
fn cargo_policy_holds_one_version_per_semver_compatible_series() {
    let mut u = Counting::default();
    for v in ["0.13.0", "0.13.2", "0.15.0", "1.0.0", "1.4.0", "2.0.0"] {
        u.add(&format!("itertools@{v}"), &[]);
    }
    u.add("a@1.0.0", &[("itertools", "^0.13")]);
    u.add("b@1.0.0", &[("itertools", "^0.15")]);
    u.add("c@1.0.0", &[("itertools", "^1.2")]);
    u.add("d@1.0.0", &[("itertools", "=1.0.0")]);
    u.add("app@1.0.0", &[("a", "^1"), ("b", "^1"), ("c", "^1")]);
    u.add("clash@1.0.0", &[("c", "^1"), ("d", "^1")]);
    assert_eq!(
        ids(&u, "app@1.0.0", CARGO).unwrap(),
        [
            "a@1.0.0",
            "app@1.0.0",
            "b@1.0.0",
            "c@1.0.0",
            "itertools@0.13.2",
            "itertools@0.15.0",
            "itertools@1.4.0"
        ]
    );
    let one = conflict(&u, "app@1.0.0", ResolveOptions::TRANSITIVE);
    assert!(
        one.starts_with("itertools is required in two versions that cannot both be used (a graph holds one version of each package)"),
        "{one}"
    );
    // Within one series cargo's rule still allows one version.
    let series = conflict(&u, "clash@1.0.0", CARGO);
    assert!(
        series.starts_with("itertools is required in two versions that cannot both be used (a graph holds one version of each semver-compatible series)"),
        "{series}"
    );
    assert!(
        series.contains("itertools ^1.2") && series.contains("itertools =1.0.0"),
        "{series}"
    );
    // Both drivers agree, and each read is still made once.
    u.reset();
    let root: PackageId = "app@1.0.0".parse().unwrap();
    let awaited = poll_to_end(resolve_graph(&u, &root, CARGO)).unwrap();
    assert_eq!(awaited, resolve_graph_blocking(&u, &root, CARGO).unwrap());
    u.reset();
    resolve_graph_blocking(&u, &root, CARGO).unwrap();
    for (what, reads) in [
        ("metadata", &u.metadata_reads),
        ("version list", &u.version_reads),
    ] {
        let reads = reads.lock().unwrap();
        assert!(
            reads.values().all(|n| *n == 1),
            "{what} read twice: {reads:?}"
        );
    }
}

#[test]
fn a_requirement_across_series_meets_the_highest_version_it_allows() {
    let mut u = Counting::default();
    for v in ["0.1.0", "0.2.0", "0.2.5", "1.0.0"] {
        u.add(&format!("x@{v}"), &[]);
    }
    u.add("wide@1.0.0", &[("x", ">=0.1, <1")]);
    u.add("old@1.0.0", &[("x", "^0.1")]);
    u.add("app@1.0.0", &[("wide", "^1"), ("old", "^1")]);
    assert_eq!(
        ids(&u, "app@1.0.0", CARGO).unwrap(),
        ["app@1.0.0", "old@1.0.0", "wide@1.0.0", "x@0.1.0", "x@0.2.5"]
    );
    // The graph's edges point at the versions chosen for each requirement.
    let root: PackageId = "wide@1.0.0".parse().unwrap();
    let graph = resolve_graph_blocking(&u, &root, CARGO).unwrap();
    assert_eq!(
        graph.dependencies_of(&root),
        ["x@0.2.5".parse::<PackageId>().unwrap()]
    );
    // A requirement across series that nothing meets says so.
    u.add("none@1.0.0", &[("x", ">=3, <5")]);
    assert_eq!(
        conflict(&u, "none@1.0.0", CARGO),
        "no version of x matches >=3, <5:\n  none 1.0.0 depends on x >=3, <5"
    );
}

#[test]
fn renamed_dependencies_and_the_semver_trick_resolve_under_cargo_policy() {
    let mut u = Counting::default();
    for v in ["0.5.1", "0.6.0", "0.6.4"] {
        u.add(&format!("rand_core@{v}"), &[]);
    }
    // One package twice: under its own name and under an alias.
    u.add(
        "rand@0.8.0",
        &[("rand_core", "^0.6"), ("rand_core_05=rand_core", "^0.5")],
    );
    assert_eq!(
        ids(&u, "rand@0.8.0", CARGO).unwrap(),
        ["rand@0.8.0", "rand_core@0.5.1", "rand_core@0.6.4"]
    );
    assert_eq!(
        conflict(&u, "rand@0.8.0", ResolveOptions::TRANSITIVE),
        "no version of rand_core matches ^0.6 and ^0.5:\n  rand 0.8.0 depends on rand_core ^0.6 and ^0.5"
    );
    // Under one version per package two requirements on one package both hold.
    u.add(
        "both@1.0.0",
        &[("rand_core", "^0.6"), ("exact=rand_core", "=0.6.0")],
    );
    assert_eq!(
        ids(&u, "both@1.0.0", ResolveOptions::TRANSITIVE).unwrap(),
        ["both@1.0.0", "rand_core@0.6.0"]
    );
    // The semver trick: libc 0.1 re-exports libc 0.2.
    u.add("libc@0.2.100", &[]);
    u.add("libc@0.1.12", &[("libc", "^0.2")]);
    u.add("old-tool@1.0.0", &[("libc", "^0.1")]);
    assert_eq!(
        ids(&u, "old-tool@1.0.0", CARGO).unwrap(),
        ["libc@0.1.12", "libc@0.2.100", "old-tool@1.0.0"]
    );
    let root: PackageId = "libc@0.1.12".parse().unwrap();
    let graph = resolve_graph_blocking(&u, &root, CARGO).unwrap();
    assert_eq!(
        graph.install_order(),
        ["libc@0.2.100".parse::<PackageId>().unwrap(), root.clone()]
    );
    // One version per package cannot hold two versions of libc.
    let one = conflict(&u, "old-tool@1.0.0", ResolveOptions::TRANSITIVE);
    assert!(one.contains("libc"), "{one}");
}
