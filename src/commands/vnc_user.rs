//! `edge-setup vnc-user`: the arguments and the passwords (standard input or
//! the prompt) become a call of `crate::vnc_user`.

use zeroize::Zeroizing;

use crate::cli::VncUserArgs;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::prompt::Question;
use crate::remote_access;
use crate::vnc_user::password;
use crate::vnc_user::{self, PASSWORD_LINE_MAX, Part, Passwords, check_view_only};

/// `edge-setup vnc-user [--user NAME] [--password-stdin] [--remove]`, and the
/// privileged part (`--system-part`) it runs through sudo.
pub fn run(ctx: &Ctx, args: &VncUserArgs) -> Result<()> {
    if args.system_part {
        let part = if args.remove {
            Part::Remove
        } else {
            Part::Enable { restart: args.restart }
        };
        return vnc_user::system_part(&ctx.sys, part, &remote_access::after_vnc_user);
    }
    if args.remove {
        return vnc_user::remove(&ctx.sys, args.user.as_deref(), &remote_access::after_vnc_user);
    }
    vnc_user::enable(
        &ctx.sys,
        args.user.as_deref(),
        || read_passwords(ctx, args.password_stdin),
        &remote_access::after_vnc_user,
    )
}

/// The passwords from standard input (`--password-stdin`) or asked twice each.
pub fn read_passwords(ctx: &Ctx, from_stdin: bool) -> Result<Passwords> {
    const NONINTERACTIVE: &str = "--password-stdin (the password on the first line of standard input, an optional view-only password on the second)";
    if from_stdin {
        let full = ctx.read_stdin_line(PASSWORD_LINE_MAX)?.ok_or_else(|| {
            Error::bad_input("--password-stdin was given but standard input is empty")
                .hint("give the password on the first line: printf '%s\\n' \"$PASSWORD\" | edge-setup vnc-user --password-stdin")
        })?;
        password::check(&full)
            .map_err(|rule| Error::bad_input("the VNC password on standard input was refused").why(rule))?;
        let view_only = ctx.read_stdin_line(PASSWORD_LINE_MAX)?.filter(|v| !v.is_empty());
        if let Some(v) = &view_only {
            check_view_only(&full, v).map_err(|rule| {
                Error::bad_input("the view-only password (line 2 of standard input) was refused").why(rule)
            })?;
        }
        return checked(full, view_only);
    }
    let full = ctx.prompt.secret(
        Question {
            prompt: "VNC password",
            noninteractive: NONINTERACTIVE,
        },
        true,
        &password::check,
    )?;
    let wants_view_only = ctx.prompt.confirm(
        Question {
            prompt: "Would you like to enter a view-only password?",
            noninteractive: NONINTERACTIVE,
        },
        false,
    )?;
    let view_only = if wants_view_only {
        Some(ctx.prompt.secret(
            Question {
                prompt: "View-only password",
                noninteractive: NONINTERACTIVE,
            },
            true,
            &|v| check_view_only(&full, v),
        )?)
    } else {
        None
    };
    checked(full, view_only)
}

/// Passwords the reader checked already; the type checks them once more.
fn checked(full: Zeroizing<String>, view_only: Option<Zeroizing<String>>) -> Result<Passwords> {
    Passwords::new(full, view_only).map_err(Error::bad_input)
}
