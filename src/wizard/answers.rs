//! An answers file: `shred-secrets` and the tables of the options registered in
//! [`super::OPTIONS`], each read by its own type (`unit::Table`), refusing keys it
//! does not know, so a misspelt key or a value of the wrong type is an error
//! naming its line, table and key before any option is planned.
//! examples/appliance.toml shows every key (a test keeps the two in sync).

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::Path;

use serde::de::DeserializeSeed;
use zeroize::Zeroizing;

use super::unit::{Only, Parsed, Table, Unit};
use crate::context::Ctx;
use crate::error::{Error, Result};

/// The top-level key that is no table: after every option of the file applied,
/// overwrite and remove the secret files it names (password files, SSL keys):
/// for answers dropped on an appliance to be used once, as cloud-init does for
/// first boot.
const SHRED_SECRETS: &str = "shred-secrets";

/// A whole answers file; a table left out leaves its option alone.
#[derive(Default)]
pub struct Answers {
    pub shred_secrets: bool,
    tables: BTreeMap<&'static str, Parsed>,
}

impl std::fmt::Debug for Answers {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Answers")
            .field("shred_secrets", &self.shred_secrets)
            .field("tables", &self.tables.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Where the package installs the example answers file that shows every table and key.
pub const EXAMPLE: &str = "/usr/share/doc/edge-setup/examples/appliance.toml";

/// The registered tables, in the order their options apply.
pub fn units() -> impl Iterator<Item = &'static dyn Unit> {
    super::OPTIONS.iter().filter_map(|o| o.table)
}

impl Answers {
    /// Reads and checks an answers file; nothing is planned yet.
    pub fn load(ctx: &Ctx, path: &Path) -> Result<Answers> {
        let text = Zeroizing::new(ctx.sys.read_host_file(path)?);
        Answers::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Answers> {
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
        let document = toml::de::DeTable::parse(text).map_err(|e| describe(text, path, &e))?;
        let mut answers = Answers::default();
        let mut errors = Vec::new();
        let shred = Only::<bool>(SHRED_SECRETS, PhantomData).deserialize(toml::Deserializer::from(document.clone()));
        match shred {
            Ok(shred) => answers.shred_secrets = shred.unwrap_or(false),
            Err(e) => errors.push(e),
        }
        for unit in units() {
            match unit.parse(&document) {
                Ok(Some(parsed)) => {
                    answers.tables.insert(unit.name(), parsed);
                }
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        // the first in the file, as one parse of the whole file would report it
        match errors.into_iter().min_by_key(|e| e.span().map_or(0, |s| s.start)) {
            Some(e) => Err(describe(text, path, &e)),
            None => Ok(answers),
        }
    }

    /// `T`'s table, when the file has it.
    pub fn get<T: Table>(&self) -> Option<&T> {
        self.tables.get(T::NAME)?.typed.downcast_ref()
    }

    /// The file with `T`'s table set (answers edge-setup makes itself).
    pub fn with<T: Table>(mut self, table: T) -> Answers {
        self.tables.insert(T::NAME, Parsed::new(table));
        self
    }

    /// A table's keys with their values as its type read them (defaults included).
    pub fn values(&self, name: &str) -> Option<&toml::Value> {
        self.tables.get(name).map(|p| &p.values)
    }

    /// No option at all (an empty file, only comments, or only `shred-secrets`).
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The secret files the file names: password files and SSL keys.
    pub fn secret_files(&self) -> Vec<&Path> {
        let mut files: Vec<&Path> = units().flat_map(|u| u.secret_files(self)).collect();
        files.sort();
        files.dedup();
        files
    }
}

/// An error of the typed parse, at its place: `FILE:LINE:COL: [table] is not valid`.
fn describe(text: &str, path: &Path, e: &toml::de::Error) -> Error {
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
        (false, Some((t, _)))
            if ["invalid type", "missing field", "invalid value", "is set with"]
                .iter()
                .any(|m| message.contains(m)) =>
        {
            format!("{at}: {t} is not valid")
        }
        _ => format!("{at}: the answers file is not valid TOML"),
    };
    Error::bad_input(what)
        .why(message.replace("field", "key"))
        .hint(format!("see {EXAMPLE} for every table and key; nothing was changed"))
}

/// The tables and keys of `text` that the answers schema does not know, in order: where
/// (a byte offset), what (`unknown key 'urll' in [agent]`), and what was expected, with the
/// name likely meant. Nothing when the text is not TOML (the parse says so).
fn unknown_names(text: &str) -> Vec<(usize, String, String)> {
    let Ok(doc) = toml_edit::Document::parse(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let top = known_names(&[], false);
    for (name, item) in doc.as_table().iter() {
        let key = doc.as_table().key(name);
        if !top.iter().any(|k| k == name) {
            let what = match item {
                toml_edit::Item::Table(_) | toml_edit::Item::ArrayOfTables(_) => format!("unknown table [{name}]"),
                _ => format!("unknown key '{name}'"),
            };
            found.push((offset(key), what, expected(&top, name)));
            continue;
        }
        match item {
            toml_edit::Item::Table(t) => unknown_keys(&[name], &format!("[{name}]"), t, false, &mut found),
            toml_edit::Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    unknown_keys(&[name], &format!("[[{name}]] #{}", i + 1), t, true, &mut found);
                }
            }
            _ => {}
        }
    }
    found.sort_by_key(|(offset, ..)| *offset);
    found
}

/// The keys of the table at `path` (`["config", "vnc"]`) that its type does not know,
/// and those of the tables in it (`vnc.geometry` of `[config]`).
fn unknown_keys(
    path: &[&str],
    label: &str,
    table: &toml_edit::Table,
    list: bool,
    found: &mut Vec<(usize, String, String)>,
) {
    let known = known_names(path, list);
    if known.is_empty() && path.len() > 1 {
        // a table where the type takes a value: the typed parse names that
        return;
    }
    for (k, item) in table.iter() {
        let inner_path: Vec<&str> = path.iter().copied().chain([k]).collect();
        if !known.iter().any(|name| name == k) {
            // as written in the table: 'vnc.geomtry' in [config]
            let section = inner_path[1..inner_path.len() - 1]
                .iter()
                .map(|s| format!("{s}."))
                .collect::<String>();
            let known: Vec<String> = known.iter().map(|name| format!("{section}{name}")).collect();
            let dotted = format!("{section}{k}");
            found.push((
                offset(table.key(k)),
                format!("unknown key '{dotted}' in {label}"),
                expected(&known, &dotted),
            ));
        } else if let Some(inner) = item.as_table() {
            unknown_keys(&inner_path, label, inner, list, found);
        }
    }
}

fn offset(key: Option<&toml_edit::Key>) -> usize {
    key.and_then(toml_edit::Key::span).map_or(0, |s| s.start)
}

/// The names the schema allows at the top (an empty `path`) or in the table at `path`
/// (`[[name]]` when `list`), as the table's type lists them for a name it does not know.
fn known_names(path: &[&str], list: bool) -> Vec<String> {
    const PROBE: &str = "edge-setup-probe";
    let Some(name) = path.first() else {
        return std::iter::once(SHRED_SECRETS)
            .chain(units().map(|u| u.name()))
            .map(str::to_string)
            .collect();
    };
    let Some(unit) = units().find(|u| u.name() == *name) else {
        return Vec::new();
    };
    let header = path.join(".");
    let text = match list {
        false => format!("[{header}]\n{PROBE} = 0\n"),
        true => format!("[[{header}]]\n{PROBE} = 0\n"),
    };
    let parsed = toml::de::DeTable::parse(&text).and_then(|document| unit.parse(&document));
    let message = match parsed {
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
        let t = a.values("agent").unwrap();
        assert_eq!(t.get("url").and_then(|v| v.as_str()), Some("https://t.example.com"));
        assert_eq!(t.get("insecure").and_then(|v| v.as_bool()), Some(false));
        assert!(a.values("network").is_none());
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
