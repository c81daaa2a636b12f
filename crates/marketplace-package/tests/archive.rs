//! The package format: reproducible packing, every archive rule, and all-or-nothing extraction.

use bytes::Bytes;
use marketplace_core::{ContentHash, Error, HashAlgorithm};
use marketplace_package::testing::{EntryType, raw_archive};
use marketplace_package::{
    ArchiveLimits, MANIFEST_FILE, Manifest, extract, inspect, inspect_as, pack_dir, stage,
};

fn inspect_raw(archive: Vec<u8>, limits: &ArchiveLimits) -> marketplace_core::Result<()> {
    inspect(Bytes::from(archive), limits).map(drop)
}

const MANIFEST: &str = r#"[package]
name = "web-framework"
version = "1.2.3"
namespace = "acme"
description = "Routing and templates for web services"
authors = ["Jane Doe <jane@example.com>"]
license = "MIT OR Apache-2.0"
keywords = ["web", "http"]
categories = ["templates"]
homepage = "https://example.com/web"

[dependencies]
"acme/http" = "^1.2"
logging = "0.3"
"#;

fn package_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(MANIFEST_FILE), MANIFEST).expect("manifest");
    std::fs::create_dir_all(dir.path().join("templates/pages")).expect("mkdir");
    std::fs::write(
        dir.path().join("templates/pages/index.html"),
        "<h1>{{ title }}</h1>",
    )
    .expect("file");
    std::fs::write(dir.path().join("README.md"), "# web-framework").expect("file");
    std::fs::create_dir_all(dir.path().join(".git")).expect("mkdir");
    std::fs::write(dir.path().join(".git/HEAD"), "ref: refs/heads/main").expect("file");
    dir
}

const MINIMAL: &[u8] = b"[package]\nname = \"web\"\nversion = \"1.0.0\"\n";

fn assert_invalid(result: Result<impl std::fmt::Debug, Error>, needle: &str) {
    match result {
        Err(Error::Invalid { field, rule, value }) => {
            let all = format!("{field} {value} {rule}");
            assert!(all.contains(needle), "expected {needle:?} in: {all}");
        }
        other => panic!("expected Invalid ({needle}), got {other:?}"),
    }
}

#[test]
fn packing_is_reproducible_and_round_trips() {
    let dir = package_dir();
    let limits = ArchiveLimits::default();
    let first = pack_dir(dir.path(), &limits).expect("pack");
    // Touch a file's time: the archive must not change.
    std::fs::write(dir.path().join("README.md"), "# web-framework").expect("rewrite");
    let second = pack_dir(dir.path(), &limits).expect("pack again");
    assert_eq!(first.archive(), second.archive());
    assert_eq!(first.digest(), &ContentHash::sha256(first.archive()));

    assert_eq!(first.id().to_string(), "acme/web-framework@1.2.3");
    assert_eq!(first.metadata().dependencies.len(), 2);
    assert_eq!(first.metadata().size, first.archive().len() as u64);
    // Reading the packed bytes back proves exactly what packing recorded.
    let info = inspect(first.archive().clone(), &limits).expect("inspect");
    assert_eq!(info.top(), "web-framework-1.2.3");
    assert_eq!(info.files(), first.files());
    assert_eq!(info.unpacked_size(), first.unpacked_size());
    assert_eq!(info.digest(), first.digest());
    let paths: Vec<&str> = info.files().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["README.md", MANIFEST_FILE, "templates/pages/index.html"],
        ".git is left out, entries sorted"
    );
    let sha512 = inspect_as(first.archive().clone(), &limits, HashAlgorithm::Sha512)
        .expect("inspect with SHA-512");
    assert_eq!(sha512.digest().algorithm(), HashAlgorithm::Sha512);

    let out = tempfile::tempdir().expect("tempdir");
    let dest = out.path().join("installed/web");
    extract(&info, &dest).expect("extract");
    assert_eq!(
        std::fs::read_to_string(dest.join("templates/pages/index.html")).expect("read"),
        "<h1>{{ title }}</h1>"
    );
    assert!(!dest.join(".git").exists());
}

#[test]
fn every_rule_names_the_entry() {
    let limits = ArchiveLimits::default();
    let m = MINIMAL;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            raw_archive(&[
                (b"web/marketplace.toml", EntryType::Regular, m),
                (b"web/../../evil", EntryType::Regular, b"x"),
            ]),
            "`..`",
        ),
        (
            raw_archive(&[(b"/etc/cron.d/evil", EntryType::Regular, b"x")]),
            "absolute",
        ),
        (
            raw_archive(&[
                (b"web/marketplace.toml", EntryType::Regular, m),
                (b"web/link", EntryType::Symlink, b""),
            ]),
            "symbolic link",
        ),
        (
            raw_archive(&[
                (b"web/marketplace.toml", EntryType::Regular, m),
                (b"web/hard", EntryType::Link, b""),
            ]),
            "hard link",
        ),
        (
            raw_archive(&[
                (b"web/marketplace.toml", EntryType::Regular, m),
                (b"web/dev", EntryType::Char, b""),
            ]),
            "only files and directories",
        ),
        (
            raw_archive(&[
                (b"web/marketplace.toml", EntryType::Regular, m),
                (b"other/file", EntryType::Regular, b"x"),
            ]),
            "one directory",
        ),
        (
            raw_archive(&[(b"web/readme", EntryType::Regular, b"x")]),
            "has no marketplace.toml",
        ),
        (
            raw_archive(&[
                (b"web/marketplace.toml", EntryType::Regular, m),
                (b"web/marketplace.toml", EntryType::Regular, m),
            ]),
            "appears twice",
        ),
        (
            raw_archive(&[
                (b"web/marketplace.toml", EntryType::Regular, m),
                (b"web/caf\xe9", EntryType::Regular, b"x"),
            ]),
            "not UTF-8",
        ),
        (
            raw_archive(&[(
                b"web/marketplace.toml",
                EntryType::Regular,
                b"[package]\nname = \"1bad\"\nversion = \"1.0.0\"\n",
            )]),
            "package.name",
        ),
        (
            raw_archive(&[(
                b"web/marketplace.toml",
                EntryType::Regular,
                b"[package]\nname = \"web\"\nversion = \"one\"\n",
            )]),
            "package.version",
        ),
        (
            raw_archive(&[(
                b"web/marketplace.toml",
                EntryType::Regular,
                b"[package\nname=",
            )]),
            "not a valid manifest",
        ),
        (
            raw_archive(&[(
                b"web/marketplace.toml",
                EntryType::Regular,
                b"[package]\nname = \"web\"\nversion = \"1.0.0\"\nsurprise = 1\n",
            )]),
            "unknown field",
        ),
        (
            raw_archive(&[(b"toplevel-file", EntryType::Regular, b"x")]),
            "top level",
        ),
        (
            b"not a gzip stream at all".to_vec(),
            "not a readable .tar.gz",
        ),
        (Vec::new(), "not a readable .tar.gz"),
    ];
    for (archive, needle) in cases {
        assert_invalid(inspect_raw(archive, &limits), needle);
    }
}

#[test]
fn limits_guard_against_bombs_and_floods() {
    let zeros = vec![0u8; 2 * 1024 * 1024];
    let bomb = raw_archive(&[
        (b"web/marketplace.toml", EntryType::Regular, MINIMAL),
        (b"web/zeros", EntryType::Regular, &zeros),
    ]);
    assert!(
        bomb.len() < 10_000,
        "a 2 MiB file of zeros compresses to {} bytes",
        bomb.len()
    );
    let mut limits = ArchiveLimits::default();
    limits.max_unpacked = 1024 * 1024;
    assert_invalid(
        inspect_raw(bomb.clone(), &limits),
        "unpacks past the 1048576 byte limit",
    );

    let mut limits = ArchiveLimits::default();
    limits.max_compressed = 100;
    assert_invalid(
        inspect_raw(bomb.clone(), &limits),
        "larger than the 100 byte limit",
    );

    let names: Vec<Vec<u8>> = (0..20).map(|i| format!("web/f{i}").into_bytes()).collect();
    let mut entries: Vec<(&[u8], EntryType, &[u8])> =
        vec![(b"web/marketplace.toml", EntryType::Regular, MINIMAL)];
    entries.extend(
        names
            .iter()
            .map(|n| (n.as_slice(), EntryType::Regular, b"x".as_slice())),
    );
    let mut limits = ArchiveLimits::default();
    limits.max_entries = 10;
    assert_invalid(
        inspect_raw(raw_archive(&entries), &limits),
        "more than 10 entries",
    );

    let long = format!("web/{}", "a".repeat(90)).into_bytes();
    let mut limits = ArchiveLimits::default();
    limits.max_path_len = 50;
    assert_invalid(
        inspect_raw(
            raw_archive(&[
                (b"web/marketplace.toml", EntryType::Regular, MINIMAL),
                (&long, EntryType::Regular, b"x"),
            ]),
            &limits,
        ),
        "longer than 50 bytes",
    );
}

#[test]
fn a_refused_archive_writes_nothing() {
    let out = tempfile::tempdir().expect("tempdir");
    let dest = out.path().join("dest");
    let evil = raw_archive(&[
        (b"web/marketplace.toml", EntryType::Regular, MINIMAL),
        (b"web/ok", EntryType::Regular, b"fine"),
        (b"web/../escape", EntryType::Regular, b"x"),
    ]);
    let limits = ArchiveLimits::default();
    let staged = stage(Bytes::from(evil), &limits, HashAlgorithm::Sha256, &dest);
    assert_invalid(staged.map(drop), "`..`");
    assert!(
        !dest.exists(),
        "nothing may be written for a refused archive"
    );
    let leftovers: Vec<_> = std::fs::read_dir(out.path()).expect("list").collect();
    assert!(
        leftovers.is_empty(),
        "no staging directory is left behind: {leftovers:?}"
    );
    assert!(!out.path().join("escape").exists());

    // A non-empty destination is refused too, and left as it was.
    std::fs::create_dir_all(&dest).expect("mkdir");
    std::fs::write(dest.join("keep"), "mine").expect("file");
    let good = raw_archive(&[(b"web/marketplace.toml", EntryType::Regular, MINIMAL)]);
    let good = inspect(Bytes::from(good), &limits).expect("a valid archive");
    let err = extract(&good, &dest).expect_err("non-empty destination");
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dest.join("keep")).expect("read"),
        "mine"
    );
}

#[test]
fn symlinks_in_the_source_directory_are_refused() {
    let dir = package_dir();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).expect("symlink");
        assert_invalid(
            pack_dir(dir.path(), &ArchiveLimits::default()).map(drop),
            "symbolic link",
        );
    }
    let manifest = Manifest::parse(MANIFEST).expect("manifest");
    assert_eq!(manifest.top_dir(), "web-framework-1.2.3");
}

#[test]
fn staging_writes_nothing_until_commit_and_a_drop_leaves_nothing() {
    let dir = package_dir();
    let limits = ArchiveLimits::default();
    let packed = pack_dir(dir.path(), &limits).expect("pack");
    let out = tempfile::tempdir().expect("tempdir");

    let dest = out.path().join("web");
    let staged = stage(
        packed.archive().clone(),
        &limits,
        HashAlgorithm::Sha256,
        &dest,
    )
    .expect("stage");
    assert!(!dest.exists(), "staging writes nothing to the destination");
    assert_eq!(staged.inspected().digest(), packed.digest());
    drop(staged);
    let leftovers: Vec<_> = std::fs::read_dir(out.path()).expect("list").collect();
    assert!(
        leftovers.is_empty(),
        "a dropped stage leaves nothing: {leftovers:?}"
    );

    let staged = stage(
        packed.archive().clone(),
        &limits,
        HashAlgorithm::Sha256,
        &dest,
    )
    .expect("stage");
    staged.commit().expect("commit");
    assert_eq!(
        std::fs::read_to_string(dest.join("README.md")).expect("read"),
        "# web-framework"
    );
    let names: Vec<_> = std::fs::read_dir(out.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec!["web"], "no staging directory is left behind");
}

#[test]
fn stricter_limits_are_applied_to_an_archive_inspected_under_looser_ones() {
    let dir = package_dir();
    let packed = pack_dir(dir.path(), &ArchiveLimits::default()).expect("pack");
    ArchiveLimits::default()
        .admit(&packed)
        .expect("the same limits admit it");
    let mut limits = ArchiveLimits::default();
    limits.max_entries = 2;
    assert_invalid(limits.admit(&packed), "more than 2 entries");
    let mut limits = ArchiveLimits::default();
    limits.max_unpacked = 10;
    assert_invalid(limits.admit(&packed), "byte limit");
    let mut limits = ArchiveLimits::default();
    limits.max_path_len = 10;
    assert_invalid(limits.admit(&packed), "longer than 10 bytes");
}

#[test]
fn a_manifest_declares_renamed_dependencies_as_cargo_does() {
    let text = r#"[package]
name = "rand"
version = "0.8.0"

[dependencies]
rand_core = "^0.6"
rand_core_05 = { package = "rand_core", version = "^0.5" }
getrandom = { version = "0.2" }
"#;
    let manifest = Manifest::parse(text).expect("manifest");
    let plain: Vec<String> = manifest
        .dependencies
        .iter()
        .map(|(p, r)| format!("{p} {r}"))
        .collect();
    assert_eq!(plain, ["getrandom ^0.2", "rand_core ^0.6"]);
    let renamed: Vec<String> = manifest
        .renamed_dependencies
        .iter()
        .map(|(alias, r)| format!("{alias} = {} {}", r.package, r.requirement))
        .collect();
    assert_eq!(renamed, ["rand_core_05 = rand_core ^0.5"]);
    let metadata = manifest.to_metadata(ContentHash::sha256(b"rand"), 1);
    assert_eq!(metadata.renamed_dependencies, manifest.renamed_dependencies);
    metadata.validate().expect("valid");

    for (entry, rule) in [
        ("x = { package = \"y\" }", "must give a `version`"),
        (
            "x = { version = \"1\", path = \"../y\" }",
            "is not a dependency field",
        ),
        ("x = 1", "must be a requirement"),
        ("x = { package = 3, version = \"1\" }", "must be a string"),
        ("rand = { version = \"0.8\" }", "cannot depend on itself"),
    ] {
        let text =
            format!("[package]\nname = \"rand\"\nversion = \"0.8.0\"\n\n[dependencies]\n{entry}\n");
        match Manifest::parse(&text) {
            Err(Error::Invalid { rule: got, .. }) => {
                assert!(got.contains(rule), "{entry}: {got}");
            }
            other => panic!("{entry}: expected Invalid, got {other:?}"),
        }
    }
}
