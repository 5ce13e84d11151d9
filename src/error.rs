//! One error type for the whole tool: what failed, why, and what to do next.
//!
//! The kind decides the exit code, so scripts can tell bad input from a fault
//! of the system and from a missing privilege.

use std::fmt;

/// Exit codes, documented in the README.
pub mod exit {
    pub const SUCCESS: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const NOT_PERMITTED: i32 = 3;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The system or a command failed.
    Failure,
    /// The user's input (argument, file, answer) is not acceptable.
    BadInput,
    /// The caller lacks a privilege (root, or acting for another user).
    NotPermitted,
}

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    /// What failed, in one sentence.
    pub what: String,
    /// Why, when known (an OS error, a command's stderr...).
    pub why: Option<String>,
    /// The next thing the user should do.
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest `what` and `why`, in characters: a value typed or read (a 100,000-character
/// line) is echoed only so far.
const WHAT_MAX: usize = 300;
const WHY_MAX: usize = 4000;

/// `s`, cut after `max` characters with how much was left out.
fn cut(s: String, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}... ({} more characters)", &s[..at], s[at..].chars().count()),
        None => s,
    }
}

impl Error {
    pub fn new(kind: Kind, what: impl Into<String>) -> Self {
        Error {
            kind,
            what: cut(what.into(), WHAT_MAX),
            why: None,
            hint: None,
        }
    }

    pub fn failure(what: impl Into<String>) -> Self {
        Self::new(Kind::Failure, what)
    }

    pub fn bad_input(what: impl Into<String>) -> Self {
        Self::new(Kind::BadInput, what)
    }

    pub fn not_permitted(what: impl Into<String>) -> Self {
        Self::new(Kind::NotPermitted, what)
    }

    pub fn why(mut self, why: impl fmt::Display) -> Self {
        self.why = Some(cut(why.to_string(), WHY_MAX));
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Failure => exit::FAILURE,
            Kind::BadInput => exit::BAD_INPUT,
            Kind::NotPermitted => exit::NOT_PERMITTED,
        }
    }

    /// What failed and why, on one line, for a report that gives the next step
    /// in a place of its own (a check's finding, a bundle's manifest).
    pub fn line(&self) -> String {
        match &self.why {
            Some(why) => format!("{}: {}", self.what, why.trim_end()),
            None => self.what.clone(),
        }
    }

    /// An I/O error on `path`; permission errors become `NotPermitted` with a hint.
    pub fn io(action: &str, path: &std::path::Path, err: std::io::Error) -> Self {
        Self::io_as(nix::unistd::geteuid().is_root(), action, path, err)
    }

    /// `io` for a process that is root or not: sudo cannot help root.
    fn io_as(root: bool, action: &str, path: &std::path::Path, err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::PermissionDenied => Kind::NotPermitted,
            _ => Kind::Failure,
        };
        let mut e = Error::new(kind, format!("cannot {action} {}", path.display())).why(&err);
        if kind == Kind::NotPermitted && root {
            e = e.hint(format!(
                "even root may not change it: check 'lsattr {}' for the immutable flag ('chattr -i' removes it), \
                 whether its file system is mounted read-only, and SELinux denials ('ausearch -m avc')",
                path.display()
            ));
        } else if kind == Kind::NotPermitted {
            e = e.hint("run the command with sudo, or as the owner of that file");
        } else if err.raw_os_error() == Some(nix::libc::ENOSPC) || err.kind() == std::io::ErrorKind::StorageFull {
            e = e.hint("free some space on that file system and run the command again");
        } else if err.raw_os_error() == Some(nix::libc::EROFS) || err.kind() == std::io::ErrorKind::ReadOnlyFilesystem {
            e = e.hint("remount that file system read-write, or use --root on a writable image");
        }
        e
    }

    /// Shorthand for the error a command reports when a configuration key it needs is unset.
    pub fn missing_key(key: &str) -> Self {
        Error::failure(format!(
            "Required configuration item is not provided '{key}', run 'edge-setup config set {key} <value>' to add it to config."
        ))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.what)?;
        if let Some(why) = &self.why {
            write!(f, "\n  because: {}", why.trim_end())?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  next: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_what_why_and_next() {
        let e = Error::failure("cannot write /x").why("disk full").hint("free space");
        assert_eq!(
            e.to_string(),
            "cannot write /x\n  because: disk full\n  next: free space"
        );
        assert_eq!(e.exit_code(), exit::FAILURE);
    }

    #[test]
    fn a_long_value_is_cut_with_what_was_left_out() {
        let value = "é".repeat(100_000);
        let what = format!("'{value}' is not a valid interface");
        let e = Error::bad_input(what.clone()).why(&value);
        let tail = format!("... ({} more characters)", what.chars().count() - WHAT_MAX);
        assert!(e.what.ends_with(&tail), "{}", e.what);
        assert_eq!(e.what.chars().count(), WHAT_MAX + tail.chars().count());
        assert!(e.why.unwrap().ends_with("... (96000 more characters)"));
        assert_eq!(Error::failure("short").what, "short");
    }

    #[test]
    fn permission_errors_are_not_permitted() {
        for errno in [nix::libc::EACCES, nix::libc::EPERM] {
            let err = std::io::Error::from_raw_os_error(errno);
            let e = Error::io_as(false, "write", std::path::Path::new("/etc/x"), err);
            assert_eq!(e.kind, Kind::NotPermitted);
            assert_eq!(e.exit_code(), exit::NOT_PERMITTED);
            assert!(e.hint.unwrap().contains("sudo"));
        }
    }

    #[test]
    fn permission_errors_as_root_point_at_attributes_not_sudo() {
        for errno in [nix::libc::EACCES, nix::libc::EPERM] {
            let err = std::io::Error::from_raw_os_error(errno);
            let e = Error::io_as(true, "write", std::path::Path::new("/etc/x"), err);
            assert_eq!(e.kind, Kind::NotPermitted);
            let hint = e.hint.unwrap();
            assert!(!hint.contains("sudo"), "{hint}");
            assert!(hint.contains("even root") && hint.contains("lsattr /etc/x"), "{hint}");
            assert!(hint.contains("read-only") && hint.contains("SELinux"), "{hint}");
        }
    }

    #[test]
    fn io_uses_the_processes_own_privilege() {
        let err = std::io::Error::from_raw_os_error(nix::libc::EPERM);
        let e = Error::io("write", std::path::Path::new("/etc/x"), err);
        let root = nix::unistd::geteuid().is_root();
        assert_eq!(e.hint.unwrap().contains("sudo"), !root);
    }
}
