//! An install killed halfway leaves a destination the next install repairs: the packages the
//! interrupted install journaled but never recorded in the lockfile are removed, staging
//! leftovers too, and the install completes.

use marketplace_client::{ArchiveLimits, MarketplaceBuilder, pack_dir};
use marketplace_core::TrustLevel;

fn package(root: &std::path::Path, name: &str, deps: &str) -> marketplace_client::Inspected {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("marketplace.toml"),
        format!("[package]\nname = \"{name}\"\nversion = \"1.0.0\"\nlicense = \"MIT\"\n[dependencies]\n{deps}"),
    )
    .unwrap();
    std::fs::write(dir.join("data.txt"), name).unwrap();
    pack_dir(&dir, &ArchiveLimits::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinstall_repairs_what_a_killed_install_left() {
    let root = tempfile::tempdir().unwrap();
    let client = MarketplaceBuilder::in_memory().unwrap().build().unwrap();
    let key = client.generate_keypair().await.unwrap();
    client
        .trust_key(&key.public_key, TrustLevel::Full)
        .await
        .unwrap();
    let leaf = package(root.path(), "leaf", "");
    let app = package(root.path(), "app", "leaf = \"^1\"\n");
    let leaf_hash = leaf.digest().clone();
    let app_hash = app.digest().clone();
    client.publish(leaf, &key.private_key).await.unwrap();
    client.publish(app, &key.private_key).await.unwrap();

    // What a kill between moving `leaf` into place and writing the lockfile leaves: a journal
    // naming both packages, `leaf` in place (here: a truncated copy), staging debris, no lock.
    let dest = root.path().join("dest");
    std::fs::create_dir_all(dest.join("leaf-1.0.0")).unwrap();
    std::fs::write(dest.join("leaf-1.0.0/partial"), "half").unwrap();
    std::fs::create_dir_all(dest.join(".extract-Kx9q/app-files")).unwrap();
    std::fs::write(
        dest.join(".marketplace-install.journal"),
        format!("{leaf_hash}\tleaf@1.0.0\tleaf-1.0.0\n{app_hash}\tapp@1.0.0\tapp-1.0.0\n"),
    )
    .unwrap();
    // Something the user put there that no install journaled is left alone.
    std::fs::write(dest.join("notes.txt"), "mine").unwrap();

    let report = client
        .install(&"app".parse().unwrap(), &"^1".parse().unwrap(), &dest)
        .await
        .expect("the reinstall completes");
    assert_eq!(report.installed.len(), 2);
    assert!(
        !dest.join("leaf-1.0.0/partial").exists(),
        "the half package was replaced"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("leaf-1.0.0/data.txt")).unwrap(),
        "leaf"
    );
    assert!(!dest.join(".marketplace-install.journal").exists());
    assert!(
        !dest.join(".extract-Kx9q").exists(),
        "staging debris is removed"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("notes.txt")).unwrap(),
        "mine"
    );

    // A completed install leaves no journal, and installing again finds everything in place.
    let again = client
        .install(&"app".parse().unwrap(), &"^1".parse().unwrap(), &dest)
        .await
        .unwrap();
    assert_eq!(again.already_present.len(), 2);
    assert!(again.installed.is_empty());
}
