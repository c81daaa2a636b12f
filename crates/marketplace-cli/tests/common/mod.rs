//! What the tests that run `mkt` as a process share: the binary on a home and config of the
//! test's own, the stdout of a command that must succeed, and `mkt serve` on a free port.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// `mkt` on `home` with `config` as the user-level config file, never a registry from the
/// environment.
pub(crate) fn mkt(home: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mkt"));
    cmd.env("MKT_HOME", home)
        .env("MKT_CONFIG", config)
        .env_remove("MKT_REGISTRY");
    cmd
}

/// The stdout of a command that must succeed; its whole output when it does not.
pub(crate) fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `mkt serve` on a port of its choosing with `extra` flags, and the URL its first line names
/// (`http://127.0.0.1:PORT`). Its stderr goes where `stderr` says: a pipe nobody reads fills
/// up, so pipe it only when the test reads it ([`terminate`]).
pub(crate) fn serve(home: &Path, config: &Path, extra: &[&str], stderr: Stdio) -> (Child, String) {
    let mut child = mkt(home, config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("serve");
    let url = address_of(&mut child);
    (child, url)
}

/// Reads `mkt serve`'s first line and returns the URL it names (`http://127.0.0.1:PORT`).
pub(crate) fn address_of(child: &mut Child) -> String {
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the first line names the address: {first:?}"))
        .to_owned()
}

/// Stops `mkt serve` with SIGTERM, checks that it exited cleanly, and returns its stderr.
pub(crate) fn terminate(mut child: Child) -> String {
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill")
            .success()
    );
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("stderr");
    }
    assert!(status.success(), "{status:?}: {stderr}");
    stderr
}

/// `GET path` from a server at `url` (`http://127.0.0.1:PORT`) as a browser asks for a page,
/// over a plain socket: the status and the body.
pub(crate) fn get_page(url: &str, path: &str) -> (u16, String) {
    use std::io::Write as _;
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("response");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_owned());
    (status, body)
}
