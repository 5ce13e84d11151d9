//! edge-setup's own entries: install the VNC components, enable VNC for a user.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::unit::{self, Apply, At, Session};
use crate::commands::vnc_user::read_passwords;
use crate::config::{self, KeyValue, Listen};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::prompt::Question;
use crate::{remote_access, vnc, vnc_user};

/// `[vnc]`: install the components, optionally offline, and where sessions listen.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Table {
    #[serde(default)]
    pub install: bool,
    pub offline: Option<PathBuf>,
    pub listen: Option<String>,
}

impl unit::Table for Table {
    const NAME: &'static str = "vnc";

    fn plan(&self, _: &Ctx, at: &At, _: &mut Session) -> Result<Option<Box<dyn Apply>>> {
        Ok(prepare_install(self, &at.origin())?.map(|i| Box::new(i) as Box<dyn Apply>))
    }
}

impl Apply for Install {
    fn apply(self: Box<Self>, ctx: &Ctx, _: &mut Session) -> Result<()> {
        apply_install(ctx, &self)
    }
}

/// One `[[vnc-user]]` entry.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UserEntry {
    pub user: String,
    pub password_file: PathBuf,
}

/// `[[vnc-user]]`: the users to enable, in order.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Users(pub Vec<UserEntry>);

impl unit::Table for Users {
    const NAME: &'static str = "vnc-user";

    fn secret_files(&self) -> Vec<&Path> {
        self.0.iter().map(|u| u.password_file.as_path()).collect()
    }

    fn plan(&self, ctx: &Ctx, at: &At, _: &mut Session) -> Result<Option<Box<dyn Apply>>> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let origin = format!("{} [[{}]]", at.file, at.name);
        Ok(Some(Box::new(Planned(prepare_users(ctx, &self.0, &origin)?))))
    }
}

/// The `[[vnc-user]]` entries, checked.
struct Planned(Vec<User>);

impl Apply for Planned {
    fn apply(self: Box<Self>, ctx: &Ctx, _: &mut Session) -> Result<()> {
        apply_users(ctx, self.0)
    }
}

/// A `[vnc]` table that asks for the install, checked.
pub struct Install {
    offline: Option<PathBuf>,
    listen: Option<Listen>,
}

/// One `[[vnc-user]]` entry: a user and their password(s), read from a private file.
pub struct User {
    name: String,
    passwords: vnc_user::Passwords,
}

/// Checks a `[vnc]` table; `None` when it does not ask for the install.
pub fn prepare_install(t: &Table, origin: &str) -> Result<Option<Install>> {
    if !t.install {
        return Ok(None);
    }
    let offline = t.offline.clone().filter(|p| !p.as_os_str().is_empty());
    let listen = t
        .listen
        .as_deref()
        .map(|s| {
            Listen::parse(s).map_err(|rule| Error::bad_input(format!("{origin}: 'listen' is not valid")).why(rule))
        })
        .transpose()?;
    Ok(Some(Install { offline, listen }))
}

pub fn apply_install(ctx: &Ctx, install: &Install) -> Result<()> {
    if let Some(listen) = install.listen {
        let mut cfg = ctx.config_for_update()?;
        cfg.set(config::VNC_LISTEN, &listen);
        let change = cfg.save(&ctx.sys)?;
        // said once the lock is released
        drop(cfg);
        let step = ctx
            .out
            .step(&format!("Setting {} = {}", config::VNC_LISTEN, listen.render()));
        step.done(ctx.sys.change_word(change));
    }
    let request = vnc::Request::Install {
        offline: install.offline.clone(),
    };
    vnc::run(&ctx.sys, &request, crate::system::packages::lock_timeout(&ctx.env))
}

/// The `[[vnc-user]]` entries, each checked (the password file must be private).
pub fn prepare_users(ctx: &Ctx, entries: &[UserEntry], origin: &str) -> Result<Vec<User>> {
    let mut users = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        // "FILE [[vnc-user]] #2 (user NAME)"
        let name = e.user.clone();
        let entry = format!("{origin} #{} (user {name})", i + 1);
        if ctx.sys.users().by_name(&name)?.is_none() {
            return Err(Error::bad_input(format!("{entry}: there is no user '{name}'"))
                .hint("create the user first (useradd -m NAME), or correct the name"));
        }
        let path = &e.password_file;
        let key = format!("{entry} 'password-file' {}", path.display());
        let bytes = ctx
            .sys
            .read_host_private(path)
            .map_err(|e| Error::bad_input(format!("{key}: {}", e.what)))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::bad_input(format!("{key}: not a text file")))?;
        let mut lines = text.lines();
        let full = Zeroizing::new(lines.next().unwrap_or_default().to_string());
        let view_only = lines
            .next()
            .filter(|v| !v.is_empty())
            .map(|v| Zeroizing::new(v.to_string()));
        let passwords = vnc_user::Passwords::new(full, view_only).map_err(|why| {
            Error::bad_input(format!("{key}: {why}"))
                .hint("put 6 to 8 printable ASCII characters on line 1 (and an optional different view-only password on line 2)")
        })?;
        if users.iter().any(|u: &User| u.name == name) {
            return Err(Error::bad_input(format!("{entry}: user {name} appears twice")));
        }
        users.push(User { name, passwords });
    }
    Ok(users)
}

/// Enables each user as `vnc-user --user NAME` would, with the passwords the
/// entry's file gave.
pub fn apply_users(ctx: &Ctx, users: Vec<User>) -> Result<()> {
    for u in users {
        vnc_user::enable(
            &ctx.sys,
            Some(&u.name),
            || Ok(u.passwords),
            &remote_access::after_vnc_user,
        )?;
        // each user's display is a result of its own
        ctx.out.settle_result("vnc-user");
    }
    Ok(())
}

/// Menu entry: install the VNC components.
pub fn install_interactive(ctx: &Ctx) -> Result<()> {
    let request = vnc::Request::Install { offline: None };
    vnc::run(&ctx.sys, &request, crate::system::packages::lock_timeout(&ctx.env))
}

/// Menu entry: enable VNC for a user (asked; default the one who ran sudo).
pub fn user_interactive(ctx: &Ctx) -> Result<()> {
    let default = ctx
        .sys
        .sudo_uid()
        .and_then(|uid| ctx.sys.users().by_uid(uid).ok().flatten())
        .map(|u| u.name);
    let q = Question {
        prompt: "User to enable for VNC",
        noninteractive: "edge-setup vnc-user --user NAME --password-stdin",
    };
    let users = ctx.sys.users();
    let name = ctx.prompt.text(q, default.as_deref(), &|s| match users.by_name(s) {
        Ok(Some(_)) => Ok(()),
        _ => Err(format!("there is no user '{s}'")),
    })?;
    vnc_user::enable(
        &ctx.sys,
        Some(&name),
        || read_passwords(ctx, false),
        &remote_access::after_vnc_user,
    )
}
