//! TLS to the server with rustls on ring: the operating system's root certificates, or the
//! CA certificates of a PEM file.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A connector that verifies the server's certificate and host name.
pub(crate) fn connector(ca_file: Option<&Path>) -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("read the CA file {}: {e}", path.display()))?;
            for certificate in certificates {
                let certificate =
                    certificate.map_err(|e| format!("read the CA file {}: {e}", path.display()))?;
                roots
                    .add(certificate)
                    .map_err(|e| format!("the CA file {}: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                return Err(format!(
                    "no root certificates found on this system ({} errors); give a CA file",
                    found.errors.len()
                ));
            }
            let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
