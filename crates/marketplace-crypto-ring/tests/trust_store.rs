//! The trust store survives restarts and crashes mid-write; refusals are distinct and clear.

use marketplace_core::{
    ContentHash, CryptoVerifier, Error, ErrorKind, PackageMetadata, TrustLevel, TrustResult,
    VerificationResult,
};
use marketplace_crypto_ring::RingCryptoVerifier;

fn metadata(archive: &[u8]) -> PackageMetadata {
    PackageMetadata::new(
        "acme/web@1.0.0".parse().expect("id"),
        "Web template",
        ContentHash::sha256(archive),
        archive.len() as u64,
    )
}

#[tokio::test]
async fn trust_and_revocations_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/trust.json");
    let (trusted, revoked) = {
        let crypto = RingCryptoVerifier::open(&path).expect("open");
        let a = crypto.generate_keypair().await.expect("key a");
        let b = crypto.generate_keypair().await.expect("key b");
        crypto
            .add_trusted_key(&a.public_key, TrustLevel::Full)
            .await
            .expect("trust a");
        crypto
            .add_trusted_key(&b.public_key, TrustLevel::Ultimate)
            .await
            .expect("trust b");
        crypto
            .revoke_key(&b.public_key.key_id(), "key leaked")
            .await
            .expect("revoke b");
        (a.public_key, b.public_key)
    };
    let reopened = RingCryptoVerifier::open(&path).expect("reopen");
    match reopened
        .verify_trust(&trusted.key_id())
        .await
        .expect("verify a")
    {
        TrustResult::Trusted { level, .. } => assert_eq!(level, TrustLevel::Full),
        other => panic!("a trusted key came back as {other:?}"),
    }
    match reopened
        .verify_trust(&revoked.key_id())
        .await
        .expect("verify b")
    {
        TrustResult::Revoked { reason, .. } => assert_eq!(reason, "key leaked"),
        other => panic!("a revoked key came back as {other:?}"),
    }
    let again = reopened.add_trusted_key(&revoked, TrustLevel::Full).await;
    assert_eq!(
        again.map_err(|e| e.kind()),
        Err(ErrorKind::Signature),
        "a revoked key stays revoked"
    );
    assert_eq!(reopened.trusted_keys().await.expect("list").len(), 2);
}

#[tokio::test]
async fn a_leftover_temporary_file_never_corrupts_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("trust.json");
    let key = {
        let crypto = RingCryptoVerifier::open(&path).expect("open");
        let key = crypto.generate_keypair().await.expect("key").public_key;
        crypto
            .add_trusted_key(&key, TrustLevel::Marginal)
            .await
            .expect("trust");
        key
    };
    let before = std::fs::read(&path).expect("read store");
    // A crash between writing the temporary file and renaming it leaves this behind.
    let leftover = dir.path().join(".trust.json.Xy12ab.tmp");
    std::fs::write(&leftover, b"{\"version\":1,\"keys\":[{\"truncated").expect("write leftover");

    let reopened = RingCryptoVerifier::open(&path).expect("reopen after a crash");
    assert!(
        reopened
            .verify_trust(&key.key_id())
            .await
            .expect("verify")
            .is_trusted()
    );
    assert_eq!(
        std::fs::read(&path).expect("read store"),
        before,
        "the store file is untouched"
    );
    assert!(
        !leftover.exists(),
        "the leftover temporary file is cleaned up"
    );
}

#[tokio::test]
async fn a_corrupt_store_is_a_clear_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("trust.json");
    std::fs::write(&path, b"\x00\x01 not json").expect("write");
    match RingCryptoVerifier::open(&path) {
        Err(err @ Error::Backend { .. }) => {
            let message = err.to_string();
            assert!(message.contains("trust.json"), "{message}");
            assert!(message.contains("not a trust store"), "{message}");
        }
        other => panic!("expected a Backend error, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).expect("read"),
        b"\x00\x01 not json",
        "a corrupt store is left as it was"
    );
}

#[tokio::test]
async fn tampered_wrong_key_untrusted_and_revoked_are_distinct() {
    let crypto = RingCryptoVerifier::in_memory();
    let archive = b"archive bytes".to_vec();
    let m = metadata(&archive);
    let keys = crypto.generate_keypair().await.expect("keys");
    let signature = crypto.sign(&m, &keys.private_key).await.expect("sign");
    let key_id = keys.public_key.key_id();

    // Tampered archive: the bytes no longer match the signed checksum.
    let mut tampered = archive.clone();
    tampered[0] ^= 1;
    let integrity = crypto.verify_checksum(&tampered, &m.checksum).await;
    assert_eq!(integrity.map_err(|e| e.kind()), Err(ErrorKind::Integrity));

    // Tampered metadata or a signature presented with another key: Mismatch.
    let other = crypto.generate_keypair().await.expect("other keys");
    let mut wrong_key = signature.clone();
    wrong_key.public_key = other.public_key.clone();
    assert_eq!(
        crypto
            .verify_signature(&m, &wrong_key)
            .await
            .expect("verify"),
        VerificationResult::Mismatch {
            key_id: other.public_key.key_id()
        }
    );

    // A valid signature by a key nobody trusts.
    assert!(
        crypto
            .verify_signature(&m, &signature)
            .await
            .expect("verify")
            .is_valid()
    );
    assert_eq!(
        crypto.verify_trust(&key_id).await.expect("trust"),
        TrustResult::Unknown { key_id }
    );

    // A revoked key.
    crypto
        .add_trusted_key(&keys.public_key, TrustLevel::Full)
        .await
        .expect("trust");
    crypto
        .revoke_key(&key_id, "compromised")
        .await
        .expect("revoke");
    let verdict = crypto.verify_trust(&key_id).await.expect("trust");
    assert!(
        matches!(verdict, TrustResult::Revoked { .. }),
        "{verdict:?}"
    );
    assert!(verdict.to_string().contains("compromised"), "{verdict}");
}

#[tokio::test]
async fn alternating_signing_keys_never_mix_up() {
    let crypto = RingCryptoVerifier::in_memory();
    let m = metadata(b"bytes");
    let a = crypto.generate_keypair().await.expect("a");
    let b = crypto.generate_keypair().await.expect("b");
    for key in [&a, &b, &a, &a, &b] {
        let signature = crypto.sign(&m, &key.private_key).await.expect("sign");
        assert_eq!(signature.public_key, key.public_key);
        assert!(
            crypto
                .verify_signature(&m, &signature)
                .await
                .expect("verify")
                .is_valid()
        );
    }
}
