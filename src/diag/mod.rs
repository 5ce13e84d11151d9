//! `edge-setup diag`: the evidence for support, in one bundle.

use std::time::Duration;

/// How far back journal excerpts go (`--since`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since(pub Duration);

/// `30m`, `2h`, `1d`, `90s`: a number and a unit, at most 90 days.
pub fn parse_since(s: &str) -> Result<Since, String> {
    let bad = || format!("'{s}' is not a duration: give a number and a unit, like 30m, 2h or 1d");
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        "d" => n.checked_mul(86_400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if secs == 0 || secs > 90 * 86_400 {
        return Err(format!("'{s}' is out of range: from 1s to 90d"));
    }
    Ok(Since(Duration::from_secs(secs)))
}

mod bundle;
pub mod collect;
mod parts;
mod plugins;
mod redact;
pub mod upload;
