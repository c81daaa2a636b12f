//! `/cargo/`: the server as a Cargo alternative registry — the sparse index under
//! `/cargo/index/` and the Web API cargo calls under `/cargo/api/v1/`, over the same flows,
//! accounts and tokens as `/api/v1`.
//!
//! Errors are cargo's `{"errors": [{"detail": …}]}` (cargo shows the detail); a request
//! without a token that needs one is 401 with `WWW-Authenticate: Cargo login_url="…"`; a token
//! this server does not know, or one that may not do what is asked, is 403. In private mode every request needs a token, and
//! `config.json` says `auth-required`, so cargo sends it with index and download requests too.

mod api;
mod index;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use marketplace_core::KeyPair;

use crate::AppState;
use crate::error::ApiError;

pub(crate) use index::IndexCache;

/// What the Cargo routes keep beside the client.
#[derive(Default)]
pub(crate) struct CargoState {
    /// The index files served.
    pub(crate) index: IndexCache,
    /// The key crates are countersigned with (cargo signs nothing); without one, `cargo
    /// publish` is refused.
    pub(crate) signing_key: Option<KeyPair>,
}

/// The routes under `/cargo`.
pub(crate) fn routes(state: AppState) -> axum::Router<AppState> {
    axum::Router::new()
        .route("/index/config.json", get(index::config))
        .route("/index/{*path}", get(index::file))
        .route("/api/v1/crates/new", put(api::publish))
        .route("/api/v1/crates", get(api::search))
        .route(
            "/api/v1/crates/{crate}/{version}/download",
            get(api::download),
        )
        .route("/api/v1/crates/{crate}/{version}/yank", delete(api::yank))
        .route("/api/v1/crates/{crate}/{version}/unyank", put(api::unyank))
        .route(
            "/api/v1/crates/{crate}/owners",
            get(api::owners)
                .put(api::add_owners)
                .delete(api::remove_owners),
        )
        .route("/me", get(api::me))
        .fallback(|uri: axum::http::Uri| async move {
            CargoError::new(
                StatusCode::NOT_FOUND,
                format!("no Cargo registry endpoint at {}", uri.path()),
            )
        })
        .layer(axum::middleware::from_fn_with_state(state, gate))
}

/// The server's base URL as the client reached it: the configured public URL, else
/// `http://` and the request's `Host`.
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// In private mode every request needs a usable token. A request without one that needs one
/// is 401 with cargo's challenge; one whose token this server does not know is 403, as
/// cargo's registry documentation asks ("403 if the token is not valid").
async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Only a 401 needs the base URL: the Host is kept, the URL made then.
    let host = request.headers().get(header::HOST).cloned();
    let had_token = request.headers().contains_key(header::AUTHORIZATION);
    let response = if state.config.private
        && let Err(e) = crate::auth::require(&state, request.headers()).await
    {
        CargoError::from(e).into_response()
    } else {
        next.run(request).await
    };
    if had_token && response.status() == StatusCode::UNAUTHORIZED {
        let (mut parts, body) = response.into_parts();
        parts.status = StatusCode::FORBIDDEN;
        return Response::from_parts(parts, body);
    }
    if response.status() != StatusCode::UNAUTHORIZED {
        return response;
    }
    let mut headers = HeaderMap::new();
    if let Some(host) = host {
        headers.insert(header::HOST, host);
    }
    challenge(response, &base_url(&state, &headers))
}

/// A 401 says how to log in, as cargo asks (`cargo login` then reads a token).
fn challenge(mut response: Response, base: &str) -> Response {
    if response.status() == StatusCode::UNAUTHORIZED
        && let Ok(value) = HeaderValue::from_str(&format!("Cargo login_url=\"{base}/cargo/me\""))
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// An error as cargo reads it.
#[derive(Debug)]
pub(crate) struct CargoError {
    status: StatusCode,
    detail: String,
}

impl CargoError {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        CargoError {
            status,
            detail: detail.into(),
        }
    }
}

impl From<ApiError> for CargoError {
    fn from(e: ApiError) -> Self {
        let status = e.status();
        let body = e.into_body();
        let detail = match body.hint {
            Some(hint) => format!("{} ({hint})", body.message),
            None => body.message,
        };
        CargoError { status, detail }
    }
}

impl From<marketplace_core::Error> for CargoError {
    fn from(e: marketplace_core::Error) -> Self {
        CargoError::from(ApiError::from(e))
    }
}

impl IntoResponse for CargoError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "errors": [{ "detail": self.detail }] });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// What a Cargo handler returns.
pub(crate) type CargoResult<T> = std::result::Result<T, CargoError>;
