//! What the index stores per version, spelled out here and versioned: the fields it searches,
//! filters, sorts, shows and re-indexes from — nothing else (no signature, no checksum), so a
//! hit loads a small record.
//!
//! This is the crate's own encoding, not the core's serde form of `PackageRecord`, so a change to
//! a core type cannot change what is on disk unnoticed. Documents written before the encoding
//! was versioned (the core's `PackageRecord` form, no `"v"`) still read; new documents say
//! `"v": 2` (version 1 had no dependencies; its documents read with none). A document from a
//! newer encoding is refused (the index is derived: rebuild it).

use marketplace_core::time::OffsetDateTime;
use marketplace_core::time::format_description::well_known::Rfc3339;
use marketplace_core::{PackageId, PackageRecord, SearchResult};
use serde::{Deserialize, Serialize};

/// The encoding version this library writes.
pub(crate) const ENCODING: u32 = 2;

/// One indexed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) id: PackageId,
    pub(crate) description: String,
    pub(crate) keywords: Vec<String>,
    pub(crate) categories: Vec<String>,
    pub(crate) authors: Vec<String>,
    pub(crate) license: Option<String>,
    pub(crate) published_at: OffsetDateTime,
    pub(crate) downloads: u64,
    pub(crate) yanked: bool,
    /// The canonical keys of the packages this version depends on (what counts dependents).
    pub(crate) dependencies: Vec<String>,
}

impl From<&PackageRecord> for Stored {
    fn from(r: &PackageRecord) -> Self {
        let m = &r.metadata;
        Stored {
            id: m.id.clone(),
            description: m.description.clone(),
            keywords: m.keywords.clone(),
            categories: m.categories.clone(),
            authors: m.authors.clone(),
            license: m.license.as_ref().map(ToString::to_string),
            published_at: m.published_at,
            downloads: r.downloads,
            yanked: r.is_yanked(),
            // Each package once, renamed dependencies included.
            dependencies: m
                .all_dependencies()
                .map(|(p, _)| p.canonical())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        }
    }
}

impl Stored {
    /// A search hit for this version.
    pub(crate) fn hit(&self, score: f32, highlights: Vec<String>) -> SearchResult {
        let mut hit = SearchResult::new(self.id.clone(), score);
        hit.description.clone_from(&self.description);
        hit.keywords.clone_from(&self.keywords);
        hit.categories.clone_from(&self.categories);
        hit.downloads = self.downloads;
        hit.yanked = self.yanked;
        hit.highlights = highlights;
        hit
    }
}

/// Versions 1 and 2 (2 added `dependencies`).
#[derive(Serialize, Deserialize)]
struct StoredV1 {
    v: u32,
    id: String,
    description: String,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    authors: Vec<String>,
    #[serde(default)]
    license: Option<String>,
    /// Unix seconds (what sorting by recency uses).
    published: i64,
    downloads: u64,
    yanked: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dependencies: Vec<String>,
}

/// Documents from before the encoding was versioned: the core's `PackageRecord` form, of which
/// only the fields the index uses are read.
#[derive(Deserialize)]
struct Legacy {
    metadata: LegacyMetadata,
    #[serde(default)]
    yanked: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    downloads: u64,
}

#[derive(Deserialize)]
struct LegacyMetadata {
    id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    authors: Vec<String>,
    #[serde(default)]
    license: Option<String>,
    published_at: String,
    #[serde(default)]
    dependencies: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AnyVersion {
    V1(StoredV1),
    Legacy(Legacy),
}

fn parse_id(text: &str) -> Result<PackageId, String> {
    text.parse()
        .map_err(|e: marketplace_core::Error| format!("id: {e}"))
}

/// The stored text of one version.
pub(crate) fn encode(stored: &Stored) -> Result<String, String> {
    serde_json::to_string(&StoredV1 {
        v: ENCODING,
        id: stored.id.to_string(),
        description: stored.description.clone(),
        keywords: stored.keywords.clone(),
        categories: stored.categories.clone(),
        authors: stored.authors.clone(),
        license: stored.license.clone(),
        published: stored.published_at.unix_timestamp(),
        downloads: stored.downloads,
        yanked: stored.yanked,
        dependencies: stored.dependencies.clone(),
    })
    .map_err(|e| e.to_string())
}

/// One version from its stored text; `Err` says what does not parse.
pub(crate) fn decode(json: &str) -> Result<Stored, String> {
    match serde_json::from_str(json).map_err(|e| e.to_string())? {
        AnyVersion::V1(s) => {
            if s.v > ENCODING {
                return Err(format!(
                    "encoding version {} is newer than the {ENCODING} this library reads",
                    s.v
                ));
            }
            Ok(Stored {
                id: parse_id(&s.id)?,
                description: s.description,
                keywords: s.keywords,
                categories: s.categories,
                authors: s.authors,
                license: s.license,
                published_at: OffsetDateTime::from_unix_timestamp(s.published)
                    .map_err(|e| format!("published: {e}"))?,
                downloads: s.downloads,
                yanked: s.yanked,
                dependencies: s.dependencies,
            })
        }
        AnyVersion::Legacy(l) => Ok(Stored {
            id: parse_id(&l.metadata.id)?,
            description: l.metadata.description,
            keywords: l.metadata.keywords,
            categories: l.metadata.categories,
            authors: l.metadata.authors,
            license: l.metadata.license,
            published_at: OffsetDateTime::parse(&l.metadata.published_at, &Rfc3339)
                .map_err(|e| format!("published_at: {e}"))?,
            downloads: l.downloads,
            yanked: l.yanked.is_some(),
            dependencies: l
                .metadata
                .dependencies
                .keys()
                .map(|p| {
                    p.parse::<marketplace_core::PackageRef>()
                        .map(|p| p.canonical())
                        .map_err(|e| format!("dependency {p:?}: {e}"))
                })
                .collect::<Result<_, _>>()?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document's record exactly as the index stored it before the encoding was versioned.
    const OLD: &str = r#"{"metadata":{"id":"zoo/zebra@1.0.0","description":"Zebra tools","authors":["Z <z@example.com>"],"license":"MIT","repository":null,"homepage":null,"keywords":["zebra"],"categories":["tools"],"dependencies":{"zoo/base":"^1"},"checksum":"sha256:0eb3e36bfb24dcd9bb1d1bece1531216b59539a8fde17ee80224af0653c92aa3","size":10,"signature":null,"published_at":"2026-11-24T10:00:00Z"},"yanked":{"reason":"broken","at":"2026-11-25T10:00:00Z"},"downloads":7}"#;

    #[test]
    fn an_old_document_still_reads_and_rewrites_as_version_2() {
        let stored = decode(OLD).expect("an old document reads");
        assert_eq!(stored.id.to_string(), "zoo/zebra@1.0.0");
        assert!(stored.yanked);
        assert_eq!(stored.downloads, 7);
        assert_eq!(stored.keywords, vec!["zebra"]);
        assert_eq!(stored.dependencies, vec!["zoo/base"]);
        let text = encode(&stored).expect("encode");
        assert!(text.starts_with(r#"{"v":2,"#), "{text}");
        assert_eq!(decode(&text).expect("the new form reads"), stored);
    }

    #[test]
    fn a_newer_encoding_is_refused() {
        let newer =
            r#"{"v":3,"id":"a@1.0.0","description":"","published":0,"downloads":0,"yanked":false}"#;
        assert!(decode(newer).unwrap_err().contains("newer"));
    }

    #[test]
    fn a_version_1_document_reads_with_no_dependencies() {
        let v1 =
            r#"{"v":1,"id":"a@1.0.0","description":"","published":0,"downloads":0,"yanked":false}"#;
        assert!(decode(v1).expect("v1 reads").dependencies.is_empty());
    }
}
