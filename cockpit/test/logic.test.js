// The page's logic against edge-setup's --json as it prints it: node --test cockpit/test
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const logic = require("../edge-setup/logic.js");

const ok = result => JSON.stringify({ changed: false, dry_run: false, changes: [], notes: [], warnings: [], result });

test("the page asks for exactly the edge-setup version it ships with", () => {
    const cargo = fs.readFileSync(path.join(__dirname, "../../Cargo.toml"), "utf8");
    const version = cargo.match(/^version = "([^"]+)"/m)[1];
    assert.equal(logic.MIN_VERSION, version);
});

test("commands are edge-setup with --json, --dry-run for a plan, and never a password", () => {
    assert.deepEqual(logic.commands.enable("t.example.com", true),
        ["edge-setup", "--json", "--dry-run", "remote-connectivity", "enable", "--url", "t.example.com"]);
    assert.deepEqual(logic.commands.enable("t.example.com", false),
        ["edge-setup", "--json", "remote-connectivity", "enable", "--url", "t.example.com"]);
    assert.deepEqual(logic.commands.vncUser("admin", false),
        ["edge-setup", "--json", "vnc-user", "--user", "admin", "--password-stdin"]);
    // a user's own password: no --user, she runs it as herself
    assert.deepEqual(logic.commands.vncUser(null, true), ["edge-setup", "--json", "--dry-run", "vnc-user", "--password-stdin"]);
    assert.deepEqual(logic.commands.endpoints(), ["edge-setup", "--json", "--dry-run", "remote-access", "sync"]);
    assert.equal(logic.passwordInput("s3cret12", ""), "s3cret12\n\n");
    assert.equal(logic.passwordInput("s3cret12", "v1ewonly"), "s3cret12\nv1ewonly\n");
    assert.throws(() => logic.passwordInput("a\nb", ""), /line break/);
});

test("an edge-setup that is missing, too old or fails is said so, with what to do", () => {
    assert.match(logic.outcome("", { problem: "not-found" }).error.what, /not installed/);
    assert.match(logic.outcome("", { problem: "access-denied" }).error.next, /administrative access/);
    assert.equal(logic.versionError(JSON.parse(ok({ version: "0.1.0 (commit 53d507971f0d)" }))), null);
    assert.equal(logic.versionError(JSON.parse(ok({ version: "1.0.0" }))), null);
    const old = logic.versionError(JSON.parse(ok({ version: "0.0.9" })));
    assert.match(old.what, /0\.0\.9 is too old/);
    assert.match(old.why, /0\.1\.0 or later/);
    assert.equal(logic.versionAtLeast("0.10.0", "0.9.1"), true);
    assert.equal(logic.versionAtLeast("0.9.1", "0.10.0"), false);
    // a refused URL: the object edge-setup printed, with its error
    const refused = JSON.stringify({
        changed: false, dry_run: true, changes: [], notes: [], warnings: [],
        error: { what: "'ftp://x' is not a tenant URL", why: "the scheme must be https", next: "give the tenant's https URL", exit: 2 },
    });
    const out = logic.outcome(refused, { exit_status: 2 });
    assert.equal(logic.fieldError(out.error), "'ftp://x' is not a tenant URL: the scheme must be https");
    assert.equal(logic.outcome("garbage", { message: "boom" }).error.why, "boom");
});

test("a plan lists each change as the command line does", () => {
    const doc = {
        changed: true, dry_run: true, notes: ["n"], warnings: ["w"], changes: [
            { action: "write", path: "/usr/edge/properties/edge-agent/remote-connectivity.properties", owner: "root:root", uid: 0, gid: 0, mode: "0644" },
            { action: "run", command: "systemctl restart edge-agent.service" },
            { action: "tenant", request: "POST /devicecontrol/newDeviceRequests", what: "the registration" },
        ],
    };
    assert.deepEqual(logic.plan(doc), {
        nothing: false,
        lines: [
            "write /usr/edge/properties/edge-agent/remote-connectivity.properties (owner root:root, mode 0644)",
            "run: systemctl restart edge-agent.service",
            "send POST /devicecontrol/newDeviceRequests (the registration)",
        ],
        notes: ["n", "w"],
    });
    assert.equal(logic.plan(JSON.parse(ok(null))).nothing, true);
});

test("remote connectivity and registration from their results", () => {
    const status = JSON.parse(ok({
        enabled: true, url: "https://t.example.com", device_id: "edge-4c4c", dns_configured: true,
        name_servers: ["10.0.2.3"], host_resolves: true, agent_service: "edge-agent.service",
        agent_state: "active", problems: [{ file: "/x", problem: "damaged", next: "fix" }],
    }));
    assert.deepEqual(logic.remoteView(status), {
        enabled: true, url: "https://t.example.com", deviceId: "edge-4c4c",
        agent: "edge-agent.service: active", problems: ["/x: damaged"],
    });
    assert.deepEqual(logic.remoteView(JSON.parse(ok({ enabled: false, url: null, device_id: null }))),
        { enabled: false, url: "", deviceId: null, agent: null, problems: [] });
    assert.equal(logic.registrationView(JSON.parse(ok({ state: "not-registered", device_id: "x" }))).canRegister, true);
    const registered = logic.registrationView(JSON.parse(ok({ state: "registered", managed_object: { id: "4711" } })));
    assert.deepEqual(registered, { state: "registered", text: "Registered (managed object 4711)", canRegister: false });
});

test("each VNC user's session and endpoint state", () => {
    const status = JSON.parse(ok({
        vnc_users: [
            { user: "admin", display: 1, port: 5901, password: true },
            { user: "operator", display: 2, port: 5902, password: null },
        ],
    }));
    const check = JSON.parse(ok({
        checks: [
            { id: "vnc.session", area: "vnc", user: "admin", status: "ok", finding: "running", next: null, fixable: false },
            { id: "vnc.port", area: "vnc", user: "admin", status: "ok", finding: "listens", next: null, fixable: false },
            { id: "vnc.session", area: "vnc", user: "operator", status: "fail", finding: "tigervncserver@:2.service is inactive", next: "sudo edge-setup check --fix", fixable: true },
            { id: "vnc.password-file", area: "vnc", user: "operator", status: "ok", finding: "fine", next: null, fixable: false },
        ],
    }));
    const sync = JSON.parse(ok({
        endpoints: [
            { name: "VNC admin", user: "admin", protocol: "VNC", port: 5901, id: "1", action: "unchanged" },
            { name: "VNC operator", user: "operator", protocol: "VNC", port: 5902, id: null, action: "created" },
        ],
    }));
    assert.deepEqual(logic.usersView(status, check, sync), [
        { user: "admin", display: ":1", port: 5901, password: "set", session: "running", endpoint: "in the tenant" },
        { user: "operator", display: ":2", port: 5902, password: "unknown", session: "tigervncserver@:2.service is inactive", endpoint: "missing in the tenant" },
    ]);
    // without credentials there is no endpoint state, without a check no session state
    assert.deepEqual(logic.usersView(status, null, null).map(r => [r.session, r.endpoint]), [["unknown", null], ["unknown", null]]);
});

test("health: the worst first, next steps only where something is wrong, Fix where check --fix can", () => {
    const doc = JSON.parse(ok({
        checks: [
            { id: "disk.root", area: "disk", status: "ok", finding: "40 % free", next: "x", fixable: false },
            { id: "vnc.password-file", area: "vnc", user: "admin", status: "fail", finding: "mode 0644", next: "sudo edge-setup check --fix", fixable: true },
            { id: "tenant.clock", area: "tenant", status: "warn", finding: "120 s behind", next: "check NTP", fixable: false },
        ],
        counts: { ok: 1, warn: 1, fail: 1, skipped: 0 },
    }));
    const view = logic.healthView(doc);
    assert.deepEqual(view.rows.map(r => [r.id, r.status, r.next, r.fixable]), [
        ["vnc.password-file (admin)", "fail", "sudo edge-setup check --fix", true],
        ["tenant.clock", "warn", "check NTP", false],
        ["disk.root", "ok", null, false],
    ]);
    assert.equal(view.fixable, true);
    assert.deepEqual(view.counts, { ok: 1, warn: 1, fail: 1, skipped: 0 });
});

test("administrative access is any superuser bridge, not only a root login", () => {
    // Cockpit's cockpit.Superuser names the bridge in use: "sudo" after "Limited access"
    // was turned off with the user's password (found in the browser: the page stayed limited)
    assert.equal(logic.superuserAllowed("sudo"), true);
    assert.equal(logic.superuserAllowed("pkexec"), true);
    assert.equal(logic.superuserAllowed("root"), true);
    assert.equal(logic.superuserAllowed("none"), false);
    assert.equal(logic.superuserAllowed("init"), null);
    assert.equal(logic.superuserAllowed(undefined), null);
});

test("health: checks that failed are listed, not only check's exit status", () => {
    // check --json exits 1 when a check failed; its object has the error beside the
    // checks (found in the browser: the card showed "2 checks failed: ..." and no rows)
    const printed = JSON.stringify({
        changed: false, dry_run: false, changes: [], notes: [], warnings: [],
        result: {
            checks: [
                { id: "agent.service", area: "agent", status: "fail", finding: "edge-agent.service is not installed", next: "install the Edge agent", fixable: false },
                { id: "disk.root", area: "disk", status: "ok", finding: "40 % free", next: null, fixable: false },
            ],
            counts: { ok: 1, warn: 0, fail: 1, skipped: 0 },
        },
        error: { what: "1 check failed: agent.service", why: null, next: "run the next command each one names", exit: 1 },
    });
    const outcome = logic.outcome(printed, { exit_status: 1 });
    assert.equal(logic.checkReported(outcome), true);
    const { view, error } = logic.healthOutcome(outcome);
    assert.equal(error, null);
    assert.deepEqual(view.counts, { ok: 1, warn: 0, fail: 1, skipped: 0 });
    assert.deepEqual(view.rows.map(r => [r.id, r.status]), [["agent.service", "fail"], ["disk.root", "ok"]]);
    // a run that reported no checks is an error to show
    const broken = logic.healthOutcome(logic.outcome("", { problem: "not-found" }));
    assert.equal(broken.view, null);
    assert.match(broken.error.what, /not installed/);
    assert.equal(logic.checkReported(logic.outcome("", { message: "boom" })), false);
});
