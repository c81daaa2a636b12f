//! `mkt` processes killed with SIGKILL at random points — publishing, installing, collecting
//! garbage, rebuilding the index — and after every kill the home is checked:
//! - the next command works (no stale lock) and brings the search index up to date;
//! - every registered version's archive exists and verifies;
//! - search finds every package's latest version, without a manual rebuild;
//! - every package directory in an install destination is complete (the files of its archive,
//!   at their sizes), and the next install into it succeeds;
//! - the event log is gap-free.
//!
//! 200 kills by default (`MARKETPLACE_KILL_ITERATIONS` to change). Unix only (SIGKILL).

#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use marketplace_client::{ArchiveLimits, MarketplaceBuilder, inspect};
use marketplace_core::{PackageId, SearchQuery};
use marketplace_testing::corpus::Rng;

fn mkt(home: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mkt"));
    cmd.env("MKT_HOME", home)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// A package directory `p{n}` depending on up to two earlier packages.
fn package_dir(root: &Path, n: u64, rng: &mut Rng) -> PathBuf {
    let dir = root.join(format!("src/p{n}"));
    std::fs::create_dir_all(dir.join("files")).unwrap();
    let mut manifest = format!(
        "[package]\nname = \"p{n}\"\nversion = \"1.0.0\"\ndescription = \"Killed at random {n}\"\nlicense = \"MIT\"\n[dependencies]\n"
    );
    if n > 0 {
        for _ in 0..rng.below_u64(3) {
            manifest.push_str(&format!("p{} = \"^1\"\n", rng.below_u64(n)));
        }
    }
    // Duplicate keys would be a refused manifest: keep the last of each.
    let mut deps = BTreeMap::new();
    let (head, tail) = manifest.split_once("[dependencies]\n").unwrap();
    for line in tail.lines() {
        if let Some((k, v)) = line.split_once(" = ") {
            deps.insert(k.to_owned(), v.to_owned());
        }
    }
    let mut text = format!("{head}[dependencies]\n");
    for (k, v) in deps {
        text.push_str(&format!("{k} = {v}\n"));
    }
    std::fs::write(dir.join("marketplace.toml"), text).unwrap();
    for f in 0..1 + rng.below_u64(20) {
        std::fs::write(
            dir.join("files").join(format!("f{f}.txt")),
            vec![b'a' + (f % 26) as u8; (rng.below_u64(64) * 1024) as usize],
        )
        .unwrap();
    }
    dir
}

/// Every package directory under `dest` holds exactly its archive's files.
async fn destination_is_whole(
    client: &marketplace_client::MarketplaceClient,
    dest: &Path,
    context: &str,
) {
    let Ok(entries) = std::fs::read_dir(dest) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        let Some((package, version)) = name.rsplit_once('-') else {
            panic!("{context}: unexpected {name} in {}", dest.display());
        };
        let id: PackageId = format!("{package}@{version}").parse().unwrap();
        let metadata = client
            .registry()
            .get(&id)
            .await
            .unwrap_or_else(|e| panic!("{context}: {name} is installed but {e}"));
        let archive: Bytes = client.store().get(&metadata.checksum).await.unwrap();
        let inspected = inspect(archive, &ArchiveLimits::default()).unwrap();
        for file in inspected.files() {
            let path = entry.path().join(&file.path);
            let len = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{context}: {} incomplete: {e}", path.display()))
                .len();
            assert_eq!(len, file.size, "{context}: {} incomplete", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_processes_never_break_the_home() {
    let iterations: u64 = std::env::var("MARKETPLACE_KILL_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let status = mkt(&home).arg("init").status().unwrap();
    assert!(status.success());
    let mut rng = Rng::new(2026);
    let mut next_package = 0u64;
    let dests: Vec<PathBuf> = (0..3)
        .map(|i| root.path().join(format!("dest{i}")))
        .collect();
    let mut kills = 0;
    let mut window_ms: u64 = 150;
    for i in 0..iterations {
        let op = rng.below_u64(10);
        let mut cmd = mkt(&home);
        let what = match op {
            0..=4 => {
                let dir = package_dir(root.path(), next_package, &mut rng);
                next_package += 1;
                cmd.arg("publish").arg(&dir);
                "publish"
            }
            5..=7 if next_package > 0 => {
                let target = rng.below_u64(next_package);
                let dest = &dests[rng.below_u64(dests.len() as u64) as usize];
                cmd.arg("install")
                    .arg(format!("p{target}@^1"))
                    .arg("--dest")
                    .arg(dest);
                "install"
            }
            8 => {
                cmd.args(["gc", "--grace", "0"]);
                "gc"
            }
            _ => {
                cmd.arg("rebuild-index");
                "rebuild-index"
            }
        };
        let mut child = cmd.spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(rng.below_u64(window_ms))).await;
        let finished = child.try_wait().unwrap();
        // The kill window follows the machine's speed, so about two kills in three land mid-op
        // whether commands take 20 ms or 2 s.
        if finished.is_none() {
            kills += 1;
            window_ms = (window_ms + window_ms / 10).min(5_000);
        } else {
            window_ms = (window_ms - window_ms / 5).max(5);
        }
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        let context = format!(
            "iteration {i} ({what}, {})",
            if finished.is_some() {
                "finished"
            } else {
                "killed"
            }
        );
        // What finished before the kill must have worked (an install may rightly fail: its
        // package may depend on one whose publish was killed).
        if let Some(status) = finished {
            assert!(
                status.success() || what == "install",
                "{context}: failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }

        // The next command works, and catches the index up.
        let next = mkt(&home).args(["search", "random"]).output().unwrap();
        assert!(
            next.status.success(),
            "{context}: the next command failed: {}",
            String::from_utf8_lossy(&next.stderr)
        );

        let client = MarketplaceBuilder::local(&home).unwrap().build().unwrap();
        assert_eq!(
            client.index_repair(),
            None,
            "{context}: the index was damaged"
        );
        let records = client.registry().list(100_000, 0).await.unwrap();
        let mut latest: BTreeMap<String, PackageId> = BTreeMap::new();
        for record in &records {
            let id = &record.metadata.id;
            client
                .store()
                .get(&record.metadata.checksum)
                .await
                .unwrap_or_else(|e| panic!("{context}: {id} registered, archive unreadable: {e}"));
            latest.insert(id.package().canonical(), id.clone());
        }
        for id in latest.values() {
            let hits = client
                .search(&SearchQuery::text(id.name.as_str()))
                .await
                .unwrap();
            assert!(
                hits.iter().any(|h| &h.id == id),
                "{context}: search does not find {id}"
            );
        }
        let events = client.registry().events_since(0, 1_000_000).await.unwrap();
        for (n, event) in events.iter().enumerate() {
            assert_eq!(
                event.seq,
                n as u64 + 1,
                "{context}: the event log has a gap"
            );
        }
        for dest in &dests {
            destination_is_whole(&client, dest, &context).await;
        }
        drop(client);
    }
    // An install into every destination still succeeds after everything.
    if next_package > 0 {
        for dest in &dests {
            let output = mkt(&home)
                .args(["install", "p0@^1", "--dest"])
                .arg(dest)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "installing into {} after the kills: {}",
                dest.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    eprintln!("{iterations} iterations, {kills} processes killed before they finished");
    assert!(
        kills * 4 >= iterations,
        "too few kills landed mid-operation: {kills}"
    );
}
