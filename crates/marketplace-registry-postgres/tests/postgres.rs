//! Races across connections and processes, the event log under concurrent writers and
//! rollbacks, a server killed mid-batch, migrations, and bad connection strings — on a real
//! PostgreSQL server started by each test.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use marketplace_conformance::fixtures::package;
use marketplace_core::{Error, ErrorKind, MetadataUpdate, Registry};
use marketplace_registry_postgres::{PostgresOptions, PostgresRegistry, SCHEMA_VERSION};
use marketplace_testing::postgres::PostgresServer;

/// The variable that turns `child_publisher` into the child of `four_processes_race`.
const CHILD_URL: &str = "MARKETPLACE_PG_CHILD_URL";

async fn database(server: &PostgresServer, name: &str) -> (String, PostgresRegistry) {
    let url = server.create_database(name).expect("a database");
    let registry = PostgresRegistry::connect(&url).await.expect("connect");
    (url, registry)
}

/// A raw connection for what the registry's API cannot do (roll back on purpose, read
/// tables, change the schema row).
async fn raw(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("raw connect");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_connections_race_and_readers_never_see_half_a_package() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let (url, registry) = database(&server, "race").await;
    // Sixteen registries of one connection each: sixteen sessions, as sixteen servers.
    let mut handles = Vec::new();
    for _ in 0..16 {
        let options = PostgresOptions::from_url(&url)
            .expect("url")
            .with_pool_size(1);
        handles.push(Arc::new(
            PostgresRegistry::open(options).await.expect("connect"),
        ));
    }

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (registry, done) = (registry.clone(), Arc::clone(&done));
        tokio::spawn(async move {
            let mut seen = 0;
            while !done.load(Ordering::Relaxed) {
                for record in registry.list(usize::MAX, 0).await.expect("list") {
                    let m = record.metadata;
                    if m.id.name.as_str().starts_with("distinct") {
                        assert_eq!(m.dependencies.len(), 2, "{} seen half-registered", m.id);
                        seen += 1;
                    }
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };

    let same = package("race/same@1.0.0", &[]);
    let tasks: Vec<_> = handles
        .iter()
        .map(|handle| {
            let (handle, m) = (Arc::clone(handle), same.clone());
            tokio::spawn(async move { handle.register(m.clone(), m.checksum.clone()).await })
        })
        .collect();
    let (mut won, mut lost) = (0, 0);
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(Error::AlreadyExists { .. }) => lost += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((won, lost), (1, 15), "exactly one winner");

    let tasks: Vec<_> = handles
        .iter()
        .enumerate()
        .map(|(i, handle)| {
            let handle = Arc::clone(handle);
            tokio::spawn(async move {
                let m = package(
                    &format!("race/distinct{i}@1.0.0"),
                    &[("race/base", "^1"), ("race/other", "^2")],
                );
                handle.register(m.clone(), m.checksum.clone()).await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("task")
            .expect("distinct versions all land");
    }
    done.store(true, Ordering::Relaxed);
    reader.await.expect("reader");
    assert_eq!(registry.list(usize::MAX, 0).await.expect("list").len(), 17);
    assert_eq!(registry.latest_event_seq().await.expect("seq"), 17);
}

/// Run alone it does nothing; `four_processes_race` runs it in child processes, where it
/// registers one version and prints whether it won.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_publisher() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let registry = PostgresRegistry::connect(&url)
        .await
        .expect("child connects");
    let m = package("race/processes@1.0.0", &[]);
    match registry.register(m.clone(), m.checksum.clone()).await {
        Ok(_) => println!("RESULT won"),
        Err(Error::AlreadyExists { .. }) => println!("RESULT lost"),
        Err(other) => println!("RESULT error {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_race_for_one_version() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let url = server.create_database("processes").expect("a database");
    // The schema exists before the race, so the children race for the version only (the
    // migration race is the next test's).
    let registry = PostgresRegistry::connect(&url).await.expect("connect");
    let exe = std::env::current_exe().expect("the test binary");
    let children: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "child_publisher",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_URL, &url)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn a child")
        })
        .collect();
    let mut results = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("child output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let result = text
            .lines()
            .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
            .unwrap_or_else(|| panic!("a child said nothing: {text}"))
            .to_owned();
        results.push(result);
    }
    results.sort();
    assert_eq!(results, ["lost", "lost", "lost", "won"], "{results:?}");
    let versions = registry.list(usize::MAX, 0).await.expect("list");
    assert_eq!(versions.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_openers_of_a_new_database_migrate_it_once() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let url = server.create_database("fresh").expect("a database");
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresRegistry::connect(&url).await })
        })
        .collect();
    for open in opens {
        open.await.expect("task").expect("every opener succeeds");
    }
    let client = raw(&url).await;
    let version: i64 = client
        .query_one("SELECT version FROM marketplace_schema", &[])
        .await
        .expect("schema row")
        .get(0);
    assert_eq!(version, SCHEMA_VERSION);
}

/// 8 connections make 10,000 mutations between them (registrations, batches, yanks, unyanks,
/// metadata updates, some refused as duplicates, some cancelled mid-flight) while a ninth
/// takes event numbers exactly as the registry does and rolls back. The log has every number
/// from 1 to the last exactly once, and one event per mutation that changed something.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_concurrent_mutations_leave_a_log_without_gaps() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let (url, registry) = database(&server, "log").await;
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 1_250;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let options = PostgresOptions::from_url(&url)
            .expect("url")
            .with_pool_size(1);
        let handle = PostgresRegistry::open(options).await.expect("connect");
        writers.push(tokio::spawn(async move {
            let mut changed = 0u64;
            let mut i = 0;
            while i < PER_WRITER {
                let m = package(&format!("log/w{w}-{i}@1.0.0"), &[]);
                match i % 10 {
                    // A batch of three: three events, one transaction.
                    0 => {
                        let items = (0..3)
                            .map(|k| {
                                let m = package(&format!("log/w{w}-{i}-b{k}@1.0.0"), &[]);
                                let hash = m.checksum.clone();
                                (m, hash)
                            })
                            .collect();
                        handle.register_batch(items).await.expect("batch");
                        changed += 3;
                    }
                    // A duplicate of an earlier version: refused, nothing logged.
                    3 => {
                        let earlier = package(&format!("log/w{w}-{}@1.0.0", i - 1), &[]);
                        let refused = handle.register(earlier.clone(), earlier.checksum).await;
                        assert_eq!(refused.expect_err("dup").kind(), ErrorKind::AlreadyExists);
                    }
                    // A registration cancelled mid-flight: it lands whole or not at all.
                    7 => {
                        let attempt = tokio::time::timeout(
                            Duration::from_micros(300),
                            handle.register(m.clone(), m.checksum.clone()),
                        )
                        .await;
                        if let Ok(result) = attempt {
                            result.expect("register");
                        }
                        // Whether it landed is read back below, from the registry itself.
                        if handle.get(&m.id).await.is_ok() {
                            changed += 1;
                        }
                    }
                    _ => {
                        handle
                            .register(m.clone(), m.checksum.clone())
                            .await
                            .expect("register");
                        changed += 1;
                        if i % 10 == 5 {
                            handle.yank(&m.id, "testing").await.expect("yank");
                            handle
                                .yank(&m.id, "again")
                                .await
                                .expect("a second yank is a no-op");
                            handle.unyank(&m.id).await.expect("unyank");
                            changed += 2;
                        }
                        if i % 10 == 9 {
                            let update = MetadataUpdate {
                                description: Some(format!("Changed {i}.")),
                                ..MetadataUpdate::default()
                            };
                            handle.update_metadata(&m.id, update).await.expect("update");
                            changed += 1;
                        }
                    }
                }
                i += 1;
            }
            changed
        }));
    }
    // The ninth connection: take numbers and an event row as the registry does, then roll back.
    let rollbacks = {
        let url = url.clone();
        tokio::spawn(async move {
            let mut client = raw(&url).await;
            let mut rolled_back = 0;
            for _ in 0..200 {
                let tx = client.transaction().await.expect("begin");
                let seq: i64 = tx
                    .query_one(
                        "UPDATE counters SET value = value + 1 WHERE name = 'event' RETURNING value",
                        &[],
                    )
                    .await
                    .expect("take a number")
                    .get(0);
                tx.execute(
                    "INSERT INTO events (seq, at, kind) VALUES ($1, 'now', '{}')",
                    &[&seq],
                )
                .await
                .expect("an event row");
                tx.rollback().await.expect("rollback");
                rolled_back += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            rolled_back
        })
    };
    let mut changed = 0;
    for writer in writers {
        changed += writer.await.expect("writer");
    }
    assert_eq!(rollbacks.await.expect("rollbacks"), 200);

    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let page = registry.events_since(after, 1_000).await.expect("events");
        let Some(last) = page.last() else { break };
        after = last.seq;
        seqs.extend(page.iter().map(|e| e.seq));
    }
    let expected: Vec<u64> = (1..=changed).collect();
    assert_eq!(seqs.len() as u64, changed, "one event per change");
    assert_eq!(seqs, expected, "every number from 1 once, in order");
    assert_eq!(registry.latest_event_seq().await.expect("latest"), changed);
    let unique: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "no duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_mid_batch_keeps_all_or_nothing_and_the_registry_recovers() {
    let Some(mut server) = PostgresServer::start_durable() else {
        return;
    };
    let (url, registry) = database(&server, "crash").await;
    let batch: Vec<_> = (0..20_000)
        .map(|i| {
            let m = package(&format!("crash/p{i}@1.0.0"), &[("crash/base", "^1")]);
            let hash = m.checksum.clone();
            (m, hash)
        })
        .collect();
    let landing = {
        let registry = registry.clone();
        tokio::spawn(async move { registry.register_batch(batch).await })
    };
    // Kill the server while the batch's transaction is open (it holds the log's lock).
    let watcher = raw(&url).await;
    let started = std::time::Instant::now();
    loop {
        let open: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
                 WHERE c.relname = 'counters' AND l.mode = 'RowShareLock'",
                &[],
            )
            .await
            .expect("watch the locks")
            .get(0);
        if open > 0 || landing.is_finished() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the batch never started"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    server.kill();
    let outcome = landing.await.expect("task");
    let error = match outcome {
        Ok(ids) => panic!("the batch of {} committed before the kill", ids.len()),
        Err(e) => e,
    };
    assert!(error.is_transient(), "a lost server is transient: {error}");
    assert!(error.to_string().contains("register a batch"), "{error}");

    // While the server is down: transient errors, nothing hangs.
    let down = registry
        .list(10, 0)
        .await
        .expect_err("no server, no listing");
    assert!(down.is_transient(), "{down}");

    server.restart();
    let versions = registry.list(usize::MAX, 0).await.expect("works again");
    assert!(versions.is_empty(), "none of the batch: {}", versions.len());
    assert_eq!(registry.latest_event_seq().await.expect("seq"), 0);
    let m = package("crash/after@1.0.0", &[]);
    registry
        .register(m.clone(), m.checksum.clone())
        .await
        .expect("registers after the restart");
    assert_eq!(registry.latest_event_seq().await.expect("seq"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_and_left_alone() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let (url, registry) = database(&server, "newer").await;
    let m = package("keep/web@1.0.0", &[]);
    registry
        .register(m.clone(), m.checksum.clone())
        .await
        .expect("register");
    drop(registry);
    let client = raw(&url).await;
    client
        .execute(
            "UPDATE marketplace_schema SET version = $1",
            &[&(SCHEMA_VERSION + 1)],
        )
        .await
        .expect("pretend a newer library migrated it");
    let error = PostgresRegistry::connect(&url)
        .await
        .expect_err("a newer schema");
    let text = error.to_string();
    assert!(text.contains("newer than the"), "{text}");
    assert!(!error.is_transient());
    let version: i64 = client
        .query_one("SELECT version FROM marketplace_schema", &[])
        .await
        .expect("schema")
        .get(0);
    assert_eq!(version, SCHEMA_VERSION + 1, "left untouched");
    let rows: i64 = client
        .query_one("SELECT count(*) FROM versions", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_refused_connections_say_what_and_where() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    // Nobody listens on a port just freed: transient, names the place, never the password.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let url = format!("postgres://app:hunter2@127.0.0.1:{port}/none?connect_timeout=2");
    let error = PostgresRegistry::connect(&url).await.expect_err("nobody");
    let text = error.to_string();
    assert!(error.is_transient(), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    // A database that does not exist: the server's own words, not transient.
    let error = PostgresRegistry::connect(&server.url("missing"))
        .await
        .expect_err("no such database");
    assert!(error.to_string().contains("missing"), "{error}");
    assert!(!error.is_transient(), "{error}");

    let error = PostgresRegistry::connect("postgres://[broken")
        .await
        .expect_err("not a URL");
    assert_eq!(error.kind(), ErrorKind::Invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_keysets_that_match_offsets() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let (_url, registry) = database(&server, "paging").await;
    let items: Vec<_> = (0..250)
        .map(|i| {
            let mut m = package(&format!("page/p{i:03}@1.0.0"), &[]);
            if i % 2 == 0 {
                m.authors.push("Even <even@example.com>".into());
            }
            let hash = m.checksum.clone();
            (m, hash)
        })
        .collect();
    registry.register_batch(items).await.expect("batch");
    let mut seen = Vec::new();
    for offset in (0..250).step_by(40) {
        for record in registry.list(40, offset).await.expect("page") {
            seen.push(record.metadata.id.name.to_string());
        }
    }
    let expected: Vec<String> = (0..250).map(|i| format!("p{i:03}")).collect();
    assert_eq!(seen, expected);
    let evens = registry
        .list_by_author("Even <even@example.com>", 10, 120)
        .await
        .expect("author page");
    let names: Vec<String> = evens
        .iter()
        .map(|r| r.metadata.id.name.to_string())
        .collect();
    let expected: Vec<String> = (120..125).map(|i| format!("p{:03}", i * 2)).collect();
    assert_eq!(names, expected);
}
