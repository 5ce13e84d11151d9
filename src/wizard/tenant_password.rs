//! Option 6, Update tenant password: the new password (entered twice on the
//! console), the `tenant-password` platform steps that change it, then
//! config.dat. The password is never printed or logged.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::config_dat::{self, ConfigDat};
use super::input::{Field, Input};
use super::post_install::{State, check_password};
use super::unit::{self, Apply, At, Session};
use crate::context::Ctx;
use crate::error::Result;
use crate::hooks;

/// `[tenant-password]`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Table {
    pub password_file: Option<PathBuf>,
}

impl unit::Table for Table {
    const NAME: &'static str = "tenant-password";

    fn secret_files(&self) -> Vec<&Path> {
        self.password_file.as_deref().into_iter().collect()
    }

    fn plan(&self, ctx: &Ctx, at: &At, session: &mut Session) -> Result<Option<Box<dyn Apply>>> {
        let state = session.post_install_state(ctx)?;
        let prepared = prepare(ctx, &at.input())?;
        Ok(Some(Box::new(super::post_install::WithState {
            prepared,
            state,
            apply,
        })))
    }
}

pub struct Prepared {
    password: Zeroizing<String>,
}

pub fn prepare(ctx: &Ctx, input: &Input) -> Result<Prepared> {
    ctx.sys.require_root("setup tenant-password")?;
    let password = input.value(
        ctx,
        &Field {
            dat_key: config_dat::TENANT_PASSWORD,
            answers_key: "password-file",
            prompt: "New tenant admin password",
            secret: true,
            default: None,
            validate: &check_password,
        },
    )?;
    Ok(Prepared { password })
}

#[derive(serde::Serialize)]
struct Payload<'a> {
    tenant_domain: &'a str,
    tenant_username: &'a str,
    tenant_password: &'a str,
}

/// Runs the platform steps, then saves the password: config.dat only ever
/// holds a password the platform accepted.
pub fn apply(ctx: &Ctx, state: &State, p: &Prepared) -> Result<()> {
    let saved = ConfigDat::saved(&ctx.sys)
        .and_then(|d| d.password())
        .and_then(|r| r.ok());
    if saved.as_deref().map(String::as_str) == Some(p.password.as_str()) {
        ctx.out.info(&format!(
            "The tenant password of {} is this one already; the platform steps do not run again.",
            state.tenant_username
        ));
        return Ok(());
    }
    let steps = hooks::run(
        &ctx.sys,
        "tenant-password",
        &Payload {
            tenant_domain: &state.tenant_domain,
            tenant_username: &state.tenant_username,
            tenant_password: &p.password,
        },
    )?;
    let step = ctx
        .out
        .step(&format!("Saving the new password to {}", config_dat::PATH));
    let mut dat = ConfigDat::default();
    dat.set_password(&p.password);
    step.done(ctx.sys.change_word(dat.save_merged(&ctx.sys)?));
    if steps == 0 {
        ctx.out.note(
            &format!(
                "edge-setup {} the new password; the platform's own password changes through its platform steps, and none are installed.",
                ctx.sys.word("saved", "would save")
            ),
        );
    } else {
        ctx.out.info(&format!(
            "The tenant password of {} {}.",
            state.tenant_username,
            ctx.sys.word("is updated", "would be updated")
        ));
    }
    Ok(())
}
