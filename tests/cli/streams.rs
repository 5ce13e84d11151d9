//! What reaches a terminal and what reaches a file (issue 27): colour only on a terminal,
//! decided for stdout and stderr each, and never with `NO_COLOR` or `TERM=dumb`.

use crate::common;

use common::tmux::Tmux;

const ESC: char = '\u{1b}';

/// Runs `line` in bash on a terminal (tmux) and returns the screen with its escapes once
/// `DONE` is shown.
fn on_a_terminal(line: &str) -> String {
    let bin = assert_cmd::cargo::cargo_bin("edge-setup");
    let tmux = Tmux::start(&format!(
        "bash --norc --noprofile -c 'B={}; {line}; echo DONE; sleep 30'",
        bin.display()
    ));
    tmux.wait_for("DONE", 1);
    tmux.screen_with_escapes()
}

#[test]
fn a_usage_error_on_a_terminal_is_coloured() {
    // the control: without it the tests below could pass with no colour anywhere
    let screen = on_a_terminal("$B bogus");
    assert!(screen.contains("unrecognized subcommand"), "{screen}");
    assert!(screen.contains(ESC), "no colour on a terminal:\n{screen}");
}

#[test]
fn no_color_and_a_dumb_terminal_get_no_colour() {
    for line in [
        "NO_COLOR=1 $B bogus",
        "TERM=dumb $B bogus",
        "NO_COLOR=1 $B --help | head -3; NO_COLOR=1 $B --help",
    ] {
        let screen = on_a_terminal(line);
        assert!(screen.contains("edge-setup"), "{line}: {screen}");
        assert!(!screen.contains(ESC), "{line} is coloured:\n{screen:?}");
    }
}

#[test]
fn help_piped_to_a_file_from_a_terminal_has_no_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let help = dir.path().join("help.txt");
    let error = dir.path().join("error.txt");
    let screen = on_a_terminal(&format!(
        "$B --help > {}; $B bogus 2> {}; $B --version > /dev/null",
        help.display(),
        error.display()
    ));
    let help = std::fs::read_to_string(&help).unwrap();
    let error = std::fs::read_to_string(&error).unwrap();
    assert!(help.contains("Usage:") && !help.contains(ESC), "{help:?}");
    assert!(
        error.contains("unrecognized subcommand") && !error.contains(ESC),
        "{error:?}"
    );
    assert!(!screen.contains("Usage:"), "{screen}");
}
