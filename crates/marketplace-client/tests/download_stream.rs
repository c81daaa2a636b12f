//! `download_stream`: the archive streamed with the same checks as `download`, counted once,
//! and bytes that are not the signed ones end the stream with an `Integrity` error.

use futures_util::StreamExt;
use marketplace_client::{ArchiveLimits, MarketplaceBuilder, MarketplaceClient, pack_dir};
use marketplace_core::{ErrorKind, PackageId, Result, TrustLevel};

async fn home_with_one(dir: &std::path::Path) -> (MarketplaceClient, PackageId) {
    let client = MarketplaceBuilder::local(dir.join("home"))
        .unwrap()
        .build()
        .unwrap();
    let key = client.generate_keypair().await.unwrap();
    client
        .trust_key(&key.public_key, TrustLevel::Full)
        .await
        .unwrap();
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("marketplace.toml"),
        "[package]\nname = \"streamed\"\nversion = \"1.0.0\"\ndescription = \"Sent in chunks\"\n",
    )
    .unwrap();
    // Enough incompressible content for several chunks.
    let noise: Vec<u8> = (0..600_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("noise.bin"), noise).unwrap();
    let packed = pack_dir(&src, &ArchiveLimits::default()).unwrap();
    let published = client.publish(packed, &key.private_key).await.unwrap();
    (client, published.id)
}

async fn collect(body: marketplace_core::ByteStream) -> Vec<Result<bytes::Bytes>> {
    body.collect().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_download_is_the_archive_and_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let (client, id) = home_with_one(dir.path()).await;
    let whole = client.download(&id).await.unwrap();
    let streamed = client.download_stream(&id).await.unwrap();
    assert_eq!(streamed.metadata.checksum, whole.metadata.checksum);
    let mut bytes = Vec::new();
    for chunk in collect(streamed.body).await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(bytes, whole.archive.to_vec(), "the same bytes as download");
    assert_eq!(bytes.len() as u64, whole.metadata.size);
    let stats = client.stats(&id).await.unwrap();
    assert_eq!(stats.version_downloads, 2, "each download counted once");

    let unknown = "streamed@9.9.9".parse::<PackageId>().unwrap();
    let err = client.download_stream(&unknown).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_changed_in_the_store_end_the_stream_with_an_integrity_error() {
    let dir = tempfile::tempdir().unwrap();
    let (client, id) = home_with_one(dir.path()).await;
    let checksum = client.registry().get(&id).await.unwrap().checksum;
    let hex = checksum.to_string().rsplit(':').next().unwrap().to_owned();
    let object = walk(&dir.path().join("home/store"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains(&hex))
        .expect("the archive's object file");
    let mut bytes = std::fs::read(&object).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&object, bytes).unwrap();

    let items = collect(client.download_stream(&id).await.unwrap().body).await;
    let verdict = items.last().expect("at least one item");
    let err = verdict.as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
