//! `edge-setup config get | set | unset | list`.

use std::path::Path;

use crate::cli::{ConfigAction, ConfigArgs};
use crate::config::{KEYS, KeyDef, Storage, key, validate_value};
use crate::context::Ctx;
use crate::device_id::{self, DeviceId};
use crate::error::{Error, Result};

/// `edge-setup config get|set|unset|list`.
pub fn run(ctx: &Ctx, args: &ConfigArgs) -> Result<()> {
    match &args.action {
        ConfigAction::Get { key: name } => {
            let def = key(name)?;
            let cfg = ctx.config()?;
            match cfg.show(&ctx.sys, def.name)? {
                Some(v) => {
                    ctx.out.result(serde_json::json!({ "key": def.name, "value": v }));
                    ctx.out.data(&v);
                    Ok(())
                }
                None => Err(Error::missing_key(def.name)),
            }
        }
        ConfigAction::Set { key: name, value } => {
            let def = key(name)?;
            let normalized = validate_value(def, value)?;
            // the configuration and the device ID are root's files
            ctx.sys.require_root(&format!(
                "config set {} {}",
                def.name,
                crate::system::runner::shell_quote(value)
            ))?;
            set_keys(ctx, &[(def, normalized)])
        }
        ConfigAction::Unset { key: name } => {
            let def = key(name)?;
            ctx.sys.require_root(&format!("config unset {}", def.name))?;
            let step = ctx.out.step(&format!("Unsetting {}", def.name));
            let changed = match def.storage {
                Storage::DeviceIdFile => ctx.sys.remove(Path::new(device_id::PATH))?,
                Storage::Toml => {
                    let mut cfg = ctx.config_for_update()?;
                    let removed = cfg.unset_raw(def);
                    if removed {
                        cfg.save(&ctx.sys)?;
                    }
                    removed
                }
            };
            step.done(if changed {
                ctx.sys.word("removed", "would be removed")
            } else {
                "was not set"
            });
            Ok(())
        }
        ConfigAction::List { all, doc } => {
            let cfg = ctx.config()?;
            let mut listed = serde_json::Map::new();
            for def in KEYS {
                if *doc {
                    listed.insert(
                        def.name.to_string(),
                        serde_json::json!({"doc": def.doc, "example": def.example, "default": def.default}),
                    );
                    ctx.out.data(&format!(
                        "{}\n    {}\n    example: edge-setup config set {} {}",
                        def.name, def.doc, def.name, def.example
                    ));
                    if let Some(d) = def.default.filter(|d| !d.is_empty()) {
                        ctx.out.data(&format!("    default: {d}"));
                    }
                    continue;
                }
                let set = match def.storage {
                    Storage::Toml => cfg.is_set(def.name),
                    Storage::DeviceIdFile => device_id::read(&ctx.sys)?.is_some(),
                };
                if set || *all {
                    let value = cfg.show(&ctx.sys, def.name)?.unwrap_or_default();
                    ctx.out.data(&format!("{}={value}", def.name));
                    listed.insert(def.name.to_string(), serde_json::json!(value));
                }
            }
            ctx.out.result(serde_json::json!({ "keys": listed }));
            Ok(())
        }
    }
}

/// Sets validated values (`validate_value`): the device ID in its file, the others
/// in one read-modify-write of edge-setup.toml under its lock, said once the lock
/// is released (a reader of a full pipe must not hold the file up).
pub fn set_keys(ctx: &Ctx, values: &[(&'static KeyDef, String)]) -> Result<()> {
    let mut said = Vec::new();
    let in_file: Vec<_> = values.iter().filter(|(d, _)| d.storage == Storage::Toml).collect();
    if !in_file.is_empty() {
        let mut cfg = ctx.config_for_update()?;
        let mut same = Vec::new();
        for (def, normalized) in &in_file {
            // a damaged value is replaced, not compared
            let now = cfg.show(&ctx.sys, def.name).ok().flatten();
            same.push(cfg.is_set(def.name) && now.as_deref() == Some(normalized.as_str()));
            cfg.set_raw(def, normalized);
        }
        let word = ctx.sys.change_word(cfg.save(&ctx.sys)?);
        drop(cfg);
        for ((def, normalized), same) in in_file.into_iter().zip(same) {
            said.push((
                format!("Setting {} = {normalized}", def.name),
                if same { "unchanged" } else { word },
            ));
        }
    }
    for (_, normalized) in values.iter().filter(|(d, _)| d.storage == Storage::DeviceIdFile) {
        let id = DeviceId::parse(normalized).expect("validated before");
        device_id::store(&ctx.sys, &id)?;
    }
    for (what, word) in said {
        ctx.out.step(&what).done(word);
    }
    Ok(())
}
