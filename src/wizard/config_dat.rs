//! The old post-installer's answers, `config.dat`: `key=value` lines, the tenant
//! password base64-encoded. Read as file input for options 1 to 3, written back
//! (0600) with every accepted answer for reuse.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::{Change, FileSpec};

pub const PATH: &str = "/opt/c8y/utilities/post-installer/config.dat";

pub const TENANT_USERNAME: &str = "tenant.admin.username";
pub const TENANT_PASSWORD: &str = "tenant.admin.password";
pub const TENANT_DOMAIN: &str = "tenant.domain.name";
pub const SSL_CERTIFICATE: &str = "ssl.certificate";
pub const SSL_KEY: &str = "ssl.certificate.key";
pub const C8Y_LICENSE: &str = "c8y.license";
pub const APAMA_LICENSE: &str = "apama.license";
pub const NETWORK_IP: &str = "network.ip";
pub const NETMASK: &str = "netmask";
pub const GATEWAY_IP: &str = "gateway.ip";
pub const DNS_SERVER_IP: &str = "dns.server.ip";
/// edge-setup's addition: which interface the network keys are for.
pub const NETWORK_INTERFACE: &str = "network.interface";
/// edge-setup's addition: the agent's cloud URL (empty: remote management off).
pub const CLOUD_URL: &str = "cloud.url";

/// The old script's keys in its order; others are kept after them.
const ORDER: &[&str] = &[
    TENANT_USERNAME,
    TENANT_PASSWORD,
    TENANT_DOMAIN,
    SSL_CERTIFICATE,
    SSL_KEY,
    C8Y_LICENSE,
    APAMA_LICENSE,
    NETWORK_IP,
    NETMASK,
    GATEWAY_IP,
    DNS_SERVER_IP,
    NETWORK_INTERFACE,
    CLOUD_URL,
];

/// The parsed file; values are wiped from memory when it is dropped.
#[derive(Default)]
pub struct ConfigDat {
    entries: Vec<(String, String)>,
}

impl Drop for ConfigDat {
    fn drop(&mut self) {
        for (_, v) in &mut self.entries {
            v.zeroize();
        }
    }
}

impl ConfigDat {
    /// Parses `key=value` lines; blank lines and `#` comments are skipped. A
    /// line without `=` is an error with its line number.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut dat = ConfigDat::default();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let Some((k, v)) = t.split_once('=') else {
                return Err((i + 1, "expected key=value".to_string()));
            };
            let k = k.trim();
            if k.is_empty() {
                return Err((i + 1, "the key before '=' is empty".to_string()));
            }
            dat.set(k, v.trim());
        }
        Ok(dat)
    }

    /// The saved config.dat at `PATH`, for the prompts' defaults only: a missing
    /// or unreadable one gives no defaults.
    pub fn saved(sys: &System) -> Option<Self> {
        Self::load(sys, Path::new(PATH)).ok().flatten()
    }

    /// Reads a config.dat at a path on the target (the saved one, or `--config-dat FILE`).
    pub fn load(sys: &System, path: &Path) -> Result<Option<Self>> {
        let Some(text) = sys.read_string(path)? else {
            return Ok(None);
        };
        let text = Zeroizing::new(text);
        Self::parse(&text).map(Some).map_err(|(line, why)| {
            Error::bad_input(format!(
                "{}:{line}: cannot read this line",
                sys.host_path(path).display()
            ))
            .why(why)
            .hint("fix the line (key=value, as the post-installer wrote it) and run the command again")
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn set(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => {
                v.zeroize();
                *v = value.to_string();
            }
            None => self.entries.push((key.to_string(), value.to_string())),
        }
    }

    /// The decoded tenant password.
    pub fn password(&self) -> Option<Result<Zeroizing<String>, String>> {
        self.get(TENANT_PASSWORD).map(decode_password)
    }

    pub fn set_password(&mut self, password: &str) {
        let encoded = Zeroizing::new(STANDARD.encode(password.as_bytes()));
        self.set(TENANT_PASSWORD, &encoded);
    }

    fn render(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        let known = ORDER.iter().filter_map(|k| self.entries.iter().find(|(e, _)| e == k));
        let others = self.entries.iter().filter(|(k, _)| !ORDER.contains(&k.as_str()));
        for (k, v) in known.chain(others) {
            out.push_str(k);
            out.push('=');
            out.push_str(v);
            out.push('\n');
        }
        out
    }

    /// Merges these answers into the saved file (0600, root) and writes it.
    pub fn save_merged(&self, sys: &System) -> Result<Change> {
        let mut saved = Self::load(sys, Path::new(PATH)).ok().flatten().unwrap_or_default();
        for (k, v) in &self.entries {
            saved.set(k, v);
        }
        sys.write(Path::new(PATH), saved.render().as_bytes(), FileSpec::root(0o600))
    }
}

pub fn decode_password(encoded: &str) -> Result<Zeroizing<String>, String> {
    let bytes = Zeroizing::new(
        STANDARD
            .decode(encoded.trim())
            .map_err(|_| "the password is not valid base64 (config.dat keeps it base64-encoded)".to_string())?,
    );
    String::from_utf8(bytes.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| "the decoded password is not text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_old_format_and_decodes_the_password() {
        let dat = ConfigDat::parse("# saved\ntenant.admin.username=admin\ntenant.admin.password=U2VjcmV0MTIz\nnetwork.ip = 10.0.0.5\nnetmask=\n").unwrap();
        assert_eq!(dat.get(TENANT_USERNAME), Some("admin"));
        assert_eq!(dat.password().unwrap().unwrap().as_str(), "Secret123");
        assert_eq!(dat.get(NETWORK_IP), Some("10.0.0.5"));
        assert_eq!(dat.get(NETMASK), None);
        assert_eq!(ConfigDat::parse("a=1\nnonsense\n").err().unwrap().0, 2);
        assert!(decode_password("***").is_err());
    }

    #[test]
    fn renders_in_the_old_order_with_the_password_encoded() {
        let mut dat = ConfigDat::default();
        dat.set("custom.key", "x");
        dat.set(NETWORK_IP, "10.0.0.5");
        dat.set_password("Secret123");
        assert_eq!(
            dat.render().as_str(),
            "tenant.admin.password=U2VjcmV0MTIz\nnetwork.ip=10.0.0.5\ncustom.key=x\n"
        );
    }

    const NEAR: &[&str] = &[
        "hostname=edge-1",
        "ip=192.168.1.10",
        "# comment",
        "",
        "password=czNjcjN0",
        "=x",
        "key=",
        "a=b=c",
        "netmask=255.255.255.0",
        "dns=8.8.8.8,1.1.1.1",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz::CASES))]
        /// Any text is a config.dat or an error naming one of its lines.
        #[test]
        fn any_text_parses_or_names_its_line(text in crate::fuzz::text(NEAR)) {
            if let Err((line, _)) = ConfigDat::parse(&text) {
                proptest::prop_assert!((1..=crate::fuzz::line_count(&text)).contains(&line));
            }
        }
    }
}
