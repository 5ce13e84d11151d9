//! A Cumulocity tenant on loopback, for the tenant commands' tests: HTTPS with
//! a test CA (given to edge-setup through c8y.ca-file), exactly the endpoints
//! the README documents, each request checked (method, path, authentication,
//! content type, body fields, the parts of a multipart upload) and logged,
//! state kept between calls.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};

pub const USER: &str = "t100/admin";
pub const PASSWORD: &str = "Tenant:Pass#1";
pub const TOKEN: &str = "eyJ0ZXN0.token.sig";
/// Where `Tenant::appliance` puts the tenant's CA.
pub const CA: &str = "/etc/edge-setup/tenant-ca.pem";

/// One request as the tenant saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    /// As sent: a file upload is not text.
    pub body: Vec<u8>,
}

/// The file attached to an event, as the tenant took it from the `file` part.
#[derive(Debug, Clone)]
pub struct Binary {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What the tenant holds and how it misbehaves.
#[derive(Default)]
pub struct State {
    /// c8y_Serial external ID -> managed object id.
    pub devices: BTreeMap<String, String>,
    /// Device ID -> registration status.
    pub requests: BTreeMap<String, String>,
    /// Managed object id -> its endpoints (as stored: secrets included).
    pub endpoints: BTreeMap<String, Vec<Value>>,
    /// Event id -> the event as stored.
    pub events: BTreeMap<String, Value>,
    /// Event id -> its attached file.
    pub binaries: BTreeMap<String, Binary>,
    pub next_id: u64,
    pub log: Vec<Seen>,
    /// Bodies or fields the tenant refused, with why: a test asserts none.
    pub violations: Vec<String>,
    /// Every request gets this status (and a Cumulocity error body).
    pub fail: Option<u16>,
    /// Requests of this method get this status.
    pub fail_on: Option<(&'static str, u16)>,
    /// Requests whose path ends with this get this status.
    pub fail_at: Option<(&'static str, u16)>,
    /// Every request is redirected there (a proxy's login page, an old address).
    pub redirect: Option<String>,
    /// Every request is read and never answered.
    pub hang: bool,
    /// The tenant's clock runs this many seconds ahead of the host's (its `Date` header).
    pub clock_offset: i64,
    /// A WAITING_FOR_CONNECTION request turns PENDING_ACCEPTANCE at the Nth GET
    /// of it (the device asking for its credentials).
    pub connect_after: Option<u32>,
    /// An ACCEPTED request becomes a registered device at the next GET of
    /// anything (the agent fetched its credentials).
    pub register_on_accept: bool,
    gets: BTreeMap<String, u32>,
}

pub struct Tenant {
    pub port: u16,
    pub state: Arc<Mutex<State>>,
    pub ca_pem: String,
}

impl Tenant {
    pub fn start() -> Tenant {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            next_id: 100,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (config, state) = (config.clone(), shared.clone());
                std::thread::spawn(move || serve(conn, config, state));
            }
        });
        Tenant {
            port,
            state,
            ca_pem: ca.pem(),
        }
    }

    /// An image of an appliance with device ID `device` and this tenant's URL and
    /// CA (at `CA`) configured, requests bounded by 3 s.
    pub fn appliance(&self, device: &str) -> super::Image {
        let img = super::Image::debian();
        img.write("/usr/edge/properties/edge-agent/device-id", &format!("{device}\n"));
        img.write(CA, &self.ca_pem);
        img.write(
            "/etc/edge-setup/edge-setup.toml",
            &format!(
                "[c8y]\nurl = \"{}\"\nca-file = \"{CA}\"\nrequest-timeout = 3\n",
                self.url()
            ),
        );
        img
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// The requests seen, as "METHOD path".
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.log.iter().map(|r| format!("{} {}", r.method, r.path)).collect())
    }

    /// The requests that changed something.
    pub fn changes(&self) -> Vec<String> {
        self.requests().into_iter().filter(|r| !r.starts_with("GET ")).collect()
    }

    pub fn clear_log(&self) {
        self.with(|s| s.log.clear());
    }

    /// A registered device with this ID, as managed object `mo`.
    pub fn register(&self, device_id: &str, mo: &str) {
        self.with(|s| {
            s.devices.insert(device_id.to_string(), mo.to_string());
            s.endpoints.entry(mo.to_string()).or_default();
        });
    }

    /// The endpoints of `mo`, as stored.
    pub fn endpoints(&self, mo: &str) -> Vec<Value> {
        self.with(|s| s.endpoints.get(mo).cloned().unwrap_or_default())
    }

    /// The events made, in the order of their ids.
    pub fn events(&self) -> Vec<Value> {
        self.with(|s| s.events.values().cloned().collect())
    }

    /// The file attached to event `id`.
    pub fn binary(&self, id: &str) -> Option<Binary> {
        self.with(|s| s.binaries.get(id).cloned())
    }

    /// An endpoint somebody else made (the operator, by hand).
    pub fn add_foreign(&self, mo: &str, body: Value) -> String {
        self.with(|s| {
            s.next_id += 1;
            let id = s.next_id.to_string();
            let mut body = body;
            body["id"] = json!(id);
            s.endpoints.entry(mo.to_string()).or_default().push(body);
            id
        })
    }
}

fn serve(conn: TcpStream, config: Arc<rustls::ServerConfig>, state: Arc<Mutex<State>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
    let Ok(server) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(server, conn);
    let Some(seen) = read_request(&mut tls) else { return };
    let (status, body) = {
        let mut s = state.lock().unwrap();
        s.log.push(seen.clone());
        if s.hang {
            drop(s);
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        answer(&mut s, &seen)
    };
    let text = body.as_ref().map(|b| b.to_string()).unwrap_or_default();
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Status",
    };
    let location = body
        .as_ref()
        .filter(|_| status == 301)
        .and_then(|b| b["location"].as_str())
        .map(|l| format!("Location: {l}\r\n"))
        .unwrap_or_default();
    let offset = state.lock().unwrap().clock_offset;
    let now = std::time::SystemTime::now();
    let clock = match offset >= 0 {
        true => now + Duration::from_secs(offset as u64),
        false => now - Duration::from_secs(offset.unsigned_abs()),
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nDate: {}\r\nContent-Type: application/json\r\n{location}Content-Length: {}\r\nConnection: close\r\n\r\n",
        httpdate::fmt_http_date(clock),
        text.len()
    );
    let _ = tls.write_all(head.as_bytes());
    let _ = tls.write_all(text.as_bytes());
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn read_request(tls: &mut impl Read) -> Option<Seen> {
    let mut reader = BufReader::new(tls);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        headers,
        body,
    })
}

fn error(status: u16, message: &str) -> (u16, Option<Value>) {
    (status, Some(json!({"error": "test/error", "message": message})))
}

fn answer(s: &mut State, r: &Seen) -> (u16, Option<Value>) {
    if let Some(status) = s.fail {
        return error(status, "injected failure");
    }
    if let Some(to) = &s.redirect {
        return (301, Some(json!({"location": to})));
    }
    if let Some((method, status)) = s.fail_on
        && method == r.method
    {
        return error(status, "injected failure");
    }
    if let Some((end, status)) = s.fail_at
        && r.path.ends_with(end)
    {
        return error(status, "injected failure");
    }
    // any client may ask how to log in: edge-setup check's probe of TLS and the clock
    if (r.method.as_str(), r.path.as_str()) == ("GET", "/tenant/loginOptions") {
        return (200, Some(json!({"loginOptions": [{"type": "BASIC"}]})));
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let auth = r.headers.get("authorization").cloned().unwrap_or_default();
    if auth != basic && auth != format!("Bearer {TOKEN}") {
        return error(401, "Invalid credentials!");
    }
    if r.headers.get("accept").map(String::as_str) != Some("application/json") {
        s.violations
            .push(format!("{} {}: Accept is not application/json", r.method, r.path));
    }
    let segs: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
    // a file comes as multipart/form-data, not JSON
    if let ("POST", ["event", "events", id, "binaries"]) = (r.method.as_str(), segs.as_slice()) {
        return attach(s, r, &decode(id));
    }
    let body: Value = if matches!(r.method.as_str(), "POST" | "PUT") {
        if r.headers.get("content-type").map(String::as_str) != Some("application/json") {
            s.violations
                .push(format!("{} {}: Content-Type is not application/json", r.method, r.path));
            return error(415, "unsupported media type");
        }
        match serde_json::from_slice(&r.body) {
            Ok(v) => v,
            Err(_) => {
                s.violations
                    .push(format!("{} {}: the body is not JSON", r.method, r.path));
                return error(422, "not JSON");
            }
        }
    } else {
        Value::Null
    };
    if s.register_on_accept && r.method == "GET" {
        // the agent has fetched its credentials: the request goes, the device is there
        let accepted: Vec<String> = s
            .requests
            .iter()
            .filter(|(_, st)| *st == "ACCEPTED")
            .map(|(id, _)| id.clone())
            .collect();
        for id in accepted {
            s.requests.remove(&id);
            s.next_id += 1;
            let mo = s.next_id.to_string();
            s.devices.insert(id, mo.clone());
            s.endpoints.entry(mo).or_default();
        }
    }
    match (r.method.as_str(), segs.as_slice()) {
        ("GET", ["identity", "externalIds", "c8y_Serial", id]) => match s.devices.get(&decode(id)) {
            Some(mo) => (
                200,
                Some(json!({"externalId": decode(id), "type": "c8y_Serial", "managedObject": {"id": mo}})),
            ),
            None => error(404, "no such external ID"),
        },
        ("POST", ["devicecontrol", "newDeviceRequests"]) => {
            let Some(id) = body.get("id").and_then(Value::as_str) else {
                s.violations.push("POST newDeviceRequests without id".into());
                return error(422, "id missing");
            };
            if s.requests.contains_key(id) {
                return error(409, "already requested");
            }
            s.requests.insert(id.to_string(), "WAITING_FOR_CONNECTION".into());
            (201, Some(json!({"id": id, "status": "WAITING_FOR_CONNECTION"})))
        }
        ("GET", ["devicecontrol", "newDeviceRequests", id]) => {
            let id = decode(id);
            let n = {
                let c = s.gets.entry(id.clone()).or_default();
                *c += 1;
                *c
            };
            let Some(status) = s.requests.get(&id).cloned() else {
                return error(404, "no such request");
            };
            let status = match s.connect_after {
                Some(after) if status == "WAITING_FOR_CONNECTION" && n >= after => {
                    s.requests.insert(id.clone(), "PENDING_ACCEPTANCE".into());
                    "PENDING_ACCEPTANCE".to_string()
                }
                _ => status,
            };
            (200, Some(json!({"id": id, "status": status})))
        }
        ("PUT", ["devicecontrol", "newDeviceRequests", id]) => {
            let id = decode(id);
            match s.requests.get(&id).map(String::as_str) {
                None => error(404, "no such request"),
                Some("PENDING_ACCEPTANCE") if body.get("status") == Some(&json!("ACCEPTED")) => {
                    s.requests.insert(id.clone(), "ACCEPTED".into());
                    (200, Some(json!({"id": id, "status": "ACCEPTED"})))
                }
                Some(other) => {
                    s.violations
                        .push(format!("PUT newDeviceRequests/{id} in state {other}"));
                    error(422, "cannot accept a request that is not pending acceptance")
                }
            }
        }
        ("GET", ["service", "remoteaccess", "devices", mo, "configurations"]) => match s.endpoints.get(*mo) {
            Some(list) => (200, Some(Value::Array(list.iter().map(shown).collect()))),
            None => error(404, "no such device"),
        },
        ("POST", ["service", "remoteaccess", "devices", mo, "configurations"]) => {
            if !s.endpoints.contains_key(*mo) {
                return error(404, "no such device");
            }
            if let Err(why) = check_endpoint(&body) {
                s.violations.push(format!("POST endpoint: {why}"));
                return error(422, &why);
            }
            s.next_id += 1;
            let id = s.next_id.to_string();
            let mut stored = body.clone();
            stored["id"] = json!(id);
            s.endpoints.get_mut(*mo).unwrap().push(stored.clone());
            (201, Some(shown(&stored)))
        }
        ("PUT", ["service", "remoteaccess", "devices", mo, "configurations", id]) => {
            if let Err(why) = check_endpoint(&body) {
                s.violations.push(format!("PUT endpoint: {why}"));
                return error(422, &why);
            }
            let Some(e) = s
                .endpoints
                .get_mut(*mo)
                .and_then(|l| l.iter_mut().find(|e| e["id"] == json!(id)))
            else {
                return error(404, "no such endpoint");
            };
            let mut stored = body.clone();
            stored["id"] = json!(id);
            *e = stored.clone();
            (200, Some(shown(&stored)))
        }
        ("POST", ["event", "events"]) => {
            if let Err(why) = check_event(s, &body) {
                s.violations.push(format!("POST event: {why}"));
                return error(422, &why);
            }
            s.next_id += 1;
            let id = s.next_id.to_string();
            let mut stored = body.clone();
            stored["id"] = json!(id);
            s.events.insert(id, stored.clone());
            (201, Some(stored))
        }
        ("DELETE", ["service", "remoteaccess", "devices", mo, "configurations", id]) => {
            let Some(list) = s.endpoints.get_mut(*mo) else {
                return error(404, "no such device");
            };
            let before = list.len();
            list.retain(|e| e["id"] != json!(id));
            if list.len() == before {
                error(404, "no such endpoint")
            } else {
                (204, None)
            }
        }
        _ => {
            s.violations.push(format!("unknown request {} {}", r.method, r.path));
            error(404, "unknown resource")
        }
    }
}

/// The fields the API requires of an event: a device's managed object as its
/// source, a type, a text and an ISO 8601 time.
fn check_event(s: &State, b: &Value) -> Result<(), String> {
    let source = b["source"]["id"].as_str().ok_or("source.id missing")?;
    if !s.devices.values().any(|mo| mo == source) {
        return Err(format!("source {source} is no device's managed object"));
    }
    for k in ["type", "text"] {
        b[k].as_str().filter(|v| !v.is_empty()).ok_or(format!("{k} missing"))?;
    }
    let time = b["time"].as_str().ok_or("time missing")?;
    if !is_iso8601(time) {
        return Err(format!("time {time} is not ISO 8601"));
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SS`, an optional fraction, then `Z` or `+HH:MM`/`-HH:MM`.
fn is_iso8601(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date_time = b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !date_time {
        return false;
    }
    let mut rest = &t[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    let zone = rest.as_bytes();
    rest == "Z"
        || (zone.len() == 6
            && (zone[0] == b'+' || zone[0] == b'-')
            && zone[1..3].iter().all(u8::is_ascii_digit)
            && zone[3] == b':'
            && zone[4..6].iter().all(u8::is_ascii_digit))
}

/// `POST /event/events/{id}/binaries`: a multipart/form-data body with a
/// `file` part (its filename and content type) and optionally an `object` part
/// (JSON naming the same file), as the API documents. The event must exist
/// and hold no file yet (409).
fn attach(s: &mut State, r: &Seen, id: &str) -> (u16, Option<Value>) {
    let mut refuse = |why: String| {
        s.violations.push(format!("POST {}: {why}", r.path));
        error(422, &why)
    };
    let content_type = r.headers.get("content-type").cloned().unwrap_or_default();
    let Some(boundary) = content_type
        .strip_prefix("multipart/form-data;")
        .and_then(|params| param(params, "boundary"))
    else {
        return refuse(format!(
            "Content-Type is {content_type:?}, not multipart/form-data with a boundary"
        ));
    };
    let parts = match parts(&r.body, &boundary) {
        Ok(p) => p,
        Err(why) => return refuse(why),
    };
    let mut file = None;
    let mut object = None;
    for (headers, content) in parts {
        let disposition = headers.get("content-disposition").cloned().unwrap_or_default();
        let Some(params) = disposition.strip_prefix("form-data;") else {
            return refuse(format!("a part's Content-Disposition is {disposition:?}"));
        };
        match param(params, "name").as_deref() {
            Some("file") => {
                let Some(filename) = param(params, "filename").filter(|f| !f.is_empty()) else {
                    return refuse("the file part has no filename".into());
                };
                let content_type = headers.get("content-type").cloned().unwrap_or_default();
                if content_type.is_empty() {
                    return refuse("the file part has no Content-Type".into());
                }
                file = Some(Binary {
                    filename,
                    content_type,
                    bytes: content,
                });
            }
            Some("object") => match serde_json::from_slice::<Value>(&content) {
                Ok(v) => object = Some(v),
                Err(_) => return refuse("the object part is not JSON".into()),
            },
            other => return refuse(format!("an unknown part {other:?}")),
        }
    }
    let Some(file) = file else {
        return refuse("no file part".into());
    };
    if let Some(o) = object
        && (o["name"] != json!(file.filename) || o["type"] != json!(file.content_type))
    {
        return refuse(format!("the object part {o} does not name the file part"));
    }
    let Some(event) = s.events.get_mut(id) else {
        return error(404, "no such event");
    };
    if s.binaries.contains_key(id) {
        return error(409, "the event has a binary already");
    }
    let shown = json!({"name": file.filename, "type": file.content_type, "length": file.bytes.len()});
    event["c8y_IsBinary"] = shown.clone();
    s.binaries.insert(id.to_string(), file);
    let mut answer = shown;
    answer["source"] = json!(id);
    (201, Some(answer))
}

/// The value of `key` in `; key=value` parameters (quoted or not).
fn param(params: &str, key: &str) -> Option<String> {
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// A part of a multipart body: its headers (names in lower case) and its content.
type Part = (BTreeMap<String, String>, Vec<u8>);

/// The parts of a multipart body (RFC 2046), their content byte for byte.
fn parts(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body
        .strip_prefix(format!("--{boundary}").as_bytes())
        .ok_or("the body does not begin with the boundary")?;
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or("no line end after a boundary")?;
        let end = find(rest, delimiter.as_bytes()).ok_or("a part is not closed by the boundary")?;
        let part = &rest[..end];
        rest = &rest[end + delimiter.len()..];
        let head_end = find(part, b"\r\n\r\n").ok_or("a part has no end of its headers")?;
        let head = std::str::from_utf8(&part[..head_end]).map_err(|_| "a part's headers are not text")?;
        let mut headers = BTreeMap::new();
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':').ok_or(format!("a part's header line {line:?}"))?;
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        parts.push((headers, part[head_end + 4..].to_vec()));
    }
}

/// An endpoint as the tenant shows it: without its secrets.
fn shown(e: &Value) -> Value {
    let mut e = e.clone();
    if let Some(o) = e.as_object_mut() {
        o.remove("password");
        o.remove("privateKey");
    }
    e
}

/// The fields the API requires of an endpoint.
fn check_endpoint(b: &Value) -> Result<(), String> {
    let text = |k: &str| b.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    for k in ["name", "hostname", "protocol", "credentialsType"] {
        text(k).ok_or(format!("{k} missing"))?;
    }
    let port = b
        .get("port")
        .and_then(Value::as_u64)
        .ok_or("port missing or not a number")?;
    if port == 0 || port > 65535 {
        return Err(format!("port {port}"));
    }
    match (text("protocol").unwrap(), text("credentialsType").unwrap()) {
        ("VNC", "PASS_ONLY") => {
            text("password").ok_or("a PASS_ONLY endpoint without password")?;
        }
        ("VNC", "NONE") => {}
        ("SSH", "KEY_PAIR") => {
            for k in ["username", "privateKey", "publicKey", "hostKey"] {
                text(k).ok_or(format!("a KEY_PAIR endpoint without {k}"))?;
            }
        }
        ("SSH", "USER_PASS") => {
            for k in ["username", "password"] {
                text(k).ok_or(format!("a USER_PASS endpoint without {k}"))?;
            }
        }
        (p, c) => return Err(format!("protocol {p} with credentialsType {c}")),
    }
    Ok(())
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
