//! The web catalogue: HTML pages people browse, rendered on the server from the same flows as
//! the API (templates compiled into the binary with maud; no JavaScript needed to read or
//! search).
//!
//! | path | page |
//! |---|---|
//! | `/` | search box, recently published, most downloaded, categories |
//! | `/search?q=&category=&keyword=&namespace=&sort=&page=` | results with facets, sorts and paging |
//! | `/categories`, `/categories/{category}` | every category; one category's packages |
//! | `/packages/{package}` | the newest version that is not yanked (else the newest) |
//! | `/packages/{package}/{version}` | one version: readme, install lines, metadata, signer, downloads |
//! | `/packages/{package}/versions` | every version with its yank state |
//! | `/packages/{package}/{version}/dependencies` | what it depends on |
//! | `/packages/{package}/dependents` | the packages whose newest version depends on it |
//! | `/static/{file}` | the style sheet and the search-box script |
//!
//! Package content is data: text is escaped by the templates, readmes are rendered by
//! pulldown-cmark and sanitized by ammonia, bidirectional controls are shown as code points,
//! and every page carries a strict Content-Security-Policy (scripts and styles from this
//! server only). Pages have an `ETag` (304 on revalidation) and stay under 100 KB: readmes are
//! cut, lists are paged.

mod chart;
mod dependents;
mod facets;
mod pages;
mod readme;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use marketplace_core::{ContentHash, Error};
use serde::Deserialize;

use crate::AppState;

pub(crate) use dependents::Dependents;
pub(crate) use readme::Readmes;

/// What the catalogue keeps beside the client.
#[derive(Default)]
pub(crate) struct WebState {
    /// Rendered readmes, by archive hash.
    pub(crate) readmes: Readmes,
    /// Who depends on whom, from the registry and its change feed.
    pub(crate) dependents: Dependents,
    /// Facet counts by query, until the registry changes.
    pub(crate) facets: facets::FacetCache,
}

/// The policy every page is served under: nothing runs or loads but this server's own script
/// and style sheet (and images over HTTPS, which readmes show as badges).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' https: data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// The catalogue's routes (merged at the root of the server).
pub(crate) fn routes(state: AppState) -> axum::Router<AppState> {
    axum::Router::new()
        .route("/", get(home))
        .route("/search", get(search))
        .route("/categories", get(categories))
        .route("/categories/{category}", get(category))
        .route("/packages/{package}", get(package_latest))
        .route("/packages/{package}/versions", get(versions))
        .route("/packages/{package}/dependents", get(dependents))
        .route("/packages/{package}/{version}", get(package_version))
        .route(
            "/packages/{package}/{version}/dependencies",
            get(dependencies),
        )
        .route("/static/{file}", get(asset))
        .layer(axum::middleware::from_fn_with_state(state, gate))
}

/// In private mode the catalogue is a page saying so: every API request needs a token there,
/// and a browser sends none.
async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.config.private
        && crate::auth::require(&state, request.headers())
            .await
            .is_err()
    {
        let page = pages::message(
            "Private marketplace",
            "This marketplace is private: its catalogue is shown only with an API token.",
        );
        return html(StatusCode::UNAUTHORIZED, page, request.headers());
    }
    next.run(request).await
}

/// A page as a response: `ETag` from its bytes (304 when the client holds it), revalidated on
/// every use (`no-cache`: downloads and yanks change pages), under the catalogue's headers.
fn html(status: StatusCode, page: maud::Markup, request: &HeaderMap) -> Response {
    let body = page.into_string();
    respond(
        status,
        body.into_bytes(),
        "text/html; charset=utf-8",
        "no-cache",
        request,
    )
}

/// `body` with the catalogue's headers, or 304 when the request's `If-None-Match` holds its
/// `ETag`.
fn respond(
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
    cache_control: &'static str,
    request: &HeaderMap,
) -> Response {
    let etag = etag_of(&body);
    let fresh = status == StatusCode::OK
        && request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|wanted| wanted.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    response
}

/// A strong `ETag` for `body`: the first 128 bits of its SHA-256.
fn etag_of(body: &[u8]) -> String {
    let hash = ContentHash::sha256(body).to_string();
    format!("\"{}\"", &hash["sha256:".len()..][..32])
}

/// An error shown as a page: 404 with suggestions for a package that does not exist, 400 for
/// a malformed path or query, 503 when a backend does not answer.
#[derive(Debug)]
pub(crate) enum PageError {
    /// No such package (or version): the page suggests similar names.
    NoPackage { wanted: String },
    /// Anything else, with its status.
    Other { status: StatusCode, message: String },
}

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        let message = match &e {
            Error::Backend { .. } => {
                "a backend of this marketplace does not answer; try again shortly".to_owned()
            }
            other => other.to_string(),
        };
        let status = crate::error::ApiError::from(e).status();
        PageError::Other { status, message }
    }
}

impl PageError {
    fn invalid(message: impl Into<String>) -> Self {
        PageError::Other {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// The error page, with `state` for the suggestions of a 404.
    async fn render(self, state: &AppState, request: &HeaderMap) -> Response {
        match self {
            PageError::NoPackage { wanted } => {
                let similar = pages::similar_names(state, &wanted).await;
                html(
                    StatusCode::NOT_FOUND,
                    pages::not_found(&wanted, &similar),
                    request,
                )
            }
            PageError::Other { status, message } => {
                let title = status.canonical_reason().unwrap_or("Error");
                html(status, pages::message(title, &message), request)
            }
        }
    }
}

/// The catalogue's 404 for a path no route serves (outside `/api` and `/cargo`).
pub(crate) async fn no_page(state: &AppState, path: &str, request: &HeaderMap) -> Response {
    let wanted = path
        .trim_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_owned();
    PageError::NoPackage { wanted }.render(state, request).await
}

/// Runs a page handler's body and renders its error, if any, as a page.
async fn page(
    state: &AppState,
    request: &HeaderMap,
    body: impl Future<Output = Result<maud::Markup, PageError>>,
) -> Response {
    match body.await {
        Ok(markup) => html(StatusCode::OK, markup, request),
        Err(e) => e.render(state, request).await,
    }
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, pages::home(&state)).await
}

/// The search page's parameters (all optional; a bad one is a 400 page).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchParams {
    #[serde(default)]
    pub(crate) q: String,
    pub(crate) category: Option<String>,
    pub(crate) keyword: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) sort: Option<String>,
    pub(crate) page: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    page(&state, &headers, async {
        let Query(params) = params.map_err(|e| PageError::invalid(e.body_text()))?;
        pages::search(&state, params).await
    })
    .await
}

async fn categories(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page(&state, &headers, pages::categories(&state)).await
}

#[derive(Debug, Default, Deserialize)]
struct PageParam {
    page: Option<String>,
}

async fn category(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(category): Path<String>,
    Query(params): Query<PageParam>,
) -> Response {
    page(&state, &headers, async {
        let params = SearchParams {
            category: Some(category),
            sort: Some("downloads".into()),
            page: params.page,
            ..SearchParams::default()
        };
        pages::search(&state, params).await
    })
    .await
}

async fn package_latest(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(package): Path<String>,
) -> Response {
    let base = crate::cargo::base_url(&state, &headers);
    page(
        &state,
        &headers,
        pages::package(&state, &package, None, &base),
    )
    .await
}

async fn package_version(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((package, version)): Path<(String, String)>,
) -> Response {
    let base = crate::cargo::base_url(&state, &headers);
    page(
        &state,
        &headers,
        pages::package(&state, &package, Some(&version), &base),
    )
    .await
}

async fn versions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(package): Path<String>,
    Query(params): Query<PageParam>,
) -> Response {
    page(
        &state,
        &headers,
        pages::versions(&state, &package, params.page.as_deref()),
    )
    .await
}

async fn dependencies(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((package, version)): Path<(String, String)>,
) -> Response {
    page(
        &state,
        &headers,
        pages::dependencies(&state, &package, &version),
    )
    .await
}

async fn dependents(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(package): Path<String>,
    Query(params): Query<PageParam>,
) -> Response {
    page(
        &state,
        &headers,
        pages::dependents(&state, &package, params.page.as_deref()),
    )
    .await
}

/// The style sheet and the search box's script, compiled into the binary.
pub(crate) const STYLE: &str = include_str!("static/style.css");
pub(crate) const SCRIPT: &str = include_str!("static/search.js");

/// `GET /static/{file}`: cached for a day (pages link them with a version query that changes
/// with their bytes), revalidated by `ETag`.
async fn asset(Path(file): Path<String>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let (body, content_type) = match file.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "search.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => {
            return respond(
                StatusCode::NOT_FOUND,
                format!("no file {file:?} here").into_bytes(),
                "text/plain; charset=utf-8",
                "no-cache",
                &headers,
            );
        }
    };
    // A link with the current version may be kept for a year; anything else for a day.
    let current = uri
        .query()
        .is_some_and(|q| q == format!("v={}", asset_version(body)));
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=86400"
    };
    respond(
        StatusCode::OK,
        body.as_bytes().to_vec(),
        content_type,
        cache,
        &headers,
    )
}

/// The version query of an asset's links: changes with its bytes.
pub(crate) fn asset_version(body: &str) -> String {
    etag_of(body.as_bytes()).trim_matches('"')[..12].to_owned()
}
