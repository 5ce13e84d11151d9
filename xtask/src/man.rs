//! The man pages: clap_mangen's page of each command with its value placeholders kept in
//! the SYNOPSIS and the version in the title, then what the README says about it: EXAMPLES
//! (the README's commands that start with the page's command), FILES (the README's "Files
//! written" table), EXIT STATUS (its "Exit codes"), ENVIRONMENT and SEE ALSO.

use roff::{Roff, bold, italic, roman};

type Result<T> = std::result::Result<T, String>;

/// What the pages take from the README.
pub struct Readme {
    /// Commands as the README shows them (`edge-setup ...`, `sudo edge-setup ...`), in order.
    examples: Vec<String>,
    /// Exit code and meaning.
    exit_codes: Vec<(String, String)>,
    /// File, owner and mode, content.
    files: Vec<(String, String, String)>,
}

impl Readme {
    pub fn parse(text: &str) -> Result<Readme> {
        let mut examples: Vec<String> = Vec::new();
        let mut in_code = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            // a heading names the command, it shows no use of it
            if !in_code && line.starts_with('#') {
                continue;
            }
            let candidates: Vec<String> = if in_code {
                vec![line.split(" #").next().unwrap_or_default().trim().to_string()]
            } else {
                line.split('`').skip(1).step_by(2).map(str::to_string).collect()
            };
            for c in candidates {
                let command = c.strip_prefix("sudo ").unwrap_or(&c);
                // the privileged part is sudo's to run, not a person's
                if command.starts_with("edge-setup ") && !c.contains("--system-part") && !examples.contains(&c) {
                    examples.push(c);
                }
            }
        }
        let exit_codes = table_rows(text, "## Exit codes")
            .into_iter()
            .filter(|r| r.len() == 2 && r[0].chars().all(|c| c.is_ascii_digit()))
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect::<Vec<_>>();
        let files = table_rows(text, "## Files written")
            .into_iter()
            .filter(|r| r.len() == 3 && r[0] != "file")
            .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
            .collect::<Vec<_>>();
        if examples.is_empty() || exit_codes.is_empty() || files.is_empty() {
            return Err("README.md has no commands, 'Exit codes' or 'Files written' table".to_string());
        }
        Ok(Readme {
            examples,
            exit_codes,
            files,
        })
    }
}

/// The cells of the table under `heading`, markdown's `code` marks and escapes removed.
fn table_rows(text: &str, heading: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip_while(|l| l.trim() != heading)
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with('|') && !l.starts_with("| ---"))
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .replace("\\|", "\u{1}")
                .split('|')
                .map(|c| c.trim().replace('`', "").replace('\u{1}', "|"))
                .collect()
        })
        .collect()
}

/// The SYNOPSIS with each option's value placeholder (`[--root DIR]`), as clap_mangen
/// drops them.
pub fn usage(cmd: &clap::Command, path: &str) -> String {
    let mut words = vec![path.to_string()];
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set() && !a.is_positional()) {
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => continue,
        };
        let takes_value = arg.get_action().takes_values();
        let value = match arg.get_value_names() {
            Some(names) if takes_value => format!(" {}", names.join(" ")),
            _ if takes_value => format!(" {}", arg.get_id().as_str().to_uppercase()),
            _ => String::new(),
        };
        words.push(if arg.is_required_set() {
            format!("{flag}{value}")
        } else {
            format!("[{flag}{value}]")
        });
    }
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set() && a.is_positional()) {
        let name = arg
            .get_value_names()
            .map_or_else(|| arg.get_id().as_str().to_uppercase(), |n| n.join(" "));
        words.push(if arg.is_required_set() {
            format!("<{name}>")
        } else {
            format!("[{name}]")
        });
    }
    if cmd.has_subcommands() {
        words.push("<COMMAND>".to_string());
    }
    words.join(" ")
}

/// The sections after clap_mangen's, for the page of `path` (`edge-setup vnc-user`).
pub fn extra_sections(readme: &Readme, path: &str, subcommands: &[String]) -> String {
    let mut roff = Roff::new();
    let top = path == "edge-setup";
    let examples: Vec<&String> = if top {
        // one per command, the first the README shows
        subcommands
            .iter()
            .filter_map(|sub| {
                let prefix = format!("edge-setup {sub}");
                readme.examples.iter().find(|e| starts_with_command(e, &prefix))
            })
            .collect()
    } else {
        readme
            .examples
            .iter()
            .filter(|e| starts_with_command(e, path))
            .take(10)
            .collect()
    };
    if !examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        for e in examples {
            roff.control("TP", []).text([bold(e.as_str())]);
            roff.text([roman("")]);
        }
    }
    let name = path.trim_start_matches("edge-setup").trim();
    let files: Vec<&(String, String, String)> = readme
        .files
        .iter()
        .filter(|(file, _, content)| top || mentions(content, name) || mentions(file, name))
        .collect();
    roff.control("SH", ["FILES"]);
    for (file, owner, content) in &files {
        roff.control("TP", []).text([italic(file.as_str())]);
        roff.text([roman(format!("{content} ({owner})"))]);
    }
    if !top {
        roff.control("PP", []);
        roff.text([
            roman("Every file edge-setup writes: "),
            bold("edge-setup"),
            roman("(1)."),
        ]);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in &readme.exit_codes {
        roff.control("TP", []).text([bold(code.as_str())]);
        roff.text([roman(meaning.as_str())]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    for (var, what) in ENVIRONMENT {
        roff.control("TP", []).text([bold(*var)]);
        roff.text([roman(*what)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut see: Vec<String> = if top {
        subcommands.iter().map(|s| format!("edge-setup-{s}(1)")).collect()
    } else {
        vec!["edge-setup(1)".to_string()]
    };
    see.extend(["vncserver(1)", "Xvnc(1)", "systemctl(1)", "sudoers(5)"].map(String::from));
    roff.text([roman(see.join(", "))]);
    roff.control("PP", []);
    roff.text([roman("The README: /usr/share/doc/edge-setup/README.md; every answers key: /usr/share/doc/edge-setup/examples/appliance.toml; the --json schema: /usr/share/edge-setup/edge-setup-output.schema.json.")]);
    roff.render()
}

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "NO_COLOR",
        "Set to anything: no colour. Colour goes only to a terminal, for stdout and stderr each.",
    ),
    ("TERM", "dumb: no colour."),
    (
        "SUDO_UID, SUDO_GID, SUDO_USER",
        "Who ran sudo: the user vnc-user acts for, and whose files are written as that user.",
    ),
    (
        "EDGE_SETUP_LOCK_TIMEOUT",
        "Seconds to wait for the package manager's lock (default 300).",
    ),
    (
        "https_proxy, http_proxy, no_proxy, all_proxy",
        "The proxy to the tenant, only when root itself runs edge-setup (not through sudo); else the configuration key c8y.proxy.",
    ),
    (
        "SSH_CONNECTION, SSH_CLIENT, SSH_TTY",
        "A session over SSH: setup network warns before it changes the address.",
    ),
    (
        "_EDGE_SETUP_COMPLETE",
        "Set by the completion scripts: edge-setup prints the candidates for the words typed and exits.",
    ),
];

/// The page with `.ad l` after its title line.
pub fn left_aligned(page: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(page);
    match text
        .find("\n.TH ")
        .and_then(|at| text[at + 1..].find('\n').map(|end| at + 1 + end + 1))
    {
        Some(after_title) => format!("{}.ad l\n{}", &text[..after_title], &text[after_title..]).into_bytes(),
        None => page.to_vec(),
    }
}

/// Whether `example` is `path` or one of its subcommands, with or without sudo.
fn starts_with_command(example: &str, path: &str) -> bool {
    let command = example.strip_prefix("sudo ").unwrap_or(example);
    let command = command
        .strip_prefix("edge-setup --json ")
        .map_or(command.to_string(), |c| format!("edge-setup {c}"));
    command == path || command.starts_with(&format!("{path} "))
}

/// Whether `text` names the command `name` (`vnc-user`, `setup network`).
fn mentions(text: &str, name: &str) -> bool {
    !name.is_empty() && text.contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_gives_examples_files_and_exit_codes() {
        let readme = Readme::parse(include_str!("../../README.md")).unwrap();
        assert!(
            readme.examples.iter().any(|e| e == "sudo edge-setup vnc"),
            "{:?}",
            readme.examples
        );
        assert_eq!(
            readme.exit_codes.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
            ["0", "1", "2", "3"]
        );
        assert!(
            readme
                .files
                .iter()
                .any(|(f, o, _)| f == "/etc/sudoers.d/edge-setup-vnc" && o == "root, 0440")
        );
        assert!(starts_with_command(
            "sudo edge-setup vnc-user --user admin",
            "edge-setup vnc-user"
        ));
        assert!(!starts_with_command("sudo edge-setup vnc-user", "edge-setup vnc"));
    }
}
