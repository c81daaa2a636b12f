//! Real packages: the metadata of a few hundred published crates, read from the `Cargo.toml`
//! files of the crates themselves (`data/real-crates.jsonl`, made by the `real-corpus` binary
//! from a cargo registry cache), the relevance set judged over them, and a universe of every
//! published version of those crates with their dependencies and yanks, as cargo's index has
//! them (`data/real-universe.jsonl.gz`, made from a cargo index cache), for resolution.
//!
//! The records are what those crates say about themselves — names, versions, descriptions,
//! keywords, categories, licenses as written, authors, links and their normal dependencies
//! (optional and target-specific ones left out) — so that imports, ranking and resolution are
//! tested on what real registries hold rather than on what a generator thinks they hold.

use std::collections::BTreeMap;

use marketplace_core::semver::{Version, VersionReq};
use marketplace_core::{
    ContentHash, License, Name, PackageId, PackageMetadata, PackageRecord, PackageRef,
    RenamedDependency, now_seconds,
};
use serde::{Deserialize, Serialize};

/// The checked-in records, one JSON object per line.
const RECORDS: &str = include_str!("../data/real-crates.jsonl");

/// The checked-in universe, gzipped JSON lines.
const UNIVERSE: &[u8] = include_bytes!("../data/real-universe.jsonl.gz");

/// One published version as a package index lists it: what resolution reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealVersion {
    /// The package's name.
    pub name: String,
    /// The version.
    pub vers: String,
    /// Whether it is yanked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub yanked: bool,
    /// Its normal, non-optional, platform-independent dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<RealDependency>,
}

/// Every version of the real universe, in file order (by name, then as the index lists them).
pub fn real_universe() -> Vec<RealVersion> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(UNIVERSE)
        .read_to_string(&mut text)
        .expect("data/real-universe.jsonl.gz decompresses");
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("data/real-universe.jsonl.gz line {}: {e}", n + 1);
            })
        })
        .collect()
}

impl RealVersion {
    /// The version as metadata a registry holds (no archive behind it: the hash is of the index
    /// line), renamed dependencies and dependencies on another series of itself included, or
    /// why the marketplace's rules refuse it (its name, version, a requirement, or a
    /// dependency on itself).
    pub fn metadata(&self) -> Result<PackageMetadata, String> {
        let name = Name::new(&self.name).map_err(|e| e.to_string())?;
        let version = Version::parse(&self.vers).map_err(|e| format!("{}: {e}", self.vers))?;
        let id = PackageId::new(None, name, version);
        let line = serde_json::to_string(self).map_err(|e| e.to_string())?;
        let mut metadata = PackageMetadata::new(
            id,
            String::new(),
            ContentHash::sha256(line.as_bytes()),
            line.len() as u64,
        );
        for dependency in &self.deps {
            let package: PackageRef = dependency
                .package()
                .parse()
                .map_err(|e: marketplace_core::Error| e.to_string())?;
            let requirement = VersionReq::parse(&dependency.req)
                .map_err(|e| format!("{} {:?}: {e}", dependency.name, dependency.req))?;
            match &dependency.package {
                Some(real) if *real != dependency.name => {
                    let alias = Name::new(&dependency.name).map_err(|e| e.to_string())?;
                    metadata.renamed_dependencies.insert(
                        alias,
                        RenamedDependency {
                            package,
                            requirement,
                        },
                    );
                }
                _ => {
                    metadata.dependencies.insert(package, requirement);
                }
            }
        }
        metadata.validate().map_err(|e| e.to_string())?;
        Ok(metadata)
    }
}

/// The versions in one file of a cargo index cache (`.cache/…/NAME`): after a small header, each
/// entry is a version string and the version's index line (JSON), each ended by a NUL byte.
/// Entries that are not JSON objects are skipped; so are dependencies that are optional,
/// platform-specific or not normal (dev, build).
pub fn versions_from_index_cache(bytes: &[u8]) -> Result<Vec<RealVersion>, String> {
    #[derive(Deserialize)]
    struct Line {
        name: String,
        vers: String,
        #[serde(default)]
        yanked: bool,
        #[serde(default)]
        deps: Vec<LineDep>,
    }
    #[derive(Deserialize)]
    struct LineDep {
        name: String,
        req: String,
        #[serde(default)]
        optional: bool,
        #[serde(default)]
        target: Option<String>,
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        package: Option<String>,
    }
    let mut versions = Vec::new();
    for entry in bytes.split(|b| *b == 0) {
        if !entry.starts_with(b"{") {
            continue;
        }
        let line: Line = serde_json::from_slice(entry).map_err(|e| e.to_string())?;
        let deps = line
            .deps
            .into_iter()
            .filter(|d| {
                !d.optional && d.target.is_none() && d.kind.as_deref().is_none_or(|k| k == "normal")
            })
            .map(|d| RealDependency {
                name: d.name,
                package: d.package,
                req: d.req,
            })
            .collect();
        versions.push(RealVersion {
            name: line.name,
            vers: line.vers,
            yanked: line.yanked,
            deps,
        });
    }
    Ok(versions)
}

/// One published version of a real crate, as its `Cargo.toml` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealCrate {
    /// The crate's name, as written.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its description (empty when it has none).
    #[serde(default)]
    pub description: String,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// crates.io category slugs.
    #[serde(default)]
    pub categories: Vec<String>,
    /// The license expression as written (none when the crate names a license file instead).
    #[serde(default)]
    pub license: Option<String>,
    /// Authors.
    #[serde(default)]
    pub authors: Vec<String>,
    /// Home page.
    #[serde(default)]
    pub homepage: Option<String>,
    /// Repository.
    #[serde(default)]
    pub repository: Option<String>,
    /// Normal, non-optional, platform-independent dependencies.
    #[serde(default)]
    pub dependencies: Vec<RealDependency>,
}

/// A dependency as a `Cargo.toml` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealDependency {
    /// The name the dependent uses for it (the key of its `[dependencies]` entry).
    pub name: String,
    /// The package it really is, when renamed (`package = "…"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The version requirement, as written.
    pub req: String,
}

impl RealDependency {
    /// The package depended on (the real name, not a rename).
    pub fn package(&self) -> &str {
        self.package.as_deref().unwrap_or(&self.name)
    }
}

/// Every checked-in real crate version, in file order (by name, then version).
pub fn real_crates() -> Vec<RealCrate> {
    RECORDS
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("data/real-crates.jsonl line {}: {e}", n + 1);
            })
        })
        .collect()
}

/// The newest version of each real crate (the versions a search returns).
pub fn newest_real_crates() -> Vec<RealCrate> {
    let mut newest: BTreeMap<String, RealCrate> = BTreeMap::new();
    for krate in real_crates() {
        let key = krate.name.to_lowercase().replace('_', "-");
        let newer = newest.get(&key).is_none_or(|held| {
            match (
                Version::parse(&krate.version),
                Version::parse(&held.version),
            ) {
                (Ok(new), Ok(old)) => new > old,
                _ => false,
            }
        });
        if newer {
            newest.insert(key, krate);
        }
    }
    newest.into_values().collect()
}

fn toml_string(text: &str) -> String {
    // A TOML basic string is a JSON string minus a few escapes TOML lacks; serde_json writes
    // none of those for the text a manifest holds (it escapes only quotes, backslashes and
    // control characters, which TOML escapes the same way, except \u for the rarest).
    serde_json::to_string(text).unwrap_or_default()
}

fn toml_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| toml_string(i)).collect();
    format!("[{}]", items.join(", "))
}

impl RealCrate {
    /// The crate as a `marketplace.toml`: what an import writes for it. Every field is carried
    /// over as written, so that what the marketplace refuses is the marketplace's judgement,
    /// not the conversion's.
    pub fn manifest(&self) -> String {
        let mut out = format!(
            "[package]\nname = {}\nversion = {}\ndescription = {}\n",
            toml_string(&self.name),
            toml_string(&self.version),
            toml_string(&self.description),
        );
        if !self.authors.is_empty() {
            out.push_str(&format!("authors = {}\n", toml_list(&self.authors)));
        }
        if let Some(license) = &self.license {
            out.push_str(&format!("license = {}\n", toml_string(license)));
        }
        if !self.keywords.is_empty() {
            out.push_str(&format!("keywords = {}\n", toml_list(&self.keywords)));
        }
        if !self.categories.is_empty() {
            out.push_str(&format!("categories = {}\n", toml_list(&self.categories)));
        }
        if let Some(homepage) = &self.homepage {
            out.push_str(&format!("homepage = {}\n", toml_string(homepage)));
        }
        if let Some(repository) = &self.repository {
            out.push_str(&format!("repository = {}\n", toml_string(repository)));
        }
        if !self.dependencies.is_empty() {
            out.push_str("\n[dependencies]\n");
            for dependency in &self.dependencies {
                let line = match &dependency.package {
                    Some(package) if *package != dependency.name => format!(
                        "{} = {{ package = {}, version = {} }}\n",
                        toml_string(&dependency.name),
                        toml_string(package),
                        toml_string(&dependency.req)
                    ),
                    _ => format!(
                        "{} = {}\n",
                        toml_string(&dependency.name),
                        toml_string(&dependency.req)
                    ),
                };
                out.push_str(&line);
            }
        }
        out
    }

    /// The crate as a search record (no archive behind it: the hash is of the manifest), or why
    /// the marketplace's rules refuse it. Dependencies whose requirement does not parse are left
    /// out (a search record does not resolve).
    pub fn record(&self) -> Result<PackageRecord, String> {
        let name = Name::new(&self.name).map_err(|e| e.to_string())?;
        let version = Version::parse(&self.version).map_err(|e| e.to_string())?;
        let id = PackageId::new(None, name, version);
        let manifest = self.manifest();
        let mut metadata = PackageMetadata::new(
            id,
            self.description.clone(),
            ContentHash::sha256(manifest.as_bytes()),
            manifest.len() as u64,
        );
        metadata.keywords = self.keywords.clone();
        metadata.categories = self.categories.clone();
        metadata.authors = self.authors.clone();
        metadata.license = match &self.license {
            Some(text) => Some(License::new(text).map_err(|e| e.to_string())?),
            None => None,
        };
        metadata.published_at = now_seconds();
        for dependency in &self.dependencies {
            let (Ok(package), Ok(req)) = (
                dependency.package().parse::<PackageRef>(),
                VersionReq::parse(&dependency.req),
            ) else {
                continue;
            };
            metadata.dependencies.insert(package, req);
        }
        Ok(PackageRecord::new(metadata))
    }

    /// Reads the crate from the text of its published (normalised) `Cargo.toml`.
    pub fn from_cargo_toml(text: &str) -> Result<Self, String> {
        let value: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let package = value
            .get("package")
            .and_then(toml::Value::as_table)
            .ok_or("no [package] table")?;
        let text_of = |key: &str| package.get(key).and_then(toml::Value::as_str);
        let list_of = |key: &str| -> Vec<String> {
            package
                .get(key)
                .and_then(toml::Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut dependencies = Vec::new();
        if let Some(table) = value.get("dependencies").and_then(toml::Value::as_table) {
            for (key, spec) in table {
                let (req, package, optional) = match spec {
                    toml::Value::String(req) => (Some(req.clone()), None, false),
                    toml::Value::Table(t) => (
                        t.get("version")
                            .and_then(toml::Value::as_str)
                            .map(str::to_owned),
                        t.get("package")
                            .and_then(toml::Value::as_str)
                            .map(str::to_owned),
                        t.get("optional")
                            .and_then(toml::Value::as_bool)
                            .unwrap_or(false),
                    ),
                    _ => (None, None, false),
                };
                if optional {
                    continue;
                }
                if let Some(req) = req {
                    dependencies.push(RealDependency {
                        name: key.clone(),
                        package,
                        req,
                    });
                }
            }
        }
        Ok(RealCrate {
            name: text_of("name").ok_or("no package name")?.to_owned(),
            version: text_of("version").ok_or("no package version")?.to_owned(),
            description: text_of("description").unwrap_or_default().trim().to_owned(),
            keywords: list_of("keywords"),
            categories: list_of("categories"),
            license: text_of("license").map(str::to_owned),
            authors: list_of("authors"),
            homepage: text_of("homepage").map(str::to_owned),
            repository: text_of("repository").map(str::to_owned),
            dependencies,
        })
    }
}

/// One judged query of the relevance set: what a user typed and the package they meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    /// The query text.
    pub query: &'static str,
    /// The package a user typing it is looking for.
    pub expected: &'static str,
}

const fn judged(query: &'static str, expected: &'static str) -> Judged {
    Judged { query, expected }
}

/// The relevance set over [`newest_real_crates`]: queries as people type them (a need in a
/// few words, a name half remembered, a format), each with the one package they mean. Judged
/// by hand from the crates' own descriptions; no query is the expected package's exact name.
pub const RELEVANCE: &[Judged] = &[
    judged("json serialization", "serde_json"),
    judged("serialization framework", "serde"),
    judged("command line argument parser", "clap"),
    judged("async runtime", "tokio"),
    judged("http client", "reqwest"),
    judged("regular expressions", "regex"),
    judged("random number generation", "rand"),
    judged("date and time", "chrono"),
    judged("derive error types", "thiserror"),
    judged("flexible error handling", "anyhow"),
    judged("logging facade", "log"),
    judged("application level tracing", "tracing"),
    judged("data parallelism", "rayon"),
    judged("statistics driven benchmarking", "criterion"),
    judged("temporary files and directories", "tempfile"),
    judged("recursive directory walk", "walkdir"),
    judged("glob patterns matching", "globset"),
    judged("memory mapped files", "memmap2"),
    judged("semantic version parsing", "semver"),
    judged("property based testing", "proptest"),
    judged("full text search engine", "tantivy"),
    judged("sqlite bindings", "rusqlite"),
    judged("toml parser", "toml"),
    judged("tar archives", "tar"),
    judged("deflate gzip compression", "flate2"),
    judged("zstandard compression", "zstd"),
    judged("sha-2 hash functions", "sha2"),
    judged("base64 encode decode", "base64"),
    judged("url parsing", "url"),
    judged("uuid generation", "uuid"),
    judged("lock free concurrency tools", "crossbeam"),
    judged("progress bar", "indicatif"),
    judged("graph data structure", "petgraph"),
    judged("hash map insertion order", "indexmap"),
    judged("small vector optimization inline", "smallvec"),
    judged("tls library", "rustls"),
    judged("http server framework tower", "tower-http"),
    judged("http types", "http"),
    judged("parser combinators", "nom"),
    judged("ed25519 signatures", "ed25519-dalek"),
    judged("crc32 checksum", "crc32fast"),
    judged("version solving algorithm", "pubgrub"),
    judged("spdx license expressions", "spdx"),
    judged("iterator adaptors", "itertools"),
    judged("byte buffers", "bytes"),
    judged("futures and streams", "futures"),
    judged("string similarity metrics", "strsim"),
    judged("case conversion", "heck"),
    judged("human friendly durations", "humantime"),
    judged("object storage s3", "object_store"),
];

/// How a search engine does on [`RELEVANCE`].
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// Queries whose expected package is in the top 3.
    pub top3: usize,
    /// Mean reciprocal rank over the top 10.
    pub mrr: f64,
    /// What each query outside the top 3 wanted and got (its first five hits).
    pub misses: Vec<String>,
}

impl Judgement {
    /// Whether at least 90% of the queries have their package in the top 3.
    pub fn meets_target(&self) -> bool {
        self.top3 * 10 >= RELEVANCE.len() * 9
    }
}

/// The records of [`real_crates`] that the marketplace's rules accept, for a search index.
pub fn real_records() -> Vec<PackageRecord> {
    real_crates()
        .iter()
        .filter_map(|krate| krate.record().ok())
        .collect()
}

/// Runs every query of [`RELEVANCE`] (top 10) on `engine`, which holds [`real_records`].
pub async fn judge(
    engine: &dyn marketplace_core::SearchEngine,
) -> marketplace_core::Result<Judgement> {
    let mut judgement = Judgement {
        top3: 0,
        mrr: 0.0,
        misses: Vec::new(),
    };
    for judged in RELEVANCE {
        let query = marketplace_core::SearchQuery::text(judged.query).with_limit(10);
        let ranked: Vec<String> = engine
            .search(&query)
            .await?
            .iter()
            .map(|hit| hit.id.name.to_string())
            .collect();
        let rr = reciprocal_rank(&ranked, judged.expected);
        judgement.mrr += rr / RELEVANCE.len() as f64;
        if rr >= 1.0 / 3.0 {
            judgement.top3 += 1;
        } else {
            judgement.misses.push(format!(
                "{:?} wants {}, got {:?}",
                judged.query,
                judged.expected,
                &ranked[..ranked.len().min(5)]
            ));
        }
    }
    Ok(judgement)
}

/// Reciprocal rank of `expected` in `ranked` (1 for first, 1/2 for second, 0 when absent).
pub fn reciprocal_rank(ranked: &[String], expected: &str) -> f64 {
    let canonical = |s: &str| s.to_lowercase().replace('_', "-");
    let expected = canonical(expected);
    ranked
        .iter()
        .position(|name| canonical(name) == expected)
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}
