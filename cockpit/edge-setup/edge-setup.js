/* The Edge appliance page: every value it shows and every change it makes is
 * edge-setup's, run with --json through cockpit.spawn (as root where the user
 * has administrative access, else as the user). A change is first run with
 * --dry-run and its plan shown; it applies on confirmation. Passwords reach
 * edge-setup on standard input only. */
/* global cockpit, EdgeSetupLogic */
"use strict";

const logic = EdgeSetupLogic;
const $ = id => document.getElementById(id);

let admin = false;
let remote = null;

/* Runs edge-setup; resolves with logic.outcome(): {doc, error}, never rejects.
 * Standard output is collected as it arrives, so that the object edge-setup
 * prints on a failure is read as well as on success. */
function run(args, { root = "try", stdin } = {}) {
    return new Promise(resolve => {
        let out = "";
        const options = { err: "message" };
        if (root)
            options.superuser = root;
        const proc = cockpit.spawn(args, options);
        proc.stream(chunk => { out += chunk });
        proc.then(() => resolve(logic.outcome(out, null)),
                  ex => resolve(logic.outcome(out, ex || { message: "edge-setup failed" })));
        proc.input(stdin === undefined ? "" : stdin);
    });
}

function show(el, visible) {
    el.hidden = !visible;
}

function text(el, value) {
    el.textContent = value === null || value === undefined ? "" : String(value);
}

function fatal(error) {
    text($("fatal-what"), error.what);
    text($("fatal-why"), error.why);
    text($("fatal-next"), error.next);
    show($("fatal"), true);
    show($("cards"), false);
}

function fieldError(id, controlId, error) {
    const item = $(id);
    text(item.querySelector("span"), logic.fieldError(error));
    // the item, and the helper text's block, which takes room even when empty
    show(item, !!error);
    show(item.parentElement, !!error);
    if (controlId) {
        $(controlId).classList.toggle("pf-m-error", !!error);
        $(controlId).querySelector("input").setAttribute("aria-invalid", error ? "true" : "false");
    }
}

/* The plan dialog: a dry run's changes, applied with the real command on
 * confirmation. `onRefused` gets a refusal of the dry run (nothing changed).
 * `answered(outcome)` says whether a run that exited non-zero still did its work
 * (check --fix exits 1 while a check fails, fixed or not). */
function confirmAndApply({ title, dry, real, root = "require", stdin, onRefused, answered = () => false }) {
    const failed = outcome => outcome.error && !answered(outcome);
    return run(dry, { root, stdin }).then(planned => {
        if (failed(planned)) {
            if (onRefused)
                onRefused(planned.error);
            else
                alertError(planned.error);
            return;
        }
        if (onRefused)
            onRefused(null);
        const p = logic.plan(planned.doc);
        text($("plan-title"), title);
        text($("plan-intro"), p.nothing ? "Nothing would change." : "edge-setup will make these changes:");
        fill($("plan-lines"), p.lines);
        fill($("plan-notes"), p.notes);
        show($("plan-error"), false);
        show($("plan-apply"), !p.nothing);
        text($("plan-cancel"), p.nothing ? "Close" : "Cancel");
        show($("plan"), true);
        $("plan-cancel").focus();
        $("plan-apply").onclick = () => {
            $("plan-apply").disabled = true;
            run(real, { root, stdin }).then(done => {
                $("plan-apply").disabled = false;
                if (failed(done)) {
                    text($("plan-error").querySelector("p"), [done.error.what, done.error.why, done.error.next].filter(Boolean).join(" - "));
                    show($("plan-error"), true);
                    return;
                }
                show($("plan"), false);
                refresh();
            });
        };
    });
}

function alertError(error) {
    text($("plan-title"), error.what);
    text($("plan-intro"), [error.why, error.next].filter(Boolean).join(" "));
    fill($("plan-lines"), []);
    fill($("plan-notes"), []);
    show($("plan-error"), false);
    show($("plan-apply"), false);
    text($("plan-cancel"), "Close");
    show($("plan"), true);
}

function fill(list, lines) {
    list.replaceChildren(...lines.map(line => {
        const li = document.createElement("li");
        li.textContent = line;
        return li;
    }));
}

/* ---- remote connectivity ------------------------------------------------- */

function renderRemote(outcome, credentials) {
    if (outcome.error) {
        text($("agent"), outcome.error.what);
        return;
    }
    remote = logic.remoteView(outcome.doc);
    $("remote-enabled").checked = remote.enabled;
    if (document.activeElement !== $("remote-url") && $("remote-url").value !== remote.url) {
        // the saved URL replaces what was typed, and with it that text's error
        $("remote-url").value = remote.url;
        fieldError("remote-url-error", "remote-url-control", null);
    }
    text($("device-id"), remote.deviceId || "not set yet");
    show($("device-id-copy"), !!remote.deviceId);
    text($("agent"), remote.agent || "-");
    for (const id of ["remote-enabled", "remote-url", "remote-save"])
        $(id).disabled = !admin;
    show($("remote-limited"), !admin);
    const configured = !!(credentials && credentials.doc && credentials.doc.result && credentials.doc.result.value);
    show($("registration-label"), configured);
    show($("registration"), configured);
    if (configured) {
        run(logic.commands.register(true)).then(reg => {
            const view = reg.error ? { text: reg.error.what, canRegister: false } : logic.registrationView(reg.doc);
            text($("registration-state"), view.text);
            show($("register"), admin && view.canRegister);
        });
    }
}

$("remote-form").addEventListener("submit", event => {
    event.preventDefault();
    if (!admin)
        return;
    const enable = $("remote-enabled").checked;
    const url = $("remote-url").value.trim();
    confirmAndApply({
        title: enable ? "Enable remote connectivity" : "Disable remote connectivity",
        dry: enable ? logic.commands.enable(url, true) : logic.commands.disable(true),
        real: enable ? logic.commands.enable(url, false) : logic.commands.disable(false),
        onRefused: error => fieldError("remote-url-error", "remote-url-control", error),
    });
});

$("device-id-copy").addEventListener("click", () => {
    if (!remote || !remote.deviceId || !navigator.clipboard)
        return;
    navigator.clipboard.writeText(remote.deviceId).then(() => {
        text($("device-id-copy"), "Copied");
        setTimeout(() => text($("device-id-copy"), "Copy"), 2000);
    });
});

$("register").addEventListener("click", () => confirmAndApply({
    title: "Register this device",
    dry: logic.commands.register(true),
    real: logic.commands.register(false),
}));

/* ---- VNC users ---------------------------------------------------------- */

function label(status) {
    const color = { running: "pf-m-green", ok: "pf-m-green", warn: "pf-m-orange", fail: "pf-m-red" }[status] || "";
    const span = document.createElement("span");
    span.className = "pf-v6-c-label pf-m-compact " + color;
    const inner = document.createElement("span");
    inner.className = "pf-v6-c-label__content";
    inner.textContent = status;
    span.append(inner);
    return span;
}

function dataCell(content) {
    const div = document.createElement("div");
    div.className = "pf-v6-c-data-list__cell";
    div.append(content);
    return div;
}

/* One item per user: a data list, whose cells wrap on a narrow window. */
function renderUsers(rows) {
    $("vnc-rows").replaceChildren(...rows.map(row => {
        const li = document.createElement("li");
        li.className = "pf-v6-c-data-list__item";
        li.dataset.user = row.user;
        const line = document.createElement("div");
        line.className = "pf-v6-c-data-list__item-row";
        const content = document.createElement("div");
        content.className = "pf-v6-c-data-list__item-content";
        content.append(
            dataCell(Object.assign(document.createElement("strong"), { textContent: row.user })),
            dataCell(`display ${row.display}, port ${row.port}`),
            dataCell(row.session === "running" ? label("running") : "session: " + row.session),
            dataCell(row.endpoint ? "endpoint: " + row.endpoint : ""));
        line.append(content);
        if (admin) {
            const actions = document.createElement("div");
            actions.className = "pf-v6-c-data-list__item-action";
            actions.append(button("Set password", "pf-m-secondary", () => {
                $("vnc-user").value = row.user;
                $("vnc-password").focus();
            }), button("Remove", "pf-m-danger", () => confirmAndApply({
                title: "Remove VNC for " + row.user,
                dry: logic.commands.removeUser(row.user, true),
                real: logic.commands.removeUser(row.user, false),
            })));
            line.append(actions);
        }
        li.append(line);
        return li;
    }));
    show($("vnc-none"), rows.length === 0);
    show($("vnc-user-group"), admin);
    text($("vnc-form-title"), admin ? "Enable VNC for a user or set a password" : "Your VNC password");
}

function button(label, kind, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "pf-v6-c-button pf-m-small " + kind;
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
}

$("vnc-form").addEventListener("submit", event => {
    event.preventDefault();
    let stdin;
    try {
        stdin = logic.passwordInput($("vnc-password").value, $("vnc-view-only").value);
    } catch (e) {
        fieldError("vnc-error", null, { what: e.message });
        return;
    }
    // an administrator names the user (as root); a user sets her own (as herself)
    const user = admin ? $("vnc-user").value.trim() : null;
    if (admin && !user) {
        fieldError("vnc-error", null, { what: "Name the user whose VNC password to set." });
        return;
    }
    confirmAndApply({
        title: user ? "VNC for " + user : "Your VNC password",
        dry: logic.commands.vncUser(user, true),
        real: logic.commands.vncUser(user, false),
        root: admin ? "require" : null,
        stdin,
        onRefused: error => fieldError("vnc-error", null, error),
    }).then(() => {
        if ($("plan").hidden)
            return;
        // the fields are cleared once the plan is shown: the password is in the pending run only
        $("vnc-password").value = "";
        $("vnc-view-only").value = "";
    });
});

/* ---- health ------------------------------------------------------------- */

function renderHealth(outcome) {
    // a failed check is check's answer (it exits 1 then): the card lists it all the same
    const { view, error } = logic.healthOutcome(outcome);
    if (error) {
        text($("health-counts"), error.what);
        fill($("health-rows"), []);
        show($("health-fix"), false);
        return;
    }
    const c = view.counts;
    text($("health-counts"), `${c.ok || 0} ok, ${c.warn || 0} warnings, ${c.fail || 0} failed, ${c.skipped || 0} skipped`);
    $("health-rows").replaceChildren(...view.rows.filter(r => r.status !== "skipped").map(row => {
        const li = document.createElement("li");
        li.className = "es-check es-" + row.status;
        const head = document.createElement("div");
        head.append(label(row.status), " ", Object.assign(document.createElement("strong"), { textContent: row.id }));
        const finding = Object.assign(document.createElement("div"), { textContent: row.finding });
        li.append(head, finding);
        if (row.next) {
            const next = document.createElement("div");
            next.className = "es-next";
            next.append("Next: ", Object.assign(document.createElement("code"), { textContent: row.next }));
            li.append(next);
        }
        return li;
    }));
    show($("health-fix"), admin && view.fixable);
}

// check --fix exits 1 while a check fails (one it cannot fix, or its plan's): the plan,
// and after Apply the health card, show what it did and what is left
$("health-fix").addEventListener("click", () => confirmAndApply({
    title: "Fix what edge-setup can fix",
    dry: logic.commands.fix(true),
    real: logic.commands.fix(false),
    answered: logic.checkReported,
}));
$("health-refresh").addEventListener("click", () => refresh());
$("plan-cancel").addEventListener("click", () => show($("plan"), false));
document.addEventListener("keydown", e => {
    if (e.key === "Escape")
        show($("plan"), false);
});

/* ---- the whole page ----------------------------------------------------- */

function refresh() {
    const root = admin ? "try" : null;
    const credentials = run(logic.commands.credentials(), { root });
    Promise.all([run(logic.commands.remoteStatus(), { root }), credentials]).then(([status, creds]) => renderRemote(status, creds));
    const status = run(logic.commands.setupStatus(), { root });
    const check = run(logic.commands.check(), { root });
    check.then(renderHealth);
    credentials.then(creds => {
        const configured = !!(creds.doc && creds.doc.result && creds.doc.result.value);
        const sync = configured && admin ? run(logic.commands.endpoints(), { root }) : Promise.resolve(null);
        return Promise.all([status, check, sync]);
    }).then(([st, ch, sy]) => {
        if (st.error) {
            text($("vnc-none"), st.error.what);
            show($("vnc-none"), true);
            return;
        }
        renderUsers(logic.usersView(st.doc, ch.doc, sy && sy.doc));
    });
}

/* Administrative access as Cockpit's shell grants it ("Limited access" or not). A
 * Cockpit without the Superuser interface gives none. */
function watchAdmin(then) {
    const superuser = cockpit.dbus(null, { bus: "internal" }).proxy("cockpit.Superuser", "/superuser");
    const update = () => {
        const now = logic.superuserAllowed(superuser.valid ? superuser.Current : "none");
        if (now === null)
            return; // the bridge is still starting: its outcome comes as a change
        if (now !== admin || then) {
            admin = now;
            const first = then;
            then = null;
            if (first)
                first();
            else
                refresh();
        }
    };
    superuser.addEventListener("changed", update);
    superuser.wait(update);
}

run(logic.commands.version(), { root: null }).then(version => {
    const error = version.error || logic.versionError(version.doc);
    if (error) {
        fatal(error);
        return;
    }
    show($("cards"), true);
    watchAdmin(refresh);
});
