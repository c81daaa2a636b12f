//! The `CryptoVerifier` trait: authenticity and integrity.

use async_trait::async_trait;

use crate::error::Result;
use crate::hash::{ContentHash, HashAlgorithm};
use crate::keys::{
    Key, KeyId, KeyPair, PrivateKey, PublicKey, Signature, TrustLevel, TrustResult, TrustedKey,
    VerificationResult,
};
use crate::metadata::PackageMetadata;

/// Signing, verification, checksums and a trust store.
///
/// Signatures are over [`crate::signing_payload`] of the metadata. Keys are exchanged as PEM in
/// the standard formats: PKCS#8 (`BEGIN PRIVATE KEY`) for private keys and SubjectPublicKeyInfo
/// (`BEGIN PUBLIC KEY`) for public keys, so keys made by `openssl genpkey -algorithm ed25519`
/// import and exported keys load in OpenSSL.
#[async_trait]
pub trait CryptoVerifier: Send + Sync {
    /// A fresh key pair from a secure random source.
    async fn generate_keypair(&self) -> Result<KeyPair>;

    /// Signs the signing payload of `metadata`. `Invalid` if the private key cannot be parsed.
    async fn sign(&self, metadata: &PackageMetadata, private_key: &PrivateKey)
    -> Result<Signature>;

    /// Checks `signature` over the signing payload of `metadata` (not trust: see
    /// [`CryptoVerifier::verify_trust`]). A bad signature is an `Ok` result saying why, not an
    /// error.
    async fn verify_signature(
        &self,
        metadata: &PackageMetadata,
        signature: &Signature,
    ) -> Result<VerificationResult>;

    /// The digest of `bytes`. `Invalid` for an algorithm the backend does not implement.
    async fn checksum(&self, bytes: &[u8], algorithm: HashAlgorithm) -> Result<ContentHash>;

    /// Checks `bytes` against `expected` in constant time. `Integrity` (naming both digests) on
    /// mismatch. Provided: [`CryptoVerifier::checksum`] with the expected algorithm, compared
    /// with `ContentHash`'s constant-time equality.
    async fn verify_checksum(&self, bytes: &[u8], expected: &ContentHash) -> Result<()> {
        crate::provided::verify_checksum(self, bytes, expected).await
    }

    /// Trusts `key` at `level`. Re-adding changes the level. `Signature` if the key is revoked
    /// (revocation is permanent).
    async fn add_trusted_key(&self, key: &PublicKey, level: TrustLevel) -> Result<()>;

    /// Revokes a key (known or not) with a reason. Revocation wins over trust and is permanent;
    /// revoking twice keeps the first revocation.
    async fn revoke_key(&self, key_id: &KeyId, reason: &str) -> Result<()>;

    /// Whether a key is revoked.
    async fn is_revoked(&self, key_id: &KeyId) -> Result<bool>;

    /// Whether a key is trusted, and why (trusted at a level, unknown, or revoked).
    async fn verify_trust(&self, key_id: &KeyId) -> Result<TrustResult>;

    /// Every key in the trust store, trusted or revoked, by key id.
    async fn trusted_keys(&self) -> Result<Vec<TrustedKey>>;

    /// Reads a PEM public (SubjectPublicKeyInfo) or private (PKCS#8 v1 or v2) key. `Invalid`
    /// with a clear message for anything else: empty, truncated, binary, wrong type, RSA.
    fn import_key_pem(&self, pem: &str) -> Result<Key>;

    /// Writes a key as PEM: SubjectPublicKeyInfo for public keys, PKCS#8 for private keys.
    fn export_key_pem(&self, key: &Key) -> Result<String>;
}
