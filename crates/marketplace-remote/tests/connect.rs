//! Connecting: what is refused before anything is sent, and a server that is not there.

use marketplace_core::{ErrorKind, PackageId, Registry};
use marketplace_remote::{Remote, RemoteOptions};

fn id(text: &str) -> PackageId {
    text.parse().expect("id")
}

#[test]
fn a_url_that_is_not_http_is_refused_before_anything_is_sent() {
    for bad in [
        "ftp://example.com",
        "example.com",
        "",
        "http://user:pw@example.com/",
    ] {
        let err = Remote::connect(bad, RemoteOptions::default()).expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::Invalid, "{bad}: {err}");
    }
    let err = Remote::connect(
        "http://127.0.0.1:1",
        RemoteOptions::default().with_token("line\nbreak"),
    )
    .expect_err("a token that cannot be a header");
    assert_eq!(err.kind(), ErrorKind::Invalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_there_is_a_transient_backend_error() {
    // A port nothing listens on: bind one, then let it go.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let remote = Remote::connect(&base, RemoteOptions::default()).unwrap();
    let err = remote
        .registry()
        .get(&id("a@1.0.0"))
        .await
        .expect_err("nobody listens");
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.is_transient(), "{err}");
}
