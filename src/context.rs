//! What a command runs with: the system seam, the output, the prompter, and
//! the facts of the calling process (uids, environment, stdin). Tests build one
//! with a temporary root and a fake runner, the way rustup swaps its process.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::BufRead;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::output::Out;
use crate::prompt::Prompter;
use crate::system::System;

pub struct Ctx {
    pub sys: System,
    pub out: Out,
    pub prompt: Box<dyn Prompter>,
    pub stdin: RefCell<Box<dyn BufRead>>,
    pub env: HashMap<String, String>,
    pub yes: bool,
}

impl Ctx {
    /// A context over `sys` (reporting to its output) that asks through `prompt`:
    /// empty stdin and environment, no `--yes`; the `with_*`
    /// methods set the rest.
    pub fn new(sys: System, prompt: Box<dyn Prompter>) -> Self {
        Ctx {
            out: sys.out().clone(),
            sys,
            prompt,
            stdin: RefCell::new(Box::new(std::io::empty())),
            env: HashMap::new(),
            yes: false,
        }
    }

    /// A context to plan in: the same system as a dry run whose output is
    /// discarded, no prompts, no stdin; what it reports is only its result.
    pub fn planning(&self) -> Ctx {
        let quiet = Out::new(Box::new(std::io::sink()), Box::new(std::io::sink()), false);
        Ctx {
            out: quiet.clone(),
            sys: self.sys.planning(quiet),
            prompt: Box::new(crate::prompt::NoPrompt(crate::prompt::NoPromptReason::Yes)),
            stdin: RefCell::new(Box::new(std::io::empty())),
            env: self.env.clone(),
            yes: true,
        }
    }

    pub fn with_stdin(mut self, stdin: Box<dyn BufRead>) -> Self {
        self.stdin = RefCell::new(stdin);
        self
    }

    /// The caller's environment (its SUDO_UID goes to the system).
    pub fn with_env<K: Into<String>, V: Into<String>>(mut self, env: impl IntoIterator<Item = (K, V)>) -> Self {
        self.env = env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let sudo_uid = self.env.get("SUDO_UID").and_then(|v| v.parse().ok());
        self.sys = self.sys.with_sudo_uid(sudo_uid);
        self
    }

    /// The real and effective uid of the calling process.
    pub fn with_ids(mut self, uid: u32, euid: u32) -> Self {
        self.sys = self.sys.with_ids(uid, euid);
        self
    }

    /// `--yes`: take defaults and never ask.
    pub fn with_yes(mut self, yes: bool) -> Self {
        self.yes = yes;
        self
    }

    /// Whether this runs in an SSH session.
    pub fn over_ssh(&self) -> bool {
        ["SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"]
            .iter()
            .any(|v| self.env.get(*v).is_some_and(|s| !s.is_empty()))
    }

    /// Whether questions reach a person (a terminal and no `--yes`).
    pub fn prompt_is_interactive(&self) -> bool {
        self.prompt.interactive()
    }

    pub fn config(&self) -> Result<Config> {
        Config::load(&self.sys)
    }

    /// The configuration, locked against other writers until it is dropped.
    pub fn config_for_update(&self) -> Result<Config> {
        Config::load_for_update(&self.sys)
    }

    /// Reads one line of at most `max` bytes from stdin (without its line
    /// ending); `None` at the end. A longer line is refused without reading
    /// more of it, so standard input cannot make edge-setup hold a huge buffer.
    pub fn read_stdin_line(&self, max: usize) -> Result<Option<zeroize::Zeroizing<String>>> {
        let mut line = zeroize::Zeroizing::new(Vec::with_capacity(max + 2));
        let mut stdin = self.stdin.borrow_mut();
        loop {
            let buf = stdin
                .fill_buf()
                .map_err(|e| Error::failure("cannot read standard input").why(e))?;
            if buf.is_empty() {
                break;
            }
            let (len, ends) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let take = len.min(max + 2 - line.len());
            line.extend_from_slice(&buf[..take]);
            stdin.consume(take);
            if ends && take == len {
                break;
            }
            if line.len() > max + 1 {
                return Err(
                    Error::bad_input(format!("a line of standard input is longer than {max} bytes"))
                        .hint("give one value per line, each as short as the command documents"),
                );
            }
        }
        if line.is_empty() {
            return Ok(None);
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.len() > max {
            return Err(
                Error::bad_input(format!("a line of standard input is longer than {max} bytes"))
                    .hint("give one value per line, each as short as the command documents"),
            );
        }
        let text = std::str::from_utf8(&line).map_err(|_| Error::bad_input("standard input is not UTF-8 text"))?;
        Ok(Some(zeroize::Zeroizing::new(text.to_string())))
    }
}
