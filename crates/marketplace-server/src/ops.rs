//! For operators: `/health` (the process answers), `/ready` (the backends answer) and
//! `/metrics` (Prometheus text).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
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
