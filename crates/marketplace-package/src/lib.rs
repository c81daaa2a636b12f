//! The Marketplace package format: the `marketplace.toml` manifest, reproducible packing,
//! validation in one pass over the bytes, all-or-nothing extraction, and the lockfile.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod archive;
#[cfg(feature = "counters")]
pub mod counters;
mod limits;
mod lockfile;
mod manifest;
mod pack;
mod readme;
mod rules;
#[cfg(feature = "testing")]
pub mod testing;

pub use archive::{
    ArchiveEntry, Inspected, ManifestFormat, Staged, extract, inspect, inspect_as, inspect_format,
    stage, stage_format,
};
pub use limits::ArchiveLimits;
pub use lockfile::{LOCKFILE, LockedPackage, Lockfile};
pub use manifest::{MANIFEST_FILE, MAX_MANIFEST_BYTES, Manifest};
pub use pack::pack_dir;
pub use readme::{Readme, find_readme};
