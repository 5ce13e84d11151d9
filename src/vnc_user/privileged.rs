//! The privileged part an ordinary user runs through sudo, and how the user's process calls it.

use super::*;
use crate::system::runner::Output;

/// What the privileged part answers the user's process, one JSON line on stdout.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Reply {
    /// The user's display (none after `--remove`).
    pub(super) display: Option<u32>,
    /// Whether it changed anything, so the user's run says "Nothing to change" when it did not.
    pub(super) changed: bool,
    /// What became of the user's endpoint in the tenant (see `EndpointHook`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) endpoint: Option<String>,
}

impl Reply {
    fn of(out: &Output) -> Option<Reply> {
        out.stdout.lines().find_map(|l| serde_json::from_str(l).ok())
    }

    /// Prints the reply (as root, the privileged part's last line).
    fn send(sys: &System, display: Option<u32>, endpoint: Option<String>) {
        let reply = Reply {
            display,
            changed: sys.change_count() > 0,
            endpoint,
        };
        sys.out()
            .data(&serde_json::to_string(&reply).expect("the reply serialises"));
    }
}

/// The command line of the privileged part, exactly as the sudoers rule allows it.
pub(super) fn system_part_cmd(sys: &System, part: Part) -> Result<Cmd> {
    let exe = sys.current_exe()?;
    let cmd = Cmd::new(Tool::Sudo).args(["-n", &exe.display().to_string(), "vnc-user", SYSTEM_PART_ARG]);
    Ok(match part {
        Part::Enable { restart: false } => cmd,
        Part::Enable { restart: true } => cmd.arg("--restart"),
        Part::Remove => cmd.arg("--remove"),
    })
}

/// Asks sudo, without running anything, whether the user may run the
/// privileged part; a refusal says how to get the right.
pub(super) fn check_sudo(sys: &System, target: &Target, part: Part) -> Result<()> {
    let mut cmd = system_part_cmd(sys, part)?;
    cmd.args.insert(1, "-l".to_string());
    let denied = |why: String| {
        let name = &target.user.name;
        let group_exists = sys.users().group(VNC_GROUP).ok().flatten().is_some();
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
    // a question, not a change: asked in a dry run too
    match sys.query(cmd) {
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
/// display it reports (`None` when commands are only printed) and what became
/// of the user's endpoint in the tenant.
pub(super) fn run_system_part(sys: &System, target: &Target, part: Part) -> Result<(Option<u32>, Option<String>)> {
    // a change only when the privileged part says it made one (or says nothing)
    let cmd = system_part_cmd(sys, part)?;
    let Some(out) = sys.run_reporting(cmd, |out| Reply::of(out).is_none_or(|r| r.changed))? else {
        return Ok((None, None));
    };
    for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
        sys.out().info(line);
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
    Ok(Reply::of(&out).map_or((None, None), |r| (r.display, r.endpoint)))
}

/// `vnc-user --system-part [--restart | --remove]`: the privileged part, as root under
/// sudo, for the user sudo names in SUDO_UID and no one else.
pub fn system_part(sys: &System, part: Part, hook: EndpointHook) -> Result<()> {
    if sys.is_image() {
        return Err(Error::bad_input(format!("{SYSTEM_PART_ARG} does not take --root"))
            .hint("in an image, run: edge-setup --root IMAGE vnc-user --user NAME"));
    }
    if !sys.is_root() {
        return Err(
            Error::not_permitted(format!("{SYSTEM_PART_ARG} must run as root, through sudo"))
                .hint("run 'edge-setup vnc-user' without it; it runs this part through sudo itself"),
        );
    }
    let uid = sys.sudo_uid().ok_or_else(|| {
        Error::not_permitted(format!(
            "{SYSTEM_PART_ARG} acts for the user who ran sudo, and SUDO_UID is not set"
        ))
        .hint("run 'edge-setup vnc-user' as that user, or: sudo edge-setup vnc-user --user NAME")
    })?;
    let user = sys
        .users()
        .by_uid(uid)?
        .ok_or_else(|| Error::failure(format!("there is no user with uid {uid} (from SUDO_UID)")))?;
    let family = sys.os_release()?.family()?;
    let target = Target::new(sys, family, user, matches!(part, Part::Enable { .. }))?;
    let wait = Config::load(sys)?.lock_wait(sys)?;
    let restart = match part {
        Part::Remove => {
            free_display(sys, &target, wait)?;
            let local = removed_here(&target.user.name);
            Reply::send(sys, None, endpoint_of(sys, hook, &target.user.name, &local));
            return Ok(());
        }
        Part::Enable { restart } => restart,
    };
    check_name(&target.user.name)?;
    // restorecon runs as root on these directories: they must be the user's own.
    check_user_paths(sys, &target)?;
    if UserFiles::read(sys, &target)?.passwd.is_none() {
        return Err(Error::failure(format!(
            "{} has no VNC password file ({})",
            target.user.name,
            target.passwd.display()
        ))
        .hint("run 'edge-setup vnc-user' as that user (without sudo): it sets the password first"));
    }
    let servers = x_servers(sys);
    let (chosen, change, notes) = transact(sys, wait, |m, _| choose_display(m, &target.user, &servers))?;
    for note in notes {
        sys.out().note(&note);
    }
    note_skipped(sys, &chosen.skipped);
    let display = chosen.display;
    sys.out()
        .step(&format!(
            "Recording display :{display} for {} in {MAPPING_FILE} and {USERS_FILE}",
            target.user.name
        ))
        .done(recorded_word(sys, chosen.kept, change));
    start_session(sys, &target, display, restart)?;
    // the user's part wrote the password when it asks for a restart
    let local = enabled_here(&target.user.name, display, restart || sys.change_count() > 0);
    Reply::send(sys, Some(display), endpoint_of(sys, hook, &target.user.name, &local));
    Ok(())
}
