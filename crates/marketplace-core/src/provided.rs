//! The default bodies of the traits' provided methods, as functions.
//!
//! A wrapper that forwards every method to the backend it wraps (a metrics layer, a cache, a
//! remote proxy) forwards the provided ones too, so the backend's own override runs. A wrapper
//! that must run the *default* behaviour over itself instead — say, a batch made of its own
//! `register` calls so each is counted — calls the function here: it is exactly what the trait
//! would have done, and stays so when the default changes.

use std::collections::HashSet;

use semver::{Version, VersionReq};

use crate::CryptoVerifier;
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::metadata::{PackageMetadata, PackageRecord};
use crate::name::{PackageId, PackageRef};
use crate::registry::{Registry, check_registration};
use crate::search::SearchEngine;
use crate::store::{PackageStore, StreamAsIo};

/// [`Registry::register_batch`]'s default: validates every item and checks every name first
/// (so bad input or a duplicate inside the batch changes nothing), then registers one by one.
pub async fn register_batch<R: Registry + ?Sized>(
    registry: &R,
    items: Vec<(PackageMetadata, ContentHash)>,
) -> Result<Vec<PackageId>> {
    let mut seen = HashSet::new();
    for (metadata, hash) in &items {
        check_registration(metadata, hash)?;
        if !seen.insert(metadata.id.canonical()) {
            return Err(Error::already_exists(format!(
                "package {} (twice in one batch)",
                metadata.id
            )));
        }
        match registry.get(&metadata.id).await {
            Ok(existing) => {
                return Err(Error::already_exists(format!("package {}", existing.id)));
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let mut ids = Vec::with_capacity(items.len());
    for (metadata, hash) in items {
        ids.push(registry.register(metadata, hash).await?);
    }
    Ok(ids)
}

/// [`Registry::list_versions`]'s default: the versions of [`Registry::list_version_states`].
pub async fn list_versions<R: Registry + ?Sized>(
    registry: &R,
    package: &PackageRef,
) -> Result<Vec<Version>> {
    Ok(registry
        .list_version_states(package)
        .await?
        .into_iter()
        .map(|s| s.version)
        .collect())
}

/// [`Registry::resolve_version`]'s default: the highest matching version that is not yanked
/// (a yanked one only for an exact pin), from [`Registry::list_version_states`].
pub async fn resolve_version<R: Registry + ?Sized>(
    registry: &R,
    package: &PackageRef,
    requirement: &VersionReq,
) -> Result<Option<PackageId>> {
    let states = match registry.list_version_states(package).await {
        Ok(states) => states,
        Err(Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let pin = crate::resolve::is_exact_pin(requirement);
    Ok(states
        .into_iter()
        .rev()
        .find(|s| requirement.matches(&s.version) && (!s.is_yanked() || pin))
        .map(|s| package.at(s.version)))
}

/// [`Registry::latest_event_seq`]'s default: pages through [`Registry::events_since`]. A log
/// that answers with an event at or before the cursor is reported (`Backend`), not followed
/// forever.
pub async fn latest_event_seq<R: Registry + ?Sized>(registry: &R) -> Result<u64> {
    let mut last = 0;
    loop {
        let page = registry.events_since(last, 10_000).await?;
        if let Some(stale) = page.iter().find(|e| e.seq <= last) {
            return Err(Error::backend(
                "registry",
                "read the event log",
                std::io::Error::other(format!(
                    "events_since({last}) returned event {}, at or before the cursor",
                    stale.seq
                )),
                false,
            ));
        }
        match page.last() {
            Some(event) => last = event.seq,
            None => return Ok(last),
        }
    }
}

/// [`SearchEngine::index_batch`]'s default: [`SearchEngine::index`], one record at a time.
pub async fn index_batch<E: SearchEngine + ?Sized>(
    engine: &E,
    records: &[PackageRecord],
) -> Result<()> {
    for record in records {
        engine.index(record).await?;
    }
    Ok(())
}

/// [`PackageStore::copy_to`]'s default: [`PackageStore::stream`] piped into the target's
/// [`PackageStore::upload_stream`], so a corrupted source fails with `Integrity` and leaves
/// nothing in the target.
pub async fn copy_to<S: PackageStore + ?Sized>(
    store: &S,
    hash: &ContentHash,
    target: &dyn PackageStore,
) -> Result<()> {
    let size = store.metadata(hash).await?.size;
    let stream = store.stream(hash).await?;
    let reader = tokio_util::io::StreamReader::new(StreamAsIo(stream));
    let copied = target.upload_stream(Box::new(reader), Some(size)).await?;
    if &copied != hash {
        return Err(Error::integrity(format!("copy of {hash}"), hash, copied));
    }
    Ok(())
}

/// [`CryptoVerifier::verify_checksum`]'s default: [`CryptoVerifier::checksum`] with the
/// expected algorithm, compared in constant time.
pub async fn verify_checksum<C: CryptoVerifier + ?Sized>(
    crypto: &C,
    bytes: &[u8],
    expected: &ContentHash,
) -> Result<()> {
    let actual = crypto.checksum(bytes, expected.algorithm()).await?;
    if &actual != expected {
        return Err(Error::integrity(
            format!("{} bytes", bytes.len()),
            expected,
            actual,
        ));
    }
    Ok(())
}
