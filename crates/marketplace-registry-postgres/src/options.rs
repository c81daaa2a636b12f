//! How to reach the database: a URL or the `PG*` environment, the pool's size and waits, TLS.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use marketplace_core::{Error, Result};
use tokio_postgres::config::{Host, SslMode};

/// Connections kept by default: enough for a server's concurrent requests on 2–8 cores.
const DEFAULT_POOL_SIZE: usize = 16;

/// Where the database is and how to talk to it.
///
/// ```
/// use marketplace_registry_postgres::PostgresOptions;
///
/// let options = PostgresOptions::from_url("postgres://app:secret@db.internal:5432/marketplace")
///     .unwrap()
///     .with_pool_size(32);
/// // The password never appears in messages.
/// assert_eq!(options.location(), "postgres://app@db.internal:5432/marketplace");
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    config: tokio_postgres::Config,
    pool_size: usize,
    wait: Duration,
    #[cfg(feature = "tls")]
    ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("location", &self.location())
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PostgresOptions {
    /// Options from a URL (`postgres://user:password@host:port/db?sslmode=require`, several
    /// hosts as `host1:5432,host2:5432`) or libpq's `key=value` form. `Invalid` when it does
    /// not parse (the message never repeats the password).
    pub fn from_url(url: &str) -> Result<Self> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| {
            Error::invalid(
                "database URL",
                redacted(url),
                format!("is not a PostgreSQL connection string: {e}"),
            )
        })?;
        default_user(&mut config);
        Ok(Self::with_config(config))
    }

    /// Options from the standard environment variables, as libpq reads them: `PGHOST` (a
    /// host name, a comma-separated list, or a directory holding the server's socket),
    /// `PGPORT`, `PGUSER` (default: the login name), `PGPASSWORD`, `PGDATABASE`,
    /// `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGSSLMODE` and `PGTARGETSESSIONATTRS`.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// As [`PostgresOptions::from_env`], reading variables through `var`.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        const KEYS: [(&str, &str); 9] = [
            ("PGHOST", "host"),
            ("PGPORT", "port"),
            ("PGUSER", "user"),
            ("PGPASSWORD", "password"),
            ("PGDATABASE", "dbname"),
            ("PGAPPNAME", "application_name"),
            ("PGCONNECT_TIMEOUT", "connect_timeout"),
            ("PGSSLMODE", "sslmode"),
            ("PGTARGETSESSIONATTRS", "target_session_attrs"),
        ];
        let mut conninfo = String::new();
        for (variable, key) in KEYS {
            if let Some(value) = var(variable).filter(|v| !v.is_empty()) {
                let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
                conninfo.push_str(&format!("{key}='{quoted}' "));
            }
        }
        if var("PGHOST").is_none_or(|h| h.is_empty()) {
            conninfo.push_str("host=localhost ");
        }
        let mut config = tokio_postgres::Config::from_str(&conninfo).map_err(|e| {
            Error::invalid(
                "PG* environment",
                "PGHOST/PGPORT/PGUSER/PGDATABASE/PGSSLMODE",
                format!("does not describe a PostgreSQL connection: {e}"),
            )
        })?;
        default_user(&mut config);
        Ok(Self::with_config(config))
    }

    fn with_config(mut config: tokio_postgres::Config) -> Self {
        if config.get_application_name().is_none() {
            config.application_name("marketplace");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        PostgresOptions {
            config,
            pool_size: DEFAULT_POOL_SIZE,
            wait: Duration::from_secs(30),
            #[cfg(feature = "tls")]
            ca_file: None,
        }
    }

    /// At most `size` connections (at least 1; default 16).
    pub fn with_pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long a statement waits for a free connection before failing (transient; default
    /// 30 s).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Verifies the server's certificate against the CA certificates (PEM) in `path` instead
    /// of the operating system's roots.
    #[cfg(feature = "tls")]
    pub fn with_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// The database this connects to, without the password:
    /// `postgres://user@host:port/db` (hosts comma-separated).
    pub fn location(&self) -> String {
        let ports = self.config.get_ports();
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let name = match host {
                    Host::Tcp(name) => name.clone(),
                    #[cfg(unix)]
                    Host::Unix(path) => path.display().to_string(),
                };
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                format!("{name}:{port}")
            })
            .collect();
        format!(
            "postgres://{}@{}/{}",
            self.config.get_user().unwrap_or(""),
            hosts.join(","),
            self.config
                .get_dbname()
                .or(self.config.get_user())
                .unwrap_or("")
        )
    }

    /// The pool these options describe (no connection is made yet).
    pub(crate) fn pool(&self) -> std::result::Result<Pool, String> {
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let config = self.config.clone();
        // With TLS built in, every mode but `disable` offers it (`prefer` falls back to plain
        // when the server has none); without, `prefer` is plain and `require` is refused.
        #[cfg(feature = "tls")]
        let manager = if config.get_ssl_mode() == SslMode::Disable {
            Manager::from_config(config, tokio_postgres::NoTls, manager_config)
        } else {
            let tls = crate::tls::connector(self.ca_file.as_deref())?;
            Manager::from_config(config, tls, manager_config)
        };
        #[cfg(not(feature = "tls"))]
        let manager = match config.get_ssl_mode() {
            SslMode::Disable | SslMode::Prefer => {
                Manager::from_config(config, tokio_postgres::NoTls, manager_config)
            }
            _ => {
                return Err(format!(
                    "{}: sslmode asks for TLS, and this build of marketplace-registry-postgres has none (enable its `tls` feature)",
                    self.location()
                ));
            }
        };
        Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.wait))
            .create_timeout(self.config.get_connect_timeout().copied())
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| format!("{}: {e}", self.location()))
    }
}

/// libpq's default: the login name when no user is given.
fn default_user(config: &mut tokio_postgres::Config) {
    if config.get_user().is_none()
        && let Ok(user) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME"))
    {
        config.user(user);
    }
}

/// `url` with any password replaced by `***`.
fn redacted(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    if url.contains("password") {
        return "(a connection string with a password)".to_owned();
    }
    url.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_the_environment_say_where_the_database_is_without_the_password() {
        let options = PostgresOptions::from_url("postgres://app:hunter2@db:6543/market").unwrap();
        assert_eq!(options.location(), "postgres://app@db:6543/market");

        let error = PostgresOptions::from_url("postgres://app:hunter2@db:notaport/market")
            .expect_err("a bad port");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(error.to_string().contains("database URL"), "{error}");

        let env = |name: &str| match name {
            "PGHOST" => Some("a.internal,b.internal".to_owned()),
            "PGPORT" => Some("5433".to_owned()),
            "PGUSER" => Some("o'brien".to_owned()),
            "PGPASSWORD" => Some("s3cret".to_owned()),
            "PGDATABASE" => Some("registry".to_owned()),
            _ => None,
        };
        let options = PostgresOptions::from_vars(env).unwrap();
        assert_eq!(
            options.location(),
            "postgres://o'brien@a.internal:5433,b.internal:5433/registry"
        );
        assert_eq!(options.config.get_password(), Some(&b"s3cret"[..]));

        let bad = |name: &str| (name == "PGSSLMODE").then(|| "sometimes".to_owned());
        let error = PostgresOptions::from_vars(bad).expect_err("a bad sslmode");
        assert!(error.to_string().contains("PG* environment"), "{error}");
    }
}
