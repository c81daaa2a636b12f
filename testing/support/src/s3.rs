//! An S3-compatible server for tests: `moto_server` (from the `moto[server]` PyPI package) on
//! 127.0.0.1 and a free port, killed when dropped. std only.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use marketplace_core::{Error, Result};

/// A running S3 server; killed on drop.
///
/// ```no_run
/// use marketplace_testing::s3::S3Server;
///
/// if let Some(server) = S3Server::start() {
///     let bucket = server.bucket("my-bucket").expect("a bucket");
///     println!("{} at {}", bucket.name, bucket.endpoint);
/// }
/// ```
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    port: u16,
}

/// A bucket on an [`S3Server`], and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Bucket {
    /// The bucket's name.
    pub name: String,
    /// The server's endpoint URL (`http://127.0.0.1:PORT`).
    pub endpoint: String,
    /// The region the server answers for.
    pub region: String,
    /// The access key id the server accepts.
    pub access_key_id: String,
    /// The secret access key the server accepts.
    pub secret_access_key: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

fn http(port: u16, request: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

impl S3Server {
    /// Whether `moto_server` can be run.
    pub fn available() -> bool {
        Command::new("moto_server")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    }

    /// Starts `moto_server`, or prints a visible SKIP line and returns `None` when it is not
    /// installed.
    ///
    /// # Panics
    /// If the server is installed but cannot be started or does not listen within 30 seconds:
    /// a test that needs it cannot go on.
    pub fn start() -> Option<S3Server> {
        if !S3Server::available() {
            eprintln!(
                "SKIP: moto_server is not installed (pip install 'moto[server]'); the S3 store is not tested"
            );
            return None;
        }
        let port = free_port().expect("a free port on 127.0.0.1");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = S3Server { child, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// Creates `name` and says how to reach it. `Backend` if the server cannot be reached or
    /// refuses the bucket.
    pub fn bucket(&self, name: &str) -> Result<S3Bucket> {
        let create = format!("create bucket {name} on 127.0.0.1:{}", self.port);
        let response = http(
            self.port,
            &format!("PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.port),
        )
        .map_err(|e| Error::backend("moto_server", create.clone(), e, false))?;
        if !response.starts_with("HTTP/1.1 200") {
            let status = response.lines().next().unwrap_or("no response").to_owned();
            return Err(Error::backend("moto_server", create, status, false));
        }
        Ok(S3Bucket {
            name: name.to_owned(),
            endpoint: format!("http://127.0.0.1:{}", self.port),
            region: "us-east-1".into(),
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
        })
    }
}
