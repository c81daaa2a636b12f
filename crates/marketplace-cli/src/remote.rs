//! A marketplace served elsewhere (`--registry NAME|URL`, `MKT_REGISTRY`, or `[registry]
//! default` in config.toml): which one, its API token in the home's credentials file, and the
//! client composed over it — the server's API for what it reads and writes, the home's own
//! trust store for every check.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use marketplace_client::backends::localstore::LocalPackageStore;
use marketplace_client::backends::remote::{Remote, RemoteOptions};
use marketplace_client::backends::ring::RingCryptoVerifier;
use marketplace_client::{
    CachedRegistry, CachedStore, MarketplaceBuilder, MarketplaceClient, MetadataCache,
};
use marketplace_core::{CryptoVerifier, HttpUrl, KeyId, TrustLevel, TrustResult};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::Config;
use crate::output::Output;
use crate::{CliError, CliResult, exit};

/// The credentials file in the home: API tokens by registry URL, readable by its owner only.
pub(crate) const CREDENTIALS: &str = "credentials.toml";

/// The registry a command uses.
#[derive(Debug, Clone)]
pub(crate) struct Chosen {
    /// Its URL, normalised (no trailing `/`).
    pub(crate) url: String,
    /// Given on the command line or in MKT_REGISTRY (not by the configuration's default).
    pub(crate) explicit: bool,
}

/// The registry `flag` (or else the configuration's default) names, or `None` for the home's
/// own marketplace. A name must be one of `[registries]`; a URL must be `http(s)://`.
pub(crate) fn choose(flag: Option<&str>, config: &Config) -> CliResult<Option<Chosen>> {
    let (text, explicit) = match flag {
        // `--registry ""`: the home's own marketplace, whatever the configuration's default.
        Some("") => return Ok(None),
        Some(flag) => (flag.to_owned(), true),
        None => match config.registry.as_ref().and_then(|r| r.default.clone()) {
            Some(default) => (default, false),
            None => return Ok(None),
        },
    };
    let url = if text.contains("://") {
        text
    } else {
        match config.registries.get(&text) {
            Some(entry) => entry.url.clone(),
            None => {
                let known: Vec<&str> = config.registries.keys().map(String::as_str).collect();
                return Err(CliError::usage(format!("no registry named {text:?}")).with_hint(
                    if known.is_empty() {
                        "give a URL (--registry https://…), or name one in config.toml: [registries.NAME] url = \"https://…\"".to_owned()
                    } else {
                        format!("the registries in config.toml are {}; or give a URL", known.join(", "))
                    },
                ));
            }
        }
    };
    let parsed = HttpUrl::parse("registry", &url).map_err(|e| {
        CliError::usage(e.to_string()).with_hint("a registry is an http:// or https:// URL")
    })?;
    Ok(Some(Chosen {
        url: parsed.as_str().trim_end_matches('/').to_owned(),
        explicit,
    }))
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    #[serde(default)]
    registries: BTreeMap<String, Credential>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credential {
    token: String,
}

fn credentials_path(root: &Path) -> PathBuf {
    root.join(CREDENTIALS)
}

/// The credentials file, or none; refused when others may read it (as ssh refuses a key).
fn read_credentials(root: &Path) -> CliResult<Credentials> {
    let path = credentials_path(root);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::default()),
        Err(e) => {
            return Err(CliError {
                code: exit::FAILURE,
                message: format!("could not read {}: {e}", path.display()),
                hint: None,
            });
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        if mode & 0o077 != 0 {
            return Err(CliError {
                code: exit::FAILURE,
                message: format!(
                    "{} holds API tokens and other users may read it (mode {:o}); refusing to use it",
                    path.display(),
                    mode & 0o777
                ),
                hint: Some(format!(
                    "make it yours alone: chmod 600 {} (and revoke the tokens if others read them)",
                    path.display()
                )),
            });
        }
    }
    toml::from_str(&text).map_err(|e| CliError {
        code: exit::INVALID,
        message: format!(
            "{} is not a credentials file: {}",
            path.display(),
            e.message()
        ),
        hint: Some("`mkt logout` and `mkt login` write it again".into()),
    })
}

/// Writes the credentials file whole (owner-only, fsynced, renamed into place).
fn write_credentials(root: &Path, credentials: &Credentials) -> CliResult {
    let text = toml::to_string(credentials).map_err(|e| CliError {
        code: exit::FAILURE,
        message: format!("could not write the credentials: {e}"),
        hint: None,
    })?;
    let text = format!(
        "# API tokens of the registries `mkt login` stored, by URL. Keep this file private.\n{text}"
    );
    std::fs::create_dir_all(root)
        .map_err(|e| io_failure(format!("create {}", root.display()), e))?;
    let staged = crate::home::staged(root, text.as_bytes(), true)?;
    let path = credentials_path(root);
    staged
        .persist(&path)
        .map(drop)
        .map_err(|e| io_failure(format!("write {}", path.display()), e.error))
}

fn io_failure(what: String, e: std::io::Error) -> CliError {
    CliError {
        code: exit::FAILURE,
        message: format!("{what}: {e}"),
        hint: None,
    }
}

/// The stored token of `url`, if any.
fn token_for(root: &Path, url: &str) -> CliResult<Option<String>> {
    Ok(read_credentials(root)?
        .registries
        .remove(url)
        .map(|c| c.token))
}

/// The server of `chosen` itself, with the stored token: for the account commands.
pub(crate) fn connection(root: &Path, chosen: &Chosen) -> CliResult<Remote> {
    let mut options = RemoteOptions::default();
    if let Some(token) = token_for(root, &chosen.url)? {
        options = options.with_token(token);
    }
    Ok(Remote::connect(&chosen.url, options)?)
}

/// The client of `chosen`: the server's API, the stored token, the home's trust store — the
/// file when it exists (or `create_trust`), else an empty one in memory (nothing is trusted,
/// so nothing installs; reads work and nothing is created) — and the home's archive cache
/// (`cache/archives/`, by content hash).
pub(crate) fn client(
    root: &Path,
    chosen: &Chosen,
    create_trust: bool,
    out: &Output,
) -> CliResult<MarketplaceClient> {
    let mut options = RemoteOptions::default();
    if let Some(token) = token_for(root, &chosen.url)? {
        options = options.with_token(token);
    }
    if let Some(bars) = out.transfers() {
        options = options.with_progress(bars);
    }
    let trust = root.join("trust.json");
    let builder = if trust.is_file() || create_trust {
        MarketplaceBuilder::remote(&chosen.url, options, &trust)?
    } else {
        let remote = Remote::connect(&chosen.url, options)?;
        MarketplaceBuilder::new()
            .registry(Arc::new(remote.registry()))
            .store(Arc::new(remote.store()))
            .search(Arc::new(remote.search()))
            .upstream(Arc::new(remote))
            .crypto(Arc::new(RingCryptoVerifier::in_memory()))
    };
    // Archives by hash under the home, so a second install of a graph downloads nothing, and
    // the metadata read, for --offline (a home that does not exist yet is not made by a read).
    let builder = if root.is_dir() {
        let cache = LocalPackageStore::open(archive_cache(root))?;
        let metadata = metadata_cache(root, chosen);
        builder
            .map_store(|store| Arc::new(CachedStore::new(store, Arc::new(cache))))
            .map_registry(|registry| Arc::new(CachedRegistry::new(registry, metadata)))
    } else {
        builder
    };
    Ok(builder.build()?)
}

/// The archives read from any registry, by content hash.
fn archive_cache(root: &Path) -> PathBuf {
    root.join("cache").join("archives")
}

/// The metadata read from `chosen` (per registry: two registries may hold different packages
/// of one name): `cache/metadata/http-127.0.0.1-7878/`.
fn metadata_cache(root: &Path, chosen: &Chosen) -> MetadataCache {
    let key: String = chosen
        .url
        .replace("://", "-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    MetadataCache::new(root.join("cache").join("metadata").join(key))
}

/// The client of `chosen` without the network (`--offline`): the metadata and archives earlier
/// commands cached under the home, verified against the home's trust store as online.
pub(crate) fn offline_client(root: &Path, chosen: &Chosen) -> CliResult<MarketplaceClient> {
    let metadata = metadata_cache(root, chosen);
    if !metadata.dir().is_dir() {
        return Err(CliError {
            code: exit::NOT_FOUND,
            message: format!(
                "nothing of {} is cached under {} (--offline uses only what earlier commands read)",
                chosen.url,
                root.display()
            ),
            hint: Some("run the command once online first".into()),
        });
    }
    let trust = root.join("trust.json");
    let crypto: Arc<dyn CryptoVerifier> = if trust.is_file() {
        Arc::new(RingCryptoVerifier::open(&trust)?)
    } else {
        Arc::new(RingCryptoVerifier::in_memory())
    };
    let archives = LocalPackageStore::open(archive_cache(root))?;
    Ok(MarketplaceBuilder::offline(metadata, Arc::new(archives), crypto).build()?)
}

/// A token as the server mints them: `mkt_` and 64 hexadecimal digits.
fn is_token(text: &str) -> bool {
    text.strip_prefix(marketplace_client::TOKEN_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `mkt login`: reads the token from stdin, checks it with the server, stores it, then shows
/// the server's keys and trusts those the user names (or confirms at the terminal).
pub(crate) async fn login(
    root: &Path,
    chosen: &Chosen,
    fingerprints: &[String],
    out: &Output,
) -> CliResult {
    let wanted: Vec<KeyId> = fingerprints
        .iter()
        .map(|f| {
            f.parse().map_err(|e: marketplace_core::Error| {
                CliError::usage(format!("--trust-fingerprint {f}: {e}"))
            })
        })
        .collect::<CliResult<_>>()?;
    let interactive = std::io::stdin().is_terminal();
    let token = read_token(interactive, &chosen.url)?;
    let remote = Remote::connect(&chosen.url, RemoteOptions::default().with_token(&token))?;
    let user = remote.whoami().await.map_err(|e| {
        let unauthorized = e.kind() == marketplace_core::ErrorKind::Unauthorized;
        let e = CliError::from(e);
        if unauthorized {
            e.with_hint("the server does not accept this token (mistyped, expired or revoked?); an admin makes one with `mkt token create`")
        } else {
            e
        }
    })?;
    let mut credentials = read_credentials(root)?;
    credentials
        .registries
        .insert(chosen.url.clone(), Credential { token });
    write_credentials(root, &credentials)?;
    out.line(format!(
        "logged in to {} as {user}; the token is in {}",
        chosen.url,
        credentials_path(root).display()
    ));

    let keys = remote.server_keys().await?;
    for id in &wanted {
        if !keys
            .iter()
            .any(|(k, level)| k.key_id() == *id && level.is_some())
        {
            return Err(CliError {
                code: exit::NOT_FOUND,
                message: format!("{} does not vouch for a key {id}", chosen.url),
                hint: Some("`mkt login` lists the keys it does; trust another author's key with `mkt trust add THEIR-KEY.pub.pem`".into()),
            });
        }
    }
    let verifier = RingCryptoVerifier::open(root.join("trust.json"))?;
    let mut shown = Vec::new();
    for (key, level) in &keys {
        let id = key.key_id();
        let Some(level) = level else {
            continue;
        };
        let already = matches!(
            verifier.verify_trust(&id).await?,
            TrustResult::Trusted { .. }
        );
        let trust_now = !already
            && (wanted.contains(&id)
                || (interactive
                    && !out.is_json()
                    && confirm(&format!(
                        "trust key {id} (the server trusts it: {}) for packages you install? [y/N] ",
                        level_name(*level)
                    ))?));
        if trust_now {
            verifier.add_trusted_key(key, TrustLevel::Full).await?;
        }
        let here = already || trust_now;
        out.line(format!(
            "  server key {id}: {}",
            if here {
                "trusted here"
            } else {
                "not trusted here"
            }
        ));
        shown.push(json!({ "key_id": id.to_string(), "trusted_here": here }));
    }
    if shown.iter().any(|k| k["trusted_here"] == false) {
        out.note("packages signed by a key not trusted here are refused: trust a key with `mkt login --trust-fingerprint KEY_ID` once you have checked it with its owner");
    }
    out.json(&json!({ "registry": chosen.url, "user": user.to_string(), "keys": shown }))
}

fn level_name(level: TrustLevel) -> &'static str {
    match level {
        TrustLevel::Marginal => "marginal",
        TrustLevel::Full => "full",
        TrustLevel::Ultimate => "ultimate",
    }
}

/// The token from stdin: one line typed after a prompt at a terminal, else the whole input.
fn read_token(interactive: bool, url: &str) -> CliResult<String> {
    let mut text = String::new();
    let read = if interactive {
        eprint!("paste the API token for {url} and press Enter: ");
        let _ = std::io::stderr().flush();
        std::io::stdin().lock().read_line(&mut text)
    } else {
        std::io::stdin().read_to_string(&mut text)
    };
    read.map_err(|e| io_failure("read the token from stdin".into(), e))?;
    let token = text.trim().to_owned();
    if !is_token(&token) {
        return Err(CliError::usage(
            "that is not an API token: tokens are mkt_ and 64 hexadecimal digits",
        )
        .with_hint("pipe it in: `mkt login --registry URL < token.txt` (never on the command line, where other users see it)"));
    }
    Ok(token)
}

/// A yes/no question at the terminal (stdin); no answer is no.
fn confirm(question: &str) -> CliResult<bool> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| io_failure("read the answer".into(), e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `mkt logout`: forgets the stored token of `chosen`.
pub(crate) fn logout(root: &Path, chosen: &Chosen, out: &Output) -> CliResult {
    let mut credentials = read_credentials(root)?;
    let removed = credentials.registries.remove(&chosen.url).is_some();
    if removed {
        write_credentials(root, &credentials)?;
        out.line(format!(
            "logged out of {}: its token is removed from {}",
            chosen.url,
            credentials_path(root).display()
        ));
    } else {
        out.line(format!("no token stored for {}", chosen.url));
    }
    out.json(&json!({ "registry": chosen.url, "removed": removed }))
}

/// Archive transfers on the terminal: one bar per direction, in bytes, over every transfer at
/// once ("download [=====>   ] 1.2 MiB/3.4 MiB 12/50"), added when the first transfer of that
/// direction begins and cleared when the command ends.
pub(crate) struct TransferBars {
    bars: indicatif::MultiProgress,
    download: std::sync::OnceLock<Direction>,
    upload: std::sync::OnceLock<Direction>,
}

/// One direction's bar and its transfer counts.
struct Direction {
    bar: indicatif::ProgressBar,
    started: Arc<std::sync::atomic::AtomicU64>,
    ended: Arc<std::sync::atomic::AtomicU64>,
}

impl TransferBars {
    pub(crate) fn new(bars: indicatif::MultiProgress) -> Self {
        TransferBars {
            bars,
            download: std::sync::OnceLock::new(),
            upload: std::sync::OnceLock::new(),
        }
    }

    /// `direction`'s bar, made (as long as `total`) and drawn when its first transfer begins;
    /// whether it was made now.
    fn direction(
        &self,
        direction: marketplace_client::backends::remote::Direction,
        total: u64,
    ) -> (&Direction, bool) {
        use marketplace_client::backends::remote::Direction as Way;
        let (slot, prefix) = match direction {
            Way::Download => (&self.download, "download"),
            Way::Upload => (&self.upload, "upload"),
        };
        let mut made = false;
        let way = slot.get_or_init(|| {
            made = true;
            let bar = self.bars.add(indicatif::ProgressBar::new(total));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(prefix);
            Direction {
                bar,
                started: Arc::default(),
                ended: Arc::default(),
            }
        });
        (way, made)
    }
}

impl Drop for TransferBars {
    fn drop(&mut self) {
        for direction in [self.download.get(), self.upload.get()]
            .into_iter()
            .flatten()
        {
            direction.bar.finish_and_clear();
        }
    }
}

impl marketplace_client::backends::remote::Progress for TransferBars {
    fn begin(
        &self,
        direction: marketplace_client::backends::remote::Direction,
        _label: &str,
        total: Option<u64>,
    ) -> Box<dyn marketplace_client::backends::remote::Transfer> {
        use std::sync::atomic::Ordering;
        let total = total.unwrap_or(0);
        let (way, made) = self.direction(direction, total);
        if !made {
            way.bar.inc_length(total);
        }
        let started = way.started.fetch_add(1, Ordering::Relaxed) + 1;
        let ended = way.ended.load(Ordering::Relaxed);
        way.bar.set_message(format!("{ended}/{started}"));
        Box::new(TransferLine {
            bar: way.bar.clone(),
            started: Arc::clone(&way.started),
            ended: Arc::clone(&way.ended),
        })
    }
}

/// One transfer on its direction's bar.
struct TransferLine {
    bar: indicatif::ProgressBar,
    started: Arc<std::sync::atomic::AtomicU64>,
    ended: Arc<std::sync::atomic::AtomicU64>,
}

impl marketplace_client::backends::remote::Transfer for TransferLine {
    fn advance(&mut self, bytes: u64) {
        self.bar.inc(bytes);
    }
}

impl Drop for TransferLine {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        let ended = self.ended.fetch_add(1, Ordering::Relaxed) + 1;
        let started = self.started.load(Ordering::Relaxed);
        self.bar.set_message(format!("{ended}/{started}"));
    }
}
