//! Downloads that break off: the real server behind a layer that cuts an archive's body half
//! way (once), so the client must pick it up where it broke (`Range: bytes=N-`) and verify the
//! whole; a server that then ignores the range is refused and nothing is written. Progress is
//! told every byte of the archive and of an upload.

mod http;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, RANGE};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt as _;
use marketplace_client::backends::remote::{Direction, Progress, RemoteOptions, Transfer};
use marketplace_client::{MarketplaceBuilder, MarketplaceClient};
use marketplace_core::{ErrorKind, KeyPair, TrustLevel};
use marketplace_server::Server;
use marketplace_testing::corpus;
use tokio::sync::oneshot;

/// What the layer does to archive downloads.
#[derive(Default)]
struct Cutter {
    /// Cut the next full (range-less) archive body after half its bytes.
    cut_once: std::sync::atomic::AtomicBool,
    /// Answer a ranged request with the whole archive (200), as a server that ignores ranges.
    ignore_ranges: bool,
    /// The `Range` headers seen.
    ranges: Mutex<Vec<String>>,
}

async fn cut(State(cutter): State<Arc<Cutter>>, mut request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/v1/archives/") {
        return next.run(request).await;
    }
    let range = request
        .headers()
        .get(RANGE)
        .map(|v| v.to_str().unwrap().to_owned());
    if let Some(range) = &range {
        cutter.ranges.lock().unwrap().push(range.clone());
        if cutter.ignore_ranges {
            request.headers_mut().remove(RANGE);
        }
    }
    let response = next.run(request).await;
    if range.is_some() || !cutter.cut_once.swap(false, Ordering::SeqCst) {
        return response;
    }
    // The head as sent (with the whole Content-Length), then half the body and a failure.
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.expect("the archive");
    let half = bytes.slice(..bytes.len() / 2);
    // The failure a moment later, once the head and the first half are on the wire.
    let broken = futures::stream::once(async { Ok::<_, std::io::Error>(half) }).chain(
        futures::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            Err(std::io::Error::other("the connection broke"))
        }),
    );
    let mut response = Response::from_parts(parts, Body::from_stream(broken));
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, bytes.len().into());
    response
}

/// A server over a home with one 256 KiB package, its archive cut as `cutter` says.
async fn server(
    cutter: Arc<Cutter>,
) -> (
    String,
    KeyPair,
    Arc<MarketplaceClient>,
    oneshot::Sender<()>,
    tempfile::TempDir,
) {
    let home = tempfile::tempdir().expect("tempdir");
    let market = MarketplaceBuilder::local(home.path())
        .and_then(MarketplaceBuilder::build)
        .expect("a home");
    let author = market.generate_keypair().await.expect("key");
    market
        .trust_key(&author.public_key, TrustLevel::Full)
        .await
        .expect("trust");
    let metadata = corpus::dependency_chain(1).remove(0);
    market
        .publish(
            corpus::blob_archive(&metadata, 256 * 1024),
            &author.private_key,
        )
        .await
        .expect("publish");
    let market = Arc::new(market);
    let router = axum::Router::new()
        .fallback_service(Server::new(Arc::clone(&market)).router())
        .layer(axum::middleware::from_fn_with_state(cutter, cut));
    let (base, stop) = http::serve(router).await;
    (base, author, market, stop, home)
}

/// Counts what it is told, per direction.
#[derive(Default)]
struct Counted {
    downloaded: Arc<AtomicU64>,
    uploaded: Arc<AtomicU64>,
    transfers: AtomicUsize,
}

struct Counting(Arc<AtomicU64>);

impl Transfer for Counting {
    fn advance(&mut self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::SeqCst);
    }
}

impl Progress for Counted {
    fn begin(&self, direction: Direction, _label: &str, _total: Option<u64>) -> Box<dyn Transfer> {
        self.transfers.fetch_add(1, Ordering::SeqCst);
        Box::new(Counting(Arc::clone(match direction {
            Direction::Download => &self.downloaded,
            Direction::Upload => &self.uploaded,
        })))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_that_breaks_off_is_resumed_where_it_broke_and_verified_whole() {
    let cutter = Arc::new(Cutter::default());
    cutter.cut_once.store(true, Ordering::SeqCst);
    let (base, author, _market, stop, _home) = server(Arc::clone(&cutter)).await;
    let user = tempfile::tempdir().expect("tempdir");
    let progress = Arc::new(Counted::default());
    let options =
        RemoteOptions::default().with_progress(Arc::clone(&progress) as Arc<dyn Progress>);
    let client = http::user_client(&base, options, user.path(), &author.public_key).await;
    let report = http::install_chain(&client, &user.path().join("tools"))
        .await
        .expect("an install despite the broken connection");
    let size = std::fs::metadata(report.installed[0].path.join("data.bin"))
        .expect("data.bin installed")
        .len();
    assert_eq!(size, 256 * 1024);
    let ranges = cutter.ranges.lock().unwrap().clone();
    assert_eq!(ranges.len(), 1, "one resumption: {ranges:?}");
    let archive = client.info(&report.root).await.expect("info").metadata.size;
    assert_eq!(ranges[0], format!("bytes={}-", archive / 2));
    // Progress was told every byte of the archive, once (the half before the break, the rest
    // after it).
    assert_eq!(progress.downloaded.load(Ordering::SeqCst), archive);
    assert_eq!(progress.transfers.load(Ordering::SeqCst), 1);
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_the_range_is_refused_and_nothing_is_written() {
    let cutter = Arc::new(Cutter {
        ignore_ranges: true,
        ..Cutter::default()
    });
    cutter.cut_once.store(true, Ordering::SeqCst);
    let (base, author, _market, stop, _home) = server(Arc::clone(&cutter)).await;
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
        .expect_err("the rest never came");
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.to_string().contains("did not send the rest"), "{err}");
    assert!(http::is_empty_dir(&dest));
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_told_to_progress_piece_by_piece() {
    let (base, _author, market, stop, _home) = server(Arc::new(Cutter::default())).await;
    let user = marketplace_core::UserName::new("alice").unwrap();
    market.create_user(user.clone(), false).await.expect("user");
    let key = market.generate_keypair().await.expect("key");
    market
        .register_key(&user, &key.public_key)
        .await
        .expect("register");
    let token = market
        .create_token(
            &user,
            "laptop",
            [marketplace_core::Scope::PublishNew],
            None,
            None,
        )
        .await
        .expect("token")
        .secret;
    let progress = Arc::new(Counted::default());
    let home = tempfile::tempdir().expect("tempdir");
    let options = RemoteOptions::default()
        .with_token(token)
        .with_progress(Arc::clone(&progress) as Arc<dyn Progress>);
    let client = http::user_client(&base, options, home.path(), &key.public_key).await;
    let mut metadata = corpus::dependency_chain(1).remove(0);
    metadata.id = "alice-tool@1.0.0".parse().unwrap();
    let archive = corpus::blob_archive(&metadata, 300 * 1024);
    let published = client
        .publish(archive.clone(), &key.private_key)
        .await
        .expect("a publish in pieces");
    assert_eq!(published.id.to_string(), "alice-tool@1.0.0");
    assert_eq!(
        progress.uploaded.load(Ordering::SeqCst),
        archive.len() as u64
    );
    assert_eq!(progress.transfers.load(Ordering::SeqCst), 1);
    let _ = stop.send(());
}
