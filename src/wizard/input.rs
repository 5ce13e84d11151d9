//! Where an option's values come from: an answers file, a config.dat, or the
//! console. A bad value from a file falls back to a prompt on a terminal (after
//! saying why) and is an error naming the key and the rule otherwise.

use zeroize::Zeroizing;

use super::config_dat::ConfigDat;
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::prompt::Question;

/// One value an option needs.
pub struct Field<'a> {
    /// Its key in config.dat (the old post-installer's name).
    pub dat_key: &'a str,
    /// Its key in the option's table of the answers file.
    pub answers_key: &'a str,
    pub prompt: &'a str,
    pub secret: bool,
    /// Shown at the prompt and used when a file leaves the value out.
    pub default: Option<String>,
    pub validate: &'a dyn Fn(&str) -> Result<(), String>,
}

/// The values given in a file for one option.
pub enum Source<'a> {
    Console,
    ConfigDat(&'a ConfigDat),
    Answers(&'a toml::Table),
}

pub struct Input<'a> {
    pub source: Source<'a>,
    /// Whether prompts may fill in what the source lacks or gets wrong.
    pub interactive: bool,
    /// How the user gives this option's values without a prompt (for errors).
    pub noninteractive: &'a str,
    /// The file the values came from, for messages.
    pub origin: String,
}

impl Input<'_> {
    /// The raw value the source gives, decoded (config.dat keeps the password
    /// base64; an answers file names a private file holding the secret).
    fn given(&self, ctx: &Ctx, f: &Field) -> Option<Result<Zeroizing<String>, String>> {
        match &self.source {
            Source::Console => None,
            Source::ConfigDat(dat) if f.secret => dat.password(),
            Source::ConfigDat(dat) => dat.get(f.dat_key).map(|v| Ok(Zeroizing::new(v.to_string()))),
            Source::Answers(t) if f.secret => t.get(f.answers_key).map(|v| {
                let path = v.as_str().ok_or("give the path of a file that holds it (mode 0600)")?;
                ctx.sys
                    .read_host_secret(std::path::Path::new(path))
                    .map_err(|e| match e.why {
                        Some(why) => format!("{}: {why}", e.what),
                        None => e.what,
                    })
            }),
            Source::Answers(t) => t.get(f.answers_key).map(|v| {
                Ok(Zeroizing::new(match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }))
            }),
        }
    }

    /// A plain value of the answers table (not validated).
    pub fn answers_str(&self, key: &str) -> Option<String> {
        match &self.source {
            Source::Answers(t) => t.get(key).and_then(|v| v.as_str()).map(str::to_string),
            _ => None,
        }
    }

    /// A true/false key of the answers table (`false` when absent or from
    /// another source; the schema checked its type).
    pub fn answers_flag(&self, key: &str) -> bool {
        match &self.source {
            Source::Answers(t) => t.get(key).and_then(toml::Value::as_bool).unwrap_or(false),
            _ => false,
        }
    }

    /// A plain value of the config.dat (not validated).
    pub fn config_dat_str(&self, key: &str) -> Option<String> {
        match &self.source {
            Source::ConfigDat(d) => d.get(key).map(str::to_string),
            _ => None,
        }
    }

    fn key_name(&self, f: &Field) -> String {
        match self.source {
            Source::Answers(_) => format!("'{}'", f.answers_key),
            _ => format!("'{}'", f.dat_key),
        }
    }

    /// The field's value: from the source when valid, else asked (interactive)
    /// or an error (non-interactive).
    pub fn value(&self, ctx: &Ctx, f: &Field) -> Result<Zeroizing<String>> {
        let from_file = !matches!(self.source, Source::Console);
        let checked = self.given(ctx, f).map(|r| r.and_then(|v| (f.validate)(&v).map(|()| v)));
        match checked {
            Some(Ok(v)) => return Ok(v),
            Some(Err(rule)) if !self.interactive => {
                return Err(
                    Error::bad_input(format!("{}: {} is not valid", self.origin, self.key_name(f)))
                        .why(rule)
                        .hint("correct the value in the file and run the command again; nothing was changed"),
                );
            }
            Some(Err(rule)) => ctx.out.warn(&format!(
                "{} in {}: {rule}; please enter it",
                self.key_name(f),
                self.origin
            )),
            None if from_file => {
                // The default stands in for the missing key, so it is checked like a given value.
                match f.default.as_deref().map(|d| (d, (f.validate)(d))) {
                    Some((d, Ok(()))) => return Ok(Zeroizing::new(d.to_string())),
                    Some((_, Err(rule))) if !self.interactive => {
                        return Err(Error::bad_input(format!(
                            "{} has no {}, and the saved value is not valid",
                            self.origin,
                            self.key_name(f)
                        ))
                        .why(rule)
                        .hint("add the key to the file and run the command again; nothing was changed"));
                    }
                    Some((_, Err(rule))) => ctx.out.warn(&format!(
                        "{} is not in {} and the saved value is not valid: {rule}; please enter it",
                        self.key_name(f),
                        self.origin
                    )),
                    None => {}
                }
                if !self.interactive {
                    return Err(Error::bad_input(format!("{} has no {}", self.origin, self.key_name(f)))
                        .hint("add the key to the file and run the command again; nothing was changed"));
                }
            }
            None => {}
        }
        let q = Question {
            prompt: f.prompt,
            noninteractive: self.noninteractive,
        };
        if f.secret {
            ctx.prompt.secret(q, true, f.validate)
        } else {
            ctx.prompt.text(q, f.default.as_deref(), f.validate).map(Zeroizing::new)
        }
    }
}
