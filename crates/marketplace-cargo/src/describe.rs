//! What a crate's version says about itself, from either source (the publish body cargo sends
//! or the normalised `Cargo.toml` inside a `.crate`), and the marketplace metadata it makes.

use std::collections::BTreeMap;

use marketplace_core::{
    ContentHash, Error, MAX_AUTHOR_LEN, MAX_AUTHORS, MAX_CATEGORIES, MAX_DEPENDENCIES,
    MAX_DESCRIPTION_LEN, MAX_KEYWORDS, Name, PackageId, PackageMetadata, PackageRef,
    RenamedDependency, Result, parse_requirement, parse_url, parse_version, validate_category,
    validate_keywords,
};

use crate::index::{CargoFields, DependencyKind, EXTENSION, IndexDependency};

/// How a field that breaks a marketplace rule is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Refused with `Invalid` naming the field (a publish: its author can fix it).
    Refuse,
    /// Left out (an import of crates another registry accepted: the crate is kept, a
    /// license, URL or keyword the marketplace cannot read is not).
    Drop,
}

/// A crate's version as it describes itself.
#[derive(Debug, Clone, Default)]
pub struct CrateDescription {
    /// The crate's name, as spelled.
    pub name: String,
    /// The version, as written.
    pub vers: String,
    /// Every dependency.
    pub deps: Vec<IndexDependency>,
    /// Every feature, in either syntax.
    pub features: BTreeMap<String, Vec<String>>,
    /// Authors.
    pub authors: Vec<String>,
    /// The description.
    pub description: Option<String>,
    /// Home page URL.
    pub homepage: Option<String>,
    /// Repository URL.
    pub repository: Option<String>,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// SPDX license expression.
    pub license: Option<String>,
    /// The native library it links.
    pub links: Option<String>,
    /// The oldest Rust it builds with.
    pub rust_version: Option<String>,
}

/// Most features a crate may declare.
pub const MAX_FEATURES: usize = 5_000;

impl CrateDescription {
    /// The name of the top-level directory of its `.crate`: `name-version`.
    pub fn top_dir(&self) -> String {
        format!("{}-{}", self.name, self.vers)
    }

    /// The marketplace metadata of this version (checksum and size placeholders, set by the
    /// archive reader), with its Cargo fields as the `cargo` extension.
    ///
    /// The marketplace's own dependency graph of a crate (what `mkt` resolves, what the
    /// dependents of a package are) holds its unconditional dependencies on crates of this
    /// registry: kind normal or build, not optional, for every platform. Cargo's whole
    /// picture — optional, dev and platform dependencies, other registries, features — is
    /// in the extension, and only cargo resolves it.
    pub fn to_metadata(&self, strictness: Strictness) -> Result<PackageMetadata> {
        let name = Name::new(&self.name)?;
        let version = parse_version(&self.vers)?;
        let id = PackageId::new(None, name, version);
        let drop = strictness == Strictness::Drop;
        let mut description = self.description.clone().unwrap_or_default();
        if drop {
            description = description
                .chars()
                .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
                .take(MAX_DESCRIPTION_LEN)
                .collect();
        }
        let mut m = PackageMetadata::new(id, description, ContentHash::sha256(b""), 0);
        m.authors = if drop {
            self.authors
                .iter()
                .filter(|a| !a.is_empty() && !a.chars().any(char::is_control))
                .map(|a| a.chars().take(MAX_AUTHOR_LEN).collect())
                .take(MAX_AUTHORS)
                .collect()
        } else {
            self.authors.clone()
        };
        m.license = lenient(strictness, self.license.as_deref(), |l| l.parse())?;
        m.homepage = lenient(strictness, self.homepage.as_deref(), |u| {
            parse_url("homepage", u)
        })?;
        m.repository = lenient(strictness, self.repository.as_deref(), |u| {
            parse_url("repository", u)
        })?;
        if drop {
            m.keywords = self
                .keywords
                .iter()
                .filter(|k| validate_keywords(std::slice::from_ref(k)).is_ok())
                .take(MAX_KEYWORDS)
                .cloned()
                .collect();
            m.categories = self
                .categories
                .iter()
                .filter(|c| validate_category(c).is_ok())
                .take(MAX_CATEGORIES)
                .cloned()
                .collect();
        } else {
            m.keywords.clone_from(&self.keywords);
            m.categories.clone_from(&self.categories);
        }
        self.graph_dependencies(&mut m);
        if self.features.len() > MAX_FEATURES {
            return Err(Error::invalid(
                "features",
                format!("{} features", self.features.len()),
                format!("a crate declares at most {MAX_FEATURES} features"),
            ));
        }
        let fields = CargoFields {
            deps: self.deps.clone(),
            links: self.links.clone(),
            rust_version: self.rust_version.clone(),
            ..CargoFields::default()
        }
        .with_features(self.features.clone());
        m.extensions
            .insert(EXTENSION.to_owned(), fields.to_extension());
        m.validate()?;
        Ok(m)
    }

    /// The unconditional dependencies on crates of this registry, as the marketplace's own
    /// dependencies: the first requirement per crate name and per alias, none on the crate
    /// itself, at most the marketplace's limit.
    fn graph_dependencies(&self, m: &mut PackageMetadata) {
        let own = m.id.package().canonical();
        let mut names: BTreeMap<String, ()> = BTreeMap::new();
        for dep in &self.deps {
            if dep.optional
                || dep.target.is_some()
                || dep.registry.is_some()
                || dep.kind == DependencyKind::Dev
            {
                continue;
            }
            if m.dependencies.len() + m.renamed_dependencies.len() >= MAX_DEPENDENCIES {
                break;
            }
            let (Ok(package), Ok(requirement)) = (
                Name::new(dep.crate_name()).map(|n| PackageRef::new(None, n)),
                parse_requirement(&dep.req),
            ) else {
                continue;
            };
            if package.canonical() == own {
                continue;
            }
            let Ok(alias) = Name::new(&dep.name) else {
                continue;
            };
            if names.insert(alias.canonical(), ()).is_some() {
                continue;
            }
            if dep.package.is_some() {
                m.renamed_dependencies.insert(
                    alias,
                    RenamedDependency {
                        package,
                        requirement,
                    },
                );
            } else {
                m.dependencies.insert(package, requirement);
            }
        }
    }
}

/// An optional field parsed by `parse`: refused, or left out, when it does not.
fn lenient<T>(
    strictness: Strictness,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T>,
) -> Result<Option<T>> {
    match value.filter(|v| !v.is_empty()).map(parse) {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(_)) if strictness == Strictness::Drop => Ok(None),
        Some(Err(e)) => Err(e),
    }
}

/// The top-level directory a `.crate` must have, checked: `Invalid` naming both otherwise.
pub(crate) fn check_top(description: &CrateDescription, top: &str) -> Result<()> {
    let expected = description.top_dir();
    if top != expected {
        return Err(Error::invalid(
            "crate",
            top,
            format!(
                "a .crate holds one top-level directory named after its crate and version, {expected:?}"
            ),
        ));
    }
    Ok(())
}
