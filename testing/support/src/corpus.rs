//! The deterministic synthetic corpus: realistic enough to exercise ranking, filters,
//! resolution and storage the way a real registry does, identical on every run for a seed.

use std::collections::BTreeMap;

use bytes::Bytes;
use marketplace_core::semver::{Version, VersionReq};
use marketplace_core::{
    ContentHash, PackageId, PackageMetadata, PackageRecord, PackageRef, SearchQuery, YankInfo,
};

/// Domain words: package names, keywords and half of the description words.
pub const WORDS: &[&str] = &[
    "web", "http", "server", "client", "async", "json", "yaml", "toml", "config", "parser", "cli",
    "terminal", "color", "log", "trace", "metrics", "cache", "queue", "stream", "file", "path",
    "watch", "archive", "zip", "crypto", "hash", "sign", "token", "auth", "session", "cookie",
    "router", "template", "render", "markdown", "html", "css", "image", "audio", "video", "graph",
    "tree", "map", "set", "vector", "matrix", "tensor", "model", "train", "infer", "sql", "query",
    "database", "pool", "migrate", "schema", "test", "mock", "bench", "fuzz", "lint", "format",
    "build", "deploy", "docker", "cloud", "storage", "bucket", "sync", "mirror", "proxy", "dns",
];

/// The eight categories.
pub const CATEGORIES: &[&str] = &[
    "web-programming",
    "command-line-interface",
    "database",
    "encoding",
    "cryptography",
    "development-tools",
    "filesystem",
    "network",
];

/// SplitMix64: small, fast and the same everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `0..n` (`n > 0`), as a `u64`.
    pub fn below_u64(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// `1..=n` drawn with a Zipf-like skew (`P(k) ∝ 1/k`).
    pub fn zipf(&mut self, n: usize) -> usize {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as usize).clamp(1, n)
    }

    fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len())]
    }
}

/// The pseudo-word of a rank: three syllables from sixteen (4,096 distinct words).
pub fn pseudo_word(rank: usize) -> String {
    const SYLLABLES: &[&str] = &[
        "ka", "lo", "mi", "ren", "tus", "va", "zor", "qui", "bel", "nor", "sa", "dri", "fen",
        "gol", "pa", "xu",
    ];
    (0..3)
        .map(|i| SYLLABLES[(rank >> (4 * i)) % SYLLABLES.len()])
        .collect()
}

/// The corpus of `packages` packages: every version as a record, in registration order
/// (dependencies are always registered before their dependents).
///
/// Names are two domain words and a number; descriptions 10–40 words (half domain words, half
/// Zipf-skewed pseudo-words); 1–5 keywords; 1–2 of 8 categories; Zipf-distributed downloads;
/// 1–4 versions; 1–5 dependencies on earlier packages for two packages in three; about 2% of
/// versions yanked (never a package's only version).
pub fn corpus(packages: usize, seed: u64) -> Vec<PackageRecord> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(packages * 5 / 2);
    let mut latest: Vec<(PackageRef, Version)> = Vec::with_capacity(packages);
    for n in 0..packages {
        let name = format!("{}-{}-{n}", rng.word(), rng.word());
        let package: PackageRef = format!("ns{}/{name}", n % 500)
            .parse()
            .expect("corpus names parse");
        let words = 10 + rng.below(31);
        let description: Vec<String> = (0..words)
            .map(|_| {
                if rng.below(2) == 0 {
                    rng.word().to_owned()
                } else {
                    pseudo_word(rng.zipf(4096))
                }
            })
            .collect();
        let mut keywords: Vec<String> = (0..1 + rng.below(5))
            .map(|_| rng.word().to_owned())
            .collect();
        keywords.sort();
        keywords.dedup();
        let mut categories: Vec<String> = (0..1 + rng.below(2))
            .map(|_| CATEGORIES[rng.below(CATEGORIES.len())].to_owned())
            .collect();
        categories.sort();
        categories.dedup();
        let mut dependencies = BTreeMap::new();
        if n > 0 && rng.below(3) != 0 {
            for _ in 0..1 + rng.below(5) {
                let (dep, version) = &latest[rng.below(latest.len())];
                let req = VersionReq::parse(&format!("^{}.{}", version.major, version.minor))
                    .expect("requirement parses");
                dependencies.insert(dep.clone(), req);
            }
        }
        let downloads = 10_000_000 / rng.zipf(packages.max(1)) as u64;
        let versions = 1 + rng.below(4);
        let mut version = Version::new(1, 0, 0);
        for v in 0..versions {
            let id = package.at(version.clone());
            let mut m = PackageMetadata::new(
                id.clone(),
                description.join(" "),
                ContentHash::sha256(id.to_string().as_bytes()),
                1_000 + rng.below(100_000) as u64,
            );
            m.keywords.clone_from(&keywords);
            m.categories.clone_from(&categories);
            m.dependencies.clone_from(&dependencies);
            m.authors = vec![format!("Author {} <a{}@example.com>", n % 97, n % 97)];
            m.license = Some("MIT OR Apache-2.0".parse().expect("license parses"));
            // A fixed time: the corpus is the same on every call, not only within a second.
            m.published_at = published_at();
            let mut record = PackageRecord::new(m);
            record.downloads = downloads;
            if v > 0 && rng.below(50) == 0 {
                record.yanked = Some(YankInfo::new("broken build", published_at()));
            }
            out.push(record);
            version = if rng.below(3) == 0 {
                Version::new(version.major, version.minor + 1, 0)
            } else {
                Version::new(version.major, version.minor, version.patch + 1)
            };
        }
        let last = out.last().expect("a version").metadata.id.version.clone();
        latest.push((package, last));
    }
    out
}

/// W1's queries: 200, one or two domain words, limit 20; with `filters`, each also filtered by
/// a category, and every third by a minimum download count.
pub fn queries(filters: bool) -> Vec<SearchQuery> {
    let mut rng = Rng::new(7);
    (0..200)
        .map(|i| {
            let text = if i % 2 == 0 {
                rng.word().to_owned()
            } else {
                format!("{} {}", rng.word(), rng.word())
            };
            let mut q = SearchQuery::text(text);
            q.limit = 20;
            let category = CATEGORIES[rng.below(CATEGORIES.len())];
            if filters {
                q.categories = vec![category.to_owned()];
                if i % 3 == 0 {
                    q.min_downloads = Some(1_000);
                }
            }
            q
        })
        .collect()
}

/// The peer workload of the original project: a vocabulary of 512 three-syllable pseudo-words;
/// packages named from two of them; 12-word descriptions; 3 keywords; 1 of 8 categories.
pub fn peer_corpus(packages: usize) -> Vec<PackageRecord> {
    let mut rng = Rng::new(512);
    (0..packages)
        .map(|n| {
            let word = |rng: &mut Rng| pseudo_word(rng.below(512) * 8);
            let name = format!("{}-{}-{n}", word(&mut rng), word(&mut rng));
            let id: PackageId = format!("{name}@1.0.0").parse().expect("peer names parse");
            let description: Vec<String> = (0..12).map(|_| word(&mut rng)).collect();
            let mut m = PackageMetadata::new(
                id,
                description.join(" "),
                ContentHash::sha256(name.as_bytes()),
                1_000,
            );
            m.keywords = (0..3).map(|_| word(&mut rng)).collect();
            m.keywords.sort();
            m.keywords.dedup();
            m.categories = vec![CATEGORIES[rng.below(CATEGORIES.len())].to_owned()];
            PackageRecord::new(m)
        })
        .collect()
}

/// The peer queries: 200, alternating one word and two words (which our engine treats as
/// either-word, the peer's OR), every tenth with a category filter, limit 20.
pub fn peer_queries() -> Vec<SearchQuery> {
    let mut rng = Rng::new(1024);
    (0..200)
        .map(|i| {
            let word = |rng: &mut Rng| pseudo_word(rng.below(512) * 8);
            let text = if i % 2 == 0 {
                word(&mut rng)
            } else {
                format!("{} {}", word(&mut rng), word(&mut rng))
            };
            let mut q = SearchQuery::text(text);
            q.limit = 20;
            if i % 10 == 0 {
                q.categories = vec![CATEGORIES[rng.below(CATEGORIES.len())].to_owned()];
            }
            q
        })
        .collect()
}

/// The `marketplace.toml` of a corpus package (name, version, namespace, description, MIT,
/// keywords, categories, dependencies).
pub fn manifest(metadata: &PackageMetadata) -> String {
    let id = &metadata.id;
    let description = toml::Value::String(metadata.description.clone()).to_string();
    let mut manifest = format!(
        "[package]\nname = \"{}\"\nversion = \"{}\"\ndescription = {description}\nlicense = \"MIT\"\n",
        id.name, id.version
    );
    if let Some(ns) = &id.namespace {
        manifest.push_str(&format!("namespace = \"{ns}\"\n"));
    }
    if !metadata.keywords.is_empty() {
        let keywords: Vec<String> = metadata
            .keywords
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect();
        manifest.push_str(&format!("keywords = [{}]\n", keywords.join(", ")));
    }
    if !metadata.categories.is_empty() {
        let categories: Vec<String> = metadata
            .categories
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect();
        manifest.push_str(&format!("categories = [{}]\n", categories.join(", ")));
    }
    manifest.push_str("[dependencies]\n");
    for (dep, req) in &metadata.dependencies {
        manifest.push_str(&format!("\"{dep}\" = \"{req}\"\n"));
    }
    manifest
}

/// The README of a corpus package: its id and `padding` bytes.
pub fn readme(metadata: &PackageMetadata, padding: usize) -> String {
    format!("{}\n{}\n", metadata.id, "x".repeat(padding))
}

/// A valid package archive (`.tar.gz`) for `metadata`: its [`manifest`] and [`readme`].
pub fn archive(metadata: &PackageMetadata, padding: usize) -> Bytes {
    let readme = readme(metadata, padding);
    tar_gz(metadata, &[("README.md", readme.as_bytes())])
}

/// A valid package archive for `metadata` about `size` bytes long however it is compressed: its
/// [`manifest`], a short [`readme`] and `data.bin`, `size` pseudo-random bytes (seeded by the
/// id) that gzip cannot shrink. For transfer workloads, where the bytes on the wire count.
pub fn blob_archive(metadata: &PackageMetadata, size: usize) -> Bytes {
    let mut rng = Rng::new(
        metadata
            .id
            .to_string()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            }),
    );
    let mut blob = Vec::with_capacity(size + 8);
    while blob.len() < size {
        blob.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    blob.truncate(size);
    let readme = readme(metadata, 0);
    tar_gz(
        metadata,
        &[("README.md", readme.as_bytes()), ("data.bin", &blob)],
    )
}

/// A valid package archive for `metadata`: its [`manifest`] and `files` (name, body), for
/// packages with content of a test's choosing (a readme of its own, say).
pub fn archive_with(metadata: &PackageMetadata, files: &[(&str, &[u8])]) -> Bytes {
    tar_gz(metadata, files)
}

/// `metadata`'s manifest and `files` (name, body) under `name-version/`, tarred and gzipped.
fn tar_gz(metadata: &PackageMetadata, files: &[(&str, &[u8])]) -> Bytes {
    use std::io::Write as _;
    let id = &metadata.id;
    let manifest = manifest(metadata);
    let top = format!("{}-{}", id.name, id.version);
    let mut builder = tar::Builder::new(Vec::new());
    let all =
        std::iter::once(("marketplace.toml", manifest.as_bytes())).chain(files.iter().copied());
    for (name, body) in all {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("{top}/{name}"), body)
            .expect("tar in memory");
    }
    let tar = builder.into_inner().expect("tar in memory");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip in memory");
    Bytes::from(gz.finish().expect("gzip in memory"))
}

/// A chain of `n` packages, each depending on the next two (so the graph of the first holds all
/// `n`), each in three versions: the install workload W4.
pub fn dependency_chain(n: usize) -> Vec<PackageMetadata> {
    let mut out = Vec::new();
    for i in (0..n).rev() {
        for minor in 0..3 {
            let id: PackageId = format!("chain/pkg-{i}@1.{minor}.0")
                .parse()
                .expect("chain ids");
            let mut m = PackageMetadata::new(
                id,
                format!("Link {i} of the dependency chain"),
                ContentHash::sha256(b""),
                0,
            );
            for j in [i + 1, i + 2] {
                if j < n {
                    m.dependencies.insert(
                        format!("chain/pkg-{j}").parse().expect("chain ref"),
                        VersionReq::parse("^1.1").expect("requirement"),
                    );
                }
            }
            out.push(m);
        }
    }
    out
}

/// When every corpus version was published (and yanked): 2026-05-28, a fixed time.
fn published_at() -> marketplace_core::time::OffsetDateTime {
    marketplace_core::time::OffsetDateTime::from_unix_timestamp(1_780_000_000)
        .expect("a valid timestamp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_deterministic_valid_and_ordered() {
        let a = corpus(500, 1);
        assert_eq!(a, corpus(500, 1));
        assert!(a.len() >= 500);
        let mut seen = std::collections::HashSet::new();
        for r in &a {
            r.metadata.validate().unwrap();
            for dep in r.metadata.dependencies.keys() {
                assert!(
                    seen.contains(&dep.canonical()),
                    "{dep} comes before its dependents"
                );
            }
            seen.insert(r.metadata.id.package().canonical());
        }
        assert!(a.iter().any(|r| r.is_yanked()));
        assert_eq!(queries(false).len(), 200);
        assert_eq!(peer_corpus(100).len(), 100);
    }

    #[test]
    fn archives_pass_the_package_rules() {
        let record = &corpus(3, 2)[0];
        let bytes = archive(&record.metadata, 10);
        let info = marketplace_package::inspect(bytes.clone(), &Default::default()).unwrap();
        assert_eq!(info.id(), &record.metadata.id);
    }
}
