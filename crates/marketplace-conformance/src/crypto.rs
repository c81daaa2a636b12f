//! The `CryptoVerifier` suite.

use marketplace_core::{
    ContentHash, CryptoVerifier, ErrorKind, HashAlgorithm, Key, KeyId, KeyPair, PublicKey,
    Signature, TrustLevel, TrustResult, VerificationResult,
};

use crate::Capabilities;
use crate::fixtures::package;
use crate::report::{CheckResult, Context, SuiteReport, ensure, ensure_eq, expect_kind};

/// An Ed25519 private key made by `openssl genpkey -algorithm ed25519` (PKCS#8 v1, no public
/// key inside). A throwaway test key.
pub const OPENSSL_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINSSqHZRbuJ/8B7MG0ZsXWMdSSkjpM7DTlzlN8ZY6lm0
-----END PRIVATE KEY-----
";

/// The public key of [`OPENSSL_PRIVATE_PEM`], as printed by `openssl pkey -pubout`.
pub const OPENSSL_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAXU7pdMd44Ze1xGAijUW3Tm12b5UaqX83rRmNKlDC/u8=
-----END PUBLIC KEY-----
";

/// The raw public key bytes of the OpenSSL key pair above.
const OPENSSL_PUBLIC_HEX: &str = "5d4ee974c778e197b5c460228d45b74e6d766f951aa97f37ad198d2a50c2feef";

/// An RSA public key (`openssl genpkey -algorithm rsa` then `-pubout`): must be refused.
const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCih9xZzLO/nM+U7V7J47wuMbkt
tnGgnhasv5NpRBEwU7TWvg4mqOfMDyNmGS1hmd9X7mWSZW1ZwrkqxvBQIuFLtMBV
91imKbBs5IYUf6buGWOkr2BHL0iBXb9y6TShl84o1gT8SA9hT4+96d5WxEaGT8Qh
WpEzH/WnMOYJllEu+QIDAQAB
-----END PUBLIC KEY-----
";

/// Runs every `CryptoVerifier` check against `crypto`, whose trust store must be empty when
/// the suite starts.
///
/// Checks: sign/verify, known answers (a golden payload and a signature made by another
/// implementation), signatures checked by a reference verifier, every signed field tampered in
/// turn, wrong key, malformed signatures, unsigned mutable
/// fields, checksums (known answers, mismatch), the trust store (unknown, trusted, revoked,
/// revocation wins), PEM round trips, OpenSSL-made keys, and garbage PEM.
pub async fn crypto_suite(crypto: &dyn CryptoVerifier, caps: &Capabilities) -> SuiteReport {
    let _ = caps;
    let c = crypto;
    let mut report = SuiteReport::new("crypto", caps);
    report.run("sign_then_verify", sign_then_verify(c)).await;
    report
        .run("signature_known_answers", signature_known_answers(c))
        .await;
    report
        .run(
            "signatures_verify_with_a_reference_verifier",
            reference_verifier(c),
        )
        .await;
    report.run("tampered_metadata_fails", tampered(c)).await;
    report.run("wrong_key_fails", wrong_key(c)).await;
    report
        .run("malformed_signature_is_reported", malformed(c))
        .await;
    report
        .run("mutable_fields_are_not_signed", mutable_fields(c))
        .await;
    report.run("keypairs_are_distinct", distinct_keys(c)).await;
    report.run("checksums_known_answers", checksums(c)).await;
    report
        .run(
            "verify_checksum_mismatch_is_integrity",
            checksum_mismatch(c),
        )
        .await;
    report.run("trust_store_levels", trust_levels(c)).await;
    report.run("revocation_wins", revocation(c)).await;
    report.run("pem_round_trip", pem_round_trip(c)).await;
    report.run("openssl_keys_import", openssl_keys(c)).await;
    report.run("garbage_pem_is_invalid", garbage_pem(c)).await;
    match &caps.reopen_crypto {
        Some(reopen) => {
            report
                .run("trust_survives_reopening", trust_survives(c, &*reopen.0))
                .await;
        }
        None => report.skip(
            "trust_survives_reopening",
            "no way to reopen the trust store given (Capabilities::with_crypto_reopen)",
        ),
    }
    report
}

/// Trust levels, revocations (with their reasons, also of keys never trusted) read the same
/// through a second handle on the trust store.
async fn trust_survives(
    c: &dyn CryptoVerifier,
    reopen: &crate::ReopenFn<dyn CryptoVerifier>,
) -> CheckResult {
    let marginal = keypair(c).await?;
    let full = keypair(c).await?;
    let revoked = keypair(c).await?;
    c.add_trusted_key(&marginal.public_key, TrustLevel::Marginal)
        .await
        .ctx("add_trusted_key")?;
    c.add_trusted_key(&full.public_key, TrustLevel::Full)
        .await
        .ctx("add_trusted_key")?;
    c.add_trusted_key(&revoked.public_key, TrustLevel::Ultimate)
        .await
        .ctx("add_trusted_key")?;
    c.revoke_key(&revoked.public_key.key_id(), "key leaked in a log")
        .await
        .ctx("revoke_key")?;
    let never_seen = KeyId([9; 16]);
    c.revoke_key(&never_seen, "revoked before use")
        .await
        .ctx("revoke an unseen key")?;
    let again = reopen().map_err(|e| format!("reopen the trust store: {e}"))?;
    let again = again.as_ref();
    for id in [
        marginal.public_key.key_id(),
        full.public_key.key_id(),
        revoked.public_key.key_id(),
        never_seen,
    ] {
        ensure_eq!(
            again
                .verify_trust(&id)
                .await
                .ctx("verify_trust after reopening")?,
            c.verify_trust(&id).await.ctx("verify_trust")?,
            "the trust of {id} after reopening"
        );
        ensure_eq!(
            again
                .is_revoked(&id)
                .await
                .ctx("is_revoked after reopening")?,
            c.is_revoked(&id).await.ctx("is_revoked")?,
            "whether {id} is revoked, after reopening"
        );
    }
    let mut before = c.trusted_keys().await.ctx("trusted_keys")?;
    let mut after = again
        .trusted_keys()
        .await
        .ctx("trusted_keys after reopening")?;
    before.sort_by_key(|k| k.public_key.key_id());
    after.sort_by_key(|k| k.public_key.key_id());
    ensure_eq!(after, before, "trusted_keys after reopening");
    expect_kind(
        again
            .add_trusted_key(&revoked.public_key, TrustLevel::Full)
            .await,
        ErrorKind::Signature,
        "trusting a key revoked before reopening",
    )
}

async fn keypair(c: &dyn CryptoVerifier) -> Result<KeyPair, String> {
    c.generate_keypair().await.ctx("generate_keypair")
}

async fn signed(
    c: &dyn CryptoVerifier,
) -> Result<(marketplace_core::PackageMetadata, Signature, KeyPair), String> {
    let keys = keypair(c).await?;
    let m = package("sig/web@1.0.0", &[("sig/http", "^1")]);
    let sig = c.sign(&m, &keys.private_key).await.ctx("sign")?;
    Ok((m, sig, keys))
}

async fn verify(
    c: &dyn CryptoVerifier,
    m: &marketplace_core::PackageMetadata,
    sig: &Signature,
) -> Result<VerificationResult, String> {
    c.verify_signature(m, sig).await.ctx("verify_signature")
}

async fn sign_then_verify(c: &dyn CryptoVerifier) -> CheckResult {
    let (m, sig, keys) = signed(c).await?;
    ensure_eq!(
        sig.public_key,
        keys.public_key,
        "the signature carries the signer's public key"
    );
    ensure_eq!(sig.bytes.len(), 64, "an Ed25519 signature is 64 bytes");
    ensure_eq!(
        verify(c, &m, &sig).await?,
        VerificationResult::Valid {
            key_id: keys.public_key.key_id()
        },
        "a fresh signature verifies"
    );
    let again = c.sign(&m, &keys.private_key).await.ctx("sign again")?;
    ensure_eq!(again, sig, "Ed25519 signatures are deterministic");
    Ok(())
}

/// The signing payload of [`golden`], written from the layout in `marketplace_core::payload`'s
/// documentation by an independent implementation (Python), not by `signing_payload`.
const GOLDEN_PAYLOAD_HEX: &str = "6d61726b6574706c6163652f7369676e696e672d7061796c6f61642f76310a000000036b617400000006676f6c64656e00000012312e322e332d72632e312b6275696c642e37000000020000001e416461204c6f76656c616365203c616461406578616d706c652e636f6d3e0000000c477261636520486f70706572000000114170616368652d322e30204f52204d495400000002000000086b61742f62617365000000045e312e32000000047574696c0000000b3e3d302e332c203c302e35000000477368613235363a333934313536343535656630313436656162313330396138663839383532653735366338646131346337306231363661663839386536316336646365333937380000000000001092000000006ab13b80075bcd15";

/// The Ed25519 signature of [`GOLDEN_PAYLOAD_HEX`] by the [`OPENSSL_PRIVATE_PEM`] key, made
/// with Python's `cryptography` and checked with `openssl pkeyutl -sign -rawin`.
const GOLDEN_SIGNATURE_HEX: &str = "57e975fdc4fe601a62799e71b010fcf3a946c7a6f4e8ef89869e121e758c00a1b3f9a47ced528eb76bf19ac128f14bb7905ae614fc4ff4a25b140fc742d5b00b";

/// The known-answer metadata: every signed field set, none at a default.
fn golden() -> marketplace_core::PackageMetadata {
    let mut m = package(
        "kat/golden@1.2.3-rc.1+build.7",
        &[("kat/base", "^1.2"), ("util", ">=0.3, <0.5")],
    );
    m.authors = vec![
        "Ada Lovelace <ada@example.com>".into(),
        "Grace Hopper".into(),
    ];
    m.license = Some("Apache-2.0 OR MIT".parse().expect("a license expression"));
    m.checksum = ContentHash::sha256(b"golden archive");
    m.size = 4242;
    m.published_at = marketplace_core::time::OffsetDateTime::from_unix_timestamp_nanos(
        1_790_000_000_123_456_789,
    )
    .expect("in range");
    m
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("kit hex constants parse"))
        .collect()
}

async fn signature_known_answers(c: &dyn CryptoVerifier) -> CheckResult {
    let m = golden();
    ensure_eq!(
        hex_of(&marketplace_core::signing_payload(&m)),
        GOLDEN_PAYLOAD_HEX.to_owned(),
        "the golden metadata's signing payload (marketplace-core's layout)"
    );
    let Key::Private(pair) = c
        .import_key_pem(OPENSSL_PRIVATE_PEM)
        .ctx("import the known-answer private key")?
    else {
        return Err("the known-answer private key imported as public".into());
    };
    let sig = c
        .sign(&m, &pair.private_key)
        .await
        .ctx("sign the golden metadata")?;
    ensure_eq!(
        hex_of(&sig.bytes),
        GOLDEN_SIGNATURE_HEX.to_owned(),
        "the signature of the golden metadata (Ed25519 is deterministic: another implementation made this one)"
    );
    let known = Signature {
        public_key: PublicKey::ed25519(unhex(OPENSSL_PUBLIC_HEX)).map_err(|e| e.to_string())?,
        bytes: unhex(GOLDEN_SIGNATURE_HEX),
    };
    ensure_eq!(
        verify(c, &m, &known).await?,
        VerificationResult::Valid {
            key_id: known.public_key.key_id()
        },
        "the known-answer signature verifies"
    );
    let mut flipped = known.clone();
    flipped.bytes[63] ^= 0x01;
    ensure!(
        !verify(c, &m, &flipped).await?.is_valid(),
        "the known-answer signature with its last bit changed verifies"
    );
    Ok(())
}

/// Signatures the backend makes verify with an independent Ed25519 implementation over the
/// payload `marketplace-core` defines: a backend that signs something else (another payload,
/// a hash of it, without the domain separator) fails here even if it verifies its own.
async fn reference_verifier(c: &dyn CryptoVerifier) -> CheckResult {
    let keys = keypair(c).await?;
    for m in [golden(), package("ref/web@0.1.0", &[])] {
        let sig = c.sign(&m, &keys.private_key).await.ctx("sign")?;
        let key_bytes: [u8; 32] = sig
            .public_key
            .bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("a {}-byte public key", sig.public_key.bytes.len()))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes)
            .map_err(|e| format!("the reference verifier refuses the public key: {e}"))?;
        let bytes: [u8; 64] = sig
            .bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("a {}-byte signature", sig.bytes.len()))?;
        key.verify_strict(
            &marketplace_core::signing_payload(&m),
            &ed25519_dalek::Signature::from_bytes(&bytes),
        )
        .map_err(|e| {
            format!(
                "the reference verifier refuses the backend's signature of {}: {e}",
                m.id
            )
        })?;
    }
    Ok(())
}

/// A change to signed metadata.
type Tamper = fn(&mut marketplace_core::PackageMetadata);

/// Every field the signing payload covers, changed in turn: each change must break the
/// signature.
async fn tampered(c: &dyn CryptoVerifier) -> CheckResult {
    let keys = keypair(c).await?;
    let m = golden();
    let sig = c.sign(&m, &keys.private_key).await.ctx("sign")?;
    let key_id = keys.public_key.key_id();
    let changes: [(&str, Tamper); 19] = [
        ("namespace", |m| {
            m.id.namespace = Some("tak".parse().expect("name"));
        }),
        ("namespace removed", |m| m.id.namespace = None),
        ("name", |m| m.id.name = "golder".parse().expect("name")),
        ("version", |m| {
            m.id.version = "1.2.4-rc.1+build.7".parse().expect("version")
        }),
        ("pre-release", |m| {
            m.id.version = "1.2.3-rc.2+build.7".parse().expect("version")
        }),
        ("build metadata", |m| {
            m.id.version = "1.2.3-rc.1+build.8".parse().expect("version")
        }),
        ("authors reordered", |m| m.authors.reverse()),
        ("an author added", |m| m.authors.push("Mallory".into())),
        ("an author removed", |m| {
            m.authors.pop();
        }),
        ("license", |m| {
            m.license = Some("MIT".parse().expect("license"));
        }),
        ("license removed", |m| m.license = None),
        ("a requirement", |m| {
            let util = "util".parse().expect("name");
            m.dependencies.insert(
                util,
                marketplace_core::parse_requirement(">=0.3, <0.6").expect("req"),
            );
        }),
        ("a dependency removed", |m| {
            m.dependencies.remove(&"util".parse().expect("name"));
        }),
        ("a renamed dependency added", |m| {
            m.renamed_dependencies.insert(
                "util_03".parse().expect("alias"),
                marketplace_core::RenamedDependency {
                    package: "util".parse().expect("name"),
                    requirement: marketplace_core::parse_requirement("^0.3").expect("req"),
                },
            );
        }),
        ("a dependency added", |m| {
            m.dependencies.insert(
                "evil/helper".parse().expect("name"),
                marketplace_core::parse_requirement("*").expect("req"),
            );
        }),
        ("checksum", |m| m.checksum = ContentHash::sha256(b"evil")),
        ("checksum algorithm", |m| {
            m.checksum = ContentHash::new(HashAlgorithm::Blake3, m.checksum.digest().to_vec())
                .expect("32 bytes");
        }),
        ("size", |m| m.size += 1),
        ("published_at by a nanosecond", |m| {
            m.published_at += marketplace_core::time::Duration::nanoseconds(1);
        }),
    ];
    for (field, change) in changes {
        let mut evil = m.clone();
        change(&mut evil);
        ensure_eq!(
            verify(c, &evil, &sig).await?,
            VerificationResult::Mismatch { key_id },
            "a signature over changed {field}"
        );
    }
    Ok(())
}

async fn wrong_key(c: &dyn CryptoVerifier) -> CheckResult {
    let (m, mut sig, _) = signed(c).await?;
    let other = keypair(c).await?;
    sig.public_key = other.public_key.clone();
    ensure_eq!(
        verify(c, &m, &sig).await?,
        VerificationResult::Mismatch {
            key_id: other.public_key.key_id()
        },
        "a signature presented with another key"
    );
    Ok(())
}

async fn malformed(c: &dyn CryptoVerifier) -> CheckResult {
    let (m, sig, _) = signed(c).await?;
    let mut short = sig.clone();
    short.bytes.truncate(10);
    let result = verify(c, &m, &short).await?;
    ensure!(
        matches!(result, VerificationResult::Malformed { .. }),
        "a 10-byte signature should be Malformed, got {result:?}"
    );
    let mut bad_key = sig.clone();
    bad_key.public_key = PublicKey {
        algorithm: sig.public_key.algorithm,
        bytes: vec![1, 2, 3],
    };
    let result = verify(c, &m, &bad_key).await?;
    ensure!(
        matches!(result, VerificationResult::Malformed { .. }),
        "a 3-byte public key should be Malformed, got {result:?}"
    );
    Ok(())
}

async fn mutable_fields(c: &dyn CryptoVerifier) -> CheckResult {
    let (mut m, sig, _) = signed(c).await?;
    m.description = "edited later".into();
    m.keywords = vec!["edited".into()];
    ensure!(
        verify(c, &m, &sig).await?.is_valid(),
        "editing mutable fields must not invalidate the signature"
    );
    Ok(())
}

async fn distinct_keys(c: &dyn CryptoVerifier) -> CheckResult {
    let a = keypair(c).await?;
    let b = keypair(c).await?;
    ensure!(
        a.public_key != b.public_key,
        "two generated key pairs are equal"
    );
    ensure_eq!(
        a.public_key.bytes.len(),
        32,
        "an Ed25519 public key is 32 bytes"
    );
    ensure!(
        !format!("{:?}", a.private_key).contains(&format!("{:?}", a.private_key.pkcs8_der())),
        "Debug prints private key material"
    );
    Ok(())
}

async fn checksums(c: &dyn CryptoVerifier) -> CheckResult {
    let sha256 = c
        .checksum(b"abc", HashAlgorithm::Sha256)
        .await
        .ctx("checksum sha256")?;
    ensure_eq!(
        sha256.to_string(),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_owned(),
        "SHA-256 of abc"
    );
    let sha512 = c
        .checksum(b"abc", HashAlgorithm::Sha512)
        .await
        .ctx("checksum sha512")?;
    ensure_eq!(sha512.hex(), "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f".to_owned(), "SHA-512 of abc");
    c.verify_checksum(b"abc", &sha256)
        .await
        .ctx("verify_checksum of matching bytes")?;
    c.verify_checksum(b"abc", &sha512)
        .await
        .ctx("verify_checksum of matching bytes under SHA-512")?;
    let empty = c
        .checksum(b"", HashAlgorithm::Sha256)
        .await
        .ctx("checksum of nothing")?;
    ensure_eq!(
        empty.hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned(),
        "SHA-256 of nothing"
    );
    Ok(())
}

async fn checksum_mismatch(c: &dyn CryptoVerifier) -> CheckResult {
    let sha = c
        .checksum(b"abc", HashAlgorithm::Sha256)
        .await
        .ctx("checksum")?;
    expect_kind(
        c.verify_checksum(b"abd", &sha).await,
        ErrorKind::Integrity,
        "verify_checksum of other bytes",
    )?;
    // A digest that differs only in its last byte: a comparison of a prefix passes it.
    let mut digest = sha.digest().to_vec();
    digest[31] ^= 0x01;
    let near = ContentHash::new(HashAlgorithm::Sha256, digest).map_err(|e| e.to_string())?;
    expect_kind(
        c.verify_checksum(b"abc", &near).await,
        ErrorKind::Integrity,
        "verify_checksum against a digest one bit off in its last byte",
    )?;
    // The same digest under another algorithm of that length is another checksum.
    let other_algorithm = ContentHash::new(HashAlgorithm::Blake3, sha.digest().to_vec())
        .map_err(|e| e.to_string())?;
    let result = c.verify_checksum(b"abc", &other_algorithm).await;
    ensure!(
        matches!(&result, Err(e) if matches!(e.kind(), ErrorKind::Integrity | ErrorKind::Invalid)),
        "verify_checksum of SHA-256 bytes against a BLAKE3 checksum with the same digest: {result:?}"
    );
    Ok(())
}

async fn trust_levels(c: &dyn CryptoVerifier) -> CheckResult {
    let keys = keypair(c).await?;
    let id = keys.public_key.key_id();
    ensure_eq!(
        c.verify_trust(&id).await.ctx("verify_trust")?,
        TrustResult::Unknown { key_id: id },
        "an unknown key"
    );
    c.add_trusted_key(&keys.public_key, TrustLevel::Marginal)
        .await
        .ctx("add_trusted_key")?;
    match c.verify_trust(&id).await.ctx("verify_trust")? {
        TrustResult::Trusted { level, .. } => {
            ensure_eq!(
                level,
                TrustLevel::Marginal,
                "the level a key was trusted at"
            );
        }
        other => return Err(format!("a marginally trusted key reported {other:?}")),
    }
    let listed = c.trusted_keys().await.ctx("trusted_keys")?;
    ensure!(
        listed.iter().any(|k| k.public_key == keys.public_key
            && matches!(
                k.trust,
                TrustResult::Trusted {
                    level: TrustLevel::Marginal,
                    ..
                }
            )),
        "trusted_keys does not list the key at its level: {listed:?}"
    );
    let other = keypair(c).await?;
    c.add_trusted_key(&other.public_key, TrustLevel::Ultimate)
        .await
        .ctx("add another trusted key")?;
    match c
        .verify_trust(&other.public_key.key_id())
        .await
        .ctx("verify_trust")?
    {
        TrustResult::Trusted { level, .. } => {
            ensure_eq!(level, TrustLevel::Ultimate, "another key's level");
        }
        other => return Err(format!("an ultimately trusted key reported {other:?}")),
    }
    c.add_trusted_key(&keys.public_key, TrustLevel::Full)
        .await
        .ctx("add_trusted_key again")?;
    match c.verify_trust(&id).await.ctx("verify_trust")? {
        TrustResult::Trusted { key_id, level, .. } => {
            ensure_eq!(key_id, id, "trusted key id");
            ensure_eq!(level, TrustLevel::Full, "re-adding changes the level");
        }
        other => return Err(format!("a trusted key reported {other:?}")),
    }
    let listed = c.trusted_keys().await.ctx("trusted_keys")?;
    ensure!(
        listed
            .iter()
            .any(|k| k.public_key == keys.public_key && k.trust.is_trusted()),
        "trusted_keys does not list the key"
    );
    ensure!(
        !c.is_revoked(&id).await.ctx("is_revoked")?,
        "a trusted key is revoked"
    );
    Ok(())
}

async fn revocation(c: &dyn CryptoVerifier) -> CheckResult {
    let keys = keypair(c).await?;
    let id = keys.public_key.key_id();
    c.add_trusted_key(&keys.public_key, TrustLevel::Ultimate)
        .await
        .ctx("add_trusted_key")?;
    c.revoke_key(&id, "laptop stolen").await.ctx("revoke_key")?;
    ensure!(
        c.is_revoked(&id).await.ctx("is_revoked")?,
        "a revoked key is not revoked"
    );
    match c.verify_trust(&id).await.ctx("verify_trust")? {
        TrustResult::Revoked { reason, .. } => {
            ensure_eq!(reason, "laptop stolen".to_owned(), "the revocation reason")
        }
        other => return Err(format!("a revoked key reported {other:?}")),
    }
    expect_kind(
        c.add_trusted_key(&keys.public_key, TrustLevel::Full).await,
        ErrorKind::Signature,
        "trusting a revoked key",
    )?;
    c.revoke_key(&id, "second reason")
        .await
        .ctx("revoke twice")?;
    match c.verify_trust(&id).await.ctx("verify_trust")? {
        TrustResult::Revoked { reason, .. } => ensure_eq!(
            reason,
            "laptop stolen".to_owned(),
            "revoking twice keeps the first revocation"
        ),
        other => return Err(format!("a revoked key reported {other:?}")),
    }
    let unknown = KeyId([7; 16]);
    c.revoke_key(&unknown, "pre-emptive")
        .await
        .ctx("revoke an unknown key")?;
    ensure!(
        c.is_revoked(&unknown).await.ctx("is_revoked")?,
        "a key revoked before being seen is not revoked"
    );
    Ok(())
}

async fn pem_round_trip(c: &dyn CryptoVerifier) -> CheckResult {
    let keys = keypair(c).await?;
    let public_pem = c
        .export_key_pem(&Key::Public(keys.public_key.clone()))
        .ctx("export public key")?;
    ensure!(
        public_pem.starts_with("-----BEGIN PUBLIC KEY-----"),
        "public keys export as SubjectPublicKeyInfo PEM: {public_pem}"
    );
    match c.import_key_pem(&public_pem).ctx("import public key")? {
        Key::Public(k) => ensure_eq!(k, keys.public_key, "public key round trip"),
        Key::Private(_) => return Err("a public PEM imported as a private key".into()),
    }
    let private_pem = c
        .export_key_pem(&Key::Private(keys.clone()))
        .ctx("export private key")?;
    ensure!(
        private_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "private keys export as PKCS#8 PEM"
    );
    let Key::Private(back) = c.import_key_pem(&private_pem).ctx("import private key")? else {
        return Err("a private PEM imported as a public key".into());
    };
    ensure_eq!(
        back.public_key,
        keys.public_key,
        "the imported private key has the same public key"
    );
    let m = package("pem/web@1.0.0", &[]);
    let sig = c
        .sign(&m, &back.private_key)
        .await
        .ctx("sign with the imported key")?;
    ensure!(
        verify(c, &m, &sig).await?.is_valid(),
        "a signature by the re-imported key does not verify"
    );
    Ok(())
}

async fn openssl_keys(c: &dyn CryptoVerifier) -> CheckResult {
    let Key::Public(public) = c
        .import_key_pem(OPENSSL_PUBLIC_PEM)
        .ctx("import an OpenSSL public key")?
    else {
        return Err("OpenSSL's public key imported as private".into());
    };
    ensure_eq!(
        hex_of(&public.bytes),
        OPENSSL_PUBLIC_HEX.to_owned(),
        "OpenSSL public key bytes"
    );
    let Key::Private(pair) = c
        .import_key_pem(OPENSSL_PRIVATE_PEM)
        .ctx("import an OpenSSL PKCS#8 v1 private key")?
    else {
        return Err("OpenSSL's private key imported as public".into());
    };
    ensure_eq!(
        pair.public_key,
        public,
        "the public key derived from OpenSSL's private key"
    );
    let m = package("ossl/web@1.0.0", &[]);
    let sig = c
        .sign(&m, &pair.private_key)
        .await
        .ctx("sign with the OpenSSL key")?;
    ensure!(
        verify(c, &m, &sig).await?.is_valid(),
        "a signature by the OpenSSL key does not verify"
    );
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn garbage_pem(c: &dyn CryptoVerifier) -> CheckResult {
    let truncated = &OPENSSL_PRIVATE_PEM[..40];
    let body_cut =
        OPENSSL_PUBLIC_PEM.replace("MCowBQYDK2VwAyEAXU7pdMd44Ze1xGAijUW3", "MCowBQYDK2VwAyEA");
    let cases: [(&str, &str); 8] = [
        ("empty", ""),
        ("whitespace", "  \n"),
        ("truncated", truncated),
        ("truncated body", &body_cut),
        ("binary", "\u{0}\u{1}\u{2}\u{fffd}\u{7f}"),
        (
            "wrong type",
            "-----BEGIN CERTIFICATE-----\nMCowBQYDK2VwAyEAXU7pdMd44Ze1xGAijUW3Tm12b5UaqX83rRmNKlDC/u8=\n-----END CERTIFICATE-----\n",
        ),
        ("RSA key", RSA_PUBLIC_PEM),
        (
            "not base64",
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        ),
    ];
    for (what, pem) in cases {
        match c.import_key_pem(pem) {
            Err(e) if e.kind() == ErrorKind::Invalid => {
                ensure!(
                    e.to_string().len() > 20,
                    "the error for {what} PEM says too little: {e}"
                );
            }
            other => {
                return Err(format!(
                    "importing {what} PEM: expected an Invalid error, got {other:?}"
                ));
            }
        }
    }
    Ok(())
}
