//! Verification: signatures and trust, fetched bytes against their registered hash and size,
//! archives against the version they are registered as — and the `verify` flow, which runs
//! them all on one published version.

use std::path::PathBuf;

use bytes::Bytes;
use marketplace_core::{
    ContentHash, DependencyGraph, Error, KeyId, PackageId, PackageMetadata, Result, Signature,
    SignatureFailure, TrustLevel, TrustResult, VerificationResult, check_identity,
};
use marketplace_package::{Inspected, Staged, inspect_as, stage};

use crate::client::{MarketplaceClient, blocking};
use crate::instrument::Refusal;

/// The outcome of [`MarketplaceClient::verify`]: every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The package.
    pub id: PackageId,
    /// Its archive hash, recomputed from the stored bytes.
    pub checksum: ContentHash,
    /// The key that signed it.
    pub key_id: KeyId,
    /// How far that key is trusted.
    pub trust: TrustLevel,
    /// Files in the archive.
    pub files: usize,
}

/// Whether `metadata` is a crate's: its archive is a `.crate`, read with `Cargo.toml` as its
/// manifest.
pub(crate) fn is_crate(metadata: &PackageMetadata) -> bool {
    metadata
        .extensions
        .contains_key(marketplace_cargo::EXTENSION)
}

/// The limits a crate is read under: crates.io's shape limits, and this client's size limits
/// where they are tighter.
fn crate_limits(client: &marketplace_package::ArchiveLimits) -> marketplace_package::ArchiveLimits {
    let mut limits = marketplace_cargo::crate_limits();
    limits.max_compressed = client.max_compressed;
    limits.max_unpacked = limits.max_unpacked.min(client.max_unpacked);
    limits
}

impl MarketplaceClient {
    /// Checks a published version end to end without installing it: signature, trust, the
    /// stored bytes' hash and the archive rules. Errors as [`MarketplaceClient::download`],
    /// plus `Invalid` for an archive that breaks a rule.
    pub async fn verify(&self, id: &PackageId) -> Result<Verified> {
        let span = tracing::info_span!("marketplace.verify", package = %id);
        self.flow("verify", span, async {
            let metadata = self.get_checked("verify", id).await?;
            let (key_id, trust) = self.check_signature("verify", &metadata).await?;
            let archive = self.fetch("verify", &metadata).await?;
            let inspected = self.inspect_checked("verify", &metadata, archive).await?;
            Ok(Verified {
                id: metadata.id,
                checksum: metadata.checksum,
                key_id,
                trust,
                files: inspected.files().len(),
            })
        })
        .await
    }

    /// The metadata of `id` from the registry, refused unless it is the metadata of `id` (a row
    /// holding another version's validly signed metadata must not pass for it).
    pub(crate) async fn get_checked(
        &self,
        operation: &str,
        id: &PackageId,
    ) -> Result<PackageMetadata> {
        let metadata = self
            .call("registry", "get", true, || self.registry.get(id))
            .await?;
        check_identity(id, &metadata).map_err(|e| self.refused(operation, Refusal::Identity, e))?;
        Ok(metadata)
    }

    /// Refuses a resolved graph that is not the graph of `root`: every node must carry its own
    /// metadata and every edge must lead to a node.
    pub(crate) fn check_graph(
        &self,
        operation: &str,
        root: &PackageId,
        graph: &DependencyGraph,
    ) -> Result<()> {
        let refuse = |what: String, expected: String, actual: String| {
            self.refused(
                operation,
                Refusal::Identity,
                Error::integrity(what, expected, actual),
            )
        };
        if graph.root.canonical() != root.canonical() {
            return Err(refuse(
                format!("the dependency graph of {root}"),
                root.to_string(),
                graph.root.to_string(),
            ));
        }
        if !graph.nodes.contains_key(&graph.root) {
            return Err(refuse(
                format!("the dependency graph of {root}"),
                "a node for its root".into(),
                "none".into(),
            ));
        }
        for (id, node) in &graph.nodes {
            check_identity(id, &node.metadata)
                .map_err(|e| self.refused(operation, Refusal::Identity, e))?;
            if let Some(missing) = node
                .dependencies
                .iter()
                .find(|d| !graph.nodes.contains_key(*d))
            {
                return Err(refuse(
                    format!("the dependency graph of {root}"),
                    format!("a node for {missing}, a dependency of {id}"),
                    "none".into(),
                ));
            }
        }
        Ok(())
    }

    /// Checks that `metadata` carries a valid signature by a trusted, unrevoked key.
    pub(crate) async fn check_signature(
        &self,
        operation: &str,
        metadata: &PackageMetadata,
    ) -> Result<(KeyId, TrustLevel)> {
        let id = &metadata.id;
        let Some(signature) = &metadata.signature else {
            return Err(self.refused(
                operation,
                Refusal::Signature,
                Error::signature(
                    format!("package {id}"),
                    SignatureFailure::Unsigned,
                    "is not signed; packages must be signed by a trusted key",
                ),
            ));
        };
        let verdict = self
            .call("crypto", "verify_signature", true, || {
                self.crypto.verify_signature(metadata, signature)
            })
            .await?;
        if let VerificationResult::Mismatch { .. } | VerificationResult::Malformed { .. } = verdict
        {
            return Err(self.refused(
                operation,
                Refusal::Signature,
                Error::signature(
                    format!("package {id}"),
                    SignatureFailure::Bad,
                    verdict.to_string(),
                ),
            ));
        }
        self.check_trust(operation, id, signature).await
    }

    /// Checks that the key of `signature` is trusted and not revoked.
    pub(crate) async fn check_trust(
        &self,
        operation: &str,
        id: &PackageId,
        signature: &Signature,
    ) -> Result<(KeyId, TrustLevel)> {
        let key_id = signature.key_id();
        match self
            .call("crypto", "verify_trust", true, || {
                self.crypto.verify_trust(&key_id)
            })
            .await?
        {
            TrustResult::Trusted { level, .. } => Ok((key_id, level)),
            other => {
                let failure = match other {
                    TrustResult::Revoked { .. } => SignatureFailure::Revoked,
                    _ => SignatureFailure::Untrusted,
                };
                Err(self.refused(
                    operation,
                    Refusal::Trust,
                    Error::signature(format!("package {id}"), failure, other.to_string()),
                ))
            }
        }
    }

    /// Fetches the archive of `metadata` from the store (which verifies its address).
    pub(crate) async fn fetch(&self, operation: &str, metadata: &PackageMetadata) -> Result<Bytes> {
        match self
            .call("store", "get", true, || self.store.get(&metadata.checksum))
            .await
        {
            Ok(bytes) => Ok(bytes),
            Err(e @ Error::Integrity { .. }) => Err(self.refused(operation, Refusal::Checksum, e)),
            Err(Error::NotFound { .. }) => Err(self.missing_archive(metadata)),
            Err(e) => Err(e),
        }
    }

    /// `NotFound` for a registered version whose archive the store does not have.
    pub(crate) fn missing_archive(&self, metadata: &PackageMetadata) -> Error {
        Error::not_found(format!(
            "archive of {} ({} is registered but missing from the store)",
            metadata.id, metadata.checksum
        ))
    }

    /// Fetches the archive of `metadata` and checks its hash and size itself (the store
    /// verifies too; the client does not rely on it). For downloads, which hand the bytes on
    /// without unpacking them.
    pub(crate) async fn fetch_checked(
        &self,
        operation: &str,
        metadata: &PackageMetadata,
    ) -> Result<Bytes> {
        let bytes = self.fetch(operation, metadata).await?;
        let algorithm = metadata.checksum.algorithm();
        let actual = self
            .call("crypto", "checksum", true, || {
                self.crypto.checksum(&bytes, algorithm)
            })
            .await?;
        if actual != metadata.checksum {
            return Err(self.checksum_mismatch(operation, metadata, &actual));
        }
        self.check_size(operation, metadata, &bytes)?;
        Ok(bytes)
    }

    /// Validates and hashes `archive` in one pass, and checks that it is the archive
    /// `metadata` describes.
    pub(crate) async fn inspect_checked(
        &self,
        operation: &str,
        metadata: &PackageMetadata,
        archive: Bytes,
    ) -> Result<Inspected> {
        let (limits, algorithm, bytes) =
            (self.limits, metadata.checksum.algorithm(), archive.clone());
        let is_crate = is_crate(metadata);
        match blocking("inspect an archive", move || {
            if is_crate {
                marketplace_cargo::inspect_crate(bytes, &crate_limits(&limits))
            } else {
                inspect_as(bytes, &limits, algorithm)
            }
        })
        .await
        {
            Ok(inspected) => {
                self.check_inspected(operation, metadata, &inspected)?;
                Ok(inspected)
            }
            Err(e) => Err(self
                .explain_unreadable(operation, metadata, &archive, e)
                .await),
        }
    }

    /// Validates, hashes and unpacks `archive` into a staging directory beside `dest` in one
    /// pass, and checks that it is the archive `metadata` describes. Nothing reaches `dest`
    /// until the caller commits.
    pub(crate) async fn stage_checked(
        &self,
        operation: &str,
        metadata: &PackageMetadata,
        archive: Bytes,
        dest: PathBuf,
    ) -> Result<Staged> {
        let (limits, algorithm, bytes) =
            (self.limits, metadata.checksum.algorithm(), archive.clone());
        let is_crate = is_crate(metadata);
        match blocking("unpack an archive", move || {
            if is_crate {
                marketplace_cargo::stage_crate(bytes, &crate_limits(&limits), &dest)
            } else {
                stage(bytes, &limits, algorithm, &dest)
            }
        })
        .await
        {
            Ok(staged) => {
                self.check_inspected(operation, metadata, staged.inspected())?;
                Ok(staged)
            }
            Err(e) => Err(self
                .explain_unreadable(operation, metadata, &archive, e)
                .await),
        }
    }

    /// What the one pass proved against what the registry says: hash, size, and the
    /// manifest's package and version.
    fn check_inspected(
        &self,
        operation: &str,
        metadata: &PackageMetadata,
        inspected: &Inspected,
    ) -> Result<()> {
        if inspected.digest() != &metadata.checksum {
            return Err(self.checksum_mismatch(operation, metadata, inspected.digest()));
        }
        self.check_size(operation, metadata, inspected.archive())?;
        if inspected.id().canonical() != metadata.id.canonical() {
            return Err(self.refused(
                operation,
                Refusal::Archive,
                Error::invalid(
                    format!("archive of {}", metadata.id),
                    inspected.id().to_string(),
                    "the manifest must name the registered package and version",
                ),
            ));
        }
        Ok(())
    }

    /// The archive of `metadata` hashes to `actual`: refused as altered.
    fn checksum_mismatch(
        &self,
        operation: &str,
        metadata: &PackageMetadata,
        actual: &ContentHash,
    ) -> Error {
        self.refused(
            operation,
            Refusal::Checksum,
            Error::integrity(
                format!("archive of {}", metadata.id),
                &metadata.checksum,
                actual,
            ),
        )
    }

    fn check_size(&self, operation: &str, metadata: &PackageMetadata, bytes: &Bytes) -> Result<()> {
        if bytes.len() as u64 != metadata.size {
            return Err(self.refused(
                operation,
                Refusal::Checksum,
                Error::integrity(
                    format!("archive of {}", metadata.id),
                    format!("{} bytes", metadata.size),
                    format!("{} bytes", bytes.len()),
                ),
            ));
        }
        Ok(())
    }

    /// An archive that could not be read: altered bytes (`Integrity`, decided by hashing them —
    /// only on this failure path) or a validly registered archive that breaks a rule.
    async fn explain_unreadable(
        &self,
        operation: &str,
        metadata: &PackageMetadata,
        archive: &Bytes,
        error: Error,
    ) -> Error {
        if !matches!(error, Error::Invalid { .. }) {
            return error;
        }
        let algorithm = metadata.checksum.algorithm();
        match self
            .call("crypto", "checksum", true, || {
                self.crypto.checksum(archive, algorithm)
            })
            .await
        {
            Ok(actual) if actual != metadata.checksum => {
                self.checksum_mismatch(operation, metadata, &actual)
            }
            Ok(_) => self.refused(operation, Refusal::Archive, error),
            Err(e) => e,
        }
    }
}
