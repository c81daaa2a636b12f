//! Every read of an archive is one pass: inspecting and staging decompress and hash once,
//! extracting an inspected archive decompresses once and hashes nothing, packing hashes once.
//!
//! The counters are process-wide, so this binary holds this one test.

use bytes::Bytes;
use marketplace_core::HashAlgorithm;
use marketplace_package::counters::{decompressions, hashes};
use marketplace_package::{ArchiveLimits, extract, inspect, pack_dir, stage};

fn passes() -> (u64, u64) {
    (decompressions(), hashes())
}

fn since(before: (u64, u64)) -> (u64, u64) {
    let now = passes();
    (now.0 - before.0, now.1 - before.1)
}

#[test]
fn each_operation_reads_the_archive_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("marketplace.toml"),
        "[package]\nname = \"web\"\nversion = \"1.0.0\"\n",
    )
    .expect("manifest");
    std::fs::write(dir.path().join("index.html"), "<h1>hi</h1>").expect("file");
    let limits = ArchiveLimits::default();

    let before = passes();
    let packed = pack_dir(dir.path(), &limits).expect("pack");
    assert_eq!(
        since(before),
        (0, 1),
        "packing hashes once and decompresses nothing"
    );

    let bytes: Bytes = packed.archive().clone();
    let before = passes();
    let inspected = inspect(bytes.clone(), &limits).expect("inspect");
    assert_eq!(since(before), (1, 1), "inspecting is one pass");

    let out = tempfile::tempdir().expect("tempdir");
    let before = passes();
    extract(&inspected, &out.path().join("a")).expect("extract");
    assert_eq!(
        since(before),
        (1, 0),
        "extracting what was inspected checks nothing again"
    );

    let before = passes();
    stage(bytes, &limits, HashAlgorithm::Sha256, &out.path().join("b"))
        .expect("stage")
        .commit()
        .expect("commit");
    assert_eq!(
        since(before),
        (1, 1),
        "staging validates, hashes and writes in one pass"
    );
}
