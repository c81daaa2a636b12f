//! The Marketplace client: compose backends into a marketplace, publish and install packages
//! safely, hook plugins in and record metrics.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod accounts;
mod audit;
mod builder;
mod cache;
mod client;
mod destination;
mod follow;
mod install;
mod instrument;
mod maintain;
#[cfg(feature = "remote")]
mod offline;
#[cfg(feature = "otel")]
mod otel;
mod plugin;
mod publish;
mod query;
mod retry;
mod trust;
mod verify;

pub use accounts::{NewToken, TOKEN_PREFIX};
pub use audit::{AuditReport, Finding, Problem};
pub use builder::MarketplaceBuilder;
pub use cache::CachedStore;
pub use client::{MarketplaceClient, install_dir};
pub use install::{
    DownloadStream, Downloaded, InstallReport, InstalledPackage, LockMode, uninstall,
};
pub use instrument::{
    BACKEND_SECONDS, BYTES_TOTAL, INDEX_FAILURES_TOTAL, OPERATION_SECONDS, OPERATIONS_TOTAL,
    PLUGIN_ERRORS_TOTAL, RETRIES_TOTAL, VERIFICATION_FAILURES_TOTAL,
};
pub use maintain::GcReport;
#[cfg(feature = "remote")]
pub use offline::{CachedRegistry, MetadataCache, OfflineRegistry, OfflineSearch};
#[cfg(feature = "otel")]
pub use otel::OtelMetrics;
pub use plugin::{LicenseAllowList, MarketplacePlugin};
pub use publish::{Archive, ManyChecked, ManyPublished, PreparedPackage, Published};
pub use query::{PackageInfo, Searched, Summary};
pub use retry::RetryPolicy;
pub use verify::Verified;

/// The contract: types, traits and errors (re-exported so that tools need one dependency).
pub use marketplace_core;
/// The package format: manifests, packing, one-pass validation, extraction, lockfiles.
pub use marketplace_package;
pub use marketplace_package::{
    ArchiveEntry, ArchiveLimits, Inspected, LOCKFILE, LockedPackage, Lockfile, MANIFEST_FILE,
    Manifest, Staged, extract, inspect, pack_dir, stage,
};

/// The in-tree backends, one per feature, so that a tool composing them needs only this crate.
pub mod backends {
    /// `Registry` on SQLite (feature `sqlite`).
    #[cfg(feature = "sqlite")]
    pub use marketplace_registry_sqlite as sqlite;

    /// `Registry` and `AccountStore` on PostgreSQL (feature `postgres`).
    #[cfg(feature = "postgres")]
    pub use marketplace_registry_postgres as postgres;

    /// `PackageStore` on this machine: a local directory or memory (feature `localstore`).
    #[cfg(feature = "localstore")]
    pub use marketplace_store_local as localstore;

    /// `PackageStore` on object_store: S3 with feature `s3`, or any other object_store
    /// backend (feature `objectstore`).
    #[cfg(feature = "objectstore")]
    pub use marketplace_store_objectstore as objectstore;

    /// `SearchEngine` on tantivy (feature `tantivy`).
    #[cfg(feature = "tantivy")]
    pub use marketplace_search_tantivy as tantivy;

    /// `CryptoVerifier` on ring (feature `ring`).
    #[cfg(feature = "ring")]
    pub use marketplace_crypto_ring as ring;

    /// `Registry`, `PackageStore` and `SearchEngine` over a marketplace server's API (feature
    /// `remote`).
    #[cfg(feature = "remote")]
    pub use marketplace_remote as remote;
}

/// The integration guide (`docs/INTEGRATION.md`), included so that its examples compile as doc
/// tests.
#[cfg(all(
    feature = "local",
    feature = "s3",
    feature = "otel",
    feature = "remote"
))]
#[doc = include_str!("../../../docs/INTEGRATION.md")]
pub mod integration_guide {}
