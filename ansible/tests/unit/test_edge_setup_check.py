import pytest
from ansible.module_utils import basic

from ansible_collections.edge_setup.fleet.plugins.modules import edge_setup_check

OK = {"id": "identity.device-id", "area": "identity", "status": "ok", "finding": "edge-01", "next": None, "fixable": False}
SKIPPED = {"id": "disk.root", "area": "disk", "status": "skipped", "finding": "needs the running system", "next": None, "fixable": False}
WARN = {"id": "agent.url", "area": "agent", "status": "warn", "finding": "no tenant URL is set",
        "next": "sudo edge-setup remote-connectivity enable --url https://<tenant host>", "fixable": False}
FAIL = {"id": "vnc.packages", "area": "vnc", "status": "fail", "finding": "TigerVNC is not installed", "next": "sudo edge-setup vnc",
        "fixable": False}
USER_FAIL = {"id": "vnc.password-file", "area": "vnc", "user": "admin", "status": "fail", "finding": "mode 0644, not 0600",
             "next": "sudo edge-setup check --fix --only vnc", "fixable": True}
WRITE = {"action": "write", "path": "/home/admin/.vnc/passwd", "owner": "admin:admin", "uid": 1000, "gid": 1000, "mode": "0600"}


def counts(checks):
    return dict((s, len([c for c in checks if c["status"] == s])) for s in ("ok", "warn", "fail", "skipped"))


def reply(checks, changed=False, changes=None, dry_run=False, error=None, warnings=None):
    doc = {"changed": changed, "dry_run": dry_run, "changes": changes or [], "notes": [], "warnings": warnings or [],
           "result": {"checks": checks, "counts": counts(checks)}}
    if error:
        doc["error"] = dict({"why": None, "next": "run the next command each one names", "exit": 1}, what=error)
    return doc


def argv(fake):
    (call,) = fake.calls()
    return call["argv"][1:]


def test_all_ok(fake, run_module):
    fake.reply("check", reply([OK, SKIPPED]))
    result, failed = run_module(edge_setup_check, dict(executable=fake.path))
    assert not failed and result["changed"] is False
    assert result["checks"] == [OK, SKIPPED] and result["counts"] == {"ok": 1, "warn": 0, "fail": 0, "skipped": 1}
    assert (result["failed_checks"], result["warned_checks"]) == ([], [])
    assert result["msg"] == "1 ok, 0 warnings, 0 failed, 1 skipped"
    assert argv(fake) == ["--json", "check"]


def test_options_become_arguments(fake, run_module):
    fake.reply("check", reply([OK]))
    result, failed = run_module(edge_setup_check, dict(executable=fake.path, root="/img", only=["identity", "vnc"], strict=True))
    assert not failed
    assert argv(fake) == ["--root", "/img", "--json", "check", "--only", "identity,vnc", "--strict"]


def test_an_unknown_area_is_refused(fake, run_module):
    result, failed = run_module(edge_setup_check, dict(executable=fake.path, only=["vnc", "network"]))
    assert failed and "network" in result["msg"]
    assert fake.calls() == []


CHECKS = [OK, WARN, FAIL, USER_FAIL, SKIPPED]
FAILED = "2 checks failed: vnc.packages, vnc.password-file [admin]"


def test_failures_fail_the_host_naming_them(fake, run_module):
    fake.reply("check", reply(CHECKS, error=FAILED), rc=1)
    result, failed = run_module(edge_setup_check, dict(executable=fake.path))
    assert failed
    assert result["msg"] == "1 ok, 1 warning, 2 failed, 1 skipped; failed: vnc.packages, vnc.password-file [admin]; warnings: agent.url"
    # the data is there for a task that goes on (ignore_errors)
    assert result["failed_checks"] == ["vnc.packages", "vnc.password-file [admin]"] and result["warned_checks"] == ["agent.url"]
    assert (result["checks"], result["counts"]["fail"], result["rc"]) == (CHECKS, 2, 1)


def test_failures_are_data_with_fail_on_never(fake, run_module):
    fake.reply("check", reply(CHECKS, error=FAILED), rc=1)
    result, failed = run_module(edge_setup_check, dict(executable=fake.path, fail_on="never"))
    assert not failed and result["changed"] is False
    assert result["failed_checks"] == ["vnc.packages", "vnc.password-file [admin]"]
    assert result["counts"] == {"ok": 1, "warn": 1, "fail": 2, "skipped": 1}
    assert "failed: vnc.packages, vnc.password-file [admin]" in result["msg"]
    # Ansible takes a result with rc other than 0 for a failure
    assert "rc" not in result


@pytest.mark.parametrize(
    "args, rc, fails, failed_checks",
    [
        (dict(), 0, False, []),
        (dict(fail_on="warn"), 0, True, []),
        (dict(strict=True), 1, True, ["agent.url"]),
        (dict(strict=True, fail_on="never"), 1, False, ["agent.url"]),
    ],
)
def test_warnings(fake, run_module, args, rc, fails, failed_checks):
    fake.reply("check", reply([OK, WARN], error="1 check did not pass (--strict): agent.url" if rc else None), rc=rc)
    result, failed = run_module(edge_setup_check, dict(args, executable=fake.path))
    assert failed is fails
    assert result["failed_checks"] == failed_checks and result["warned_checks"] == ["agent.url"]
    assert "agent.url" in result["msg"]
    assert ("--strict" in argv(fake)) is bool(args.get("strict"))


def test_fix_changes_per_the_envelope(fake, run_module):
    fake.reply("check", reply([OK, dict(USER_FAIL, status="ok", next=None, fixable=False)], changed=True, changes=[WRITE]))
    result, failed = run_module(edge_setup_check, dict(executable=fake.path, only=["vnc"], fix=True), diff=True)
    assert not failed and result["changed"] is True and result["changes"] == [WRITE]
    assert result["diff"]["prepared"] == "write /home/admin/.vnc/passwd (owner admin:admin, mode 0600)\n"
    assert argv(fake) == ["--json", "check", "--only", "vnc", "--fix"]

    fake.reply("check", reply([OK]))
    result, failed = run_module(edge_setup_check, dict(executable=fake.path, fix=True))
    assert not failed and result["changed"] is False


def test_fix_in_check_mode_is_a_dry_run(fake, run_module):
    fake.reply("check", reply([OK, USER_FAIL], changed=True, changes=[WRITE], dry_run=True,
                              error="1 check failed: vnc.password-file [admin]"), rc=1)
    result, failed = run_module(edge_setup_check, dict(executable=fake.path, fix=True, fail_on="never"), check=True)
    assert not failed and result["changed"] is True and result["changes"] == [WRITE]
    assert result["failed_checks"] == ["vnc.password-file [admin]"]
    assert argv(fake) == ["--dry-run", "--json", "check", "--fix"]


def test_without_fix_nothing_changes(fake, run_module):
    # in check mode too: nothing to plan, the checks run as they are
    fake.reply("check", reply([OK], changed=True))
    result, failed = run_module(edge_setup_check, dict(executable=fake.path), check=True)
    assert not failed and result["changed"] is False
    assert argv(fake) == ["--json", "check"]


def test_edge_setup_warnings_are_ansible_warnings(fake, run_module, monkeypatch):
    fake.reply("check", reply([OK], warnings=["vnc.session: the session did not start"]))
    warned = []
    original = basic.AnsibleModule.warn
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, w: (warned.append(w), original(self, w)))
    result, failed = run_module(edge_setup_check, dict(executable=fake.path))
    assert not failed and warned == ["vnc.session: the session did not start"]


@pytest.mark.parametrize(
    "doc, rc, msg",
    [
        # could not check at all: no result
        ({"changed": False, "changes": [], "notes": [], "warnings": [],
          "error": {"what": "cannot use /x as the root", "why": "No such file", "next": "give --root a directory", "exit": 2}},
         2, "cannot use /x as the root"),
        ({"changed": False, "changes": [], "notes": [], "warnings": [],
          "error": {"what": "root is needed", "why": None, "next": None, "exit": 3}, "result": {"checks": [], "counts": {}}},
         3, "root is needed"),
        # exit 1 while every check passed: another failure than a check's
        (reply([OK], error="the lock is held"), 1, "the lock is held"),
    ],
)
def test_edge_setup_failures(fake, run_module, doc, rc, msg):
    fake.reply("check", doc, rc=rc)
    result, failed = run_module(edge_setup_check, dict(executable=fake.path, fail_on="never"))
    assert failed and result["msg"] == msg and result["rc"] == rc


def test_no_json_is_a_failure(fake, run_module):
    fake.reply("check", stdout="Segmentation fault\n", rc=139)
    result, failed = run_module(edge_setup_check, dict(executable=fake.path, fail_on="never"))
    assert failed and "printed no JSON object (exit 139)" in result["msg"]
    assert result["stdout"] == "Segmentation fault\n"
