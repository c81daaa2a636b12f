//! A home on a disk that fills up: publishing until it is full gives a clear error that says the
//! disk is full, and the home stays consistent — every registered version's archive is there
//! and verifies, the event log has no gap, and reading still works. The home is put on a small
//! tmpfs, which needs permission to mount; where that is refused the test says SKIP.

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
