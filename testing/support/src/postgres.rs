//! A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, `postgres` on
//! 127.0.0.1 and a free port (its Unix socket in the same directory), stopped and removed when
//! dropped. std only.
//!
//! The binaries are found on `PATH` or under Debian's `/usr/lib/postgresql/<major>/bin` (the
//! `postgresql` package does not put them on `PATH`). PostgreSQL refuses to run as root, so
//! under root the server runs as the `postgres` user (or `nobody`) through `setpriv`, which
//! execs rather than forks: the child this harness holds is the postmaster itself.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A running PostgreSQL server; shut down (fast) and its directory removed on drop.
///
/// ```no_run
/// use marketplace_testing::postgres::PostgresServer;
///
/// if let Some(server) = PostgresServer::start() {
///     let url = server.create_database("registry_test").expect("a database");
///     println!("connect to {url}");
/// }
/// ```
#[derive(Debug)]
pub struct PostgresServer {
    child: Option<Child>,
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// The uid and gid the server runs as, when this process is root.
    owner: Option<(String, String)>,
    settings: Vec<(String, String)>,
}

/// Where `initdb`, `postgres` and `createdb` live, if anywhere.
fn bin_dir() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                // Debian links only some binaries onto PATH: use the directory they live in.
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                return real.parent().map(Path::to_owned);
            }
        }
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin)
}

fn free_port() -> std::io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

fn output(command: &mut Command) -> Option<String> {
    let out = command.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The uid and gid of an unprivileged user to run the server as when this process is root:
/// `Some(None)` when not root, `None` when root and no such user exists.
fn unprivileged() -> Option<Option<(String, String)>> {
    if output(Command::new("id").arg("-u")).as_deref() != Some("0") {
        return Some(None);
    }
    ["postgres", "nobody"].iter().find_map(|user| {
        let uid = output(Command::new("id").args(["-u", user]))?;
        let gid = output(Command::new("id").args(["-g", user]))?;
        Some(Some((uid, gid)))
    })
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl PostgresServer {
    /// Whether a server can be started here: the binaries are installed.
    pub fn available() -> bool {
        bin_dir().is_some()
    }

    /// Starts a server tuned for tests (no fsync: a crash of the server is still safe, a crash
    /// of the machine is not; a small write-ahead log, recycled often, so that a run creating
    /// hundreds of databases stays within a few hundred megabytes of disk), or prints a visible
    /// SKIP line and returns `None` when PostgreSQL is not installed.
    ///
    /// # Panics
    /// If PostgreSQL is installed but the server cannot be initialised or does not accept
    /// connections within 60 seconds: a test that needs it cannot go on. Under `CI=true` also
    /// when PostgreSQL is not installed: CI installs it, so nothing may skip there.
    pub fn start() -> Option<PostgresServer> {
        Self::start_with(&[
            ("fsync", "off"),
            ("synchronous_commit", "off"),
            ("full_page_writes", "off"),
            ("max_wal_size", "64MB"),
            ("min_wal_size", "32MB"),
        ])
    }

    /// Starts a server with PostgreSQL's default durability (fsync on every commit), for
    /// benchmarks that must measure what a deployment pays.
    pub fn start_durable() -> Option<PostgresServer> {
        Self::start_with(&[])
    }

    /// Starts a server that also speaks TLS (`ssl = on`) with the certificate chain and key
    /// given as PEM: they are written into the data directory, owned by the server's user and
    /// readable by it alone, as PostgreSQL requires of a key.
    pub fn start_tls(certificate_pem: &str, key_pem: &str) -> Option<PostgresServer> {
        Self::start_full(
            &[
                ("ssl", "on"),
                ("ssl_cert_file", "server.crt"),
                ("ssl_key_file", "server.key"),
            ],
            &[("server.crt", certificate_pem), ("server.key", key_pem)],
        )
    }

    /// Starts a server with `settings` (`-c name=value`) on top of the harness's own.
    pub fn start_with(settings: &[(&str, &str)]) -> Option<PostgresServer> {
        Self::start_full(settings, &[])
    }

    fn start_full(settings: &[(&str, &str)], files: &[(&str, &str)]) -> Option<PostgresServer> {
        let Some(bin) = bin_dir() else {
            // CI installs PostgreSQL (.ci/run): there, a missing server is a failure.
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "PostgreSQL is not installed and CI=true: nothing may be skipped (.ci/run installs it)"
            );
            eprintln!(
                "SKIP: PostgreSQL is not installed (initdb not found on PATH or under /usr/lib/postgresql; apt-get install postgresql); the PostgreSQL registry is not tested"
            );
            return None;
        };
        let Some(owner) = unprivileged() else {
            eprintln!(
                "SKIP: running as root with no `postgres` or `nobody` user to run PostgreSQL as; the PostgreSQL registry is not tested"
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!(
            "marketplace-pg-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the PostgreSQL directory");
        let mut server = PostgresServer {
            child: None,
            dir,
            bin,
            port: free_port().expect("a free port on 127.0.0.1"),
            owner,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        if let Some((uid, gid)) = &server.owner {
            let status = Command::new("chown")
                .arg(format!("{uid}:{gid}"))
                .arg(&server.dir)
                .status()
                .expect("run chown");
            assert!(status.success(), "chown the PostgreSQL directory");
        }
        let initdb = server
            .command("initdb")
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
            .args(["--locale=C", "--no-sync", "-D"])
            .arg(server.data())
            .stdout(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        for (name, text) in files {
            server.write_private(name, text);
        }
        server.launch();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Writes `name` in the data directory, readable by the server's user alone.
    fn write_private(&self, name: &str, text: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.data().join(name);
        std::fs::write(&path, text).expect("write into the data directory");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("make it private");
        if let Some((uid, gid)) = &self.owner {
            let status = Command::new("chown")
                .arg(format!("{uid}:{gid}"))
                .arg(&path)
                .status()
                .expect("run chown");
            assert!(status.success(), "chown {}", path.display());
        }
    }

    /// A command for one of the server's binaries, run as the server's owner.
    fn command(&self, binary: &str) -> Command {
        let program = self.bin.join(binary);
        match &self.owner {
            Some((uid, gid)) => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .args(["--clear-groups", "--"])
                    .arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    /// Starts the postmaster on the existing data directory and waits until it accepts
    /// connections.
    fn launch(&mut self) {
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.data())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args(["-c", "max_connections=200"]);
        for (name, value) in &self.settings {
            command.args(["-c", &format!("{name}={value}")]);
        }
        let log = std::fs::File::create(self.dir.join("server.log")).expect("create the log");
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let ready = self
                .command("pg_isready")
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "postgres exited ({status}) before accepting connections: {}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "postgres did not accept connections on port {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this server, as the superuser `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database `name` and returns its URL. `Err` with the tool's message if
    /// `createdb` refuses (a name in use, a bad name).
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        let out = self
            .command("createdb")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", name])
            .output()
            .map_err(|e| format!("run createdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "createdb {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(self.url(name))
    }

    /// Drops database `name`, cutting any connection still open to it, so that a run making
    /// many databases gives their disk back as it goes. `Err` with the tool's message if
    /// `dropdb` refuses (no such database).
    pub fn drop_database(&self, name: &str) -> Result<(), String> {
        let out = self
            .command("dropdb")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "--force", name])
            .output()
            .map_err(|e| format!("run dropdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "dropdb {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    /// Kills the server as a crash would (immediate shutdown: every connection is cut, nothing
    /// is checkpointed, the next start replays the write-ahead log). Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, "QUIT");
            wait_or_kill(&mut child, Duration::from_secs(20));
        }
    }

    /// Starts the server again on the same data directory and port (after [`Self::kill`]):
    /// PostgreSQL recovers from its write-ahead log first.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Whether something accepts TCP connections on the server's port.
    pub fn is_listening(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status();
}

fn wait_or_kill(child: &mut Child, patience: Duration) {
    let started = Instant::now();
    while started.elapsed() < patience {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: fast shutdown (connections cut, a checkpoint, then exit).
            signal(&child, "INT");
            wait_or_kill(&mut child, Duration::from_secs(20));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
