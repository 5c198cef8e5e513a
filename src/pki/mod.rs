//! Certificates as Icinga lays them out: a cluster CA in `<state>/ca`, the
//! node's certificate, key and trusted CA in `<state>/certs` (see
//! [`Layout`]), and the `quiesce pki` commands that make them.
//!
//! Making and reading keys, CSRs and certificates is pure (bytes in, bytes
//! out) and takes the time and the serial number as inputs, so a simulation
//! can make them deterministic with [`KeyPair::ed25519_from_seed`] and
//! [`Serial::from_u64`]. Only [`KeyPair::generate`] and [`Serial::random`]
//! draw on the system's random source, and only the functions of
//! `files.rs` ([`ensure_for_serve`] and the commands) touch files.

mod certs;
mod der;
mod error;
mod files;
mod keys;
mod layout;
mod pem;

pub use certs::{
    certificate_from_pem, check_name, common_name, new_csr, Ca, CA_NAME, CA_VALIDITY, LEAF_VALIDITY,
};
pub use error::Error;
pub use files::{
    create_ca, create_key_and_csr, create_node_cert, ensure_for_serve, read_ca, read_certificate, read_key,
    sign_csr_file, Provisioned, Written,
};
pub use keys::{KeyPair, Serial};
pub use layout::Layout;

#[cfg(test)]
mod tests;
