//! `edge-setup completions SHELL`: the completion script, generated from the
//! clap definitions (the packages ship bash's, zsh's and fish's).

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Cli, CompletionsArgs};
use crate::context::Ctx;
use crate::error::{Error, Result};

pub fn run(ctx: &Ctx, args: &CompletionsArgs) -> Result<()> {
    let script = script(args.shell)?;
    ctx.out
        .result(serde_json::json!({ "shell": args.shell.to_string(), "script": script }));
    ctx.out.data(script.trim_end_matches('\n'));
    Ok(())
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Result<String> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "edge-setup", &mut buf);
    String::from_utf8(buf).map_err(|_| Error::failure(format!("the {shell} completion script is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_completes_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let s = script(shell).unwrap();
            for sub in ["vnc-user", "remote-connectivity", "device-id", "setup"] {
                assert!(s.contains(sub), "{shell}: {sub} missing");
            }
        }
    }
}
