//! Builders for the metadata and records the suites use.

use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    ContentHash, HashAlgorithm, Name, PackageId, PackageMetadata, PackageRecord, PublicKey,
    RenamedDependency, Signature, YankInfo, parse_requirement,
};

/// Metadata for `id` (`[ns/]name@version`) with the given dependencies (`("name", "^1")`, or
/// `("alias=name", "^1")` for a dependency renamed to `alias`).
///
/// The checksum is derived from the id, so distinct ids get distinct checksums.
///
/// # Panics
/// If `id` or a dependency does not parse: fixtures are written by the kit's authors.
pub fn package(id: &str, deps: &[(&str, &str)]) -> PackageMetadata {
    let id: PackageId = id.parse().expect("fixture id parses");
    let mut m = PackageMetadata::new(
        id.clone(),
        format!("The {} package, version {}.", id.name, id.version),
        ContentHash::sha256(id.to_string().as_bytes()),
        1024,
    );
    m.authors = vec!["Conformance Kit <kit@example.com>".into()];
    m.license = Some("MIT".parse().expect("MIT is a license"));
    // A timestamp with sub-second precision: backends must store it exactly (it is signed).
    m.published_at = OffsetDateTime::from_unix_timestamp_nanos(1_790_000_000_123_456_789)
        .expect("fixture timestamp is in range");
    for (name, req) in deps {
        let requirement = parse_requirement(req).expect("fixture requirement parses");
        // `alias=package` declares a renamed dependency.
        match name.split_once('=') {
            Some((alias, package)) => {
                m.renamed_dependencies.insert(
                    Name::new(alias).expect("fixture alias parses"),
                    RenamedDependency {
                        package: package.parse().expect("fixture dependency parses"),
                        requirement,
                    },
                );
            }
            None => {
                m.dependencies.insert(
                    name.parse().expect("fixture dependency parses"),
                    requirement,
                );
            }
        }
    }
    m
}

/// A search record: `id` with a description, keywords, categories and downloads.
pub fn record(
    id: &str,
    description: &str,
    keywords: &[&str],
    categories: &[&str],
    downloads: u64,
) -> PackageRecord {
    let mut m = package(id, &[]);
    m.description = description.to_owned();
    m.keywords = keywords.iter().map(|s| (*s).to_owned()).collect();
    m.categories = categories.iter().map(|s| (*s).to_owned()).collect();
    PackageRecord::new(m).with_downloads(downloads)
}

/// `record` marked as yanked.
pub fn yanked(mut record: PackageRecord) -> PackageRecord {
    record.yanked = Some(YankInfo::new(
        "conformance kit",
        OffsetDateTime::from_unix_timestamp(1_790_000_100).expect("in range"),
    ));
    record
}

/// Metadata for `id` with every field set to a value unlike the defaults: several authors, a
/// compound license, both URLs, keywords, categories, dependencies across namespaces with
/// compound requirements, a checksum of `algorithm`, a size beyond 32 bits, a signature and a
/// sub-second timestamp. Every field must round-trip exactly.
///
/// # Panics
/// If `id` does not parse: fixtures are written by the kit's authors.
pub fn full_package(id: &str, algorithm: HashAlgorithm) -> PackageMetadata {
    let mut m = package(
        id,
        &[
            ("other/http", ">=1.2, <3"),
            ("util", "~0.4.1"),
            ("util_03=util", "^0.3"),
        ],
    );
    // Distinct ids get distinct digests: the id's SHA-256, repeated to the algorithm's length.
    let seed = ContentHash::sha256(m.id.to_string().as_bytes());
    let digest: Vec<u8> = seed
        .digest()
        .iter()
        .cycle()
        .take(algorithm.digest_len())
        .copied()
        .collect();
    m.checksum = ContentHash::new(algorithm, digest).expect("digest has the algorithm's length");
    m.size = 5_000_000_123;
    m.authors = vec![
        "Ada Lovelace <ada@example.com>".into(),
        "Grace Hopper".into(),
        "Conformance Kit <kit@example.com>".into(),
    ];
    m.license = Some("Apache-2.0 OR MIT".parse().expect("a license expression"));
    m.repository = Some(
        marketplace_core::parse_url("repository", "https://example.com/src/full.git")
            .expect("a URL"),
    );
    m.homepage = Some(
        marketplace_core::parse_url("homepage", "https://example.com/full?tab=readme")
            .expect("a URL"),
    );
    m.keywords = vec!["web".into(), "http-server".into(), "async".into()];
    m.categories = vec!["network-programming".into(), "web".into()];
    // An extension kept byte for byte: odd spacing, escapes, non-ASCII text, and 64 KiB more
    // than a narrow column holds.
    m.extensions.insert(
        "cargo".into(),
        format!(
            "{{ \"features\":{{\"std\": [\"dep:alloc\"]}},\n\t\"note\": \"café \\u00e9 \\\"q\\\"\", \"pad\": \"{}\"}}",
            "x".repeat(64 * 1024)
        ),
    );
    m.extensions
        .insert("zz-other".into(), "[1, 2.5, null]".into());
    m.signature = Some(Signature {
        public_key: PublicKey::ed25519([7u8; 32]).expect("32 bytes"),
        bytes: (0u8..64).collect(),
    });
    m
}
