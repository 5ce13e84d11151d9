//! Tenant credentials: read from standard input or from a root-owned private
//! file, never from argv or the environment, and kept in zeroizing memory.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use base64::Engine;
use zeroize::Zeroizing;

use crate::config::{C8Y_CREDENTIALS_FILE, Config, FilePath};
use crate::error::{Error, Result};
use crate::system::System;

/// The largest credentials file or line read (a token is a few KiB).
pub const MAX: u64 = 16 * 1024;

/// HTTP basic (`TENANT/USER` and a password) or a bearer token.
pub enum Credentials {
    Basic { user: String, password: Zeroizing<String> },
    Bearer(Zeroizing<String>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => write!(f, "Basic({user}, <password>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<token>)"),
        }
    }
}

impl Credentials {
    /// Parses the text of a credentials file or of standard input: a line
    /// `TENANT/USER` and a line with the password, or one line `Bearer TOKEN`.
    /// An error never shows a secret.
    pub fn parse(text: &str, origin: &str) -> Result<Credentials> {
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        let first = lines.next().unwrap_or_default();
        let bad = |why: &str| {
            Error::bad_input(format!("the tenant credentials from {origin} are not usable"))
                .why(why)
                .hint(
                    "give a line TENANT/USER and a line with the password, or one line 'Bearer TOKEN' \
                     (see 'edge-setup register --help')",
                )
        };
        if let Some(token) = first.strip_prefix("Bearer ") {
            let token = token.trim();
            if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad("the token after 'Bearer ' is empty or has white space in it"));
            }
            if lines.any(|l| !l.trim().is_empty()) {
                return Err(bad("a 'Bearer' line is the only line"));
            }
            return Ok(Credentials::Bearer(Zeroizing::new(token.to_string())));
        }
        let user = first.trim();
        if user.is_empty() {
            return Err(bad("the first line (TENANT/USER) is empty"));
        }
        if user.contains(':') || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("the user (first line) cannot contain ':' or white space"));
        }
        let password = lines.next().unwrap_or_default();
        if password.is_empty() {
            return Err(bad("the second line (the password) is missing or empty"));
        }
        if lines.any(|l| !l.trim().is_empty()) {
            return Err(bad("there is more than a user line and a password line"));
        }
        Ok(Credentials::Basic {
            user: user.to_string(),
            password: Zeroizing::new(password.to_string()),
        })
    }

    /// The value of the Authorization header.
    pub fn header(&self) -> Zeroizing<String> {
        match self {
            Credentials::Basic { user, password } => {
                let pair = Zeroizing::new(format!("{user}:{}", password.as_str()));
                let mut encoded = Zeroizing::new(String::with_capacity(pair.len() * 4 / 3 + 16));
                encoded.push_str("Basic ");
                base64::engine::general_purpose::STANDARD.encode_string(pair.as_bytes(), &mut encoded);
                encoded
            }
            Credentials::Bearer(token) => Zeroizing::new(format!("Bearer {}", token.as_str())),
        }
    }

    /// Who they are, for messages: the user, or "a bearer token".
    pub fn who(&self) -> String {
        match self {
            Credentials::Basic { user, .. } => user.clone(),
            Credentials::Bearer(_) => "a bearer token".to_string(),
        }
    }
}

/// The credentials of the file `c8y.credentials-file` names, `None` when it is
/// not set (then `vnc-user` prints the endpoint to enter by hand).
pub fn configured(sys: &System) -> Result<Option<Credentials>> {
    let Some(FilePath(path)) = Config::load(sys)?.get(sys, C8Y_CREDENTIALS_FILE)? else {
        return Ok(None);
    };
    read_file(&sys.host_path(&path)).map(Some)
}

/// Reads a credentials file: never through a symbolic link, and only a regular
/// file of root's that group and others cannot read, of at most 16 KiB. The
/// checks are made on the opened file, so it cannot be swapped between them.
pub fn read_file(path: &Path) -> Result<Credentials> {
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(nix::libc::ELOOP) {
                Error::bad_input(format!("{shown} is a symbolic link; a credentials file must be the file itself"))
                    .hint(format!("point to the real file, or replace the link with it: sudo cp --remove-destination \"$(readlink -f {shown})\" {shown}"))
            } else {
                Error::io("read the credentials file", path, e)
            }
        })?;
    let meta = file.metadata().map_err(|e| Error::io("check", path, e))?;
    let refuse = |why: String, fix: String| {
        Error::bad_input(format!("{shown} is refused as a tenant credentials file"))
            .why(why)
            .hint(fix)
    };
    if !meta.file_type().is_file() {
        return Err(refuse(
            "it is not a regular file".into(),
            format!("give a regular file, made with: sudo install -m 600 -o root -g root /dev/null {shown}"),
        ));
    }
    if meta.uid() != 0 {
        return Err(refuse(
            format!("it belongs to uid {}, not to root", meta.uid()),
            format!("sudo chown root:root {shown}"),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(refuse(
            format!("group or others may access it (mode {:04o})", meta.mode() & 0o7777),
            format!("sudo chmod 600 {shown}"),
        ));
    }
    if meta.len() > MAX {
        return Err(refuse(
            format!("it has {} bytes; a credentials file has at most {MAX}", meta.len()),
            "keep only the user line and the password line, or the 'Bearer' line".into(),
        ));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX as usize + 1));
    file.take(MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| Error::bad_input(format!("{shown} is not UTF-8 text")))?;
    Credentials::parse(text, &shown.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer() {
        match Credentials::parse("t1/admin\ns3cr:et pass\n", "x").unwrap() {
            Credentials::Basic { user, password } => {
                assert_eq!(user, "t1/admin");
                assert_eq!(password.as_str(), "s3cr:et pass");
            }
            other => panic!("{other:?}"),
        }
        let c = Credentials::parse("t1/admin\nsecret", "x").unwrap();
        // base64("t1/admin:secret")
        assert_eq!(c.header().as_str(), "Basic dDEvYWRtaW46c2VjcmV0");
        let t = Credentials::parse("Bearer abc.def-ghi\n", "x").unwrap();
        assert_eq!(t.header().as_str(), "Bearer abc.def-ghi");
        assert_eq!(t.who(), "a bearer token");
    }

    #[test]
    fn unusable_credentials_are_explained_without_the_secret() {
        for (text, why) in [
            ("", "empty"),
            ("t1/admin\n", "password"),
            ("t1/admin\n\n", "password"),
            ("t1/ad min\nhunter22\n", "white space"),
            ("t1/admin\nhunter22\nmore\n", "more than"),
            ("Bearer \n", "token"),
            ("Bearer tok\nhunter22\n", "only line"),
        ] {
            let e = Credentials::parse(text, "standard input").unwrap_err();
            let shown = e.to_string();
            assert!(shown.contains(why), "{text:?}: {shown}");
            assert!(!shown.contains("hunter22"), "{shown}");
        }
        assert!(!format!("{:?}", Credentials::parse("u\nhunter22", "x").unwrap()).contains("hunter22"));
    }

    #[test]
    fn a_credentials_file_must_be_roots_private_regular_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds");
        std::fs::write(&path, "t1/admin\nsecret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_file(&path).unwrap_err();
        let root = nix::unistd::geteuid().is_root();
        if root {
            assert!(e.why.as_deref().unwrap().contains("mode 0644"), "{e}");
            assert_eq!(
                e.hint.as_deref(),
                Some(format!("sudo chmod 600 {}", path.display()).as_str())
            );
        } else {
            assert!(e.why.as_deref().unwrap().contains("not to root"), "{e}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if root {
            assert!(matches!(read_file(&path).unwrap(), Credentials::Basic { .. }));
        }
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(read_file(&link).unwrap_err().what.contains("symbolic link"));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(
            read_file(&fifo)
                .unwrap_err()
                .why
                .as_deref()
                .unwrap()
                .contains("regular")
        );
    }

    const NEAR: &[&str] = &[
        "t100/admin",
        "Bearer eyJ0ZXN0",
        "Bearer ",
        "S3cret-Pass#1",
        "",
        " ",
        "t100/",
        "\r",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz::CASES))]
        /// Any text is credentials or an error that says nothing of the secrets in
        /// it: the same text with every letter and digit of the token or password
        /// changed gives the same error, so the error cannot contain them.
        #[test]
        fn any_text_parses_or_is_refused_without_its_secrets(text in crate::fuzz::text(NEAR)) {
            let mask = |s: &str| s.chars().map(|c| if c.is_alphanumeric() { 'Q' } else { c }).collect::<String>();
            let mut lines = text.split('\n');
            let first = lines.next().unwrap_or_default();
            let first = match first.strip_prefix("Bearer ") {
                Some(token) => format!("Bearer {}", mask(token)),
                None => first.to_string(),
            };
            let masked = std::iter::once(first).chain(lines.map(mask)).collect::<Vec<_>>().join("\n");
            let said = |t: &str| Credentials::parse(t, "the file").err().map(|e| format!("{} {:?} {:?}", e.what, e.why, e.hint));
            proptest::prop_assert_eq!(said(&text), said(&masked));
        }
    }
}
