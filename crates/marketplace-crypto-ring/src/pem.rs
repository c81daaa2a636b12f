//! Keys in the standard formats: SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`) for public keys and
//! PKCS#8 v1 or v2 (`BEGIN PRIVATE KEY`) for private keys, as OpenSSL reads and writes them.

use marketplace_core::{Error, Key, KeyPair, PrivateKey, PublicKey, Result, SignatureAlgorithm};
use pem_rfc7468::LineEnding;
use ring::signature::{Ed25519KeyPair, KeyPair as _};

/// The Ed25519 algorithm identifier, 1.3.101.112 (RFC 8410).
const ED25519_OID: &str = "1.3.101.112";

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo, followed by the 32 key bytes (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

const FIELD: &str = "PEM key";

fn invalid(shown: &str, rule: impl Into<String>) -> Error {
    Error::invalid(FIELD, shown, rule)
}

/// The DER prefix of an Ed25519 PKCS#8 v1 private key, followed by the 32-byte seed (RFC 8410).
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The key pair of a PKCS#8 document (v1 as OpenSSL writes it, or v2 with the public key).
///
/// The private key is kept in the PKCS#8 v1 form (RFC 8410), which every tool reads: OpenSSL 3
/// rejects the v2 documents ring generates.
pub(crate) fn key_pair(pkcs8_der: &[u8]) -> Result<(Ed25519KeyPair, KeyPair)> {
    let info = pkcs8::PrivateKeyInfo::try_from(pkcs8_der).map_err(|e| {
        invalid(
            "<redacted>",
            format!("the private key is not PKCS#8 DER ({e})"),
        )
    })?;
    let oid = info.algorithm.oid.to_string();
    if oid != ED25519_OID {
        return Err(invalid(
            "<redacted>",
            format!(
                "the private key is not Ed25519 (algorithm {oid}; only Ed25519, {ED25519_OID}, is supported)"
            ),
        ));
    }
    // CurvePrivateKey ::= OCTET STRING (32 bytes), itself inside the PKCS#8 OCTET STRING.
    let seed = match info.private_key {
        [0x04, 0x20, seed @ ..] if seed.len() == 32 => seed,
        _ => {
            return Err(invalid(
                "<redacted>",
                "the Ed25519 private key is not a 32-byte seed (RFC 8410 CurvePrivateKey)",
            ));
        }
    };
    let ring_pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8_der).map_err(|e| {
        invalid(
            "<redacted>",
            format!("the Ed25519 private key is rejected ({e})"),
        )
    })?;
    let mut v1 = ED25519_PKCS8_V1_PREFIX.to_vec();
    v1.extend_from_slice(seed);
    let pair = KeyPair {
        public_key: PublicKey::ed25519(ring_pair.public_key().as_ref().to_vec())?,
        private_key: PrivateKey::from_pkcs8_der(SignatureAlgorithm::Ed25519, v1),
    };
    Ok((ring_pair, pair))
}

/// Reads a PEM public or private key.
pub(crate) fn import(pem: &str) -> Result<Key> {
    let shown: String = pem.trim().chars().take(40).collect();
    if pem.trim().is_empty() {
        return Err(invalid(
            &shown,
            "is empty; expected a PEM block such as -----BEGIN PUBLIC KEY-----",
        ));
    }
    let (label, der) = pem_rfc7468::decode_vec(pem.trim().as_bytes()).map_err(|e| {
        invalid(
            &shown,
            format!("is not a well-formed PEM block ({e}); expected BEGIN PUBLIC KEY or BEGIN PRIVATE KEY"),
        )
    })?;
    match label {
        "PUBLIC KEY" => import_public(&shown, &der).map(Key::Public),
        "PRIVATE KEY" => key_pair(&der).map(|(_, pair)| Key::Private(pair)),
        other => Err(invalid(
            &shown,
            format!(
                "is a {other:?} PEM block; expected PUBLIC KEY (SubjectPublicKeyInfo) or PRIVATE KEY (PKCS#8)"
            ),
        )),
    }
}

fn import_public(shown: &str, der: &[u8]) -> Result<PublicKey> {
    let spki = spki::SubjectPublicKeyInfoRef::try_from(der).map_err(|e| {
        invalid(
            shown,
            format!("the public key is not SubjectPublicKeyInfo DER ({e})"),
        )
    })?;
    let oid = spki.algorithm.oid.to_string();
    if oid != ED25519_OID {
        return Err(invalid(
            shown,
            format!(
                "the public key is not Ed25519 (algorithm {oid}; only Ed25519, {ED25519_OID}, is supported)"
            ),
        ));
    }
    let bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| invalid(shown, "the public key bit string has unused bits"))?;
    PublicKey::ed25519(bytes.to_vec())
}

/// Writes a key as PEM.
pub(crate) fn export(key: &Key) -> Result<String> {
    let (label, der) = match key {
        Key::Public(public) => {
            if public.bytes.len() != 32 {
                return Err(Error::invalid(
                    "public key",
                    public.key_id().to_string(),
                    format!(
                        "an Ed25519 public key is 32 bytes, got {}",
                        public.bytes.len()
                    ),
                ));
            }
            let mut der = ED25519_SPKI_PREFIX.to_vec();
            der.extend_from_slice(&public.bytes);
            ("PUBLIC KEY", der)
        }
        Key::Private(pair) => {
            // Check it parses before writing it out.
            key_pair(pair.private_key.pkcs8_der())?;
            ("PRIVATE KEY", pair.private_key.pkcs8_der().to_vec())
        }
    };
    pem_rfc7468::encode_string(label, LineEnding::LF, &der)
        .map_err(|e| Error::invalid("key", label, format!("could not be encoded as PEM ({e})")))
}
