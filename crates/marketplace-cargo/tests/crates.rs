//! `.crate` files: the ones the machine's cargo makes read back with their index line; hostile
//! or mismatched ones are refused.

use std::process::Command;

use bytes::Bytes;
use marketplace_cargo::{
    CargoFields, DependencyKind, IndexLine, inspect_crate, inspect_published, parse_manifest,
    parse_new_crate,
};
use marketplace_core::ErrorKind;

/// A `.crate` made by hand: `entries` under one gzip member.
fn hand_made(entries: &[(&str, &str)]) -> Bytes {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, text) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, text.as_bytes())
            .expect("append");
    }
    let tar = tar.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    Bytes::from(gz.finish().expect("gzip"))
}

const MANIFEST: &str = r#"
[package]
edition = "2021"
rust-version = "1.70"
name = "demo_crate"
version = "1.2.0"
authors = ["Ada <ada@example.com>"]
description = "A demo"
license = "MIT/Apache-2.0"
repository = "not a url"
keywords = ["demo", "not a keyword!"]
categories = ["development-tools"]
links = "z"

[dependencies.log]
version = "0.4"

[dependencies.serde_json]
version = "1"
optional = true

[dependencies.old_rand]
version = "0.7"
package = "rand"
default-features = false
features = ["std"]

[dependencies.other]
version = "2"
registry-index = "sparse+https://registry.example/index/"

[dev-dependencies.pretty]
version = "1.0.1"

[build-dependencies.cc]
version = "1"

[target."cfg(windows)".dependencies.winapi]
version = "0.3"

[features]
default = ["std"]
std = []
json = ["dep:serde_json"]
"#;

#[test]
fn a_normalised_manifest_gives_every_dependency_and_feature() {
    let d = parse_manifest(MANIFEST).expect("parses");
    assert_eq!((d.name.as_str(), d.vers.as_str()), ("demo_crate", "1.2.0"));
    let by_name = |n: &str| d.deps.iter().find(|x| x.name == n).expect(n);
    assert_eq!(by_name("log").req, "^0.4");
    assert!(by_name("serde_json").optional);
    let renamed = by_name("old_rand");
    assert_eq!(renamed.package.as_deref(), Some("rand"));
    assert!(!renamed.default_features);
    assert_eq!(
        by_name("other").registry.as_deref(),
        Some("sparse+https://registry.example/index/")
    );
    assert_eq!(by_name("pretty").kind, DependencyKind::Dev);
    assert_eq!(by_name("cc").kind, DependencyKind::Build);
    assert_eq!(by_name("winapi").target.as_deref(), Some("cfg(windows)"));

    let bytes = hand_made(&[
        ("demo_crate-1.2.0/Cargo.toml", MANIFEST),
        ("demo_crate-1.2.0/src/lib.rs", ""),
    ]);
    let inspected = inspect_crate(bytes.clone(), &marketplace_cargo::crate_limits())
        .expect("an import reads it");
    let m = inspected.metadata();
    // Unreadable fields are left out on an import; the loose license is normalised.
    assert_eq!(m.repository, None);
    assert_eq!(m.keywords, ["demo"]);
    assert_eq!(
        m.license.as_ref().map(|l| l.spdx()),
        Some("MIT OR Apache-2.0")
    );
    // The marketplace's graph: unconditional, this registry, not dev.
    let plain: Vec<String> = m.dependencies.keys().map(ToString::to_string).collect();
    assert_eq!(plain, ["cc", "log"]);
    assert_eq!(m.renamed_dependencies.len(), 1);
    let fields = CargoFields::of(m).expect("a crate").expect("reads");
    assert_eq!(fields.deps.len(), 7);
    assert_eq!(fields.features2.keys().collect::<Vec<_>>(), ["json"]);
    assert_eq!(fields.rust_version.as_deref(), Some("1.70"));
    let line = IndexLine::of(m, false).expect("a crate").expect("a line");
    assert_eq!(line.cksum, hex::encode(inspected.digest().digest()));
    assert_eq!(line.v, Some(2));
    assert_eq!(line.links.as_deref(), Some("z"));
    let json = serde_json::to_value(&line).expect("json");
    assert_eq!(json["deps"][0]["target"], serde_json::Value::Null, "{json}");
    assert!(json["deps"][0].get("registry").is_none(), "{json}");
}

#[test]
fn a_crate_must_be_what_it_claims_and_hold_no_surprises() {
    let limits = marketplace_cargo::crate_limits();
    let wrong_top = hand_made(&[("other-1.2.0/Cargo.toml", MANIFEST)]);
    let e = inspect_crate(wrong_top, &limits).expect_err("wrong directory");
    assert!(e.to_string().contains("demo_crate-1.2.0"), "{e}");
    let no_manifest = hand_made(&[("demo_crate-1.2.0/src/lib.rs", "")]);
    assert_eq!(
        inspect_crate(no_manifest, &limits).unwrap_err().kind(),
        ErrorKind::Invalid
    );
    use tar::EntryType;
    for (path, kind) in [
        (&b"demo_crate-1.2.0/../evil"[..], EntryType::Regular),
        (b"/etc/evil", EntryType::Regular),
        (b"demo_crate-1.2.0/link", EntryType::Symlink),
        (b"demo_crate-1.2.0/dev", EntryType::Char),
    ] {
        let hostile = Bytes::from(marketplace_package::testing::raw_archive(&[
            (
                b"demo_crate-1.2.0/Cargo.toml",
                EntryType::Regular,
                MANIFEST.as_bytes(),
            ),
            (path, kind, b""),
        ]));
        let e = inspect_crate(hostile, &limits).expect_err("hostile entry");
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    }

    // A publish whose JSON names another version than the crate inside.
    let json = br#"{"name":"demo_crate","vers":"1.3.0","deps":[],"features":{}}"#;
    let new_crate = parse_new_crate(json).expect("json");
    let good = hand_made(&[("demo_crate-1.2.0/Cargo.toml", MANIFEST)]);
    let e = inspect_published(&new_crate, good.clone(), &limits).expect_err("mismatch");
    assert!(e.to_string().contains("1.3.0"), "{e}");
    // A publish is strict where an import is lenient: the bad repository is refused.
    let json = br#"{"name":"demo_crate","vers":"1.2.0","repository":"not a url"}"#;
    let e = inspect_published(&parse_new_crate(json).unwrap(), good, &limits).unwrap_err();
    assert!(e.to_string().contains("repository"), "{e}");
}

#[test]
fn the_crate_cargo_packages_reads_back() {
    let Ok(version) = Command::new("cargo").arg("--version").output() else {
        eprintln!("SKIP: no cargo on PATH");
        return;
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("src")).expect("mkdir");
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"packaged\"\nversion = \"0.3.1\"\nedition = \"2021\"\nrust-version = \"1.60\"\nlicense = \"MIT\"\ndescription = \"Made by cargo package\"\nkeywords = [\"demo\"]\n\n[features]\ndefault = [\"fast\"]\nfast = []\n\n[workspace]\n",
    )
    .expect("manifest");
    std::fs::write(root.join("src/lib.rs"), "pub fn f() {}\n").expect("lib");
    let out = Command::new("cargo")
        .args(["package", "--no-verify", "--allow-dirty", "--offline"])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .output()
        .expect("cargo package");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = root.join("target/package/packaged-0.3.1.crate");
    let bytes = Bytes::from(std::fs::read(&file).expect("the .crate"));
    let inspected =
        inspect_crate(bytes.clone(), &marketplace_cargo::crate_limits()).expect("reads");
    let m = inspected.metadata();
    assert_eq!(m.id.to_string(), "packaged@0.3.1");
    assert_eq!(m.description, "Made by cargo package");
    assert_eq!(m.size, bytes.len() as u64);
    let line = IndexLine::of(m, false).unwrap().unwrap();
    assert_eq!(line.features["fast"], Vec::<String>::new());
    assert_eq!(line.rust_version.as_deref(), Some("1.60"));
    assert!(
        inspected
            .files()
            .iter()
            .any(|f| f.path == "Cargo.toml.orig")
    );
}
