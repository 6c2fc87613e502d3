//! Certificates without manual work: a TLS listener's certificate obtained and renewed over ACME
//! (RFC 8555) — Let's Encrypt or any other ACME CA — answering the CA's `tls-alpn-01` challenge
//! (RFC 8737) on the very port it serves, so nothing else (port 80, DNS) has to be opened.
//!
//! [`Acme::open`] loads what an earlier run kept in `DATA_DIR/acme/` (the account and the
//! certificate with its key, owner-only files); [`Acme::acceptor`] is the listener's TLS, whose
//! certificate [`CertResolver`] swaps in place, so a renewal never restarts anything; [`Acme::run`]
//! orders a certificate when there is none (or it names other domains), renews it once two thirds
//! of its lifetime have passed, and retries failures with a growing pause while the current
//! certificate keeps being served.
//!
//! Handshakes that ask for the `acme-tls/1` protocol get that domain's challenge certificate and
//! nothing else: [`is_challenge`] tells the listener to close them after the handshake.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, ChallengeType, Identifier, NewAccount, NewOrder,
    OrderStatus, RetryPolicy,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::durable::{self, Access};
use crate::tls::{self, TlsError};

/// The ALPN protocol of a `tls-alpn-01` validation (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// Where in the data directory the account and certificate are kept.
pub const ACME_DIR: &str = "acme";
const ACCOUNT_FILE: &str = "account.json";
const CERT_FILE: &str = "certificate.pem";
const KEY_FILE: &str = "certificate.key";

/// First pause after a failed order; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(10);
const MAX_RETRY: Duration = Duration::from_secs(3600);
/// Longest sleep between looks at the clock: a suspended machine wakes to a fresh decision.
const LONGEST_WAIT: Duration = Duration::from_secs(6 * 3600);

/// `--acme-directory`, `--acme-domain`, `--acme-contact`, `--acme-ca-cert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// The CA's directory URL, e.g. `https://acme-v02.api.letsencrypt.org/directory`.
    pub directory: String,
    /// Names the certificate is for; the first one is the process's public name.
    pub domains: Vec<String>,
    /// E-mail the CA may write to about the certificate (expiry, revocation).
    pub contact: Option<String>,
    /// PEM bundle of the CA that signs the directory's own HTTPS certificate, for a private or
    /// test ACME server; a public CA needs none.
    pub ca_cert: Option<PathBuf>,
}

impl AcmeSettings {
    /// Settings from the flags, or `None` when ACME is not asked for; a domain without a
    /// directory (or the reverse) and unusable values are errors naming the flag.
    pub fn from_flags(
        directory: Option<String>,
        domains: Vec<String>,
        contact: Option<String>,
        ca_cert: Option<PathBuf>,
    ) -> Result<Option<Self>, crate::config::ConfigError> {
        use crate::config::ConfigError;
        let Some(directory) = directory else {
            if !domains.is_empty() || contact.is_some() || ca_cert.is_some() {
                return Err(ConfigError::Conflict(
                    "--acme-domain, --acme-contact and --acme-ca-cert need --acme-directory",
                ));
            }
            return Ok(None);
        };
        if !directory.starts_with("https://") {
            return Err(ConfigError::setting(
                "acme-directory",
                format!("{directory:?}: an ACME directory is an https:// URL"),
            ));
        }
        if domains.is_empty() {
            return Err(ConfigError::Conflict("--acme-directory needs --acme-domain"));
        }
        for d in &domains {
            if !is_dns_name(d) {
                return Err(ConfigError::setting(
                    "acme-domain",
                    format!("{d:?} is not a DNS name (a certificate names the host people reach)"),
                ));
            }
        }
        if let Some(c) = &contact
            && (!c.contains('@') || c.contains(char::is_whitespace))
        {
            return Err(ConfigError::setting(
                "acme-contact",
                format!("{c:?} is not an e-mail address"),
            ));
        }
        Ok(Some(Self {
            directory,
            domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            contact,
            ca_cert,
        }))
    }

    /// The name people and programs reach this process at: the first domain.
    pub fn public_name(&self) -> &str {
        &self.domains[0]
    }
}

fn is_dns_name(name: &str) -> bool {
    rustls_pki_types::DnsName::try_from(name).is_ok() && name.parse::<std::net::IpAddr>().is_err() && name.contains('.')
}

/// Why a certificate could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is damaged ({reason}); remove it to start over", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error("ACME server {directory}: {source}")]
    Server {
        directory: String,
        source: instant_acme::Error,
    },
    #[error("ACME order for {domains}: {reason}")]
    Order { domains: String, reason: String },
}

/// The certificate a listener presents: the current one, or, to a CA validating a domain with
/// `tls-alpn-01`, that domain's challenge certificate.
#[derive(Debug, Default)]
pub struct CertResolver {
    current: RwLock<Option<Arc<CertifiedKey>>>,
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl CertResolver {
    fn set_current(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(key);
    }

    fn set_challenge(&self, domain: &str, key: Option<Arc<CertifiedKey>>) {
        let mut challenges = self.challenges.write().unwrap_or_else(PoisonError::into_inner);
        match key {
            Some(key) => challenges.insert(domain.to_owned(), key),
            None => challenges.remove(domain),
        };
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let validating = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == ACME_TLS_ALPN));
        if validating {
            // Only the challenge certificate, and only for a name being validated now.
            let name = hello.server_name()?.to_ascii_lowercase();
            return self
                .challenges
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&name)
                .cloned();
        }
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Whether a finished handshake was a CA's `tls-alpn-01` validation, which carries no request:
/// the listener closes it.
pub fn is_challenge(negotiated_alpn: Option<&[u8]>) -> bool {
    negotiated_alpn == Some(ACME_TLS_ALPN)
}

/// When a certificate was valid from and until.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Validity {
    /// When to renew: once two thirds of the lifetime have passed (30 days before the end of a
    /// 90-day certificate, as the CAs advise), leaving time for retries.
    pub fn renew_at(&self) -> SystemTime {
        let lifetime = self.not_after.duration_since(self.not_before).unwrap_or_default();
        self.not_after - lifetime / 3
    }
}

/// A certificate chain and key as kept on disk, with what it was read to say.
struct Stored {
    key: Arc<CertifiedKey>,
    validity: Validity,
    names: Vec<String>,
}

/// One process's ACME-managed certificate.
#[derive(Debug)]
pub struct Acme {
    settings: AcmeSettings,
    dir: PathBuf,
    resolver: Arc<CertResolver>,
    /// Validity of the certificate being served, if any.
    served: RwLock<Option<Validity>>,
}

impl Acme {
    /// Load what earlier runs kept under `data_dir/acme/` (a certificate is served at once, even
    /// one due for renewal, until [`run`](Self::run) replaces it).
    pub fn open(settings: AcmeSettings, data_dir: &Path) -> Result<Self, AcmeError> {
        let dir = data_dir.join(ACME_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| AcmeError::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        if let Some(ca) = &settings.ca_cert {
            // Read now, so a wrong path fails at start-up rather than at the first order.
            tls::load_certs(ca)?;
        }
        let acme = Self {
            settings,
            dir,
            resolver: Arc::default(),
            served: RwLock::new(None),
        };
        if let Some(stored) = acme.load_stored()? {
            acme.resolver.set_current(stored.key);
            *acme.served.write().unwrap_or_else(PoisonError::into_inner) = Some(stored.validity);
            if !acme.covers(&stored.names) {
                tracing::info!(
                    "the kept certificate names {:?}, not {:?}: a new one will be ordered",
                    stored.names,
                    acme.settings.domains
                );
                *acme.served.write().unwrap_or_else(PoisonError::into_inner) = None;
            }
        }
        Ok(acme)
    }

    pub fn settings(&self) -> &AcmeSettings {
        &self.settings
    }

    /// Validity of the certificate served now, if there is one.
    pub fn served(&self) -> Option<Validity> {
        *self.served.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The listener's TLS: HTTP/1.1 (and WebSockets over it) with the managed certificate, and
    /// the CA's validations.
    pub fn acceptor(&self) -> TlsAcceptor {
        let mut config = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&self.resolver) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }

    /// Keep a valid certificate until `shutdown`: order one now if there is none, renew it
    /// when due, retry failures after 10 s, 20 s, … up to an hour. Start it once the listener
    /// of [`acceptor`](Self::acceptor) accepts: the CA connects to it to validate.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut retry = FIRST_RETRY;
        loop {
            let due = self.served().map_or(SystemTime::UNIX_EPOCH, |v| v.renew_at());
            let wait = due.duration_since(SystemTime::now()).unwrap_or_default();
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait.min(LONGEST_WAIT)) => continue,
                    () = shutdown.cancelled() => return,
                }
            }
            let ordered = tokio::select! {
                r = self.order() => r,
                () = shutdown.cancelled() => return,
            };
            match ordered {
                Ok(validity) => {
                    retry = FIRST_RETRY;
                    tracing::info!(
                        domains = ?self.settings.domains,
                        valid_for_days = validity.not_after.duration_since(SystemTime::now()).unwrap_or_default().as_secs() / 86_400,
                        renew_in_days = validity.renew_at().duration_since(SystemTime::now()).unwrap_or_default().as_secs() / 86_400,
                        "certificate obtained from {}",
                        self.settings.directory
                    );
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?retry, "cannot obtain a certificate");
                    tokio::select! {
                        () = tokio::time::sleep(retry) => {}
                        () = shutdown.cancelled() => return,
                    }
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// Order a certificate, prove each domain, and serve and keep the result.
    pub async fn order(&self) -> Result<Validity, AcmeError> {
        let account = self.account().await?;
        let server = |source| AcmeError::Server {
            directory: self.settings.directory.clone(),
            source,
        };
        let failed = |reason: String| AcmeError::Order {
            domains: self.settings.domains.join(", "),
            reason,
        };
        let identifiers: Vec<Identifier> = self
            .settings
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await.map_err(server)?;
        let mut proving = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(server)?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => return Err(failed(format!("authorization is {other:?}"))),
            }
            let mut challenge = authorization
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or_else(|| failed("the CA offers no tls-alpn-01 challenge".to_owned()))?;
            let domain = challenge.identifier().to_string().to_ascii_lowercase();
            let answer = challenge_certificate(&domain, challenge.key_authorization().digest().as_ref())
                .map_err(|e| failed(format!("challenge certificate: {e}")))?;
            self.resolver.set_challenge(&domain, Some(answer));
            proving.push(domain);
            challenge.set_ready().await.map_err(server)?;
        }
        // The CA validates now; give it a while (a real CA may take tens of seconds).
        let patience = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .timeout(Duration::from_secs(120));
        let status = order.poll_ready(&patience).await;
        for domain in &proving {
            self.resolver.set_challenge(domain, None);
        }
        match status.map_err(server)? {
            OrderStatus::Ready => {}
            other => {
                let detail = order
                    .state()
                    .error
                    .as_ref()
                    .map(|p| format!(": {p}"))
                    .unwrap_or_default();
                return Err(failed(format!(
                    "the CA did not validate the domains (order {other:?}{detail})"
                )));
            }
        }
        let key = rcgen::KeyPair::generate().map_err(|e| failed(format!("key: {e}")))?;
        let csr = rcgen::CertificateParams::new(self.settings.domains.clone())
            .and_then(|p| p.serialize_request(&key))
            .map_err(|e| failed(format!("certificate request: {e}")))?;
        order.finalize_csr(csr.der()).await.map_err(server)?;
        let chain_pem = order.poll_certificate(&patience).await.map_err(server)?;
        let key_pem = key.serialize_pem();
        let stored = parse(chain_pem.as_bytes(), key_pem.as_bytes())
            .map_err(|reason| failed(format!("the CA's certificate: {reason}")))?;
        if !self.covers(&stored.names) {
            return Err(failed(format!("the CA's certificate names {:?}", stored.names)));
        }
        // Key first: a crash between the two leaves the old pair's certificate with a new key,
        // which `load_stored` refuses as a pair; the next start orders again.
        self.write(KEY_FILE, key_pem.as_bytes(), Access::OwnerOnly)?;
        self.write(CERT_FILE, chain_pem.as_bytes(), Access::Default)?;
        self.resolver.set_current(stored.key);
        *self.served.write().unwrap_or_else(PoisonError::into_inner) = Some(stored.validity);
        Ok(stored.validity)
    }

    /// The kept account for this directory, or a new one (kept for the next order).
    async fn account(&self) -> Result<Account, AcmeError> {
        #[derive(Serialize, Deserialize)]
        struct Kept {
            directory: String,
            credentials: AccountCredentials,
        }
        let server = |source| AcmeError::Server {
            directory: self.settings.directory.clone(),
            source,
        };
        let path = self.dir.join(ACCOUNT_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let kept: Kept = serde_json::from_slice(&bytes).map_err(|e| AcmeError::Damaged {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                if kept.directory == self.settings.directory {
                    return Account::builder_with_http(self.http()?)
                        .from_credentials(kept.credentials)
                        .await
                        .map_err(server);
                }
                // Another CA (staging, then production): its own account, the old one replaced.
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(AcmeError::Io {
                    op: "read",
                    path,
                    source,
                });
            }
        }
        let contact: Vec<String> = self.settings.contact.iter().map(|c| format!("mailto:{c}")).collect();
        let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = Account::builder_with_http(self.http()?)
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.settings.directory.clone(),
                None,
            )
            .await
            .map_err(server)?;
        let kept = Kept {
            directory: self.settings.directory.clone(),
            credentials,
        };
        let json = serde_json::to_vec_pretty(&kept).expect("account credentials serialize");
        self.write(ACCOUNT_FILE, &json, Access::OwnerOnly)?;
        Ok(account)
    }

    /// HTTPS to the CA: the system's roots plus `--acme-ca-cert`.
    fn http(&self) -> Result<Box<dyn instant_acme::HttpClient>, AcmeError> {
        let extra = match &self.settings.ca_cert {
            Some(path) => tls::load_certs(path)?,
            None => Vec::new(),
        };
        let config = tls::client_config_with_roots(&extra);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*config).clone())
            .https_only()
            .enable_http1()
            .build();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build::<_, BodyWrapper<bytes::Bytes>>(connector);
        Ok(Box::new(client))
    }

    fn covers(&self, names: &[String]) -> bool {
        self.settings.domains.iter().all(|d| names.contains(d))
    }

    fn load_stored(&self) -> Result<Option<Stored>, AcmeError> {
        let (cert_path, key_path) = (self.dir.join(CERT_FILE), self.dir.join(KEY_FILE));
        let read = |path: &Path| match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(AcmeError::Io {
                op: "read",
                path: path.to_owned(),
                source,
            }),
        };
        let (Some(chain), Some(key)) = (read(&cert_path)?, read(&key_path)?) else {
            return Ok(None);
        };
        match parse(&chain, &key) {
            Ok(stored) => Ok(Some(stored)),
            Err(reason) => {
                // Not worth refusing to start over: a fresh certificate replaces it.
                tracing::warn!(path = %cert_path.display(), %reason, "the kept certificate is unusable; ordering a new one");
                Ok(None)
            }
        }
    }

    fn write(&self, name: &str, bytes: &[u8], access: Access) -> Result<(), AcmeError> {
        let path = self.dir.join(name);
        durable::replace_as(&path, bytes, access).map_err(|source| AcmeError::Io {
            op: "write",
            path,
            source,
        })
    }
}

/// A chain and key as a servable certificate, with its validity and names.
fn parse(chain_pem: &[u8], key_pem: &[u8]) -> Result<Stored, String> {
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let leaf = chain.first().ok_or("no certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| e.to_string())?;
    let (validity, names) = describe(leaf)?;
    let key = CertifiedKey::from_der(chain, key, &tls::provider()).map_err(|e| format!("certificate and key: {e}"))?;
    Ok(Stored {
        key: Arc::new(key),
        validity,
        names,
    })
}

/// Validity and DNS names of a certificate.
fn describe(cert: &CertificateDer<'_>) -> Result<(Validity, Vec<String>), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|e| e.to_string())?;
    let at = |t: x509_parser::time::ASN1Time| {
        let secs = t.timestamp();
        u64::try_from(secs).map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
    };
    let validity = parsed.validity();
    let validity = Validity {
        not_before: at(validity.not_before).map_err(|_| "validity before 1970")?,
        not_after: at(validity.not_after).map_err(|_| "validity before 1970")?,
    };
    let names = parsed
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((validity, names))
}

/// The self-signed certificate that answers a `tls-alpn-01` validation of `domain`: its
/// `acmeIdentifier` extension holds the SHA-256 of the key authorization (RFC 8737 §3).
fn challenge_certificate(domain: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let der_key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    // Not `from_der`: its key-matches-certificate check parses the certificate with webpki, which
    // refuses the critical extension a validator looks for.
    let signer = tls::provider()
        .key_provider
        .load_private_key(der_key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(vec![cert.der().clone()], signer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_comes_when_two_thirds_of_the_lifetime_are_gone() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let v = Validity {
            not_before: start,
            not_after: start + Duration::from_secs(90 * 86_400),
        };
        assert_eq!(v.renew_at(), start + Duration::from_secs(60 * 86_400));
        // A six-day certificate (the CAs' short-lived profile) renews two days before its end.
        let short = Validity {
            not_before: start,
            not_after: start + Duration::from_secs(6 * 86_400),
        };
        assert_eq!(short.renew_at(), start + Duration::from_secs(4 * 86_400));
    }

    #[test]
    fn flags_are_checked_before_anything_is_ordered() {
        let dir = || Some("https://acme.example/directory".to_owned());
        let domain = || vec!["disktro.example".to_owned()];
        assert_eq!(AcmeSettings::from_flags(None, vec![], None, None).unwrap(), None);
        let s = AcmeSettings::from_flags(
            dir(),
            vec!["Disktro.Example".to_owned()],
            Some("ops@disktro.example".to_owned()),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.public_name(), "disktro.example");
        for (directory, domains, contact, wants) in [
            (None, domain(), None, "need --acme-directory"),
            (dir(), vec![], None, "needs --acme-domain"),
            (Some("http://acme.example/dir".to_owned()), domain(), None, "https://"),
            (dir(), vec!["198.18.0.1".to_owned()], None, "not a DNS name"),
            (dir(), vec!["localhost".to_owned()], None, "not a DNS name"),
            (dir(), domain(), Some("ops".to_owned()), "e-mail"),
        ] {
            let e = AcmeSettings::from_flags(directory, domains, contact, None).unwrap_err();
            assert!(e.to_string().contains(wants), "{e} (wanted {wants})");
        }
    }

    /// Tried: the challenge certificate for a domain, parsed back.
    /// Must hold: it names the domain and carries the digest in the critical `acmeIdentifier`
    /// extension (OID 1.3.6.1.5.5.7.1.31) as a DER OCTET STRING, as RFC 8737 §3 requires.
    #[test]
    fn a_challenge_certificate_carries_the_key_authorization_digest() {
        let digest = [7u8; 32];
        let key = challenge_certificate("w1.disktro.example", &digest).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&key.cert[0]).unwrap();
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier extension");
        assert!(ext.critical);
        let mut want = vec![0x04, 32];
        want.extend_from_slice(&digest);
        assert_eq!(ext.value, want.as_slice());
        let (_, names) = describe(&key.cert[0]).unwrap();
        assert_eq!(names, ["w1.disktro.example"]);
    }

    /// Tried: a resolver with a current certificate and a challenge for one domain, asked by a
    /// plain client and by validations of the right and of another domain (through real
    /// handshakes with rustls clients).
    /// Must hold: plain clients get the current certificate; a validation gets the challenge
    /// certificate of its own domain only, and nothing for any other name.
    #[tokio::test]
    async fn validations_get_the_challenge_and_nothing_else() {
        let current = rcgen::generate_simple_self_signed(vec!["a.disktro.example".to_owned()]).unwrap();
        let resolver = Arc::new(CertResolver::default());
        resolver.set_current(
            parse(
                current.cert.pem().as_bytes(),
                current.signing_key.serialize_pem().as_bytes(),
            )
            .unwrap()
            .key,
        );
        let challenge = challenge_certificate("a.disktro.example", &[1; 32]).unwrap();
        let challenge_der = challenge.cert[0].clone();
        resolver.set_challenge("a.disktro.example", Some(challenge));
        let mut config = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(resolver as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = acceptor.accept(tcp).await;
                });
            }
        });
        // Which certificate the server shows to a client offering `alpn` for `name`.
        let shown = |name: &'static str, alpn: &'static [u8]| async move {
            let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate))
                .with_no_client_auth();
            config.alpn_protocols = vec![alpn.to_vec()];
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from(name).unwrap();
            let tls = connector.connect(name, tcp).await.ok()?;
            tls.get_ref().1.peer_certificates().map(|c| c[0].clone())
        };
        assert_eq!(
            shown("a.disktro.example", b"http/1.1").await.as_deref(),
            Some(current.cert.der().as_ref())
        );
        let validated = shown("a.disktro.example", ACME_TLS_ALPN).await.unwrap();
        assert_eq!(validated, challenge_der);
        assert!(shown("b.disktro.example", ACME_TLS_ALPN).await.is_none());
    }

    /// Accepts any server certificate: the test looks at which one it was shown.
    #[derive(Debug)]
    struct AnyCertificate;

    impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &rustls_pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls_pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }

        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            tls::provider().signature_verification_algorithms.supported_schemes()
        }
    }
}
