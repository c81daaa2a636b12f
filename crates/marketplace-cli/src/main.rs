//! `mkt`: publish, find, install and verify packages on a Marketplace — by default an embedded
//! one in `$MKT_HOME` (SQLite registry, local package store, tantivy index, ring keys).
#![forbid(unsafe_code)]

mod accounts;
mod cargo;
mod commands;
mod config;
mod database;
mod home;
mod output;
mod remote;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};

use crate::output::{ColorChoice, Output};

/// Exit codes, documented in `mkt --help`.
mod exit {
    /// Something else failed (a backend, a conflict, a version that already exists).
    pub(crate) const FAILURE: u8 = 1;
    /// The command line was wrong: unknown flag, bad name, bad version or requirement.
    pub(crate) const USAGE: u8 = 2;
    /// The package, version or key does not exist.
    pub(crate) const NOT_FOUND: u8 = 3;
    /// Verification failed: tampered bytes, bad or missing signature, untrusted or revoked key.
    pub(crate) const VERIFICATION: u8 = 4;
    /// A package, manifest, archive or key file is invalid.
    pub(crate) const INVALID: u8 = 5;
}

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 other failure, 2 usage error (bad arguments, names, versions or
requirements), 3 not found, 4 verification failed (tampered archive, bad signature, untrusted or
revoked key), 5 invalid package, manifest, archive or key file.

Configuration: `config.toml` in the home, and a user-level one ($MKT_CONFIG, default
~/.config/mkt/config.toml on Linux), set defaults below the flags and MKT_HOME: `home` (user-level
only), `key` (publish), `dest` (install, update, outdated, audit, uninstall) and `color`.

The marketplace lives in $MKT_HOME (default: the platform data directory, e.g. ~/.local/share/mkt)
and is created, with a signing key `default` that it trusts, by `mkt init` or by the first command
that puts something into it (publish, keygen, trust add). Every other command needs an existing
home and creates nothing: a missing one is exit code 3.

A team's marketplace (`mkt serve`): --registry URL (or MKT_REGISTRY, or a name from
`[registries.NAME] url = …` in config.toml, `[registry] default = NAME`); `mkt login` stores its
token (from stdin) in the home's credentials.toml. Packages are verified against the home's
trust store, never the server's word.

Try `mkt demo` for a guided tour on a fresh, temporary marketplace.";

/// mkt: publish, find, install and verify packages on a Marketplace.
#[derive(Debug, Parser)]
#[command(name = "mkt", version, after_help = AFTER_HELP, propagate_version = true)]
struct Cli {
    /// The marketplace home directory (with --registry: where your keys, trust store and
    /// credentials live).
    #[arg(long, global = true, env = "MKT_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Use the marketplace served at this URL (`mkt serve`), or by this name from
    /// `[registries.NAME]` in config.toml, instead of the home's own; everything installed is
    /// verified here against the home's trust store.
    #[arg(long, global = true, env = "MKT_REGISTRY", value_name = "NAME|URL")]
    registry: Option<String>,
    /// With a registry: use only what earlier commands left under the home (the archives and
    /// metadata they read, and the destination's lockfile), never the network. install,
    /// verify and tree work offline (verified as online; yank state is not known offline, so
    /// a range may choose a version yanked upstream: install with the lockfile); the rest say
    /// they need the network.
    #[arg(long, global = true, env = "MKT_OFFLINE")]
    offline: bool,
    /// Keep the home's registry and accounts in this PostgreSQL database
    /// (`postgres://user:password@host:port/db`), shared by every server and home that names
    /// it, instead of the home's SQLite file; `PG*` variables fill in what the URL leaves out.
    /// `mkt serve` also reads `[registry]` in its --config file.
    #[arg(
        long,
        global = true,
        env = "MKT_DATABASE_URL",
        value_name = "URL",
        conflicts_with = "registry",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    json: bool,
    /// When to colour the output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
    /// Say more: -v shows what each step does and, when something fails, all of it (a
    /// dependency conflict: the solver's full derivation); -vv adds debugging detail. RUST_LOG
    /// (e.g. `RUST_LOG=marketplace=debug`), when set, chooses the log lines instead.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Say less: no notes and no progress, only results and errors.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the marketplace home and a signing key (publish, keygen and trust add also do).
    Init,
    /// Generate a signing key pair into the home's keys directory.
    Keygen {
        /// The key's name (files `keys/NAME.pem` and `keys/NAME.pub.pem`).
        #[arg(long, default_value = "default")]
        name: String,
        /// Also trust the new key for publishing.
        #[arg(long)]
        trust: bool,
    },
    /// Build a reproducible package archive from a directory with a marketplace.toml.
    Pack {
        /// The package directory.
        dir: PathBuf,
        /// Where to write the archive (default: NAME-VERSION.tar.gz in the current directory).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Sign and publish package archives or directories.
    Publish {
        /// Archives (.tar.gz) or package directories; directories are packed first.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The signing key: a name in the home's keys directory or a PEM file.
        #[arg(long, default_value = "default")]
        key: String,
        /// With several paths: publish nothing if any is refused (by default the valid ones
        /// are published and every refusal is listed).
        #[arg(long)]
        atomic: bool,
        /// Check everything a publish checks (archive, manifest, key trust, plugins, the
        /// version free) and change nothing: nothing stored, registered or indexed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Store an API token for a registry (read from stdin, never from the command line), in
    /// the home's credentials file (mode 0600); show the server's signing keys, and trust those
    /// named by --trust-fingerprint (or confirmed at the terminal).
    Login {
        /// Trust this server key for the packages it vouches for (its id, 32 hex digits, as
        /// `mkt login` shows them); repeatable.
        #[arg(long, value_name = "KEY_ID")]
        trust_fingerprint: Vec<String>,
    },
    /// Remove the stored API token of a registry.
    Logout,
    /// Search packages by name, keywords and description.
    Search(SearchArgs),
    /// Browse packages without a query: the latest version of each, by name (or --sort).
    List(ListArgs),
    /// Show a package version (the latest when no version is given).
    Info {
        /// NAME or NAME@VERSION, e.g. acme/web or acme/web@1.2.0.
        package: String,
    },
    /// List every version of a package with its yank state.
    Versions {
        /// The package, e.g. acme/web.
        package: String,
    },
    /// Install a package and its dependencies, verified, with a lockfile.
    Install {
        /// NAME or NAME@REQUIREMENT, e.g. acme/web, acme/web@^1.2 or acme/web@=1.2.3; several
        /// are installed into the same destination one after another.
        #[arg(required = true)]
        packages: Vec<String>,
        /// The directory to install into.
        #[arg(long, default_value = "mkt-packages")]
        dest: PathBuf,
        /// Which versions of one package may be installed together: one of each package, or
        /// cargo's rule of one per semver-compatible series (1.x, 0.13.x, …), which crates need.
        #[arg(long, value_enum, default_value_t = Resolution::OneVersion)]
        resolution: Resolution,
        /// Refuse to change the lockfile: it must already lock the package (as cargo's
        /// --locked).
        #[arg(long)]
        locked: bool,
        /// --locked, and fetch nothing: every locked package must already be installed (as
        /// cargo's --frozen).
        #[arg(long)]
        frozen: bool,
    },
    /// List the installed packages that have newer versions: the newest compatible with the
    /// locked one (same semver series), and the newest of all.
    Outdated {
        /// The directory the packages were installed into.
        #[arg(long, default_value = "mkt-packages")]
        dest: PathBuf,
    },
    /// Update installed packages to the newest compatible versions (same semver series as
    /// locked), and the lockfile with them.
    Update {
        /// Only this installed package (and what it needs); by default every one.
        package: Option<String>,
        /// The directory the packages were installed into.
        #[arg(long, default_value = "mkt-packages")]
        dest: PathBuf,
    },
    /// Check installed packages: against yanks, revoked or untrusted keys and archive hashes,
    /// and their files byte for byte against the verified archives.
    Audit {
        /// The directory the packages were installed into.
        #[arg(long, default_value = "mkt-packages")]
        dest: PathBuf,
    },
    /// Show the dependency graph an install would put in place, as a tree.
    Tree {
        /// NAME or NAME@REQUIREMENT, e.g. acme/web or acme/web@^1.2.
        package: String,
        /// Show instead what in the graph depends on this package, up to the root.
        #[arg(long, short = 'i', value_name = "PACKAGE")]
        invert: Option<String>,
        /// The resolution policy, as for install.
        #[arg(long, value_enum, default_value_t = Resolution::OneVersion)]
        resolution: Resolution,
    },
    /// Remove an installed package, and the dependencies nothing else installed there needs
    /// (the lockfile says which); needs no marketplace.
    Uninstall {
        /// The package, e.g. acme/web.
        package: String,
        /// The directory it was installed into.
        #[arg(long, default_value = "mkt-packages")]
        dest: PathBuf,
    },
    /// Yank a version: kept for lockfiles and exact pins, no longer chosen by ranges.
    Yank {
        /// NAME@VERSION.
        package: String,
        /// Why (shown to users).
        #[arg(long, default_value = "yanked by the publisher")]
        reason: String,
    },
    /// Restore a yanked version.
    Unyank {
        /// NAME@VERSION.
        package: String,
    },
    /// Check a version's signature, signer trust, archive hash and archive rules.
    Verify {
        /// NAME@VERSION.
        package: String,
    },
    /// Manage the keys trusted to publish.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// API tokens of this marketplace's users (for `mkt serve`): create, list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Owners of packages and namespaces: who may publish and yank them.
    #[command(subcommand)]
    Owner(OwnerCommand),
    /// Users' signing keys: a publish over HTTP must be signed by a key of its publisher.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Users of this marketplace (for `mkt serve`).
    #[command(subcommand)]
    User(UserCommand),
    /// Download statistics of a version.
    Stats {
        /// NAME@VERSION.
        package: String,
    },
    /// Rebuild the search index from the registry.
    RebuildIndex,
    /// Delete stored archives that no version refers to.
    Gc {
        /// Only delete orphans older than this many seconds (a publish in progress stores its
        /// archive before registering it).
        #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
        grace: u64,
    },
    /// Print the marketplace's metrics in the Prometheus text format (JSON with --json).
    Metrics,
    /// Serve this home over HTTP: the JSON API under /api/v1/, /health, /ready, /metrics. The
    /// first line of output is the address it listens on; SIGINT or SIGTERM stops it once the
    /// requests in flight have finished.
    Serve(ServeArgs),
    /// Cargo registry tools (`mkt serve` is also a Cargo registry under /cargo/).
    #[command(subcommand)]
    Cargo(CargoCommand),
    /// Print a shell completion script, e.g. `mkt completions bash > ~/.local/share/bash-completion/completions/mkt`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page mkt(1) in roff, e.g. `mkt man > ~/.local/share/man/man1/mkt.1`.
    Man,
    /// A guided tour: a fresh marketplace, the example packages published, searched, installed
    /// with their dependencies and verified.
    Demo {
        /// The packages to publish (default: the repository's examples/packages).
        #[arg(long, value_name = "DIR")]
        packages: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct SearchArgs {
    /// Words to look for (typos are tolerated).
    #[arg(required = true)]
    query: Vec<String>,
    /// Result order.
    #[arg(long, value_enum, default_value_t = Sort::Relevance)]
    sort: Sort,
    #[command(flatten)]
    filters: Filters,
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Result order.
    #[arg(long, value_enum, default_value_t = Sort::Name)]
    sort: Sort,
    #[command(flatten)]
    filters: Filters,
}

/// What search and list keep, and how many.
#[derive(Debug, Args)]
struct Filters {
    /// Only packages in this category (repeatable).
    #[arg(long)]
    category: Vec<String>,
    /// Only packages with this keyword (repeatable).
    #[arg(long)]
    keyword: Vec<String>,
    /// Only packages in this namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// Only packages downloaded at least this often.
    #[arg(long, value_name = "N")]
    min_downloads: Option<u64>,
    /// Include yanked versions.
    #[arg(long)]
    include_yanked: bool,
    /// How many results.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Skip this many results.
    #[arg(long, default_value_t = 0)]
    offset: usize,
}

/// `mkt serve`'s options. Each one is, highest first: the flag, its environment variable, the
/// `--config` file, the default (see `serve.rs`).
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// A server configuration file (TOML: listen, private, the limits and store tables); see
    /// docs/DEPLOYMENT.md. Flags and environment variables override it.
    #[arg(long, env = "MKT_SERVER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The socket address to listen on; port 0 picks a free one [default: 127.0.0.1:7878].
    #[arg(long, env = "MKT_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Require an API token for every request, reads included (default: reads are public).
    #[arg(long, env = "MKT_PRIVATE", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    private: Option<bool>,
    /// The URL clients reach this server at (behind a proxy: `https://registry.example`), for
    /// the links it hands out (the Cargo index's download and API URLs) [default: http:// and
    /// the request's Host].
    #[arg(long, env = "MKT_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Where the archives live: the home's files, or an S3 bucket (set with the --s3-* flags
    /// and the standard AWS_* credentials) [default: home].
    #[arg(long, env = "MKT_STORE", value_enum)]
    store: Option<serve::StoreBackend>,
    /// The S3 bucket (with --store s3).
    #[arg(long, env = "MKT_S3_BUCKET", value_name = "NAME")]
    s3_bucket: Option<String>,
    /// An S3-compatible server's endpoint URL (with --store s3).
    #[arg(long, env = "MKT_S3_ENDPOINT", value_name = "URL")]
    s3_endpoint: Option<String>,
    /// The S3 region (with --store s3) [default: AWS_REGION, else us-east-1].
    #[arg(long, env = "MKT_S3_REGION")]
    s3_region: Option<String>,
    /// A key prefix for the archives in the bucket (with --store s3).
    #[arg(long, env = "MKT_S3_PREFIX")]
    s3_prefix: Option<String>,
    /// Allow a plain http:// S3 endpoint (a test server on this machine).
    #[arg(long, env = "MKT_S3_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    s3_allow_http: Option<bool>,
    /// The largest publish body in bytes [default: the archive limit, 50 MiB].
    #[arg(long, env = "MKT_MAX_ARCHIVE_BYTES", value_name = "BYTES")]
    max_archive_bytes: Option<u64>,
    /// The largest batch publish body in bytes [default: 256 MiB].
    #[arg(long, env = "MKT_MAX_BATCH_BYTES", value_name = "BYTES")]
    max_batch_bytes: Option<u64>,
    /// The longest a request may take, in seconds [default: 60].
    #[arg(long, env = "MKT_REQUEST_TIMEOUT", value_name = "SECONDS")]
    request_timeout: Option<u64>,
    /// Requests served at once; more wait [default: 512].
    #[arg(long, env = "MKT_MAX_CONCURRENT_REQUESTS", value_name = "N")]
    max_concurrent_requests: Option<usize>,
    /// The longest a client may take to send a request's headers, in seconds (slower ones are
    /// disconnected) [default: 10].
    #[arg(long, env = "MKT_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    header_read_timeout: Option<u64>,
    /// The most headers a request may have (more: 431) [default: 100].
    #[arg(long, env = "MKT_MAX_HEADERS", value_name = "N")]
    max_headers: Option<usize>,
    /// Requests per second one client address may make, with bursts of twice as many; 0: no
    /// limit [default: 1000].
    #[arg(long, env = "MKT_RATE_LIMIT_PER_ADDRESS", value_name = "N")]
    rate_limit_per_address: Option<u32>,
    /// Requests per second one API token (or one address without a token) may make, with
    /// bursts of twice as many; 0: no limit [default: 500].
    #[arg(long, env = "MKT_RATE_LIMIT_PER_TOKEN", value_name = "N")]
    rate_limit_per_token: Option<u32>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Sort {
    Relevance,
    Downloads,
    Recent,
    Name,
}

#[derive(Debug, Subcommand)]
enum TrustCommand {
    /// Trust a public key (PEM) to publish.
    Add {
        /// A PEM file: a public key, or a private key whose public half is trusted.
        pem: PathBuf,
        /// How far to trust it.
        #[arg(long, value_enum, default_value_t = Level::Full)]
        level: Level,
    },
    /// Revoke a key for good: its packages no longer verify.
    Revoke {
        /// The key id (32 hex digits, see `mkt trust list`).
        key_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// List trusted and revoked keys.
    List,
}

/// The user a local account command acts for (the home's operator acts for anyone).
const DEFAULT_USER: &str = "admin";

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token; the token alone is the first line of output (shown this once: only
    /// its hash is kept). The user is created if missing, as an admin when the token asks for
    /// the admin scope.
    Create {
        /// A label for the token (e.g. "ci publish").
        #[arg(long)]
        name: String,
        /// Whose token it is [default: admin; over a registry: the token's user — an admin's
        /// token may name another].
        #[arg(long)]
        user: Option<String>,
        /// What it may do (repeatable): publish-new, publish-update, yank, owners, admin
        /// (default: publish-new, publish-update, yank, owners).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Only these packages: acme/web, acme/* or web-* (default: every package).
        #[arg(long)]
        pattern: Option<String>,
        /// Expire after this many days (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
    },
    /// List a user's tokens (never their secrets).
    List {
        /// Whose tokens [default: admin; over a registry: the token's user].
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id (see `mkt token list`).
    Revoke {
        /// The token's id (16 hex digits).
        id: String,
        /// Whose token it is [default: admin; over a registry: the token's user].
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum CargoCommand {
    /// Import .crate files (files, or directories searched for them, such as cargo's download
    /// cache) with their original bytes and checksums, signed with a home key: the home then
    /// serves them to cargo, e.g. as a crates.io mirror (`[source.crates-io] replace-with`).
    /// Versions already present are skipped, so an interrupted import can be run again.
    Import {
        /// .crate files or directories holding them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The signing key: a key name in the home's keys directory, or a PEM file.
        #[arg(long, default_value = "default")]
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum OwnerCommand {
    /// List the owners of a package (or, with --namespace, of a namespace).
    List(OwnerTargetArgs),
    /// Add owners.
    Add {
        #[command(flatten)]
        target: OwnerTargetArgs,
        /// The users to add.
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Remove owners (the last one stays).
    Remove {
        #[command(flatten)]
        target: OwnerTargetArgs,
        /// The users to remove.
        #[arg(required = true)]
        users: Vec<String>,
    },
}

/// What is owned.
#[derive(Debug, Args)]
struct OwnerTargetArgs {
    /// The package (acme/web), or with --namespace the namespace (acme).
    target: String,
    /// TARGET is a namespace: its owners own every package in it.
    #[arg(long)]
    namespace: bool,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Register a signing key to a user and trust it: a key name in the home's keys directory
    /// or a PEM file (public or private).
    Add {
        /// The key (default: the home's `default` key).
        #[arg(default_value = "default")]
        key: String,
        /// Whose key it is (created if missing) [default: admin; over a registry: the token's
        /// user, the only one allowed].
        #[arg(long)]
        user: Option<String>,
    },
    /// List a user's signing keys.
    List {
        /// Whose keys [default: admin; over a registry: the token's user].
        #[arg(long)]
        user: Option<String>,
    },
    /// Unregister a user's key and revoke it for good: packages it signed no longer verify.
    Revoke {
        /// The key id (32 hex digits, see `mkt key list`).
        key_id: String,
        /// Whose key it is [default: admin; over a registry: the token's user, the only one
        /// allowed].
        #[arg(long)]
        user: Option<String>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user.
    Add {
        /// 1–39 lowercase letters, digits and '-'.
        name: String,
        /// The user administers the marketplace.
        #[arg(long)]
        admin: bool,
    },
    /// List the users.
    List,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Resolution {
    /// One version of each package.
    OneVersion,
    /// One version per semver-compatible series (cargo's rule).
    #[value(alias = "cargo")]
    SemverCompatible,
}

impl From<Resolution> for marketplace_core::ResolutionPolicy {
    fn from(r: Resolution) -> Self {
        match r {
            Resolution::OneVersion => marketplace_core::ResolutionPolicy::OneVersion,
            Resolution::SemverCompatible => marketplace_core::ResolutionPolicy::SemverCompatible,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Level {
    Marginal,
    Full,
    Ultimate,
}

/// A failure to report: what happened, the exit code, and what to do about it.
#[derive(Debug)]
struct CliError {
    code: u8,
    message: String,
    hint: Option<String>,
}

impl CliError {
    fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: exit::USAGE,
            message: message.into(),
            hint: None,
        }
    }

    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Whether `--verbose` was given: errors converted anywhere then carry their full detail.
static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl From<marketplace_core::Error> for CliError {
    fn from(e: marketplace_core::Error) -> Self {
        use marketplace_core::ErrorKind;
        let mut message = e.to_string();
        let mut more = None;
        if let marketplace_core::Error::Conflict { trace, .. } = &e
            && !trace.is_empty()
        {
            if VERBOSE.load(std::sync::atomic::Ordering::Relaxed) {
                message.push_str(&format!("\n\nthe solver's full derivation:\n{trace}"));
            } else {
                more = Some("; --verbose shows the solver's full derivation");
            }
        }
        let (code, hint) = match e.kind() {
            ErrorKind::NotFound => (
                exit::NOT_FOUND,
                Some("check the name and version with `mkt search` or `mkt versions NAME`".into()),
            ),
            ErrorKind::Integrity => (
                exit::VERIFICATION,
                Some(
                    "the archive does not match its registered hash: it was modified or corrupted; \
                     do not use it. A published version never changes: the marketplace's operator \
                     must restore the stored archive, or the publisher yank it and publish a new version"
                        .into(),
                ),
            ),
            ErrorKind::Signature => (exit::VERIFICATION, e.signature_failure().map(signature_hint)),
            ErrorKind::Invalid => (exit::INVALID, None),
            ErrorKind::AlreadyExists => (
                exit::FAILURE,
                Some("published versions never change: bump the version in marketplace.toml".into()),
            ),
            ErrorKind::Conflict if e.to_string().contains("but no package named") => (
                exit::FAILURE,
                Some("a dependency is not in this marketplace yet: publish it first (or ask the package's author)".into()),
            ),
            ErrorKind::Conflict => (
                exit::FAILURE,
                Some("relax a requirement, or pin compatible versions with NAME@=VERSION".into()),
            ),
            ErrorKind::Backend if disk_full(&e) => (
                exit::FAILURE,
                Some("the disk is full: free some space and try again; nothing was half-written".into()),
            ),
            _ => (exit::FAILURE, None),
        };
        CliError {
            code,
            message,
            hint: hint.map(|h: String| format!("{h}{}", more.unwrap_or_default())),
        }
    }
}

/// Whether an error comes, at its root, from a full disk (ENOSPC).
fn disk_full(e: &marketplace_core::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && (io.raw_os_error() == Some(28) || io.kind() == std::io::ErrorKind::StorageFull)
        {
            return true;
        }
        source = err.source();
    }
    false
}

fn signature_hint(failure: marketplace_core::SignatureFailure) -> String {
    use marketplace_core::SignatureFailure;
    match failure {
        SignatureFailure::Revoked => {
            "the signing key was revoked; the publisher must sign a new version with another key"
                .into()
        }
        SignatureFailure::Untrusted => {
            "the signing key is not trusted here; if you trust its owner, run `mkt trust add THEIR-KEY.pub.pem`"
                .into()
        }
        SignatureFailure::Unsigned => {
            "unsigned packages are never installed; ask the publisher for a signed release".into()
        }
        _ => {
            "the signature does not match the package: it was altered after signing; do not use it"
                .into()
        }
    }
}

type CliResult<T = ()> = Result<T, CliError>;

/// Log lines (the library's `tracing` events) on stderr: warnings by default, none with
/// `--quiet`, each flow's steps with `-v`, debugging detail with `-vv`; `RUST_LOG`, when set,
/// decides instead (tracing-subscriber's `EnvFilter` syntax).
fn logging(verbose: u8, quiet: bool, color: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(match (quiet, verbose) {
            (true, _) => "off",
            (false, 0) => "warn",
            (false, 1) => "warn,marketplace=info,marketplace_client=info,mkt=info",
            (false, _) => {
                "info,marketplace=debug,marketplace_client=debug,marketplace_registry_sqlite=debug,marketplace_search_tantivy=debug,marketplace_store_local=debug,marketplace_store_objectstore=debug,marketplace_crypto_ring=debug,mkt=debug"
            }
        }),
    };
    // With -v every flow (and, with -vv, every backend call) says when it ends and how long
    // it took.
    let spans = if verbose > 0 {
        tracing_subscriber::fmt::format::FmtSpan::CLOSE
    } else {
        tracing_subscriber::fmt::format::FmtSpan::NONE
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(spans)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(verbose > 1)
        // Seconds since the command started: what a person reading a slow command wants.
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .try_init();
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let config = match config::apply(&mut cli, &matches) {
        Ok(config) => config,
        Err(e) => {
            Output::new(cli.json, cli.quiet, cli.color).fail(&e);
            return ExitCode::from(e.code);
        }
    };
    VERBOSE.store(cli.verbose > 0, std::sync::atomic::Ordering::Relaxed);
    let out = Output::new(cli.json, cli.quiet, cli.color);
    logging(cli.verbose, cli.quiet, out.color_err());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.fail(&CliError {
                code: exit::FAILURE,
                message: format!("could not start the async runtime: {e}"),
                hint: None,
            });
            return ExitCode::from(exit::FAILURE);
        }
    };
    let result = runtime.block_on(commands::run(cli, config, &out));
    // An output that could not be written is the command's failure too (a closed pipe is not).
    match result.and_then(|()| out.finish()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.fail(&e);
            ExitCode::from(e.code)
        }
    }
}
