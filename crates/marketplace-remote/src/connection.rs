//! One server: the HTTP client (pool, timeouts, token), the API's paths, and what its
//! answers mean as the core's results and errors.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use marketplace_core::{Error, HttpUrl, PackageId, PackageRef, Result, RetryAfter};
use marketplace_protocol::v1;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::RemoteOptions;
use crate::progress::Progress;

/// The backend name in errors and metrics.
pub(crate) const BACKEND: &str = "remote";

/// Largest JSON answer read (the biggest the API sends, a page of 1,000 events or a version
/// list, is far smaller): a server cannot make the client hold more.
const MAX_JSON_BYTES: usize = 32 * 1024 * 1024;

/// No query parameters.
pub(crate) const NO_QUERY: &[(&str, &str)] = &[];

/// Largest error body read; the rest is not needed to say what went wrong.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// The HTTP client of one server.
pub(crate) struct Connection {
    http: reqwest::Client,
    /// The server's URL without a trailing `/`.
    base: String,
    request_timeout: Duration,
    progress: Option<Arc<dyn Progress>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("base", &self.base)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(url: &HttpUrl, options: RemoteOptions) -> Result<Self> {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Losing a race with another thread installing one is fine: a provider is set.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let mut headers = HeaderMap::new();
        if let Some(token) = &options.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                Error::invalid(
                    "token",
                    "",
                    "an API token is printable ASCII (mkt_ and 64 hex digits)",
                )
            })?;
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("marketplace-remote/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .build()
            .map_err(|e| Error::backend(BACKEND, "set up the HTTP client", e, false))?;
        Ok(Connection {
            http,
            base: url.as_str().trim_end_matches('/').to_owned(),
            request_timeout: options.request_timeout,
            progress: options.progress,
        })
    }

    /// Who is told of transfers, if anyone.
    pub(crate) fn progress(&self) -> Option<&Arc<dyn Progress>> {
        self.progress.as_ref()
    }

    /// The server's URL without a trailing `/`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The URL of API path `path` (`/packages/…`).
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// A GET of `path` with `query` (a wire type, or [`NO_QUERY`]) whose JSON answer is read
    /// as `T`.
    pub(crate) async fn get_json<T: DeserializeOwned, Q: Serialize + ?Sized>(
        &self,
        operation: &str,
        path: &str,
        query: &Q,
    ) -> Result<T> {
        let request = self.request(Method::GET, path).query(query);
        self.json_of(operation, request).await
    }

    /// A request of `path`, bounded by the request timeout.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, self.endpoint(path))
            .timeout(self.request_timeout)
    }

    /// A request carrying a body that may take long to send (an archive): only the connect
    /// and read timeouts bound it.
    pub(crate) fn upload(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.endpoint(path))
    }

    /// Sends `request` and reads its JSON answer as `T`.
    pub(crate) async fn json_of<T: DeserializeOwned>(
        &self,
        operation: &str,
        request: RequestBuilder,
    ) -> Result<T> {
        let response = self.send(operation, request).await?;
        let body = read_limited(response, MAX_JSON_BYTES)
            .await
            .map_err(|e| self.transport(operation, e))?
            .ok_or_else(|| {
                Error::backend(
                    BACKEND,
                    operation,
                    format!(
                        "{}: the answer is larger than {MAX_JSON_BYTES} bytes",
                        self.base
                    ),
                    false,
                )
            })?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::backend(
                BACKEND,
                operation,
                format!("{}: the answer is not the API's (v1) JSON: {e}", self.base),
                false,
            )
        })
    }

    /// A request with a JSON-free answer (a count, a stream): the response when it is a
    /// success.
    pub(crate) async fn send(&self, operation: &str, request: RequestBuilder) -> Result<Response> {
        let response = request
            .send()
            .await
            .map_err(|e| self.transport(operation, e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.refusal(operation, response).await)
    }

    /// A POST of `path` without a body, whose answer is not read.
    pub(crate) async fn post_empty(&self, operation: &str, path: &str) -> Result<()> {
        let request = self.request(Method::POST, path);
        self.send(operation, request).await.map(drop)
    }

    /// A GET of `path` for a body to stream: the read timeout, not the request timeout, bounds
    /// it.
    pub(crate) fn get_stream(&self, path: &str) -> RequestBuilder {
        self.http.get(self.endpoint(path))
    }

    /// A HEAD of `path`.
    pub(crate) fn head(&self, path: &str) -> RequestBuilder {
        self.request(Method::HEAD, path)
    }

    /// A failure to reach the server or to read its answer: transient when it is a connection
    /// or a timeout.
    pub(crate) fn transport(&self, operation: &str, e: reqwest::Error) -> Error {
        let transient = e.is_connect() || e.is_timeout();
        Error::backend(
            BACKEND,
            format!("{operation} ({})", self.base),
            e.without_url().to_string(),
            transient,
        )
    }

    /// The error a non-success response stands for, as the server's body says it; 429, 502,
    /// 503 and 504 are transient (a `Retry-After` in seconds is kept for the client's retry).
    async fn refusal(&self, operation: &str, response: Response) -> Error {
        let status = response.status();
        let transient = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
        );
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_limited(response, MAX_ERROR_BYTES)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let parsed = serde_json::from_slice::<v1::ErrorResponse>(&body).ok();
        let message = match &parsed {
            Some(parsed) => parsed.error.message.clone(),
            None => {
                let text = String::from_utf8_lossy(&body);
                let text: String = text.chars().take(200).collect();
                format!("HTTP {status} from {}: {}", self.base, text.trim())
            }
        };
        if transient {
            let source = match retry_after {
                Some(after) => {
                    Box::new(RetryAfter { message, after }) as marketplace_core::BoxError
                }
                None => message.into(),
            };
            return Error::backend(
                BACKEND,
                format!("{operation} ({})", self.base),
                source,
                true,
            );
        }
        match parsed {
            Some(parsed) => parsed.error.to_error(BACKEND, operation, false),
            // No body to read (a HEAD, a proxy's page): the status says what it can.
            None => match status {
                StatusCode::NOT_FOUND => Error::not_found(format!("{operation} on {}", self.base)),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized {
                    what: format!("{operation}: {message}"),
                },
                _ => Error::backend(BACKEND, operation, message, false),
            },
        }
    }

    /// The error for a write these backends do not make: a remote marketplace is changed
    /// through its API, as its users.
    pub(crate) fn refused_write(&self, operation: &str) -> Error {
        Error::backend(
            BACKEND,
            operation,
            format!(
                "{} is a remote marketplace: it is changed through its API (publish, yank, owners) as one of its users, not by writing its registry, store or index",
                self.base
            ),
            false,
        )
    }

    /// The error for a read the API does not serve.
    pub(crate) fn not_served(&self, operation: &str) -> Error {
        Error::backend(
            BACKEND,
            operation,
            format!(
                "{}: the API (v1) does not serve this; ask on the server's home",
                self.base
            ),
            false,
        )
    }
}

/// The body of `response`, or `None` when it passes `limit` bytes (the rest is not read).
async fn read_limited(
    response: Response,
    limit: usize,
) -> std::result::Result<Option<Bytes>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut body = BytesMut::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// `package` as one path segment: `name`, or `namespace%2Fname`.
pub(crate) fn package_segment(package: &PackageRef) -> String {
    package.to_string().replace('/', "%2F")
}

/// The path of one version: `/packages/{package}/{version}`.
pub(crate) fn version_path(id: &PackageId) -> String {
    format!(
        "/packages/{}/{}",
        package_segment(&id.package()),
        id.version
    )
}
