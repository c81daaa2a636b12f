//! The dimensions of the matrix and their modes — the one table every run enumerates — and how
//! each mode's backend is made.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use marketplace_client::MarketplaceBuilder;
use marketplace_conformance::layer::{Layered, RegistryOverride};
use marketplace_conformance::{Capabilities, Tamper};
use marketplace_core::{
    ContentHash, CryptoVerifier, PackageId, PackageRef, PackageStore, Registry, Result,
    SearchEngine, VersionState, async_trait,
};
use marketplace_crypto_ring::RingCryptoVerifier;
use marketplace_registry_postgres::PostgresRegistry;
use marketplace_registry_sqlite::SqliteRegistry;
use marketplace_search_tantivy::TantivySearchEngine;
use marketplace_store_local::LocalPackageStore;
use marketplace_store_objectstore::{ObjectStorePackageStore, S3Config};
use marketplace_testing::postgres::PostgresServer;
use marketplace_testing::s3::S3Server;

/// The dimensions and their modes. The names match what the backend crates' conformance tests
/// call their reports (`SuiteReport::named`).
pub(crate) const DIMENSIONS: [(&str, &[&str]); 4] = [
    ("registry", &["sqlite-file", "sqlite-memory", "postgres"]),
    (
        "store",
        &[
            "local",
            "memory",
            "objectstore-local",
            "objectstore-memory",
            "s3",
        ],
    ),
    ("search", &["tantivy-ram", "tantivy-disk"]),
    ("crypto", &["ring"]),
];

/// Everything the constructors need: scratch space, the S3 server, the broken mode if any.
pub(crate) struct Env {
    dir: tempfile::TempDir,
    next: AtomicUsize,
    s3: Option<S3Server>,
    /// One server for the run; each registry gets a database of its own.
    postgres: Option<PostgresServer>,
    /// The databases made since the last [`Env::release`].
    databases: std::sync::Mutex<Vec<String>>,
    broken: Option<(String, String)>,
}

/// Stops the run with a message: a backend that cannot even be made fails the whole matrix.
fn or_exit<T>(what: &str, result: Result<T>) -> T {
    result.unwrap_or_else(|e| {
        eprintln!("error: could not make the {what} backend: {e}");
        std::process::exit(1);
    })
}

impl Env {
    /// Scratch space, and an S3 server when a selected store mode needs one.
    pub(crate) fn new(selected: &[Vec<String>], broken: Option<(String, String)>) -> Self {
        let s3 = if selected[1].iter().any(|m| m == "s3") {
            if !S3Server::available() {
                eprintln!(
                    "error: the s3 store mode needs moto_server (pip install 'moto[server]'), or leave it out with --store local,memory"
                );
                std::process::exit(1);
            }
            S3Server::start()
        } else {
            None
        };
        let postgres = if selected[0].iter().any(|m| m == "postgres") {
            if !PostgresServer::available() {
                eprintln!(
                    "error: the postgres registry mode needs PostgreSQL (apt-get install postgresql), or leave it out with --registry sqlite-file,sqlite-memory"
                );
                std::process::exit(1);
            }
            PostgresServer::start()
        } else {
            None
        };
        Env {
            dir: or_exit(
                "scratch",
                tempfile::tempdir().map_err(|e| {
                    marketplace_core::Error::backend(
                        "filesystem",
                        "make a scratch directory",
                        e,
                        false,
                    )
                }),
            ),
            next: AtomicUsize::new(0),
            s3,
            postgres,
            databases: std::sync::Mutex::new(Vec::new()),
            broken,
        }
    }

    /// Removes the scratch directories and drops the PostgreSQL databases made since the last
    /// call: the suites run one after another, a finished suite's backends are not used again,
    /// and a whole run of them would otherwise fill the disk.
    pub(crate) fn release(&self) {
        for entry in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                eprintln!("error: could not remove {}: {e}", entry.path().display());
                std::process::exit(1);
            }
        }
        let (Some(server), Ok(mut databases)) = (&self.postgres, self.databases.lock()) else {
            return;
        };
        for name in databases.drain(..) {
            if let Err(e) = server.drop_database(&name) {
                eprintln!("error: could not drop a finished database: {e}");
                std::process::exit(1);
            }
        }
    }

    fn scratch(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        self.dir.path().join(format!("m{n}"))
    }

    /// Whether `--break` chose this mode.
    pub(crate) fn is_broken(&self, dimension: &str, mode: &str) -> bool {
        self.broken
            .as_ref()
            .is_some_and(|(d, m)| d == dimension && m == mode)
    }

    pub(crate) fn registry(&self, mode: &str) -> Arc<dyn Registry> {
        let registry: Arc<dyn Registry> = match mode {
            "sqlite-file" => Arc::new(or_exit(
                mode,
                SqliteRegistry::open(self.scratch().join("registry.sqlite3")),
            )),
            "postgres" => Arc::new(self.postgres_registry()),
            _ => Arc::new(or_exit(mode, SqliteRegistry::open_in_memory())),
        };
        if self.is_broken("registry", mode) {
            Arc::new(Layered::new(registry).with_override(ForgetsYanks))
        } else {
            registry
        }
    }

    /// A registry on a new, empty database of the run's PostgreSQL server.
    fn postgres_registry(&self) -> PostgresRegistry {
        let Some(server) = &self.postgres else {
            eprintln!("error: the postgres mode was chosen but no PostgreSQL server runs");
            std::process::exit(1);
        };
        let name = format!("matrix{}", self.next.fetch_add(1, Ordering::SeqCst));
        let url = server.create_database(&name).unwrap_or_else(|e| {
            eprintln!("error: could not make the postgres backend: {e}");
            std::process::exit(1);
        });
        if let Ok(mut databases) = self.databases.lock() {
            databases.push(name);
        }
        // The constructors are synchronous (the kit's factories are); the matrix runs on a
        // multi-threaded runtime, so this worker may block on the connection.
        let connected = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(PostgresRegistry::connect(&url))
        });
        or_exit("postgres", connected)
    }

    pub(crate) fn store(&self, mode: &str) -> Arc<dyn PackageStore> {
        self.store_under_test(mode, &Capabilities::default()).0
    }

    /// The store of `mode` and what the store suite may claim of it: its objects can be
    /// corrupted beneath it, and its uploads hold bounded memory unless it lives in memory.
    pub(crate) fn store_under_test(
        &self,
        mode: &str,
        caps: &Capabilities,
    ) -> (Arc<dyn PackageStore>, Capabilities) {
        let mut caps = caps.clone();
        caps.bounded_upload_memory = !mode.ends_with("memory");
        let store: Arc<dyn PackageStore> = match mode {
            "local" | "memory" => {
                let store = match mode {
                    "local" => or_exit(mode, LocalPackageStore::open(self.scratch().join("store"))),
                    _ => LocalPackageStore::in_memory(),
                };
                caps = caps.with_tamper(Beneath::Local(store.clone()));
                Arc::new(store)
            }
            _ => {
                let store = self.object_store(mode);
                caps = caps.with_tamper(Beneath::ObjectStore(store.clone()));
                Arc::new(store)
            }
        };
        (store, caps)
    }

    fn object_store(&self, mode: &str) -> ObjectStorePackageStore {
        match mode {
            "objectstore-local" => or_exit(
                mode,
                ObjectStorePackageStore::local(self.scratch().join("store")),
            ),
            "objectstore-memory" => ObjectStorePackageStore::in_memory(),
            _ => {
                let Some(server) = &self.s3 else {
                    eprintln!("error: the s3 mode was chosen but no S3 server runs");
                    std::process::exit(1);
                };
                let name = format!("matrix-{}", self.next.fetch_add(1, Ordering::SeqCst));
                let bucket = or_exit(mode, server.bucket(&name));
                or_exit(
                    mode,
                    ObjectStorePackageStore::s3(S3Config::compatible(
                        bucket.name,
                        bucket.endpoint,
                        bucket.region,
                        bucket.access_key_id,
                        bucket.secret_access_key,
                    )),
                )
            }
        }
    }

    pub(crate) fn search(&self, mode: &str) -> Arc<dyn SearchEngine> {
        match mode {
            "tantivy-disk" => Arc::new(or_exit(
                mode,
                TantivySearchEngine::open(self.scratch().join("index")),
            )),
            _ => Arc::new(or_exit(mode, TantivySearchEngine::in_memory())),
        }
    }

    pub(crate) fn crypto(&self, mode: &str) -> Arc<dyn CryptoVerifier> {
        Arc::new(or_exit(
            mode,
            RingCryptoVerifier::open(self.scratch().join("trust.json")),
        ))
    }

    /// A marketplace of one combination of modes.
    pub(crate) fn builder(&self, combo: &[String]) -> MarketplaceBuilder {
        MarketplaceBuilder::new()
            .registry(self.registry(&combo[0]))
            .store(self.store(&combo[1]))
            .search(self.search(&combo[2]))
            .crypto(self.crypto(&combo[3]))
    }
}

/// A registry that forgets yanks: what `--break` injects.
struct ForgetsYanks;

#[async_trait]
impl RegistryOverride for ForgetsYanks {
    async fn list_version_states(
        &self,
        inner: &dyn Registry,
        package: &PackageRef,
    ) -> Result<Vec<VersionState>> {
        let mut states = inner.list_version_states(package).await?;
        states.iter_mut().for_each(|s| s.yanked = None);
        Ok(states)
    }

    async fn is_yanked(&self, inner: &dyn Registry, id: &PackageId) -> Result<bool> {
        inner.is_yanked(id).await.map(|_| false)
    }
}

/// Corrupts a store's objects by writing past its verification, as a failing disk would.
enum Beneath {
    Local(LocalPackageStore),
    ObjectStore(ObjectStorePackageStore),
}

#[async_trait]
impl Tamper for Beneath {
    async fn replace(
        &self,
        hash: &ContentHash,
        bytes: bytes::Bytes,
    ) -> std::result::Result<(), String> {
        match self {
            Beneath::Local(store) => store.overwrite_unverified(hash, bytes).await,
            Beneath::ObjectStore(store) => store.overwrite_unverified(hash, bytes).await,
        }
        .map_err(|e| e.to_string())
    }
}
