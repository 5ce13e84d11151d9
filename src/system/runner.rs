//! External commands: one runner records every command line; tests swap in a fake.
//!
//! Every program edge-setup runs is named in one fixed table (`Tool`) and run by
//! its absolute path with a clean environment, so neither PATH nor any other
//! variable of the caller (sudo may pass them through) chooses what root runs.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

/// The search path and locale every command gets, whoever called edge-setup.
pub const CLEAN_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
pub const CLEAN_LANG: &str = "C.UTF-8";

macro_rules! tools {
    ($($variant:ident $name:literal [$($path:literal),+];)+) => {
        /// The programs edge-setup runs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Tool {
            $($variant,)+
        }

        const TOOLS: &[Tool] = &[$(Tool::$variant,)+];

        impl Tool {
            /// Every tool, for the test that checks the table.
            #[cfg(test)]
            pub const ALL: &'static [Tool] = TOOLS;

            /// The name a person types (and the one shown in printed commands).
            pub fn name(self) -> &'static str {
                match self {
                    $(Tool::$variant => $name,)+
                }
            }

            /// Where the distributions install it, the first that exists wins.
            pub fn paths(self) -> &'static [&'static str] {
                match self {
                    $(Tool::$variant => &[$($path),+],)+
                }
            }
        }
    };
}

// Debian 12+, RHEL 7+ and Fedora have merged /usr (/bin -> /usr/bin), so the
// /usr path is the one that exists; the second path is where a Debian
// installed before the merge (Debian 11 upgraded in place) still has it.
tools! {
    AptGet "apt-get" ["/usr/bin/apt-get"];
    Chroot "chroot" ["/usr/sbin/chroot"];
    Df "df" ["/usr/bin/df", "/bin/df"];
    Dnf "dnf" ["/usr/bin/dnf"];
    DpkgQuery "dpkg-query" ["/usr/bin/dpkg-query"];
    FirewallCmd "firewall-cmd" ["/usr/bin/firewall-cmd"];
    Getenforce "getenforce" ["/usr/sbin/getenforce"];
    Groupadd "groupadd" ["/usr/sbin/groupadd"];
    Groupdel "groupdel" ["/usr/sbin/groupdel"];
    Growpart "growpart" ["/usr/bin/growpart"];
    Hostname "hostname" ["/usr/bin/hostname", "/bin/hostname"];
    Ifdown "ifdown" ["/usr/sbin/ifdown", "/sbin/ifdown"];
    Ifup "ifup" ["/usr/sbin/ifup", "/sbin/ifup"];
    Ip "ip" ["/usr/sbin/ip", "/usr/bin/ip", "/sbin/ip", "/bin/ip"];
    Journalctl "journalctl" ["/usr/bin/journalctl", "/bin/journalctl"];
    Networkctl "networkctl" ["/usr/bin/networkctl", "/bin/networkctl"];
    Nft "nft" ["/usr/sbin/nft"];
    Nmcli "nmcli" ["/usr/bin/nmcli"];
    Resize2fs "resize2fs" ["/usr/sbin/resize2fs", "/sbin/resize2fs"];
    Restorecon "restorecon" ["/usr/sbin/restorecon", "/sbin/restorecon"];
    Rpm "rpm" ["/usr/bin/rpm", "/bin/rpm"];
    Selinuxenabled "selinuxenabled" ["/usr/sbin/selinuxenabled"];
    Sh "sh" ["/bin/sh", "/usr/bin/sh"];
    SshKeygen "ssh-keygen" ["/usr/bin/ssh-keygen"];
    Sudo "sudo" ["/usr/bin/sudo"];
    Timedatectl "timedatectl" ["/usr/bin/timedatectl", "/bin/timedatectl"];
    Systemctl "systemctl" ["/usr/bin/systemctl", "/bin/systemctl"];
    Ufw "ufw" ["/usr/sbin/ufw"];
    Unshare "unshare" ["/usr/bin/unshare"];
    Visudo "visudo" ["/usr/sbin/visudo"];
    XfsGrowfs "xfs_growfs" ["/usr/sbin/xfs_growfs", "/sbin/xfs_growfs"];
    Yum "yum" ["/usr/bin/yum"];
    Yumdownloader "yumdownloader" ["/usr/bin/yumdownloader"];
}

impl Tool {
    /// The tool a person (or a record) names, by its name in the table.
    pub fn by_name(name: &str) -> Option<Tool> {
        TOOLS.iter().copied().find(|t| t.name() == name)
    }

    /// The first of `paths` that is a file on this host.
    pub fn locate(self) -> Option<&'static Path> {
        self.paths().iter().map(Path::new).find(|p| p.is_file())
    }

    /// Package managers reach repositories, through a proxy where the caller set one.
    fn needs_proxy(self) -> bool {
        matches!(
            self,
            Tool::AptGet | Tool::Dnf | Tool::Yum | Tool::Yumdownloader | Tool::Sh | Tool::Unshare
        )
    }
}

/// What a command runs.
#[derive(Clone)]
pub enum Program {
    Tool(Tool),
    /// An executable by its absolute path, checked by the caller just before
    /// (a platform step: root's, in directories only root can change).
    Checked(PathBuf),
}

impl Program {
    /// How the program is shown: a tool's name, a checked file's path.
    pub fn name(&self) -> String {
        match self {
            Program::Tool(t) => t.name().to_string(),
            Program::Checked(path) => path.display().to_string(),
        }
    }
}

/// How long a command may run and how much of its output is kept, for a
/// program whose behaviour edge-setup does not control (a diagnostic plugin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Then SIGTERM to its process group.
    pub time: Duration,
    /// How long after SIGTERM the group gets SIGKILL.
    pub grace: Duration,
    /// The last bytes of stdout and of stderr kept; the rest is read and dropped.
    pub output: usize,
}

/// A command to run. Secrets travel only on stdin, never in argv or the environment.
#[derive(Clone)]
pub struct Cmd {
    pub program: Program,
    pub args: Vec<String>,
    /// Variables set for this command, on top of the clean environment.
    pub env: Vec<(String, String)>,
    pub stdin: Option<Zeroizing<Vec<u8>>>,
    /// Run in a process group of its own within these limits (no stdin then).
    pub limits: Option<Limits>,
}

impl Cmd {
    pub fn new(tool: Tool) -> Self {
        Cmd::of(Program::Tool(tool))
    }

    /// Runs the executable at `path`, which the caller has just checked.
    pub fn checked(path: PathBuf) -> Self {
        Cmd::of(Program::Checked(path))
    }

    fn of(program: Program) -> Self {
        Cmd {
            program,
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            limits: None,
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

    /// Sets a variable for this command only.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Bytes to feed on stdin; kept in zeroizing memory.
    pub fn stdin(mut self, bytes: Zeroizing<Vec<u8>>) -> Self {
        self.stdin = Some(bytes);
        self
    }

    /// Bounds the run (see `Limits`); such a command reads no stdin.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// The command line as a shell would read it.
    pub fn line(&self) -> String {
        self.env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v)))
            .chain(std::iter::once(shell_quote(&self.program.name())))
            .chain(self.args.iter().map(|a| shell_quote(a)))
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

/// A word as a shell reads it back: bare when safe, else in single quotes.
pub fn shell_quote(s: &str) -> String {
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
    /// It outlived the time of its `Limits` and was signalled to stop.
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    pub fn ok(stdout: &str) -> Self {
        Output {
            status: Some(0),
            stdout: stdout.to_string(),
            ..Output::default()
        }
    }

    pub fn failed(status: i32, stderr: &str) -> Self {
        Output {
            status: Some(status),
            stderr: stderr.to_string(),
            ..Output::default()
        }
    }
}

/// Runs commands on the host.
pub trait Runner {
    /// Runs `cmd` to completion. `Err` only when it could not be started.
    fn run(&self, cmd: &Cmd) -> std::io::Result<Output>;

    /// Where this host has `tool`, `None` when it has not (what image mode can do here depends on it).
    fn locate(&self, tool: Tool) -> Option<PathBuf> {
        tool.locate().map(Path::to_path_buf)
    }
}

/// The real runner: duct, output captured, stdin closed unless given, the
/// program by its absolute path and a clean environment.
pub struct HostRunner;

impl Runner for HostRunner {
    fn run(&self, cmd: &Cmd) -> std::io::Result<Output> {
        let mut env = vec![
            ("PATH".to_string(), CLEAN_PATH.to_string()),
            ("LANG".to_string(), CLEAN_LANG.to_string()),
        ];
        let program = match &cmd.program {
            Program::Tool(tool) => {
                // as root, only root's own (`system::environ` dropped a sudo caller's)
                if tool.needs_proxy() {
                    for var in super::environ::PROXY {
                        if let Some(v) = std::env::var_os(var).and_then(|v| v.into_string().ok()) {
                            env.push((var.to_string(), v));
                        }
                    }
                }
                tool.locate()
                    .ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!(
                                "{} is not installed (looked for {})",
                                tool.name(),
                                tool.paths().join(", ")
                            ),
                        )
                    })?
                    .to_path_buf()
            }
            Program::Checked(path) => path.clone(),
        };
        env.extend(cmd.env.iter().cloned());
        if let Some(limits) = cmd.limits {
            if cmd.stdin.is_some() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a command run within limits reads no stdin",
                ));
            }
            return run_limited(&program, &cmd.args, env, limits);
        }
        let expr = duct::cmd(&program, &cmd.args)
            .full_env(env)
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
            timed_out: false,
        })
    }
}

/// Runs `program` in a process group of its own: at the time limit the group
/// gets SIGTERM, `grace` later SIGKILL. When the program exits, whatever it
/// left running in its group is killed, so nothing it started outlives it. The
/// exit is observed without reaping (`WNOWAIT`): until the program is reaped
/// its process group id cannot pass to another process, so the group signalled
/// is always its own.
fn run_limited(program: &Path, args: &[String], env: Vec<(String, String)>, limits: Limits) -> std::io::Result<Output> {
    use nix::sys::signal::{Signal, killpg};
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;

    let parent = nix::unistd::getpid();
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // In a group of its own the program gets no Ctrl-C from the terminal: should
    // edge-setup end before it (interrupted, killed), the kernel sends it SIGTERM,
    // so that it does not run on unwatched. Checked against the parent after the
    // call: one that died before it was set no signal will come from.
    // SAFETY: prctl and getppid are async-signal-safe and allocate nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)?;
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::other("edge-setup ended before the program started"));
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let stdout = keep_tail(child.stdout.take().expect("stdout is piped"), limits.output);
    let stderr = keep_tail(child.stderr.take().expect("stderr is piped"), limits.output);
    let term_at = Instant::now() + limits.time;
    let kill_at = term_at + limits.grace;
    let mut signalled = None;
    loop {
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => break,
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        let due = match signalled {
            None if now >= term_at => Some(Signal::SIGTERM),
            Some(Signal::SIGTERM) if now >= kill_at => Some(Signal::SIGKILL),
            _ => None,
        };
        if let Some(signal) = due {
            let _ = killpg(pid, signal);
            signalled = Some(signal);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // ESRCH: nothing was left in the group
    let _ = killpg(pid, Signal::SIGKILL);
    let status = child.wait()?;
    // A process that left the group (setsid) may hold a pipe open: not waited for.
    let collect = |rx: std::sync::mpsc::Receiver<Vec<u8>>| {
        let bytes = rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok(Output {
        status: status.code(),
        stdout: collect(stdout),
        stderr: collect(stderr),
        timed_out: signalled.is_some(),
    })
}

/// Reads `from` to its end on a thread of its own, keeping the last `max` bytes.
fn keep_tail(mut from: impl Read + Send + 'static, max: usize) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    kept.extend_from_slice(&buf[..n]);
                    // dropped in large steps, not at every read
                    if kept.len() > max.saturating_mul(2).max(buf.len()) {
                        kept.drain(..kept.len() - max);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        kept.drain(..kept.len().saturating_sub(max));
        let _ = tx.send(kept);
    });
    rx
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

impl<R: Runner + ?Sized> Runner for std::rc::Rc<R> {
    fn run(&self, cmd: &Cmd) -> std::io::Result<Output> {
        (**self).run(cmd)
    }

    fn locate(&self, tool: Tool) -> Option<PathBuf> {
        (**self).locate(tool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_shell_quoted() {
        let c = Cmd::new(Tool::Systemctl)
            .args(["enable", "--now", "tigervncserver@:1"])
            .arg("it's");
        assert_eq!(c.line(), r"systemctl enable --now tigervncserver@:1 'it'\''s'");
        let c = Cmd::new(Tool::AptGet)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .arg("update");
        assert_eq!(c.line(), "DEBIAN_FRONTEND=noninteractive apt-get update");
    }

    #[test]
    fn debug_never_shows_stdin() {
        let c = Cmd::new(Tool::Sh).arg("-c").stdin(Zeroizing::new(b"secret12".to_vec()));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("secret12"));
        assert!(dbg.contains("<stdin>"));
    }

    #[test]
    fn host_runner_captures_status_and_streams() {
        let out = HostRunner
            .run(
                &Cmd::new(Tool::Sh)
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
                &Cmd::new(Tool::Sh)
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
            .run(
                &Cmd::new(Tool::Sh)
                    .args(["-c", "true"])
                    .stdin(Zeroizing::new(vec![0; 1 << 20])),
            )
            .unwrap();
        assert!(out.success());
    }

    fn limits(time_ms: u64, grace_ms: u64, output: usize) -> Limits {
        Limits {
            time: Duration::from_millis(time_ms),
            grace: Duration::from_millis(grace_ms),
            output,
        }
    }

    fn limited(script: &str, limits: Limits) -> (Output, Duration) {
        let started = Instant::now();
        let out = HostRunner
            .run(&Cmd::new(Tool::Sh).args(["-c", script]).limits(limits))
            .unwrap();
        (out, started.elapsed())
    }

    #[test]
    fn a_limited_run_keeps_the_status_and_the_end_of_what_it_printed() {
        let (out, _) = limited("printf 0123456789; echo err >&2; exit 3", limits(10_000, 100, 4));
        assert_eq!(
            out,
            Output {
                status: Some(3),
                stdout: "6789".into(),
                stderr: "err\n".into(),
                timed_out: false
            }
        );
        // far more than the pipe holds, read through to the end
        let (out, _) = limited("head -c 3000000 /dev/zero; printf end", limits(10_000, 100, 8));
        assert_eq!(out.stdout, "\0\0\0\0\0end");
        let e = HostRunner
            .run(
                &Cmd::new(Tool::Sh)
                    .stdin(Zeroizing::new(b"x".to_vec()))
                    .limits(limits(1000, 100, 8)),
            )
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }

    /// SIGTERM goes to the group: the shell's child, which holds the output, stops too.
    #[test]
    fn at_its_time_limit_a_command_and_what_it_started_get_sigterm() {
        let (out, took) = limited("sleep 30; echo never", limits(200, 5000, 1024));
        assert!(out.timed_out && out.status.is_none(), "{out:?}");
        assert!(!out.stdout.contains("never"));
        assert!(took < Duration::from_secs(4), "{took:?}");
    }

    #[test]
    fn a_command_that_ignores_sigterm_gets_sigkill_after_the_grace() {
        let (out, took) = limited("trap '' TERM; sleep 30", limits(200, 300, 1024));
        assert!(out.timed_out && out.status.is_none(), "{out:?}");
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(4),
            "{took:?}"
        );
    }

    /// A background process holding stdout open would keep the run waiting for
    /// its end: what a command leaves in its group ends with it.
    #[test]
    fn what_a_command_leaves_running_ends_with_it() {
        let (out, took) = limited("sleep 30 & echo started", limits(10_000, 1000, 1024));
        assert_eq!(
            (out.status, out.stdout.as_str(), out.timed_out),
            (Some(0), "started\n", false)
        );
        assert!(took < Duration::from_secs(4), "{took:?}");
    }

    #[test]
    fn every_tool_is_an_absolute_path_in_a_root_owned_system_directory() {
        for tool in Tool::ALL {
            for path in tool.paths() {
                let p = Path::new(path);
                assert!(p.is_absolute(), "{path}");
                let dir = p.parent().unwrap().to_str().unwrap();
                assert!(
                    CLEAN_PATH.split(':').any(|d| d == dir),
                    "{path} is outside {CLEAN_PATH}"
                );
                assert_eq!(p.file_name().unwrap(), tool.name(), "{path}");
            }
        }
    }

    /// The caller's PATH (which sudo may pass on) and other variables never reach a command.
    #[test]
    fn commands_get_a_clean_environment_whatever_the_callers_is() {
        let out = HostRunner
            .run(
                &Cmd::new(Tool::Sh)
                    .args(["-c", "env"])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            )
            .unwrap();
        let mut vars: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL=") && !l.starts_with("_="))
            .collect();
        vars.sort();
        assert_eq!(
            vars,
            vec![
                "DEBIAN_FRONTEND=noninteractive",
                "LANG=C.UTF-8",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
            ]
        );
    }
}
