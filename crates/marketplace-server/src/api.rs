//! `/api/v1/`: the client's flows as JSON over HTTP, in the wire types of
//! `marketplace_protocol::v1`.
//!
//! A package in a path is one segment: `web`, or `acme%2Fweb` for `acme/web` (the slash
//! percent-encoded), so that `/packages/{package}/{version}` is never ambiguous.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use futures_util::{StreamExt, TryStreamExt as _};
use marketplace_core::{
    Error, PackageId, PackageRef, Scope, SearchQuery, SortOrder, parse_requirement_for,
    parse_version,
};
use marketplace_protocol::v1;

use crate::AppState;
use crate::auth;
use crate::download;
use crate::error::{ApiError, ApiResult};

/// The routes under `/api/v1`.
pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/packages", put(publish))
        .route("/batch", post(publish_batch))
        .route("/packages/{package}/versions", get(versions))
        .route("/packages/{package}/{version}", get(version_metadata))
        .route("/packages/{package}/{version}/info", get(info))
        .route("/packages/{package}/{version}/stats", get(stats))
        .route(
            "/packages/{package}/{version}/download",
            get(download::download),
        )
        .route(
            "/packages/{package}/{version}/downloads",
            post(download::count_download),
        )
        .route("/archives/{hash}", get(download::archive))
        .route("/resolve", get(resolve))
        .route("/search", get(search))
        .route("/facets", get(facets))
        .route("/packages/{package}/{version}/similar", get(similar))
        .route("/suggest", get(suggest))
        .route("/events", get(events))
        .route("/keys", get(keys))
        .route("/openapi.json", get(crate::openapi::openapi_json))
}

/// The path parameters, or a 400 saying which part of the path is malformed.
pub(crate) fn path<T>(extracted: Result<Path<T>, PathRejection>) -> ApiResult<T> {
    extracted
        .map(|Path(value)| value)
        .map_err(|e| ApiError::invalid("path", e.body_text()))
}

/// The query parameters, or a 400 naming what is wrong with them.
pub(crate) fn query<T>(extracted: Result<Query<T>, QueryRejection>) -> ApiResult<T> {
    extracted
        .map(|Query(value)| value)
        .map_err(|e| ApiError::invalid("query", e.body_text()))
}

/// `package` and `version` from a path, validated by the core's rules.
pub(crate) fn package_id((package, version): (String, String)) -> ApiResult<PackageId> {
    let package: PackageRef = package.parse()?;
    Ok(package.at(parse_version(&version)?))
}

#[utoipa::path(
    get,
    path = "/api/v1/packages/{package}/versions",
    tag = "packages",
    summary = "Every version with its yank state",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME")),
    responses((status = 200, description = "The versions", body = v1::VersionList), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn versions(
    State(state): State<AppState>,
    package: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<v1::VersionList>> {
    let package: PackageRef = path(package)?.parse()?;
    let states = state.client.versions(&package).await?;
    Ok(Json(v1::VersionList::new(&package, &states)))
}

#[utoipa::path(
    get,
    path = "/api/v1/packages/{package}/{version}",
    tag = "packages",
    summary = "One version's metadata",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME"), ("version" = String, Path, description = "an exact semver version")),
    responses((status = 200, description = "The metadata", body = v1::VersionMetadata), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn version_metadata(
    State(state): State<AppState>,
    params: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<v1::VersionMetadata>> {
    let id = package_id(path(params)?)?;
    let metadata = state.client.registry().get(&id).await?;
    Ok(Json(v1::VersionMetadata::from(&metadata)))
}

#[utoipa::path(
    get,
    path = "/api/v1/packages/{package}/{version}/info",
    tag = "packages",
    summary = "Metadata, yank and statistics",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME"), ("version" = String, Path, description = "an exact semver version")),
    responses((status = 200, description = "The version", body = v1::PackageInfo), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn info(
    State(state): State<AppState>,
    params: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<v1::PackageInfo>> {
    let id = package_id(path(params)?)?;
    let info = state.client.info(&id).await?;
    Ok(Json(v1::PackageInfo {
        metadata: v1::VersionMetadata::from(&info.metadata),
        yanked: info.yanked.is_some(),
        yank: v1::YankFields::new(info.yanked.as_ref()),
        stats: v1::Stats::from(&info.stats),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/packages/{package}/{version}/stats",
    tag = "packages",
    summary = "Download statistics",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME"), ("version" = String, Path, description = "an exact semver version")),
    responses((status = 200, description = "The statistics", body = v1::Stats), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    params: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<v1::Stats>> {
    let id = package_id(path(params)?)?;
    let stats = state.client.stats(&id).await?;
    Ok(Json(v1::Stats::from(&stats)))
}

/// Media types a publish body may be sent as (an archive is a gzip-compressed tar).
const ARCHIVE_TYPES: &[&str] = &[
    "application/octet-stream",
    "application/gzip",
    "application/x-gzip",
    "application/x-tar",
];

/// `PUT /api/v1/packages`: the body is the archive, the [`v1::SIGNATURE_HEADER`] its detached
/// signature, `Authorization` a token with the publish-new (a new package) or publish-update
/// scope covering the package. The server computes the metadata from the archive itself,
/// attaches the signature and runs the client's publish flow as the token's user (the key must
/// be theirs, the package theirs or nobody's; the signature and the key's trust are verified).
#[utoipa::path(
    put,
    path = "/api/v1/packages",
    tag = "publish",
    summary = "Publish a signed archive",
    params(("marketplace-signature" = String, Header, description = "ed25519 <public key hex> <signature hex>"), ("marketplace-published-at" = String, Header, description = "the RFC 3339 publication time the signature covers")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the package archive (.tar.gz)"),
    responses((status = 201, description = "Published", body = v1::PublishResponse), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<v1::PublishResponse>)> {
    let caller = auth::require(&state, &headers).await?;
    caller.allow(&[Scope::PublishNew, Scope::PublishUpdate])?;
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or("");
        let essence = kind.split(';').next().unwrap_or("").trim();
        if !ARCHIVE_TYPES
            .iter()
            .any(|t| t.eq_ignore_ascii_case(essence))
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid",
                format!("a publish body is a package archive, not {kind:?}"),
            )
            .with_hint("send the .tar.gz as application/octet-stream"));
        }
    }
    let signature = headers
        .get(v1::SIGNATURE_HEADER)
        .ok_or_else(|| {
            ApiError::invalid(
                v1::SIGNATURE_HEADER,
                format!(
                    "a publish needs the archive's signature in the {} header",
                    v1::SIGNATURE_HEADER
                ),
            )
            .with_hint("mkt publish signs and sends it")
        })?
        .to_str()
        .map_err(|_| ApiError::invalid(v1::SIGNATURE_HEADER, "the header is not ASCII text"))?;
    let signature = v1::SignatureBody::from_header(signature)?;
    let published_at = headers
        .get(v1::PUBLISHED_AT_HEADER)
        .ok_or_else(|| {
            ApiError::invalid(
                v1::PUBLISHED_AT_HEADER,
                format!(
                    "a publish needs the publication time its author signed, in the {} header",
                    v1::PUBLISHED_AT_HEADER
                ),
            )
            .with_hint("mkt publish sends it")
        })?
        .to_str()
        .map_err(|_| ApiError::invalid(v1::PUBLISHED_AT_HEADER, "the header is not ASCII text"))?;
    let published_at = v1::parse_published_at(published_at, marketplace_core::now_seconds())?;
    let archive = read_body(&headers, body, state.config.max_archive_bytes, "archive").await?;
    let mut prepared = state.client.prepare(archive).await?;
    allow_item(&state, &caller, &mut HashMap::new(), &prepared).await?;
    prepared.metadata.published_at = published_at;
    prepared.metadata.signature = Some(signature);
    let published = state.client.publish_as(&caller.user, prepared).await?;
    Ok((
        StatusCode::CREATED,
        Json(v1::PublishResponse {
            id: published.id.to_string(),
            checksum: published.checksum.to_string(),
            size: published.size,
            indexed: published.indexed,
        }),
    ))
}

/// Most packages one batch publish may carry.
pub(crate) const MAX_BATCH_PACKAGES: usize = 10_000;

/// `POST /api/v1/batch`: many packages in one JSON body ([`v1::BatchRequest`]), for imports.
/// Each is checked as a single publish is (the token's scope and pattern, the key, ownership)
/// and a refused one is listed with its position; the others are published together.
#[utoipa::path(
    post,
    path = "/api/v1/batch",
    tag = "publish",
    summary = "Publish many signed archives at once",
    request_body = v1::BatchRequest,
    responses((status = 200, description = "What was published and what was refused", body = v1::BatchResponse), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn publish_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<v1::BatchResponse>> {
    let caller = auth::require(&state, &headers).await?;
    caller.allow(&[Scope::PublishNew, Scope::PublishUpdate])?;
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or("");
        let essence = kind.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid",
                format!("a batch publish body is JSON, not {kind:?}"),
            ));
        }
    }
    let bytes = read_body(&headers, body, state.config.max_batch_bytes, "batch").await?;
    let request: v1::BatchRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid("body", format!("not a batch publish body: {e}")))?;
    if request.packages.is_empty() || request.packages.len() > MAX_BATCH_PACKAGES {
        return Err(ApiError::invalid(
            "packages",
            format!(
                "a batch carries 1 to {MAX_BATCH_PACKAGES} packages, not {}",
                request.packages.len()
            ),
        ));
    }
    let now = marketplace_core::now_seconds();
    // Each archive is inspected on the blocking pool (a decompression and a hash): a few at a
    // time keep every core busy; the results stay in the batch's order. (The futures are made
    // up front, not by a closure over the stream, so the handler's future stays `Send`.)
    let signing: Vec<_> = request
        .packages
        .iter()
        .map(|item| signed_item(&state, item, now))
        .collect();
    let signed: Vec<ApiResult<marketplace_client::PreparedPackage>> =
        futures_util::stream::iter(signing)
            .buffered(PREPARE_CONCURRENCY)
            .collect()
            .await;
    let mut prepared = Vec::with_capacity(request.packages.len());
    let mut positions = Vec::with_capacity(request.packages.len());
    let mut refused = Vec::new();
    // Whether each package had no version before this batch, read once per package.
    let covered = signed
        .iter()
        .filter_map(|item| item.as_ref().ok())
        .map(|p| p.metadata.id.package())
        .filter(|package| caller.cover(package).is_ok());
    let mut new_packages = new_packages(&state, covered).await?;
    for (index, item) in signed.into_iter().enumerate() {
        let allowed = match item {
            Ok(p) => allow_item(&state, &caller, &mut new_packages, &p)
                .await
                .map(|()| p),
            Err(e) => Err(e),
        };
        match allowed {
            Ok(p) => {
                positions.push(index);
                prepared.push(p);
            }
            Err(e) if e.status().is_server_error() => return Err(e),
            Err(e) => refused.push(v1::BatchRefusal {
                index,
                error: e.into_body(),
            }),
        }
    }
    let outcome = state.client.publish_many_as(&caller.user, prepared).await?;
    refused.extend(outcome.refused.iter().map(|(at, e)| v1::BatchRefusal {
        index: positions[*at],
        error: v1::ErrorResponse::from(e).error,
    }));
    refused.sort_by_key(|r| r.index);
    Ok(Json(v1::BatchResponse {
        published: outcome
            .published
            .iter()
            .map(|p| v1::PublishResponse {
                id: p.id.to_string(),
                checksum: p.checksum.to_string(),
                size: p.size,
                indexed: p.indexed,
            })
            .collect(),
        refused,
    }))
}

/// Archives of a batch inspected at once.
const PREPARE_CONCURRENCY: usize = 4;

/// One package of a batch, prepared with its signature and publication time.
async fn signed_item(
    state: &AppState,
    item: &v1::BatchItem,
    now: marketplace_core::time::OffsetDateTime,
) -> ApiResult<marketplace_client::PreparedPackage> {
    let signature = v1::SignatureBody::from_header(&item.signature)?;
    let published_at = v1::parse_published_at(&item.published_at, now)?;
    let mut prepared = state.client.prepare(item.archive_bytes()?).await?;
    prepared.metadata.published_at = published_at;
    prepared.metadata.signature = Some(signature);
    Ok(prepared)
}

/// 403 unless the caller's token may publish `prepared`: its pattern covers the package, and
/// it holds publish-new for a package without versions (before the batch, for a batch: looked
/// up once per package, in `new_packages`) or publish-update for one with.
pub(crate) async fn allow_item(
    state: &AppState,
    caller: &auth::Caller,
    new_packages: &mut HashMap<String, bool>,
    prepared: &marketplace_client::PreparedPackage,
) -> ApiResult<()> {
    let package = prepared.metadata.id.package();
    caller.cover(&package)?;
    let key = package.canonical();
    let new = match new_packages.get(&key) {
        Some(new) => *new,
        None => {
            let new = is_new(state, &package).await?;
            new_packages.insert(key, new);
            new
        }
    };
    caller.allow(&[if new {
        Scope::PublishNew
    } else {
        Scope::PublishUpdate
    }])
}

/// Packages whose versions are looked up at once.
const LOOKUP_CONCURRENCY: usize = 8;

/// Whether each of `packages` has no version yet, by canonical name, looked up once per
/// package and a few at a time.
async fn new_packages(
    state: &AppState,
    packages: impl Iterator<Item = PackageRef>,
) -> ApiResult<HashMap<String, bool>> {
    let mut distinct = HashMap::new();
    for package in packages {
        distinct.entry(package.canonical()).or_insert(package);
    }
    let lookups: Vec<_> =
        distinct
            .into_iter()
            .map(|(key, package)| async move {
                Ok::<_, ApiError>((key, is_new(state, &package).await?))
            })
            .collect();
    futures_util::stream::iter(lookups)
        .buffer_unordered(LOOKUP_CONCURRENCY)
        .try_collect()
        .await
}

/// Whether `package` has no version yet (publishing it needs the publish-new scope).
async fn is_new(state: &AppState, package: &PackageRef) -> ApiResult<bool> {
    match state.client.versions(package).await {
        Ok(states) => Ok(states.is_empty()),
        Err(Error::NotFound { .. }) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// The whole body, refused with 413 before it is read when its `Content-Length` passes
/// `limit` bytes, or as soon as it does, and with 400 when the client stops sending in the
/// middle.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
    what: &str,
) -> ApiResult<bytes::Bytes> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit) {
        return Err(too_large(what, limit));
    }
    let mut stream = body.into_data_stream();
    let mut buffer = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::invalid(
                "body",
                format!("the request body could not be read to its end: {e}"),
            )
        })?;
        if (buffer.len() + chunk.len()) as u64 > limit {
            return Err(too_large(what, limit));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

/// The 413 of a body (`what`: the archive, the batch) over `limit` bytes.
pub(crate) fn too_large(what: &str, limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid",
        format!("the {what} is larger than this server accepts ({limit} bytes)"),
    )
}

/// `GET /api/v1/resolve?package=&req=`: the whole graph an install would put in place.
#[utoipa::path(
    get,
    path = "/api/v1/resolve",
    tag = "packages",
    summary = "The whole dependency graph of an install",
    params(v1::ResolveParams),
    responses((status = 200, description = "The graph", body = v1::ResolvedGraph), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn resolve(
    State(state): State<AppState>,
    params: Result<Query<v1::ResolveParams>, QueryRejection>,
) -> ApiResult<Json<v1::ResolvedGraph>> {
    let params = query(params)?;
    let package: PackageRef = params
        .package
        .ok_or_else(|| ApiError::invalid("package", "resolve needs ?package=NAME"))?
        .parse()?;
    let requirement = parse_requirement_for("req", params.req.as_deref().unwrap_or("*"))?;
    let graph = state.client.resolve(&package, &requirement).await?;
    Ok(Json(v1::ResolvedGraph::from(&graph)))
}

/// Most hits one search returns.
pub(crate) const MAX_SEARCH_LIMIT: usize = 100;

/// Most events one page of the feed returns.
pub(crate) const MAX_EVENTS_LIMIT: usize = 1000;

/// `limit` when it is 1 to `max`, else a 400 saying so.
fn bounded_limit(limit: usize, max: usize) -> ApiResult<usize> {
    if limit == 0 || limit > max {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be 1 to {max}, got {limit}"),
        ));
    }
    Ok(limit)
}

fn list(text: Option<String>) -> Vec<String> {
    text.map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// The search a request's parameters ask for, or a 400 naming the parameter that is wrong.
fn search_query(params: v1::SearchParams) -> ApiResult<SearchQuery> {
    let sort = match params.sort.as_deref() {
        None | Some("relevance") => SortOrder::Relevance,
        Some("downloads") => SortOrder::Downloads,
        Some("recent") => SortOrder::Recent,
        Some("name") => SortOrder::Name,
        Some(other) => {
            return Err(ApiError::invalid(
                "sort",
                format!("unknown sort {other:?}: one of relevance, downloads, recent, name"),
            ));
        }
    };
    let limit = bounded_limit(params.limit.unwrap_or(20), MAX_SEARCH_LIMIT)?;
    let mut search = SearchQuery::text(params.q.unwrap_or_default())
        .with_categories(list(params.categories))
        .with_keywords(list(params.keywords));
    if let Some(namespace) = params.namespace {
        search = search.with_namespace(namespace);
    }
    search.min_downloads = params.min_downloads;
    search.include_yanked = params.include_yanked.unwrap_or(false);
    search.forgive_short_typos = params.forgive_short_typos.unwrap_or(false);
    search.sort = sort;
    search.limit = limit;
    search.offset = params.offset.unwrap_or(0);
    Ok(search)
}

/// `GET /api/v1/search?q=…`.
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "search",
    summary = "Search packages",
    params(v1::SearchParams),
    responses((status = 200, description = "The hits, best first", body = v1::SearchResults), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn search(
    State(state): State<AppState>,
    params: Result<Query<v1::SearchParams>, QueryRejection>,
) -> ApiResult<Json<v1::SearchResults>> {
    let search = search_query(query(params)?)?;
    let hits = state.client.search(&search).await?;
    Ok(Json(v1::SearchResults {
        hits: hits.iter().map(v1::SearchHit::from).collect(),
    }))
}

/// `GET /api/v1/facets?q=…` (the search's parameters): counts per category, keyword and
/// namespace of what the search matches.
#[utoipa::path(
    get,
    path = "/api/v1/facets",
    tag = "search",
    summary = "Counts per category, keyword and namespace of a search's matches",
    params(v1::SearchParams),
    responses((status = 200, description = "The counts", body = v1::FacetCounts), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn facets(
    State(state): State<AppState>,
    params: Result<Query<v1::SearchParams>, QueryRejection>,
) -> ApiResult<Json<v1::FacetCounts>> {
    let search = search_query(query(params)?)?;
    let facets = state.client.facets(&search).await?;
    Ok(Json(v1::FacetCounts::from(&facets)))
}

/// `GET /api/v1/packages/{package}/{version}/similar?limit=`: packages like this one.
#[utoipa::path(
    get,
    path = "/api/v1/packages/{package}/{version}/similar",
    tag = "search",
    summary = "Packages like this one",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME"), ("version" = String, Path, description = "an exact semver version"), v1::LimitParams),
    responses((status = 200, description = "The hits, best first", body = v1::SearchResults), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn similar(
    State(state): State<AppState>,
    params: Result<Path<(String, String)>, PathRejection>,
    limit: Result<Query<v1::LimitParams>, QueryRejection>,
) -> ApiResult<Json<v1::SearchResults>> {
    let id = package_id(path(params)?)?;
    let limit = bounded_limit(query(limit)?.limit.unwrap_or(10), MAX_SEARCH_LIMIT)?;
    let hits = state.client.similar(&id, limit).await?;
    Ok(Json(v1::SearchResults {
        hits: hits.iter().map(v1::SearchHit::from).collect(),
    }))
}

/// `GET /api/v1/suggest?q=PREFIX`: package names for a search box.
#[utoipa::path(
    get,
    path = "/api/v1/suggest",
    tag = "search",
    summary = "Package names for a search box",
    params(v1::SuggestParams),
    responses((status = 200, description = "The names", body = v1::Suggestions), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn suggest(
    State(state): State<AppState>,
    params: Result<Query<v1::SuggestParams>, QueryRejection>,
) -> ApiResult<Json<v1::Suggestions>> {
    let params = query(params)?;
    let limit = params.limit.unwrap_or(10).clamp(1, MAX_SEARCH_LIMIT);
    let names = state
        .client
        .suggest(params.q.as_deref().unwrap_or(""), limit)
        .await?;
    Ok(Json(v1::Suggestions {
        names: names.iter().map(ToString::to_string).collect(),
    }))
}

/// `GET /api/v1/events?since=&limit=`: the change feed after `since`, ascending.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "packages",
    summary = "The change feed",
    params(v1::EventParams),
    responses((status = 200, description = "Events after since, ascending", body = v1::EventPage), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    params: Result<Query<v1::EventParams>, QueryRejection>,
) -> ApiResult<Json<v1::EventPage>> {
    let params = query(params)?;
    let limit = bounded_limit(params.limit.unwrap_or(100), MAX_EVENTS_LIMIT)?;
    let events = state
        .client
        .registry()
        .events_since(params.since.unwrap_or(0), limit)
        .await?;
    let events = events
        .iter()
        .map(v1::Event::try_from)
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Json(v1::EventPage { events }))
}

/// `GET /api/v1/keys`: the server's trust store.
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "keys",
    summary = "The server's trust store",
    responses((status = 200, description = "Every key, trusted or revoked", body = v1::KeyList), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn keys(State(state): State<AppState>) -> ApiResult<Json<v1::KeyList>> {
    let keys = state.client.trusted_keys().await?;
    Ok(Json(v1::KeyList {
        keys: keys.iter().map(v1::KeyEntry::from).collect(),
    }))
}
