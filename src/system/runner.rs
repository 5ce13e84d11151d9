//! External commands: one runner records every command line; tests swap in a fake.

use std::cell::RefCell;
use std::fmt;

use zeroize::Zeroizing;

/// A command to run. Secrets travel only on stdin, never in argv or the environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub stdin: Option<Zeroizing<Vec<u8>>>,
}

impl Cmd {
    pub fn new(program: &str) -> Self {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
            stdin: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Bytes to feed on stdin; kept in zeroizing memory.
    pub fn stdin(mut self, bytes: Zeroizing<Vec<u8>>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    /// The command line as a shell would read it.
    pub fn line(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Stdin content never shows in debug output.
impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cmd({}{})",
            self.line(),
            if self.stdin.is_some() { " <stdin>" } else { "" }
        )
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Exit status; `None` when killed by a signal.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    pub fn ok(stdout: &str) -> Self {
        Output {
            status: Some(0),
            stdout: stdout.to_string(),
            stderr: String::new(),
        }
    }

    pub fn failed(status: i32, stderr: &str) -> Self {
        Output {
            status: Some(status),
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }
}

/// Runs commands on the host.
pub trait Runner {
    /// Runs `cmd` to completion. `Err` only when it could not be started.
    fn run(&self, cmd: &Cmd) -> std::io::Result<Output>;
}

/// The real runner: duct, output captured, stdin closed unless given.
pub struct HostRunner;

impl Runner for HostRunner {
    fn run(&self, cmd: &Cmd) -> std::io::Result<Output> {
        let expr = duct::cmd(&cmd.program, &cmd.args)
            .stdout_capture()
            .stderr_capture()
            .unchecked();
        let out = match &cmd.stdin {
            Some(bytes) => run_with_stdin(expr, bytes)?,
            None => expr.stdin_null().run()?,
        };
        Ok(Output {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Feeds `bytes` through a pipe straight from the zeroizing buffer (duct's
/// `stdin_bytes` would keep a copy that is never zeroed). A separate thread
/// writes, so a child that prints a lot before reading cannot deadlock us.
fn run_with_stdin(expr: duct::Expression, bytes: &[u8]) -> std::io::Result<std::process::Output> {
    let (reader, mut writer) = os_pipe::pipe()?;
    let expr = expr.stdin_file(reader);
    let handle = expr.start()?;
    // our copy of the read end: a child that exits without reading must give EPIPE, not block
    drop(expr);
    std::thread::scope(|s| {
        let feeder = s.spawn(move || {
            use std::io::Write;
            // the writer drops at the end of this closure: the child sees EOF
            match writer.write_all(bytes) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => r,
            }
        });
        let out = handle.into_output();
        let fed = feeder.join().expect("the stdin writer does not panic");
        let out = out?;
        fed.map(|()| out)
    })
}

type Responder = Box<dyn Fn(&Cmd) -> Option<std::io::Result<Output>>>;

/// A fake for tests: records every command and answers from rules, first match
/// wins; an unmatched command succeeds with empty output.
#[derive(Default)]
pub struct FakeRunner {
    calls: RefCell<Vec<Cmd>>,
    rules: RefCell<Vec<Responder>>,
}

impl FakeRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers commands whose line starts with `prefix`.
    pub fn respond(&self, prefix: &str, out: Output) {
        let prefix = prefix.to_string();
        self.rules.borrow_mut().push(Box::new(move |c| {
            c.line().starts_with(&prefix).then(|| Ok(out.clone()))
        }));
    }

    /// Answers with a function of the command.
    pub fn respond_with(&self, f: impl Fn(&Cmd) -> Option<std::io::Result<Output>> + 'static) {
        self.rules.borrow_mut().push(Box::new(f));
    }

    pub fn calls(&self) -> Vec<Cmd> {
        self.calls.borrow().clone()
    }

    pub fn lines(&self) -> Vec<String> {
        self.calls.borrow().iter().map(Cmd::line).collect()
    }
}

impl Runner for FakeRunner {
    fn run(&self, cmd: &Cmd) -> std::io::Result<Output> {
        self.calls.borrow_mut().push(cmd.clone());
        for rule in self.rules.borrow().iter() {
            if let Some(out) = rule(cmd) {
                return out;
            }
        }
        Ok(Output::ok(""))
    }
}

impl<R: Runner + ?Sized> Runner for std::rc::Rc<R> {
    fn run(&self, cmd: &Cmd) -> std::io::Result<Output> {
        (**self).run(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_shell_quoted() {
        let c = Cmd::new("systemctl")
            .args(["enable", "--now", "tigervncserver@:1"])
            .arg("it's");
        assert_eq!(c.line(), r"systemctl enable --now tigervncserver@:1 'it'\''s'");
    }

    #[test]
    fn debug_never_shows_stdin() {
        let c = Cmd::new("tigervncpasswd")
            .arg("-f")
            .stdin(Zeroizing::new(b"secret12".to_vec()));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("secret12"));
        assert!(dbg.contains("<stdin>"));
    }

    #[test]
    fn host_runner_captures_status_and_streams() {
        let out = HostRunner
            .run(
                &Cmd::new("sh")
                    .args(["-c", "read x; echo out:$x; echo err >&2; exit 3"])
                    .stdin(Zeroizing::new(b"hi\n".to_vec())),
            )
            .unwrap();
        assert_eq!(out.status, Some(3));
        assert_eq!(out.stdout, "out:hi\n");
        assert_eq!(out.stderr, "err\n");
    }

    #[test]
    fn host_runner_streams_large_stdin_and_stdout() {
        // the child prints 1 MiB before it reads: more than a pipe buffer both ways
        let input = Zeroizing::new(vec![b'x'; 1 << 20]);
        let out = HostRunner
            .run(
                &Cmd::new("sh")
                    .args(["-c", "head -c 1048576 /dev/zero | tr '\\0' y; wc -c"])
                    .stdin(input),
            )
            .unwrap();
        assert!(out.success(), "{out:?}");
        let (ys, count) = out.stdout.split_at(1 << 20);
        assert!(ys.bytes().all(|b| b == b'y'));
        assert_eq!(count.trim(), "1048576");
    }

    #[test]
    fn host_runner_survives_a_child_that_never_reads_stdin() {
        let out = HostRunner
            .run(&Cmd::new("true").stdin(Zeroizing::new(vec![0; 1 << 20])))
            .unwrap();
        assert!(out.success());
    }

    #[test]
    fn fake_runner_records_and_answers() {
        let fake = FakeRunner::new();
        fake.respond("dpkg-query", Output::failed(1, "no packages found"));
        assert_eq!(fake.run(&Cmd::new("dpkg-query").arg("-W")).unwrap().status, Some(1));
        assert!(fake.run(&Cmd::new("true")).unwrap().success());
        assert_eq!(fake.lines(), vec!["dpkg-query -W", "true"]);
    }
}
