//! The API fuzzing gate: schemathesis (PyPI) against the OpenAPI document a real `mkt serve`
//! serves, on 127.0.0.1 and a free port, over a fresh home holding the example packages. It
//! passes with zero 5xx responses and zero responses that break the document's schemas.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Seconds schemathesis may spend in all.
const BUDGET_SECONDS: &str = "120";

/// Runs the gate with the debug `mkt` the tests built.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    println!("==> API fuzzing: schemathesis against a served marketplace ({BUDGET_SECONDS} s)");
    let mkt = crate::conformance::target_dir().join("debug").join("mkt");
    if !mkt.is_file() {
        return Err(format!(
            "{} is missing: the workspace tests build it first",
            mkt.display()
        ));
    }
    let dir = crate::conformance::target_dir().join("schemathesis");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let home = dir.join("home");
    let config = dir.join("config.toml");
    let mkt_in = |args: &[&str]| -> Result<String, String> {
        let output = Command::new(&mkt)
            .args(args)
            .env("MKT_HOME", &home)
            .env("MKT_CONFIG", &config)
            .output()
            .map_err(|e| format!("mkt {args:?}: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mkt {args:?} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    mkt_in(&["init"])?;
    let examples: Vec<String> = std::fs::read_dir(root.join("examples/packages"))
        .map_err(|e| format!("examples/packages: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
        .collect();
    let mut publish = vec!["publish"];
    publish.extend(examples.iter().map(String::as_str));
    mkt_in(&publish)?;
    let token = mkt_in(&[
        "token",
        "create",
        "--name",
        "schemathesis",
        "--scope",
        "admin",
    ])?
    .lines()
    .next()
    .unwrap_or_default()
    .to_owned();
    mkt_in(&["key", "add"])?;

    let mut server = Command::new(&mkt)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit-per-address",
            "0",
            "--rate-limit-per-token",
            "0",
        ])
        .env("MKT_HOME", &home)
        .env("MKT_CONFIG", &config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("mkt serve: {e}"))?;
    let mut first = String::new();
    let read = server
        .stdout
        .take()
        .map(|out| BufReader::new(out).read_line(&mut first));
    let base = first
        .trim()
        .strip_prefix("listening on ")
        .map(str::to_owned);
    let outcome = match (read, base) {
        (Some(Ok(_)), Some(base)) => Command::new("schemathesis")
            .args([
                "run",
                &format!("{base}/api/v1/openapi.json"),
                "--url",
                &base,
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                "30",
                "--max-time",
                BUDGET_SECONDS,
                "--header",
                &format!("Authorization: Bearer {token}"),
                // Revoking the run's own token would leave the rest of it unauthenticated.
                "--exclude-path-regex",
                r"^/api/v1/tokens/\{id\}$",
            ])
            .status()
            .map_err(|e| format!("schemathesis: {e}")),
        _ => Err("mkt serve did not print its address".to_owned()),
    };
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let stopped = server.wait();
    let status = outcome?;
    if !status.success() {
        return Err(format!(
            "schemathesis found 5xx responses or responses that break the OpenAPI document ({status}; see above)"
        ));
    }
    match stopped {
        Ok(s) if s.success() => Ok(()),
        other => Err(format!("mkt serve did not stop cleanly: {other:?}")),
    }
}
