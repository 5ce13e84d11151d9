//! `edge-setup vnc-user`: enables a user for VNC (replaces vnc-user-setup.sh).
//!
//! Privilege model:
//! - As root (`sudo edge-setup vnc-user [--user NAME]`) and in image mode
//!   (`--root`), everything runs in this process; files in the user's home are
//!   written with the user's file-system identity.
//! - As an ordinary user, this process reads the passwords and writes the
//!   password file and session settings in the user's own home, as the user;
//!   then it runs the privileged part, `sudo -n edge-setup vnc-user
//!   --system-part`, which the sudoers rule of `edge-setup vnc` allows the
//!   `vncusers` group. No secret crosses that boundary, and the privileged part
//!   takes the identity from SUDO_UID only, so a user can only act for
//!   themselves.
//!
//! The display mappings are changed under one exclusive lock, and both files
//! are put in place together (`System::commit`), so concurrent runs get
//! distinct displays and a kill leaves both files old or both new. The lock
//! is held only for that read-allocate-commit (`transact`): nothing prints or
//! runs a program while holding it, and it is waited for at most
//! `vnc.lock-wait`. A user's files are read (`UserFiles`) with their rights
//! and checked (regular, theirs, one link, small) before any lock is taken.

pub mod mapping;
pub mod password;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::cli::VncUserArgs;
use crate::config::{Geometry, Listen, VNC_GEOMETRY, VNC_LISTEN};
use crate::context::Ctx;
use crate::error::{Error, Kind, Result, exit};
use crate::prompt::Question;
use crate::system::fs::{Change, FileKind, FileSpec, as_user};
use crate::system::os_release::Family;
use crate::system::runner::{Cmd, Tool};
use crate::system::users::UserInfo;
use crate::system::{Batch, System};
use crate::tigervnc::{self, MAPPING_FILE, MAPPING_LOCK, SESSION, SYSTEM_PART_ARG, USERS_FILE, VNC_GROUP, Version};
use mapping::{Mappings, Source};

/// How the privileged part reports the display to the user's process.
const DISPLAY_PREFIX: &str = "display=";
/// The longest password line read from stdin (TigerVNC uses 8 characters).
const PASSWORD_LINE_MAX: usize = 256;
/// The most root reads of a user's session settings and password file.
const CONFIG_MAX: u64 = 64 * 1024;
const PASSWD_MAX: u64 = 16;

/// Where a user's VNC files are, for the installed TigerVNC.
struct Target {
    user: UserInfo,
    family: Family,
    /// `~/.vnc` (TigerVNC < 1.14) or `~/.config/tigervnc`.
    dir: PathBuf,
    passwd: PathBuf,
    config: PathBuf,
    /// Said when the TigerVNC version had to be assumed.
    version_note: Option<String>,
}

impl Target {
    fn new(ctx: &Ctx, family: Family, user: UserInfo) -> Result<Target> {
        let (version, version_note) = match tigervnc::installed_version(&ctx.sys, family)? {
            Some(v) => (v, None),
            None => (
                Version::DEBIAN_12,
                Some(format!(
                    "TigerVNC is not installed{}; assuming version {}.{} (Debian 12), which reads ~/.vnc",
                    if ctx.sys.is_image() { " in this image" } else { "" },
                    Version::DEBIAN_12.0,
                    Version::DEBIAN_12.1
                )),
            ),
        };
        let dir = version.user_dir(&user.home);
        Ok(Target {
            passwd: dir.join("passwd"),
            config: dir.join("config"),
            dir,
            user,
            family,
            version_note,
        })
    }

    /// The directories to create, outermost first: `~/.config` too for 1.14.
    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.dir.clone()];
        if let Some(parent) = self.dir.parent().filter(|p| *p != self.user.home) {
            dirs.insert(0, parent.to_path_buf());
        }
        dirs
    }

    fn unit(&self, display: u32) -> String {
        tigervnc::unit(self.family, display)
    }
}

/// The passwords, zeroized when dropped.
pub struct Passwords {
    full: Zeroizing<String>,
    view_only: Option<Zeroizing<String>>,
}

impl Passwords {
    /// Checks both by the rules of `vnc-user` (the refusal says which and why).
    pub fn new(full: Zeroizing<String>, view_only: Option<Zeroizing<String>>) -> Result<Passwords, String> {
        password::check(&full).map_err(|rule| format!("the VNC password is refused: {rule}"))?;
        if let Some(v) = &view_only {
            check_view_only(&full, v).map_err(|rule| format!("the view-only password is refused: {rule}"))?;
        }
        Ok(Passwords { full, view_only })
    }

    fn file(&self) -> Zeroizing<Vec<u8>> {
        password::encode(&self.full, self.view_only.as_deref().map(String::as_str))
    }
}

/// What the privileged part (`--system-part`) is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Record the display and start the session; `restart` when the user part changed
    /// the password file or the settings of a session that may be running.
    Enable {
        restart: bool,
    },
    Remove,
}

/// The session settings from the configuration.
struct Settings {
    listen: Listen,
    geometry: Geometry,
    /// How long to wait for the mapping lock (`vnc.lock-wait`).
    lock_wait: Duration,
}

/// `edge-setup vnc-user [--user NAME] [--password-stdin] [--remove]`.
pub fn run(ctx: &Ctx, args: &VncUserArgs) -> Result<()> {
    if args.system_part {
        let part = if args.remove {
            Part::Remove
        } else {
            Part::Enable { restart: args.restart }
        };
        return system_part(ctx, part);
    }
    let (target, delegated) = target_of(ctx, args.user.as_deref())?;
    if args.remove {
        return if delegated {
            remove_delegated(ctx, &target)
        } else {
            remove_here(ctx, &target)
        };
    }
    enable(ctx, &target, delegated, || read_passwords(ctx, args.password_stdin))
}

/// `vnc-user --user NAME` with passwords another front end has read and
/// checked (an answers file's password file), instead of stdin or a prompt.
pub fn enable_user(ctx: &Ctx, name: &str, passwords: Passwords) -> Result<()> {
    let (target, delegated) = target_of(ctx, Some(name))?;
    enable(ctx, &target, delegated, || Ok(passwords))
}

/// The user's VNC files for the installed TigerVNC, and whether the privileged
/// part must go through sudo (an ordinary user on a live system).
fn target_of(ctx: &Ctx, named: Option<&str>) -> Result<(Target, bool)> {
    let family = ctx.sys.os_release()?.family()?;
    let user = target_user(ctx, named)?;
    let target = Target::new(ctx, family, user)?;
    if let Some(note) = &target.version_note {
        ctx.out.note(note);
    }
    Ok((target, !ctx.sys.is_image() && !ctx.is_root()))
}

fn enable(ctx: &Ctx, target: &Target, delegated: bool, passwords: impl FnOnce() -> Result<Passwords>) -> Result<()> {
    require_home(ctx, &target.user)?;
    let cfg = ctx.config()?;
    let settings = Settings {
        listen: cfg.require(&ctx.sys, VNC_LISTEN)?,
        geometry: cfg.require(&ctx.sys, VNC_GEOMETRY)?,
        lock_wait: cfg.lock_wait(&ctx.sys)?,
    };
    // Everything that can be refused is checked before the passwords are asked
    // (and before any lock is taken).
    let (preview, _) = load_mappings(&ctx.sys)?;
    check_name(&target.user.name)?;
    if preview.display_of(&target.user.name).is_none() && preview.allocate(|_| false).is_none() {
        return Err(no_free_display(&target.user));
    }
    check_user_paths(ctx, target)?;
    let existing = UserFiles::read(ctx, target)?;
    let passwords = passwords()?;
    let display = if delegated {
        enable_delegated(
            ctx,
            target,
            &settings,
            &existing,
            &passwords,
            preview.display_of(&target.user.name),
        )?
    } else {
        enable_here(ctx, target, &settings, &existing, &passwords)?
    };
    print_summary(ctx, &target.user, display, settings.listen);
    Ok(())
}

/// The user to act for. Without root only oneself; root names the user or
/// acts for the one who ran sudo; image mode needs the name.
fn target_user(ctx: &Ctx, named: Option<&str>) -> Result<UserInfo> {
    let users = ctx.sys.users();
    if ctx.sys.is_image() {
        let name = named.ok_or_else(|| {
            Error::bad_input("which user? --user NAME is needed with --root")
                .hint("for example: edge-setup --root IMAGE vnc-user --user admin --password-stdin")
        })?;
        return users.require(name);
    }
    if ctx.is_root() {
        if let Some(name) = named {
            return users.require(name);
        }
        if let Some(uid) = ctx.sudo_uid() {
            return users
                .by_uid(uid)?
                .ok_or_else(|| Error::failure(format!("there is no user with uid {uid} (from SUDO_UID)")));
        }
        return Err(
            Error::bad_input("which user? Running as root, vnc-user needs --user NAME").hint(
                "run it as the user (edge-setup vnc-user), or name the user: sudo edge-setup vnc-user --user NAME",
            ),
        );
    }
    let me = users
        .by_uid(ctx.uid)?
        .ok_or_else(|| Error::failure(format!("there is no user with uid {} on this system", ctx.uid)))?;
    if let Some(name) = named
        && name != me.name
    {
        return Err(
            Error::not_permitted(format!("{} cannot enable VNC for another user ({name})", me.name)).hint(format!(
                "run it as {name}, or ask an administrator: sudo edge-setup vnc-user --user {name}"
            )),
        );
    }
    Ok(me)
}

fn require_home(ctx: &Ctx, user: &UserInfo) -> Result<()> {
    match ctx.sys.meta(&user.home)? {
        Some(m) if m.is_dir => Ok(()),
        _ => Err(Error::failure(format!(
            "the home directory {} of {} does not exist",
            ctx.sys.host_path(&user.home).display(),
            user.name
        ))
        .hint(format!(
            "create it (sudo mkhomedir_helper {}) and run the command again",
            user.name
        ))),
    }
}

fn check_name(name: &str) -> Result<()> {
    mapping::check_user_name(name).map_err(|why| Error::bad_input(format!("cannot enable VNC for '{name}'")).why(why))
}

fn read_passwords(ctx: &Ctx, from_stdin: bool) -> Result<Passwords> {
    const NONINTERACTIVE: &str = "--password-stdin (the password on the first line of standard input, an optional view-only password on the second)";
    if from_stdin {
        let full = ctx.read_stdin_line(PASSWORD_LINE_MAX)?.ok_or_else(|| {
            Error::bad_input("--password-stdin was given but standard input is empty")
                .hint("give the password on the first line: printf '%s\\n' \"$PASSWORD\" | edge-setup vnc-user --password-stdin")
        })?;
        password::check(&full)
            .map_err(|rule| Error::bad_input("the VNC password on standard input was refused").why(rule))?;
        let view_only = ctx.read_stdin_line(PASSWORD_LINE_MAX)?.filter(|v| !v.is_empty());
        if let Some(v) = &view_only {
            check_view_only(&full, v).map_err(|rule| {
                Error::bad_input("the view-only password (line 2 of standard input) was refused").why(rule)
            })?;
        }
        return Ok(Passwords { full, view_only });
    }
    let full = ctx.prompt.secret(
        Question {
            prompt: "VNC password",
            noninteractive: NONINTERACTIVE,
        },
        true,
        &password::check,
    )?;
    let wants_view_only = ctx.prompt.confirm(
        Question {
            prompt: "Would you like to enter a view-only password?",
            noninteractive: NONINTERACTIVE,
        },
        false,
    )?;
    let view_only = if wants_view_only {
        Some(ctx.prompt.secret(
            Question {
                prompt: "View-only password",
                noninteractive: NONINTERACTIVE,
            },
            true,
            &|v| check_view_only(&full, v),
        )?)
    } else {
        None
    };
    Ok(Passwords { full, view_only })
}

fn check_view_only(full: &str, view_only: &str) -> Result<(), String> {
    password::check(view_only)?;
    if view_only == full {
        return Err("the view-only password must differ from the full-access one (VNC would grant full access)".into());
    }
    Ok(())
}

// ---- the display mappings ------------------------------------------------------

/// Reads and parses both mapping files; a symbolic link at either is refused
/// before anything is written.
pub fn load_mappings(sys: &System) -> Result<(Mappings, Vec<String>)> {
    let mut texts = Vec::new();
    for path in [MAPPING_FILE, USERS_FILE] {
        let path = Path::new(path);
        // vncserver.users decides which user each session runs as: only root may
        // change it or the directories that hold it.
        sys.check_controlled(path)?;
        texts.push(sys.read_string(path)?.unwrap_or_default());
    }
    let (a, t) = (
        sys.host_path(Path::new(MAPPING_FILE)),
        sys.host_path(Path::new(USERS_FILE)),
    );
    Mappings::parse(
        &Source {
            path: &a,
            text: &texts[0],
        },
        &Source {
            path: &t,
            text: &texts[1],
        },
    )
}

/// Changes the display mappings: under the exclusive lock (none with
/// `--dry-run`, which writes nothing, not even the lock file), loads both files,
/// lets `change` edit them and stage more files into the same batch, and puts
/// everything in place together. Nothing here prints or waits on another
/// program, so a caller whose output nobody reads cannot hold the lock for
/// others. Returns what `change` returned, how the mapping files changed, and
/// the notes of parsing them, for the caller to print after the lock is gone.
fn transact<T>(
    sys: &System,
    wait: Duration,
    change: impl FnOnce(&mut Mappings, &mut Batch) -> Result<T>,
) -> Result<(T, Change, Vec<String>)> {
    let guard = sys.lock(Path::new(MAPPING_LOCK), wait)?;
    let (mut m, notes) = load_mappings(sys)?;
    if guard.is_some() {
        for p in [MAPPING_FILE, USERS_FILE] {
            sys.remove_stale_temps(Path::new(p))?;
        }
    }
    let mut batch = Batch::default();
    let out = change(&mut m, &mut batch)?;
    let changed = stage_mappings(sys, &mut batch, &m)?;
    sys.commit(batch)?;
    drop(guard);
    Ok((out, changed, notes))
}

/// Stages both mapping files (root, 0644) into the batch.
fn stage_mappings(sys: &System, batch: &mut Batch, m: &Mappings) -> Result<Change> {
    let spec = FileSpec::root(0o644);
    let a = sys.stage(batch, Path::new(MAPPING_FILE), m.appliance.render().as_bytes(), spec)?;
    let t = sys.stage(batch, Path::new(USERS_FILE), m.tigervnc.render().as_bytes(), spec)?;
    Ok(if a == Change::Unchanged { t } else { a })
}

/// X servers running on this host: display -> owner uid. A display counts when
/// its `/tmp/.XN-lock` is a regular file naming a live process (the X server's
/// own rule), or `/tmp/.X11-unix/XN` is a socket in a root-owned 1777 directory.
/// Anything else any user could plant in /tmp (a stale or fake lock file, a
/// link, a directory of their own) is no information, never an error. An image
/// runs nothing.
fn x_servers(sys: &System) -> BTreeMap<u32, u32> {
    let mut found = BTreeMap::new();
    if sys.is_image() {
        return found;
    }
    let root = sys;
    for name in root.list_dir(Path::new("/tmp")).unwrap_or_default() {
        let name = name.to_string_lossy();
        let Some(n) = name
            .strip_prefix(".X")
            .and_then(|s| s.strip_suffix("-lock"))
            .and_then(display_number)
        else {
            continue;
        };
        if let Some(owner) = live_lock(sys, &Path::new("/tmp").join(name.as_ref())) {
            found.entry(n).or_insert(owner);
        }
    }
    let sockets = Path::new("/tmp/.X11-unix");
    let sound = matches!(root.kind(sockets), Ok(Some(FileKind::Dir)))
        && root
            .meta(sockets)
            .ok()
            .flatten()
            .is_some_and(|m| root.trusts(m.uid) && m.mode == 0o1777);
    if sound {
        for name in root.list_dir(sockets).unwrap_or_default() {
            let name = name.to_string_lossy();
            let Some(n) = name.strip_prefix('X').and_then(display_number) else {
                continue;
            };
            let path = sockets.join(name.as_ref());
            if let (Ok(Some(FileKind::Socket)), Ok(Some(meta))) = (root.kind(&path), root.meta(&path)) {
                found.entry(n).or_insert(meta.uid);
            }
        }
    }
    found
}

/// The owner of an X lock file that is a regular file naming a live process
/// ("%10d\n", as the X server writes it).
fn live_lock(sys: &System, path: &Path) -> Option<u32> {
    let (text, meta) = sys.read_small(path, 64).ok()??;
    let pid = std::str::from_utf8(&text).ok()?.trim().parse::<i32>().ok()?;
    sys.process_alive(pid).then_some(meta.uid)
}

/// Removes `/tmp/.XN-lock` for the display about to start when it names no
/// live process: Debian's wrapper refuses a display whose lock file exists at
/// all, and in the sticky /tmp only its owner (or root) can remove it, so one
/// left by a crash or planted by another user would stop the session.
fn clear_stale_lock(ctx: &Ctx, display: u32) {
    let sys = &ctx.sys;
    let path = PathBuf::from(format!("/tmp/.X{display}-lock"));
    if sys.is_image() || !matches!(sys.kind(&path), Ok(Some(_))) || live_lock(sys, &path).is_some() {
        return;
    }
    match sys.remove(&path) {
        Ok(true) => ctx.out.note(&format!(
            "removed {}: it named no running X server and would have stopped the session on :{display}",
            path.display()
        )),
        Ok(false) => {}
        Err(e) => ctx.out.warn(&format!(
            "{} names no running X server, but it could not be removed ({e}); the session on :{display} may not start",
            path.display()
        )),
    }
}

/// A display number as X names it: digits without a leading zero (`.X0003-lock` is not display 3).
fn display_number(s: &str) -> Option<u32> {
    let canonical = s == "0" || (!s.starts_with('0') && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    canonical.then(|| s.parse().ok()).flatten()
}

/// The user's display: the one recorded, else the lowest free one that no
/// other X server (`servers`) holds. Also returns the displays skipped for
/// being held, for the caller to say after the lock is released.
fn choose_display(m: &mut Mappings, user: &UserInfo, servers: &BTreeMap<u32, u32>) -> Result<Chosen> {
    if let Some(d) = m.display_of(&user.name) {
        return Ok(Chosen {
            display: d,
            kept: true,
            skipped: Vec::new(),
        });
    }
    let foreign = |n: u32| servers.get(&n).is_some_and(|owner| *owner != user.uid);
    let display = m.allocate(foreign).ok_or_else(|| no_free_display(user))?;
    let used = m.used();
    let skipped = (1..display).filter(|n| !used.contains(n) && foreign(*n)).collect();
    m.assign(&user.name, display);
    Ok(Chosen {
        display,
        kept: false,
        skipped,
    })
}

struct Chosen {
    display: u32,
    /// The display was recorded already.
    kept: bool,
    skipped: Vec<u32>,
}

fn note_skipped(ctx: &Ctx, skipped: &[u32]) {
    for n in skipped {
        ctx.out.note(&format!(
            "display :{n} is held by another X server (/tmp/.X{n}-lock or /tmp/.X11-unix/X{n}); skipping it"
        ));
    }
}

fn no_free_display(user: &UserInfo) -> Error {
    Error::failure(format!(
        "no free VNC display for {}: all {} displays are taken",
        user.name,
        tigervnc::MAX_DISPLAY
    ))
    .why(format!(
        "{MAPPING_FILE} lists every display from 1 to {}, or another X server holds the rest",
        tigervnc::MAX_DISPLAY
    ))
    .hint("free one for a user who no longer needs VNC: sudo edge-setup vnc-user --remove --user NAME; nothing was changed")
}

// ---- the user's files ----------------------------------------------------------

/// The per-user server settings: our three keys set, every other line kept.
fn session_config(existing: Option<&str>, settings: &Settings) -> String {
    let localhost = match settings.listen {
        Listen::Localhost => "localhost".to_string(),
        // Debian's wrapper listens on localhost unless told otherwise.
        Listen::Lan => "localhost=no".to_string(),
    };
    let ours = [
        ("session", format!("session={SESSION}")),
        (
            "geometry",
            format!("geometry={}x{}", settings.geometry.width, settings.geometry.height),
        ),
        ("localhost", localhost),
    ];
    let key_of = |line: &str| {
        let t = line.trim();
        (!t.starts_with('#')).then(|| t.split('=').next().unwrap_or("").trim().to_ascii_lowercase())
    };
    let mut out = String::new();
    let mut done = [false; 3];
    match existing {
        None => out.push_str(
            "# TigerVNC session settings. edge-setup vnc-user sets session, geometry and localhost;\n\
             # other lines are kept.\n",
        ),
        Some(text) => {
            for line in text.lines() {
                let pos = key_of(line).and_then(|k| ours.iter().position(|(name, _)| *name == k));
                match pos {
                    Some(i) if done[i] => {}
                    Some(i) => {
                        out.push_str(&ours[i].1);
                        out.push('\n');
                        done[i] = true;
                    }
                    None => {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
            }
        }
    }
    for (i, (_, line)) in ours.iter().enumerate() {
        if !done[i] {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Refuses, before anything is written, a VNC directory or file that is a
/// link, a file where a directory belongs, or a directory the user does not
/// own. The writes check again (the user may race), this says it early.
fn check_user_paths(ctx: &Ctx, target: &Target) -> Result<()> {
    let user = &target.user;
    let root = &ctx.sys;
    let host = |p: &Path| root.host_path(p).display().to_string();
    let link = |p: &Path| {
        Error::failure(format!("{} is a symbolic link", host(p)))
            .why("edge-setup writes a user's VNC files only as regular files in real directories, so that no link can redirect them")
            .hint("remove the link and run the command again; nothing was changed")
    };
    as_user(user.uid, user.gid, || -> Result<()> {
        for dir in target.dirs() {
            if root.is_link(&dir)? {
                return Err(link(&dir));
            }
            match root.meta(&dir)? {
                Some(m) if !m.is_dir => {
                    return Err(Error::failure(format!("{} is a file, not a directory", host(&dir)))
                        .hint("move it away and run the command again; nothing was changed"));
                }
                Some(m) if dir == target.dir && m.uid != user.uid => {
                    return Err(Error::failure(format!(
                        "{} belongs to uid {}, not to {}",
                        host(&dir),
                        m.uid,
                        user.name
                    ))
                    .hint(format!(
                        "give it back to the user (sudo chown -R {}: {}) and run the command again",
                        user.name,
                        dir.display()
                    )));
                }
                _ => {}
            }
        }
        for file in [&target.passwd, &target.config] {
            if root.is_link(file)? {
                return Err(link(file));
            }
        }
        Ok(())
    })
}

/// Creates the user's missing VNC directories (0700) as the user; returns
/// those created. An existing one is left as it is until the files are in
/// place (`tighten_dir`), so a refused run changes nothing.
fn create_dirs(ctx: &Ctx, target: &Target) -> Result<Vec<PathBuf>> {
    let user = &target.user;
    let mut created = Vec::new();
    for dir in target.dirs() {
        let found = as_user(user.uid, user.gid, || -> Result<_> {
            Ok((ctx.sys.meta(&dir)?, ctx.sys.is_link(&dir)?))
        });
        let outcome = match found {
            Ok((Some(m), false)) if m.is_dir => continue,
            Ok((Some(_), is_link)) => Err(Error::failure(format!(
                "{} is {}, not a directory",
                ctx.sys.host_path(&dir).display(),
                if is_link { "a symbolic link" } else { "a file" }
            ))
            .hint("move it away and run the command again; nothing was changed")),
            Ok((None, _)) => ctx.sys.ensure_dir_as(user, &dir, 0o700),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(_) => created.push(dir),
            Err(e) => {
                remove_dirs(ctx, target, &created);
                return Err(e);
            }
        }
    }
    Ok(created)
}

/// Keeps an existing VNC directory 0700 and the user's (a new one already is).
fn tighten_dir(ctx: &Ctx, target: &Target, created: &[PathBuf]) -> Result<()> {
    if created.contains(&target.dir) {
        return Ok(());
    }
    ctx.sys.ensure_dir_as(&target.user, &target.dir, 0o700).map(|_| ())
}

/// Removes directories this run created (innermost first), on failure.
fn remove_dirs(ctx: &Ctx, target: &Target, created: &[PathBuf]) {
    for dir in created.iter().rev() {
        let _ = ctx.sys.remove_empty_dir_as(&target.user, dir);
    }
}

/// The user's password file and session settings as they are before this run,
/// read as the user with `Root::read_user_file`'s checks, before any lock.
struct UserFiles {
    passwd: Option<Zeroizing<Vec<u8>>>,
    config: Option<Vec<u8>>,
}

impl UserFiles {
    fn read(ctx: &Ctx, target: &Target) -> Result<UserFiles> {
        let user = &target.user;
        let read = |path: &Path, max| as_user(user.uid, user.gid, || ctx.sys.read_user_file(path, user.uid, max));
        Ok(UserFiles {
            passwd: read(&target.passwd, PASSWD_MAX)?.map(Zeroizing::new),
            config: read(&target.config, CONFIG_MAX)?,
        })
    }

    fn config_text(&self, settings: &Settings) -> String {
        let existing = self.config.as_deref().map(String::from_utf8_lossy);
        session_config(existing.as_deref(), settings)
    }
}

struct FileChanges {
    passwd: Change,
    config: Change,
}

fn report_user_files(ctx: &Ctx, target: &Target, changes: &FileChanges) {
    let host = |p: &Path| ctx.sys.host_path(p).display().to_string();
    ctx.out
        .step(&format!("Writing the VNC password file {}", host(&target.passwd)))
        .done(ctx.sys.change_word(changes.passwd));
    ctx.out
        .step(&format!("Writing the session settings {}", host(&target.config)))
        .done(ctx.sys.change_word(changes.config));
    // Debian's wrapper reads the first of these it finds, and `config` last.
    if target.family == Family::Debian {
        for name in ["tigervnc.conf", "vnc.conf"] {
            let path = target.dir.join(name);
            let user = &target.user;
            if as_user(user.uid, user.gid, || ctx.sys.meta(&path))
                .ok()
                .flatten()
                .is_some()
            {
                ctx.out.warn(&format!(
                    "{} exists, so Debian's TigerVNC reads it instead of {}: move its settings there or remove it",
                    host(&path),
                    host(&target.config)
                ));
                break;
            }
        }
    }
}

// ---- enabling ------------------------------------------------------------------

/// Root or image mode: user files, mappings, session, all from this process.
fn enable_here(
    ctx: &Ctx,
    target: &Target,
    settings: &Settings,
    existing: &UserFiles,
    passwords: &Passwords,
) -> Result<u32> {
    let sys = &ctx.sys;
    let user = &target.user;
    let config = existing.config_text(settings);
    let servers = x_servers(sys);
    let mut created = Vec::new();
    let done = transact(sys, settings.lock_wait, |m, batch| {
        let chosen = choose_display(m, user, &servers)?;
        if !sys.dry_run() {
            for p in [&target.passwd, &target.config] {
                as_user(user.uid, user.gid, || sys.remove_stale_temps(p))?;
            }
        }
        created = create_dirs(ctx, target)?;
        let passwd = sys.stage_as(batch, user, &target.passwd, &passwords.file(), 0o600)?;
        let config = sys.stage_as(batch, user, &target.config, config.as_bytes(), 0o644)?;
        Ok((chosen, FileChanges { passwd, config }))
    });
    let ((chosen, changes), mappings, notes) = done.inspect_err(|_| remove_dirs(ctx, target, &created))?;
    tighten_dir(ctx, target, &created)?;
    for note in notes {
        ctx.out.note(&note);
    }
    note_skipped(ctx, &chosen.skipped);
    report_user_files(ctx, target, &changes);
    let display = chosen.display;
    ctx.out
        .step(&format!(
            "Recording display :{display} for {} in {MAPPING_FILE} and {USERS_FILE}",
            user.name
        ))
        .done(recorded_word(sys, chosen.kept, mappings));
    let restart = chosen.kept && (changes.passwd != Change::Unchanged || changes.config != Change::Unchanged);
    start_session(ctx, target, display, restart)?;
    Ok(display)
}

/// How the mapping step ends: a display kept, added, or files repaired.
fn recorded_word(sys: &System, kept: bool, change: Change) -> &'static str {
    match (kept, change, sys.dry_run()) {
        (true, Change::Unchanged, _) => "kept",
        (true, _, false) => "kept (the files were brought into agreement)",
        (true, _, true) => "kept (the files would be brought into agreement)",
        (false, _, false) => "added",
        (false, _, true) => "would be added",
    }
}

/// Enables and starts the display's unit (printed in image mode); with `restart`, restarts
/// it: a running session keeps the password and settings it read at start (Debian's
/// tigervncserver even hands Xtigervnc a copy of the password file), so without a
/// restart a changed password would leave the old one working.
fn start_session(ctx: &Ctx, target: &Target, display: u32, restart: bool) -> Result<()> {
    let sys = &ctx.sys;
    clear_stale_lock(ctx, display);
    let outcome = sys.done_word();
    if target.family == Family::RedHat && selinux_enabled(sys) {
        let step = ctx.out.step("Restoring the SELinux labels of the VNC files");
        // Only the paths edge-setup made, by name and without -R: restorecon
        // resolves each path itself, sets the policy's default label for where
        // it really is and never follows a link at the last component, so a
        // user who swaps a directory after the checks can at most have root
        // restore the default label of one other file named like these.
        let mut cmd = Cmd::new(Tool::Restorecon).arg("-F");
        for path in target.dirs().iter().chain([&target.passwd, &target.config]) {
            cmd = cmd.arg(sys.host_path(path).display().to_string());
        }
        sys.run(cmd)?;
        step.done(outcome);
    }
    let unit = target.unit(display);
    let hint = |e: Error| {
        e.hint(format!(
            "see 'journalctl -u {unit}'; display :{display} stays recorded, so run 'edge-setup vnc-user' again once it is fixed"
        ))
    };
    if restart {
        let step = ctx.out.step(&format!(
            "Restarting {unit}, so the new password and settings take effect (windows open in it close)"
        ));
        sys.run(Cmd::new(Tool::Systemctl).args(["enable", &unit]))
            .map_err(hint)?;
        sys.run(Cmd::new(Tool::Systemctl).args(["restart", &unit]))
            .map_err(hint)?;
        step.done(outcome);
    } else {
        let step = ctx.out.step(&format!("Enabling and starting {unit}"));
        if enabled_and_active(sys, &unit) {
            step.done("unchanged (enabled and running)");
            return Ok(());
        }
        sys.run(Cmd::new(Tool::Systemctl).args(["enable", "--now", &unit]))
            .map_err(hint)?;
        step.done(outcome);
    }
    Ok(())
}

/// Whether the unit is enabled and running already (live only): then there is
/// nothing to start, and a second run changes nothing.
fn enabled_and_active(sys: &System, unit: &str) -> bool {
    let query = Cmd::new(Tool::Systemctl)
        .args(["show", "--property=UnitFileState,ActiveState"])
        .arg(unit);
    let Ok(Some(out)) = sys.query(query) else {
        return false;
    };
    let has = |line: &str| out.stdout.lines().any(|l| l.trim() == line);
    out.success() && has("UnitFileState=enabled") && has("ActiveState=active")
}

/// Whether SELinux is on (live), or may be (image mode, where the command is printed).
fn selinux_enabled(sys: &System) -> bool {
    match sys.query(Cmd::new(Tool::Selinuxenabled)) {
        Ok(Some(out)) => out.success(),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// An ordinary user: own files here, the privileged part through sudo.
fn enable_delegated(
    ctx: &Ctx,
    target: &Target,
    settings: &Settings,
    existing: &UserFiles,
    passwords: &Passwords,
    known: Option<u32>,
) -> Result<u32> {
    let sys = &ctx.sys;
    let config = existing.config_text(settings);
    let previous = [
        Previous::of(ctx, &target.user, &target.passwd, existing.passwd.clone())?,
        Previous::of(
            ctx,
            &target.user,
            &target.config,
            existing.config.clone().map(Zeroizing::new),
        )?,
    ];
    let passwd_file = passwords.file();
    let changes = !previous[0].holds(&passwd_file) || !previous[1].holds(config.as_bytes());
    let part = Part::Enable {
        restart: known.is_some() && changes,
    };
    check_sudo(ctx, target, part)?;
    let created = create_dirs(ctx, target)?;
    let mut written = 0;
    let result = (|| {
        let passwd = sys.write_as(&target.user, &target.passwd, &passwd_file, 0o600)?;
        written += 1;
        let config_change = sys.write_as(&target.user, &target.config, config.as_bytes(), 0o644)?;
        written += 1;
        report_user_files(
            ctx,
            target,
            &FileChanges {
                passwd,
                config: config_change,
            },
        );
        run_system_part(ctx, target, part).map(|d| d.or(known))
    })();
    let display = match result {
        Ok(r) => r,
        Err(e) => {
            for p in previous.iter().take(written).rev() {
                p.restore(ctx, &target.user);
            }
            remove_dirs(ctx, target, &created);
            return Err(e);
        }
    };
    tighten_dir(ctx, target, &created)?;
    // Only a dry run has no answer from the privileged part.
    Ok(display.unwrap_or(0))
}

/// A user's file as it was before this run, put back when the run fails.
struct Previous<'a> {
    path: &'a Path,
    content: Option<(Zeroizing<Vec<u8>>, u32)>,
}

impl<'a> Previous<'a> {
    /// Whether the file holds exactly `content` already.
    fn holds(&self, content: &[u8]) -> bool {
        self.content
            .as_ref()
            .is_some_and(|(bytes, _)| bytes.as_slice() == content)
    }

    /// The file at `path` held `bytes` (as `UserFiles` read it).
    fn of(ctx: &Ctx, user: &UserInfo, path: &'a Path, bytes: Option<Zeroizing<Vec<u8>>>) -> Result<Previous<'a>> {
        let content = match bytes {
            Some(bytes) => {
                let mode = as_user(user.uid, user.gid, || ctx.sys.meta(path))?.map_or(0o600, |m| m.mode);
                Some((bytes, mode))
            }
            None => None,
        };
        Ok(Previous { path, content })
    }

    /// Best effort: the error that made the run fail is the one to report.
    fn restore(&self, ctx: &Ctx, user: &UserInfo) {
        let _ = match &self.content {
            Some((bytes, mode)) => ctx.sys.write_as(user, self.path, bytes, *mode).map(|_| ()),
            None => ctx.sys.remove_as(user, self.path).map(|_| ()),
        };
    }
}

/// The command line of the privileged part, exactly as the sudoers rule allows it.
fn system_part_cmd(part: Part) -> Result<Cmd> {
    let exe =
        std::env::current_exe().map_err(|e| Error::failure("cannot tell where the edge-setup binary is").why(e))?;
    let cmd = Cmd::new(Tool::Sudo).args(["-n", &exe.display().to_string(), "vnc-user", SYSTEM_PART_ARG]);
    Ok(match part {
        Part::Enable { restart: false } => cmd,
        Part::Enable { restart: true } => cmd.arg("--restart"),
        Part::Remove => cmd.arg("--remove"),
    })
}

/// Asks sudo, without running anything, whether the user may run the
/// privileged part; a refusal says how to get the right.
fn check_sudo(ctx: &Ctx, target: &Target, part: Part) -> Result<()> {
    let mut cmd = system_part_cmd(part)?;
    cmd.args.insert(1, "-l".to_string());
    let denied = |why: String| {
        let name = &target.user.name;
        let group_exists = ctx.sys.users().group(VNC_GROUP).ok().flatten().is_some();
        let first = if group_exists {
            format!(
                "ask an administrator to add you to the {VNC_GROUP} group: sudo usermod -aG {VNC_GROUP} {name} (then log in again)"
            )
        } else {
            format!(
                "VNC is not set up here yet: an administrator runs 'sudo edge-setup vnc', then adds you: sudo usermod -aG {VNC_GROUP} {name}"
            )
        };
        Error::not_permitted(format!(
            "{name} may not run the privileged part of 'edge-setup vnc-user'"
        ))
        .why(why)
        .hint(format!(
            "{first}; or an administrator runs it for you: sudo edge-setup vnc-user --user {name}"
        ))
    };
    match ctx.sys.run_unchecked(cmd) {
        Ok(None) => Ok(()),
        Ok(Some(out)) if out.success() => Ok(()),
        Ok(Some(out)) => Err(denied(
            out.stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("sudo refused")
                .to_string(),
        )),
        Err(e) => Err(denied(e.why.unwrap_or(e.what))),
    }
}

/// Runs the privileged part through sudo and relays what it printed; the
/// display it reports (`None` when commands are only printed).
fn run_system_part(ctx: &Ctx, target: &Target, part: Part) -> Result<Option<u32>> {
    let Some(out) = ctx.sys.run_unchecked(system_part_cmd(part)?)? else {
        return Ok(None);
    };
    for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
        ctx.out.info(line);
    }
    if !out.success() {
        let kind = match out.status {
            Some(exit::BAD_INPUT) => Kind::BadInput,
            Some(exit::NOT_PERMITTED) => Kind::NotPermitted,
            _ => Kind::Failure,
        };
        let status = out
            .status
            .map_or("a signal".to_string(), |s| format!("exit status {s}"));
        return Err(Error::new(
            kind,
            format!(
                "the privileged part of 'edge-setup vnc-user' for {} failed ({status})",
                target.user.name
            ),
        )
        .hint("see its message above; your own VNC files were put back as they were"));
    }
    Ok(out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(DISPLAY_PREFIX))
        .and_then(|d| d.trim().parse().ok()))
}

/// `vnc-user --system-part [--restart | --remove]`: the privileged part, as root under
/// sudo, for the user sudo names in SUDO_UID and no one else.
fn system_part(ctx: &Ctx, part: Part) -> Result<()> {
    if ctx.sys.is_image() {
        return Err(Error::bad_input(format!("{SYSTEM_PART_ARG} does not take --root"))
            .hint("in an image, run: edge-setup --root IMAGE vnc-user --user NAME"));
    }
    if !ctx.is_root() {
        return Err(
            Error::not_permitted(format!("{SYSTEM_PART_ARG} must run as root, through sudo"))
                .hint("run 'edge-setup vnc-user' without it; it runs this part through sudo itself"),
        );
    }
    let uid = ctx.sudo_uid().ok_or_else(|| {
        Error::not_permitted(format!(
            "{SYSTEM_PART_ARG} acts for the user who ran sudo, and SUDO_UID is not set"
        ))
        .hint("run 'edge-setup vnc-user' as that user, or: sudo edge-setup vnc-user --user NAME")
    })?;
    let user = ctx
        .sys
        .users()
        .by_uid(uid)?
        .ok_or_else(|| Error::failure(format!("there is no user with uid {uid} (from SUDO_UID)")))?;
    let family = ctx.sys.os_release()?.family()?;
    let target = Target::new(ctx, family, user)?;
    let wait = ctx.config()?.lock_wait(&ctx.sys)?;
    let restart = match part {
        Part::Remove => {
            free_display(ctx, &target, wait)?;
            return Ok(());
        }
        Part::Enable { restart } => restart,
    };
    check_name(&target.user.name)?;
    // restorecon runs as root on these directories: they must be the user's own.
    check_user_paths(ctx, &target)?;
    if UserFiles::read(ctx, &target)?.passwd.is_none() {
        return Err(Error::failure(format!(
            "{} has no VNC password file ({})",
            target.user.name,
            target.passwd.display()
        ))
        .hint("run 'edge-setup vnc-user' as that user (without sudo): it sets the password first"));
    }
    let sys = &ctx.sys;
    let servers = x_servers(sys);
    let (chosen, change, notes) = transact(sys, wait, |m, _| choose_display(m, &target.user, &servers))?;
    for note in notes {
        ctx.out.note(&note);
    }
    note_skipped(ctx, &chosen.skipped);
    let display = chosen.display;
    ctx.out
        .step(&format!(
            "Recording display :{display} for {} in {MAPPING_FILE} and {USERS_FILE}",
            target.user.name
        ))
        .done(recorded_word(sys, chosen.kept, change));
    start_session(ctx, &target, display, restart)?;
    ctx.out.data(&format!("{DISPLAY_PREFIX}{display}"));
    Ok(())
}

// ---- removing ------------------------------------------------------------------

/// Stops and disables the user's session, then frees the display under the lock.
/// The display stays recorded until the session is stopped, so it cannot be
/// handed to someone else whose new session the stop would end.
fn free_display(ctx: &Ctx, target: &Target, wait: Duration) -> Result<Option<u32>> {
    let sys = &ctx.sys;
    let name = &target.user.name;
    let (m, _) = load_mappings(sys)?;
    let Some(display) = m.display_of(name) else {
        ctx.out.note(&format!("{name} has no VNC display"));
        return Ok(None);
    };
    let unit = target.unit(display);
    let step = ctx.out.step(&format!("Stopping and disabling {unit}"));
    sys.run(Cmd::new(Tool::Systemctl).args(["disable", "--now", &unit]))?;
    step.done(sys.done_word());
    let (freed, _, _) = transact(sys, wait, |m, _| Ok(m.remove(name)))?;
    ctx.out
        .step(&format!(
            "Freeing display :{display} in {MAPPING_FILE} and {USERS_FILE}"
        ))
        .done(match (freed.is_some(), sys.dry_run()) {
            (true, false) => "freed",
            (true, true) => "would be freed",
            (false, _) => "already free",
        });
    Ok(Some(display))
}

fn delete_passwd(ctx: &Ctx, target: &Target) -> Result<()> {
    let step = ctx.out.step(&format!(
        "Deleting the VNC password file {}",
        ctx.sys.host_path(&target.passwd).display()
    ));
    let removed = ctx.sys.remove_as(&target.user, &target.passwd)?;
    step.done(match (removed, ctx.sys.dry_run()) {
        (true, false) => "deleted",
        (true, true) => "would be deleted",
        (false, _) => "not there",
    });
    Ok(())
}

fn remove_here(ctx: &Ctx, target: &Target) -> Result<()> {
    let wait = ctx.config()?.lock_wait(&ctx.sys)?;
    let display = free_display(ctx, target, wait)?;
    delete_passwd(ctx, target)?;
    print_removed(ctx, &target.user, display);
    Ok(())
}

fn remove_delegated(ctx: &Ctx, target: &Target) -> Result<()> {
    let (m, _) = load_mappings(&ctx.sys)?;
    check_sudo(ctx, target, Part::Remove)?;
    run_system_part(ctx, target, Part::Remove)?;
    delete_passwd(ctx, target)?;
    print_removed(ctx, &target.user, m.display_of(&target.user.name));
    Ok(())
}

// ---- what the user reads -------------------------------------------------------

/// The address Cumulocity's remote access reaches the session at.
fn endpoint_host(ctx: &Ctx, listen: Listen) -> String {
    match listen {
        Listen::Localhost => "127.0.0.1".to_string(),
        Listen::Lan => ctx
            .sys
            .query(Cmd::new(Tool::Hostname).arg("-I"))
            .ok()
            .flatten()
            .filter(|o| o.success())
            .and_then(|o| o.stdout.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "<the appliance's IP address>".to_string()),
    }
}

/// The display, the port, and the Cumulocity remote access endpoint to enter.
fn print_summary(ctx: &Ctx, user: &UserInfo, display: u32, listen: Listen) {
    if display == 0 {
        ctx.out.data(&format!(
            "VNC for {}: the display is allocated when the commands above run.",
            user.name
        ));
        return;
    }
    let port = tigervnc::port(display);
    let host = endpoint_host(ctx, listen);
    ctx.out.result(serde_json::json!({
        "user": user.name,
        "display": display,
        "port": port,
        "endpoint": {"protocol": "VNC", "host": host, "port": port},
    }));
    if ctx.sys.dry_run() {
        ctx.out.data(&format!(
            "VNC would be enabled for {}: display :{display}, port {port} (dry run: nothing was changed).",
            user.name
        ));
        return;
    }
    let reach = match listen {
        Listen::Localhost => {
            "the session listens on this appliance only (vnc.listen = localhost); \
                              Cumulocity reaches it through the Edge agent"
        }
        Listen::Lan => "the session listens on all interfaces (vnc.listen = lan)",
    };
    ctx.out.data(&format!(
        "VNC is enabled for {}: display :{display}, port {port}.\n\
         In Cumulocity, add a remote access endpoint to this device \
         (Device Management > the device > Remote access > Add endpoint):\n  \
         protocol: VNC\n  \
         host:     {host}\n  \
         port:     {port}\n  \
         password: the VNC password set here (the view-only password gives view-only access)\n\
         Note: {reach}. Do not send Ctrl+Alt+Del to the session: it ends the session.",
        user.name
    ));
}

fn print_removed(ctx: &Ctx, user: &UserInfo, display: Option<u32>) {
    ctx.out
        .result(serde_json::json!({"user": user.name, "freed_display": display}));
    if ctx.sys.dry_run() {
        ctx.out.data(&format!(
            "VNC access for {} would be removed (dry run: nothing was changed).",
            user.name
        ));
        return;
    }
    match display {
        Some(d) => ctx.out.data(&format!(
            "VNC access for {} is removed; display :{d} (port {}) is free. \
             Remove the VNC endpoint with port {} from the device's remote access in Cumulocity.",
            user.name,
            tigervnc::port(d),
            tigervnc::port(d)
        )),
        None => ctx.out.data(&format!("VNC access for {} is removed.", user.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Capture, Out};
    use crate::prompt::{NoPrompt, NoPromptReason, Prompter, Scripted};
    use crate::system::Mode;
    use crate::system::fs::Root;
    use crate::system::runner::{FakeRunner, Output};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::rc::Rc;

    const DEBIAN: &str = "ID=debian\nVERSION_ID=\"12\"\n";
    const ROCKY: &str = "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n";

    /// A live-mode system on a temporary root with a recording fake runner.
    struct Live {
        dir: tempfile::TempDir,
        fake: Rc<FakeRunner>,
        out: Capture,
        err: Capture,
    }

    impl Live {
        fn new(os_release: &str) -> Live {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("etc")).unwrap();
            std::fs::write(dir.path().join("etc/os-release"), os_release).unwrap();
            std::fs::create_dir_all(dir.path().join("root")).unwrap();
            Live {
                dir,
                fake: Rc::new(FakeRunner::new()),
                out: Capture::default(),
                err: Capture::default(),
            }
        }

        fn ctx(&self, uid: u32, env: &[(&str, &str)], prompt: Box<dyn Prompter>, stdin: &str) -> Ctx {
            let out = Out::new(Box::new(self.out.clone()), Box::new(self.err.clone()), false);
            let sys = System::new(
                Root::new(self.dir.path()).unwrap(),
                Mode::Live,
                false,
                Box::new(self.fake.clone()),
                out,
            );
            Ctx::new(sys, prompt)
                .with_stdin(Box::new(std::io::Cursor::new(stdin.as_bytes().to_vec())))
                .with_env(env.iter().copied())
                .with_ids(uid, uid)
        }

        /// The commands run, without the read-only `systemctl show` queries.
        fn commands(&self) -> Vec<String> {
            self.fake
                .lines()
                .into_iter()
                .filter(|l| !l.starts_with("systemctl show "))
                .collect()
        }

        fn path(&self, target: &str) -> PathBuf {
            self.dir.path().join(target.trim_start_matches('/'))
        }

        fn read(&self, target: &str) -> Option<Vec<u8>> {
            std::fs::read(self.path(target)).ok()
        }

        fn write(&self, target: &str, content: &str) {
            let path = self.path(target);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
    }

    fn args(user: Option<&str>, stdin: bool, remove: bool, system_part: bool) -> VncUserArgs {
        VncUserArgs {
            user: user.map(str::to_string),
            password_stdin: stdin,
            remove,
            system_part,
            restart: false,
        }
    }

    fn no_prompt() -> Box<dyn Prompter> {
        Box::new(NoPrompt(NoPromptReason::NoTerminal))
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn root_asks_twice_reasks_on_mismatch_and_starts_the_unit() {
        let live = Live::new(DEBIAN);
        let prompt = Scripted::new([
            "password", "passw0rd", // mismatch: asked again
            "password", "password", "y", "password", // view-only equal to the full one: refused
            "viewonly", "viewonly",
        ]);
        let ctx = live.ctx(0, &[], Box::new(prompt), "");
        run(&ctx, &args(Some("root"), false, false, false)).unwrap();
        assert_eq!(
            hex(&live.read("/root/.vnc/passwd").unwrap()),
            "dbd83cfd727a14583b33820a27ba4dd0"
        );
        assert_eq!(
            live.commands(),
            vec!["systemctl enable --now tigervncserver@:1.service"]
        );
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"root:1\n");
        assert!(live.out.text().contains("display :1, port 5901"), "{}", live.out.text());
    }

    /// A session that is enabled and running already is left alone: the second
    /// run with the same input runs nothing and records no change.
    #[test]
    fn a_running_session_is_not_started_again() {
        let live = Live::new(DEBIAN);
        live.fake.respond(
            "systemctl show --property=UnitFileState,ActiveState tigervncserver@:1.service",
            Output::ok("UnitFileState=enabled\nActiveState=active\n"),
        );
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        run(&ctx, &args(Some("root"), true, false, false)).unwrap();
        assert!(live.commands().is_empty(), "{:?}", live.fake.lines());
        assert!(
            live.err
                .text()
                .contains("Enabling and starting tigervncserver@:1.service ... unchanged (enabled and running)")
        );
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        run(&ctx, &args(Some("root"), true, false, false)).unwrap();
        assert_eq!(ctx.sys.changes(), vec![], "the second run changed something");
    }

    #[test]
    fn root_without_a_user_acts_for_the_sudo_caller_or_asks_for_one() {
        let live = Live::new(DEBIAN);
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        let err = run(&ctx, &args(None, true, false, false)).unwrap_err();
        assert_eq!(err.kind, Kind::BadInput);
        assert!(err.hint.unwrap().contains("--user NAME"));
        let ctx = live.ctx(0, &[("SUDO_UID", "0")], no_prompt(), "secret12\n");
        run(&ctx, &args(None, true, false, false)).unwrap();
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"root:1\n");
    }

    #[test]
    fn rhel_restores_labels_when_selinux_is_on_and_a_failed_start_keeps_the_display() {
        let live = Live::new(ROCKY);
        live.fake.respond("rpm -q", Output::ok("1.13.1"));
        live.fake.respond(
            "systemctl enable",
            Output::failed(
                1,
                "Job for vncserver@:1.service failed because the control process exited with error code.\n",
            ),
        );
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        let err = run(&ctx, &args(Some("root"), true, false, false)).unwrap_err();
        let lines = live.commands();
        assert_eq!(lines[0], "rpm -q --qf '%{VERSION}' tigervnc-server");
        assert_eq!(lines[1], "selinuxenabled");
        let home = live.path("/root/.vnc").display().to_string();
        // exactly the files edge-setup made, by name, not recursively
        assert_eq!(
            lines[2],
            format!("restorecon -F {home} {home}/passwd {home}/config"),
            "{lines:?}"
        );
        assert_eq!(lines[3], "systemctl enable --now vncserver@:1.service");
        assert!(err.to_string().contains("journalctl -u vncserver@:1.service"), "{err}");
        assert_eq!(live.read(USERS_FILE).unwrap(), b":1=root\n");
    }

    #[test]
    fn the_system_part_acts_for_sudo_uid_only() {
        let live = Live::new(DEBIAN);
        let ctx = live.ctx(0, &[], no_prompt(), "");
        let err = run(&ctx, &args(None, false, false, true)).unwrap_err();
        assert_eq!(err.kind, Kind::NotPermitted);
        assert!(err.what.contains("SUDO_UID"));
        let ctx = live.ctx(1000, &[("SUDO_UID", "0")], no_prompt(), "");
        assert_eq!(
            run(&ctx, &args(None, false, false, true)).unwrap_err().kind,
            Kind::NotPermitted
        );

        let ctx = live.ctx(0, &[("SUDO_UID", "0")], no_prompt(), "");
        let err = run(&ctx, &args(None, false, false, true)).unwrap_err();
        assert!(err.what.contains("no VNC password file"), "{err}");
        assert!(live.fake.calls().is_empty());

        std::fs::create_dir_all(live.path("/root/.vnc")).unwrap();
        std::fs::write(live.path("/root/.vnc/passwd"), password::encode("secret12", None)).unwrap();
        run(&ctx, &args(None, false, false, true)).unwrap();
        assert_eq!(live.out.text(), "display=1\n");
        assert_eq!(
            live.commands(),
            vec!["systemctl enable --now tigervncserver@:1.service"]
        );
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"root:1\n");

        run(&ctx, &args(None, false, true, true)).unwrap();
        assert_eq!(live.commands()[1], "systemctl disable --now tigervncserver@:1.service");
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"");
        // the password file is the user's to delete
        assert!(live.read("/root/.vnc/passwd").is_some());
    }

    #[test]
    fn the_system_part_refuses_a_fifo_for_a_password_file_at_once() {
        let live = Live::new(DEBIAN);
        std::fs::create_dir_all(live.path("/root/.vnc")).unwrap();
        nix::unistd::mkfifo(
            &live.path("/root/.vnc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let ctx = live.ctx(0, &[("SUDO_UID", "0")], no_prompt(), "");
        let err = run(&ctx, &args(None, false, false, true)).unwrap_err();
        assert!(err.what.contains("a FIFO (named pipe), not a regular file"), "{err}");
        assert!(live.fake.calls().is_empty());
        assert!(live.read(MAPPING_FILE).is_none());
    }

    /// An ordinary user: `nobody` from the host's user database, its home in the temporary root.
    /// Needs root and the `nobody` user: its tests are `#[ignore = "needs root"]`.
    fn as_nobody(live: &Live) -> UserInfo {
        assert!(nix::unistd::geteuid().is_root(), "this test needs root: run it as root");
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(65534))
            .ok()
            .flatten()
            .expect("this test needs the user 'nobody' (uid 65534) on this host");
        let home = live.path(&user.dir.to_string_lossy());
        std::fs::create_dir_all(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(65534), Some(user.gid.as_raw())).unwrap();
        UserInfo {
            name: user.name,
            uid: 65534,
            gid: user.gid.as_raw(),
            home: user.dir,
        }
    }

    #[test]
    #[ignore = "needs root"]
    fn an_ordinary_user_writes_own_files_and_runs_the_privileged_part_through_sudo() {
        let live = Live::new(DEBIAN);
        let nobody = as_nobody(&live);
        live.fake.respond(
            "sudo -n -l ",
            Output::ok("/usr/local/bin/edge-setup vnc-user --system-part\n"),
        );
        live.fake.respond(
            "sudo -n ",
            Output {
                status: Some(0),
                stdout: "display=7\n".into(),
                stderr: "Recording display :7 for nobody ... added\n".into(),
            },
        );
        let ctx = live.ctx(65534, &[], no_prompt(), "password\n");
        run(&ctx, &args(None, true, false, false)).unwrap();
        let lines = live.fake.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("sudo -n -l ") && lines[0].ends_with(" vnc-user --system-part"));
        assert!(lines[1].starts_with("sudo -n ") && lines[1].ends_with(" vnc-user --system-part"));
        // no secret crosses into the privileged part
        assert!(live.fake.calls().iter().all(|c| c.stdin.is_none()));
        let passwd = nobody.home.join(".vnc/passwd");
        assert_eq!(hex(&live.read(&passwd.to_string_lossy()).unwrap()), "dbd83cfd727a1458");
        assert_eq!(
            std::fs::metadata(live.path(&passwd.to_string_lossy())).unwrap().uid(),
            65534
        );
        assert!(live.out.text().contains("display :7, port 5907"), "{}", live.out.text());
        assert!(live.err.text().contains("Recording display :7 for nobody ... added"));

        // --remove: the privileged part frees the display, the user deletes the file
        run(&ctx, &args(None, false, true, false)).unwrap();
        assert!(live.fake.lines()[3].ends_with(" vnc-user --system-part --remove"));
        assert!(live.read(&passwd.to_string_lossy()).is_none());
    }

    /// A running session reads its password only at start: a changed password restarts
    /// it, an unchanged one leaves it alone.
    #[test]
    fn a_changed_password_restarts_the_session_and_an_unchanged_one_does_not() {
        let live = Live::new(DEBIAN);
        let unit = "tigervncserver@:1.service";
        for (stdin, expected) in [
            ("password\n", vec![format!("systemctl enable --now {unit}")]),
            (
                "n3wpass1\n",
                vec![format!("systemctl enable {unit}"), format!("systemctl restart {unit}")],
            ),
            ("n3wpass1\n", vec![format!("systemctl enable --now {unit}")]),
        ] {
            let before = live.commands().len();
            let ctx = live.ctx(0, &[], no_prompt(), stdin);
            run(&ctx, &args(Some("root"), true, false, false)).unwrap();
            assert_eq!(live.commands()[before..], expected[..], "{stdin:?}");
        }
        assert!(live.err.text().contains("Restarting tigervncserver@:1.service"));
    }

    #[test]
    #[ignore = "needs root"]
    fn an_ordinary_users_new_password_asks_the_privileged_part_to_restart() {
        let live = Live::new(DEBIAN);
        let nobody = as_nobody(&live);
        live.write(MAPPING_FILE, "nobody:7\n");
        live.write(USERS_FILE, ":7=nobody\n");
        live.fake.respond(
            "sudo -n -l ",
            Output::ok("/usr/local/bin/edge-setup vnc-user --system-part --restart\n"),
        );
        live.fake.respond("sudo -n ", Output::ok("display=7\n"));
        for (stdin, restart) in [("password\n", true), ("password\n", false), ("n3wpass1\n", true)] {
            let before = live.fake.lines().len();
            let ctx = live.ctx(65534, &[], no_prompt(), stdin);
            run(&ctx, &args(None, true, false, false)).unwrap();
            let lines = &live.fake.lines()[before..];
            assert_eq!(lines.len(), 2, "{lines:?}");
            for line in lines {
                assert_eq!(line.ends_with(" --system-part --restart"), restart, "{stdin:?}: {line}");
                assert!(line.contains(" vnc-user --system-part"), "{line}");
            }
        }
        assert!(live.read(&nobody.home.join(".vnc/passwd").to_string_lossy()).is_some());
    }

    #[test]
    #[ignore = "needs root"]
    fn an_ordinary_user_without_the_sudo_rule_is_told_how_to_get_it_and_nothing_changes() {
        let live = Live::new(DEBIAN);
        let nobody = as_nobody(&live);
        live.fake
            .respond("sudo -n -l ", Output::failed(1, "sudo: a password is required\n"));
        let ctx = live.ctx(65534, &[], no_prompt(), "secret12\n");
        let err = run(&ctx, &args(None, true, false, false)).unwrap_err();
        assert_eq!(err.kind, Kind::NotPermitted);
        assert_eq!(err.why.as_deref(), Some("sudo: a password is required"));
        let hint = err.hint.unwrap();
        assert!(
            hint.contains("usermod -aG vncusers") && hint.contains("sudo edge-setup vnc-user --user"),
            "{hint}"
        );
        assert!(!live.path(&nobody.home.join(".vnc").to_string_lossy()).exists());

        // nor may a user act for someone else
        let err = run(&ctx, &args(Some("root"), true, false, false)).unwrap_err();
        assert_eq!(err.kind, Kind::NotPermitted);
    }

    #[test]
    #[ignore = "needs root"]
    fn a_failed_privileged_part_puts_the_users_files_back() {
        let live = Live::new(DEBIAN);
        let nobody = as_nobody(&live);
        let vnc = live.path(&nobody.home.join(".vnc").to_string_lossy());
        std::fs::create_dir_all(&vnc).unwrap();
        std::os::unix::fs::chown(&vnc, Some(65534), Some(nobody.gid)).unwrap();
        std::fs::write(vnc.join("passwd"), b"OLDOLDOL").unwrap();
        std::os::unix::fs::chown(vnc.join("passwd"), Some(65534), Some(nobody.gid)).unwrap();
        live.fake.respond("sudo -n -l ", Output::ok(""));
        live.fake.respond(
            "sudo -n ",
            Output::failed(1, "error: /opt/c8y/utilities/vnc-display-mapping:2: cannot parse 'x'\n"),
        );
        let ctx = live.ctx(65534, &[], no_prompt(), "secret12\n");
        let err = run(&ctx, &args(None, true, false, false)).unwrap_err();
        assert_eq!(err.kind, Kind::Failure);
        assert!(live.err.text().contains("cannot parse 'x'"), "{}", live.err.text());
        assert_eq!(std::fs::read(vnc.join("passwd")).unwrap(), b"OLDOLDOL");
        assert!(!vnc.join("config").exists());
    }

    /// What any local user can put in /tmp is no information about X servers:
    /// a link for /tmp/.X11-unix, fake or stale lock files, zero-padded names.
    #[test]
    fn planted_tmp_files_do_not_stop_an_allocation() {
        let live = Live::new(DEBIAN);
        std::fs::create_dir_all(live.path("/tmp")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", live.path("/tmp/.X11-unix")).unwrap();
        if nix::unistd::geteuid().is_root() {
            // planted by a user, as on a real system
            std::os::unix::fs::lchown(live.path("/tmp/.X11-unix"), Some(4242), None).unwrap();
        }
        for n in 1..=99 {
            live.write(&format!("/tmp/.X{n}-lock"), "fake\n");
        }
        // a process that has ended: its lock file is stale
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        live.write("/tmp/.X1-lock", &format!("{dead:>10}\n"));
        // a live process, but not display 3: X writes no leading zeros
        live.write("/tmp/.X0003-lock", &format!("{:>10}\n", std::process::id()));
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        run(&ctx, &args(Some("root"), true, false, false)).unwrap();
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"root:1\n");
        // the stale lock of :1 would stop Debian's wrapper: gone; the others are left
        assert!(live.read("/tmp/.X1-lock").is_none());
        assert!(live.err.text().contains("/tmp/.X1-lock: it named no running X server"));
        assert!(live.read("/tmp/.X2-lock").is_some());
    }

    #[test]
    fn live_x_servers_are_skipped() {
        let live = Live::new(DEBIAN);
        std::fs::create_dir_all(live.path("/tmp/.X11-unix")).unwrap();
        std::fs::set_permissions(live.path("/tmp/.X11-unix"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        live.write("/tmp/.X1-lock", &format!("{:>10}\n", std::process::id()));
        let _socket = std::os::unix::net::UnixListener::bind(live.path("/tmp/.X11-unix/X2")).unwrap();
        let ctx = live.ctx(0, &[], no_prompt(), "secret12\n");
        let sys = &ctx.sys;
        let servers = x_servers(sys);
        assert_eq!(servers.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
        // a socket directory anyone could have made is no information
        std::fs::set_permissions(live.path("/tmp/.X11-unix"), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(x_servers(sys).keys().copied().collect::<Vec<_>>(), vec![1]);
        std::fs::set_permissions(live.path("/tmp/.X11-unix"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        // held by another uid than the user's: skipped, and said so
        let owner = if nix::unistd::geteuid().is_root() { 4242 } else { return };
        std::os::unix::fs::chown(live.path("/tmp/.X1-lock"), Some(owner), None).unwrap();
        std::os::unix::fs::lchown(live.path("/tmp/.X11-unix/X2"), Some(owner), None).unwrap();
        run(&ctx, &args(Some("root"), true, false, false)).unwrap();
        assert_eq!(live.read(MAPPING_FILE).unwrap(), b"root:3\n");
        assert!(
            live.err.text().contains("display :1 is held by another X server"),
            "{}",
            live.err.text()
        );
        assert!(live.err.text().contains("display :2 is held by another X server"));
    }

    #[test]
    fn display_numbers_are_written_as_x_writes_them() {
        assert_eq!(display_number("3"), Some(3));
        assert_eq!(display_number("0"), Some(0));
        assert_eq!(display_number("0003"), None);
        assert_eq!(display_number(""), None);
        assert_eq!(display_number("3a"), None);
    }

    #[test]
    fn a_long_password_line_is_refused_without_reading_it_all() {
        let live = Live::new(DEBIAN);
        let stdin = format!("{}\n", "x".repeat(1 << 20));
        let ctx = live.ctx(0, &[], no_prompt(), &stdin);
        let err = run(&ctx, &args(Some("root"), true, false, false)).unwrap_err();
        assert_eq!(err.kind, Kind::BadInput);
        assert!(err.what.contains("longer than 256 bytes"), "{err}");
        assert!(live.read(MAPPING_FILE).is_none());
    }

    #[test]
    fn session_config_sets_our_keys_and_keeps_the_rest() {
        let s = Settings {
            listen: Listen::Lan,
            geometry: Geometry {
                width: 1024,
                height: 768,
            },
            lock_wait: Duration::from_secs(10),
        };
        assert_eq!(
            session_config(Some("# c\nSession=gnome\nlocalhost\nlocalhost=yes\nrfbport=5999\n"), &s),
            "# c\nsession=edge-setup\nlocalhost=no\nrfbport=5999\ngeometry=1024x768\n"
        );
        assert!(session_config(None, &s).starts_with("# TigerVNC session settings"));
    }
}
