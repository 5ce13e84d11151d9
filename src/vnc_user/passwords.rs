//! The passwords, checked by vnc-user's rules, zeroized.

use super::*;

/// The longest password line read from stdin (TigerVNC uses 8 characters).
pub const PASSWORD_LINE_MAX: usize = 256;

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

/// The view-only password's rules: a valid password, different from the full one.
pub fn check_view_only(full: &str, view_only: &str) -> Result<(), String> {
    password::check(view_only)?;
    if view_only == full {
        return Err("the view-only password must differ from the full-access one (VNC would grant full access)".into());
    }
    Ok(())
}
