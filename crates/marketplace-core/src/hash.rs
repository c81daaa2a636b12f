//! Content hashes: the address of an archive in a package store.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use sha2::Digest;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::name::serde_via_display;

/// A digest algorithm for content addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256 (the default): 32-byte digests, text prefix `sha256:`.
    #[default]
    Sha256,
    /// SHA-512: 64-byte digests, text prefix `sha512:`.
    Sha512,
    /// BLAKE3: 32-byte digests, text prefix `blake3:`. Parsed and compared here; computing it is
    /// up to a crypto backend that supports it ([`ContentHasher`] refuses it with `Invalid`).
    Blake3,
}

impl HashAlgorithm {
    /// The hex digits a listing prefix asks of this algorithm's addresses: `sha256:ab` → `ab`,
    /// `sha2` or `` (a prefix of `sha256:` itself) → `` (every address), `None` when no address
    /// of this algorithm can start with `prefix` (as `PackageStore::list` reads its prefix).
    pub fn hex_prefix(self, prefix: &str) -> Option<&str> {
        let full = format!("{}:", self.as_str());
        match prefix.strip_prefix(full.as_str()) {
            Some(hex) => Some(hex),
            None if full.starts_with(prefix) => Some(""),
            None => None,
        }
    }

    /// The text prefix (`sha256`, `sha512`, `blake3`).
    pub fn as_str(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha512 => "sha512",
            HashAlgorithm::Blake3 => "blake3",
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 | HashAlgorithm::Blake3 => 32,
            HashAlgorithm::Sha512 => 64,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HashAlgorithm {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sha256" => Ok(HashAlgorithm::Sha256),
            "sha512" => Ok(HashAlgorithm::Sha512),
            "blake3" => Ok(HashAlgorithm::Blake3),
            _ => Err(Error::invalid(
                "hash algorithm",
                s,
                "must be one of sha256, sha512, blake3",
            )),
        }
    }
}

/// A content address: an algorithm and a digest. Text form `sha256:<lowercase hex>`.
///
/// Equality is constant-time in the digest bytes, so comparing an attacker-chosen digest with a
/// stored one leaks nothing through timing.
#[derive(Clone)]
pub struct ContentHash {
    algorithm: HashAlgorithm,
    digest: Vec<u8>,
}

impl ContentHash {
    /// A hash from its parts; the digest must have the algorithm's length.
    pub fn new(algorithm: HashAlgorithm, digest: impl Into<Vec<u8>>) -> Result<Self> {
        let digest = digest.into();
        if digest.len() != algorithm.digest_len() {
            return Err(Error::invalid(
                "content hash",
                hex::encode(&digest),
                format!(
                    "a {algorithm} digest must be {} bytes, got {}",
                    algorithm.digest_len(),
                    digest.len()
                ),
            ));
        }
        Ok(ContentHash { algorithm, digest })
    }

    /// SHA-256 of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Self {
        ContentHash {
            algorithm: HashAlgorithm::Sha256,
            digest: sha2::Sha256::digest(bytes).to_vec(),
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The digest bytes.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// The digest as lowercase hex, without the algorithm prefix.
    pub fn hex(&self) -> String {
        hex::encode(&self.digest)
    }
}

impl PartialEq for ContentHash {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && bool::from(self.digest.ct_eq(&other.digest))
    }
}

impl Eq for ContentHash {}

impl Hash for ContentHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.algorithm.hash(state);
        self.digest.hash(state);
    }
}

impl PartialOrd for ContentHash {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ContentHash {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.algorithm.as_str(), &self.digest).cmp(&(other.algorithm.as_str(), &other.digest))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, hex::encode(&self.digest))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

impl FromStr for ContentHash {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let field = "content hash";
        let Some((algorithm, digest)) = s.split_once(':') else {
            return Err(Error::invalid(
                field,
                s,
                "must have the form <algorithm>:<lowercase hex>, e.g. sha256:9f86d0…",
            ));
        };
        let algorithm: HashAlgorithm = algorithm.parse()?;
        if let Some(bad) = digest.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(Error::invalid(
                field,
                s,
                format!("the digest must be lowercase hex (found {bad:?})"),
            ));
        }
        if digest.len() != algorithm.digest_len() * 2 {
            return Err(Error::invalid(
                field,
                s,
                format!(
                    "a {algorithm} digest has {} hex digits, got {}",
                    algorithm.digest_len() * 2,
                    digest.len()
                ),
            ));
        }
        let digest = hex::decode(digest).map_err(|e| Error::invalid(field, s, e.to_string()))?;
        ContentHash::new(algorithm, digest)
    }
}

serde_via_display!(ContentHash);

/// Incremental hashing for stores and clients that hash while they stream.
///
/// Supports SHA-256 and SHA-512; BLAKE3 is refused with `Invalid` (a crypto backend may offer it).
#[derive(Clone)]
pub struct ContentHasher(HasherState);

#[derive(Clone)]
enum HasherState {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl ContentHasher {
    /// A hasher for `algorithm`.
    pub fn new(algorithm: HashAlgorithm) -> Result<Self> {
        match algorithm {
            HashAlgorithm::Sha256 => Ok(ContentHasher(HasherState::Sha256(sha2::Sha256::new()))),
            HashAlgorithm::Sha512 => Ok(ContentHasher(HasherState::Sha512(sha2::Sha512::new()))),
            HashAlgorithm::Blake3 => Err(Error::invalid(
                "hash algorithm",
                "blake3",
                "marketplace-core computes sha256 and sha512 only; use a crypto backend with BLAKE3 support",
            )),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            HasherState::Sha256(h) => h.update(bytes),
            HasherState::Sha512(h) => h.update(bytes),
        }
    }

    /// The final hash.
    pub fn finish(self) -> ContentHash {
        let (algorithm, digest) = match self.0 {
            HasherState::Sha256(h) => (HashAlgorithm::Sha256, h.finalize().to_vec()),
            HasherState::Sha512(h) => (HashAlgorithm::Sha512, h.finalize().to_vec()),
        };
        ContentHash { algorithm, digest }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        let h = ContentHash::sha256(b"abc");
        assert_eq!(
            h.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut inc = ContentHasher::new(HashAlgorithm::Sha256).unwrap();
        inc.update(b"a");
        inc.update(b"bc");
        assert_eq!(inc.finish(), h);
    }
}
