//! Finding a package's readme in its archive: the manifest's `readme` field, conventional
//! names, either order of manifest and readme, and the size bound.

use marketplace_core::Error;
use marketplace_package::testing::{EntryType, raw_archive};
use marketplace_package::{MANIFEST_FILE, Manifest, find_readme};

const MANIFEST: &[u8] = b"[package]\nname = \"web\"\nversion = \"1.0.0\"\n";

fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let entries: Vec<(&[u8], EntryType, &[u8])> = entries
        .iter()
        .map(|(path, body)| (path.as_bytes(), EntryType::Regular, *body))
        .collect();
    raw_archive(&entries)
}

fn readme_of(archive: &[u8]) -> Option<(String, String)> {
    find_readme(archive, MANIFEST_FILE, 1024)
        .expect("readable")
        .map(|r| (r.path, r.text))
}

#[test]
fn a_conventional_name_is_found_in_any_case_best_name_first() {
    let a = archive(&[
        ("web-1.0.0/marketplace.toml", MANIFEST),
        ("web-1.0.0/readme", b"plain"),
        ("web-1.0.0/ReadMe.md", b"# Web"),
        ("web-1.0.0/docs/README.md", b"not at the top"),
    ]);
    assert_eq!(readme_of(&a), Some(("ReadMe.md".into(), "# Web".into())));
}

#[test]
fn the_manifest_field_names_the_file_before_or_after_the_manifest() {
    let manifest = b"[package]\nname = \"web\"\nversion = \"1.0.0\"\nreadme = \"docs/intro.md\"\n";
    let after = archive(&[
        ("web-1.0.0/marketplace.toml", manifest),
        ("web-1.0.0/README.md", b"# not this"),
        ("web-1.0.0/docs/intro.md", b"# Intro"),
    ]);
    let before = archive(&[
        ("web-1.0.0/docs/intro.md", b"# Intro"),
        ("web-1.0.0/README.md", b"# not this"),
        ("web-1.0.0/marketplace.toml", manifest),
    ]);
    for a in [after, before] {
        assert_eq!(
            readme_of(&a),
            Some(("docs/intro.md".into(), "# Intro".into()))
        );
    }
}

#[test]
fn none_when_there_is_no_readme_or_the_manifest_says_false_or_names_a_missing_file() {
    let none = archive(&[("web-1.0.0/marketplace.toml", MANIFEST)]);
    assert_eq!(readme_of(&none), None);
    let crate_without = archive(&[
        (
            "web-1.0.0/Cargo.toml",
            b"[package]\nname = \"web\"\nversion = \"1.0.0\"\nreadme = false\n",
        ),
        ("web-1.0.0/README.md", b"# ignored"),
    ]);
    assert_eq!(
        find_readme(&crate_without, "Cargo.toml", 1024).expect("readable"),
        None
    );
    let missing = archive(&[
        (
            "web-1.0.0/marketplace.toml",
            b"[package]\nname = \"web\"\nversion = \"1.0.0\"\nreadme = \"GONE.md\"\n",
        ),
        ("web-1.0.0/README.md", b"# other"),
    ]);
    assert_eq!(readme_of(&missing), None);
}

#[test]
fn a_long_readme_is_cut_at_a_character_boundary_and_says_so() {
    // 'é' is two bytes: a cut at an odd byte count would split one.
    let body = "é".repeat(1000);
    let a = archive(&[
        ("web-1.0.0/marketplace.toml", MANIFEST),
        ("web-1.0.0/README.md", body.as_bytes()),
    ]);
    let readme = find_readme(&a, MANIFEST_FILE, 101)
        .expect("readable")
        .expect("a readme");
    assert!(readme.truncated);
    assert_eq!(readme.size, 2000);
    assert_eq!(readme.text, "é".repeat(50));
    let whole = find_readme(&a, MANIFEST_FILE, 4000)
        .expect("readable")
        .expect("a readme");
    assert!(!whole.truncated);
    assert_eq!(whole.text, body);
}

#[test]
fn bytes_that_are_not_an_archive_are_invalid() {
    assert!(matches!(
        find_readme(b"not gzip", MANIFEST_FILE, 1024),
        Err(Error::Invalid { .. })
    ));
}

#[test]
fn the_manifest_readme_field_is_a_path_inside_the_package() {
    let with = |readme: &str| {
        Manifest::parse(&format!(
            "[package]\nname = \"web\"\nversion = \"1.0.0\"\nreadme = {readme:?}\n"
        ))
    };
    assert_eq!(
        with("./docs/README.md").expect("valid").readme.as_deref(),
        Some("docs/README.md")
    );
    for bad in ["", "/etc/passwd", "../README.md", "docs//x.md", "a\\b.md"] {
        match with(bad) {
            Err(Error::Invalid { field, .. }) => {
                assert_eq!(field, "marketplace.toml package.readme")
            }
            other => panic!("{bad:?}: expected Invalid, got {other:?}"),
        }
    }
}
