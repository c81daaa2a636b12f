//! The body of `cargo publish` (`PUT /api/v1/crates/new`): a little-endian `u32` length, the
//! JSON description of the version, another `u32` length, the `.crate` file.

use std::collections::BTreeMap;

use marketplace_core::{Error, Result};
use serde::Deserialize;

use crate::describe::CrateDescription;
use crate::index::{DependencyKind, IndexDependency};
use crate::manifest::normalise_requirement;

/// Largest JSON part of a publish body (a crate with thousands of features sends a lot).
pub const MAX_PUBLISH_JSON: u32 = 8 * 1024 * 1024;

/// The JSON cargo sends with a publish (only the fields the marketplace keeps; others are
/// ignored, as crates.io ignores badges).
#[derive(Debug, Clone, Deserialize)]
pub struct NewCrate {
    /// The crate's name.
    pub name: String,
    /// Its version.
    pub vers: String,
    /// Its dependencies.
    #[serde(default)]
    pub deps: Vec<NewCrateDependency>,
    /// Its features.
    #[serde(default)]
    pub features: BTreeMap<String, Vec<String>>,
    /// Authors.
    #[serde(default)]
    pub authors: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Home page.
    pub homepage: Option<String>,
    /// Repository.
    pub repository: Option<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Categories.
    #[serde(default)]
    pub categories: Vec<String>,
    /// SPDX license expression.
    pub license: Option<String>,
    /// A license file instead of an expression.
    pub license_file: Option<String>,
    /// The native library it links.
    pub links: Option<String>,
    /// The oldest Rust it builds with.
    pub rust_version: Option<String>,
}

/// A dependency as cargo sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct NewCrateDependency {
    /// The crate depended on (its real name).
    pub name: String,
    /// The requirement.
    pub version_req: String,
    /// Features it enables.
    #[serde(default)]
    pub features: Vec<String>,
    /// Optional?
    #[serde(default)]
    pub optional: bool,
    /// Default features on?
    #[serde(default = "yes")]
    pub default_features: bool,
    /// Platform.
    pub target: Option<String>,
    /// `normal`, `dev` or `build`.
    #[serde(default = "normal")]
    pub kind: String,
    /// The registry's index URL, when not the one published to.
    pub registry: Option<String>,
    /// The alias it is known by in the depending crate, when renamed.
    pub explicit_name_in_toml: Option<String>,
}

fn yes() -> bool {
    true
}

fn normal() -> String {
    "normal".to_owned()
}

/// Splits a publish body: the JSON part, parsed and checked, and the `.crate` bytes. The JSON
/// is read and checked before the crate's bytes are looked at.
///
/// Errors: `Invalid` saying which part is short, too long or malformed.
pub fn parse_publish(body: &[u8]) -> Result<(NewCrate, &[u8])> {
    let (json, rest) = take_part(body, "the JSON part", MAX_PUBLISH_JSON)?;
    let new_crate = parse_new_crate(json)?;
    let (crate_bytes, rest) = take_part(rest, "the .crate part", u32::MAX)?;
    if !rest.is_empty() {
        return Err(Error::invalid(
            "body",
            format!("{} bytes", rest.len()),
            "a publish body ends with the .crate file; bytes follow it",
        ));
    }
    Ok((new_crate, crate_bytes))
}

/// The length of the JSON part, from the first four bytes of a publish body: what a server
/// reads before the rest. `Invalid` past [`MAX_PUBLISH_JSON`].
pub fn json_length(head: [u8; 4]) -> Result<u32> {
    let len = u32::from_le_bytes(head);
    if len > MAX_PUBLISH_JSON {
        return Err(Error::invalid(
            "body",
            format!("{len} bytes"),
            format!("the JSON part of a publish is at most {MAX_PUBLISH_JSON} bytes"),
        ));
    }
    Ok(len)
}

fn take_part<'a>(body: &'a [u8], what: &str, max: u32) -> Result<(&'a [u8], &'a [u8])> {
    let short = || {
        Error::invalid(
            "body",
            format!("{} bytes", body.len()),
            format!("a publish body is a u32 length and {what}, and it ends early"),
        )
    };
    let head: [u8; 4] = body
        .get(..4)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(short)?;
    let len = u32::from_le_bytes(head);
    if len > max {
        return Err(Error::invalid(
            "body",
            format!("{len} bytes"),
            format!("{what} of a publish is at most {max} bytes"),
        ));
    }
    let end = 4usize.checked_add(len as usize).ok_or_else(short)?;
    let part = body.get(4..end).ok_or_else(short)?;
    Ok((part, &body[end..]))
}

/// The JSON part of a publish, parsed. `Invalid` naming what does not parse.
pub fn parse_new_crate(json: &[u8]) -> Result<NewCrate> {
    serde_json::from_slice(json).map_err(|e| {
        Error::invalid(
            "body",
            "the JSON part",
            format!("is not the description of a crate cargo sends: {e}"),
        )
    })
}

impl NewCrate {
    /// The version as it describes itself. `Invalid` for a dependency kind cargo never sends.
    pub fn description(&self) -> Result<CrateDescription> {
        let deps = self
            .deps
            .iter()
            .map(|d| {
                let kind = DependencyKind::parse(&format!("deps.{}.kind", d.name), &d.kind)?;
                // The index names a renamed dependency by its alias, and the crate in `package`.
                let (name, package) = match &d.explicit_name_in_toml {
                    Some(alias) => (alias.clone(), Some(d.name.clone())),
                    None => (d.name.clone(), None),
                };
                Ok(IndexDependency {
                    name,
                    req: normalise_requirement(&d.version_req),
                    features: d.features.clone(),
                    optional: d.optional,
                    default_features: d.default_features,
                    target: d.target.clone(),
                    kind,
                    registry: d.registry.clone(),
                    package,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CrateDescription {
            name: self.name.clone(),
            vers: self.vers.clone(),
            deps,
            features: self.features.clone(),
            authors: self.authors.clone(),
            description: self.description.clone(),
            homepage: self.homepage.clone(),
            repository: self.repository.clone(),
            keywords: self.keywords.clone(),
            categories: self.categories.clone(),
            license: self.license.clone(),
            links: self.links.clone(),
            rust_version: self.rust_version.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &[u8], krate: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(json);
        out.extend_from_slice(&(krate.len() as u32).to_le_bytes());
        out.extend_from_slice(krate);
        out
    }

    #[test]
    fn a_body_splits_into_json_and_crate_and_bad_framing_is_invalid() {
        let json = br#"{"name":"a","vers":"1.0.0","deps":[{"name":"b","version_req":"1.2","kind":"dev","explicit_name_in_toml":"bee"}]}"#;
        let good = body(json, b"crate bytes");
        let (new_crate, krate) = parse_publish(&good).expect("parses");
        assert_eq!(krate, b"crate bytes");
        let d = new_crate.description().expect("describes");
        assert_eq!(d.deps[0].name, "bee");
        assert_eq!(d.deps[0].package.as_deref(), Some("b"));
        assert_eq!(d.deps[0].req, "^1.2");
        for bad in [
            &good[..3],
            &good[..good.len() - 1],
            &[good.as_slice(), b"x"].concat()[..],
            &body(b"{not json", b"")[..],
            &body(br#"{"name":"a"}"#, b"")[..],
        ] {
            let e = parse_publish(bad).expect_err("refused");
            assert_eq!(e.kind(), marketplace_core::ErrorKind::Invalid, "{e}");
        }
        let huge = (MAX_PUBLISH_JSON + 1).to_le_bytes();
        assert!(json_length(huge).is_err());
    }
}
