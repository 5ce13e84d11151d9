//! `diag collect`: the appliance's state for support in one `.tar.gz` (the
//! writer's, mode 0600): edge-setup's parts (`parts`), then the diagnostic
//! plugins (`plugins`), and a manifest of what each found. A part or plugin that
//! fails is recorded and the bundle is still made.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::Since;
use super::bundle::{Bundle, Report, Status};
use super::parts::{PARTS, Source};
use super::plugins::{self, BOUNDS, Listed};
use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::FileSpec;

/// Where bundles go on the appliance unless `--output` says otherwise.
pub const DIR: &str = "/var/lib/edge-setup/diag";

/// Where the bundle is written.
enum Destination {
    /// Under `DIR` on the appliance.
    Default(PathBuf),
    /// The host path `--output` named.
    Named(PathBuf),
}

/// Collects the bundle and writes it (with `--dry-run` prints the plan and
/// writes nothing); returns the result for `--json`: `path`, `size`, `parts`,
/// `plugins`.
pub fn run(sys: &System, output: Option<&Path>, since: Since) -> Result<Value> {
    sys.require_root("diag collect")?;
    let now = OffsetDateTime::now_utc();
    let stem = format!("edge-setup-diag-{}-{}", host_label(sys)?, stamp(now));
    let destination = match output {
        Some(path) => Destination::Named(path.to_path_buf()),
        None if sys.is_image() => {
            return Err(Error::bad_input("which file? --output FILE is needed with --root")
                .why("a bundle written into the image would go to every appliance made from it")
                .hint("name a file outside the image: edge-setup diag collect --output diag.tar.gz"));
        }
        None => Destination::Default(Path::new(DIR).join(format!("{stem}.tar.gz"))),
    };
    let shown = match &destination {
        Destination::Named(path) => std::path::absolute(path).unwrap_or_else(|_| path.clone()),
        Destination::Default(path) => sys.host_path(path),
    };
    let shown = shown.display().to_string();
    let listed = plugins::list(sys);
    if sys.dry_run() {
        return Ok(plan(sys, &shown, &listed));
    }

    let src = Source::new(sys, since);
    let mut bundle = Bundle::new(&stem);
    let mut parts = Vec::new();
    for part in PARTS {
        let step = sys.out().step(&format!("Collecting {}", part.name));
        let (report, files) = part.collect(&src);
        step.done(&report.outcome());
        files.into_iter().for_each(|(name, bytes)| bundle.add(name, bytes));
        parts.push(report);
    }
    let mut ran = listed.refused;
    for plugin in &listed.plugins {
        let step = sys
            .out()
            .step(&format!("Running the diagnostic plugin {}", plugin.name));
        let (report, files) = plugins::run(sys, plugin, BOUNDS);
        step.done(&report.outcome());
        files.into_iter().for_each(|(name, bytes)| bundle.add(name, bytes));
        ran.push(report);
    }
    let created = now
        .replace_nanosecond(0)
        .expect("zero is a valid nanosecond")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("the current time formats");
    let manifest = json!({
        "edge_setup": format!("{} (commit {})", env!("CARGO_PKG_VERSION"), env!("EDGE_SETUP_COMMIT")),
        "created": created,
        "system": if sys.is_image() { sys.root_dir().display().to_string() } else { "live".to_string() },
        "since_seconds": since.0.as_secs(),
        "parts": parts,
        "plugins": ran,
    });
    let manifest = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
    bundle.add("manifest.json".to_string(), manifest);
    let bytes = bundle.to_tar_gz(now.unix_timestamp().max(0) as u64)?;

    let spec = FileSpec {
        mode: 0o600,
        uid: sys.euid(),
        gid: sys.egid(),
    };
    match &destination {
        Destination::Default(path) => {
            sys.ensure_dir(Path::new(DIR), FileSpec::root(0o700))?;
            sys.write(path, &bytes, spec)?;
        }
        Destination::Named(path) => {
            sys.write_host_file(path, &bytes, spec)?;
        }
    }
    let count = |s: Status| parts.iter().chain(&ran).filter(|r| r.status == s).count();
    sys.out().info(&format!(
        "Wrote the diagnostic bundle {shown} ({} bytes): {} collected, {} skipped, {} failed{}",
        bytes.len(),
        count(Status::Collected),
        count(Status::Skipped),
        count(Status::Error),
        if count(Status::Error) > 0 {
            " (why is in its manifest.json, and in --json)"
        } else {
            ""
        }
    ));
    Ok(json!({ "path": shown, "size": bytes.len(), "parts": parts, "plugins": ran }))
}

/// `--dry-run`: what would be collected, from where, and where it would go.
fn plan(sys: &System, shown: &str, listed: &Listed) -> Value {
    let out = sys.out();
    out.info(&format!("Would collect a diagnostic bundle into {shown} (mode 0600):"));
    let parts: Vec<Report> = PARTS.iter().map(|p| p.plan(sys)).collect();
    let mut plugins = listed.refused.clone();
    for plugin in &listed.plugins {
        plugins.push(match sys.is_image() {
            true => plugins::run(sys, plugin, BOUNDS).0,
            false => plugins::plan(plugin),
        });
    }
    let line = |r: &Report| match r.status {
        Status::Planned => r.why.clone().unwrap_or_default(),
        _ => r.outcome(),
    };
    for r in &parts {
        out.info(&format!("  {}: {}", r.name, line(r)));
    }
    for r in &plugins {
        out.info(&format!("  plugin {}: {}", r.name, line(r)));
    }
    json!({ "path": shown, "size": null, "parts": parts, "plugins": plugins })
}

/// The host's name for the bundle's name: the running system's, an image's
/// /etc/hostname; only letters, digits, `.`, `-` and `_` kept.
fn host_label(sys: &System) -> Result<String> {
    let name = match sys.is_image() {
        true => sys
            .read_string(Path::new("/etc/hostname"))?
            .and_then(|t| t.lines().next().map(str::to_string)),
        false => sys.hostname(),
    };
    let name: String = name
        .unwrap_or_default()
        .trim()
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "-._".contains(c) {
            true => c,
            false => '_',
        })
        .collect();
    Ok(if name.is_empty() { "unknown".to_string() } else { name })
}

/// `20261202T224956Z`.
fn stamp(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::Mode;
    use crate::testkit::Fixture;
    use std::time::Duration;

    const DAY: Since = Since(Duration::from_secs(86_400));

    #[test]
    fn on_the_appliance_the_bundle_goes_to_root_s_directory() {
        let f = Fixture::debian();
        let sys = f.live();
        let result = run(&sys, None, DAY).unwrap();
        let path = result["path"].as_str().unwrap();
        let dir = f.path(DIR);
        let name = path.strip_prefix(&format!("{}/", dir.display())).unwrap();
        assert!(
            name.starts_with("edge-setup-diag-") && name.ends_with("Z.tar.gz"),
            "{name}"
        );
        assert_eq!(f.mode(DIR), 0o700);
        let target = format!("{DIR}/{name}");
        assert_eq!(f.mode(&target), 0o600);
        assert_eq!(result["size"], f.read_bytes(&target).unwrap().len());
        // the live-only parts asked the system, each within its limits
        let lines = f.commands();
        assert!(
            lines.iter().any(|l| l.starts_with("journalctl --no-pager")),
            "{lines:?}"
        );
        assert!(f.fake.calls().iter().all(|c| c.limits.is_some()));
        assert_eq!(result["parts"].as_array().unwrap().len(), PARTS.len());
    }

    #[test]
    fn it_needs_root_on_the_appliance() {
        let f = Fixture::debian();
        let sys = f.live().with_ids(1000, 1000);
        let e = run(&sys, Some(Path::new("/tmp/x.tar.gz")), DAY).unwrap_err();
        assert_eq!(e.what, "'edge-setup diag collect' must run as root");
        assert_eq!(
            e.hint.as_deref(),
            Some("run it with sudo: sudo edge-setup diag collect")
        );
        assert!(f.fake.calls().is_empty());
    }

    #[test]
    fn the_bundle_s_name_says_where_and_when() {
        let t = OffsetDateTime::from_unix_timestamp(1_796_251_796).unwrap();
        assert_eq!(stamp(t), "20261202T224956Z");
        let f = Fixture::debian();
        let image = f.system(Mode::Image, false);
        assert_eq!(host_label(&image).unwrap(), "unknown");
        f.write("/etc/hostname", "edge 01/x\nsecond line\n");
        assert_eq!(host_label(&image).unwrap(), "edge_01_x");
    }
}
