//! `MemoryPackageStore`: the reference `PackageStore`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    ByteStream, ContentHash, Error, PackageStore, Result, StorageMetadata, StorageStats,
};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::lock;

/// Chunk size of [`PackageStore::stream`].
const CHUNK: usize = 64 * 1024;

/// The reference [`PackageStore`]: a sorted map from address to bytes behind one mutex.
/// `upload_stream` reads into memory (a reference may; real stores must not).
#[derive(Default)]
pub struct MemoryPackageStore {
    objects: Mutex<BTreeMap<ContentHash, (Bytes, OffsetDateTime)>>,
}

impl MemoryPackageStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn verified(&self, hash: &ContentHash) -> Result<Bytes> {
        let bytes = lock(&self.objects)
            .get(hash)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| Error::not_found(format!("object {hash}")))?;
        let actual = ContentHash::sha256(&bytes);
        if &actual != hash {
            return Err(Error::integrity(format!("object {hash}"), hash, actual));
        }
        Ok(bytes)
    }
}

#[async_trait]
impl PackageStore for MemoryPackageStore {
    async fn store(&self, bytes: Bytes) -> Result<ContentHash> {
        let hash = ContentHash::sha256(&bytes);
        lock(&self.objects)
            .entry(hash.clone())
            .or_insert_with(|| (bytes, OffsetDateTime::now_utc()));
        Ok(hash)
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        self.verified(hash)
    }

    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        let bytes = self.verified(hash)?;
        let chunks: Vec<Result<Bytes>> = (0..bytes.len())
            .step_by(CHUNK)
            .map(|start| Ok(bytes.slice(start..(start + CHUNK).min(bytes.len()))))
            .collect();
        Ok(Box::pin(futures::stream::iter(chunks)))
    }

    async fn upload_stream(
        &self,
        mut reader: Box<dyn AsyncRead + Send + Unpin>,
        _size_hint: Option<u64>,
    ) -> Result<ContentHash> {
        let mut body = Vec::new();
        reader.read_to_end(&mut body).await.map_err(|e| {
            Error::carried_by(e)
                .unwrap_or_else(|e| Error::backend("memory", "read an upload stream", e, false))
        })?;
        self.store(Bytes::from(body)).await
    }

    async fn exists(&self, hash: &ContentHash) -> Result<bool> {
        Ok(lock(&self.objects).contains_key(hash))
    }

    async fn delete(&self, hash: &ContentHash) -> Result<bool> {
        Ok(lock(&self.objects).remove(hash).is_some())
    }

    async fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        lock(&self.objects)
            .get(hash)
            .map(|(bytes, created)| {
                StorageMetadata::new(hash.clone(), bytes.len() as u64, *created)
            })
            .ok_or_else(|| Error::not_found(format!("object {hash}")))
    }

    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ContentHash>> {
        let objects = lock(&self.objects);
        let mut found: Vec<ContentHash> = objects
            .keys()
            .filter(|h| h.to_string().starts_with(prefix))
            .cloned()
            .collect();
        found.sort_by_key(ToString::to_string);
        found.truncate(limit);
        Ok(found)
    }

    async fn stats(&self) -> Result<StorageStats> {
        let objects = lock(&self.objects);
        Ok(StorageStats::new(
            objects.len() as u64,
            objects.values().map(|(b, _)| b.len() as u64).sum(),
        ))
    }
}

/// The reference store's objects can be changed beneath it, for the corruption checks.
#[async_trait]
impl crate::Tamper for MemoryPackageStore {
    async fn replace(&self, hash: &ContentHash, bytes: Bytes) -> std::result::Result<(), String> {
        match lock(&self.objects).get_mut(hash) {
            Some((stored, _)) => {
                *stored = bytes;
                Ok(())
            }
            None => Err(format!("no object {hash} to tamper with")),
        }
    }
}
