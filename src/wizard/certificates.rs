//! Option 3, Update license and SSL certificates: new files for the domain set
//! by option 2, checked like there, each replaced atomically. The files they
//! replace are kept in `/var/lib/edge-setup/previous/` for `--rollback`; a
//! failed write puts back the ones already replaced.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::config_dat::{self, ConfigDat};
use super::input::Input;
use super::post_install::{self, Files, InstalledFiles, State};
use super::unit::{self, Apply, At, Session};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::hooks;
use crate::system::fs::FileSpec;

/// Copies of the files the last update replaced, with a manifest.
pub const PREVIOUS_DIR: &str = "/var/lib/edge-setup/previous";
const MANIFEST: &str = "/var/lib/edge-setup/previous/certificates.json";

/// One installed file as it was before the last update.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Saved {
    path: PathBuf,
    /// The copy in PREVIOUS_DIR; `None` when the file did not exist.
    copy: Option<PathBuf>,
    mode: u32,
}

/// An installed file before the update: content (`None`: absent), mode, and
/// whether the update leaves it as it is.
struct Old {
    path: PathBuf,
    before: Option<Zeroizing<Vec<u8>>>,
    mode: u32,
    same: bool,
}

/// `[certificates]`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Table {
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub licence: Option<PathBuf>,
    pub apama_licence: Option<PathBuf>,
}

impl unit::Table for Table {
    const NAME: &'static str = "certificates";

    fn secret_files(&self) -> Vec<&Path> {
        self.key.as_deref().into_iter().collect()
    }

    fn plan(&self, ctx: &Ctx, at: &At, session: &mut Session) -> Result<Option<Box<dyn Apply>>> {
        let state = session.post_install_state(ctx)?;
        let prepared = prepare(ctx, &at.input(), &state)?;
        Ok(Some(Box::new(post_install::WithState { prepared, state, apply })))
    }
}

/// Validated files of option 3, ready to install.
pub struct Prepared {
    files: Files,
}

pub fn prepare(ctx: &Ctx, input: &Input, state: &State) -> Result<Prepared> {
    ctx.sys.require_root("setup certificates")?;
    let saved = ConfigDat::saved(&ctx.sys);
    ctx.out.info(&format!(
        "The files must be for the tenant domain {} (set by the post-installation).",
        state.tenant_domain
    ));
    // Not giving an Apama licence keeps the installed one.
    let apama = post_install::ApamaBlank {
        prompt: "Apama licence path (.xml, leave blank to keep the installed one)",
        default: String::new(),
    };
    let files = post_install::gather_files(ctx, input, &state.tenant_domain, saved.as_ref(), apama)?;
    Ok(Prepared { files })
}

#[derive(Serialize)]
struct Payload<'a> {
    tenant_domain: &'a str,
    files: &'a InstalledFiles,
}

pub fn apply(ctx: &Ctx, state: &State, p: &Prepared) -> Result<()> {
    let apama = p.files.apama.is_some() || state.files.apama_licence.is_some();
    let installed = InstalledFiles::for_domain(&state.tenant_domain, apama);
    let targets = p.files.targets(&installed);
    let mut old = Vec::new();
    for (_, path, bytes, spec) in &targets {
        let before = ctx.sys.read(path)?.map(Zeroizing::new);
        let mode = ctx.sys.meta(path)?.map(|m| m.mode);
        let same = before.as_deref().map(Vec::as_slice) == Some(*bytes) && mode == Some(spec.mode);
        old.push(Old {
            path: path.to_path_buf(),
            before,
            mode: mode.unwrap_or(spec.mode),
            same,
        });
    }
    if old.iter().all(|o| o.same) {
        ctx.out
            .info("The installed certificate, key and licences are already these files; nothing to replace.");
    } else {
        keep_previous(ctx, &old)?;
        for (i, (what, path, bytes, spec)) in targets.iter().enumerate() {
            let step = ctx.out.step(&format!("Replacing {what} {}", path.display()));
            match ctx.sys.write(path, bytes, *spec) {
                Ok(change) => step.done(ctx.sys.change_word(change)),
                Err(e) => {
                    restore(ctx, &old[..i]);
                    return Err(
                        e.hint("the files replaced before it were put back; fix the cause and run the option again")
                    );
                }
            }
        }
    }

    let step = ctx.out.step(&format!("Saving the answers to {}", config_dat::PATH));
    let mut dat = ConfigDat::default();
    p.files.record(&ctx.sys, &mut dat)?;
    step.done(ctx.sys.change_word(dat.save_merged(&ctx.sys)?));

    // the platform has these files already: no new record, no platform step
    if old.iter().all(|o| o.same) {
        return Ok(());
    }
    record_and_run_steps(ctx, state, installed)?;
    if ctx.sys.meta(Path::new(MANIFEST))?.is_some() {
        ctx.out.info(
            "Certificates updated. To put the previous files back: sudo edge-setup setup certificates --rollback",
        );
    }
    Ok(())
}

/// Copies the files about to be replaced to PREVIOUS_DIR and writes the manifest.
fn keep_previous(ctx: &Ctx, old: &[Old]) -> Result<()> {
    let step = ctx.out.step(&format!("Keeping the current files in {PREVIOUS_DIR}"));
    let mut manifest = Vec::new();
    for Old { path, before, mode, .. } in old {
        let copy = match before {
            Some(bytes) => {
                let name = path.file_name().expect("installed files have names");
                let copy = Path::new(PREVIOUS_DIR).join(name);
                ctx.sys.write(&copy, bytes, FileSpec::root(*mode))?;
                Some(copy)
            }
            None => None,
        };
        manifest.push(Saved {
            path: path.clone(),
            copy,
            mode: *mode,
        });
    }
    let json = serde_json::to_string_pretty(&manifest).expect("the manifest serialises") + "\n";
    ctx.sys
        .write(Path::new(MANIFEST), json.as_bytes(), FileSpec::root(0o600))?;
    step.done("kept");
    Ok(())
}

/// Puts back files already replaced when a later write failed (best effort:
/// the original error is the one reported).
fn restore(ctx: &Ctx, old: &[Old]) {
    for Old { path, before, mode, .. } in old {
        let result = match before {
            Some(bytes) => ctx.sys.write(path, bytes, FileSpec::root(*mode)).map(drop),
            None => ctx.sys.remove(path).map(drop),
        };
        if let Err(e) = result {
            ctx.out
                .warn(&format!("could not put back {}: {}", path.display(), e.what));
        }
    }
}

/// `setup certificates --rollback`: the files of before the last update, then
/// the platform steps so the platform loads them.
pub fn rollback(ctx: &Ctx, state: &State) -> Result<()> {
    ctx.sys.require_root("setup certificates --rollback")?;
    let text = ctx.sys.read_string(Path::new(MANIFEST))?.ok_or_else(|| {
        Error::failure("there are no previous certificate files to put back").why(format!(
            "{MANIFEST} does not exist: no update has replaced files since the last rollback"
        ))
    })?;
    let manifest: Vec<Saved> = serde_json::from_str(&text).map_err(|e| {
        Error::failure(format!(
            "{} is damaged",
            ctx.sys.host_path(Path::new(MANIFEST)).display()
        ))
        .why(e)
        .hint(format!("put the files back by hand from {PREVIOUS_DIR}"))
    })?;
    let mut copies = Vec::new();
    for s in &manifest {
        match &s.copy {
            Some(copy) => {
                let bytes = Zeroizing::new(ctx.sys.read(copy)?.ok_or_else(|| {
                    Error::failure(format!("the kept copy {} is missing", copy.display()))
                        .hint("put the files back by hand")
                })?);
                copies.push((s, Some(bytes)));
            }
            None => copies.push((s, None)),
        }
    }
    for (s, bytes) in &copies {
        let step = ctx.out.step(&format!("Putting back {}", s.path.display()));
        match bytes {
            Some(b) => step.done(ctx.sys.change_word(ctx.sys.write(&s.path, b, FileSpec::root(s.mode))?)),
            None => {
                ctx.sys.remove(&s.path)?;
                step.done("removed (it did not exist before)");
            }
        }
    }
    for (s, _) in &copies {
        if let Some(copy) = &s.copy {
            ctx.sys.remove(copy)?;
        }
    }
    ctx.sys.remove(Path::new(MANIFEST))?;
    let apama = InstalledFiles::for_domain(&state.tenant_domain, true).apama_licence;
    let has_apama = match &apama {
        Some(p) => ctx.sys.meta(p)?.is_some(),
        None => false,
    };
    record_and_run_steps(ctx, state, InstalledFiles::for_domain(&state.tenant_domain, has_apama))
}

/// Records the installed files in the state, then runs the platform steps so
/// the platform loads them.
fn record_and_run_steps(ctx: &Ctx, state: &State, installed: InstalledFiles) -> Result<()> {
    let step = ctx
        .out
        .step(&format!("Recording the update in {}", post_install::STATE_PATH));
    let new_state = State {
        files: installed,
        certificates_updated_at: Some(post_install::now_rfc3339()),
        ..state.clone()
    };
    step.done(ctx.sys.change_word(post_install::write_state(ctx, &new_state)?));
    let payload = Payload {
        tenant_domain: &state.tenant_domain,
        files: &new_state.files,
    };
    hooks::run(&ctx.sys, "certificates", &payload).map(drop)
}
