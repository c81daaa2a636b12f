//! W11: the PostgreSQL registry beside the SQLite one, in the same run and on the same corpus
//! of 100k packages: `register_batch` rate, `get` latency over loopback TCP, and the 50-package
//! resolution (set-based prefetch on PostgreSQL, in-process reads on SQLite). The two are
//! measured interleaved (each `get` and each resolution alternates between them), so machine
//! drift touches both alike. PostgreSQL is a throwaway server with its default durability
//! (fsync on commit), started here; without one the rows say SKIP.

use std::time::{Duration, Instant};

use marketplace_core::{PackageId, PackageRecord, Registry, ResolveOptions};
use marketplace_registry_postgres::PostgresRegistry;
use marketplace_registry_sqlite::SqliteRegistry;
use marketplace_testing::corpus::{self, Rng};
use marketplace_testing::postgres::PostgresServer;

use crate::workloads::{Latency, Mode, Row, duration};

/// Registers `records` in chunks of 1,000 (yanks applied) and returns the versions per second
/// of the registrations alone.
async fn fill(registry: &dyn Registry, records: &[PackageRecord]) -> f64 {
    let started = Instant::now();
    for chunk in records.chunks(1_000) {
        let items = chunk
            .iter()
            .map(|r| (r.metadata.clone(), r.metadata.checksum.clone()))
            .collect();
        registry.register_batch(items).await.expect("register");
    }
    let rate = records.len() as f64 / started.elapsed().as_secs_f64();
    for r in records.iter().filter(|r| r.is_yanked()) {
        registry
            .yank(&r.metadata.id, "benchmark")
            .await
            .expect("yank");
    }
    rate
}

fn side_by_side(workload: String, pg: Latency, sqlite: Latency, limit: Duration) -> Row {
    Row {
        workload,
        measured: pg.show(),
        target: format!("p50 < {}", duration(limit)),
        baseline: format!("SQLite {}", sqlite.show()),
        ratio: Some(pg.p50.as_secs_f64() / sqlite.p50.as_secs_f64()),
        met: Some(pg.p50 < limit),
    }
}

/// W11's rows, or one SKIP row without PostgreSQL.
pub async fn w11_postgres(mode: Mode) -> Vec<Row> {
    let Some(server) = PostgresServer::start_durable() else {
        return vec![Row {
            workload: "W11 PostgreSQL registry".into(),
            measured: "SKIP: PostgreSQL is not installed".into(),
            target: "—".into(),
            baseline: "—".into(),
            ratio: None,
            met: None,
        }];
    };
    let url = server.create_database("bench").expect("a database");
    let pg = PostgresRegistry::connect(&url).await.expect("connect");
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqliteRegistry::open(dir.path().join("registry.sqlite3")).expect("SQLite");

    let packages = mode.pick(20_000, 100_000);
    let records = corpus::corpus(packages, 42);
    let sqlite_rate = fill(&sqlite, &records).await;
    let pg_rate = fill(&pg, &records).await;
    let chain = corpus::dependency_chain(50);
    for registry in [&pg as &dyn Registry, &sqlite] {
        let items = chain
            .iter()
            .map(|m| (m.clone(), m.checksum.clone()))
            .collect();
        registry.register_batch(items).await.expect("the chain");
    }

    let mut rng = Rng::new(3);
    let ids: Vec<PackageId> = (0..mode.pick(5_000, 20_000))
        .map(|_| records[rng.below(records.len())].metadata.id.clone())
        .collect();
    for id in ids.iter().take(500) {
        pg.get(id).await.expect("get");
        sqlite.get(id).await.expect("get");
    }
    let (mut pg_gets, mut sqlite_gets) = (Vec::new(), Vec::new());
    for id in &ids {
        let started = Instant::now();
        pg.get(id).await.expect("get");
        pg_gets.push(started.elapsed());
        let started = Instant::now();
        sqlite.get(id).await.expect("get");
        sqlite_gets.push(started.elapsed());
    }

    let root: PackageId = "chain/pkg-0@1.2.0".parse().expect("root");
    let (mut pg_resolve, mut sqlite_resolve) = (Vec::new(), Vec::new());
    for i in 0..mode.pick(100, 400) {
        let started = Instant::now();
        let graph = pg
            .resolve_dependencies(&root, ResolveOptions::TRANSITIVE)
            .await
            .expect("resolve");
        let pg_took = started.elapsed();
        assert_eq!(graph.len(), 50, "the whole chain");
        let started = Instant::now();
        sqlite
            .resolve_dependencies(&root, ResolveOptions::TRANSITIVE)
            .await
            .expect("resolve");
        if i >= 5 {
            pg_resolve.push(pg_took);
            sqlite_resolve.push(started.elapsed());
        }
    }

    let versions = records.len();
    vec![
        Row {
            workload: format!(
                "W11 PostgreSQL register_batch ({versions} versions, 1,000 per batch)"
            ),
            measured: format!("{pg_rate:.0} versions/s"),
            target: "≥ 10,000/s".into(),
            baseline: format!("SQLite {sqlite_rate:.0}/s"),
            ratio: Some(pg_rate / sqlite_rate),
            met: Some(pg_rate >= 10_000.0),
        },
        side_by_side(
            format!("W11 PostgreSQL get over loopback TCP ({versions} versions)"),
            Latency::of(pg_gets),
            Latency::of(sqlite_gets),
            Duration::from_micros(300),
        ),
        side_by_side(
            "W11 PostgreSQL resolve a 50-package transitive graph".into(),
            Latency::of(pg_resolve),
            Latency::of(sqlite_resolve),
            Duration::from_millis(5),
        ),
    ]
}
