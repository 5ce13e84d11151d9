//! What the user reads at the end: the display, the port, the endpoint to add in Cumulocity.

use super::*;

/// The address Cumulocity's remote access reaches the session at.
pub(super) fn endpoint_host(sys: &System, listen: Listen) -> String {
    match listen {
        Listen::Localhost => "127.0.0.1".to_string(),
        Listen::Lan => sys
            .query(Cmd::new(Tool::Hostname).arg("-I"))
            .ok()
            .flatten()
            .filter(|o| o.success())
            .and_then(|o| o.stdout.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "<the appliance's IP address>".to_string()),
    }
}

/// The display, the port, and the Cumulocity remote access endpoint to enter.
pub(super) fn print_summary(sys: &System, user: &UserInfo, display: u32, listen: Listen, endpoint: Option<&str>) {
    if display == 0 {
        sys.out().data(&format!(
            "VNC for {}: the display is allocated when the commands above run.",
            user.name
        ));
        return;
    }
    let port = tigervnc::port(display);
    let host = endpoint_host(sys, listen);
    sys.out().result(serde_json::json!({
        "user": user.name,
        "display": display,
        "port": port,
        "endpoint": {"protocol": "VNC", "host": host, "port": port},
    }));
    if sys.dry_run() {
        sys.out().data(&format!(
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
    let tenant = match endpoint {
        Some(line) => format!("{line}\n"),
        None => format!(
            "In Cumulocity, add a remote access endpoint to this device \
             (Device Management > the device > Remote access > Add endpoint):\n  \
             protocol: VNC\n  \
             host:     {host}\n  \
             port:     {port}\n  \
             password: the VNC password set here (the view-only password gives view-only access)\n\
             Or let edge-setup keep it up to date: sudo edge-setup remote-access sync \
             (with tenant credentials, see 'edge-setup remote-access sync --help').\n"
        ),
    };
    sys.out().data(&format!(
        "VNC is enabled for {}: display :{display}, port {port}.\n\
         {tenant}\
         Note: {reach}. Do not send Ctrl+Alt+Del to the session: it ends the session.",
        user.name
    ));
}

pub(super) fn print_removed(sys: &System, user: &UserInfo, display: Option<u32>, endpoint: Option<&str>) {
    sys.out()
        .result(serde_json::json!({"user": user.name, "freed_display": display}));
    if sys.dry_run() {
        sys.out().data(&format!(
            "VNC access for {} would be removed (dry run: nothing was changed).",
            user.name
        ));
        return;
    }
    match (display, endpoint) {
        (Some(d), Some(line)) => sys.out().data(&format!(
            "VNC access for {} is removed; display :{d} (port {}) is free. {line}",
            user.name,
            tigervnc::port(d),
        )),
        (Some(d), None) => sys.out().data(&format!(
            "VNC access for {} is removed; display :{d} (port {}) is free. \
             Remove the VNC endpoint with port {} from the device's remote access in Cumulocity \
             (or: sudo edge-setup remote-access sync).",
            user.name,
            tigervnc::port(d),
            tigervnc::port(d)
        )),
        (None, _) => sys.out().data(&format!("VNC access for {} is removed.", user.name)),
    }
}
