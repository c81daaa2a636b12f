//! Who is asking: API tokens in `Authorization`, checked against the account store.
//!
//! A request without a token, or with one the server does not know, is 401 (with
//! `WWW-Authenticate: Bearer`); a known token that is revoked, expired, lacks the scope or does
//! not cover the package is 403. Both say which, and neither changes anything.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use marketplace_core::{PackageRef, Scope, TokenRecord, User};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// The holder of a usable token.
pub(crate) struct Caller {
    pub(crate) token: TokenRecord,
    pub(crate) user: User,
}

/// The token secret of the request: `Authorization: Bearer SECRET`, or the bare secret (as
/// cargo sends it). `None` without the header.
fn secret(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| unauthenticated("the Authorization header is not ASCII text"))?
        .trim();
    let secret = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => {
            return Err(unauthenticated(
                "the Authorization header is not `Bearer <token>`",
            ));
        }
        None => value,
    };
    if secret.is_empty() {
        return Err(unauthenticated("the Authorization header holds no token"));
    }
    Ok(Some(secret))
}

/// A 401: no token, or none the server knows.
fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).with_hint(
        "send an API token as `Authorization: Bearer <token>` (mkt token create makes one)",
    )
}

/// A 403: the token is known and may not do this.
pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "unauthorized", message)
}

/// The caller, when the request carries a token: 401 for an unknown one, 403 for one revoked
/// or expired.
pub(crate) async fn caller(state: &AppState, headers: &HeaderMap) -> ApiResult<Option<Caller>> {
    let Some(secret) = secret(headers)? else {
        return Ok(None);
    };
    if state.client.account_store().is_none() {
        return Err(no_accounts());
    }
    let Some((token, user)) = state.client.authenticate(secret).await? else {
        return Err(unauthenticated("the token is not one this server issued"));
    };
    if let Some(why) = token.unusable_at(marketplace_core::now_seconds()) {
        return Err(forbidden(format!(
            "token {} ({:?}) of {} is {why}",
            token.id, token.name, token.user
        ))
        .with_hint("create a new token with mkt token create"));
    }
    Ok(Some(Caller { token, user }))
}

/// The caller, who must have sent a usable token.
pub(crate) async fn require(state: &AppState, headers: &HeaderMap) -> ApiResult<Caller> {
    if state.client.account_store().is_none() {
        return Err(no_accounts());
    }
    caller(state, headers)
        .await?
        .ok_or_else(|| unauthenticated("this request needs an API token"))
}

/// The 403 of a server composed without an account store: nobody can be authorized.
fn no_accounts() -> ApiError {
    forbidden("this server has no account store, so it accepts no writes")
        .with_hint("serve a composition with MarketplaceBuilder::accounts (mkt serve does)")
}

impl Caller {
    /// 403 unless the token holds `scope` (one of `scopes`).
    pub(crate) fn allow(&self, scopes: &[Scope]) -> ApiResult<()> {
        if scopes.iter().any(|s| self.token.allows(*s)) {
            return Ok(());
        }
        let wanted: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        let held: Vec<&str> = self.token.scopes.iter().map(|s| s.as_str()).collect();
        Err(forbidden(format!(
            "token {} needs the {} scope for this; it holds {}",
            self.token.id,
            wanted.join(" or "),
            held.join(", ")
        )))
    }

    /// 403 unless the token's package pattern covers `package`.
    pub(crate) fn cover(&self, package: &PackageRef) -> ApiResult<()> {
        if self.token.covers(package) {
            return Ok(());
        }
        Err(forbidden(format!(
            "token {} is limited to {}, which does not cover {package}",
            self.token.id,
            self.token
                .pattern
                .as_ref()
                .map_or("", marketplace_core::PackagePattern::as_str)
        )))
    }

    /// 403 unless the caller is an admin holding a token with the admin scope.
    pub(crate) fn admin(&self) -> ApiResult<()> {
        if !self.user.admin {
            return Err(forbidden(format!("{} is not an admin", self.user.name)));
        }
        self.allow(&[Scope::Admin])
    }
}

/// In private mode, every request under `/api/v1` needs a usable token (of any scope).
pub(crate) async fn private_gate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.config.private
        && let Err(e) = require(&state, request.headers()).await
    {
        return e.into_response();
    }
    next.run(request).await
}
