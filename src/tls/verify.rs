//! Certificate checks as Icinga makes them: a client's certificate decides
//! its identity after the handshake, never whether the handshake succeeds;
//! a server's certificate must chain to the CA and carry the endpoint's
//! name as its common name (not only as a subject alternative name).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme};

/// Admits any client certificate (or none) so that the connection is made
/// and judged afterwards. The signatures of the handshake are still checked
/// in full: a peer must own the key of the certificate it shows.
#[derive(Debug)]
pub(super) struct AnyClientCert {
    strict: Arc<dyn ClientCertVerifier>,
}

impl AnyClientCert {
    pub(super) fn new(strict: Arc<dyn ClientCertVerifier>) -> Self {
        AnyClientCert { strict }
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.strict.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.strict.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.strict.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.strict.supported_verify_schemes()
    }
}

/// An endpoint's certificate: signed by our CA, valid now, and with the
/// endpoint's name as its CN (Icinga: "Unexpected certificate common name").
#[derive(Debug)]
pub(super) struct EndpointCert {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl EndpointCert {
    pub(super) fn new(roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Self {
        EndpointCert { roots, algorithms: provider.signature_verification_algorithms }
    }
}

impl ServerCertVerifier for EndpointCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let expected = server_name.to_str();
        match super::common_name(end_entity) {
            Some(cn) if cn == expected.as_ref() => Ok(ServerCertVerified::assertion()),
            cn => Err(Error::General(format!(
                "Unexpected certificate common name '{}' for endpoint '{expected}'",
                cn.unwrap_or_default()
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The name a connection to endpoint `name` asks for (SNI) and checks the
/// certificate's CN against. Icinga's endpoint names are host names.
pub(super) fn server_name_for(name: &str) -> std::io::Result<ServerName<'static>> {
    ServerName::try_from(name.to_string()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("endpoint name '{name}' is not a host name, which a TLS connection to it needs"),
        )
    })
}
