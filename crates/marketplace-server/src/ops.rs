//! For operators: `/health` (the process answers), `/ready` (the backends answer),
//! `/metrics` (Prometheus text) and the request counter and latency histogram every route
//! records there.

use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use marketplace_core::ContentHash;
use serde::Serialize;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

#[derive(Serialize)]
pub(crate) struct Health {
    status: &'static str,
}

/// Live: the process serves requests. Touches no backend.
pub(crate) async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize)]
pub(crate) struct Ready {
    status: &'static str,
    /// Events the search index has not applied yet (0 when it is caught up).
    index_lag: Option<u64>,
}

/// Ready: the registry, the store and the search index each answer a cheap question; 503
/// naming the first that does not.
pub(crate) async fn ready(State(state): State<AppState>) -> ApiResult<Json<Ready>> {
    let client = &state.client;
    let unready = |backend: &str, e: marketplace_core::Error| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "backend",
            format!("not ready: the {backend} does not answer: {e}"),
        )
    };
    client
        .registry()
        .latest_event_seq()
        .await
        .map_err(|e| unready("registry", e))?;
    client
        .store()
        .exists(&ContentHash::sha256(b""))
        .await
        .map_err(|e| unready("store", e))?;
    let index_lag = client
        .index_lag()
        .await
        .map_err(|e| unready("search index", e))?;
    Ok(Json(Ready {
        status: "ready",
        index_lag,
    }))
}

/// The client's metrics in Prometheus' text format; 404 when the server records none.
pub(crate) async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let metrics = state.client.metrics().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this server records no metrics",
        )
        .with_hint("compose the client with a MetricsCollector (mkt serve does)")
    })?;
    let text = metrics.export_prometheus()?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// Counter of HTTP requests answered, labelled `method`, `route` (the route's pattern, e.g.
/// `/api/v1/archives/{hash}`; `-` for a request answered before any route: rate-limited, timed
/// out, or a path no route serves) and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "marketplace_http_requests_total";
/// Histogram of the time to a response's head in seconds, labelled `method` and `route`.
pub const HTTP_REQUEST_SECONDS: &str = "marketplace_http_request_duration_seconds";

/// The route pattern a response was made under, handed out to [`record`].
#[derive(Clone)]
pub(crate) struct Route(MatchedPath);

/// Marks every routed response with its route's pattern.
pub(crate) async fn route_of(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// Records every request in the client's metrics (when it has a collector), by route pattern
/// — never by the path itself, so the label set stays bounded.
pub(crate) async fn record(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(metrics) = state.client.metrics() else {
        return next.run(request).await;
    };
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<Route>()
        .map_or("-", |r| r.0.as_str());
    let labels = [("method", method.as_str()), ("route", route)];
    metrics.timing(HTTP_REQUEST_SECONDS, started.elapsed(), &labels);
    metrics.counter(
        HTTP_REQUESTS_TOTAL,
        1,
        &[
            ("method", method.as_str()),
            ("route", route),
            ("status", response.status().as_str()),
        ],
    );
    response
}
