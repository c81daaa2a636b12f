//! `MemoryCryptoVerifier`: the reference `CryptoVerifier`, on ed25519-dalek (the Ed25519 the
//! crypto suite also checks backends' signatures with), with an in-memory trust store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::lock;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use marketplace_core::time::OffsetDateTime;
use marketplace_core::{
    ContentHash, ContentHasher, CryptoVerifier, Error, HashAlgorithm, Key, KeyId, KeyPair,
    PackageMetadata, PrivateKey, PublicKey, Result, Signature, SignatureAlgorithm, TrustLevel,
    TrustResult, TrustedKey, VerificationResult, async_trait, signing_payload,
};

#[derive(Default)]
struct Entry {
    public_key: Option<PublicKey>,
    trusted: Option<(TrustLevel, OffsetDateTime)>,
    revoked: Option<(String, OffsetDateTime)>,
}

/// The reference [`CryptoVerifier`]: Ed25519 by ed25519-dalek, SHA-256 and SHA-512 by
/// `marketplace-core`, and a trust store in memory.
#[derive(Default)]
pub struct MemoryCryptoVerifier {
    trust: Mutex<BTreeMap<KeyId, Entry>>,
}

fn invalid_key(e: impl std::fmt::Display) -> Error {
    Error::invalid(
        "private key",
        "<redacted>",
        format!("not an Ed25519 PKCS#8 key ({e})"),
    )
}

fn pair_of(signing: &SigningKey) -> Result<KeyPair> {
    let der = signing.to_pkcs8_der().map_err(invalid_key)?;
    Ok(KeyPair {
        public_key: PublicKey::ed25519(signing.verifying_key().to_bytes().to_vec())?,
        private_key: PrivateKey::from_pkcs8_der(
            SignatureAlgorithm::Ed25519,
            der.as_bytes().to_vec(),
        ),
    })
}

fn trust_of(key_id: KeyId, entry: Option<&Entry>) -> TrustResult {
    match entry {
        Some(Entry {
            revoked: Some((reason, at)),
            ..
        }) => TrustResult::Revoked {
            key_id,
            reason: reason.clone(),
            at: *at,
        },
        Some(Entry {
            trusted: Some((level, since)),
            ..
        }) => TrustResult::Trusted {
            key_id,
            level: *level,
            since: *since,
        },
        _ => TrustResult::Unknown { key_id },
    }
}

#[async_trait]
impl CryptoVerifier for MemoryCryptoVerifier {
    async fn generate_keypair(&self) -> Result<KeyPair> {
        pair_of(&SigningKey::generate(&mut rand_core::OsRng))
    }

    async fn sign(
        &self,
        metadata: &PackageMetadata,
        private_key: &PrivateKey,
    ) -> Result<Signature> {
        let signing = SigningKey::from_pkcs8_der(private_key.pkcs8_der()).map_err(invalid_key)?;
        Ok(Signature {
            public_key: PublicKey::ed25519(signing.verifying_key().to_bytes().to_vec())?,
            bytes: signing.sign(&signing_payload(metadata)).to_bytes().to_vec(),
        })
    }

    async fn verify_signature(
        &self,
        metadata: &PackageMetadata,
        signature: &Signature,
    ) -> Result<VerificationResult> {
        let key_id = signature.key_id();
        let malformed = |reason: String| Ok(VerificationResult::Malformed { key_id, reason });
        let Ok(key_bytes) = <[u8; 32]>::try_from(signature.public_key.bytes.as_slice()) else {
            return malformed(format!(
                "public key is {} bytes, not 32",
                signature.public_key.bytes.len()
            ));
        };
        let key = match VerifyingKey::from_bytes(&key_bytes) {
            Ok(key) => key,
            Err(e) => return malformed(format!("public key is not a curve point ({e})")),
        };
        let sig = match ed25519_dalek::Signature::from_slice(&signature.bytes) {
            Ok(sig) => sig,
            Err(e) => {
                return malformed(format!(
                    "signature is {} bytes, not 64 ({e})",
                    signature.bytes.len()
                ));
            }
        };
        Ok(match key.verify_strict(&signing_payload(metadata), &sig) {
            Ok(()) => VerificationResult::Valid { key_id },
            Err(_) => VerificationResult::Mismatch { key_id },
        })
    }

    async fn checksum(&self, bytes: &[u8], algorithm: HashAlgorithm) -> Result<ContentHash> {
        let mut hasher = ContentHasher::new(algorithm)?;
        hasher.update(bytes);
        Ok(hasher.finish())
    }

    async fn add_trusted_key(&self, key: &PublicKey, level: TrustLevel) -> Result<()> {
        let mut trust = lock(&self.trust);
        let entry = trust.entry(key.key_id()).or_default();
        if entry.revoked.is_some() {
            return Err(Error::signature(
                format!("key {}", key.key_id()),
                marketplace_core::SignatureFailure::Revoked,
                "the key is revoked and cannot be trusted again",
            ));
        }
        entry.public_key = Some(key.clone());
        entry.trusted = Some((level, OffsetDateTime::now_utc()));
        Ok(())
    }

    async fn revoke_key(&self, key_id: &KeyId, reason: &str) -> Result<()> {
        let mut trust = lock(&self.trust);
        let entry = trust.entry(*key_id).or_default();
        entry
            .revoked
            .get_or_insert_with(|| (reason.to_owned(), OffsetDateTime::now_utc()));
        Ok(())
    }

    async fn is_revoked(&self, key_id: &KeyId) -> Result<bool> {
        let trust = lock(&self.trust);
        Ok(trust.get(key_id).is_some_and(|e| e.revoked.is_some()))
    }

    async fn verify_trust(&self, key_id: &KeyId) -> Result<TrustResult> {
        let trust = lock(&self.trust);
        Ok(trust_of(*key_id, trust.get(key_id)))
    }

    async fn trusted_keys(&self) -> Result<Vec<TrustedKey>> {
        let trust = lock(&self.trust);
        Ok(trust
            .iter()
            .filter_map(|(id, e)| {
                e.public_key
                    .clone()
                    .map(|k| TrustedKey::new(k, trust_of(*id, Some(e))))
            })
            .collect())
    }

    fn import_key_pem(&self, pem: &str) -> Result<Key> {
        let field = "PEM key";
        let shown: String = pem.chars().take(40).collect();
        if pem.contains("-----BEGIN PUBLIC KEY-----") {
            let key = VerifyingKey::from_public_key_pem(pem).map_err(|e| {
                Error::invalid(
                    field,
                    &shown,
                    format!("not an Ed25519 SubjectPublicKeyInfo public key ({e})"),
                )
            })?;
            return Ok(Key::Public(PublicKey::ed25519(key.to_bytes().to_vec())?));
        }
        if pem.contains("-----BEGIN PRIVATE KEY-----") {
            let key = SigningKey::from_pkcs8_pem(pem).map_err(|e| {
                Error::invalid(
                    field,
                    "<redacted>",
                    format!("not an Ed25519 PKCS#8 private key ({e})"),
                )
            })?;
            return Ok(Key::Private(pair_of(&key)?));
        }
        Err(Error::invalid(
            field,
            &shown,
            "expected a PEM block BEGIN PUBLIC KEY or BEGIN PRIVATE KEY",
        ))
    }

    fn export_key_pem(&self, key: &Key) -> Result<String> {
        let line = ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF;
        match key {
            Key::Public(public) => {
                let bytes = <[u8; 32]>::try_from(public.bytes.as_slice())
                    .map_err(|_| Error::invalid("public key", "", "must be 32 bytes"))?;
                let key = VerifyingKey::from_bytes(&bytes)
                    .map_err(|e| Error::invalid("public key", "", e.to_string()))?;
                key.to_public_key_pem(line)
                    .map_err(|e| Error::invalid("public key", "", e.to_string()))
            }
            Key::Private(pair) => {
                let key = SigningKey::from_pkcs8_der(pair.private_key.pkcs8_der())
                    .map_err(invalid_key)?;
                Ok(key.to_pkcs8_pem(line).map_err(invalid_key)?.to_string())
            }
        }
    }
}
