//! Input for the property tests of the parsers of files edge-setup does not
//! write itself (issue 26): text made of lines that look like the format, lines
//! that almost do, and arbitrary lines (control characters, any Unicode, very
//! long), joined with `\n` or `\r\n`, sometimes without a last line ending.
//! Every parser must return a value or an error that names the line; none may
//! panic or grow without bound.

use proptest::prelude::*;

/// How many cases each parser's property runs: about a second each alone (2000
/// found nothing more than 500 and cost CI a minute of the VMs' CPU).
pub const CASES: u32 = 500;

/// Lines of a text file: `near` are fragments of the format (kept as they are,
/// or cut, or with a character of `junk` put in), mixed with arbitrary lines.
pub fn text(near: &'static [&'static str]) -> BoxedStrategy<String> {
    let fragment = proptest::sample::select(near);
    let line = prop_oneof![
        4 => fragment.clone().prop_map(str::to_string),
        2 => (fragment.clone(), any::<prop::sample::Index>()).prop_map(|(f, i)| {
            let chars: Vec<char> = f.chars().collect();
            chars[..i.index(chars.len() + 1)].iter().collect::<String>()
        }),
        2 => (fragment, any::<char>(), any::<prop::sample::Index>()).prop_map(|(f, c, i)| {
            let mut chars: Vec<char> = f.chars().collect();
            chars.insert(i.index(chars.len() + 1), c);
            chars.into_iter().collect::<String>()
        }),
        2 => any::<String>(),
        1 => "[\\PC\\t ]{0,300}",
        1 => Just("x".repeat(20_000)),
    ];
    (proptest::collection::vec(line, 0..40), any::<bool>(), any::<bool>())
        .prop_map(|(lines, crlf, last)| {
            let mut text = lines.join(if crlf { "\r\n" } else { "\n" });
            if last && !text.is_empty() {
                text.push('\n');
            }
            text
        })
        .boxed()
}

/// The number of lines `text` has, as an error's line number may name them
/// (a last line without its ending counts; one past the end names the end).
pub fn line_count(text: &str) -> usize {
    text.lines().count() + 1
}
