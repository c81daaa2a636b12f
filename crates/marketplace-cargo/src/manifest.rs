//! The `Cargo.toml` inside a `.crate`: the manifest as cargo normalised it for publishing.

use std::collections::BTreeMap;

use marketplace_core::{Error, Result};
use serde::Deserialize;

use crate::describe::CrateDescription;
use crate::index::{DependencyKind, IndexDependency};

#[derive(Deserialize)]
struct Manifest {
    package: Option<Package>,
    /// Older manifests spell `[package]` as `[project]`.
    project: Option<Package>,
    #[serde(flatten)]
    tables: Tables,
    #[serde(default)]
    target: BTreeMap<String, Tables>,
    #[serde(default)]
    features: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    /// Absent means `0.0.0` since cargo 1.75; a published crate always has one.
    version: Option<toml::Value>,
    #[serde(default)]
    authors: Option<toml::Value>,
    description: Option<toml::Value>,
    homepage: Option<toml::Value>,
    repository: Option<toml::Value>,
    #[serde(default)]
    keywords: Option<toml::Value>,
    #[serde(default)]
    categories: Option<toml::Value>,
    license: Option<toml::Value>,
    links: Option<toml::Value>,
    #[serde(alias = "rust_version", rename = "rust-version")]
    rust_version: Option<toml::Value>,
}

/// The three dependency tables, of the manifest or of one platform.
#[derive(Deserialize, Default)]
struct Tables {
    #[serde(default)]
    dependencies: BTreeMap<String, Dependency>,
    #[serde(default, alias = "dev_dependencies", rename = "dev-dependencies")]
    dev_dependencies: BTreeMap<String, Dependency>,
    #[serde(default, alias = "build_dependencies", rename = "build-dependencies")]
    build_dependencies: BTreeMap<String, Dependency>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Dependency {
    Version(String),
    Detailed(Box<DetailedDependency>),
}

#[derive(Deserialize)]
struct DetailedDependency {
    version: Option<String>,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    optional: bool,
    #[serde(alias = "default_features", rename = "default-features")]
    default_features: Option<bool>,
    package: Option<String>,
    #[serde(rename = "registry-index")]
    registry_index: Option<String>,
    /// Set only when a path or git dependency was not turned into a registry one.
    path: Option<String>,
    git: Option<String>,
}

/// A string field (a workspace-inherited field is resolved in a published manifest; anything
/// else is left out).
fn text(value: Option<toml::Value>) -> Option<String> {
    match value {
        Some(toml::Value::String(s)) => Some(s),
        _ => None,
    }
}

fn texts(value: Option<toml::Value>) -> Vec<String> {
    match value {
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                toml::Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads a normalised `Cargo.toml` as a crate's description. Dependencies that carry no
/// `registry-index` come from the registry the crate was published to, which for an import of
/// crates.io's files is the mirror itself, so they are stated without a registry; one with a
/// `registry-index` keeps it.
///
/// Errors: `Invalid` when the text is not TOML or has no `[package]` with a name and version.
pub fn parse_manifest(manifest_text: &str) -> Result<CrateDescription> {
    let manifest: Manifest = toml::from_str(manifest_text)
        .map_err(|e| Error::invalid("Cargo.toml", "", format!("does not parse: {e}")))?;
    let package = manifest
        .package
        .or(manifest.project)
        .ok_or_else(|| Error::invalid("Cargo.toml", "", "has no [package] table"))?;
    let vers = text(package.version)
        .ok_or_else(|| Error::invalid("Cargo.toml", &package.name, "states no version"))?;
    let mut deps = Vec::new();
    let platforms = std::iter::once((None, &manifest.tables)).chain(
        manifest
            .target
            .iter()
            .map(|(target, tables)| (Some(target.as_str()), tables)),
    );
    for (target, tables) in platforms {
        push_deps(
            &mut deps,
            target,
            DependencyKind::Normal,
            &tables.dependencies,
        );
        push_deps(
            &mut deps,
            target,
            DependencyKind::Dev,
            &tables.dev_dependencies,
        );
        push_deps(
            &mut deps,
            target,
            DependencyKind::Build,
            &tables.build_dependencies,
        );
    }
    Ok(CrateDescription {
        name: package.name,
        vers,
        deps,
        features: manifest.features,
        authors: texts(package.authors),
        description: text(package.description),
        homepage: text(package.homepage),
        repository: text(package.repository),
        keywords: texts(package.keywords),
        categories: texts(package.categories),
        license: text(package.license),
        links: text(package.links),
        rust_version: text(package.rust_version),
    })
}

fn push_deps(
    deps: &mut Vec<IndexDependency>,
    target: Option<&str>,
    kind: DependencyKind,
    table: &BTreeMap<String, Dependency>,
) {
    for (name, dep) in table {
        let (req, detail) = match dep {
            Dependency::Version(req) => (Some(req.as_str()), None),
            Dependency::Detailed(d) => (d.version.as_deref(), Some(d.as_ref())),
        };
        // A path or git dependency without a version was never a registry dependency (old
        // cargo left dev-dependencies of that kind in published manifests).
        if req.is_none() && detail.is_some_and(|d| d.path.is_some() || d.git.is_some()) {
            continue;
        }
        let req = req.unwrap_or("*");
        deps.push(IndexDependency {
            name: name.clone(),
            req: normalise_requirement(req),
            features: detail.map(|d| d.features.clone()).unwrap_or_default(),
            optional: detail.is_some_and(|d| d.optional),
            default_features: detail.and_then(|d| d.default_features).unwrap_or(true),
            target: target.map(str::to_owned),
            kind,
            registry: detail.and_then(|d| d.registry_index.clone()),
            package: detail.and_then(|d| d.package.clone()),
        });
    }
}

/// A requirement in semver's display form, as cargo sends it (`1.2` → `^1.2`); kept as
/// written when semver cannot read it.
pub(crate) fn normalise_requirement(req: &str) -> String {
    match marketplace_core::semver::VersionReq::parse(req) {
        Ok(parsed) => parsed.to_string(),
        Err(_) => req.to_owned(),
    }
}
