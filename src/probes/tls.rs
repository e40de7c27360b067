//! The public endpoint's TLS certificate: days left, issuer and names, read from a real
//! handshake. The certificate is inspected, not trusted, so an expired or self-signed
//! one is still reported rather than hidden behind a handshake error.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, ring, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::{Limit, ProbeError};
use crate::domain::diagnostics::CertInfo;

/// Accepts any certificate chain but still checks the handshake signatures, so the peer
/// proves it holds the key of the certificate we report.
#[derive(Debug)]
struct InspectOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for InspectOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
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

/// Connects to `host:port` (port 443 by default) and reads the leaf certificate.
///
/// # Errors
/// A short reason: unreachable, handshake failed, no or unreadable certificate.
pub async fn inspect(host_port: &str, limit: Limit) -> Result<CertInfo, ProbeError> {
    let bad = |why: &str| ProbeError::BadConfig {
        what: "The TLS host",
        key: "probes.tls_host",
        why: why.into(),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad("not a port"))?),
        None => (host_port, 443),
    };
    let provider = Arc::new(ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(InspectOnly(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).map_err(|_| bad("not a valid host name"))?;
    let work = async {
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(|_| ProbeError::Unreachable)?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| ProbeError::Tls(format!("handshake: {e}")))?;
        let (_, session) = tls.get_ref();
        let leaf = session
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| ProbeError::Tls("the server sent no certificate".into()))?;
        describe(leaf.as_ref())
    };
    tokio::time::timeout(limit.after, work)
        .await
        .map_err(|_| limit.expired())?
}

/// Reads expiry, issuer and names from a DER certificate.
///
/// # Errors
/// When the certificate cannot be parsed.
pub fn describe(der: &[u8]) -> Result<CertInfo, ProbeError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|_| ProbeError::Protocol("an unreadable certificate".into()))?;
    let not_after = cert.validity().not_after.timestamp();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    GeneralName::IPAddress(ip) => match ip.len() {
                        4 => Some(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty()
        && let Some(cn) = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
    {
        names.push(cn.to_owned());
    }
    Ok(CertInfo {
        issuer: cert.issuer().to_string(),
        names,
        not_after_unix: not_after,
        seconds_left: not_after - now,
    })
}
