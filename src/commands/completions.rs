//! `edge-setup completions SHELL`: the shell's completion script (the packages ship bash's,
//! zsh's and fish's). The script asks edge-setup itself at each Tab (clap_complete's dynamic
//! completion), so that it completes at every depth from the same clap definitions, with
//! values read on the machine: configuration keys, user names, network interfaces and each
//! option's choices. clap_complete's static bash script completed the first word only for a
//! program name with a hyphen (its `cmd` variables and case labels escape the name
//! differently).

use clap::CommandFactory;
use clap_complete::Shell;
use clap_complete::env::{Bash, EnvCompleter, Fish, Zsh};

use crate::cli::{Cli, CompletionsArgs};
use crate::context::Ctx;
use crate::error::{Error, Result};

/// The variable that asks the binary for completions instead of a run. edge-setup's own
/// name: clap's default, `COMPLETE`, is a plain word that an environment may set for
/// something else.
pub const VAR: &str = "_EDGE_SETUP_COMPLETE";

pub fn run(ctx: &Ctx, args: &CompletionsArgs) -> Result<()> {
    let script = script(args.shell)?;
    ctx.out
        .result(serde_json::json!({ "shell": args.shell.to_string(), "script": script }));
    ctx.out.data(script.trim_end_matches('\n'));
    Ok(())
}

/// The completion script for `shell`: it runs `edge-setup` (found on PATH) at each Tab.
pub fn script(shell: Shell) -> Result<String> {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        other => {
            return Err(Error::bad_input(format!("no completion script for {other}"))
                .hint("edge-setup completions bash (or zsh, fish)"));
        }
    };
    let name = Cli::command().get_name().to_string();
    let mut buf = Vec::new();
    completer
        .write_registration(VAR, &name, &name, &name, &mut buf)
        .map_err(|e| Error::failure(format!("cannot make the {shell} completion script")).why(e))?;
    let mut script =
        String::from_utf8(buf).map_err(|_| Error::failure(format!("the {shell} completion script is not UTF-8")))?;
    if shell == Shell::Zsh {
        // Autoloaded from fpath (the packages' _edge-setup), the file's body runs at the
        // first Tab: it defines the function and registers it, and then completes that Tab
        // too. Sourced, it only defines and registers.
        script.push_str(
            "\nif [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then\n    _clap_dynamic_completer_edge_setup \"$@\"\nfi\n",
        );
    }
    Ok(script)
}

/// Answers a Tab when the shell's script asked (`VAR` set) and exits; otherwise returns.
/// Called first in `main`: it reads only the completion variables and the words typed,
/// and prints candidates, changing nothing.
pub fn answer_tab() {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(VAR)
        .complete();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_asks_edge_setup_under_its_own_variable() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let s = script(shell).unwrap();
            assert!(s.contains(VAR), "{shell}: {s}");
            assert!(s.contains("edge-setup"), "{shell}: {s}");
        }
    }
}
