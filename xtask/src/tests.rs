//! Repository rules as plain tests, so `cargo test` enforces them.

use std::fs;
use std::path::{Path, PathBuf};

use crate::invariants;
use crate::workspace_root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc_line() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "testing", "xtask", "examples", "benches", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 10,
        "found only {} Rust files under {}",
        files.len(),
        root.display()
    );
    let offenders: Vec<String> = files
        .iter()
        .filter(|path| {
            let text = fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| p.strip_prefix(&root).unwrap_or(p).display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "these files do not start with a `//!` doc line: {offenders:#?}"
    );
}

#[test]
fn every_library_forbids_unsafe_and_documents_itself() {
    let root = workspace_root();
    let Ok(crates) = fs::read_dir(root.join("crates")) else {
        panic!("no crates/ directory under {}", root.display());
    };
    let testing = fs::read_dir(root.join("testing"))
        .into_iter()
        .flatten()
        .flatten();
    for entry in crates.flatten().chain(testing) {
        let lib = entry.path().join("src/lib.rs");
        let Ok(text) = fs::read_to_string(&lib) else {
            continue;
        };
        for needle in [
            "#![forbid(unsafe_code)]",
            "#![deny(missing_docs)]",
            "#![doc = include_str!(\"../README.md\")]",
        ] {
            assert!(text.contains(needle), "{} lacks {needle}", lib.display());
        }
    }
}

#[test]
fn core_depends_on_no_backend_library() {
    let deps = invariants::normal_dependencies(&workspace_root(), "marketplace-core", &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        deps.iter().any(|d| d == "marketplace-core"),
        "cargo tree output looks wrong: {deps:?}"
    );
    for lib in invariants::BACKEND_LIBRARIES {
        assert!(
            !deps.iter().any(|d| d == lib),
            "marketplace-core depends on {lib}"
        );
    }
}

#[test]
fn conformance_kit_depends_on_no_backend_library() {
    let deps = invariants::normal_dependencies(
        &workspace_root(),
        "marketplace-conformance",
        &["--features", "client"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for lib in invariants::BACKEND_LIBRARIES {
        assert!(
            !deps.iter().any(|d| d == lib),
            "marketplace-conformance depends on {lib}"
        );
    }
}

#[test]
fn backend_crates_depend_on_no_other_backend() {
    let root = workspace_root();
    invariants::check(&root).unwrap_or_else(|e| panic!("{e}"));
    let bad = invariants::backend_problems(
        "marketplace-crypto-ring",
        &["ring"],
        &[
            "ring".into(),
            "tantivy".into(),
            "marketplace-registry-sqlite".into(),
            "marketplace-core".into(),
        ],
    );
    assert_eq!(
        bad.len(),
        2,
        "the check itself must catch both problems: {bad:?}"
    );
}

#[test]
fn no_crate_imports_upward() {
    let problems = invariants::layer_problems(&workspace_root());
    assert!(problems.is_empty(), "{problems:#?}");
    let sample = "[dependencies]\nmarketplace-core.workspace = true\nserde = \"1\"\n\n[dev-dependencies]\nmarketplace-conformance = { workspace = true }\n[features]\nmarketplace-x = []\n";
    assert_eq!(
        invariants::house_dependencies(sample),
        vec!["marketplace-core", "marketplace-conformance"],
        "the manifest reader finds normal and dev dependencies, not features"
    );
}

#[test]
fn every_crate_of_the_house_has_a_layer() {
    let root = workspace_root();
    let mut dirs = Vec::new();
    for parent in ["crates", "testing"] {
        for entry in fs::read_dir(root.join(parent))
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.path().join("Cargo.toml").is_file() {
                dirs.push(format!("{parent}/{}", entry.file_name().to_string_lossy()));
            }
        }
    }
    let unlisted: Vec<&String> = dirs
        .iter()
        .filter(|d| {
            d.as_str() != "testing/matrix" && !invariants::LAYERS.iter().any(|(dir, _, _)| dir == d)
        })
        .collect();
    assert!(
        unlisted.is_empty(),
        "add these crates to invariants::LAYERS: {unlisted:?}"
    );
}

/// The `### \`dir\`` sections of docs/ARCHITECTURE.md's code map, each with its text.
fn code_map_sections(doc: &str) -> Vec<(String, String)> {
    doc.split("\n### `")
        .skip(1)
        .filter_map(|block| {
            let (dir, rest) = block.split_once('`')?;
            let text = rest.split("\n## ").next().unwrap_or(rest);
            Some((dir.to_owned(), text.to_owned()))
        })
        .collect()
}

#[test]
fn code_map_names_every_source_file() {
    let root = workspace_root();
    let doc = fs::read_to_string(root.join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md");
    let sections = code_map_sections(&doc);
    let mut files = Vec::new();
    for dir in ["crates", "testing", "xtask", "examples", "benches", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut missing = Vec::new();
    for file in &files {
        let path = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        // The demo's packages are package content, not project source.
        if path.starts_with("examples/packages/") {
            continue;
        }
        let section = sections
            .iter()
            .filter(|(dir, _)| path.starts_with(&format!("{dir}/")))
            .max_by_key(|(dir, _)| dir.len());
        match section {
            Some((dir, text)) => {
                let relative = &path[dir.len() + 1..];
                if !text.contains(relative) {
                    missing.push(format!("{path} (not named in the `{dir}` section)"));
                }
            }
            None => missing.push(format!("{path} (no code map section for its crate)")),
        }
    }
    assert!(
        missing.is_empty(),
        "docs/ARCHITECTURE.md's code map does not name: {missing:#?}"
    );
    for (dir, _) in &sections {
        assert!(
            root.join(dir).is_dir(),
            "the code map has a section for {dir}, which does not exist"
        );
    }
}
