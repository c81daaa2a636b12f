//! `get` latency and `register_batch` throughput on a registry holding 100k versions.
//!
//! Run with `cargo bench -p marketplace-registry-sqlite --bench registry`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use marketplace_core::{ContentHash, PackageId, PackageMetadata, Registry};
use marketplace_registry_sqlite::SqliteRegistry;

const CORPUS: usize = 100_000;
const BATCH: usize = 1_000;

fn metadata(n: usize) -> PackageMetadata {
    let id: PackageId = format!("ns{}/package-{n}@1.{}.0", n % 97, n % 13)
        .parse()
        .expect("id");
    let mut m = PackageMetadata::new(
        id,
        format!("Package number {n}: templates and generators for project number {n}."),
        ContentHash::sha256(n.to_string().as_bytes()),
        4096,
    );
    m.authors = vec![format!("Author {}", n % 500)];
    m.keywords = vec!["templates".into(), format!("k{}", n % 50)];
    if n > 0 {
        m.dependencies.insert(
            format!("ns{}/package-{}", (n / 2) % 97, n / 2)
                .parse()
                .expect("dep"),
            "^1".parse().expect("req"),
        );
    }
    m
}

fn batch(start: usize) -> Vec<(PackageMetadata, ContentHash)> {
    (start..start + BATCH)
        .map(|n| {
            let m = metadata(n);
            let h = m.checksum.clone();
            (m, h)
        })
        .collect()
}

fn registry_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = SqliteRegistry::open(dir.path().join("registry.db")).expect("open");
    rt.block_on(async {
        for start in (0..CORPUS).step_by(BATCH) {
            registry.register_batch(batch(start)).await.expect("fill");
        }
    });

    let ids: Vec<PackageId> = (0..1024)
        .map(|i| metadata((i * 7919) % CORPUS).id)
        .collect();
    let mut group = c.benchmark_group("sqlite_registry_100k");
    let mut next = 0;
    group.bench_function("get", |b| {
        b.iter(|| {
            next = (next + 1) % ids.len();
            rt.block_on(registry.get(black_box(&ids[next])))
                .expect("get")
        })
    });

    group.throughput(Throughput::Elements(BATCH as u64));
    let mut start = CORPUS;
    group.bench_function("register_batch_1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let items = batch(start);
                start += BATCH;
                let began = Instant::now();
                rt.block_on(registry.register_batch(items)).expect("batch");
                total += began.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = registry_benches
}
criterion_main!(benches);
