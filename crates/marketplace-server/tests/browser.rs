//! The catalogue end to end in headless Chromium (Debian's `chromium`, driven by Playwright
//! from npm, with axe-core): home, search as you type, a category filter, a package page, a
//! dependency link, the yanked badge, hostile content that must not run, the 404 page and a
//! phone's width. Screenshots go to `target/browser-screenshots/`.
//!
//! Needs Node.js, npm (once, for `playwright-core` and `axe-core`, installed under
//! `target/browser/`) and Chromium. Without them the test says SKIP; under `CI=true` it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Running;
use common::catalogue::seed;

/// The Playwright script and its package.json.
fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `target/`: where the npm packages and the screenshots go.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
}

fn chromium() -> Option<PathBuf> {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")))
        .filter(|p| p.exists())
}

fn answers(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The npm packages the script needs, installed under `target/browser/` when missing (npm
/// keeps its own cache, so a second machine setup downloads nothing twice).
fn node_modules() -> Result<PathBuf, String> {
    let dir = target_dir().join("browser");
    let modules = dir.join("node_modules");
    let wanted = std::fs::read_to_string(script_dir().join("package.json"))
        .map_err(|e| format!("read package.json: {e}"))?;
    let installed = std::fs::read_to_string(dir.join("package.json")).unwrap_or_default();
    if installed == wanted
        && modules.join("playwright-core").is_dir()
        && modules.join("axe-core").is_dir()
    {
        return Ok(modules);
    }
    if !answers("npm") {
        return Err("npm is not installed (it comes with Node.js)".into());
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    std::fs::write(dir.join("package.json"), &wanted).map_err(|e| format!("write: {e}"))?;
    let status = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--loglevel=error",
        ])
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("run npm: {e}"))?;
    if !status.success() {
        return Err(format!(
            "npm install in {} failed ({status})",
            dir.display()
        ));
    }
    Ok(modules)
}

/// SKIP with the reason, or fail under CI (where everything is installed).
fn skip(reason: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the browser test cannot run under CI: {reason}"
    );
    eprintln!("SKIP the catalogue's browser test: {reason} (.ci/run installs what it needs)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_works_in_a_real_browser() {
    if !answers("node") {
        return skip("Node.js is not installed");
    }
    let Some(chromium) = chromium() else {
        return skip("Chromium is not installed (apt-get install chromium)");
    };
    let modules = match node_modules() {
        Ok(modules) => modules,
        Err(reason) => return skip(&reason),
    };
    let server = Running::start().await;
    seed(&server).await;
    let shots = target_dir().join("browser-screenshots");
    let mut node = tokio::process::Command::new("node");
    node.arg(script_dir().join("catalogue.cjs"))
        .arg(&server.base)
        .arg(&shots)
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(240), node.output())
        .await
        .expect("the browser run finishes within 4 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "browser checks failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for name in [
        "home",
        "search",
        "package",
        "yanked",
        "hostile",
        "not-found",
    ] {
        assert!(
            shots.join(format!("{name}.png")).is_file(),
            "screenshot {name}.png"
        );
    }
    server.stop().await;
}
