import pytest

from ansible_collections.edge_setup.fleet.plugins.modules import edge_setup_remote_access as module
from ansible_collections.edge_setup.fleet.plugins.modules.edge_setup_remote_access import credentials, steps

PASSWORD = "Tenant:Pass#1"
TOKEN = "eyJ0ZXN0.token.sig"


def params(**kw):
    p = dict(tenant_user=None, tenant_password=None, tenant_token=None, credentials_file=None, register=True,
             accept=True, wait=600, sync=True, ssh_users=[])
    p.update(kw)
    return p


def reply(changed=False, result=None, error=None, changes=None):
    doc = {"changed": changed, "dry_run": False, "changes": changes or [], "notes": [], "warnings": []}
    if result is not None:
        doc["result"] = result
    if error is not None:
        doc["error"] = error
    return doc


def test_credentials_go_to_stdin_or_name_a_file():
    assert credentials(params(tenant_user="t1/admin", tenant_password=PASSWORD)) == (
        "t1/admin\n" + PASSWORD + "\n", ["--credentials-stdin"])
    assert credentials(params(tenant_token=TOKEN)) == ("Bearer " + TOKEN + "\n", ["--credentials-stdin"])
    assert credentials(params(credentials_file="/etc/edge-setup/creds")) == (
        None, ["--credentials", "/etc/edge-setup/creds"])
    assert credentials(params()) == (None, [])
    with pytest.raises(ValueError, match="go together"):
        credentials(params(tenant_user="t1/admin"))
    with pytest.raises(ValueError, match="one line"):
        credentials(params(tenant_user="t1/admin", tenant_password="a\nb"))


def test_steps_in_order():
    assert steps(params(ssh_users=["admin"])) == [
        ("register", ["register", "--accept", "--wait", "--timeout", "600"]),
        ("sync", ["remote-access", "sync"]),
        ("ssh admin", ["remote-access", "ssh", "--user", "admin"]),
    ]
    assert steps(params(accept=False, wait=0, sync=False)) == [("register", ["register"])]


def test_runs_each_step_with_the_credentials_on_stdin_only(fake, run_module):
    fake.reply("register", reply(True, {"state": "requested", "status": "ACCEPTED"},
                                 changes=[{"action": "tenant", "request": "POST /devicecontrol/newDeviceRequests",
                                           "what": "register device d"}]))
    fake.reply("sync", reply(True, {"managed_object": "7", "endpoints": [{"name": "VNC admin (:1)", "action": "created"}]}))
    fake.reply("ssh", reply(False, {"managed_object": "7", "endpoints": [{"name": "SSH admin", "action": "unchanged"}]}))
    result, failed = run_module(module, dict(tenant_user="t1/admin", tenant_password=PASSWORD, ssh_users=["admin"],
                                             executable=fake.path), diff=True)
    assert not failed, result
    assert result["changed"] is True
    assert [e["action"] for e in result["endpoints"]] == ["created", "unchanged"]
    assert result["registration"]["status"] == "ACCEPTED"
    assert result["diff"]["prepared"] == "POST /devicecontrol/newDeviceRequests (register device d)\n"
    calls = fake.calls()
    assert [c["argv"][2:] for c in calls] == [
        ["register", "--accept", "--wait", "--timeout", "600", "--credentials-stdin"],
        ["remote-access", "sync", "--credentials-stdin"],
        ["remote-access", "ssh", "--user", "admin", "--credentials-stdin"],
    ]
    for c in calls:
        assert c["argv"][1] == "--json"
        assert c["stdin"] == "t1/admin\n" + PASSWORD + "\n"
        assert PASSWORD not in " ".join(c["argv"]) and PASSWORD not in str(c["env"])
    assert PASSWORD not in result["_stdout"]


def test_a_failed_step_stops_the_run_with_its_reasons(fake, run_module):
    fake.reply("register", reply(False, {"state": "registered", "managed_object": "7"}))
    fake.reply("sync", reply(False, error={"what": "the tenant refused the credentials", "why": None,
                                           "next": "check the password", "exit": 1}), rc=1)
    result, failed = run_module(module, dict(tenant_token=TOKEN, ssh_users=["admin"], executable=fake.path))
    assert failed
    assert result["msg"] == "the tenant refused the credentials"
    assert result["next"] == "check the password" and result["step"] == "sync" and result["rc"] == 1
    assert len(fake.calls()) == 2, "no ssh step after the failure"
    assert TOKEN not in result["_stdout"]


def test_check_mode_is_a_dry_run_and_waits_for_the_registration(fake, run_module):
    fake.reply("register", reply(True, {"state": "requested", "status": "WAITING_FOR_CONNECTION"}))
    result, failed = run_module(module, dict(credentials_file="/etc/c", executable=fake.path), check=True)
    assert not failed, result
    calls = fake.calls()
    assert len(calls) == 1 and "--dry-run" in calls[0]["argv"]
    assert calls[0]["argv"][-2:] == ["--credentials", "/etc/c"]
    assert "synced once the device is registered" in result["notes"][0]
