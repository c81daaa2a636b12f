//! The full CryptoVerifier suite of the conformance kit, in memory and file-backed.

use marketplace_conformance::{Capabilities, crypto_suite};
use marketplace_crypto_ring::RingCryptoVerifier;

#[tokio::test]
async fn conformance_in_memory() {
    crypto_suite(&RingCryptoVerifier::in_memory(), &Capabilities::default())
        .await
        .named("ring-memory")
        .assert_passed();
}

#[tokio::test]
async fn conformance_with_a_trust_store_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crypto = RingCryptoVerifier::open(dir.path().join("keys/trust.json")).expect("open");
    crypto_suite(&crypto, &Capabilities::default())
        .await
        .named("ring")
        .assert_passed();
}
