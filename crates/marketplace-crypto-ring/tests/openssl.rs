//! Interoperability with OpenSSL: keys and signatures cross in both directions.
//!
//! Needs the `openssl` command (CI installs it); without it each test prints a visible SKIP line.

use std::path::Path;
use std::process::Command;

use marketplace_core::{CryptoVerifier, Key, Signature, VerificationResult};
use marketplace_crypto_ring::{RingCryptoVerifier, sign_payload, verify_payload};

fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIP: `openssl` is not installed; OpenSSL interoperability is not tested");
    }
    found
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether `openssl pkeyutl -verify` accepts `sig.bin` over `payload.bin` by `ours.pub.pem`.
fn openssl_verifies(dir: &Path) -> bool {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args([
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "ours.pub.pem",
            "-rawin",
            "-in",
            "payload.bin",
            "-sigfile",
            "sig.bin",
        ])
        .output()
        .expect("run openssl");
    output.status.success()
        && String::from_utf8_lossy(&output.stdout).contains("Signature Verified Successfully")
}

const PAYLOAD: &[u8] = b"marketplace interoperability payload \x00\x01\x02";

#[test]
fn openssl_keys_and_signatures_are_accepted() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl(d, &["genpkey", "-algorithm", "ed25519", "-out", "key.pem"]);
    openssl(d, &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"]);
    std::fs::write(d.join("payload.bin"), PAYLOAD).expect("write payload");
    openssl(
        d,
        &[
            "pkeyutl",
            "-sign",
            "-rawin",
            "-inkey",
            "key.pem",
            "-in",
            "payload.bin",
            "-out",
            "sig.bin",
        ],
    );

    let crypto = RingCryptoVerifier::in_memory();
    let read = |name: &str| std::fs::read_to_string(d.join(name)).expect("read pem");
    let Key::Private(pair) = crypto
        .import_key_pem(&read("key.pem"))
        .expect("import openssl private key")
    else {
        panic!("openssl's private key imported as a public key");
    };
    let Key::Public(public) = crypto
        .import_key_pem(&read("pub.pem"))
        .expect("import openssl public key")
    else {
        panic!("openssl's public key imported as a private key");
    };
    assert_eq!(
        pair.public_key, public,
        "the public key we derive equals openssl's"
    );

    let signature = Signature {
        public_key: public.clone(),
        bytes: std::fs::read(d.join("sig.bin")).expect("sig"),
    };
    assert_eq!(
        verify_payload(PAYLOAD, &signature),
        VerificationResult::Valid {
            key_id: public.key_id()
        }
    );
    // And we sign exactly as openssl does (Ed25519 is deterministic).
    assert_eq!(
        sign_payload(PAYLOAD, &pair.private_key)
            .expect("sign")
            .bytes,
        signature.bytes
    );
}

#[tokio::test]
async fn our_keys_and_signatures_are_accepted_by_openssl() {
    if !openssl_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let crypto = RingCryptoVerifier::in_memory();
    let pair = crypto.generate_keypair().await.expect("keys");
    let private_pem = crypto
        .export_key_pem(&Key::Private(pair.clone()))
        .expect("export private");
    let public_pem = crypto
        .export_key_pem(&Key::Public(pair.public_key.clone()))
        .expect("export public");
    std::fs::write(d.join("ours.pem"), &private_pem).expect("write");
    std::fs::write(d.join("ours.pub.pem"), &public_pem).expect("write");
    std::fs::write(d.join("payload.bin"), PAYLOAD).expect("write");

    // openssl loads our private key and derives the public key we exported.
    let derived = openssl(d, &["pkey", "-in", "ours.pem", "-pubout"]);
    assert_eq!(derived.trim(), public_pem.trim());

    let signature = sign_payload(PAYLOAD, &pair.private_key).expect("sign");
    std::fs::write(d.join("sig.bin"), &signature.bytes).expect("write");
    assert!(openssl_verifies(d), "openssl rejected our signature");

    // A tampered payload fails in openssl too.
    std::fs::write(d.join("payload.bin"), b"tampered").expect("write");
    assert!(!openssl_verifies(d), "openssl verified a tampered payload");
}
