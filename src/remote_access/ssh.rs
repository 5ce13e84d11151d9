//! `remote-access ssh --user NAME`: an SSH endpoint that logs in as NAME with
//! a key pair made here. The public key goes into the user's authorized_keys
//! (written as the user, never through a link), the private key only into the
//! endpoint's request (and a file only when asked), and the endpoint carries
//! the device's host key so the tenant can verify the server.

use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use super::{Device, HOST, Listed, Outcome, Owned, Shown, to_json};
use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::{FileKind, FileSpec, as_user};
use crate::system::os_release::Family;
use crate::system::packages::{self, Installed, Manager};
use crate::system::runner::{Cmd, Tool};
use crate::system::users::UserInfo;

/// The comment that marks the authorized key edge-setup installed.
pub const KEY_COMMENT: &str = "edge-setup-remote-access";
const AUTHORIZED_KEYS_MAX: u64 = 256 * 1024;
const HOST_KEY: &str = "/etc/ssh/ssh_host_ed25519_key.pub";

/// What `remote-access ssh` was asked for.
pub struct Options {
    pub user: String,
    pub port: u16,
    /// An RSA key in PEM form, for tenants that take no OpenSSH keys.
    pub rsa: bool,
    /// A new key pair even when the endpoint is up to date.
    pub rotate: bool,
    /// Keep the private key in this file (root's, 0600); `check_key_file` first.
    pub save_private_key: Option<PathBuf>,
    /// How long to wait for the package manager's lock.
    pub lock_timeout: std::time::Duration,
}

/// The name of a user's SSH endpoint.
pub fn name(user: &str) -> String {
    format!("SSH {user}")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    name: &'a str,
    hostname: &'a str,
    port: u16,
    protocol: &'a str,
    credentials_type: &'a str,
    username: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    private_key: &'a str,
    public_key: &'a str,
    host_key: &'a str,
}

/// A key pair made by ssh-keygen in a private directory, which is gone when this returns.
struct KeyPair {
    private: Zeroizing<String>,
    public: String,
}

/// Makes sure the SSH server runs, the user can log in with edge-setup's key,
/// and the tenant has the endpoint with that key and the host key.
pub fn ensure(device: &Device, retry: &str, opts: &Options) -> Result<Outcome> {
    let sys = device.tenant.sys();
    let out = sys.out();
    let user = sys.users().require(&opts.user)?;
    if sys.meta(&user.home)?.is_none_or(|m| !m.is_dir) {
        return Err(Error::failure(format!(
            "the home directory {} of {} does not exist",
            sys.host_path(&user.home).display(),
            user.name
        ))
        .hint(format!(
            "create it (sudo mkhomedir_helper {}) and run the command again",
            user.name
        )));
    }
    let family = sys.os_release()?.family()?;
    ensure_server(sys, family, retry, opts.lock_timeout)?;
    let host_key = host_key(sys)?;
    let name = name(&user.name);
    let listed = device.list()?;
    let mut record = device.record()?;
    let owned = record
        .find("SSH", &user.name)
        .and_then(|o| listed.iter().find(|l| l.id == o.id).map(|l| (o.clone(), l.clone())));
    let authorized = authorized_keys(sys, &user)?;
    let shown = Shown {
        name: name.clone(),
        protocol: "SSH",
        port: opts.port,
        credentials_type: "KEY_PAIR",
    };
    let public_body = |public_key: &str| {
        to_json(&Body {
            name: &name,
            hostname: HOST,
            port: opts.port,
            protocol: "SSH",
            credentials_type: "KEY_PAIR",
            username: &user.name,
            private_key: "",
            public_key,
            host_key: &host_key,
        })
    };
    if let Some((o, l)) = &owned
        && !opts.rotate
        && let Some(key) = &o.public_key
        && authorized.as_deref().is_some_and(|a| a.lines().any(|line| line == key))
        && o.digest == record.digest(&public_body(key))
        && up_to_date(l, &shown, key, &host_key)
    {
        out.step(&format!("Endpoint '{name}' ({HOST}:{})", opts.port))
            .done("unchanged");
        return Ok(outcome(&name, &user.name, opts.port, Some(o.id.clone()), "unchanged"));
    }
    let keys = if sys.dry_run() {
        out.info(&format!(
            "    would make an {} key pair for {}",
            if opts.rsa { "RSA" } else { "ED25519" },
            user.name
        ));
        None
    } else {
        let step = out.step(&format!(
            "Making an {} key pair for {}",
            if opts.rsa { "RSA (PEM)" } else { "ED25519" },
            user.name
        ));
        let keys = key_pair(sys, opts.rsa, &user.name)?;
        step.done("done");
        Some(keys)
    };
    let public = keys
        .as_ref()
        .map_or_else(|| "ssh-ed25519 <new key>".to_string(), |k| k.public.clone());
    let line = format!("{public} {KEY_COMMENT}");
    // the old key stays authorized until the tenant has the new one
    let kept: Vec<&str> = authorized.as_deref().map_or_else(Vec::new, |a| a.lines().collect());
    let with_both = render(kept.iter().copied().chain([line.as_str()]));
    let path = user.home.join(".ssh/authorized_keys");
    let step = out.step(&format!("Authorizing the key in {}", sys.host_path(&path).display()));
    write_keys(sys, &user, &with_both)?;
    step.done(sys.word("done", "planned"));
    let body = to_json(&Body {
        name: &name,
        hostname: HOST,
        port: opts.port,
        protocol: "SSH",
        credentials_type: "KEY_PAIR",
        username: &user.name,
        private_key: keys.as_ref().map_or("", |k| k.private.as_str()),
        public_key: &public,
        host_key: &host_key,
    });
    let sent = (|| -> Result<Option<String>> {
        match &owned {
            Some((o, _)) => {
                let step = out.step(&format!("Updating endpoint '{name}' ({HOST}:{})", opts.port));
                device.update(&o.id, &body, &name)?;
                step.done(sys.word("done", "planned"));
                Ok(Some(o.id.clone()))
            }
            None => {
                let step = out.step(&format!("Creating endpoint '{name}' ({HOST}:{})", opts.port));
                let id = device.create(&body, &name)?;
                step.done(sys.word("done", "planned"));
                Ok(id)
            }
        }
    })();
    let id = match sent {
        Ok(id) => id,
        Err(e) => {
            // the tenant has the old key still: put the file back as it was
            let restored = match &authorized {
                Some(text) => write_keys(sys, &user, text).map(|_| ()),
                None => as_user(user.uid, user.gid, || sys.remove(&path)).map(|_| ()),
            };
            if let Err(r) = restored {
                out.warn(&format!("could not put {} back: {r}", sys.host_path(&path).display()));
            }
            return Err(e);
        }
    };
    // saved before anything else can fail: the endpoint is edge-setup's from now on
    if let Some(id) = &id {
        record.put(Owned {
            id: id.clone(),
            protocol: "SSH".into(),
            user: user.name.clone(),
            digest: record.digest(&public_body(&line)),
            public_key: Some(line.clone()),
        });
    }
    record.save(sys)?;
    let only_new = render(
        kept.iter()
            .copied()
            .filter(|l| !l.ends_with(&format!(" {KEY_COMMENT}")))
            .chain([line.as_str()]),
    );
    if only_new != with_both {
        let step = out.step("Removing the key edge-setup authorized before");
        write_keys(sys, &user, &only_new)?;
        step.done(sys.word("done", "planned"));
    }
    if let (Some(keys), Some(file)) = (&keys, &opts.save_private_key) {
        let step = out.step(&format!("Keeping the private key in {}", sys.host_path(file).display()));
        sys.write(file, keys.private.as_bytes(), FileSpec::root(0o600))?;
        step.done(sys.word("done", "planned"));
    }
    let action = if owned.is_some() { "updated" } else { "created" };
    Ok(outcome(&name, &user.name, opts.port, id, action))
}

/// `--save-private-key FILE`, for the caller to check before the first request
/// (and before the lock): a link, a directory, or a directory that refuses the write.
pub fn check_key_file(sys: &System, file: &Path) -> Result<()> {
    let shown = sys.host_path(file);
    let refuse = |what: &str| {
        Error::bad_input(format!("cannot keep the private key in {}: it is {what}", shown.display())).hint(
            "name a regular file in a directory of root's (it is written as root, mode 0600) and run the command again; nothing was changed",
        )
    };
    match sys.kind(file)? {
        Some(FileKind::Link) => Err(refuse("a symbolic link")),
        Some(FileKind::Dir) => Err(refuse("a directory")),
        _ => sys.check_writable(file),
    }
}

fn outcome(name: &str, user: &str, port: u16, id: Option<String>, action: &'static str) -> Outcome {
    Outcome {
        name: name.to_string(),
        user: user.to_string(),
        protocol: "SSH".to_string(),
        port,
        id,
        action,
        why: None,
    }
}

/// Whether the tenant shows the endpoint as edge-setup would send it (the
/// keys compared where the tenant shows them).
fn up_to_date(l: &Listed, shown: &Shown, authorized_line: &str, host_key: &str) -> bool {
    let public = authorized_line
        .strip_suffix(&format!(" {KEY_COMMENT}"))
        .unwrap_or(authorized_line);
    l.shows(shown)
        && l.public_key.as_deref().is_none_or(|k| k.trim() == public)
        && l.host_key.as_deref().is_none_or(|k| k.trim() == host_key)
}

fn render<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut text: String = lines.filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    if text.is_empty() {
        text.push('\n');
    }
    text
}

/// The user's authorized_keys, read as the user (never through a link, theirs, small).
fn authorized_keys(sys: &System, user: &UserInfo) -> Result<Option<String>> {
    let path = user.home.join(".ssh/authorized_keys");
    let bytes = as_user(user.uid, user.gid, || {
        sys.read_user_file(&path, user.uid, AUTHORIZED_KEYS_MAX)
    })?;
    bytes
        .map(|b| {
            String::from_utf8(b).map_err(|_| {
                Error::failure(format!("{} is not text", sys.host_path(&path).display()))
                    .hint("fix or remove that file, then run the command again")
            })
        })
        .transpose()
}

fn write_keys(sys: &System, user: &UserInfo, text: &str) -> Result<()> {
    let dir = user.home.join(".ssh");
    sys.ensure_dir_as(user, &dir, 0o700)?;
    sys.write_as(user, &dir.join("authorized_keys"), text.as_bytes(), 0o600)?;
    Ok(())
}

/// The SSH server's unit.
pub fn server_unit(family: Family) -> &'static str {
    match family {
        Family::Debian => "ssh.service",
        Family::RedHat => "sshd.service",
    }
}

/// The SSH server installed (its package makes the host keys), enabled and running.
fn ensure_server(sys: &System, family: Family, retry: &str, lock_timeout: std::time::Duration) -> Result<()> {
    let manager = Manager::detect(sys, family)?;
    let package = vec!["openssh-server".to_string()];
    let missing = Installed::query(sys, family, &package)?.missing(&package);
    let step = sys.out().step("Installing the SSH server (openssh-server)");
    if missing.is_empty() {
        step.done("installed already");
    } else {
        let installed = packages::install(sys, manager, &missing, None, retry, lock_timeout)?;
        step.done(if installed {
            sys.done_word()
        } else {
            "left for the target (see the warning above)"
        });
    }
    let unit = server_unit(family);
    let ask = |what: &str| {
        sys.query(Cmd::new(Tool::Systemctl).args([what, "--quiet", unit]))
            .map(|o| o.is_some_and(|o| o.success()))
    };
    let step = sys.out().step(&format!("Enabling and starting {unit}"));
    if ask("is-enabled")? && ask("is-active")? {
        step.done("running already");
    } else {
        sys.run(Cmd::new(Tool::Systemctl).args(["enable", "--now", unit]))?;
        step.done(sys.done_word());
    }
    Ok(())
}

/// The device's ED25519 host key as `ssh-ed25519 BASE64` (no comment), the
/// form of a known_hosts entry without its host.
fn host_key(sys: &System) -> Result<String> {
    let found = sys.read_small(Path::new(HOST_KEY), 16 * 1024)?;
    let text = found
        .map(|(b, _)| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut fields = text.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(kind @ "ssh-ed25519"), Some(key)) => Ok(format!("{kind} {key}")),
        _ if sys.dry_run() || sys.is_image() => Ok("ssh-ed25519 <the device's host key>".to_string()),
        _ => Err(
            Error::failure(format!("this device has no ED25519 host key ({HOST_KEY})"))
                .hint("make the host keys (sudo ssh-keygen -A; sudo systemctl restart ssh) and run the command again"),
        ),
    }
}

/// A new key pair from ssh-keygen, in a directory only root can enter; the
/// private key file is overwritten before the directory goes.
fn key_pair(sys: &System, rsa: bool, user: &str) -> Result<KeyPair> {
    let dir = tempfile::Builder::new()
        .prefix("edge-setup-key-")
        .tempdir()
        .map_err(|e| Error::failure("cannot make a private temporary directory").why(e))?;
    let file = dir.path().join("key");
    let comment = format!("{KEY_COMMENT} for {user}");
    let kind: &[&str] = if rsa {
        &["-t", "rsa", "-b", "3072", "-m", "PEM"]
    } else {
        &["-t", "ed25519"]
    };
    sys.run_local(
        Cmd::new(Tool::SshKeygen)
            .arg("-q")
            .args(kind.iter().copied())
            .args(["-N", "", "-C", &comment, "-f"])
            .arg(file.display().to_string()),
    )?;
    let read = |p: &Path| sys.read_host_bytes(p);
    let private = read(&file)?;
    let public = read(&file.with_extension("pub"))?;
    // overwritten in place, so the key is not left in the file system's free blocks of /tmp's tmpfs
    std::fs::write(&file, vec![0u8; private.len()]).map_err(|e| Error::io("overwrite", &file, e))?;
    let private = Zeroizing::new(
        String::from_utf8(private.to_vec())
            .map_err(|_| Error::failure("ssh-keygen wrote a private key that is not text"))?,
    );
    let public = String::from_utf8_lossy(&public);
    let mut fields = public.split_whitespace();
    let public = match (fields.next(), fields.next()) {
        (Some(kind), Some(key)) => format!("{kind} {key}"),
        _ => return Err(Error::failure("ssh-keygen wrote no public key")),
    };
    Ok(KeyPair { private, public })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorized_keys_keep_other_lines() {
        let kept = ["ssh-ed25519 AAA own", "ssh-ed25519 OLD edge-setup-remote-access"];
        let new = "ssh-ed25519 NEW edge-setup-remote-access";
        let only_new = render(
            kept.iter()
                .copied()
                .filter(|l| !l.ends_with(&format!(" {KEY_COMMENT}")))
                .chain([new]),
        );
        assert_eq!(
            only_new,
            "ssh-ed25519 AAA own\nssh-ed25519 NEW edge-setup-remote-access\n"
        );
    }

    #[test]
    fn an_ssh_body_has_the_fields_of_the_api() {
        let body = to_json(&Body {
            name: "SSH admin",
            hostname: HOST,
            port: 22,
            protocol: "SSH",
            credentials_type: "KEY_PAIR",
            username: "admin",
            private_key: "PRIV",
            public_key: "ssh-ed25519 PUB",
            host_key: "ssh-ed25519 HOST",
        });
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name": "SSH admin", "hostname": "127.0.0.1", "port": 22, "protocol": "SSH",
                "credentialsType": "KEY_PAIR", "username": "admin", "privateKey": "PRIV",
                "publicKey": "ssh-ed25519 PUB", "hostKey": "ssh-ed25519 HOST"})
        );
    }
}
