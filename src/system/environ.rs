//! What edge-setup takes from its caller's environment.
//!
//! Run as root, edge-setup's environment is whatever its caller had and sudo let
//! through; a site's `Defaults env_keep += "https_proxy SSL_CERT_FILE"` lets a
//! member of vncusers hand her own proxy and CA to the privileged part, which then
//! sends the tenant's credentials through them. So a root process keeps only the
//! variables below, from the first instruction of `main` on: libraries that read
//! the environment themselves (TLS roots, proxies, TMPDIR, the resolver) never see
//! the rest. Routing (the proxy variables) is kept only when root itself runs
//! edge-setup, not a user through sudo; a run as an ordinary user keeps everything,
//! since it acts with no more than that user's rights.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

use crate::system::runner::CLEAN_PATH;

/// Kept for every caller: who ran sudo (sudo sets these itself), how to show
/// output, and how long to wait for the package manager's lock.
const ALWAYS: &[&str] = &[
    "SUDO_UID",
    "SUDO_GID",
    "SUDO_USER",
    "TERM",
    "NO_COLOR",
    "SSH_CONNECTION",
    "SSH_CLIENT",
    "SSH_TTY",
    "EDGE_SETUP_LOCK_TIMEOUT",
];

/// Where connections go: kept only when the caller is root itself.
pub const PROXY: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// Whether root itself runs this process: root's ids and no other user behind
/// sudo (SUDO_UID, which sudo always sets, is absent or root's).
pub fn caller_is_root(uid: u32, euid: u32, sudo_uid: Option<&OsStr>) -> bool {
    uid == 0 && euid == 0 && sudo_uid.is_none_or(|u| u == "0")
}

/// Whether a process with these ids keeps the caller's variable `name`.
pub fn keeps(name: &OsStr, uid: u32, euid: u32, sudo_uid: Option<&OsStr>) -> bool {
    if euid != 0 {
        return true;
    }
    let Some(name) = name.to_str() else {
        return false;
    };
    ALWAYS.contains(&name) || (PROXY.contains(&name) && caller_is_root(uid, euid, sudo_uid))
}

/// The caller's variables a process with these ids keeps (`PATH` is set, not kept).
pub fn filter(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    uid: u32,
    euid: u32,
) -> HashMap<OsString, OsString> {
    let vars: HashMap<OsString, OsString> = vars.into_iter().collect();
    let sudo_uid = vars.get(OsStr::new("SUDO_UID")).cloned();
    let mut kept: HashMap<OsString, OsString> = vars
        .into_iter()
        .filter(|(k, _)| keeps(k, uid, euid, sudo_uid.as_deref()))
        .collect();
    if euid == 0 {
        kept.insert("PATH".into(), CLEAN_PATH.into());
    }
    kept
}

/// Applies `filter` to this process's own environment. Called first thing in
/// `main`, while no other thread exists.
pub fn restrict_own() {
    let uid = nix::unistd::getuid().as_raw();
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return;
    }
    let kept = filter(std::env::vars_os(), uid, euid);
    for (name, _) in std::env::vars_os() {
        if !kept.contains_key(&name) {
            // SAFETY: main calls this before it starts any thread, so nothing
            // reads the environment concurrently.
            unsafe { std::env::remove_var(&name) };
        }
    }
    // SAFETY: as above.
    unsafe { std::env::set_var("PATH", CLEAN_PATH) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn names(kept: &HashMap<OsString, OsString>) -> Vec<String> {
        let mut names: Vec<String> = kept.keys().map(|k| k.to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    const HOSTILE: &[(&str, &str)] = &[
        ("https_proxy", "http://127.0.0.1:3128"),
        ("ALL_PROXY", "socks5://127.0.0.1:1080"),
        ("SSL_CERT_FILE", "/home/mallory/ca.pem"),
        ("SSL_CERT_DIR", "/home/mallory"),
        ("TMPDIR", "/home/mallory/tmp"),
        ("HOSTALIASES", "/home/mallory/hosts"),
        ("RES_OPTIONS", "ndots:15"),
        ("PATH", "/home/mallory/bin:/usr/bin"),
        ("LD_LIBRARY_PATH", "/home/mallory/lib"),
        ("TERM", "xterm"),
        ("NO_COLOR", "1"),
        ("EDGE_SETUP_LOCK_TIMEOUT", "5"),
    ];

    #[test]
    fn a_user_through_sudo_hands_root_no_trust_and_no_route() {
        let mut vars = caller(HOSTILE);
        vars.extend(caller(&[("SUDO_UID", "1002"), ("SUDO_USER", "mallory")]));
        let kept = filter(vars, 0, 0);
        assert_eq!(
            names(&kept),
            [
                "EDGE_SETUP_LOCK_TIMEOUT",
                "NO_COLOR",
                "PATH",
                "SUDO_UID",
                "SUDO_USER",
                "TERM"
            ]
        );
        assert_eq!(kept[OsStr::new("PATH")], CLEAN_PATH);
    }

    #[test]
    fn root_itself_keeps_its_proxy_but_not_its_trust_or_search_paths() {
        for sudo in [None, Some("0")] {
            let mut vars = caller(HOSTILE);
            if let Some(uid) = sudo {
                vars.extend(caller(&[("SUDO_UID", uid)]));
            }
            let kept = filter(vars, 0, 0);
            assert!(kept.contains_key(OsStr::new("https_proxy")), "{sudo:?}");
            assert!(kept.contains_key(OsStr::new("ALL_PROXY")), "{sudo:?}");
            for gone in [
                "SSL_CERT_FILE",
                "SSL_CERT_DIR",
                "TMPDIR",
                "HOSTALIASES",
                "RES_OPTIONS",
                "LD_LIBRARY_PATH",
            ] {
                assert!(!kept.contains_key(OsStr::new(gone)), "{gone} kept ({sudo:?})");
            }
            assert_eq!(kept[OsStr::new("PATH")], CLEAN_PATH);
        }
    }

    #[test]
    fn an_ordinary_user_keeps_her_own_environment() {
        let kept = filter(caller(HOSTILE), 1000, 1000);
        assert_eq!(kept.len(), HOSTILE.len());
        assert_eq!(kept[OsStr::new("PATH")], "/home/mallory/bin:/usr/bin");
    }

    #[test]
    fn the_caller_is_root_only_with_root_ids_and_no_user_behind_sudo() {
        assert!(caller_is_root(0, 0, None));
        assert!(caller_is_root(0, 0, Some(OsStr::new("0"))));
        assert!(!caller_is_root(0, 0, Some(OsStr::new("1000"))));
        assert!(!caller_is_root(0, 0, Some(OsStr::new(""))));
        assert!(!caller_is_root(1000, 0, None));
    }
}
