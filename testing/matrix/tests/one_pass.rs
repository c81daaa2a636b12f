//! Each step once: a publish decompresses and hashes its archive once (none for an archive
//! `pack_dir` just made) and asks the crypto backend for no checksum; an install decompresses
//! and hashes each archive once and reads no metadata beyond what resolution returned.
//!
//! The package crate's pass counters are process-wide, so this binary holds this one test.

use std::sync::Arc;

use marketplace_client::{ArchiveLimits, MarketplaceBuilder, pack_dir};
use marketplace_conformance::layer::{CallCounter, Layered};
use marketplace_core::TrustLevel;
use marketplace_package::counters::{decompressions, hashes};

fn passes() -> (u64, u64) {
    (decompressions(), hashes())
}

fn since(before: (u64, u64)) -> (u64, u64) {
    let (d, h) = passes();
    (d - before.0, h - before.1)
}

fn package_dir(root: &std::path::Path, name: &str, deps: &[&str]) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"1.0.0\"\nnamespace = \"once\"\nlicense = \"MIT\"\n[dependencies]\n"
    );
    for dep in deps {
        manifest.push_str(&format!("\"once/{dep}\" = \"^1\"\n"));
    }
    std::fs::write(dir.join("marketplace.toml"), manifest).expect("manifest");
    std::fs::write(dir.join("README.md"), format!("# {name}")).expect("readme");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_install_read_each_archive_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let calls = Arc::new(CallCounter::default());
    let client = MarketplaceBuilder::local(root.path().join("market"))
        .expect("local marketplace")
        .map_registry(|r| Arc::new(Layered::new(r).hook(calls.clone())))
        .map_store(|s| Arc::new(Layered::new(s).hook(calls.clone())))
        .map_crypto(|c| Arc::new(Layered::new(c).hook(calls.clone())))
        .build()
        .expect("client");
    let key = client.generate_keypair().await.expect("key");
    client
        .trust_key(&key.public_key, TrustLevel::Full)
        .await
        .expect("trust");
    let limits = ArchiveLimits::default();

    // Archive bytes from elsewhere: one pass over them, no checksum call, no re-verification of
    // the signature just made.
    let leaf = pack_dir(&package_dir(root.path(), "leaf", &[]), &limits).expect("pack");
    let bytes = leaf.archive().clone();
    calls.reset();
    let before = passes();
    client
        .publish(bytes, &key.private_key)
        .await
        .expect("publish bytes");
    assert_eq!(since(before), (1, 1), "publishing bytes is one pass");
    assert_eq!(calls.count("crypto", "checksum"), 0, "{:?}", calls.counts());
    assert_eq!(
        calls.count("crypto", "verify_signature"),
        0,
        "{:?}",
        calls.counts()
    );
    assert_eq!(calls.count("crypto", "sign"), 1);
    assert_eq!(calls.count("store", "store"), 1);

    // A packed archive: packing hashes once; publishing reads it no more.
    let before = passes();
    let mid = pack_dir(&package_dir(root.path(), "mid", &["leaf"]), &limits).expect("pack");
    assert_eq!(since(before), (0, 1), "packing hashes once");
    let before = passes();
    client
        .publish(mid, &key.private_key)
        .await
        .expect("publish packed");
    assert_eq!(since(before), (0, 0), "a packed archive is not read again");
    let app = pack_dir(&package_dir(root.path(), "app", &["mid", "leaf"]), &limits).expect("pack");
    client
        .publish(app, &key.private_key)
        .await
        .expect("publish app");

    // Install three packages: one pass each; no metadata read beyond resolution's.
    calls.reset();
    let before = passes();
    let report = client
        .install(
            &"once/app".parse().expect("ref"),
            &"^1".parse().expect("req"),
            &root.path().join("dest"),
        )
        .await
        .expect("install");
    assert_eq!(report.installed.len(), 3);
    assert_eq!(since(before), (3, 3), "one pass per installed archive");
    assert_eq!(calls.count("registry", "resolve_dependencies"), 1);
    assert_eq!(
        calls.count("registry", "get"),
        0,
        "install reads no metadata again: {:?}",
        calls.counts()
    );
    assert_eq!(calls.count("store", "get"), 3);
    assert_eq!(calls.count("crypto", "checksum"), 0, "{:?}", calls.counts());
    assert_eq!(calls.count("crypto", "verify_signature"), 3);
}
