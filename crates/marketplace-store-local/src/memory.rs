//! The in-memory store: a sorted map from address to bytes and creation time.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{ByteStream, ContentHash, Error, Result, StorageMetadata, StorageStats};

/// Chunks of a stream.
const CHUNK: usize = 256 * 1024;

const NAME: &str = "in-memory store";

#[derive(Debug, Default)]
pub(crate) struct Memory {
    objects: Mutex<BTreeMap<ContentHash, (Bytes, OffsetDateTime)>>,
}

impl Memory {
    fn objects(&self) -> MutexGuard<'_, BTreeMap<ContentHash, (Bytes, OffsetDateTime)>> {
        // The map is only ever changed by single inserts and removals: a panic elsewhere
        // while the lock was held cannot have left it half-changed.
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `bytes` under their digest (once: the same bytes again change nothing).
    pub(crate) fn store(&self, bytes: Bytes) -> ContentHash {
        let hash = ContentHash::sha256(&bytes);
        self.objects()
            .entry(hash.clone())
            .or_insert_with(|| (bytes, OffsetDateTime::now_utc()));
        hash
    }

    /// The bytes at `hash`, not yet verified.
    pub(crate) fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        self.objects()
            .get(hash)
            .map(|(bytes, _)| bytes.clone())
            .ok_or_else(|| not_found(hash))
    }

    /// `bytes` if they hash to `hash`, else `Integrity`.
    pub(crate) fn verified(&self, hash: &ContentHash, bytes: Bytes) -> Result<Bytes> {
        let actual = ContentHash::sha256(&bytes);
        if &actual != hash {
            return Err(Error::integrity(
                format!("object {hash} in {NAME}"),
                hash,
                actual,
            ));
        }
        Ok(bytes)
    }

    /// The bytes as chunks, verified as they are consumed.
    pub(crate) fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        let bytes = self.get(hash)?;
        let chunks: Vec<Result<Bytes>> = (0..bytes.len())
            .step_by(CHUNK)
            .map(|start| Ok(bytes.slice(start..(start + CHUNK).min(bytes.len()))))
            .collect();
        marketplace_core::verify_stream(
            Box::pin(futures_util::stream::iter(chunks)),
            hash.clone(),
            NAME,
        )
    }

    pub(crate) fn exists(&self, hash: &ContentHash) -> bool {
        self.objects().contains_key(hash)
    }

    pub(crate) fn delete(&self, hash: &ContentHash) -> bool {
        self.objects().remove(hash).is_some()
    }

    pub(crate) fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        let objects = self.objects();
        let (bytes, created) = objects.get(hash).ok_or_else(|| not_found(hash))?;
        Ok(StorageMetadata::new(
            hash.clone(),
            bytes.len() as u64,
            *created,
        ))
    }

    pub(crate) fn list(&self, prefix: &str, limit: usize) -> Vec<ContentHash> {
        self.objects()
            .keys()
            .filter(|hash| hash.to_string().starts_with(prefix))
            .take(limit)
            .cloned()
            .collect()
    }

    pub(crate) fn stats(&self) -> StorageStats {
        let objects = self.objects();
        let bytes = objects.values().map(|(b, _)| b.len() as u64).sum();
        StorageStats::new(objects.len() as u64, bytes)
    }

    /// Replaces the bytes at `hash` without checking them (keeping its creation time).
    pub(crate) fn overwrite(&self, hash: &ContentHash, bytes: Bytes) {
        let mut objects = self.objects();
        let created = objects
            .get(hash)
            .map_or_else(OffsetDateTime::now_utc, |(_, created)| *created);
        objects.insert(hash.clone(), (bytes, created));
    }
}

fn not_found(hash: &ContentHash) -> Error {
    Error::not_found(format!("object {hash} in {NAME}"))
}
