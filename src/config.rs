//! Typed configuration keys in /etc/edge-setup/edge-setup.toml.
//!
//! Every key has a parser that is its validation: `config set` refuses what the
//! parser refuses, with the parser's own words. The file is edited in place
//! (comments and unknown keys are kept) and written atomically; a file that does
//! not parse is reported with its line and column and never overwritten.

use std::marker::PhantomData;
use std::path::Path;

use toml_edit::{DocumentMut, Item, Value};

use crate::device_id;
use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::{Change, FileSpec};
pub use crate::values::{
    DeviceId, FilePath, Geometry, KeyValue, Listen, MountPoint, PackageList, ProxyUrl, Scheme, Seconds, TenantUrl,
    UnitName,
};

pub const PATH: &str = "/etc/edge-setup/edge-setup.toml";
const HEADER: &str = include_str!("../templates/edge-setup.toml");

/// Where a key's value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In edge-setup.toml.
    Toml,
    /// In the appliance's device-id file, which the agent reads.
    DeviceIdFile,
}

pub struct KeyDef {
    pub name: &'static str,
    pub doc: &'static str,
    pub example: &'static str,
    pub default: Option<&'static str>,
    /// Stored as a TOML array; given on the command line comma-separated.
    pub list: bool,
    pub storage: Storage,
    /// Parses and normalises a value given by the user.
    pub validate: fn(&str) -> Result<String, String>,
}

fn validate<T: KeyValue>(s: &str) -> Result<String, String> {
    T::parse(s).map(|v| v.render())
}

/// A key whose values are `T`: its definition takes `T`'s parser as its rule
/// (`Key::def`), and code reads it as a `T` (`Config::get`), so a reader cannot
/// disagree with what `config set` accepted.
pub struct Key<T> {
    pub name: &'static str,
    value: PhantomData<fn() -> T>,
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Key<T> {}

impl<T> std::fmt::Display for Key<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl<T: KeyValue> Key<T> {
    const fn new(name: &'static str) -> Key<T> {
        Key {
            name,
            value: PhantomData,
        }
    }

    /// Its definition in `KEYS`.
    pub fn def(self) -> &'static KeyDef {
        key(self.name).expect("every key is defined in KEYS")
    }

    /// The key's definition, its rule `T`'s parser.
    const fn define(self, doc: &'static str, example: &'static str, default: Option<&'static str>) -> KeyDef {
        KeyDef {
            name: self.name,
            doc,
            example,
            default,
            list: false,
            storage: Storage::Toml,
            validate: validate::<T>,
        }
    }
}

impl KeyDef {
    /// Stored as a TOML array.
    const fn list(self) -> KeyDef {
        KeyDef { list: true, ..self }
    }

    /// Stored in the device-id file.
    const fn device_id_file(self) -> KeyDef {
        KeyDef {
            storage: Storage::DeviceIdFile,
            ..self
        }
    }
}

pub const C8Y_URL: Key<TenantUrl> = Key::new("c8y.url");
pub const DEVICE_ID: Key<DeviceId> = Key::new("device.id");
pub const VNC_LISTEN: Key<Listen> = Key::new("vnc.listen");
pub const VNC_DESKTOP_APPS: Key<PackageList> = Key::new("vnc.desktop-apps");
pub const VNC_GEOMETRY: Key<Geometry> = Key::new("vnc.geometry");
/// Whether c8y.url may be http://; read c8y.url with `Config::tenant_url`, which honours it.
pub const C8Y_INSECURE: Key<bool> = Key::new("c8y.insecure");
pub const AGENT_SERVICE: Key<UnitName> = Key::new("agent.service");
pub const DISK_DATA_MOUNT: Key<MountPoint> = Key::new("disk.data-mount");
pub const VNC_LOCK_WAIT: Key<Seconds> = Key::new("vnc.lock-wait");
pub const C8Y_CREDENTIALS_FILE: Key<FilePath> = Key::new("c8y.credentials-file");
pub const C8Y_CA_FILE: Key<FilePath> = Key::new("c8y.ca-file");
pub const C8Y_REQUEST_TIMEOUT: Key<Seconds> = Key::new("c8y.request-timeout");
pub const C8Y_PROXY: Key<ProxyUrl> = Key::new("c8y.proxy");

pub static KEYS: &[KeyDef] = &[
    C8Y_URL.define(
        "The Cumulocity tenant URL the Edge agent connects to (https; a bare host name gets https://).",
        "mytenant.cumulocity.com",
        None,
    ),
    C8Y_INSECURE.define(
        "Whether c8y.url may be an unencrypted http:// URL. Set by 'edge-setup remote-connectivity enable --url http://... --insecure', cleared when an https URL is enabled.",
        "true",
        Some("false"),
    ),
    C8Y_CREDENTIALS_FILE.define(
        "A file of tenant credentials for 'register', 'remote-access' and vnc-user's endpoint update: a line TENANT/USER and a line with the password, or one line 'Bearer TOKEN'. It must be a regular file of root's, mode 0600 or 0400; edge-setup never writes it.",
        "/etc/edge-setup/tenant-credentials",
        None,
    ),
    C8Y_CA_FILE.define(
        "PEM certificates trusted for the tenant besides the system's, for a tenant behind a private CA. The file and every directory above it must be root's and writable by no one else.",
        "/etc/edge-setup/tenant-ca.pem",
        None,
    ),
    C8Y_PROXY.define(
        "The HTTP proxy through which edge-setup reaches the tenant (http://host:port). When it is not set, root's own https_proxy is used; a user's, passed on by sudo, never is.",
        "http://proxy.example.com:3128",
        None,
    ),
    C8Y_REQUEST_TIMEOUT.define(
        "Seconds one request to the tenant may take, connecting included, before it fails (one more per 64 KiB it sends).",
        "60",
        Some("30"),
    ),
    AGENT_SERVICE.define(
        "The systemd service of the Edge agent, restarted when remote connectivity changes ('.service' is added when missing).",
        "c8y-edge-agent.service",
        Some("edge-agent.service"),
    ),
    DEVICE_ID.define(
        "The Edge device ID registered in Cumulocity; kept in /usr/edge/properties/edge-agent/device-id.",
        "edge-plant7-01",
        None,
    )
    .device_id_file(),
    VNC_LISTEN.define(
        "Where VNC sessions listen: 'localhost' (reached through the local agent, no port opened) or 'lan' (all interfaces, firewall opened).",
        "lan",
        Some("localhost"),
    ),
    VNC_DESKTOP_APPS.define(
        "Extra packages installed with the VNC desktop, comma-separated.",
        "mousepad,galculator",
        Some(""),
    )
    .list(),
    VNC_GEOMETRY.define(
        "Screen size of VNC sessions, WIDTHxHEIGHT.",
        "1920x1080",
        Some("1280x800"),
    ),
    VNC_LOCK_WAIT.define(
        "Seconds 'vnc-user' and 'vnc' wait for another run that holds their lock (the display mappings, the VNC install) before they fail naming the lock and its holder.",
        "30",
        Some("10"),
    ),
    DISK_DATA_MOUNT.define(
        "The mount point of the data disk that 'edge-setup setup expand-disk' grows.",
        "/data",
        Some("/"),
    ),
];

pub fn key(name: &str) -> Result<&'static KeyDef> {
    KEYS.iter().find(|k| k.name == name).ok_or_else(|| {
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        Error::bad_input(format!("unknown configuration key '{name}'"))
            .why(format!("known keys: {}", names.join(", ")))
            .hint("run 'edge-setup config list --doc' to see every key with an example")
    })
}

// ---- the file ----------------------------------------------------------------

/// Serialises read-modify-write of the file: two `config set` of different keys at
/// once must both land.
pub const LOCK: &str = "/etc/edge-setup/.edge-setup.toml.lock";

/// The configuration file, parsed and editable.
pub struct Config {
    text: String,
    doc: DocumentMut,
    /// Whether the file exists yet.
    exists: bool,
    /// Held from `load_for_update` until the value is dropped, after `save`.
    _lock: Option<nix::fcntl::Flock<std::fs::File>>,
}

impl Config {
    /// Loads the file; a missing file is an empty configuration. A syntax error
    /// is reported with path, line and column.
    pub fn load(sys: &System) -> Result<Config> {
        let path = Path::new(PATH);
        let Some(text) = sys.read_string(path)? else {
            return Ok(Config {
                text: String::new(),
                doc: DocumentMut::new(),
                exists: false,
                _lock: None,
            });
        };
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
            Error::failure(format!(
                "{}:{line}:{col}: the configuration file has a syntax error",
                sys.host_path(path).display()
            ))
            .why(e.message())
            .hint("fix that line by hand; edge-setup does not overwrite a file it cannot read")
        })?;
        Ok(Config {
            text,
            doc,
            exists: true,
            _lock: None,
        })
    }

    /// Loads the file under an exclusive lock, for a change followed by `save`
    /// (no lock in a dry run, which writes nothing).
    pub fn load_for_update(sys: &System) -> Result<Config> {
        // Taken before the configuration is read, so the wait cannot come from it.
        let lock = sys.lock(Path::new(LOCK), crate::system::fs::DEFAULT_LOCK_WAIT)?;
        Ok(Config {
            _lock: lock,
            ..Config::load(sys)?
        })
    }

    fn item(&self, name: &str) -> Option<&Item> {
        let (table, key) = name.split_once('.')?;
        self.doc.get(table)?.get(key)
    }

    /// The stored value as text (lists joined with commas), before validation.
    fn stored(&self, name: &str) -> Option<String> {
        match self.item(name)?.as_value()? {
            Value::String(s) => Some(s.value().clone()),
            Value::Array(a) => Some(a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(",")),
            other => Some(other.to_string().trim().to_string()),
        }
    }

    /// The line of a stored key in the file, for error messages.
    fn line_of(&self, name: &str) -> Option<usize> {
        let (table, key) = name.split_once('.')?;
        let mut in_table = false;
        for (i, line) in self.text.lines().enumerate() {
            let t = line.trim();
            if t.starts_with('[') {
                in_table = t.trim_matches(['[', ']', ' ']) == table;
            } else if in_table && t.split('=').next().map(str::trim) == Some(key) {
                return Some(i + 1);
            }
        }
        None
    }

    /// The value of a TOML-stored key: stored, else default, else `None`.
    /// A stored value its parser refuses is an error with path and line.
    pub fn get<T: KeyValue>(&self, sys: &System, key: Key<T>) -> Result<Option<T>> {
        let name = key.name;
        let def = self::key(name)?;
        let raw = match self.stored(name) {
            Some(v) => v,
            None => match def.default {
                Some(d) => d.to_string(),
                None => return Ok(None),
            },
        };
        T::parse(&raw)
            .map(Some)
            .map_err(|rule| self.invalid_stored(sys, name, &raw, rule))
    }

    fn invalid_stored(&self, sys: &System, name: &str, raw: &str, rule: String) -> Error {
        let line = self.line_of(name).map(|l| format!(":{l}")).unwrap_or_default();
        Error::failure(format!(
            "{}{line}: {name} = \"{raw}\" is not valid",
            sys.host_path(Path::new(PATH)).display()
        ))
        .why(rule)
        .hint(format!("run 'edge-setup config set {name} <value>' to replace it"))
    }

    /// c8y.url, which may be http:// only when c8y.insecure = true (recorded by
    /// `remote-connectivity enable --insecure`); `get(sys, C8Y_URL)` always refuses http.
    pub fn tenant_url(&self, sys: &System) -> Result<Option<TenantUrl>> {
        let Some(raw) = self.stored(C8Y_URL.name) else {
            return Ok(None);
        };
        let parsed = if self.get(sys, C8Y_INSECURE)?.unwrap_or(false) {
            TenantUrl::parse_any(&raw)
        } else {
            <TenantUrl as KeyValue>::parse(&raw)
        };
        parsed
            .map(Some)
            .map_err(|rule| self.invalid_stored(sys, C8Y_URL.name, &raw, rule))
    }

    /// How long to wait for a VNC lock (`vnc.lock-wait`).
    pub fn lock_wait(&self, sys: &System) -> Result<std::time::Duration> {
        Ok(self.require(sys, VNC_LOCK_WAIT)?.duration())
    }

    /// Like `get` for a key without default, erroring when unset.
    pub fn require<T: KeyValue>(&self, sys: &System, key: Key<T>) -> Result<T> {
        self.get(sys, key)?.ok_or_else(|| Error::missing_key(key.name))
    }

    /// The value to show for a key (device.id from its file), `None` when unset.
    pub fn show(&self, sys: &System, name: &str) -> Result<Option<String>> {
        let def = key(name)?;
        match def.storage {
            Storage::DeviceIdFile => Ok(device_id::read(sys)?.map(|id| id.to_string())),
            Storage::Toml if name == C8Y_URL.name => Ok(self.tenant_url(sys)?.map(|u| u.to_string())),
            Storage::Toml => match self.stored(name) {
                Some(raw) => (def.validate)(&raw)
                    .map(Some)
                    .map_err(|rule| self.invalid_stored(sys, name, &raw, rule)),
                None => Ok(def.default.map(str::to_string)),
            },
        }
    }

    /// The dotted name of every value in the file (`table.key`, `key` at the top,
    /// `a.b.c` in a nested table), known keys or not, in the file's order.
    pub fn stored_names(&self) -> Vec<String> {
        fn walk(prefix: &str, table: &dyn toml_edit::TableLike, out: &mut Vec<String>) {
            for (key, item) in table.iter() {
                let name = if prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{prefix}.{key}")
                };
                match item.as_table_like() {
                    Some(inner) => walk(&name, inner, out),
                    None => out.push(name),
                }
            }
        }
        let mut out = Vec::new();
        walk("", self.doc.as_table(), &mut out);
        out
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.item(name).is_some()
    }

    /// Sets a TOML-stored key to an already validated value.
    pub fn set_raw(&mut self, def: &KeyDef, normalized: &str) {
        let (table, key) = def.name.split_once('.').expect("key names have a table");
        if !self.doc.contains_table(table) {
            self.doc[table] = toml_edit::table();
        }
        let value: Value = if def.list {
            normalized
                .split(',')
                .filter(|s| !s.is_empty())
                .collect::<toml_edit::Array>()
                .into()
        } else {
            normalized.into()
        };
        self.doc[table][key] = Item::Value(value);
    }

    /// Sets a key to a value of its type, as `config set` would store it.
    pub fn set<T: KeyValue>(&mut self, key: Key<T>, value: &T) {
        self.set_raw(key.def(), &value.render());
    }

    pub fn unset_raw(&mut self, def: &KeyDef) -> bool {
        let (table, key) = def.name.split_once('.').expect("key names have a table");
        // An emptied table stays: the comments above it (the file's header among
        // them, when it is the first) are the operator's and stay with it.
        self.doc
            .get_mut(table)
            .and_then(Item::as_table_like_mut)
            .and_then(|t| t.remove(key))
            .is_some()
    }

    /// Writes the file atomically (root, 0644).
    pub fn save(&self, sys: &System) -> Result<Change> {
        let body = self.doc.to_string();
        let text = if self.exists || body.starts_with('#') {
            body
        } else {
            format!("{HEADER}{body}")
        };
        sys.write(Path::new(PATH), text.as_bytes(), FileSpec::root(0o644))
    }
}

pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

/// Validates a user-given value for `name`, with an error naming key and rule.
pub fn validate_value(def: &KeyDef, value: &str) -> Result<String> {
    (def.validate)(value).map_err(|rule| {
        Error::bad_input(format!("'{value}' is not a valid value for {}", def.name))
            .why(rule)
            .hint(format!(
                "for example: edge-setup config set {} {}",
                def.name, def.example
            ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_name_a_host_and_port_and_nothing_secret() {
        let ok = |s: &str| ProxyUrl::parse(s).unwrap().to_string();
        assert_eq!(ok("Proxy.Example.com:3128"), "http://proxy.example.com:3128");
        assert_eq!(ok("http://10.0.0.1:8080/"), "http://10.0.0.1:8080");
        assert_eq!(ok("HTTPS://proxy:443"), "https://proxy:443");
        let bad = |s: &str| ProxyUrl::parse(s).unwrap_err();
        assert!(bad("http://proxy.example.com").contains("http://proxy.example.com:3128"));
        assert!(bad("http://user:secret@proxy:3128").contains("credentials"));
        assert!(bad("socks5://proxy:1080").contains("http:// or https://"));
        assert!(bad("http://proxy:3128/path").contains("only a host and a port"));
        assert!(bad("http://proxy:0").contains("port 0"));
        assert!(bad("http://pro xy:3128").contains("not a valid host name"));
        assert!(bad("").contains("no port"));
    }

    #[test]
    fn tenant_urls_are_normalised_and_checked() {
        let ok = |s: &str| TenantUrl::parse(s).unwrap().to_string();
        assert_eq!(ok("MyTenant.Cumulocity.com"), "https://mytenant.cumulocity.com");
        assert_eq!(ok("https://t.example.com/"), "https://t.example.com");
        assert_eq!(ok("https://t.example.com:8443"), "https://t.example.com:8443");
        let bad = |s: &str| TenantUrl::parse(s).unwrap_err();
        assert!(bad("http://t.example.com").contains("--insecure"));
        assert!(bad("ftp://t.example.com").contains("https"));
        assert!(bad("https://t.example.com/apps").contains("path"));
        assert!(bad("https://u:p@t.example.com").contains("credentials"));
        assert!(bad("https://t.example.com?x=1").contains("query"));
        assert!(bad("https://t.example.com:99999").contains("port"));
        assert!(bad("https://bad_host").contains("host name"));
        assert!(bad("").contains("empty"));
        assert!(TenantUrl::parse_any("http://t.example.com").unwrap().is_insecure());
    }

    #[test]
    fn other_value_types() {
        assert_eq!(Listen::parse("lan").unwrap(), Listen::Lan);
        assert!(Listen::parse("all").unwrap_err().contains("'localhost' or 'lan'"));
        assert_eq!(PackageList::parse(" a2,b+c,a2 ,").unwrap().0, vec!["a2", "b+c"]);
        assert!(PackageList::parse("ok,rm -rf").unwrap_err().contains("'rm -rf'"));
        assert_eq!(Geometry::parse("1920x1080").unwrap().render(), "1920x1080");
        assert!(Geometry::parse("10x10").is_err());
        assert_eq!(MountPoint::parse("//data/").unwrap().render(), "/data");
        assert_eq!(MountPoint::parse("/").unwrap().render(), "/");
        assert!(MountPoint::parse("data").unwrap_err().contains("absolute"));
        assert!(MountPoint::parse("/data/../etc").is_err());
    }

    #[test]
    fn every_key_example_is_valid_and_defaults_parse() {
        for k in KEYS {
            assert!((k.validate)(k.example).is_ok(), "{} example", k.name);
            if let Some(d) = k.default {
                assert!((k.validate)(d).is_ok(), "{} default", k.name);
            }
        }
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("a\nbc\nd", 4), (2, 3));
        assert_eq!(line_col("abc", 0), (1, 1));
    }

    const NEAR: &[&str] = &[
        "[c8y]",
        "url = \"https://t.example.com\"",
        "[vnc]",
        "listen = \"lan\"",
        "desktop-apps = [\"a\", \"b\"]",
        "request-timeout = 30",
        "request-timeout = \"x\"",
        "[agent]",
        "service = 5",
        "# comment",
        "[c8y",
        "url =",
        "proxy = \"http://p:3128\"",
        "ca-file = \"/etc/x.pem\"",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz::CASES / 4))]
        /// Any edge-setup.toml loads or is refused naming its line and column;
        /// every key then reads as a value or an error naming the file and line.
        #[test]
        fn any_config_file_loads_or_names_its_line(text in crate::fuzz::text(NEAR)) {
            let f = crate::testkit::Fixture::debian();
            f.write(PATH, &text);
            let sys = f.live();
            match Config::load(&sys) {
                Err(e) => {
                    let at = e.what.split(": ").next().unwrap();
                    let line: usize = at.split(':').nth(1).unwrap().parse().unwrap();
                    proptest::prop_assert!((1..=crate::fuzz::line_count(&text)).contains(&line), "{}", e.what);
                }
                Ok(cfg) => {
                    for def in KEYS.iter().filter(|d| d.storage == Storage::Toml) {
                        if let Some(raw) = cfg.stored(def.name)
                            && (def.validate)(&raw).is_err()
                        {
                            let e = cfg.invalid_stored(&sys, def.name, &raw, "refused".into());
                            proptest::prop_assert!(e.what.contains("edge-setup.toml"), "{}", e.what);
                        }
                    }
                }
            }
        }
    }
}
