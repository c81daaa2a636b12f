//! The `Upstream` trait: a marketplace that takes this client's writes — a server whose API
//! publishes, yanks and unyanks as the user its credentials name.
//!
//! A client composed over a remote marketplace reads through the other traits (`Registry`,
//! `PackageStore`, `SearchEngine` over HTTP) and checks what it reads itself; its writes are
//! not made in those backends but handed to the upstream, which runs its own flows (its
//! checks, its store, registry and index) and answers with what it did.

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;
use crate::metadata::PackageMetadata;
use crate::name::PackageId;

/// What an upstream reports of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamPublished {
    /// The id as registered (the spelling the upstream keeps).
    pub id: PackageId,
    /// Whether the upstream's search index took it at once.
    pub indexed: bool,
}

impl UpstreamPublished {
    /// A publish of `id`, indexed or not.
    pub fn new(id: PackageId, indexed: bool) -> Self {
        UpstreamPublished { id, indexed }
    }
}

/// Where a client's writes go when the marketplace is served by someone else.
#[async_trait]
pub trait Upstream: Send + Sync {
    /// Publishes `archive`, whose metadata the client computed from it and signed
    /// (`metadata.signature` and `metadata.published_at` are what the upstream receives with
    /// the bytes). The upstream computes the metadata again from the archive and runs its own
    /// publish flow.
    ///
    /// Errors: the upstream's refusals as their kinds — `AlreadyExists` (the version exists),
    /// `Unauthorized` (not the user's to publish, or the key is not theirs), `Signature`,
    /// `Invalid` — and `Backend` (transient when a retry may succeed).
    async fn publish(
        &self,
        metadata: &PackageMetadata,
        archive: Bytes,
    ) -> Result<UpstreamPublished>;

    /// Yanks `id` with `reason`. Idempotent. `NotFound`, `Unauthorized` as the upstream says.
    async fn yank(&self, id: &PackageId, reason: &str) -> Result<()>;

    /// Restores a yanked `id`. Idempotent. `NotFound`, `Unauthorized` as the upstream says.
    async fn unyank(&self, id: &PackageId) -> Result<()>;
}
