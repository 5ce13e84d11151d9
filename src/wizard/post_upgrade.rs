//! Option 4, Run post-upgrade: after the platform was upgraded, re-applies the
//! saved configuration (the network from config.dat, the agent's cloud URL),
//! then the `post-upgrade` platform steps. Refuses over SSH, like option 1.

use std::path::Path;

use serde::Serialize;

use super::config_dat::{self, ConfigDat};
use super::input::{Input, Source};
use super::network::{self, refuse_over_ssh};
use super::post_install::{self, InstalledFiles, configure_agent};
use crate::config::{self, KeyValue};
use crate::context::Ctx;
use crate::error::Result;
use crate::hooks;

#[derive(Serialize)]
struct Payload<'a> {
    tenant_domain: &'a str,
    tenant_username: &'a str,
    /// From config.dat, when it holds one.
    tenant_password: Option<&'a str>,
    cloud_url: Option<String>,
    files: &'a InstalledFiles,
}

pub fn run(ctx: &Ctx, force: bool) -> Result<()> {
    refuse_over_ssh(ctx, "The post-upgrade", force, "add --force")?;
    ctx.sys.require_root("setup post-upgrade")?;
    let state = post_install::require_state(ctx, "The post-upgrade")?;
    let dat_path = Path::new(config_dat::PATH);
    let saved = ConfigDat::load(&ctx.sys, dat_path)?;

    // Everything is validated before the first change.
    let network = match saved.as_ref().filter(|d| d.get(config_dat::NETWORK_IP).is_some()) {
        Some(dat) => {
            let input = Input {
                source: Source::ConfigDat(dat),
                interactive: false,
                noninteractive: "sudo edge-setup setup network",
                origin: ctx.sys.host_path(dat_path).display().to_string(),
            };
            let opts = network::Options {
                interface: None,
                stack: None,
                force,
            };
            Some(network::prepare(ctx, &input, &opts)?)
        }
        None => None,
    };
    let password = saved.as_ref().and_then(ConfigDat::password).and_then(|r| r.ok());
    let url = ctx.config()?.get(&ctx.sys, config::C8Y_URL)?;

    match &network {
        Some(p) => network::apply(ctx, p)?,
        None => ctx.out.info(&format!(
            "No network configuration is saved in {}; the network is left as it is.",
            config_dat::PATH
        )),
    }
    configure_agent(ctx, url.as_ref(), None)?;
    hooks::run(
        &ctx.sys,
        "post-upgrade",
        &Payload {
            tenant_domain: &state.tenant_domain,
            tenant_username: &state.tenant_username,
            tenant_password: password.as_ref().map(|p| p.as_str()),
            cloud_url: url.as_ref().map(|u| u.render()),
            files: &state.files,
        },
    )?;
    ctx.out.info("Post-upgrade complete.");
    Ok(())
}
