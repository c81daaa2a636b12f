//! Embedding the marketplace in a tool: from nothing to a published, searched and installed
//! package in about twenty lines. Run with `cargo run -p marketplace-client --example embed`.

use marketplace_client::{ArchiveLimits, MarketplaceBuilder, pack_dir};
use marketplace_core::{SearchQuery, TrustLevel};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let home = tempfile::tempdir()?; // your tool's data directory
    let market = MarketplaceBuilder::local(home.path().join("market"))?.build()?;
    let key = market.crypto().generate_keypair().await?;
    market
        .crypto()
        .add_trusted_key(&key.public_key, TrustLevel::Full)
        .await?;

    let src = home.path().join("greeting");
    std::fs::create_dir_all(&src)?;
    std::fs::write(
        src.join("marketplace.toml"),
        "[package]\nname = \"greeting\"\nversion = \"1.0.0\"\ndescription = \"A friendly greeting template\"\nlicense = \"MIT\"\nkeywords = [\"template\"]\n",
    )?;
    std::fs::write(src.join("greeting.txt"), "Hello, {{name}}!\n")?;
    // pack_dir checks every archive rule while packing; publishing does not read it again.
    let packed = pack_dir(&src, &ArchiveLimits::default())?;
    let published = market.publish(packed, &key.private_key).await?;
    println!("published {} ({})", published.id, published.checksum);

    for hit in market
        .search(&SearchQuery::text("greeting template"))
        .await?
    {
        println!("found {} — {}", hit.id, hit.description);
    }
    let dest = home.path().join("installed");
    let report = market
        .install(&"greeting".parse()?, &"^1".parse()?, &dest)
        .await?;
    for package in &report.installed {
        println!("installed {} into {}", package.id, package.path.display());
    }
    Ok(())
}
