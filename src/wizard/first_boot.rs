//! `edge-setup image first-boot`, run by `edge-setup-firstboot.service` on an
//! appliance made from a prepared image: SSH host keys when the image has none,
//! the device ID, then every answers file in ANSWERS_DIR, all planned before
//! any is applied (`apply_files`). The records are `image::first_boot`'s.

use std::path::Path;

use super::answers::Answers;
use super::device_id;
use super::{AnswersFile, apply_files};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::image::first_boot::{
    DONE, Done, FAILED, Failed, answers_paths, now, read, retry_hint, run_pending, ssh_host_keys, write,
};
use crate::system::fs::FileKind;

/// `edge-setup image first-boot`.
pub fn run(ctx: &Ctx) -> Result<()> {
    let sys = &ctx.sys;
    if sys.is_image() {
        return Err(Error::bad_input("the first boot runs on the appliance, not on an image")
            .why("it makes the appliance's own device ID and applies answers given to that appliance")
            .hint("prepare the image with 'sudo edge-setup image prepare'; each appliance made from it runs its first boot by itself"));
    }
    sys.require_root("image first-boot")?;
    if let Some(done) = read::<Done>(sys, DONE)? {
        ctx.out.info(&format!(
            "The first boot was completed at {}; there is nothing to do.",
            done.completed_at
        ));
        ctx.out
            .result(serde_json::json!({ "first_boot": "done", "completed_at": done.completed_at }));
        return Ok(());
    }
    match first_boot(ctx) {
        Ok(done) => {
            write(sys, DONE, &done)?;
            sys.remove(Path::new(FAILED))?;
            ctx.out.info(&format!(
                "First boot {}: device ID {}, {} step{} of the image run, {} answers file{} {}.",
                sys.word("completed", "planned"),
                done.device_id.as_deref().unwrap_or("not set"),
                done.steps.len(),
                if done.steps.len() == 1 { "" } else { "s" },
                done.answers.len(),
                if done.answers.len() == 1 { "" } else { "s" },
                sys.word("applied", "to apply")
            ));
            ctx.out
                .result(serde_json::json!({ "first_boot": "done", "record": done }));
            Ok(())
        }
        Err(e) => {
            let attempts = read::<Failed>(sys, FAILED).ok().flatten().map_or(0, |f| f.attempts) + 1;
            let record = Failed {
                failed_at: now(),
                attempts,
                error: e.what.clone(),
                why: e.why.clone(),
                hint: e.hint.clone(),
            };
            // the error itself matters more than a record that cannot be written
            if let Err(w) = write(sys, FAILED, &record) {
                ctx.out.warn(&format!("the failure could not be recorded: {w}"));
            }
            let hint = retry_hint(e.hint.as_deref());
            Err(e.hint(hint))
        }
    }
}

fn first_boot(ctx: &Ctx) -> Result<Done> {
    let sys = &ctx.sys;
    // The machine's own, first and whatever the answers say: without host keys nobody
    // can log in to fix them, and no VNC session starts for a host name that does not
    // resolve (a clone's is often new).
    ssh_host_keys(sys)?;
    if crate::vnc::refresh_host_name(sys)? {
        crate::vnc_user::restart_enabled_sessions(sys)?;
    }
    // what the image could not do without running (starting its units), before
    // the answers, which build on the image
    let steps = run_pending(sys)?;
    let mut files = answers_files(ctx)?;
    // The device ID before the answers, which register the agent with it; a
    // file with its own [device-id] table decides instead.
    if !files.iter().any(|f| f.answers.get::<device_id::Table>().is_some()) {
        let make_id = Answers::default().with(device_id::Table {
            id: None,
            generate: true,
        });
        files.insert(
            0,
            AnswersFile {
                origin: "first boot".to_string(),
                answers: make_id,
            },
        );
    }
    apply_files(ctx, &files, false)?;
    Ok(Done {
        completed_at: now(),
        device_id: crate::device_id::read(sys)?.map(|id| id.to_string()),
        answers: files
            .iter()
            .map(|f| f.origin.clone())
            .filter(|o| o.starts_with('/'))
            .collect(),
        steps,
    })
}

/// The `*.toml` files of ANSWERS_DIR in name order, read and checked. They name
/// files that root reads and may shred, so each must be root's: a regular
/// file, owned by root, that nobody else may write, in directories only root
/// can change.
fn answers_files(ctx: &Ctx) -> Result<Vec<AnswersFile>> {
    let sys = &ctx.sys;
    let mut files = Vec::new();
    for path in answers_paths(sys)? {
        let host = sys.host_path(&path);
        // root's only: a file that names what root reads and may shred
        let owned = sys.check_controlled(&path).and_then(|()| match sys.kind(&path)? {
            Some(FileKind::File) => Ok(()),
            _ => Err(Error::bad_input(format!("{} is not a regular file", host.display()))),
        });
        owned.map_err(|e| {
            e.hint(format!(
                "answers files must be root's own regular files: sudo chown root: {0} && sudo chmod 600 {0}",
                host.display()
            ))
        })?;
        let answers = Answers::load(ctx, &host)?;
        files.push(AnswersFile {
            origin: host.display().to_string(),
            answers,
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::first_boot::{ANSWERS_DIR, State, state};
    use crate::system::Mode;
    use crate::testkit::Fixture;
    use std::os::unix::fs::PermissionsExt;

    const MACHINE: &str = "4c4c4544004e3510804bc4c04f4d3232\n";

    /// A clone at its first boot: a machine ID, DNS, no device ID.
    fn clone() -> (Fixture, tempfile::TempDir) {
        let f = Fixture::debian();
        f.write("/etc/machine-id", MACHINE);
        f.write("/etc/resolv.conf", "nameserver 192.0.2.53\n");
        (f, tempfile::tempdir().unwrap())
    }

    fn answers(f: &Fixture, name: &str, text: &str) {
        let target = format!("{ANSWERS_DIR}/{name}");
        f.write(&target, text);
        std::fs::set_permissions(f.path(&target), std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn secret(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    }

    fn first_boot(f: &Fixture) -> Result<()> {
        run(&f.ctx(f.live()))
    }

    #[test]
    #[ignore = "needs root"]
    fn it_derives_the_device_id_applies_the_answers_in_order_and_never_runs_again() {
        let (f, _) = clone();
        answers(&f, "20-agent.toml", "[agent]\nurl = \"https://b.example.com\"\n");
        answers(&f, "10-agent.toml", "[agent]\nurl = \"https://a.example.com\"\n");
        f.write(&format!("{ANSWERS_DIR}/notes.txt"), "not answers\n");
        first_boot(&f).unwrap();
        let id = crate::device_id::read(&f.live()).unwrap().unwrap();
        assert!(id.as_str().starts_with("edge-"), "{id}");
        // the later file wins: they were applied in name order
        let props = f.read(crate::agent::properties::PATH).unwrap();
        assert!(props.contains("url=https://b.example.com"), "{props}");
        let State::Done(done) = state(&f.live()).unwrap() else {
            panic!("not recorded as done");
        };
        assert_eq!(done.device_id.as_deref(), Some(id.as_str()));
        assert_eq!(done.answers.len(), 2);
        assert!(done.answers[0].ends_with("10-agent.toml"), "{:?}", done.answers);
        // once done, a new answers file is not applied
        answers(&f, "30-agent.toml", "[agent]\nurl = \"https://c.example.com\"\n");
        let before = f.snapshot();
        first_boot(&f).unwrap();
        assert_eq!(f.snapshot(), before);
    }

    #[test]
    #[ignore = "needs root"]
    fn invalid_answers_change_nothing_are_recorded_and_a_fixed_file_succeeds_next_time() {
        let (f, dir) = clone();
        let pass = secret(&dir, "vnc", "secret12\n");
        answers(
            &f,
            "10-appliance.toml",
            &format!(
                "shred-secrets = true\n[device-id]\nid = \"edge-clone-b\"\n[agent]\nurl = \"ftp://bad\"\n[[vnc-user]]\nuser = \"admin\"\npassword-file = \"{pass}\"\n"
            ),
        );
        let before = f.snapshot();
        let e = first_boot(&f).unwrap_err();
        assert!(e.what.contains("[agent]"), "{e}");
        assert!(e.hint.as_deref().unwrap().contains("nothing was changed"), "{e:?}");
        assert!(
            e.hint.as_deref().unwrap().contains("sudo edge-setup image first-boot"),
            "{e:?}"
        );
        // nothing but the record of the failure; the secret is still there for the retry
        let records = f.path("/var");
        let after: Vec<_> = f
            .snapshot()
            .into_iter()
            .filter(|(p, ..)| !p.starts_with(&records))
            .collect();
        assert_eq!(after, before);
        assert!(f.exists(FAILED));
        assert!(crate::device_id::read(&f.live()).unwrap().is_none());
        assert!(std::path::Path::new(&pass).exists());
        let State::Failed(failed) = state(&f.live()).unwrap() else {
            panic!("the failure is not recorded");
        };
        assert_eq!(failed.attempts, 1);
        let status_error = state(&f.live()).unwrap().failure().unwrap();
        assert!(status_error.what.contains("the first boot failed"), "{status_error}");
        assert!(first_boot(&f).is_err());
        let State::Failed(failed) = state(&f.live()).unwrap() else {
            panic!("the failure is not recorded");
        };
        assert_eq!(failed.attempts, 2);

        // the fixed file, without the VNC user (that needs a real system)
        answers(
            &f,
            "10-appliance.toml",
            &format!(
                "shred-secrets = true\n[device-id]\nid = \"edge-clone-b\"\n[agent]\nurl = \"https://b.example.com\"\n[tenant-password]\npassword-file = \"{pass}\"\n"
            ),
        );
        // [tenant-password] needs a post-installation: refused, still nothing changed
        assert!(first_boot(&f).is_err());
        assert!(crate::device_id::read(&f.live()).unwrap().is_none());
        answers(
            &f,
            "10-appliance.toml",
            "[device-id]\nid = \"edge-clone-b\"\n[agent]\nurl = \"https://b.example.com\"\n",
        );
        first_boot(&f).unwrap();
        // the file's own ID, not one derived from the machine
        assert_eq!(
            crate::device_id::read(&f.live()).unwrap().unwrap().as_str(),
            "edge-clone-b"
        );
        assert!(matches!(state(&f.live()).unwrap(), State::Done(_)));
        assert!(!f.exists(FAILED));
    }

    #[test]
    #[ignore = "needs root"]
    fn marked_secrets_are_shredded_after_the_apply_and_unmarked_ones_kept() {
        let (f, dir) = clone();
        f.write(
            "/var/lib/edge-setup/post-install.json",
            &serde_json::to_string(&crate::wizard::post_install::State {
                tenant_domain: "edge.example.com".into(),
                tenant_username: "admin".into(),
                files: crate::wizard::post_install::InstalledFiles::for_domain("edge.example.com", false),
                completed_at: "2026-01-01T00:00:00Z".into(),
                certificates_updated_at: None,
            })
            .unwrap(),
        );
        let marked = secret(&dir, "tenant", "n3w-Passw0rd\n");
        let kept = secret(&dir, "kept", "0ther-Passw0rd\n");
        answers(
            &f,
            "10-tenant.toml",
            &format!("shred-secrets = true\n[tenant-password]\npassword-file = \"{marked}\"\n"),
        );
        answers(
            &f,
            "20-tenant.toml",
            &format!("[tenant-password]\npassword-file = \"{kept}\"\n"),
        );
        first_boot(&f).unwrap();
        assert!(
            !std::path::Path::new(&marked).exists(),
            "the marked secret is still there"
        );
        assert!(std::path::Path::new(&kept).exists());
    }

    #[test]
    #[ignore = "needs root"]
    fn an_answers_file_others_may_write_is_refused() {
        let (f, _) = clone();
        answers(&f, "10-agent.toml", "[agent]\nurl = \"https://a.example.com\"\n");
        let path = f.path(&format!("{ANSWERS_DIR}/10-agent.toml"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = first_boot(&f).unwrap_err();
        assert!(e.hint.as_deref().unwrap().contains("chmod 600"), "{e:?}");
        assert!(crate::device_id::read(&f.live()).unwrap().is_none());
    }

    #[test]
    #[ignore = "needs root"]
    fn without_a_machine_id_the_first_boot_fails_and_changes_nothing() {
        let (f, _) = clone();
        f.write("/etc/machine-id", "");
        let e = first_boot(&f).unwrap_err();
        assert!(e.what.contains("cannot derive a device ID"), "{e}");
        assert!(matches!(state(&f.live()).unwrap(), State::Failed(_)));
    }

    fn pending(f: &Fixture, steps: &[(&str, Option<&str>)]) {
        let record = crate::system::offline::Pending {
            steps: steps
                .iter()
                .map(|(line, left)| crate::system::offline::Step {
                    command: line.split(' ').map(str::to_string).collect(),
                    env: Vec::new(),
                    left: left.map(str::to_string),
                })
                .collect(),
        };
        f.write(
            crate::system::offline::PENDING,
            &serde_json::to_string(&record).unwrap(),
        );
    }

    #[test]
    #[ignore = "needs root"]
    fn the_images_pending_steps_run_once_in_order_and_a_failed_one_is_where_the_next_attempt_starts() {
        let (f, _) = clone();
        pending(
            &f,
            &[
                ("systemctl start tigervncserver@:1.service", None),
                ("systemctl start tigervncserver@:2.service", None),
                ("nft -f /etc/nftables.d/edge-setup-vnc.nft", None),
            ],
        );
        // the second session fails to start at this boot, not at the next
        let failing = std::rc::Rc::new(std::cell::Cell::new(true));
        let fails = failing.clone();
        f.fake.respond_with(move |c| {
            (fails.get() && c.line() == "systemctl start tigervncserver@:2.service")
                .then(|| Ok(crate::system::runner::Output::failed(1, "Job failed\n")))
        });
        let e = first_boot(&f).unwrap_err();
        assert!(e.what.contains("systemctl start tigervncserver@:2.service"), "{e}");
        assert!(e.hint.as_deref().unwrap().contains("it stays in"), "{e:?}");
        let left = f.read(crate::system::offline::PENDING).unwrap();
        assert!(!left.contains("@:1"), "the step that ran is not run again: {left}");
        assert!(left.contains("@:2") && left.contains("nft"), "{left}");
        assert!(matches!(state(&f.live()).unwrap(), State::Failed(_)));

        // the next boot: from the failed step on, once each
        failing.set(false);
        let before = f.fake.lines().len();
        first_boot(&f).unwrap();
        let ran: Vec<String> = f.fake.lines()[before..]
            .iter()
            .filter(|l| l.starts_with("systemctl start") || l.starts_with("nft"))
            .cloned()
            .collect();
        assert_eq!(ran.len(), 2, "{ran:?}");
        assert!(!f.exists(crate::system::offline::PENDING));
        let State::Done(done) = state(&f.live()).unwrap() else {
            panic!("not done");
        };
        assert_eq!(
            done.steps,
            [
                "systemctl start tigervncserver@:2.service",
                "nft -f /etc/nftables.d/edge-setup-vnc.nft"
            ]
        );
    }

    #[test]
    #[ignore = "needs root"]
    fn a_record_others_may_write_is_refused_and_nothing_of_it_runs() {
        let (f, _) = clone();
        pending(&f, &[("systemctl start tigervncserver@:1.service", None)]);
        let path = f.path(crate::system::offline::PENDING);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = first_boot(&f).unwrap_err();
        assert!(e.hint.as_deref().unwrap().contains("sudo chmod 644"), "{e:?}");
        assert!(
            f.fake.lines().iter().all(|l| !l.contains("tigervncserver")),
            "{:?}",
            f.fake.lines()
        );
        assert!(matches!(state(&f.live()).unwrap(), State::Failed(_)));
    }

    #[test]
    #[ignore = "needs root"]
    fn a_step_the_first_boot_cannot_run_is_kept_and_named() {
        let (f, _) = clone();
        pending(
            &f,
            &[
                ("apt-get update", Some("the image has no directory /proc")),
                ("systemctl start edge-agent.service", None),
            ],
        );
        first_boot(&f).unwrap();
        assert!(
            f.fake.lines().iter().all(|l| !l.starts_with("apt-get")),
            "{:?}",
            f.fake.lines()
        );
        assert!(f.fake.lines().iter().any(|l| l == "systemctl start edge-agent.service"));
        let kept = f.read(crate::system::offline::PENDING).unwrap();
        assert!(kept.contains("apt-get") && !kept.contains("edge-agent"), "{kept}");
        assert!(
            f.err
                .text()
                .contains("the image left a step that the first boot cannot run (the image has no directory /proc): apt-get update"),
            "{}",
            f.err.text()
        );
    }

    #[test]
    #[ignore = "needs root"]
    fn an_image_has_no_first_boot() {
        let (f, _) = clone();
        let e = run(&f.ctx(f.system(Mode::Image, false))).unwrap_err();
        assert!(e.what.contains("not on an image"), "{e}");
        assert!(!f.exists(FAILED));
    }
}
