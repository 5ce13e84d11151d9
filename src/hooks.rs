//! Platform steps: what the Cumulocity Edge platform itself needs after a
//! wizard option (import a certificate, change the tenant password...) is an
//! installable executable in `/etc/edge-setup/hooks/<option>.d/`. They run in
//! name order (byte order, like run-parts), each shown as a step; the first
//! failure halts the option. Each gets the option's validated values as one
//! JSON object on stdin: secrets travel only there, never in argv or the
//! environment. In image mode and with --dry-run they are listed, not run.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::system::System;
use crate::system::command_failed;
use crate::system::fs::Entry;
use crate::system::runner::Cmd;

pub const DIR: &str = "/etc/edge-setup/hooks";

/// One installed step, held open from when it was checked.
pub struct Hook {
    pub name: String,
    /// Its path on the target.
    pub path: PathBuf,
    fd: OwnedFd,
}

pub fn dir_of(option: &str) -> PathBuf {
    Path::new(DIR).join(format!("{option}.d"))
}

/// The steps installed for `option`, in name order (see `executables`).
pub fn list(sys: &System, option: &str) -> Result<Vec<Hook>> {
    executables(sys, &dir_of(option), "platform step", |_| false)
}

/// The executables root may run from `dir` (platform steps, diagnostic
/// plugins; `what` names them in messages), in name order. Hidden files and
/// names `ignored` says so are passed over; directories and files without an
/// execute bit are skipped (with a note). The directory, every directory above
/// it up to `/`, and each executable must be root's and writable by no one else
/// (a link is refused): anyone else could have root run anything. Each is
/// opened here, and just before it runs it is checked again to be that same
/// file, still root's alone; from then on nobody but root can swap it, so what
/// was checked is what runs.
pub fn executables(sys: &System, dir: &Path, what: &str, ignored: impl Fn(&str) -> bool) -> Result<Vec<Hook>> {
    let root = sys;
    let Some(meta) = root.meta(dir)? else {
        return Ok(Vec::new());
    };
    if !meta.is_dir {
        return Err(
            Error::failure(format!("{} is not a directory", root.host_path(dir).display()))
                .hint(format!("remove it, or make it a directory of executable {what}s")),
        );
    }
    let Some(opened) = root.open_controlled_dir(dir)? else {
        return Ok(Vec::new());
    };
    let mut hooks = Vec::new();
    for name in root.controlled_names(&opened)? {
        let path = dir.join(&name);
        let name = name.to_string_lossy().into_owned();
        if name.starts_with('.') || ignored(&name) {
            continue;
        }
        let host = root.host_path(&path);
        let skip = || {
            sys.out()
                .note(&format!("skipping {}: not an executable file", host.display()))
        };
        match root.open_controlled_entry(&opened, std::ffi::OsStr::new(&name))? {
            None => {}
            Some(Entry::Link) => {
                return Err(Error::failure(format!(
                    "refusing to run the {what} {}: it is a symbolic link",
                    host.display()
                ))
                .hint(format!("install the {what} as a regular file owned by root")));
            }
            Some(Entry::Other) => skip(),
            Some(Entry::File(_, m)) if m.mode & 0o111 == 0 => skip(),
            Some(Entry::File(fd, m)) => {
                root.require_controlled(&host, &m, what)?;
                hooks.push(Hook { name, path, fd });
            }
        }
    }
    Ok(hooks)
}

impl Hook {
    /// The program to run for it: on a live system checked again first (see
    /// `executables`), in an image its path on the target.
    pub fn program(&self, sys: &System) -> Result<PathBuf> {
        if sys.is_image() {
            return Ok(self.path.clone());
        }
        sys.recheck_controlled(&self.path, &self.fd)?;
        Ok(sys.host_path(&self.path))
    }
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    option: &'a str,
    #[serde(flatten)]
    values: &'a T,
}

/// Runs the steps of `option` with `values` (flattened into one object with
/// `"option"`) on stdin; returns how many there are. No step installed is a
/// message, not an error.
pub fn run<T: Serialize>(sys: &System, option: &str, values: &T) -> Result<usize> {
    let hooks = list(sys, option)?;
    if hooks.is_empty() {
        sys.out().info(&format!(
            "No platform steps are installed for this option (none in {}/).",
            dir_of(option).display()
        ));
        return Ok(0);
    }
    // Sized up front so serialising does not leave copies in reallocated memory.
    let mut json = Zeroizing::new(Vec::with_capacity(16 * 1024));
    serde_json::to_writer(&mut *json, &Envelope { option, values }).expect("the values serialise");
    json.push(b'\n');
    for hook in &hooks {
        let step = sys.out().step(&format!("Platform step {option}.d/{}", hook.name));
        let cmd = Cmd::checked(hook.program(sys)?).stdin(json.clone());
        match sys.run_unchecked(cmd.clone())? {
            None => step.done("planned"),
            Some(out) if out.success() => {
                for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
                    sys.out().info(&format!("    {line}"));
                }
                step.done("done");
            }
            Some(out) => {
                let mut err = command_failed(&cmd, &out);
                err.what = format!("the platform step {option}.d/{} failed", hook.name);
                return Err(err.hint(format!(
                    "the steps before it ran, the ones after it did not; fix it and run 'edge-setup setup {option}' again"
                )));
            }
        }
    }
    Ok(hooks.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Mode;
    use crate::system::runner::Output;
    use crate::testkit::Fixture;
    use std::os::unix::fs::PermissionsExt;

    fn hook(dir: &Path, name: &str, mode: u32) {
        let d = dir.join("etc/edge-setup/hooks/tenant-password.d");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.join(name), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[derive(Serialize)]
    struct Values {
        tenant_password: &'static str,
    }

    #[test]
    fn steps_run_in_name_order_with_the_json_on_stdin_and_skip_what_is_not_executable() {
        let f = Fixture::empty();
        hook(f.root(), "20-second", 0o755);
        hook(f.root(), "10-first", 0o700);
        hook(f.root(), "README", 0o644);
        hook(f.root(), ".hidden", 0o755);
        let ctx = f.system(Mode::Live, false);
        let err = &f.err;
        run(&ctx, "tenant-password", &Values { tenant_password: "pw" }).unwrap();
        let calls = f.fake.calls();
        let d = f.root().join("etc/edge-setup/hooks/tenant-password.d");
        assert_eq!(
            f.fake.lines(),
            vec![
                d.join("10-first").display().to_string(),
                d.join("20-second").display().to_string()
            ]
        );
        assert!(calls.iter().all(|c| c.args.is_empty()));
        assert_eq!(
            calls[0].stdin.as_deref().map(|b| b.as_slice()),
            Some(&b"{\"option\":\"tenant-password\",\"tenant_password\":\"pw\"}\n"[..])
        );
        let text = err.text();
        assert!(
            text.contains("Platform step tenant-password.d/10-first ... done"),
            "{text}"
        );
        assert!(text.contains("skipping") && text.contains("README"), "{text}");
    }

    #[test]
    fn the_first_failure_halts() {
        let f = Fixture::empty();
        hook(f.root(), "10-a", 0o755);
        hook(f.root(), "20-b", 0o755);
        hook(f.root(), "30-c", 0o755);
        f.fake.respond_with(|c| {
            c.program
                .name()
                .ends_with("20-b")
                .then(|| Ok(Output::failed(4, "cannot reach the database\n")))
        });
        let ctx = f.system(Mode::Live, false);
        let e = run(&ctx, "tenant-password", &Values { tenant_password: "pw" }).unwrap_err();
        assert_eq!(e.what, "the platform step tenant-password.d/20-b failed");
        assert_eq!(e.why.as_deref(), Some("exit status 4: cannot reach the database"));
        assert_eq!(f.fake.calls().len(), 2);
    }

    #[test]
    fn steps_others_may_change_are_refused_and_none_installed_is_a_message() {
        let f = Fixture::empty();
        let c = f.system(Mode::Live, false);
        let err = &f.err;
        run(&c, "tenant-password", &Values { tenant_password: "pw" }).unwrap();
        assert!(err.text().contains("No platform steps are installed"), "{}", err.text());
        hook(f.root(), "10-a", 0o775);
        let e = run(&c, "tenant-password", &Values { tenant_password: "pw" }).unwrap_err();
        assert!(e.what.contains("group or others may change it"), "{e}");
        assert_eq!(e.hint.as_deref().map(|h| h.starts_with("chmod go-w")), Some(true));
        assert!(f.fake.calls().is_empty());
    }

    /// A directory above the steps that someone else may change would let them
    /// swap `<option>.d` between the check and the run: refused, up to the root.
    #[test]
    fn an_ancestor_others_may_change_is_refused() {
        let f = Fixture::empty();
        hook(f.root(), "10-a", 0o755);
        let c = f.system(Mode::Live, false);
        let values = Values { tenant_password: "pw" };
        let ancestor = f.root().join("etc/edge-setup");
        std::fs::set_permissions(&ancestor, std::fs::Permissions::from_mode(0o775)).unwrap();
        let e = run(&c, "tenant-password", &values).unwrap_err();
        assert_eq!(
            e.what,
            format!(
                "refusing to use the directory {}: group or others may change it (mode 0775)",
                ancestor.display()
            )
        );
        std::fs::set_permissions(&ancestor, std::fs::Permissions::from_mode(0o755)).unwrap();
        if nix::unistd::geteuid().is_root() {
            let hooks = f.root().join("etc/edge-setup/hooks");
            std::os::unix::fs::chown(&hooks, Some(4242), None).unwrap();
            let e = run(&c, "tenant-password", &values).unwrap_err();
            assert!(e.what.contains("it is owned by uid 4242, not by root"), "{e}");
            assert!(e.what.contains(&hooks.display().to_string()), "{e}");
            std::os::unix::fs::chown(&hooks, Some(0), None).unwrap();
        }
        assert!(f.fake.calls().is_empty());
        run(&c, "tenant-password", &values).unwrap();
        assert_eq!(f.fake.calls().len(), 1);
    }

    #[test]
    fn image_mode_leaves_the_steps_for_the_target_without_their_values() {
        let f = Fixture::empty();
        hook(f.root(), "10-a", 0o755);
        let c = f.system(Mode::Image, false);
        let err = &f.err;
        run(&c, "tenant-password", &Values { tenant_password: "pw" }).unwrap();
        assert!(f.fake.calls().is_empty());
        let text = err.text();
        // its values (a secret) would have to be stored for the first boot: left for the target
        assert!(
            text.contains("the first boot cannot do it (it reads values on standard input, which are not stored in the image): /etc/edge-setup/hooks/tenant-password.d/10-a"),
            "{text}"
        );
        assert!(c.first_boot_commands().is_empty());
        let pending = f.read(crate::system::offline::PENDING).unwrap();
        assert!(!pending.contains("pw"), "{pending}");
        assert!(!text.contains("pw\""), "{text}");
    }
}
