//! Version 1 of the API's bodies (`/api/v1/…`).
//!
//! Conventions: names, versions, requirements and content hashes are their text forms
//! (`acme/web`, `1.2.0`, `^1.2`, `sha256:<hex>`); key and signature bytes are lowercase hex;
//! times are RFC 3339 in UTC. Optional fields may be absent on input and are written as `null`.
//! Reading (`TryFrom`) validates every field with the core's rules, naming the field.

use std::collections::BTreeMap;

use marketplace_core::semver::Version;
use marketplace_core::time::format_description::well_known::Rfc3339;
use marketplace_core::time::{Date, OffsetDateTime};
use marketplace_core::{
    ContentHash, DailyDownloads, DependencyGraph, Error, ErrorKind, EventKind, Facets, GraphNode,
    KeyId, License, MetadataUpdate, Name, PackageId, PackageMetadata, PackagePattern, PackageRef,
    PackageStats, PublicKey, RegistryEvent, RenamedDependency, Result, Scope, SearchQuery,
    SearchResult, Signature, SignatureAlgorithm, SignatureFailure, SortOrder, TokenRecord,
    TrustLevel, TrustResult, TrustedKey, User, UserName, VersionState, YankInfo,
    parse_requirement_for, parse_url, parse_version,
};
use serde::{Deserialize, Serialize};

/// The API version these types belong to (the `v1` of `/api/v1/`).
pub const VERSION: u32 = 1;

fn invalid(field: &str, value: &str, rule: impl Into<String>) -> Error {
    Error::invalid(format!("response field {field}"), value, rule)
}

fn package_id(field: &str, text: &str) -> Result<PackageId> {
    text.parse()
        .map_err(|e: Error| invalid(field, text, e.to_string()))
}

fn content_hash(field: &str, text: &str) -> Result<ContentHash> {
    text.parse()
        .map_err(|e: Error| invalid(field, text, e.to_string()))
}

fn hex_bytes(field: &str, text: &str) -> Result<Vec<u8>> {
    hex::decode(text).map_err(|e| invalid(field, text, format!("must be hex ({e})")))
}

// ---- package metadata --------------------------------------------------------------------------

/// A detached Ed25519 signature over a version's signing payload (docs/TRAITS.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignatureBody {
    /// `ed25519`.
    pub algorithm: String,
    /// The signer's raw public key, hex (64 digits).
    pub public_key: String,
    /// The signer's key id (first 16 bytes of SHA-256 of the key), hex. Written for people;
    /// checked against `public_key` when read.
    pub key_id: String,
    /// The raw signature, hex (128 digits).
    pub signature: String,
}

impl From<&Signature> for SignatureBody {
    fn from(s: &Signature) -> Self {
        SignatureBody {
            algorithm: s.algorithm().to_string(),
            public_key: hex::encode(&s.public_key.bytes),
            key_id: s.key_id().to_string(),
            signature: hex::encode(&s.bytes),
        }
    }
}

impl TryFrom<SignatureBody> for Signature {
    type Error = Error;
    fn try_from(s: SignatureBody) -> Result<Self> {
        if s.algorithm != SignatureAlgorithm::Ed25519.to_string() {
            return Err(invalid(
                "signature.algorithm",
                &s.algorithm,
                "must be ed25519",
            ));
        }
        let public_key = PublicKey::ed25519(hex_bytes("signature.public_key", &s.public_key)?)
            .map_err(|e| invalid("signature.public_key", &s.public_key, e.to_string()))?;
        if public_key.key_id().to_string() != s.key_id {
            return Err(invalid(
                "signature.key_id",
                &s.key_id,
                format!("is not the id of the public key ({})", public_key.key_id()),
            ));
        }
        let bytes = hex_bytes("signature.signature", &s.signature)?;
        if bytes.len() != SignatureAlgorithm::Ed25519.signature_len() {
            return Err(invalid(
                "signature.signature",
                &s.signature,
                "an ed25519 signature is 64 bytes",
            ));
        }
        Ok(Signature { public_key, bytes })
    }
}

/// The header of `PUT /api/v1/packages` that carries the archive's detached signature (the
/// body is the archive itself, so it streams): `ed25519 <public key hex> <signature hex>`.
pub const SIGNATURE_HEADER: &str = "marketplace-signature";

impl SignatureBody {
    /// The value of [`SIGNATURE_HEADER`] for this signature.
    pub fn header_value(&self) -> String {
        format!("{} {} {}", self.algorithm, self.public_key, self.signature)
    }

    /// Reads a [`SIGNATURE_HEADER`] value; `Invalid` naming the header when it is not three
    /// words or any of them is malformed.
    pub fn from_header(value: &str) -> Result<Signature> {
        let words: Vec<&str> = value.split_ascii_whitespace().collect();
        let [algorithm, public_key, signature] = words.as_slice() else {
            return Err(Error::invalid(
                SIGNATURE_HEADER,
                value,
                "must be `ed25519 <public key hex> <signature hex>`",
            ));
        };
        let key = PublicKey::ed25519(hex_bytes("signature.public_key", public_key)?)
            .map_err(|e| Error::invalid(SIGNATURE_HEADER, value, e.to_string()))?;
        Signature::try_from(SignatureBody {
            algorithm: (*algorithm).to_owned(),
            public_key: (*public_key).to_owned(),
            key_id: key.key_id().to_string(),
            signature: (*signature).to_owned(),
        })
    }
}

/// The header of `PUT /api/v1/packages` that carries the publication time the author signed
/// (it is part of the signing payload), RFC 3339: `2026-12-03T10:00:00Z`. The server takes it
/// as the version's `published_at` when it is no more than [`PUBLISHED_AT_MAX_AGE_SECONDS`] old
/// and no more than [`PUBLISHED_AT_MAX_AHEAD_SECONDS`] ahead of the server's clock.
pub const PUBLISHED_AT_HEADER: &str = "marketplace-published-at";
/// How old a signed publication time may be when the publish arrives (one hour).
pub const PUBLISHED_AT_MAX_AGE_SECONDS: i64 = 3600;
/// How far ahead of the server's clock a signed publication time may be (clock skew, 5 min).
pub const PUBLISHED_AT_MAX_AHEAD_SECONDS: i64 = 300;

/// The value of [`PUBLISHED_AT_HEADER`] for `at`.
pub fn published_at_header(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Reads a [`PUBLISHED_AT_HEADER`] value and checks it against `now`; `Invalid` naming the
/// header when it is not RFC 3339 or lies outside the window.
pub fn parse_published_at(value: &str, now: OffsetDateTime) -> Result<OffsetDateTime> {
    let at = OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        Error::invalid(
            PUBLISHED_AT_HEADER,
            value,
            "must be an RFC 3339 time such as 2026-12-03T10:00:00Z",
        )
    })?;
    let age = (now - at).whole_seconds();
    if age > PUBLISHED_AT_MAX_AGE_SECONDS {
        return Err(Error::invalid(
            PUBLISHED_AT_HEADER,
            value,
            "is more than an hour old: sign the package again",
        ));
    }
    if -age > PUBLISHED_AT_MAX_AHEAD_SECONDS {
        return Err(Error::invalid(
            PUBLISHED_AT_HEADER,
            value,
            "is more than 5 minutes ahead of the server's clock: check this machine's clock",
        ));
    }
    Ok(at)
}

/// Everything published about one version: `GET /api/v1/packages/{package}/{version}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionMetadata {
    /// The namespace, if any.
    pub namespace: Option<String>,
    /// The package name as registered.
    pub name: String,
    /// The version (semver, build metadata included as registered).
    pub version: String,
    /// What the package is for.
    pub description: String,
    /// Authors, e.g. `Jane Doe <jane@example.com>`.
    #[serde(default)]
    pub authors: Vec<String>,
    /// The license as the author wrote it (an SPDX expression, or an older loose form such
    /// as `MIT/Apache-2.0`).
    pub license: Option<String>,
    /// The license as a normalised SPDX expression (`MIT OR Apache-2.0`); the same as
    /// `license` when that is strict SPDX. Derived from `license` on reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_spdx: Option<String>,
    /// Source repository URL.
    pub repository: Option<String>,
    /// Home page URL.
    pub homepage: Option<String>,
    /// Search keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Categories.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Direct dependencies: package (`ns/name` or `name`) → requirement (cargo semantics).
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
    /// Direct dependencies under a name of the package's choosing: alias → package and
    /// requirement.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub renamed_dependencies: BTreeMap<String, RenamedBody>,
    /// What another packaging format says about the version: format name (`cargo`) → a
    /// JSON text, exactly as stored (it is signed). Absent for a marketplace package.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: BTreeMap<String, String>,
    /// Content hash of the archive, `sha256:<hex>`.
    pub checksum: String,
    /// Archive size in bytes.
    pub size: u64,
    /// The author's signature, if signed.
    pub signature: Option<SignatureBody>,
    /// When the version was published (signed: nanoseconds are kept).
    #[serde(with = "marketplace_core::time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
}

/// A renamed dependency on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenamedBody {
    /// The package (`ns/name` or `name`).
    pub package: String,
    /// The requirement (cargo semantics).
    pub req: String,
}

impl From<&PackageMetadata> for VersionMetadata {
    fn from(m: &PackageMetadata) -> Self {
        VersionMetadata {
            namespace: m.id.namespace.as_ref().map(ToString::to_string),
            name: m.id.name.to_string(),
            version: m.id.version.to_string(),
            description: m.description.clone(),
            authors: m.authors.clone(),
            license: m.license.as_ref().map(ToString::to_string),
            license_spdx: m.license.as_ref().map(|l| l.spdx().to_owned()),
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
                    let body = RenamedBody {
                        package: r.package.to_string(),
                        req: r.requirement.to_string(),
                    };
                    (alias.to_string(), body)
                })
                .collect(),
            extensions: m.extensions.clone(),
            checksum: m.checksum.to_string(),
            size: m.size,
            signature: m.signature.as_ref().map(SignatureBody::from),
            published_at: m.published_at,
        }
    }
}

impl TryFrom<VersionMetadata> for PackageMetadata {
    type Error = Error;
    fn try_from(w: VersionMetadata) -> Result<Self> {
        let namespace = w
            .namespace
            .as_deref()
            .map(|ns| Name::for_field("response field namespace", ns))
            .transpose()?;
        let name = Name::for_field("response field name", &w.name)?;
        let version =
            parse_version(&w.version).map_err(|e| invalid("version", &w.version, e.to_string()))?;
        let mut m = PackageMetadata::new(
            PackageId::new(namespace, name, version),
            w.description,
            content_hash("checksum", &w.checksum)?,
            w.size,
        );
        m.authors = w.authors;
        m.license = w
            .license
            .as_deref()
            .map(|l| License::new(l).map_err(|e| invalid("license", l, e.to_string())))
            .transpose()?;
        m.repository = w
            .repository
            .as_deref()
            .map(|u| parse_url("response field repository", u))
            .transpose()?;
        m.homepage = w
            .homepage
            .as_deref()
            .map(|u| parse_url("response field homepage", u))
            .transpose()?;
        m.keywords = w.keywords;
        m.categories = w.categories;
        for (package, req) in &w.dependencies {
            let field = format!("response field dependencies.{package}");
            m.dependencies.insert(
                PackageRef::parse_field(&field, package)?,
                parse_requirement_for(&field, req)?,
            );
        }
        for (alias, renamed) in &w.renamed_dependencies {
            let field = format!("response field renamed_dependencies.{alias}");
            m.renamed_dependencies.insert(
                Name::for_field(&field, alias)?,
                RenamedDependency {
                    package: PackageRef::parse_field(
                        &format!("{field}.package"),
                        &renamed.package,
                    )?,
                    requirement: parse_requirement_for(&format!("{field}.req"), &renamed.req)?,
                },
            );
        }
        m.extensions = w.extensions;
        m.signature = w.signature.map(Signature::try_from).transpose()?;
        m.published_at = w.published_at;
        m.validate()?;
        Ok(m)
    }
}

// ---- versions, info, statistics ----------------------------------------------------------------

/// Why and when a version was yanked, as two optional fields of the object that holds them:
/// both present or both absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct YankFields {
    /// The reason given for the yank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yank_reason: Option<String>,
    /// When it was yanked (RFC 3339).
    #[serde(
        with = "marketplace_core::time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub yanked_at: Option<OffsetDateTime>,
}

impl YankFields {
    /// The fields of `yank`.
    pub fn new(yank: Option<&YankInfo>) -> Self {
        YankFields {
            yank_reason: yank.map(|y| y.reason.clone()),
            yanked_at: yank.map(|y| y.at),
        }
    }

    /// The yank; `Invalid` (naming `field` and `value`) when only one field is present.
    pub fn to_yank(&self, field: &str, value: &str) -> Result<Option<YankInfo>> {
        match (&self.yank_reason, self.yanked_at) {
            (Some(reason), Some(at)) => Ok(Some(YankInfo::new(reason.clone(), at))),
            (None, None) => Ok(None),
            _ => Err(invalid(
                field,
                value,
                "yank_reason and yanked_at come together",
            )),
        }
    }
}

/// One version and whether it is yanked (with why and when).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionEntry {
    /// The version.
    pub version: String,
    /// Whether it is yanked (kept for exact pins and lockfiles, not chosen by ranges).
    pub yanked: bool,
    /// Why and when, exactly when `yanked` (`yank_reason`, `yanked_at`).
    #[serde(flatten)]
    pub yank: YankFields,
}

/// Every version of a package, ascending: `GET /api/v1/packages/{package}/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionList {
    /// The package (`ns/name` or `name`).
    pub package: String,
    /// Its versions in semver order.
    pub versions: Vec<VersionEntry>,
}

impl VersionList {
    /// The list of `package`'s versions.
    pub fn new(package: &PackageRef, states: &[VersionState]) -> Self {
        VersionList {
            package: package.to_string(),
            versions: states
                .iter()
                .map(|s| VersionEntry {
                    version: s.version.to_string(),
                    yanked: s.is_yanked(),
                    yank: YankFields::new(s.yanked.as_ref()),
                })
                .collect(),
        }
    }

    /// The versions as the core's type; `Invalid` for a version that does not parse or a yank
    /// without its reason and time (or a reason without the yank).
    pub fn states(&self) -> Result<Vec<VersionState>> {
        self.versions
            .iter()
            .map(|v| {
                let version = Version::parse(&v.version)
                    .map_err(|e| invalid("versions.version", &v.version, e.to_string()))?;
                let yanked = v.yank.to_yank("versions.yank_reason", &v.version)?;
                if v.yanked != yanked.is_some() {
                    return Err(invalid(
                        "versions.yanked",
                        &v.version,
                        "a version is yanked exactly when it has yank_reason and yanked_at",
                    ));
                }
                Ok(VersionState::new(version, yanked))
            })
            .collect()
    }
}

/// Downloads on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayDownloads {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Downloads of the package (every version) that day.
    pub downloads: u64,
}

/// Download statistics: `GET /api/v1/packages/{package}/{version}/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    /// The version asked about (`ns/name@version`).
    pub id: String,
    /// Downloads of this version.
    pub version_downloads: u64,
    /// Downloads of every version.
    pub total_downloads: u64,
    /// Downloads per version.
    pub per_version: BTreeMap<String, u64>,
    /// The last 30 days, oldest first, today last.
    pub last_30_days: Vec<DayDownloads>,
}

fn day_text(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

impl From<&PackageStats> for Stats {
    fn from(s: &PackageStats) -> Self {
        Stats {
            id: s.id.to_string(),
            version_downloads: s.version_downloads,
            total_downloads: s.total_downloads,
            per_version: s
                .per_version
                .iter()
                .map(|(v, n)| (v.to_string(), *n))
                .collect(),
            last_30_days: s
                .last_30_days
                .iter()
                .map(|d: &DailyDownloads| DayDownloads {
                    date: day_text(d.date),
                    downloads: d.downloads,
                })
                .collect(),
        }
    }
}

/// A `YYYY-MM-DD` day, as [`day_text`] writes it.
fn parse_day(text: &str) -> Option<Date> {
    let mut parts = text.splitn(3, '-');
    let year = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, month.try_into().ok()?, day).ok()
}

impl TryFrom<Stats> for PackageStats {
    type Error = Error;
    fn try_from(s: Stats) -> Result<Self> {
        let per_version = s
            .per_version
            .iter()
            .map(|(version, n)| {
                Version::parse(version)
                    .map(|v| (v, *n))
                    .map_err(|e| invalid("per_version", version, e.to_string()))
            })
            .collect::<Result<_>>()?;
        let days = s
            .last_30_days
            .iter()
            .map(|d| {
                parse_day(&d.date)
                    .map(|date| DailyDownloads::new(date, d.downloads))
                    .ok_or_else(|| invalid("last_30_days.date", &d.date, "must be YYYY-MM-DD"))
            })
            .collect::<Result<_>>()?;
        Ok(PackageStats::new(
            package_id("id", &s.id)?,
            s.version_downloads,
            s.total_downloads,
            per_version,
            days,
        ))
    }
}

/// One version's metadata, yank state and statistics: `GET /api/v1/packages/{package}/{version}/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackageInfo {
    /// The metadata.
    pub metadata: VersionMetadata,
    /// Whether the version is yanked.
    pub yanked: bool,
    /// Why and when, exactly when `yanked` (`yank_reason`, `yanked_at`).
    #[serde(flatten)]
    pub yank: YankFields,
    /// Its download statistics.
    pub stats: Stats,
}

// ---- resolution --------------------------------------------------------------------------------

/// One package of a resolved graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GraphEntry {
    /// Its metadata, signature and checksum included, so the client verifies without asking
    /// again.
    pub metadata: VersionMetadata,
    /// Its resolved direct dependencies (`ns/name@version`).
    pub dependencies: Vec<String>,
    /// Why and when it was yanked, when it is (chosen by an exact pin).
    #[serde(flatten)]
    pub yank: YankFields,
}

/// A resolved dependency graph in one response: `GET /api/v1/resolve?package=&req=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolvedGraph {
    /// The root (`ns/name@version`).
    pub root: String,
    /// Every package of the graph, root included, in id order.
    pub nodes: Vec<GraphEntry>,
}

impl From<&DependencyGraph> for ResolvedGraph {
    fn from(g: &DependencyGraph) -> Self {
        ResolvedGraph {
            root: g.root.to_string(),
            nodes: g
                .nodes
                .values()
                .map(|node| GraphEntry {
                    metadata: VersionMetadata::from(&node.metadata),
                    dependencies: node.dependencies.iter().map(ToString::to_string).collect(),
                    yank: YankFields::new(node.yanked.as_ref()),
                })
                .collect(),
        }
    }
}

impl TryFrom<ResolvedGraph> for DependencyGraph {
    type Error = Error;
    fn try_from(g: ResolvedGraph) -> Result<Self> {
        let root = package_id("root", &g.root)?;
        let mut nodes = BTreeMap::new();
        for entry in g.nodes {
            let metadata = PackageMetadata::try_from(entry.metadata)?;
            let dependencies = entry
                .dependencies
                .iter()
                .map(|d| package_id("nodes.dependencies", d))
                .collect::<Result<Vec<_>>>()?;
            let id = metadata.id.clone();
            let yanked = entry.yank.to_yank("nodes.yank_reason", &id.to_string())?;
            if nodes
                .insert(
                    id.clone(),
                    GraphNode::new(metadata, dependencies).with_yank(yanked),
                )
                .is_some()
            {
                return Err(invalid("nodes", &id.to_string(), "lists a version twice"));
            }
        }
        if !nodes.contains_key(&root) {
            return Err(invalid("root", &g.root, "is not among the nodes"));
        }
        Ok(DependencyGraph::new(root, nodes))
    }
}

// ---- search ------------------------------------------------------------------------------------

/// One search hit: a package at its current version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The version shown (`ns/name@version`).
    pub id: String,
    /// Its description.
    pub description: String,
    /// Its keywords.
    pub keywords: Vec<String>,
    /// Its categories.
    pub categories: Vec<String>,
    /// Downloads of the package.
    pub downloads: u64,
    /// Whether the version shown is yanked (only when yanked versions were asked for).
    pub yanked: bool,
    /// Relevance score, comparable within one response only.
    pub score: f32,
    /// Description snippets, matched terms between `<b>` and `</b>`.
    pub highlights: Vec<String>,
}

/// Search results: `GET /api/v1/search?q=…`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResults {
    /// The hits, best first.
    pub hits: Vec<SearchHit>,
}

impl From<&SearchResult> for SearchHit {
    fn from(r: &SearchResult) -> Self {
        SearchHit {
            id: r.id.to_string(),
            description: r.description.clone(),
            keywords: r.keywords.clone(),
            categories: r.categories.clone(),
            downloads: r.downloads,
            yanked: r.yanked,
            score: r.score,
            highlights: r.highlights.clone(),
        }
    }
}

impl TryFrom<SearchHit> for SearchResult {
    type Error = Error;
    fn try_from(h: SearchHit) -> Result<Self> {
        let mut hit = SearchResult::new(package_id("hits.id", &h.id)?, h.score);
        hit.description = h.description;
        hit.keywords = h.keywords;
        hit.categories = h.categories;
        hit.downloads = h.downloads;
        hit.yanked = h.yanked;
        hit.highlights = h.highlights;
        Ok(hit)
    }
}

/// One value of a facet and how many matching packages have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacetCount {
    /// The category, keyword or namespace.
    pub value: String,
    /// Matching packages with it.
    pub count: u64,
}

/// Counts of the packages a search matches, per category, keyword and namespace, most
/// frequent first: `GET /api/v1/facets?q=…` (the search's parameters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacetCounts {
    /// Per category.
    pub categories: Vec<FacetCount>,
    /// Per keyword.
    pub keywords: Vec<FacetCount>,
    /// Per namespace.
    pub namespaces: Vec<FacetCount>,
}

impl From<&Facets> for FacetCounts {
    fn from(f: &Facets) -> Self {
        let counts = |list: &[(String, u64)]| {
            list.iter()
                .map(|(value, count)| FacetCount {
                    value: value.clone(),
                    count: *count,
                })
                .collect()
        };
        FacetCounts {
            categories: counts(&f.categories),
            keywords: counts(&f.keywords),
            namespaces: counts(&f.namespaces),
        }
    }
}

impl From<FacetCounts> for Facets {
    fn from(f: FacetCounts) -> Self {
        let pairs = |list: Vec<FacetCount>| list.into_iter().map(|c| (c.value, c.count)).collect();
        Facets::new(pairs(f.categories), pairs(f.keywords), pairs(f.namespaces))
    }
}

/// Names for a search box: `GET /api/v1/suggest?q=PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Suggestions {
    /// Packages (`ns/name` or `name`) whose name starts with the prefix, most downloaded first.
    pub names: Vec<String>,
}

// ---- the change feed ---------------------------------------------------------------------------

/// What an event records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// A version was registered with this archive hash.
    Registered {
        /// `ns/name@version`.
        id: String,
        /// `sha256:<hex>`.
        checksum: String,
    },
    /// A version was yanked.
    Yanked {
        /// `ns/name@version`.
        id: String,
        /// The reason given.
        reason: String,
    },
    /// A yanked version was restored.
    Unyanked {
        /// `ns/name@version`.
        id: String,
    },
    /// Mutable metadata changed; absent fields are unchanged, `null` clears a URL.
    MetadataUpdated {
        /// `ns/name@version`.
        id: String,
        /// New description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// New keywords.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keywords: Option<Vec<String>>,
        /// New categories.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        categories: Option<Vec<String>>,
        /// New home page (`null` clears it).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "marketplace_core::deserialize_present"
        )]
        homepage: Option<Option<String>>,
        /// New repository (`null` clears it).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "marketplace_core::deserialize_present"
        )]
        repository: Option<Option<String>>,
    },
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Position in the log: 1 first, +1 per event, never skipped.
    pub seq: u64,
    /// When it happened.
    #[serde(with = "marketplace_core::time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened.
    pub event: EventBody,
}

/// A page of the change feed: `GET /api/v1/events?since=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPage {
    /// Events with `seq > since`, ascending.
    pub events: Vec<Event>,
}

fn url_text(url: &Option<marketplace_core::HttpUrl>) -> Option<String> {
    url.as_ref().map(ToString::to_string)
}

impl TryFrom<&RegistryEvent> for Event {
    type Error = Error;
    /// `Invalid` for an event kind this version of the API cannot describe (a newer core).
    fn try_from(e: &RegistryEvent) -> Result<Self> {
        let event = match &e.kind {
            EventKind::Registered { id, checksum } => EventBody::Registered {
                id: id.to_string(),
                checksum: checksum.to_string(),
            },
            EventKind::Yanked { id, reason } => EventBody::Yanked {
                id: id.to_string(),
                reason: reason.clone(),
            },
            EventKind::Unyanked { id } => EventBody::Unyanked { id: id.to_string() },
            EventKind::MetadataUpdated { id, update } => EventBody::MetadataUpdated {
                id: id.to_string(),
                description: update.description.clone(),
                keywords: update.keywords.clone(),
                categories: update.categories.clone(),
                homepage: update.homepage.as_ref().map(url_text),
                repository: update.repository.as_ref().map(url_text),
            },
            other => {
                return Err(Error::invalid(
                    "event",
                    format!("{other:?}"),
                    format!("API version {VERSION} has no form for this kind of event"),
                ));
            }
        };
        Ok(Event {
            seq: e.seq,
            at: e.at,
            event,
        })
    }
}

fn parse_optional_url(
    field: &str,
    url: Option<Option<String>>,
) -> Result<Option<Option<marketplace_core::HttpUrl>>> {
    url.map(|u| u.map(|u| parse_url(field, &u)).transpose())
        .transpose()
}

impl TryFrom<Event> for RegistryEvent {
    type Error = Error;
    fn try_from(e: Event) -> Result<Self> {
        let kind = match e.event {
            EventBody::Registered { id, checksum } => EventKind::Registered {
                id: package_id("event.id", &id)?,
                checksum: content_hash("event.checksum", &checksum)?,
            },
            EventBody::Yanked { id, reason } => EventKind::Yanked {
                id: package_id("event.id", &id)?,
                reason,
            },
            EventBody::Unyanked { id } => EventKind::Unyanked {
                id: package_id("event.id", &id)?,
            },
            EventBody::MetadataUpdated {
                id,
                description,
                keywords,
                categories,
                homepage,
                repository,
            } => {
                let update = MetadataUpdate {
                    description,
                    keywords,
                    categories,
                    homepage: parse_optional_url("response field event.homepage", homepage)?,
                    repository: parse_optional_url("response field event.repository", repository)?,
                };
                update.validate()?;
                EventKind::MetadataUpdated {
                    id: package_id("event.id", &id)?,
                    update: Box::new(update),
                }
            }
        };
        Ok(RegistryEvent::new(e.seq, e.at, kind))
    }
}

// ---- keys --------------------------------------------------------------------------------------

/// The server's trust store: `GET /api/v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyList {
    /// Every key it knows, trusted or revoked.
    pub keys: Vec<KeyEntry>,
}

/// A key of the server's trust store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyEntry {
    /// Its id, hex.
    pub key_id: String,
    /// `ed25519`.
    pub algorithm: String,
    /// The raw public key, hex.
    pub public_key: String,
    /// `marginal`, `full`, `ultimate`, `unknown` or `revoked`.
    pub trust: String,
    /// When it was trusted, or revoked.
    #[serde(with = "marketplace_core::time::serde::rfc3339::option", default)]
    pub since: Option<OffsetDateTime>,
    /// Why it was revoked.
    #[serde(default)]
    pub revocation_reason: Option<String>,
}

impl From<&TrustedKey> for KeyEntry {
    fn from(k: &TrustedKey) -> Self {
        let (trust, since, revocation_reason) = match &k.trust {
            TrustResult::Trusted { level, since, .. } => (level.to_string(), Some(*since), None),
            TrustResult::Revoked { reason, at, .. } => {
                ("revoked".to_owned(), Some(*at), Some(reason.clone()))
            }
            _ => ("unknown".to_owned(), None, None),
        };
        KeyEntry {
            key_id: k.public_key.key_id().to_string(),
            algorithm: k.public_key.algorithm.to_string(),
            public_key: hex::encode(&k.public_key.bytes),
            trust,
            since,
            revocation_reason,
        }
    }
}

impl KeyEntry {
    /// The public key, checked against its id; `Invalid` if either is malformed.
    pub fn public_key(&self) -> Result<PublicKey> {
        let key = PublicKey::ed25519(hex_bytes("keys.public_key", &self.public_key)?)
            .map_err(|e| invalid("keys.public_key", &self.public_key, e.to_string()))?;
        let id: KeyId = self
            .key_id
            .parse()
            .map_err(|e: Error| invalid("keys.key_id", &self.key_id, e.to_string()))?;
        if key.key_id() != id {
            return Err(invalid(
                "keys.key_id",
                &self.key_id,
                "is not the id of the public key",
            ));
        }
        Ok(key)
    }

    /// The trust level, when the key is trusted.
    pub fn level(&self) -> Option<TrustLevel> {
        match self.trust.as_str() {
            "marginal" => Some(TrustLevel::Marginal),
            "full" => Some(TrustLevel::Full),
            "ultimate" => Some(TrustLevel::Ultimate),
            _ => None,
        }
    }
}

// ---- query parameters --------------------------------------------------------------------------

/// The parameters of `GET /api/v1/search` and `/api/v1/facets`. Absent ones take the
/// defaults of [`marketplace_core::SearchQuery`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct SearchParams {
    /// The free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Comma-separated; every one must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<String>,
    /// Comma-separated; every one must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keywords: Option<String>,
    /// Only packages of this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only packages with at least this many downloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_downloads: Option<u64>,
    /// Yanked versions too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_yanked: Option<bool>,
    /// Also forgive one typo in words of 3 and 4 letters (a retry of a search that found
    /// nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgive_short_typos: Option<bool>,
    /// `relevance` (the default), `downloads`, `recent` or `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
    /// Most hits (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Hits to skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
}

impl From<&SearchQuery> for SearchParams {
    fn from(query: &SearchQuery) -> Self {
        let list = |items: &[String]| (!items.is_empty()).then(|| items.join(","));
        let sort = match query.sort {
            SortOrder::Downloads => "downloads",
            SortOrder::Recent => "recent",
            SortOrder::Name => "name",
            SortOrder::Relevance => "relevance",
        };
        SearchParams {
            q: Some(query.text.clone()),
            categories: list(&query.categories),
            keywords: list(&query.keywords),
            namespace: query.namespace.clone(),
            min_downloads: query.min_downloads,
            include_yanked: Some(query.include_yanked),
            forgive_short_typos: Some(query.forgive_short_typos),
            sort: Some(sort.to_owned()),
            limit: Some(query.limit),
            offset: Some(query.offset),
        }
    }
}

/// The parameters of `GET /api/v1/resolve`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct ResolveParams {
    /// The root package, `NAME` or `NAMESPACE/NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The root's version requirement (default `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req: Option<String>,
}

/// The parameters of `GET /api/v1/suggest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct SuggestParams {
    /// The prefix typed so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Most names (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// The parameters of `GET /api/v1/events`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct EventParams {
    /// Events after this sequence number (default 0: from the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// Most events (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// A `limit` parameter alone (`GET …/similar`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct LimitParams {
    /// Most items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

// ---- writes ------------------------------------------------------------------------------------

/// The body of `PUT /api/v1/packages/{package}/{version}/yank`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct YankRequest {
    /// Why the version is yanked (shown to everyone who resolves it).
    pub reason: String,
}

/// What a publish did: the response of `PUT /api/v1/packages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishResponse {
    /// The version as registered (`ns/name@version`).
    pub id: String,
    /// The archive's content hash.
    pub checksum: String,
    /// The archive's size in bytes.
    pub size: u64,
    /// Whether search found it at once (otherwise it will after the index catches up).
    pub indexed: bool,
}

/// What a yank or unyank left: the response of `PUT`/`DELETE
/// /api/v1/packages/{package}/{version}/yank`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct YankResponse {
    /// The version (`ns/name@version`).
    pub id: String,
    /// Whether it is yanked now.
    pub yanked: bool,
}

/// One package of a batch publish: its archive and what the headers of a single publish
/// carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchItem {
    /// The archive (`.tar.gz`), standard base64.
    pub archive: String,
    /// Its detached signature, as the [`SIGNATURE_HEADER`] carries it.
    pub signature: String,
    /// The publication time the signature covers (RFC 3339), as the
    /// [`PUBLISHED_AT_HEADER`] carries it.
    pub published_at: String,
}

impl BatchItem {
    /// The item for `archive` with `signature` over it at `published_at`.
    pub fn new(archive: &[u8], signature: &Signature, published_at: OffsetDateTime) -> Self {
        use base64::Engine as _;
        BatchItem {
            archive: base64::engine::general_purpose::STANDARD.encode(archive),
            signature: SignatureBody::from(signature).header_value(),
            published_at: published_at_header(published_at),
        }
    }

    /// The archive bytes; `Invalid` when the field is not base64.
    pub fn archive_bytes(&self) -> Result<Vec<u8>> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&self.archive)
            .map_err(|e| Error::invalid("archive", "", format!("must be standard base64 ({e})")))
    }
}

/// The body of `POST /api/v1/batch`: many packages in one request, for imports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchRequest {
    /// The packages, each checked on its own.
    pub packages: Vec<BatchItem>,
}

/// A package of a batch that was not published, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchRefusal {
    /// Its position in the request (from 0).
    pub index: usize,
    /// Why, as an error response would say it.
    pub error: ErrorBody,
}

/// What a batch publish did: the response of `POST /api/v1/batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResponse {
    /// The versions published, in request order.
    pub published: Vec<PublishResponse>,
    /// The packages refused.
    pub refused: Vec<BatchRefusal>,
}

// ---- accounts ----------------------------------------------------------------------------------

/// A user: an entry of `GET /api/v1/users`, and part of `GET /api/v1/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserEntry {
    /// The user's name.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: UserName,
    /// Whether the user administers the marketplace.
    pub admin: bool,
    /// When the user was created.
    #[serde(with = "marketplace_core::time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&User> for UserEntry {
    fn from(u: &User) -> Self {
        UserEntry {
            name: u.name.clone(),
            admin: u.admin,
            created_at: u.created_at,
        }
    }
}

/// Every user: `GET /api/v1/users` (admins only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserList {
    /// By name.
    pub users: Vec<UserEntry>,
}

/// The body of `POST /api/v1/users` (admins only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserRequest {
    /// The new user's name (1–39 lowercase letters, digits and `-`).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: UserName,
    /// Whether the new user administers the marketplace.
    #[serde(default)]
    pub admin: bool,
}

/// A token, without its secret: in token lists and as the token of `GET /api/v1/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenEntry {
    /// The token's public id (16 hex digits), for revoking it.
    pub id: String,
    /// Whose token it is.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub user: UserName,
    /// Its label.
    pub name: String,
    /// What it may do: `publish-new`, `publish-update`, `yank`, `owners`, `admin`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub scopes: Vec<Scope>,
    /// The packages it may act on (`acme/web`, `acme/*`, `web-*`); every package when null.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub pattern: Option<PackagePattern>,
    /// When it was created.
    #[serde(with = "marketplace_core::time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working; never when null.
    #[serde(with = "marketplace_core::time::serde::rfc3339::option", default)]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked; in force when null.
    #[serde(with = "marketplace_core::time::serde::rfc3339::option", default)]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<&TokenRecord> for TokenEntry {
    fn from(t: &TokenRecord) -> Self {
        TokenEntry {
            id: t.id.clone(),
            user: t.user.clone(),
            name: t.name.clone(),
            scopes: t.scopes.clone(),
            pattern: t.pattern.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
        }
    }
}

impl TryFrom<TokenEntry> for TokenRecord {
    type Error = Error;
    fn try_from(t: TokenEntry) -> Result<Self> {
        let mut record = TokenRecord::new(t.id, t.user, &t.name, t.scopes)
            .map_err(|e| Error::invalid("response field token", "", e.to_string()))?;
        record.pattern = t.pattern;
        record.created_at = t.created_at;
        record.expires_at = t.expires_at;
        record.revoked_at = t.revoked_at;
        Ok(record)
    }
}

/// A user's tokens: `GET /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenList {
    /// Oldest first, revoked ones included.
    pub tokens: Vec<TokenEntry>,
}

/// The body of `POST /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    /// The new token's label.
    pub name: String,
    /// What it may do; at most what the token creating it may do.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub scopes: Vec<Scope>,
    /// The packages it may act on; when the creating token has a pattern, the same one.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub pattern: Option<PackagePattern>,
    /// When it stops working (RFC 3339, in the future); never when null.
    #[serde(with = "marketplace_core::time::serde::rfc3339::option", default)]
    pub expires_at: Option<OffsetDateTime>,
    /// Whose token it is (admins only); the caller's own when null.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub user: Option<UserName>,
}

/// A token just created: the response of `POST /api/v1/tokens`. The secret is shown this
/// once; the server keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    /// The secret, to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// The token's record.
    pub record: TokenEntry,
}

/// Who is asking: the response of `GET /api/v1/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    /// The token's user.
    pub user: UserEntry,
    /// The token the request carried.
    pub token: TokenEntry,
}

/// The owners of a package or namespace: `GET /api/v1/packages/{package}/owners` and
/// `GET /api/v1/namespaces/{namespace}/owners`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OwnerList {
    /// By name.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub owners: Vec<UserName>,
}

/// The body of `PUT` (add) and `DELETE` (remove) on an owners endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OwnersRequest {
    /// The users to add or remove.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub users: Vec<UserName>,
}

/// The body of `POST /api/v1/me/keys`: a signing key to register to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyRequest {
    /// `ed25519`.
    pub algorithm: String,
    /// The raw public key, hex.
    pub public_key: String,
}

impl KeyRequest {
    /// The request for `key`.
    pub fn new(key: &PublicKey) -> Self {
        KeyRequest {
            algorithm: key.algorithm.to_string(),
            public_key: hex::encode(&key.bytes),
        }
    }

    /// The public key; `Invalid` naming the field when it is malformed.
    pub fn public_key(&self) -> Result<PublicKey> {
        if self.algorithm != SignatureAlgorithm::Ed25519.to_string() {
            return Err(Error::invalid(
                "algorithm",
                &self.algorithm,
                "the only signing algorithm is ed25519",
            ));
        }
        let bytes = hex::decode(&self.public_key).map_err(|e| {
            Error::invalid("public_key", &self.public_key, format!("must be hex ({e})"))
        })?;
        PublicKey::ed25519(bytes)
            .map_err(|e| Error::invalid("public_key", &self.public_key, e.to_string()))
    }
}

/// The signing keys registered to a user: `GET /api/v1/users/{user}/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserKeys {
    /// Key ids, hex, in id order.
    pub keys: Vec<String>,
}

// ---- errors ------------------------------------------------------------------------------------

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorBody,
}

/// One error: a kind to branch on, a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// `not_found`, `already_exists`, `invalid`, `integrity`, `signature`, `conflict`,
    /// `unauthorized`, `backend` (or a kind added later: treat unknown kinds as `backend`).
    pub kind: String,
    /// What was being done, to what, and why it failed.
    pub message: String,
    /// For `invalid`: the field or input that broke a rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What to do about it, when there is something to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For `signature`: which check failed (`unsigned`, `bad`, `untrusted`, `revoked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl From<&Error> for ErrorResponse {
    fn from(e: &Error) -> Self {
        let field = match e {
            Error::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        ErrorResponse {
            error: ErrorBody {
                kind: e.kind().as_str().to_owned(),
                message: e.to_string(),
                field,
                hint: None,
                failure: e.signature_failure().map(|f| f.as_str().to_owned()),
            },
        }
    }
}

impl ErrorBody {
    /// The kind, as the core's; unknown kinds read as `Backend`.
    pub fn kind(&self) -> ErrorKind {
        match self.kind.as_str() {
            "not_found" => ErrorKind::NotFound,
            "already_exists" => ErrorKind::AlreadyExists,
            "invalid" => ErrorKind::Invalid,
            "integrity" => ErrorKind::Integrity,
            "signature" => ErrorKind::Signature,
            "conflict" => ErrorKind::Conflict,
            "unauthorized" => ErrorKind::Unauthorized,
            _ => ErrorKind::Backend,
        }
    }

    /// The error as the core's, for a client of the API: of the same kind, its message as the
    /// server wrote it (the parts of `Invalid`, `Integrity`, `Signature` and `Conflict` read
    /// back from it where they can be). A `backend` error (or an unknown kind) becomes
    /// `Backend` of `backend` doing `operation`, `transient` as the caller decides from the
    /// status.
    pub fn to_error(&self, backend: &str, operation: &str, transient: bool) -> Error {
        let message = self.message.as_str();
        let after = |prefix: &str| message.strip_prefix(prefix).unwrap_or(message).to_owned();
        match self.kind() {
            ErrorKind::NotFound => Error::not_found(after("not found: ")),
            ErrorKind::AlreadyExists => Error::already_exists(after("already exists: ")),
            ErrorKind::Unauthorized => Error::Unauthorized {
                what: after("unauthorized: "),
            },
            ErrorKind::Invalid => {
                let field = self.field.as_deref().unwrap_or("request");
                match message
                    .strip_prefix(&format!("invalid {field} "))
                    .and_then(split_quoted)
                {
                    Some((value, rule)) => Error::invalid(field, value, rule),
                    None => Error::invalid(field, "", message),
                }
            }
            ErrorKind::Integrity => {
                let parts = message
                    .strip_prefix("integrity check failed for ")
                    .and_then(|rest| rest.rsplit_once(": expected "))
                    .and_then(|(what, rest)| {
                        rest.split_once(", got ")
                            .map(|(expected, actual)| (what, expected, actual))
                    });
                match parts {
                    Some((what, expected, actual)) => Error::integrity(what, expected, actual),
                    None => Error::integrity(message, "?", "?"),
                }
            }
            ErrorKind::Signature => {
                let failure = match self.failure.as_deref() {
                    Some("unsigned") => SignatureFailure::Unsigned,
                    Some("untrusted") => SignatureFailure::Untrusted,
                    Some("revoked") => SignatureFailure::Revoked,
                    _ => SignatureFailure::Bad,
                };
                let (what, reason) = message
                    .strip_prefix("signature check failed for ")
                    .and_then(|rest| rest.split_once(": "))
                    .unwrap_or(("a signature", message));
                Error::signature(what, failure, reason)
            }
            ErrorKind::Conflict => {
                let (root, explanation) = message
                    .strip_prefix("dependency resolution failed for ")
                    .and_then(|rest| rest.split_once(":\n"))
                    .unwrap_or(("the request", message));
                Error::Conflict {
                    root: root.to_owned(),
                    explanation: explanation.to_owned(),
                    trace: String::new(),
                }
            }
            // `backend`, and kinds a later core adds.
            _ => Error::backend(backend, operation, message.to_owned(), transient),
        }
    }
}

/// `"value": rule` (the value as Rust's `{:?}` quotes it) → the quoted text, unescaped only
/// of `\"` and `\\`, and the rule.
fn split_quoted(text: &str) -> Option<(String, String)> {
    let mut chars = text.strip_prefix('"')?.char_indices();
    let mut value = String::new();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?.1),
            '"' => {
                let rest = &text[1 + at + 1..];
                return Some((value, rest.strip_prefix(": ")?.to_owned()));
            }
            c => value.push(c),
        }
    }
    None
}
