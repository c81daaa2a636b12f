//! Keys and trust: making key pairs, reading and writing them as PEM, and the trust store —
//! through the same timed, retried path as every other backend call.

use marketplace_core::{Key, KeyId, KeyPair, PublicKey, Result, TrustLevel, TrustedKey};

use crate::client::MarketplaceClient;

impl MarketplaceClient {
    /// A fresh signing key pair from the crypto backend.
    pub async fn generate_keypair(&self) -> Result<KeyPair> {
        let span = tracing::info_span!("marketplace.generate_keypair");
        self.flow("generate_keypair", span, async {
            self.call("crypto", "generate_keypair", true, || {
                self.crypto.generate_keypair()
            })
            .await
        })
        .await
    }

    /// Trusts `key` at `level` (re-trusting changes the level). `Signature` if the key is
    /// revoked: revocation is permanent.
    pub async fn trust_key(&self, key: &PublicKey, level: TrustLevel) -> Result<()> {
        let span = tracing::info_span!("marketplace.trust_key", key = %key.key_id());
        self.flow("trust_key", span, async {
            self.call("crypto", "add_trusted_key", true, || {
                self.crypto.add_trusted_key(key, level)
            })
            .await
        })
        .await
    }

    /// Revokes a key, permanently, with a reason.
    pub async fn revoke_key(&self, key_id: &KeyId, reason: &str) -> Result<()> {
        let span = tracing::info_span!("marketplace.revoke_key", key = %key_id);
        self.flow("revoke_key", span, async {
            self.call("crypto", "revoke_key", true, || {
                self.crypto.revoke_key(key_id, reason)
            })
            .await
        })
        .await
    }

    /// Every key of the trust store, trusted or revoked.
    pub async fn trusted_keys(&self) -> Result<Vec<TrustedKey>> {
        let span = tracing::info_span!("marketplace.trusted_keys");
        self.flow("trusted_keys", span, async {
            self.call("crypto", "trusted_keys", true, || {
                self.crypto.trusted_keys()
            })
            .await
        })
        .await
    }

    /// Reads a PEM key (SubjectPublicKeyInfo or PKCS#8). `Invalid` says what is wrong.
    pub async fn import_key_pem(&self, pem: &str) -> Result<Key> {
        self.call("crypto", "import_key_pem", false, || async {
            self.crypto.import_key_pem(pem)
        })
        .await
    }

    /// Writes a key as PEM (SubjectPublicKeyInfo for public keys, PKCS#8 for private keys).
    pub async fn export_key_pem(&self, key: &Key) -> Result<String> {
        self.call("crypto", "export_key_pem", false, || async {
            self.crypto.export_key_pem(key)
        })
        .await
    }
}
