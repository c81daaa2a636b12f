//! [`RemoteStore`]: the core's `PackageStore` read from a server's API, by content hash.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt as _};
use marketplace_core::{
    ByteStream, ContentHash, Error, PackageStore, Result, StorageMetadata, StorageStats,
    verify_stream,
};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE};
use tokio::io::AsyncRead;

use crate::connection::{BACKEND, Connection};
use crate::progress::{self, Direction, Transfer};

/// How many times one download picks up where a broken connection left it (`Range`).
const MAX_RESUMES: u32 = 3;

/// Largest archive [`RemoteStore::get`] holds in memory (downloads stream instead).
const MAX_GET_BYTES: usize = 1024 * 1024 * 1024;

/// The archives of a remote marketplace, by content hash (`GET /api/v1/archives/{hash}`).
/// Every read is verified here against its address, whatever the server sent: bytes that do
/// not hash to it are an `Integrity` error (a stream's last item), never good data.
///
/// Writes (`store`, `upload_stream`, `delete`) are refused: archives reach a remote
/// marketplace through its publish endpoint. `metadata`, `list` and `stats` are not served by
/// the API (v1) and say so.
#[derive(Clone, Debug)]
pub struct RemoteStore {
    connection: Arc<Connection>,
}

impl RemoteStore {
    pub(crate) fn new(connection: Arc<Connection>) -> Self {
        RemoteStore { connection }
    }
}

fn archive_path(hash: &ContentHash) -> String {
    format!("/archives/{hash}")
}

#[async_trait]
impl PackageStore for RemoteStore {
    async fn store(&self, bytes: Bytes) -> Result<ContentHash> {
        Err(self
            .connection
            .refused_write(&format!("store an archive of {} bytes", bytes.len())))
    }

    async fn get(&self, hash: &ContentHash) -> Result<Bytes> {
        let mut stream = self.stream(hash).await?;
        let mut body = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if body.len() + chunk.len() > MAX_GET_BYTES {
                return Err(Error::backend(
                    BACKEND,
                    format!("get {hash}"),
                    format!(
                        "{} sent more than {MAX_GET_BYTES} bytes; stream large archives instead",
                        self.connection.base()
                    ),
                    false,
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// Streams the archive, verified against `hash` as it comes. A connection that breaks
    /// mid-body is picked up where it broke (`Range: bytes=N-`, up to three times): the
    /// server must answer with exactly the rest (206 from byte N), and the whole is verified
    /// as one.
    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        let operation = format!("download {hash}");
        let path = archive_path(hash);
        let response = self
            .connection
            .send(&operation, self.connection.get_stream(&path))
            .await?;
        let transfer = progress::begin(
            self.connection.progress(),
            Direction::Download,
            &hash.to_string(),
            response.content_length(),
        );
        let download = Download {
            connection: Arc::clone(&self.connection),
            path,
            operation,
            received: 0,
            resumes_left: MAX_RESUMES,
            body: Some(Box::pin(response.bytes_stream())),
            transfer,
        };
        let chunks: ByteStream = Box::pin(futures_util::stream::unfold(download, Download::next));
        verify_stream(chunks, hash.clone(), BACKEND)
    }

    async fn upload_stream(
        &self,
        _reader: Box<dyn AsyncRead + Send + Unpin>,
        _size_hint: Option<u64>,
    ) -> Result<ContentHash> {
        Err(self.connection.refused_write("upload an archive"))
    }

    async fn exists(&self, hash: &ContentHash) -> Result<bool> {
        let operation = format!("look for {hash}");
        match self
            .connection
            .send(&operation, self.connection.head(&archive_path(hash)))
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, hash: &ContentHash) -> Result<bool> {
        Err(self.connection.refused_write(&format!("delete {hash}")))
    }

    async fn metadata(&self, hash: &ContentHash) -> Result<StorageMetadata> {
        Err(self
            .connection
            .not_served(&format!("read the storage metadata of {hash}")))
    }

    async fn list(&self, _prefix: &str, _limit: usize) -> Result<Vec<ContentHash>> {
        Err(self.connection.not_served("list the stored archives"))
    }

    async fn stats(&self) -> Result<StorageStats> {
        Err(self.connection.not_served("count the stored archives"))
    }
}

/// A response body as it arrives.
type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// One archive download under way: the body being read and how far it got.
struct Download {
    connection: Arc<Connection>,
    path: String,
    operation: String,
    received: u64,
    resumes_left: u32,
    /// `None` once the download ended (complete or failed).
    body: Option<Body>,
    transfer: Option<Box<dyn Transfer>>,
}

impl Download {
    /// The next chunk, resuming a broken body where it broke.
    async fn next(mut self) -> Option<(Result<Bytes>, Download)> {
        loop {
            let body = self.body.as_mut()?;
            match body.next().await {
                Some(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    if let Some(transfer) = &mut self.transfer {
                        transfer.advance(chunk.len() as u64);
                    }
                    return Some((Ok(chunk), self));
                }
                None => {
                    self.body = None;
                    return None;
                }
                Some(Err(e)) if self.resumes_left == 0 => {
                    self.body = None;
                    let error = self.connection.transport(&self.operation, e);
                    return Some((Err(error), self));
                }
                Some(Err(e)) => {
                    self.resumes_left -= 1;
                    tracing::info!(
                        archive = %self.path,
                        at = self.received,
                        error = %e,
                        "the download broke off; resuming"
                    );
                    let resumed =
                        resume(&self.connection, &self.path, &self.operation, self.received).await;
                    match resumed {
                        Ok(body) => self.body = Some(body),
                        Err(error) => {
                            self.body = None;
                            return Some((Err(error), self));
                        }
                    }
                }
            }
        }
    }
}

/// The rest of the archive, from byte `received`: a 206 whose range starts exactly there
/// (a server that ignores the range, or starts elsewhere, would repeat or skip bytes).
async fn resume(
    connection: &Connection,
    path: &str,
    operation: &str,
    received: u64,
) -> Result<Body> {
    let request = connection
        .get_stream(path)
        .header(RANGE, format!("bytes={}-", received));
    let response = connection.send(operation, request).await?;
    let start = response
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split_once('-'))
        .and_then(|(start, _)| start.parse::<u64>().ok());
    if response.status() != StatusCode::PARTIAL_CONTENT || start != Some(received) {
        return Err(Error::backend(
            BACKEND,
            format!("{} ({})", operation, connection.base()),
            format!(
                "the download broke off at byte {} and the server did not send the rest from there (HTTP {}, Content-Range {:?})",
                received,
                response.status(),
                response.headers().get(CONTENT_RANGE)
            ),
            false,
        ));
    }
    Ok(Box::pin(response.bytes_stream()))
}
