//! TLS for `wss://`: rustls with the ring provider, certificate chain and key from PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// The crypto provider used everywhere in Disktro (no aws-lc build needed).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read TLS certificate {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("TLS certificate {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS certificate {}: no certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// Build the acceptor from the configured files; the error names the file and the problem.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, String> {
    let certs = load_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| format!("TLS key {}: {e}", files.key.display()))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key do not make a usable pair: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Client TLS trusting the public web roots.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    client_config_with_roots(&[])
}

/// Client TLS trusting the public web roots and `extra` (a private network's own CA).
pub fn client_config_with_roots(extra: &[CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra {
        // A certificate that does not parse as a root is skipped; connecting then fails clearly.
        let _ = roots.add(cert.clone());
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Make ring the process-wide default provider (for libraries that build their own TLS
/// configuration, such as the HTTP client). Calling it again is harmless.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
