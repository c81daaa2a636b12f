//! `GET /api/v1/packages/{package}/{version}/download`: the archive, with `ETag` (its content
//! hash), `If-None-Match` → 304 and single `Range` requests → 206; `GET /api/v1/archives/{hash}`:
//! the same by content hash, for clients that verify for themselves (the remote backends).
//!
//! A full download (or a range from byte 0) of a version runs the client's streamed download
//! flow: signature and trust checked before the first byte, the bytes hashed as they stream,
//! the download counted. A range that resumes later in the archive, and every read by hash, is
//! the store's stream (which verifies what it reads), not counted: a client reading by hash
//! counts its download with `POST …/downloads`. Nothing is held whole in memory. Archives are
//! immutable, so every response may be cached for good.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use marketplace_core::{ByteStream, ContentHash, PackageId};

use crate::AppState;
use crate::api::{package_id, path};
use crate::error::{ApiError, ApiResult};

/// Versions never change their bytes: a year, and `immutable`.
const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";

#[utoipa::path(
    get,
    path = "/api/v1/packages/{package}/{version}/download",
    tag = "packages",
    summary = "The archive",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME"), ("version" = String, Path, description = "an exact semver version"), ("if-none-match" = Option<String>, Header, description = "an ETag (the content hash)"), ("range" = Option<String>, Header, description = "one byte range")),
    responses((status = 200, description = "The archive", content_type = "application/octet-stream", body = Vec<u8>), (status = 206, description = "The range asked for", content_type = "application/octet-stream", body = Vec<u8>), (status = 304, description = "Not modified"), (status = 416, description = "The range is past the end"), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn download(
    State(state): State<AppState>,
    params: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let id = package_id(path(params)?)?;
    let metadata = state.client.registry().get(&id).await?;
    serve(
        &state,
        &headers,
        Source::Version(&id),
        &metadata.checksum,
        metadata.size,
    )
    .await
}

#[utoipa::path(
    get,
    path = "/api/v1/archives/{hash}",
    tag = "packages",
    summary = "An archive by its content hash (not counted as a download)",
    params(("hash" = String, Path, description = "the content hash, ALGORITHM:HEX"), ("if-none-match" = Option<String>, Header, description = "an ETag (the content hash)"), ("range" = Option<String>, Header, description = "one byte range")),
    responses((status = 200, description = "The archive", content_type = "application/octet-stream", body = Vec<u8>), (status = 206, description = "The range asked for", content_type = "application/octet-stream", body = Vec<u8>), (status = 304, description = "Not modified"), (status = 416, description = "The range is past the end"), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn archive(
    State(state): State<AppState>,
    params: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let hash: ContentHash = path(params)?.parse()?;
    let stored = state.client.store().metadata(&hash).await?;
    serve(&state, &headers, Source::Store, &hash, stored.size).await
}

/// `POST /api/v1/packages/{package}/{version}/downloads`: counts one download of a version
/// whose archive the client read by hash (an install over the remote backends).
#[utoipa::path(
    post,
    path = "/api/v1/packages/{package}/{version}/downloads",
    tag = "packages",
    summary = "Count one download of a version read by hash",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME"), ("version" = String, Path, description = "an exact semver version")),
    responses((status = 204, description = "Counted"), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn count_download(
    State(state): State<AppState>,
    params: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<StatusCode> {
    let id = package_id(path(params)?)?;
    let registry = state.client.registry();
    registry.get(&id).await?;
    registry.record_download(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where the bytes of a response come from.
enum Source<'a> {
    /// The download flow of this version (from byte 0), else the store.
    Version(&'a PackageId),
    /// The store's verified stream.
    Store,
}

/// The archive `checksum` of `size` bytes as `headers` ask for it: whole, a range, or 304.
async fn serve(
    state: &AppState,
    headers: &HeaderMap,
    source: Source<'_>,
    checksum: &ContentHash,
    size: u64,
) -> ApiResult<Response> {
    let etag = format!("\"{checksum}\"");
    if let Some(wanted) = headers.get(header::IF_NONE_MATCH)
        && matches_etag(wanted, &etag)
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set_common(response.headers_mut(), &etag);
        return Ok(response);
    }
    let range = match headers.get(header::RANGE) {
        Some(value) => match parse_range(value, size) {
            Range::Satisfiable(start, end) => Some((start, end)),
            Range::Ignored => None,
            Range::Unsatisfiable => {
                let mut response = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "invalid",
                    format!("the range {value:?} is outside the archive ({size} bytes)"),
                )
                .into_response();
                response.headers_mut().insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{size}")),
                );
                return Ok(response);
            }
        },
        None => None,
    };
    let start = range.map_or(0, |(start, _)| start);
    let body = match source {
        Source::Version(id) if start == 0 => state.client.download_stream(id).await?.body,
        // A resume, or a read by hash: the store's bytes (which it verifies), not counted.
        _ => state.client.store().stream(checksum).await?,
    };
    let (status, body) = match range {
        Some((start, end)) => (StatusCode::PARTIAL_CONTENT, slice(body, start, end)),
        None => (StatusCode::OK, body),
    };
    // Streamed, never held whole: bytes that fail verification end the body early (the
    // connection is cut before the announced length), so no client takes them for the archive.
    let mut response = (status, Body::from_stream(body)).into_response();
    let out = response.headers_mut();
    let length = range.map_or(size, |(start, end)| end - start + 1);
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    set_common(out, &etag);
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    if let Some((start, end)) = range {
        out.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {start}-{end}/{size}")),
        );
    }
    Ok(response)
}

/// Bytes `start..=end` of `body`: what comes before is skipped, and the stream stops after
/// `end` without reading further.
fn slice(body: ByteStream, start: u64, end: u64) -> ByteStream {
    // (the rest of the body, the offset of its next chunk)
    let state = Some((body, 0u64));
    Box::pin(futures_util::stream::unfold(
        state,
        move |state| async move {
            let (mut body, mut offset) = state?;
            loop {
                let chunk = match body.next().await? {
                    Ok(chunk) => chunk,
                    Err(e) => return Some((Err(e), None)),
                };
                let (from, to) = (offset, offset + chunk.len() as u64);
                offset = to;
                if to <= start {
                    continue;
                }
                let first = start.saturating_sub(from) as usize;
                let last = (end + 1).min(to) - from;
                let piece = chunk.slice(first..last as usize);
                let next = (to <= end).then_some((body, offset));
                return Some((Ok(piece), next));
            }
        },
    ))
}

fn header_value(text: &str) -> HeaderValue {
    // Only digits, `-`, `/`, `*`, spaces, quotes and a hash's `sha256:<hex>` are written.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn set_common(out: &mut HeaderMap, etag: &str) {
    out.insert(header::ETAG, header_value(etag));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_FOREVER),
    );
}

/// Whether an `If-None-Match` value names `etag` (or is `*`); weak tags compare equal too.
fn matches_etag(wanted: &HeaderValue, etag: &str) -> bool {
    let Ok(wanted) = wanted.to_str() else {
        return false;
    };
    wanted
        .split(',')
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// Bytes `start..=end`.
    Satisfiable(u64, u64),
    /// No range the server honours (several ranges, another unit, malformed): the whole
    /// archive is sent, as RFC 9110 allows.
    Ignored,
    /// A well-formed range wholly past the end.
    Unsatisfiable,
}

/// One `bytes=` range of RFC 9110 against an archive of `size` bytes.
fn parse_range(value: &HeaderValue, size: u64) -> Range {
    let Some(spec) = value.to_str().ok().and_then(|v| v.strip_prefix("bytes=")) else {
        return Range::Ignored;
    };
    if spec.contains(',') {
        return Range::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Ignored;
    };
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    match (first, last) {
        // `bytes=-N`: the last N bytes.
        ("", suffix) => match number(suffix) {
            Some(0) => Range::Unsatisfiable,
            Some(n) if size > 0 => Range::Satisfiable(size.saturating_sub(n), size - 1),
            Some(_) => Range::Unsatisfiable,
            None => Range::Ignored,
        },
        (start, end) => {
            let Some(start) = number(start) else {
                return Range::Ignored;
            };
            let end = match end {
                "" => None,
                end => match number(end) {
                    Some(end) => Some(end),
                    None => return Range::Ignored,
                },
            };
            if end.is_some_and(|end| end < start) {
                return Range::Ignored;
            }
            if start >= size {
                return Range::Unsatisfiable;
            }
            Range::Satisfiable(start, end.unwrap_or(size - 1).min(size - 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str, size: u64) -> Range {
        parse_range(&HeaderValue::from_str(text).unwrap(), size)
    }

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        assert_eq!(range("bytes=0-9", 100), Range::Satisfiable(0, 9));
        assert_eq!(range("bytes=90-", 100), Range::Satisfiable(90, 99));
        assert_eq!(range("bytes=90-500", 100), Range::Satisfiable(90, 99));
        assert_eq!(range("bytes=-10", 100), Range::Satisfiable(90, 99));
        assert_eq!(range("bytes=-500", 100), Range::Satisfiable(0, 99));
        assert_eq!(range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(range("bytes=0-1,5-6", 100), Range::Ignored);
        assert_eq!(range("bytes=9-1", 100), Range::Ignored);
        assert_eq!(range("items=0-1", 100), Range::Ignored);
        assert_eq!(range("bytes=a-b", 100), Range::Ignored);
        assert_eq!(range("bytes=+1-2", 100), Range::Ignored);
        assert_eq!(range("bytes=99999999999999999999999-", 100), Range::Ignored);
    }

    async fn sliced(chunks: &[&'static [u8]], start: u64, end: u64) -> Vec<u8> {
        let items: Vec<marketplace_core::Result<bytes::Bytes>> = chunks
            .iter()
            .map(|c| Ok(bytes::Bytes::from_static(c)))
            .collect();
        let body: ByteStream = Box::pin(futures_util::stream::iter(items));
        let mut out = Vec::new();
        let mut pieces = slice(body, start, end);
        while let Some(piece) = pieces.next().await {
            out.extend_from_slice(&piece.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_range_is_cut_across_chunk_boundaries() {
        let chunks: &[&[u8]] = &[b"0123", b"4567", b"89"];
        assert_eq!(sliced(chunks, 0, 9).await, b"0123456789");
        assert_eq!(sliced(chunks, 2, 5).await, b"2345");
        assert_eq!(sliced(chunks, 4, 7).await, b"4567");
        assert_eq!(sliced(chunks, 3, 3).await, b"3");
        assert_eq!(sliced(chunks, 8, 9).await, b"89");
        assert_eq!(sliced(chunks, 0, 0).await, b"0");
    }

    #[test]
    fn etags_match_strong_weak_and_star() {
        let etag = "\"sha256:ab\"";
        for yes in [
            "\"sha256:ab\"",
            "W/\"sha256:ab\"",
            "*",
            "\"x\", \"sha256:ab\"",
        ] {
            assert!(
                matches_etag(&HeaderValue::from_str(yes).unwrap(), etag),
                "{yes}"
            );
        }
        assert!(!matches_etag(
            &HeaderValue::from_static("\"sha256:cd\""),
            etag
        ));
    }
}
