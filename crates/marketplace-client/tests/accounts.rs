//! The account flows of the client: tokens, and a publish as a user — refused without a
//! trace when the key is not the user's, the name is someone else's, or a policy says no.

use std::sync::Arc;

use marketplace_client::{
    ArchiveLimits, LicenseAllowList, MarketplaceBuilder, MarketplaceClient, pack_dir,
};
use marketplace_core::{ErrorKind, KeyPair, OwnerTarget, Scope, User, UserName};

/// An archive of `acme/web@1.0.0` (`license = "MIT"`).
fn archive() -> marketplace_client::Inspected {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("marketplace.toml"),
        "[package]\nname = \"web\"\nnamespace = \"acme\"\nversion = \"1.0.0\"\nlicense = \"MIT\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("data.txt"), "web").unwrap();
    pack_dir(dir.path(), &ArchiveLimits::default()).unwrap()
}

async fn user(client: &MarketplaceClient, name: &str) -> (User, KeyPair) {
    let user = client
        .create_user(UserName::new(name).unwrap(), false)
        .await
        .unwrap();
    let key = client.generate_keypair().await.unwrap();
    client
        .register_key(&user.name, &key.public_key)
        .await
        .unwrap();
    (user, key)
}

async fn prepared(
    client: &MarketplaceClient,
    archive: marketplace_client::Inspected,
    key: &KeyPair,
) -> marketplace_client::PreparedPackage {
    let mut prepared = client.prepare(archive).await.unwrap();
    let signature = client
        .crypto()
        .sign(&prepared.metadata, &key.private_key)
        .await
        .unwrap();
    prepared.metadata.signature = Some(signature);
    prepared
}

async fn untouched(client: &MarketplaceClient, target: &OwnerTarget) {
    assert!(client.owners(target).await.unwrap().is_empty(), "no claim");
    assert_eq!(client.store().stats().await.unwrap().objects, 0);
    assert_eq!(client.registry().latest_event_seq().await.unwrap(), 0);
}

#[tokio::test]
async fn a_refused_publish_as_a_user_claims_nothing() {
    let client = MarketplaceBuilder::in_memory()
        .unwrap()
        .plugin(Arc::new(LicenseAllowList::new(["Apache-2.0"]).unwrap()))
        .build()
        .unwrap();
    let (alice, alice_key) = user(&client, "alice").await;
    let (bob, _) = user(&client, "bob").await;
    let acme = OwnerTarget::Namespace("acme".parse().unwrap());

    // Bob's publish signed with alice's key.
    let e = client
        .publish_as(&bob, prepared(&client, archive(), &alice_key).await)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(e.to_string().contains("not registered to bob"), "{e}");
    untouched(&client, &acme).await;

    // A license the policy refuses: the hook runs before the claim.
    let e = client
        .publish_as(&alice, prepared(&client, archive(), &alice_key).await)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    untouched(&client, &acme).await;

    // Allowed (no policy here): alice owns the namespace from her first publish.
    let client = MarketplaceBuilder::in_memory().unwrap().build().unwrap();
    let (alice, alice_key) = user(&client, "alice").await;
    let (bob, _) = user(&client, "bob").await;
    client
        .publish_as(&alice, prepared(&client, archive(), &alice_key).await)
        .await
        .unwrap();
    assert_eq!(
        client.owners(&acme).await.unwrap(),
        vec![alice.name.clone()]
    );
    let package = OwnerTarget::Package("acme/web".parse().unwrap());
    client.check_owner(&alice, &package).await.unwrap();
    let e = client.check_owner(&bob, &package).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert!(e.to_string().contains("alice"), "{e}");
}

#[tokio::test]
async fn tokens_hold_256_random_bits_and_only_their_hash_is_kept() {
    let client = MarketplaceBuilder::in_memory().unwrap().build().unwrap();
    let (alice, _) = user(&client, "alice").await;
    let one = client
        .create_token(&alice.name, "ci", [Scope::PublishUpdate], None, None)
        .await
        .unwrap();
    let two = client
        .create_token(&alice.name, "ci", [Scope::PublishUpdate], None, None)
        .await
        .unwrap();
    assert_ne!(one.secret, two.secret);
    assert_ne!(one.record.id, two.record.id);
    assert_eq!(one.secret.len(), 4 + 64);
    assert!(
        !format!("{one:?}").contains(&one.secret),
        "Debug redacts the secret"
    );
    let (record, user) = client.authenticate(&one.secret).await.unwrap().unwrap();
    assert_eq!(
        (record.id, user.name),
        (one.record.id.clone(), alice.name.clone())
    );
    assert!(client.authenticate("mkt_nope").await.unwrap().is_none());

    let e = client
        .create_token(&alice.name, "root", [Scope::Admin], None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let past = marketplace_core::now_seconds() - marketplace_core::time::Duration::hours(1);
    let e = client
        .create_token(&alice.name, "old", [Scope::Yank], None, Some(past))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let nobody = UserName::new("nobody").unwrap();
    let e = client
        .create_token(&nobody, "x", [Scope::Yank], None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(client.tokens(&alice.name).await.unwrap().len(), 2);

    client
        .revoke_token(&alice.name, &one.record.id)
        .await
        .unwrap();
    let (record, _) = client.authenticate(&one.secret).await.unwrap().unwrap();
    assert_eq!(
        record.unusable_at(marketplace_core::now_seconds()),
        Some("revoked")
    );
}

#[tokio::test]
async fn without_an_account_store_the_account_flows_say_so() {
    let client = MarketplaceBuilder::new()
        .registry(Arc::new(
            marketplace_client::backends::sqlite::SqliteRegistry::open_in_memory().unwrap(),
        ))
        .store(Arc::new(
            marketplace_client::backends::localstore::LocalPackageStore::in_memory(),
        ))
        .search(Arc::new(
            marketplace_client::backends::tantivy::TantivySearchEngine::in_memory().unwrap(),
        ))
        .crypto(Arc::new(
            marketplace_client::backends::ring::RingCryptoVerifier::in_memory(),
        ))
        .build()
        .unwrap();
    assert!(client.account_store().is_none());
    let e = client.users().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.to_string().contains("no account store"), "{e}");
}
