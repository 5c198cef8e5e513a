//! What can go wrong with keys, certificates and their files: always a
//! sentence naming the file when there is one, never a panic.

use std::io;
use std::path::PathBuf;

/// An error of the pki module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input has no usable PEM block of the expected kind.
    #[error("expected a PEM '{expected}' block, found {found}")]
    Pem {
        /// The block label that was looked for.
        expected: &'static str,
        /// What the input holds instead.
        found: String,
    },
    /// A certificate that does not parse as X.509.
    #[error("not a valid X.509 certificate: {0}")]
    Certificate(String),
    /// A certificate signing request that does not parse.
    #[error("not a valid certificate signing request: {0}")]
    Csr(String),
    /// A CSR whose signature does not verify with its own key.
    #[error("the certificate signing request's signature does not verify")]
    CsrSignature,
    /// A certificate or CSR without a subject common name.
    #[error("the {0} has no common name")]
    NoCommonName(&'static str),
    /// A name that cannot be a certificate's CN, SAN and file name.
    #[error("'{0}' cannot name a certificate: use letters, digits, '.', '-' and '_', not starting with '.' or '-'")]
    BadName(String),
    /// A private key that neither rcgen nor ring can use.
    #[error("not a usable private key: {0}")]
    Key(String),
    /// A CA key that is not the key of the CA certificate.
    #[error("the key does not belong to the certificate")]
    KeyMismatch,
    /// A CA certificate without basic constraints CA:TRUE.
    #[error("the certificate is not a CA certificate (no basic constraints CA:TRUE)")]
    NotCa,
    /// A time a certificate cannot hold.
    #[error("the time is outside what a certificate can hold")]
    Time,
    /// The system's secure random source failed.
    #[error("the system's random source failed")]
    Random,
    /// rcgen could not make a key, CSR or certificate.
    #[error("cannot make the {what}: {source}")]
    Generate {
        /// What was being made.
        what: &'static str,
        /// rcgen's reason.
        source: rcgen::Error,
    },
    /// A file that holds something unusable.
    #[error("'{}': {source}", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        source: Box<Error>,
    },
    /// A file that cannot be read.
    #[error("cannot read '{}': {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        source: io::Error,
    },
    /// A file or directory that cannot be written.
    #[error("cannot write '{}': {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The OS's reason.
        source: io::Error,
    },
    /// A file that would be overwritten.
    #[error("'{}' exists already; keys and certificates are never overwritten", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A command that needs the CA in a state directory that has none.
    #[error("there is no CA in '{}' (ca.crt and ca.key): create one with 'quiesce pki new-ca'", dir.display())]
    NoCa {
        /// The CA directory looked in.
        dir: PathBuf,
    },
    /// A node key without its certificate, which a new certificate would orphan.
    #[error(
        "the key '{}' exists but its certificate '{}' does not; move the key away to make a new pair",
        key.display(),
        cert.display()
    )]
    KeyWithoutCert {
        /// The node's key file.
        key: PathBuf,
        /// The missing certificate file.
        cert: PathBuf,
    },
    /// A node that trusts a CA it does not have, so it cannot sign its own certificate.
    #[error(
        "'{}' is there but no CA in '{}' to sign a certificate for '{cn}' with: make a key and CSR \
         with 'quiesce pki new-cert --cn {cn} --key FILE --csr FILE' and have the CA's node sign it",
        trusted.display(),
        ca_dir.display()
    )]
    TrustedCaOnly {
        /// The trusted CA certificate.
        trusted: PathBuf,
        /// The empty CA directory.
        ca_dir: PathBuf,
        /// The node's name.
        cn: String,
    },
}

impl Error {
    /// This error, said about the file `path`.
    pub(super) fn in_file(self, path: impl Into<PathBuf>) -> Error {
        Error::Content { path: path.into(), source: Box::new(self) }
    }
}
