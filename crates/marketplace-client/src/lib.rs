//! The Marketplace client. So far: the package format — packing a directory reproducibly,
//! validating an archive and its manifest, and extracting it safely.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod archive;
pub mod manifest;

pub use archive::{ArchiveEntry, ArchiveInfo, ArchiveLimits, extract, inspect, pack_dir};
pub use manifest::{MANIFEST_FILE, Manifest};
