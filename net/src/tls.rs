//! TLS for `wss://` and `https://`: rustls with the ring provider, certificate chain and key
//! from PEM files (or over ACME, [`crate::acme`]); clients trust the system's root certificates
//! (the public web roots built in where the system has none) plus, when the process was told of
//! one ([`trust`]: `--ca-cert`, `DISKTRO_CA_CERT`), a private network's own CA.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// TLS certificate chain and private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The crypto provider used everywhere in Disktro (no aws-lc build needed).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why TLS settings could not be used; each names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate {}: {reason}", path.display())]
    Certificate { path: PathBuf, reason: String },
    #[error("TLS certificate {}: no certificate in the file", path.display())]
    NoCertificate { path: PathBuf },
    #[error("TLS key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("TLS certificate and key do not make a usable pair: {0}")]
    Pair(rustls::Error),
}

/// The certificates of a PEM file, at least one.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |e: rustls_pki_types::pem::Error| TlsError::Certificate {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.to_owned() });
    }
    Ok(certs)
}

/// Build the acceptor from the configured files.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let certs = load_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::Key {
        path: files.key.clone(),
        reason: e.to_string(),
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::Pair)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// CA certificates this process's clients trust besides the public roots.
static EXTRA_ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();

/// Trust the CA certificates of the PEM bundle at `path` too, in every client this process
/// makes from here on (worker connections and, through [`extra_roots`], HTTP clients). Once per
/// process: a second call keeps the first bundle.
pub fn trust(path: &Path) -> Result<(), TlsError> {
    let certs = load_certs(path)?;
    let _ = EXTRA_ROOTS.set(certs);
    Ok(())
}

/// The CA certificates given to [`trust`] (DER), for HTTP clients to add.
pub fn extra_roots() -> &'static [CertificateDer<'static>] {
    EXTRA_ROOTS.get().map_or(&[], Vec::as_slice)
}

/// Client TLS trusting the system's roots and the CA given to [`trust`], if any.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    client_config_with_roots(extra_roots())
}

/// The root certificates of this system (`/etc/ssl/certs`, or `SSL_CERT_FILE`/`SSL_CERT_DIR`),
/// read once; the public web roots built into the program where the system has none (a bare
/// container without `ca-certificates`).
fn system_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            tracing::debug!(errors = ?found.errors, "no system root certificates; using the built-in public roots");
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        roots
    })
}

/// Client TLS trusting the system's roots and `extra` (a private network's own CA).
pub fn client_config_with_roots(extra: &[CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = system_roots().clone();
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
