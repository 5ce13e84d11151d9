//! From a process (arguments, environment, streams) to an exit code.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use clap::Parser;

use crate::cli::{Cli, Command, ImageAction, ImageArgs};
use crate::context::Ctx;
use crate::error::{Result, exit};
use crate::output::Out;
use crate::prompt::{NoPrompt, NoPromptReason, Prompter, Terminal};
use crate::system::environ;
use crate::system::fs::Root;
use crate::system::runner::{HostRunner, Runner};
use crate::system::{Mode, System};
use crate::{commands, wizard};

/// The calling process, swappable in tests.
pub struct Process {
    pub args: Vec<OsString>,
    pub env: HashMap<String, String>,
    pub uid: u32,
    pub euid: u32,
    pub stdin_terminal: bool,
    pub stdout_terminal: bool,
    pub stderr_terminal: bool,
    pub stdin: Box<dyn BufRead>,
    pub stdout: Box<dyn Write>,
    pub stderr: Box<dyn Write>,
    pub runner: Box<dyn Runner>,
}

impl Process {
    pub fn from_os() -> Self {
        Process {
            args: std::env::args_os().collect(),
            // vars() panics on a variable that is not UTF-8 (LANG=$'\xff'); such
            // a variable is nothing edge-setup reads, so it is left out.
            env: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            uid: nix::unistd::getuid().as_raw(),
            euid: nix::unistd::geteuid().as_raw(),
            stdin_terminal: std::io::stdin().is_terminal(),
            stdout_terminal: std::io::stdout().is_terminal(),
            stderr_terminal: std::io::stderr().is_terminal(),
            stdin: Box::new(std::io::BufReader::new(std::io::stdin())),
            stdout: Box::new(std::io::stdout()),
            stderr: Box::new(std::io::stderr()),
            runner: Box::new(HostRunner),
        }
    }
}

/// Whether `--json` is among the arguments clap could not parse (before a `--`).
fn asks_for_json(args: &[OsString]) -> bool {
    args.iter().skip(1).take_while(|a| *a != "--").any(|a| a == "--json")
}

/// A usage error as edge-setup's own: clap's message, and where the usage is explained.
fn usage_error(e: &clap::Error) -> crate::error::Error {
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let what = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    let why: Vec<&str> = lines.filter(|l| !l.starts_with("For more information")).collect();
    let err = crate::error::Error::bad_input(what).hint("edge-setup --help, or edge-setup COMMAND --help");
    if why.is_empty() { err } else { err.why(why.join("; ")) }
}

/// Whether colour is allowed at all: not with `NO_COLOR` set to anything (no-color.org),
/// nor on a terminal that says it has none (`TERM=dumb`). A stream gets it only when it is
/// a terminal too.
fn colour_allowed(env: &HashMap<String, String>) -> bool {
    env.get("NO_COLOR").is_none_or(|v| v.is_empty()) && env.get("TERM").is_none_or(|t| t != "dumb")
}

/// What clap could not parse, or `--help`/`--version`, printed and its exit code: with
/// `--json` the one object, else clap's text on its stream (help and version on stdout,
/// errors on stderr), coloured only where that stream is a terminal.
fn usage(
    e: &clap::Error,
    json: bool,
    colour: bool,
    (mut stdout, mut stderr, stdout_terminal, stderr_terminal): (Box<dyn Write>, Box<dyn Write>, bool, bool),
) -> i32 {
    let code = if e.use_stderr() { exit::BAD_INPUT } else { exit::SUCCESS };
    if json {
        let out = Out::with_json(stdout, stderr, false, true);
        match e.kind() {
            clap::error::ErrorKind::DisplayVersion => {
                out.result(serde_json::json!({ "version": crate::cli::VERSION }));
                out.print_json(json_of(None), None);
            }
            _ if !e.use_stderr() => {
                for line in e.render().to_string().lines() {
                    out.data(line);
                }
                out.print_json(json_of(None), None);
            }
            _ => {
                let err = usage_error(e);
                out.error(&err);
                out.print_json(json_of(None), Some(&err));
            }
        }
        return code;
    }
    let (stream, terminal) = match e.use_stderr() {
        true => (&mut stderr, stderr_terminal),
        false => (&mut stdout, stdout_terminal),
    };
    let text = match colour && terminal {
        true => e.render().ansi().to_string(),
        false => e.render().to_string(),
    };
    let _ = write!(stream, "{text}");
    code
}

/// Runs the command line and returns the exit code.
pub fn run(process: Process) -> i32 {
    let Process {
        args,
        env,
        uid,
        euid,
        stdin_terminal,
        stdout_terminal,
        stderr_terminal,
        stdin,
        stdout,
        stderr,
        runner,
    } = process;
    let cli = match Cli::try_parse_from(args.clone()) {
        Ok(cli) => cli,
        Err(e) => {
            let streams = (stdout, stderr, stdout_terminal, stderr_terminal);
            return usage(&e, asks_for_json(&args), colour_allowed(&env), streams);
        }
    };
    // what `main` left of its own environment; a test's process gets the same policy
    let env: HashMap<String, String> = environ::filter(env.into_iter().map(|(k, v)| (k.into(), v.into())), uid, euid)
        .into_iter()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let json = cli.global.json;
    let out = Out::with_json(stdout, stderr, stderr_terminal, json);
    let prompt: Box<dyn Prompter> = if cli.global.yes {
        Box::new(NoPrompt(NoPromptReason::Yes))
    } else if !stdin_terminal {
        Box::new(NoPrompt(NoPromptReason::NoTerminal))
    } else {
        Box::new(Terminal)
    };
    let ctx = match build_system(&cli, runner, out.clone()) {
        Ok(sys) => Ctx::new(sys, prompt)
            .with_stdin(stdin)
            .with_env(env)
            .with_ids(uid, euid)
            .with_yes(cli.global.yes),
        Err(e) => return fail(&out, json, None, &e),
    };
    let result = dispatch(&ctx, &cli.command).map_err(|mut e| {
        if let Some(dir) = &cli.global.root {
            e.hint = e.hint.map(|h| for_image(&h, dir));
        }
        e
    });
    out.finish_bar();
    match result {
        Err(e) => fail(&out, json, Some(&ctx.sys), &e),
        Ok(()) if json => {
            out.print_json(json_of(Some(&ctx.sys)), None);
            exit::SUCCESS
        }
        Ok(()) => {
            if cli.command.mutates() {
                summarize(&out, ctx.sys.change_count(), ctx.sys.dry_run());
            }
            exit::SUCCESS
        }
    }
}

/// A hint written for a running system, for an image: the commands it names
/// take `--root DIR` and no `sudo` (the image's files are the builder's to change).
/// Commands that run elsewhere stay as they are: `vnc bundle` on a machine with a
/// network, `device-id generate` on each appliance made from the image.
fn for_image(hint: &str, dir: &Path) -> String {
    const COMMANDS: [&str; 11] = [
        "check",
        "diag",
        "remote-connectivity",
        "remote-access",
        "register",
        "vnc-user",
        "device-id",
        "config",
        "setup",
        "vnc",
        "image",
    ];
    const ELSEWHERE: [&str; 3] = ["vnc bundle", "device-id generate", "image first-boot"];
    let mut out = String::new();
    let mut rest = hint;
    while let Some(at) = rest.find("edge-setup ") {
        let (before, from) = rest.split_at(at + "edge-setup ".len());
        let names_command = !ELSEWHERE.iter().any(|c| from.starts_with(c))
            && COMMANDS.iter().any(|c| {
                from.strip_prefix(c)
                    .is_some_and(|after| !after.starts_with(|ch: char| ch.is_ascii_alphanumeric() || ch == '-'))
            });
        match before.strip_suffix("sudo edge-setup ") {
            Some(lead) if names_command => out.push_str(&format!("{lead}edge-setup ")),
            _ => out.push_str(before),
        }
        if names_command {
            out.push_str(&format!("--root {} ", dir.display()));
        }
        rest = from;
    }
    out.push_str(rest);
    out
}

/// What the system recorded, as the first fields of the `--json` object.
fn json_of(sys: Option<&System>) -> serde_json::Value {
    let changes = sys.map(System::changes).unwrap_or_default();
    let mut run = serde_json::json!({
        "changed": !changes.is_empty(),
        "dry_run": sys.is_some_and(System::dry_run),
        "changes": changes,
    });
    let target_commands = sys.map(System::target_commands).unwrap_or_default();
    if !target_commands.is_empty() {
        run["target_commands"] = serde_json::json!(target_commands);
        run["first_boot_commands"] = serde_json::json!(sys.map(System::first_boot_commands).unwrap_or_default());
    }
    run
}

/// The last line of a command that changes things: whether it did.
fn summarize(out: &Out, changes: usize, dry_run: bool) {
    match (changes, dry_run) {
        (0, _) => out.info("Nothing to change."),
        (n, true) => out.info(&format!(
            "Dry run: {n} change{} planned (listed above); nothing was changed.",
            if n == 1 { "" } else { "s" }
        )),
        (_, false) => {}
    }
}

fn fail(out: &Out, json: bool, sys: Option<&System>, e: &crate::error::Error) -> i32 {
    out.error(e);
    if json {
        out.print_json(json_of(sys), Some(e));
    }
    e.exit_code()
}

fn build_system(cli: &Cli, runner: Box<dyn Runner>, out: Out) -> Result<System> {
    let (root, mode) = match &cli.global.root {
        Some(dir) => (Root::new(dir)?, Mode::Image),
        None => (Root::new(Path::new("/"))?, Mode::Live),
    };
    Ok(System::new(root, mode, cli.global.dry_run, runner, out))
}

fn dispatch(ctx: &Ctx, command: &Command) -> Result<()> {
    match command {
        Command::DeviceId(args) => commands::device_id::run(ctx, args),
        Command::Config(args) => commands::config::run(ctx, args),
        Command::Setup(args) => wizard::run(ctx, args),
        Command::RemoteConnectivity(args) => commands::remote_connectivity::run(ctx, args),
        Command::Vnc(args) => commands::vnc::run(ctx, args),
        Command::VncUser(args) => commands::vnc_user::run(ctx, args),
        Command::Image(ImageArgs {
            action: ImageAction::Prepare {
                ssh_host_keys,
                vnc_passwords,
            },
        }) => commands::image::prepare(
            ctx,
            crate::image::Resets {
                ssh_host_keys: *ssh_host_keys,
                vnc_passwords: *vnc_passwords,
            },
        ),
        Command::Image(ImageArgs {
            action: ImageAction::FirstBoot,
        }) => wizard::first_boot::run(ctx),
        Command::Register(args) => commands::register::run(ctx, args),
        Command::RemoteAccess(args) => commands::remote_access::run(ctx, args),
        Command::Completions(args) => commands::completions::run(ctx, args),
        Command::Check(args) => commands::check::run(ctx, args),
        Command::Diag(args) => commands::diag::run(ctx, args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_hints_name_the_root_and_no_sudo() {
        let dir = Path::new("/srv/img");
        assert_eq!(
            for_image(
                "run 'sudo edge-setup vnc-user --user NAME' or 'edge-setup config set c8y.url <value>'",
                dir
            ),
            "run 'edge-setup --root /srv/img vnc-user --user NAME' or 'edge-setup --root /srv/img config set c8y.url <value>'"
        );
        // not a command: left alone
        assert_eq!(
            for_image("edge-setup writes it; see edge-setup.toml", dir),
            "edge-setup writes it; see edge-setup.toml"
        );
        assert_eq!(for_image("sudo edge-setup vnc", dir), "edge-setup --root /srv/img vnc");
        // run elsewhere: on a machine with a network, on each appliance
        assert_eq!(
            for_image(
                "'edge-setup vnc bundle DIR', then 'sudo edge-setup device-id generate'",
                dir
            ),
            "'edge-setup vnc bundle DIR', then 'sudo edge-setup device-id generate'"
        );
    }
}
