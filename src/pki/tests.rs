//! Keys, CSRs and certificates made here as rustls will check them (chain,
//! usage, name, with webpki), Ed25519 determinism, Icinga-made files read,
//! and bad input refused with a sentence.

use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

/// 2027-01-01, inside the validity of the OpenSSL-made CA in testdata/.
const NOW: Duration = Duration::from_secs(1_798_761_600);

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + NOW
}

const ICINGA_CA_CRT: &[u8] = include_bytes!("testdata/icinga-ca.crt");
const ICINGA_CA_KEY: &[u8] = include_bytes!("testdata/icinga-ca.key");
const ICINGA_AGENT_CSR: &[u8] = include_bytes!("testdata/icinga-agent.csr");
const EC_SEC1_KEY: &[u8] = include_bytes!("testdata/ec-sec1.key");

fn der(pem: &str) -> CertificateDer<'static> {
    certificate_from_pem(pem.as_bytes()).expect("a certificate")
}

fn parsed<'a>(cert: &'a CertificateDer<'_>) -> X509Certificate<'a> {
    X509Certificate::from_der(cert.as_ref()).expect("parses").1
}

/// Verifies `leaf` against `ca` as rustls does, as server and as client, for name `cn`.
fn verify(
    ca: &CertificateDer<'_>,
    leaf: &CertificateDer<'_>,
    cn: &str,
    at: SystemTime,
) -> Result<(), webpki::Error> {
    let anchors = [webpki::anchor_from_trusted_cert(ca)?];
    let cert = EndEntityCert::try_from(leaf)?;
    let time = UnixTime::since_unix_epoch(at.duration_since(SystemTime::UNIX_EPOCH).unwrap());
    for usage in [KeyUsage::server_auth(), KeyUsage::client_auth()] {
        cert.verify_for_usage(webpki::ALL_VERIFICATION_ALGS, &anchors, &[], time, usage, None, None)?;
    }
    cert.verify_is_valid_for_subject_name(&ServerName::try_from(cn).unwrap())
}

fn p256_ca() -> Ca {
    Ca::create(KeyPair::generate().unwrap(), now(), &Serial::from_u64(1)).unwrap()
}

#[test]
fn a_new_ca_is_a_ca_for_fifteen_years() {
    let ca = p256_ca();
    let cert = parsed(ca.cert_der());
    assert!(cert.is_ca());
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.key_cert_sign() && usage.crl_sign() && !usage.digital_signature());
    assert_eq!(common_name(ca.cert_der()).as_deref(), Some(CA_NAME));
    let validity = cert.validity();
    assert_eq!(validity.not_before.timestamp(), NOW.as_secs() as i64);
    assert_eq!(
        validity.not_after.timestamp() - validity.not_before.timestamp(),
        CA_VALIDITY.as_secs() as i64
    );
    // ECDSA P-256: id-ecPublicKey with prime256v1.
    assert_eq!(cert.public_key().algorithm.algorithm.to_id_string(), "1.2.840.10045.2.1");
}

#[test]
fn a_leaf_from_a_csr_verifies_as_server_and_client_by_its_cn() {
    let ca = p256_ca();
    let key = KeyPair::generate().unwrap();
    let csr = new_csr(&key, "master1.example").unwrap();
    let leaf = der(&ca.sign_csr(csr.as_bytes(), now(), &Serial::from_u64(2)).unwrap());
    assert_eq!(common_name(&leaf).as_deref(), Some("master1.example"));
    verify(ca.cert_der(), &leaf, "master1.example", now() + Duration::from_secs(60)).unwrap();
    assert!(verify(ca.cert_der(), &leaf, "other.example", now()).is_err(), "the name is checked");
    let other_ca = p256_ca();
    assert!(verify(other_ca.cert_der(), &leaf, "master1.example", now()).is_err(), "the chain is checked");
}

#[test]
fn a_leaf_has_icingas_extensions_and_validity() {
    let ca = p256_ca();
    let leaf = der(&ca.issue(&KeyPair::generate().unwrap(), "agent1", now(), &Serial::from_u64(3)).unwrap());
    let cert = parsed(&leaf);
    assert!(!cert.is_ca());
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    assert_eq!(format!("{:?}", san.general_names), r#"[DNSName("agent1")]"#);
    let usage = cert.key_usage().unwrap().unwrap().value;
    assert!(usage.digital_signature() && usage.key_encipherment() && !usage.key_cert_sign());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);
    let v = cert.validity();
    assert_eq!(v.not_after.timestamp() - v.not_before.timestamp(), LEAF_VALIDITY.as_secs() as i64);
    assert_eq!(cert.raw_serial(), Serial::from_u64(3).as_bytes());
    assert_eq!(cert.issuer().to_string(), format!("CN={CA_NAME}"));
}

#[test]
fn ed25519_from_a_seed_makes_the_same_bytes_every_time() {
    let make = |seed: u8| {
        let ca = Ca::create(KeyPair::ed25519_from_seed(&[seed; 32]).unwrap(), now(), &Serial::from_u64(7))
            .unwrap();
        let node = KeyPair::ed25519_from_seed(&[seed + 1; 32]).unwrap();
        let csr = new_csr(&node, "sim-node-1").unwrap();
        let leaf = ca.sign_csr(csr.as_bytes(), now(), &Serial::from_u64(8)).unwrap();
        (ca.cert_pem(), node.to_pem(), csr, leaf)
    };
    let first = make(1);
    assert_eq!(first, make(1));
    let other = make(3);
    assert!(first.0 != other.0 && first.1 != other.1 && first.2 != other.2 && first.3 != other.3);
    let (ca, leaf) = (der(&first.0), der(&first.3));
    verify(&ca, &leaf, "sim-node-1", now()).unwrap();
    // The key file reads back as the same key.
    let again = KeyPair::from_pem(first.1.as_bytes()).unwrap();
    assert_eq!(again.to_pem(), first.1);
}

#[test]
fn an_icinga_made_rsa_ca_signs_csrs() {
    // testdata/: made with OpenSSL as `icinga2 pki new-ca` and `new-cert --csr` make them
    // (RSA 4096, "BEGIN RSA PRIVATE KEY", a CSR with subjectAltName DNS:<cn>).
    let ca = Ca::from_pem(ICINGA_CA_CRT, KeyPair::from_pem(ICINGA_CA_KEY).unwrap()).unwrap();
    let leaf = der(&ca.sign_csr(ICINGA_AGENT_CSR, now(), &Serial::from_u64(9)).unwrap());
    assert_eq!(common_name(&leaf).as_deref(), Some("agent1.example"));
    verify(ca.cert_der(), &leaf, "agent1.example", now()).unwrap();
    let ours = new_csr(&KeyPair::generate().unwrap(), "q1").unwrap();
    let leaf = der(&ca.sign_csr(ours.as_bytes(), now(), &Serial::from_u64(10)).unwrap());
    verify(ca.cert_der(), &leaf, "q1", now()).unwrap();
    assert_eq!(common_name(ca.cert_der()).as_deref(), Some("Icinga CA"));
}

#[test]
fn pkcs1_and_sec1_keys_load_for_tls_as_pkcs8() {
    for pem in [ICINGA_CA_KEY, EC_SEC1_KEY] {
        let key = KeyPair::from_pem(pem).unwrap();
        assert!(matches!(key.to_der(), rustls_pki_types::PrivateKeyDer::Pkcs8(_)));
        assert!(key.to_pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
        // It signs: a CSR made with it verifies.
        let csr = new_csr(&key, "n1").unwrap();
        p256_ca().sign_csr(csr.as_bytes(), now(), &Serial::from_u64(11)).unwrap();
    }
}

#[test]
fn serials_are_positive_sixteen_bytes_and_random_ones_differ() {
    assert_eq!(Serial::from_u64(0).as_bytes()[0], 0x40);
    assert_eq!(Serial::from_bytes([0xff; 16]).as_bytes()[0], 0x7f);
    assert_eq!(&Serial::from_u64(0x0102).as_bytes()[14..], &[1, 2]);
    assert_ne!(Serial::random().unwrap(), Serial::random().unwrap());
}

#[test]
fn corrupt_pem_is_an_error_not_a_panic() {
    let garbage = b"-----BEGIN PRIVATE KEY-----\n!!not base64!!\n-----END PRIVATE KEY-----\n";
    assert!(matches!(KeyPair::from_pem(garbage), Err(Error::Pem { .. })));
    let not_a_key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(matches!(KeyPair::from_pem(not_a_key), Err(Error::Key(_))));
    let not_a_cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(matches!(certificate_from_pem(not_a_cert), Err(Error::Certificate(_))));
    assert!(matches!(certificate_from_pem(b""), Err(Error::Pem { .. })));
    assert_eq!(common_name(b"not der"), None);
}

#[test]
fn a_certificate_is_not_a_csr() {
    let ca = p256_ca();
    let e = ca.sign_csr(ca.cert_pem().as_bytes(), now(), &Serial::from_u64(1)).unwrap_err();
    assert_eq!(e.to_string(), "expected a PEM 'CERTIFICATE REQUEST' block, found a 'CERTIFICATE' block");
}

#[test]
fn a_tampered_csr_is_refused() {
    let csr = new_csr(&KeyPair::generate().unwrap(), "honest").unwrap();
    let mut der = rustls_pki_types::pem::PemObject::from_pem_slice(csr.as_bytes())
        .map(|d: rustls_pki_types::CertificateSigningRequestDer| d.as_ref().to_vec())
        .unwrap();
    // The CN's last letter, inside the signed part: "honest" becomes "honesu".
    let at = der.windows(6).position(|w| w == b"honest").unwrap() + 5;
    der[at] += 1;
    let tampered = pem::encode("CERTIFICATE REQUEST", &der);
    let e = p256_ca().sign_csr(tampered.as_bytes(), now(), &Serial::from_u64(1)).unwrap_err();
    assert!(matches!(e, Error::CsrSignature), "{e}");
}

#[test]
fn a_ca_with_the_wrong_key_or_no_ca_flag_is_refused() {
    let ca = p256_ca();
    let wrong = KeyPair::generate().unwrap();
    assert!(matches!(Ca::from_pem(ca.cert_pem().as_bytes(), wrong), Err(Error::KeyMismatch)));
    let key = KeyPair::generate().unwrap();
    let leaf = ca.issue(&key, "leaf", now(), &Serial::from_u64(1)).unwrap();
    assert!(matches!(Ca::from_pem(leaf.as_bytes(), key), Err(Error::NotCa)));
}

#[test]
fn bad_names_and_times_are_refused() {
    let key = KeyPair::generate().unwrap();
    assert!(matches!(new_csr(&key, "../x"), Err(Error::BadName(_))));
    assert!(matches!(p256_ca().issue(&key, "a b", now(), &Serial::from_u64(1)), Err(Error::BadName(_))));
    let before_1970 = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
    assert!(matches!(Ca::create(key, before_1970, &Serial::from_u64(1)), Err(Error::Time)));
}
