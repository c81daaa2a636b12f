//! A server that lies: the real server's router behind a layer that changes what it sends —
//! a flipped byte of an archive, another version's metadata, an older version's bytes under a
//! newer version's hash, a dependency dropped from a version's metadata, a signature by a key
//! the user does not trust. Each lie is told everywhere the server sends that data: a version's
//! own endpoints and the graph of `/api/v1/resolve`. The client over the remote backends refuses
//! each (`Integrity` or `Signature`: exit code 4 in `mkt`) and writes nothing.

mod http;

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
    /// `/api/v1/resolve` answered with the graph of `chain/pkg-0@1.0.0`, whatever was asked:
    /// true data, but not the newest (the client's resolver must not follow it).
    StaleGraph,
}

struct Liar {
    lie: Lie,
    /// The hash of `chain/pkg-3@1.2.0` and of `1.1.0`.
    newer_hash: String,
    older_hash: String,
    /// The signature by another key, over `chain/pkg-2@1.2.0`'s payload.
    foreign: v1::SignatureBody,
    /// `chain/pkg-4@1.1.0`'s metadata, as the server sends it.
    pkg_4_older: v1::VersionMetadata,
}

impl Liar {
    /// The metadata the liar sends for `id` in place of `real` (the same when it does not lie
    /// about that version).
    fn metadata(&self, id: &str, mut real: v1::VersionMetadata) -> v1::VersionMetadata {
        match (self.lie, id) {
            (Lie::OtherVersionsMetadata, "chain/pkg-4@1.2.0") => self.pkg_4_older.clone(),
            (Lie::DropDependency, "chain/pkg-0@1.2.0") => {
                assert!(
                    real.dependencies.remove("chain/pkg-2").is_some(),
                    "{real:?}"
                );
                real
            }
            (Lie::ForeignSignature, "chain/pkg-2@1.2.0") => {
                real.signature = Some(self.foreign.clone());
                real
            }
            _ => real,
        }
    }
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
        Lie::StaleGraph if path == "/api/v1/resolve" => {
            Some("/api/v1/resolve?package=chain%2Fpkg-0&req=%3D1.0.0".to_owned())
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
        Lie::DropDependency if path == PKG_0 => {
            edit_json(&bytes, |m| liar.metadata("chain/pkg-0@1.2.0", m))
        }
        Lie::ForeignSignature if path == PKG_2 => {
            edit_json(&bytes, |m| liar.metadata("chain/pkg-2@1.2.0", m))
        }
        _ if path == "/api/v1/resolve" => {
            let mut graph: v1::ResolvedGraph = serde_json::from_slice(&bytes).expect("a graph");
            for node in &mut graph.nodes {
                let id = match &node.metadata.namespace {
                    Some(ns) => format!("{ns}/{}@{}", node.metadata.name, node.metadata.version),
                    None => format!("{}@{}", node.metadata.name, node.metadata.version),
                };
                node.metadata = liar.metadata(&id, node.metadata.clone());
            }
            serde_json::to_vec(&graph).expect("json").into()
        }
        _ => bytes,
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

fn edit_json(
    bytes: &[u8],
    edit: impl FnOnce(v1::VersionMetadata) -> v1::VersionMetadata,
) -> bytes::Bytes {
    let metadata: v1::VersionMetadata = serde_json::from_slice(bytes).expect("metadata");
    serde_json::to_vec(&edit(metadata)).expect("json").into()
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
    let mut pkg_4_older: Option<PackageMetadata> = None;
    for metadata in corpus::dependency_chain(5) {
        let published = market
            .publish(corpus::archive(&metadata, 100), &author.private_key)
            .await
            .expect("publish");
        hashes.insert(published.id.to_string(), published.checksum.to_string());
        if published.id.to_string() == "chain/pkg-2@1.2.0" {
            pkg_2 = Some(market.registry().get(&published.id).await.expect("get"));
        }
        if published.id.to_string() == "chain/pkg-4@1.1.0" {
            pkg_4_older = Some(market.registry().get(&published.id).await.expect("get"));
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
        pkg_4_older: v1::VersionMetadata::from(&pkg_4_older.expect("pkg-4 1.1.0")),
    });
    // In front of the whole router (a layer of the router itself runs after routing, too
    // late to send a request elsewhere).
    let router = axum::Router::new()
        .fallback_service(Server::new(Arc::new(market)).router())
        .layer(axum::middleware::from_fn_with_state(liar, tamper));
    let (base, stop) = http::serve(router).await;
    (base, author, stop, home)
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
        let client = http::user_client(
            &base,
            RemoteOptions::default(),
            user.path(),
            &author.public_key,
        )
        .await;
        let dest = user.path().join("tools");
        let err = http::install_chain(&client, &dest)
            .await
            .expect_err(&format!("{lie:?}: the install must be refused"));
        assert!(
            matches!(err.kind(), ErrorKind::Integrity | ErrorKind::Signature),
            "{lie:?}: refused as {:?}, not as a verification failure: {err}",
            err.kind()
        );
        assert!(
            http::is_empty_dir(&dest),
            "{lie:?}: a refused install wrote to its destination"
        );
        // Fetching the lied-about version alone is refused too.
        let single: PackageId = match lie {
            Lie::OtherVersionsMetadata => "chain/pkg-4@1.2.0",
            Lie::OlderBytes => "chain/pkg-3@1.2.0",
            Lie::DropDependency => "chain/pkg-0@1.2.0",
            Lie::ForeignSignature => "chain/pkg-2@1.2.0",
            Lie::FlipArchiveByte => "chain/pkg-1@1.0.0",
            Lie::StaleGraph => unreachable!("a stale graph is no refusal (its own test)"),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_graph_from_the_server_changes_no_choice_of_the_client() {
    let (base, author, stop, home) = lying_server(Lie::StaleGraph).await;
    let user = tempfile::tempdir().expect("tempdir");
    let client = http::user_client(
        &base,
        RemoteOptions::default(),
        user.path(),
        &author.public_key,
    )
    .await;
    let report = http::install_chain(&client, &user.path().join("tools"))
        .await
        .expect("an install despite the stale graph");
    let package = "chain/pkg-0".parse().unwrap();
    let requirement = parse_requirement("^1").unwrap();
    // What the home itself resolves, read directly.
    let local = MarketplaceBuilder::local_read_only(home.path())
        .and_then(MarketplaceBuilder::build)
        .expect("the server's home, read-only");
    let expected = local
        .resolve(&package, &requirement)
        .await
        .expect("the home's own resolution");
    let installed: Vec<String> = report.installed.iter().map(|p| p.id.to_string()).collect();
    let mut wanted: Vec<String> = expected.nodes.keys().map(ToString::to_string).collect();
    let mut got = installed.clone();
    wanted.sort();
    got.sort();
    assert_eq!(got, wanted, "the client chose what the server's hint said");
    assert_eq!(report.root.to_string(), "chain/pkg-0@1.2.0");
    let _ = stop.send(());
}
