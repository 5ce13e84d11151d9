//! Questions to the user. On a terminal they are dialoguer prompts that validate
//! as the user types; with `--yes` or without a terminal nothing is asked and the
//! error names the non-interactive way to give the answer, so nothing ever hangs.

use std::cell::RefCell;
use std::collections::VecDeque;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A question and the flag, key or file that answers it without a prompt.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    pub prompt: &'a str,
    pub noninteractive: &'a str,
}

pub type Validator<'a> = &'a dyn Fn(&str) -> Result<(), String>;

pub trait Prompter {
    fn text(&self, q: Question, default: Option<&str>, validate: Validator) -> Result<String>;
    /// Hidden input, asked twice when `confirm`; a mismatch asks again.
    fn secret(&self, q: Question, confirm: bool, validate: Validator) -> Result<Zeroizing<String>>;
    fn confirm(&self, q: Question, default: bool) -> Result<bool>;
    /// A numbered choice; `None` when the user leaves (Esc, Ctrl-D).
    fn choose(&self, q: Question, items: &[String]) -> Result<Option<usize>>;
    /// A menu number typed and confirmed with Enter; `None` on Esc or Ctrl-D.
    fn menu(&self, prompt: &str, numbers: &[u32]) -> Result<Option<u32>>;
    /// Waits for Enter on a terminal, so that what was printed is read before the screen
    /// moves on; nothing to wait for elsewhere.
    fn pause(&self, _prompt: &str) -> Result<()> {
        Ok(())
    }
    /// Whether questions reach a person.
    fn interactive(&self) -> bool;
}

/// Why no question can be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPromptReason {
    Yes,
    NoTerminal,
}

/// The prompter used with `--yes` or without a terminal: every question is an error.
pub struct NoPrompt(pub NoPromptReason);

impl NoPrompt {
    fn refuse(&self, q: Question) -> Error {
        let why = match self.0 {
            NoPromptReason::Yes => "--yes was given",
            NoPromptReason::NoTerminal => "standard input is not a terminal",
        };
        Error::bad_input(format!(
            "cannot ask '{}': {why}",
            q.prompt.trim_end_matches([':', '?', ' '])
        ))
        .hint(format!("give the answer without a prompt: {}", q.noninteractive))
    }
}

impl Prompter for NoPrompt {
    fn text(&self, q: Question, _: Option<&str>, _: Validator) -> Result<String> {
        Err(self.refuse(q))
    }
    fn secret(&self, q: Question, _: bool, _: Validator) -> Result<Zeroizing<String>> {
        Err(self.refuse(q))
    }
    fn confirm(&self, q: Question, _: bool) -> Result<bool> {
        Err(self.refuse(q))
    }
    fn choose(&self, q: Question, _: &[String]) -> Result<Option<usize>> {
        Err(self.refuse(q))
    }
    fn menu(&self, prompt: &str, _: &[u32]) -> Result<Option<u32>> {
        Err(self.refuse(Question {
            prompt,
            noninteractive: "a subcommand of edge-setup setup",
        }))
    }
    fn interactive(&self) -> bool {
        false
    }
}

/// dialoguer prompts on the terminal.
pub struct Terminal;

/// A prompt's or the terminal's own error (dialoguer's, or an I/O error).
fn terminal_error(e: impl std::fmt::Display) -> Error {
    Error::failure("cannot read the answer from the terminal").why(e)
}

impl Prompter for Terminal {
    /// Asked again after a refused answer with the reason, and with the default
    /// shown every time (dialoguer's own validation re-asks without it).
    fn text(&self, q: Question, default: Option<&str>, validate: Validator) -> Result<String> {
        let term = dialoguer::console::Term::stderr();
        loop {
            let mut input = dialoguer::Input::<String>::new()
                .with_prompt(q.prompt)
                .allow_empty(true);
            if let Some(d) = default {
                input = input.default(d.to_string());
            }
            let answer = input.interact_text().map_err(terminal_error)?.trim().to_string();
            match validate(&answer) {
                Ok(()) => return Ok(answer),
                Err(why) => {
                    let _ = term.write_line(&format!("  {why}"));
                }
            }
        }
    }

    fn secret(&self, q: Question, confirm: bool, validate: Validator) -> Result<Zeroizing<String>> {
        let mut p = dialoguer::Password::new()
            .with_prompt(q.prompt)
            .validate_with(|s: &String| validate(s));
        if confirm {
            p = p.with_confirmation("Verify", "The two entries do not match, try again");
        }
        p.interact().map(Zeroizing::new).map_err(terminal_error)
    }

    /// Waits for Enter, as `read`, apt and debconf do: a `y` taken alone would leave the
    /// Enter typed after it to answer the next question.
    fn confirm(&self, q: Question, default: bool) -> Result<bool> {
        dialoguer::Confirm::new()
            .with_prompt(q.prompt)
            .default(default)
            .wait_for_newline(true)
            .interact()
            .map_err(terminal_error)
    }

    fn choose(&self, q: Question, items: &[String]) -> Result<Option<usize>> {
        dialoguer::Select::new()
            .with_prompt(q.prompt)
            .items(items)
            .default(0)
            .interact_opt()
            .map_err(terminal_error)
    }

    fn menu(&self, prompt: &str, numbers: &[u32]) -> Result<Option<u32>> {
        use dialoguer::console::{Key, Term};
        let term = Term::stderr();
        let mut typed = String::new();
        let io = |e: std::io::Error| terminal_error(e);
        term.write_str(&format!("{prompt}: ")).map_err(io)?;
        loop {
            match term.read_key() {
                Ok(Key::Char(c)) if c.is_ascii_digit() && typed.len() < 3 => {
                    typed.push(c);
                    term.write_str(&c.to_string()).map_err(io)?;
                }
                Ok(Key::Backspace) if typed.pop().is_some() => term.clear_chars(1).map_err(io)?,
                Ok(Key::Enter) => match typed.parse::<u32>() {
                    Ok(n) if numbers.contains(&n) => {
                        term.write_line("").map_err(io)?;
                        return Ok(Some(n));
                    }
                    // said, not silently cleared: the person sees why nothing happened
                    _ => {
                        let first = numbers.iter().min().copied().unwrap_or_default();
                        let last = numbers.iter().max().copied().unwrap_or_default();
                        let what = if typed.is_empty() {
                            "Nothing typed".to_string()
                        } else {
                            format!("{typed} is not on the menu")
                        };
                        term.write_line("").map_err(io)?;
                        term.write_line(&format!(
                            "  {what}: type a number from {first} to {last} and Enter (Esc leaves)."
                        ))
                        .map_err(io)?;
                        term.write_str(&format!("{prompt}: ")).map_err(io)?;
                        typed.clear();
                    }
                },
                Ok(Key::Char(c)) if !c.is_control() && !c.is_ascii_digit() => {
                    term.write_line("").map_err(io)?;
                    term.write_line(&format!(
                        "  '{c}' is not a number: type a number from the menu and Enter (Esc leaves)."
                    ))
                    .map_err(io)?;
                    term.write_str(&format!("{prompt}: {typed}")).map_err(io)?;
                }
                Ok(Key::Escape) | Ok(Key::Char('\u{4}')) => {
                    term.write_line("").map_err(io)?;
                    return Ok(None);
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(io(e)),
            }
        }
    }

    fn pause(&self, prompt: &str) -> Result<()> {
        let term = dialoguer::console::Term::stderr();
        term.write_str(&format!("{prompt} ")).map_err(terminal_error)?;
        term.read_line().map(drop).map_err(terminal_error)
    }

    fn interactive(&self) -> bool {
        true
    }
}

/// Answers from a list, for tests of the flows behind prompts. An answer that
/// fails validation is skipped like a re-ask at the prompt; running out of
/// answers is an error.
#[derive(Default)]
pub struct Scripted {
    answers: RefCell<VecDeque<String>>,
    pub asked: RefCell<Vec<String>>,
}

impl Scripted {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(answers: I) -> Self {
        Scripted {
            answers: RefCell::new(answers.into_iter().map(Into::into).collect()),
            asked: RefCell::new(Vec::new()),
        }
    }

    fn next(&self, q: Question, validate: Validator) -> Result<String> {
        self.asked.borrow_mut().push(q.prompt.to_string());
        loop {
            let a = self
                .answers
                .borrow_mut()
                .pop_front()
                .ok_or_else(|| Error::bad_input(format!("no scripted answer for '{}'", q.prompt)))?;
            if validate(&a).is_ok() {
                return Ok(a);
            }
        }
    }
}

impl Prompter for Scripted {
    fn text(&self, q: Question, default: Option<&str>, validate: Validator) -> Result<String> {
        // Like dialoguer, an empty answer takes the default, which must pass too.
        let a = self.next(q, &|s| match default {
            Some(d) if s.is_empty() => validate(d),
            _ => validate(s),
        })?;
        Ok(if a.is_empty() {
            default.unwrap_or_default().to_string()
        } else {
            a
        })
    }
    fn secret(&self, q: Question, confirm: bool, validate: Validator) -> Result<Zeroizing<String>> {
        loop {
            let a = Zeroizing::new(self.next(q, validate)?);
            if !confirm || *self.next(q, &|_| Ok(()))? == *a {
                return Ok(a);
            }
        }
    }
    fn confirm(&self, q: Question, default: bool) -> Result<bool> {
        let a = self.next(q, &|s| match s {
            "" | "y" | "Y" | "n" | "N" => Ok(()),
            _ => Err("y or n".into()),
        })?;
        Ok(if a.is_empty() {
            default
        } else {
            a.eq_ignore_ascii_case("y")
        })
    }
    fn choose(&self, q: Question, items: &[String]) -> Result<Option<usize>> {
        let a = self.next(q, &|s| match s.parse::<usize>() {
            Ok(n) if n < items.len() => Ok(()),
            _ if s == "esc" => Ok(()),
            _ => Err("an index".into()),
        })?;
        Ok(a.parse().ok())
    }
    fn menu(&self, prompt: &str, numbers: &[u32]) -> Result<Option<u32>> {
        let q = Question {
            prompt,
            noninteractive: "",
        };
        let a = self.next(q, &|s| match s.parse::<u32>() {
            Ok(n) if numbers.contains(&n) => Ok(()),
            _ if s == "esc" => Ok(()),
            _ => Err("a menu number".into()),
        })?;
        Ok(a.parse().ok())
    }
    fn interactive(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Question = Question {
        prompt: "VNC password",
        noninteractive: "--password-stdin",
    };

    #[test]
    fn no_prompt_names_the_noninteractive_form() {
        let err = NoPrompt(NoPromptReason::NoTerminal)
            .secret(Q, true, &|_| Ok(()))
            .unwrap_err();
        assert_eq!(err.kind, crate::error::Kind::BadInput);
        assert!(err.to_string().contains("standard input is not a terminal"));
        assert!(err.to_string().contains("--password-stdin"));
        let err = NoPrompt(NoPromptReason::Yes).confirm(Q, true).unwrap_err();
        assert!(err.to_string().contains("--yes was given"));
    }

    #[test]
    fn scripted_reasks_on_invalid_and_mismatch() {
        let p = Scripted::new(["abc", "secret12", "other123", "secret12", "secret12"]);
        let v = |s: &str| {
            if s.len() >= 6 {
                Ok(())
            } else {
                Err("too short".to_string())
            }
        };
        let s = p.secret(Q, true, &v).unwrap();
        assert_eq!(s.as_str(), "secret12");
        assert_eq!(p.asked.borrow().len(), 4);
    }
}
