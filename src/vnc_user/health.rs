//! `check`'s VNC area: the packages and TigerVNC generation, the two mapping
//! files, and for each user with a display (an ordinary user: herself) the
//! password file, stale X files, the session unit, the port on the address
//! `vnc.listen` asks for, the RFB greeting there (the firewall is `vnc::health`'s).
//! And the fixes `check --fix` may apply to them.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};

use super::*;
use crate::health::{Area, Check, Fix, Probe};

const AREA: Area = Area::Vnc;

/// How long the RFB greeting is waited for (a session answers at once).
const RFB_WAIT: Duration = Duration::from_secs(3);

pub fn checks(p: &Probe) -> Vec<Check> {
    let sys = p.sys;
    let family = match sys.os_release().and_then(|o| o.family()) {
        Ok(f) => f,
        Err(e) => return vec![Check::failed(AREA, "vnc.packages", e, || "cat /etc/os-release".into())],
    };
    // `edge-setup vnc` ran here: its record exists
    let set_up = sys.meta(Path::new(tigervnc::INSTALL_RECORD)).ok().flatten().is_some();
    let version = tigervnc::installed_version(sys, family).ok().flatten();
    let mut out = Vec::new();
    let version = match (version, set_up) {
        (None, false) => {
            return vec![Check::skipped(
                AREA,
                "vnc.packages",
                "VNC is not set up here (sudo edge-setup vnc installs it)",
            )];
        }
        // an image's packages may be the target's to install ('edge-setup --root vnc' prints them)
        (None, true) if sys.is_image() => {
            out.push(Check::ok(
                AREA,
                "vnc.packages",
                "TigerVNC is not installed in the image: the target installs it (assuming 1.12, which reads ~/.vnc)",
            ));
            Version::DEBIAN_12
        }
        (None, true) => {
            out.push(Check::fail(
                AREA,
                "vnc.packages",
                "edge-setup vnc ran here, but TigerVNC is not installed",
                sys.next_command("vnc"),
            ));
            Version::DEBIAN_12
        }
        (Some(v), _) => {
            let dir = if v >= Version::CONFIG_DIR {
                "~/.config/tigervnc"
            } else {
                "~/.vnc"
            };
            out.push(Check::ok(
                AREA,
                "vnc.packages",
                format!("TigerVNC {}.{} is installed (it reads {dir})", v.0, v.1),
            ));
            v
        }
    };
    let mappings = match load_mappings(sys) {
        Ok((m, notes)) if notes.is_empty() => {
            let users: Vec<String> = m.appliance.entries().map(|(u, d, _)| format!("{u} :{d}")).collect();
            out.push(Check::ok(
                AREA,
                "vnc.mappings",
                format!(
                    "both mapping files agree ({})",
                    if users.is_empty() {
                        "no user yet".to_string()
                    } else {
                        users.join(", ")
                    }
                ),
            ));
            m
        }
        Ok((m, notes)) => {
            out.push(Check::warn(
                AREA,
                "vnc.mappings",
                notes.join("; "),
                sys.next_command("vnc-user --user NAME (for a user named above: it writes both files)"),
            ));
            m
        }
        Err(e) => {
            out.push(Check::failed(AREA, "vnc.mappings", e, || {
                format!("compare {MAPPING_FILE} and {USERS_FILE} by hand")
            }));
            return out;
        }
    };
    let listen = p.get(VNC_LISTEN).unwrap_or(Listen::Localhost);
    let me = (!p.root)
        .then(|| sys.users().by_uid(sys.uid()).ok().flatten())
        .flatten();
    let entries: Vec<(String, u32)> = mappings
        .appliance
        .entries()
        .filter(|(u, _, _)| me.as_ref().is_none_or(|m| m.name == *u))
        .map(|(u, d, _)| (u.to_string(), d))
        .collect();
    if let (Some(me), true) = (&me, entries.is_empty()) {
        out.push(
            Check::fail(
                AREA,
                "vnc.display",
                format!("{} has no VNC display", me.name),
                "edge-setup vnc-user",
            )
            .for_user(&me.name),
        );
    }
    let servers = x_servers(sys);
    for (name, display) in &entries {
        let user = match sys.users().by_name(name) {
            Ok(Some(u)) => u,
            _ => {
                out.push(
                    Check::fail(
                        AREA,
                        "vnc.display",
                        format!("{name} has display :{display} but is not a user here"),
                        sys.next_command(&format!("vnc-user --remove --user {name}")),
                    )
                    .for_user(name),
                );
                continue;
            }
        };
        let target = Target::at(family, user, version);
        let mut user_checks = vec![password_file(p, &target)];
        let session = session(p, &target, *display);
        let serving = session.status == crate::health::Status::Ok;
        user_checks.push(stale(p, *display, &servers, serving));
        user_checks.push(session);
        user_checks.extend(port_and_greeting(p, &target, *display, listen));
        out.extend(user_checks.into_iter().map(|c| c.for_user(name)));
    }
    out
}

/// The command that enables `user` as `p`'s caller would type it.
fn vnc_user_command(p: &Probe, user: &str) -> String {
    if p.root {
        p.sys.next_command(&format!("vnc-user --user {user}"))
    } else {
        "edge-setup vnc-user".to_string()
    }
}

fn password_file(p: &Probe, target: &Target) -> Check {
    let id = "vnc.password-file";
    let sys = p.sys;
    let u = &target.user;
    let shown = sys.host_path(&target.passwd).display().to_string();
    let set_again = vnc_user_command(p, &u.name);
    let kind = as_user(u.uid, u.gid, || sys.kind(&target.passwd));
    let meta = as_user(u.uid, u.gid, || sys.meta(&target.passwd));
    let (kind, meta) = match (kind, meta) {
        (Ok(Some(k)), Ok(Some(m))) => (k, m),
        (Ok(None), _) | (_, Ok(None)) => {
            let legacy = target
                .legacy_passwd
                .as_ref()
                .filter(|l| as_user(u.uid, u.gid, || sys.kind(l)).ok().flatten().is_some());
            let finding = match legacy {
                Some(l) => format!(
                    "{shown} is missing; {} is there, but this TigerVNC does not read it",
                    sys.host_path(l).display()
                ),
                None => format!("{shown} is missing: the session cannot start"),
            };
            return Check::fail(AREA, id, finding, set_again);
        }
        (Err(e), _) | (_, Err(e)) => return Check::failed(AREA, id, e, || set_again),
    };
    if kind != FileKind::File {
        return Check::fail(
            AREA,
            id,
            format!("{shown} is not a regular file"),
            format!("remove it (rm -r {shown}), then: {set_again}"),
        );
    }
    // its size; read past the largest password file, so that a larger one is told apart
    let bytes = match read_passwd(sys, target, meta.uid, 4 * PASSWD_MAX) {
        Ok(b) => b,
        // root's file, read by an ordinary user: its size is not hers to learn
        Err(_) if !p.root && meta.uid == 0 => None,
        Err(e) => return Check::failed(AREA, id, e, || format!("remove it (rm {shown}), then: {set_again}")),
    };
    if let Some(b) = &bytes
        && !matches!(b.len(), 8 | 16)
    {
        return Check::fail(
            AREA,
            id,
            format!(
                "{shown} holds {} bytes, not a VNC password (8, or 16 with a view-only one)",
                b.len()
            ),
            set_again,
        );
    }
    let restore = |finding: String| {
        let check = Check::fail(AREA, id, finding, set_again.clone());
        // an ordinary user cannot take a file back from root
        if p.root || meta.uid == u.uid {
            check.fixable(sys, Fix::RestorePasswordFile { user: u.name.clone() })
        } else {
            Check {
                next: Some(format!("sudo edge-setup check --fix --only vnc (or: {set_again})")),
                ..check
            }
        }
    };
    if meta.uid != u.uid {
        if meta.uid != 0 {
            return Check::fail(
                AREA,
                id,
                format!("{shown} belongs to uid {}, not to {}", meta.uid, u.name),
                format!("remove it (sudo rm {shown}), then: {set_again}"),
            );
        }
        return restore(format!(
            "{shown} belongs to root, not to {}: TigerVNC, running as {0}, cannot read it",
            u.name
        ));
    }
    if meta.mode & 0o7777 != 0o600 {
        return restore(format!(
            "{shown} is mode {:04o}, not 0600: {}",
            meta.mode & 0o7777,
            if meta.mode & 0o077 != 0 {
                "others can read the password"
            } else {
                "TigerVNC expects 0600"
            }
        ));
    }
    Check::ok(AREA, id, format!("{shown} is {}'s, 0600", u.name))
}

/// The user's password file, of at most `max` bytes, read with the checks of every
/// file in a home (no link on the way or at the end, one link, the owner's): as its
/// user when it is hers, as root when it is root's (a copy made as root); a file of
/// anyone else is not read (`None`).
fn read_passwd(sys: &System, target: &Target, owner: u32, max: u64) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let u = &target.user;
    let bytes = match owner {
        _ if owner == u.uid => as_user(u.uid, u.gid, || sys.read_user_file(&target.passwd, u.uid, max))?,
        0 => sys.read_user_file(&target.passwd, 0, max)?,
        _ => None,
    };
    Ok(bytes.map(Zeroizing::new))
}

/// The session unit's enablement and state, from systemd (live only).
fn unit_state(sys: &System, unit: &str) -> Option<(String, String)> {
    let out = sys
        .query(
            Cmd::new(Tool::Systemctl)
                .args(["show", "--property=UnitFileState,ActiveState"])
                .arg(unit),
        )
        .ok()??;
    let value = |key: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    Some((value("UnitFileState"), value("ActiveState")))
}

fn session(p: &Probe, target: &Target, display: u32) -> Check {
    let id = "vnc.session";
    let sys = p.sys;
    let unit = target.unit(display);
    if sys.is_image() {
        let link = Path::new("/etc/systemd/system/multi-user.target.wants").join(&unit);
        return match sys.is_link(&link) {
            Ok(true) => Check::ok(AREA, id, format!("{unit} is enabled (it starts on the appliance)")),
            _ => Check::warn(
                AREA,
                id,
                format!("{unit} is not enabled in the image"),
                vnc_user_command(p, &target.user.name),
            ),
        };
    }
    let fix = Fix::RestartSession {
        user: target.user.name.clone(),
        display,
    };
    let journal = format!("journalctl -u {unit}");
    match unit_state(sys, &unit) {
        Some((enabled, active)) if active == "active" && enabled == "enabled" => {
            Check::ok(AREA, id, format!("{unit} is enabled and active"))
        }
        Some((enabled, active)) if active == "active" => Check::warn(
            AREA,
            id,
            format!("{unit} is active but {enabled}: it will not start at the next boot"),
            journal,
        )
        .fixable(sys, fix),
        Some((_, active)) => Check::fail(
            AREA,
            id,
            format!("{unit} is {active}: the session is down"),
            format!("{journal} tells why"),
        )
        .fixable(sys, fix),
        None => Check::skipped(AREA, id, "systemd cannot tell the session's state"),
    }
}

/// An X lock or socket file for `display` that no live X server holds: Debian's
/// wrapper refuses to start on it.
fn stale(p: &Probe, display: u32, servers: &BTreeMap<u32, u32>, serving: bool) -> Check {
    let id = "vnc.stale-files";
    let sys = p.sys;
    if let Some(why) = p.live_only() {
        return Check::skipped(AREA, id, why);
    }
    if servers.contains_key(&display) || serving {
        return Check::ok(AREA, id, format!("a live X server holds :{display}"));
    }
    let left: Vec<String> = stale_paths(display)
        .into_iter()
        .filter(|path| sys.kind(path).ok().flatten().is_some())
        .map(|path| path.display().to_string())
        .collect();
    if left.is_empty() {
        return Check::ok(AREA, id, format!("no X lock or socket is left for :{display}"));
    }
    Check::fail(
        AREA,
        id,
        format!(
            "{} {} left though no X server runs on :{display}: the session cannot start",
            left.join(" and "),
            if left.len() == 1 { "is" } else { "are" }
        ),
        format!("sudo rm -f {}", left.join(" ")),
    )
    .fixable(sys, Fix::RemoveStale { display })
}

/// The addresses a TCP socket listens on for `port`, from /proc/net/tcp and tcp6.
fn listeners(sys: &System, port: u16) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (path, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(Some((bytes, _))) = sys.read_small(Path::new(path), 64 << 20) else {
            continue;
        };
        out.extend(parse_listeners(&String::from_utf8_lossy(&bytes), port, v6));
    }
    out
}

/// `sl local_address rem_address st ...`: the local address in the kernel's
/// byte order (each 32-bit word little-endian), the port in hex, state 0A = LISTEN.
pub(super) fn parse_listeners(table: &str, port: u16, v6: bool) -> Vec<IpAddr> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let local = f.nth(1)?;
            let state = f.nth(1)?;
            let (addr, p) = local.split_once(':')?;
            if state != "0A" || u16::from_str_radix(p, 16).ok()? != port {
                return None;
            }
            let words: Vec<u32> = (0..addr.len() / 8)
                .map(|i| u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16))
                .collect::<Result<_, _>>()
                .ok()?;
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            match (v6, bytes.len()) {
                (false, 4) => Some(IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))),
                (true, 16) => {
                    let a: [u8; 16] = bytes.try_into().ok()?;
                    Some(IpAddr::V6(Ipv6Addr::from(a)))
                }
                _ => None,
            }
        })
        .collect()
}

fn port_and_greeting(p: &Probe, target: &Target, display: u32, listen: Listen) -> Vec<Check> {
    let sys = p.sys;
    if let Some(why) = p.live_only() {
        return vec![
            Check::skipped(AREA, "vnc.port", why),
            Check::skipped(AREA, "vnc.rfb", why),
        ];
    }
    let port = tigervnc::port(display);
    let addrs = listeners(sys, port);
    let restart = Fix::RestartSession {
        user: target.user.name.clone(),
        display,
    };
    if addrs.is_empty() {
        return vec![
            Check::fail(
                AREA,
                "vnc.port",
                format!("nothing listens on port {port}"),
                format!("journalctl -u {}", target.unit(display)),
            )
            .fixable(sys, restart),
            Check::skipped(AREA, "vnc.rfb", format!("nothing listens on port {port}")),
        ];
    }
    let shown: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let wide = addrs.iter().any(|a| a.is_unspecified());
    let port_check = match (listen, wide) {
        (Listen::Localhost, true) => Check::fail(
            AREA,
            "vnc.port",
            format!(
                "port {port} listens on {} though vnc.listen is localhost: the session is open to the network",
                shown.join(", ")
            ),
            "restart it so that it reads its settings again",
        )
        .fixable(sys, restart.clone()),
        (Listen::Lan, false) => Check::warn(
            AREA,
            "vnc.port",
            format!(
                "port {port} listens on {} only, though vnc.listen is lan",
                shown.join(", ")
            ),
            "restart it so that it reads its settings again",
        )
        .fixable(sys, restart.clone()),
        _ => Check::ok(AREA, "vnc.port", format!("port {port} listens on {}", shown.join(", "))),
    };
    let at = addrs
        .iter()
        .find(|a| a.is_loopback())
        .copied()
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let greeting = match greeting(SocketAddr::new(at, port)) {
        Ok(version) => Check::ok(
            AREA,
            "vnc.rfb",
            format!("the server on {at}:{port} greets with {version}"),
        ),
        Err(why) => Check::fail(
            AREA,
            "vnc.rfb",
            format!("no RFB greeting on {at}:{port}: {why}"),
            format!("journalctl -u {}", target.unit(display)),
        )
        .fixable(sys, restart),
    };
    vec![port_check, greeting]
}

/// The server's first 12 bytes, which RFB fixes as `RFB 003.00x\n`.
fn greeting(addr: SocketAddr) -> std::result::Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&addr, RFB_WAIT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(RFB_WAIT)).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 12];
    stream
        .read_exact(&mut buf)
        .map_err(|e| format!("reading the greeting: {e}"))?;
    parse_greeting(&buf)
}

pub(super) fn parse_greeting(buf: &[u8; 12]) -> std::result::Result<String, String> {
    let text = String::from_utf8_lossy(buf);
    let ok = text.starts_with("RFB 003.") && text.ends_with('\n') && text[8..11].bytes().all(|b| b.is_ascii_digit());
    match ok {
        true => Ok(text.trim_end().to_string()),
        false => Err(format!("it sent {:?}, not 'RFB 003.00x'", text)),
    }
}

// ---- the fixes ------------------------------------------------------------------

/// The user `name`'s target for the installed TigerVNC; an ordinary user only herself.
fn fix_target(sys: &System, name: &str) -> Result<Target> {
    let family = sys.os_release()?.family()?;
    let user = target_user(sys, Some(name).filter(|_| sys.is_root() || sys.is_image()))?;
    if user.name != name {
        return Err(Error::not_permitted(format!("only root may fix {name}'s VNC session"))
            .hint("sudo edge-setup check --fix --only vnc"));
    }
    Target::new(sys, family, user, false)
}

/// Starts (restarts) the session: as root directly, as its user through the
/// privileged part (`--system-part --restart`, which the sudoers rule allows).
pub fn restart_session(sys: &System, name: &str, display: u32) -> Result<()> {
    let target = fix_target(sys, name)?;
    if sys.is_root() || sys.is_image() {
        return start_session(sys, &target, display, true);
    }
    run_system_part(sys, &target, Part::Enable { restart: true }).map(|_| ())
}

/// Removes the X lock and socket files of `display` that no live server holds.
pub fn remove_stale(sys: &System, display: u32) -> Result<()> {
    clear_stale(sys, display);
    Ok(())
}

/// Rewrites the user's password file as the user, mode 0600, with the bytes it
/// holds: a file root took over (a copy made as root) becomes hers again.
pub fn restore_password_file(sys: &System, name: &str) -> Result<()> {
    let target = fix_target(sys, name)?;
    let u = &target.user;
    let meta = as_user(u.uid, u.gid, || sys.meta(&target.passwd))?.ok_or_else(|| {
        Error::failure(format!("{name} has no VNC password file"))
            .hint(format!("sudo edge-setup vnc-user --user {name}"))
    })?;
    if meta.uid != u.uid && meta.uid != 0 {
        return Err(Error::failure(format!(
            "{} belongs to uid {}: it is not {name}'s to take back",
            sys.host_path(&target.passwd).display(),
            meta.uid
        ))
        .hint(format!("remove it, then: sudo edge-setup vnc-user --user {name}")));
    }
    let bytes = read_passwd(sys, &target, meta.uid, PASSWD_MAX)?
        .ok_or_else(|| Error::failure(format!("{name}'s VNC password file is gone")))?;
    if !matches!(bytes.len(), 8 | 16) {
        return Err(Error::failure(format!("{name}'s VNC password file is damaged"))
            .hint(format!("set a new password: sudo edge-setup vnc-user --user {name}")));
    }
    sys.write_as(u, &target.passwd, &bytes, 0o600)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_by_address_from_proc_net_tcp() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:170D 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0\n\
   1: 00000000:170E 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 2 1 0 100 0 0 10 0\n\
   2: 0100007F:170D 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 3 1 0 100 0 0 10 0\n";
        assert_eq!(parse_listeners(v4, 5901, false), vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        assert_eq!(
            parse_listeners(v4, 5902, false),
            vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]
        );
        assert!(parse_listeners(v4, 5903, false).is_empty());
        let v6 = "  sl  local_address                         remote_address                        st\n\
   0: 00000000000000000000000001000000:170D 00000000000000000000000000000000:0000 0A 0\n\
   1: 00000000000000000000000000000000:170E 00000000000000000000000000000000:0000 0A 0\n";
        assert_eq!(parse_listeners(v6, 5901, true), vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);
        assert_eq!(parse_listeners(v6, 5902, true), vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED)]);
    }

    #[test]
    fn rfb_greetings() {
        assert_eq!(parse_greeting(b"RFB 003.008\n").unwrap(), "RFB 003.008");
        assert_eq!(parse_greeting(b"RFB 003.003\n").unwrap(), "RFB 003.003");
        assert!(parse_greeting(b"HTTP/1.1 400").is_err());
        assert!(parse_greeting(b"RFB 003.0x8\n").is_err());
    }
}
