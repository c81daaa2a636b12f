//! The Marketplace client: compose backends into a marketplace, publish and install packages
//! safely, hook plugins in and record metrics.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod archive;
mod builder;
mod client;
pub mod lockfile;
pub mod manifest;
#[cfg(feature = "otel")]
mod metrics;
mod plugin;
mod retry;

pub use archive::{ArchiveEntry, ArchiveInfo, ArchiveLimits, extract, inspect, pack_dir};
pub use builder::MarketplaceBuilder;
pub use client::{
    BACKEND_SECONDS, BYTES_TOTAL, Downloaded, GcReport, InstallReport, InstalledPackage,
    MarketplaceClient, OPERATION_SECONDS, OPERATIONS_TOTAL, PackageInfo, PreparedPackage,
    Published, RETRIES_TOTAL, VERIFICATION_FAILURES_TOTAL, Verified,
};
pub use lockfile::{LOCKFILE, LockedPackage, Lockfile};
pub use manifest::{MANIFEST_FILE, Manifest};
#[cfg(feature = "otel")]
pub use metrics::OtelMetrics;
pub use plugin::{LicenseAllowList, MarketplacePlugin};
pub use retry::RetryPolicy;

/// The integration guide (`docs/INTEGRATION.md`), included so that its examples compile as doc
/// tests.
#[cfg(all(
    feature = "sqlite",
    feature = "objectstore",
    feature = "tantivy",
    feature = "ring",
    feature = "otel"
))]
#[doc = include_str!("../../../docs/INTEGRATION.md")]
pub mod integration_guide {}
