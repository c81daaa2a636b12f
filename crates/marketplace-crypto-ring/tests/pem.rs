//! Garbage and foreign keys are refused with `Invalid` and a message that says why.

use marketplace_core::{CryptoVerifier, Error};
use marketplace_crypto_ring::RingCryptoVerifier;

/// An X25519 key (`openssl genpkey -algorithm x25519`): same shape as Ed25519, other algorithm.
const X25519_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VuBCIEINiTKMZxxZ9O/yzUUnXPogAo7FdBQdQ52jw/QWLrXoFD
-----END PRIVATE KEY-----
";

/// A P-256 key (`openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256`).
const P256_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPTvRLWHmi2cTHx5m
BcV+pVFolYG59OgYDyPlgvO574mhRANCAARgXLmjjh1ordtClyLQO7I9+cVb9Wqu
CPY86goxGmI4QfSq9PaZV68awMybbOyF4OxDgkM2tzK79/zPCTNMt/QC
-----END PRIVATE KEY-----
";

fn refused(pem: &str, rule_part: &str) {
    match RingCryptoVerifier::in_memory().import_key_pem(pem) {
        Err(Error::Invalid { field, rule, value }) => {
            assert_eq!(field, "PEM key");
            assert!(
                rule.contains(rule_part),
                "rule {rule:?} does not say {rule_part:?}"
            );
            assert!(
                !value.contains("MC4CAQAw") || value.len() <= 41,
                "private material echoed: {value}"
            );
        }
        other => panic!("expected Invalid ({rule_part}), got {other:?}"),
    }
}

#[test]
fn foreign_algorithms_are_named() {
    refused(X25519_PRIVATE, "not Ed25519 (algorithm 1.3.101.110");
    refused(P256_PRIVATE, "not Ed25519 (algorithm 1.2.840.10045.2.1");
}

#[test]
fn malformed_input_says_what_is_wrong() {
    refused("", "is empty");
    refused("\u{0}\u{1}binary\u{ff}", "not a well-formed PEM block");
    refused(
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAw\n",
        "not a well-formed PEM block",
    );
    refused(
        "-----BEGIN EC PRIVATE KEY-----\nMC4CAQAw\n-----END EC PRIVATE KEY-----\n",
        "EC PRIVATE KEY",
    );
    refused(
        "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
        "not SubjectPublicKeyInfo DER",
    );
}
