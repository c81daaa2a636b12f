//! The embedded marketplace in `$MKT_HOME`: created, with a trusted signing key, by the commands
//! that put something into it; every other command needs one that exists.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use marketplace_client::{MarketplaceBuilder, MarketplaceClient};
use marketplace_core::{Key, KeyPair, PackageStore, TrustLevel};

use crate::database::Database;
use crate::output::Output;
use crate::{CliError, CliResult, exit};

/// The name of the key made with a new home.
pub(crate) const DEFAULT_KEY: &str = "default";

/// An open marketplace home.
pub(crate) struct Home {
    pub(crate) root: PathBuf,
    pub(crate) client: MarketplaceClient,
    /// The key created because the home was new, if it was.
    pub(crate) created_key: Option<KeyPair>,
    /// Why the search index was rebuilt on opening, and how many versions it holds now.
    pub(crate) repaired_index: Option<(String, u64)>,
    /// Registry events the search index had missed and applied on opening (an earlier process
    /// was killed between registering and indexing), or why catching up failed.
    pub(crate) caught_up: Result<u64, String>,
    /// The home's writer lock, held until the home is dropped (writers only).
    _lock: Option<fs::File>,
}

fn io_error(what: String, e: std::io::Error) -> CliError {
    CliError {
        code: exit::FAILURE,
        message: format!("{what}: {e}"),
        hint: None,
    }
}

/// `$MKT_HOME`, else the platform data directory's `mkt`.
pub(crate) fn resolve(home: Option<PathBuf>) -> CliResult<PathBuf> {
    match home {
        Some(home) => Ok(home),
        None => dirs::data_dir().map(|d| d.join("mkt")).ok_or_else(|| {
            CliError::usage("no data directory on this platform")
                .with_hint("set MKT_HOME or pass --home DIR")
        }),
    }
}

/// The file whose lock a writer holds for as long as it uses the home.
const LOCK_FILE: &str = ".mkt-lock";

/// How a command uses its home.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// It only reads: never waits for a writer, creates nothing, needs an existing home.
    Read,
    /// It changes what an existing home holds: waits for the home lock.
    Write,
    /// It puts something into the home and makes the home if there is none: waits for the
    /// home lock.
    Create,
}

fn missing_home(root: &Path) -> CliError {
    CliError {
        code: exit::NOT_FOUND,
        message: format!("no marketplace at {}", root.display()),
        hint: Some(format!(
            "create one with `mkt init` (it uses MKT_HOME or --home), or point MKT_HOME / --home at an existing marketplace; `mkt demo` makes one with example packages{}",
            if root.exists() {
                ""
            } else {
                " (the directory does not exist)"
            }
        )),
    }
}

/// The home's lock file, opened (created) for locking; `None` where this process cannot write
/// the home (it is then opened read-only, and writes are refused).
fn lock_file(root: &Path) -> CliResult<Option<fs::File>> {
    let path = root.join(LOCK_FILE);
    match fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => Ok(None),
        Err(e) => Err(io_error(format!("open {}", path.display()), e)),
    }
}

/// The home's writer lock if no other process holds it now (never waits).
fn try_lock(root: &Path) -> Option<fs::File> {
    let file = lock_file(root).ok()??;
    file.try_lock().ok().map(|()| file)
}

/// Takes the home's writer lock, waiting (and saying so, once) while another `mkt` holds it,
/// as cargo does for its package cache. The lock is the operating system's (released when the
/// process ends, however it ends), so a killed writer never leaves the home locked.
fn lock(root: &Path, out: &Output) -> CliResult<Option<fs::File>> {
    let path = root.join(LOCK_FILE);
    let Some(file) = lock_file(root)? else {
        return Ok(None);
    };
    match file.try_lock() {
        Ok(()) => {
            tracing::debug!(lock = %path.display(), "took the home lock");
            return Ok(Some(file));
        }
        Err(fs::TryLockError::WouldBlock) => {
            out.note(&format!(
                "waiting for the lock on the marketplace home {} (another mkt is writing to it)",
                root.display()
            ));
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(io_error(format!("lock {}", path.display()), e));
        }
    }
    file.lock()
        .map_err(|e| io_error(format!("lock {}", path.display()), e))?;
    Ok(Some(file))
}

/// Whether `text` can name a key in the keys directory (letters, digits, `-`, `_`).
fn is_key_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Backends that take the place of the home's own (`mkt serve --store s3`, `--database-url`).
#[derive(Clone, Default)]
pub(crate) struct Backends {
    /// Where the archives live instead of the home's `store/`.
    pub(crate) store: Option<Arc<dyn PackageStore>>,
    /// The registry and account store instead of the home's SQLite file.
    pub(crate) database: Option<Database>,
}

impl Home {
    /// The home's directory, its marketplace and its writer lock (held until dropped), for a
    /// command that hands the marketplace to something longer-lived (`mkt serve`).
    pub(crate) fn into_parts(self) -> (PathBuf, MarketplaceClient, Option<fs::File>) {
        (self.root, self.client, self._lock)
    }

    /// Opens the marketplace in `root` as `access` needs: a reader opens an existing home
    /// without any lock (the index without its writer lock) and creates nothing, not even the
    /// default key of a home that lacks one; a writer first takes the home lock; a creating
    /// command makes the home (with a key `default`, trusted `ultimate`) when there is none.
    /// A missing home for a reader or a writer is an error (exit 3) naming `mkt init`.
    ///
    /// `backends.store`, when given, keeps the archives instead of the home's `store/` (`mkt
    /// serve` with an S3 bucket); a reader never uses it. `backends.database`, when given, is
    /// the registry and account store instead of the home's SQLite file (`--database-url`).
    pub(crate) async fn open(
        root: PathBuf,
        access: Access,
        backends: Backends,
        out: &Output,
    ) -> CliResult<Home> {
        tracing::info!(home = %root.display(), ?access, "opening the marketplace home");
        if access != Access::Create && !MarketplaceBuilder::is_local_home(&root) {
            return Err(missing_home(&root));
        }
        if access == Access::Read {
            let builder = MarketplaceBuilder::local_reader(&root).map_err(|e| {
                CliError::from(e)
                    .with_hint("check that MKT_HOME (or --home) points to a marketplace directory")
            })?;
            let builder = match &backends.database {
                Some(database) => database.compose(builder, &root, true)?,
                None => builder,
            };
            let client = builder.build().map_err(|e| {
                CliError::from(e)
                    .with_hint("check that MKT_HOME (or --home) points to a marketplace directory")
            })?;
            // The index lags (events, or download totals a reader recorded: installs count
            // downloads) or is damaged. With no writer at work, this reader takes the free
            // lock and brings the index up to date on disk, so search shows current downloads
            // and the next command after a kill repairs the home; decided before any repair
            // in memory, so nothing is rebuilt twice. A busy writer's lag is its to apply.
            let behind = !client.is_read_only()
                && (client.index_repair().is_some()
                    || client
                        .index_lag()
                        .await
                        .ok()
                        .flatten()
                        .is_some_and(|lag| lag > 0)
                    || client.downloads_pending().await.unwrap_or(false));
            if behind && let Some(lock) = try_lock(&root) {
                drop(client);
                let backends = Backends {
                    store: None,
                    database: backends.database,
                };
                let mut home = Self::open_with(root, false, backends).await?;
                home._lock = Some(lock);
                return Ok(home);
            }
            return Self::reading(root, client).await;
        }
        fs::create_dir_all(&root).map_err(|e| io_error(format!("create {}", root.display()), e))?;
        let lock = lock(&root, out)?;
        let mut home = Self::open_with(root, access == Access::Create, backends).await?;
        home._lock = lock;
        Ok(home)
    }

    async fn open_with(root: PathBuf, create: bool, backends: Backends) -> CliResult<Home> {
        let built = match MarketplaceBuilder::local(&root) {
            Ok(builder) => {
                let builder = match backends.store {
                    Some(store) => builder.store(store),
                    None => builder,
                };
                match &backends.database {
                    Some(database) => database.compose(builder, &root, false)?.build(),
                    None => builder.build(),
                }
            }
            Err(e) => Err(e),
        };
        let client = built.map_err(|e| {
            // A busy home (another process holds a lock) is a transient backend error.
            let hint = if e.is_transient() {
                "another mkt is using this home; wait for it to finish"
            } else {
                "check that MKT_HOME (or --home) points to a writable marketplace directory"
            };
            CliError::from(e).with_hint(hint)
        })?;
        if client.is_read_only() {
            return Self::reading(root, client).await;
        }
        // The search index is derived: one found damaged or missing is rebuilt from the
        // registry before any command uses it.
        let repaired_index = match client.index_repair().map(str::to_owned) {
            Some(why) => Some((why, client.rebuild_index().await?)),
            None => None,
        };
        // Whatever the index missed (a process killed after registering) is applied now. A
        // failure here does not stop the command: the registry is the truth.
        let caught_up = client.sync_index().await.map_err(|e| e.to_string());
        let mut home = Home {
            root,
            client,
            created_key: None,
            repaired_index,
            caught_up,
            _lock: None,
        };
        if create && !home.key_path(DEFAULT_KEY).exists() {
            match home
                .generate_key(DEFAULT_KEY, Some(TrustLevel::Ultimate))
                .await
            {
                Ok(key) => home.created_key = Some(key),
                // Another process made the home's key meanwhile: use that one.
                Err(_) if home.key_path(DEFAULT_KEY).exists() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(home)
    }

    /// A home opened for reading (or one this process cannot write): nothing is created or
    /// caught up; a damaged index is replaced by a copy in memory (the client's), and a lagging
    /// one is reported.
    async fn reading(root: PathBuf, client: MarketplaceClient) -> CliResult<Home> {
        let repaired_index = match client.index_repair().map(str::to_owned) {
            Some(why) => Some((why, client.rebuild_index().await?)),
            None => None,
        };
        let caught_up = match client.index_lag().await {
            Ok(Some(0) | None) => Ok(0),
            Ok(Some(lag)) if client.is_read_only() => Err(format!(
                "the home is read-only, so the index cannot apply the {lag} registry events it is behind"
            )),
            Ok(Some(lag)) => Err(format!(
                "the search index is {lag} registry events behind (a writer is busy, or was stopped; the next command that writes to this home catches it up)"
            )),
            Err(e) => Err(e.to_string()),
        };
        Ok(Home {
            root,
            client,
            created_key: None,
            repaired_index,
            caught_up,
            _lock: None,
        })
    }

    /// The user's side of a marketplace served elsewhere: `root` holds the keys, the trust
    /// store and the credentials; `client` reads and writes through the server's API.
    pub(crate) fn remote(root: PathBuf, client: MarketplaceClient) -> Home {
        Home {
            root,
            client,
            created_key: None,
            repaired_index: None,
            caught_up: Ok(0),
            _lock: None,
        }
    }

    /// Refuses a command that changes the home when the home is read-only, naming it.
    pub(crate) fn require_writable(&self, command: &str) -> CliResult<()> {
        if !self.client.is_read_only() {
            return Ok(());
        }
        Err(CliError {
            code: exit::FAILURE,
            message: format!(
                "the marketplace home {} is read-only: `mkt {command}` changes it",
                self.root.display()
            ),
            hint: Some(
                "run it where the home is writable (reads — search, info, versions, stats, verify, install — work here)"
                    .into(),
            ),
        })
    }

    pub(crate) fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    pub(crate) fn key_path(&self, name: &str) -> PathBuf {
        self.keys_dir().join(format!("{name}.pem"))
    }

    pub(crate) fn public_key_path(&self, name: &str) -> PathBuf {
        self.keys_dir().join(format!("{name}.pub.pem"))
    }

    /// Generates a key pair into `keys/NAME.pem` (owner-only) and `keys/NAME.pub.pem`, and
    /// trusts it at `trust` when given. Refuses to overwrite a key.
    pub(crate) async fn generate_key(
        &self,
        name: &str,
        trust: Option<TrustLevel>,
    ) -> CliResult<KeyPair> {
        if !is_key_name(name) {
            return Err(CliError::usage(format!(
                "key name {name:?} must be letters, digits, '-' or '_'"
            )));
        }
        let private_path = self.key_path(name);
        if private_path.exists() {
            return Err(CliError {
                code: exit::FAILURE,
                message: format!("key {name} already exists at {}", private_path.display()),
                hint: Some("choose another --name; keys are never overwritten".into()),
            });
        }
        let client = &self.client;
        let pair = client.generate_keypair().await?;
        let private_pem = client.export_key_pem(&Key::Private(pair.clone())).await?;
        let public_pem = client
            .export_key_pem(&Key::Public(pair.public_key.clone()))
            .await?;
        let keys = self.keys_dir();
        fs::create_dir_all(&keys).map_err(|e| io_error(format!("create {}", keys.display()), e))?;
        // Written under temporary names, trusted, then renamed into place, private key last: a
        // process killed at any point leaves either a complete, trusted key or none by this
        // name (a temporary file or a trusted key without files is harmless), never a key that
        // exists but is not trusted.
        let private = staged(&keys, private_pem.as_bytes(), true)?;
        let public = staged(&keys, public_pem.as_bytes(), false)?;
        if let Some(level) = trust {
            client.trust_key(&pair.public_key, level).await?;
        }
        place(public, &self.public_key_path(name))?;
        place(private, &private_path)?;
        Ok(pair)
    }

    /// The signing key `name_or_path`: a key name in the keys directory, or a PEM file.
    pub(crate) async fn load_key(&self, name_or_path: &str) -> CliResult<KeyPair> {
        let named = self.key_path(name_or_path);
        let path = if named.is_file() {
            named
        } else {
            PathBuf::from(name_or_path)
        };
        let pem = fs::read_to_string(&path).map_err(|e| CliError {
            code: exit::NOT_FOUND,
            message: format!(
                "signing key {name_or_path}: cannot read {}: {e}",
                path.display()
            ),
            // A key name gets the command that makes it; a path (or anything that cannot be a
            // key name) gets no keygen line built from it.
            hint: Some(if is_key_name(name_or_path) {
                format!(
                    "create one with `mkt keygen --name {name_or_path} --trust`, or pass a PEM file"
                )
            } else {
                format!(
                    "check the path; `mkt keygen --name NAME` makes a key in {}",
                    self.keys_dir().display()
                )
            }),
        })?;
        match self.client.import_key_pem(&pem).await? {
            Key::Private(pair) => Ok(pair),
            Key::Public(_) => Err(CliError {
                code: exit::INVALID,
                message: format!(
                    "{} holds a public key; signing needs the private key",
                    path.display()
                ),
                hint: Some("pass the NAME.pem file, not NAME.pub.pem".into()),
            }),
        }
    }
}

/// `bytes` in a new, fsynced temporary file in `dir` (owner-only when `private`).
pub(crate) fn staged(
    dir: &Path,
    bytes: &[u8],
    private: bool,
) -> CliResult<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".key-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(fs::Permissions::from_mode(if private {
            0o600
        } else {
            0o644
        }));
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = builder
        .tempfile_in(dir)
        .map_err(|e| io_error(format!("create a key file in {}", dir.display()), e))?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| io_error(format!("write a key file in {}", dir.display()), e))?;
    Ok(file)
}

/// Renames a staged key file to `path`, never replacing a key that exists.
fn place(file: tempfile::NamedTempFile, path: &Path) -> CliResult {
    file.persist_noclobber(path)
        .map(drop)
        .map_err(|e| io_error(format!("create {}", path.display()), e.error))
}
