//! Keys, key ids, signatures and the results of verifying them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::Digest;
use time::OffsetDateTime;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};
use crate::name::serde_via_display;

/// A signature algorithm.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// Ed25519 (RFC 8032): 32-byte public keys, 64-byte signatures.
    #[default]
    Ed25519,
}

impl SignatureAlgorithm {
    /// Public key length in bytes.
    pub fn public_key_len(self) -> usize {
        32
    }

    /// Signature length in bytes.
    pub fn signature_len(self) -> usize {
        64
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ed25519")
    }
}

/// A public key: the raw key bytes of its algorithm (32 bytes for Ed25519).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublicKey {
    /// The algorithm.
    pub algorithm: SignatureAlgorithm,
    /// The raw key bytes.
    #[serde(with = "hex")]
    pub bytes: Vec<u8>,
}

impl PublicKey {
    /// An Ed25519 public key; the bytes must be 32 long.
    pub fn ed25519(bytes: impl Into<Vec<u8>>) -> Result<Self> {
        let bytes = bytes.into();
        let algorithm = SignatureAlgorithm::Ed25519;
        if bytes.len() != algorithm.public_key_len() {
            return Err(Error::invalid(
                "public key",
                hex::encode(&bytes),
                format!("an Ed25519 public key is 32 bytes, got {}", bytes.len()),
            ));
        }
        Ok(PublicKey { algorithm, bytes })
    }

    /// The key id: the first 16 bytes of SHA-256 of the raw public key.
    pub fn key_id(&self) -> KeyId {
        let digest = sha2::Sha256::digest(&self.bytes);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        KeyId(id)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.algorithm, self.key_id())
    }
}

/// A private key in PKCS#8 DER form. Zeroized on drop; `Debug` never prints the material.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey {
    #[zeroize(skip)]
    algorithm: SignatureAlgorithm,
    pkcs8_der: Vec<u8>,
}

impl PrivateKey {
    /// Wraps PKCS#8 DER bytes. Crypto backends parse and check them when they use the key.
    pub fn from_pkcs8_der(algorithm: SignatureAlgorithm, pkcs8_der: Vec<u8>) -> Self {
        PrivateKey {
            algorithm,
            pkcs8_der,
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The PKCS#8 DER bytes. Handle with care.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8_der
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.algorithm)
    }
}

/// A private key with its public key.
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// The public half.
    pub public_key: PublicKey,
    /// The private half.
    pub private_key: PrivateKey,
}

/// A key read from PEM: public (`BEGIN PUBLIC KEY`) or private (`BEGIN PRIVATE KEY`).
#[derive(Clone, Debug)]
pub enum Key {
    /// A SubjectPublicKeyInfo public key.
    Public(PublicKey),
    /// A PKCS#8 private key, with its public key.
    Private(KeyPair),
}

/// A key id: the first 16 bytes of SHA-256 of the raw public key, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let mut id = [0u8; 16];
        hex::decode_to_slice(s, &mut id)
            .map_err(|_| Error::invalid("key id", s, "must be 32 hexadecimal digits"))?;
        Ok(KeyId(id))
    }
}

serde_via_display!(KeyId);

/// A detached signature over a package's signing payload, with the key that made it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's public key (its algorithm is the signature's algorithm).
    pub public_key: PublicKey,
    /// The raw signature bytes (64 for Ed25519).
    #[serde(with = "hex")]
    pub bytes: Vec<u8>,
}

impl Signature {
    /// The algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.public_key.algorithm
    }

    /// The signer's key id.
    pub fn key_id(&self) -> KeyId {
        self.public_key.key_id()
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({} by {})", self.algorithm(), self.key_id())
    }
}

/// How much a trusted key is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrustLevel {
    /// Known but not vouched for: packages verify, callers may warn.
    Marginal,
    /// Trusted to publish.
    Full,
    /// The operator's own keys.
    Ultimate,
}

impl fmt::Display for TrustLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrustLevel::Marginal => "marginal",
            TrustLevel::Full => "full",
            TrustLevel::Ultimate => "ultimate",
        })
    }
}

/// The outcome of checking a signature's mathematics (trust is a separate question).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum VerificationResult {
    /// The signature is valid for this payload and key.
    Valid {
        /// The signer's key id.
        key_id: KeyId,
    },
    /// The signature does not match the payload and key: the metadata was changed after
    /// signing, or the signature was made by another key.
    Mismatch {
        /// The key id the signature claims.
        key_id: KeyId,
    },
    /// The signature or key is not well-formed (wrong length, unsupported algorithm, bad point).
    Malformed {
        /// The key id the signature claims.
        key_id: KeyId,
        /// What is wrong.
        reason: String,
    },
}

impl VerificationResult {
    /// Whether the signature verified.
    pub fn is_valid(&self) -> bool {
        matches!(self, VerificationResult::Valid { .. })
    }

    /// The key id concerned.
    pub fn key_id(&self) -> KeyId {
        match self {
            VerificationResult::Valid { key_id }
            | VerificationResult::Mismatch { key_id }
            | VerificationResult::Malformed { key_id, .. } => *key_id,
        }
    }
}

impl fmt::Display for VerificationResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerificationResult::Valid { key_id } => write!(f, "valid signature by key {key_id}"),
            VerificationResult::Mismatch { key_id } => write!(
                f,
                "signature by key {key_id} does not match the package metadata (tampered metadata or wrong key)"
            ),
            VerificationResult::Malformed { key_id, reason } => {
                write!(f, "malformed signature by key {key_id}: {reason}")
            }
        }
    }
}

/// Whether a key is trusted, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TrustResult {
    /// The key is in the trust store and not revoked.
    Trusted {
        /// The key id.
        key_id: KeyId,
        /// Its trust level.
        level: TrustLevel,
        /// When it was added.
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
    },
    /// The key is not in the trust store.
    Unknown {
        /// The key id.
        key_id: KeyId,
    },
    /// The key was revoked. Revocation wins over trust and is permanent.
    Revoked {
        /// The key id.
        key_id: KeyId,
        /// Why it was revoked.
        reason: String,
        /// When it was revoked.
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

impl TrustResult {
    /// Whether the key may be relied on.
    pub fn is_trusted(&self) -> bool {
        matches!(self, TrustResult::Trusted { .. })
    }
}

impl fmt::Display for TrustResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustResult::Trusted { key_id, level, .. } => {
                write!(f, "key {key_id} is trusted ({level})")
            }
            TrustResult::Unknown { key_id } => write!(f, "key {key_id} is not trusted"),
            TrustResult::Revoked { key_id, reason, .. } => {
                write!(f, "key {key_id} was revoked: {reason}")
            }
        }
    }
}

/// An entry of a trust store, as listed by [`crate::CryptoVerifier::trusted_keys`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrustedKey {
    /// The key.
    pub public_key: PublicKey,
    /// Its current trust (a revoked key is listed as revoked).
    pub trust: TrustResult,
}

impl TrustedKey {
    /// A key and its trust.
    pub fn new(public_key: PublicKey, trust: TrustResult) -> Self {
        TrustedKey { public_key, trust }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_debug_is_redacted() {
        let key = PrivateKey::from_pkcs8_der(SignatureAlgorithm::Ed25519, vec![0xAB; 48]);
        let shown = format!("{key:?}");
        assert!(!shown.to_lowercase().contains("ab, "), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn key_id_is_sha256_prefix() {
        let key = PublicKey::ed25519([0u8; 32]).unwrap();
        // SHA-256 of 32 zero bytes starts 66687aadf862bd776c8fc18b8e9f8e20.
        assert_eq!(key.key_id().to_string(), "66687aadf862bd776c8fc18b8e9f8e20");
        assert_eq!(
            key.key_id().to_string().parse::<KeyId>().unwrap(),
            key.key_id()
        );
    }
}
