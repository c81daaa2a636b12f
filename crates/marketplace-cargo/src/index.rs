//! The sparse index: where a crate's file is, and the line per version cargo reads from it.

use std::collections::BTreeMap;

use marketplace_core::time::format_description::well_known::Rfc3339;
use marketplace_core::{Error, HashAlgorithm, PackageMetadata, Result};
use serde::{Deserialize, Serialize};

/// The name of the extension a crate's Cargo fields are kept under
/// ([`PackageMetadata::extensions`]).
pub const EXTENSION: &str = "cargo";

/// One dependency as the index states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDependency {
    /// The name the depending crate uses (its alias, when renamed).
    pub name: String,
    /// The requirement, in semver's display form (`^1.2`).
    pub req: String,
    /// Features of the dependency it enables.
    pub features: Vec<String>,
    /// Whether it is optional (enabled by a feature).
    pub optional: bool,
    /// Whether the dependency's default features are on.
    pub default_features: bool,
    /// The platform it is for (`cfg(windows)`, a target triple), or every platform.
    pub target: Option<String>,
    /// `normal`, `dev` or `build`.
    pub kind: DependencyKind,
    /// The index URL of the registry it comes from, when not this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The crate's real name, when `name` is an alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

impl IndexDependency {
    /// The name of the crate depended on (the real one, not the alias).
    pub fn crate_name(&self) -> &str {
        self.package.as_deref().unwrap_or(&self.name)
    }
}

/// What a dependency is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DependencyKind {
    /// Built with the crate and linked into it.
    Normal,
    /// Only for its tests, examples and benchmarks.
    Dev,
    /// For its build script.
    Build,
}

impl DependencyKind {
    /// Parses `normal`, `dev` or `build`; `Invalid` naming `field` otherwise.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        match text {
            "normal" => Ok(DependencyKind::Normal),
            "dev" => Ok(DependencyKind::Dev),
            "build" => Ok(DependencyKind::Build),
            other => Err(Error::invalid(
                field,
                other,
                "a dependency kind is normal, dev or build",
            )),
        }
    }
}

/// The Cargo fields of a crate's version that the marketplace's own model has no place for,
/// stored as the `cargo` extension of its metadata: with the name, version, checksum,
/// publication time and yank state the registry keeps, they make the index line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CargoFields {
    /// Every dependency, of every kind and target, in the order cargo gave them.
    pub deps: Vec<IndexDependency>,
    /// Features: name → what each enables (the forms every cargo reads).
    pub features: BTreeMap<String, Vec<String>>,
    /// Features using `dep:` or `?` (cargo 1.60 and later), kept apart so older cargo
    /// ignores them; with them, `v` is 2.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub features2: BTreeMap<String, Vec<String>>,
    /// The native library the crate links, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
    /// The oldest Rust the crate builds with, if stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rust_version: Option<String>,
}

impl CargoFields {
    /// Puts each feature where cargo looks for it: `dep:` and `?` forms in `features2`.
    pub fn with_features(mut self, all: BTreeMap<String, Vec<String>>) -> Self {
        for (name, values) in all {
            let new_syntax = values
                .iter()
                .any(|v| v.starts_with("dep:") || v.contains("?/"));
            if new_syntax {
                self.features2.insert(name, values);
            } else {
                self.features.insert(name, values);
            }
        }
        self
    }

    /// The fields of a crate's metadata; `None` for a package that is not a crate. `Invalid`
    /// when the stored extension does not read as Cargo fields.
    pub fn of(metadata: &PackageMetadata) -> Option<Result<Self>> {
        let text = metadata.extensions.get(EXTENSION)?;
        Some(serde_json::from_str(text).map_err(|e| {
            Error::invalid(
                format!("extensions.{EXTENSION}"),
                metadata.id.to_string(),
                format!("does not read as a crate's Cargo fields: {e}"),
            )
        }))
    }

    /// The JSON text stored as the extension (compact, fields in a fixed order).
    pub fn to_extension(&self) -> String {
        // Plain strings, booleans and maps of them: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A line of a crate's index file: one version, as cargo reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexLine {
    /// The crate's name, as published.
    pub name: String,
    /// The version, as published.
    pub vers: String,
    /// Its dependencies.
    pub deps: Vec<IndexDependency>,
    /// SHA-256 of the `.crate` file, lowercase hex.
    pub cksum: String,
    /// Features (the forms every cargo reads).
    pub features: BTreeMap<String, Vec<String>>,
    /// Whether the version is yanked.
    pub yanked: bool,
    /// The native library it links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
    /// 2 when `features2` is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<u32>,
    /// Features in the newer forms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features2: Option<BTreeMap<String, Vec<String>>>,
    /// The oldest Rust it builds with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rust_version: Option<String>,
    /// When it was published (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubtime: Option<String>,
}

impl IndexLine {
    /// The line of a crate's version; `None` for a package that is not a crate.
    ///
    /// Errors: `Invalid` if its Cargo fields do not read, or its checksum is not SHA-256 (the
    /// only hash cargo checks).
    pub fn of(metadata: &PackageMetadata, yanked: bool) -> Option<Result<Self>> {
        let fields = CargoFields::of(metadata)?;
        Some(fields.and_then(|fields| {
            if metadata.checksum.algorithm() != HashAlgorithm::Sha256 {
                return Err(Error::invalid(
                    "checksum",
                    metadata.checksum.to_string(),
                    "a crate's checksum must be SHA-256 (cargo checks no other)",
                ));
            }
            let features2 = (!fields.features2.is_empty()).then_some(fields.features2);
            Ok(IndexLine {
                name: metadata.id.name.to_string(),
                vers: metadata.id.version.to_string(),
                deps: fields.deps,
                cksum: hex::encode(metadata.checksum.digest()),
                features: fields.features,
                yanked,
                links: fields.links,
                v: features2.as_ref().map(|_| 2),
                features2,
                rust_version: fields.rust_version,
                pubtime: metadata
                    .published_at
                    .replace_nanosecond(0)
                    .unwrap_or(metadata.published_at)
                    .format(&Rfc3339)
                    .ok(),
            })
        }))
    }
}

/// Where a crate's file is under the index root, lower-cased as cargo asks for it: `1/a`,
/// `2/ab`, `3/a/abc`, `se/rd/serde`.
pub fn index_path(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.len() {
        0 => String::new(),
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
    }
}

/// The crate name an index path asks for, if it is one of cargo's paths (the inverse of
/// [`index_path`], case-insensitive: cargo asks in lower case).
pub fn name_from_index_path(path: &str) -> Option<&str> {
    let parts: Vec<&str> = path.split('/').collect();
    let (name, prefix_ok) = match parts.as_slice() {
        ["1", name] => (*name, name.len() == 1),
        ["2", name] => (*name, name.len() == 2),
        ["3", first, name] => (
            *name,
            name.len() == 3 && name.get(..1).is_some_and(|f| f.eq_ignore_ascii_case(first)),
        ),
        [ab, cd, name] => (
            *name,
            name.len() >= 4
                && name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case(ab))
                && name.get(2..4).is_some_and(|p| p.eq_ignore_ascii_case(cd)),
        ),
        _ => return None,
    };
    prefix_ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_paths_are_cargos() {
        for (name, path) in [
            ("a", "1/a"),
            ("ab", "2/ab"),
            ("abc", "3/a/abc"),
            ("Serde", "se/rd/serde"),
            ("cargo_fixture", "ca/rg/cargo_fixture"),
        ] {
            assert_eq!(index_path(name), path);
            assert_eq!(
                name_from_index_path(path).map(str::to_ascii_lowercase),
                Some(name.to_ascii_lowercase())
            );
        }
        for bad in [
            "",
            "1/ab",
            "3/b/abc",
            "se/rx/serde",
            "x/y/z/w",
            "config.json",
        ] {
            assert_eq!(name_from_index_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn new_feature_syntax_goes_to_features2() {
        let mut all = BTreeMap::new();
        all.insert("std".to_owned(), vec!["serde/std".to_owned()]);
        all.insert("json".to_owned(), vec!["dep:serde_json".to_owned()]);
        all.insert("weak".to_owned(), vec!["serde?/alloc".to_owned()]);
        let fields = CargoFields::default().with_features(all);
        assert_eq!(fields.features.keys().collect::<Vec<_>>(), ["std"]);
        assert_eq!(
            fields.features2.keys().collect::<Vec<_>>(),
            ["json", "weak"]
        );
    }
}
