//! What the HTTP tests share: a router served on 127.0.0.1 until its stop is sent or dropped,
//! a user's client of it with its own trust store, and the W4 chain's install.

#![allow(dead_code)] // each test file uses what it needs

use std::net::SocketAddr;
use std::path::Path;

use marketplace_client::backends::remote::RemoteOptions;
use marketplace_client::{InstallReport, MarketplaceBuilder, MarketplaceClient};
use marketplace_core::{PublicKey, Result, TrustLevel, parse_requirement};
use tokio::sync::oneshot;

/// `router` served on a free port of 127.0.0.1: its base URL, and the sender that stops it
/// (dropping it stops it too).
pub(crate) async fn serve(router: axum::Router) -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });
    (base, stop)
}

/// A client of the server at `base` with `options`, whose trust store (under `home`) trusts
/// `author` fully.
pub(crate) async fn user_client(
    base: &str,
    options: RemoteOptions,
    home: &Path,
    author: &PublicKey,
) -> MarketplaceClient {
    let client = MarketplaceBuilder::remote(base, options, home.join("trust.json"))
        .and_then(MarketplaceBuilder::build)
        .expect("a remote client");
    client
        .trust_key(author, TrustLevel::Full)
        .await
        .expect("the user trusts the author");
    client
}

/// Installs `chain/pkg-0@^1` (the head of the W4 chain) into `dest`.
pub(crate) async fn install_chain(
    client: &MarketplaceClient,
    dest: &Path,
) -> Result<InstallReport> {
    client
        .install(
            &"chain/pkg-0".parse().expect("package"),
            &parse_requirement("^1").expect("requirement"),
            dest,
        )
        .await
}

/// Whether `path` is absent or empty.
pub(crate) fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map_or(true, |mut d| d.next().is_none())
}
