//! Option 11, Show/set the device ID, and the `[device-id]` table of an answers
//! file; the work is `crate::device_id`'s.

use serde::{Deserialize, Serialize};

use super::unit::{self, Apply, At, Session};
use crate::context::Ctx;
use crate::device_id::DeviceId;
use crate::error::{Error, Result};
use crate::prompt::Question;

/// `[device-id]`: an `id`, or `generate = true`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Table {
    pub id: Option<String>,
    #[serde(default)]
    pub generate: bool,
}

impl unit::Table for Table {
    const NAME: &'static str = "device-id";

    fn plan(&self, ctx: &Ctx, at: &At, _: &mut Session) -> Result<Option<Box<dyn Apply>>> {
        Ok(Some(Box::new(Planned(plan(self, &at.origin(), ctx.sys.is_image())?))))
    }
}

/// Option 11 planned: what to set, or nothing (said so when applied).
struct Planned(Option<Plan>);

impl Apply for Planned {
    fn apply(self: Box<Self>, ctx: &Ctx, _: &mut Session) -> Result<()> {
        apply(ctx, self.0)
    }
}

/// What a `[device-id]` table asks for.
pub enum Plan {
    Set(DeviceId),
    Generate,
}

/// Checks a `[device-id]` table (`id`, or `generate = true`) without changing anything.
/// In an image (`image`) only an explicit `id` is taken: a derived one would be every clone's.
pub fn plan(t: &Table, origin: &str, image: bool) -> Result<Option<Plan>> {
    if let Some(s) = &t.id {
        return DeviceId::parse(s)
            .map(|id| Some(Plan::Set(id)))
            .map_err(|rule| Error::bad_input(format!("{origin}: 'id' is not valid")).why(rule));
    }
    if t.generate && image {
        return Err(
            Error::bad_input(format!("{origin}: generate = true is refused in an image"))
                .why("a device ID derived in an image would be the same on every appliance made from it")
                .hint("apply this table on each appliance, or set its own id = \"...\" for this image"),
        );
    }
    Ok(t.generate.then_some(Plan::Generate))
}

/// Sets (or generates, when none is set) the ID a table asked for.
pub fn apply(ctx: &Ctx, plan: Option<Plan>) -> Result<()> {
    ctx.sys.require_root("setup device-id")?;
    match plan {
        Some(Plan::Set(id)) => {
            crate::device_id::store(&ctx.sys, &id)?;
        }
        Some(Plan::Generate) => {
            if let Some(existing) = crate::device_id::read(&ctx.sys)? {
                ctx.out.info(&format!(
                    "The device ID is already set ({existing}); nothing to change."
                ));
            } else {
                let id = crate::device_id::derive(&ctx.sys)?;
                crate::device_id::store(&ctx.sys, &id)?;
            }
        }
        None => ctx.out.info("The [device-id] table asks for nothing."),
    }
    Ok(())
}

/// Menu entry: show the ID, offer to set or generate one.
pub fn interactive(ctx: &Ctx) -> Result<()> {
    let existing = crate::device_id::read(&ctx.sys)?;
    match &existing {
        Some(id) => ctx.out.info(&format!("Device ID: {id}")),
        None => ctx.out.info("No device ID is set."),
    }
    let q = Question {
        prompt: "Set a new device ID",
        noninteractive: "edge-setup device-id set ID",
    };
    if !ctx.prompt.confirm(q, false)? {
        return Ok(());
    }
    ctx.sys.require_root("setup device-id")?;
    let q = Question {
        prompt: "Device ID (leave blank to derive one from this machine)",
        noninteractive: "edge-setup device-id set ID",
    };
    let answer = ctx.prompt.text(q, Some(""), &|s| {
        if s.is_empty() {
            Ok(())
        } else {
            DeviceId::parse(s).map(drop)
        }
    })?;
    let id = if answer.is_empty() {
        // A blank answer is easily an Enter meant for something else: it replaces a set ID
        // only when asked once more.
        if let Some(old) = existing {
            let prompt = format!("Replace the device ID {old} with one derived from this machine");
            let q = Question {
                prompt: &prompt,
                noninteractive: "edge-setup device-id generate --force",
            };
            if !ctx.prompt.confirm(q, false)? {
                ctx.out.info(&format!("The device ID stays {old}."));
                return Ok(());
            }
        }
        crate::device_id::derive(&ctx.sys)?
    } else {
        DeviceId::parse(&answer).expect("validated at the prompt")
    };
    crate::device_id::store(&ctx.sys, &id)?;
    ctx.out.note(crate::device_id::REGISTRATION_STEPS);
    Ok(())
}
