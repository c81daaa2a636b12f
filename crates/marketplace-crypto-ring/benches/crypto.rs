//! Sign, verify and checksum costs of the ring backend, next to raw ring in the same run.
//!
//! Run with `cargo bench -p marketplace-crypto-ring`. Each pair of benchmarks (`ours/…` and
//! `raw_ring/…`) measures the same work with and without this crate's layers (signing payload
//! encoding, key parsing, result types, the async trait).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use marketplace_core::{
    ContentHash, CryptoVerifier, HashAlgorithm, PackageMetadata, signing_payload,
};
use marketplace_crypto_ring::RingCryptoVerifier;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

fn metadata() -> PackageMetadata {
    let mut m = PackageMetadata::new(
        "acme/web-framework@1.2.3".parse().expect("id"),
        "A web framework template with routing, templating and sessions.",
        ContentHash::sha256(b"archive"),
        48_213,
    );
    m.authors = vec!["Jane Doe <jane@example.com>".into()];
    m.license = Some("MIT OR Apache-2.0".parse().expect("license"));
    for dep in ["acme/http", "acme/templates", "logging"] {
        m.dependencies
            .insert(dep.parse().expect("dep"), "^1.2".parse().expect("req"));
    }
    m
}

fn signatures(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let crypto = RingCryptoVerifier::in_memory();
    let keys = rt.block_on(crypto.generate_keypair()).expect("keys");
    let m = metadata();
    let signature = rt
        .block_on(crypto.sign(&m, &keys.private_key))
        .expect("sign");
    let payload = signing_payload(&m);
    let raw_pair =
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(keys.private_key.pkcs8_der()).expect("pair");
    let raw_public = raw_pair.public_key().as_ref().to_vec();

    let mut group = c.benchmark_group("ed25519");
    group.bench_function("raw_ring/verify", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ED25519, black_box(&raw_public))
                .verify(black_box(&payload), black_box(&signature.bytes))
        })
    });
    group.bench_function("ours/verify_signature", |b| {
        b.iter(|| rt.block_on(crypto.verify_signature(black_box(&m), black_box(&signature))))
    });
    group.bench_function("raw_ring/sign", |b| {
        b.iter(|| raw_pair.sign(black_box(&payload)))
    });
    group.bench_function("ours/sign", |b| {
        b.iter(|| rt.block_on(crypto.sign(black_box(&m), black_box(&keys.private_key))))
    });
    group.finish();
}

fn checksums(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let crypto = RingCryptoVerifier::in_memory();
    let body: Vec<u8> = (0..(1 << 20))
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let expected = ContentHash::sha256(&body);
    let mut group = c.benchmark_group("sha256_1MiB");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("raw_ring/digest", |b| {
        b.iter(|| ring::digest::digest(&ring::digest::SHA256, black_box(&body)))
    });
    group.bench_function("ours/checksum", |b| {
        b.iter(|| rt.block_on(crypto.checksum(black_box(&body), HashAlgorithm::Sha256)))
    });
    group.bench_function("ours/verify_checksum", |b| {
        b.iter(|| rt.block_on(crypto.verify_checksum(black_box(&body), black_box(&expected))))
    });
    group.finish();
}

criterion_group!(benches, signatures, checksums);
criterion_main!(benches);
