//! `mkt` end to end: every subcommand on a fresh home, the `--json` shapes scripts rely on,
//! and the exit codes of the failures users meet.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

const FAILURE: i32 = 1;
const NOT_FOUND: i32 = 3;
const USAGE: i32 = 2;
const VERIFICATION: i32 = 4;
const INVALID: i32 = 5;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/packages")
}

/// A fresh marketplace home.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn mkt(&self) -> Command {
        let mut cmd = Command::cargo_bin("mkt").unwrap();
        // The user-level configuration of the machine running the tests must not count.
        cmd.env("MKT_HOME", self.home())
            .env("MKT_CONFIG", self.user_config())
            .env_remove("NO_COLOR")
            .current_dir(self.dir.path());
        cmd
    }

    /// The user-level configuration file of this environment (none until a test writes it).
    fn user_config(&self) -> PathBuf {
        self.dir.path().join("user-config.toml")
    }

    /// Runs and returns (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output = self.mkt().args(args).output().unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Runs a command that must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(code, 0, "mkt {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    }

    /// Runs with `--json`; returns the parsed output.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let stdout = self.ok(&all);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("mkt {all:?}: {e}:\n{stdout}"))
    }

    /// Runs with `--json` a command that fails; returns the parsed output.
    fn json_failing(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let (code, stdout, stderr) = self.run(&all);
        assert_ne!(code, 0, "mkt {all:?} succeeded:\n{stdout}");
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("mkt {all:?}: {e}:\n{stdout}\n{stderr}"))
    }

    /// Runs a command that must fail with `code`; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let (actual, stdout, stderr) = self.run(args);
        assert_eq!(actual, code, "mkt {args:?}:\n{stdout}\n{stderr}");
        // The error is the first line, after any log lines asked for with -v.
        assert!(
            stderr.starts_with("error: ")
                || (args
                    .iter()
                    .any(|a| a.starts_with("-v") || *a == "--verbose")
                    && stderr.lines().any(|l| l.starts_with("error: "))),
            "mkt {args:?} stderr: {stderr}"
        );
        stderr
    }

    fn publish_examples(&self) {
        let dirs: Vec<String> = std::fs::read_dir(examples())
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .collect();
        let mut args = vec!["publish"];
        args.extend(dirs.iter().map(String::as_str));
        let published = self.json(&args);
        assert_eq!(published.as_array().unwrap().len(), dirs.len());
    }

    fn write_package(&self, name: &str, manifest: &str) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("marketplace.toml"), manifest).unwrap();
        std::fs::write(dir.join("file.txt"), "content").unwrap();
        dir
    }
}

#[test]
fn help_lists_every_command_and_exit_codes() {
    let env = Env::new();
    let help = env.ok(&["--help"]);
    for command in [
        "init",
        "keygen",
        "pack",
        "publish",
        "search",
        "info",
        "versions",
        "install",
        "yank",
        "unyank",
        "verify",
        "trust",
        "stats",
        "rebuild-index",
        "gc",
        "metrics",
        "token",
        "owner",
        "key",
        "user",
        "serve",
        "demo",
    ] {
        assert!(help.contains(command), "--help lacks {command}:\n{help}");
    }
    assert!(help.contains("Exit codes"), "{help}");
    let install = env.ok(&["install", "--help"]);
    assert!(
        install.contains("NAME@REQUIREMENT") && install.contains("--dest"),
        "{install}"
    );
    env.fails(&["frobnicate"], USAGE);
}

#[test]
fn accounts_are_managed_on_the_home() {
    let env = Env::new();
    // Nothing is made without a home.
    env.fails(&["token", "create", "--name", "ops"], NOT_FOUND);
    assert!(!env.home().exists());
    env.ok(&["init"]);

    // The first admin's token: alone on stdout's first line.
    let (code, stdout, stderr) = env.run(&["token", "create", "--name", "ops", "--scope", "admin"]);
    assert_eq!(code, 0, "{stderr}");
    let token = stdout.lines().next().unwrap();
    assert!(token.starts_with("mkt_") && token.len() == 68, "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stderr.contains("created user admin (admin)"), "{stderr}");
    let listed = env.ok(&["token", "list"]);
    assert!(
        listed.contains("ops") && listed.contains("admin"),
        "{listed}"
    );
    assert!(!listed.contains(token), "secrets are never listed");

    // Bad input is refused naming it, and changes nothing.
    let e = env.fails(
        &["token", "create", "--name", "x", "--scope", "everything"],
        USAGE,
    );
    assert!(e.contains("everything"), "{e}");
    env.fails(
        &["token", "create", "--name", "x", "--pattern", "a/b/c"],
        USAGE,
    );
    env.fails(
        &["token", "create", "--name", "x", "--user", "Not A Name"],
        USAGE,
    );
    env.fails(
        &["token", "create", "--name", "x", "--expires-in-days", "0"],
        USAGE,
    );
    let tokens = env.json(&["token", "list"]);
    assert_eq!(tokens.as_array().unwrap().len(), 1);

    // A publisher with the home's key and a token for acme/* that expires.
    env.ok(&["user", "add", "alice"]);
    env.fails(&["user", "add", "alice"], FAILURE);
    let added = env.ok(&["key", "add", "--user", "alice"]);
    assert!(added.contains("alice"), "{added}");
    let keys = env.json(&["key", "list", "--user", "alice"]);
    let key_id = keys["keys"][0].as_str().unwrap().to_owned();
    let created = env.json(&[
        "token",
        "create",
        "--name",
        "ci",
        "--user",
        "alice",
        "--pattern",
        "acme/*",
        "--expires-in-days",
        "30",
    ]);
    assert!(created["token"].as_str().unwrap().starts_with("mkt_"));
    assert_eq!(created["record"]["pattern"], "acme/*");
    let id = created["record"]["id"].as_str().unwrap().to_owned();
    // Alice is no admin: no admin token for her.
    env.fails(
        &[
            "token", "create", "--name", "x", "--user", "alice", "--scope", "admin",
        ],
        USAGE,
    );

    // Owners: a user must exist; the last owner stays.
    env.fails(&["owner", "add", "acme", "--namespace", "bob"], NOT_FOUND);
    env.ok(&["owner", "add", "acme", "--namespace", "alice"]);
    let owners = env.json(&["owner", "list", "acme", "--namespace"]);
    assert_eq!(owners["owners"], serde_json::json!(["alice"]));
    env.fails(
        &["owner", "remove", "acme", "--namespace", "alice"],
        INVALID,
    );
    let nobody = env.ok(&["owner", "list", "web"]);
    assert!(nobody.contains("nobody owns"), "{nobody}");

    // Revoking.
    env.ok(&["token", "revoke", &id, "--user", "alice"]);
    let listed = env.ok(&["token", "list", "--user", "alice"]);
    assert!(listed.contains("revoked"), "{listed}");
    let e = env.fails(&["token", "revoke", "0000000000000000"], NOT_FOUND);
    assert!(e.contains("mkt token list"), "{e}");
    env.ok(&[
        "key", "revoke", &key_id, "--user", "alice", "--reason", "rotated",
    ]);
    let trust = env.ok(&["trust", "list"]);
    assert!(trust.contains("revoked"), "{trust}");
    let users = env.json(&["user", "list"]);
    assert_eq!(users.as_array().unwrap().len(), 2);
}

#[test]
fn init_keygen_and_trust() {
    let env = Env::new();
    let init = env.json(&["init"]);
    assert_eq!(init["created"], true);
    let key_id = init["key_id"].as_str().unwrap().to_owned();
    assert_eq!(key_id.len(), 32);
    assert_eq!(env.json(&["init"])["created"], false);

    let other = env.json(&["keygen", "--name", "ci"]);
    assert_eq!(other["trusted"], false);
    let other_id = other["key_id"].as_str().unwrap().to_owned();
    assert!(Path::new(other["public_key"].as_str().unwrap()).is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(other["private_key"].as_str().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "private keys are owner-only");
    }
    env.fails(&["keygen", "--name", "ci"], 1);
    env.fails(&["keygen", "--name", "../escape"], USAGE);

    let listed = env.json(&["trust", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let public = env.home().join("keys/ci.pub.pem");
    let added = env.json(&[
        "trust",
        "add",
        public.to_str().unwrap(),
        "--level",
        "marginal",
    ]);
    assert_eq!(added["key_id"], other_id.as_str());
    assert_eq!(added["level"], "marginal");
    let revoked = env.json(&["trust", "revoke", &other_id, "--reason", "rotated"]);
    assert_eq!(revoked["revoked"], true);
    let listed = env.json(&["trust", "list"]);
    let statuses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["trust"]["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses.contains(&"revoked") && statuses.contains(&"trusted"),
        "{listed}"
    );
    env.fails(&["trust", "revoke", "not-hex", "--reason", "x"], USAGE);
    env.fails(&["trust", "add", "missing.pem"], NOT_FOUND);
    std::fs::write(env.dir.path().join("junk.pem"), "not a key").unwrap();
    env.fails(&["trust", "add", "junk.pem"], INVALID);
}

#[test]
fn pack_publish_search_info_versions() {
    let env = Env::new();
    let dir = examples().join("base-styles-1.0.0");
    let packed = env.json(&["pack", dir.to_str().unwrap(), "-o", "styles.tar.gz"]);
    assert_eq!(packed["id"], "starter/base-styles@1.0.0");
    let again = env.json(&["pack", dir.to_str().unwrap(), "-o", "again.tar.gz"]);
    assert_eq!(
        packed["checksum"], again["checksum"],
        "packing is reproducible"
    );
    let published = env.json(&["publish", "styles.tar.gz"]);
    assert_eq!(published[0]["id"], "starter/base-styles@1.0.0");
    assert_eq!(published[0]["checksum"], packed["checksum"]);
    assert_eq!(published[0]["indexed"], true);
    let stderr = env.fails(&["publish", "styles.tar.gz"], 1);
    assert!(
        stderr.contains("already exists") && stderr.contains("bump the version"),
        "{stderr}"
    );

    env.publish_examples_except("base-styles-1.0.0");
    let hits = env.json(&["search", "css"]);
    assert_eq!(hits[0]["id"], "starter/base-styles@1.1.0", "{hits}");
    assert!(hits[0]["score"].as_f64().unwrap() > 0.0);
    assert!(
        hits[0]["highlights"][0].as_str().unwrap().contains("<b>"),
        "{hits}"
    );
    let filtered = env.json(&["search", "template", "--category", "docs"]);
    assert!(filtered.as_array().unwrap().iter().all(|h| {
        h["categories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "docs")
    }));
    let table = env.ok(&["search", "layout", "--color", "always"]);
    assert!(
        table.contains("PACKAGE") && table.contains("starter/html-layout"),
        "{table}"
    );
    assert!(
        table.contains("\u{1b}[1m\u{1b}[33mlayout"),
        "matches are highlighted:\n{table}"
    );
    let plain = env.ok(&["search", "layout"]);
    assert!(
        !plain.contains('\u{1b}'),
        "no colour when not a terminal:\n{plain}"
    );
    assert!(env.ok(&["search", "zzqqxx"]).contains("no packages match"));
    // A short word with one letter dropped matches nothing as written: the retry that forgives
    // it finds the package and says so.
    let respelled = env.ok(&["search", "blg"]);
    assert!(
        respelled
            .contains("no packages match \"blg\" as written; did you mean starter/blog-template")
            && respelled.contains("PACKAGE"),
        "{respelled}"
    );

    let info = env.json(&["info", "starter/blog-template"]);
    assert_eq!(info["metadata"]["id"], "starter/blog-template@1.0.0");
    assert_eq!(info["yanked"], serde_json::Value::Null);
    assert!(info["metadata"]["signature"].is_object(), "{info}");
    let text = env.ok(&["info", "starter/base-styles@1.0.0"]);
    assert!(
        text.contains("checksum") && text.contains("signed by"),
        "{text}"
    );
    let versions = env.json(&["versions", "starter/base-styles"]);
    assert_eq!(versions.as_array().unwrap().len(), 2);
    assert_eq!(versions[0]["version"], "1.0.0");
    assert_eq!(versions[0]["yanked"], serde_json::Value::Null);
}

impl Env {
    fn publish_examples_except(&self, skip: &str) {
        let dirs: Vec<String> = std::fs::read_dir(examples())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.ends_with(skip))
            .map(|p| p.display().to_string())
            .collect();
        let mut args = vec!["publish"];
        args.extend(dirs.iter().map(String::as_str));
        self.json(&args);
    }
}

#[test]
fn install_yank_verify_stats_and_maintenance() {
    let env = Env::new();
    env.publish_examples();
    let report = env.json(&["install", "starter/blog-template@^1", "--dest", "out"]);
    assert_eq!(report["root"], "starter/blog-template@1.0.0");
    let installed: Vec<&str> = report["installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        installed,
        [
            "starter/base-styles@1.1.0",
            "starter/html-layout@1.0.0",
            "starter/markdown-render@0.3.0",
            "starter/blog-template@1.0.0"
        ]
    );
    assert!(
        env.dir
            .path()
            .join("out/starter/blog-template-1.0.0/feed.xml")
            .is_file()
    );
    assert!(env.dir.path().join("out/marketplace.lock").is_file());
    let again = env.json(&["install", "starter/blog-template", "--dest", "out"]);
    assert_eq!(again["from_lockfile"], true);
    assert_eq!(again["installed"].as_array().unwrap().len(), 0);

    let verified = env.json(&["verify", "starter/blog-template@1.0.0"]);
    assert_eq!(verified["verified"], true);
    assert_eq!(verified["trust"], "ultimate");
    let stats = env.json(&["stats", "starter/base-styles@1.1.0"]);
    assert_eq!(stats["version_downloads"], 1);
    assert_eq!(stats["last_30_days"].as_array().unwrap().len(), 30);
    assert!(
        env.ok(&["stats", "starter/base-styles@1.1.0"])
            .contains("DOWNLOADS")
    );

    let yanked = env.json(&[
        "yank",
        "starter/ci-github-actions@2.1.0",
        "--reason",
        "broken",
    ]);
    assert_eq!(yanked["yanked"], true);
    let fresh = env.json(&["install", "starter/docker-service", "--dest", "fresh"]);
    let ids: Vec<&str> = fresh["installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "starter/ci-github-actions@2.0.0",
            "starter/docker-service@1.0.0"
        ],
        "a range skips the yanked version"
    );
    let versions = env.json(&["versions", "starter/ci-github-actions"]);
    assert_eq!(versions[1]["yanked"]["reason"], "broken");
    assert_eq!(
        env.json(&["unyank", "starter/ci-github-actions@2.1.0"])["yanked"],
        false
    );

    assert_eq!(env.json(&["rebuild-index"])["versions"], 14);
    let gc = env.json(&["gc", "--grace", "0"]);
    assert_eq!(gc["scanned"], 14);
    assert_eq!(gc["deleted"], 0);
    let metrics = env.ok(&["metrics"]);
    assert!(
        metrics.contains("# TYPE mkt_versions gauge") && metrics.contains("mkt_versions 14"),
        "{metrics}"
    );
    let json = env.json(&["metrics"]);
    assert!(
        json["samples"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "mkt_packages")
    );
}

/// Configuration files set defaults below the flags: the user's file and the home's (which
/// wins), each setting only where the command line did not give one; a bad file is an error
/// that names it, never ignored.
#[test]
fn config_files_set_defaults_below_the_flags() {
    let env = Env::new();
    env.ok(&["init"]);
    let release = env.json(&["keygen", "--name", "release", "--trust"]);
    let pkg = examples().join("base-styles-1.1.0");
    std::fs::write(
        env.user_config(),
        "dest = \"from-user\"\ncolor = \"never\"\nkey = \"release\"\n",
    )
    .unwrap();
    // `key` from the user's file: the package is signed by `release`.
    let published = env.json(&["publish", pkg.to_str().unwrap()]);
    let id = published[0]["id"].as_str().unwrap().to_owned();
    let verified = env.json(&["verify", &id]);
    assert_eq!(verified["key_id"], release["key_id"], "{verified}");
    // `dest` from the user's file, then from the home's file, then from the flag.
    env.ok(&["install", &id]);
    assert!(env.dir.path().join("from-user/marketplace.lock").is_file());
    std::fs::write(env.home().join("config.toml"), "dest = \"from-home\"\n").unwrap();
    env.ok(&["install", &id]);
    assert!(env.dir.path().join("from-home/marketplace.lock").is_file());
    env.ok(&["install", &id, "--dest", "from-flag"]);
    assert!(env.dir.path().join("from-flag/marketplace.lock").is_file());
    assert_eq!(env.json(&["audit"])["checked"], 1);
    env.ok(&["uninstall", "starter/base-styles"]);
    assert!(
        !env.dir
            .path()
            .join("from-home/starter/base-styles-1.1.0")
            .exists()
    );
    assert!(
        env.dir
            .path()
            .join("from-user/starter/base-styles-1.1.0")
            .is_dir()
    );
    // `color = "never"` holds unless a flag says otherwise.
    let plain = env.ok(&["versions", "starter/base-styles"]);
    assert!(!plain.contains('\u{1b}'), "{plain}");
    let coloured = env.ok(&["versions", "starter/base-styles", "--color", "always"]);
    assert!(coloured.contains('\u{1b}'), "{coloured}");

    // Refused, naming the file and the key: an unknown key, a bad value, `home` in a home.
    std::fs::write(env.home().join("config.toml"), "destination = \"x\"\n").unwrap();
    let err = env.fails(&["versions", "starter/base-styles"], 5);
    assert!(
        err.contains("config.toml") && err.contains("destination"),
        "{err}"
    );
    std::fs::write(env.home().join("config.toml"), "color = \"sometimes\"\n").unwrap();
    let err = env.fails(&["versions", "starter/base-styles"], 5);
    assert!(err.contains("sometimes"), "{err}");
    std::fs::write(env.home().join("config.toml"), "home = \"/elsewhere\"\n").unwrap();
    let err = env.fails(&["versions", "starter/base-styles"], 5);
    assert!(err.contains("only the user's configuration"), "{err}");
    std::fs::remove_file(env.home().join("config.toml")).unwrap();

    // `home` in the user's file, relative to the file, when MKT_HOME is not set.
    std::fs::write(env.user_config(), "home = \"home\"\n").unwrap();
    let (code, stdout, stderr) = {
        let output = env
            .mkt()
            .env_remove("MKT_HOME")
            .args(["versions", "starter/base-styles"])
            .output()
            .unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("1.1.0"), "{stdout}");
}

/// A range whose newest version is signed by a key revoked since falls back to the newest
/// version whose signer's key is not revoked, and says so; an exact pin does not.
#[test]
fn a_revoked_signer_on_the_newest_version_falls_back_and_says_so() {
    let env = Env::new();
    env.ok(&["init"]);
    let rotated = env.json(&["keygen", "--name", "rotated", "--trust"]);
    let manifest = |v: &str| {
        format!(
            "[package]\nnamespace = \"acme\"\nname = \"tool\"\nversion = \"{v}\"\nlicense = \"MIT\"\ndescription = \"a tool\"\n"
        )
    };
    let old = env.write_package("tool-1.0.0", &manifest("1.0.0"));
    let mid = env.write_package("tool-1.1.0", &manifest("1.1.0"));
    let new = env.write_package("tool-1.2.0", &manifest("1.2.0"));
    env.ok(&["publish", old.to_str().unwrap()]);
    env.ok(&["publish", mid.to_str().unwrap(), "--key", "rotated"]);
    env.ok(&["publish", new.to_str().unwrap(), "--key", "rotated"]);
    env.ok(&[
        "trust",
        "revoke",
        rotated["key_id"].as_str().unwrap(),
        "--reason",
        "laptop stolen",
    ]);

    let text = env.ok(&["install", "acme/tool@^1", "--dest", "a"]);
    assert!(
        text.contains("passed over acme/tool@1.2.0")
            && text.contains("passed over acme/tool@1.1.0")
            && text.contains("laptop stolen")
            && text.contains("installing acme/tool@1.0.0"),
        "{text}"
    );
    let report = env.json(&["install", "acme/tool@^1", "--dest", "b"]);
    assert_eq!(report["root"], "acme/tool@1.0.0");
    let passed: Vec<&str> = report["passed_over"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(passed, ["acme/tool@1.2.0", "acme/tool@1.1.0"]);
    // An exact pin means that version: refused, naming the revocation, nothing written.
    let stderr = env.fails(
        &["install", "acme/tool@=1.2.0", "--dest", "c"],
        VERIFICATION,
    );
    assert!(stderr.contains("revoked"), "{stderr}");
    assert!(!env.dir.path().join("c").exists());
}

/// `--json` is for scripts everywhere: errors are a JSON object on stdout too (the person's
/// message stays on stderr), dates are RFC 3339, snippets come as plain text with offsets.
#[test]
fn json_output_covers_errors_dates_and_snippets() {
    let env = Env::new();
    env.publish_examples();
    let error = env.json_failing(&["info", "starter/no-such-package"]);
    assert_eq!(error["error"]["exit_code"], 3, "{error}");
    assert_eq!(error["error"]["kind"], "not_found");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("starter/no-such-package"),
        "{error}"
    );
    assert!(error["error"]["hint"].is_string(), "{error}");
    let (_, _, stderr) = env.run(&["info", "starter/no-such-package", "--json"]);
    assert!(stderr.starts_with("error: "), "{stderr}");
    let usage = env.json_failing(&["info", "Not A Name"]);
    assert_eq!(usage["error"]["exit_code"], 2, "{usage}");
    assert_eq!(usage["error"]["kind"], "usage");

    let stats = env.json(&["stats", "starter/base-styles@1.1.0"]);
    let day = stats["last_30_days"][0]["date"].as_str().unwrap();
    assert!(
        day.len() == 10 && day.as_bytes()[4] == b'-' && day.as_bytes()[7] == b'-',
        "a day is YYYY-MM-DD: {day}"
    );

    let hits = env.json(&["search", "css"]);
    let snippet = &hits[0]["snippets"][0];
    let text = snippet["text"].as_str().unwrap();
    assert!(!text.contains("<b>"), "{snippet}");
    let (start, end) = (
        snippet["matches"][0][0].as_u64().unwrap() as usize,
        snippet["matches"][0][1].as_u64().unwrap() as usize,
    );
    assert_eq!(text[start..end].to_lowercase(), "css", "{snippet}");
}

/// The reason given for a yank reaches every place a yanked version shows: `info`, `versions`,
/// an install that refuses a range or installs an exact pin, and search results.
#[test]
fn the_yank_reason_is_shown_wherever_the_yank_is() {
    let env = Env::new();
    env.publish_examples();
    env.ok(&[
        "yank",
        "starter/ci-github-actions@2.1.0",
        "--reason",
        "leaks the deploy token",
    ]);
    env.ok(&[
        "yank",
        "starter/ci-github-actions@2.0.0",
        "--reason",
        "wrong runner image",
    ]);

    let info = env.ok(&["info", "starter/ci-github-actions@2.1.0"]);
    assert!(
        info.contains("(yanked)") && info.contains("leaks the deploy token (yanked 20"),
        "{info}"
    );
    let json = env.json(&["info", "starter/ci-github-actions@2.1.0"]);
    assert_eq!(json["yanked"]["reason"], "leaks the deploy token");
    let at = json["yanked"]["at"].as_str().unwrap();
    assert!(
        at.len() >= 20 && at.as_bytes()[10] == b'T' && at.ends_with('Z'),
        "RFC 3339: {at}"
    );
    assert!(
        json["metadata"]["published_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let versions = env.ok(&["versions", "starter/ci-github-actions"]);
    let line = versions.lines().find(|l| l.starts_with("2.1.0")).unwrap();
    assert!(
        line.contains("yanked") && line.contains("leaks the deploy token"),
        "{versions}"
    );
    assert!(versions.contains("YANKED"), "{versions}");

    // A range with only yanked versions: the refusal names each with its reason.
    let refused = env.fails(
        &["install", "starter/ci-github-actions@^2", "--dest", "a"],
        3,
    );
    assert!(
        refused.contains("2.0.0 (wrong runner image)")
            && refused.contains("2.1.0 (leaks the deploy token)")
            && refused.contains("=VERSION"),
        "{refused}"
    );
    // An exact pin installs it, and says why it should not have.
    let pinned = env.ok(&["install", "starter/ci-github-actions@=2.1.0", "--dest", "b"]);
    assert!(
        pinned
            .contains("warning: starter/ci-github-actions@2.1.0 is yanked: leaks the deploy token")
            && pinned.contains("pinned exactly"),
        "{pinned}"
    );
    let report = env.json(&["install", "starter/ci-github-actions@=2.1.0", "--dest", "c"]);
    assert_eq!(report["yanked"][0]["id"], "starter/ci-github-actions@2.1.0");
    assert_eq!(report["yanked"][0]["reason"], "leaks the deploy token");
    // Kept from the lockfile: the warning says so.
    let again = env.ok(&["install", "starter/ci-github-actions@=2.1.0", "--dest", "b"]);
    assert!(again.contains("the lockfile holds it"), "{again}");

    let found = env.ok(&["search", "ci", "--include-yanked"]);
    assert!(
        found.contains("(yanked: leaks the deploy token)"),
        "{found}"
    );
}

#[test]
fn failures_have_their_exit_codes_and_hints() {
    let env = Env::new();
    env.publish_examples();
    // Unknown package.
    let stderr = env.fails(&["install", "starter/nothing", "--dest", "x"], NOT_FOUND);
    assert!(stderr.contains("hint:"), "{stderr}");
    env.fails(&["info", "starter/nothing"], NOT_FOUND);
    env.fails(&["verify", "starter/blog-template@9.9.9"], NOT_FOUND);
    // Bad version requirement, bad names, missing versions.
    let stderr = env.fails(&["install", "starter/blog-template@^^1"], USAGE);
    assert!(stderr.contains("version requirement"), "{stderr}");
    env.fails(&["yank", "starter/blog-template"], USAGE);
    env.fails(&["info", "bad name!"], USAGE);
    env.fails(&["verify", "starter/blog-template@1.x"], USAGE);

    // Invalid manifest.
    let bad = env.write_package("bad", "[package]\nname = \"ok-name\"\nversion = \"one\"\n");
    let stderr = env.fails(&["pack", bad.to_str().unwrap()], INVALID);
    assert!(stderr.contains("package.version"), "{stderr}");
    env.fails(&["publish", bad.to_str().unwrap()], INVALID);

    // Untrusted key: publishing and installing.
    env.ok(&["keygen", "--name", "stranger"]);
    let good = env.write_package(
        "untrusted",
        "[package]\nname = \"untrusted\"\nversion = \"1.0.0\"\nlicense = \"MIT\"\n",
    );
    let stderr = env.fails(
        &["publish", good.to_str().unwrap(), "--key", "stranger"],
        VERIFICATION,
    );
    assert!(
        stderr.contains("not trusted") && stderr.contains("mkt trust add"),
        "{stderr}"
    );

    // A key revoked after publishing: installs are refused.
    let public = env.home().join("keys/stranger.pub.pem");
    let key_id = env.json(&["trust", "add", public.to_str().unwrap()])["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.ok(&["publish", good.to_str().unwrap(), "--key", "stranger"]);
    env.ok(&["trust", "revoke", &key_id, "--reason", "lost laptop"]);
    let stderr = env.fails(&["install", "untrusted", "--dest", "revoked"], VERIFICATION);
    assert!(stderr.contains("revoked"), "{stderr}");
    assert!(!env.dir.path().join("revoked").exists());

    // Tampered archive: flip a byte of the stored object.
    let checksum = env.json(&["info", "starter/readme-badges"])["metadata"]["checksum"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let object = find_file(&env.home().join("store"), &checksum).expect("stored object");
    let mut bytes = std::fs::read(&object).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&object, bytes).unwrap();
    let stderr = env.fails(
        &["install", "starter/readme-badges", "--dest", "tampered"],
        VERIFICATION,
    );
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(!env.dir.path().join("tampered").exists());
    env.fails(&["verify", "starter/readme-badges@0.1.0"], VERIFICATION);
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

#[test]
fn demo_runs_the_whole_tour() {
    let env = Env::new();
    let out = env.ok(&["demo", "--home", env.home().to_str().unwrap()]);
    for step in [
        "==> a fresh marketplace",
        "==> publish 14 packages",
        "==> search \"template\"",
        "==> install starter/blog-template ^1",
        "==> verify what was installed",
        "ok starter/blog-template@1.0.0",
    ] {
        assert!(out.contains(step), "the demo lacks {step:?}:\n{out}");
    }
    let json = env.json(&[
        "demo",
        "--home",
        env.dir.path().join("second").to_str().unwrap(),
    ]);
    assert_eq!(json["published"].as_array().unwrap().len(), 14);
    assert_eq!(json["verified"].as_array().unwrap().len(), 4);
}

/// A package directory with `description` in its manifest.
fn package_with_description(root: &Path, name: &str, description: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("marketplace.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\nlicense = \"MIT\"\ndescription = \"{description}\"\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn package_text_cannot_reorder_or_hide_what_the_terminal_shows() {
    let env = Env::new();
    let dir = package_with_description(
        env.dir.path(),
        "trojan",
        "Harmless \\u202egnp.exe\\u200b tool",
    );
    env.ok(&["publish", dir.to_str().unwrap()]);
    for args in [&["search", "trojan"][..], &["info", "trojan"][..]] {
        let out = env.ok(args);
        assert!(
            !out.contains('\u{202e}') && !out.contains('\u{200b}'),
            "mkt {args:?} printed a format character raw: {out:?}"
        );
        assert!(out.contains("\\u{202e}"), "mkt {args:?}: {out}");
    }
    // JSON carries the text as it is (escaped by JSON's own rules).
    let json = env.json(&["info", "trojan"]);
    assert!(json.to_string().contains('\u{202e}') || json.to_string().contains("u202e"));
}

#[test]
fn a_closed_pipe_ends_quietly_and_a_full_disk_is_named() {
    let env = Env::new();
    env.ok(&["init"]);
    // A reader that closed its end: `mkt … | head -0`.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mkt"))
        .args(["search", "anything"])
        .env("MKT_HOME", env.home())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");

    if Path::new("/dev/full").exists() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("mkt"))
            .args(["search", "anything"])
            .env("MKT_HOME", env.home())
            .stdout(full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_ne!(output.status.code(), Some(0));
        assert!(stderr.contains("No space left on device"), "{stderr}");
        assert!(stderr.contains("disk is full"), "{stderr}");
    } else {
        eprintln!("SKIP: no /dev/full on this platform; the full-disk output case is not tested");
    }
}

/// Metadata as real registries hold it: a license written the old way is accepted and shown
/// normalised beside the text as written, crates.io category slugs with `::` are accepted, a
/// refused license suggests the fix, and a second spelling of an existing package is refused
/// naming the one it has.
#[test]
fn real_world_metadata_is_accepted_and_spellings_are_kept_apart() {
    let env = Env::new();
    let old = env.write_package(
        "old-style",
        "[package]\nname = \"old-style\"\nversion = \"1.0.0\"\nlicense = \"MIT/Apache-2.0\"\ncategories = [\"development-tools::debugging\"]\n",
    );
    env.ok(&["publish", old.to_str().unwrap()]);
    let info = env.ok(&["info", "old-style"]);
    assert!(
        info.contains("MIT OR Apache-2.0 (written as MIT/Apache-2.0)"),
        "{info}"
    );
    assert!(info.contains("development-tools::debugging"), "{info}");

    let proprietary = env.write_package(
        "closed",
        "[package]\nname = \"closed\"\nversion = \"1.0.0\"\nlicense = \"Proprietary\"\n",
    );
    let stderr = env.fails(&["publish", proprietary.to_str().unwrap()], 5);
    assert!(stderr.contains("LicenseRef-Proprietary"), "{stderr}");

    let other = env.write_package(
        "Old_Style",
        "[package]\nname = \"Old_Style\"\nversion = \"2.0.0\"\n",
    );
    let stderr = env.fails(&["publish", other.to_str().unwrap()], 5);
    assert!(
        stderr.contains("the package is named old-style")
            && stderr.contains("publish it as old-style"),
        "{stderr}"
    );
    let versions = env.ok(&["versions", "old-style"]);
    assert!(
        !versions.contains("2.0.0"),
        "nothing was registered: {versions}"
    );
    // The same spelling publishes a new version.
    let next = env.write_package(
        "old-style-2",
        "[package]\nname = \"old-style\"\nversion = \"2.0.0\"\n",
    );
    env.ok(&["publish", next.to_str().unwrap()]);
}

/// A dependency on a package not published yet is allowed (imports come in any order), and
/// `publish`, `info` and `install` say plainly what is missing; once it is published, the
/// install works.
#[test]
fn a_dependency_not_published_yet_is_allowed_and_explained() {
    let env = Env::new();
    let needs = env.write_package(
        "needs",
        "[package]\nname = \"needs\"\nversion = \"1.0.0\"\n\n[dependencies]\nghost = \"^1\"\n",
    );
    let (code, _, stderr) = env.run(&["publish", needs.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("needs@1.0.0 depends on ghost ^1, not in this marketplace yet"),
        "{stderr}"
    );
    let info = env.ok(&["info", "needs"]);
    assert!(
        info.contains("ghost ^1  (not in this marketplace"),
        "{info}"
    );
    let dest = env.dir.path().join("dest");
    let stderr = env.fails(&["install", "needs", "--dest", dest.to_str().unwrap()], 1);
    assert!(
        stderr.contains("needs 1.0.0 depends on ghost ^1, but no package named ghost exists")
            && stderr.contains("publish it first")
            && stderr.matches("depends on ghost").count() == 1,
        "{stderr}"
    );
    let ghost = env.write_package(
        "ghost",
        "[package]\nname = \"ghost\"\nversion = \"1.2.0\"\n",
    );
    env.ok(&["publish", ghost.to_str().unwrap()]);
    env.ok(&["install", "needs", "--dest", dest.to_str().unwrap()]);
    assert!(
        !env.ok(&["info", "needs"])
            .contains("not in this marketplace")
    );
}

/// Many paths publish as an import does: every refusal is listed with its path and reason, the
/// valid packages are published, a summary ends it and the exit code says something was
/// refused; `--atomic` publishes nothing when anything is refused.
#[test]
fn many_paths_list_every_refusal_and_publish_the_rest() {
    let env = Env::new();
    let manifest = |name: &str, version: &str| {
        format!("[package]\nname = \"{name}\"\nversion = \"{version}\"\n")
    };
    let a = env.write_package("a", &manifest("imp-a", "1.0.0"));
    let bad = env.write_package("bad", &manifest("-bad", "1.0.0"));
    let b = env.write_package("b", &manifest("imp-b", "1.0.0"));
    let again = env.write_package("again", &manifest("Imp_A", "2.0.0"));
    let missing = env.dir.path().join("missing");
    let paths = [&a, &bad, &b, &missing, &again];
    let mut args = vec!["publish"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let (code, stdout, stderr) = env.run(&args);
    assert_eq!(code, 5, "{stdout}{stderr}");
    assert!(
        stdout.contains("published 2 of 5 packages; 3 refused"),
        "{stdout}"
    );
    for (path, reason) in [
        (&bad, "must start with an ASCII letter"),
        (&missing, "cannot read"),
        (&again, "publish it as imp-a"),
    ] {
        assert!(
            stderr.contains(&format!("error: {}: ", path.display())) && stderr.contains(reason),
            "{} not listed with {reason}: {stderr}",
            path.display()
        );
    }
    assert!(env.ok(&["versions", "imp-b"]).contains("1.0.0"));

    let c = env.write_package("c", &manifest("imp-c", "1.0.0"));
    let (code, stdout, _) = env.run(&[
        "publish",
        "--atomic",
        c.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 5);
    assert!(
        stdout.contains("nothing was published (--atomic)"),
        "{stdout}"
    );
    let (code, _, _) = env.run(&["versions", "imp-c"]);
    assert_eq!(code, 3, "an atomic publish with a refusal published imp-c");
    let published = env.json(&["publish", "--atomic", c.to_str().unwrap()]);
    assert_eq!(published.as_array().unwrap().len(), 1);
}

/// An import of real packages: the metadata of every checked-in real crate version
/// (`marketplace_testing::real`), as manifests, in one `mkt publish`. Only records that are really
/// invalid are refused, each named with its reason; everything else is published.
#[test]
fn an_import_of_real_crates_refuses_only_what_is_really_invalid() {
    let env = Env::new();
    let crates = marketplace_testing::real::real_crates();
    assert!(crates.len() >= 300);
    let mut paths = Vec::new();
    for krate in &crates {
        let dir = env.write_package(
            &format!("import/{}-{}", krate.name, krate.version),
            &krate.manifest(),
        );
        paths.push(dir.to_string_lossy().into_owned());
    }
    // Two records that are really invalid, among them: each is refused, nothing else is.
    for (dir, manifest) in [
        (
            "import/bad-name",
            "[package]\nname = \"has space\"\nversion = \"1.0.0\"\n",
        ),
        (
            "import/bad-version",
            "[package]\nname = \"two-part\"\nversion = \"1.0\"\n",
        ),
    ] {
        paths.push(
            env.write_package(dir, manifest)
                .to_string_lossy()
                .into_owned(),
        );
    }
    let mut args = vec!["publish"];
    args.extend(paths.iter().map(String::as_str));
    let (code, stdout, stderr) = env.run(&args);
    assert_eq!(code, 5, "{stdout}\n{stderr}");
    let summary = format!(
        "published {} of {} packages",
        crates.len(),
        crates.len() + 2
    );
    assert!(stdout.contains(&summary), "{stdout}");
    let refusals: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("import/"))
        .collect();
    assert_eq!(refusals.len(), 2, "{stderr}");
    assert!(
        refusals[0].contains("bad-name") && refusals[1].contains("bad-version"),
        "{stderr}"
    );
    let hits = env.json(&["search", "json serialization"]);
    let first = hits[0]["id"].as_str().unwrap_or_default();
    assert!(first.starts_with("serde_json@"), "{hits}");
}

/// An install that cannot be resolved says so in a few lines — the package needed twice and the
/// chain of requirements to each need — and `--verbose` adds the solver's full derivation.
#[test]
fn a_conflict_is_explained_in_a_few_lines_and_fully_with_verbose() {
    let env = Env::new();
    let mut paths = Vec::new();
    for (dir, name, version, deps) in [
        ("b1", "b", "1.0.0", ""),
        ("b2", "b", "2.0.0", ""),
        ("c1", "c", "1.0.0", "b = \"^2\"\n"),
        ("d1", "d", "1.0.0", "c = \"^1\"\n"),
        ("a1", "a", "1.0.0", "b = \"^1\"\nd = \"^1\"\n"),
    ] {
        let manifest = format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\n\n[dependencies]\n{deps}"
        );
        paths.push(
            env.write_package(dir, &manifest)
                .to_string_lossy()
                .into_owned(),
        );
    }
    let mut args = vec!["publish"];
    args.extend(paths.iter().map(String::as_str));
    env.ok(&args);
    let dest = env.dir.path().join("dest");
    let dest = dest.to_str().unwrap();
    let stderr = env.fails(&["install", "a", "--dest", dest], 1);
    assert!(
        stderr.contains("b is required in two versions that cannot both be used")
            && stderr.contains("    a 1.0.0 depends on b ^1\n")
            && stderr
                .contains("a 1.0.0 depends on d ^1, which depends on c ^1, which depends on b ^2")
            && stderr.contains("--verbose shows the solver's full derivation")
            && !stderr.contains(">="),
        "{stderr}"
    );
    assert!(stderr.lines().count() <= 5, "{stderr}");
    let verbose = env.fails(&["install", "a", "--dest", dest, "--verbose"], 1);
    assert!(
        verbose.contains("the solver's full derivation:") && verbose.contains("Because"),
        "{verbose}"
    );
    // Under cargo's rule b 1 and b 2 are two series and both are installed.
    let out = env.ok(&["install", "a", "--dest", dest, "--resolution", "cargo"]);
    for installed in ["a-1.0.0", "b-1.0.0", "b-2.0.0", "c-1.0.0", "d-1.0.0"] {
        assert!(
            std::path::Path::new(dest).join(installed).is_dir(),
            "{installed} not installed: {out}"
        );
    }
}

/// A manifest's renamed dependency (`alias = { package = …, version = … }`) is published,
/// shown by `mkt info` with its alias, and installed under cargo's rule beside the plain one.
#[test]
fn a_renamed_dependency_is_published_shown_and_installed() {
    let env = Env::new();
    let mut paths = Vec::new();
    for (dir, name, version, deps) in [
        ("c05", "rand_core", "0.5.1", ""),
        ("c06", "rand_core", "0.6.4", ""),
        (
            "rand",
            "rand",
            "0.8.0",
            "rand_core = \"^0.6\"\nrand_core_05 = { package = \"rand_core\", version = \"^0.5\" }\n",
        ),
    ] {
        let manifest = format!(
            "[package]\nname = \"{name}\"\nversion = \"{version}\"\n\n[dependencies]\n{deps}"
        );
        paths.push(
            env.write_package(dir, &manifest)
                .to_string_lossy()
                .into_owned(),
        );
    }
    let mut args = vec!["publish"];
    args.extend(paths.iter().map(String::as_str));
    env.ok(&args);
    let info = env.ok(&["info", "rand"]);
    assert!(
        info.contains("rand_core ^0.6\n") && info.contains("rand_core ^0.5 (as rand_core_05)"),
        "{info}"
    );
    let json = env.json(&["info", "rand"]);
    assert_eq!(
        json["metadata"]["renamed_dependencies"]["rand_core_05"]["package"], "rand_core",
        "{json}"
    );
    let dest = env.dir.path().join("dest");
    let dest = dest.to_str().unwrap();
    env.ok(&[
        "install",
        "rand",
        "--dest",
        dest,
        "--resolution",
        "semver-compatible",
    ]);
    for installed in ["rand-0.8.0", "rand_core-0.5.1", "rand_core-0.6.4"] {
        assert!(
            std::path::Path::new(dest).join(installed).is_dir(),
            "{installed}"
        );
    }
}

/// Commands that only read (or change what a home holds) never create one: a missing or
/// mistyped home is "not found" with the way to make one, and nothing appears on disk.
#[test]
fn read_commands_never_create_a_home() {
    let env = Env::new();
    for args in [
        &["search", "css"][..],
        &["info", "starter/blog-template"],
        &["versions", "starter/blog-template"],
        &["install", "starter/blog-template", "--dest", "site"],
        &["verify", "starter/blog-template@1.0.0"],
        &["stats", "starter/blog-template@1.0.0"],
        &["trust", "list"],
        &["metrics"],
        &["yank", "starter/blog-template@1.0.0"],
        &["gc"],
        &["rebuild-index"],
    ] {
        let stderr = env.fails(args, NOT_FOUND);
        assert!(
            stderr.contains("no marketplace at") && stderr.contains("mkt init"),
            "mkt {args:?}: {stderr}"
        );
        assert!(
            !env.home().exists(),
            "mkt {args:?} created {}",
            env.home().display()
        );
        assert!(!env.dir.path().join("site").exists());
    }
    // An existing home without its default key: reading it creates no key.
    env.ok(&["init"]);
    std::fs::remove_file(env.home().join("keys/default.pem")).unwrap();
    std::fs::remove_file(env.home().join("keys/default.pub.pem")).unwrap();
    env.ok(&["trust", "list"]);
    env.ok(&["search", "anything"]);
    assert!(!env.home().join("keys/default.pem").exists());
    // Commands that put something into a home make it on first use, and say so.
    let other = tempfile::tempdir().unwrap();
    let fresh = other.path().join("fresh");
    let output = env
        .mkt()
        .env("MKT_HOME", &fresh)
        .args(["keygen", "--name", "mine"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("new marketplace at"),
        "{output:?}"
    );
    assert!(fresh.join("registry.sqlite3").is_file());
}

/// Several `mkt` processes on one home: writers wait for the home lock (and say so), readers
/// never wait and never fail on a writer, and a fresh home first used by several writers at
/// once is made once.
#[test]
fn concurrent_processes_on_one_home_all_succeed() {
    let env = Env::new();
    let dirs: Vec<PathBuf> = (0..8)
        .map(|i| {
            env.write_package(
                &format!("conc-{i}"),
                &format!(
                    "[package]\nname = \"conc-{i}\"\nversion = \"1.0.0\"\nlicense = \"MIT\"\ndescription = \"concurrency test {i}\"\n"
                ),
            )
        })
        .collect();
    let spawn = |home: &Path, args: &[&str]| {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("mkt"))
            .env("MKT_HOME", home)
            .env("NO_COLOR", "1")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // A fresh home, eight writers at once.
    let fresh = env.dir.path().join("fresh");
    let writers: Vec<_> = dirs
        .iter()
        .map(|d| spawn(&fresh, &["publish", d.to_str().unwrap()]))
        .collect();
    let mut waited = 0;
    for child in writers {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        waited += usize::from(stderr.contains("waiting for the lock on the marketplace home"));
    }
    assert!(waited > 0, "no writer waited for another");
    let listed = std::fs::read_dir(fresh.join("keys")).unwrap().count();
    assert_eq!(listed, 2, "one default key pair, made once");
    // An existing home: eight publishers and eight searchers at once.
    env.ok(&["init"]);
    let mut children = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        children.push(spawn(&env.home(), &["publish", dir.to_str().unwrap()]));
        children.push(spawn(
            &env.home(),
            &["search", &format!("concurrency test {i}")],
        ));
    }
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let found = env.json(&["search", "concurrency"]);
    assert_eq!(found.as_array().unwrap().len(), 8, "{found}");
    let found = env.json(&["search", "concurrency", "--home", fresh.to_str().unwrap()]);
    assert_eq!(found.as_array().unwrap().len(), 8, "{found}");
}

/// `publish --dry-run` makes every check of a publish and changes nothing.
#[test]
fn a_dry_run_checks_everything_and_changes_nothing() {
    let env = Env::new();
    // No home: a dry run needs one to check against, and makes none.
    env.fails(
        &[
            "publish",
            "--dry-run",
            examples().join("base-styles").to_str().unwrap(),
        ],
        NOT_FOUND,
    );
    assert!(!env.home().exists());
    env.ok(&["init"]);
    let good = env.write_package(
        "dry",
        "[package]\nname = \"dry\"\nversion = \"1.0.0\"\nlicense = \"MIT\"\n",
    );
    let bad = env.write_package(
        "dry-bad",
        "[package]\nname = \"dry-bad\"\nversion = \"one\"\n",
    );
    let stdout = env.ok(&["publish", "--dry-run", good.to_str().unwrap()]);
    assert!(stdout.contains("would publish dry@1.0.0"), "{stdout}");
    assert!(stdout.contains("nothing was changed"), "{stdout}");
    env.fails(&["info", "dry"], NOT_FOUND);
    assert_eq!(
        std::fs::read_dir(env.home().join("store")).map_or(0, |d| d.count()),
        0,
        "nothing stored"
    );
    // Refusals are listed and make the exit code; the valid ones are still only checked.
    let stderr = env.fails(
        &[
            "publish",
            "--dry-run",
            good.to_str().unwrap(),
            bad.to_str().unwrap(),
        ],
        INVALID,
    );
    assert!(
        stderr.contains("dry-bad") && stderr.contains("package.version"),
        "{stderr}"
    );
    // A version that exists is refused by the dry run as by a publish.
    env.ok(&["publish", good.to_str().unwrap()]);
    let stderr = env.fails(&["publish", "--dry-run", good.to_str().unwrap()], 1);
    assert!(stderr.contains("already exists"), "{stderr}");
    // For scripts: the same report as JSON, and the exit code of the refusal.
    let (code, stdout, _) = env.run(&["publish", "--dry-run", bad.to_str().unwrap(), "--json"]);
    assert_eq!(code, INVALID);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["valid"].as_array().unwrap().len(), 0);
    assert!(
        report["refused"][0]["error"]
            .as_str()
            .unwrap()
            .contains("package.version")
    );
}

/// Completion scripts and the manual page come from the command definitions themselves, and
/// need no home.
#[test]
fn completions_and_the_manual_page_are_generated() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = env.ok(&["completions", shell]);
        assert!(
            script.contains("publish") && script.contains("dry-run"),
            "{shell}: {script}"
        );
    }
    // The bash script is valid bash.
    let script = env.dir.path().join("mkt.bash");
    std::fs::write(&script, env.ok(&["completions", "bash"])).unwrap();
    if let Ok(status) = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
    {
        assert!(status.success(), "bash -n rejects the completion script");
    }
    let page = env.ok(&["man"]);
    assert!(
        page.contains(".TH mkt 1") && page.contains(".SH NAME"),
        "{page}"
    );
    assert!(
        page.contains("publish") && page.contains("Exit codes"),
        "{page}"
    );
    env.fails(&["completions", "tcsh"], USAGE);
    assert!(!env.home().exists());
}

/// `-q` silences notes and logs, `-v` logs each flow with its time, `-vv` adds detail, and
/// `RUST_LOG` chooses the log lines when set.
#[test]
fn quiet_verbose_and_rust_log_choose_what_is_said() {
    let env = Env::new();
    // A new home is announced by a note, unless quiet.
    let (code, _, stderr) = env.run(&["-q", "keygen", "--name", "other"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "quiet said: {stderr}");
    let (_, _, stderr) = env.run(&["search", "anything"]);
    assert!(!stderr.contains("INFO"), "logs by default: {stderr}");
    let (_, _, stderr) = env.run(&["-v", "search", "anything"]);
    assert!(
        stderr.contains("marketplace.search") && stderr.contains("time.busy"),
        "-v: {stderr}"
    );
    let (_, _, stderr) = env.run(&["-vv", "search", "anything"]);
    assert!(
        stderr.contains("DEBUG") || stderr.contains("mkt::home"),
        "-vv: {stderr}"
    );
    let output = env
        .mkt()
        .env("RUST_LOG", "mkt=info")
        .args(["search", "anything"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("opening the marketplace home"),
        "RUST_LOG: {stderr}"
    );
    env.fails(&["-q", "-v", "search", "x"], USAGE);
}

/// A package that is not there, typed close to one that is, gets "did you mean" with it.
#[test]
fn a_mistyped_package_name_gets_did_you_mean() {
    let env = Env::new();
    env.publish_examples();
    for (args, meant) in [
        (
            &["info", "starter/blog-templat"][..],
            "`starter/blog-template`",
        ),
        (
            &["install", "starter/blogtemplate", "--dest", "x"],
            "`starter/blog-template`",
        ),
        (&["versions", "base-styles"], "`starter/base-styles`"),
        (
            &["verify", "other/html-layout@1.0.0"],
            "`starter/html-layout`",
        ),
    ] {
        let stderr = env.fails(args, NOT_FOUND);
        assert!(
            stderr.contains(&format!("did you mean {meant}")),
            "mkt {args:?}: {stderr}"
        );
    }
    // Nothing close: no guess; a missing version of a package that exists: no other package.
    for args in [
        &["info", "zzzqqq"][..],
        &["info", "starter/blog-template@9.0.0"],
    ] {
        let stderr = env.fails(args, NOT_FOUND);
        assert!(!stderr.contains("did you mean"), "mkt {args:?}: {stderr}");
    }
}

/// `mkt list` browses without a query: every package once, by name, paged and filtered; a
/// yanked version is marked in the table.
#[test]
fn list_browses_every_package_by_name_a_page_at_a_time() {
    let env = Env::new();
    env.publish_examples();
    let all = env.json(&["list", "--limit", "100"]);
    let names: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            h["id"]
                .as_str()
                .unwrap()
                .split('@')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    // The examples hold some packages in two versions: one hit per package name.
    let mut packages: Vec<String> = std::fs::read_dir(examples())
        .unwrap()
        .map(|e| {
            let manifest = std::fs::read_to_string(e.unwrap().path().join("marketplace.toml"));
            let manifest: toml::Table = manifest.unwrap().parse().unwrap();
            let package = &manifest["package"];
            match package.get("namespace") {
                Some(ns) => format!(
                    "{}/{}",
                    ns.as_str().unwrap(),
                    package["name"].as_str().unwrap()
                ),
                None => package["name"].as_str().unwrap().to_owned(),
            }
        })
        .collect();
    packages.sort();
    packages.dedup();
    assert_eq!(
        names.len(),
        packages.len(),
        "{names:?} against {packages:?}"
    );
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "by name, one hit per package");
    let page = env.json(&["list", "--limit", "3", "--offset", "3"]);
    let page: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().split('@').next().unwrap())
        .collect();
    assert_eq!(
        page,
        names[3..6].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let stdout = env.ok(&["list", "--limit", "3"]);
    assert!(stdout.contains("the next page: --offset 3"), "{stdout}");
    for hit in env.json(&["list", "--category", "web"]).as_array().unwrap() {
        assert!(
            hit["categories"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == "web"),
            "{hit}"
        );
    }
    env.ok(&["yank", "starter/base-styles@1.1.0", "--reason", "broken"]);
    let stdout = env.ok(&["list", "--include-yanked", "--limit", "100"]);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("starter/base-styles") && l.contains("(yanked: broken)")),
        "{stdout}"
    );
}

/// Downloads that installs record reach search without a rebuild: counts, `--sort downloads`
/// and `--min-downloads` answer with them at once.
#[test]
fn search_shows_current_download_counts() {
    let env = Env::new();
    env.publish_examples();
    for dest in ["a", "b"] {
        env.ok(&["install", "starter/readme-badges", "--dest", dest]);
    }
    let hits = env.json(&["search", "badges"]);
    assert_eq!(hits[0]["id"], "starter/readme-badges@0.1.0");
    assert_eq!(hits[0]["downloads"], 2, "{hits}");
    let top = env.json(&["list", "--sort", "downloads", "--limit", "1"]);
    assert_eq!(top[0]["id"], "starter/readme-badges@0.1.0", "{top}");
    let popular = env.json(&["list", "--min-downloads", "2"]);
    assert_eq!(popular.as_array().unwrap().len(), 1, "{popular}");
}

/// `install --locked` refuses to change the lockfile, `--frozen` also refuses to fetch.
#[test]
fn locked_and_frozen_installs_change_nothing() {
    let env = Env::new();
    env.publish_examples();
    let stderr = env.fails(
        &[
            "install",
            "starter/blog-template",
            "--dest",
            "site",
            "--locked",
        ],
        INVALID,
    );
    assert!(stderr.contains("would change the lockfile"), "{stderr}");
    assert!(!env.dir.path().join("site").exists());
    env.ok(&["install", "starter/blog-template", "--dest", "site"]);
    let lockfile = env.dir.path().join("site/marketplace.lock");
    let before = std::fs::read(&lockfile).unwrap();
    let report = env.json(&[
        "install",
        "starter/blog-template",
        "--dest",
        "site",
        "--locked",
    ]);
    assert_eq!(report["from_lockfile"], true, "{report}");
    env.ok(&[
        "install",
        "starter/blog-template",
        "--dest",
        "site",
        "--frozen",
    ]);
    assert_eq!(std::fs::read(&lockfile).unwrap(), before);
    // A requirement the lockfile does not meet would change it.
    env.fails(
        &[
            "install",
            "starter/blog-template@^2",
            "--dest",
            "site",
            "--locked",
        ],
        INVALID,
    );
    // Frozen: a locked package that is not in place would be fetched; refused.
    let installed = env.dir.path().join("site/starter/base-styles-1.1.0");
    std::fs::remove_dir_all(&installed).unwrap();
    let stderr = env.fails(
        &[
            "install",
            "starter/blog-template",
            "--dest",
            "site",
            "--frozen",
        ],
        INVALID,
    );
    assert!(stderr.contains("fetches nothing"), "{stderr}");
    assert!(!installed.exists());
    // Locked still fetches what the lockfile names.
    env.ok(&[
        "install",
        "starter/blog-template",
        "--dest",
        "site",
        "--locked",
    ]);
    assert!(installed.is_dir());
    assert_eq!(std::fs::read(&lockfile).unwrap(), before);
}

/// `mkt uninstall` removes a root and the dependencies nothing else installed needs, and the
/// lockfile says so; a package not installed there is "not found" and nothing changes.
#[test]
fn uninstall_removes_a_package_and_what_only_it_needed() {
    let env = Env::new();
    env.publish_examples();
    env.ok(&["install", "starter/blog-template", "--dest", "site"]);
    env.ok(&["install", "starter/html-layout", "--dest", "site"]);
    let site = env.dir.path().join("site");
    let lockfile = site.join("marketplace.lock");
    let before = std::fs::read(&lockfile).unwrap();
    let stderr = env.fails(
        &["uninstall", "starter/readme-badges", "--dest", "site"],
        NOT_FOUND,
    );
    assert!(stderr.contains("installed on request: "), "{stderr}");
    assert_eq!(std::fs::read(&lockfile).unwrap(), before);
    let report = env.json(&["uninstall", "starter/blog-template", "--dest", "site"]);
    let removed: Vec<&str> = report["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(removed[0], "starter/blog-template@1.0.0", "{report}");
    assert!(
        removed.contains(&"starter/markdown-render@0.3.0"),
        "{report}"
    );
    // What html-layout still needs stays, with the lockfile naming it alone.
    assert!(!site.join("starter/blog-template-1.0.0").exists());
    assert!(site.join("starter/html-layout-1.0.0").is_dir());
    assert!(site.join("starter/base-styles-1.1.0").is_dir());
    let lock = std::fs::read_to_string(&lockfile).unwrap();
    assert!(
        lock.contains("roots = [\"starter/html-layout@1.0.0\"]"),
        "{lock}"
    );
    assert!(!lock.contains("blog-template"), "{lock}");
    // Reinstalling works from there.
    env.ok(&["install", "starter/blog-template", "--dest", "site"]);
    // Nothing installed at all: not found, and no directory made. No home is needed.
    env.fails(&["uninstall", "starter/x", "--dest", "nowhere"], NOT_FOUND);
    assert!(!env.dir.path().join("nowhere").exists());
}

/// `mkt tree` draws the graph an install would put in place; `--invert` draws what depends on
/// one package of it.
#[test]
fn tree_draws_the_graph_and_its_inverse() {
    let env = Env::new();
    env.publish_examples();
    let tree = env.ok(&["tree", "starter/blog-template"]);
    let expected = "starter/blog-template@1.0.0\n├── starter/html-layout@1.0.0\n│   └── starter/base-styles@1.1.0\n└── starter/markdown-render@0.3.0\n";
    assert_eq!(tree, expected);
    let inverted = env.ok(&[
        "tree",
        "starter/blog-template",
        "--invert",
        "starter/base-styles",
    ]);
    assert_eq!(
        inverted,
        "starter/base-styles@1.1.0\n└── starter/html-layout@1.0.0\n    └── starter/blog-template@1.0.0\n"
    );
    let graph = env.json(&["tree", "starter/blog-template"]);
    assert_eq!(graph["root"], "starter/blog-template@1.0.0");
    assert_eq!(
        graph["edges"]["starter/html-layout@1.0.0"][0],
        "starter/base-styles@1.1.0"
    );
    env.fails(
        &[
            "tree",
            "starter/blog-template",
            "-i",
            "starter/readme-badges",
        ],
        NOT_FOUND,
    );
    assert!(
        !env.dir.path().join("mkt-packages").exists(),
        "a tree installs nothing"
    );
}

/// `mkt outdated` lists locked packages with newer versions; `mkt update` moves them to the
/// newest compatible one, lockfile and directories with them.
#[test]
fn outdated_and_update_move_within_the_locked_series() {
    let env = Env::new();
    env.publish_examples();
    env.ok(&["install", "starter/base-styles@=1.0.0", "--dest", "site"]);
    let report = env.json(&["outdated", "--dest", "site"]);
    assert_eq!(report[0]["package"], "starter/base-styles", "{report}");
    assert_eq!(report[0]["locked"], "1.0.0");
    assert_eq!(report[0]["compatible"], "1.1.0");
    let updated = env.json(&["update", "--dest", "site"]);
    assert_eq!(updated["updated"][0]["from"], "1.0.0", "{updated}");
    assert_eq!(updated["updated"][0]["to"], "1.1.0");
    let site = env.dir.path().join("site");
    assert!(site.join("starter/base-styles-1.1.0").is_dir());
    assert!(!site.join("starter/base-styles-1.0.0").exists());
    let stdout = env.ok(&["outdated", "--dest", "site"]);
    assert!(stdout.contains("up to date"), "{stdout}");
    let stdout = env.ok(&["update", "--dest", "site"]);
    assert!(stdout.contains("newest compatible"), "{stdout}");
    env.fails(
        &["update", "starter/html-layout", "--dest", "site"],
        NOT_FOUND,
    );
    env.fails(&["outdated", "--dest", "nowhere"], NOT_FOUND);
}

/// `mkt audit` holds installed packages against yanks, revoked keys and the archives' bytes.
#[test]
fn audit_finds_yanks_revoked_keys_and_changed_files() {
    let env = Env::new();
    env.publish_examples();
    env.ok(&["install", "starter/blog-template", "--dest", "site"]);
    let stdout = env.ok(&["audit", "--dest", "site"]);
    assert!(stdout.contains("all 4 packages"), "{stdout}");
    // A changed file, an added one: exit 4, each named.
    let site = env.dir.path().join("site");
    let layout = site.join("starter/html-layout-1.0.0");
    let file = std::fs::read_dir(&layout)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file())
        .unwrap();
    std::fs::write(&file, "tampered").unwrap();
    std::fs::write(layout.join("extra.txt"), "added").unwrap();
    let stderr = env.fails(&["audit", "--dest", "site"], VERIFICATION);
    assert!(stderr.contains("1 of 4 installed packages"), "{stderr}");
    let report = env.json_failing(&["audit", "--dest", "site"]);
    let problem = report["findings"][0]["problem"].as_str().unwrap();
    assert!(
        problem.contains("changed: ") && problem.contains("added: extra.txt"),
        "{problem}"
    );
    // Restored by reinstalling; then a yank is reported (exit 1).
    std::fs::remove_dir_all(&layout).unwrap();
    env.ok(&["install", "starter/blog-template", "--dest", "site"]);
    env.ok(&["audit", "--dest", "site"]);
    env.ok(&["yank", "starter/markdown-render@0.3.0", "--reason", "bug"]);
    let report = env.json_failing(&["audit", "--dest", "site"]);
    assert_eq!(report["findings"][0]["id"], "starter/markdown-render@0.3.0");
    assert!(
        report["findings"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("yanked")
    );
    env.fails(&["audit", "--dest", "site"], 1);
    // The signer's key revoked: nothing verifies any more.
    let key_id = env.json(&["trust", "list"])[0]["trust"]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.ok(&["trust", "revoke", &key_id, "--reason", "lost"]);
    let stderr = env.fails(&["audit", "--dest", "site"], VERIFICATION);
    assert!(stderr.contains("4 of 4"), "{stderr}");
    env.fails(&["audit", "--dest", "nowhere"], NOT_FOUND);
}

/// Several packages in one `mkt install`: each into the same destination, one lockfile with
/// every root; a bad spec anywhere stops it before anything is installed.
#[test]
fn several_packages_install_in_one_command() {
    let env = Env::new();
    env.publish_examples();
    env.fails(
        &[
            "install",
            "starter/readme-badges",
            "starter/blog-template@^^1",
            "--dest",
            "site",
        ],
        USAGE,
    );
    assert!(!env.dir.path().join("site").exists());
    let reports = env.json(&[
        "install",
        "starter/readme-badges",
        "starter/blog-template@^1",
        "--dest",
        "site",
    ]);
    assert_eq!(reports.as_array().unwrap().len(), 2, "{reports}");
    let lock = std::fs::read_to_string(env.dir.path().join("site/marketplace.lock")).unwrap();
    assert!(
        lock.contains("starter/readme-badges@0.1.0")
            && lock.contains("starter/blog-template@1.0.0"),
        "{lock}"
    );
    let stderr = env.fails(
        &[
            "install",
            "starter/license-files",
            "starter/blog-templat",
            "--dest",
            "site",
        ],
        NOT_FOUND,
    );
    assert!(
        stderr.contains("did you mean `starter/blog-template`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("installed before it: starter/license-files"),
        "{stderr}"
    );
}

/// Hints match the rules: no keygen line built from a file path, no "republish" of a version
/// (published versions never change).
#[test]
fn hints_match_the_rules() {
    let env = Env::new();
    env.ok(&["init"]);
    let dir = env.write_package(
        "hinted",
        "[package]\nname = \"hinted\"\nversion = \"1.0.0\"\nlicense = \"MIT\"\n",
    );
    let stderr = env.fails(
        &[
            "publish",
            dir.to_str().unwrap(),
            "--key",
            "./keys/missing.pem",
        ],
        NOT_FOUND,
    );
    assert!(!stderr.contains("--name ./keys"), "{stderr}");
    assert!(stderr.contains("mkt keygen --name NAME"), "{stderr}");
    let stderr = env.fails(
        &["publish", dir.to_str().unwrap(), "--key", "ci"],
        NOT_FOUND,
    );
    assert!(stderr.contains("mkt keygen --name ci --trust"), "{stderr}");
    // A tampered archive's hint does not ask for the version to be published again.
    env.ok(&["publish", dir.to_str().unwrap()]);
    let checksum = env.json(&["info", "hinted"])["metadata"]["checksum"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    let object = find_file(&env.home().join("store"), &checksum).unwrap();
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&object, bytes).unwrap();
    let stderr = env.fails(&["verify", "hinted@1.0.0"], VERIFICATION);
    assert!(!stderr.contains("republish"), "{stderr}");
    assert!(stderr.contains("never changes"), "{stderr}");
}
