//! Private keys and serial numbers: the two inputs of a certificate that
//! are not the clock.

use std::fmt;

use rcgen::PublicKeyData;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{der, pem, Error};

/// A private key that signs certificates, CSRs and TLS handshakes.
pub struct KeyPair(pub(super) rcgen::KeyPair);

impl KeyPair {
    /// A new ECDSA P-256 key from the system's random source. The default:
    /// Icinga's OpenSSL offers ECDHE-ECDSA suites, so a peer negotiates it.
    pub fn generate() -> Result<KeyPair, Error> {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map(KeyPair)
            .map_err(|source| Error::Generate { what: "key", source })
    }

    /// The Ed25519 key of `seed`. Ed25519 signatures are deterministic, so
    /// the same seed, time and serial make byte-identical certificates: what
    /// a simulation needs.
    pub fn ed25519_from_seed(seed: &[u8; 32]) -> Result<KeyPair, Error> {
        from_pkcs8(&der::ed25519_pkcs8(seed))
    }

    /// Reads a PEM key: PKCS#8 (`PRIVATE KEY`), and also the PKCS#1 RSA
    /// (`RSA PRIVATE KEY`) and SEC1 (`EC PRIVATE KEY`) keys that OpenSSL and
    /// `icinga2 pki` write.
    pub fn from_pem(input: &[u8]) -> Result<KeyPair, Error> {
        let key: PrivateKeyDer = pem::decode(input, "PRIVATE KEY")?;
        // ring reads PKCS#8 only: the other forms are wrapped first.
        let candidates = match &key {
            PrivateKeyDer::Pkcs8(k) => vec![k.secret_pkcs8_der().to_vec()],
            PrivateKeyDer::Pkcs1(k) => vec![der::pkcs8_v1(der::RSA, k.secret_pkcs1_der())],
            // SEC1 may omit its curve: try each one ring signs with.
            PrivateKeyDer::Sec1(k) => [der::EC_P256, der::EC_P384]
                .iter()
                .map(|alg| der::pkcs8_v1(alg, k.secret_sec1_der()))
                .collect(),
            _ => return Err(Error::Key("an unknown kind of private key".into())),
        };
        let mut last = Error::Key("no candidate".into());
        for pkcs8 in candidates {
            match from_pkcs8(&pkcs8) {
                Ok(pair) => return Ok(pair),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The key as a PKCS#8 PEM, as key files hold it.
    pub fn to_pem(&self) -> String {
        pem::encode("PRIVATE KEY", self.0.serialized_der())
    }

    /// The key for a TLS configuration (PKCS#8, whatever form it was read from).
    pub fn to_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.0.serialize_der()).into()
    }

    /// The public key's bits, to match the key with a certificate.
    pub(super) fn public_key_raw(&self) -> &[u8] {
        self.0.der_bytes()
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key itself: a Debug line may reach a log.
        write!(f, "KeyPair({:?})", self.0.algorithm())
    }
}

fn from_pkcs8(pkcs8: &[u8]) -> Result<KeyPair, Error> {
    rcgen::KeyPair::try_from(pkcs8).map(KeyPair).map_err(|e| Error::Key(e.to_string()))
}

/// A certificate's serial number: 16 bytes, positive and never zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serial([u8; 16]);

impl Serial {
    /// The serial of `bytes`, with the top two bits set to `01` so that it
    /// is positive, not zero, and always 16 bytes long in DER.
    pub fn from_bytes(mut bytes: [u8; 16]) -> Serial {
        bytes[0] = (bytes[0] & 0x3f) | 0x40;
        Serial(bytes)
    }

    /// A serial from one number, for a simulation that draws it from its seed.
    pub fn from_u64(n: u64) -> Serial {
        let mut bytes = [0; 16];
        bytes[8..].copy_from_slice(&n.to_be_bytes());
        Serial::from_bytes(bytes)
    }

    /// 126 random bits from the system's secure source, as a CA should use
    /// (a production edge: the simulation uses [`Serial::from_u64`]).
    pub fn random() -> Result<Serial, Error> {
        use ring::rand::SecureRandom;
        let mut bytes = [0; 16];
        ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| Error::Random)?;
        Ok(Serial::from_bytes(bytes))
    }

    /// The serial's bytes, big-endian.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}
