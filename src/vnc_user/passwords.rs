//! The passwords: read from stdin or asked, checked by vnc-user's rules, zeroized.

use super::*;

/// The longest password line read from stdin (TigerVNC uses 8 characters).
pub(super) const PASSWORD_LINE_MAX: usize = 256;

/// The passwords, zeroized when dropped.
pub struct Passwords {
    full: Zeroizing<String>,
    view_only: Option<Zeroizing<String>>,
}

impl Passwords {
    /// Checks both by the rules of `vnc-user` (the refusal says which and why).
    pub fn new(full: Zeroizing<String>, view_only: Option<Zeroizing<String>>) -> Result<Passwords, String> {
        password::check(&full).map_err(|rule| format!("the VNC password is refused: {rule}"))?;
        if let Some(v) = &view_only {
            check_view_only(&full, v).map_err(|rule| format!("the view-only password is refused: {rule}"))?;
        }
        Ok(Passwords { full, view_only })
    }

    pub(super) fn file(&self) -> Zeroizing<Vec<u8>> {
        password::encode(&self.full, self.view_only.as_deref().map(String::as_str))
    }
}

pub(super) fn read_passwords(ctx: &Ctx, from_stdin: bool) -> Result<Passwords> {
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
        return Ok(Passwords { full, view_only });
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
    Ok(Passwords { full, view_only })
}

pub(super) fn check_view_only(full: &str, view_only: &str) -> Result<(), String> {
    password::check(view_only)?;
    if view_only == full {
        return Err("the view-only password must differ from the full-access one (VNC would grant full access)".into());
    }
    Ok(())
}
