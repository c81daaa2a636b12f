//! The end-to-end suite: a whole marketplace composed by `MarketplaceBuilder`, driven through
//! `MarketplaceClient` — publish, search, install with dependencies, yank, verify, tamper
//! detection, hostile archives, plugin vetoes, gc, index repair and metrics.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use marketplace_client::{
    ArchiveLimits, LOCKFILE, LicenseAllowList, Lockfile, MarketplaceBuilder, MarketplaceClient,
    MarketplacePlugin, OPERATION_SECONDS, OPERATIONS_TOTAL, pack_dir,
};
use marketplace_core::{
    ByteStream, ContentHash, Error, ErrorKind, KeyPair, MetricValue, PackageId, PackageMetadata,
    PackageStore, Result, SearchQuery, StorageMetadata, StorageStats, TrustLevel, UserName,
    parse_requirement,
};

use marketplace_package::testing::{EntryType, raw_archive, zeros_bomb};

use crate::Capabilities;
use crate::report::{CheckResult, SuiteReport, ensure, ensure_eq};

/// Makes a fresh, empty marketplace for each check: a builder with the four backends set (the
/// suite adds plugins or wraps the store where a check needs it).
pub type ClientFactory<'a> = &'a (dyn Fn() -> Result<MarketplaceBuilder> + Send + Sync);

/// Makes a fresh, empty marketplace for each check, possibly behind a server: see
/// [`client_suite_composed`].
pub type CompositionFactory<'a> =
    &'a (dyn Fn() -> BoxFuture<'static, Result<Composition>> + Send + Sync);

/// One fresh marketplace as the client suite sees it: the client's builder and, when the
/// client's flows go to a server, that server's side.
pub struct Composition {
    /// The client's builder, its backends set (local ones, or remote ones and an upstream).
    pub builder: MarketplaceBuilder,
    /// The server behind the builder's backends, when there is one.
    pub server: Option<ServerSide>,
}

impl Composition {
    /// A marketplace the client composes itself: the suite reaches its backends through the
    /// client.
    pub fn local(builder: MarketplaceBuilder) -> Self {
        Composition {
            builder,
            server: None,
        }
    }
}

/// The server a client talks to, as the suite needs it.
pub struct ServerSide {
    /// The composition the server serves. The suite is its operator there and only there:
    /// for the checks that play a broken backend (an archive registered without publishing,
    /// an index entry lost) and for maintenance (gc, index repair). Everything the user does
    /// goes through the client.
    pub market: Arc<MarketplaceClient>,
    /// The user the client acts as (its token's): every key the suite trusts on the client
    /// is registered to this user on the server, as a publisher would register theirs.
    pub user: UserName,
    /// Whatever keeps the server running; dropped when the check ends.
    pub guard: Box<dyn std::any::Any + Send + Sync>,
}

/// One check of the suite, its future boxed (see `client_suite`).
type Check = for<'c> fn(&'c Ctx<'c>) -> BoxFuture<'c, CheckResult>;

/// Runs the end-to-end suite. `factory` must return a builder for a new, empty marketplace on
/// every call (for example `MarketplaceBuilder::in_memory`, or `local` on a new directory).
pub async fn client_suite(factory: ClientFactory<'_>, caps: &Capabilities) -> SuiteReport {
    let composed = move || -> BoxFuture<'static, Result<Composition>> {
        let built = factory().map(Composition::local);
        Box::pin(async move { built })
    };
    client_suite_composed(&composed, caps).await
}

/// Runs the end-to-end suite over compositions that may put a server between the client and
/// its backends (the remote composition: the client's backends speak HTTP to a server that
/// runs the local flows). `factory` must make a new, empty marketplace on every call.
pub async fn client_suite_composed(
    factory: CompositionFactory<'_>,
    caps: &Capabilities,
) -> SuiteReport {
    let mut report = SuiteReport::new("client", caps);
    let work = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            report
                .run("setup", async move {
                    Err(format!("no temporary directory: {e}"))
                })
                .await;
            return report;
        }
    };
    let ctx = Ctx {
        factory,
        work: work.path().to_owned(),
        caps: caps.clone(),
    };
    // One call site in a loop, each check's future boxed: written as one `.await` per check,
    // a debug build gives every check's future its own slot in this function's stack frame
    // (well over a megabyte with thirty checks), which overflows a test thread's 2 MiB stack.
    let checks: &[(&str, Check)] = &[
        ("publish_then_info", |c| Box::pin(publish_then_info(c))),
        ("publish_refuses_duplicates", |c| {
            Box::pin(publish_refuses_duplicates(c))
        }),
        ("publish_refuses_untrusted_and_revoked_keys", |c| {
            Box::pin(publish_refuses_bad_keys(c))
        }),
        ("publish_refuses_invalid_archives", |c| {
            Box::pin(publish_refuses_invalid_archives(c))
        }),
        ("concurrent_publish_one_winner", |c| {
            Box::pin(concurrent_publish(c))
        }),
        ("search_and_suggest_find_published", |c| {
            Box::pin(search_finds_published(c))
        }),
        ("install_with_dependencies", |c| {
            Box::pin(install_with_dependencies(c))
        }),
        ("install_honours_lockfile", |c| {
            Box::pin(install_honours_lockfile(c))
        }),
        ("yank_hides_from_ranges_and_search", |c| {
            Box::pin(yank_and_unyank(c))
        }),
        ("revoked_signer_passed_over_by_ranges", |c| {
            Box::pin(revoked_signer_passed_over(c))
        }),
        ("verify_names_the_signer", |c| {
            Box::pin(verify_names_signer(c))
        }),
        ("tampered_archive_refused", |c| {
            Box::pin(tampered_archive_refused(c))
        }),
        ("bad_signatures_refused", |c| {
            Box::pin(bad_signatures_refused(c))
        }),
        ("hostile_archives_refused", |c| {
            Box::pin(hostile_archives_refused(c))
        }),
        ("plugin_vetoes_abort", |c| Box::pin(plugin_vetoes(c))),
        ("gc_removes_only_orphans", |c| {
            Box::pin(gc_removes_orphans(c))
        }),
        ("rebuild_index_repairs_search", |c| {
            Box::pin(rebuild_index_repairs(c))
        }),
        ("metrics_record_every_flow", |c| {
            Box::pin(metrics_recorded(c))
        }),
    ];
    for (name, check) in checks {
        report.run(name, check(&ctx)).await;
    }
    report
}

struct Ctx<'a> {
    factory: CompositionFactory<'a>,
    work: PathBuf,
    caps: Capabilities,
}

/// A marketplace with a trusted publishing key.
struct Market {
    client: MarketplaceClient,
    key: KeyPair,
    dir: tempfile::TempDir,
    server: Option<ServerSide>,
}

impl Ctx<'_> {
    async fn market_with(
        &self,
        adjust: impl FnOnce(MarketplaceBuilder) -> MarketplaceBuilder,
    ) -> std::result::Result<Market, String> {
        let composition = (self.factory)()
            .await
            .map_err(|e| format!("the factory failed: {e}"))?;
        let client = adjust(composition.builder)
            .build()
            .map_err(|e| format!("build failed: {e}"))?;
        let key = trusted_key(&client, composition.server.as_ref()).await?;
        let dir = tempfile::tempdir_in(&self.work).map_err(|e| e.to_string())?;
        Ok(Market {
            client,
            key,
            dir,
            server: composition.server,
        })
    }

    async fn market(&self) -> std::result::Result<Market, String> {
        self.market_with(|b| b).await
    }
}

/// A new key pair that `client` trusts fully; behind a server, also registered to the
/// client's user there.
async fn trusted_key(
    client: &MarketplaceClient,
    server: Option<&ServerSide>,
) -> std::result::Result<KeyPair, String> {
    let key = client
        .crypto()
        .generate_keypair()
        .await
        .map_err(|e| format!("generate_keypair: {e}"))?;
    client
        .crypto()
        .add_trusted_key(&key.public_key, TrustLevel::Full)
        .await
        .map_err(|e| format!("add_trusted_key: {e}"))?;
    if let Some(server) = server {
        server
            .market
            .register_key(&server.user, &key.public_key)
            .await
            .map_err(|e| format!("registering the key on the server: {e}"))?;
    }
    Ok(key)
}

impl Market {
    /// Where the backends behind the client are reached directly: the server's composition
    /// when there is a server, the client itself otherwise.
    fn operator(&self) -> &MarketplaceClient {
        self.server.as_ref().map_or(&self.client, |s| &s.market)
    }

    /// Another key pair the client trusts fully (see [`trusted_key`]).
    async fn trusted_key(&self) -> std::result::Result<KeyPair, String> {
        trusted_key(&self.client, self.server.as_ref()).await
    }

    /// A fresh directory under this market's work directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn publish(&self, archive: Bytes) -> std::result::Result<PackageId, String> {
        self.client
            .publish(archive, &self.key.private_key)
            .await
            .map(|p| p.id)
            .map_err(|e| format!("publish failed: {e}"))
    }
}

/// A package archive made with `pack_dir`: manifest plus one file.
fn archive(id: &str, deps: &[(&str, &str)], license: &str) -> Bytes {
    let id: PackageId = id.parse().expect("kit ids parse");
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut manifest = format!(
        "[package]\nname = \"{}\"\nversion = \"{}\"\ndescription = \"The {} package for the conformance kit\"\nlicense = \"{license}\"\nkeywords = [\"kit\", \"{}\"]\n",
        id.name, id.version, id.name, id.name
    );
    if let Some(ns) = &id.namespace {
        manifest.push_str(&format!("namespace = \"{ns}\"\n"));
    }
    manifest.push_str("[dependencies]\n");
    for (name, req) in deps {
        manifest.push_str(&format!("\"{name}\" = \"{req}\"\n"));
    }
    std::fs::write(dir.path().join("marketplace.toml"), manifest).expect("write manifest");
    std::fs::write(
        dir.path().join("README.txt"),
        format!("{id}: content of the kit package\n"),
    )
    .expect("write file");
    pack_dir(dir.path(), &ArchiveLimits::default())
        .expect("kit packages pack")
        .archive()
        .clone()
}

fn pkg(id: &str) -> Bytes {
    archive(id, &[], "MIT")
}

fn id(s: &str) -> PackageId {
    s.parse().expect("kit ids parse")
}

fn expect_kind<T: std::fmt::Debug>(
    result: Result<T>,
    kind: ErrorKind,
    what: &str,
) -> std::result::Result<Error, String> {
    match result {
        Err(e) if e.kind() == kind => Ok(e),
        Err(e) => Err(format!("{what}: expected a {kind} error, got {e:?}")),
        Ok(v) => Err(format!("{what}: expected a {kind} error, got Ok({v:?})")),
    }
}

/// Whether `dir` is absent or empty.
fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

async fn store_count(client: &MarketplaceClient) -> std::result::Result<u64, String> {
    client
        .store()
        .stats()
        .await
        .map(|s| s.objects)
        .map_err(|e| format!("store stats: {e}"))
}

// ---- publish ---------------------------------------------------------------------------------

async fn publish_then_info(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    let bytes = pkg("kit/alpha@1.0.0");
    let published = m
        .client
        .publish(bytes.clone(), &m.key.private_key)
        .await
        .map_err(|e| format!("publish: {e}"))?;
    ensure_eq!(published.id, id("kit/alpha@1.0.0"), "published id");
    ensure_eq!(published.checksum, ContentHash::sha256(&bytes), "checksum");
    ensure!(published.indexed, "the package was not indexed");
    let info = m
        .client
        .info(&published.id)
        .await
        .map_err(|e| format!("info: {e}"))?;
    ensure!(info.yanked.is_none(), "a new package is yanked");
    let signature = info
        .metadata
        .signature
        .as_ref()
        .ok_or("metadata lost its signature")?;
    ensure_eq!(signature.key_id(), m.key.public_key.key_id(), "signer");
    ensure_eq!(info.metadata.size, bytes.len() as u64, "size");
    let versions = m
        .client
        .versions(&published.id.package())
        .await
        .map_err(|e| format!("versions: {e}"))?;
    ensure_eq!(versions.len(), 1, "versions listed");
    let downloaded = m
        .client
        .download(&published.id)
        .await
        .map_err(|e| format!("download: {e}"))?;
    ensure_eq!(downloaded.archive, bytes, "downloaded bytes");
    let stats = m
        .client
        .stats(&published.id)
        .await
        .map_err(|e| format!("stats: {e}"))?;
    ensure_eq!(stats.version_downloads, 1, "the download was counted");
    Ok(())
}

async fn publish_refuses_duplicates(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    m.publish(pkg("kit/dup@1.0.0")).await?;
    let objects = store_count(m.operator()).await?;
    // Different content, same name and version (in another spelling).
    let other = archive("Kit/Dup@1.0.0+build", &[], "Apache-2.0");
    expect_kind(
        m.client.publish(other, &m.key.private_key).await,
        ErrorKind::AlreadyExists,
        "publishing an existing version",
    )?;
    ensure_eq!(
        store_count(m.operator()).await?,
        objects,
        "objects after the refusal"
    );
    Ok(())
}

async fn publish_refuses_bad_keys(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    let stranger = m
        .client
        .crypto()
        .generate_keypair()
        .await
        .map_err(|e| e.to_string())?;
    let e = expect_kind(
        m.client
            .publish(pkg("kit/stranger@1.0.0"), &stranger.private_key)
            .await,
        ErrorKind::Signature,
        "publishing with an untrusted key",
    )?;
    ensure!(e.to_string().contains("not trusted"), "message: {e}");
    m.client
        .crypto()
        .revoke_key(&m.key.public_key.key_id(), "kit: key leaked")
        .await
        .map_err(|e| e.to_string())?;
    let e = expect_kind(
        m.client
            .publish(pkg("kit/revoked@1.0.0"), &m.key.private_key)
            .await,
        ErrorKind::Signature,
        "publishing with a revoked key",
    )?;
    ensure!(e.to_string().contains("revoked"), "message: {e}");
    ensure_eq!(
        store_count(m.operator()).await?,
        0,
        "objects stored by refused publishes"
    );
    for name in ["kit/stranger@1.0.0", "kit/revoked@1.0.0"] {
        expect_kind(
            m.client.registry().get(&id(name)).await,
            ErrorKind::NotFound,
            "a refused package in the registry",
        )?;
    }
    Ok(())
}

async fn publish_refuses_invalid_archives(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    let cases: Vec<(&str, Bytes)> = vec![
        ("not gzip", Bytes::from_static(b"definitely not a tarball")),
        (
            "../ path",
            Bytes::from(hostile("kit-1.0.0/../escape", EntryType::Regular)),
        ),
        (
            "absolute path",
            Bytes::from(hostile("/etc/kit", EntryType::Regular)),
        ),
        (
            "symlink",
            Bytes::from(hostile("kit-1.0.0/link", EntryType::Symlink)),
        ),
        (
            "bad manifest",
            Bytes::from(raw_archive(&[(
                b"kit-1.0.0/marketplace.toml",
                EntryType::Regular,
                b"[package]\nname = \"bad name!\"\nversion = \"1\"\n",
            )])),
        ),
    ];
    for (what, bytes) in cases {
        expect_kind(
            m.client.publish(bytes, &m.key.private_key).await,
            ErrorKind::Invalid,
            what,
        )?;
    }
    ensure_eq!(
        store_count(m.operator()).await?,
        0,
        "objects stored by refused publishes"
    );
    Ok(())
}

async fn concurrent_publish(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    let bytes = pkg("kit/race@1.0.0");
    let n = ctx.caps.concurrent_tasks.max(2);
    let results = futures::future::join_all(
        (0..n).map(|_| m.client.publish(bytes.clone(), &m.key.private_key)),
    )
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let exists = results
        .iter()
        .filter(|r| matches!(r, Err(Error::AlreadyExists { .. })))
        .count();
    ensure_eq!(
        (ok, exists),
        (1, n - 1),
        "(successes, AlreadyExists) of {n} publishes"
    );
    Ok(())
}

async fn search_finds_published(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    m.publish(pkg("kit/searchable-widget@1.0.0")).await?;
    m.publish(pkg("kit/searchable-widget@1.1.0")).await?;
    m.publish(pkg("kit/other-thing@1.0.0")).await?;
    let hits = m
        .client
        .search(&SearchQuery::text("searchable widget"))
        .await
        .map_err(|e| format!("search: {e}"))?;
    let first = hits.first().ok_or("no hits for the package's own name")?;
    ensure_eq!(
        first.id,
        id("kit/searchable-widget@1.1.0"),
        "the latest version is the hit"
    );
    ensure!(
        hits.iter()
            .filter(|h| h.id.name.as_str() == "searchable-widget")
            .count()
            == 1,
        "one hit per package: {hits:?}"
    );
    let suggestions = m
        .client
        .suggest("searcha", 5)
        .await
        .map_err(|e| format!("suggest: {e}"))?;
    ensure!(
        suggestions
            .iter()
            .any(|p| p.name.as_str() == "searchable-widget"),
        "suggest missed the package: {suggestions:?}"
    );
    Ok(())
}

// ---- install ---------------------------------------------------------------------------------

async fn publish_graph(m: &Market) -> std::result::Result<(), String> {
    m.publish(archive("kit/base@1.0.0", &[], "MIT")).await?;
    m.publish(archive("kit/base@2.0.0", &[], "MIT")).await?;
    m.publish(archive("kit/mid@1.0.0", &[("kit/base", "^1")], "MIT"))
        .await?;
    m.publish(archive(
        "kit/top@1.0.0",
        &[("kit/mid", "^1"), ("kit/base", "^1")],
        "MIT",
    ))
    .await?;
    Ok(())
}

async fn install(
    m: &Market,
    package: &str,
    req: &str,
    dest: &Path,
) -> Result<marketplace_client::InstallReport> {
    let package = package.parse()?;
    m.client
        .install(&package, &parse_requirement(req)?, dest)
        .await
}

async fn install_with_dependencies(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    publish_graph(&m).await?;
    let dest = m.path("install");
    let report = install(&m, "kit/top", "^1", &dest)
        .await
        .map_err(|e| format!("install: {e}"))?;
    ensure_eq!(report.root, id("kit/top@1.0.0"), "root");
    let installed: Vec<String> = report.installed.iter().map(|p| p.id.to_string()).collect();
    ensure_eq!(
        installed,
        vec!["kit/base@1.0.0", "kit/mid@1.0.0", "kit/top@1.0.0"],
        "installed, dependencies first"
    );
    for p in &report.installed {
        ensure!(
            p.path.join("README.txt").is_file() && p.path.join("marketplace.toml").is_file(),
            "{} was not extracted into {}",
            p.id,
            p.path.display()
        );
    }
    let lock = Lockfile::read(&dest)
        .map_err(|e| format!("lockfile: {e}"))?
        .ok_or("no lockfile written")?;
    ensure_eq!(lock.packages.len(), 3, "locked packages");
    let stats = m
        .client
        .stats(&id("kit/base@1.0.0"))
        .await
        .map_err(|e| e.to_string())?;
    ensure_eq!(stats.version_downloads, 1, "downloads of a dependency");
    // A second install of the same thing changes nothing.
    let again = install(&m, "kit/top", "^1", &dest)
        .await
        .map_err(|e| format!("second install: {e}"))?;
    ensure!(
        again.installed.is_empty() && again.already_present.len() == 3,
        "{again:?}"
    );
    expect_kind(
        install(&m, "kit/nothing", "^1", &m.path("none")).await,
        ErrorKind::NotFound,
        "installing an unknown package",
    )?;
    ensure!(
        is_empty_dir(&m.path("none")),
        "a failed install wrote to its destination"
    );
    Ok(())
}

async fn install_honours_lockfile(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    publish_graph(&m).await?;
    let dest = m.path("locked");
    install(&m, "kit/top", "^1", &dest)
        .await
        .map_err(|e| format!("install: {e}"))?;
    m.publish(archive("kit/base@1.5.0", &[], "MIT")).await?;
    let again = install(&m, "kit/top", "^1", &dest)
        .await
        .map_err(|e| format!("install with a lockfile: {e}"))?;
    ensure!(again.from_lockfile, "the lockfile was not used");
    ensure!(
        !dest.join("kit").join("base-1.5.0").exists(),
        "a newer version was installed despite the lockfile"
    );
    let fresh = install(&m, "kit/top", "^1", &m.path("fresh"))
        .await
        .map_err(|e| format!("install without a lockfile: {e}"))?;
    ensure!(
        fresh.installed.iter().any(|p| p.id == id("kit/base@1.5.0")),
        "a fresh install did not pick the newest match: {fresh:?}"
    );
    // A lockfile whose hash disagrees with the registry is refused.
    let mut lock = Lockfile::read(&dest)
        .map_err(|e| e.to_string())?
        .ok_or("no lockfile")?;
    for p in &mut lock.packages {
        if p.id == id("kit/base@1.0.0") {
            p.checksum = ContentHash::sha256(b"something else");
        }
    }
    lock.write(&dest).map_err(|e| e.to_string())?;
    std::fs::remove_dir_all(dest.join("kit").join("base-1.0.0")).map_err(|e| e.to_string())?;
    expect_kind(
        install(&m, "kit/top", "^1", &dest).await,
        ErrorKind::Integrity,
        "install against a lockfile with another hash",
    )?;
    ensure!(
        !dest.join("kit").join("base-1.0.0").exists(),
        "the refused package was extracted"
    );
    ensure!(dest.join(LOCKFILE).is_file(), "the lockfile disappeared");
    Ok(())
}

async fn yank_and_unyank(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    m.publish(pkg("kit/yankee@1.0.0")).await?;
    m.publish(pkg("kit/yankee@1.1.0")).await?;
    m.client
        .yank(&id("kit/yankee@1.1.0"), "kit: broken build")
        .await
        .map_err(|e| format!("yank: {e}"))?;
    let report = install(&m, "kit/yankee", "^1", &m.path("a"))
        .await
        .map_err(|e| format!("install: {e}"))?;
    ensure_eq!(
        report.root,
        id("kit/yankee@1.0.0"),
        "a range skips the yanked version"
    );
    let hits = m
        .client
        .search(&SearchQuery::text("yankee"))
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        hits.iter().all(|h| h.id != id("kit/yankee@1.1.0")),
        "search shows a yanked version: {hits:?}"
    );
    let pinned = install(&m, "kit/yankee", "=1.1.0", &m.path("b"))
        .await
        .map_err(|e| format!("pinned install: {e}"))?;
    ensure_eq!(
        pinned.root,
        id("kit/yankee@1.1.0"),
        "an exact pin installs a yanked version"
    );
    ensure_eq!(
        pinned
            .yanked
            .iter()
            .map(|(id, y)| (id.to_string(), y.reason.as_str()))
            .collect::<Vec<_>>(),
        vec![("kit/yankee@1.1.0".to_owned(), "kit: broken build")],
        "the install report names the yanked version it installed, with the reason"
    );
    let info = m
        .client
        .info(&id("kit/yankee@1.1.0"))
        .await
        .map_err(|e| format!("info: {e}"))?;
    ensure_eq!(
        info.yanked.as_ref().map(|y| y.reason.as_str()),
        Some("kit: broken build"),
        "info carries the yank reason"
    );
    m.client
        .yank(&id("kit/yankee@1.0.0"), "kit: also broken")
        .await
        .map_err(|e| e.to_string())?;
    let e = expect_kind(
        install(&m, "kit/yankee", "^1", &m.path("c")).await,
        ErrorKind::NotFound,
        "a range matching only yanked versions",
    )?;
    ensure!(
        e.to_string().contains("yanked")
            && e.to_string().contains("1.0.0 (kit: also broken)")
            && e.to_string().contains("1.1.0 (kit: broken build)"),
        "the message does not say which versions are yanked and why: {e}"
    );
    m.client
        .unyank(&id("kit/yankee@1.1.0"))
        .await
        .map_err(|e| e.to_string())?;
    let back = install(&m, "kit/yankee", "^1", &m.path("d"))
        .await
        .map_err(|e| format!("install after unyank: {e}"))?;
    ensure_eq!(
        back.root,
        id("kit/yankee@1.1.0"),
        "unyank restores the version"
    );
    Ok(())
}

/// A range whose newest version is signed by a key revoked since installs the newest version
/// whose signer's key is not, and reports what it passed over; an exact pin is refused.
async fn revoked_signer_passed_over(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    m.publish(pkg("kit/rotated@1.0.0")).await?;
    let second = m.trusted_key().await?;
    m.client
        .publish(pkg("kit/rotated@1.1.0"), &second.private_key)
        .await
        .map_err(|e| format!("publish 1.1.0: {e}"))?;
    m.client
        .crypto()
        .revoke_key(&second.public_key.key_id(), "kit: key lost")
        .await
        .map_err(|e| e.to_string())?;
    let report = install(&m, "kit/rotated", "^1", &m.path("a"))
        .await
        .map_err(|e| format!("install of a range: {e}"))?;
    ensure_eq!(
        report.root,
        id("kit/rotated@1.0.0"),
        "a range falls back past the version whose signer was revoked"
    );
    ensure_eq!(
        report
            .passed_over
            .iter()
            .map(|(id, _)| id.to_string())
            .collect::<Vec<_>>(),
        vec!["kit/rotated@1.1.0".to_owned()],
        "the report names the version passed over"
    );
    ensure!(
        report.passed_over[0].1.contains("kit: key lost"),
        "the report says why: {:?}",
        report.passed_over
    );
    let e = expect_kind(
        install(&m, "kit/rotated", "=1.1.0", &m.path("b")).await,
        ErrorKind::Signature,
        "an exact pin of the version whose signer was revoked",
    )?;
    ensure!(e.to_string().contains("revoked"), "message: {e}");
    ensure!(
        !m.path("b").exists(),
        "a refused install wrote its destination"
    );
    Ok(())
}

async fn verify_names_signer(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    let pid = m.publish(pkg("kit/verified@1.0.0")).await?;
    let verified = m
        .client
        .verify(&pid)
        .await
        .map_err(|e| format!("verify: {e}"))?;
    ensure_eq!(verified.key_id, m.key.public_key.key_id(), "signer");
    ensure_eq!(verified.trust, TrustLevel::Full, "trust level");
    ensure_eq!(verified.files, 2, "files in the archive");
    expect_kind(
        m.client.verify(&id("kit/absent@1.0.0")).await,
        ErrorKind::NotFound,
        "verifying an unknown package",
    )?;
    Ok(())
}

// ---- refusals --------------------------------------------------------------------------------

/// A store that flips a byte of what it returns once `tampering` is set, below any
/// verification the real store does: what an attacker with write access to the bucket, or a
/// bad disk, would produce.
struct TamperingStore {
    inner: Arc<dyn PackageStore>,
    tampering: Arc<AtomicBool>,
}

fn flip(bytes: Bytes) -> Bytes {
    let mut v = bytes.to_vec();
    if let Some(b) = v.last_mut() {
        *b ^= 0x01;
    }
    Bytes::from(v)
}

#[async_trait]
impl PackageStore for TamperingStore {
    async fn store(&self, bytes: Bytes) -> Result<ContentHash> {
        self.inner.store(bytes).await
    }
    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        let bytes = self.inner.get(hash).await?;
        Ok(if self.tampering.load(Ordering::SeqCst) {
            flip(bytes)
        } else {
            bytes
        })
    }
    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        let bytes = self.get(hash).await?;
        Ok(Box::pin(futures::stream::once(async move { Ok(bytes) })))
    }
    async fn upload_stream(
        &self,
        reader: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        size_hint: Option<u64>,
    ) -> Result<ContentHash> {
        self.inner.upload_stream(reader, size_hint).await
    }
    async fn exists(&self, hash: &ContentHash) -> Result<bool> {
        self.inner.exists(hash).await
    }
    async fn delete(&self, hash: &ContentHash) -> Result<bool> {
        self.inner.delete(hash).await
    }
    async fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        self.inner.metadata(hash).await
    }
    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ContentHash>> {
        self.inner.list(prefix, limit).await
    }
    async fn stats(&self) -> Result<StorageStats> {
        self.inner.stats().await
    }
}

async fn tampered_archive_refused(ctx: &Ctx<'_>) -> CheckResult {
    let tampering = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&tampering);
    let m = ctx
        .market_with(move |b| {
            b.map_store(move |inner| {
                Arc::new(TamperingStore {
                    inner,
                    tampering: flag,
                })
            })
        })
        .await?;
    let pid = m.publish(pkg("kit/tampered@1.0.0")).await?;
    tampering.store(true, Ordering::SeqCst);
    let dest = m.path("tampered");
    expect_kind(
        install(&m, "kit/tampered", "^1", &dest).await,
        ErrorKind::Integrity,
        "installing tampered bytes",
    )?;
    ensure!(
        is_empty_dir(&dest),
        "a tampered package was written to the destination"
    );
    expect_kind(
        m.client.download(&pid).await,
        ErrorKind::Integrity,
        "downloading tampered bytes",
    )?;
    expect_kind(
        m.client.verify(&pid).await,
        ErrorKind::Integrity,
        "verifying tampered bytes",
    )?;
    Ok(())
}

/// Stores `archive` and registers it directly (bypassing publish) with `metadata` adjusted by
/// `change` after signing with `key` (when given).
async fn register_directly(
    m: &Market,
    archive: Bytes,
    key: Option<&KeyPair>,
    change: impl FnOnce(&mut PackageMetadata),
) -> std::result::Result<PackageId, String> {
    let mut prepared = m
        .client
        .prepare(archive.clone())
        .await
        .map_err(|e| format!("prepare: {e}"))?;
    if let Some(key) = key {
        prepared.metadata.signature = Some(
            m.client
                .crypto()
                .sign(&prepared.metadata, &key.private_key)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    change(&mut prepared.metadata);
    let hash = m
        .operator()
        .store()
        .store(archive)
        .await
        .map_err(|e| e.to_string())?;
    m.operator()
        .registry()
        .register(prepared.metadata, hash)
        .await
        .map_err(|e| format!("direct registration: {e}"))
}

async fn bad_signatures_refused(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    m.publish(pkg("kit/dep@1.0.0")).await?;
    m.publish(pkg("kit/dep@2.0.0")).await?;
    let stranger = m
        .client
        .crypto()
        .generate_keypair()
        .await
        .map_err(|e| e.to_string())?;
    let revoked = m.trusted_key().await?;
    register_directly(&m, pkg("kit/unsigned@1.0.0"), None, |_| {}).await?;
    // Signed, then a signed field (a dependency) changed.
    register_directly(
        &m,
        archive("kit/altered@1.0.0", &[("kit/dep", "^1")], "MIT"),
        Some(&m.key),
        |md| {
            md.dependencies.insert(
                "kit/dep".parse().expect("ref"),
                parse_requirement("^2").expect("req"),
            );
        },
    )
    .await?;
    // A valid signature by another key, presented as if made by the trusted one.
    register_directly(&m, pkg("kit/forged@1.0.0"), Some(&stranger), |md| {
        if let Some(sig) = &mut md.signature {
            sig.public_key = m.key.public_key.clone();
        }
    })
    .await?;
    register_directly(&m, pkg("kit/untrusted@1.0.0"), Some(&stranger), |_| {}).await?;
    register_directly(&m, pkg("kit/revoked@1.0.0"), Some(&revoked), |_| {}).await?;
    m.client
        .crypto()
        .revoke_key(&revoked.public_key.key_id(), "kit: compromised")
        .await
        .map_err(|e| e.to_string())?;
    for (name, needle) in [
        ("kit/unsigned", "not signed"),
        ("kit/altered", "does not match"),
        ("kit/forged", "does not match"),
        ("kit/untrusted", "not trusted"),
        ("kit/revoked", "revoked"),
    ] {
        let dest = m.path(&name.replace('/', "-"));
        let e = expect_kind(
            install(&m, name, "^1", &dest).await,
            ErrorKind::Signature,
            &format!("installing {name}"),
        )?;
        ensure!(
            e.to_string().contains(needle),
            "{name}: message {e} lacks {needle:?}"
        );
        ensure!(is_empty_dir(&dest), "{name} was written to the destination");
        expect_kind(
            m.client.verify(&id(&format!("{name}@1.0.0"))).await,
            ErrorKind::Signature,
            &format!("verifying {name}"),
        )?;
    }
    Ok(())
}

const HOSTILE_MANIFEST: &[u8] =
    b"[package]\nname = \"hostile\"\nversion = \"1.0.0\"\nnamespace = \"kit\"\nlicense = \"MIT\"\n";

/// A package archive with a valid manifest plus one hostile entry.
fn hostile(path: &str, kind: EntryType) -> Vec<u8> {
    raw_archive(&[
        (
            b"hostile-1.0.0/marketplace.toml",
            EntryType::Regular,
            HOSTILE_MANIFEST,
        ),
        (path.as_bytes(), kind, b"owned"),
    ])
}

/// A package that unpacks to 1 GiB of zeros (about 1 MiB compressed), made once.
fn bomb() -> Bytes {
    static BOMB: OnceLock<Bytes> = OnceLock::new();
    BOMB.get_or_init(|| Bytes::from(zeros_bomb("hostile-1.0.0", HOSTILE_MANIFEST, 1 << 30)))
        .clone()
}

async fn hostile_archives_refused(ctx: &Ctx<'_>) -> CheckResult {
    let cases: Vec<(&str, Bytes, &str)> = vec![
        (
            "../ path",
            Bytes::from(hostile("hostile-1.0.0/../../escape", EntryType::Regular)),
            "..",
        ),
        (
            "absolute path",
            Bytes::from(hostile("/tmp/kit-owned", EntryType::Regular)),
            "absolute",
        ),
        (
            "symlink",
            Bytes::from(hostile("hostile-1.0.0/link", EntryType::Symlink)),
            "symbolic link",
        ),
        ("1 GiB bomb", bomb(), "byte limit"),
    ];
    for (what, bytes, needle) in cases {
        let m = ctx.market().await?;
        // Registered directly with a valid signature by a trusted key: only the archive rules
        // stand between this package and the destination.
        let metadata = {
            let manifest = marketplace_client::Manifest::parse(
                std::str::from_utf8(HOSTILE_MANIFEST).expect("utf-8"),
            )
            .map_err(|e| e.to_string())?;
            let mut md = manifest.to_metadata(ContentHash::sha256(&bytes), bytes.len() as u64);
            md.signature = Some(
                m.client
                    .crypto()
                    .sign(&md, &m.key.private_key)
                    .await
                    .map_err(|e| e.to_string())?,
            );
            md
        };
        let hash = m
            .operator()
            .store()
            .store(bytes)
            .await
            .map_err(|e| e.to_string())?;
        m.operator()
            .registry()
            .register(metadata, hash)
            .await
            .map_err(|e| format!("{what}: direct registration: {e}"))?;
        let dest = m.path("dest");
        let e = expect_kind(
            install(&m, "kit/hostile", "^1", &dest).await,
            ErrorKind::Invalid,
            &format!("installing an archive with a {what}"),
        )?;
        ensure!(
            e.to_string().contains(needle),
            "{what}: the message does not name the rule ({needle:?}): {e}"
        );
        ensure!(
            is_empty_dir(&dest),
            "{what}: something was written to the destination"
        );
        ensure!(
            !m.dir.path().join("escape").exists() && !Path::new("/tmp/kit-owned").exists(),
            "{what}: a file escaped the destination"
        );
    }
    Ok(())
}

// ---- plugins, maintenance, metrics ---------------------------------------------------------

/// Refuses every download with a message.
struct NoDownloads;

#[async_trait]
impl MarketplacePlugin for NoDownloads {
    fn name(&self) -> &str {
        "kit-no-downloads"
    }
    async fn pre_download(&self, metadata: &PackageMetadata) -> Result<()> {
        Err(Error::Unauthorized {
            what: format!("kit policy: downloads of {} are closed", metadata.id),
        })
    }
}

async fn plugin_vetoes(ctx: &Ctx<'_>) -> CheckResult {
    let policy = LicenseAllowList::new(["Apache-2.0"]).map_err(|e| e.to_string())?;
    let m = ctx
        .market_with(|b| b.plugin(Arc::new(policy)).plugin(Arc::new(NoDownloads)))
        .await?;
    let e = expect_kind(
        m.client
            .publish(archive("kit/mit@1.0.0", &[], "MIT"), &m.key.private_key)
            .await,
        ErrorKind::Invalid,
        "publishing against the license policy",
    )?;
    ensure!(e.to_string().contains("license policy"), "message: {e}");
    ensure_eq!(
        store_count(m.operator()).await?,
        0,
        "objects stored by a vetoed publish"
    );
    let pid = m
        .publish(archive("kit/apache@1.0.0", &[], "Apache-2.0"))
        .await?;
    let dest = m.path("vetoed");
    let e = expect_kind(
        install(&m, "kit/apache", "^1", &dest).await,
        ErrorKind::Unauthorized,
        "installing against a plugin veto",
    )?;
    ensure!(
        e.to_string()
            .contains("downloads of kit/apache@1.0.0 are closed"),
        "message: {e}"
    );
    ensure!(
        is_empty_dir(&dest),
        "a vetoed install wrote to its destination"
    );
    let stats = m.client.stats(&pid).await.map_err(|e| e.to_string())?;
    ensure_eq!(
        stats.version_downloads,
        0,
        "downloads counted for a vetoed install"
    );
    Ok(())
}

async fn gc_removes_orphans(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    let pid = m.publish(pkg("kit/kept@1.0.0")).await?;
    let orphan = m
        .operator()
        .store()
        .store(Bytes::from_static(b"an orphaned blob"))
        .await
        .map_err(|e| e.to_string())?;
    let young = m
        .operator()
        .gc(std::time::Duration::from_secs(3600))
        .await
        .map_err(|e| format!("gc: {e}"))?;
    ensure_eq!(
        (young.orphaned, young.deleted),
        (1, 0),
        "gc within the grace period"
    );
    let report = m
        .operator()
        .gc(std::time::Duration::ZERO)
        .await
        .map_err(|e| format!("gc: {e}"))?;
    ensure_eq!(
        (report.scanned, report.orphaned, report.deleted),
        (2, 1, 1),
        "gc report"
    );
    ensure!(
        !m.operator()
            .store()
            .exists(&orphan)
            .await
            .map_err(|e| e.to_string())?,
        "the orphan survived"
    );
    m.client
        .verify(&pid)
        .await
        .map_err(|e| format!("a published package broke after gc: {e}"))?;
    Ok(())
}

async fn rebuild_index_repairs(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    let pid = m.publish(pkg("kit/reindexed@1.0.0")).await?;
    // The index loses the entry, as after a crash between register and index.
    m.operator()
        .search_engine()
        .remove(&pid)
        .await
        .map_err(|e| e.to_string())?;
    let hits = m
        .client
        .search(&SearchQuery::text("reindexed"))
        .await
        .map_err(|e| e.to_string())?;
    ensure!(hits.is_empty(), "the removed entry is still found");
    let count = m
        .operator()
        .rebuild_index()
        .await
        .map_err(|e| format!("rebuild_index: {e}"))?;
    ensure_eq!(count, 1, "versions rebuilt");
    let hits = m
        .client
        .search(&SearchQuery::text("reindexed"))
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        hits.iter().any(|h| h.id == pid),
        "rebuild did not restore the entry: {hits:?}"
    );
    Ok(())
}

async fn metrics_recorded(ctx: &Ctx<'_>) -> CheckResult {
    let m = ctx.market().await?;
    let Some(metrics) = m.client.metrics() else {
        return Err("the client has no metrics collector (MarketplaceBuilder::metrics)".into());
    };
    metrics.reset();
    m.publish(pkg("kit/metered@1.0.0")).await?;
    install(&m, "kit/metered", "^1", &m.path("metered"))
        .await
        .map_err(|e| format!("install: {e}"))?;
    m.client
        .search(&SearchQuery::text("metered"))
        .await
        .map_err(|e| e.to_string())?;
    let _ = install(&m, "kit/absent", "^1", &m.path("absent")).await;
    let snapshot = metrics.snapshot();
    for (operation, outcome) in [
        ("publish", "ok"),
        ("install", "ok"),
        ("search", "ok"),
        ("install", "not_found"),
    ] {
        match snapshot.get(
            OPERATIONS_TOTAL,
            &[("operation", operation), ("outcome", outcome)],
        ) {
            Some(MetricValue::Counter { value: 1 }) => {}
            other => {
                return Err(format!(
                    "{OPERATIONS_TOTAL}{{operation={operation},outcome={outcome}}} is {other:?}, expected 1"
                ));
            }
        }
    }
    match snapshot.get(
        OPERATION_SECONDS,
        &[("operation", "publish"), ("outcome", "ok")],
    ) {
        Some(MetricValue::Histogram { count: 1, .. }) => {}
        other => return Err(format!("publish latency histogram is {other:?}")),
    }
    let text = metrics.export_prometheus().map_err(|e| e.to_string())?;
    let needles = [
        format!("# TYPE {OPERATIONS_TOTAL} counter"),
        format!("# TYPE {OPERATION_SECONDS} histogram"),
        format!(r#"{OPERATIONS_TOTAL}{{operation="install",outcome="ok"}} 1"#),
    ];
    for needle in &needles {
        ensure!(
            text.lines().any(|l| l == needle),
            "the Prometheus export lacks {needle:?}:\n{text}"
        );
    }
    let families: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    ensure!(
        families.contains("marketplace_backend_duration_seconds"),
        "no backend latency histogram: {families:?}"
    );
    Ok(())
}
