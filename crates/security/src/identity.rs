//! Who a client certificate names: the common name (CN) of its subject, which for
//! `client.<user>.crt` is the SQL user (see `certs.rs`); and which certificate it is, by
//! fingerprint.
//!
//! rustls has already checked the certificate against the CA when this runs; this only reads
//! the name. The reader walks the DER just far enough: Certificate → TBSCertificate → subject
//! (the sixth field, after an optional explicit version) → its attribute sets.

/// The OID of `commonName` (2.5.4.3), DER-encoded.
const COMMON_NAME_OID: &[u8] = &[0x55, 0x04, 0x03];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION_TAG: u8 = 0xa0;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;

/// One DER element: its tag, its contents, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The contents of the SEQUENCE that `der` starts with.
fn sequence(der: &[u8]) -> Option<&[u8]> {
    match element(der)? {
        (SEQUENCE, contents, _) => Some(contents),
        _ => None,
    }
}

/// The subject's common name of a DER certificate; `None` when it has none or the DER is not
/// a certificate.
pub fn certificate_common_name(der: &[u8]) -> Option<String> {
    let tbs = sequence(sequence(der)?)?;
    let mut fields = tbs;
    // version [0] EXPLICIT is optional; then serialNumber, signature, issuer, validity.
    if let Some((VERSION_TAG, _, rest)) = element(fields) {
        fields = rest;
    }
    for _ in 0..4 {
        fields = element(fields)?.2;
    }
    let mut rdns = sequence(fields)?;
    while !rdns.is_empty() {
        let (tag, set, rest) = element(rdns)?;
        rdns = rest;
        if tag != SET {
            return None;
        }
        let mut attributes = set;
        while !attributes.is_empty() {
            let (tag, attribute, rest) = element(attributes)?;
            attributes = rest;
            if tag != SEQUENCE {
                return None;
            }
            let (oid_tag, oid, value) = element(attribute)?;
            if oid_tag == OID && oid == COMMON_NAME_OID {
                let (string_tag, text, _) = element(value)?;
                return match string_tag {
                    UTF8_STRING | PRINTABLE_STRING | IA5_STRING => {
                        String::from_utf8(text.to_vec()).ok()
                    }
                    _ => None,
                };
            }
        }
    }
    None
}

/// The SHA-256 fingerprint of a DER certificate, as colon-separated hex bytes (as `openssl
/// x509 -fingerprint -sha256` prints it, in lower case): what a log line names a certificate
/// by.
pub fn certificate_fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    hex.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertsDir, NODE_COMMON_NAME, create_ca, create_client, create_node, load_certs};

    #[test]
    fn client_and_node_certificates_name_their_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CertsDir::new(tmp.path());
        let ca_key = dir.default_ca_key();
        create_ca(&dir, &ca_key, false).unwrap();
        create_node(&dir, &ca_key, &["localhost".to_owned()], false).unwrap();
        create_client(&dir, &ca_key, "root", false).unwrap();
        let name = |path: std::path::PathBuf| {
            let certs = load_certs(&path).unwrap();
            certificate_common_name(certs[0].as_ref())
        };
        assert_eq!(name(dir.client_cert("root")).as_deref(), Some("root"));
        assert_eq!(name(dir.node_cert()).as_deref(), Some(NODE_COMMON_NAME));
    }

    #[test]
    fn malformed_input_names_nobody() {
        assert_eq!(certificate_common_name(&[]), None);
        assert_eq!(certificate_common_name(&[0x30, 0x82, 0xff]), None);
        assert_eq!(
            certificate_common_name(&[0x30, 0x03, 0x30, 0x01, 0x00]),
            None
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = CertsDir::new(tmp.path());
        create_ca(&dir, &dir.default_ca_key(), false).unwrap();
        let ca = load_certs(&dir.ca_cert()).unwrap()[0].as_ref().to_vec();
        // Every truncation of a real certificate is rejected without a panic.
        for end in 0..ca.len() {
            let _ = certificate_common_name(&ca[..end]);
        }
    }
}
