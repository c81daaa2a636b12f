//! Homes on a tmpfs, which needs permission to mount; where that is refused the tests say SKIP.
//!
//! A disk that fills up: publishing until it is full gives a clear error that says the disk is
//! full, and the home stays consistent — every registered version's archive is there and
//! verifies, the event log has no gap, and reading still works.
//!
//! A read-only disk: every command that reads works, every command that would change the home
//! is refused naming it, and nothing on the disk changes — for a home as `mkt` leaves it
//! (SQLite's write-ahead log beside the database) and one the library closed cleanly (no log,
//! which SQLite cannot create there: the database is read as immutable).

#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::Command;

use marketplace_client::MarketplaceBuilder;

/// A tmpfs mounted for the test's lifetime.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        status.status.success().then(|| Tmpfs(dir.to_owned()))
    }
}

impl Tmpfs {
    /// Remounts it read-only (even root cannot write it then).
    fn remount_read_only(&self) -> bool {
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Bytes that do not compress (so the archive is as large as the file).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_named_and_the_home_stays_consistent() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&scratch.path().join("disk"), "24m") else {
        eprintln!("SKIP: mounting a tmpfs is not permitted here; the full-disk test needs it");
        return;
    };
    let home = disk.0.join("home");
    let mkt = || {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mkt"));
        cmd.env("MKT_HOME", &home).env("NO_COLOR", "1");
        cmd
    };
    assert!(mkt().arg("init").status().unwrap().success());
    let mut published = 0;
    let mut failure = None;
    for n in 0..64 {
        let src = scratch.path().join(format!("src/big{n}"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(
            src.join("marketplace.toml"),
            format!("[package]\nname = \"big{n}\"\nversion = \"1.0.0\"\nlicense = \"MIT\"\n"),
        )
        .unwrap();
        std::fs::write(src.join("payload.bin"), noise(1 << 20, n)).unwrap();
        let output = mkt().arg("publish").arg(&src).output().unwrap();
        if output.status.success() {
            published += 1;
        } else {
            failure = Some(String::from_utf8_lossy(&output.stderr).into_owned());
            break;
        }
    }
    let failure = failure.expect("the disk filled up");
    assert!(published > 0, "some packages fit: {failure}");
    assert!(!failure.contains("panicked"), "{failure}");
    assert!(
        failure.contains("disk is full") || failure.contains("No space left on device"),
        "the error says the disk is full: {failure}"
    );

    // Reading works on the full disk, and everything registered is whole.
    let search = mkt().args(["search", "big"]).output().unwrap();
    assert!(
        search.status.success(),
        "reading on a full disk: {}",
        String::from_utf8_lossy(&search.stderr)
    );
    let client = MarketplaceBuilder::local(&home).unwrap().build().unwrap();
    let records = client.registry().list(1000, 0).await.unwrap();
    assert!(
        records.len() >= published,
        "every acknowledged publish is registered"
    );
    for record in &records {
        client
            .store()
            .get(&record.metadata.checksum)
            .await
            .unwrap_or_else(|e| panic!("{} is registered but unreadable: {e}", record.metadata.id));
    }
    let events = client.registry().events_since(0, 10_000).await.unwrap();
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event.seq, n as u64 + 1, "the event log has no gap");
    }
    drop(client);
    eprintln!("{published} packages fitted before the disk was full; then: {failure}");
}

/// Every file under `dir` with its length and modification time.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                todo.push(entry.path());
            }
            files.push((entry.path(), meta.len(), meta.modified().unwrap()));
        }
    }
    files.sort();
    files
}

fn manifest(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("marketplace.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"Read-only {name}\"\nlicense = \"MIT\"\n"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_home_reads_and_refuses_writes() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&scratch.path().join("disk"), "64m") else {
        eprintln!("SKIP: mounting a tmpfs is not permitted here; the read-only home test needs it");
        return;
    };
    let mkt = |home: &Path| {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mkt"));
        cmd.env("MKT_HOME", home).env("NO_COLOR", "1");
        cmd
    };
    // Home A, as `mkt` leaves it: a published package, installed once.
    let a = disk.0.join("a");
    manifest(&scratch.path().join("src/otter"), "otter");
    for args in [
        vec!["init".into()],
        vec![
            "publish".into(),
            scratch.path().join("src/otter").into_os_string(),
        ],
        vec![
            "install".into(),
            "otter".into(),
            "--dest".into(),
            scratch.path().join("dest-a").into_os_string(),
        ],
    ] {
        let out = mkt(&a).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Home B, closed cleanly by the library.
    let b = disk.0.join("b");
    {
        let client = MarketplaceBuilder::local(&b).unwrap().build().unwrap();
        let key = client.generate_keypair().await.unwrap();
        client
            .trust_key(&key.public_key, marketplace_core::TrustLevel::Full)
            .await
            .unwrap();
        manifest(&scratch.path().join("src/otter-b"), "otter");
        let archive = marketplace_client::pack_dir(
            &scratch.path().join("src/otter-b"),
            &marketplace_client::ArchiveLimits::default(),
        )
        .unwrap();
        client.publish(archive, &key.private_key).await.unwrap();
    }
    assert!(
        !b.join("registry.sqlite3-wal").exists(),
        "a clean close leaves no write-ahead log"
    );
    if !disk.remount_read_only() {
        eprintln!("SKIP: remounting the tmpfs read-only is not permitted here");
        return;
    }
    let before = snapshot(&disk.0);
    for (home, label) in [(&a, "as mkt leaves it"), (&b, "closed cleanly")] {
        let dest = scratch.path().join(format!("dest-{}", label.len()));
        let reads: [(&[&str], &str); 7] = [
            (&["search", "otter"], "otter"),
            (&["info", "otter"], "Read-only otter"),
            (&["versions", "otter"], "1.0.0"),
            (&["stats", "otter"], "downloads"),
            (&["verify", "otter@1.0.0"], "signature valid"),
            (&["trust", "list"], "KEY"),
            (
                &["install", "otter", "--dest", dest.to_str().unwrap()],
                "installed",
            ),
        ];
        for (args, expect) in reads {
            let out = mkt(home).args(args).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains(expect),
                "{label}: mkt {args:?} on a read-only home: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            dest.join("otter-1.0.0/marketplace.toml").is_file(),
            "{label}: installed"
        );
        let src = scratch.path().join("src/otter");
        let writes: [(&[&str], &str); 6] = [
            (&["publish", src.to_str().unwrap()], "publish"),
            (&["yank", "otter@1.0.0", "--reason", "no"], "yank"),
            (&["unyank", "otter@1.0.0"], "unyank"),
            (&["keygen", "--name", "other"], "keygen"),
            (&["gc"], "gc"),
            (&["rebuild-index"], "rebuild-index"),
        ];
        for (args, command) in writes {
            let out = mkt(home).args(args).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.code() == Some(1)
                    && stderr.contains("is read-only")
                    && stderr.contains(&format!("`mkt {command}`")),
                "{label}: mkt {args:?} on a read-only home: {stderr}"
            );
        }
    }
    assert_eq!(
        snapshot(&disk.0),
        before,
        "nothing on the read-only disk changed"
    );
}
