//! The Web API cargo calls: publish, yank and unyank, owners, search, download.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use marketplace_client::Archive;
use marketplace_core::{Error, Name, OwnerTarget, PackageId, PackageRef, Scope, SearchQuery};
use marketplace_protocol::v1;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{CargoError, CargoResult, base_url};
use crate::AppState;
use crate::auth;

/// A crate and version from a path, by the core's rules.
fn crate_id(name: &str, version: &str) -> CargoResult<PackageId> {
    let name = Name::new(name)?;
    Ok(PackageId::new(
        None,
        name,
        marketplace_core::parse_version(version)?,
    ))
}

/// `PUT /cargo/api/v1/crates/new`: the body cargo sends (see `marketplace_cargo::parse_publish`).
/// The JSON part is read and checked before the `.crate`; the crate must be what the JSON
/// says; the token needs publish-new (a new crate) or publish-update; the crate is
/// countersigned with the server's key and published as the token's user's, who becomes its
/// owner on a first publish. The index holds the version before the response is sent.
pub(crate) async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> CargoResult<Json<Value>> {
    let caller = auth::require(&state, &headers).await?;
    caller.allow(&[Scope::PublishNew, Scope::PublishUpdate])?;
    let Some(key) = state.cargo.signing_key.as_ref() else {
        return Err(CargoError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server has no signing key to countersign crates with, so it accepts no cargo publish (mkt serve uses its home's key)",
        ));
    };
    let limit = state.config.max_archive_bytes;
    let body = read_publish_body(&headers, body, limit).await?;
    let (new_crate, crate_bytes) = marketplace_cargo::parse_publish(&body)?;
    let crate_bytes = body.slice_ref(crate_bytes);
    let mut limits = marketplace_cargo::crate_limits();
    limits.max_compressed = limit;
    let inspected = tokio::task::spawn_blocking(move || {
        marketplace_cargo::inspect_published(&new_crate, crate_bytes, &limits)
    })
    .await
    .map_err(|e| Error::backend("server", "inspect a crate", e, false))??;
    let prepared = state.client.prepare(Archive::from(inspected)).await?;
    let package = prepared.metadata.id.package();
    check_is_crate(&state, &package).await?;
    crate::api::allow_item(&state, &caller, &mut HashMap::new(), &prepared).await?;
    state
        .client
        .publish_countersigned_as(&caller.user, prepared, &key.private_key)
        .await?;
    state.cargo.index.catch_up(&state.client, true).await?;
    Ok(Json(json!({
        "warnings": { "invalid_categories": [], "invalid_badges": [], "other": [] }
    })))
}

/// Reads a publish body: its JSON part is parsed and checked as soon as it has arrived, before
/// the `.crate` is read; 413 past `limit` (and the JSON's own limit).
async fn read_publish_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> CargoResult<bytes::Bytes> {
    let limit = limit + u64::from(marketplace_cargo::MAX_PUBLISH_JSON) + 8;
    let too_large = || {
        CargoError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the publish body is larger than this server accepts ({limit} bytes)"),
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buffer = bytes::BytesMut::new();
    let mut json_checked = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            CargoError::new(
                StatusCode::BAD_REQUEST,
                format!("the publish body could not be read to its end: {e}"),
            )
        })?;
        if (buffer.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        buffer.extend_from_slice(&chunk);
        if !json_checked && buffer.len() >= 4 {
            let head: [u8; 4] = [buffer[0], buffer[1], buffer[2], buffer[3]];
            let json_len = marketplace_cargo::json_length(head)? as usize;
            if buffer.len() >= 4 + json_len {
                let new_crate = marketplace_cargo::parse_new_crate(&buffer[4..4 + json_len])?;
                new_crate
                    .description()?
                    .to_metadata(marketplace_cargo::Strictness::Refuse)?;
                json_checked = true;
            }
        }
    }
    Ok(buffer.freeze())
}

/// 409 when `package` holds versions that are not crates (published with `mkt`): a crate
/// and a marketplace package never share a name.
async fn check_is_crate(state: &AppState, package: &PackageRef) -> CargoResult<()> {
    let registry = state.client.registry();
    let states = match registry.list_version_states(package).await {
        Ok(states) => states,
        Err(Error::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let Some(first) = states.first() else {
        return Ok(());
    };
    let earlier = registry.get(&package.at(first.version.clone())).await?;
    if !earlier
        .extensions
        .contains_key(marketplace_cargo::EXTENSION)
    {
        return Err(CargoError::new(
            StatusCode::CONFLICT,
            format!(
                "{package} is a marketplace package published with mkt, not a crate; choose another crate name"
            ),
        ));
    }
    Ok(())
}

/// `DELETE /cargo/api/v1/crates/{crate}/{version}/yank`: the yank scope and an owner.
pub(crate) async fn yank(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> CargoResult<Json<Value>> {
    set_yanked(&state, &headers, &name, &version, true).await
}

/// `PUT /cargo/api/v1/crates/{crate}/{version}/unyank`.
pub(crate) async fn unyank(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> CargoResult<Json<Value>> {
    set_yanked(&state, &headers, &name, &version, false).await
}

/// Yanks or unyanks a version for its owner; the index holds the change before the answer.
async fn set_yanked(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    version: &str,
    yanked: bool,
) -> CargoResult<Json<Value>> {
    let caller = auth::require(state, headers).await?;
    let id = crate_id(name, version)?;
    crate::accounts::may_yank(state, &caller, &id.package()).await?;
    if yanked {
        let reason = format!("yanked by {} with cargo yank", caller.user.name);
        state.client.yank(&id, &reason).await?;
    } else {
        state.client.unyank(&id).await?;
    }
    state.cargo.index.catch_up(&state.client, true).await?;
    Ok(Json(json!({ "ok": true })))
}

fn crate_target(name: &str) -> CargoResult<OwnerTarget> {
    Ok(OwnerTarget::Package(PackageRef::new(
        None,
        Name::new(name)?,
    )))
}

/// `GET /cargo/api/v1/crates/{crate}/owners`.
pub(crate) async fn owners(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> CargoResult<Json<Value>> {
    let target = crate_target(&name)?;
    let owners = state.client.owners(&target).await?;
    Ok(Json(owner_list(&owners)))
}

fn owner_list(owners: &[marketplace_core::UserName]) -> Value {
    let users: Vec<Value> = owners
        .iter()
        .enumerate()
        .map(
            |(i, user)| json!({ "id": i + 1, "login": user.to_string(), "name": user.to_string() }),
        )
        .collect();
    json!({ "users": users })
}

/// The body of an owners change: `{"users": ["login", …]}`.
#[derive(Deserialize)]
pub(crate) struct OwnersBody {
    users: Vec<String>,
}

async fn change_owners(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    body: Result<Json<OwnersBody>, JsonRejection>,
    add: bool,
) -> CargoResult<Json<Value>> {
    let target = crate_target(name)?;
    let Json(body) = body.map_err(|e| CargoError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let users = body
        .users
        .iter()
        .map(|u| u.parse())
        .collect::<marketplace_core::Result<Vec<_>>>()?;
    let request = v1::OwnersRequest {
        users: users.clone(),
    };
    crate::accounts::change_owners(state, headers, target, Ok(Json(request)), add)
        .await
        .map(drop)?;
    let names: Vec<String> = users.iter().map(ToString::to_string).collect();
    let msg = if add {
        format!("{} added as owners of crate {name}", names.join(", "))
    } else {
        format!(
            "{} removed from the owners of crate {name}",
            names.join(", ")
        )
    };
    Ok(Json(json!({ "ok": true, "msg": msg })))
}

/// `PUT /cargo/api/v1/crates/{crate}/owners`: the owners scope and an owner.
pub(crate) async fn add_owners(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<OwnersBody>, JsonRejection>,
) -> CargoResult<Json<Value>> {
    change_owners(&state, &headers, &name, body, true).await
}

/// `DELETE /cargo/api/v1/crates/{crate}/owners`.
pub(crate) async fn remove_owners(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<OwnersBody>, JsonRejection>,
) -> CargoResult<Json<Value>> {
    change_owners(&state, &headers, &name, body, false).await
}

/// The query of a search: `q` and `per_page` (1–100, default 10).
#[derive(Deserialize)]
pub(crate) struct SearchParams {
    q: Option<String>,
    per_page: Option<usize>,
}

/// `GET /cargo/api/v1/crates?q=&per_page=`: packages without a namespace (crates among them)
/// as cargo lists them.
pub(crate) async fn search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> CargoResult<Json<Value>> {
    let Query(params) =
        params.map_err(|e| CargoError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let per_page = params.per_page.unwrap_or(10);
    if !(1..=100).contains(&per_page) {
        return Err(CargoError::new(
            StatusCode::BAD_REQUEST,
            format!("per_page is 1 to 100, not {per_page}"),
        ));
    }
    // Namespaced packages are never crates: ask for more and keep the plain names.
    let query = SearchQuery::text(params.q.unwrap_or_default()).with_limit(100);
    let hits = state.client.search(&query).await?;
    let crates: Vec<Value> = hits
        .iter()
        .filter(|hit| hit.id.namespace.is_none())
        .take(per_page)
        .map(|hit| {
            json!({
                "name": hit.id.name.to_string(),
                "max_version": hit.id.version.to_string(),
                "description": hit.description,
            })
        })
        .collect();
    let total = hits.iter().filter(|hit| hit.id.namespace.is_none()).count();
    Ok(Json(
        json!({ "crates": crates, "meta": { "total": total } }),
    ))
}

/// `GET /cargo/api/v1/crates/{crate}/{version}/download`: the `.crate`, as the API's download
/// serves an archive (counted, `ETag`, ranges).
pub(crate) async fn download(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> CargoResult<Response> {
    crate_id(&name, &version)?;
    let response =
        crate::download::download(State(state), Ok(Path((name, version))), headers).await?;
    Ok(response)
}

/// `GET /cargo/me`: where `cargo login` sends people for a token.
pub(crate) async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    let text = format!(
        "Tokens for this registry are made by its operator or with an admin's token:\n\n    mkt token create --name YOU --scope publish-new --scope publish-update --scope yank --scope owners\n\nor POST {base}/api/v1/tokens. Then run `cargo login --registry NAME` and paste it.\n"
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}
