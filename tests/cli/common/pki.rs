//! Certificates, keys, licences and a password file for the post-installation
//! tests, generated with rcgen in a temporary directory (host paths, as a user
//! would give them).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use rcgen::{CertificateParams, KeyPair, date_time_ymd};

pub const DOMAIN: &str = "edge.example.com";
pub const PASSWORD: &str = "Tenant#Secret42";
pub const NEW_PASSWORD: &str = "N3w{Pass}word!";

pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        let key = KeyPair::generate().unwrap();
        let edge = pki.cert("edge.crt", &[DOMAIN], &key, None);
        pki.write("edge.key", &key.serialize_pem());
        pki.write("edge.pem", &edge);
        pki.write("cert-not-key.key", &edge);
        pki.write("other.key", &KeyPair::generate().unwrap().serialize_pem());
        pki.cert("other-domain.crt", &["other.example.com"], &key, None);
        pki.cert("expired.crt", &[DOMAIN], &key, Some((1999, 2000)));
        pki.cert("wildcard.crt", &["*.example.com"], &key, None);
        let next = KeyPair::generate().unwrap();
        pki.cert("next.crt", &[DOMAIN], &next, None);
        pki.write("next.key", &next.serialize_pem());
        pki.write("c8y.licence", "LICENCE-KEY-1234\n");
        pki.write("next.licence", "LICENCE-KEY-5678\n");
        pki.write("empty.licence", "\n");
        pki.write("apama.xml", "<license>apama</license>\n");
        pki.secret("password", PASSWORD);
        pki.secret("new-password", NEW_PASSWORD);
        pki
    }

    fn cert(&self, name: &str, sans: &[&str], key: &KeyPair, years: Option<(i32, i32)>) -> String {
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        if let Some((from, to)) = years {
            params.not_before = date_time_ymd(from, 1, 1);
            params.not_after = date_time_ymd(to, 1, 1);
        }
        let pem = params.self_signed(key).unwrap().pem();
        self.write(name, &pem);
        pem
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    /// A private (0600) file holding a secret.
    pub fn secret(&self, name: &str, text: &str) {
        self.write(name, &format!("{text}\n"));
        std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn file(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// A `[post-install]` table with good values; `changes` replace a key's
    /// value, or drop the key when the value is `None`.
    pub fn post_install(&self, changes: &[(&str, Option<&str>)]) -> String {
        let mut keys: Vec<(&str, String)> = vec![
            ("username", "admin".into()),
            ("password-file", self.file("password")),
            ("domain", DOMAIN.into()),
            ("certificate", self.file("edge.crt")),
            ("key", self.file("edge.key")),
            ("licence", self.file("c8y.licence")),
            ("apama-licence", self.file("apama.xml")),
            ("cloud-url", "https://tenant.cumulocity.com".into()),
        ];
        for (k, v) in changes {
            match v {
                Some(v) => match keys.iter_mut().find(|(key, _)| key == k) {
                    Some(entry) => entry.1 = v.to_string(),
                    None => keys.push((k, v.to_string())),
                },
                None => keys.retain(|(key, _)| key != k),
            }
        }
        let mut out = "[post-install]\n".to_string();
        for (k, v) in keys {
            out.push_str(&format!("{k} = {}\n", toml::Value::String(v)));
        }
        out
    }

    /// Writes an answers file into the directory and returns its path.
    pub fn answers(&self, text: &str) -> PathBuf {
        let p = self.path("answers.toml");
        std::fs::write(&p, text).unwrap();
        p
    }
}
