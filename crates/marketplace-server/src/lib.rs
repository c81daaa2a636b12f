//! The Marketplace HTTP server: the versioned JSON API (`/api/v1/`) over a
//! [`MarketplaceClient`]'s flows, with `/health`, `/ready` and `/metrics`.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accounts;
mod api;
mod auth;
mod download;
mod error;
mod ops;

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
    /// Longest a request may take, reading its body included (default 60 s): 408 after.
    pub request_timeout: Duration,
    /// Requests served at once (default 512); more wait for a free slot.
    pub max_concurrent_requests: usize,
    /// Whether every request under `/api/v1` needs an API token, reads included (default:
    /// reads are public).
    pub private: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_archive_bytes: marketplace_client::ArchiveLimits::default().max_compressed,
            request_timeout: Duration::from_secs(60),
            max_concurrent_requests: 512,
            private: false,
        }
    }
}

impl ServerConfig {
    /// These limits with `bytes` as the largest publish body.
    pub fn with_max_archive_bytes(mut self, bytes: u64) -> Self {
        self.max_archive_bytes = bytes;
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
            },
        }
    }

    /// This server with `config`'s limits.
    pub fn with_config(mut self, config: ServerConfig) -> Self {
        self.state.config = Arc::new(config);
        self
    }

    /// Every route, with the limits and access logs in front: for embedding in another axum
    /// application, or serving with [`Server::serve`].
    pub fn router(&self) -> Router {
        let config = &self.state.config;
        Router::new()
            .nest(
                "/api/v1",
                api::routes().merge(accounts::routes()).route_layer(
                    axum::middleware::from_fn_with_state(self.state.clone(), auth::private_gate),
                ),
            )
            .route("/health", get(ops::health))
            .route("/ready", get(ops::ready))
            .route("/metrics", get(ops::metrics))
            .fallback(|uri: Uri| async move { ApiError::no_route(uri.path()) })
            .method_not_allowed_fallback(|uri: Uri| async move {
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "invalid",
                    format!("{} does not take this method", uri.path()),
                )
            })
            .with_state(self.state.clone())
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                config.request_timeout,
            ))
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                config.max_concurrent_requests,
            ))
            .layer(TraceLayer::new_for_http())
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting connections and
    /// waits for the requests in flight to finish (a publish is complete or absent).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let address: Option<SocketAddr> = listener.local_addr().ok();
        tracing::info!(?address, "serving the marketplace");
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM: the signal to shut down gracefully.
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT: shutting down once requests in flight finish"),
        () = terminate => tracing::info!("SIGTERM: shutting down once requests in flight finish"),
    }
}
