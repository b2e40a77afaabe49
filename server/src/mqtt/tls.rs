//! TLS for `mqtts://` and `wss://` sources: the rustls client configuration
//! built once at startup from a source's `ca_file`, `insecure_skip_verify`
//! and `client_cert`/`client_key`, and the words for a failed handshake.
//!
//! Trust: the system's roots (`rustls-native-certs`) plus every certificate
//! of `ca_file`. Crypto is rustls' `ring` provider, passed to the builder
//! rather than installed process-wide, so nothing depends on which provider
//! another crate installed first. A file that is missing, unreadable or holds
//! no usable PEM is a startup error naming the file; nothing here panics.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// A source's TLS settings, as written in its `[[mqtt]]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl TlsSettings {
    /// True when any setting differs from the default (system roots only).
    pub(crate) fn is_set(&self) -> bool {
        *self != TlsSettings::default()
    }
}

/// Why a source's TLS settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("{key} {path:?}: cannot read it: {error}")]
    Read {
        key: &'static str,
        path: PathBuf,
        error: String,
    },
    #[error("{key} {path:?}: {problem}")]
    Pem {
        key: &'static str,
        path: PathBuf,
        problem: String,
    },
    #[error("client_cert and client_key go together: give both for mutual TLS, or neither")]
    HalfClientAuth,
    #[error("client_cert/client_key: {0}")]
    ClientAuth(String),
    #[error(
        "no trusted certificates: the system store could not be loaded ({0}); set ca_file \
         to the CA that signed the broker's certificate"
    )]
    NoRoots(String),
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// A ready rustls configuration, and what to log about it at start.
#[derive(Clone)]
pub struct TlsClient {
    pub(crate) settings: TlsSettings,
    pub(crate) config: Arc<ClientConfig>,
    /// The system store failed to load (or partly), with a ca_file given:
    /// logged at start, not fatal.
    pub(crate) system_roots_warning: Option<String>,
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        key,
        path: path.to_path_buf(),
        error: e.to_string(),
    })
}

fn certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let pem_err = |problem: String| TlsError::Pem {
        key,
        path: path.to_path_buf(),
        problem,
    };
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(format!("not a PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(pem_err(
            "holds no certificate (expected PEM blocks \"BEGIN CERTIFICATE\")".into(),
        ));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("client_key", path)?;
    let pem_err = |problem: String| TlsError::Pem {
        key: "client_key",
        path: path.to_path_buf(),
        problem,
    };
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| pem_err(format!("not a PEM file: {e}")))?
        .ok_or_else(|| pem_err("holds no private key (expected PKCS#8, PKCS#1 or SEC1 PEM)".into()))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsClient {
    /// Builds the client configuration; reads every file now.
    pub fn new(settings: TlsSettings) -> Result<TlsClient, TlsError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let mut system_roots_warning = None;
        let builder = if settings.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        } else {
            let mut roots = RootCertStore::empty();
            let system = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(system.certs);
            let system_error = (!system.errors.is_empty()).then(|| {
                system
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            match &settings.ca_file {
                Some(ca) => {
                    let extra = certs("ca_file", ca)?;
                    let (ok, _) = roots.add_parsable_certificates(extra);
                    if ok == 0 {
                        return Err(TlsError::Pem {
                            key: "ca_file",
                            path: ca.clone(),
                            problem: "holds no usable CA certificate".into(),
                        });
                    }
                    system_roots_warning = system_error;
                }
                None if added == 0 => {
                    return Err(TlsError::NoRoots(
                        system_error.unwrap_or_else(|| "it is empty".into()),
                    ))
                }
                None => system_roots_warning = system_error,
            }
            builder.with_root_certificates(roots)
        };
        let config = match (&settings.client_cert, &settings.client_key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(certs("client_cert", cert)?, private_key(key)?)
                .map_err(|e| TlsError::ClientAuth(e.to_string()))?,
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsError::HalfClientAuth),
        };
        Ok(TlsClient {
            settings,
            config: Arc::new(config),
            system_roots_warning,
        })
    }
}

/// `insecure_skip_verify`: any certificate for any name is accepted. The
/// handshake signatures are still checked (with the provider's algorithms),
/// so the connection is encrypted to whoever holds the presented key — which
/// may be anyone on the path.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls error somewhere in `e`'s cause chain (directly, or inside an
/// I/O error, which is how tokio-rustls reports a failed handshake).
pub(crate) fn tls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(t) = inner.downcast_ref::<rustls::Error>() {
                return Some(t);
            }
        }
        cur = err.source();
    }
    None
}

/// A failed handshake in words a user can act on.
pub(crate) fn describe_tls(e: &rustls::Error) -> String {
    use rustls::{CertificateError, Error};
    match e {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "TLS handshake failed: the broker's certificate is not trusted (unknown issuer); \
             set ca_file to the CA that signed it"
                .into()
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "TLS handshake failed: the broker's certificate is not valid for this host name; \
              connect with the name the certificate was issued for"
            .into(),
        Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "TLS handshake failed: the broker's certificate has expired".into(),
        Error::InvalidCertificate(other) => {
            format!("TLS handshake failed: the broker's certificate was refused ({other:?})")
        }
        other => format!("TLS handshake failed: {other}"),
    }
}
