//! `edge-setup check [--only AREA,...] [--fix] [--strict]`: runs each area's
//! checks, applies the fixes through plan then apply, prints and exits 1 on a failure.

use crate::check::{self, Area, Check, Fix, Probe, Status};
use crate::cli::CheckArgs;
use crate::config::Config;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::health::{self, Counts};
use crate::{vnc, vnc_user};

/// Runs the checks of `areas` (all when empty), in area order.
pub fn run_checks(ctx: &Ctx, areas: &[Area]) -> Vec<Check> {
    let sys = &ctx.sys;
    let probe = Probe {
        sys,
        cfg: Config::load(sys).ok(),
        root: sys.is_root() || sys.is_image(),
    };
    let wanted = |a: Area| areas.is_empty() || areas.contains(&a);
    let mut out = Vec::new();
    for area in Area::ALL.into_iter().filter(|a| wanted(*a)) {
        if !probe.root && area != Area::Vnc {
            // an ordinary user asked for it by name: say why not
            if !areas.is_empty() {
                out.push(Check::skipped(area, area.name(), "needs root: sudo edge-setup check"));
            }
            continue;
        }
        let checks = match area {
            Area::EdgeSetup => check::edge_setup::checks(&probe),
            Area::Identity => check::identity::checks(&probe),
            Area::Agent => check::agent::checks(&probe),
            Area::Tenant => check::connection::checks(&probe),
            Area::Vnc => {
                let mut checks = vnc_user::health::checks(&probe);
                // the rule matters once there are mappings to open ports for
                if probe.root && checks.iter().any(|c| c.id == "vnc.mappings") {
                    checks.insert(1, vnc::health::desktop_check(&probe));
                    checks.push(vnc::health::firewall_check(&probe));
                }
                checks
            }
            Area::Certificates => check::certificates::checks(&probe),
            Area::Disk => check::disk::checks(&probe),
        };
        out.extend(checks);
    }
    out
}

/// `edge-setup check [--only AREA,...] [--fix] [--strict]`.
pub fn run(ctx: &Ctx, args: &CheckArgs) -> Result<()> {
    let out = &ctx.out;
    if !ctx.sys.is_root() && !ctx.sys.is_image() && args.only.iter().all(|a| *a == Area::Vnc) {
        out.note("checking your own VNC session; 'sudo edge-setup check' checks the whole appliance");
    }
    let mut checks = run_checks(ctx, &args.only);
    let fixes: Vec<(String, Fix)> = checks
        .iter()
        .filter_map(|c| c.fix.clone().map(|f| (c.id.to_string(), f)))
        .collect();
    if args.fix && !fixes.is_empty() {
        let applied = check::fix::apply(&ctx.sys, &fixes);
        if !ctx.sys.dry_run() && applied > 0 {
            // what the fixes left: the outcome reported is the system's now
            checks = run_checks(ctx, &args.only);
        }
    }
    for line in health::lines(&checks) {
        out.data(&line);
    }
    let counts = Counts::of(&checks);
    out.result(health::to_json(&checks));
    out.info(&counts.line());
    if args.fix && fixes.is_empty() {
        out.info("Nothing for --fix to do: what is left needs the commands named above.");
    }
    let failed: Vec<&Check> = checks
        .iter()
        .filter(|c| c.status == Status::Fail || (args.strict && c.status == Status::Warn))
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = failed.iter().map(|c| c.name()).collect();
    let fixable = failed.iter().any(|c| c.fix.is_some());
    Err(Error::failure(format!(
        "{} check{} {}: {}",
        failed.len(),
        if failed.len() == 1 { "" } else { "s" },
        if args.strict {
            "did not pass (--strict)"
        } else {
            "failed"
        },
        names.join(", ")
    ))
    .hint(if fixable && !args.fix {
        format!(
            "run the next command each one names; '{}' applies the ones marked for it",
            health::fix_command(&ctx.sys, None)
        )
    } else {
        "run the next command each one names".to_string()
    }))
}
