//! Applies what `check --fix` may do: only edge-setup's own idempotent
//! operations, each through the system seam, so a dry run prints it and
//! image mode prints the commands for the target.

use crate::error::{Error, Result};
use crate::health::Fix;
use crate::system::System;
use crate::tenant::{self, Tenant};
use crate::{remote_access, vnc, vnc_user};

fn apply_one(sys: &System, fix: &Fix) -> Result<()> {
    match fix {
        Fix::RestartSession { user, display } => vnc_user::health::restart_session(sys, user, *display),
        Fix::RemoveStale { display } => vnc_user::health::remove_stale(sys, *display),
        Fix::RestorePasswordFile { user } => vnc_user::health::restore_password_file(sys, user),
        Fix::HostsLine => vnc::refresh_host_name(sys).map(|_| ()),
        Fix::RefreshSudoers => vnc::run(sys, &vnc::Request::RefreshSudoers, std::time::Duration::ZERO),
        Fix::RemoteAccessSync => {
            let credentials = tenant::configured(sys)?.ok_or_else(|| {
                Error::failure("the tenant credentials are no longer configured")
                    .hint("sudo edge-setup remote-access sync --credentials-stdin")
            })?;
            let tenant = Tenant::new(sys, credentials)?;
            let device = remote_access::Device::find(&tenant)?;
            remote_access::locked(sys, || remote_access::sync(&device, None)).map(|_| ())
        }
    }
}

/// Applies `fixes` (each with the name of the check that found it) in order,
/// one step each; a fix that fails is reported and the others still run. The
/// number of fixes that ran without an error.
pub fn apply(sys: &System, fixes: &[(String, Fix)]) -> usize {
    let mut seen: Vec<&Fix> = Vec::new();
    let mut applied = 0;
    for (name, fix) in fixes {
        // two checks can ask for one fix (a port not listening and no greeting)
        if seen.contains(&fix) {
            continue;
        }
        seen.push(fix);
        let step = sys.out().step(&format!("{} [{name}]", fix.describe()));
        match apply_one(sys, fix) {
            Ok(()) => {
                step.done(sys.done_word());
                applied += 1;
            }
            Err(e) => {
                step.done("failed");
                sys.out().warn(&format!("{name}: {e}"));
            }
        }
    }
    applied
}
