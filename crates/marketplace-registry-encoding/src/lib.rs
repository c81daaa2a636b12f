//! What the SQL registries store as JSON, spelled out here and versioned: a version's metadata
//! (`versions.metadata`) and an event's kind (`events.kind`). Shared by
//! `marketplace-registry-sqlite` and `marketplace-registry-postgres`, so a row means the same
//! in either database (and a migration between them copies rows unchanged).
//!
//! These are this crate's own types, not the core's serde form, so that a change to a core type
//! cannot change what is on disk unnoticed (the tests below hold old rows to reading). Version 1
//! is the layout rows had before the encoding was versioned, so rows without `"v"` read as
//! version 1; new rows say `"v": 1`. A row from a newer encoding is refused, never misread.
//!
//! Version 2 of a metadata row adds `renamed_dependencies` (alias → package and requirement)
//! and is written only for versions that have them, so that a library reading version 1
//! refuses such a row rather than drop dependencies; every other row stays version 1.
//! Version 3 adds `extensions` (format name → JSON text, e.g. a crate's Cargo index fields),
//! written only for versions that have them, for the same reason. Rows
//! of either version carry `license_spdx`, the normalised SPDX expression, beside `license`
//! (as written) when the two differ — for readers of the database; this library derives it
//! again from the text.
//!
//! Beside them, the scalar forms both store the same way: times (RFC 3339), days
//! (`YYYY-MM-DD`), owner targets and token scopes.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::BTreeMap;

use marketplace_core::time::format_description::well_known::Rfc3339;
use marketplace_core::time::{Date, Month, OffsetDateTime};
use marketplace_core::{
    ContentHash, EventKind, License, MetadataUpdate, Name, OwnerTarget, PackageId, PackageMetadata,
    PackageRef, PublicKey, RenamedDependency, Scope, Signature, parse_requirement, parse_url,
};
use serde::{Deserialize, Serialize};

/// The encoding version this library writes (events, and metadata without renamed
/// dependencies).
pub const ENCODING: u32 = 1;
/// The newest encoding this library reads: metadata with extensions.
pub const NEWEST: u32 = 3;
/// The encoding of a metadata row with renamed dependencies (and no extensions).
const RENAMED: u32 = 2;

fn v1() -> u32 {
    1
}

#[derive(Serialize, Deserialize)]
struct PublicKeyRow {
    algorithm: String,
    /// Hex.
    bytes: String,
}

#[derive(Serialize, Deserialize)]
struct RenamedRow {
    package: String,
    req: String,
}

#[derive(Serialize, Deserialize)]
struct SignatureRow {
    public_key: PublicKeyRow,
    /// Hex.
    bytes: String,
}

/// `versions.metadata`, version 1.
#[derive(Serialize, Deserialize)]
struct MetadataRow {
    #[serde(rename = "v", default = "v1")]
    encoding: u32,
    /// `ns/name@version`.
    id: String,
    description: String,
    #[serde(default)]
    authors: Vec<String>,
    #[serde(default)]
    license: Option<String>,
    /// The normalised expression, when `license` was not strict SPDX.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    license_spdx: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    homepage: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    dependencies: BTreeMap<String, String>,
    /// Version 2: alias → package and requirement.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    renamed_dependencies: BTreeMap<String, RenamedRow>,
    /// Version 3: format name → JSON text, exactly as given (it is signed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    extensions: BTreeMap<String, String>,
    /// `sha256:<hex>`.
    checksum: String,
    size: u64,
    #[serde(default)]
    signature: Option<SignatureRow>,
    /// RFC 3339, nanoseconds kept (the time is signed).
    published_at: String,
}

/// The change a `metadata_updated` event records. Absent means unchanged; `null` for a URL
/// means cleared. (Rows written before version 1 was spelled out wrote `null` for both; they
/// read as unchanged.)
#[derive(Serialize, Deserialize, Default)]
struct UpdateRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keywords: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    categories: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "marketplace_core::deserialize_present"
    )]
    homepage: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "marketplace_core::deserialize_present"
    )]
    repository: Option<Option<String>>,
}

/// `events.kind`, version 1.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventRow {
    Registered {
        #[serde(rename = "v", default = "v1")]
        encoding: u32,
        id: String,
        checksum: String,
    },
    Yanked {
        #[serde(rename = "v", default = "v1")]
        encoding: u32,
        id: String,
        reason: String,
    },
    Unyanked {
        #[serde(rename = "v", default = "v1")]
        encoding: u32,
        id: String,
    },
    MetadataUpdated {
        #[serde(rename = "v", default = "v1")]
        encoding: u32,
        id: String,
        update: UpdateRow,
    },
}

/// Refuses a row whose encoding is newer than `newest`, the newest this library reads of it.
fn check_encoding(encoding: u32, newest: u32) -> Result<(), String> {
    if encoding > newest {
        return Err(format!(
            "encoding version {encoding} is newer than the {newest} this library reads"
        ));
    }
    Ok(())
}

fn parsed<T>(field: &str, result: marketplace_core::Result<T>) -> Result<T, String> {
    result.map_err(|e| format!("{field}: {e}"))
}

fn hex_field(field: &str, text: &str) -> Result<Vec<u8>, String> {
    hex::decode(text).map_err(|e| format!("{field}: not hex ({e})"))
}

/// The row of `metadata`.
pub fn encode_metadata(m: &PackageMetadata) -> Result<String, String> {
    let row = MetadataRow {
        encoding: if !m.extensions.is_empty() {
            NEWEST
        } else if !m.renamed_dependencies.is_empty() {
            RENAMED
        } else {
            ENCODING
        },
        id: m.id.to_string(),
        description: m.description.clone(),
        authors: m.authors.clone(),
        license: m.license.as_ref().map(ToString::to_string),
        license_spdx: m
            .license
            .as_ref()
            .filter(|l| l.was_normalised())
            .map(|l| l.spdx().to_owned()),
        repository: m.repository.as_ref().map(ToString::to_string),
        homepage: m.homepage.as_ref().map(ToString::to_string),
        keywords: m.keywords.clone(),
        categories: m.categories.clone(),
        dependencies: m
            .dependencies
            .iter()
            .map(|(p, r)| (p.to_string(), r.to_string()))
            .collect(),
        renamed_dependencies: m
            .renamed_dependencies
            .iter()
            .map(|(alias, r)| {
                let row = RenamedRow {
                    package: r.package.to_string(),
                    req: r.requirement.to_string(),
                };
                (alias.to_string(), row)
            })
            .collect(),
        extensions: m.extensions.clone(),
        checksum: m.checksum.to_string(),
        size: m.size,
        signature: m.signature.as_ref().map(|s| SignatureRow {
            public_key: PublicKeyRow {
                algorithm: s.algorithm().to_string(),
                bytes: hex::encode(&s.public_key.bytes),
            },
            bytes: hex::encode(&s.bytes),
        }),
        published_at: m
            .published_at
            .format(&Rfc3339)
            .map_err(|e| format!("published_at: {e}"))?,
    };
    serde_json::to_string(&row).map_err(|e| e.to_string())
}

/// Only the version a metadata row is of, without decoding the rest: for the reads that need
/// the registered id (its spelling, its build metadata) and nothing else. `Err` as
/// [`decode_metadata`] for the fields it reads.
pub fn decode_metadata_id(json: &str) -> Result<PackageId, String> {
    #[derive(Deserialize)]
    struct IdOnly {
        #[serde(rename = "v", default = "v1")]
        encoding: u32,
        id: String,
    }
    let row: IdOnly = serde_json::from_str(json).map_err(|e| e.to_string())?;
    check_encoding(row.encoding, NEWEST)?;
    parsed("id", row.id.parse())
}

/// The metadata of a row; `Err` says which field does not parse.
pub fn decode_metadata(json: &str) -> Result<PackageMetadata, String> {
    let row: MetadataRow = serde_json::from_str(json).map_err(|e| e.to_string())?;
    check_encoding(row.encoding, NEWEST)?;
    let id: PackageId = parsed("id", row.id.parse())?;
    let mut m = PackageMetadata::new(
        id,
        row.description,
        parsed("checksum", row.checksum.parse())?,
        row.size,
    );
    m.authors = row.authors;
    m.license = row
        .license
        .map(|l| parsed("license", License::new(&l)))
        .transpose()?;
    m.repository = row
        .repository
        .map(|u| parsed("repository", parse_url("repository", &u)))
        .transpose()?;
    m.homepage = row
        .homepage
        .map(|u| parsed("homepage", parse_url("homepage", &u)))
        .transpose()?;
    m.keywords = row.keywords;
    m.categories = row.categories;
    for (package, req) in row.dependencies {
        let package: PackageRef = parsed("dependencies", package.parse())?;
        m.dependencies
            .insert(package, parsed("dependencies", parse_requirement(&req))?);
    }
    for (alias, renamed) in row.renamed_dependencies {
        let field = format!("renamed_dependencies.{alias}");
        m.renamed_dependencies.insert(
            parsed(&field, Name::new(&alias))?,
            RenamedDependency {
                package: parsed(&field, renamed.package.parse())?,
                requirement: parsed(&field, parse_requirement(&renamed.req))?,
            },
        );
    }
    m.extensions = row.extensions;
    m.signature = row
        .signature
        .map(|s| -> Result<Signature, String> {
            if s.public_key.algorithm != "ed25519" {
                return Err(format!(
                    "signature: unknown algorithm {:?}",
                    s.public_key.algorithm
                ));
            }
            Ok(Signature {
                public_key: parsed(
                    "signature.public_key",
                    PublicKey::ed25519(hex_field("signature.public_key", &s.public_key.bytes)?),
                )?,
                bytes: hex_field("signature.bytes", &s.bytes)?,
            })
        })
        .transpose()?;
    m.published_at = OffsetDateTime::parse(&row.published_at, &Rfc3339)
        .map_err(|e| format!("published_at: {e}"))?;
    Ok(m)
}

/// The row of an event's kind.
pub fn encode_event(kind: &EventKind) -> Result<String, String> {
    let url = |u: &Option<marketplace_core::HttpUrl>| u.as_ref().map(ToString::to_string);
    let row = match kind {
        EventKind::Registered { id, checksum } => EventRow::Registered {
            encoding: ENCODING,
            id: id.to_string(),
            checksum: checksum.to_string(),
        },
        EventKind::Yanked { id, reason } => EventRow::Yanked {
            encoding: ENCODING,
            id: id.to_string(),
            reason: reason.clone(),
        },
        EventKind::Unyanked { id } => EventRow::Unyanked {
            encoding: ENCODING,
            id: id.to_string(),
        },
        EventKind::MetadataUpdated { id, update } => EventRow::MetadataUpdated {
            encoding: ENCODING,
            id: id.to_string(),
            update: UpdateRow {
                description: update.description.clone(),
                keywords: update.keywords.clone(),
                categories: update.categories.clone(),
                homepage: update.homepage.as_ref().map(url),
                repository: update.repository.as_ref().map(url),
            },
        },
        other => return Err(format!("no stored form for the event {other:?}")),
    };
    serde_json::to_string(&row).map_err(|e| e.to_string())
}

/// The kind of an event row; `Err` says what does not parse.
pub fn decode_event(json: &str) -> Result<EventKind, String> {
    let id = |text: &str| -> Result<PackageId, String> { parsed("id", text.parse()) };
    let optional_url = |field: &str, u: Option<Option<String>>| {
        u.map(|u| u.map(|u| parsed(field, parse_url(field, &u))).transpose())
            .transpose()
    };
    Ok(
        match serde_json::from_str(json).map_err(|e| e.to_string())? {
            EventRow::Registered {
                encoding,
                id: text,
                checksum,
            } => {
                check_encoding(encoding, ENCODING)?;
                EventKind::Registered {
                    id: id(&text)?,
                    checksum: parsed("checksum", checksum.parse::<ContentHash>())?,
                }
            }
            EventRow::Yanked {
                encoding,
                id: text,
                reason,
            } => {
                check_encoding(encoding, ENCODING)?;
                EventKind::Yanked {
                    id: id(&text)?,
                    reason,
                }
            }
            EventRow::Unyanked { encoding, id: text } => {
                check_encoding(encoding, ENCODING)?;
                EventKind::Unyanked { id: id(&text)? }
            }
            EventRow::MetadataUpdated {
                encoding,
                id: text,
                update,
            } => {
                check_encoding(encoding, ENCODING)?;
                EventKind::MetadataUpdated {
                    id: id(&text)?,
                    update: Box::new(MetadataUpdate {
                        description: update.description,
                        keywords: update.keywords,
                        categories: update.categories,
                        homepage: optional_url("homepage", update.homepage)?,
                        repository: optional_url("repository", update.repository)?,
                    }),
                }
            }
        },
    )
}

/// A time as the registries store it: RFC 3339.
pub fn format_time(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// A stored time; `Err` says why it does not parse.
pub fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| e.to_string())
}

/// A day as the registries store it: `YYYY-MM-DD`, which sorts as text in date order.
pub fn format_day(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A stored day; `Err` says why it does not parse.
pub fn parse_day(text: &str) -> Result<Date, String> {
    let bad = |reason: &str| format!("{text:?}: {reason}");
    let mut parts = text.splitn(3, '-').map(str::parse::<i32>);
    let (Some(Ok(year)), Some(Ok(month)), Some(Ok(day))) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected YYYY-MM-DD"));
    };
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| bad("bad month"))?;
    let day = u8::try_from(day).map_err(|_| bad("bad day"))?;
    Date::from_calendar_date(year, month, day).map_err(|e| bad(&e.to_string()))
}

/// An owner target as the accounts tables store it: its kind (`package` or `namespace`) and the
/// name as first spelled.
pub fn encode_owner_target(target: &OwnerTarget) -> (&'static str, String) {
    match target {
        OwnerTarget::Package(package) => ("package", package.to_string()),
        OwnerTarget::Namespace(ns) => ("namespace", ns.to_string()),
    }
}

/// A stored owner target; `Err` says why it does not parse.
pub fn decode_owner_target(kind: &str, spelled: &str) -> Result<OwnerTarget, String> {
    match kind {
        "package" => spelled
            .parse::<PackageRef>()
            .map(OwnerTarget::Package)
            .map_err(|e| e.to_string()),
        "namespace" => Name::new(spelled)
            .map(OwnerTarget::Namespace)
            .map_err(|e| e.to_string()),
        other => Err(format!("unknown kind {other:?}")),
    }
}

/// A token's scopes as stored: comma-separated.
pub fn encode_scopes(scopes: &[Scope]) -> String {
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    names.join(",")
}

/// Stored scopes; `Err` says which does not parse.
pub fn decode_scopes(text: &str) -> Result<Vec<Scope>, String> {
    text.split(',')
        .map(|s| s.parse::<Scope>().map_err(|e| e.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A metadata row exactly as the registry wrote it before the encoding was versioned.
    const OLD_METADATA_ROW: &str = r#"{"id":"acme/web@1.2.3+build.5","description":"Routing","authors":["Jane Doe <jane@example.com>"],"license":"MIT OR Apache-2.0","repository":"https://example.com/acme/web","homepage":null,"keywords":["web"],"categories":["templates"],"dependencies":{"acme/http":"^1.2","logging":"^0.3"},"checksum":"sha256:0eb3e36bfb24dcd9bb1d1bece1531216b59539a8fde17ee80224af0653c92aa3","size":4096,"signature":{"public_key":{"algorithm":"ed25519","bytes":"0707070707070707070707070707070707070707070707070707070707070707"},"bytes":"09090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909090909"},"published_at":"2026-11-24T10:00:00.5Z"}"#;

    /// Event rows as written before the encoding was versioned.
    const OLD_EVENT_ROWS: [&str; 4] = [
        r#"{"type":"registered","id":"acme/web@1.0.0","checksum":"sha256:0eb3e36bfb24dcd9bb1d1bece1531216b59539a8fde17ee80224af0653c92aa3"}"#,
        r#"{"type":"yanked","id":"acme/web@1.0.0","reason":"broken"}"#,
        r#"{"type":"unyanked","id":"acme/web@1.0.0"}"#,
        r#"{"type":"metadata_updated","id":"acme/web@1.0.0","update":{"description":"New","keywords":null,"categories":null,"homepage":null,"repository":null}}"#,
    ];

    #[test]
    fn an_old_metadata_row_still_reads_and_rewrites_as_version_1() {
        let m = decode_metadata(OLD_METADATA_ROW).expect("the old row reads");
        assert_eq!(m.id.to_string(), "acme/web@1.2.3+build.5");
        assert_eq!(m.dependencies.len(), 2);
        assert_eq!(m.published_at.nanosecond(), 500_000_000);
        assert!(m.signature.is_some());
        let row = encode_metadata(&m).expect("encode");
        assert!(row.starts_with(r#"{"v":1,"#), "{row}");
        assert_eq!(decode_metadata(&row).expect("the new row reads"), m);
        // The id alone reads from both rows, as the whole metadata gives it.
        for row in [OLD_METADATA_ROW, row.as_str()] {
            assert_eq!(decode_metadata_id(row).expect("the id reads"), m.id);
        }
        assert!(decode_metadata_id(r#"{"v":99,"id":"acme/web@1.0.0"}"#).is_err());
        assert!(decode_metadata_id(r#"{"v":1,"id":"not an id"}"#).is_err());
    }

    #[test]
    fn old_event_rows_still_read_and_clearing_a_url_survives_the_round_trip() {
        let kinds: Vec<EventKind> = OLD_EVENT_ROWS
            .iter()
            .map(|row| decode_event(row).expect("an old event row reads"))
            .collect();
        assert!(matches!(kinds[1], EventKind::Yanked { .. }));
        let cleared = EventKind::MetadataUpdated {
            id: "acme/web@1.0.0".parse().unwrap(),
            update: Box::new(MetadataUpdate {
                homepage: Some(None),
                ..MetadataUpdate::default()
            }),
        };
        let row = encode_event(&cleared).expect("encode");
        assert_eq!(decode_event(&row).expect("decode"), cleared, "{row}");
        for kind in &kinds {
            assert_eq!(&decode_event(&encode_event(kind).unwrap()).unwrap(), kind);
        }
    }

    #[test]
    fn a_row_from_a_newer_encoding_is_refused() {
        let newer = OLD_METADATA_ROW.replacen('{', r#"{"v":4,"#, 1);
        assert!(decode_metadata(&newer).unwrap_err().contains("newer"));
        assert!(
            decode_event(r#"{"type":"unyanked","v":9,"id":"a@1.0.0"}"#)
                .unwrap_err()
                .contains("newer")
        );
        // Events are still version 1.
        assert!(
            decode_event(r#"{"type":"unyanked","v":2,"id":"a@1.0.0"}"#)
                .unwrap_err()
                .contains("newer")
        );
    }

    #[test]
    fn renamed_dependencies_are_written_as_version_2_and_read_back() {
        let mut m = decode_metadata(OLD_METADATA_ROW).unwrap();
        m.renamed_dependencies.insert(
            Name::new("http_02").unwrap(),
            RenamedDependency {
                package: "acme/http".parse().unwrap(),
                requirement: parse_requirement("^0.2").unwrap(),
            },
        );
        m.license = Some(License::new("MIT/Apache-2.0").unwrap());
        let row = encode_metadata(&m).unwrap();
        assert!(row.contains(r#""v":2"#), "{row}");
        assert!(
            row.contains(
                r#""renamed_dependencies":{"http_02":{"package":"acme/http","req":"^0.2"}}"#
            ),
            "{row}"
        );
        assert!(
            row.contains(r#""license":"MIT/Apache-2.0","license_spdx":"MIT OR Apache-2.0""#),
            "{row}"
        );
        assert_eq!(decode_metadata(&row).unwrap(), m);
        // Without renamed dependencies a row stays version 1, readable by older libraries.
        let plain = encode_metadata(&decode_metadata(OLD_METADATA_ROW).unwrap()).unwrap();
        assert!(
            plain.contains(r#""v":1"#) && !plain.contains("renamed"),
            "{plain}"
        );
    }

    #[test]
    fn extensions_are_written_as_version_3_exactly_as_given() {
        let mut m = decode_metadata(OLD_METADATA_ROW).unwrap();
        let text = r#"{"features": {"std": []}, "v": 2}"#;
        m.extensions.insert("cargo".into(), text.into());
        let row = encode_metadata(&m).unwrap();
        assert!(row.contains(r#""v":3"#), "{row}");
        let back = decode_metadata(&row).unwrap();
        assert_eq!(
            back.extensions["cargo"], text,
            "the text is kept byte for byte"
        );
        assert_eq!(back, m);
    }
}
