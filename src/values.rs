//! The value types of configuration keys: each parser is the key's validation.
//! A leaf: it uses nothing else of edge-setup, so every module can name these
//! types without depending on the modules that use them.

use std::fmt;

/// A value type of a key: its parser is the key's validation.
pub trait KeyValue: Sized {
    fn parse(s: &str) -> Result<Self, String>;
    fn render(&self) -> String;
}

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

    /// The port connected to: the URL's, else its scheme's (443, or 80 for http).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.is_insecure() { 80 } else { 443 })
    }
}

/// An HTTP proxy for the tenant's connections: `http://host:port` (or https),
/// no credentials, path or query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
}

impl KeyValue for ProxyUrl {
    fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (scheme, rest) = match s.split_once("://") {
            Some((sch, rest)) => match sch.to_ascii_lowercase().as_str() {
                "http" => (Scheme::Http, rest),
                "https" => (Scheme::Https, rest),
                other => return Err(format!("a proxy is http:// or https://, not '{other}://'")),
            },
            None => (Scheme::Http, s),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err("a proxy URL here cannot carry credentials (user:password@): the configuration is readable by all; use a proxy that admits this appliance by its address".into());
        }
        if rest.contains(['/', '?', '#']) {
            return Err("a proxy URL has only a host and a port, like http://proxy.example.com:3128".into());
        }
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(format!(
                "'{s}' has no port: give the proxy's port, like http://{}:3128",
                if rest.is_empty() { "proxy.example.com" } else { rest }
            ));
        };
        let port: u16 = port.parse().map_err(|_| format!("'{port}' is not a port number"))?;
        if port == 0 {
            return Err("port 0 is not a valid port".into());
        }
        let host = host.to_ascii_lowercase();
        validate_host(&host)?;
        Ok(ProxyUrl { scheme, host, port })
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
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
        absolute_path(s, "/data", "the mount point").map(MountPoint)
    }
    fn render(&self) -> String {
        self.0.display().to_string()
    }
}

/// An absolute path of a file, normalised like a mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePath(pub std::path::PathBuf);

impl KeyValue for FilePath {
    fn parse(s: &str) -> Result<Self, String> {
        absolute_path(s, "/etc/edge-setup/tenant.pem", "the file").map(FilePath)
    }
    fn render(&self) -> String {
        self.0.display().to_string()
    }
}

/// `s` as an absolute path without `.`, `..` or doubled slashes.
fn absolute_path(s: &str, example: &str, what: &str) -> Result<std::path::PathBuf, String> {
    let s = s.trim();
    if !s.starts_with('/') {
        return Err(format!("expected an absolute path like {example}, not '{s}'"));
    }
    if s.chars().any(char::is_control) {
        return Err("a path cannot contain control characters".into());
    }
    let parts: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(format!("'{s}' has '.' or '..' in it; give {what} itself"));
    }
    Ok(format!("/{}", parts.join("/")).into())
}

/// The longest device ID.
pub const DEVICE_ID_MAX_LEN: usize = 64;

/// A validated device ID: 1 to 64 characters of ASCII letters, digits and `-_.:`,
/// starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId(String);

impl DeviceId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("a device ID cannot be empty".into());
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(format!("a device ID cannot contain control characters (found {:?})", c));
        }
        if s.chars().any(char::is_whitespace) {
            return Err("a device ID cannot contain spaces or other white space".into());
        }
        if s.contains('/') {
            return Err("a device ID cannot contain '/'".into());
        }
        let len = s.chars().count();
        if len > DEVICE_ID_MAX_LEN {
            return Err(format!(
                "a device ID has at most {DEVICE_ID_MAX_LEN} characters (this one has {len})"
            ));
        }
        if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || "-_.:".contains(*c))) {
            return Err(format!(
                "a device ID may only contain ASCII letters, digits and '-', '_', '.', ':' (found {c:?})"
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err("a device ID must start with a letter or a digit".into());
        }
        Ok(DeviceId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const OTHER_SUFFIXES: &[&str] = &[
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".slice",
    ".scope",
];

/// A systemd service name: ASCII letters, digits and `:-_.\@`, starting with a
/// letter or digit (so it can never read as an option), `.service` added when
/// no suffix is given; not a bare template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitName(String);

impl UnitName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UnitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl KeyValue for UnitName {
    fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("a unit name cannot be empty".into());
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
        {
            return Err(format!(
                "a unit name may only contain ASCII letters, digits and ':', '-', '_', '.', '\\', '@' (found {c:?})"
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err("a unit name must start with a letter or a digit".into());
        }
        if let Some(sfx) = OTHER_SUFFIXES.iter().find(|sfx| s.ends_with(*sfx)) {
            return Err(format!(
                "the agent runs as a service: give a .service unit, not a {} unit",
                &sfx[1..]
            ));
        }
        let name = if s.ends_with(".service") {
            s.to_string()
        } else {
            format!("{s}.service")
        };
        if name.len() > 255 {
            return Err("a unit name has at most 255 characters".into());
        }
        if name.ends_with("@.service") {
            return Err(format!(
                "'{name}' is a template: give an instance, like {}NAME.service",
                name.trim_end_matches(".service")
            ));
        }
        Ok(UnitName(name))
    }

    fn render(&self) -> String {
        self.0.clone()
    }
}
