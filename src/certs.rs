//! The files of the platform's TLS identity and licence, checked before they
//! are installed: the certificate parses, is valid now and names the tenant
//! domain (RFC 6125); the key is a key and belongs to the certificate; a
//! licence is a non-empty file. Every refusal names the file and the reason.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::time::ASN1Time;
use x509_parser::x509::SubjectPublicKeyInfo;

/// The kinds of file the post-installation takes, with their extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Certificate,
    Key,
    Licence,
    ApamaLicence,
}

impl FileKind {
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            FileKind::Certificate => &["crt", "cert"],
            FileKind::Key => &["key"],
            FileKind::Licence => &["licence"],
            FileKind::ApamaLicence => &["xml"],
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            FileKind::Certificate => "SSL certificate",
            FileKind::Key => "SSL certificate key",
            FileKind::Licence => "Cumulocity licence",
            FileKind::ApamaLicence => "Apama licence",
        }
    }
}

/// An absolute path with the kind's extension (checked before the file is read).
pub fn check_path(s: &str, kind: FileKind) -> Result<PathBuf, String> {
    let s = s.trim();
    let path = Path::new(s);
    if s.is_empty() {
        return Err(format!("give the path of the {}", kind.noun()));
    }
    if !path.is_absolute() {
        return Err(format!(
            "{s}: the path of the {} must be absolute (start with /)",
            kind.noun()
        ));
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    let allowed = kind.extensions();
    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(ext)) {
        let list: Vec<String> = allowed.iter().map(|a| format!(".{a}")).collect();
        return Err(format!("{s}: the {} must be a {} file", kind.noun(), list.join(" or ")));
    }
    Ok(path.to_path_buf())
}

/// A fully qualified domain name, lower-cased, without a trailing dot.
pub fn parse_domain(s: &str) -> Result<String, String> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |why: &str| Err(format!("'{}' is not a fully qualified domain name: {why}", s.trim()));
    if d.is_empty() {
        return bad("it is empty");
    }
    if d.len() > 253 {
        return bad("it has more than 253 characters");
    }
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 {
        return bad("it needs at least two labels, like edge.example.com");
    }
    for label in &labels {
        if label.is_empty() || label.len() > 63 {
            return bad("each label between dots has 1 to 63 characters");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return bad("labels have letters, digits and '-' (not at either end)");
        }
    }
    if labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return bad("the last label cannot be a number");
    }
    Ok(d)
}

/// Whether a presented DNS identifier covers `domain` (RFC 6125 6.4): exact
/// match ignoring case, or a wildcard that is the whole left-most label and
/// matches exactly one label, with at least two labels after it.
pub fn name_matches(presented: &str, domain: &str) -> bool {
    let presented = presented.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    match presented.strip_prefix("*.") {
        Some(rest) => {
            if rest.contains('*') || rest.split('.').count() < 2 {
                return false;
            }
            match domain.split_once('.') {
                Some((first, tail)) => !first.is_empty() && tail == rest,
                None => false,
            }
        }
        None => !presented.contains('*') && presented == domain,
    }
}

/// A certificate that passed the checks: the leaf's public key, for the key check.
#[derive(Debug)]
pub struct Certificate {
    spki: Vec<u8>,
    /// When the leaf expires.
    pub not_after: ASN1Time,
}

/// Checks a PEM certificate file (leaf first, chain after it) at `now`.
pub fn check_certificate(path: &Path, pem: &[u8], domain: &str, now: ASN1Time) -> Result<Certificate, String> {
    let p = path.display();
    let ders: Vec<CertificateDer> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{p}: the certificate file is not valid PEM ({e})"))?;
    let Some(leaf_der) = ders.first() else {
        return Err(format!(
            "{p}: no certificate found; expected PEM text with -----BEGIN CERTIFICATE-----"
        ));
    };
    for (i, der) in ders.iter().enumerate() {
        X509Certificate::from_der(der)
            .map_err(|e| format!("{p}: certificate {} of the file cannot be parsed ({e})", i + 1))?;
    }
    let (_, leaf) = X509Certificate::from_der(leaf_der).expect("parsed above");
    let validity = leaf.validity();
    if now > validity.not_after {
        return Err(format!(
            "{p}: the certificate expired on {}",
            validity.not_after.to_datetime().date()
        ));
    }
    if now < validity.not_before {
        return Err(format!(
            "{p}: the certificate is not valid before {} (check the appliance's clock)",
            validity.not_before.to_datetime().date()
        ));
    }
    let names = presented_names(&leaf).map_err(|e| format!("{p}: {e}"))?;
    if !names.iter().any(|n| name_matches(n, domain)) {
        let listed = if names.is_empty() {
            "no DNS name".to_string()
        } else {
            names.join(", ")
        };
        return Err(format!(
            "{p}: the certificate does not cover {domain}: it names {listed}"
        ));
    }
    Ok(Certificate {
        spki: leaf.public_key().raw.to_vec(),
        not_after: validity.not_after,
    })
}

/// The DNS identifiers a certificate presents: its SAN dNSNames, or its
/// subject CNs when it has none (RFC 6125 6.4.4).
fn presented_names(cert: &X509Certificate) -> Result<Vec<String>, String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("the subject alternative names cannot be read ({e})"))?;
    let dns: Vec<String> = san
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !dns.is_empty() {
        return Ok(dns);
    }
    Ok(cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_string)
        .collect())
}

/// Checks a PEM private key: unencrypted, a supported type, and the key of `cert`.
pub fn check_key(path: &Path, pem: &[u8], cert: &Certificate) -> Result<(), String> {
    let p = path.display();
    if contains(pem, b"ENCRYPTED") {
        return Err(format!(
            "{p}: the key is encrypted with a passphrase; the platform needs it unencrypted \
             (openssl pkey -in {p} -out NEW.key)"
        ));
    }
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!(
            "{p}: no private key found; expected PEM text with -----BEGIN PRIVATE KEY----- \
             (or RSA/EC PRIVATE KEY)"
        ),
        e => format!("{p}: the key file is not valid PEM ({e})"),
    })?;
    let key = rustls::crypto::ring::sign::any_supported_type(&der).map_err(|_| {
        format!("{p}: the key is not a supported private key (RSA of 2048 bits or more, ECDSA P-256/P-384, Ed25519)")
    })?;
    let key_spki = key
        .public_key()
        .ok_or_else(|| format!("{p}: the key's public half cannot be derived"))?;
    if !same_public_key(key_spki.as_ref(), &cert.spki) {
        return Err(format!(
            "{p}: the key does not belong to the certificate (their public keys differ)"
        ));
    }
    Ok(())
}

/// Compares algorithm and key bits, so an RSA AlgorithmIdentifier with or
/// without its NULL parameter still matches.
fn same_public_key(a: &[u8], b: &[u8]) -> bool {
    match (SubjectPublicKeyInfo::from_der(a), SubjectPublicKeyInfo::from_der(b)) {
        (Ok((_, a)), Ok((_, b))) => {
            a.algorithm.algorithm == b.algorithm.algorithm && a.subject_public_key.data == b.subject_public_key.data
        }
        _ => false,
    }
}

/// A licence file: something in it besides white space.
pub fn check_licence(path: &Path, bytes: &[u8], kind: FileKind) -> Result<(), String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(format!("{}: the {} file is empty", path.display(), kind.noun()));
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, date_time_ymd};

    fn cert(sans: &[&str], cn: Option<&str>, key: &KeyPair) -> String {
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.self_signed(key).unwrap().pem()
    }

    fn now() -> ASN1Time {
        ASN1Time::now()
    }

    #[test]
    fn wildcards_follow_rfc_6125() {
        assert!(name_matches("*.example.com", "a.example.com"));
        assert!(name_matches("*.Example.com.", "A.example.COM"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(!name_matches("*.com", "example.com"));
        assert!(!name_matches("a*.example.com", "ab.example.com"));
        assert!(!name_matches("*.*.example.com", "a.b.example.com"));
        assert!(name_matches("edge.example.com", "EDGE.example.com"));
        assert!(!name_matches("edge.example.com", "edge2.example.com"));
    }

    #[test]
    fn domains() {
        assert_eq!(parse_domain("Edge.Example.com.").unwrap(), "edge.example.com");
        assert!(parse_domain("localhost").unwrap_err().contains("two labels"));
        assert!(parse_domain("a..b").is_err());
        assert!(parse_domain("-a.example.com").is_err());
        assert!(parse_domain("under_score.example.com").is_err());
        assert!(parse_domain("10.0.0.1").unwrap_err().contains("number"));
        assert!(parse_domain("").is_err());
    }

    #[test]
    fn paths_are_absolute_with_the_right_extension() {
        assert!(check_path("/tmp/a.crt", FileKind::Certificate).is_ok());
        assert!(check_path("/tmp/a.CERT", FileKind::Certificate).is_ok());
        let e = check_path("a.crt", FileKind::Certificate).unwrap_err();
        assert!(e.contains("absolute"), "{e}");
        let e = check_path("/tmp/a.pem", FileKind::Certificate).unwrap_err();
        assert!(e.contains(".crt or .cert"), "{e}");
        assert!(check_path("/tmp/l.license", FileKind::Licence).is_err());
        assert!(check_path("/tmp/a.xml", FileKind::ApamaLicence).is_ok());
    }

    #[test]
    fn matching_key_passes_and_a_mismatch_is_named() {
        let key = KeyPair::generate().unwrap();
        let other = KeyPair::generate().unwrap();
        let pem = cert(&["edge.example.com"], None, &key);
        let p = Path::new("/f/edge.crt");
        let c = check_certificate(p, pem.as_bytes(), "edge.example.com", now()).unwrap();
        assert!(check_key(Path::new("/f/edge.key"), key.serialize_pem().as_bytes(), &c).is_ok());
        let e = check_key(Path::new("/f/other.key"), other.serialize_pem().as_bytes(), &c).unwrap_err();
        assert!(e.starts_with("/f/other.key:") && e.contains("does not belong"), "{e}");
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let c = check_certificate(
            p,
            cert(&["edge.example.com"], None, &ed).as_bytes(),
            "edge.example.com",
            now(),
        )
        .unwrap();
        assert!(check_key(p, ed.serialize_pem().as_bytes(), &c).is_ok());
        let e = check_key(p, pem.as_bytes(), &c).unwrap_err();
        assert!(e.contains("no private key found"), "{e}");
        let e = check_key(p, b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n", &c).unwrap_err();
        assert!(e.contains("passphrase"), "{e}");
    }

    #[test]
    fn expiry_and_not_yet_valid() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["edge.example.com".to_string()]).unwrap();
        params.not_before = date_time_ymd(1999, 1, 1);
        params.not_after = date_time_ymd(2000, 1, 1);
        let pem = params.self_signed(&key).unwrap().pem();
        let e = check_certificate(Path::new("/x.crt"), pem.as_bytes(), "edge.example.com", now()).unwrap_err();
        assert_eq!(e, "/x.crt: the certificate expired on 2000-01-01");
        params.not_before = date_time_ymd(2999, 1, 1);
        params.not_after = date_time_ymd(3000, 1, 1);
        let pem = params.self_signed(&key).unwrap().pem();
        let e = check_certificate(Path::new("/x.crt"), pem.as_bytes(), "edge.example.com", now()).unwrap_err();
        assert!(e.contains("not valid before 2999-01-01"), "{e}");
    }

    #[test]
    fn san_takes_precedence_over_cn() {
        let key = KeyPair::generate().unwrap();
        let p = Path::new("/x.crt");
        // a CN alone is used when there is no SAN
        let pem = cert(&[], Some("edge.example.com"), &key);
        assert!(check_certificate(p, pem.as_bytes(), "edge.example.com", now()).is_ok());
        // with a SAN dNSName the CN is ignored
        let pem = cert(&["other.example.com"], Some("edge.example.com"), &key);
        let e = check_certificate(p, pem.as_bytes(), "edge.example.com", now()).unwrap_err();
        assert!(
            e.contains("does not cover edge.example.com: it names other.example.com"),
            "{e}"
        );
        let pem = cert(&["*.example.com"], None, &key);
        assert!(check_certificate(p, pem.as_bytes(), "edge.example.com", now()).is_ok());
        assert!(check_certificate(p, pem.as_bytes(), "example.com", now()).is_err());
    }

    #[test]
    fn not_pem_and_empty_licences() {
        let p = Path::new("/x.crt");
        let e = check_certificate(p, b"hello", "edge.example.com", now()).unwrap_err();
        assert!(e.contains("no certificate found"), "{e}");
        let e = check_certificate(
            p,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "edge.example.com",
            now(),
        )
        .unwrap_err();
        assert!(e.contains("cannot be parsed"), "{e}");
        let l = Path::new("/l.licence");
        assert!(
            check_licence(l, b" \n", FileKind::Licence)
                .unwrap_err()
                .contains("/l.licence: the Cumulocity licence file is empty")
        );
        assert!(check_licence(l, b"KEY", FileKind::Licence).is_ok());
    }
}
