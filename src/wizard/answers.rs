//! The answers file's schema: one typed table per option, each refusing keys it
//! does not know, so a misspelt key or a value of the wrong type is an error
//! naming its line, table and key before any option is planned.
//! examples/appliance.toml shows every key (a test keeps the two in sync).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::context::Ctx;
use crate::error::{Error, Result};

/// A whole answers file; a table left out leaves its option alone.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Answers {
    /// After every option of the file applied, overwrite and remove the secret
    /// files it names (`secret_files`): for answers dropped on an appliance to
    /// be used once, as cloud-init does for first boot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shred_secrets: bool,
    pub network: Option<Network>,
    pub post_install: Option<PostInstall>,
    pub certificates: Option<Certificates>,
    pub tenant_password: Option<TenantPassword>,
    pub device_id: Option<DeviceId>,
    pub agent: Option<Agent>,
    pub vnc: Option<Vnc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vnc_user: Vec<VncUser>,
}

/// `[network]`, option 1. Values are checked when the option is planned, where
/// they meet the same rules as config.dat and the console.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Network {
    pub interface: Option<String>,
    pub ip: Option<String>,
    pub netmask: Option<String>,
    pub gateway: Option<String>,
    pub dns: Option<String>,
    pub stack: Option<String>,
    #[serde(default)]
    pub allow_remote: bool,
}

/// `[post-install]`, option 2; secrets only as the path of a private file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PostInstall {
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub domain: Option<String>,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub licence: Option<PathBuf>,
    pub apama_licence: Option<PathBuf>,
    pub cloud_url: Option<String>,
}

/// `[certificates]`, option 3.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Certificates {
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub licence: Option<PathBuf>,
    pub apama_licence: Option<PathBuf>,
}

/// `[tenant-password]`, option 6.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TenantPassword {
    pub password_file: Option<PathBuf>,
}

/// `[device-id]`, option 11: an `id`, or `generate = true`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DeviceId {
    pub id: Option<String>,
    #[serde(default)]
    pub generate: bool,
}

/// `[agent]`, option 7: `url = ""` disables remote management.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Agent {
    pub url: Option<String>,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub force: bool,
}

/// `[vnc]`, option 9.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Vnc {
    #[serde(default)]
    pub install: bool,
    pub offline: Option<PathBuf>,
    pub listen: Option<String>,
}

/// One `[[vnc-user]]` entry, option 10.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VncUser {
    pub user: String,
    pub password_file: PathBuf,
}

/// Where the package installs the example answers file that shows every table and key.
pub const EXAMPLE: &str = "/usr/share/doc/edge-setup/examples/appliance.toml";

impl Answers {
    /// Reads and checks an answers file; nothing is planned yet.
    pub fn load(ctx: &Ctx, path: &Path) -> Result<Answers> {
        let text = Zeroizing::new(ctx.sys.read_host_file(path)?);
        Answers::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Answers> {
        // every unknown table and key at once, each with its place and the name likely meant
        let unknown = unknown_names(text);
        if let Some((first, ..)) = unknown.first() {
            // at the first, as every error of the file: FILE:LINE:COLUMN
            let (line, col) = crate::config::line_col(text, *first);
            let (what, why) = match unknown.as_slice() {
                [(_, what, expected)] => (what.clone(), expected.clone()),
                all => (
                    format!("{} unknown tables and keys", all.len()),
                    all.iter()
                        .map(|(offset, what, expected)| {
                            format!("line {}: {what} ({expected})", crate::config::line_col(text, *offset).0)
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            };
            return Err(Error::bad_input(format!("{}:{line}:{col}: {what}", path.display()))
                .why(why)
                .hint(format!("see {EXAMPLE} for every table and key; nothing was changed")));
        }
        toml::from_str(text).map_err(|e: toml::de::Error| {
            let start = e.span().map_or(0, |s| s.start);
            let (line, col) = crate::config::line_col(text, start);
            let at = format!("{}:{line}:{col}", path.display());
            let message = e.message().to_string();
            let spelt = e
                .span()
                .and_then(|s| text.get(s))
                .map(|s| s.trim_matches(|c| c == '"' || c == '\''))
                .unwrap_or_default();
            let what = match (message.starts_with("unknown field"), enclosing_table(text, start)) {
                (true, None | Some((_, true))) => format!("{at}: unknown table [{spelt}]"),
                (true, Some((t, false))) => format!("{at}: unknown key '{spelt}' in {t}"),
                (false, Some((t, _))) if message.contains("invalid type") || message.contains("missing field") => {
                    format!("{at}: {t} is not valid")
                }
                _ => format!("{at}: the answers file is not valid TOML"),
            };
            Error::bad_input(what)
                .why(message.replace("field", "key"))
                .hint(format!("see {EXAMPLE} for every table and key; nothing was changed"))
        })
    }

    /// No option at all (an empty file, only comments, or only `shred-secrets`).
    pub fn is_empty(&self) -> bool {
        self.tables().is_empty() && self.vnc_user.is_empty()
    }

    /// The secret files the file names: password files and SSL keys.
    pub fn secret_files(&self) -> Vec<&Path> {
        let mut files = Vec::new();
        if let Some(t) = &self.post_install {
            files.extend(t.password_file.as_deref());
            files.extend(t.key.as_deref());
        }
        if let Some(t) = &self.certificates {
            files.extend(t.key.as_deref());
        }
        if let Some(t) = &self.tenant_password {
            files.extend(t.password_file.as_deref());
        }
        files.extend(self.vnc_user.iter().map(|u| u.password_file.as_path()));
        files.sort();
        files.dedup();
        files
    }

    /// Every table given, with its checked values by key, for the lookups the
    /// options share with config.dat and the console. `[[vnc-user]]`, an array
    /// of tables, is read from `vnc_user` instead.
    pub fn tables(&self) -> BTreeMap<String, toml::Table> {
        self.serialized()
            .into_iter()
            .filter_map(|(name, value)| match value {
                toml::Value::Table(t) => Some((name, t)),
                _ => None,
            })
            .collect()
    }

    fn serialized(&self) -> toml::Table {
        toml::Table::try_from(self).expect("the answers serialize as they were read")
    }
}

/// The tables and keys of `text` that the answers schema does not know, in order: where
/// (a byte offset), what (`unknown key 'urll' in [agent]`), and what was expected, with the
/// name likely meant. Nothing when the text is not TOML (the parse says so).
fn unknown_names(text: &str) -> Vec<(usize, String, String)> {
    let Ok(doc) = toml_edit::Document::parse(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut check = |known: &[String], key: Option<&toml_edit::Key>, name: &str, what: String| {
        if !known.iter().any(|k| k == name) {
            let offset = key.and_then(toml_edit::Key::span).map_or(0, |s| s.start);
            found.push((offset, what, expected(known, name)));
        }
    };
    let top = known_names(None);
    for (name, item) in doc.as_table().iter() {
        let key = doc.as_table().key(name);
        let what = match item {
            toml_edit::Item::Table(_) | toml_edit::Item::ArrayOfTables(_) => format!("unknown table [{name}]"),
            _ => format!("unknown key '{name}'"),
        };
        check(&top, key, name, what);
        if !top.iter().any(|k| k == name) {
            continue;
        }
        let tables: Vec<(String, &toml_edit::Table)> = match item {
            toml_edit::Item::Table(t) => vec![(format!("[{name}]"), t)],
            toml_edit::Item::ArrayOfTables(a) => a
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("[[{name}]] #{}", i + 1), t))
                .collect(),
            _ => Vec::new(),
        };
        let keys = known_names(Some((name, matches!(item, toml_edit::Item::ArrayOfTables(_)))));
        for (label, table) in tables {
            for (k, _) in table.iter() {
                check(&keys, table.key(k), k, format!("unknown key '{k}' in {label}"));
            }
        }
    }
    found.sort_by_key(|(offset, ..)| *offset);
    found
}

/// The names the schema allows at the top (`None`) or in a table (`[[name]]` when an array
/// of tables), as serde lists them for a name it does not know: always the structs' own.
fn known_names(table: Option<(&str, bool)>) -> Vec<String> {
    const PROBE: &str = "edge-setup-probe";
    let text = match table {
        None => format!("{PROBE} = 0\n"),
        Some((name, false)) => format!("[{name}]\n{PROBE} = 0\n"),
        Some((name, true)) => format!("[[{name}]]\n{PROBE} = 0\n"),
    };
    let message = match toml::from_str::<Answers>(&text) {
        Err(e) => e.message().to_string(),
        Ok(_) => return Vec::new(),
    };
    message
        .split_once("expected one of ")
        .or_else(|| message.split_once("expected "))
        .map(|(_, list)| list.split('`').skip(1).step_by(2).map(str::to_string).collect())
        .unwrap_or_default()
}

/// `expected one of a, b, c`, and the one likely meant when a name is close.
fn expected(known: &[String], name: &str) -> String {
    let list = format!("expected one of {}", known.join(", "));
    let closest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(k, name), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d);
    match closest {
        Some((_, k)) => format!("did you mean '{k}'? {list}"),
        None => list,
    }
}

/// The table a position of the file is in, as written (`[network]`,
/// `[[vnc-user]] #2`), and whether the position is on that table's header line;
/// `None` before the first header.
fn enclosing_table(text: &str, offset: usize) -> Option<(String, bool)> {
    let line_end = text.get(offset..)?.find('\n').map_or(text.len(), |i| offset + i);
    let upto = &text[..line_end];
    let header = upto
        .lines()
        .map(str::trim)
        .rfind(|l| l.starts_with('['))?
        .split('#')
        .next()?
        .trim()
        .to_string();
    let on_header = upto.lines().last().is_some_and(|l| l.trim_start().starts_with('['));
    if header.starts_with("[[") {
        let n = upto.lines().filter(|l| l.trim().starts_with(&header)).count();
        return Some((format!("{header} #{n}"), on_header));
    }
    Some((header, on_header))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> Error {
        Answers::parse(text, Path::new("/root/a.toml")).unwrap_err()
    }

    #[test]
    fn every_unknown_name_is_reported_at_once_with_the_one_likely_meant() {
        let e = error(
            "[agnet]\nurl = \"x\"\n[network]\nipaddr = \"1.2.3.4\"\n[[vnc-user]]\nuser = \"a\"\npasword-file = \"/p\"\n",
        );
        assert_eq!(e.what, "/root/a.toml:1:2: 3 unknown tables and keys");
        let why = e.why.unwrap();
        for part in [
            "line 1: unknown table [agnet] (did you mean 'agent'?",
            "line 4: unknown key 'ipaddr' in [network] (expected one of interface, ip,",
            "line 7: unknown key 'pasword-file' in [[vnc-user]] #1 (did you mean 'password-file'?",
        ] {
            assert!(why.contains(part), "{part:?} missing: {why}");
        }
        let e = error("[agent]\nurll = \"x\"\n");
        assert_eq!(e.what, "/root/a.toml:2:1: unknown key 'urll' in [agent]");
        assert!(
            e.why
                .unwrap()
                .starts_with("did you mean 'url'? expected one of url, insecure, force")
        );
    }

    #[test]
    fn unknown_tables_and_keys_are_named_with_their_line() {
        let e = error("[netwrk]\nip = \"1.2.3.4\"\n");
        assert_eq!(e.what, "/root/a.toml:1:2: unknown table [netwrk]");
        assert!(e.why.unwrap().contains("expected one of"));
        let e = error("# plant 7\n[network]\nipaddr = \"1.2.3.4\"\n");
        assert_eq!(e.what, "/root/a.toml:3:1: unknown key 'ipaddr' in [network]");
        let e = error(
            "[[vnc-user]]\nuser = \"a\"\npassword-file = \"/p\"\n[[vnc-user]]\nuser = \"b\"\npasword-file = \"/p\"\n",
        );
        assert_eq!(
            e.what,
            "/root/a.toml:6:1: unknown key 'pasword-file' in [[vnc-user]] #2"
        );
    }

    #[test]
    fn values_of_the_wrong_type_and_missing_keys_are_named() {
        let e = error("[vnc]\ninstall = \"yes\"\n");
        assert_eq!(e.what, "/root/a.toml:2:11: [vnc] is not valid");
        assert!(
            e.why
                .unwrap()
                .contains("invalid type: string \"yes\", expected a boolean")
        );
        let e = error("[[vnc-user]]\nuser = \"a\"\n");
        assert!(e.what.contains("[[vnc-user]] #1 is not valid"), "{}", e.what);
        assert!(e.why.unwrap().contains("missing key `password-file`"));
        assert!(error("[network\n").what.ends_with("the answers file is not valid TOML"));
    }

    #[test]
    fn a_table_reads_back_only_the_keys_given() {
        let a = Answers::parse("[agent]\nurl = \"https://t.example.com\"\n", Path::new("a")).unwrap();
        let tables = a.tables();
        let t = &tables["agent"];
        assert_eq!(t.get("url").and_then(|v| v.as_str()), Some("https://t.example.com"));
        assert_eq!(t.get("insecure").and_then(|v| v.as_bool()), Some(false));
        assert!(!tables.contains_key("network"));
        assert!(!a.is_empty());
        assert!(Answers::parse("", Path::new("a")).unwrap().is_empty());
        assert!(
            Answers::parse("shred-secrets = true\n", Path::new("a"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_secret_files_are_the_password_files_and_keys() {
        let a = Answers::parse(
            "shred-secrets = true\n[post-install]\npassword-file = \"/s/t\"\nkey = \"/s/k.key\"\ncertificate = \"/s/c.crt\"\n\
             [certificates]\nkey = \"/s/k.key\"\n[[vnc-user]]\nuser = \"a\"\npassword-file = \"/s/a\"\n",
            Path::new("a"),
        )
        .unwrap();
        assert!(a.shred_secrets);
        assert_eq!(
            a.secret_files(),
            [Path::new("/s/a"), Path::new("/s/k.key"), Path::new("/s/t")]
        );
    }

    const NEAR: &[&str] = &[
        "[network]",
        "[vnc]",
        "install = true",
        "[[vnc-user]]",
        "user = \"admin\"",
        "password-file = \"/s/a\"",
        "[agent]",
        "url = \"https://t.example.com\"",
        "shred-secrets = true",
        "[post-install]",
        "# a comment",
        "[device-id]",
        "id = \"edge-1\"",
        "x = [1, 2",
        "\"\"\"",
        "a.b.c = 1",
        "[tenant-password]",
        "key = 'k'",
        "[certificates]",
        "\u{e9}t\u{e9} = \"\u{1F600}\"",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(crate::fuzz::CASES))]
        /// Any text is an answers file or an error naming its file, line and column.
        #[test]
        fn any_text_parses_or_names_its_line(text in crate::fuzz::text(NEAR)) {
            if let Err(e) = Answers::parse(&text, Path::new("/a.toml")) {
                let at = e.what.strip_prefix("/a.toml:").expect("the file first");
                let line: usize = at.split(':').next().unwrap().parse().unwrap();
                proptest::prop_assert!((1..=crate::fuzz::line_count(&text)).contains(&line), "{}", e.what);
            }
        }
    }
}
