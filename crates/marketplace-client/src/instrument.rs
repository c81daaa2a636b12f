//! The one path every flow and every backend call takes: a `tracing` span and the operation
//! counter and latency histogram per flow ([`MarketplaceClient::flow`]); a timing and retries
//! of transient errors per backend call ([`MarketplaceClient::call`]). The metric names are
//! the constants below; plugin hooks run from here too.

use std::future::Future;
use std::time::Instant;

use bytes::Bytes;
use marketplace_core::{Error, PackageMetadata, Result};
use tracing::Instrument as _;

use crate::client::MarketplaceClient;
use crate::retry::RetryPolicy;

/// Counter of finished flows, labelled `operation` and `outcome` (`ok` or the error kind).
pub const OPERATIONS_TOTAL: &str = "marketplace_operations_total";
/// Histogram of flow latency in seconds, labelled `operation` and `outcome`.
pub const OPERATION_SECONDS: &str = "marketplace_operation_duration_seconds";
/// Histogram of backend call latency in seconds, labelled `backend`, `operation`, `outcome`.
pub const BACKEND_SECONDS: &str = "marketplace_backend_duration_seconds";
/// Counter of refused packages, labelled `operation` and `reason` (`checksum`, `signature`,
/// `trust`, `archive`, `identity`).
pub const VERIFICATION_FAILURES_TOTAL: &str = "marketplace_verification_failures_total";
/// Counter of retried backend calls, labelled `backend` and `operation`.
pub const RETRIES_TOTAL: &str = "marketplace_retries_total";
/// Counter of archive bytes, labelled `direction` (`published`, `downloaded`).
pub const BYTES_TOTAL: &str = "marketplace_bytes_total";
/// Counter of failed post-hooks, labelled `plugin` and `hook`.
pub const PLUGIN_ERRORS_TOTAL: &str = "marketplace_plugin_errors_total";
/// Counter of search index updates that failed after the registry committed (repaired by
/// `rebuild_index`).
pub const INDEX_FAILURES_TOTAL: &str = "marketplace_index_failures_total";

/// Why a package was refused: the `reason` label of [`VERIFICATION_FAILURES_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its bytes do not match the registered hash or size.
    Checksum,
    /// Its signature is missing, malformed or does not verify.
    Signature,
    /// Its signing key is not trusted, or revoked.
    Trust,
    /// Its archive breaks a rule or does not name the registered version.
    Archive,
    /// The registry answered for one version with another's metadata.
    Identity,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Checksum => "checksum",
            Refusal::Signature => "signature",
            Refusal::Trust => "trust",
            Refusal::Archive => "archive",
            Refusal::Identity => "identity",
        }
    }
}

/// A plugin hook that runs after a flow committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PostHook {
    Publish,
    Download,
}

impl PostHook {
    fn as_str(self) -> &'static str {
        match self {
            PostHook::Publish => "post_publish",
            PostHook::Download => "post_download",
        }
    }
}

fn outcome<T>(result: &Result<T>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.kind().as_str(),
    }
}

impl MarketplaceClient {
    pub(crate) fn count(&self, name: &str, labels: &[(&str, &str)]) {
        if let Some(m) = &self.metrics {
            m.counter(name, 1, labels);
        }
    }

    pub(crate) fn add_bytes(&self, direction: &str, bytes: usize) {
        if let Some(m) = &self.metrics {
            m.counter(BYTES_TOTAL, bytes as u64, &[("direction", direction)]);
        }
    }

    /// Runs one flow inside a tracing span and records its count, latency and errors.
    pub(crate) async fn flow<T>(
        &self,
        operation: &'static str,
        span: tracing::Span,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let start = Instant::now();
        let result = work.instrument(span.clone()).await;
        let elapsed = start.elapsed();
        let outcome = outcome(&result);
        if let Err(e) = &result {
            span.in_scope(|| tracing::info!(operation, error = %e, "failed"));
        }
        if let Some(m) = &self.metrics {
            let labels = [("operation", operation), ("outcome", outcome)];
            m.counter(OPERATIONS_TOTAL, 1, &labels);
            m.timing(OPERATION_SECONDS, elapsed, &labels);
            if let Err(e) = &result {
                m.error(operation, e.kind());
            }
        }
        result
    }

    /// One backend call: timed, and retried with backoff when `retry` and the error is
    /// transient.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        backend: &'static str,
        operation: &'static str,
        retry: bool,
        call: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let start = Instant::now();
        let policy = if retry {
            self.retry
        } else {
            RetryPolicy::none()
        };
        let result = policy
            .run(call, |e| {
                tracing::warn!(backend, operation, error = %e, "transient error; retrying");
                self.count(
                    RETRIES_TOTAL,
                    &[("backend", backend), ("operation", operation)],
                );
            })
            .await;
        if let Some(m) = &self.metrics {
            m.timing(
                BACKEND_SECONDS,
                start.elapsed(),
                &[
                    ("backend", backend),
                    ("operation", operation),
                    ("outcome", outcome(&result)),
                ],
            );
        }
        result
    }

    /// Counts a refused package and returns the error that says why.
    pub(crate) fn refused(&self, operation: &str, reason: Refusal, error: Error) -> Error {
        self.count(
            VERIFICATION_FAILURES_TOTAL,
            &[("operation", operation), ("reason", reason.as_str())],
        );
        error
    }

    /// Runs the `post_*` hooks of every plugin; their errors are logged and counted, never
    /// returned (the flow already committed).
    pub(crate) async fn post_hooks(
        &self,
        hook: PostHook,
        metadata: &PackageMetadata,
        archive: &Bytes,
    ) {
        for plugin in &self.plugins {
            let result = match hook {
                PostHook::Publish => plugin.post_publish(metadata).await,
                PostHook::Download => plugin.post_download(metadata, archive).await,
            };
            if let Err(e) = result {
                tracing::warn!(plugin = plugin.name(), hook = hook.as_str(), package = %metadata.id, error = %e, "plugin hook failed");
                self.count(
                    PLUGIN_ERRORS_TOTAL,
                    &[("plugin", plugin.name()), ("hook", hook.as_str())],
                );
            }
        }
    }

    /// Runs every plugin's `pre_publish` hook; the first error aborts the publish.
    pub(crate) async fn pre_publish_hooks(&self, metadata: &PackageMetadata) -> Result<()> {
        for plugin in &self.plugins {
            plugin.pre_publish(metadata).await?;
        }
        Ok(())
    }

    /// Runs every plugin's `pre_download` hook; the first error aborts the download.
    pub(crate) async fn pre_download_hooks(&self, metadata: &PackageMetadata) -> Result<()> {
        for plugin in &self.plugins {
            plugin.pre_download(metadata).await?;
        }
        Ok(())
    }
}
