//! Platform steps: what the Cumulocity Edge platform itself needs after a
//! wizard option (import a certificate, change the tenant password...) is an
//! installable executable in `/etc/edge-setup/hooks/<option>.d/`. They run in
//! name order (byte order, like run-parts), each shown as a step; the first
//! failure halts the option. Each gets the option's validated values as one
//! JSON object on stdin: secrets travel only there, never in argv or the
//! environment. In image mode and with --dry-run they are listed, not run.

use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::system::System;
use crate::system::command_failed;
use crate::system::runner::Cmd;

pub const DIR: &str = "/etc/edge-setup/hooks";

/// One installed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub name: String,
    /// Its path on the target.
    pub path: PathBuf,
}

pub fn dir_of(option: &str) -> PathBuf {
    Path::new(DIR).join(format!("{option}.d"))
}

/// The steps installed for `option`, in name order. Hidden files, directories
/// and files without an execute bit are skipped (with a note); an executable
/// that root does not control (a link, another owner, writable by group or
/// others) is refused, and so is such a directory: it could run anything as root.
pub fn list(ctx: &Ctx, option: &str) -> Result<Vec<Hook>> {
    let sys = &ctx.sys;
    let dir = dir_of(option);
    let Some(meta) = sys.root.meta(&dir)? else {
        return Ok(Vec::new());
    };
    if !meta.is_dir {
        return Err(
            Error::failure(format!("{} is not a directory", sys.root.host_path(&dir).display()))
                .hint("remove it, or make it a directory of executable platform steps"),
        );
    }
    check_control(sys, &dir, meta.uid, meta.mode, "directory")?;
    let mut hooks = Vec::new();
    for name in sys.root.list_dir(&dir)? {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = dir.join(&name);
        if sys.root.is_link(&path)? {
            return Err(Error::failure(format!(
                "refusing to run the platform step {}: it is a symbolic link",
                sys.root.host_path(&path).display()
            ))
            .hint("install the step as a regular file owned by root"));
        }
        let Some(m) = sys.root.meta(&path)? else {
            continue;
        };
        if m.is_dir || m.mode & 0o111 == 0 {
            ctx.out.note(&format!(
                "skipping {}: not an executable file",
                sys.root.host_path(&path).display()
            ));
            continue;
        }
        check_control(sys, &path, m.uid, m.mode, "platform step")?;
        hooks.push(Hook { name, path });
    }
    Ok(hooks)
}

fn check_control(sys: &System, path: &Path, uid: u32, mode: u32, what: &str) -> Result<()> {
    let host = sys.root.host_path(path);
    if !sys.root.trusts(uid) {
        return Err(Error::failure(format!(
            "refusing to run platform steps from the {what} {}: it is owned by uid {uid}, not by root",
            host.display()
        ))
        .hint(format!(
            "if it is meant to run as root: chown root:root {}",
            host.display()
        )));
    }
    if mode & 0o022 != 0 {
        return Err(Error::failure(format!(
            "refusing to run platform steps from the {what} {}: group or others may change it (mode {mode:04o})",
            host.display()
        ))
        .hint(format!("chmod go-w {}", host.display())));
    }
    Ok(())
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
pub fn run<T: Serialize>(ctx: &Ctx, option: &str, values: &T) -> Result<usize> {
    let hooks = list(ctx, option)?;
    if hooks.is_empty() {
        ctx.out.info(&format!(
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
        let step = ctx.out.step(&format!("Platform step {option}.d/{}", hook.name));
        let program = if ctx.sys.is_image() {
            hook.path.clone()
        } else {
            ctx.sys.root.host_path(&hook.path)
        };
        let cmd = Cmd::new(&program.to_string_lossy()).stdin(json.clone());
        match ctx.sys.run_unchecked(cmd.clone())? {
            None => step.done("planned"),
            Some(out) if out.success() => {
                for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
                    ctx.out.info(&format!("    {line}"));
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
    use crate::output::Capture;
    use crate::system::Mode;
    use crate::system::runner::{FakeRunner, Output};
    use std::os::unix::fs::PermissionsExt;
    use std::rc::Rc;

    fn ctx(dir: &Path, mode: Mode, fake: Rc<FakeRunner>) -> (Ctx, Capture) {
        crate::context::test_ctx(dir, mode, false, Box::new(fake))
    }

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
        let dir = tempfile::tempdir().unwrap();
        hook(dir.path(), "20-second", 0o755);
        hook(dir.path(), "10-first", 0o700);
        hook(dir.path(), "README", 0o644);
        hook(dir.path(), ".hidden", 0o755);
        let fake = Rc::new(FakeRunner::new());
        let (ctx, err) = ctx(dir.path(), Mode::Live, fake.clone());
        run(&ctx, "tenant-password", &Values { tenant_password: "pw" }).unwrap();
        let calls = fake.calls();
        let d = dir.path().join("etc/edge-setup/hooks/tenant-password.d");
        assert_eq!(
            fake.lines(),
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
        let dir = tempfile::tempdir().unwrap();
        hook(dir.path(), "10-a", 0o755);
        hook(dir.path(), "20-b", 0o755);
        hook(dir.path(), "30-c", 0o755);
        let fake = Rc::new(FakeRunner::new());
        fake.respond_with(|c| {
            c.program
                .ends_with("20-b")
                .then(|| Ok(Output::failed(4, "cannot reach the database\n")))
        });
        let (ctx, _) = ctx(dir.path(), Mode::Live, fake.clone());
        let e = run(&ctx, "tenant-password", &Values { tenant_password: "pw" }).unwrap_err();
        assert_eq!(e.what, "the platform step tenant-password.d/20-b failed");
        assert_eq!(e.why.as_deref(), Some("exit status 4: cannot reach the database"));
        assert_eq!(fake.calls().len(), 2);
    }

    #[test]
    fn steps_others_may_change_are_refused_and_none_installed_is_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Rc::new(FakeRunner::new());
        let (c, err) = ctx(dir.path(), Mode::Live, fake.clone());
        run(&c, "tenant-password", &Values { tenant_password: "pw" }).unwrap();
        assert!(err.text().contains("No platform steps are installed"), "{}", err.text());
        hook(dir.path(), "10-a", 0o775);
        let e = run(&c, "tenant-password", &Values { tenant_password: "pw" }).unwrap_err();
        assert!(e.what.contains("group or others may change it"), "{e}");
        assert_eq!(e.hint.as_deref().map(|h| h.starts_with("chmod go-w")), Some(true));
        assert!(fake.calls().is_empty());
    }

    #[test]
    fn image_mode_lists_the_steps_on_the_target() {
        let dir = tempfile::tempdir().unwrap();
        hook(dir.path(), "10-a", 0o755);
        let fake = Rc::new(FakeRunner::new());
        let (c, err) = ctx(dir.path(), Mode::Image, fake.clone());
        run(&c, "tenant-password", &Values { tenant_password: "pw" }).unwrap();
        assert!(fake.calls().is_empty());
        let text = err.text();
        assert!(
            text.contains("run on the target: /etc/edge-setup/hooks/tenant-password.d/10-a"),
            "{text}"
        );
        assert!(!text.contains("pw\""), "{text}");
    }
}
