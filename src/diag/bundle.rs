//! The bundle as it is gathered: files in memory under one top directory, what
//! each part and plugin found, and the `.tar.gz` they become.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::system::runner::{Cmd, Output};

/// How a part or a plugin ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Collected,
    Skipped,
    Error,
    /// `--dry-run`: what would be collected.
    Planned,
}

/// One part or plugin, in the manifest and in `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub name: String,
    /// A plugin's (or a plugin directory's) path on the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub status: Status,
    /// Why it was skipped or failed; with `--dry-run` what it would collect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Its files in the bundle, relative to the bundle's top directory.
    pub files: Vec<String>,
}

impl Report {
    pub fn new(name: &str, status: Status, why: Option<String>) -> Report {
        Report {
            name: name.to_string(),
            path: None,
            status,
            why,
            files: Vec::new(),
        }
    }

    /// How its step ends on stderr.
    pub fn outcome(&self) -> String {
        let word = match self.status {
            Status::Collected => "collected",
            Status::Skipped => "skipped",
            Status::Error => "error",
            Status::Planned => "planned",
        };
        match &self.why {
            Some(why) if self.status != Status::Collected => format!("{word}: {why}"),
            _ => word.to_string(),
        }
    }
}

/// Files for the bundle: each name (under the top directory) and content.
pub type Files = Vec<(String, Vec<u8>)>;

/// What one part found: its files, and why it has none or not all.
#[derive(Default)]
pub struct Found {
    pub files: Files,
    skipped: Option<String>,
    problems: Vec<String>,
}

impl Found {
    pub fn file(&mut self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.files.push((name.into(), bytes.into()));
    }

    /// Nothing of this part applies here (an image has no journal).
    pub fn skip(&mut self, why: impl Into<String>) {
        self.skipped = Some(why.into());
    }

    /// Something of this part failed; what else it found is still collected.
    pub fn problem(&mut self, why: impl Into<String>) {
        self.problems.push(why.into());
    }

    /// The report of part `name`, which ended with `result`: an error or a
    /// problem makes it an error, else a skip skipped (with what it left, a
    /// plugin's log), else any file collected.
    pub fn report(&self, name: &str, result: Result<()>) -> Report {
        let mut problems = self.problems.clone();
        if let Err(e) = result {
            problems.push(describe(&e));
        }
        let (status, why) = if !problems.is_empty() {
            (Status::Error, Some(problems.join("; ")))
        } else if let Some(why) = &self.skipped {
            (Status::Skipped, Some(why.clone()))
        } else if !self.files.is_empty() {
            (Status::Collected, None)
        } else {
            (Status::Skipped, Some("nothing to collect".to_string()))
        };
        Report {
            files: self.files.iter().map(|(n, _)| n.clone()).collect(),
            ..Report::new(name, status, why)
        }
    }
}

/// An error in one line: what, why and the next command.
pub fn describe(e: &Error) -> String {
    let mut s = e.line();
    if let Some(hint) = &e.hint {
        s.push_str(&format!(" (next: {hint})"));
    }
    s
}

/// A command and what it printed, as the bundle keeps it.
pub fn transcript(cmd: &Cmd, out: &Output) -> String {
    let mut text = format!("$ {cmd}\n{}", out.stdout);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    if !out.stderr.is_empty() {
        text.push_str(&format!("--- standard error ---\n{}", out.stderr));
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    text.push_str(&match (out.timed_out, out.status) {
        (true, _) => "--- stopped at its time limit ---\n".to_string(),
        (false, Some(code)) => format!("--- exit status {code} ---\n"),
        (false, None) => "--- killed by a signal ---\n".to_string(),
    });
    text
}

/// The files of the bundle, under its top directory.
pub struct Bundle {
    pub top: String,
    files: Files,
}

impl Bundle {
    pub fn new(top: &str) -> Bundle {
        Bundle {
            top: top.to_string(),
            files: Vec::new(),
        }
    }

    pub fn add(&mut self, name: String, bytes: Vec<u8>) {
        self.files.push((name, bytes));
    }

    /// The `.tar.gz`: the top directory, then each file (mode 0600, root's, `mtime`),
    /// with the directories on their way (0700).
    pub fn to_tar_gz(&self, mtime: u64) -> Result<Vec<u8>> {
        let fail = |e: std::io::Error| Error::failure("cannot pack the diagnostic bundle").why(e);
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        let mut dirs = std::collections::BTreeSet::new();
        let entry = |tar: &mut tar::Builder<_>, path: &str, bytes: &[u8], dir: bool| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(if dir {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            header.set_mode(if dir { 0o700 } else { 0o600 });
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(mtime);
            header.set_size(bytes.len() as u64);
            tar.append_data(&mut header, path, bytes)
        };
        entry(&mut tar, &format!("{}/", self.top), &[], true).map_err(fail)?;
        for (name, bytes) in &self.files {
            let mut parent = String::new();
            for part in name.split('/').take(name.split('/').count() - 1) {
                parent.push_str(part);
                parent.push('/');
                if dirs.insert(parent.clone()) {
                    entry(&mut tar, &format!("{}/{parent}", self.top), &[], true).map_err(fail)?;
                }
            }
            entry(&mut tar, &format!("{}/{name}", self.top), bytes, false).map_err(fail)?;
        }
        tar.into_inner().and_then(|gz| gz.finish()).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(bytes: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                let mode = e.header().mode().unwrap();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                (path, mode, data)
            })
            .collect()
    }

    #[test]
    fn the_tar_gz_holds_each_file_under_the_top_with_its_directories() {
        let mut b = Bundle::new("edge-setup-diag-x");
        b.add("manifest.json".into(), b"{}".to_vec());
        b.add("journal/ssh.service.log".into(), b"log\n".to_vec());
        b.add("journal/agent.log".into(), b"a\n".to_vec());
        let entries = unpack(&b.to_tar_gz(1_700_000_000).unwrap());
        let names: Vec<(&str, u32)> = entries.iter().map(|(p, m, _)| (p.as_str(), *m)).collect();
        assert_eq!(
            names,
            vec![
                ("edge-setup-diag-x/", 0o700),
                ("edge-setup-diag-x/manifest.json", 0o600),
                ("edge-setup-diag-x/journal/", 0o700),
                ("edge-setup-diag-x/journal/ssh.service.log", 0o600),
                ("edge-setup-diag-x/journal/agent.log", 0o600),
            ]
        );
        assert_eq!(entries[3].2, b"log\n");
    }

    #[test]
    fn a_part_with_a_problem_is_an_error_and_keeps_what_it_found() {
        let mut f = Found::default();
        assert_eq!(f.report("a", Ok(())).status, Status::Skipped);
        assert_eq!(f.report("a", Ok(())).why.as_deref(), Some("nothing to collect"));
        f.file("a.txt", "x");
        assert_eq!(f.report("a", Ok(())).status, Status::Collected);
        let mut skipped = Found::default();
        skipped.file("plugin.log", "x");
        skipped.skip("it skipped itself");
        let r = skipped.report("p", Ok(()));
        assert_eq!(
            (r.status, r.why.as_deref()),
            (Status::Skipped, Some("it skipped itself"))
        );
        assert_eq!(r.files, vec!["plugin.log"]);
        f.problem("b.txt: refused");
        let r = f.report("a", Err(Error::failure("c failed").why("gone").hint("do d")));
        assert_eq!(r.status, Status::Error);
        assert_eq!(r.why.as_deref(), Some("b.txt: refused; c failed: gone (next: do d)"));
        assert_eq!(r.files, vec!["a.txt"]);
        assert_eq!(r.outcome(), "error: b.txt: refused; c failed: gone (next: do d)");
    }

    #[test]
    fn a_transcript_says_how_the_command_ended() {
        let cmd = Cmd::new(crate::system::runner::Tool::Df).arg("-h");
        assert_eq!(
            transcript(&cmd, &Output::failed(1, "no")),
            "$ df -h\n--- standard error ---\nno\n--- exit status 1 ---\n"
        );
        let out = Output {
            timed_out: true,
            ..Output::ok("partial")
        };
        assert_eq!(
            transcript(&cmd, &out),
            "$ df -h\npartial\n--- stopped at its time limit ---\n"
        );
    }
}
