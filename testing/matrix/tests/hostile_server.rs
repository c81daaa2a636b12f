//! A server that lies: the real server's router behind a layer that changes what it sends —
//! a flipped byte of an archive, another version's metadata, an older version's bytes under a
//! newer version's hash, a dependency dropped from a version's metadata, a signature by a key
//! the user does not trust. The client over the remote backends refuses each (`Integrity` or
//! `Signature`: exit code 4 in `mkt`) and writes nothing.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::Response;
use marketplace_client::MarketplaceBuilder;
use marketplace_client::backends::remote::RemoteOptions;
use marketplace_core::{
    ErrorKind, KeyPair, PackageId, PackageMetadata, TrustLevel, parse_requirement, signing_payload,
};
use marketplace_protocol::v1;
use marketplace_server::Server;
use marketplace_testing::corpus;
use tokio::sync::oneshot;

/// What the server lies about.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// One byte of every archive it sends, flipped.
    FlipArchiveByte,
    /// `chain/pkg-4@1.2.0` answered with `1.1.0`'s (validly signed) metadata.
    OtherVersionsMetadata,
    /// `chain/pkg-3@1.2.0`'s archive answered with `1.1.0`'s bytes.
    OlderBytes,
    /// `chain/pkg-0@1.2.0`'s metadata without its dependency on `chain/pkg-2`.
    DropDependency,
    /// `chain/pkg-2@1.2.0`'s signature replaced by a valid one by another key.
    ForeignSignature,
}

struct Liar {
    lie: Lie,
    /// The hash of `chain/pkg-3@1.2.0` and of `1.1.0`.
    newer_hash: String,
    older_hash: String,
    /// The signature by another key, over `chain/pkg-2@1.2.0`'s payload.
    foreign: v1::SignatureBody,
}

const PKG_4: &str = "/api/v1/packages/chain%2Fpkg-4/1.2.0";
const PKG_0: &str = "/api/v1/packages/chain%2Fpkg-0/1.2.0";
const PKG_2: &str = "/api/v1/packages/chain%2Fpkg-2/1.2.0";

async fn tamper(State(liar): State<Arc<Liar>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let rewritten = match liar.lie {
        Lie::OtherVersionsMetadata if path == PKG_4 => Some(PKG_4.replace("1.2.0", "1.1.0")),
        Lie::OlderBytes if path == format!("/api/v1/archives/{}", liar.newer_hash) => {
            Some(format!("/api/v1/archives/{}", liar.older_hash))
        }
        _ => None,
    };
    if let Some(to) = rewritten {
        *request.uri_mut() = to.parse::<Uri>().expect("a path");
    }
    let response = next.run(request).await;
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.expect("the real answer");
    let bytes = match liar.lie {
        Lie::FlipArchiveByte if path.starts_with("/api/v1/archives/") && !bytes.is_empty() => {
            let mut changed = bytes.to_vec();
            let middle = changed.len() / 2;
            changed[middle] ^= 0x01;
            changed.into()
        }
        Lie::DropDependency if path == PKG_0 => edit_json(&bytes, |m| {
            assert!(m.dependencies.remove("chain/pkg-2").is_some(), "{m:?}");
        }),
        Lie::ForeignSignature if path == PKG_2 => {
            let foreign = liar.foreign.clone();
            edit_json(&bytes, move |m| m.signature = Some(foreign))
        }
        _ => bytes,
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

fn edit_json(bytes: &[u8], edit: impl FnOnce(&mut v1::VersionMetadata)) -> bytes::Bytes {
    let mut metadata: v1::VersionMetadata = serde_json::from_slice(bytes).expect("metadata");
    edit(&mut metadata);
    serde_json::to_vec(&metadata).expect("json").into()
}

/// A lying server over a home holding the W4 chain, and the author's key.
async fn lying_server(lie: Lie) -> (String, KeyPair, oneshot::Sender<()>, tempfile::TempDir) {
    let home = tempfile::tempdir().expect("tempdir");
    let market = MarketplaceBuilder::local(home.path())
        .and_then(MarketplaceBuilder::build)
        .expect("a home");
    let author = market.generate_keypair().await.expect("key");
    market
        .trust_key(&author.public_key, TrustLevel::Full)
        .await
        .expect("trust");
    let mut hashes = std::collections::HashMap::new();
    let mut pkg_2: Option<PackageMetadata> = None;
    for metadata in corpus::dependency_chain(5) {
        let published = market
            .publish(corpus::archive(&metadata, 100), &author.private_key)
            .await
            .expect("publish");
        hashes.insert(published.id.to_string(), published.checksum.to_string());
        if published.id.to_string() == "chain/pkg-2@1.2.0" {
            pkg_2 = Some(market.registry().get(&published.id).await.expect("get"));
        }
    }
    let stranger = market.generate_keypair().await.expect("another key");
    let payload = signing_payload(&pkg_2.expect("pkg-2"));
    let foreign = marketplace_crypto_ring::sign_payload(&payload, &stranger.private_key)
        .expect("a valid signature by another key");
    let liar = Arc::new(Liar {
        lie,
        newer_hash: hashes["chain/pkg-3@1.2.0"].clone(),
        older_hash: hashes["chain/pkg-3@1.1.0"].clone(),
        foreign: v1::SignatureBody::from(&foreign),
    });
    // In front of the whole router (a layer of the router itself runs after routing, too
    // late to send a request elsewhere).
    let router = axum::Router::new()
        .fallback_service(Server::new(Arc::new(market)).router())
        .layer(axum::middleware::from_fn_with_state(liar, tamper));
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
    (base, author, stop, home)
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).map_or(true, |mut d| d.next().is_none())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lie_of_the_server_is_refused_and_nothing_is_written() {
    for lie in [
        Lie::FlipArchiveByte,
        Lie::OtherVersionsMetadata,
        Lie::OlderBytes,
        Lie::DropDependency,
        Lie::ForeignSignature,
    ] {
        let (base, author, stop, _home) = lying_server(lie).await;
        let user = tempfile::tempdir().expect("tempdir");
        let client = MarketplaceBuilder::remote(
            &base,
            RemoteOptions::default(),
            user.path().join("trust.json"),
        )
        .and_then(MarketplaceBuilder::build)
        .expect("a remote client");
        client
            .trust_key(&author.public_key, TrustLevel::Full)
            .await
            .expect("the user trusts the author");
        let dest = user.path().join("tools");
        let err = client
            .install(
                &"chain/pkg-0".parse().unwrap(),
                &parse_requirement("^1").unwrap(),
                &dest,
            )
            .await
            .expect_err(&format!("{lie:?}: the install must be refused"));
        assert!(
            matches!(err.kind(), ErrorKind::Integrity | ErrorKind::Signature),
            "{lie:?}: refused as {:?}, not as a verification failure: {err}",
            err.kind()
        );
        assert!(
            is_empty_dir(&dest),
            "{lie:?}: a refused install wrote to its destination"
        );
        // Fetching the lied-about version alone is refused too.
        let single: PackageId = match lie {
            Lie::OtherVersionsMetadata => "chain/pkg-4@1.2.0",
            Lie::OlderBytes => "chain/pkg-3@1.2.0",
            Lie::DropDependency => "chain/pkg-0@1.2.0",
            Lie::ForeignSignature => "chain/pkg-2@1.2.0",
            Lie::FlipArchiveByte => "chain/pkg-1@1.0.0",
        }
        .parse()
        .unwrap();
        let err = client
            .verify(&single)
            .await
            .expect_err(&format!("{lie:?}: verifying {single} must fail"));
        assert!(
            matches!(err.kind(), ErrorKind::Integrity | ErrorKind::Signature),
            "{lie:?}: {err}"
        );
        let _ = stop.send(());
    }
}
