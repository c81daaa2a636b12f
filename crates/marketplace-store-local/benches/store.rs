//! Throughput of 64 MiB archives through the local store, next to raw SHA-256 in the same run.
//!
//! Run with `cargo bench -p marketplace-store-local --bench store`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use marketplace_core::{ContentHash, PackageStore};
use marketplace_store_local::LocalPackageStore;

const SIZE: usize = 64 * 1024 * 1024;

fn store_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let body: Bytes = (0..SIZE)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8)
        .collect::<Vec<u8>>()
        .into();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalPackageStore::open(dir.path()).expect("local store");
    let hash = rt.block_on(store.store(body.clone())).expect("store");

    let mut group = c.benchmark_group("local_64MiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);
    group.bench_function("raw_sha256", |b| {
        b.iter(|| ContentHash::sha256(black_box(&body)))
    });
    // Each upload stores a new object: the previous one is deleted first, outside the timed
    // part (deleting 64 MiB is not part of an upload, and recycling the freed page cache is
    // what a long-running server does; see docs/PERFORMANCE.md on first-touch memory).
    group.bench_function("store", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    store.delete(&hash).await.expect("delete");
                    let started = Instant::now();
                    black_box(store.store(body.clone()).await.expect("store"));
                    total += started.elapsed();
                }
                total
            })
        })
    });
    group.bench_function("upload_stream", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    store.delete(&hash).await.expect("delete");
                    let reader = std::io::Cursor::new(body.clone());
                    let started = Instant::now();
                    black_box(
                        store
                            .upload_stream(Box::new(reader), Some(SIZE as u64))
                            .await
                            .expect("upload"),
                    );
                    total += started.elapsed();
                }
                total
            })
        })
    });
    group.bench_function("get_verified", |b| {
        b.iter(|| rt.block_on(store.get(black_box(&hash))).expect("get"))
    });
    group.bench_function("stream_verified", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut stream = store.stream(&hash).await.expect("stream");
                let mut n = 0;
                while let Some(chunk) = stream.next().await {
                    n += chunk.expect("chunk").len();
                }
                n
            })
        })
    });
    group.finish();
}

criterion_group!(benches, store_benches);
criterion_main!(benches);
