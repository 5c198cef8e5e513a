//! PEM in and out, with errors that say what a file holds instead of what
//! was expected.

use base64::Engine;
use rustls_pki_types::pem::{self, PemObject};

use super::Error;

/// `der` as a PEM block with `label`, 64 characters a line as OpenSSL writes it.
pub(super) fn encode(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is a whole string.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The first block of type `T` in `input`, whose label is `expected`.
pub(super) fn decode<T: PemObject>(input: &[u8], expected: &'static str) -> Result<T, Error> {
    T::from_pem_slice(input).map_err(|e| match e {
        pem::Error::NoItemsFound => Error::Pem { expected, found: found(input) },
        other => Error::Pem { expected, found: damaged(&other) },
    })
}

/// What a PEM input holds, for an error message: its block labels or "no PEM block".
fn found(input: &[u8]) -> String {
    let labels: Vec<String> = String::from_utf8_lossy(input)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----").map(str::to_owned))
        .map(|label| format!("'{label}'"))
        .collect();
    if labels.is_empty() {
        "no PEM block".into()
    } else {
        format!("a {} block", labels.join(" and a "))
    }
}

/// A damaged PEM block, said without the raw bytes pki-types puts in its errors.
fn damaged(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a block without its END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a malformed BEGIN line".into(),
        pem::Error::Base64Decode(why) => format!("a block that is not valid base64 ({why})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;

    #[test]
    fn encode_then_decode_is_the_same_der() {
        let der: Vec<u8> = (0..=255).collect();
        let text = encode("CERTIFICATE", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        let back: CertificateDer = decode(text.as_bytes(), "CERTIFICATE").unwrap();
        assert_eq!(back.as_ref(), der.as_slice());
    }

    #[test]
    fn the_error_says_what_the_input_holds() {
        let key = encode("PRIVATE KEY", b"k");
        let e = decode::<CertificateDer>(key.as_bytes(), "CERTIFICATE").unwrap_err().to_string();
        assert!(e.contains("'CERTIFICATE'") && e.contains("a 'PRIVATE KEY' block"), "{e}");
        let e = decode::<CertificateDer>(b"hello", "CERTIFICATE").unwrap_err().to_string();
        assert!(e.contains("no PEM block"), "{e}");
        let e = decode::<CertificateDer>(b"-----BEGIN CERTIFICATE-----\nAAAA\n", "CERTIFICATE")
            .unwrap_err()
            .to_string();
        assert!(e.contains("without its END line"), "{e}");
    }
}
