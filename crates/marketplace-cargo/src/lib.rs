//! Cargo's formats for Marketplace: `.crate` files read under the marketplace's archive rules,
//! the publish body cargo sends, and the sparse index line cargo reads.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod describe;
mod index;
mod manifest;
mod publish;

use bytes::Bytes;
use marketplace_core::{Error, HashAlgorithm, Result};
use marketplace_package::{
    ArchiveLimits, Inspected, ManifestFormat, Staged, inspect_format, stage_format,
};

pub use crate::describe::{CrateDescription, MAX_FEATURES, Strictness};
pub use crate::index::{
    CargoFields, DependencyKind, EXTENSION, IndexDependency, IndexLine, index_path,
    name_from_index_path,
};
pub use crate::manifest::parse_manifest;
pub use crate::publish::{
    MAX_PUBLISH_JSON, NewCrate, NewCrateDependency, json_length, parse_new_crate, parse_publish,
};

/// The manifest file of a `.crate`.
pub const CARGO_MANIFEST: &str = "Cargo.toml";

/// The limits crates are held to: crates.io's (10 MiB compressed, 512 MiB unpacked), with room
/// for the entries and paths of large crates.
pub fn crate_limits() -> ArchiveLimits {
    let mut limits = ArchiveLimits::default();
    limits.max_compressed = 10 * 1024 * 1024;
    limits.max_unpacked = 512 * 1024 * 1024;
    limits.max_entries = 50_000;
    limits.max_path_len = 1024;
    limits
}

/// Reads a `.crate` that `cargo publish` sent with `new_crate`, under the archive rules (one
/// top-level directory, no links, devices or paths out of it, the size limits), hashed with
/// SHA-256 in the same pass: its `Cargo.toml` must name the crate and version the JSON names,
/// and its top-level directory must be `name-version`. The metadata comes from the JSON, the
/// Cargo fields as its `cargo` extension; a field that breaks a marketplace rule is refused.
pub fn inspect_published(
    new_crate: &NewCrate,
    bytes: Bytes,
    limits: &ArchiveLimits,
) -> Result<Inspected> {
    let description = new_crate.description()?;
    // The JSON is checked before the crate is read.
    description.to_metadata(Strictness::Refuse)?;
    let describe = |text: &str, top: &str| {
        let inside = parse_manifest(text)?;
        if inside.name != description.name || inside.vers != description.vers {
            return Err(Error::invalid(
                "crate",
                format!("{} {}", inside.name, inside.vers),
                format!(
                    "its Cargo.toml must name the crate and version being published, {} {}",
                    description.name, description.vers
                ),
            ));
        }
        describe::check_top(&description, top)?;
        description.to_metadata(Strictness::Refuse)
    };
    inspect_format(
        bytes,
        limits,
        HashAlgorithm::Sha256,
        &ManifestFormat {
            file: CARGO_MANIFEST,
            describe: &describe,
        },
    )
}

/// Reads a `.crate` file on its own (an import: cargo's download cache, a crates.io mirror)
/// under the archive rules, hashed with SHA-256 in the same pass, its index line derived from
/// the normalised `Cargo.toml` inside. A field the marketplace cannot read (a license that is
/// not SPDX, a URL that is not http(s)) is left out rather than the crate refused.
pub fn inspect_crate(bytes: Bytes, limits: &ArchiveLimits) -> Result<Inspected> {
    inspect_format(
        bytes,
        limits,
        HashAlgorithm::Sha256,
        &ManifestFormat {
            file: CARGO_MANIFEST,
            describe: &describe_import,
        },
    )
}

/// [`inspect_crate`], unpacking the crate into a staging directory beside `dest` in the same
/// pass (`marketplace_package::stage` for a `.crate`): for installing one.
pub fn stage_crate(bytes: Bytes, limits: &ArchiveLimits, dest: &std::path::Path) -> Result<Staged> {
    stage_format(
        bytes,
        limits,
        HashAlgorithm::Sha256,
        dest,
        &ManifestFormat {
            file: CARGO_MANIFEST,
            describe: &describe_import,
        },
    )
}

/// A `.crate` on its own described by its normalised `Cargo.toml`, leniently.
fn describe_import(text: &str, top: &str) -> Result<marketplace_core::PackageMetadata> {
    let description = parse_manifest(text)?;
    describe::check_top(&description, top)?;
    description.to_metadata(Strictness::Drop)
}
