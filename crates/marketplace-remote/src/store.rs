//! [`RemoteStore`]: the core's `PackageStore` read from a server's API, by content hash.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use marketplace_core::{
    ByteStream, ContentHash, Error, PackageStore, Result, StorageMetadata, StorageStats,
    verify_stream,
};
use tokio::io::AsyncRead;

use crate::connection::{BACKEND, Connection};

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

    async fn stream(&self, hash: &ContentHash) -> Result<ByteStream> {
        let operation = format!("download {hash}");
        let request = self.connection.get_stream(&archive_path(hash));
        let response = self.connection.send(&operation, request).await?;
        let connection = Arc::clone(&self.connection);
        let chunks: ByteStream = Box::pin(
            response
                .bytes_stream()
                .map(move |chunk| chunk.map_err(|e| connection.transport(&operation, e))),
        );
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
