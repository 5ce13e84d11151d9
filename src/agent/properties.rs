//! The Edge agent's remote-connectivity file, beside the device ID:
//! `/usr/edge/properties/edge-agent/remote-connectivity.properties`.
//!
//! One `key=value` a line (spaces around `=` allowed), comments start with `#`
//! or `!`, blank lines are ignored. Keys: `enabled` (`true` or `false`,
//! required) and `url` (the tenant URL, required when enabled). Anything else
//! (an unknown or repeated key, a bad value) makes the file corrupt: it is
//! reported with path and line and never overwritten.

use std::path::Path;

use crate::config::TenantUrl;
use crate::error::{Error, Result};
use crate::system::System;
use crate::system::fs::{Change, FileSpec};

pub const PATH: &str = "/usr/edge/properties/edge-agent/remote-connectivity.properties";
const HEADER: &str = include_str!("../../templates/remote-connectivity.properties");

/// What the agent reads: whether to connect, and to which tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    pub enabled: bool,
    pub url: Option<TenantUrl>,
}

/// Why a file does not parse: the line (0 for the file as a whole) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt {
    pub line: usize,
    pub problem: String,
}

impl AgentConfig {
    pub fn parse(text: &str) -> std::result::Result<Self, Corrupt> {
        let corrupt = |line: usize, problem: String| Corrupt { line, problem };
        let mut enabled: Option<(usize, bool)> = None;
        let mut url: Option<(usize, TenantUrl)> = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(corrupt(n, format!("expected key=value, found '{line}'")));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "enabled" => {
                    if let Some((first, _)) = enabled {
                        return Err(corrupt(n, format!("enabled is set again (first on line {first})")));
                    }
                    let v = match value {
                        "true" => true,
                        "false" => false,
                        other => return Err(corrupt(n, format!("enabled must be true or false, not '{other}'"))),
                    };
                    enabled = Some((n, v));
                }
                "url" => {
                    if let Some((first, _)) = url {
                        return Err(corrupt(n, format!("url is set again (first on line {first})")));
                    }
                    let u = TenantUrl::parse_any(value).map_err(|rule| corrupt(n, format!("url: {rule}")))?;
                    url = Some((n, u));
                }
                other => {
                    return Err(corrupt(
                        n,
                        format!("unknown key '{other}' (the keys are enabled and url)"),
                    ));
                }
            }
        }
        let Some((line, enabled)) = enabled else {
            return Err(corrupt(0, "there is no enabled=true|false line".into()));
        };
        if enabled && url.is_none() {
            return Err(corrupt(line, "enabled=true needs a url= line".into()));
        }
        Ok(AgentConfig {
            enabled,
            url: url.map(|(_, u)| u),
        })
    }

    pub fn render(&self) -> String {
        let mut text = format!("{HEADER}enabled={}\n", self.enabled);
        if let Some(url) = &self.url {
            text.push_str(&format!("url={url}\n"));
        }
        text
    }
}

/// The file as it is: `None` when missing. A file that does not parse is an
/// error with path and line, and stays as it is.
pub fn read(sys: &System) -> Result<Option<(String, AgentConfig)>> {
    let Some(text) = sys.read_string(Path::new(PATH))? else {
        return Ok(None);
    };
    match AgentConfig::parse(&text) {
        Ok(cfg) => Ok(Some((text, cfg))),
        Err(c) => {
            let path = sys.host_path(Path::new(PATH));
            let at = if c.line > 0 {
                format!("{}:{}", path.display(), c.line)
            } else {
                path.display().to_string()
            };
            Err(Error::failure(format!("{at}: the Edge agent configuration is corrupt"))
                .why(c.problem)
                .hint(format!(
                    "fix it by hand (edge-setup does not overwrite a file it cannot read), or remove {} and run 'edge-setup remote-connectivity enable --url URL' again",
                    path.display()
                )))
        }
    }
}

/// Writes the file atomically (root, 0644: the agent and status readers need it, it holds no secret).
pub fn write(sys: &System, cfg: &AgentConfig) -> Result<Change> {
    sys.write(Path::new(PATH), cfg.render().as_bytes(), FileSpec::root(0o644))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> TenantUrl {
        TenantUrl::parse_any(s).unwrap()
    }

    #[test]
    fn render_parses_back() {
        for cfg in [
            AgentConfig {
                enabled: true,
                url: Some(url("https://t.example.com:8443")),
            },
            AgentConfig {
                enabled: false,
                url: Some(url("http://t.example.com")),
            },
            AgentConfig {
                enabled: false,
                url: None,
            },
        ] {
            assert_eq!(AgentConfig::parse(&cfg.render()).unwrap(), cfg);
        }
    }

    #[test]
    fn hand_written_forms_are_accepted() {
        let cfg = AgentConfig::parse("! note\n\n  enabled = true\r\nurl=t.example.com\n").unwrap();
        assert!(cfg.enabled);
        assert_eq!(cfg.url.unwrap().to_string(), "https://t.example.com");
    }

    #[test]
    fn corruption_names_the_line() {
        let err = |t: &str| AgentConfig::parse(t).unwrap_err();
        assert_eq!(err("enabled=true\nurl=https://a.b\nenabled=false\n").line, 3);
        assert!(err("enabled=yes\n").problem.contains("true or false"));
        assert_eq!(err("# c\nenabled=false\nurl=https://a.b/path\n").line, 3);
        assert!(err("enabled=false\nurl=https://a.b/path\n").problem.contains("path"));
        assert!(err("enabled=false\nproxy=x\n").problem.contains("unknown key 'proxy'"));
        assert_eq!(err("enabled=false\njunk\n").line, 2);
        assert_eq!(err("url=https://a.b\n").line, 0);
        let e = err("\nenabled=true\n");
        assert_eq!((e.line, e.problem.contains("url=")), (2, true));
    }

    const NEAR: &[&str] = &[
        "enabled=true",
        "enabled=false",
        "url=https://t.example.com",
        "url=http://x",
        "# comment",
        "",
        "enabled = yes",
        "url=",
        "proxy=x",
        "enabled=true\u{0}",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz::CASES))]
        /// Any text is a remote-connectivity.properties or an error naming one of its lines.
        #[test]
        fn any_text_parses_or_names_its_line(text in crate::fuzz::text(NEAR)) {
            if let Err(c) = AgentConfig::parse(&text) {
                // line 0: the file as a whole (it lacks a line)
                let whole = c.line == 0 && c.problem.contains("no enabled");
                proptest::prop_assert!(whole || (1..=crate::fuzz::line_count(&text)).contains(&c.line), "{}", c.line);
            }
        }
    }
}
