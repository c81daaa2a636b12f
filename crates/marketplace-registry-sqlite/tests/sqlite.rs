//! Concurrency, persistence, migrations and bad files.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use marketplace_conformance::fixtures::package;
use marketplace_core::{Error, ErrorKind, PackageId, Registry};
use marketplace_registry_sqlite::{SCHEMA_VERSION, SqliteRegistry};

fn id(s: &str) -> PackageId {
    s.parse().expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_tasks_race_and_readers_never_see_half_a_package() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Arc::new(SqliteRegistry::open(dir.path().join("r.db")).expect("open"));

    // A reader polls the whole time: every version it sees has its dependencies.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (registry, done) = (Arc::clone(&registry), Arc::clone(&done));
        tokio::spawn(async move {
            let mut seen = 0;
            while !done.load(Ordering::Relaxed) {
                for record in registry.list(usize::MAX, 0).await.expect("list") {
                    let m = record.metadata;
                    if m.id.name.as_str().starts_with("distinct") {
                        assert_eq!(
                            m.dependencies.len(),
                            2,
                            "{} seen without its dependencies",
                            m.id
                        );
                        let again = registry.get(&m.id).await.expect("get");
                        assert_eq!(again.dependencies, m.dependencies);
                        seen += 1;
                    }
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };

    let same = package("race/same@1.0.0", &[]);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (registry, m) = (Arc::clone(&registry), same.clone());
            tokio::spawn(async move { registry.register(m.clone(), m.checksum.clone()).await })
        })
        .collect();
    let mut ok = 0;
    let mut duplicates = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => ok += 1,
            Err(Error::AlreadyExists { .. }) => duplicates += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((ok, duplicates), (1, 15));

    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let registry = Arc::clone(&registry);
            tokio::spawn(async move {
                let m = package(
                    &format!("race/distinct{i}@1.0.0"),
                    &[("race/base", "^1"), ("race/other", "^2")],
                );
                registry.register(m.clone(), m.checksum.clone()).await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("task")
            .expect("distinct registrations all succeed");
    }
    done.store(true, Ordering::Relaxed);
    reader.await.expect("reader");
    let all = registry.list(usize::MAX, 0).await.expect("list");
    assert_eq!(all.len(), 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/registry.db");
    let m = package("keep/web@1.0.0", &[("keep/http", "^1")]);
    {
        let registry = SqliteRegistry::open(&path).expect("open");
        registry
            .register(m.clone(), m.checksum.clone())
            .await
            .expect("register");
        registry.yank(&m.id, "oops").await.expect("yank");
        registry.record_download(&m.id).await.expect("download");
    }
    let registry = SqliteRegistry::open(&path).expect("reopen");
    assert_eq!(registry.get(&m.id).await.expect("get"), m);
    assert!(registry.is_yanked(&m.id).await.expect("is_yanked"));
    assert_eq!(
        registry
            .get_stats(&m.id)
            .await
            .expect("stats")
            .version_downloads,
        1
    );
    assert_eq!(registry.events_since(0, 10).await.expect("events").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_one_database_opens_and_migrates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.sqlite");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/registry-v1.sqlite"
        ),
        &path,
    )
    .expect("copy fixture");
    let registry = SqliteRegistry::open(&path).expect("open and migrate");

    let web = registry
        .get(&id("acme/web@1.0.0"))
        .await
        .expect("get migrated version");
    assert_eq!(web.dependencies.len(), 1);
    assert!(
        registry
            .is_yanked(&id("acme/web@1.1.0"))
            .await
            .expect("is_yanked")
    );
    let resolved = registry
        .resolve_version(
            &"acme/web".parse().expect("ref"),
            &"^1".parse().expect("req"),
        )
        .await
        .expect("resolve");
    assert_eq!(
        resolved,
        Some(id("acme/web@1.0.0")),
        "the yanked 1.1.0 stays yanked"
    );
    // Migration 2 backfilled the authors table from the stored metadata.
    let bob = registry
        .list_by_author("Bob", 10, 0)
        .await
        .expect("list_by_author");
    assert_eq!(bob.len(), 2);
    assert_eq!(bob[0].downloads, 5, "package download totals survive");
    assert_eq!(registry.events_since(0, 10).await.expect("events").len(), 4);
    // Migration 3 stamped the packages downloaded before it, so a follower learns their totals.
    let totals = registry
        .downloads_since(0, 10)
        .await
        .expect("downloads_since");
    assert_eq!(
        totals
            .iter()
            .map(|c| (c.package.to_string(), c.total))
            .collect::<Vec<_>>(),
        [("acme/web".to_owned(), 5)]
    );
    registry
        .record_download(&id("acme/web@1.0.0"))
        .await
        .expect("download");
    let next = registry
        .downloads_since(totals[0].stamp, 10)
        .await
        .expect("downloads_since");
    assert_eq!((next.len(), next[0].total), (1, 6), "a later stamp");
    // And it keeps working: new versions append to the old log.
    let m = package("acme/web@2.0.0", &[("acme/http", "^1")]);
    registry
        .register(m.clone(), m.checksum.clone())
        .await
        .expect("register after migration");
    assert_eq!(
        registry.events_since(4, 10).await.expect("events")[0].seq,
        5
    );
    drop(registry);

    let conn_version = read_user_version(&path);
    assert_eq!(conn_version, SCHEMA_VERSION);
}

fn read_user_version(path: &std::path::Path) -> i64 {
    // Reopening must not migrate again or fail.
    let registry = SqliteRegistry::open(path).expect("reopen");
    drop(registry);
    let raw = std::fs::read(path).expect("read db");
    // The user_version is the big-endian u32 at offset 60 of the database header.
    i64::from(u32::from_be_bytes([raw[60], raw[61], raw[62], raw[63]]))
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("future.db");
    drop(SqliteRegistry::open(&path).expect("create"));
    // Pretend a future library wrote it: bump user_version in the header.
    let mut raw = std::fs::read(&path).expect("read");
    raw[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(&path, &raw).expect("write");
    let err = SqliteRegistry::open(&path).expect_err("a newer schema must be refused");
    assert_eq!(err.kind(), ErrorKind::Backend);
    let message = err.to_string();
    assert!(
        message.contains("future.db") && message.contains("schema version 99"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(&path).expect("read"),
        raw,
        "the file is untouched"
    );
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in [
        (
            "text.db",
            b"this is not a database, just some text that is long enough".repeat(100),
        ),
        ("zeros.db", vec![0u8; 8192]),
        ("truncated.db", b"SQLite format 3\0\x10\0\x01\x01".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).expect("write");
        match SqliteRegistry::open(&path) {
            Err(err @ Error::Backend { .. }) => {
                let message = err.to_string();
                assert!(message.contains(name), "{message}");
                assert!(message.contains("not a SQLite database"), "{message}");
            }
            Err(other) => panic!("{name}: expected a Backend error, got {other}"),
            Ok(_) => panic!("{name}: opened a file that is not a database"),
        }
        assert_eq!(
            std::fs::read(&path).expect("read"),
            bytes,
            "{name} is left as it was"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_open_reads_refuses_writes_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.db");
    {
        let registry = SqliteRegistry::open(&path).expect("create");
        let m = package("ro/owl@1.0.0", &[]);
        registry
            .register(m.clone(), m.checksum.clone())
            .await
            .expect("register");
        registry.record_download(&m.id).await.expect("download");
    }
    let before = std::fs::read(&path).expect("read db");
    let registry = SqliteRegistry::open_read_only(&path).expect("open read-only");
    assert!(registry.is_read_only());
    assert_eq!(
        registry.get(&id("ro/owl@1.0.0")).await.expect("get").id,
        id("ro/owl@1.0.0")
    );
    assert_eq!(registry.list(10, 0).await.expect("list")[0].downloads, 1);
    assert_eq!(registry.latest_event_seq().await.expect("seq"), 1);
    let m = package("ro/lark@1.0.0", &[]);
    for (what, result) in [
        (
            "register",
            registry.register(m.clone(), m.checksum.clone()).await.err(),
        ),
        ("yank", registry.yank(&id("ro/owl@1.0.0"), "no").await.err()),
        (
            "record_download",
            registry.record_download(&id("ro/owl@1.0.0")).await.err(),
        ),
    ] {
        let e = result.unwrap_or_else(|| panic!("{what} on a read-only registry succeeded"));
        assert_eq!(e.kind(), ErrorKind::Backend, "{what}");
        assert!(e.to_string().contains("read-only"), "{what}: {e}");
    }
    drop(registry);
    assert_eq!(
        std::fs::read(&path).expect("read db"),
        before,
        "nothing changed"
    );

    // A missing file is not created, and a database at another schema version is refused.
    let missing = dir.path().join("missing.db");
    assert!(SqliteRegistry::open_read_only(&missing).is_err());
    assert!(
        !missing.exists(),
        "a read-only open created {}",
        missing.display()
    );
    let mut raw = std::fs::read(&path).expect("read");
    raw[60..64].copy_from_slice(&2u32.to_be_bytes());
    let older = dir.path().join("older.db");
    std::fs::write(&older, &raw).expect("write");
    let e = SqliteRegistry::open_read_only(&older).expect_err("an older schema");
    assert!(
        e.to_string().contains("open it once with write access"),
        "{e}"
    );
}

/// Many openers of one new database at once (processes first using a home together): every
/// open succeeds, each migration is applied once, and the database works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_openers_of_a_new_database_at_once_all_succeed() {
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new.db");
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteRegistry::open(&path)
                })
            })
            .collect();
        let mut opened = Vec::new();
        for opener in openers {
            let registry = opener.join().expect("thread");
            opened.push(registry.unwrap_or_else(|e| panic!("round {round}: {e}")));
        }
        let m = package("raced@1.0.0", &[]);
        opened[0]
            .register(m.clone(), m.checksum.clone())
            .await
            .expect("register");
        assert!(opened[7].get(&id("raced@1.0.0")).await.is_ok());
        drop(opened);
        assert_eq!(read_user_version(&path), SCHEMA_VERSION);
    }
}
