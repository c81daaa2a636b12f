//! Package metadata, its validation rules, and the mutable state a registry keeps beside it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use semver::VersionReq;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::http_url::HttpUrl;
use crate::keys::Signature;
use crate::name::{Name, PackageId, PackageRef, serde_via_display};

/// Most keywords a package may have.
pub const MAX_KEYWORDS: usize = 10;
/// Longest keyword, in characters.
pub const MAX_KEYWORD_LEN: usize = 32;
/// Most categories a package may have.
pub const MAX_CATEGORIES: usize = 5;
/// Longest category, in characters.
pub const MAX_CATEGORY_LEN: usize = 64;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 2000;
/// Most authors a package may list.
pub const MAX_AUTHORS: usize = 32;
/// Longest author entry, in characters.
pub const MAX_AUTHOR_LEN: usize = 256;
/// Most direct dependencies a package may declare.
pub const MAX_DEPENDENCIES: usize = 256;
/// Most extensions a version may carry.
pub const MAX_EXTENSIONS: usize = 8;
/// Longest extension name, in characters.
pub const MAX_EXTENSION_NAME_LEN: usize = 32;
/// Largest total size of a version's extensions (their JSON texts), in bytes: room for the
/// Cargo index entry of a crate with thousands of features.
pub const MAX_EXTENSION_BYTES: usize = 4 * 1024 * 1024;

/// A license as an SPDX expression (`MIT OR Apache-2.0`, `LicenseRef-Proprietary`), checked for
/// syntax and known identifiers.
///
/// Older packages wrote licenses loosely (`MIT/Apache-2.0`, `Apache-2.0 / MIT`, `apache2`,
/// `GPL-3.0+`): those are accepted through the spdx crate's lax parsing, and the license keeps
/// both the text as written ([`License::as_str`], what is signed and shown as the author wrote
/// it) and the normalised SPDX expression ([`License::spdx`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct License {
    written: String,
    /// The normalised expression, when it differs from what was written.
    normalised: Option<String>,
}

impl License {
    /// Validates an SPDX license expression, accepting the loose forms older registries hold
    /// (`/` for `OR`, lower-case operators, imprecise names, a `+` on GNU licenses).
    ///
    /// Errors: `Invalid` naming spdx's reason and, where one is likely, the fix.
    pub fn new(expression: &str) -> Result<Self> {
        let strict = spdx::Expression::parse(expression);
        // The canonical spelling (`OR` for `/` or `or`, precise ids), when it differs and parses.
        let normalised = spdx::Expression::canonicalize(expression)
            .ok()
            .flatten()
            .filter(|n| spdx::Expression::parse(n).is_ok());
        if strict.is_ok() || normalised.is_some() {
            return Ok(License {
                written: expression.to_owned(),
                normalised,
            });
        }
        let reason = match spdx::Expression::parse_mode(expression, spdx::ParseMode::LAX) {
            Err(e) => e.reason.to_string(),
            Ok(_) => strict
                .err()
                .map_or_else(String::new, |e| e.reason.to_string()),
        };
        Err(Error::invalid(
            "license",
            expression,
            format!(
                "must be a valid SPDX license expression such as MIT OR Apache-2.0 ({reason}){}",
                license_hint(expression)
            ),
        ))
    }

    /// The expression as written (signed, and shown as the author wrote it).
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// The normalised SPDX expression (`MIT OR Apache-2.0` for `MIT/Apache-2.0`): the same as
    /// [`License::as_str`] when that was already strict SPDX.
    pub fn spdx(&self) -> &str {
        self.normalised.as_deref().unwrap_or(&self.written)
    }

    /// Whether the text as written was not strict SPDX and was normalised.
    pub fn was_normalised(&self) -> bool {
        self.normalised.is_some()
    }
}

/// A likely fix for a refused license, as a sentence starting with "; ", or nothing.
fn license_hint(expression: &str) -> String {
    let words: Vec<&str> = expression
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '/' | ','))
        .filter(|w| !w.is_empty())
        .collect();
    let unknown: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| {
            !matches!(w.to_ascii_uppercase().as_str(), "AND" | "OR" | "WITH")
                && spdx::license_id(w.trim_end_matches('+')).is_none()
                && spdx::exception_id(w).is_none()
                && spdx::imprecise_license_id(w).is_none()
                && !w.starts_with("LicenseRef-")
        })
        .collect();
    if expression.to_ascii_lowercase().contains("and/or") {
        return "; write OR (or AND) instead of and/or".to_owned();
    }
    match unknown.as_slice() {
        [] => String::new(),
        [one] => format!(
            "; {one:?} is not an SPDX license id: for a license without one, write LicenseRef-{}",
            one.chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                })
                .collect::<String>()
        ),
        many => format!(
            "; {} are not SPDX license ids (for a license without one, write LicenseRef-NAME)",
            many.iter()
                .map(|w| format!("{w:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl fmt::Display for License {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl fmt::Debug for License {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.normalised {
            Some(n) => write!(f, "License({} = {n})", self.written),
            None => write!(f, "License({})", self.written),
        }
    }
}

impl FromStr for License {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        License::new(s)
    }
}

serde_via_display!(License);

/// Parses a homepage or repository URL: absolute, `http` or `https` (see [`HttpUrl`]).
pub fn parse_url(field: &str, value: &str) -> Result<HttpUrl> {
    HttpUrl::parse(field, value)
}

/// Everything known about one published version of a package.
///
/// Fields are public for construction; [`PackageMetadata::validate`] checks every rule and
/// registries call it before storing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageMetadata {
    /// Which package and version this is.
    pub id: PackageId,
    /// One paragraph saying what the package is for.
    pub description: String,
    /// Authors, e.g. `Jane Doe <jane@example.com>`.
    #[serde(default)]
    pub authors: Vec<String>,
    /// SPDX license expression.
    #[serde(default)]
    pub license: Option<License>,
    /// Source repository.
    #[serde(default)]
    pub repository: Option<HttpUrl>,
    /// Home page.
    #[serde(default)]
    pub homepage: Option<HttpUrl>,
    /// Search keywords (at most 10, each at most 32 characters).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Categories (at most 5).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Direct dependencies: package → requirement (cargo semantics: `1.2` means `^1.2`).
    #[serde(default)]
    pub dependencies: BTreeMap<PackageRef, VersionReq>,
    /// Direct dependencies declared under a name of the package's own choosing (cargo's
    /// `alias = { package = "…", version = "…" }`): alias → package and requirement. This is
    /// how one package depends on another twice (two semver-compatible series under two
    /// names); see [`PackageMetadata::all_dependencies`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub renamed_dependencies: BTreeMap<Name, RenamedDependency>,
    /// What another packaging format says about this version, kept exactly as given: format
    /// name (`cargo`) → a JSON text. A crate carries the fields of its Cargo index entry that
    /// the marketplace's own model has no place for (features, dependency kinds and targets,
    /// `links`, `rust_version`) under `cargo`. Immutable and signed (see
    /// [`crate::signing_payload`]); empty for a marketplace package.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: BTreeMap<String, String>,
    /// Content hash of the archive.
    pub checksum: ContentHash,
    /// Archive size in bytes.
    pub size: u64,
    /// Detached signature over the signing payload, if signed.
    #[serde(default)]
    pub signature: Option<Signature>,
    /// When the version was published (UTC). Signed, so backends store it exactly, nanoseconds
    /// included.
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
}

impl PackageMetadata {
    /// Minimal metadata for `id` with `checksum`; other fields empty, `published_at` now (whole
    /// seconds).
    pub fn new(
        id: PackageId,
        description: impl Into<String>,
        checksum: ContentHash,
        size: u64,
    ) -> Self {
        PackageMetadata {
            id,
            description: description.into(),
            authors: Vec::new(),
            license: None,
            repository: None,
            homepage: None,
            keywords: Vec::new(),
            categories: Vec::new(),
            dependencies: BTreeMap::new(),
            renamed_dependencies: BTreeMap::new(),
            extensions: BTreeMap::new(),
            checksum,
            size,
            signature: None,
            published_at: now_seconds(),
        }
    }

    /// Every direct dependency, plain and renamed: package and requirement, plain ones first
    /// (a package may appear twice, under its own name and under an alias).
    pub fn all_dependencies(&self) -> impl Iterator<Item = (&PackageRef, &VersionReq)> {
        self.dependencies.iter().chain(
            self.renamed_dependencies
                .values()
                .map(|r| (&r.package, &r.requirement)),
        )
    }

    /// Checks every rule of the data model; the error names the field and the rule.
    pub fn validate(&self) -> Result<()> {
        validate_description(&self.description)?;
        validate_authors(&self.authors)?;
        // Homepage and repository are `HttpUrl`s: valid by construction.
        validate_keywords(&self.keywords)?;
        validate_categories(&self.categories)?;
        validate_dependencies(&self.id, &self.dependencies, &self.renamed_dependencies)?;
        validate_extensions(&self.extensions)?;
        if let Some(signature) = &self.signature {
            let expected = signature.algorithm().signature_len();
            if signature.bytes.len() != expected {
                return Err(Error::invalid(
                    "signature",
                    hex::encode(&signature.bytes),
                    format!("an {} signature is {expected} bytes", signature.algorithm()),
                ));
            }
        }
        Ok(())
    }
}

/// The current time in UTC, truncated to whole seconds.
pub fn now_seconds() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

fn validate_text(field: &str, value: &str, min: usize, max: usize) -> Result<()> {
    let len = value.chars().count();
    if len < min {
        return Err(Error::invalid(field, value, "must not be empty"));
    }
    if len > max {
        return Err(Error::invalid(
            field,
            value,
            format!("must be at most {max} characters, got {len}"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::invalid(
            field,
            value,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks authors: at most 32, each 1–256 characters without control characters.
pub fn validate_authors(authors: &[String]) -> Result<()> {
    if authors.len() > MAX_AUTHORS {
        return Err(Error::invalid(
            "authors",
            authors.join(", "),
            format!("at most {MAX_AUTHORS} authors"),
        ));
    }
    authors
        .iter()
        .try_for_each(|author| validate_text("authors", author, 1, MAX_AUTHOR_LEN))
}

/// Checks direct dependencies, plain and renamed: at most 256 in all; no package named twice
/// among the plain ones (names compare ignoring case and `-`/`_`); aliases unique and distinct
/// from the plain names; and no requirement on the package itself that its own version meets
/// (a package may depend on another semver-compatible series of itself, as crates do with the
/// semver trick, never on itself).
pub fn validate_dependencies(
    id: &PackageId,
    dependencies: &BTreeMap<PackageRef, VersionReq>,
    renamed: &BTreeMap<Name, RenamedDependency>,
) -> Result<()> {
    let count = dependencies.len() + renamed.len();
    if count > MAX_DEPENDENCIES {
        return Err(Error::invalid(
            "dependencies",
            format!("{count} entries"),
            format!("at most {MAX_DEPENDENCIES} direct dependencies"),
        ));
    }
    let own = id.package().canonical();
    let on_itself = |field: &str, dep: &PackageRef, req: &VersionReq| {
        if dep.canonical() == own && req.matches(&id.version) {
            return Err(Error::invalid(
                field,
                format!("{dep} {req}"),
                format!(
                    "a package cannot depend on itself ({req} matches its own version {}); only another series of it, e.g. a requirement its version does not meet",
                    id.version
                ),
            ));
        }
        Ok(())
    };
    // The names dependencies are known by inside the package: plain ones by their package
    // (`a/log` and `log` differ), renamed ones by their alias.
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (dep, req) in dependencies {
        on_itself("dependencies", dep, req)?;
        if let Some(first) = names.insert(dep.canonical(), dep.to_string()) {
            return Err(Error::invalid(
                "dependencies",
                format!("{first}, {dep}"),
                "name the same package (names compare ignoring case and `-`/`_`); keep one requirement, or give the second a name of its own with `package = …`",
            ));
        }
    }
    for (alias, renamed) in renamed {
        on_itself(
            &format!("dependencies.{alias}"),
            &renamed.package,
            &renamed.requirement,
        )?;
        if let Some(first) = names.insert(alias.canonical(), alias.to_string()) {
            return Err(Error::invalid(
                "dependencies",
                format!("{first}, {alias}"),
                "are the same dependency name (names compare ignoring case and `-`/`_`); give each dependency a name of its own",
            ));
        }
    }
    Ok(())
}

/// Checks extensions: at most 8; each name 1–32 lowercase ASCII letters, digits and `-`,
/// starting with a letter; each value a JSON text; 4 MiB in all.
pub fn validate_extensions(extensions: &BTreeMap<String, String>) -> Result<()> {
    if extensions.len() > MAX_EXTENSIONS {
        return Err(Error::invalid(
            "extensions",
            extensions.keys().cloned().collect::<Vec<_>>().join(", "),
            format!("at most {MAX_EXTENSIONS} extensions"),
        ));
    }
    let mut total = 0usize;
    for (name, value) in extensions {
        let name_ok = name.len() <= MAX_EXTENSION_NAME_LEN
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(Error::invalid(
                "extensions",
                name,
                format!(
                    "an extension name is 1-{MAX_EXTENSION_NAME_LEN} lowercase ASCII letters, digits and '-', starting with a letter"
                ),
            ));
        }
        total += value.len();
        if total > MAX_EXTENSION_BYTES {
            return Err(Error::invalid(
                format!("extensions.{name}"),
                format!("{total} bytes"),
                format!("extensions hold at most {MAX_EXTENSION_BYTES} bytes in all"),
            ));
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(value) {
            return Err(Error::invalid(
                format!("extensions.{name}"),
                value.chars().take(80).collect::<String>(),
                format!("must be a JSON text ({e})"),
            ));
        }
    }
    Ok(())
}

/// A dependency under a name of the depending package's choosing: which package, and the
/// requirement on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RenamedDependency {
    /// The package depended on.
    pub package: PackageRef,
    /// The requirement on it (cargo semantics).
    #[serde(rename = "req")]
    pub requirement: VersionReq,
}

/// Checks a description: at most 2000 characters, no control characters but newline and tab.
pub fn validate_description(description: &str) -> Result<()> {
    validate_text("description", description, 0, MAX_DESCRIPTION_LEN)
}

fn validate_slug(field: &str, value: &str, max: usize) -> Result<()> {
    validate_text(field, value, 1, max)?;
    let first_ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'));
    if !(first_ok && rest_ok) {
        return Err(Error::invalid(
            field,
            value,
            "must start with an ASCII letter or digit and contain only letters, digits, '-', '_' and '+'",
        ));
    }
    Ok(())
}

/// Checks keywords: at most 10, each 1–32 characters of letters, digits, `-`, `_`, `+`.
pub fn validate_keywords(keywords: &[String]) -> Result<()> {
    if keywords.len() > MAX_KEYWORDS {
        return Err(Error::invalid(
            "keywords",
            keywords.join(", "),
            format!("at most {MAX_KEYWORDS} keywords, got {}", keywords.len()),
        ));
    }
    keywords
        .iter()
        .try_for_each(|k| validate_slug("keywords", k, MAX_KEYWORD_LEN))
}

/// Checks one category slug as crates.io writes them: one or more segments joined by `::`
/// (`development-tools::debugging`), each starting with an ASCII letter or digit and holding
/// only letters, digits, `-`, `_` and `+`; 1–64 characters in all.
pub fn validate_category(category: &str) -> Result<()> {
    validate_text("categories", category, 1, MAX_CATEGORY_LEN)?;
    let segment_ok = |segment: &str| {
        segment
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
    };
    if !category.split("::").all(segment_ok) {
        return Err(Error::invalid(
            "categories",
            category,
            "must be slugs joined by '::' (e.g. development-tools::debugging), each starting with an ASCII letter or digit and holding only letters, digits, '-', '_' and '+'",
        ));
    }
    Ok(())
}

/// Checks categories: at most 5, each a category slug ([`validate_category`]).
pub fn validate_categories(categories: &[String]) -> Result<()> {
    if categories.len() > MAX_CATEGORIES {
        return Err(Error::invalid(
            "categories",
            categories.join(", "),
            format!(
                "at most {MAX_CATEGORIES} categories, got {}",
                categories.len()
            ),
        ));
    }
    categories.iter().try_for_each(|c| validate_category(c))
}

/// The fields of a published version that may change afterwards (see
/// [`crate::Registry::update_metadata`]). `None` leaves a field as it is; for `homepage` and
/// `repository`, `Some(None)` clears it.
///
/// In its serde form an unchanged field is absent and a cleared URL is `null`, so the
/// difference survives a round trip (a backend that stores events as JSON keeps it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetadataUpdate {
    /// New description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New keywords.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keywords: Option<Vec<String>>,
    /// New categories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// New home page (`Some(None)` clears it).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_present"
    )]
    pub homepage: Option<Option<HttpUrl>>,
    /// New repository (`Some(None)` clears it).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_present"
    )]
    pub repository: Option<Option<HttpUrl>>,
}

/// A serde helper for `Option<Option<T>>` fields that tell "cleared" from "unchanged": a field
/// that is present, `null` included, reads as `Some(_)`; an absent one takes the default,
/// `None` (use with `#[serde(default, skip_serializing_if = "Option::is_none")]`).
pub fn deserialize_present<'de, D, T>(
    deserializer: D,
) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl MetadataUpdate {
    /// Checks the new values with the same rules as [`PackageMetadata::validate`].
    pub fn validate(&self) -> Result<()> {
        if let Some(d) = &self.description {
            validate_description(d)?;
        }
        if let Some(k) = &self.keywords {
            validate_keywords(k)?;
        }
        if let Some(c) = &self.categories {
            validate_categories(c)?;
        }
        Ok(())
    }

    /// Applies the update to `metadata` (after [`MetadataUpdate::validate`]).
    pub fn apply_to(&self, metadata: &mut PackageMetadata) {
        if let Some(d) = &self.description {
            metadata.description.clone_from(d);
        }
        if let Some(k) = &self.keywords {
            metadata.keywords.clone_from(k);
        }
        if let Some(c) = &self.categories {
            metadata.categories.clone_from(c);
        }
        if let Some(h) = &self.homepage {
            metadata.homepage.clone_from(h);
        }
        if let Some(r) = &self.repository {
            metadata.repository.clone_from(r);
        }
    }

    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &MetadataUpdate::default()
    }
}

/// Why and when a version was yanked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct YankInfo {
    /// The reason given.
    pub reason: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl YankInfo {
    /// A yank for `reason` at `at`.
    pub fn new(reason: impl Into<String>, at: OffsetDateTime) -> Self {
        YankInfo {
            reason: reason.into(),
            at,
        }
    }
}

/// A version's metadata together with the state that changes after publishing: what registries
/// list and what search engines index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PackageRecord {
    /// The metadata (after any metadata updates).
    pub metadata: PackageMetadata,
    /// Set when the version is yanked.
    pub yanked: Option<YankInfo>,
    /// Downloads of the whole package (all versions), used for ranking.
    pub downloads: u64,
}

impl PackageRecord {
    /// A record for a version that is not yanked and has no downloads.
    pub fn new(metadata: PackageMetadata) -> Self {
        PackageRecord {
            metadata,
            yanked: None,
            downloads: 0,
        }
    }

    /// The record, yanked when `yanked` is set.
    pub fn with_yank(mut self, yanked: Option<YankInfo>) -> Self {
        self.yanked = yanked;
        self
    }

    /// The record with `downloads` downloads of the whole package.
    pub fn with_downloads(mut self, downloads: u64) -> Self {
        self.downloads = downloads;
        self
    }

    /// Whether the version is yanked.
    pub fn is_yanked(&self) -> bool {
        self.yanked.is_some()
    }
}
