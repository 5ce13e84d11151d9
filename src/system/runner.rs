//! External commands: one runner records every command line; tests swap in a fake.
//!
//! Every program edge-setup runs is named in one fixed table (`Tool`) and run by
//! its absolute path with a clean environment, so neither PATH nor any other
//! variable of the caller (sudo may pass them through) chooses what root runs.

use std::fmt;
use std::path::{Path, PathBuf};

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

        impl Tool {
            /// Every tool, for the test that checks the table.
            #[cfg(test)]
            pub const ALL: &'static [Tool] = &[$(Tool::$variant,)+];

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
    Visudo "visudo" ["/usr/sbin/visudo"];
    XfsGrowfs "xfs_growfs" ["/usr/sbin/xfs_growfs", "/sbin/xfs_growfs"];
    Yum "yum" ["/usr/bin/yum"];
    Yumdownloader "yumdownloader" ["/usr/bin/yumdownloader"];
}

impl Tool {
    /// The first of `paths` that is a file on this host.
    pub fn locate(self) -> Option<&'static Path> {
        self.paths().iter().map(Path::new).find(|p| p.is_file())
    }

    /// Package managers reach repositories, through a proxy where the caller set one.
    fn needs_proxy(self) -> bool {
        matches!(
            self,
            Tool::AptGet | Tool::Dnf | Tool::Yum | Tool::Yumdownloader | Tool::Sh
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

/// A command to run. Secrets travel only on stdin, never in argv or the environment.
#[derive(Clone)]
pub struct Cmd {
    pub program: Program,
    pub args: Vec<String>,
    /// Variables set for this command, on top of the clean environment.
    pub env: Vec<(String, String)>,
    pub stdin: Option<Zeroizing<Vec<u8>>>,
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
