//! `CryptoVerifier` on ring: Ed25519 signing and verification over the core's signing payload,
//! SHA-256/512 checksums, standard PEM keys, and a trust store persisted atomically.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod pem;
mod trust;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use marketplace_core::{
    ContentHash, CryptoVerifier, Error, HashAlgorithm, Key, KeyId, KeyPair, PackageMetadata,
    PrivateKey, PublicKey, Result, Signature, SignatureAlgorithm, SignatureFailure, TrustLevel,
    TrustResult, TrustedKey, VerificationResult, signing_payload,
};
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

use crate::error::RingError;
use crate::trust::TrustStore;

/// Signing, verification, checksums and a trust store, on ring.
///
/// Open it in memory ([`RingCryptoVerifier::in_memory`]) or backed by a trust store file
/// ([`RingCryptoVerifier::open`]), which survives restarts and crashes mid-write.
pub struct RingCryptoVerifier {
    rng: SystemRandom,
    trust: Mutex<TrustStore>,
    /// The last signing key, parsed: parsing a PKCS#8 key costs as much as a signature, and
    /// batch publishes sign many packages with one key. Keyed by the SHA-256 of the key's DER
    /// (compared in constant time).
    signer: Mutex<Option<(ContentHash, Arc<Ed25519KeyPair>, PublicKey)>>,
}

impl std::fmt::Debug for RingCryptoVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingCryptoVerifier")
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl RingCryptoVerifier {
    /// A verifier whose trust store lives in memory only.
    pub fn in_memory() -> Self {
        RingCryptoVerifier {
            rng: SystemRandom::new(),
            trust: Mutex::new(TrustStore::default()),
            signer: Mutex::new(None),
        }
    }

    /// A verifier whose trust store is the JSON file at `path`, created (with its parent
    /// directories) if missing. Temporary files left by a crash mid-write are removed.
    ///
    /// Errors: `Backend` naming the path if it cannot be read or is not a trust store.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let store = TrustStore::open(path)
            .map_err(|e| e.during(format!("open the trust store {}", path.display())))?;
        Ok(RingCryptoVerifier {
            rng: SystemRandom::new(),
            trust: Mutex::new(store),
            signer: Mutex::new(None),
        })
    }

    fn trust(&self) -> MutexGuard<'_, TrustStore> {
        // The store is only replaced after a successful write, so a poisoned lock still holds
        // a consistent state.
        self.trust
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The parsed signing key for `private_key`, from the one-entry cache when it matches.
    fn signer(&self, private_key: &PrivateKey) -> Result<(Arc<Ed25519KeyPair>, PublicKey)> {
        let fingerprint = ContentHash::sha256(private_key.pkcs8_der());
        let mut cache = self
            .signer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((cached, pair, public)) = cache.as_ref()
            && *cached == fingerprint
        {
            return Ok((Arc::clone(pair), public.clone()));
        }
        let (ring_pair, pair) = pem::key_pair(private_key.pkcs8_der())?;
        let ring_pair = Arc::new(ring_pair);
        *cache = Some((fingerprint, Arc::clone(&ring_pair), pair.public_key.clone()));
        Ok((ring_pair, pair.public_key))
    }

    fn store_name(store: &TrustStore) -> String {
        store.path().map_or_else(
            || "the in-memory trust store".to_owned(),
            |p| format!("the trust store {}", p.display()),
        )
    }
}

/// Signs `payload` with a PKCS#8 Ed25519 key; the primitive behind [`CryptoVerifier::sign`].
pub fn sign_payload(payload: &[u8], private_key: &PrivateKey) -> Result<Signature> {
    let (ring_pair, pair) = pem::key_pair(private_key.pkcs8_der())?;
    Ok(Signature {
        public_key: pair.public_key,
        bytes: ring_pair.sign(payload).as_ref().to_vec(),
    })
}

/// Checks `signature` over `payload`; the primitive behind [`CryptoVerifier::verify_signature`].
pub fn verify_payload(payload: &[u8], signature: &Signature) -> VerificationResult {
    let key_id = signature.key_id();
    if signature.algorithm() != SignatureAlgorithm::Ed25519 {
        return VerificationResult::Malformed {
            key_id,
            reason: format!("the {} algorithm is not supported", signature.algorithm()),
        };
    }
    let key = &signature.public_key.bytes;
    if key.len() != 32 {
        return VerificationResult::Malformed {
            key_id,
            reason: format!("the Ed25519 public key is {} bytes, not 32", key.len()),
        };
    }
    if signature.bytes.len() != 64 {
        return VerificationResult::Malformed {
            key_id,
            reason: format!(
                "the Ed25519 signature is {} bytes, not 64",
                signature.bytes.len()
            ),
        };
    }
    match UnparsedPublicKey::new(&ED25519, key).verify(payload, &signature.bytes) {
        Ok(()) => VerificationResult::Valid { key_id },
        Err(_) => VerificationResult::Mismatch { key_id },
    }
}

/// The digest of `bytes` with ring.
pub fn digest(bytes: &[u8], algorithm: HashAlgorithm) -> Result<ContentHash> {
    let ring_algorithm = match algorithm {
        HashAlgorithm::Sha256 => &ring::digest::SHA256,
        HashAlgorithm::Sha512 => &ring::digest::SHA512,
        other => {
            return Err(Error::invalid(
                "hash algorithm",
                other.as_str(),
                "the ring backend computes sha256 and sha512",
            ));
        }
    };
    ContentHash::new(
        algorithm,
        ring::digest::digest(ring_algorithm, bytes)
            .as_ref()
            .to_vec(),
    )
}

#[async_trait]
impl CryptoVerifier for RingCryptoVerifier {
    async fn generate_keypair(&self) -> Result<KeyPair> {
        let document = ring::signature::Ed25519KeyPair::generate_pkcs8(&self.rng)
            .map_err(|_| RingError::Random.during("generate an Ed25519 key pair"))?;
        Ok(pem::key_pair(document.as_ref())?.1)
    }

    async fn sign(
        &self,
        metadata: &PackageMetadata,
        private_key: &PrivateKey,
    ) -> Result<Signature> {
        let (ring_pair, public_key) = self.signer(private_key)?;
        Ok(Signature {
            public_key,
            bytes: ring_pair.sign(&signing_payload(metadata)).as_ref().to_vec(),
        })
    }

    async fn verify_signature(
        &self,
        metadata: &PackageMetadata,
        signature: &Signature,
    ) -> Result<VerificationResult> {
        Ok(verify_payload(&signing_payload(metadata), signature))
    }

    async fn checksum(&self, bytes: &[u8], algorithm: HashAlgorithm) -> Result<ContentHash> {
        digest(bytes, algorithm)
    }

    async fn add_trusted_key(&self, key: &PublicKey, level: TrustLevel) -> Result<()> {
        let mut store = self.trust();
        let key_id = key.key_id();
        let added = store.trust(key, level).map_err(|e| {
            e.during(format!(
                "trust key {key_id} in {}",
                Self::store_name(&store)
            ))
        })?;
        if !added {
            return Err(Error::signature(
                format!("key {key_id}"),
                SignatureFailure::Revoked,
                "the key is revoked; revocation is permanent and cannot be undone by trusting it again",
            ));
        }
        Ok(())
    }

    async fn revoke_key(&self, key_id: &KeyId, reason: &str) -> Result<()> {
        let mut store = self.trust();
        store.revoke(key_id, reason).map_err(|e| {
            e.during(format!(
                "revoke key {key_id} in {}",
                Self::store_name(&store)
            ))
        })
    }

    async fn is_revoked(&self, key_id: &KeyId) -> Result<bool> {
        Ok(self.trust().is_revoked(key_id))
    }

    async fn verify_trust(&self, key_id: &KeyId) -> Result<TrustResult> {
        Ok(self.trust().verdict(key_id))
    }

    async fn trusted_keys(&self) -> Result<Vec<TrustedKey>> {
        Ok(self.trust().list())
    }

    fn import_key_pem(&self, pem: &str) -> Result<Key> {
        pem::import(pem)
    }

    fn export_key_pem(&self, key: &Key) -> Result<String> {
        pem::export(key)
    }
}
