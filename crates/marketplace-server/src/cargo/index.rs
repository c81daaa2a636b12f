//! The sparse index: `config.json` and one file per crate, built from the registry, cached in
//! memory and kept current from the change feed.
//!
//! A crate's file is a pure function of the registry (its versions with their `cargo`
//! extension and yank state), so every node of a shared registry serves the same bytes, under
//! the same `ETag`. The cache drops a crate's file when an event about the crate appears in the
//! change feed (see [`crate::feed`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use marketplace_cargo::{IndexLine, name_from_index_path};
use marketplace_client::MarketplaceClient;
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{ContentHash, Error, Name, PackageRef, Result};

use super::{CargoError, CargoResult, base_url};
use crate::AppState;
use crate::cache::{Bounded, Cost};
use crate::feed::Follower;

/// Versions of one crate read at once when its file is built.
const READ_CONCURRENCY: usize = 8;

/// Most bytes of index files the cache keeps: past it, files are dropped and built again when
/// asked for. A mirror of every crate would not fit in memory.
const MAX_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// One crate's index file, or the knowledge that there is none.
#[derive(Debug)]
enum Entry {
    File(IndexFile),
    Absent,
}

impl Cost for Entry {
    fn cost(&self) -> usize {
        match self {
            Entry::File(file) => file.body.len() + file.etag.len() + file.last_modified.len(),
            Entry::Absent => 0,
        }
    }
}

#[derive(Debug)]
struct IndexFile {
    body: bytes::Bytes,
    etag: String,
    last_modified: String,
}

/// The index files served, by canonical crate name.
#[derive(Debug)]
pub(crate) struct IndexCache {
    files: RwLock<Bounded<Entry>>,
    follower: Follower,
    /// Bumped by every catch-up that dropped something: a file built across one is not kept.
    generation: AtomicU64,
}

impl Default for IndexCache {
    fn default() -> Self {
        IndexCache {
            files: RwLock::new(Bounded::new(MAX_CACHE_BYTES)),
            follower: Follower::default(),
            generation: AtomicU64::new(0),
        }
    }
}

impl IndexCache {
    /// Applies the change feed: drops the file of every crate an event names (see
    /// [`Follower::catch_up`] for `force`).
    pub(crate) async fn catch_up(&self, client: &MarketplaceClient, force: bool) -> Result<()> {
        self.follower
            .catch_up(client.registry(), force, |events| {
                let mut files = self.files.write().unwrap_or_else(|p| p.into_inner());
                for event in events {
                    let id = event.kind.id();
                    if id.namespace.is_none() {
                        files.remove(&id.package().canonical());
                    }
                }
                self.generation.fetch_add(1, Ordering::AcqRel);
            })
            .await
    }

    fn cached(&self, key: &str) -> Option<Arc<Entry>> {
        self.files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
    }

    /// The entry of `name`: cached, or built from the registry and cached.
    async fn entry(&self, client: &MarketplaceClient, name: &Name) -> Result<Arc<Entry>> {
        let package = PackageRef::new(None, name.clone());
        let key = package.canonical();
        if let Some(entry) = self.cached(&key) {
            return Ok(entry);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let entry = Arc::new(build(client, &package).await?);
        // Kept only if no catch-up dropped anything meanwhile (it may have been this crate).
        if self.generation.load(Ordering::Acquire) == generation {
            self.files
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, Arc::clone(&entry));
        }
        Ok(entry)
    }
}

/// The index file of `package`: one line per version that is a crate, in version order.
async fn build(client: &MarketplaceClient, package: &PackageRef) -> Result<Entry> {
    let registry = client.registry();
    let states = match registry.list_version_states(package).await {
        Ok(states) => states,
        Err(Error::NotFound { .. }) => return Ok(Entry::Absent),
        Err(e) => return Err(e),
    };
    let reads: Vec<_> = states
        .iter()
        .map(|state| {
            let id = package.at(state.version.clone());
            async move { registry.get(&id).await }
        })
        .collect();
    let metadata: Vec<Result<_>> = futures_util::stream::iter(reads)
        .buffered(READ_CONCURRENCY)
        .collect()
        .await;
    let mut body = Vec::new();
    let mut newest: Option<OffsetDateTime> = None;
    for (state, metadata) in states.iter().zip(metadata) {
        let metadata = metadata?;
        let Some(line) = IndexLine::of(&metadata, state.is_yanked()) else {
            continue;
        };
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(id = %metadata.id, error = %e, "a crate's Cargo fields do not read: left out of its index file");
                continue;
            }
        };
        serde_json::to_writer(&mut body, &line).map_err(|e| {
            Error::backend(
                "cargo index",
                format!("write the line of {}", metadata.id),
                e,
                false,
            )
        })?;
        body.push(b'\n');
        let changed = state
            .yanked
            .as_ref()
            .map_or(metadata.published_at, |y| y.at.max(metadata.published_at));
        newest = Some(newest.map_or(changed, |n| n.max(changed)));
    }
    let Some(newest) = newest else {
        return Ok(Entry::Absent);
    };
    let hash = ContentHash::sha256(&body);
    Ok(Entry::File(IndexFile {
        etag: format!("\"{}\"", &hash.to_string()["sha256:".len()..][..32]),
        last_modified: http_date(newest),
        body: bytes::Bytes::from(body),
    }))
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(at: OffsetDateTime) -> String {
    let at = at.to_offset(marketplace_core::time::UtcOffset::UTC);
    let weekday = &format!("{}", at.weekday())[..3];
    let month = &format!("{}", at.month())[..3];
    format!(
        "{weekday}, {:02} {month} {} {:02}:{:02}:{:02} GMT",
        at.day(),
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// `GET /cargo/index/config.json`.
pub(crate) async fn config(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    let body = serde_json::json!({
        "dl": format!("{base}/cargo/api/v1/crates"),
        "api": format!("{base}/cargo"),
        "auth-required": state.config.private,
    });
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /cargo/index/{path}`: a crate's index file, with `ETag` and `Last-Modified`; 304 when
/// the client's copy is current; 404 for a crate the registry does not hold.
pub(crate) async fn file(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> CargoResult<Response> {
    let not_found = || {
        CargoError::new(
            StatusCode::NOT_FOUND,
            format!("no crate's index file at {path}"),
        )
    };
    let name = name_from_index_path(&path).ok_or_else(not_found)?;
    let name = Name::new(name).map_err(|_| not_found())?;
    let index = &state.cargo.index;
    index.catch_up(&state.client, false).await?;
    let entry = index.entry(&state.client, &name).await?;
    let Entry::File(file) = entry.as_ref() else {
        return Err(CargoError::new(
            StatusCode::NOT_FOUND,
            format!("crate {name} is not in this registry"),
        ));
    };
    let fresh = match headers.get(header::IF_NONE_MATCH) {
        Some(wanted) => wanted
            .to_str()
            .is_ok_and(|w| w.split(',').any(|tag| tag.trim() == file.etag)),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .is_some_and(|since| since.as_bytes() == file.last_modified.as_bytes()),
    };
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(file.body.clone()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&file.etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(modified) = HeaderValue::from_str(&file.last_modified) {
        headers.insert(header::LAST_MODIFIED, modified);
    }
    // Cargo revalidates every file it uses; so must any cache between.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
