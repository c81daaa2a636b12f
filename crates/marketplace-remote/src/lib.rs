//! Marketplace backends over a marketplace server's HTTP API: `Registry`, `PackageStore` and
//! `SearchEngine` read from `/api/v1`, verified by the client against the user's own trust store.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod accounts;
mod connection;
mod progress;
mod registry;
mod resolve;
mod search;
mod store;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use marketplace_core::{HttpUrl, PublicKey, Result, TrustLevel, UserName};
use marketplace_protocol::v1;

use crate::connection::Connection;
pub use crate::progress::{Direction, Progress, Transfer};
pub use crate::registry::RemoteRegistry;
pub use crate::search::RemoteSearch;
pub use crate::store::RemoteStore;

/// How to reach a server: its token and the network's limits.
#[derive(Clone)]
#[non_exhaustive]
pub struct RemoteOptions {
    /// An API token (`mkt_…`), sent as `Authorization: Bearer` on every request: needed for a
    /// private marketplace's reads. Default none.
    pub token: Option<String>,
    /// Longest wait for a connection. Default 10 s.
    pub connect_timeout: Duration,
    /// Longest wait for a whole JSON response. Default 60 s.
    pub request_timeout: Duration,
    /// Longest silence while a download streams (a download may take longer than
    /// `request_timeout` in all, as long as bytes keep coming). Default 30 s.
    pub read_timeout: Duration,
    /// Told of every archive download and upload as it goes (a progress bar). Default none.
    pub progress: Option<Arc<dyn Progress>>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            token: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(30),
            progress: None,
        }
    }
}

impl RemoteOptions {
    /// These options with `token` sent on every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// These options with `progress` told of every archive transfer.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }
}

impl std::fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("progress", &self.progress.as_ref().map(|_| "<progress>"))
            .finish()
    }
}

/// One server, shared by the three backends (one connection pool), and the core's `Upstream`:
/// publish, yank and unyank through the API as the user of the token.
#[derive(Clone, Debug)]
pub struct Remote {
    connection: Arc<Connection>,
}

impl Remote {
    /// A server at `url` (`http://` or `https://`, the API under `/api/v1/` below it). HTTPS
    /// runs on rustls with ring: unless the process has chosen a rustls crypto provider
    /// already, this installs ring's as the process default. Nothing is sent until a backend
    /// is used. `Invalid` for a URL that is not an absolute `http`/`https` one, or a token that
    /// cannot be a header.
    pub fn connect(url: &str, options: RemoteOptions) -> Result<Self> {
        let url = HttpUrl::parse("registry URL", url)?;
        Ok(Remote {
            connection: Arc::new(Connection::new(&url, options)?),
        })
    }

    /// The server's URL, as given (normalised).
    pub fn url(&self) -> &str {
        self.connection.base()
    }

    /// The registry: versions, metadata, resolution, statistics, the change feed.
    pub fn registry(&self) -> RemoteRegistry {
        RemoteRegistry::new(Arc::clone(&self.connection))
    }

    /// The archives, by content hash.
    pub fn store(&self) -> RemoteStore {
        RemoteStore::new(Arc::clone(&self.connection))
    }

    /// Search, suggestions, facets and similar packages.
    pub fn search(&self) -> RemoteSearch {
        RemoteSearch::new(Arc::clone(&self.connection))
    }

    /// The user the token acts for (`GET /api/v1/me`): checks a token before it is stored.
    /// `Unauthorized` without a token or with one the server did not issue (or revoked).
    pub async fn whoami(&self) -> Result<UserName> {
        let me: v1::Me = self
            .connection
            .get_json("ask who the token is", "/me", connection::NO_QUERY)
            .await?;
        Ok(me.user.name)
    }

    /// The keys the server trusts and has revoked (`GET /api/v1/keys`), each checked against
    /// its id: what a user may choose to trust for themselves (the server's word is no trust
    /// here). Revoked keys come with the level `None`.
    pub async fn server_keys(&self) -> Result<Vec<(PublicKey, Option<TrustLevel>)>> {
        let list: v1::KeyList = self
            .connection
            .get_json("read the server's keys", "/keys", connection::NO_QUERY)
            .await?;
        list.keys
            .iter()
            .map(|entry| Ok((entry.public_key()?, entry.level())))
            .collect()
    }
}
