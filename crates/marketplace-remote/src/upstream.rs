//! `Upstream` for [`Remote`]: publish, yank and unyank through the server's API, as the user
//! the token names.

use async_trait::async_trait;
use bytes::Bytes;
use marketplace_core::{
    ContentHash, Error, PackageId, PackageMetadata, Result, Upstream, UpstreamPublished,
};
use marketplace_protocol::v1;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};

use crate::Remote;
use crate::connection::{BACKEND, version_path};
use crate::progress::{self, Direction, Progress};

/// The size of the pieces an upload is told to a `Progress` in.
const UPLOAD_CHUNK: usize = 64 * 1024;

/// `archive` as a request body: whole, or in pieces told to `progress` as they leave.
fn upload_body(
    progress: Option<&std::sync::Arc<dyn Progress>>,
    id: &PackageId,
    archive: Bytes,
) -> reqwest::Body {
    let total = archive.len() as u64;
    let Some(mut transfer) =
        progress::begin(progress, Direction::Upload, &id.to_string(), Some(total))
    else {
        return reqwest::Body::from(archive);
    };
    let pieces: Vec<Bytes> = (0..archive.len())
        .step_by(UPLOAD_CHUNK)
        .map(|start| archive.slice(start..(start + UPLOAD_CHUNK).min(archive.len())))
        .collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(pieces.into_iter().map(
        move |piece| {
            transfer.advance(piece.len() as u64);
            Ok::<_, std::io::Error>(piece)
        },
    )))
}

#[async_trait]
impl Upstream for Remote {
    /// `PUT /api/v1/packages`: the archive, its detached signature and publication time; the
    /// server runs its publish flow as the token's user. The answer must name this version and
    /// this archive's hash.
    async fn publish(
        &self,
        metadata: &PackageMetadata,
        archive: Bytes,
    ) -> Result<UpstreamPublished> {
        let connection = &self.connection;
        let id = &metadata.id;
        let operation = format!("publish {id}");
        let Some(signature) = &metadata.signature else {
            return Err(Error::invalid(
                "signature",
                "",
                format!("{operation}: a publish to a server carries the archive's signature"),
            ));
        };
        let request = connection
            .upload(Method::PUT, "/packages")
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(
                v1::SIGNATURE_HEADER,
                v1::SignatureBody::from(signature).header_value(),
            )
            .header(
                v1::PUBLISHED_AT_HEADER,
                v1::published_at_header(metadata.published_at),
            )
            .header(CONTENT_LENGTH, archive.len())
            .body(upload_body(connection.progress(), id, archive));
        let answer: v1::PublishResponse = connection.json_of(&operation, request).await?;
        let registered: PackageId = answer
            .id
            .parse()
            .map_err(|e: Error| Error::invalid("response field id", &answer.id, e.to_string()))?;
        let checksum: ContentHash = answer.checksum.parse().map_err(|e: Error| {
            Error::invalid("response field checksum", &answer.checksum, e.to_string())
        })?;
        let same_version = registered.package().canonical() == id.package().canonical()
            && registered.version.cmp_precedence(&id.version).is_eq();
        if !same_version || checksum != metadata.checksum {
            return Err(Error::backend(
                BACKEND,
                operation,
                format!(
                    "{} answered that it published {registered} with {checksum}, not {id} with {}",
                    connection.base(),
                    metadata.checksum
                ),
                false,
            ));
        }
        Ok(UpstreamPublished::new(registered, answer.indexed))
    }

    /// `PUT …/yank` with the reason.
    async fn yank(&self, id: &PackageId, reason: &str) -> Result<()> {
        let body = serde_json::to_vec(&v1::YankRequest {
            reason: reason.to_owned(),
        })
        .map_err(|e| Error::backend(BACKEND, "encode a yank", e, false))?;
        let request = self
            .connection
            .request(Method::PUT, &format!("{}/yank", version_path(id)))
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let answer: v1::YankResponse = self
            .connection
            .json_of(&format!("yank {id}"), request)
            .await?;
        expect_yanked(self, id, &answer, true)
    }

    /// `DELETE …/yank`.
    async fn unyank(&self, id: &PackageId) -> Result<()> {
        let request = self
            .connection
            .request(Method::DELETE, &format!("{}/yank", version_path(id)));
        let answer: v1::YankResponse = self
            .connection
            .json_of(&format!("unyank {id}"), request)
            .await?;
        expect_yanked(self, id, &answer, false)
    }
}

/// A yank's answer must say `id` is in the state asked for.
fn expect_yanked(
    remote: &Remote,
    id: &PackageId,
    answer: &v1::YankResponse,
    yanked: bool,
) -> Result<()> {
    if answer.yanked == yanked {
        return Ok(());
    }
    Err(Error::backend(
        BACKEND,
        format!("{} {id}", if yanked { "yank" } else { "unyank" }),
        format!(
            "{} answered that {} is {}",
            remote.url(),
            answer.id,
            if answer.yanked {
                "yanked"
            } else {
                "not yanked"
            }
        ),
        false,
    ))
}
