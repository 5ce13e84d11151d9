//! What the user sees. Data a command was asked for goes to stdout; steps,
//! notes, warnings and errors go to stderr, so `id=$(edge-setup device-id)` works.
//!
//! Steps print in the manner of `tedge connect`: `Writing the device ID ... done`.
//! On a terminal an overall progress bar (indicatif) counts the steps of a run;
//! without one, plain lines only.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone)]
pub struct Out(Rc<Inner>);

struct Inner {
    stdout: RefCell<Box<dyn Write>>,
    stderr: RefCell<Box<dyn Write>>,
    terminal: bool,
    /// A step line is printed without its newline, waiting for the outcome.
    open_step: Cell<bool>,
    bar: RefCell<Option<ProgressBar>>,
}

impl Out {
    pub fn new(stdout: Box<dyn Write>, stderr: Box<dyn Write>, terminal: bool) -> Self {
        Out(Rc::new(Inner {
            stdout: RefCell::new(stdout),
            stderr: RefCell::new(stderr),
            terminal,
            open_step: Cell::new(false),
            bar: RefCell::new(None),
        }))
    }

    /// Data the user asked for, on stdout.
    pub fn data(&self, line: &str) {
        self.close_step();
        self.with_bar_hidden(|| {
            let mut w = self.0.stdout.borrow_mut();
            let _ = writeln!(w, "{line}");
            let _ = w.flush();
        });
    }

    /// A line of information on stderr.
    pub fn info(&self, line: &str) {
        self.close_step();
        self.err_line(line);
    }

    pub fn note(&self, line: &str) {
        self.info(&format!("note: {line}"));
    }

    pub fn warn(&self, line: &str) {
        self.info(&format!("warning: {line}"));
    }

    pub fn error(&self, err: &crate::error::Error) {
        self.close_step();
        self.finish_bar();
        self.err_line(&format!("error: {err}"));
    }

    /// Starts a step; finish it with `Step::done` (or let the error path print).
    pub fn step(&self, what: &str) -> Step {
        self.close_step();
        if let Some(bar) = self.0.bar.borrow().as_ref() {
            bar.set_message(what.to_string());
        }
        self.with_bar_hidden(|| {
            let mut w = self.0.stderr.borrow_mut();
            let _ = write!(w, "{what} ...");
            let _ = w.flush();
        });
        self.0.open_step.set(true);
        Step { out: self.clone() }
    }

    /// Shows an overall progress bar over `steps` steps, on a terminal only.
    pub fn progress(&self, steps: u64) {
        if !self.0.terminal {
            return;
        }
        let bar = ProgressBar::new(steps);
        bar.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} {wide_msg}").expect("the template is valid"),
        );
        *self.0.bar.borrow_mut() = Some(bar);
    }

    pub fn finish_bar(&self) {
        if let Some(bar) = self.0.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }

    fn close_step(&self) {
        if self.0.open_step.replace(false) {
            self.with_bar_hidden(|| {
                let _ = writeln!(self.0.stderr.borrow_mut());
            });
        }
    }

    fn err_line(&self, line: &str) {
        self.with_bar_hidden(|| {
            let mut w = self.0.stderr.borrow_mut();
            let _ = writeln!(w, "{line}");
            let _ = w.flush();
        });
    }

    fn with_bar_hidden(&self, f: impl FnOnce()) {
        match self.0.bar.borrow().as_ref() {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

/// A step in progress.
#[must_use = "finish a step with done()"]
pub struct Step {
    out: Out,
}

impl Step {
    /// Ends the step with its outcome (`done`, `unchanged`, `skipped: ...`).
    pub fn done(self, outcome: &str) {
        let out = &self.out;
        if let Some(bar) = out.0.bar.borrow().as_ref() {
            bar.inc(1);
        }
        if out.0.open_step.replace(false) {
            out.with_bar_hidden(|| {
                let mut w = out.0.stderr.borrow_mut();
                let _ = writeln!(w, " {outcome}");
                let _ = w.flush();
            });
        } else {
            out.err_line(&format!("  ... {outcome}"));
        }
    }
}

/// A writer that keeps what is written, for tests.
#[derive(Clone, Default)]
pub struct Capture(Rc<RefCell<Vec<u8>>>);

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.borrow()).into_owned()
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_end_on_their_own_line_or_after_details() {
        let (o, e) = (Capture::default(), Capture::default());
        let out = Out::new(Box::new(o.clone()), Box::new(e.clone()), false);
        out.step("Writing the device ID").done("done");
        let s = out.step("Restarting the agent");
        out.info("would run: systemctl restart edge-agent");
        s.done("planned");
        out.data("edge-1234");
        assert_eq!(
            e.text(),
            "Writing the device ID ... done\nRestarting the agent ...\nwould run: systemctl restart edge-agent\n  ... planned\n"
        );
        assert_eq!(o.text(), "edge-1234\n");
    }
}
