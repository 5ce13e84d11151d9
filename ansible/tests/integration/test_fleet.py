# The role and modules driven by ansible-playbook against two image roots, one
# per host, with the real edge-setup.

import json
import os
import subprocess
import sys

import pytest
from conftest import HERE, make_root, snapshot, task_results

PASSWORDS = {"edge-a": "Vnc#pw-a", "edge-b": "Vnc#pw-b"}
APPLY = "Apply the appliance's settings"


def host_vars(root, name, **overrides):
    v = dict(
        edge_setup_root=str(root),
        edge_setup_answers={"agent": {"url": "https://%s.example.com" % name, "force": True}, "device-id": {"id": name}},
        edge_setup_vnc_users=[{"user": "admin", "password": PASSWORDS[name]}],
    )
    v.update(overrides)
    return v


@pytest.fixture
def roots(tmp_path):
    return {name: make_root(tmp_path / name) for name in PASSWORDS}


@pytest.fixture
def fleet(ansible, roots):
    return ansible.inventory({name: host_vars(root, name) for name, root in roots.items()})


def tigervnc_installed(root):
    """The image's package database says TigerVNC 1.12 is installed: its vnc.packages check passes."""
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text("Package: tigervnc-common\nStatus: install ok installed\nVersion: 1.12.0+dfsg-8\n\n")


def stats(out):
    return {host: (s["changed"], s["failures"]) for host, s in out["stats"].items()}


def test_first_run_changes_both_second_changes_nothing(ansible, fleet, roots):
    rc, out, text = ansible.playbook(HERE / "site.yml", fleet)
    assert rc == 0 and stats(out) == {"edge-a": (1, 0), "edge-b": (1, 0)}
    for name, root in roots.items():
        assert (root / "usr/edge/properties/edge-agent/device-id").read_text() == name + "\n"
        assert "url=https://%s.example.com" % name in (root / "usr/edge/properties/edge-agent/remote-connectivity.properties").read_text()
        passwd = root / "home/admin/.vnc/passwd"
        assert (os.stat(passwd).st_uid, os.stat(passwd).st_mode & 0o777) == (1000, 0o600)
        result = task_results(out, APPLY)[name]
        (vnc,) = [r["result"] for r in result["results"] if r["option"] == "vnc-user"]
        assert (vnc["user"], vnc["port"]) == ("admin", 5901)
        # the test images have no TigerVNC unit to enable: all of it at their first boot
        assert result["target_commands"] == ["systemctl enable --now tigervncserver@:1.service"]
        assert result["first_boot_commands"] == result["target_commands"]
    # Different passwords give different password files.
    assert (roots["edge-a"] / "home/admin/.vnc/passwd").read_bytes() != (roots["edge-b"] / "home/admin/.vnc/passwd").read_bytes()
    for password in PASSWORDS.values():
        assert password not in text

    rc, out = ansible.playbook(HERE / "site.yml", fleet)[:2]
    assert rc == 0 and stats(out) == {"edge-a": (0, 0), "edge-b": (0, 0)}


def test_check_mode_changes_no_file(ansible, fleet, roots):
    before = {name: snapshot(root) for name, root in roots.items()}
    rc, out, text = ansible.playbook(HERE / "site.yml", fleet, "--check", "--diff")
    assert rc == 0 and stats(out) == {"edge-a": (1, 0), "edge-b": (1, 0)}
    assert {name: snapshot(root) for name, root in roots.items()} == before
    for name, root in roots.items():
        prepared = task_results(out, APPLY)[name]["diff"]["prepared"].splitlines()
        assert "write %s/home/admin/.vnc/passwd (owner admin:admin, mode 0600)" % root in prepared
    for password in PASSWORDS.values():
        assert password not in text


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"edge_setup_answers": {"agent": {"urll": "https://x.example.com"}}}, "answers:2:1: unknown key 'urll' in [agent]"),
        ({"edge_setup_vnc_users": [{"user": "admin", "password": "abc"}]}, "'password-file' vnc_users[0]: the VNC password is refused"),
        ({"edge_setup_answers": {"config": {"vnc": {"geometry": "big"}}}}, "[config.vnc] is not valid"),
    ],
)
def test_a_bad_value_fails_its_host_only(ansible, roots, bad, message):
    inventory = ansible.inventory({"edge-a": host_vars(roots["edge-a"], "edge-a", **bad), "edge-b": host_vars(roots["edge-b"], "edge-b")})
    before = snapshot(roots["edge-a"])
    rc, out = ansible.playbook(HERE / "site.yml", inventory)[:2]
    assert rc == 2 and stats(out) == {"edge-a": (0, 1), "edge-b": (1, 0)}
    failed = task_results(out, APPLY)["edge-a"]
    assert message in failed["msg"] and failed["rc"] == 2
    assert snapshot(roots["edge-a"]) == before
    assert (roots["edge-b"] / "home/admin/.vnc/passwd").exists()


def test_configuration_keys_per_host(ansible, roots):
    geometry = {"edge-a": "1920x1080", "edge-b": "1024x768"}
    inventory = ansible.inventory(
        {
            name: host_vars(
                root,
                name,
                # a section as a dictionary, and a key by its full name
                edge_setup_answers={"config": {"vnc": {"geometry": geometry[name]}, "c8y.request-timeout": 60}},
            )
            for name, root in roots.items()
        }
    )
    rc, out = ansible.playbook(HERE / "site.yml", inventory)[:2]
    assert rc == 0 and stats(out) == {"edge-a": (1, 0), "edge-b": (1, 0)}
    for name, root in roots.items():
        text = (root / "etc/edge-setup/edge-setup.toml").read_text()
        assert 'geometry = "%s"' % geometry[name] in text and 'request-timeout = "60"' in text, text
        results = task_results(out, APPLY)[name]["results"]
        (config,) = [r["result"] for r in results if r["option"] == "config"]
        assert config["keys"] == {"vnc.geometry": geometry[name], "c8y.request-timeout": "60"}
    rc, out = ansible.playbook(HERE / "site.yml", inventory)[:2]
    assert rc == 0 and stats(out) == {"edge-a": (0, 0), "edge-b": (0, 0)}


def test_info_reads_each_root(ansible, fleet, roots, edge_setup_bin):
    assert ansible.playbook(HERE / "site.yml", fleet)[0] == 0
    # A damaged file is a problem to report, not a failure.
    (roots["edge-b"] / "usr/edge/properties/edge-agent/remote-connectivity.properties").write_text("enabled=maybe\n")

    rc, out = ansible.playbook(HERE / "info.yml", fleet)[:2]
    assert rc == 0 and stats(out) == {"edge-a": (0, 0), "edge-b": (0, 0)}
    info = {host: r["edge_setup"] for host, r in task_results(out, "Read the status").items()}
    version = subprocess.run([edge_setup_bin, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("edge-setup %s (commit %s)" % (info["edge-a"]["version"], info["edge-a"]["commit"]))
    a = info["edge-a"]["status"]
    assert a["vnc_users"] == [{"user": "admin", "display": 1, "port": 5901, "password": True}]
    assert (a["remote_connectivity"]["device_id"], a["remote_connectivity"]["url"], a["problems"]) == ("edge-a", "https://edge-a.example.com", [])
    assert "enabled must be true or false" in info["edge-b"]["status"]["problems"][0]["problem"]


def test_check_gathers_each_hosts_health_and_fixes(ansible, fleet, roots):
    assert ansible.playbook(HERE / "site.yml", fleet)[0] == 0
    for root in roots.values():
        tigervnc_installed(root)
    passwd = roots["edge-b"] / "home/admin/.vnc/passwd"
    passwd.chmod(0o644)
    never = json.dumps({"check_fail_on": "never"})

    # Failed checks are data with fail_on: never.
    rc, out = ansible.playbook(HERE / "check.yml", fleet, "-e", never)[:2]
    assert rc == 0 and stats(out) == {"edge-a": (0, 0), "edge-b": (0, 0)}
    results = task_results(out, "Check the health")
    for host, result in results.items():
        checks = result["checks"]
        assert {c["area"] for c in checks} == {"identity", "vnc"}
        assert all({"id", "area", "status", "finding", "next", "fixable"} <= set(c) for c in checks)
        assert sum(result["counts"].values()) == len(checks)
        assert {"id": "identity.device-id", "area": "identity", "status": "ok", "finding": host, "next": None, "fixable": False} in checks
        assert ("vnc.packages", "ok") in [(c["id"], c["status"]) for c in checks]
        assert result["changed"] is False and result["changes"] == []
    assert (results["edge-a"]["failed_checks"], results["edge-a"]["counts"]["fail"]) == ([], 0)
    assert (results["edge-b"]["failed_checks"], results["edge-b"]["counts"]["fail"]) == (["vnc.password-file [admin]"], 1)
    (bad,) = [c for c in results["edge-b"]["checks"] if c["status"] == "fail"]
    assert (bad["user"], bad["fixable"]) == ("admin", True)

    # By default they fail their host, naming them.
    rc, out = ansible.playbook(HERE / "check.yml", fleet)[:2]
    assert rc == 2 and stats(out) == {"edge-a": (0, 0), "edge-b": (0, 1)}
    assert "; failed: vnc.password-file [admin]" in task_results(out, "Check the health")["edge-b"]["msg"]

    # fix: in check mode the plan, then the fix, then nothing left to fix.
    before = {name: snapshot(root) for name, root in roots.items()}
    fix = json.dumps({"check_fix": True})
    rc, out = ansible.playbook(HERE / "check.yml", fleet, "-e", fix, "-e", never, "--check", "--diff")[:2]
    assert rc == 0 and stats(out) == {"edge-a": (0, 0), "edge-b": (1, 0)}
    assert {name: snapshot(root) for name, root in roots.items()} == before
    planned = task_results(out, "Check the health")["edge-b"]
    assert planned["diff"]["prepared"] == "write %s (owner admin:admin, mode 0600)\n" % passwd
    assert planned["failed_checks"] == ["vnc.password-file [admin]"]
    rc, out = ansible.playbook(HERE / "check.yml", fleet, "-e", fix)[:2]
    assert rc == 0 and stats(out) == {"edge-a": (0, 0), "edge-b": (1, 0)}
    assert os.stat(passwd).st_mode & 0o777 == 0o600
    assert task_results(out, "Check the health")["edge-b"]["failed_checks"] == []
    rc, out = ansible.playbook(HERE / "check.yml", fleet, "-e", fix)[:2]
    assert rc == 0 and stats(out) == {"edge-a": (0, 0), "edge-b": (0, 0)}


def test_the_examples_run(ansible, tmp_path):
    examples = HERE.parent.parent / "examples"
    for name in ("edge-plant7-01", "edge-plant7-02"):
        # Appliances have DNS; the agent is enabled only then.
        (make_root(tmp_path / name) / "etc/resolv.conf").write_text("nameserver 192.0.2.53\n")
    overrides = dict(
        ansible_connection="local",
        ansible_become=False,
        ansible_python_interpreter=sys.executable,
        edge_setup_package="",
        edge_setup_root=str(tmp_path) + "/{{ inventory_hostname }}",
        edge_setup_executable=ansible.bin,
    )
    rc, out = ansible.playbook(examples / "playbook.yml", examples / "inventory", "-e", json.dumps(overrides))[:2]
    assert rc == 0 and stats(out) == {"edge-plant7-01": (1, 0), "edge-plant7-02": (1, 0)}
    info = task_results(out, "Read the status")
    assert {host: r["edge_setup"]["status"]["remote_connectivity"]["device_id"] for host, r in info.items()} == {h: h for h in info}
    props = "usr/edge/properties/edge-agent/remote-connectivity.properties"
    assert "url=https://plant7.cumulocity.com" in (tmp_path / "edge-plant7-01" / props).read_text()
    assert "url=https://plant7-backup.cumulocity.com" in (tmp_path / "edge-plant7-02" / props).read_text()
    # A view-only password doubles the file: 8 bytes each.
    assert len((tmp_path / "edge-plant7-01/home/admin/.vnc/passwd").read_bytes()) == 8
    assert len((tmp_path / "edge-plant7-02/home/admin/.vnc/passwd").read_bytes()) == 16
    rc, out = ansible.playbook(examples / "playbook.yml", examples / "inventory", "-e", json.dumps(overrides))[:2]
    assert rc == 0 and stats(out) == {"edge-plant7-01": (0, 0), "edge-plant7-02": (0, 0)}

    # health.yml: images have checks that fail (no Edge agent installed there), which fail their
    # host once every host's checks are gathered, each naming them.
    rc, out = ansible.playbook(examples / "health.yml", examples / "inventory", "-e", json.dumps(overrides))[:2]
    assert rc == 2 and stats(out) == {"edge-plant7-01": (0, 1), "edge-plant7-02": (0, 1)}
    health = task_results(out, "Check the appliance")
    assert all(r["status"] == "ok" and r["counts"]["fail"] > 0 for r in health.values())
    (summary,) = task_results(out, "Summarise the fleet").values()
    assert [r["msg"] for r in summary["results"]] == ["%s: %s" % (h, health[h]["msg"]) for h in ("edge-plant7-01", "edge-plant7-02")]
    shown = task_results(out, "Show each failed check with the command that fixes it")
    failed = task_results(out, "Fail the appliances with failed checks")
    for host, result in health.items():
        assert [r["msg"].split(": ")[0] for r in shown[host]["results"]] == result["failed_checks"]
        assert failed[host]["msg"] == "%d failed: %s" % (result["counts"]["fail"], ", ".join(result["failed_checks"]))


def test_package_steps(ansible, roots, tmp_path):
    """The install steps' choices, in check mode: nothing is installed here."""
    deb = tmp_path / "edge-setup_0.1.0-1_amd64.deb"
    deb.write_text("not really a package")
    dest = tmp_path / "dest"
    dest.mkdir()
    package = dict(edge_setup_package_dest=str(dest))
    inventory = ansible.inventory(
        {
            "edge-a": host_vars(roots["edge-a"], "edge-a", edge_setup_package=str(deb), **package),
            "edge-b": host_vars(roots["edge-b"], "edge-b", edge_setup_package=str(tmp_path / "edge-setup.tar"), **package),
        }
    )
    rc, out = ansible.playbook(HERE / "site.yml", inventory, "--check")[:2]
    assert rc == 2 and stats(out) == {"edge-a": (2, 0), "edge-b": (0, 1)}
    assert task_results(out, "Copy the package from the controller")["edge-a"]["status"] == "ok"
    assert [task_results(out, "Install the .%s" % kind)["edge-a"]["status"] for kind in ("deb", "rpm")] == ["skipped", "skipped"]
    assert "must end in .deb or .rpm" in task_results(out, "Check that the package is a .deb or an .rpm")["edge-b"]["msg"]
    assert list(dest.iterdir()) == []


def test_the_role_registers_each_appliance_and_syncs_its_endpoints(ansible, roots, tmp_path):
    """The tenant half with the real edge-setup against the tenant of the VM suite
    (vm-tests/vmtest/tenant.py) on loopback: each host's device is looked up, its VNC
    endpoint created; a second run sends nothing."""
    sys.path.insert(0, str(HERE.parents[2] / "vm-tests"))
    from vmtest.tenant import PASSWORD, USER, Tenant

    tenant = Tenant(tmp_path, {name: str(100 + i) for i, name in enumerate(roots)})
    try:
        hosts = {}
        for name, root in roots.items():
            ca = root / "etc/edge-setup/tenant-ca.pem"
            ca.parent.mkdir(parents=True, exist_ok=True)
            ca.write_bytes(tenant.ca.read_bytes())
            (root / "etc/edge-setup/edge-setup.toml").write_text('[c8y]\nca-file = "/etc/edge-setup/tenant-ca.pem"\n')
            hosts[name] = host_vars(
                root, name,
                edge_setup_answers={"agent": {"url": "https://localhost:%d" % tenant.port, "force": True},
                                    "device-id": {"id": name}},
                edge_setup_remote_access=True,
                edge_setup_tenant_user=USER,
                edge_setup_tenant_api_password=PASSWORD,
            )
        inventory = ansible.inventory(hosts)
        rc, out, text = ansible.playbook(HERE / "site.yml", inventory)
        assert rc == 0, text
        assert PASSWORD not in text
        results = task_results(out, "Register the appliance and sync its remote access endpoints")
        for i, name in enumerate(roots):
            assert results[name]["registration"]["state"] == "registered"
            assert [(e["name"], e["action"]) for e in results[name]["endpoints"]] == [("VNC admin (:1)", "created")]
            stored = tenant.endpoints[str(100 + i)]
            assert [(e["name"], e["port"], e["password"]) for e in stored] == [("VNC admin (:1)", 5901, PASSWORDS[name])]
        sent = len(tenant.changes())
        rc, out = ansible.playbook(HERE / "site.yml", inventory)[:2]
        assert rc == 0 and stats(out) == {"edge-a": (0, 0), "edge-b": (0, 0)}
        assert len(tenant.changes()) == sent, tenant.changes()
    finally:
        tenant.close()
