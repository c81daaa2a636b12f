//! The full CryptoVerifier suite of the conformance kit, in memory and file-backed.

use std::sync::Arc;

use marketplace_conformance::{Capabilities, crypto_suite};
use marketplace_core::CryptoVerifier;
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
    let path = dir.path().join("keys/trust.json");
    let crypto = RingCryptoVerifier::open(&path).expect("open");
    let caps = Capabilities::default().with_crypto_reopen(move || {
        RingCryptoVerifier::open(&path)
            .map(|c| Arc::new(c) as Arc<dyn CryptoVerifier>)
            .map_err(|e| e.to_string())
    });
    crypto_suite(&crypto, &caps)
        .await
        .named("ring")
        .assert_passed();
}
