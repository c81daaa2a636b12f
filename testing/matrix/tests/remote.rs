//! The client's flows over the remote backends: a real server on 127.0.0.1 (SQLite, the local
//! store, tantivy), and a client that talks to it only over HTTP and verifies against its own
//! trust store.

mod http;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use marketplace_client::{MarketplaceBuilder, MarketplaceClient};
use marketplace_core::{
    ErrorKind, KeyPair, PackageId, PackageRef, PackageStore, Registry, Scope, SearchQuery,
    TrustLevel, UserName, parse_requirement,
};
use marketplace_remote::{Remote, RemoteOptions};
use marketplace_server::Server;
use marketplace_testing::corpus;
use tokio::sync::oneshot;

/// A server over a home holding the W4 dependency chain (5 packages × 3 versions), published
/// with `key`.
struct Served {
    base: String,
    market: Arc<MarketplaceClient>,
    key: KeyPair,
    /// Archives the server has sent (by hash or by version).
    archives_sent: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    _home: tempfile::TempDir,
}

impl Served {
    async fn start() -> Served {
        let home = tempfile::tempdir().expect("tempdir");
        let market = MarketplaceBuilder::local(home.path())
            .and_then(MarketplaceBuilder::build)
            .expect("a home");
        let key = market.generate_keypair().await.expect("key");
        market
            .trust_key(&key.public_key, TrustLevel::Full)
            .await
            .expect("trust");
        for metadata in corpus::dependency_chain(5) {
            market
                .publish(corpus::archive(&metadata, 100), &key.private_key)
                .await
                .expect("publish on the server's home");
        }
        let market = Arc::new(market);
        // The server's router behind a layer that counts the archives it sends.
        let archives_sent = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&archives_sent);
        let router = axum::Router::new()
            .fallback_service(Server::new(Arc::clone(&market)).router())
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let counted = Arc::clone(&counted);
                    async move {
                        let path = request.uri().path();
                        if path.starts_with("/api/v1/archives/") || path.ends_with("/download") {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        next.run(request).await
                    }
                },
            ));
        let (base, stop) = http::serve(router).await;
        Served {
            base,
            market,
            key,
            archives_sent,
            stop: Some(stop),
            _home: home,
        }
    }

    fn remote(&self) -> Remote {
        Remote::connect(&self.base, RemoteOptions::default()).expect("remote")
    }

    /// A client of this server whose own trust store (in `trust`) holds what the test puts
    /// there.
    fn client(&self, trust: &Path) -> MarketplaceClient {
        MarketplaceBuilder::remote(
            &self.base,
            RemoteOptions::default(),
            trust.join("trust.json"),
        )
        .and_then(MarketplaceBuilder::build)
        .expect("a remote client")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn package(text: &str) -> PackageRef {
    text.parse().expect("package")
}

fn id(text: &str) -> PackageId {
    text.parse().expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_over_http_resolves_verifies_and_counts_on_the_server() {
    let served = Served::start().await;
    let user = tempfile::tempdir().expect("tempdir");
    let client = served.client(user.path());
    client
        .trust_key(&served.key.public_key, TrustLevel::Full)
        .await
        .expect("the user trusts the author");

    let dest = user.path().join("tools");
    let report = client
        .install(
            &package("chain/pkg-0"),
            &parse_requirement("^1").unwrap(),
            &dest,
        )
        .await
        .expect("install over HTTP");
    assert_eq!(report.root, id("chain/pkg-0@1.2.0"));
    assert_eq!(report.installed.len(), 5, "{report:?}");
    for installed in &report.installed {
        assert!(
            installed.path.join("README.md").is_file(),
            "{} not extracted",
            installed.id
        );
    }
    // Each download was counted once, on the server.
    let stats = served
        .market
        .stats(&id("chain/pkg-4@1.2.0"))
        .await
        .expect("stats");
    assert_eq!(stats.version_downloads, 1);
    // And read back over HTTP.
    let info = client.info(&id("chain/pkg-4@1.2.0")).await.expect("info");
    assert_eq!(info.stats.version_downloads, 1);
    assert_eq!(info.metadata.id, id("chain/pkg-4@1.2.0"));

    // A second install finds everything in place.
    let again = client
        .install(
            &package("chain/pkg-0"),
            &parse_requirement("^1").unwrap(),
            &dest,
        )
        .await
        .expect("second install");
    assert!(again.installed.is_empty(), "{again:?}");
    assert_eq!(again.already_present.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_the_user_does_not_trust_is_refused_and_nothing_is_written() {
    let served = Served::start().await;
    let user = tempfile::tempdir().expect("tempdir");
    // The user trusts nobody: the server's word that the author is trusted counts for nothing.
    let client = served.client(user.path());
    let dest = user.path().join("tools");
    let err = client
        .install(
            &package("chain/pkg-3"),
            &parse_requirement("^1").unwrap(),
            &dest,
        )
        .await
        .expect_err("an untrusted author");
    assert_eq!(err.kind(), ErrorKind::Signature, "{err}");
    assert!(
        http::is_empty_dir(&dest),
        "a refused install wrote to its destination"
    );
    // Nothing was counted either.
    let stats = served
        .market
        .stats(&id("chain/pkg-3@1.2.0"))
        .await
        .expect("stats");
    assert_eq!(stats.version_downloads, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_search_and_versions_come_from_the_server() {
    let served = Served::start().await;
    let user = tempfile::tempdir().expect("tempdir");
    let client = served.client(user.path());

    let versions = client
        .versions(&package("chain/pkg-2"))
        .await
        .expect("versions");
    let versions: Vec<String> = versions.iter().map(|s| s.version.to_string()).collect();
    assert_eq!(versions, ["1.0.0", "1.1.0", "1.2.0"]);

    let hits = client
        .search(&SearchQuery::text("dependency chain").with_limit(3))
        .await
        .expect("search");
    assert_eq!(hits.len(), 3, "{hits:?}");
    assert!(
        hits.iter()
            .all(|h| h.id.to_string().starts_with("chain/pkg-"))
    );
    // A limit over the server's page is read page by page.
    let all = client
        .search(&SearchQuery::text("").with_limit(150))
        .await
        .expect("a search over one page");
    assert_eq!(all.len(), 5, "one hit per package: {all:?}");

    let names = client.suggest("pkg-", 10).await.expect("suggest");
    assert_eq!(names.len(), 5, "{names:?}");

    let missing = client
        .versions(&package("chain/nothing"))
        .await
        .expect_err("an unknown package");
    assert_eq!(missing.kind(), ErrorKind::NotFound, "{missing}");

    // The change feed: one event per published version.
    let registry = served.remote().registry();
    let events = registry.events_since(0, 100).await.expect("events");
    assert_eq!(events.len(), 15);
    assert_eq!(registry.latest_event_seq().await.expect("latest"), 15);

    // An archive by hash, verified against its address.
    let metadata = registry.get(&id("chain/pkg-1@1.0.0")).await.expect("get");
    let store = served.remote().store();
    let bytes = store.get(&metadata.checksum).await.expect("archive");
    assert_eq!(bytes.len() as u64, metadata.size);
    assert!(store.exists(&metadata.checksum).await.expect("exists"));
    let absent = marketplace_core::ContentHash::sha256(b"no such archive");
    assert!(!store.exists(&absent).await.expect("exists"));
    assert_eq!(
        store.get(&absent).await.expect_err("absent").kind(),
        ErrorKind::NotFound
    );
}

/// A user of `served` with a signing key registered to them and a token of `scopes`.
async fn user(served: &Served, name: &str, scopes: &[Scope]) -> (KeyPair, String) {
    let user = UserName::new(name).expect("name");
    served
        .market
        .create_user(user.clone(), false)
        .await
        .expect("user");
    let key = served.market.generate_keypair().await.expect("key");
    served
        .market
        .register_key(&user, &key.public_key)
        .await
        .expect("register key");
    let token = served
        .market
        .create_token(&user, "laptop", scopes.iter().copied(), None, None)
        .await
        .expect("token")
        .secret;
    (key, token)
}

/// An archive of a new package `id` with no dependencies.
fn fresh_archive(id_text: &str) -> bytes::Bytes {
    let mut metadata = corpus::dependency_chain(1).remove(0);
    metadata.id = id(id_text);
    corpus::archive(&metadata, 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_is_signed_here_and_made_by_the_server_as_the_token_s_user() {
    let served = Served::start().await;
    let (key, token) = user(
        &served,
        "alice",
        &[Scope::PublishNew, Scope::PublishUpdate, Scope::Yank],
    )
    .await;
    let home = tempfile::tempdir().expect("tempdir");
    let client = MarketplaceBuilder::remote(
        &served.base,
        RemoteOptions::default().with_token(token),
        home.path().join("trust.json"),
    )
    .and_then(MarketplaceBuilder::build)
    .expect("a remote client");
    client
        .trust_key(&key.public_key, TrustLevel::Full)
        .await
        .expect("trust");

    let published = client
        .publish(fresh_archive("alice-tool@1.0.0"), &key.private_key)
        .await
        .expect("a publish over HTTP");
    assert_eq!(published.id, id("alice-tool@1.0.0"));
    assert!(published.indexed);
    // On the server: registered, stored, indexed, and alice owns it.
    let info = served
        .market
        .info(&id("alice-tool@1.0.0"))
        .await
        .expect("the server has it");
    assert_eq!(info.metadata.checksum, published.checksum);
    let owners = served
        .market
        .owners(&marketplace_core::OwnerTarget::Package(package(
            "alice-tool",
        )))
        .await
        .expect("owners");
    assert_eq!(owners, [UserName::new("alice").unwrap()]);
    let hits = client
        .search(&SearchQuery::text("alice-tool"))
        .await
        .expect("search");
    assert_eq!(
        hits.first().map(|h| h.id.clone()),
        Some(id("alice-tool@1.0.0"))
    );
    // And installable from there, verified here.
    let dest = home.path().join("tools");
    client
        .install(
            &package("alice-tool"),
            &parse_requirement("^1").unwrap(),
            &dest,
        )
        .await
        .expect("install what was just published");

    // The same version again is refused before anything is sent.
    let again = client
        .publish(fresh_archive("alice-tool@1.0.0"), &key.private_key)
        .await
        .expect_err("a version that exists");
    assert_eq!(again.kind(), ErrorKind::AlreadyExists, "{again}");

    // Yank and unyank go through the API too.
    client
        .yank(&id("alice-tool@1.0.0"), "broken build")
        .await
        .expect("yank over HTTP");
    let yank = served
        .market
        .info(&id("alice-tool@1.0.0"))
        .await
        .expect("info")
        .yanked
        .expect("yanked on the server");
    assert_eq!(yank.reason, "broken build");
    client
        .unyank(&id("alice-tool@1.0.0"))
        .await
        .expect("unyank over HTTP");
    assert!(
        served
            .market
            .info(&id("alice-tool@1.0.0"))
            .await
            .expect("info")
            .yanked
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_the_server_refuses_is_the_server_s_error_and_changes_nothing() {
    let served = Served::start().await;
    let (_, token) = user(&served, "bob", &[Scope::PublishNew]).await;
    let home = tempfile::tempdir().expect("tempdir");
    let connect = |token: Option<String>| {
        let options = match token {
            Some(token) => RemoteOptions::default().with_token(token),
            None => RemoteOptions::default(),
        };
        MarketplaceBuilder::remote(&served.base, options, home.path().join("trust.json"))
            .and_then(MarketplaceBuilder::build)
            .expect("a remote client")
    };
    // A key bob did not register (the user trusts it; the server does not know it as his).
    let anonymous = connect(None);
    let stranger = anonymous.generate_keypair().await.expect("key");
    anonymous
        .trust_key(&stranger.public_key, TrustLevel::Full)
        .await
        .expect("trust");
    let err = anonymous
        .publish(fresh_archive("anon-tool@1.0.0"), &stranger.private_key)
        .await
        .expect_err("no token");
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let bob = connect(Some(token));
    let err = bob
        .publish(fresh_archive("bob-tool@1.0.0"), &stranger.private_key)
        .await
        .expect_err("a key that is not bob's");
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(err.to_string().contains("not registered"), "{err}");
    // A yank without the yank scope.
    let err = bob
        .yank(&id("chain/pkg-0@1.0.0"), "no")
        .await
        .expect_err("no yank scope");
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    for absent in ["anon-tool", "bob-tool"] {
        assert_eq!(
            served
                .market
                .versions(&package(absent))
                .await
                .map_err(|e| e.kind()),
            Err(ErrorKind::NotFound)
        );
    }
    assert!(
        served
            .market
            .info(&id("chain/pkg-0@1.0.0"))
            .await
            .expect("info")
            .yanked
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_the_backends_themselves_are_refused() {
    let served = Served::start().await;
    let remote = served.remote();
    let metadata = corpus::dependency_chain(1).remove(0);
    let err = remote
        .registry()
        .register(metadata.clone(), metadata.checksum.clone())
        .await
        .expect_err("register on a remote registry");
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.to_string().contains("remote marketplace"), "{err}");
    let err = remote
        .store()
        .store(bytes::Bytes::from_static(b"bytes"))
        .await
        .expect_err("store on a remote store");
    assert!(err.to_string().contains("remote marketplace"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_marketplace_needs_the_token_and_says_so() {
    let home = tempfile::tempdir().expect("tempdir");
    let market = MarketplaceBuilder::local(home.path())
        .and_then(MarketplaceBuilder::build)
        .expect("a home");
    let root = marketplace_core::UserName::new("root").unwrap();
    market.create_user(root.clone(), true).await.unwrap();
    let token = market
        .create_token(
            &root,
            "reader",
            [marketplace_core::Scope::Admin],
            None,
            None,
        )
        .await
        .unwrap()
        .secret;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let config = marketplace_server::ServerConfig::default().with_private(true);
    tokio::spawn(
        Server::new(Arc::new(market))
            .with_config(config)
            .serve(listener, async {
                let _ = stopped.await;
            }),
    );
    let anonymous = Remote::connect(&base, RemoteOptions::default()).unwrap();
    let err = anonymous
        .registry()
        .list_version_states(&package("anything"))
        .await
        .expect_err("a read without the token");
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    let with_token = Remote::connect(&base, RemoteOptions::default().with_token(token)).unwrap();
    let err = with_token
        .registry()
        .list_version_states(&package("anything"))
        .await
        .expect_err("an unknown package");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_install_of_the_graph_is_served_from_the_archive_cache() {
    let served = Served::start().await;
    let user = tempfile::tempdir().expect("tempdir");
    let cache = marketplace_client::backends::localstore::LocalPackageStore::open(
        user.path().join("cache"),
    )
    .expect("cache");
    let client = MarketplaceBuilder::remote(
        &served.base,
        RemoteOptions::default(),
        user.path().join("trust.json"),
    )
    .map(|builder| {
        builder.map_store(|store| {
            Arc::new(marketplace_client::CachedStore::new(store, Arc::new(cache)))
        })
    })
    .and_then(MarketplaceBuilder::build)
    .expect("a remote client with a cache");
    client
        .trust_key(&served.key.public_key, TrustLevel::Full)
        .await
        .expect("trust");
    let requirement = parse_requirement("^1").unwrap();
    let first = client
        .install(
            &package("chain/pkg-0"),
            &requirement,
            &user.path().join("a"),
        )
        .await
        .expect("first install");
    assert_eq!(first.installed.len(), 5);
    assert_eq!(
        served.archives_sent.load(Ordering::SeqCst),
        5,
        "one archive each"
    );
    // Another destination: every archive comes from the cache, verified again.
    let second = client
        .install(
            &package("chain/pkg-0"),
            &requirement,
            &user.path().join("b"),
        )
        .await
        .expect("second install");
    assert_eq!(second.installed.len(), 5);
    assert_eq!(
        served.archives_sent.load(Ordering::SeqCst),
        5,
        "a warm cache downloads nothing"
    );
    // A cached archive that was damaged is fetched again, never used.
    for entry in walk(&user.path().join("cache")) {
        let mut bytes = std::fs::read(&entry).unwrap();
        if bytes.len() > 100 {
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(&entry, &bytes).unwrap();
        }
    }
    let third = client
        .install(
            &package("chain/pkg-0"),
            &requirement,
            &user.path().join("c"),
        )
        .await
        .expect("an install over a damaged cache");
    assert_eq!(third.installed.len(), 5);
    assert_eq!(
        served.archives_sent.load(Ordering::SeqCst),
        10,
        "fetched again"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
