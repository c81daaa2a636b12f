//! Embedding the marketplace in a tool: from nothing to a published, searched and installed
//! package, and the same again on every later run (the key is kept, a version already
//! published is left as it is). Run with `cargo run -p marketplace-client --example embed`
//! (add a directory to keep the marketplace there between runs).

use std::path::Path;

use marketplace_client::{ArchiveLimits, MarketplaceBuilder, pack_dir};
use marketplace_core::{ErrorKind, Key, KeyPair, SearchQuery, TrustLevel};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = tempfile::tempdir()?;
    let data = match std::env::args_os().nth(1) {
        Some(dir) => dir.into(),
        None => scratch.path().join("my-tool-data"), // your tool's data directory
    };
    let templates = scratch.path().join("greeting");
    std::fs::create_dir_all(&templates)?;
    std::fs::write(
        templates.join("marketplace.toml"),
        "[package]\nname = \"greeting\"\nversion = \"1.0.0\"\ndescription = \"A friendly greeting template\"\nlicense = \"MIT\"\nkeywords = [\"template\"]\n",
    )?;
    std::fs::write(templates.join("greeting.txt"), "Hello, {{name}}!\n")?;
    run(&data, &templates).await?;
    Ok(())
}

/// What the integration guide's snippet does, on `data` with the package in `templates`;
/// returns whether this run published it (a later run finds it published).
pub async fn run(data: &Path, templates: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    let market = MarketplaceBuilder::local(data)?.build()?;
    let key = publisher_key(&market, &data.join("publisher.pem")).await?;

    // pack_dir checks every archive rule while packing; publishing does not read it again.
    let packed = pack_dir(templates, &ArchiveLimits::default())?;
    let published = match market.publish(packed, &key.private_key).await {
        Ok(published) => {
            println!("published {} ({})", published.id, published.checksum);
            true
        }
        // A published version never changes: a second run leaves it as it is.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            println!("already published: {e}");
            false
        }
        Err(e) => return Err(e.into()),
    };

    for hit in market
        .search(&SearchQuery::text("greeting template"))
        .await?
    {
        println!("found {} — {}", hit.id, hit.description);
    }
    let report = market
        .install(
            &"greeting".parse()?,
            &"^1".parse()?,
            &data.join("installed"),
        )
        .await?;
    for package in &report.installed {
        println!("installed {} into {}", package.id, package.path.display());
    }
    for id in &report.already_present {
        println!("{id} is installed already");
    }
    Ok(published)
}

/// The tool's signing key: made and trusted on the first run and written to `file` (readable
/// by its owner only), read back on every later run.
async fn publisher_key(
    market: &marketplace_client::MarketplaceClient,
    file: &Path,
) -> Result<KeyPair, Box<dyn std::error::Error>> {
    if file.exists() {
        return match market
            .crypto()
            .import_key_pem(&std::fs::read_to_string(file)?)?
        {
            Key::Private(key) => Ok(key),
            Key::Public(_) => Err(format!("{} holds no private key", file.display()).into()),
        };
    }
    let key = market.crypto().generate_keypair().await?;
    market
        .crypto()
        .add_trusted_key(&key.public_key, TrustLevel::Full)
        .await?;
    let pem = market.crypto().export_key_pem(&Key::Private(key.clone()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(file)?, pem.as_bytes())?;
    Ok(key)
}
