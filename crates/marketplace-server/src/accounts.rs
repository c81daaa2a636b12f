//! The account endpoints under `/api/v1`: who is asking (`/me`), users (admins), API tokens,
//! the owners of packages and namespaces, users' signing keys, and yanking — each checked
//! against the caller's token and ownership before anything changes.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, put};
use marketplace_core::{KeyId, Name, OwnerTarget, PackagePattern, PackageRef, Scope, UserName};
use marketplace_protocol::v1;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::api::{package_id, path, query};
use crate::auth::{self, Caller, forbidden};
use crate::error::{ApiError, ApiResult};

/// The account routes under `/api/v1`.
pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/me", get(me))
        .route("/me/keys", get(my_keys).post(add_key))
        .route("/me/keys/{key}", delete(revoke_key))
        .route("/users", get(users).post(create_user))
        .route("/users/{user}/keys", get(user_keys))
        .route("/tokens", get(tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
        .route(
            "/packages/{package}/owners",
            get(package_owners)
                .put(add_package_owners)
                .delete(remove_package_owners),
        )
        .route(
            "/namespaces/{namespace}/owners",
            get(namespace_owners)
                .put(add_namespace_owners)
                .delete(remove_namespace_owners),
        )
        .route(
            "/packages/{package}/{version}/yank",
            put(yank).delete(unyank),
        )
}

/// A JSON body, or 415 (not sent as JSON) / 400 (not the expected shape) saying why.
pub(crate) fn json<T: DeserializeOwned>(extracted: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    match extracted {
        Ok(Json(value)) => Ok(value),
        Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid",
            "this endpoint takes a JSON body",
        )
        .with_hint("send it with Content-Type: application/json")),
        Err(e) => Err(ApiError::invalid("body", e.body_text())),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "accounts",
    summary = "The token's user and the token",
    responses((status = 200, description = "Who is asking", body = v1::Me), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<v1::Me>> {
    let caller = auth::require(&state, &headers).await?;
    Ok(Json(v1::Me {
        user: v1::UserEntry::from(&caller.user),
        token: v1::TokenEntry::from(&caller.token),
    }))
}

// ---- users -------------------------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "accounts",
    summary = "Every user (admins)",
    responses((status = 200, description = "The users", body = v1::UserList), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<v1::UserList>> {
    auth::require(&state, &headers).await?.admin()?;
    let users = state.client.users().await?;
    Ok(Json(v1::UserList {
        users: users.iter().map(v1::UserEntry::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "accounts",
    summary = "Add a user (admins)",
    request_body = v1::UserRequest,
    responses((status = 201, description = "The user", body = v1::UserEntry), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<v1::UserRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<v1::UserEntry>)> {
    let caller = auth::require(&state, &headers).await?;
    caller.admin()?;
    let request = json(body)?;
    let user = state
        .client
        .create_user(request.name, request.admin)
        .await?;
    Ok((StatusCode::CREATED, Json(v1::UserEntry::from(&user))))
}

fn user_name(text: &str) -> ApiResult<UserName> {
    UserName::new(text).map_err(|e| ApiError::invalid("user", e.to_string()))
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{user}/keys",
    tag = "accounts",
    summary = "A user's signing keys",
    params(("user" = String, Path, description = "a user name")),
    responses((status = 200, description = "Key ids", body = v1::UserKeys), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn user_keys(
    State(state): State<AppState>,
    user: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<v1::UserKeys>> {
    let user = user_name(&path(user)?)?;
    if state.client.user(&user).await?.is_none() {
        return Err(marketplace_core::Error::not_found(format!("user {user}")).into());
    }
    keys_of(&state, &user).await
}

async fn keys_of(state: &AppState, user: &UserName) -> ApiResult<Json<v1::UserKeys>> {
    let keys = state.client.keys_of(user).await?;
    Ok(Json(v1::UserKeys {
        keys: keys.iter().map(ToString::to_string).collect(),
    }))
}

// ---- tokens ------------------------------------------------------------------------------------

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserParam {
    user: Option<String>,
}

/// The user a request acts on: `?user=` (admins only), or the caller.
fn acting_on(caller: &Caller, user: Option<&str>) -> ApiResult<UserName> {
    match user {
        None => Ok(caller.user.name.clone()),
        Some(text) => {
            let user = user_name(text)?;
            if user != caller.user.name {
                caller.admin()?;
            }
            Ok(user)
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "accounts",
    summary = "A user's tokens, without secrets",
    params(UserParam),
    responses((status = 200, description = "The tokens", body = v1::TokenList), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<UserParam>, QueryRejection>,
) -> ApiResult<Json<v1::TokenList>> {
    let caller = auth::require(&state, &headers).await?;
    let user = acting_on(&caller, query(params)?.user.as_deref())?;
    let tokens = state.client.tokens(&user).await?;
    Ok(Json(v1::TokenList {
        tokens: tokens.iter().map(v1::TokenEntry::from).collect(),
    }))
}

/// `POST /api/v1/tokens`: a new token, never more than the one creating it — its scopes held
/// by the caller's token, its pattern and expiry no wider (both inherited when unset).
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "accounts",
    summary = "Create a token (its secret is shown once)",
    request_body = v1::TokenRequest,
    responses((status = 201, description = "The new token", body = v1::CreatedToken), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<v1::TokenRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<v1::CreatedToken>)> {
    let caller = auth::require(&state, &headers).await?;
    let request = json(body)?;
    let user = match &request.user {
        Some(user) if *user != caller.user.name => {
            caller.admin()?;
            user.clone()
        }
        _ => caller.user.name.clone(),
    };
    for scope in &request.scopes {
        caller.allow(&[*scope])?;
    }
    let pattern = match (&caller.token.pattern, request.pattern) {
        (None, pattern) => pattern,
        (Some(held), None) => Some(held.clone()),
        (Some(held), Some(asked)) if asked == *held => Some(asked),
        (Some(held), Some(asked)) => {
            return Err(forbidden(format!(
                "token {} is limited to {held}, so it cannot create a token for {asked}",
                caller.token.id
            )));
        }
    };
    let expires_at = match (caller.token.expires_at, request.expires_at) {
        (None, asked) => asked,
        (Some(held), None) => Some(held),
        (Some(held), Some(asked)) if asked <= held => Some(asked),
        (Some(held), Some(_)) => {
            return Err(forbidden(format!(
                "token {} expires at {held}, so it cannot create a token that outlives it",
                caller.token.id
            )));
        }
    };
    let created = state
        .client
        .create_token(&user, &request.name, request.scopes, pattern, expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(v1::CreatedToken {
            token: created.secret,
            record: v1::TokenEntry::from(&created.record),
        }),
    ))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "accounts",
    summary = "Revoke a token",
    params(("id" = String, Path, description = "the token id, 16 hex digits"), UserParam),
    responses((status = 200, description = "The revoked token", body = v1::TokenEntry), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<UserParam>, QueryRejection>,
) -> ApiResult<Json<v1::TokenEntry>> {
    let caller = auth::require(&state, &headers).await?;
    let id = path(id)?;
    let user = acting_on(&caller, query(params)?.user.as_deref())?;
    let record = state.client.revoke_token(&user, &id).await?;
    Ok(Json(v1::TokenEntry::from(&record)))
}

// ---- owners ------------------------------------------------------------------------------------

fn package_target(package: Result<Path<String>, PathRejection>) -> ApiResult<OwnerTarget> {
    let package: PackageRef = path(package)?.parse()?;
    Ok(OwnerTarget::Package(package))
}

fn namespace_target(namespace: Result<Path<String>, PathRejection>) -> ApiResult<OwnerTarget> {
    let namespace =
        Name::new(&path(namespace)?).map_err(|e| ApiError::invalid("namespace", e.to_string()))?;
    Ok(OwnerTarget::Namespace(namespace))
}

async fn owners_of(state: &AppState, target: &OwnerTarget) -> ApiResult<Json<v1::OwnerList>> {
    Ok(Json(v1::OwnerList {
        owners: state.client.owners(target).await?,
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/packages/{package}/owners",
    tag = "owners",
    summary = "A package's owners",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME")),
    responses((status = 200, description = "The owners", body = v1::OwnerList), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn package_owners(
    State(state): State<AppState>,
    package: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<v1::OwnerList>> {
    owners_of(&state, &package_target(package)?).await
}

#[utoipa::path(
    get,
    path = "/api/v1/namespaces/{namespace}/owners",
    tag = "owners",
    summary = "A namespace's owners",
    params(("namespace" = String, Path, description = "a namespace")),
    responses((status = 200, description = "The owners", body = v1::OwnerList), crate::openapi::Errors),
    security((), ("token" = []))
)]
pub(crate) async fn namespace_owners(
    State(state): State<AppState>,
    namespace: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<v1::OwnerList>> {
    owners_of(&state, &namespace_target(namespace)?).await
}

/// The caller may change `target`'s owners: the owners scope, a pattern covering it, and
/// ownership of it (or admin).
async fn may_manage(state: &AppState, caller: &Caller, target: &OwnerTarget) -> ApiResult<()> {
    caller.allow(&[Scope::Owners])?;
    match target {
        OwnerTarget::Package(package) => caller.cover(package)?,
        OwnerTarget::Namespace(namespace) => {
            let whole = PackagePattern::new(&format!("{namespace}/*"))?;
            if caller.token.pattern.as_ref().is_some_and(|p| *p != whole) {
                return Err(forbidden(format!(
                    "token {} is limited to packages its pattern names, not the whole namespace {namespace}",
                    caller.token.id
                )));
            }
        }
    }
    state.client.check_owner(&caller.user, target).await?;
    Ok(())
}

/// Adds (`add`) or removes the body's users as owners of `target`, after checking the caller
/// may, and every named user exists (nothing changes otherwise).
pub(crate) async fn change_owners(
    state: &AppState,
    headers: &HeaderMap,
    target: OwnerTarget,
    body: Result<Json<v1::OwnersRequest>, JsonRejection>,
    add: bool,
) -> ApiResult<Json<v1::OwnerList>> {
    let caller = auth::require(state, headers).await?;
    let request = json(body)?;
    may_manage(state, &caller, &target).await?;
    if request.users.is_empty() {
        return Err(ApiError::invalid("users", "name at least one user"));
    }
    let owners = state.client.owners(&target).await?;
    for user in &request.users {
        if add && state.client.user(user).await?.is_none() {
            return Err(marketplace_core::Error::not_found(format!("user {user}")).into());
        }
        if !add && !owners.contains(user) {
            return Err(marketplace_core::Error::not_found(format!(
                "{user} among the owners of {target}"
            ))
            .into());
        }
    }
    if !add
        && request
            .users
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            >= owners.len()
    {
        return Err(ApiError::invalid(
            "owner",
            format!("{target} would be left without an owner; add another one first"),
        ));
    }
    for user in &request.users {
        if add {
            state.client.add_owner(&target, user).await?;
        } else {
            state.client.remove_owner(&target, user).await?;
        }
    }
    owners_of(state, &target).await
}

#[utoipa::path(
    put,
    path = "/api/v1/packages/{package}/owners",
    tag = "owners",
    summary = "Add owners to a package",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME")),
    request_body = v1::OwnersRequest,
    responses((status = 200, description = "The owners", body = v1::OwnerList), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn add_package_owners(
    State(state): State<AppState>,
    headers: HeaderMap,
    package: Result<Path<String>, PathRejection>,
    body: Result<Json<v1::OwnersRequest>, JsonRejection>,
) -> ApiResult<Json<v1::OwnerList>> {
    change_owners(&state, &headers, package_target(package)?, body, true).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/packages/{package}/owners",
    tag = "owners",
    summary = "Remove owners of a package",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME")),
    request_body = v1::OwnersRequest,
    responses((status = 200, description = "The owners", body = v1::OwnerList), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn remove_package_owners(
    State(state): State<AppState>,
    headers: HeaderMap,
    package: Result<Path<String>, PathRejection>,
    body: Result<Json<v1::OwnersRequest>, JsonRejection>,
) -> ApiResult<Json<v1::OwnerList>> {
    change_owners(&state, &headers, package_target(package)?, body, false).await
}

#[utoipa::path(
    put,
    path = "/api/v1/namespaces/{namespace}/owners",
    tag = "owners",
    summary = "Add owners to a namespace",
    params(("namespace" = String, Path, description = "a namespace")),
    request_body = v1::OwnersRequest,
    responses((status = 200, description = "The owners", body = v1::OwnerList), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn add_namespace_owners(
    State(state): State<AppState>,
    headers: HeaderMap,
    namespace: Result<Path<String>, PathRejection>,
    body: Result<Json<v1::OwnersRequest>, JsonRejection>,
) -> ApiResult<Json<v1::OwnerList>> {
    change_owners(&state, &headers, namespace_target(namespace)?, body, true).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/namespaces/{namespace}/owners",
    tag = "owners",
    summary = "Remove owners of a namespace",
    params(("namespace" = String, Path, description = "a namespace")),
    request_body = v1::OwnersRequest,
    responses((status = 200, description = "The owners", body = v1::OwnerList), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn remove_namespace_owners(
    State(state): State<AppState>,
    headers: HeaderMap,
    namespace: Result<Path<String>, PathRejection>,
    body: Result<Json<v1::OwnersRequest>, JsonRejection>,
) -> ApiResult<Json<v1::OwnerList>> {
    change_owners(&state, &headers, namespace_target(namespace)?, body, false).await
}

// ---- signing keys ------------------------------------------------------------------------------

/// Registering or revoking one's signing keys is a publisher's act.
const KEY_SCOPES: [Scope; 2] = [Scope::PublishNew, Scope::PublishUpdate];

#[utoipa::path(
    get,
    path = "/api/v1/me/keys",
    tag = "accounts",
    summary = "The caller's signing keys",
    responses((status = 200, description = "Key ids", body = v1::UserKeys), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn my_keys(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<v1::UserKeys>> {
    let caller = auth::require(&state, &headers).await?;
    keys_of(&state, &caller.user.name).await
}

#[utoipa::path(
    post,
    path = "/api/v1/me/keys",
    tag = "accounts",
    summary = "Register a signing key to the caller",
    request_body = v1::KeyRequest,
    responses((status = 201, description = "The caller's keys", body = v1::UserKeys), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn add_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<v1::KeyRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<v1::UserKeys>)> {
    let caller = auth::require(&state, &headers).await?;
    caller.allow(&KEY_SCOPES)?;
    let key = json(body)?.public_key()?;
    state.client.register_key(&caller.user.name, &key).await?;
    Ok((
        StatusCode::CREATED,
        keys_of(&state, &caller.user.name).await?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReasonParam {
    reason: Option<String>,
}

#[utoipa::path(
    delete,
    path = "/api/v1/me/keys/{key}",
    tag = "accounts",
    summary = "Revoke one of the caller's signing keys",
    params(("key" = String, Path, description = "the key id, 32 hex digits"), ReasonParam),
    responses((status = 200, description = "The caller's keys", body = v1::UserKeys), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    key: Result<Path<String>, PathRejection>,
    params: Result<Query<ReasonParam>, QueryRejection>,
) -> ApiResult<Json<v1::UserKeys>> {
    let caller = auth::require(&state, &headers).await?;
    caller.allow(&KEY_SCOPES)?;
    let key: KeyId = path(key)?
        .parse()
        .map_err(|e: marketplace_core::Error| ApiError::invalid("key", e.to_string()))?;
    let reason = query(params)?
        .reason
        .unwrap_or_else(|| format!("revoked by {}", caller.user.name));
    state
        .client
        .revoke_user_key(&caller.user.name, &key, &reason)
        .await?;
    keys_of(&state, &caller.user.name).await
}

// ---- yank --------------------------------------------------------------------------------------

/// The caller may yank or unyank versions of `package`: the yank scope, a pattern covering
/// it, and ownership of it or its namespace (or admin).
pub(crate) async fn may_yank(
    state: &AppState,
    caller: &Caller,
    package: &PackageRef,
) -> ApiResult<()> {
    caller.allow(&[Scope::Yank])?;
    caller.cover(package)?;
    state
        .client
        .check_owner(&caller.user, &OwnerTarget::Package(package.clone()))
        .await?;
    Ok(())
}

#[utoipa::path(
    put,
    path = "/api/v1/packages/{package}/{version}/yank",
    tag = "owners",
    summary = "Yank a version",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME"), ("version" = String, Path, description = "an exact semver version")),
    request_body = v1::YankRequest,
    responses((status = 200, description = "Yanked", body = v1::YankResponse), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn yank(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Path<(String, String)>, PathRejection>,
    body: Result<Json<v1::YankRequest>, JsonRejection>,
) -> ApiResult<Json<v1::YankResponse>> {
    let caller = auth::require(&state, &headers).await?;
    let id = package_id(path(params)?)?;
    let request = json(body)?;
    let reason = request.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid(
            "reason",
            "a yank needs a reason: everyone who resolves the version is shown it",
        ));
    }
    may_yank(&state, &caller, &id.package()).await?;
    state.client.yank(&id, reason).await?;
    Ok(Json(v1::YankResponse {
        id: id.to_string(),
        yanked: true,
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/packages/{package}/{version}/yank",
    tag = "owners",
    summary = "Unyank a version",
    params(("package" = String, Path, description = "NAME or NAMESPACE%2FNAME"), ("version" = String, Path, description = "an exact semver version")),
    responses((status = 200, description = "Unyanked", body = v1::YankResponse), crate::openapi::Errors),
    security(("token" = []))
)]
pub(crate) async fn unyank(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult<Json<v1::YankResponse>> {
    let caller = auth::require(&state, &headers).await?;
    let id = package_id(path(params)?)?;
    may_yank(&state, &caller, &id.package()).await?;
    state.client.unyank(&id).await?;
    Ok(Json(v1::YankResponse {
        id: id.to_string(),
        yanked: false,
    }))
}
