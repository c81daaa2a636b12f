//! The `PackageStore` trait: content-addressed archive bytes.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::io::AsyncRead;

use crate::error::{Error, Result};
use crate::hash::{ContentHash, ContentHasher};

/// A stream of archive bytes. A verifying stream fails with `Integrity` as its last item when
/// the bytes do not match their address.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + 'static>>;

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StorageMetadata {
    /// The object's address.
    pub hash: ContentHash,
    /// Its size in bytes.
    pub size: u64,
    /// When it was first stored.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
}

impl StorageMetadata {
    /// What a store knows of one object.
    pub fn new(hash: ContentHash, size: u64, created: OffsetDateTime) -> Self {
        StorageMetadata {
            hash,
            size,
            created,
        }
    }
}

/// Totals of a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StorageStats {
    /// Number of objects.
    pub objects: u64,
    /// Sum of their sizes in bytes.
    pub bytes: u64,
}

impl StorageStats {
    /// A store's counts.
    pub fn new(objects: u64, bytes: u64) -> Self {
        StorageStats { objects, bytes }
    }
}

/// Content-addressed storage of archives, addressed by SHA-256.
///
/// Storing the same bytes twice is idempotent and keeps one object. An object becomes visible
/// under its address only once it is complete. Every read verifies the digest: corrupted bytes
/// are reported as `Integrity`, never returned as good data.
#[async_trait]
pub trait PackageStore: Send + Sync {
    /// Stores `bytes` and returns their SHA-256 address.
    async fn store(&self, bytes: Bytes) -> Result<ContentHash>;

    /// The bytes at `hash`, verified. `NotFound` if absent, `Integrity` if corrupted.
    async fn get(&self, hash: &ContentHash) -> Result<Bytes>;

    /// The bytes at `hash` as a stream of chunks. `NotFound` (from the call) if absent. The
    /// stream is verified: if the bytes do not match, its last item is an `Integrity` error, so a
    /// caller that reads it to the end never accepts bad data.
    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream>;

    /// Stores everything `reader` yields, hashing while it streams and without holding the whole
    /// body in memory; the object appears under its address only when complete. `size_hint`
    /// (if known) lets backends choose multipart uploads. A failing reader stores nothing.
    async fn upload_stream(
        &self,
        reader: Box<dyn AsyncRead + Send + Unpin>,
        size_hint: Option<u64>,
    ) -> Result<ContentHash>;

    /// Whether an object exists at `hash`.
    async fn exists(&self, hash: &ContentHash) -> Result<bool>;

    /// Deletes the object at `hash`; returns whether it existed. Deleting twice is fine.
    async fn delete(&self, hash: &ContentHash) -> Result<bool>;

    /// Size and creation time of the object at `hash`. `NotFound` if absent.
    async fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata>;

    /// Copies the object at `hash` into `target`, streaming. The provided implementation pipes
    /// [`PackageStore::stream`] into the target's [`PackageStore::upload_stream`], so a
    /// corrupted source fails the copy with `Integrity` and leaves nothing in the target.
    async fn copy_to(&self, hash: &ContentHash, target: &dyn PackageStore) -> Result<()> {
        crate::provided::copy_to(self, hash, target).await
    }

    /// Addresses whose text form (`sha256:…`) starts with `prefix`, ascending, at most `limit`.
    async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ContentHash>>;

    /// Number of objects and total bytes.
    async fn stats(&self) -> Result<StorageStats>;

    /// Removes what interrupted uploads left behind (staged bodies never renamed into place)
    /// that is older than `older_than`, and returns how many leftovers were removed. Uploads in
    /// progress are younger than any sensible `older_than` (an hour, say). Provided: nothing to
    /// remove, for stores that stage nothing.
    async fn cleanup_staging(&self, older_than: std::time::Duration) -> Result<u64> {
        let _ = older_than;
        Ok(0)
    }
}

/// Adapts a [`ByteStream`] to the `std::io::Error` items `StreamReader` wants, carrying our error
/// inside so that `Integrity` survives the trip.
pub(crate) struct StreamAsIo(pub(crate) ByteStream);

impl Stream for StreamAsIo {
    type Item = std::io::Result<Bytes>;
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(|r| r.map_err(std::io::Error::other)))
    }
}
/// Reads from `reader` until `size` bytes are in hand or it ends, whichever comes first: one
/// piece of an upload, for backends implementing [`PackageStore::upload_stream`] that write or
/// send in pieces. A short piece means the reader has ended.
pub async fn read_piece(
    reader: &mut (dyn AsyncRead + Send + Unpin),
    size: usize,
) -> std::io::Result<bytes::BytesMut> {
    use tokio::io::AsyncReadExt;
    let mut buf = bytes::BytesMut::with_capacity(size);
    while buf.len() < size {
        let n = (&mut *reader)
            .take((size - buf.len()) as u64)
            .read_buf(&mut buf)
            .await?;
        if n == 0 {
            break;
        }
    }
    Ok(buf)
}

/// `inner` (the bytes read from `store` for `expected`), hashed as it passes: after its last
/// chunk, an `Integrity` error if the digest does not match, so a caller that reads to the end
/// never accepts bad data. The last chunk is held back until the digest is known: a stream of
/// bad bytes ends one chunk short (with the error), so even a reader that stops at the
/// expected length, as an HTTP client does, never receives them whole. For backends
/// implementing [`PackageStore::stream`], and for whoever hands a stream on; the chunks
/// otherwise flow through unchanged, and an error of `inner` ends the stream.
///
/// Errors: `Unsupported` if `expected`'s algorithm cannot be computed here.
pub fn verify_stream(
    inner: ByteStream,
    expected: ContentHash,
    store: impl Into<String>,
) -> Result<ByteStream> {
    Ok(Box::pin(VerifyingStream {
        inner,
        hasher: Some(ContentHasher::new(expected.algorithm())?),
        held: None,
        expected,
        store: store.into(),
    }))
}

/// See [`verify_stream`].
struct VerifyingStream {
    inner: ByteStream,
    /// `None` once the stream has ended (cleanly, with an error, or with the verdict).
    hasher: Option<ContentHasher>,
    /// The newest chunk, hashed but not yet handed on.
    held: Option<Bytes>,
    expected: ContentHash,
    store: String,
}

impl Stream for VerifyingStream {
    type Item = Result<Bytes>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        loop {
            let Some(hasher) = this.hasher.as_mut() else {
                return Poll::Ready(this.held.take().map(Ok));
            };
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    hasher.update(&chunk);
                    if let Some(previous) = this.held.replace(chunk) {
                        return Poll::Ready(Some(Ok(previous)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.hasher = None;
                    this.held = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    let Some(hasher) = this.hasher.take() else {
                        return Poll::Ready(None);
                    };
                    let actual = hasher.finish();
                    if actual == this.expected {
                        // The verdict is in: the held chunk goes out, then the end.
                        return Poll::Ready(this.held.take().map(Ok));
                    }
                    this.held = None;
                    return Poll::Ready(Some(Err(Error::integrity(
                        format!("object {} in {}", this.expected, this.store),
                        &this.expected,
                        &actual,
                    ))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn chunks(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<Result<Bytes>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures_util::stream::iter(items))
    }

    async fn read_all(stream: ByteStream) -> Vec<Result<Bytes>> {
        stream.collect().await
    }

    #[tokio::test]
    async fn good_bytes_pass_whole_and_bad_ones_lose_their_last_chunk() {
        let expected = ContentHash::sha256(b"abcdef");
        let good =
            read_all(verify_stream(chunks(&[b"ab", b"cd", b"ef"]), expected.clone(), "t").unwrap())
                .await;
        let good: Vec<Bytes> = good.into_iter().map(|c| c.unwrap()).collect();
        assert_eq!(good, [&b"ab"[..], b"cd", b"ef"]);

        let bad =
            read_all(verify_stream(chunks(&[b"ab", b"cd", b"eX"]), expected.clone(), "t").unwrap())
                .await;
        assert_eq!(bad.len(), 3, "two chunks, then the verdict");
        assert_eq!(bad[0].as_ref().unwrap(), &b"ab"[..]);
        assert_eq!(bad[1].as_ref().unwrap(), &b"cd"[..]);
        assert_eq!(
            bad[2].as_ref().unwrap_err().kind(),
            crate::ErrorKind::Integrity
        );

        let one = read_all(verify_stream(chunks(&[b"abcdeX"]), expected, "t").unwrap()).await;
        assert_eq!(one.len(), 1, "a single bad chunk is never handed on");
        assert!(one[0].is_err());
    }
}
