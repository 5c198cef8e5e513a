//! Certificates as Icinga makes them: a CA, CSRs, and the leaves the CA
//! signs. Pure: bytes in, bytes out; the time and the serial are inputs.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{pem, Error, KeyPair, Serial};

/// The CA's common name, after Icinga's "Icinga CA".
pub const CA_NAME: &str = "quiesce CA";

/// How long a CA certificate is valid: Icinga's `ROOT_VALID_FOR`, 15 years.
pub const CA_VALIDITY: Duration = Duration::from_secs(15 * 365 * 86_400);

/// How long a node certificate is valid: Icinga's `LEAF_VALID_FOR`, 397 days.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(397 * 86_400);

/// A CA that can sign: its certificate and its key.
#[derive(Debug)]
pub struct Ca {
    cert: CertificateDer<'static>,
    key: KeyPair,
}

impl Ca {
    /// A new self-signed CA for `key`, valid from `now` for [`CA_VALIDITY`]:
    /// basic constraints CA:TRUE, key usage keyCertSign and cRLSign.
    pub fn create(key: KeyPair, now: SystemTime, serial: &Serial) -> Result<Ca, Error> {
        let mut params = params_for(CA_NAME, now, CA_VALIDITY, serial)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params
            .self_signed(&key.0)
            .map_err(|source| Error::Generate { what: "CA certificate", source })?;
        Ok(Ca { cert: cert.der().clone(), key })
    }

    /// The CA of an existing certificate (PEM) and its key, such as Icinga's
    /// `ca/ca.crt` and `ca/ca.key`.
    pub fn from_pem(cert_pem: &[u8], key: KeyPair) -> Result<Ca, Error> {
        let cert = certificate_from_pem(cert_pem)?;
        let parsed = parse_certificate(&cert)?;
        if !parsed.is_ca() {
            return Err(Error::NotCa);
        }
        if parsed.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(Error::KeyMismatch);
        }
        Ok(Ca { cert, key })
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        pem::encode("CERTIFICATE", &self.cert)
    }

    /// The CA's key.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// Signs a CSR (PEM), as `icinga2 pki sign-csr` does: the certificate
    /// takes the CSR's CN and public key and nothing else from it.
    pub fn sign_csr(&self, csr_pem: &[u8], now: SystemTime, serial: &Serial) -> Result<String, Error> {
        let request = read_csr(csr_pem)?;
        self.sign_leaf(&request.public_key, &request.cn, now, serial)
    }

    /// A certificate for `key` named `cn`, without a CSR in between.
    pub fn issue(&self, key: &KeyPair, cn: &str, now: SystemTime, serial: &Serial) -> Result<String, Error> {
        self.sign_leaf(&key.0, cn, now, serial)
    }

    /// The leaf certificate (PEM): CN and subjectAltName DNS:`cn` (so TLS
    /// name checks by CN pass), usable as TLS server and client, as
    /// Icinga's node certificates are.
    fn sign_leaf(
        &self,
        public_key: &impl PublicKeyData,
        cn: &str,
        now: SystemTime,
        serial: &Serial,
    ) -> Result<String, Error> {
        check_name(cn)?;
        let generate = |source| Error::Generate { what: "certificate", source };
        let mut params = params_for(cn, now, LEAF_VALIDITY, serial)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.subject_alt_names = vec![dns_name(cn)?];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let issuer = Issuer::from_ca_cert_der(&self.cert, &self.key.0).map_err(generate)?;
        Ok(params.signed_by(public_key, &issuer).map_err(generate)?.pem())
    }
}

/// A CSR (PEM) for `key` named `cn`, with subjectAltName DNS:`cn` as
/// `icinga2 pki new-cert --csr` makes it.
pub fn new_csr(key: &KeyPair, cn: &str) -> Result<String, Error> {
    let generate = |source| Error::Generate { what: "certificate signing request", source };
    check_name(cn)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(cn);
    params.subject_alt_names = vec![dns_name(cn)?];
    params.serialize_request(&key.0).and_then(|csr| csr.pem()).map_err(generate)
}

/// The subject common name of a DER certificate: a TLS peer's identity.
pub fn common_name(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(cn.to_owned())
}

/// The first certificate of a PEM input, checked to parse as X.509.
pub fn certificate_from_pem(input: &[u8]) -> Result<CertificateDer<'static>, Error> {
    let cert: CertificateDer<'static> = pem::decode(input, "CERTIFICATE")?;
    parse_certificate(&cert)?;
    Ok(cert)
}

/// Whether `name` can be a certificate's CN, its DNS SAN and the stem of its
/// file names: ASCII letters, digits, `.`, `-` and `_`, not starting with
/// `.` or `-` (so never a path, a hidden file or a flag).
pub fn check_name(name: &str) -> Result<(), Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let ok =
        !name.is_empty() && name.len() <= 255 && name.chars().all(allowed) && !name.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(name.to_owned()))
    }
}

/// What a leaf takes from a CSR.
struct Request {
    cn: String,
    public_key: rcgen::SubjectPublicKeyInfo,
}

/// Parses a CSR and checks its signature, so no one gets a certificate for
/// a key they do not hold.
fn read_csr(input: &[u8]) -> Result<Request, Error> {
    let der: CertificateSigningRequestDer = pem::decode(input, "CERTIFICATE REQUEST")?;
    let (rest, csr) =
        X509CertificationRequest::from_der(der.as_ref()).map_err(|e| Error::Csr(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::Csr("trailing bytes after the request".into()));
    }
    csr.verify_signature().map_err(|_| Error::CsrSignature)?;
    let info = &csr.certification_request_info;
    let cn = info.subject.iter_common_name().next().and_then(|cn| cn.as_str().ok());
    let cn = cn.ok_or(Error::NoCommonName("certificate signing request"))?.to_owned();
    let public_key =
        rcgen::SubjectPublicKeyInfo::from_der(info.subject_pki.raw).map_err(|e| Error::Csr(e.to_string()))?;
    Ok(Request { cn, public_key })
}

fn parse_certificate<'a>(cert: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, Error> {
    match X509Certificate::from_der(cert.as_ref()) {
        Ok(([], parsed)) => Ok(parsed),
        Ok(_) => Err(Error::Certificate("trailing bytes after the certificate".into())),
        Err(e) => Err(Error::Certificate(e.to_string())),
    }
}

/// Parameters with the subject `cn`, valid from `now` for `validity`, with
/// `serial`. Times are whole seconds, as X.509 holds them.
fn params_for(
    cn: &str,
    now: SystemTime,
    validity: Duration,
    serial: &Serial,
) -> Result<CertificateParams, Error> {
    let seconds = now.duration_since(SystemTime::UNIX_EPOCH).map_err(|_| Error::Time)?.as_secs();
    let start = i64::try_from(seconds).map_err(|_| Error::Time)?;
    let not_before = time::OffsetDateTime::from_unix_timestamp(start).map_err(|_| Error::Time)?;
    let validity = time::Duration::try_from(validity).map_err(|_| Error::Time)?;
    let mut params = CertificateParams::default();
    params.not_before = not_before;
    params.not_after = not_before.checked_add(validity).ok_or(Error::Time)?;
    params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    params.distinguished_name = subject(cn);
    Ok(params)
}

fn subject(cn: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, cn);
    name
}

fn dns_name(cn: &str) -> Result<SanType, Error> {
    let name = cn.try_into().map_err(|source| Error::Generate { what: "subjectAltName", source })?;
    Ok(SanType::DnsName(name))
}
