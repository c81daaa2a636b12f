//! The Marketplace HTTP server: the versioned JSON API (`/api/v1/`) over a
//! [`MarketplaceClient`]'s flows, the Cargo registry (`/cargo/`), the web catalogue (`/`), and
//! `/health`, `/ready` and `/metrics`.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accounts;
mod api;
mod auth;
mod cache;
mod cargo;
mod download;
mod error;
mod feed;
mod limits;
mod openapi;
mod ops;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use marketplace_client::MarketplaceClient;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
pub use crate::limits::RateLimit;
pub use crate::openapi::document as openapi_document;
pub use crate::ops::{HTTP_REQUEST_SECONDS, HTTP_REQUESTS_TOTAL};

/// The address `mkt serve` listens on unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";

/// Limits of a server. `default()` suits a team's server; every field can be set.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Largest publish body, in bytes (default: the client's archive limit, 50 MiB). A body
    /// announced larger is refused with 413 before it is read; one that grows past it is cut
    /// off there.
    pub max_archive_bytes: u64,
    /// Largest batch publish body (`POST /api/v1/batch`), in bytes (default 256 MiB).
    pub max_batch_bytes: u64,
    /// Longest a request may take, reading its body included (default 60 s): 408 after.
    pub request_timeout: Duration,
    /// Requests served at once (default 512); more wait for a free slot.
    pub max_concurrent_requests: usize,
    /// Whether every request under `/api/v1` needs an API token, reads included (default:
    /// reads are public).
    pub private: bool,
    /// Longest a client may take to send a request's headers (default 10 s): a slower one
    /// (a slow-loris client) is disconnected.
    pub header_read_timeout: Duration,
    /// Most headers a request may have (default 100): more get 431.
    pub max_headers: usize,
    /// Requests one client address may make (default 1,000/s, bursts of 2,000); `None`: no
    /// limit.
    pub rate_limit_per_address: Option<RateLimit>,
    /// Requests one API token may make, or one address without a token (default 500/s,
    /// bursts of 1,000: an install makes about three requests per package of its graph, so
    /// a few hundred packages install without waiting); `None`: no limit.
    pub rate_limit_per_token: Option<RateLimit>,
    /// The URL clients reach the server at (`https://registry.example`), for the links it
    /// hands out: the Cargo index's `dl` and `api`. Default: `http://` and the request's
    /// `Host` header (right for a server reached directly; set it behind a proxy).
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_archive_bytes: marketplace_client::ArchiveLimits::default().max_compressed,
            max_batch_bytes: 256 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            max_concurrent_requests: 512,
            private: false,
            header_read_timeout: Duration::from_secs(10),
            max_headers: 100,
            rate_limit_per_address: Some(RateLimit::new(1000, 2000)),
            rate_limit_per_token: Some(RateLimit::new(500, 1000)),
            public_url: None,
        }
    }
}

impl ServerConfig {
    /// These limits with `bytes` as the largest publish body.
    pub fn with_max_archive_bytes(mut self, bytes: u64) -> Self {
        self.max_archive_bytes = bytes;
        self
    }

    /// These limits with `bytes` as the largest batch publish body.
    pub fn with_max_batch_bytes(mut self, bytes: u64) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// These limits with `timeout` as the longest a request may take.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// This configuration, private (every request needs a token) or not.
    pub fn with_private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    /// These limits with `timeout` as the longest a client may take to send its headers.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// These limits with at most `n` headers per request.
    pub fn with_max_headers(mut self, n: usize) -> Self {
        self.max_headers = n.max(1);
        self
    }

    /// These limits with `limit` per client address (`None`: unlimited).
    pub fn with_rate_limit_per_address(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit_per_address = limit;
        self
    }

    /// These limits with `limit` per API token (`None`: unlimited).
    pub fn with_rate_limit_per_token(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit_per_token = limit;
        self
    }

    /// This configuration with `url` as the URL clients reach the server at.
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url;
        self
    }

    /// These limits with at most `n` requests served at once.
    pub fn with_max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n.max(1);
        self
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    client: Arc<MarketplaceClient>,
    config: Arc<ServerConfig>,
    cargo: Arc<cargo::CargoState>,
    web: Arc<web::WebState>,
}

/// A server over one marketplace composition.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use marketplace_client::MarketplaceBuilder;
/// use marketplace_server::Server;
///
/// let client = MarketplaceBuilder::local("/srv/marketplace")?.build()?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:7878").await?;
/// Server::new(Arc::new(client))
///     .serve(listener, marketplace_server::shutdown_signal())
///     .await?;
/// # Ok(())
/// # }
/// ```
pub struct Server {
    state: AppState,
}

impl Server {
    /// A server of `client`'s marketplace with the default limits.
    pub fn new(client: Arc<MarketplaceClient>) -> Self {
        Server {
            state: AppState {
                client,
                config: Arc::new(ServerConfig::default()),
                cargo: Arc::new(cargo::CargoState::default()),
                web: Arc::new(web::WebState::default()),
            },
        }
    }

    /// This server with `config`'s limits.
    pub fn with_config(mut self, config: ServerConfig) -> Self {
        self.state.config = Arc::new(config);
        self
    }

    /// This server with `key` as its own signing key: crates sent by `cargo publish` (which
    /// signs nothing) are countersigned with it, so it must be trusted by the composition's
    /// trust store. Without one, `cargo publish` is refused.
    pub fn with_signing_key(mut self, key: marketplace_core::KeyPair) -> Self {
        self.state.cargo = Arc::new(cargo::CargoState {
            signing_key: Some(key),
            ..cargo::CargoState::default()
        });
        self
    }

    /// Every route, with the limits and access logs in front: for embedding in another axum
    /// application, or serving with [`Server::serve`].
    pub fn router(&self) -> Router {
        let config = &self.state.config;
        let router = Router::new()
            .nest(
                "/api/v1",
                api::routes().merge(accounts::routes()).route_layer(
                    axum::middleware::from_fn_with_state(self.state.clone(), auth::private_gate),
                ),
            )
            .nest("/cargo", cargo::routes(self.state.clone()))
            .merge(web::routes(self.state.clone()))
            .route("/health", get(ops::health))
            .route("/ready", get(ops::ready))
            .route("/metrics", get(ops::metrics))
            .route_layer(axum::middleware::from_fn(ops::route_of))
            .fallback(fallback)
            .method_not_allowed_fallback(|uri: Uri| async move {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "invalid",
                    format!("{} does not take this method", uri.path()),
                )
            })
            .with_state(self.state.clone());
        let router = router
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                config.request_timeout,
            ))
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                config.max_concurrent_requests,
            ));
        // Counted before a request waits for a slot: a client over its quota takes none.
        let router = match config.rate_limit_per_token {
            Some(limit) => router.layer(limits::layer(limits::ByToken, limit)),
            None => router,
        };
        let router = match config.rate_limit_per_address {
            Some(limit) => router.layer(limits::layer(limits::ByAddress, limit)),
            None => router,
        };
        // Outside everything, so the requests refused before a route (rate-limited, timed
        // out, over the concurrency limit) are counted too.
        router
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                ops::record,
            ))
            .layer(TraceLayer::new_for_http())
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting connections and
    /// waits for the requests in flight to finish (a publish is complete or absent). Each
    /// connection speaks HTTP/1.1 with the header-read timeout and header limit of the
    /// configuration; the requests carry the peer's address (for the per-address limit).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let address: Option<SocketAddr> = listener.local_addr().ok();
        tracing::info!(?address, "serving the marketplace");
        let router = self.router();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(self.state.config.header_read_timeout)
            .max_headers(self.state.config.max_headers);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, or a connection reset before it was
                        // accepted: wait a moment and go on.
                        tracing::warn!(error = %e, "could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Responses go out as they are written: a streamed body's first chunk after its
            // head must not wait for the client's delayed ACK (Nagle's algorithm: ~40 ms).
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
            }
            let service = tower::ServiceExt::map_request(
                router.clone(),
                move |mut request: axum::http::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    request
                },
            );
            let connection = http.serve_connection(
                hyper_util::rt::TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            );
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    }
}

/// A path no route serves: the catalogue's 404 page (with names like the path's last segment)
/// for a browser (`Accept` naming `text/html`) outside the API's prefixes; a JSON error for
/// everything else.
async fn fallback(
    axum::extract::State(state): axum::extract::State<AppState>,
    uri: Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let path = uri.path();
    let api = ["/api/", "/cargo/", "/health", "/ready", "/metrics"]
        .iter()
        .any(|prefix| path.starts_with(prefix));
    let browser = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if api || !browser {
        ApiError::no_route(path).into_response()
    } else {
        web::no_page(&state, path, &headers).await
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM: the signal to shut down gracefully.
///
/// The handlers are installed by this call, not when the future is first polled, so a signal
/// that arrives in between (a supervisor stopping the server as soon as it said it listens)
/// shuts it down gracefully instead of killing it. Call it inside the Tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            // A handler that could not be installed never fires; the other still does.
            let received = |installed: std::io::Result<tokio::signal::unix::Signal>| async move {
                match installed {
                    Ok(mut signal) => {
                        signal.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = received(interrupt) => tracing::info!("SIGINT: shutting down once requests in flight finish"),
                () = received(terminate) => tracing::info!("SIGTERM: shutting down once requests in flight finish"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C: shutting down once requests in flight finish");
    }
}
