/* The page's logic without the page: the command lines it runs and what it
 * makes of edge-setup's --json output. Everything the page shows comes from
 * edge-setup itself, so the page and the command line cannot disagree; this
 * file only maps one onto the other. Loaded by the page as a script and by
 * node's test runner as a module. */
(function (root, factory) {
    if (typeof module === "object" && module.exports)
        module.exports = factory();
    else
        root.EdgeSetupLogic = factory();
}(typeof self !== "undefined" ? self : this, function () {
    "use strict";

    /* The oldest edge-setup whose --json this page understands: the page's own
     * version (the package depends on exactly it). */
    const MIN_VERSION = "0.1.0";
    const PROGRAM = "edge-setup";

    /* argv of an edge-setup command with --json, and --dry-run for its plan. */
    function argv(args, dryRun) {
        return [PROGRAM, "--json"].concat(dryRun ? ["--dry-run"] : [], args);
    }

    const commands = {
        version: () => argv(["--version"]),
        remoteStatus: () => argv(["remote-connectivity", "status"]),
        enable: (url, dryRun) => argv(["remote-connectivity", "enable", "--url", url], dryRun),
        disable: dryRun => argv(["remote-connectivity", "disable"], dryRun),
        setupStatus: () => argv(["setup", "status"]),
        credentials: () => argv(["config", "get", "c8y.credentials-file"]),
        register: dryRun => argv(["register"], dryRun),
        endpoints: () => argv(["remote-access", "sync"], true),
        check: () => argv(["check"]),
        fix: dryRun => argv(["check", "--fix"], dryRun),
        /* The password and the view-only one travel on stdin (passwordInput), never here. */
        vncUser: (user, dryRun) => argv(["vnc-user"].concat(user ? ["--user", user] : [], ["--password-stdin"]), dryRun),
        removeUser: (user, dryRun) => argv(["vnc-user", "--user", user, "--remove"], dryRun),
    };

    /* What --password-stdin reads: the password, then the view-only one (empty: none). */
    function passwordInput(password, viewOnly) {
        for (const p of [password, viewOnly || ""]) {
            if (/[\r\n]/.test(p))
                throw new Error("A password cannot contain a line break.");
        }
        return password + "\n" + (viewOnly || "") + "\n";
    }

    /* edge-setup --json prints one object on stdout, also when it fails. */
    function envelope(stdout) {
        const text = (stdout || "").trim();
        if (!text)
            return null;
        try {
            return JSON.parse(text);
        } catch (e) {
            return null;
        }
    }

    /* The outcome of one run: its envelope, or an error the page can show.
     * `failure` is what cockpit.spawn rejected with ({problem, exit_status, message}). */
    function outcome(stdout, failure) {
        const doc = envelope(stdout);
        if (failure && failure.problem === "not-found")
            return { error: missingError() };
        if (failure && (failure.problem === "access-denied" || failure.problem === "authentication-failed"))
            return { error: { what: "This needs administrative access", why: null, next: "Turn on administrative access (the \"Limited access\" button at the top) and try again." } };
        if (doc && doc.error)
            return { doc, error: { what: doc.error.what, why: doc.error.why || null, next: doc.error.next || null } };
        if (!doc) {
            const message = failure ? (failure.message || String(failure)) : "edge-setup printed no result";
            return { error: { what: "edge-setup did not answer as expected", why: message, next: null } };
        }
        return { doc, error: null };
    }

    function missingError() {
        return {
            what: "edge-setup is not installed on this machine",
            why: "This page runs edge-setup for everything it shows and changes.",
            next: "Install the edge-setup package (version " + MIN_VERSION + " or later), then reload this page.",
        };
    }

    /* "0.10.2" against "0.9.0", numerically; a suffix after '-' or '+' is ignored. */
    function versionAtLeast(version, minimum) {
        const parts = v => String(v).split(/[-+ ]/)[0].split(".").map(n => parseInt(n, 10) || 0);
        const a = parts(version), b = parts(minimum);
        for (let i = 0; i < Math.max(a.length, b.length); i++) {
            if ((a[i] || 0) !== (b[i] || 0))
                return (a[i] || 0) > (b[i] || 0);
        }
        return true;
    }

    /* Whether the page can work with this edge-setup: null, or the error to show. */
    function versionError(doc) {
        const found = doc && doc.result && doc.result.version;
        if (!found)
            return { what: "edge-setup did not say its version", why: null, next: "Reinstall the edge-setup package." };
        const version = String(found).replace(/^edge-setup\s+/, "");
        if (versionAtLeast(version, MIN_VERSION))
            return null;
        return {
            what: "edge-setup " + version + " is too old for this page",
            why: "The page needs edge-setup " + MIN_VERSION + " or later.",
            next: "Upgrade the edge-setup package to the version of edge-setup-cockpit, then reload this page.",
        };
    }

    /* One line per planned change, as the command line's plan says it. */
    function describe(change) {
        switch (change.action) {
        case "write": return "write " + change.path + " (owner " + change.owner + ", mode " + change.mode + ")";
        case "mkdir": return "create directory " + change.path + " (owner " + change.owner + ", mode " + change.mode + ")";
        case "remove": return "remove " + change.path;
        case "link": return "link " + change.path + " -> " + change.target;
        case "shred": return "overwrite and remove " + change.path;
        case "run": return "run: " + change.command;
        case "tenant": return "send " + change.request + " (" + change.what + ")";
        default: return JSON.stringify(change);
        }
    }

    /* A dry run's plan: its changes, or that nothing would change. */
    function plan(doc) {
        const changes = (doc && doc.changes) || [];
        return {
            nothing: changes.length === 0,
            lines: changes.map(describe),
            notes: ((doc && doc.notes) || []).concat((doc && doc.warnings) || []),
        };
    }

    /* The remote connectivity card from `remote-connectivity status`. */
    function remoteView(doc) {
        const r = (doc && doc.result) || {};
        return {
            enabled: r.enabled === true,
            url: r.url || "",
            deviceId: r.device_id || null,
            agent: r.agent_service ? r.agent_service + ": " + (r.agent_state || "unknown") : null,
            problems: (r.problems || []).map(p => p.file + ": " + p.problem),
        };
    }

    /* The registration line from `register --dry-run` (a lookup, nothing requested). */
    function registrationView(doc) {
        const r = (doc && doc.result) || {};
        switch (r.state) {
        case "registered": return { state: "registered", text: "Registered" + (r.managed_object ? " (managed object " + (r.managed_object.id || r.managed_object) + ")" : ""), canRegister: false };
        case "requested": return { state: "requested", text: "Registration requested" + (r.status ? " (" + r.status + ")" : ""), canRegister: true };
        case "not-registered": return { state: "not-registered", text: "Not registered", canRegister: true };
        default: return { state: "unknown", text: "Unknown", canRegister: false };
        }
    }

    /* The checks of a user's session (`check`'s ids are area-qualified). */
    const SESSION_CHECKS = ["vnc.session", "vnc.port", "vnc.rfb"];

    /* The VNC users' rows: `setup status` gives users, displays and ports; `check`
     * (vnc area) the session's state; a dry run of `remote-access sync` the
     * endpoint's, when the tenant's credentials are configured. */
    function usersView(status, check, sync) {
        const users = ((status && status.result && status.result.vnc_users) || []);
        const checks = ((check && check.result && check.result.checks) || []);
        const endpoints = ((sync && sync.result && sync.result.endpoints) || []);
        return users.map(u => {
            const own = checks.filter(c => c.area === "vnc" && c.user === u.user && SESSION_CHECKS.includes(c.id));
            let session = "unknown";
            if (own.length > 0)
                session = own.every(c => c.status === "ok") ? "running" : (own.find(c => c.status !== "ok").finding);
            const endpoint = endpoints.find(e => e.user === u.user && e.protocol === "VNC");
            let endpointState = null;
            if (endpoint)
                endpointState = endpoint.action === "unchanged" ? "in the tenant" : (endpoint.action === "created" ? "missing in the tenant" : "differs from the tenant");
            return {
                user: u.user,
                display: ":" + u.display,
                port: u.port,
                password: u.password === true ? "set" : (u.password === false ? "none" : "unknown"),
                session,
                endpoint: endpointState,
            };
        });
    }

    const ORDER = { fail: 0, warn: 1, ok: 2, skipped: 3 };

    /* The health card from `check --json`: the worst first, each with its next step. */
    function healthView(doc) {
        const r = (doc && doc.result) || {};
        const checks = (r.checks || []).slice().sort((a, b) => (ORDER[a.status] - ORDER[b.status]));
        return {
            counts: r.counts || {},
            rows: checks.map(c => ({
                id: c.id + (c.user ? " (" + c.user + ")" : ""),
                status: c.status,
                finding: c.finding,
                next: c.status === "ok" || c.status === "skipped" ? null : (c.next || null),
                fixable: c.fixable === true && c.status !== "ok",
            })),
            fixable: checks.some(c => c.fixable === true && c.status !== "ok"),
        };
    }

    /* Whether the session has administrative access, from the `Current` of Cockpit's
     * cockpit.Superuser (the internal bus' /superuser): the name of the bridge that gives
     * it ("sudo", "pkexec", ...; "root" when the login is root's), "none" in "Limited
     * access", "init" while the bridge is still starting (null: not known yet). */
    function superuserAllowed(current) {
        if (current === undefined || current === null || current === "init")
            return null;
        return current !== "none";
    }

    /* Whether a `check` run reported its checks: it exits 1 when one of them failed, and
     * its object then has an error beside the result, but the checks are its answer. */
    function checkReported(outcome) {
        const checks = outcome && outcome.doc && outcome.doc.result && outcome.doc.result.checks;
        return Array.isArray(checks);
    }

    /* The health card from a `check --json` run: its checks, failed ones included, or the
     * error of a run that reported none. */
    function healthOutcome(outcome) {
        if (checkReported(outcome))
            return { view: healthView(outcome.doc), error: null };
        return { view: null, error: outcome.error || { what: "edge-setup check reported no checks", why: null, next: null } };
    }

    /* What a URL field shows under itself: edge-setup's own verdict on it. */
    function fieldError(error) {
        if (!error)
            return null;
        return error.what + (error.why ? ": " + error.why : "");
    }

    return {
        MIN_VERSION,
        commands,
        passwordInput,
        envelope,
        outcome,
        versionAtLeast,
        versionError,
        describe,
        plan,
        remoteView,
        registrationView,
        usersView,
        healthView,
        checkReported,
        healthOutcome,
        fieldError,
        superuserAllowed,
    };
}));
