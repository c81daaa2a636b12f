//! `real-corpus DIR…`: writes, to standard output, one JSON line per crate found in the given
//! directories of unpacked crates (a cargo registry cache such as
//! `$CARGO_HOME/registry/src/<index>/`), read from each crate's published `Cargo.toml`, sorted by
//! name and version. The output is `data/real-crates.jsonl`; see `marketplace_testing::real`.
//!
//! `real-corpus --universe DIR`: one JSON line per version in a cargo index cache
//! (`$CARGO_HOME/registry/index/<index>/.cache`), sorted by name, each crate's versions as the
//! index lists them. Gzipped (`gzip -9n`) it is `data/real-universe.jsonl.gz`.

use std::path::Path;
use std::process::ExitCode;

use marketplace_testing::real::RealCrate;

fn main() -> ExitCode {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir] = dirs.as_slice()
        && flag == "--universe"
    {
        return universe(Path::new(dir));
    }
    if dirs.is_empty() {
        eprintln!(
            "usage: real-corpus DIR… (directories of unpacked crates) | real-corpus --universe INDEX-CACHE"
        );
        return ExitCode::from(2);
    }
    let mut crates = Vec::new();
    for dir in &dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                eprintln!("real-corpus: cannot read {dir}: {e}");
                return ExitCode::FAILURE;
            }
        };
        for entry in entries.flatten() {
            let manifest = entry.path().join("Cargo.toml");
            match read(&manifest) {
                Ok(krate) => crates.push(krate),
                Err(e) => eprintln!("real-corpus: skipped {}: {e}", manifest.display()),
            }
        }
    }
    crates.sort_by(|a, b| {
        let version = |c: &RealCrate| marketplace_core::semver::Version::parse(&c.version).ok();
        (a.name.as_str(), version(a)).cmp(&(b.name.as_str(), version(b)))
    });
    crates.dedup_by(|a, b| a.name == b.name && a.version == b.version);
    for krate in &crates {
        match serde_json::to_string(krate) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("real-corpus: {}: {e}", krate.name);
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("real-corpus: {} crate versions", crates.len());
    ExitCode::SUCCESS
}

fn read(manifest: &Path) -> Result<RealCrate, String> {
    let text = std::fs::read_to_string(manifest).map_err(|e| e.to_string())?;
    RealCrate::from_cargo_toml(&text)
}

/// Every file under `dir` (a cargo index cache), recursively.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn universe(dir: &Path) -> ExitCode {
    let mut paths = Vec::new();
    if let Err(e) = files(dir, &mut paths) {
        eprintln!("real-corpus: cannot read {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let mut versions = Vec::new();
    for path in &paths {
        let parsed = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| marketplace_testing::real::versions_from_index_cache(&bytes));
        match parsed {
            Ok(found) => versions.extend(found),
            Err(e) => eprintln!("real-corpus: skipped {}: {e}", path.display()),
        }
    }
    // By name; each crate's versions keep the index's order.
    versions.sort_by(|a, b| a.name.cmp(&b.name));
    for version in &versions {
        match serde_json::to_string(version) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("real-corpus: {}: {e}", version.name);
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("real-corpus: {} versions", versions.len());
    ExitCode::SUCCESS
}
