//! Rate limits, per client address and per API token, on tower_governor: a client over its
//! quota gets 429 with `Retry-After` (our JSON error body) and nothing is done for it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use governor::middleware::NoOpMiddleware;
use marketplace_core::TokenHash;
use tower_governor::GovernorError;
use tower_governor::GovernorLayer;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;

use crate::error::ApiError;

/// A sustained rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per second, sustained (at least 1).
    pub per_second: u32,
    /// Requests allowed at once above the sustained rate (at least 1).
    pub burst: u32,
}

impl RateLimit {
    /// `per_second` sustained with bursts of `burst`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        RateLimit {
            per_second: per_second.max(1),
            burst: burst.max(1),
        }
    }
}

/// The peer address of a request (every connection the server accepts carries it).
fn peer(request: &Request<impl Sized>) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Rate-limits by the client's address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByAddress;

impl KeyExtractor for ByAddress {
    type Key = IpAddr;

    fn extract<T>(&self, request: &Request<T>) -> Result<IpAddr, GovernorError> {
        Ok(peer(request))
    }
}

/// What a request is counted against under the per-token limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Holder {
    /// The hash of the `Authorization` header's value (whether or not the token is valid: an
    /// unknown one is refused after it is counted).
    Token([u8; 32]),
    /// No token: the client's address.
    Address(IpAddr),
}

/// Rate-limits by the API token, or by the address of a request without one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByToken;

impl KeyExtractor for ByToken {
    type Key = Holder;

    fn extract<T>(&self, request: &Request<T>) -> Result<Holder, GovernorError> {
        Ok(match request.headers().get(header::AUTHORIZATION) {
            Some(value) => {
                Holder::Token(TokenHash::of(&String::from_utf8_lossy(value.as_bytes())).0)
            }
            None => Holder::Address(peer(request)),
        })
    }
}

/// The 429 (or, should a key not be found, 500) of a refused request, as our JSON error.
fn refusal(error: GovernorError) -> Response<Body> {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            let wait = wait_time.max(1);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests: try again in {wait} s"),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backend",
            format!("the rate limiter failed: {other}"),
        )
        .into_response(),
    }
}

/// A rate limiter's layer; its stale keys are dropped every minute by a thread that ends when
/// the limiter is gone.
pub(crate) fn layer<K>(key: K, limit: RateLimit) -> GovernorLayer<K, NoOpMiddleware, Body>
where
    K: KeyExtractor + Send + Sync + 'static,
    K::Key: Send + Sync + 'static,
{
    let config: Arc<GovernorConfig<K, NoOpMiddleware>> = Arc::new(
        GovernorConfigBuilder::default()
            .key_extractor(key)
            .period(Duration::from_secs(1) / limit.per_second)
            .burst_size(limit.burst)
            .finish()
            .expect("a rate limit of at least 1 per second and a burst of at least 1"),
    );
    let weak: Weak<GovernorConfig<K, NoOpMiddleware>> = Arc::downgrade(&config);
    let _ = std::thread::Builder::new()
        .name("rate-limit-cleanup".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(60));
                match weak.upgrade() {
                    Some(config) => config.limiter().retain_recent(),
                    None => break,
                }
            }
        });
    GovernorLayer::new(config).error_handler(refusal)
}
