//! A stream that hashes what passes through and fails at the end if the digest is wrong.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;
use marketplace_core::{ContentHash, ContentHasher, Error, HashAlgorithm, Result};

use crate::error::StoreError;

/// The digest of `bytes` under `algorithm`.
pub(crate) fn digest(algorithm: HashAlgorithm, bytes: &[u8]) -> Result<ContentHash> {
    let mut hasher = ContentHasher::new(algorithm)?;
    hasher.update(bytes);
    Ok(hasher.finish())
}

/// `Ok` when the bytes read from `store` as `expected` hashed to `actual`, else `Integrity`.
pub(crate) fn check(expected: &ContentHash, actual: &ContentHash, store: &str) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::integrity(
            format!("object {expected} in {store}"),
            expected,
            actual,
        ))
    }
}

/// Yields the chunks of `inner`; after the last one, checks the digest and yields an
/// `Integrity` error if it does not match. A caller that reads to the end never accepts bad
/// data.
pub(crate) struct VerifyingStream {
    inner: BoxStream<'static, object_store::Result<Bytes>>,
    hasher: Option<ContentHasher>,
    expected: ContentHash,
    store: String,
}

impl VerifyingStream {
    pub(crate) fn new(
        inner: BoxStream<'static, object_store::Result<Bytes>>,
        expected: ContentHash,
        store: String,
    ) -> Result<Self> {
        Ok(VerifyingStream {
            inner,
            hasher: Some(ContentHasher::new(expected.algorithm())?),
            expected,
            store,
        })
    }
}

impl Stream for VerifyingStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(hasher) = this.hasher.as_mut() else {
            return Poll::Ready(None);
        };
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(source))) => {
                this.hasher = None;
                let store = this.store.clone();
                Poll::Ready(Some(Err(StoreError::ObjectStore { store, source }
                    .during(format!("stream {}", this.expected)))))
            }
            Poll::Ready(None) => {
                let Some(hasher) = this.hasher.take() else {
                    return Poll::Ready(None);
                };
                let actual = hasher.finish();
                match check(&this.expected, &actual, &this.store) {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}
