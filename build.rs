//! Records the commit the binary is built from for `edge-setup --version`:
//! `EDGE_SETUP_COMMIT` when set (a build outside git), else git's short hash,
//! else "unknown".

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// Rebuild when this file of the repository changes; a missing file is left out
/// (cargo would take it as changed on every build).
fn watch(git_path: &str) {
    if let Some(p) = git(&["rev-parse", "--git-path", git_path]).map(PathBuf::from)
        && p.exists()
    {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=EDGE_SETUP_COMMIT");
    let commit = match std::env::var("EDGE_SETUP_COMMIT") {
        Ok(c) if !c.is_empty() => c,
        _ => {
            // rebuild when HEAD moves: the HEAD file, the branch it names, packed refs
            watch("HEAD");
            watch("packed-refs");
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                watch(&branch);
            }
            git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
        }
    };
    println!("cargo:rustc-env=EDGE_SETUP_COMMIT={commit}");
}
