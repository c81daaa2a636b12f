//! Publishing: one archive or a batch, signed here or with a detached signature. Each step is
//! done once: the archive is validated, hashed and its metadata built in one pass (or not at
//! all, for an archive `pack_dir` just made); the signature just made is not verified again,
//! only its key's trust; then store → register → index.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use futures_util::StreamExt as _;
use marketplace_core::{
    ContentHash, Error, PackageId, PackageMetadata, PackageRecord, PackageRef, PrivateKey, Result,
    Signature, Upstream, UpstreamPublished,
};
use marketplace_package::{Inspected, inspect};

use crate::client::{MarketplaceClient, blocking};
use crate::instrument::PostHook;

/// Archives stored at once by [`MarketplaceClient::publish_batch`].
const STORE_CONCURRENCY: usize = 8;

/// An archive to publish: bytes from anywhere (validated on publish), or an archive already
/// [`Inspected`] — as [`marketplace_package::pack_dir`] returns it — which is not read again.
#[derive(Debug, Clone)]
pub enum Archive {
    /// Archive bytes.
    Bytes(Bytes),
    /// An archive validated by the package crate (boxed: it carries its metadata).
    Inspected(Box<Inspected>),
}

impl From<Bytes> for Archive {
    fn from(bytes: Bytes) -> Self {
        Archive::Bytes(bytes)
    }
}

impl From<Vec<u8>> for Archive {
    fn from(bytes: Vec<u8>) -> Self {
        Archive::Bytes(Bytes::from(bytes))
    }
}

impl From<Inspected> for Archive {
    fn from(inspected: Inspected) -> Self {
        Archive::Inspected(Box::new(inspected))
    }
}

/// A package archive validated and turned into metadata, ready to be signed and published.
///
/// `metadata.signature` is empty; set it from a detached signature over
/// [`marketplace_core::signing_payload`] of `metadata`, then call
/// [`MarketplaceClient::publish_prepared`]. [`MarketplaceClient::publish`] does both with a
/// private key.
#[derive(Debug, Clone)]
pub struct PreparedPackage {
    /// Its metadata, from the manifest, with checksum, size and publication time. Only the
    /// signature (and the publication time) may be changed before publishing.
    pub metadata: PackageMetadata,
    inspected: Inspected,
}

impl PreparedPackage {
    /// The archive bytes.
    pub fn archive(&self) -> &Bytes {
        self.inspected.archive()
    }

    /// What validating the archive found.
    pub fn inspected(&self) -> &Inspected {
        &self.inspected
    }

    /// Refuses metadata that was changed beyond its signature and publication time.
    pub(crate) fn check_unchanged(&self) -> Result<()> {
        let mut expected = self.inspected.metadata().clone();
        expected.published_at = self.metadata.published_at;
        expected.signature.clone_from(&self.metadata.signature);
        if expected != self.metadata {
            return Err(Error::invalid(
                "metadata",
                self.metadata.id.to_string(),
                "must be the metadata prepare() computed for this archive",
            ));
        }
        Ok(())
    }
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The id as registered.
    pub id: PackageId,
    /// The archive's content hash.
    pub checksum: ContentHash,
    /// Archive size in bytes.
    pub size: u64,
    /// Whether the search index took the package. When `false` the package is published and
    /// installable, and [`MarketplaceClient::rebuild_index`] makes it searchable.
    pub indexed: bool,
}

/// What [`MarketplaceClient::publish_many`] did (`default()`: nothing).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ManyPublished {
    /// The versions published, in input order.
    pub published: Vec<Published>,
    /// The archives refused: their position in the input and why.
    pub refused: Vec<(usize, Error)>,
}

/// What [`MarketplaceClient::check_many`] found: what publishing would do, with nothing done.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct ManyChecked {
    /// The versions that would be published (signed, as they would be registered), in input
    /// order.
    pub valid: Vec<PackageMetadata>,
    /// The archives that would be refused: their position in the input and why.
    pub refused: Vec<(usize, Error)>,
}

impl MarketplaceClient {
    /// Every check [`MarketplaceClient::publish_many`] makes, and nothing else: each archive
    /// validated and signed, the key's trust, the plugins' `pre_publish` hooks, the version
    /// free and spelled as its package is, no duplicate in the input. Nothing is stored,
    /// registered or indexed (a dry run). A problem with the key or a backend failure is an
    /// error for the whole call, as it is for a publish.
    pub async fn check_many<A: Into<Archive>>(
        &self,
        archives: Vec<A>,
        key: &PrivateKey,
    ) -> Result<ManyChecked> {
        let span = tracing::info_span!("marketplace.check_many", count = archives.len());
        self.flow("check_many", span, async {
            let (prepared, refused) = self.prepare_batch(archives, key, false).await?;
            Ok(ManyChecked {
                valid: prepared.into_iter().map(|p| p.metadata).collect(),
                refused,
            })
        })
        .await
    }

    /// Validates an archive and its manifest and computes its metadata, without changing
    /// anything: one pass over the bytes, or none for an [`Inspected`] archive (which is only
    /// held to this client's limits). `Invalid` names the entry or manifest field and the rule.
    pub async fn prepare(&self, archive: impl Into<Archive>) -> Result<PreparedPackage> {
        let inspected = match archive.into() {
            Archive::Bytes(bytes) => {
                let limits = self.limits;
                blocking("inspect an archive", move || inspect(bytes, &limits)).await?
            }
            Archive::Inspected(inspected) => {
                self.limits.admit(&inspected)?;
                *inspected
            }
        };
        Ok(PreparedPackage {
            metadata: inspected.metadata().clone(),
            inspected,
        })
    }

    /// Publishes a package archive, signed with `key`.
    ///
    /// Validates the archive and manifest, checks that the version is free, signs, checks that
    /// the key is trusted and not revoked, runs the `pre_publish` hooks, then stores the bytes,
    /// registers the version and indexes it — in that order, so a failure never leaves a
    /// registered version without its bytes (an orphaned blob is removed by
    /// [`MarketplaceClient::gc`]).
    ///
    /// Errors: `Invalid` (archive, manifest, plugin policy), `AlreadyExists`, `Signature`
    /// (key not trusted or revoked), `Backend`.
    pub async fn publish(
        &self,
        archive: impl Into<Archive>,
        key: &PrivateKey,
    ) -> Result<Published> {
        let archive = archive.into();
        let span = tracing::info_span!(
            "marketplace.publish",
            size = archive_len(&archive),
            package = tracing::field::Empty
        );
        self.flow("publish", span, async {
            let mut prepared = self.prepare(archive).await?;
            tracing::Span::current()
                .record("package", tracing::field::display(&prepared.metadata.id));
            self.check_free(&prepared.metadata.id).await?;
            let signature = self.sign(&prepared.metadata, key).await?;
            // A signature this client just made needs no second verification; whether its key
            // may publish does.
            self.check_trust("publish", &prepared.metadata.id, &signature)
                .await?;
            prepared.metadata.signature = Some(signature);
            self.publish_checked(prepared).await
        })
        .await
    }

    /// Publishes a prepared package whose `metadata.signature` was set from a detached
    /// signature. Same checks and errors as [`MarketplaceClient::publish`], and the signature
    /// is verified; the metadata must be what [`MarketplaceClient::prepare`] computed for the
    /// archive (signature and publication time aside).
    pub async fn publish_prepared(&self, prepared: PreparedPackage) -> Result<Published> {
        let span = tracing::info_span!("marketplace.publish", package = %prepared.metadata.id);
        self.flow("publish", span, async {
            prepared.check_unchanged()?;
            self.check_free(&prepared.metadata.id).await?;
            self.check_signature("publish", &prepared.metadata).await?;
            self.publish_checked(prepared).await
        })
        .await
    }

    async fn sign(&self, metadata: &PackageMetadata, key: &PrivateKey) -> Result<Signature> {
        self.call("crypto", "sign", true, || self.crypto.sign(metadata, key))
            .await
    }

    /// The version must be new, and the package spelled as its earlier versions are: a name
    /// that differs only in case or `-`/`_` is the same package, and joining it under another
    /// spelling is refused naming the one it has (as crates.io does).
    pub(crate) async fn check_free(&self, id: &PackageId) -> Result<()> {
        match self
            .call("registry", "get", true, || self.registry.get(id))
            .await
        {
            Ok(existing) => return Err(Error::already_exists(format!("package {}", existing.id))),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let package = id.package();
        let states = match self
            .call("registry", "list_version_states", true, || {
                self.registry.list_version_states(&package)
            })
            .await
        {
            Ok(states) => states,
            Err(Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(first) = states.first() else {
            return Ok(());
        };
        let earlier = PackageId::new(
            package.namespace.clone(),
            package.name.clone(),
            first.version.clone(),
        );
        let existing = self
            .call("registry", "get", true, || self.registry.get(&earlier))
            .await?
            .id
            .package();
        check_spelling(&package, &existing)
    }

    /// Hooks, store, register, index: a signed package whose signature and trust were checked.
    async fn publish_checked(&self, prepared: PreparedPackage) -> Result<Published> {
        self.pre_publish_hooks(&prepared.metadata).await?;
        self.publish_hooked(prepared).await
    }

    /// Store, register, index — or hand to the upstream, which does —: a package every check
    /// and `pre_publish` hook has passed.
    pub(crate) async fn publish_hooked(&self, prepared: PreparedPackage) -> Result<Published> {
        if let Some(upstream) = &self.upstream {
            return self.publish_upstream(upstream.as_ref(), prepared).await;
        }
        let PreparedPackage {
            metadata,
            inspected,
        } = prepared;
        let archive = inspected.archive();
        // 1. bytes
        self.store_checked(&metadata, archive).await?;
        // 2. registry: the version exists from here on.
        let id = self.register(&metadata).await?;
        self.add_bytes("published", archive.len());
        // 3. index: derived data; a miss is repaired by the next follow of the change feed.
        let mut record = PackageRecord::new(metadata);
        record.metadata.id = id.clone();
        let indexed = self.index_published(std::slice::from_ref(&record)).await;
        self.post_hooks(PostHook::Publish, &record.metadata, archive)
            .await;
        Ok(Published {
            id,
            checksum: record.metadata.checksum,
            size: record.metadata.size,
            indexed,
        })
    }

    /// Hands a checked, signed package to the upstream, which stores, registers and indexes
    /// it. Transient failures are retried; a retry that finds the version registered with this
    /// archive's hash (the earlier attempt landed) counts as success.
    async fn publish_upstream(
        &self,
        upstream: &dyn Upstream,
        prepared: PreparedPackage,
    ) -> Result<Published> {
        let PreparedPackage {
            metadata,
            inspected,
        } = prepared;
        let archive = inspected.archive();
        let mut attempt = 0;
        let done = self
            .call("upstream", "publish", true, || {
                attempt += 1;
                let retried = attempt > 1;
                let metadata = &metadata;
                async move {
                    match upstream.publish(metadata, archive.clone()).await {
                        Err(Error::AlreadyExists { what }) if retried => {
                            match self.registry.get(&metadata.id).await {
                                Ok(existing) if existing.checksum == metadata.checksum => {
                                    Ok(UpstreamPublished::new(existing.id, false))
                                }
                                _ => Err(Error::AlreadyExists { what }),
                            }
                        }
                        other => other,
                    }
                }
            })
            .await?;
        self.add_bytes("published", archive.len());
        let mut metadata = metadata;
        metadata.id = done.id.clone();
        self.post_hooks(PostHook::Publish, &metadata, archive).await;
        Ok(Published {
            id: done.id,
            checksum: metadata.checksum,
            size: metadata.size,
            indexed: done.indexed,
        })
    }

    /// Stores the archive and checks the store filed it under the metadata's checksum.
    async fn store_checked(&self, metadata: &PackageMetadata, archive: &Bytes) -> Result<()> {
        let hash = self
            .call("store", "store", true, || self.store.store(archive.clone()))
            .await?;
        if hash != metadata.checksum {
            return Err(Error::integrity(
                format!("stored archive of {}", metadata.id),
                &metadata.checksum,
                &hash,
            ));
        }
        Ok(())
    }

    /// Registers, retrying transient errors; a retry that finds the version registered with
    /// the same hash (the earlier attempt landed) counts as success.
    async fn register(&self, metadata: &PackageMetadata) -> Result<PackageId> {
        let hash = &metadata.checksum;
        let mut attempt = 0;
        self.call("registry", "register", true, || {
            attempt += 1;
            let retried = attempt > 1;
            async move {
                match self.registry.register(metadata.clone(), hash.clone()).await {
                    Err(Error::AlreadyExists { what }) if retried => {
                        match self.registry.get(&metadata.id).await {
                            Ok(existing) if existing.checksum == *hash => Ok(existing.id),
                            _ => Err(Error::AlreadyExists { what }),
                        }
                    }
                    other => other,
                }
            }
        })
        .await
    }

    /// Publishes many archives signed with one key, for imports: every archive is validated
    /// and signed first and the batch is refused as a whole on the first problem (nothing is
    /// stored); then all bytes are stored, all versions registered in one batch
    /// ([`marketplace_core::Registry::register_batch`], atomic on registries with transactions)
    /// and indexed in one batch. [`MarketplaceClient::publish_many`] publishes the valid ones
    /// and reports every refusal instead.
    pub async fn publish_batch<A: Into<Archive>>(
        &self,
        archives: Vec<A>,
        key: &PrivateKey,
    ) -> Result<Vec<Published>> {
        let span = tracing::info_span!("marketplace.publish_batch", count = archives.len());
        self.flow("publish_batch", span, async {
            let (prepared, _) = self.prepare_batch(archives, key, true).await?;
            self.commit_batch(prepared).await
        })
        .await
    }

    /// Publishes many archives signed with one key, as an import does: every archive is
    /// validated and signed first, and each that is refused (invalid, already published, a
    /// second spelling, twice in the input, refused by a plugin) is reported with its reason
    /// and its position in `archives`; the valid ones are then published through the batch
    /// path (stores a few at a time, one `register_batch`, one index commit). With `atomic`,
    /// one refusal publishes nothing. A problem with the key itself (untrusted, revoked) or a
    /// backend failure is an error for the whole call.
    pub async fn publish_many<A: Into<Archive>>(
        &self,
        archives: Vec<A>,
        key: &PrivateKey,
        atomic: bool,
    ) -> Result<ManyPublished> {
        let span = tracing::info_span!("marketplace.publish_many", count = archives.len());
        self.flow("publish_many", span, async {
            let (prepared, refused) = self.prepare_batch(archives, key, false).await?;
            if prepared.is_empty() || (atomic && !refused.is_empty()) {
                return Ok(ManyPublished {
                    published: Vec::new(),
                    refused,
                });
            }
            let published = self.commit_batch(prepared).await?;
            Ok(ManyPublished { published, refused })
        })
        .await
    }

    /// Validates, signs and checks every archive of a batch. A refusal of one archive ends the
    /// batch with it when `stop_at_first`, else it is collected with the archive's position;
    /// problems with the key or a backend end the batch either way.
    async fn prepare_batch<A: Into<Archive>>(
        &self,
        archives: Vec<A>,
        key: &PrivateKey,
        stop_at_first: bool,
    ) -> Result<(Vec<PreparedPackage>, Vec<(usize, Error)>)> {
        let mut prepared = Vec::with_capacity(archives.len());
        let mut refused = Vec::new();
        let mut seen = HashSet::new();
        let mut spellings: HashMap<String, PackageRef> = HashMap::new();
        let mut trusted = false;
        for (position, archive) in archives.into_iter().enumerate() {
            let outcome = async {
                let mut p = self.prepare(archive).await?;
                if seen.contains(&p.metadata.id.canonical()) {
                    return Err(Error::already_exists(format!(
                        "package {} (twice in one batch)",
                        p.metadata.id
                    )));
                }
                let package = p.metadata.id.package();
                if let Some(first) = spellings.get(&package.canonical()) {
                    check_spelling(&package, first)?;
                }
                let signature = self.sign(&p.metadata, key).await?;
                p.metadata.signature = Some(signature);
                Ok(p)
            }
            .await;
            let checked = match outcome {
                Ok(p) => {
                    // One key signs the whole batch: its trust is checked once, and a refusal
                    // there is the whole batch's.
                    if !trusted {
                        let signature = p.metadata.signature.as_ref().ok_or_else(|| {
                            Error::invalid("signature", "none", "the batch was not signed")
                        })?;
                        self.check_trust("publish", &p.metadata.id, signature)
                            .await?;
                        trusted = true;
                    }
                    match self.pre_publish_hooks(&p.metadata).await {
                        Ok(()) => self.check_free(&p.metadata.id).await.map(|()| p),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match checked {
                Ok(p) => {
                    seen.insert(p.metadata.id.canonical());
                    let package = p.metadata.id.package();
                    spellings.entry(package.canonical()).or_insert(package);
                    prepared.push(p);
                }
                Err(e) if stop_at_first || e.kind() == marketplace_core::ErrorKind::Backend => {
                    return Err(e);
                }
                Err(e) => refused.push((position, e)),
            }
        }
        Ok((prepared, refused))
    }

    /// Stores, registers (one `register_batch`) and indexes (one commit) prepared packages;
    /// with an upstream, hands them to it one by one, in order.
    pub(crate) async fn commit_batch(
        &self,
        prepared: Vec<PreparedPackage>,
    ) -> Result<Vec<Published>> {
        if let Some(upstream) = &self.upstream {
            let mut published = Vec::with_capacity(prepared.len());
            for p in prepared {
                published.push(self.publish_upstream(upstream.as_ref(), p).await?);
            }
            return Ok(published);
        }
        // Stores run a few at a time: each waits mostly on I/O (an fsync, a network round
        // trip), so overlapping them multiplies throughput.
        // (Made up front rather than by a closure over the stream: the future stays `Send`
        // for any caller, a server's handler among them.)
        let stores: Vec<_> = prepared
            .iter()
            .map(|p| self.store_checked(&p.metadata, p.archive()))
            .collect();
        let mut stores = futures_util::stream::iter(stores).buffer_unordered(STORE_CONCURRENCY);
        while let Some(stored) = stores.next().await {
            stored?;
        }
        drop(stores);
        let items: Vec<_> = prepared
            .iter()
            .map(|p| (p.metadata.clone(), p.metadata.checksum.clone()))
            .collect();
        let ids = self
            .call("registry", "register_batch", false, || {
                self.registry.register_batch(items.clone())
            })
            .await?;
        let records: Vec<PackageRecord> = prepared
            .iter()
            .zip(&ids)
            .map(|(p, id)| {
                let mut metadata = p.metadata.clone();
                metadata.id = id.clone();
                PackageRecord::new(metadata)
            })
            .collect();
        let indexed = self.index_published(&records).await;
        let mut published = Vec::with_capacity(prepared.len());
        for (p, record) in prepared.iter().zip(records) {
            self.add_bytes("published", p.archive().len());
            self.post_hooks(PostHook::Publish, &record.metadata, p.archive())
                .await;
            published.push(Published {
                id: record.metadata.id,
                checksum: record.metadata.checksum,
                size: record.metadata.size,
                indexed,
            });
        }
        Ok(published)
    }
}

fn archive_len(archive: &Archive) -> usize {
    match archive {
        Archive::Bytes(bytes) => bytes.len(),
        Archive::Inspected(inspected) => inspected.archive().len(),
    }
}

/// Refuses `package` when `existing` (the same package) is spelled otherwise.
pub(crate) fn check_spelling(package: &PackageRef, existing: &PackageRef) -> Result<()> {
    if package.to_string() == existing.to_string() {
        return Ok(());
    }
    Err(Error::invalid(
        "name",
        package.to_string(),
        format!(
            "the package is named {existing}: names that differ only in case or '-'/'_' are one package; publish it as {existing}"
        ),
    ))
}
