//! PEM, PKCS#8 and SubjectPublicKeyInfo import: any text is a key or an `Invalid` error; a key
//! that imports exports and imports again to the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use marketplace_core::{CryptoVerifier, Key};
use marketplace_crypto_ring::RingCryptoVerifier;

fuzz_target!(|text: &str| {
    let crypto = RingCryptoVerifier::in_memory();
    if let Ok(key) = crypto.import_key_pem(text) {
        let pem = crypto.export_key_pem(&key).expect("an imported key exports");
        let again = crypto.import_key_pem(&pem).expect("an exported key imports");
        let same = match (&key, &again) {
            (Key::Public(a), Key::Public(b)) => a == b,
            (Key::Private(a), Key::Private(b)) => a.public_key == b.public_key,
            _ => false,
        };
        assert!(same, "export and import changed the key");
    }
});
