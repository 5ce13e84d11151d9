//! The Cumulocity tenant's REST API, for device registration, Cloud Remote
//! Access endpoints and events with a file (a diagnostics bundle): HTTPS only (rustls; the distribution's CA bundle plus
//! `c8y.ca-file`, never a CA named by the environment), through `c8y.proxy` or
//! root's own proxy variables (never a sudo caller's),
//! basic or bearer authentication, one timeout per request
//! (`c8y.request-timeout`), and an error for every status that names the fix.
//!
//! Requests that change the tenant go through `System::tenant_change`, so a
//! dry run lists them instead of sending them and `--json` reports them.

mod credentials;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

pub use credentials::{Credentials, MAX as CREDENTIALS_MAX, configured, read_file as credentials_file};

use crate::config::{C8Y_CA_FILE, C8Y_PROXY, C8Y_REQUEST_TIMEOUT, C8Y_URL, Config, TenantUrl};
use crate::error::{Error, Result};
use crate::system::System;

/// The largest response body read (a page of endpoints is a few KiB).
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// The slowest uplink a request's body is given time for, in bytes a second
/// (0.5 Mbit/s, a poor cellular link): each request may take
/// `c8y.request-timeout` and a second more per 64 KiB it sends.
const MIN_SEND_RATE: u64 = 64 * 1024;

/// What a request sends.
enum Body<'b> {
    Json(&'b [u8]),
    /// `multipart/form-data` parts separated by `boundary`.
    Form {
        boundary: &'b str,
        bytes: &'b [u8],
    },
}

/// A file `Tenant::upload` sends.
pub struct Attachment<'f> {
    /// The name the tenant shows and gives a download (see [`file_name`]).
    pub name: &'f str,
    pub content_type: &'static str,
    pub bytes: &'f [u8],
}

/// What a request needs the tenant user to be allowed, for the hint of a 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Reading the device's external ID.
    Identity,
    /// Device registration (new device requests).
    Registration,
    /// Cloud Remote Access endpoints.
    RemoteAccess,
    /// Events and their attached files.
    Events,
}

impl Permission {
    fn role(self) -> &'static str {
        match self {
            Permission::Identity => "Identity: read (ROLE_IDENTITY_READ)",
            Permission::Registration => "Device control: admin (ROLE_DEVICE_CONTROL_ADMIN)",
            Permission::RemoteAccess => "Remote access: admin (ROLE_REMOTE_ACCESS_ADMIN)",
            Permission::Events => "Events: admin (ROLE_EVENT_ADMIN)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// What `Tenant::probe` learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub status: u16,
    /// The tenant's clock, from its `Date` header.
    pub date: Option<std::time::SystemTime>,
}

/// A connection to the tenant of `c8y.url`, with credentials.
pub struct Tenant<'a> {
    sys: &'a System,
    url: TenantUrl,
    auth: Zeroizing<String>,
    who: String,
    agent: ureq::Agent,
    timeout: Duration,
}

impl<'a> Tenant<'a> {
    /// The tenant of `c8y.url`, reached with `credentials`.
    pub fn new(sys: &'a System, credentials: Credentials) -> Result<Tenant<'a>> {
        let mut tenant = Tenant::connection(sys)?;
        tenant.auth = credentials.header();
        // The user's name comes from root's credentials file: a user who ran
        // the privileged part through sudo is not told it.
        tenant.who = if sys.sudo_uid().is_some_and(|uid| uid != 0) {
            "the user of the tenant credentials file".to_string()
        } else {
            credentials.who()
        };
        Ok(tenant)
    }

    /// The tenant of `c8y.url` without credentials, for `probe`.
    pub fn anonymous(sys: &'a System) -> Result<Tenant<'a>> {
        Tenant::connection(sys)
    }

    fn connection(sys: &'a System) -> Result<Tenant<'a>> {
        let cfg = Config::load(sys)?;
        let url = cfg.tenant_url(sys)?.ok_or_else(|| {
            Error::missing_key(C8Y_URL.name)
                .hint("set the tenant first: sudo edge-setup config set c8y.url <tenant host>")
        })?;
        if url.is_insecure() {
            return Err(Error::bad_input(format!(
                "{url} is not encrypted: edge-setup sends tenant credentials and endpoint passwords over https only"
            ))
            .hint("set the https URL of the tenant: sudo edge-setup config set c8y.url https://<tenant host>"));
        }
        let timeout = cfg.require(sys, C8Y_REQUEST_TIMEOUT)?.duration();
        let ca_file = cfg.get(sys, C8Y_CA_FILE)?;
        let roots = trusted_roots(sys, ca_file.as_ref().map(|f| f.0.as_path()))?;
        // The route is set here, whatever the process's environment holds: the
        // configured proxy, else root's own variables, else none.
        let proxy = match cfg.get(sys, C8Y_PROXY)? {
            Some(p) => Some(ureq::Proxy::new(&p.to_string()).map_err(|e| {
                Error::bad_input(format!("{C8Y_PROXY} ({p}) cannot be used")).why(e).hint(format!(
                    "set a proxy of the form http://host:port: sudo edge-setup config set {C8Y_PROXY} http://proxy.example.com:3128"
                ))
            })?),
            None if sys.caller_is_root() => ureq::Proxy::try_from_env(),
            None => None,
        };
        let config = ureq::Agent::config_builder()
            .proxy(proxy)
            .http_status_as_error(false)
            .https_only(true)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(format!("edge-setup/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
                    .build(),
            )
            .build();
        Ok(Tenant {
            sys,
            url,
            auth: Zeroizing::new(String::new()),
            who: "nobody (no credentials)".to_string(),
            agent: config.new_agent(),
            timeout,
        })
    }

    /// One request without credentials (`GET /tenant/loginOptions`, which any
    /// client may make): proves TCP, TLS with the configured trust and HTTP to
    /// the tenant, and gives its clock (the `Date` header). Any HTTP status is
    /// an answer; only the transport fails.
    pub fn probe(&self) -> Result<Probe> {
        let path = "/tenant/loginOptions";
        let response = self
            .agent
            .get(&format!("{}{path}", self.url))
            .header("Accept", "application/json")
            .call()
            .map_err(|e| self.transport_error(Method::Get, path, self.timeout, e))?;
        let date = response
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        Ok(Probe {
            status: response.status().as_u16(),
            date,
        })
    }

    /// The tenant's URL, for messages.
    pub fn url(&self) -> String {
        self.url.to_string()
    }

    pub fn sys(&self) -> &System {
        self.sys
    }

    /// A GET; `None` when the tenant answers 404.
    pub fn get(&self, path: &str, need: Permission) -> Result<Option<Value>> {
        self.call(Method::Get, path, None, need)
    }

    /// A request that changes the tenant, with a JSON body (which may carry a
    /// secret: it stays in zeroizing memory). With `--dry-run` it is listed,
    /// not sent (`None`); a 404 is `Some(None)`.
    pub fn change(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        what: &str,
        need: Permission,
    ) -> Result<Option<Option<Value>>> {
        self.sys
            .tenant_change(format!("{} {path}", method.as_str()), what.to_string(), || {
                self.call(method, path, body.map(Body::Json), need)
            })
    }

    /// A POST of `file` as `multipart/form-data`, a change like `change`: listed,
    /// not sent, with `--dry-run` (`None`); a 404 is `Some(None)`.
    pub fn upload(&self, path: &str, file: &Attachment, what: &str, need: Permission) -> Result<Option<Option<Value>>> {
        self.sys.tenant_change(format!("POST {path}"), what.to_string(), || {
            let (boundary, bytes) = form(file, random_boundary)?;
            self.call(
                Method::Post,
                path,
                Some(Body::Form {
                    boundary: &boundary,
                    bytes: &bytes,
                }),
                need,
            )
        })
    }

    fn call(&self, method: Method, path: &str, body: Option<Body>, need: Permission) -> Result<Option<Value>> {
        let url = format!("{}{path}", self.url);
        let auth: &str = &self.auth;
        let (content_type, bytes) = match body {
            None => ("application/json".to_string(), &b"{}"[..]),
            Some(Body::Json(bytes)) => ("application/json".to_string(), bytes),
            Some(Body::Form { boundary, bytes }) => (format!("multipart/form-data; boundary={boundary}"), bytes),
        };
        // c8y.request-timeout is meant for JSON; a bundle of megabytes needs longer
        let timeout = self.timeout + Duration::from_secs(bytes.len() as u64 / MIN_SEND_RATE);
        let sent = match method {
            Method::Get => self
                .agent
                .get(&url)
                .header("Authorization", auth)
                .header("Accept", "application/json")
                .call(),
            Method::Delete => self
                .agent
                .delete(&url)
                .header("Authorization", auth)
                .header("Accept", "application/json")
                .call(),
            Method::Post => self
                .agent
                .post(&url)
                .config()
                .timeout_global(Some(timeout))
                .build()
                .header("Authorization", auth)
                .header("Accept", "application/json")
                .header("Content-Type", &content_type)
                .send(bytes),
            Method::Put => self
                .agent
                .put(&url)
                .config()
                .timeout_global(Some(timeout))
                .build()
                .header("Authorization", auth)
                .header("Accept", "application/json")
                .header("Content-Type", &content_type)
                .send(bytes),
        };
        let mut response = sent.map_err(|e| self.transport_error(method, path, timeout, e))?;
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let to = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("another address")
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>();
            // credentials are never sent on to another address
            return Err(Error::failure(format!(
                "the tenant {} answered {} {path} with a redirect ({status}) to {to}",
                self.url,
                method.as_str()
            ))
            .hint("set c8y.url to the tenant's own address (sudo edge-setup config set c8y.url https://<tenant host>) and run the command again"));
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| self.transport_error(method, path, timeout, e))?;
        match status {
            200..=299 if text.trim().is_empty() => Ok(Some(Value::Null)),
            200..=299 => serde_json::from_str(&text).map(Some).map_err(|e| {
                Error::failure(format!("the tenant's answer to {} {path} is not JSON", method.as_str()))
                    .why(e)
                    .hint(format!(
                        "check that c8y.url ({}) is the tenant's URL, not a proxy's page",
                        self.url
                    ))
            }),
            404 => Ok(None),
            _ => Err(self.status_error(method, path, status, &text, need)),
        }
    }

    fn status_error(&self, method: Method, path: &str, status: u16, body: &str, need: Permission) -> Error {
        let request = format!("{} {path}", method.as_str());
        let message = tenant_message(body);
        let e = match status {
            401 => Error::failure(format!("the tenant {} refused the credentials of {} (401 Unauthorized)", self.url, self.who))
                .hint("check the user line (TENANT/USER, like t12345/admin) and the password, or that the token has not expired; then run the command again"),
            403 => Error::failure(format!("{} may not {request} (403 Forbidden)", self.who)).hint(format!(
                "give the user the permission {} in Administration > Roles, or use a user who has it",
                need.role()
            )),
            409 => Error::failure(format!("the tenant refused {request}: it conflicts with what exists (409 Conflict)"))
                .hint("run 'sudo edge-setup remote-access list' or 'sudo edge-setup register' to see the tenant's state, then run the command again"),
            400..=499 => Error::failure(format!("the tenant refused {request} ({status})"))
                .hint("this edge-setup may not match the tenant's API version; report it with the message above"),
            _ => Error::failure(format!("the tenant {} failed to answer {request} ({status})", self.url))
                .hint("the tenant has a problem: wait a while and run the command again"),
        };
        match message {
            Some(m) => e.why(m),
            None => e,
        }
    }

    fn tls_error(&self, e: &rustls::Error) -> Error {
        let host = &self.url.host;
        let unknown = matches!(
            e,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        );
        let hint = if unknown {
            format!(
                "if the tenant uses a private CA, give its certificate: sudo edge-setup config set {C8Y_CA_FILE} /etc/edge-setup/tenant-ca.pem"
            )
        } else {
            format!("check that {host} is the tenant, its certificate, and the clock of this appliance")
        };
        Error::failure(format!("the TLS connection to {} failed", self.url))
            .why(e)
            .hint(hint)
    }

    fn transport_error(&self, method: Method, path: &str, timeout: Duration, err: ureq::Error) -> Error {
        let request = format!("{} {path}", method.as_str());
        let host = &self.url.host;
        match err {
            ureq::Error::Timeout(_) => Error::failure(format!(
                "the tenant {} did not answer {request} within {} s",
                self.url,
                timeout.as_secs()
            ))
            .hint(format!(
                "check the network to {host} (proxy, firewall), or allow more time: sudo edge-setup config set {C8Y_REQUEST_TIMEOUT} 60"
            )),
            ureq::Error::HostNotFound => Error::failure(format!("cannot resolve the tenant's host name {host}"))
                .hint(format!(
                    "check c8y.url ({}) and the DNS server: sudo edge-setup remote-connectivity status",
                    self.url
                )),
            ureq::Error::Rustls(e) => self.tls_error(&e),
            ureq::Error::Io(e) if e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()).is_some() => {
                let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()).expect("checked above");
                self.tls_error(tls)
            }
            e @ (ureq::Error::Io(_) | ureq::Error::ConnectionFailed) => {
                Error::failure(format!("cannot connect to the tenant {}", self.url))
                    .why(e)
                    .hint(format!("check that {host} is reachable from this appliance (proxy, firewall) and run the command again"))
            }
            e => Error::failure(format!("{request} to the tenant {} failed", self.url))
                .why(e)
                .hint("run the command again; if it keeps failing, check the network to the tenant"),
        }
    }
}

/// The `message` (else `error`) of a Cumulocity error body, made safe to print.
fn tenant_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let text = v
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .or_else(|| v.get("error").and_then(Value::as_str))?;
    let clean: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    Some(format!("the tenant says: {clean}"))
}

/// Where the fix of an unsafe `c8y.ca-file` puts the CA (root's alone, as the key's example).
const SAFE_CA: &str = "/etc/edge-setup/tenant-ca.pem";

/// Where the distributions keep the system's CA bundle (openssl-probe's list, the
/// first that exists is read). Fixed paths of root's: SSL_CERT_FILE and SSL_CERT_DIR,
/// which rustls-native-certs would honour, are the caller's to choose.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL, Fedora
    "/etc/pki/tls/certs/ca-bundle.crt",                  // RHEL 6
    "/etc/ssl/ca-bundle.pem",                            // SUSE
    "/etc/ssl/cert.pem",                                 // Alpine
];

/// The CAs of the host's system bundle (the machine that connects, also when
/// it builds an image), and those of `extra` (PEM).
fn trusted_roots(sys: &System, extra: Option<&Path>) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let bundle = SYSTEM_CA_BUNDLES.iter().map(Path::new).find(|p| p.is_file());
    let mut roots: Vec<ureq::tls::Certificate<'static>> = match bundle {
        Some(file) => rustls_native_certs::load_certs_from_paths(Some(file), None)
            .certs
            .iter()
            .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
            .collect(),
        None => Vec::new(),
    };
    if let Some(path) = extra {
        let shown = sys.host_path(path);
        // What root trusts for the tenant (and sends its credentials through): the file and
        // every directory above it must be root's alone, as for hooks; anyone else who can
        // write it could put in a CA of their own and read the tenant's password.
        sys.check_controlled(path).map_err(|e| {
            let why = e.what.clone();
            Error::failure(format!("refusing the CA file {} ({C8Y_CA_FILE})", shown.display()))
                .why(why)
                .hint(format!(
                    "keep the tenant's CA certificate where only root can change it, e.g. \
                     sudo install -m 0644 -o root -g root {} {} && \
                     sudo edge-setup config set {C8Y_CA_FILE} {SAFE_CA}",
                    shown.display(),
                    sys.host_path(Path::new(SAFE_CA)).display()
                ))
        })?;
        let pem = sys.read(path)?.ok_or_else(|| {
            Error::bad_input(format!("{} ({C8Y_CA_FILE}) does not exist", shown.display())).hint(format!(
                "put the tenant's CA certificate there, or: sudo edge-setup config unset {C8Y_CA_FILE}"
            ))
        })?;
        let before = roots.len();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => roots.push(cert),
                Ok(_) => {}
                Err(e) => {
                    return Err(
                        Error::bad_input(format!("{} ({C8Y_CA_FILE}) is not valid PEM", shown.display())).why(e),
                    );
                }
            }
        }
        if roots.len() == before {
            return Err(
                Error::bad_input(format!("{} ({C8Y_CA_FILE}) has no certificate", shown.display()))
                    .hint("give a file with one or more '-----BEGIN CERTIFICATE-----' blocks"),
            );
        }
    }
    if roots.is_empty() {
        return Err(
            Error::failure("this system trusts no certificate authority").hint(format!(
                "install the CA certificates (Debian: apt-get install ca-certificates), or set {C8Y_CA_FILE}"
            )),
        );
    }
    Ok(roots)
}

/// `name` as a file name for the tenant: letters, digits, '.', '-' and '_'
/// kept, anything else (a quote or line end that would end the part's header,
/// a control character) made '_'.
pub fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The `multipart/form-data` body (RFC 7578) of `file` and its boundary, as
/// Cumulocity's binary uploads take it: an `object` part naming the file and
/// its type, then the `file` part. The boundary is drawn again until it occurs
/// nowhere in the file, so no byte of the file can end its part early.
fn form(file: &Attachment, mut draw: impl FnMut() -> Result<String>) -> Result<(String, Vec<u8>)> {
    let boundary = loop {
        let b = draw()?;
        if !contains(file.bytes, b.as_bytes()) {
            break b;
        }
    };
    let name = file_name(file.name);
    let object = serde_json::json!({"name": name, "type": file.content_type});
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"object\"\r\n\r\n{object}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {}\r\n\r\n",
        file.content_type
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let mut body = Vec::with_capacity(head.len() + file.bytes.len() + tail.len());
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(file.bytes);
    body.extend_from_slice(tail.as_bytes());
    Ok((boundary, body))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A boundary of 128 random bits.
fn random_boundary() -> Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::io("read", Path::new("/dev/urandom"), e))?;
    Ok(format!(
        "edge-setup-{}",
        buf.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Encodes a path segment (a device ID may hold ':').
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_messages_are_short_and_printable() {
        assert_eq!(
            tenant_message(r#"{"error":"security/Unauthorized","message":"Invalid credentials!"}"#).as_deref(),
            Some("the tenant says: Invalid credentials!")
        );
        assert_eq!(
            tenant_message(r#"{"error":"x/y"}"#).as_deref(),
            Some("the tenant says: x/y")
        );
        assert_eq!(tenant_message("<html>"), None);
        let long = format!(r#"{{"message":"{}\u001b[31m"}}"#, "a".repeat(500));
        let m = tenant_message(&long).unwrap();
        assert!(m.len() < 330 && !m.contains('\u{1b}'), "{m}");
    }

    #[test]
    fn a_form_holds_the_file_byte_for_byte_and_a_boundary_not_in_it() {
        let bytes: Vec<u8> = (0..=255u8).chain(b"--taken\r\n".iter().copied()).collect();
        let file = Attachment {
            name: "diag \"x\"\r\n.tar.gz",
            content_type: "application/gzip",
            bytes: &bytes,
        };
        let mut drawn = vec!["taken".to_string(), "free".to_string()].into_iter();
        let (boundary, body) = form(&file, || Ok(drawn.next().unwrap())).unwrap();
        // the first boundary drawn occurs in the file
        assert_eq!(boundary, "free");
        let head = "--free\r\nContent-Disposition: form-data; name=\"object\"\r\n\r\n\
                    {\"name\":\"diag__x___.tar.gz\",\"type\":\"application/gzip\"}\r\n\
                    --free\r\nContent-Disposition: form-data; name=\"file\"; filename=\"diag__x___.tar.gz\"\r\n\
                    Content-Type: application/gzip\r\n\r\n";
        assert_eq!(&body[..head.len()], head.as_bytes());
        assert_eq!(&body[head.len()..head.len() + bytes.len()], &bytes[..]);
        assert_eq!(&body[head.len() + bytes.len()..], b"\r\n--free--\r\n");
        let random = random_boundary().unwrap();
        assert!(random.len() == 43 && random.starts_with("edge-setup-"), "{random}");
        assert_ne!(random, random_boundary().unwrap());
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("edge-01.a_b"), "edge-01.a_b");
        assert_eq!(segment("mac:00:11"), "mac%3A00%3A11");
    }

    const NEAR: &[&str] = &[
        r#"{"error":"security/Unauthorized","message":"Invalid credentials!"}"#,
        r#"{"message":""}"#,
        r#"{"error":5}"#,
        "<html>",
        "{",
        "[]",
        "null",
        r#"{"message":"\u001b[31m"}"#,
        r#"{"message":"#,
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz::CASES))]
        /// Any answer of the tenant gives a short printable message, or none.
        #[test]
        fn any_error_body_gives_a_short_printable_message_or_none(text in crate::fuzz::text(NEAR)) {
            if let Some(m) = tenant_message(&text) {
                proptest::prop_assert!(m.chars().count() <= 320 && !m.chars().any(char::is_control), "{m:?}");
            }
        }
    }
}
