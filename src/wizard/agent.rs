//! Option 7, Configure Edge Agent: the cloud URL, or blank to disable remote management.

use serde::{Deserialize, Serialize};

use super::input::{Input, Source};
use super::unit::{self, Apply, At, Session};
use crate::agent::{self, EnableOpts};
use crate::config::TenantUrl;
use crate::context::Ctx;
use crate::device_id;
use crate::error::{Error, Result};
use crate::prompt::Question;

/// `[agent]`: `url = ""` disables remote management.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Table {
    pub url: Option<String>,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub force: bool,
}

impl unit::Table for Table {
    const NAME: &'static str = "agent";

    fn plan(&self, ctx: &Ctx, at: &At, session: &mut Session) -> Result<Option<Box<dyn Apply>>> {
        let prepared = prepare(ctx, &at.input())?.with_device_id(session.given_device_id(ctx)?);
        Ok(Some(Box::new(prepared)))
    }
}

impl Apply for Prepared {
    fn apply(self: Box<Self>, ctx: &Ctx, _: &mut Session) -> Result<()> {
        apply(ctx, &self)
    }
}

/// The validated choice and the options of an enable.
pub struct Prepared {
    choice: Choice,
    opts: EnableOpts,
}

enum Choice {
    Connect(TenantUrl),
    Disable,
    /// A blank answer at the console, not confirmed: nothing to change.
    Keep,
}

impl Prepared {
    /// The device ID an answers file gives, for the agent to register with when none is set.
    pub fn with_device_id(mut self, id: Option<crate::config::DeviceId>) -> Self {
        self.opts.device_id = id;
        self
    }
}

/// Gathers the URL (answers `url`/`insecure`/`force`, or the console) and checks it.
pub fn prepare(ctx: &Ctx, input: &Input) -> Result<Prepared> {
    ctx.sys.require_root("setup agent")?;
    let mut opts = EnableOpts {
        insecure: input.answers_flag("insecure"),
        force: input.answers_flag("force"),
        device_id: None,
    };
    let text = match &input.source {
        Source::Answers(t) => match t.get("url").and_then(toml::Value::as_str) {
            Some(s) => s.to_string(),
            None => {
                return Err(Error::bad_input(format!("{} has no 'url'", input.origin))
                    .hint("set url = \"https://TENANT\" (or url = \"\" to disable remote management)"));
            }
        },
        _ => {
            // As the old menu: a blank answer disables, so the current URL is
            // shown, not offered as the default Enter would take.
            let now = ctx.config()?.tenant_url(&ctx.sys)?;
            let prompt = match &now {
                Some(u) => format!("Enter cloud URL (leave blank to disable remote management; now {u})"),
                None => "Enter cloud URL (leave blank to disable remote management)".to_string(),
            };
            let q = Question {
                prompt: &prompt,
                noninteractive: "edge-setup setup agent --answers FILE with an [agent] table, or edge-setup remote-connectivity enable --url URL",
            };
            let answer = ctx.prompt.text(q, None, &|s| {
                if s.is_empty() {
                    Ok(())
                } else {
                    TenantUrl::parse_any(s).map(drop)
                }
            })?;
            if !answer.is_empty() && TenantUrl::parse_any(&answer).is_ok_and(|u| u.is_insecure()) {
                let q = Question {
                    prompt: "This URL is not encrypted (http). Use it anyway",
                    noninteractive: "--insecure",
                };
                opts.insecure = ctx.prompt.confirm(q, false)?;
            }
            // A blank answer turns a connection off only when asked once more.
            if let (true, Some(u)) = (answer.is_empty(), &now) {
                let prompt = format!("Disable remote management (now {u})");
                let q = Question {
                    prompt: &prompt,
                    noninteractive: "edge-setup remote-connectivity disable",
                };
                if !ctx.prompt.confirm(q, false)? {
                    return Ok(Prepared {
                        choice: Choice::Keep,
                        opts,
                    });
                }
            }
            answer
        }
    };
    if text.trim().is_empty() {
        return Ok(Prepared {
            choice: Choice::Disable,
            opts,
        });
    }
    let url = agent::parse_url(&text).map_err(|e| match &input.source {
        Source::Answers(_) => {
            Error::bad_input(format!("{}: 'url' is not valid", input.origin)).why(e.why.unwrap_or(e.what))
        }
        _ => e,
    })?;
    if url.is_insecure() && !opts.insecure {
        return Err(Error::bad_input(format!("refusing the unencrypted URL {url}"))
            .hint("use https, or set insecure = true in the [agent] table to accept http knowingly"));
    }
    Ok(Prepared {
        choice: Choice::Connect(url),
        opts,
    })
}

/// Enables or disables remote connectivity, then shows the device ID to register.
pub fn apply(ctx: &Ctx, prepared: &Prepared) -> Result<()> {
    match &prepared.choice {
        Choice::Connect(url) => agent::enable(&ctx.sys, url, &prepared.opts)?,
        Choice::Disable => return agent::disable(&ctx.sys),
        Choice::Keep => {
            ctx.out.info("Remote management stays as it is.");
            return Ok(());
        }
    }
    if let Some(id) = device_id::read(&ctx.sys)? {
        ctx.out.info(&format!("Device ID: {id}"));
        ctx.out.note(device_id::REGISTRATION_STEPS);
    }
    Ok(())
}
