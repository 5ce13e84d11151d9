//! Tab pressed in a real bash (tmux), with the script `edge-setup completions bash` prints:
//! subcommands at every depth, configuration keys, option values (issue 27: the static
//! script completed the first word only).

use crate::common;

use common::tmux::Tmux;

/// A bash on a terminal with the completion loaded and this build's edge-setup on PATH.
fn bash_with_completion() -> Tmux {
    let bin = assert_cmd::cargo::cargo_bin("edge-setup");
    let dir = bin.parent().unwrap();
    let tmux = Tmux::start(&format!(
        "env -i TERM=xterm HOME=/tmp PATH={}:/usr/bin:/bin bash --norc --noprofile",
        dir.display()
    ));
    tmux.send(&["-l", "source <(edge-setup completions bash) && echo LOADED"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("\nLOADED", 1);
    tmux
}

/// Types `line`, presses Tab twice and returns the screen once `expect` is on it (tmux
/// drops the spaces at a line's end); then clears the line.
fn tab(tmux: &Tmux, line: &str, expect: &str) -> String {
    tmux.send(&["-l", line]);
    tmux.send(&["Tab"]);
    tmux.send(&["Tab"]);
    tmux.wait_for(expect, 1);
    let screen = tmux.screen();
    tmux.send(&["C-c"]);
    tmux.send(&["-l", "clear"]);
    tmux.send(&["Enter"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    screen
}

#[test]
fn tab_completes_subcommands_at_every_depth() {
    let tmux = bash_with_completion();
    let screen = tab(&tmux, "edge-setup remote-con", "edge-setup remote-connectivity");
    assert!(!screen.contains("remote-access"), "{screen}");
    let screen = tab(&tmux, "edge-setup remote-connectivity ", "disable");
    for word in ["enable", "status"] {
        assert!(screen.contains(word), "{word} missing:\n{screen}");
    }
    tab(
        &tmux,
        "edge-setup setup network --st",
        "edge-setup setup network --stack",
    );
    let screen = tab(&tmux, "edge-setup setup network --stack ", "networkmanager");
    for word in ["networkd", "ifupdown", "ifcfg"] {
        assert!(screen.contains(word), "{word} missing:\n{screen}");
    }
}

#[test]
fn tab_completes_configuration_keys_and_users() {
    let tmux = bash_with_completion();
    // one key starts so: completed in place
    tab(
        &tmux,
        "edge-setup config set vnc.g",
        "edge-setup config set vnc.geometry",
    );
    let screen = tab(&tmux, "edge-setup config get c8y.", "c8y.url");
    for key in ["c8y.ca-file", "c8y.proxy", "c8y.credentials-file"] {
        assert!(screen.contains(key), "{key} missing:\n{screen}");
    }
    tab(
        &tmux,
        "edge-setup vnc-user --user ro",
        "edge-setup vnc-user --user root",
    );
}

/// zsh as the packages install it: the script as `_edge-setup` in fpath, autoloaded by
/// compinit at the first Tab, which completes too.
#[test]
fn the_first_tab_in_zsh_completes() {
    assert!(
        std::process::Command::new("zsh")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "zsh is missing: install it with 'scripts/install-deps' (apt-get install zsh)"
    );
    let bin = assert_cmd::cargo::cargo_bin("edge-setup");
    let fpath = tempfile::tempdir().unwrap();
    let script = std::process::Command::new(&bin)
        .args(["completions", "zsh"])
        .output()
        .unwrap();
    std::fs::write(fpath.path().join("_edge-setup"), script.stdout).unwrap();
    let tmux = Tmux::start(&format!(
        "env -i TERM=xterm HOME=/tmp PATH={}:/usr/bin:/bin zsh -f",
        bin.parent().unwrap().display()
    ));
    tmux.send(&[
        "-l",
        &format!(
            "fpath=({} $fpath); autoload -U compinit; compinit -u -D; echo LOADED",
            fpath.path().display()
        ),
    ]);
    tmux.send(&["Enter"]);
    tmux.wait_for("\nLOADED", 1);
    tmux.send(&["-l", "edge-setup remote-connectivity "]);
    tmux.send(&["Tab"]);
    tmux.wait_for("disable", 1);
    let screen = tmux.screen();
    assert!(screen.contains("enable") && screen.contains("status"), "{screen}");
}
