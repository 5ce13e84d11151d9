//! Build tasks beside cargo (`cargo xtask ...`, see .cargo/config.toml).
//!
//! `cargo xtask assets [DIR]` writes what the packages ship besides the binary,
//! into DIR (default target/assets): the man pages generated from the clap
//! definitions (`man/edge-setup.1.gz`, one page per subcommand such as
//! `man/edge-setup-vnc-user.1.gz`), the completion scripts for bash, zsh and
//! fish (`completions/`), and the copyright file (`copyright`: edge-setup's own
//! notice, then every crate linked into the binary with its licence and the
//! licence texts it ships). A file whose content is unchanged is not rewritten,
//! so a second run leaves the packages nothing to rebuild.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::CommandFactory;
use clap_complete::Shell;
use edge_setup::cli::Cli;

mod man;

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["assets"] => assets(Path::new("target/assets")),
        ["assets", dir] => assets(Path::new(dir)),
        _ => Err("usage: cargo xtask assets [DIR]   (default DIR: target/assets)".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn assets(dir: &Path) -> Result<()> {
    let mut written = 0;
    let mut pages = Vec::new();
    man_pages(Cli::command(), &mut pages)?;
    let names: BTreeSet<String> = pages.iter().map(|(name, _)| format!("{name}.1.gz")).collect();
    for (name, roff) in &pages {
        written += write_if_changed(&dir.join("man").join(format!("{name}.1.gz")), &gzip(roff)?)?;
    }
    // a page of a subcommand that no longer exists must not be packaged
    for stale in list(&dir.join("man"))?.into_iter().filter(|n| !names.contains(n)) {
        std::fs::remove_file(dir.join("man").join(&stale)).map_err(|e| format!("cannot remove {stale}: {e}"))?;
    }
    for (shell, file) in [
        (Shell::Bash, "edge-setup.bash"),
        (Shell::Zsh, "_edge-setup"),
        (Shell::Fish, "edge-setup.fish"),
    ] {
        let script = edge_setup::commands::completions::script(shell).map_err(|e| e.to_string())?;
        written += write_if_changed(&dir.join("completions").join(file), script.as_bytes())?;
    }
    written += write_if_changed(&dir.join("copyright"), copyright()?.as_bytes())?;
    println!(
        "{}: {} man pages, 3 completion scripts, the copyright file ({written} written, the rest unchanged)",
        dir.display(),
        pages.len()
    );
    Ok(())
}

/// The page of `cmd` and of each subcommand below it, named as `man` finds
/// them (`edge-setup-setup-network`), without the generated `help` subcommand.
fn man_pages(cmd: clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let readme =
        man::Readme::parse(&std::fs::read_to_string("README.md").map_err(|e| format!("cannot read README.md: {e}"))?)?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let version = edge_setup::cli::VERSION.split(' ').next().unwrap_or_default();
    fn walk(
        cmd: clap::Command,
        path: &str,
        readme: &man::Readme,
        version: &str,
        out: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<()> {
        let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
        let subcommands: Vec<String> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_string())
            .collect();
        let page = cmd.clone().override_usage(man::usage(&cmd, path));
        let mut roff = Vec::new();
        clap_mangen::Man::new(page)
            .source(format!("edge-setup {version}"))
            .manual("edge-setup")
            .render(&mut roff)
            .map_err(|e| format!("cannot render the page of {name}: {e}"))?;
        roff.extend_from_slice(man::extra_sections(readme, path, &subcommands).as_bytes());
        // left-aligned from the title on: file names, paths and commands are long words
        // that justified lines cannot fit ("cannot adjust line")
        let roff = man::left_aligned(&roff);
        out.push((name, roff));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub.clone(), &format!("{path} {}", sub.get_name()), readme, version, out)?;
        }
        Ok(())
    }
    walk(cmd, "edge-setup", &readme, version, out)
}

/// gzip with no name and no time in the header: the same page, the same bytes.
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut z = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    z.write_all(data)
        .and_then(|()| z.finish())
        .map_err(|e| format!("cannot compress: {e}"))
}

fn list(dir: &Path) -> Result<Vec<String>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot list {}: {e}", dir.display())),
    }
}

/// Writes `data` to `path` unless it holds exactly that; 1 when written.
fn write_if_changed(path: &Path, data: &[u8]) -> Result<usize> {
    if std::fs::read(path).is_ok_and(|old| old == data) {
        return Ok(0);
    }
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no directory", path.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(1)
}

/// One crate linked into the binary.
struct Crate {
    name: String,
    version: String,
    license: String,
    dir: PathBuf,
}

/// edge-setup's notice (COPYRIGHT), then the crates the release binary links,
/// each with its licence expression, then each licence text they ship, once,
/// naming the crates it belongs to.
fn copyright() -> Result<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let own = std::fs::read_to_string(root.join("COPYRIGHT")).map_err(|e| format!("cannot read COPYRIGHT: {e}"))?;
    let crates = linked_crates(&root)?;
    let mut text = own.trim_end().to_string();
    text.push_str(
        "\n\n/usr/bin/edge-setup is statically linked with these Rust crates, each under its own licence:\n\n",
    );
    let width = crates
        .iter()
        .map(|c| c.name.len() + c.version.len() + 1)
        .max()
        .unwrap_or(0);
    for c in &crates {
        let id = format!("{} {}", c.name, c.version);
        text.push_str(&format!("  {id:width$}  {}\n", c.license));
    }
    // the same text (an Apache-2.0 licence, say) is printed once for all its crates
    let mut texts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &crates {
        for file in list(&c.dir)? {
            let upper = file.to_ascii_uppercase();
            if ["LICENSE", "LICENCE", "COPYING", "NOTICE", "UNLICENSE"]
                .iter()
                .any(|p| upper.starts_with(p))
            {
                let path = c.dir.join(&file);
                if path.is_file() {
                    let body =
                        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    texts
                        .entry(body.trim().to_string())
                        .or_default()
                        .push(format!("{} {} ({file})", c.name, c.version));
                }
            }
        }
    }
    text.push_str("\nThe licence texts these crates ship follow, each once, after the crates it comes with.\n");
    for (body, owners) in &texts {
        text.push_str(&format!("\n==== {}\n\n{body}\n", owners.join(", ")));
    }
    Ok(text)
}

/// The platform the binary is built for (the host's: the packages are native builds).
fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .ok_or_else(|| "rustc -vV names no host".to_string())
}

/// The crates the release binary links: edge-setup's normal dependencies,
/// transitively (no build or dev dependencies, no proc-macros), for the host
/// platform, from `cargo metadata`.
fn linked_crates(root: &Path) -> Result<Vec<Crate>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            &host_triple()?,
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let packages: BTreeMap<&str, &serde_json::Value> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: BTreeMap<&str, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let start = packages
        .iter()
        .find(|(_, p)| p["name"] == "edge-setup")
        .map(|(id, _)| *id)
        .ok_or("cargo metadata does not list edge-setup")?;
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(id) = todo.pop() {
        for dep in nodes.get(id).and_then(|n| n["deps"].as_array()).into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            // a proc-macro runs in the compiler: neither it nor what it uses is linked
            let proc_macro = |id: &str| {
                packages
                    .get(id)
                    .and_then(|p| p["targets"].as_array())
                    .into_iter()
                    .flatten()
                    .any(|t| t["kind"].as_array().into_iter().flatten().any(|k| k == "proc-macro"))
            };
            if let Some(pkg) = dep["pkg"].as_str()
                && normal
                && !proc_macro(pkg)
                && seen.insert(pkg)
            {
                todo.push(pkg);
            }
        }
    }
    let mut crates: Vec<Crate> = seen
        .into_iter()
        .filter_map(|id| packages.get(id))
        .map(|p| Crate {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            version: p["version"].as_str().unwrap_or_default().to_string(),
            license: p["license"].as_str().unwrap_or("(see its licence file)").to_string(),
            dir: Path::new(p["manifest_path"].as_str().unwrap_or_default())
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        })
        .collect();
    crates.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    Ok(crates)
}
