//! Crypto verifiers with one defect each. The worst are consistent: a backend that signs and
//! verifies its own wrong payload verifies its own signatures, so only known answers, a
//! reference verifier and tampering with every signed field catch it.

use std::sync::Arc;

use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use marketplace_conformance::layer::{CryptoOverride, Layered};
use marketplace_conformance::{Capabilities, SuiteReport, crypto_suite};
use marketplace_core::{
    ContentHash, CryptoVerifier, Error, HashAlgorithm, PackageMetadata, PrivateKey, PublicKey,
    Result, Signature, TrustLevel, VerificationResult, async_trait, signing_payload,
};

use crate::common::defect;
use marketplace_conformance::reference::MemoryCryptoVerifier;

async fn crypto<O: CryptoOverride + 'static>(fault: O) -> SuiteReport {
    let inner: Arc<dyn CryptoVerifier> = Arc::new(MemoryCryptoVerifier::default());
    crypto_suite(
        &Layered::new(inner).with_override(fault),
        &Capabilities::default(),
    )
    .await
}

/// Signs and verifies its own payload, consistently: its signatures verify with itself.
struct OwnPayload(fn(&PackageMetadata) -> Vec<u8>);

#[async_trait]
impl CryptoOverride for OwnPayload {
    async fn sign(
        &self,
        _inner: &dyn CryptoVerifier,
        metadata: &PackageMetadata,
        private_key: &PrivateKey,
    ) -> Result<Signature> {
        let signing = SigningKey::from_pkcs8_der(private_key.pkcs8_der())
            .map_err(|e| Error::invalid("private key", "<redacted>", e.to_string()))?;
        Ok(Signature {
            public_key: PublicKey::ed25519(signing.verifying_key().to_bytes().to_vec())?,
            bytes: signing.sign(&(self.0)(metadata)).to_bytes().to_vec(),
        })
    }

    async fn verify_signature(
        &self,
        inner: &dyn CryptoVerifier,
        metadata: &PackageMetadata,
        signature: &Signature,
    ) -> Result<VerificationResult> {
        let key_id = signature.key_id();
        let (Ok(key), Ok(sig)) = (
            <[u8; 32]>::try_from(signature.public_key.bytes.as_slice()),
            ed25519_dalek::Signature::from_slice(&signature.bytes),
        ) else {
            return inner.verify_signature(metadata, signature).await;
        };
        let Ok(key) = VerifyingKey::from_bytes(&key) else {
            return inner.verify_signature(metadata, signature).await;
        };
        Ok(match key.verify_strict(&(self.0)(metadata), &sig) {
            Ok(()) => VerificationResult::Valid { key_id },
            Err(_) => VerificationResult::Mismatch { key_id },
        })
    }
}

defect!(
    signs_without_the_domain_separator,
    crypto(OwnPayload(|m| signing_payload(m)[31..].to_vec())),
    [
        "crypto::signature_known_answers",
        "crypto::signatures_verify_with_a_reference_verifier"
    ]
);
defect!(
    signs_a_hash_of_the_payload,
    crypto(OwnPayload(|m| ContentHash::sha256(&signing_payload(m))
        .digest()
        .to_vec())),
    [
        "crypto::signature_known_answers",
        "crypto::signatures_verify_with_a_reference_verifier"
    ]
);

/// A payload that leaves out one signed field, made from metadata with that field reset.
fn without(mut m: PackageMetadata, reset: fn(&mut PackageMetadata)) -> Vec<u8> {
    reset(&mut m);
    signing_payload(&m)
}

defect!(
    the_dependencies_are_not_signed,
    crypto(OwnPayload(|m| without(m.clone(), |m| m
        .dependencies
        .clear()))),
    ["crypto::tampered_metadata_fails"]
);
defect!(
    build_metadata_is_not_signed,
    crypto(OwnPayload(|m| without(m.clone(), |m| {
        m.id.version.build = marketplace_core::semver::BuildMetadata::EMPTY;
    }))),
    ["crypto::tampered_metadata_fails"]
);
defect!(
    timestamps_signed_to_the_second,
    crypto(OwnPayload(|m| without(m.clone(), |m| {
        m.published_at = m
            .published_at
            .replace_nanosecond(0)
            .expect("0 is a nanosecond");
    }))),
    ["crypto::tampered_metadata_fails"]
);
defect!(
    authors_signed_as_a_set,
    crypto(OwnPayload(|m| without(m.clone(), |m| m.authors.sort()))),
    ["crypto::tampered_metadata_fails"]
);
defect!(
    the_checksum_signed_without_its_algorithm,
    crypto(OwnPayload(|m| without(m.clone(), |m| {
        m.checksum = ContentHash::new(HashAlgorithm::Sha256, m.checksum.digest().to_vec())
            .unwrap_or_else(|_| m.checksum.clone());
    }))),
    ["crypto::tampered_metadata_fails"]
);

/// Every key is trusted fully, whatever level it was given.
struct TrustCollapsed;

#[async_trait]
impl CryptoOverride for TrustCollapsed {
    async fn add_trusted_key(
        &self,
        inner: &dyn CryptoVerifier,
        key: &PublicKey,
        _level: TrustLevel,
    ) -> Result<()> {
        inner.add_trusted_key(key, TrustLevel::Full).await
    }
}
defect!(
    trust_levels_collapsed_to_full,
    crypto(TrustCollapsed),
    ["crypto::trust_store_levels"]
);

/// SHA-256 whatever algorithm was asked for.
struct ChecksumIgnoresAlgorithm;

#[async_trait]
impl CryptoOverride for ChecksumIgnoresAlgorithm {
    async fn checksum(
        &self,
        inner: &dyn CryptoVerifier,
        bytes: &[u8],
        _algorithm: HashAlgorithm,
    ) -> Result<ContentHash> {
        inner.checksum(bytes, HashAlgorithm::Sha256).await
    }
}
defect!(
    checksum_ignores_the_algorithm,
    crypto(ChecksumIgnoresAlgorithm),
    ["crypto::checksums_known_answers"]
);

/// An overridden `verify_checksum` that compares the first 16 bytes of the digest.
struct ChecksumComparesAPrefix;

#[async_trait]
impl CryptoOverride for ChecksumComparesAPrefix {
    async fn verify_checksum(
        &self,
        inner: &dyn CryptoVerifier,
        bytes: &[u8],
        expected: &ContentHash,
    ) -> Result<()> {
        let actual = inner.checksum(bytes, expected.algorithm()).await?;
        if actual.digest()[..16] != expected.digest()[..16] {
            return Err(Error::integrity("bytes", expected, actual));
        }
        Ok(())
    }
}
defect!(
    verify_checksum_compares_a_prefix,
    crypto(ChecksumComparesAPrefix),
    ["crypto::verify_checksum_mismatch_is_integrity"]
);

/// An overridden `verify_checksum` that compares digests and forgets the algorithm.
struct ChecksumIgnoresExpectedAlgorithm;

#[async_trait]
impl CryptoOverride for ChecksumIgnoresExpectedAlgorithm {
    async fn verify_checksum(
        &self,
        inner: &dyn CryptoVerifier,
        bytes: &[u8],
        expected: &ContentHash,
    ) -> Result<()> {
        let algorithm = match expected.digest().len() {
            64 => HashAlgorithm::Sha512,
            _ => HashAlgorithm::Sha256,
        };
        let actual = inner.checksum(bytes, algorithm).await?;
        if actual.digest() != expected.digest() {
            return Err(Error::integrity("bytes", expected, actual));
        }
        Ok(())
    }
}
defect!(
    verify_checksum_ignores_the_algorithm,
    crypto(ChecksumIgnoresExpectedAlgorithm),
    ["crypto::verify_checksum_mismatch_is_integrity"]
);

/// Revocations kept in memory: after a restart a revoked key is trusted again.
#[derive(Clone)]
struct RevocationsInMemory;

#[async_trait]
impl CryptoOverride for RevocationsInMemory {
    async fn verify_trust(
        &self,
        inner: &dyn CryptoVerifier,
        key_id: &marketplace_core::KeyId,
    ) -> Result<marketplace_core::TrustResult> {
        match inner.verify_trust(key_id).await? {
            marketplace_core::TrustResult::Revoked { key_id, .. } => {
                Ok(marketplace_core::TrustResult::Unknown { key_id })
            }
            other => Ok(other),
        }
    }
    async fn is_revoked(
        &self,
        _inner: &dyn CryptoVerifier,
        _key_id: &marketplace_core::KeyId,
    ) -> Result<bool> {
        Ok(false)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_lost_on_restart() {
    let inner: Arc<dyn CryptoVerifier> = Arc::new(MemoryCryptoVerifier::default());
    let storage = Arc::clone(&inner);
    let caps = Capabilities::default().with_crypto_reopen(move || {
        Ok(
            Arc::new(Layered::new(Arc::clone(&storage)).with_override(RevocationsInMemory))
                as Arc<dyn CryptoVerifier>,
        )
    });
    let report = crypto_suite(&Layered::new(inner), &caps).await;
    crate::common::assert_caught(&report, &["crypto::trust_survives_reopening"]);
}
