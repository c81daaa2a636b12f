//! The remote composition of the client suite: for each check a real server on 127.0.0.1 over
//! a fresh home (SQLite, the local store, tantivy, ring), and a client that reaches it only
//! over HTTP and verifies against its own trust store.

use std::sync::Arc;

use futures::future::BoxFuture;
use marketplace_client::MarketplaceBuilder;
use marketplace_conformance::{Composition, ServerSide};
use marketplace_core::{Error, Result, Scope, UserName};
use marketplace_remote::RemoteOptions;
use marketplace_server::Server;
use tokio::sync::oneshot;

/// The row's name in the matrix.
pub(crate) const LABEL: &str =
    "remote: client over HTTP → server on sqlite-file · local · tantivy-disk · ring";

/// A server running for one check: stopped (gracefully) and its home deleted when dropped.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn io(operation: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::backend("remote composition", operation, e, false)
}

/// A fresh server and a client of it acting as the user `kit`, whose token may publish new
/// packages and updates, yank and manage owners (not administer).
pub(crate) fn composition() -> BoxFuture<'static, Result<Composition>> {
    Box::pin(async {
        let dir = tempfile::tempdir().map_err(io("temporary directory"))?;
        let market = MarketplaceBuilder::local(dir.path().join("server"))?.build()?;
        let user = UserName::new("kit")?;
        market.create_user(user.clone(), false).await?;
        let token = market
            .create_token(
                &user,
                "conformance",
                [
                    Scope::PublishNew,
                    Scope::PublishUpdate,
                    Scope::Yank,
                    Scope::Owners,
                ],
                None,
                None,
            )
            .await?
            .secret;
        let market = Arc::new(market);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("bind 127.0.0.1:0"))?;
        let base = format!(
            "http://{}",
            listener.local_addr().map_err(io("local address"))?
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let server = Server::new(Arc::clone(&market));
        tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        let builder = MarketplaceBuilder::remote(
            &base,
            RemoteOptions::default().with_token(token),
            dir.path().join("user").join("trust.json"),
        )?;
        Ok(Composition {
            builder,
            server: Some(ServerSide {
                market,
                user,
                guard: Box::new(Running {
                    stop: Some(stop),
                    _dir: dir,
                }),
            }),
        })
    })
}
