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
    /// With the progress bar, a step is printed whole when it ends (a line
    /// left open would be torn by the bar's redraws).
    pending_step: RefCell<Option<String>>,
    bar: RefCell<Option<ProgressBar>>,
    /// `--json`: stdout carries one JSON object at the end, so data lines are kept for it.
    json: bool,
    kept: RefCell<Kept>,
    /// While `hold` runs: what would have been written, `(to stdout, text)`,
    /// and how many steps ended (for the bar).
    held: RefCell<Option<Vec<(bool, String)>>>,
    held_steps: Cell<u64>,
}

/// What `--json` reports besides the changes.
#[derive(Default)]
struct Kept {
    data: Vec<String>,
    notes: Vec<String>,
    warnings: Vec<String>,
    result: Option<serde_json::Value>,
    /// Each applied option's result, in order (`setup --answers`).
    results: Vec<serde_json::Value>,
}

impl Out {
    pub fn new(stdout: Box<dyn Write>, stderr: Box<dyn Write>, terminal: bool) -> Self {
        Self::with_json(stdout, stderr, terminal, false)
    }

    /// Like `new`; with `json`, data lines are kept for `print_json` instead of printed.
    pub fn with_json(stdout: Box<dyn Write>, stderr: Box<dyn Write>, terminal: bool, json: bool) -> Self {
        Out(Rc::new(Inner {
            stdout: RefCell::new(stdout),
            stderr: RefCell::new(stderr),
            terminal,
            open_step: Cell::new(false),
            pending_step: RefCell::new(None),
            bar: RefCell::new(None),
            json,
            kept: RefCell::new(Kept::default()),
            held: RefCell::new(None),
            held_steps: Cell::new(0),
        }))
    }

    /// Runs `f` with nothing written: what it prints is written when it returns.
    /// For work under a lock others wait for: a caller whose output nobody reads
    /// (a full pipe, a terminal stopped with Ctrl-S) then blocks only itself,
    /// after the lock is released.
    pub fn hold<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.0.held.borrow().is_some() {
            return f();
        }
        *self.0.held.borrow_mut() = Some(Vec::new());
        let result = f();
        let held = self.0.held.borrow_mut().take().unwrap_or_default();
        if let Some(bar) = self.0.bar.borrow().as_ref() {
            bar.inc(self.0.held_steps.replace(0));
        }
        for (stdout, text) in held {
            self.with_bar_hidden(|| self.write(stdout, &text));
        }
        result
    }

    /// Writes `text` to stdout or stderr, or keeps it while output is held.
    fn write(&self, stdout: bool, text: &str) {
        if let Some(held) = self.0.held.borrow_mut().as_mut() {
            held.push((stdout, text.to_string()));
            return;
        }
        let mut w = if stdout {
            self.0.stdout.borrow_mut()
        } else {
            self.0.stderr.borrow_mut()
        };
        let _ = w.write_all(text.as_bytes());
        let _ = w.flush();
    }

    /// The progress bar, unless output is held (it would draw on the terminal).
    fn bar(&self) -> Option<std::cell::Ref<'_, ProgressBar>> {
        if self.0.held.borrow().is_some() {
            return None;
        }
        std::cell::Ref::filter_map(self.0.bar.borrow(), Option::as_ref).ok()
    }

    /// The command's result as data for `--json` (`"result"`); the human form
    /// is what the command prints with `data`.
    pub fn result(&self, value: serde_json::Value) {
        self.0.kept.borrow_mut().result = Some(value);
    }

    /// Files the result so far as the result of `option` (an answers table), so that
    /// the next option's result does not replace it: `"results"` in `--json`.
    pub fn settle_result(&self, option: &str) {
        let mut kept = self.0.kept.borrow_mut();
        if let Some(result) = kept.result.take() {
            kept.results
                .push(serde_json::json!({ "option": option, "result": result }));
        }
    }

    /// Prints the `--json` object on stdout: `run` (what the system recorded:
    /// `changed`, `dry_run`, `changes`, `target_commands`), then the notes and
    /// warnings, the result, and the error.
    pub fn print_json(&self, run: serde_json::Value, error: Option<&crate::error::Error>) {
        let kept = self.0.kept.borrow();
        let mut obj = run;
        obj["notes"] = serde_json::json!(kept.notes);
        obj["warnings"] = serde_json::json!(kept.warnings);
        // the data lines are the human form of a result; without one they are the message
        match &kept.result {
            Some(result) => obj["result"] = result.clone(),
            None if !kept.data.is_empty() => obj["output"] = serde_json::json!(kept.data),
            None => {}
        }
        if !kept.results.is_empty() {
            obj["results"] = serde_json::json!(kept.results);
        }
        if let Some(e) = error {
            obj["error"] = serde_json::json!({
                "what": e.what,
                "why": e.why,
                "next": e.hint,
                "exit": e.exit_code(),
            });
        }
        let mut w = self.0.stdout.borrow_mut();
        let _ = writeln!(w, "{obj}");
        let _ = w.flush();
    }

    /// Data the user asked for, on stdout (kept for the JSON object with `--json`).
    pub fn data(&self, line: &str) {
        self.close_step();
        if self.0.json {
            self.0.kept.borrow_mut().data.push(line.to_string());
            return;
        }
        self.with_bar_hidden(|| self.write(true, &format!("{line}\n")));
    }

    /// A line of information on stderr.
    pub fn info(&self, line: &str) {
        self.close_step();
        self.err_line(line);
    }

    pub fn note(&self, line: &str) {
        self.0.kept.borrow_mut().notes.push(line.to_string());
        self.info(&format!("note: {line}"));
    }

    pub fn warn(&self, line: &str) {
        self.0.kept.borrow_mut().warnings.push(line.to_string());
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
        if let Some(bar) = self.bar() {
            bar.set_message(what.to_string());
            *self.0.pending_step.borrow_mut() = Some(what.to_string());
            return Step { out: self.clone() };
        }
        self.with_bar_hidden(|| self.write(false, &format!("{what} ...")));
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

    /// A spinner with `what` while waiting on something outside (a terminal
    /// only; elsewhere the caller's step lines tell the story). `finish_bar` ends it.
    pub fn spinner(&self, what: &str) {
        if !self.0.terminal {
            return;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {wide_msg}").expect("the template is valid"));
        bar.set_message(what.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        *self.0.bar.borrow_mut() = Some(bar);
    }

    pub fn finish_bar(&self) {
        if let Some(bar) = self.0.bar.borrow_mut().take() {
            bar.finish_and_clear();
        }
    }

    fn close_step(&self) {
        if let Some(what) = self.0.pending_step.borrow_mut().take() {
            self.err_line(&format!("{what} ..."));
        }
        if self.0.open_step.replace(false) {
            self.with_bar_hidden(|| self.write(false, "\n"));
        }
    }

    fn err_line(&self, line: &str) {
        self.with_bar_hidden(|| self.write(false, &format!("{line}\n")));
    }

    fn with_bar_hidden(&self, f: impl FnOnce()) {
        match self.bar().as_deref() {
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
        match out.bar() {
            Some(bar) => bar.inc(1),
            None => out.0.held_steps.set(out.0.held_steps.get() + 1),
        }
        if let Some(what) = out.0.pending_step.borrow_mut().take() {
            out.err_line(&format!("{what} ... {outcome}"));
        } else if out.0.open_step.replace(false) {
            out.with_bar_hidden(|| out.write(false, &format!(" {outcome}\n")));
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

    /// With the progress bar a step is written whole when it ends: a line left
    /// open would be torn by the bar's redraws.
    #[test]
    fn with_the_progress_bar_steps_are_whole_lines() {
        let (o, e) = (Capture::default(), Capture::default());
        let out = Out::new(Box::new(o.clone()), Box::new(e.clone()), true);
        out.progress(2);
        let s = out.step("Writing the device ID");
        assert_eq!(e.text(), "", "nothing half-written while the bar may redraw");
        s.done("done");
        let s = out.step("Restarting the agent");
        out.info("would run: systemctl restart edge-agent");
        s.done("planned");
        out.finish_bar();
        assert_eq!(
            e.text(),
            "Writing the device ID ... done\nRestarting the agent ...\nwould run: systemctl restart edge-agent\n  ... planned\n"
        );
    }

    /// Work under a lock others wait for writes nothing until it ends.
    #[test]
    fn held_output_is_written_in_order_when_the_work_ends() {
        let (o, e) = (Capture::default(), Capture::default());
        let out = Out::new(Box::new(o.clone()), Box::new(e.clone()), false);
        out.step("Before").done("done");
        let inner = out.hold(|| {
            let s = out.step("Updating endpoint 'VNC admin (:1)'");
            s.done("done");
            out.warn("endpoint 'x' is left as it is");
            out.data("a line of data");
            // nested holds write when the outermost ends
            out.hold(|| out.info("nested"));
            assert_eq!(e.text(), "Before ... done\n", "nothing written while held");
            assert_eq!(o.text(), "");
            42
        });
        assert_eq!(inner, 42);
        assert_eq!(
            e.text(),
            "Before ... done\nUpdating endpoint 'VNC admin (:1)' ... done\nwarning: endpoint 'x' is left as it is\nnested\n"
        );
        assert_eq!(o.text(), "a line of data\n");
    }

    #[test]
    fn json_keeps_data_notes_and_the_result_for_one_object() {
        let (o, e) = (Capture::default(), Capture::default());
        let out = Out::with_json(Box::new(o.clone()), Box::new(e.clone()), false, true);
        out.data("VNC is enabled for admin");
        out.note("assuming version 1.12");
        out.warn("no firewall found");
        out.print_json(
            serde_json::json!({"changed": false, "dry_run": false, "changes": []}),
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&o.text()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "changed": false,
                "dry_run": false,
                "changes": [],
                "notes": ["assuming version 1.12"],
                "warnings": ["no firewall found"],
                "output": ["VNC is enabled for admin"],
            })
        );
        assert!(e.text().contains("note: assuming version 1.12"));
    }
}
