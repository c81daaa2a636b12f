//! The stable contract of Marketplace: types, validation, errors, backend traits, the canonical
//! signing payload and dependency resolution.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accounts;
mod crypto;
mod error;
mod hash;
mod http_url;
mod keys;
mod metadata;
mod metrics;
mod name;
mod payload;
pub mod provided;
mod registry;
mod resolve;
mod search;
mod store;
mod upstream;

pub use accounts::{
    AccountStore, Claim, MAX_TOKEN_NAME_LEN, MAX_USER_LEN, OwnerTarget, PackagePattern, Scope,
    TokenHash, TokenRecord, User, UserName, validate_token_name,
};
pub use crypto::CryptoVerifier;
pub use error::{BoxError, Error, ErrorKind, Result, RetryAfter, SignatureFailure};
pub use hash::{ContentHash, ContentHasher, HashAlgorithm};
pub use http_url::{HttpUrl, MAX_URL_LEN};
pub use keys::{
    Key, KeyId, KeyPair, PrivateKey, PublicKey, Signature, SignatureAlgorithm, TrustLevel,
    TrustResult, TrustedKey, VerificationResult,
};
pub use metadata::{
    License, MAX_AUTHOR_LEN, MAX_AUTHORS, MAX_CATEGORIES, MAX_CATEGORY_LEN, MAX_DEPENDENCIES,
    MAX_DESCRIPTION_LEN, MAX_EXTENSION_BYTES, MAX_EXTENSION_NAME_LEN, MAX_EXTENSIONS,
    MAX_KEYWORD_LEN, MAX_KEYWORDS, MetadataUpdate, PackageMetadata, PackageRecord,
    RenamedDependency, YankInfo, deserialize_present, now_seconds, parse_url, validate_authors,
    validate_categories, validate_category, validate_dependencies, validate_description,
    validate_extensions, validate_keywords,
};
pub use metrics::{
    ERRORS_TOTAL, Labels, MetricKind, MetricSample, MetricValue, MetricsCollector, MetricsSnapshot,
    is_valid_metric_name, prometheus_number,
};
pub use name::{
    MAX_NAME_LEN, Name, PackageId, PackageRef, RESERVED_NAMES, parse_requirement,
    parse_requirement_for, parse_version, version_key,
};
pub use payload::{SIGNING_PAYLOAD_DOMAIN, SIGNING_PAYLOAD_DOMAIN_V2, signing_payload};
pub use registry::{
    DailyDownloads, DependencyGraph, DownloadCount, EventKind, GraphNode, PackageStats, Registry,
    RegistryEvent, VersionState, check_registration, last_30_days,
};
pub use resolve::{
    BlockingResolutionSource, ResolutionPolicy, ResolutionSource, ResolveOptions, check_identity,
    is_exact_pin, resolve_graph, resolve_graph_blocking,
};
pub use search::{Facets, IndexStats, SearchEngine, SearchQuery, SearchResult, Snippet, SortOrder};
pub use store::{
    ByteStream, PackageStore, StorageMetadata, StorageStats, read_piece, verify_stream,
};
pub use upstream::{Upstream, UpstreamPublished};

/// Re-exported so that backends implement the traits with the same macro.
pub use async_trait::async_trait;
/// Re-exported so that backends and callers use the same `bytes` as the traits.
pub use bytes;
/// Re-exported so that backends and callers use the same `semver` as the traits.
pub use semver;
/// Re-exported so that backends and callers use the same `time` as the traits.
pub use time;

/// The trait guide (`docs/TRAITS.md`), included so that its examples compile as doc tests.
#[doc = include_str!("../../../docs/TRAITS.md")]
pub mod traits_guide {}
