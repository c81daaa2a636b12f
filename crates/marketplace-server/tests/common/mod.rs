//! A server on 127.0.0.1 and a free port over a fresh home, and an author who signs for it.

#![allow(dead_code, unreachable_pub)]

pub mod catalogue;

use std::sync::Arc;

use bytes::Bytes;
use marketplace_client::{MarketplaceBuilder, MarketplaceClient};
use marketplace_core::{
    KeyPair, PackageId, PackageMetadata, PrivateKey, Scope, Signature, UserName, parse_requirement,
};
use marketplace_protocol::v1;
use marketplace_server::{Server, ServerConfig};
use tokio::sync::oneshot;

/// A detached signature and the publication time it covers.
#[derive(Clone)]
pub struct Signed {
    pub signature: Signature,
    pub published_at: marketplace_core::time::OffsetDateTime,
}

/// A running server and what the tests need to drive and inspect it.
pub struct Running {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The marketplace the server serves, for checking what changed.
    pub client: Arc<MarketplaceClient>,
    /// Alice's signing key, registered to her (so the server trusts it).
    pub key: KeyPair,
    /// Alice's token: publish-new, publish-update, yank and owners, for every package.
    pub token: String,
    /// The admin's token (user `root`, the admin scope).
    pub admin_token: String,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _home: tempfile::TempDir,
}

impl Running {
    pub async fn start() -> Running {
        Self::with_config(ServerConfig::default()).await
    }

    pub async fn with_config(config: ServerConfig) -> Running {
        // reqwest's TLS stack wants a provider chosen, although these tests speak plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let home = tempfile::tempdir().expect("tempdir");
        // Composed as `mkt serve` does: with the metrics `/metrics` exports.
        let client = MarketplaceBuilder::local(home.path())
            .map(|b| b.metrics(Arc::new(marketplace_client::OtelMetrics::new())))
            .and_then(MarketplaceBuilder::build)
            .expect("a home");
        let root = UserName::new("root").expect("name");
        client.create_user(root.clone(), true).await.expect("root");
        let admin_token = client
            .create_token(&root, "admin", [Scope::Admin], None, None)
            .await
            .expect("admin token")
            .secret;
        let client = Arc::new(client);
        let (key, token) = user_with_key(&client, "alice", &PUBLISHER).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::new(Arc::clone(&client)).with_config(config);
        let served = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Running {
            base,
            client,
            key,
            token,
            admin_token,
            http: reqwest::Client::new(),
            stop: Some(stop),
            served: Some(served),
            _home: home,
        }
    }

    /// The served home's directory.
    pub fn home(&self) -> &std::path::Path {
        self._home.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A signature of `archive` by `key` and the publication time it covers, as `mkt publish`
    /// makes them on the author's side.
    pub async fn sign(&self, archive: &Bytes, key: &PrivateKey) -> Signed {
        let prepared = self.client.prepare(archive.clone()).await.expect("prepare");
        let signature = self
            .client
            .crypto()
            .sign(&prepared.metadata, key)
            .await
            .expect("sign");
        Signed {
            signature,
            published_at: prepared.metadata.published_at,
        }
    }

    /// `PUT /api/v1/packages` of `archive` signed by the trusted key.
    pub async fn publish(&self, archive: &Bytes) -> reqwest::Response {
        let signature = self.sign(archive, &self.key.private_key).await;
        self.publish_signed(archive.clone(), &signature).await
    }

    /// `PUT /api/v1/packages` of `archive` with `signed`, as alice.
    pub async fn publish_signed(&self, archive: Bytes, signed: &Signed) -> reqwest::Response {
        self.publish_as(archive, signed, Some(&self.token)).await
    }

    /// `PUT /api/v1/packages` of `archive` with `signed` and `token` (none when `None`).
    pub async fn publish_as(
        &self,
        archive: Bytes,
        signed: &Signed,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.http.put(self.url("/api/v1/packages"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
            .header("content-type", "application/octet-stream")
            .header(
                v1::SIGNATURE_HEADER,
                v1::SignatureBody::from(&signed.signature).header_value(),
            )
            .header(
                v1::PUBLISHED_AT_HEADER,
                v1::published_at_header(signed.published_at),
            )
            .body(archive)
            .send()
            .await
            .expect("send")
    }

    /// `method path` with `token` (none when `None`) and `body` as JSON (none when `None`).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("send")
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            served.await.expect("join").expect("served");
        }
    }
}

/// The scopes of a publisher's everyday token.
pub const PUBLISHER: [Scope; 4] = [
    Scope::PublishNew,
    Scope::PublishUpdate,
    Scope::Yank,
    Scope::Owners,
];

/// A new user `name` with a registered signing key and a token holding `scopes`.
pub async fn user_with_key(
    client: &MarketplaceClient,
    name: &str,
    scopes: &[Scope],
) -> (KeyPair, String) {
    let user = UserName::new(name).expect("name");
    client.create_user(user.clone(), false).await.expect("user");
    let key = client.generate_keypair().await.expect("keypair");
    client
        .register_key(&user, &key.public_key)
        .await
        .expect("register key");
    let token = client
        .create_token(&user, "everyday", scopes.iter().copied(), None, None)
        .await
        .expect("token")
        .secret;
    (key, token)
}

/// A valid archive of `id` (description `about`) depending on `deps` (`name`, `req`).
pub fn archive(id: &str, about: &str, deps: &[(&str, &str)]) -> Bytes {
    let id: PackageId = id.parse().expect("id");
    let mut metadata =
        PackageMetadata::new(id, about, marketplace_core::ContentHash::sha256(b""), 0);
    metadata.keywords = vec!["http".into()];
    for (name, req) in deps {
        metadata.dependencies.insert(
            name.parse().expect("dependency"),
            parse_requirement(req).expect("requirement"),
        );
    }
    marketplace_testing::corpus::archive(&metadata, 64)
}

/// The body of an error response, checked to be our JSON shape.
pub async fn error_of(response: reqwest::Response) -> v1::ErrorBody {
    let text = response.text().await.expect("body");
    let parsed: v1::ErrorResponse =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not an error body ({e}): {text}"));
    parsed.error
}
