//! `mkt serve`: the server's settings and the serving.
//!
//! Every setting comes from, highest first: its flag, its environment variable (both parsed by
//! clap into `ServeArgs`), the `--config` file (`server.toml`), the default. The file is TOML:
//!
//! ```toml
//! listen = "127.0.0.1:7878"
//! private = false
//! public_url = "https://registry.example"   # default: http:// and the request's Host
//!
//! [limits]
//! max_archive_bytes = 52428800
//! max_batch_bytes = 268435456
//! request_timeout_secs = 60
//! header_read_timeout_secs = 10
//! max_concurrent_requests = 512
//! max_headers = 100
//! rate_limit_per_address = 1000  # requests per second, bursts of twice as many; 0: none
//! rate_limit_per_token = 500
//!
//! [registry]
//! backend = "postgres"           # or "home" (the default): the home's SQLite file
//! url = "postgres://mkt@db.internal:5432/marketplace"   # default: the PG* environment
//!
//! [store]
//! backend = "s3"                 # or "home" (the default): the home's files
//! bucket = "marketplace"
//! endpoint = "http://127.0.0.1:9000"
//! region = "us-east-1"
//! prefix = "archives"
//! allow_http = true
//! ```
//!
//! The trust store is the home's; so are the registry and the search index unless `[registry]`
//! (or `--database-url`) names a PostgreSQL database. S3 credentials come only from the
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), never from a file or the command
//! line; a database password only from `PGPASSWORD` or `MKT_DATABASE_URL`, never from a file. A file that does not parse, names a key this version does not know, or
//! sets a value out of range is refused before anything is opened, naming the file and the key.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use marketplace_core::PackageStore;
use marketplace_server::{RateLimit, ServerConfig};
use serde::Deserialize;
use serde_json::json;

use crate::home::Home;
use crate::output::Output;
use crate::{CliError, CliResult, ServeArgs, exit};

/// Where the archives of a served home live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StoreBackend {
    /// The home's `store/` directory.
    Home,
    /// An S3 (or S3-compatible) bucket.
    S3,
}

/// Where the registry and accounts of a served home live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RegistryBackend {
    /// The home's SQLite file.
    Home,
    /// A PostgreSQL database, shared by every server on it.
    Postgres,
}

/// `server.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    listen: Option<SocketAddr>,
    private: Option<bool>,
    public_url: Option<String>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    registry: RegistryFile,
    #[serde(default)]
    store: StoreFile,
}

/// `[registry]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    backend: Option<RegistryBackend>,
    url: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_archive_bytes: Option<u64>,
    max_batch_bytes: Option<u64>,
    request_timeout_secs: Option<u64>,
    header_read_timeout_secs: Option<u64>,
    max_concurrent_requests: Option<usize>,
    max_headers: Option<usize>,
    rate_limit_per_address: Option<u32>,
    rate_limit_per_token: Option<u32>,
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    backend: Option<StoreBackend>,
    bucket: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    prefix: Option<String>,
    allow_http: Option<bool>,
}

/// An S3 bucket to keep the archives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct S3Settings {
    pub(crate) bucket: String,
    pub(crate) endpoint: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) allow_http: bool,
}

/// What `mkt serve` runs with, every source applied.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) listen: SocketAddr,
    pub(crate) config: ServerConfig,
    /// `None`: the home's store.
    pub(crate) s3: Option<S3Settings>,
    /// `Some`: the registry is a PostgreSQL database, at this URL (`None`: as the PG*
    /// environment says). `None`: the home's own, unless `--database-url` says otherwise.
    pub(crate) database: Option<Option<String>>,
}

fn invalid(message: String, hint: &str) -> CliError {
    CliError {
        code: exit::INVALID,
        message,
        hint: Some(hint.into()),
    }
}

const FILE_HINT: &str = "the keys are listen, private, public_url, [limits] (max_archive_bytes, max_batch_bytes, request_timeout_secs, header_read_timeout_secs, max_concurrent_requests, max_headers, rate_limit_per_address, rate_limit_per_token), [registry] (backend = \"home\" or \"postgres\", url) and [store] (backend = \"home\" or \"s3\", bucket, endpoint, region, prefix, allow_http); see docs/DEPLOYMENT.md";

/// Reads `path` as a `server.toml`.
fn read_file(path: &Path) -> CliResult<ServerFile> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError {
        code: if e.kind() == std::io::ErrorKind::NotFound {
            exit::NOT_FOUND
        } else {
            exit::FAILURE
        },
        message: format!(
            "could not read the server configuration {}: {e}",
            path.display()
        ),
        hint: Some("--config (or MKT_SERVER_CONFIG) names a TOML file".into()),
    })?;
    toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|span| {
            1 + text.as_bytes()[..span.start.min(text.len())]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
        });
        invalid(
            format!(
                "the server configuration {}{} is invalid: {}",
                path.display(),
                line.map_or_else(String::new, |l| format!(" (line {l})")),
                e.message()
            ),
            FILE_HINT,
        )
    })
}

/// At least one, or an error naming the setting.
fn positive<T: PartialOrd + From<u8> + std::fmt::Display>(name: &str, value: T) -> CliResult<T> {
    if value < T::from(1) {
        return Err(invalid(
            format!("{name} is {value}; it must be at least 1"),
            "see `mkt serve --help` for each setting's default",
        ));
    }
    Ok(value)
}

fn rate_limit(n: u32) -> Option<RateLimit> {
    (n > 0).then(|| RateLimit::new(n, n.saturating_mul(2)))
}

impl Settings {
    /// The flags and environment in `args` over the `--config` file over the defaults.
    pub(crate) fn resolve(args: &ServeArgs) -> CliResult<Settings> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => ServerFile::default(),
        };
        let (limits, store) = (&file.limits, &file.store);
        let defaults = ServerConfig::default();
        let listen = match args.listen.or(file.listen) {
            Some(address) => address,
            None => marketplace_server::DEFAULT_LISTEN
                .parse()
                .map_err(|e| invalid(format!("the default address: {e}"), "pass --listen"))?,
        };
        let seconds = |name: &str, value: Option<u64>, default: Duration| -> CliResult<Duration> {
            match value {
                Some(s) => positive(name, s).map(Duration::from_secs),
                None => Ok(default),
            }
        };
        let mut config = defaults
            .clone()
            .with_private(args.private.or(file.private).unwrap_or(defaults.private))
            .with_public_url(public_url(args.public_url.clone().or(file.public_url))?)
            .with_request_timeout(seconds(
                "request_timeout",
                args.request_timeout.or(limits.request_timeout_secs),
                defaults.request_timeout,
            )?)
            .with_header_read_timeout(seconds(
                "header_read_timeout",
                args.header_read_timeout.or(limits.header_read_timeout_secs),
                defaults.header_read_timeout,
            )?)
            .with_max_archive_bytes(positive(
                "max_archive_bytes",
                args.max_archive_bytes
                    .or(limits.max_archive_bytes)
                    .unwrap_or(defaults.max_archive_bytes),
            )?)
            .with_max_batch_bytes(positive(
                "max_batch_bytes",
                args.max_batch_bytes
                    .or(limits.max_batch_bytes)
                    .unwrap_or(defaults.max_batch_bytes),
            )?)
            .with_max_concurrent_requests(positive(
                "max_concurrent_requests",
                args.max_concurrent_requests
                    .or(limits.max_concurrent_requests)
                    .unwrap_or(defaults.max_concurrent_requests),
            )?)
            .with_max_headers(positive(
                "max_headers",
                args.max_headers
                    .or(limits.max_headers)
                    .unwrap_or(defaults.max_headers),
            )?);
        if let Some(n) = args
            .rate_limit_per_address
            .or(limits.rate_limit_per_address)
        {
            config = config.with_rate_limit_per_address(rate_limit(n));
        }
        if let Some(n) = args.rate_limit_per_token.or(limits.rate_limit_per_token) {
            config = config.with_rate_limit_per_token(rate_limit(n));
        }
        let backend = args.store.or(store.backend).unwrap_or(StoreBackend::Home);
        let bucket = args.s3_bucket.clone().or_else(|| store.bucket.clone());
        let s3 = match backend {
            StoreBackend::Home => {
                let named = [
                    ("bucket", bucket.is_some()),
                    (
                        "endpoint",
                        args.s3_endpoint.is_some() || store.endpoint.is_some(),
                    ),
                    ("prefix", args.s3_prefix.is_some() || store.prefix.is_some()),
                ];
                if let Some((name, _)) = named.iter().find(|(_, set)| *set) {
                    return Err(invalid(
                        format!("an S3 {name} is set, but the archives are kept in the home"),
                        "choose the bucket with --store s3 (MKT_STORE=s3, or backend = \"s3\" under [store]), or unset the S3 settings",
                    ));
                }
                None
            }
            StoreBackend::S3 => Some(S3Settings {
                bucket: bucket.filter(|b| !b.is_empty()).ok_or_else(|| {
                    invalid(
                        "the S3 store needs a bucket".into(),
                        "name it with --s3-bucket, MKT_S3_BUCKET or bucket under [store]",
                    )
                })?,
                endpoint: args.s3_endpoint.clone().or_else(|| store.endpoint.clone()),
                region: args.s3_region.clone().or_else(|| store.region.clone()),
                prefix: args.s3_prefix.clone().or_else(|| store.prefix.clone()),
                allow_http: args.s3_allow_http.or(store.allow_http).unwrap_or(false),
            }),
        };
        let registry = &file.registry;
        let database = match registry.backend.unwrap_or(RegistryBackend::Home) {
            RegistryBackend::Home if registry.url.is_some() => {
                return Err(invalid(
                    "a database url is set under [registry], but the registry is the home's".into(),
                    "choose PostgreSQL with backend = \"postgres\" under [registry], or remove the url",
                ));
            }
            RegistryBackend::Home => None,
            RegistryBackend::Postgres => {
                if let Some(url) = &registry.url
                    && has_password(url)
                {
                    return Err(invalid(
                        "the database url under [registry] holds a password".into(),
                        "keep passwords out of files: set PGPASSWORD, or the whole URL in MKT_DATABASE_URL",
                    ));
                }
                Some(registry.url.clone())
            }
        };
        Ok(Settings {
            listen,
            config,
            s3,
            database,
        })
    }

    /// The store to serve from instead of the home's, opened.
    pub(crate) fn open_store(&self) -> CliResult<Option<Arc<dyn PackageStore>>> {
        let Some(s3) = &self.s3 else {
            return Ok(None);
        };
        open_s3(s3).map(Some)
    }
}

#[cfg(feature = "s3")]
fn open_s3(settings: &S3Settings) -> CliResult<Arc<dyn PackageStore>> {
    use marketplace_client::backends::objectstore::{ObjectStorePackageStore, S3Config};
    let mut config = S3Config::bucket(settings.bucket.clone());
    config.endpoint.clone_from(&settings.endpoint);
    config.region.clone_from(&settings.region);
    config.prefix.clone_from(&settings.prefix);
    config.allow_http = settings.allow_http;
    let store = ObjectStorePackageStore::s3(config).map_err(|e| {
        CliError::from(e).with_hint(
            "check the bucket, the endpoint and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
        )
    })?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "s3"))]
fn open_s3(settings: &S3Settings) -> CliResult<Arc<dyn PackageStore>> {
    Err(CliError {
        code: exit::INVALID,
        message: format!(
            "this mkt was built without S3 support, so it cannot keep archives in s3://{}",
            settings.bucket
        ),
        hint: Some("build marketplace-cli with its default features (feature `s3`)".into()),
    })
}

/// Whether a PostgreSQL URL or conninfo string carries a password.
fn has_password(url: &str) -> bool {
    let userinfo = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(userinfo, _)| userinfo);
    userinfo.is_some_and(|u| u.contains(':')) || url.contains("password=")
}

/// Serves `home` until SIGINT or SIGTERM, once every request in flight has finished.
pub(crate) async fn serve(
    home: Home,
    settings: Settings,
    home_database: Option<String>,
    out: &Output,
) -> CliResult {
    // Before the address is printed: whoever reads it may stop the server at once.
    let shutdown = marketplace_server::shutdown_signal();
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|e| CliError {
            code: exit::FAILURE,
            message: format!("listen on {}: {e}", settings.listen),
            hint: Some("choose another address with --listen (port 0 picks a free one)".into()),
        })?;
    let address = listener.local_addr().map_err(|e| CliError {
        code: exit::FAILURE,
        message: format!("read the listening address: {e}"),
        hint: None,
    })?;
    // Crates from `cargo publish` are countersigned with the home's own key.
    let signing_key = home.load_key(crate::home::DEFAULT_KEY).await.ok();
    let (root, client, lock) = home.into_parts();
    if out.is_json() {
        out.json(&json!({ "listening": format!("http://{address}") }))?;
    } else {
        out.line(format!("listening on http://{address}"));
    }
    let archives = match &settings.s3 {
        Some(s3) => format!(
            ", archives in s3://{}{}",
            s3.bucket,
            s3.prefix
                .as_deref()
                .map_or_else(String::new, |p| format!("/{p}"))
        ),
        None => String::new(),
    };
    let registry = match home_database {
        Some(location) => format!(", registry in {location}"),
        None => String::new(),
    };
    out.note(&format!(
        "serving the marketplace at {}{registry}{archives}{}; stop with Ctrl-C",
        root.display(),
        if settings.config.private {
            " (private: every request needs a token)"
        } else {
            ""
        }
    ));
    if !settings.config.private {
        out.note(&format!(
            "the web catalogue is at http://{address}/ and the API at http://{address}/api/v1/"
        ));
    }
    if client.users().await.map(|u| u.is_empty()).unwrap_or(false) {
        out.note("no users yet: make the first admin's token with `mkt token create --name NAME --scope admin`");
    }
    let server = marketplace_server::Server::new(Arc::new(client)).with_config(settings.config);
    let server = match signing_key {
        Some(key) => server.with_signing_key(key),
        None => {
            out.note("the home has no default key: cargo publish is refused (mkt key generate --name default)");
            server
        }
    };
    server
        .serve(listener, shutdown)
        .await
        .map_err(|e| CliError {
            code: exit::FAILURE,
            message: format!("serve on {address}: {e}"),
            hint: None,
        })?;
    drop(lock);
    out.note("stopped: every request in flight finished");
    Ok(())
}

/// A public URL: absolute http(s), without a query; `Invalid` (exit 2) otherwise.
fn public_url(url: Option<String>) -> CliResult<Option<String>> {
    let Some(url) = url else {
        return Ok(None);
    };
    marketplace_core::HttpUrl::parse("public_url", &url).map_err(|e| CliError {
        code: exit::USAGE,
        message: format!("public URL {url:?}: {e}"),
        hint: Some(
            "give the URL clients reach the server at, e.g. https://registry.example".into(),
        ),
    })?;
    Ok(Some(url.trim_end_matches('/').to_owned()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn settings(argv: &[&str], file: Option<&str>) -> CliResult<Settings> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args: Vec<String> = vec!["mkt".into(), "serve".into()];
        if let Some(text) = file {
            let path = dir.path().join("server.toml");
            std::fs::write(&path, text).expect("write");
            args.extend(["--config".into(), path.display().to_string()]);
        }
        args.extend(argv.iter().map(|a| (*a).to_owned()));
        let cli = crate::Cli::try_parse_from(args).expect("arguments");
        let crate::Command::Serve(serve) = cli.command else {
            panic!("not serve");
        };
        Settings::resolve(&serve)
    }

    #[test]
    fn defaults_need_no_file() {
        let s = settings(&[], None).expect("settings");
        assert_eq!(s.listen.to_string(), marketplace_server::DEFAULT_LISTEN);
        assert!(!s.config.private);
        assert_eq!(s.config.max_headers, 100);
        assert!(s.s3.is_none());
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let file = "listen = \"127.0.0.1:9000\"\nprivate = true\n[limits]\nmax_headers = 7\nrequest_timeout_secs = 5\nrate_limit_per_token = 0\n";
        let s = settings(&[], Some(file)).expect("settings");
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
        assert!(s.config.private);
        assert_eq!(s.config.max_headers, 7);
        assert_eq!(s.config.request_timeout, Duration::from_secs(5));
        assert!(s.config.rate_limit_per_token.is_none(), "0 turns it off");
        assert!(
            s.config.rate_limit_per_address.is_some(),
            "the default stays"
        );

        let s = settings(
            &[
                "--listen",
                "127.0.0.1:0",
                "--private",
                "false",
                "--max-headers",
                "9",
            ],
            Some(file),
        )
        .expect("settings");
        assert_eq!(s.listen.port(), 0);
        assert!(!s.config.private);
        assert_eq!(s.config.max_headers, 9);
        assert_eq!(s.config.request_timeout, Duration::from_secs(5));
    }

    #[test]
    fn the_store_is_chosen_with_its_bucket() {
        let file = "[store]\nbackend = \"s3\"\nbucket = \"b\"\nendpoint = \"http://127.0.0.1:1\"\nallow_http = true\n";
        let s3 = settings(&[], Some(file)).expect("settings").s3.expect("s3");
        assert_eq!(s3.bucket, "b");
        assert!(s3.allow_http);
        let over = settings(&["--s3-bucket", "other"], Some(file)).expect("settings");
        assert_eq!(over.s3.expect("s3").bucket, "other");

        let err = settings(&["--store", "s3"], None).unwrap_err();
        assert!(err.message.contains("needs a bucket"), "{}", err.message);
        let err = settings(&[], Some("[store]\nbucket = \"b\"\n")).unwrap_err();
        assert!(err.message.contains("kept in the home"), "{}", err.message);
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_key_and_line() {
        let err = settings(
            &[],
            Some("listen = \"127.0.0.1:1\"\n[limits]\nmax_header = 3\n"),
        )
        .unwrap_err();
        assert_eq!(err.code, exit::INVALID);
        assert!(err.message.contains("max_header"), "{}", err.message);
        assert!(err.message.contains("line 3"), "{}", err.message);
        let err = settings(&[], Some("[store]\nbackend = \"postgres\"\n")).unwrap_err();
        assert!(err.message.contains("postgres"), "{}", err.message);
        let err = settings(&[], Some("[limits]\nmax_concurrent_requests = 0\n")).unwrap_err();
        assert!(err.message.contains("at least 1"), "{}", err.message);
        let err = settings(&[], Some("listen = \"nowhere\"\n")).unwrap_err();
        assert_eq!(err.code, exit::INVALID, "{}", err.message);
    }
}
