//! Package names, namespaces, package references (`acme/web`) and package ids (`acme/web@1.2.3`).

use std::fmt;
use std::str::FromStr;

use semver::{Version, VersionReq};

use crate::error::{Error, Result};

/// Longest allowed name or namespace, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// Names refused because they are device names on Windows (compared case-insensitively).
pub const RESERVED_NAMES: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// A validated package name or namespace.
///
/// Rules: 1–64 ASCII letters, digits, `-` and `_`, starting with a letter, and not a reserved
/// device name. The spelling is kept as given; [`Name::canonical`] is the form uniqueness is
/// decided on (lowercase, `_` read as `-`), so `Web_Framework` and `web-framework` collide.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// Validates `value` as a package name; errors name the field `name`.
    pub fn new(value: &str) -> Result<Self> {
        Self::for_field("name", value)
    }

    /// Validates `value`, naming `field` (`name`, `namespace`, `dependencies`) in any error.
    pub fn for_field(field: &str, value: &str) -> Result<Self> {
        let rule = |rule: &str| Err(Error::invalid(field, value, rule));
        let Some(first) = value.chars().next() else {
            return rule("must not be empty");
        };
        if value.len() > MAX_NAME_LEN {
            return rule("must be at most 64 characters");
        }
        if !first.is_ascii_alphabetic() {
            return rule("must start with an ASCII letter");
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(Error::invalid(
                field,
                value,
                format!("may contain only ASCII letters, digits, '-' and '_' (found {bad:?})"),
            ));
        }
        let canonical = canonicalize(value);
        if RESERVED_NAMES.contains(&canonical.as_str()) {
            return rule("is a reserved name");
        }
        Ok(Name(value.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness is decided on: lowercase, with `_` replaced by `-`.
    pub fn canonical(&self) -> String {
        canonicalize(&self.0)
    }
}

fn canonicalize(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl FromStr for Name {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Name::new(s)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A package without a version: an optional namespace and a name. Text form `acme/web` or `web`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageRef {
    /// The namespace (owner or organisation), if any.
    pub namespace: Option<Name>,
    /// The package name.
    pub name: Name,
}

impl PackageRef {
    /// A reference from already validated parts.
    pub fn new(namespace: Option<Name>, name: Name) -> Self {
        PackageRef { namespace, name }
    }

    /// The key uniqueness is decided on: canonical namespace and name (`acme/web-framework`).
    pub fn canonical(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{}", ns.canonical(), self.name.canonical()),
            None => self.name.canonical(),
        }
    }

    /// This package at `version`.
    pub fn at(&self, version: Version) -> PackageId {
        PackageId {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            version,
        }
    }

    /// Parses `acme/web` or `web`, naming `field` in any error.
    pub fn parse_field(field: &str, s: &str) -> Result<Self> {
        match s.split_once('/') {
            Some((ns, name)) => Ok(PackageRef {
                namespace: Some(Name::for_field(&format!("{field} namespace"), ns)?),
                name: Name::for_field(field, name)?,
            }),
            None => Ok(PackageRef {
                namespace: None,
                name: Name::for_field(field, s)?,
            }),
        }
    }
}

impl fmt::Display for PackageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        write!(f, "{}", self.name)
    }
}

impl fmt::Debug for PackageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackageRef({self})")
    }
}

impl FromStr for PackageRef {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        PackageRef::parse_field("name", s)
    }
}

/// One version of one package. Text form `acme/web-framework@1.2.3` (namespace optional).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageId {
    /// The namespace (owner or organisation), if any.
    pub namespace: Option<Name>,
    /// The package name.
    pub name: Name,
    /// The exact version.
    pub version: Version,
}

impl PackageId {
    /// An id from already validated parts.
    pub fn new(namespace: Option<Name>, name: Name, version: Version) -> Self {
        PackageId {
            namespace,
            name,
            version,
        }
    }

    /// The package this is a version of.
    pub fn package(&self) -> PackageRef {
        PackageRef {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// The key version uniqueness is decided on: canonical package and the version without
    /// `+build` metadata (`acme/web@1.2.3` for `Acme/Web@1.2.3+linux`).
    pub fn canonical(&self) -> String {
        format!(
            "{}@{}",
            self.package().canonical(),
            version_key(&self.version)
        )
    }
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}/")?;
        }
        write!(f, "{}@{}", self.name, self.version)
    }
}

impl fmt::Debug for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackageId({self})")
    }
}

impl FromStr for PackageId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let Some((package, version)) = s.rsplit_once('@') else {
            return Err(Error::invalid(
                "package id",
                s,
                "must have the form [namespace/]name@version",
            ));
        };
        let package = PackageRef::parse_field("name", package)?;
        Ok(package.at(parse_version(version)?))
    }
}

/// The version with `+build` metadata removed: versions are unique per package ignoring it.
pub fn version_key(version: &Version) -> Version {
    let mut key = version.clone();
    key.build = semver::BuildMetadata::EMPTY;
    key
}

/// Parses a semantic version (`1.2.3`, `1.0.0-beta.1+build.5`).
pub fn parse_version(s: &str) -> Result<Version> {
    Version::parse(s.trim()).map_err(|e| {
        Error::invalid(
            "version",
            s,
            format!("must be a semantic version like 1.2.3 ({e})"),
        )
    })
}

/// Parses a version requirement with cargo semantics (`1.2` means `^1.2`, `=1.2.3` is an exact pin).
pub fn parse_requirement(s: &str) -> Result<VersionReq> {
    parse_requirement_for("requirement", s)
}

/// Like [`parse_requirement`], naming `field` in any error.
pub fn parse_requirement_for(field: &str, s: &str) -> Result<VersionReq> {
    VersionReq::parse(s).map_err(|e| {
        Error::invalid(
            field,
            s,
            format!("must be a version requirement like ^1.2, ~1.2.3, >=1, <2 or =1.2.3 ({e})"),
        )
    })
}

macro_rules! serde_via_display {
    ($ty:ty) => {
        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_via_display;

serde_via_display!(Name);
serde_via_display!(PackageRef);
serde_via_display!(PackageId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_folds_case_and_underscores() {
        let a: PackageRef = "Acme/Web_Framework".parse().unwrap();
        let b: PackageRef = "acme/web-framework".parse().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.canonical(), b.canonical());
    }

    #[test]
    fn build_metadata_is_ignored_by_the_canonical_id() {
        let a: PackageId = "web@1.2.3+linux".parse().unwrap();
        let b: PackageId = "Web@1.2.3".parse().unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.to_string(), "web@1.2.3+linux");
    }
}
