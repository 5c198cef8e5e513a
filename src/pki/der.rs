//! The few DER structures that rcgen, on ring, cannot make itself: PKCS#8 v1
//! wrappers for an Ed25519 seed (RFC 8410) and for the PKCS#1 RSA and SEC1 EC
//! keys that OpenSSL and `icinga2 pki` write, since ring reads only PKCS#8.

/// `AlgorithmIdentifier { id-Ed25519 }` (RFC 8410: no parameters).
const ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

/// `AlgorithmIdentifier { rsaEncryption, NULL }`.
pub(super) const RSA: &[u8] =
    &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];

/// `AlgorithmIdentifier { id-ecPublicKey, prime256v1 }`.
pub(super) const EC_P256: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07,
];

/// `AlgorithmIdentifier { id-ecPublicKey, secp384r1 }`.
pub(super) const EC_P384: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
    0x22,
];

const SEQUENCE: u8 = 0x30;
const OCTET_STRING: u8 = 0x04;

/// `OneAsymmetricKey` version 1 (PKCS#8 v1) holding `private_key` for `algorithm`.
pub(super) fn pkcs8_v1(algorithm: &[u8], private_key: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(algorithm);
    body.extend(tlv(OCTET_STRING, private_key));
    tlv(SEQUENCE, &body)
}

/// The PKCS#8 v1 key of an Ed25519 seed: the key is `CurvePrivateKey`, itself
/// an OCTET STRING, inside the `privateKey` OCTET STRING (RFC 8410 section 7).
pub(super) fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    pkcs8_v1(ED25519, &tlv(OCTET_STRING, seed))
}

/// One DER element; the length in the short form below 128, else the long one.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn ed25519_seed_makes_the_rfc_8410_example_key() {
        // RFC 8410 section 10.3, the example private key.
        let pem_body = "MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC";
        let expected = base64::engine::general_purpose::STANDARD.decode(pem_body).unwrap();
        let seed: [u8; 32] = expected[16..].try_into().unwrap();
        assert_eq!(ed25519_pkcs8(&seed), expected);
    }

    #[test]
    fn long_lengths_take_the_long_form() {
        assert_eq!(tlv(0x04, &[7; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[7; 0x80])[..3], [0x04, 0x81, 0x80]);
        assert_eq!(tlv(0x04, &[7; 0x1234])[..4], [0x04, 0x82, 0x12, 0x34]);
    }
}
