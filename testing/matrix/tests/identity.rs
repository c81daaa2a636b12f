//! Metadata that does not belong to its id is refused wherever the client reads it: a registry
//! row for `x@2.0.0` holding the validly signed metadata of `x@1.0.0` must not make
//! `install x@=2.0.0` install 1.0.0, nor `verify x@2.0.0` say ok; a resolved graph whose nodes or
//! edges do not match is refused too. Nothing is written to the destination.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use marketplace_client::{ArchiveLimits, MarketplaceBuilder, MarketplaceClient, pack_dir};
use marketplace_conformance::layer::{Layered, RegistryOverride};
use marketplace_core::{
    DependencyGraph, ErrorKind, PackageId, PackageMetadata, PackageRef, Registry, ResolutionSource,
    ResolveOptions, Result, TrustLevel, VersionState, async_trait,
};

/// Once armed, answers for 2.0.0 with the metadata of 1.0.0 (as a tampered row would).
struct SwappedRow(Arc<AtomicBool>);

/// The registry as a tampered row makes it read.
struct Swapped<'a>(&'a dyn Registry, bool);

#[async_trait]
impl ResolutionSource for Swapped<'_> {
    async fn version_states(&self, package: &PackageRef) -> Result<Vec<VersionState>> {
        self.0.list_version_states(package).await
    }
    async fn metadata(&self, id: &PackageId) -> Result<PackageMetadata> {
        if self.1 && id.version.major == 2 {
            let one = id.package().at("1.0.0".parse().expect("version"));
            return self.0.get(&one).await;
        }
        self.0.get(id).await
    }
}

#[async_trait]
impl RegistryOverride for SwappedRow {
    async fn get(&self, inner: &dyn Registry, id: &PackageId) -> Result<PackageMetadata> {
        Swapped(inner, self.0.load(Ordering::SeqCst))
            .metadata(id)
            .await
    }

    async fn resolve_dependencies(
        &self,
        inner: &dyn Registry,
        id: &PackageId,
        options: ResolveOptions,
    ) -> Result<DependencyGraph> {
        let source = Swapped(inner, self.0.load(Ordering::SeqCst));
        marketplace_core::resolve_graph(&source, id, options).await
    }
}

/// Resolves every graph with its root's dependency edges pointing nowhere.
struct DroppedNode;

#[async_trait]
impl RegistryOverride for DroppedNode {
    async fn resolve_dependencies(
        &self,
        inner: &dyn Registry,
        id: &PackageId,
        options: ResolveOptions,
    ) -> Result<DependencyGraph> {
        let mut graph = inner.resolve_dependencies(id, options).await?;
        let root = graph.root.clone();
        graph.nodes.retain(|k, _| *k == root);
        Ok(graph)
    }
}

async fn market<O: RegistryOverride + 'static>(
    dir: &std::path::Path,
    over: O,
) -> (MarketplaceClient, marketplace_core::KeyPair) {
    let client = MarketplaceBuilder::local(dir)
        .expect("local")
        .map_registry(|r| Arc::new(Layered::new(r).with_override(over)))
        .build()
        .expect("client");
    let key = client.generate_keypair().await.expect("key");
    client
        .trust_key(&key.public_key, TrustLevel::Full)
        .await
        .expect("trust");
    (client, key)
}

async fn publish(
    client: &MarketplaceClient,
    key: &marketplace_core::KeyPair,
    root: &std::path::Path,
    name: &str,
    version: &str,
    deps: &str,
) {
    let dir = root.join(format!("{name}-{version}"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("marketplace.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"{version}\"\nlicense = \"MIT\"\n[dependencies]\n{deps}"),
    )
    .expect("manifest");
    let packed = pack_dir(&dir, &ArchiveLimits::default()).expect("pack");
    client
        .publish(packed, &key.private_key)
        .await
        .expect("publish");
}

fn empty(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_versions_metadata_is_refused_everywhere() {
    let root = tempfile::tempdir().expect("tempdir");
    let armed = Arc::new(AtomicBool::new(false));
    let (client, key) = market(&root.path().join("market"), SwappedRow(armed.clone())).await;
    publish(&client, &key, root.path(), "swapped", "1.0.0", "").await;
    publish(&client, &key, root.path(), "swapped", "2.0.0", "").await;
    armed.store(true, Ordering::SeqCst);
    let two: PackageId = "swapped@2.0.0".parse().expect("id");

    let dest = root.path().join("dest");
    let err = client
        .install(
            &"swapped".parse().expect("ref"),
            &"=2.0.0".parse().expect("req"),
            &dest,
        )
        .await
        .expect_err("installing 2.0.0 with 1.0.0's metadata");
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(err.to_string().contains("swapped@1.0.0"), "{err}");
    assert!(empty(&dest), "nothing is written");

    for result in [
        client.verify(&two).await.map(drop),
        client.download(&two).await.map(drop),
        client.info(&two).await.map(drop),
    ] {
        let err = result.expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_that_is_not_whole_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let (client, key) = market(&root.path().join("market"), DroppedNode).await;
    publish(&client, &key, root.path(), "leaf", "1.0.0", "").await;
    publish(
        &client,
        &key,
        root.path(),
        "app",
        "1.0.0",
        "leaf = \"^1\"\n",
    )
    .await;
    let dest = root.path().join("dest");
    let err = client
        .install(
            &"app".parse().expect("ref"),
            &"^1".parse().expect("req"),
            &dest,
        )
        .await
        .expect_err("a graph without its dependency's node");
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
    assert!(err.to_string().contains("leaf@1.0.0"), "{err}");
    assert!(empty(&dest), "nothing is written");
}
