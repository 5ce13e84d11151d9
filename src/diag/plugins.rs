//! Diagnostic plugins, with thin-edge's contract (`tedge diag collect`), so its
//! plugins run unchanged: executables in the package's and the administrator's
//! directory, root-controlled like platform steps (`hooks::executables`), run in
//! name order as `PLUGIN collect --output-dir DIR`; exit 0 collected, 2 skipped,
//! anything else an error that does not stop the bundle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::bundle::{Files, Found, Report, Status, describe, transcript};
use crate::error::Result;
use crate::hooks::{self, Hook};
use crate::system::System;
use crate::system::fs::{FileKind, Root};
use crate::system::runner::{Cmd, Limits};

/// The package's plugins, then the administrator's: a plugin of the same name
/// in the second replaces the first's.
pub const DIRS: [&str; 2] = ["/usr/share/edge-setup/diag-plugins", "/etc/edge-setup/diag-plugins"];

/// How far a plugin may go.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub limits: Limits,
    /// What its output directory may hold: bytes, and entries (files and directories).
    pub bytes: u64,
    pub entries: usize,
}

/// thin-edge's default: a minute, then SIGTERM, 5 s later SIGKILL; 256 KiB of
/// what it prints, 16 MiB in its output directory.
pub const BOUNDS: Bounds = Bounds {
    limits: Limits {
        time: Duration::from_secs(60),
        grace: Duration::from_secs(5),
        output: 256 << 10,
    },
    bytes: 16 << 20,
    entries: 1000,
};

/// The plugins to run, and the directories refused (as error reports).
pub struct Listed {
    pub plugins: Vec<Hook>,
    pub refused: Vec<Report>,
}

/// The plugins of both directories in name order. A directory others could
/// change is refused whole, with a warning naming the fix; the other still runs.
/// Files ending `.ignore` are passed over, as thin-edge does.
pub fn list(sys: &System) -> Listed {
    let mut by_name = BTreeMap::new();
    let mut refused = Vec::new();
    for dir in DIRS {
        match hooks::executables(sys, Path::new(dir), "diagnostic plugin", |n| n.ends_with(".ignore")) {
            Ok(found) => by_name.extend(found.into_iter().map(|h| (h.name.clone(), h))),
            Err(e) => {
                let why = describe(&e);
                sys.out()
                    .warn(&format!("the diagnostic plugins in {dir} do not run: {why}"));
                refused.push(Report {
                    path: Some(dir.to_string()),
                    ..Report::new(dir, Status::Error, Some(why))
                });
            }
        }
    }
    Listed {
        plugins: by_name.into_values().collect(),
        refused,
    }
}

/// The plan line of a plugin (`--dry-run`).
pub fn plan(plugin: &Hook) -> Report {
    Report {
        path: Some(plugin.path.display().to_string()),
        ..Report::new(
            &plugin.name,
            Status::Planned,
            Some(format!("{} collect --output-dir DIR", plugin.path.display())),
        )
    }
}

/// Runs one plugin within `bounds`: its output directory goes in as
/// `plugins/NAME/`, what it printed and how it ended as `plugins/NAME.log`. In an
/// image nothing runs: the plugins are the appliance's.
pub fn run(sys: &System, plugin: &Hook, bounds: Bounds) -> (Report, Files) {
    let mut found = Found::default();
    let result = if sys.is_image() {
        found.skip("an image's plugins run on the appliance, by its 'edge-setup diag collect'");
        Ok(())
    } else {
        run_live(sys, plugin, bounds, &mut found)
    };
    let report = Report {
        path: Some(plugin.path.display().to_string()),
        ..found.report(&plugin.name, result)
    };
    (report, found.files)
}

fn run_live(sys: &System, plugin: &Hook, bounds: Bounds, found: &mut Found) -> Result<()> {
    let program = plugin.program(sys)?;
    let dir = sys.private_temp_dir()?;
    let cmd = Cmd::checked(program)
        .args(["collect", "--output-dir"])
        .arg(dir.path().display().to_string())
        .limits(bounds.limits);
    let out = sys.run_read_only(cmd.clone())?;
    let name = &plugin.name;
    found.file(format!("plugins/{name}.log"), transcript(&cmd, &out));
    gather(dir.path(), &format!("plugins/{name}"), bounds, found)?;
    match (out.timed_out, out.status) {
        (true, _) => found.problem(format!("stopped at its time limit ({:?})", bounds.limits.time)),
        (false, Some(0)) => {}
        (false, Some(2)) => found.skip("it skipped itself (exit status 2)"),
        (false, Some(code)) => found.problem(format!("exit status {code}")),
        (false, None) => found.problem("killed by a signal"),
    }
    Ok(())
}

/// The files of a plugin's output directory as `PREFIX/PATH`, within `bounds`;
/// what does not fit, a link or anything but a file or directory is left out
/// and named as a problem.
fn gather(dir: &Path, prefix: &str, bounds: Bounds, found: &mut Found) -> Result<()> {
    let root = Root::new(dir)?;
    let mut left = bounds.bytes;
    let mut entries = 0;
    let mut left_out = Vec::new();
    let mut pending = vec![PathBuf::from("/")];
    'walk: while let Some(at) = pending.pop() {
        for name in root.list_dir(&at)? {
            let path = at.join(&name);
            let rel = path.strip_prefix("/").unwrap_or(&path).display().to_string();
            entries += 1;
            if entries > bounds.entries {
                left_out.push(format!(
                    "{rel} and what follows it (more than {} entries)",
                    bounds.entries
                ));
                break 'walk;
            }
            match root.kind(&path)? {
                Some(FileKind::Dir) => pending.push(path),
                Some(FileKind::File) => match root.read_small(&path, left) {
                    Ok(Some((bytes, _))) => {
                        left -= bytes.len() as u64;
                        found.file(format!("{prefix}/{rel}"), bytes);
                    }
                    Ok(None) => {}
                    Err(_) => left_out.push(format!("{rel} (more than the {} bytes left of the cap)", left)),
                },
                _ => left_out.push(format!("{rel} (not a file or a directory)")),
            }
        }
    }
    if !left_out.is_empty() {
        found.problem(format!("left out of the bundle: {}", left_out.join(", ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Mode;
    use crate::system::runner::HostRunner;
    use crate::testkit::Fixture;
    use std::os::unix::fs::PermissionsExt;

    fn plugin(f: &Fixture, dir: &str, name: &str, script: &str) {
        let d = f.path(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(d.join(name), format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn bounds(time_ms: u64) -> Bounds {
        Bounds {
            limits: Limits {
                time: Duration::from_millis(time_ms),
                grace: Duration::from_millis(200),
                output: 1024,
            },
            bytes: 64,
            entries: 5,
        }
    }

    fn run_all(sys: &System, b: Bounds) -> Vec<(Report, Files)> {
        let listed = list(sys);
        assert!(listed.refused.is_empty(), "{:?}", listed.refused);
        listed.plugins.iter().map(|p| run(sys, p, b)).collect()
    }

    /// The contract, run for real: exit 0 collected, 2 skipped, 1 an error, a
    /// plugin past its time stopped; every one's log and output are kept.
    #[test]
    fn plugins_run_in_name_order_and_each_exit_says_how_it_ended() {
        let f = Fixture::debian();
        plugin(
            &f,
            DIRS[0],
            "10-writes",
            "[ \"$1 $2\" = 'collect --output-dir' ] || exit 9\necho hello > \"$3/hello.txt\"\necho done",
        );
        plugin(&f, DIRS[1], "20-skips", "exit 2");
        plugin(
            &f,
            DIRS[0],
            "30-fails",
            "echo partial > \"$3/partial.txt\"\necho broken >&2\nexit 1",
        );
        plugin(&f, DIRS[1], "40-sleeps", "sleep 30");
        let sys = f.system_with(Mode::Live, false, Box::new(HostRunner));
        let started = std::time::Instant::now();
        let ran = run_all(&sys, bounds(300));
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        let got: Vec<(&str, Status, Option<&str>)> = ran
            .iter()
            .map(|(r, _)| (r.name.as_str(), r.status, r.why.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("10-writes", Status::Collected, None),
                ("20-skips", Status::Skipped, Some("it skipped itself (exit status 2)")),
                ("30-fails", Status::Error, Some("exit status 1")),
                ("40-sleeps", Status::Error, Some("stopped at its time limit (300ms)")),
            ]
        );
        let files = |i: usize| -> Vec<(&str, String)> {
            ran[i]
                .1
                .iter()
                .map(|(n, b)| (n.as_str(), String::from_utf8_lossy(b).into_owned()))
                .collect()
        };
        let writes = files(0);
        assert_eq!(writes[1], ("plugins/10-writes/hello.txt", "hello\n".to_string()));
        assert_eq!(writes[0].0, "plugins/10-writes.log");
        assert!(
            writes[0].1.contains("\ndone\n--- exit status 0 ---\n"),
            "{}",
            writes[0].1
        );
        let fails = files(2);
        assert!(fails[0].1.contains("broken"), "{fails:?}");
        assert_eq!(fails[1], ("plugins/30-fails/partial.txt", "partial\n".to_string()));
        assert!(files(3)[0].1.contains("--- stopped at its time limit ---"));
    }

    #[test]
    fn the_administrator_s_plugin_replaces_the_package_s_and_ignore_files_do_not_run() {
        let f = Fixture::debian();
        plugin(&f, DIRS[0], "10-same", "echo package");
        plugin(&f, DIRS[1], "10-same", "echo admin");
        plugin(&f, DIRS[1], "20-old.ignore", "exit 1");
        let sys = f.system(Mode::Live, false);
        let listed = list(&sys);
        let paths: Vec<PathBuf> = listed.plugins.iter().map(|p| p.path.clone()).collect();
        assert_eq!(paths, vec![Path::new(DIRS[1]).join("10-same")]);
    }

    #[test]
    fn what_does_not_fit_the_output_cap_or_is_a_link_is_left_out_and_said() {
        let f = Fixture::debian();
        plugin(
            &f,
            DIRS[0],
            "10-much",
            "mkdir \"$3/sub\"\nhead -c 40 /dev/zero > \"$3/sub/a\"\nhead -c 40 /dev/zero > \"$3/sub/b\"\nln -s /etc/shadow \"$3/link\"",
        );
        let sys = f.system_with(Mode::Live, false, Box::new(HostRunner));
        let ran = run_all(&sys, bounds(5000));
        let (report, files) = &ran[0];
        assert_eq!(report.status, Status::Error);
        let why = report.why.as_deref().unwrap();
        assert!(why.starts_with("left out of the bundle: "), "{why}");
        assert!(why.contains("link (not a file or a directory)"), "{why}");
        assert!(why.contains("sub/b (more than the 24 bytes left of the cap)"), "{why}");
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["plugins/10-much.log", "plugins/10-much/sub/a"]);
    }

    #[test]
    fn a_directory_others_may_change_is_refused_with_the_fix_and_the_other_still_runs() {
        let f = Fixture::debian();
        plugin(&f, DIRS[0], "10-package", "true");
        plugin(&f, DIRS[1], "20-planted", "true");
        std::fs::set_permissions(f.path(DIRS[1]), std::fs::Permissions::from_mode(0o777)).unwrap();
        let sys = f.system(Mode::Live, false);
        let listed = list(&sys);
        assert_eq!(listed.plugins.len(), 1);
        assert_eq!(listed.plugins[0].name, "10-package");
        let why = listed.refused[0].why.as_deref().unwrap();
        assert!(why.contains("group or others may change it (mode 0777)"), "{why}");
        assert!(
            why.contains(&format!("(next: chmod go-w {})", f.path(DIRS[1]).display())),
            "{why}"
        );
        assert!(
            f.err
                .text()
                .contains("warning: the diagnostic plugins in /etc/edge-setup/diag-plugins do not run")
        );
    }

    #[test]
    fn in_an_image_plugins_are_listed_not_run() {
        let f = Fixture::debian();
        plugin(&f, DIRS[0], "10-a", "exit 1");
        let sys = f.system(Mode::Image, false);
        let listed = list(&sys);
        let (report, files) = run(&sys, &listed.plugins[0], BOUNDS);
        assert_eq!(report.status, Status::Skipped);
        assert!(files.is_empty() && f.fake.calls().is_empty());
    }
}
