//! The display mappings: read, allocate and commit under the lock (and only that), X servers on this host, freeing a display.

use super::*;

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
pub(super) fn transact<T>(
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
pub(super) fn stage_mappings(sys: &System, batch: &mut Batch, m: &Mappings) -> Result<Change> {
    let spec = FileSpec::root(0o644);
    let a = sys.stage(batch, Path::new(MAPPING_FILE), m.appliance.render().as_bytes(), spec)?;
    let t = sys.stage(batch, Path::new(USERS_FILE), m.tigervnc.render().as_bytes(), spec)?;
    Ok(if a == Change::Unchanged { t } else { a })
}

/// X servers running on this host: display -> owner uid. A display is held
/// only while a live process has a socket bound at `/tmp/.X11-unix/XN` or at
/// the abstract `@/tmp/.X11-unix/XN` (the kernel's `/proc/net/unix`): every X
/// server has one, and an X server cannot start on a display where one exists.
/// Files in /tmp prove nothing: a socket file stays after its process ends, and
/// any user can leave lock files and socket files there. The owner is that of
/// the socket file (in a root-owned 1777 /tmp/.X11-unix), else of the lock file
/// naming a live process, else unknown (`u32::MAX`, another user's). An image
/// runs nothing.
pub(super) fn x_servers(sys: &System) -> BTreeMap<u32, u32> {
    let mut found = BTreeMap::new();
    if sys.is_image() {
        return found;
    }
    let sound = sound_socket_dir(sys);
    for n in bound_x_sockets(sys) {
        let socket = socket_path(n);
        let by_socket = sound
            .then(|| match (sys.kind(&socket), sys.meta(&socket)) {
                (Ok(Some(FileKind::Socket)), Ok(Some(meta))) => Some(meta.uid),
                _ => None,
            })
            .flatten();
        let owner = by_socket.or_else(|| live_lock(sys, &lock_path(n))).unwrap_or(u32::MAX);
        found.insert(n, owner);
    }
    found
}

/// The files an X server leaves for `display`: its lock file and its socket.
pub(super) fn stale_paths(display: u32) -> Vec<PathBuf> {
    vec![lock_path(display), socket_path(display)]
}

fn lock_path(display: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/.X{display}-lock"))
}

fn socket_path(display: u32) -> PathBuf {
    PathBuf::from(format!("{SOCKET_DIR}/X{display}"))
}

const SOCKET_DIR: &str = "/tmp/.X11-unix";

/// Whether /tmp/.X11-unix is the system's (root's, mode 1777), not one a user made.
fn sound_socket_dir(sys: &System) -> bool {
    let dir = Path::new(SOCKET_DIR);
    matches!(sys.kind(dir), Ok(Some(FileKind::Dir)))
        && sys
            .meta(dir)
            .ok()
            .flatten()
            .is_some_and(|m| sys.trusts(m.uid) && m.mode == 0o1777)
}

/// The displays with an X socket bound by a live process, from the kernel's
/// list of Unix sockets (which names a socket only while it is open).
fn bound_x_sockets(sys: &System) -> std::collections::BTreeSet<u32> {
    let text = sys
        .read_small(Path::new("/proc/net/unix"), 16 << 20)
        .ok()
        .flatten()
        .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    parse_unix_sockets(&text)
}

/// `/proc/net/unix`: `Num RefCount Protocol Flags Type St Inode [Path]`; an
/// abstract name starts with '@'.
pub(super) fn parse_unix_sockets(text: &str) -> std::collections::BTreeSet<u32> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let path = line.split_whitespace().nth(7)?;
            let name = path.strip_prefix('@').unwrap_or(path);
            name.strip_prefix(SOCKET_DIR)?
                .strip_prefix("/X")
                .and_then(display_number)
        })
        .collect()
}

/// The owner of an X lock file that is a regular file naming a live process
/// ("%10d\n", as the X server writes it).
pub(super) fn live_lock(sys: &System, path: &Path) -> Option<u32> {
    let (text, meta) = sys.read_small(path, 64).ok()??;
    let pid = std::str::from_utf8(&text).ok()?.trim().parse::<i32>().ok()?;
    sys.process_alive(pid).then_some(meta.uid)
}

/// Before the session on `display` starts: when no live process holds the
/// display (no bound X socket), removes what is left in /tmp for it, a lock
/// file and a socket file. Debian's wrapper refuses a display whose lock file
/// exists at all, and the X server, running as the user, cannot bind a socket
/// path another user's file occupies (in the sticky /tmp only the owner or root
/// may remove it): one left by a crash or planted by another user would stop
/// the session on every start.
pub(super) fn clear_stale(sys: &System, display: u32) {
    if sys.is_image() || bound_x_sockets(sys).contains(&display) {
        return;
    }
    let socket = sound_socket_dir(sys).then(|| socket_path(display));
    for path in std::iter::once(lock_path(display)).chain(socket) {
        match sys.kind(&path) {
            Ok(Some(FileKind::Dir)) => {
                sys.out().warn(&format!(
                    "{} is a directory, which no X server made; the session on :{display} may not start: remove it (sudo rm -r {})",
                    path.display(),
                    path.display()
                ));
                continue;
            }
            Ok(Some(_)) => {}
            _ => continue,
        }
        match sys.remove(&path) {
            Ok(true) => sys.out().note(&format!(
                "{} {}: no running X server holds display :{display}, and it would have stopped the session there",
                sys.word("removed", "would remove"),
                path.display()
            )),
            Ok(false) => {}
            Err(e) => sys.out().warn(&format!(
                "{} is left from an X server that no longer runs, but it could not be removed ({e}); the session on :{display} may not start",
                path.display()
            )),
        }
    }
}

/// A display number as X names it: digits without a leading zero (`.X0003-lock` is not display 3).
pub(super) fn display_number(s: &str) -> Option<u32> {
    let canonical = s == "0" || (!s.starts_with('0') && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    canonical.then(|| s.parse().ok()).flatten()
}

/// The user's display: the one recorded, else the lowest free one that no
/// other X server (`servers`) holds. Also returns the displays skipped for
/// being held, for the caller to say after the lock is released.
pub(super) fn choose_display(m: &mut Mappings, user: &UserInfo, servers: &BTreeMap<u32, u32>) -> Result<Chosen> {
    if let Some(d) = m.display_of(&user.name) {
        return Ok(Chosen {
            display: d,
            kept: true,
            skipped: Vec::new(),
        });
    }
    let foreign = |n: u32| servers.get(&n).is_some_and(|owner| *owner != user.uid);
    let display = m.allocate(foreign).ok_or_else(|| {
        let used = m.used();
        let held: Vec<u32> = (1..=tigervnc::MAX_DISPLAY)
            .filter(|n| !used.contains(n) && foreign(*n))
            .collect();
        no_free_display(user, &held)
    })?;
    let used = m.used();
    let skipped = (1..display).filter(|n| !used.contains(n) && foreign(*n)).collect();
    m.assign(&user.name, display);
    Ok(Chosen {
        display,
        kept: false,
        skipped,
    })
}

pub(super) struct Chosen {
    pub(super) display: u32,
    /// The display was recorded already.
    pub(super) kept: bool,
    pub(super) skipped: Vec<u32>,
}

pub(super) fn note_skipped(sys: &System, skipped: &[u32]) {
    for n in skipped {
        sys.out().note(&format!(
            "display :{n} is held by another X server (/tmp/.X{n}-lock or /tmp/.X11-unix/X{n}); skipping it"
        ));
    }
}

/// No display is free for `user`: `held` are the displays the mapping leaves
/// free that running X servers of other users hold.
pub(super) fn no_free_display(user: &UserInfo, held: &[u32]) -> Error {
    let max = tigervnc::MAX_DISPLAY;
    let e = Error::failure(format!(
        "no free VNC display for {}: all {max} displays are taken",
        user.name
    ));
    if held.is_empty() {
        return e.why(format!("{MAPPING_FILE} lists every display from 1 to {max}")).hint(
            "free one for a user who no longer needs VNC: sudo edge-setup vnc-user --remove --user NAME; nothing was changed",
        );
    }
    let first = held[0];
    e.why(format!(
        "{MAPPING_FILE} lists {} of them; running X servers of other users hold the other {} (their sockets in /tmp/.X11-unix)",
        max as usize - held.len(),
        held.len()
    ))
    .hint(format!(
        "see who holds one (sudo ss -xlp | grep X11-unix/X{first}), end the servers no one needs, or free a display: sudo edge-setup vnc-user --remove --user NAME; nothing was changed"
    ))
}

/// How the mapping step ends: a display kept, added, or files repaired.
pub(super) fn recorded_word(sys: &System, kept: bool, change: Change) -> &'static str {
    match (kept, change, sys.dry_run()) {
        (true, Change::Unchanged, _) => "kept",
        (true, _, false) => "kept (the files were brought into agreement)",
        (true, _, true) => "kept (the files would be brought into agreement)",
        (false, _, false) => "added",
        (false, _, true) => "would be added",
    }
}

/// Stops and disables the user's session, then frees the display under the lock.
/// The display stays recorded until the session is stopped, so it cannot be
/// handed to someone else whose new session the stop would end.
pub(super) fn free_display(sys: &System, target: &Target, wait: Duration) -> Result<Option<u32>> {
    let name = &target.user.name;
    let (m, _) = load_mappings(sys)?;
    let Some(display) = m.display_of(name) else {
        sys.out().note(&format!("{name} has no VNC display"));
        return Ok(None);
    };
    let unit = target.unit(display);
    let step = sys.out().step(&format!("Stopping and disabling {unit}"));
    sys.run(Cmd::new(Tool::Systemctl).args(["disable", "--now", &unit]))?;
    step.done(sys.done_word());
    let (freed, _, _) = transact(sys, wait, |m, _| Ok(m.remove(name)))?;
    sys.out()
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
