//! Certificates for simulated nodes: one CA per run and a certificate per
//! node, all Ed25519 from keys derived from the seed, dated at the
//! simulation's epoch. Ed25519 signatures are deterministic, so a TLS
//! handshake is a function of the seed like everything else in a run.

use quiesce::pki::{Ca, KeyPair, Serial};
use quiesce::tls::TlsMaterial;
use sha2::{Digest, Sha256};

/// A 32-byte key seed for `what` in the run of `seed`.
fn key_seed(seed: u64, what: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(what.as_bytes());
    h.finalize().into()
}

/// The run's CA.
fn ca(seed: u64) -> Ca {
    let key = KeyPair::ed25519_from_seed(&key_seed(seed, "ca")).expect("an Ed25519 key from 32 bytes");
    Ca::create(key, crate::env::epoch(), &Serial::from_u64(1)).expect("a CA from a fixed key and date")
}

/// The run's CA certificate, PEM.
pub fn ca_pem(seed: u64) -> String {
    ca(seed).cert_pem()
}

/// What node (or peer) `name` of the run of `seed` presents and trusts.
pub fn material(seed: u64, name: &str) -> TlsMaterial {
    let ca = ca(seed);
    let key = KeyPair::ed25519_from_seed(&key_seed(seed, name)).expect("an Ed25519 key from 32 bytes");
    let serial =
        Serial::from_bytes(key_seed(seed, &format!("serial {name}"))[..16].try_into().unwrap_or([1; 16]));
    let cert = ca.issue(&key, name, crate::env::epoch(), &serial).expect("a node certificate");
    TlsMaterial::from_pem(ca.cert_pem().as_bytes(), cert.as_bytes(), key.to_pem().as_bytes())
        .expect("material the run made itself")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_certificates_and_another_seed_others() {
        let pem = |seed, name| format!("{:?}", material(seed, name).chain);
        assert_eq!(pem(7, "a"), pem(7, "a"), "a replay of a seed must make the same handshake");
        assert_ne!(pem(7, "a"), pem(8, "a"));
        assert_eq!(material(7, "a").common_name().as_deref(), Some("a"));
    }
}
