//! `marketplace.toml`: the manifest at the root of every package.

use std::collections::BTreeMap;

use marketplace_core::HttpUrl;
use marketplace_core::semver::VersionReq;
use marketplace_core::{
    ContentHash, Error, License, Name, PackageId, PackageMetadata, PackageRef, RenamedDependency,
    Result, now_seconds, parse_requirement_for, parse_url, parse_version, validate_authors,
    validate_categories, validate_dependencies, validate_description, validate_keywords,
};
use serde::Deserialize;

/// The file name of the manifest.
pub const MANIFEST_FILE: &str = "marketplace.toml";

/// Longest manifest accepted, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    package: RawPackage,
    /// `name = "requirement"`, or `alias = { package = "name", version = "requirement" }`.
    #[serde(default)]
    dependencies: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    name: String,
    version: String,
    namespace: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    authors: Vec<String>,
    license: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    homepage: Option<String>,
    repository: Option<String>,
    readme: Option<String>,
}

/// A parsed and validated manifest: every field follows the rules of the data model. Made only
/// by [`Manifest::parse`] (the type is `#[non_exhaustive]`), so it is valid wherever it is seen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Manifest {
    /// The package and version it describes.
    pub id: PackageId,
    /// Description.
    pub description: String,
    /// Authors.
    pub authors: Vec<String>,
    /// SPDX license expression.
    pub license: Option<License>,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// Home page.
    pub homepage: Option<HttpUrl>,
    /// Repository.
    pub repository: Option<HttpUrl>,
    /// Dependencies.
    pub dependencies: BTreeMap<PackageRef, VersionReq>,
    /// Dependencies under a name of the package's choosing (`alias = { package = … }`).
    pub renamed_dependencies: BTreeMap<Name, RenamedDependency>,
    /// The readme's path inside the package (`readme = "docs/README.md"`), when it is not a
    /// conventional `README.md` at the top (see [`crate::find_readme`]).
    pub readme: Option<String>,
}

fn field(name: &str) -> String {
    format!("{MANIFEST_FILE} {name}")
}

/// One `[dependencies]` entry: `"requirement"`, `{ version = "requirement" }`, or
/// `{ package = "name", version = "requirement" }` (a dependency under another name). The
/// package, when the entry names one other than its key, and the requirement.
fn dependency(key: &str, value: &toml::Value) -> Result<(Option<PackageRef>, VersionReq)> {
    let at = field(&format!("dependencies.{key}"));
    let table = match value {
        toml::Value::String(req) => return Ok((None, parse_requirement_for(&at, req)?)),
        toml::Value::Table(table) => table,
        other => {
            return Err(Error::invalid(
                at,
                other.to_string(),
                "must be a requirement such as \"^1.2\" or a table such as { package = \"name\", version = \"^1.2\" }",
            ));
        }
    };
    if let Some(unknown) = table
        .keys()
        .find(|k| !matches!(k.as_str(), "package" | "version"))
    {
        return Err(Error::invalid(
            format!("{at}.{unknown}"),
            table[unknown].to_string(),
            "is not a dependency field (a dependency has `version` and, under another name, `package`)",
        ));
    }
    let text = |name: &str| -> Result<Option<&str>> {
        match table.get(name) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Error::invalid(
                format!("{at}.{name}"),
                other.to_string(),
                "must be a string",
            )),
        }
    };
    let Some(req) = text("version")? else {
        return Err(Error::invalid(
            &at,
            value.to_string(),
            "must give a `version` requirement such as \"^1.2\"",
        ));
    };
    let req = parse_requirement_for(&format!("{at}.version"), req)?;
    let package = text("package")?
        .map(|p| PackageRef::parse_field(&format!("{at}.package"), p))
        .transpose()?
        // `name = { package = "name" }` is a plain dependency.
        .filter(|p| p.to_string() != key);
    Ok((package, req))
}

/// A `readme` path: relative, `/`-separated, inside the package.
fn readme_path(path: &str) -> Result<String> {
    let at = field("package.readme");
    let path = path.trim_start_matches("./");
    let bad = |rule: &str| Err(Error::invalid(&at, path, rule.to_owned()));
    if path.is_empty() || path.len() > 255 {
        return bad("must be a path of 1 to 255 bytes inside the package, such as \"README.md\"");
    }
    if path.starts_with('/') || path.contains('\\') || path.chars().any(char::is_control) {
        return bad("must be a relative path with `/` separators, such as \"docs/README.md\"");
    }
    if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return bad("must name a file inside the package (no empty, `.` or `..` parts)");
    }
    Ok(path.to_owned())
}

impl Manifest {
    /// Parses and validates manifest text. Errors are `Invalid`, naming the manifest field.
    pub fn parse(text: &str) -> Result<Self> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            Error::invalid(
                MANIFEST_FILE,
                text.lines().next().unwrap_or(""),
                format!("is not a valid manifest: {}", e.message()),
            )
        })?;
        let p = raw.package;
        let name = Name::for_field(&field("package.name"), &p.name)?;
        let namespace = p
            .namespace
            .as_deref()
            .map(|ns| Name::for_field(&field("package.namespace"), ns))
            .transpose()?;
        let version = parse_version(&p.version).map_err(|_| {
            Error::invalid(
                field("package.version"),
                &p.version,
                "must be a semantic version like 1.2.3",
            )
        })?;
        let license = p
            .license
            .as_deref()
            .map(|l| {
                License::new(l).map_err(|e| match e {
                    // The license's own rule names spdx's reason and the likely fix.
                    Error::Invalid { rule, .. } => {
                        Error::invalid(field("package.license"), l, rule)
                    }
                    other => other,
                })
            })
            .transpose()?;
        let homepage = p
            .homepage
            .as_deref()
            .map(|u| parse_url(&field("package.homepage"), u))
            .transpose()?;
        let repository = p
            .repository
            .as_deref()
            .map(|u| parse_url(&field("package.repository"), u))
            .transpose()?;
        let readme = p.readme.as_deref().map(readme_path).transpose()?;
        let mut dependencies = BTreeMap::new();
        let mut renamed_dependencies = BTreeMap::new();
        for (dep, value) in &raw.dependencies {
            let (package, req) = dependency(dep, value)?;
            match package {
                None => {
                    dependencies.insert(PackageRef::parse_field(&field("dependencies"), dep)?, req);
                }
                Some(package) => {
                    let alias = Name::for_field(&field("dependencies"), dep)?;
                    renamed_dependencies.insert(
                        alias,
                        RenamedDependency {
                            package,
                            requirement: req,
                        },
                    );
                }
            }
        }
        let id = PackageId::new(namespace, name, version);
        // Every data-model rule of the fields a manifest sets, checked once here: the metadata
        // built from a `Manifest` is valid by construction.
        validate_description(&p.description)?;
        validate_authors(&p.authors)?;
        validate_keywords(&p.keywords)?;
        validate_categories(&p.categories)?;
        validate_dependencies(&id, &dependencies, &renamed_dependencies)?;
        Ok(Manifest {
            id,
            description: p.description,
            authors: p.authors,
            license,
            keywords: p.keywords,
            categories: p.categories,
            homepage,
            repository,
            dependencies,
            renamed_dependencies,
            readme,
        })
    }

    /// The metadata of the package archive with this manifest, published now. It satisfies
    /// [`PackageMetadata::validate`] because the manifest was validated when parsed.
    pub fn to_metadata(&self, checksum: ContentHash, size: u64) -> PackageMetadata {
        let mut m = PackageMetadata::new(self.id.clone(), self.description.clone(), checksum, size);
        m.authors.clone_from(&self.authors);
        m.license.clone_from(&self.license);
        m.keywords.clone_from(&self.keywords);
        m.categories.clone_from(&self.categories);
        m.homepage.clone_from(&self.homepage);
        m.repository.clone_from(&self.repository);
        m.dependencies.clone_from(&self.dependencies);
        m.renamed_dependencies
            .clone_from(&self.renamed_dependencies);
        m.published_at = now_seconds();
        m
    }

    /// The name of the archive's top-level directory: `name-version`.
    pub fn top_dir(&self) -> String {
        format!("{}-{}", self.id.name, self.id.version)
    }
}
