//! Criterion benchmarks of the SPEC §8 workloads on the deterministic corpus (means and
//! medians; `cargo xtask bench-report` gives percentiles and the comparison table).
//!
//! `cargo bench -p marketplace-benches`

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use marketplace_benches::{corpus, workloads};
use marketplace_core::{
    CryptoVerifier, PackageId, PackageStore, Registry, SearchEngine, TrustLevel,
};
use marketplace_crypto_ring::RingCryptoVerifier;
use marketplace_store_local::LocalPackageStore;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn w1_search(c: &mut Criterion) {
    let rt = runtime();
    let engine = rt.block_on(workloads::search_index(&corpus::corpus(10_000, 42)));
    let queries = corpus::queries(false);
    let mut i = 0;
    c.bench_function("W1 search 10k, text", |b| {
        b.iter(|| {
            i = (i + 1) % queries.len();
            black_box(rt.block_on(engine.search(&queries[i])).expect("search"))
        })
    });
}

fn w2_get(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let records = corpus::corpus(10_000, 42);
    let registry = rt.block_on(workloads::registry_with(dir.path(), &records));
    let ids: Vec<PackageId> = records.iter().map(|r| r.metadata.id.clone()).collect();
    let mut i = 0;
    c.bench_function("W2 get metadata", |b| {
        b.iter(|| {
            i = (i + 7919) % ids.len();
            black_box(rt.block_on(registry.get(&ids[i])).expect("get"))
        })
    });
}

fn w3_publish_batch(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("W3 publish_batch");
    group.sample_size(10);
    group.throughput(Throughput::Elements(200));
    let mut seed = 100;
    group.bench_function("200 packages", |b| {
        b.iter_batched(
            || {
                seed += 1;
                let dir = tempfile::tempdir().expect("tempdir");
                let (client, key) = rt.block_on(workloads::local_client(dir.path()));
                (dir, client, key, workloads::archives(200, seed))
            },
            |(dir, client, key, archives)| {
                rt.block_on(client.publish_batch(archives, &key.private_key))
                    .expect("publish");
                drop(dir);
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn w4_resolve(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = rt.block_on(async {
        let registry =
            marketplace_registry_sqlite::SqliteRegistry::open(dir.path().join("r.sqlite3"))
                .expect("registry");
        for m in corpus::dependency_chain(50) {
            let hash = m.checksum.clone();
            registry.register(m, hash).await.expect("register");
        }
        Arc::new(registry)
    });
    let root: PackageId = "chain/pkg-0@1.2.0".parse().expect("root");
    c.bench_function("W4 resolve 50-package graph", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(
                    registry
                        .resolve_dependencies(&root, marketplace_core::ResolveOptions::TRANSITIVE),
                )
                .expect("resolve"),
            )
        })
    });
}

fn w5_transfer(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalPackageStore::open(dir.path().join("store")).expect("store");
    let mut group = c.benchmark_group("W5 transfer 1 MiB");
    group.throughput(Throughput::Bytes(1 << 20));
    let data = vec![42u8; 1 << 20];
    let hash = rt
        .block_on(store.store(Bytes::from(data.clone())))
        .expect("store");
    group.bench_function(BenchmarkId::new("get (verified)", "1MiB"), |b| {
        b.iter(|| black_box(rt.block_on(store.get(&hash)).expect("get")))
    });
    group.bench_function(BenchmarkId::new("raw SHA-256 (ring)", "1MiB"), |b| {
        b.iter(|| black_box(ring::digest::digest(&ring::digest::SHA256, &data)))
    });
    group.finish();
}

fn w6_verify(c: &mut Criterion) {
    let rt = runtime();
    let crypto = RingCryptoVerifier::in_memory();
    let (metadata, signature) = rt.block_on(async {
        let key = crypto.generate_keypair().await.expect("keygen");
        crypto
            .add_trusted_key(&key.public_key, TrustLevel::Full)
            .await
            .expect("trust");
        let metadata = corpus::corpus(1, 5)[0].metadata.clone();
        let signature = crypto
            .sign(&metadata, &key.private_key)
            .await
            .expect("sign");
        (metadata, signature)
    });
    c.bench_function("W6 verify signature", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(crypto.verify_signature(&metadata, &signature))
                    .expect("verify"),
            )
        })
    });
}

fn w7_rebuild(c: &mut Criterion) {
    let rt = runtime();
    let records = corpus::corpus(5_000, 42);
    let engine = marketplace_search_tantivy::TantivySearchEngine::in_memory().expect("index");
    let mut group = c.benchmark_group("W7 rebuild");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("5k packages", |b| {
        b.iter(|| {
            rt.block_on(engine.rebuild(Box::new(records.clone().into_iter())))
                .expect("rebuild")
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    w1_search,
    w2_get,
    w3_publish_batch,
    w4_resolve,
    w5_transfer,
    w6_verify,
    w7_rebuild
);
criterion_main!(benches);
