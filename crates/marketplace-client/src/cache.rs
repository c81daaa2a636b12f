//! [`CachedStore`]: a read-through cache of archives by content hash in front of another store
//! (a remote marketplace's), so a second install of the same graph downloads nothing.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use marketplace_core::{
    ByteStream, ContentHash, Error, PackageStore, Result, StorageMetadata, StorageStats,
};
use tokio::io::AsyncRead;

/// Reads from `cache` first and fills it from `inner`; everything else is `inner`'s.
///
/// Archives are immutable and addressed by their hash, so a cached one never goes stale; the
/// cache verifies what it reads like any store, and one that fails verification (`Integrity`)
/// is removed and fetched again. A read `inner` has to answer is held whole while it is put
/// into the cache (archives are bounded by the client's limits), then handed on. A cache that
/// cannot be written is logged and skipped: the read still succeeds.
pub struct CachedStore {
    inner: Arc<dyn PackageStore>,
    cache: Arc<dyn PackageStore>,
}

impl CachedStore {
    /// `inner`, with `cache` (a local store, say) in front of its reads.
    pub fn new(inner: Arc<dyn PackageStore>, cache: Arc<dyn PackageStore>) -> Self {
        CachedStore { inner, cache }
    }

    /// The cached bytes at `hash`, or `None` when the cache lacks them (or held bad ones,
    /// which are removed).
    async fn cached(&self, hash: &ContentHash) -> Result<Option<Bytes>> {
        match self.cache.get(hash).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e @ Error::Integrity { .. }) => {
                tracing::warn!(%hash, error = %e, "a cached archive was damaged; fetching it again");
                let _ = self.cache.delete(hash).await;
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(%hash, error = %e, "the archive cache cannot be read; fetching");
                Ok(None)
            }
        }
    }

    /// Bytes fetched from `inner`, kept in the cache when it can take them.
    async fn fill(&self, hash: &ContentHash, bytes: Bytes) -> Bytes {
        match self.cache.store(bytes.clone()).await {
            Ok(stored) if stored == *hash => {}
            Ok(stored) => {
                tracing::warn!(%hash, %stored, "fetched bytes hash otherwise; not cached");
                let _ = self.cache.delete(&stored).await;
            }
            Err(e) => tracing::warn!(%hash, error = %e, "the archive cache cannot be written"),
        }
        bytes
    }
}

#[async_trait]
impl PackageStore for CachedStore {
    async fn store(&self, bytes: Bytes) -> Result<ContentHash> {
        self.inner.store(bytes).await
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        if let Some(bytes) = self.cached(hash).await? {
            return Ok(bytes);
        }
        let bytes = self.inner.get(hash).await?;
        Ok(self.fill(hash, bytes).await)
    }

    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        if let Some(bytes) = self.cached(hash).await? {
            return Ok(Box::pin(futures_util::stream::iter([Ok(bytes)])));
        }
        // `inner`'s stream is verified: read to its end, it is the archive or an error.
        let mut stream = self.inner.stream(hash).await?;
        let mut body = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk?);
        }
        let bytes = self.fill(hash, body.freeze()).await;
        Ok(Box::pin(futures_util::stream::iter([Ok(bytes)])))
    }

    async fn upload_stream(
        &self,
        reader: Box<dyn AsyncRead + Send + Unpin>,
        size_hint: Option<u64>,
    ) -> Result<ContentHash> {
        self.inner.upload_stream(reader, size_hint).await
    }

    async fn exists(&self, hash: &ContentHash) -> Result<bool> {
        if self.cache.exists(hash).await.unwrap_or(false) {
            return Ok(true);
        }
        self.inner.exists(hash).await
    }

    async fn delete(&self, hash: &ContentHash) -> Result<bool> {
        let _ = self.cache.delete(hash).await;
        self.inner.delete(hash).await
    }

    async fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        self.inner.metadata(hash).await
    }

    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ContentHash>> {
        self.inner.list(prefix, limit).await
    }

    async fn stats(&self) -> Result<StorageStats> {
        self.inner.stats().await
    }

    async fn cleanup_staging(&self, older_than: std::time::Duration) -> Result<u64> {
        let cached = self.cache.cleanup_staging(older_than).await.unwrap_or(0);
        Ok(cached + self.inner.cleanup_staging(older_than).await?)
    }
}
