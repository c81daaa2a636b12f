//! Errors as responses: `{"error": {"kind", "message", "field"?, "hint"?}}` with the status the
//! kind calls for.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use marketplace_core::{Error, ErrorKind};
use marketplace_protocol::v1::{ErrorBody, ErrorResponse};

/// Seconds a client is asked to wait after a transient backend failure.
const RETRY_AFTER_SECONDS: u32 = 1;

/// An error response.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: ErrorResponse,
}

impl ApiError {
    /// A response of `status` whose body says `kind` and `message`.
    pub(crate) fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorResponse {
                error: ErrorBody {
                    kind: kind.to_owned(),
                    message: message.into(),
                    field: None,
                    hint: None,
                    failure: None,
                },
            },
        }
    }

    /// A 400 for a request that breaks a rule of `field`.
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "invalid", message);
        e.body.error.field = Some(field.to_owned());
        e
    }

    /// These errors with `hint` saying what to do.
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.body.error.hint = Some(hint.into());
        self
    }

    /// The status of this error.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The body's error, for a report that lists many (a batch's refusals).
    pub(crate) fn into_body(self) -> marketplace_protocol::v1::ErrorBody {
        self.body.error
    }

    /// A 404 for a path no route serves.
    pub(crate) fn no_route(path: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no API endpoint at {path}"),
        )
        .with_hint("the API is under /api/v1/ (see /api/v1/openapi.json once it is served)")
    }
}

/// The status of each kind: what was asked is wrong (4xx), or the server could not do it (5xx).
fn status_of(e: &Error) -> StatusCode {
    match e.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        // A signature that does not verify, or a key that may not sign here (not trusted,
        // revoked): refused whoever asks.
        ErrorKind::Signature => StatusCode::FORBIDDEN,
        // A plugin or policy refused: the caller is known and not allowed (401 is for a
        // missing or unknown token, which the server decides itself).
        ErrorKind::Unauthorized => StatusCode::FORBIDDEN,
        // The server's own bytes do not match their address: its store is damaged.
        ErrorKind::Integrity => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Backend if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
        // `Backend`, and kinds a later core adds.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = status_of(&e);
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed on the server's side");
        }
        ApiError {
            status,
            body: ErrorResponse::from(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"marketplace\""),
            );
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE
            || self.status == StatusCode::TOO_MANY_REQUESTS
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }
}

/// What a handler returns.
pub(crate) type ApiResult<T> = std::result::Result<T, ApiError>;
