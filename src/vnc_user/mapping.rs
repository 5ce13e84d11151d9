//! The two files that map VNC displays to users, kept in agreement:
//! the appliance's own `user:N` file (what its documentation tells users to
//! read) and TigerVNC's `:N=user` file (what the systemd unit reads).
//!
//! Both are parsed line by line: comments and blank lines are kept as they
//! are, a line that is neither a comment nor an entry is an error naming file
//! and line, so edge-setup never rewrites a file it does not understand.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::tigervnc::MAX_DISPLAY;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `/opt/c8y/utilities/vnc-display-mapping`: `admin:1`.
    Appliance,
    /// `/etc/tigervnc/vncserver.users`: `:1=admin`.
    TigerVnc,
}

impl Format {
    fn render(self, user: &str, display: u32) -> String {
        match self {
            Format::Appliance => format!("{user}:{display}"),
            Format::TigerVnc => format!(":{display}={user}"),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Format::Appliance => "USER:N, like admin:1",
            Format::TigerVnc => ":N=USER, like :1=admin",
        }
    }

    /// An entry, or `None` for a comment or a blank line.
    fn parse_line(self, line: &str) -> Result<Option<(String, u32)>, String> {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            return Ok(None);
        }
        let (user, display) = match self {
            Format::Appliance => t.rsplit_once(':').map(|(u, d)| (u.trim(), d.trim())),
            Format::TigerVnc => t
                .strip_prefix(':')
                .and_then(|rest| rest.split_once('='))
                .map(|(d, u)| (u.trim(), d.trim())),
        }
        .ok_or_else(|| format!("expected {}", self.expected()))?;
        check_user_name(user).map_err(|why| format!("{why} (expected {})", self.expected()))?;
        let display = parse_display(display)?;
        Ok(Some((user.to_string(), display)))
    }
}

fn parse_display(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=MAX_DISPLAY).contains(&n) && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("'{s}' is not a display number from 1 to {MAX_DISPLAY}")),
    }
}

/// Whether a user name can be written in both files.
pub fn check_user_name(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("the user name is empty".into());
    }
    if user.starts_with('#')
        || user
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == '=')
    {
        return Err(format!(
            "'{}' cannot be written in a display mapping (no white space, ':', '=' or leading '#')",
            user.escape_debug()
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Entry { user: String, display: u32, text: String },
    Other(String),
}

/// One mapping file, its comments and blank lines included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingFile {
    format: Format,
    lines: Vec<Line>,
}

/// Where a mapping file's text came from, for messages.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl MappingFile {
    pub fn parse(format: Format, src: &Source) -> Result<MappingFile> {
        let mut lines = Vec::new();
        let mut users: BTreeMap<String, usize> = BTreeMap::new();
        let mut displays: BTreeMap<u32, usize> = BTreeMap::new();
        for (i, text) in src.text.lines().enumerate() {
            let n = i + 1;
            let entry = format.parse_line(text).map_err(|why| {
                Error::failure(format!(
                    "{}:{n}: cannot parse '{}'",
                    src.path.display(),
                    text.escape_debug()
                ))
                .why(why)
                .hint("fix or remove that line by hand (nothing was changed), then run the command again")
            })?;
            let Some((user, display)) = entry else {
                lines.push(Line::Other(text.to_string()));
                continue;
            };
            if let Some(first) = users.get(&user) {
                return Err(duplicate(
                    src.path,
                    n,
                    &format!("user {user} is listed twice (first on line {first})"),
                ));
            }
            if let Some(first) = displays.get(&display) {
                return Err(duplicate(
                    src.path,
                    n,
                    &format!("display :{display} is given twice (first on line {first})"),
                ));
            }
            users.insert(user.clone(), n);
            displays.insert(display, n);
            lines.push(Line::Entry {
                user,
                display,
                text: text.to_string(),
            });
        }
        Ok(MappingFile { format, lines })
    }

    pub fn empty(format: Format) -> MappingFile {
        MappingFile {
            format,
            lines: Vec::new(),
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Entry { text, .. } | Line::Other(text) => out.push_str(text),
            }
            out.push('\n');
        }
        out
    }

    /// Entries with their line numbers (1-based).
    pub fn entries(&self) -> impl Iterator<Item = (&str, u32, usize)> {
        self.lines.iter().enumerate().filter_map(|(i, l)| match l {
            Line::Entry { user, display, .. } => Some((user.as_str(), *display, i + 1)),
            Line::Other(_) => None,
        })
    }

    pub fn display_of(&self, user: &str) -> Option<u32> {
        self.entries().find(|(u, _, _)| *u == user).map(|(_, d, _)| d)
    }

    /// Sets the user's display: the line is rewritten in place, or appended.
    fn set(&mut self, user: &str, display: u32) {
        let text = self.format.render(user, display);
        for line in &mut self.lines {
            if let Line::Entry { user: u, .. } = line
                && u == user
            {
                *line = Line::Entry {
                    user: user.to_string(),
                    display,
                    text,
                };
                return;
            }
        }
        self.lines.push(Line::Entry {
            user: user.to_string(),
            display,
            text,
        });
    }

    fn remove(&mut self, user: &str) -> Option<u32> {
        let i = self
            .lines
            .iter()
            .position(|l| matches!(l, Line::Entry { user: u, .. } if u == user))?;
        match self.lines.remove(i) {
            Line::Entry { display, .. } => Some(display),
            Line::Other(_) => None,
        }
    }
}

fn duplicate(path: &Path, line: usize, why: &str) -> Error {
    Error::failure(format!("{}:{line}: {why}", path.display()))
        .hint("remove the extra line by hand (nothing was changed), then run the command again")
}

/// Both mapping files, in agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mappings {
    pub appliance: MappingFile,
    pub tigervnc: MappingFile,
}

impl Mappings {
    /// Parses both files and checks that they agree. An entry found in only
    /// one of them (a hand edit, an older tool) is added to the other; the
    /// returned notes say so. Contradicting entries are an error naming both lines.
    pub fn parse(appliance: &Source, tigervnc: &Source) -> Result<(Mappings, Vec<String>)> {
        let mut m = Mappings {
            appliance: MappingFile::parse(Format::Appliance, appliance)?,
            tigervnc: MappingFile::parse(Format::TigerVnc, tigervnc)?,
        };
        let disagree = |a_line: usize, b_line: usize, why: String| {
            Error::failure(format!(
                "{}:{a_line} and {}:{b_line} disagree: {why}",
                appliance.path.display(),
                tigervnc.path.display()
            ))
            .hint("make the two lines agree by hand (nothing was changed), then run the command again")
        };
        let index = |f: &MappingFile| {
            let by_user: BTreeMap<String, (u32, usize)> =
                f.entries().map(|(u, d, n)| (u.to_string(), (d, n))).collect();
            let by_display: BTreeMap<u32, (String, usize)> =
                f.entries().map(|(u, d, n)| (d, (u.to_string(), n))).collect();
            (by_user, by_display)
        };
        let (a_users, _) = index(&m.appliance);
        let (t_users, t_displays) = index(&m.tigervnc);
        for (user, (display, line)) in &a_users {
            if let Some((d, l)) = t_users.get(user)
                && d != display
            {
                return Err(disagree(
                    *line,
                    *l,
                    format!("user {user} has display :{display} in one and :{d} in the other"),
                ));
            }
            if let Some((other, l)) = t_displays.get(display)
                && other != user
            {
                return Err(disagree(
                    *line,
                    *l,
                    format!("display :{display} belongs to {user} in one and to {other} in the other"),
                ));
            }
        }
        let mut notes = Vec::new();
        for (user, (display, _)) in a_users.iter().filter(|(u, _)| !t_users.contains_key(*u)) {
            notes.push(format!(
                "{} lacks {user} on display :{display}; adding it",
                tigervnc.path.display()
            ));
            m.tigervnc.set(user, *display);
        }
        let mut missing: Vec<(&String, u32, usize)> = t_users
            .iter()
            .filter(|(u, _)| !a_users.contains_key(*u))
            .map(|(u, (d, n))| (u, *d, *n))
            .collect();
        missing.sort_by_key(|(_, _, line)| *line);
        for (user, display, _) in missing {
            notes.push(format!(
                "{} lacks {user} on display :{display}; adding it",
                appliance.path.display()
            ));
            m.appliance.set(user, display);
        }
        Ok((m, notes))
    }

    pub fn display_of(&self, user: &str) -> Option<u32> {
        self.appliance.display_of(user)
    }

    pub fn used(&self) -> BTreeSet<u32> {
        self.appliance.entries().map(|(_, d, _)| d).collect()
    }

    /// The lowest free display that `busy` does not exclude.
    pub fn allocate(&self, mut busy: impl FnMut(u32) -> bool) -> Option<u32> {
        let used = self.used();
        (1..=MAX_DISPLAY).find(|n| !used.contains(n) && !busy(*n))
    }

    /// Records `display` for `user` in both files.
    pub fn assign(&mut self, user: &str, display: u32) {
        self.appliance.set(user, display);
        self.tigervnc.set(user, display);
    }

    /// Removes the user from both files; the display it had.
    pub fn remove(&mut self, user: &str) -> Option<u32> {
        let a = self.appliance.remove(user);
        let b = self.tigervnc.remove(user);
        a.or(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: &str = "/opt/c8y/utilities/vnc-display-mapping";
    const T: &str = "/etc/tigervnc/vncserver.users";

    fn parse(a: &str, t: &str) -> Result<(Mappings, Vec<String>)> {
        Mappings::parse(
            &Source {
                path: Path::new(A),
                text: a,
            },
            &Source {
                path: Path::new(T),
                text: t,
            },
        )
    }

    #[test]
    fn comments_and_blank_lines_are_kept() {
        let a = "# displays\nadmin:1\n\n  operator : 3 \n";
        let t = "# TigerVNC User assignment\n#\n# :2=andrew\n:1=admin\n :3 = operator\n";
        let (mut m, notes) = parse(a, t).unwrap();
        assert!(notes.is_empty());
        assert_eq!(m.display_of("operator"), Some(3));
        assert_eq!(m.allocate(|_| false), Some(2));
        m.assign("bob", 2);
        assert_eq!(m.appliance.render(), "# displays\nadmin:1\n\n  operator : 3 \nbob:2\n");
        assert_eq!(
            m.tigervnc.render(),
            "# TigerVNC User assignment\n#\n# :2=andrew\n:1=admin\n :3 = operator\n:2=bob\n"
        );
        assert_eq!(m.remove("admin"), Some(1));
        assert_eq!(m.appliance.render(), "# displays\n\n  operator : 3 \nbob:2\n");
        assert_eq!(
            m.tigervnc.render(),
            "# TigerVNC User assignment\n#\n# :2=andrew\n :3 = operator\n:2=bob\n"
        );
    }

    #[test]
    fn garbled_lines_are_named_by_file_and_line() {
        for (a, t, needle) in [
            (
                "admin:1\nwhat is this\n",
                "",
                format!("{A}:2: cannot parse 'what is this'"),
            ),
            ("admin:0\n", "", format!("{A}:1:")),
            ("admin:100\n", "", format!("{A}:1:")),
            ("admin:1x\n", "", format!("{A}:1:")),
            (":1:2\n", "", format!("{A}:1:")),
            ("", "\n1=admin\n", format!("{T}:2: cannot parse '1=admin'")),
            ("", ":1=\n", format!("{T}:1:")),
            ("", ":1=a b\n", format!("{T}:1:")),
        ] {
            let err = parse(a, t).unwrap_err();
            assert!(err.to_string().contains(&needle), "{a:?} {t:?}: {err}");
            assert!(err.hint.as_deref().unwrap().contains("nothing was changed"));
        }
    }

    #[test]
    fn duplicates_and_contradictions_are_refused() {
        let err = parse("admin:1\nbob:1\n", "").unwrap_err();
        assert!(
            err.what
                .contains(&format!("{A}:2: display :1 is given twice (first on line 1)")),
            "{err}"
        );
        let err = parse("admin:1\nadmin:2\n", "").unwrap_err();
        assert!(err.what.contains("user admin is listed twice"), "{err}");
        let err = parse("admin:1\n", ":2=admin\n").unwrap_err();
        assert!(err.what.contains(&format!("{A}:1 and {T}:1 disagree")), "{err}");
        let err = parse("admin:1\n", ":1=bob\n").unwrap_err();
        assert!(
            err.what
                .contains("display :1 belongs to admin in one and to bob in the other"),
            "{err}"
        );
    }

    #[test]
    fn entries_missing_on_one_side_are_added() {
        let (m, notes) = parse("admin:1\n", ":4=bob\n").unwrap();
        assert_eq!(notes.len(), 2);
        assert_eq!(m.appliance.render(), "admin:1\nbob:4\n");
        assert_eq!(m.tigervnc.render(), ":4=bob\n:1=admin\n");
    }

    #[test]
    fn allocation_skips_busy_displays_and_ends_at_99() {
        let (mut m, _) = parse("", "").unwrap();
        assert_eq!(m.allocate(|n| n == 1 || n == 2), Some(3));
        for n in 1..=MAX_DISPLAY {
            m.assign(&format!("u{n}"), n);
        }
        assert_eq!(m.allocate(|_| false), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..120).prop_map(Op::Add),
            1 => (0u8..120).prop_map(Op::Remove),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Any sequence of adds and removes keeps displays unique, in range,
        /// and both files in agreement, through a render and parse round trip.
        #[test]
        fn add_remove_sequences_keep_both_files_in_agreement(
            ops in proptest::collection::vec(op(), 1..220),
            busy in proptest::collection::btree_set(1u32..=MAX_DISPLAY, 0..5),
        ) {
            let (mut m, _) = parse("# kept\n", "# TigerVNC\n\n").unwrap();
            let mut model: BTreeMap<String, u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Add(i) => {
                        let user = format!("user{i}");
                        match m.display_of(&user) {
                            Some(d) => prop_assert_eq!(model.get(&user), Some(&d)),
                            None => match m.allocate(|n| busy.contains(&n)) {
                                Some(d) => {
                                    prop_assert!(!busy.contains(&d));
                                    m.assign(&user, d);
                                    model.insert(user, d);
                                }
                                None => prop_assert_eq!(model.len() + busy.len(), MAX_DISPLAY as usize),
                            },
                        }
                    }
                    Op::Remove(i) => {
                        let user = format!("user{i}");
                        prop_assert_eq!(m.remove(&user), model.remove(&user));
                    }
                }
                let (a, t) = (m.appliance.render(), m.tigervnc.render());
                let (again, notes) = parse(&a, &t).unwrap();
                prop_assert!(notes.is_empty(), "{:?}", notes);
                let entries: BTreeMap<String, u32> =
                    again.appliance.entries().map(|(u, d, _)| (u.to_string(), d)).collect();
                prop_assert_eq!(&entries, &model);
                let tiger: BTreeMap<String, u32> =
                    again.tigervnc.entries().map(|(u, d, _)| (u.to_string(), d)).collect();
                prop_assert_eq!(&tiger, &model);
                prop_assert!(a.starts_with("# kept\n") && t.starts_with("# TigerVNC\n\n"));
            }
        }
    }

    const A_NEAR: &[&str] = &[
        "admin:1",
        "operator : 3",
        "# kept",
        "",
        "bob:0",
        "bob:100",
        "x:y",
        ":1",
        "admin:1:2",
    ];
    const T_NEAR: &[&str] = &[
        ":1=admin",
        " :3 = operator",
        "# TigerVNC",
        "",
        ":0=x",
        ":1=",
        "=admin",
        ":x=y",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::fuzz::CASES))]
        /// Any pair of mapping files parses, or the error names the file and its line.
        #[test]
        fn any_mapping_files_parse_or_name_file_and_line(
            a in crate::fuzz::text(A_NEAR),
            t in crate::fuzz::text(T_NEAR),
        ) {
            if let Err(e) = parse(&a, &t) {
                let (file, text) = if e.what.starts_with(A) { (A, &a) } else { (T, &t) };
                let rest = e.what.strip_prefix(file).and_then(|r| r.strip_prefix(':'));
                prop_assert!(rest.is_some(), "{}", e.what);
                let digits: String = rest.unwrap().chars().take_while(char::is_ascii_digit).collect();
                let line: usize = digits.parse().unwrap_or(0);
                prop_assert!((1..=crate::fuzz::line_count(text)).contains(&line), "{}", e.what);
            }
        }
    }
}
