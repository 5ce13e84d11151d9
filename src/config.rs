//! Typed configuration keys in /etc/edge-setup/edge-setup.toml.
//!
//! Every key has a parser that is its validation: `config set` refuses what the
//! parser refuses, with the parser's own words. The file is edited in place
//! (comments and unknown keys are kept) and written atomically; a file that does
//! not parse is reported with its line and column and never overwritten.

use std::fmt;
use std::path::Path;

use toml_edit::{DocumentMut, Item, Value};

use crate::agent::service::UnitName;
use crate::cli::{ConfigAction, ConfigArgs};
use crate::context::Ctx;
use crate::device_id::{self, DeviceId};
use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::{Change, FileSpec};

pub const PATH: &str = "/etc/edge-setup/edge-setup.toml";
const HEADER: &str = include_str!("../templates/edge-setup.toml");

/// A value type of a key: its parser is the key's validation.
pub trait KeyValue: Sized {
    fn parse(s: &str) -> Result<Self, String>;
    fn render(&self) -> String;
}

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

pub const C8Y_URL: &str = "c8y.url";
pub const DEVICE_ID: &str = "device.id";
pub const VNC_LISTEN: &str = "vnc.listen";
pub const VNC_DESKTOP_APPS: &str = "vnc.desktop-apps";
pub const VNC_GEOMETRY: &str = "vnc.geometry";
/// Whether c8y.url may be http://; read c8y.url with `Config::tenant_url`, which honours it.
pub const C8Y_INSECURE: &str = "c8y.insecure";
pub const AGENT_SERVICE: &str = "agent.service";
pub const DISK_DATA_MOUNT: &str = "disk.data-mount";
pub const VNC_LOCK_WAIT: &str = "vnc.lock-wait";

pub static KEYS: &[KeyDef] = &[
    KeyDef {
        name: C8Y_URL,
        doc: "The Cumulocity tenant URL the Edge agent connects to (https; a bare host name gets https://).",
        example: "mytenant.cumulocity.com",
        default: None,
        list: false,
        storage: Storage::Toml,
        validate: validate::<TenantUrl>,
    },
    KeyDef {
        name: C8Y_INSECURE,
        doc: "Whether c8y.url may be an unencrypted http:// URL. Set by 'edge-setup remote-connectivity enable --url http://... --insecure', cleared when an https URL is enabled.",
        example: "true",
        default: Some("false"),
        list: false,
        storage: Storage::Toml,
        validate: validate::<bool>,
    },
    KeyDef {
        name: AGENT_SERVICE,
        doc: "The systemd service of the Edge agent, restarted when remote connectivity changes ('.service' is added when missing).",
        example: "c8y-edge-agent.service",
        default: Some("edge-agent.service"),
        list: false,
        storage: Storage::Toml,
        validate: validate::<UnitName>,
    },
    KeyDef {
        name: DEVICE_ID,
        doc: "The Edge device ID registered in Cumulocity; kept in /usr/edge/properties/edge-agent/device-id.",
        example: "edge-plant7-01",
        default: None,
        list: false,
        storage: Storage::DeviceIdFile,
        validate: validate::<DeviceId>,
    },
    KeyDef {
        name: VNC_LISTEN,
        doc: "Where VNC sessions listen: 'localhost' (reached through the local agent, no port opened) or 'lan' (all interfaces, firewall opened).",
        example: "lan",
        default: Some("localhost"),
        list: false,
        storage: Storage::Toml,
        validate: validate::<Listen>,
    },
    KeyDef {
        name: VNC_DESKTOP_APPS,
        doc: "Extra packages installed with the VNC desktop, comma-separated.",
        example: "mousepad,galculator",
        default: Some(""),
        list: true,
        storage: Storage::Toml,
        validate: validate::<PackageList>,
    },
    KeyDef {
        name: VNC_GEOMETRY,
        doc: "Screen size of VNC sessions, WIDTHxHEIGHT.",
        example: "1920x1080",
        default: Some("1280x800"),
        list: false,
        storage: Storage::Toml,
        validate: validate::<Geometry>,
    },
    KeyDef {
        name: VNC_LOCK_WAIT,
        doc: "Seconds 'vnc-user' and 'vnc' wait for another run that holds their lock (the display mappings, the VNC install) before they fail naming the lock and its holder.",
        example: "30",
        default: Some("10"),
        list: false,
        storage: Storage::Toml,
        validate: validate::<Seconds>,
    },
    KeyDef {
        name: DISK_DATA_MOUNT,
        doc: "The mount point of the data disk that 'edge-setup setup expand-disk' grows.",
        example: "/data",
        default: Some("/"),
        list: false,
        storage: Storage::Toml,
        validate: validate::<MountPoint>,
    },
];

pub fn key(name: &str) -> Result<&'static KeyDef> {
    KEYS.iter().find(|k| k.name == name).ok_or_else(|| {
        let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        Error::bad_input(format!("unknown configuration key '{name}'"))
            .why(format!("known keys: {}", names.join(", ")))
            .hint("run 'edge-setup config list --doc' to see every key with an example")
    })
}

// ---- value types --------------------------------------------------------------

/// A Cumulocity tenant URL: scheme and host (and port), nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantUrl {
    pub scheme: Scheme,
    pub host: String,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    Http,
}

impl TenantUrl {
    /// Parses a URL and accepts `http://` too; callers decide whether to allow it.
    pub fn parse_any(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("a tenant URL cannot be empty".into());
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((sch, rest)) => match sch.to_ascii_lowercase().as_str() {
                "https" => (Scheme::Https, rest),
                "http" => (Scheme::Http, rest),
                other => return Err(format!("the scheme must be https, not '{other}'")),
            },
            None => (Scheme::Https, s),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err("a tenant URL cannot carry credentials (user@ or user:password@)".into());
        }
        if rest.contains('?') || rest.contains('#') {
            return Err("a tenant URL cannot have a query or fragment (?... or #...)".into());
        }
        if rest.contains('/') {
            return Err(
                "a tenant URL cannot have a path: give only the host, like https://mytenant.cumulocity.com".into(),
            );
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => {
                let port: u16 = p.parse().map_err(|_| format!("'{p}' is not a port number"))?;
                if port == 0 {
                    return Err("port 0 is not a valid port".into());
                }
                (h, Some(port))
            }
            None => (rest, None),
        };
        let host = host.to_ascii_lowercase();
        validate_host(&host)?;
        Ok(TenantUrl { scheme, host, port })
    }

    pub fn is_insecure(&self) -> bool {
        self.scheme == Scheme::Http
    }
}

fn validate_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the URL has no host name".into());
    }
    if host.len() > 253 {
        return Err("a host name has at most 253 characters".into());
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err(format!("'{host}' is not a valid host name (empty label)"));
        }
        if label.len() > 63 {
            return Err(format!(
                "'{host}' is not a valid host name (a label has at most 63 characters)"
            ));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "'{host}' is not a valid host name (letters, digits and '-' between dots)"
            ));
        }
    }
    Ok(())
}

impl KeyValue for TenantUrl {
    fn parse(s: &str) -> Result<Self, String> {
        let url = Self::parse_any(s)?;
        if url.is_insecure() {
            return Err("http:// is not encrypted; use https (or 'edge-setup remote-connectivity enable --url URL --insecure' to accept it knowingly)".into());
        }
        Ok(url)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TenantUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
        };
        write!(f, "{scheme}://{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

impl KeyValue for DeviceId {
    fn parse(s: &str) -> Result<Self, String> {
        DeviceId::parse(s)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl KeyValue for bool {
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(format!("expected 'true' or 'false', not '{other}'")),
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

/// Where VNC sessions listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Localhost,
    Lan,
}

impl KeyValue for Listen {
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "localhost" => Ok(Listen::Localhost),
            "lan" => Ok(Listen::Lan),
            other => Err(format!("expected 'localhost' or 'lan', not '{other}'")),
        }
    }
    fn render(&self) -> String {
        match self {
            Listen::Localhost => "localhost",
            Listen::Lan => "lan",
        }
        .into()
    }
}

/// Package names (Debian and RPM rules overlap: letters, digits, `+-._`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackageList(pub Vec<String>);

impl KeyValue for PackageList {
    fn parse(s: &str) -> Result<Self, String> {
        let mut names = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let ok = name.len() >= 2
                && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-._".contains(&b));
            if !ok {
                return Err(format!(
                    "'{name}' is not a package name (letters, digits and '+-._', starting with a letter or digit)"
                ));
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        Ok(PackageList(names))
    }
    fn render(&self) -> String {
        self.0.join(",")
    }
}

/// A screen size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub width: u32,
    pub height: u32,
}

impl KeyValue for Geometry {
    fn parse(s: &str) -> Result<Self, String> {
        let err = || format!("expected WIDTHxHEIGHT between 640x480 and 7680x4320, like 1280x800, not '{s}'");
        let (w, h) = s.trim().split_once('x').ok_or_else(err)?;
        let (width, height): (u32, u32) = (w.parse().map_err(|_| err())?, h.parse().map_err(|_| err())?);
        if !(640..=7680).contains(&width) || !(480..=4320).contains(&height) {
            return Err(err());
        }
        Ok(Geometry { width, height })
    }
    fn render(&self) -> String {
        format!("{}x{}", self.width, self.height)
    }
}

/// A wait in whole seconds, 1 to 3600.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u32);

impl Seconds {
    pub fn duration(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0.into())
    }
}

impl KeyValue for Seconds {
    fn parse(s: &str) -> Result<Self, String> {
        match s.trim().parse::<u32>() {
            Ok(n) if (1..=3600).contains(&n) => Ok(Seconds(n)),
            _ => Err(format!("expected whole seconds from 1 to 3600, like 30, not '{s}'")),
        }
    }
    fn render(&self) -> String {
        self.0.to_string()
    }
}

/// An absolute path of a mount point, normalised (no `.`, `..` or doubled slashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPoint(pub std::path::PathBuf);

impl KeyValue for MountPoint {
    fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if !s.starts_with('/') {
            return Err(format!("expected an absolute path like /data, not '{s}'"));
        }
        if s.chars().any(char::is_control) {
            return Err("a mount point cannot contain control characters".into());
        }
        let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
        if parts.iter().any(|p| *p == "." || *p == "..") {
            return Err(format!("'{s}' has '.' or '..' in it; give the mount point itself"));
        }
        Ok(MountPoint(format!("/{}", parts.join("/")).into()))
    }
    fn render(&self) -> String {
        self.0.display().to_string()
    }
}

// ---- the file ----------------------------------------------------------------

/// Serialises read-modify-write of the file: two `config set` of different keys at
/// once must both land.
const LOCK: &str = "/etc/edge-setup/.edge-setup.toml.lock";

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
    pub fn get<T: KeyValue>(&self, sys: &System, name: &str) -> Result<Option<T>> {
        let def = key(name)?;
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
    /// `remote-connectivity enable --insecure`); `get::<TenantUrl>` always refuses http.
    pub fn tenant_url(&self, sys: &System) -> Result<Option<TenantUrl>> {
        let Some(raw) = self.stored(C8Y_URL) else {
            return Ok(None);
        };
        let parsed = if self.get::<bool>(sys, C8Y_INSECURE)?.unwrap_or(false) {
            TenantUrl::parse_any(&raw)
        } else {
            <TenantUrl as KeyValue>::parse(&raw)
        };
        parsed
            .map(Some)
            .map_err(|rule| self.invalid_stored(sys, C8Y_URL, &raw, rule))
    }

    /// How long to wait for a VNC lock (`vnc.lock-wait`).
    pub fn lock_wait(&self, sys: &System) -> Result<std::time::Duration> {
        Ok(self.require::<Seconds>(sys, VNC_LOCK_WAIT)?.duration())
    }

    /// Like `get` for a key without default, erroring when unset.
    pub fn require<T: KeyValue>(&self, sys: &System, name: &str) -> Result<T> {
        self.get(sys, name)?.ok_or_else(|| Error::missing_key(name))
    }

    /// The value to show for a key (device.id from its file), `None` when unset.
    pub fn show(&self, sys: &System, name: &str) -> Result<Option<String>> {
        let def = key(name)?;
        match def.storage {
            Storage::DeviceIdFile => Ok(device_id::read(sys)?.map(|id| id.to_string())),
            Storage::Toml if name == C8Y_URL => Ok(self.tenant_url(sys)?.map(|u| u.to_string())),
            Storage::Toml => match self.stored(name) {
                Some(raw) => (def.validate)(&raw)
                    .map(Some)
                    .map_err(|rule| self.invalid_stored(sys, name, &raw, rule)),
                None => Ok(def.default.map(str::to_string)),
            },
        }
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

/// `edge-setup config get|set|unset|list`.
pub fn run(ctx: &Ctx, args: &ConfigArgs) -> Result<()> {
    match &args.action {
        ConfigAction::Get { key: name } => {
            let def = key(name)?;
            let cfg = ctx.config()?;
            match cfg.show(&ctx.sys, def.name)? {
                Some(v) => {
                    ctx.out.result(serde_json::json!({ "key": def.name, "value": v }));
                    ctx.out.data(&v);
                    Ok(())
                }
                None => Err(Error::missing_key(def.name)),
            }
        }
        ConfigAction::Set { key: name, value } => {
            let def = key(name)?;
            let normalized = validate_value(def, value)?;
            match def.storage {
                Storage::DeviceIdFile => {
                    ctx.require_root("config set device.id")?;
                    let id = DeviceId::parse(&normalized).expect("validated above");
                    device_id::store(ctx, &id)?;
                }
                Storage::Toml => {
                    let mut cfg = ctx.config_for_update()?;
                    cfg.set_raw(def, &normalized);
                    let step = ctx.out.step(&format!("Setting {} = {normalized}", def.name));
                    step.done(ctx.sys.change_word(cfg.save(&ctx.sys)?));
                }
            }
            Ok(())
        }
        ConfigAction::Unset { key: name } => {
            let def = key(name)?;
            let step = ctx.out.step(&format!("Unsetting {}", def.name));
            let changed = match def.storage {
                Storage::DeviceIdFile => {
                    ctx.require_root("config unset device.id")?;
                    ctx.sys.remove(Path::new(device_id::PATH))?
                }
                Storage::Toml => {
                    let mut cfg = ctx.config_for_update()?;
                    let removed = cfg.unset_raw(def);
                    if removed {
                        cfg.save(&ctx.sys)?;
                    }
                    removed
                }
            };
            step.done(if changed {
                ctx.sys.word("removed", "would be removed")
            } else {
                "was not set"
            });
            Ok(())
        }
        ConfigAction::List { all, doc } => {
            let cfg = ctx.config()?;
            let mut listed = serde_json::Map::new();
            for def in KEYS {
                if *doc {
                    listed.insert(
                        def.name.to_string(),
                        serde_json::json!({"doc": def.doc, "example": def.example, "default": def.default}),
                    );
                    ctx.out.data(&format!(
                        "{}\n    {}\n    example: edge-setup config set {} {}",
                        def.name, def.doc, def.name, def.example
                    ));
                    if let Some(d) = def.default.filter(|d| !d.is_empty()) {
                        ctx.out.data(&format!("    default: {d}"));
                    }
                    continue;
                }
                let set = match def.storage {
                    Storage::Toml => cfg.is_set(def.name),
                    Storage::DeviceIdFile => device_id::read(&ctx.sys)?.is_some(),
                };
                if set || *all {
                    let value = cfg.show(&ctx.sys, def.name)?.unwrap_or_default();
                    ctx.out.data(&format!("{}={value}", def.name));
                    listed.insert(def.name.to_string(), serde_json::json!(value));
                }
            }
            ctx.out.result(serde_json::json!({ "keys": listed }));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
