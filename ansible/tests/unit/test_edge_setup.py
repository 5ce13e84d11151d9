import os
import stat
import tomllib

import pytest
from ansible.module_utils import basic

from ansible_collections.edge_setup.fleet.plugins.modules import edge_setup
from ansible_collections.edge_setup.fleet.plugins.modules.edge_setup import build_answers, describe, outcome, relabel

VNC = "Vnc#pw1"
VIEW = "view-22"
TENANT = "Tenant#Secret42"
KEY = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ8Z\n-----END PRIVATE KEY-----"
SECRETS = [VNC, VIEW, TENANT, "MC4CAQAwBQYDK2VwBCIEIJ8Z"]

CHANGES = [
    {"action": "write", "path": "/img/etc/edge-setup/edge-setup.toml", "owner": "root:root", "uid": 0, "gid": 0, "mode": "0644"},
    {"action": "mkdir", "path": "/img/home/admin/.vnc", "owner": "admin:admin", "uid": 1000, "gid": 1000, "mode": "0700"},
    {"action": "link", "path": "/img/etc/x.wants/a.service", "target": "/lib/a.service"},
    {"action": "remove", "path": "/img/tmp/.X3-lock"},
    {"action": "run", "command": "systemctl restart edge-agent.service"},
]


def params(**kw):
    p = dict(answers={}, vnc_users=[], tenant_password=None, ssl_key=None)
    p.update(kw)
    return p


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# Building the answers and the secret files.


def test_secret_files_are_private_and_named_from_the_answers(tmp_path):
    answers = {"post-install": {"username": "admin"}, "tenant-password": {}, "certificates": {"licence": "/l"}}
    vnc = [{"user": "admin", "password": VNC, "view_only_password": VIEW}, {"user": "op", "password": VNC}]
    doc, labels = build_answers(params(answers=answers, vnc_users=vnc, tenant_password=TENANT, ssl_key=KEY), str(tmp_path))

    assert doc["post-install"]["password-file"] == doc["tenant-password"]["password-file"]
    assert doc["post-install"]["key"] == doc["certificates"]["key"]
    assert doc["post-install"]["key"].endswith(".key")  # edge-setup's rule for key files
    files = {
        doc["post-install"]["password-file"]: TENANT + "\n",
        doc["certificates"]["key"]: KEY + "\n",
        doc["vnc-user"][0]["password-file"]: VNC + "\n" + VIEW + "\n",
        doc["vnc-user"][1]["password-file"]: VNC + "\n",
    }
    for path, text in files.items():
        assert os.path.dirname(path) == str(tmp_path)
        assert mode(path) == 0o600
        assert open(path).read() == text
    assert [u["user"] for u in doc["vnc-user"]] == ["admin", "op"]
    assert sorted(labels.values()) == ["ssl_key", "tenant_password", "vnc_users[0]", "vnc_users[1]"]
    assert answers == {"post-install": {"username": "admin"}, "tenant-password": {}, "certificates": {"licence": "/l"}}


def test_secrets_fill_only_the_tables_given(tmp_path):
    doc = build_answers(params(answers={"tenant-password": {}}, tenant_password=TENANT), str(tmp_path))[0]
    assert set(doc) == {"tenant-password"}


def test_vnc_users_come_after_those_the_answers_list(tmp_path):
    listed = [{"user": "root", "password-file": "/root/vnc"}]
    doc = build_answers(params(answers={"vnc-user": listed}, vnc_users=[{"user": "admin", "password": VNC}]), str(tmp_path))[0]
    assert [u["user"] for u in doc["vnc-user"]] == ["root", "admin"]


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(tenant_password=TENANT), "tenant_password is used only by the answers tables post-install or tenant-password"),
        (dict(ssl_key=KEY, answers={"agent": {}}), "ssl_key is used only by"),
        (dict(tenant_password=TENANT, answers={"tenant-password": {"password-file": "/p"}}), "both given"),
        (dict(tenant_password="a\nb", answers={"tenant-password": {}}), "tenant_password must be one line"),
        (dict(vnc_users=[{"user": "a", "password": "abcdef\nxyz"}]), r"vnc_users\[0\].password must be one line"),
    ],
)
def test_refused_secret_options(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        build_answers(params(**kw), str(tmp_path))


# Mapping edge-setup's JSON.


def test_changed_comes_only_from_edge_setup():
    assert outcome({"changed": False, "changes": CHANGES}, 0, False) == (
        False,
        dict(changed=False, changes=CHANGES, notes=[], target_commands=[], first_boot_commands=[]),
    )
    failed, ret = outcome({"changed": True, "result": {"user": "admin"}, "target_commands": ["systemctl x"],
                           "first_boot_commands": ["systemctl x"]}, 0, False)
    assert not failed and ret["changed"] and ret["result"] == {"user": "admin"} and ret["target_commands"] == ["systemctl x"]
    assert ret["first_boot_commands"] == ["systemctl x"]


def test_diff_has_one_line_per_change():
    ret = outcome({"changed": True, "changes": CHANGES}, 0, True)[1]
    assert ret["diff"]["prepared"].splitlines() == [
        "write /img/etc/edge-setup/edge-setup.toml (owner root:root, mode 0644)",
        "mkdir /img/home/admin/.vnc (owner admin:admin, mode 0700)",
        "link /img/etc/x.wants/a.service -> /lib/a.service",
        "remove /img/tmp/.X3-lock",
        "run systemctl restart edge-agent.service",
    ]
    assert describe(CHANGES[4]) == "run systemctl restart edge-agent.service"
    assert "diff" not in outcome({"changed": False, "changes": []}, 0, True)[1]


def test_failure_fields():
    error = {"what": "bad value", "why": "too short", "next": "fix it", "exit": 2}
    failed, ret = outcome({"changed": False, "changes": [], "notes": ["n"], "error": error}, 2, False)
    assert failed
    assert (ret["msg"], ret["why"], ret["next"], ret["rc"], ret["notes"]) == ("bad value", "too short", "fix it", 2, ["n"])
    failed, ret = outcome({"changed": False}, 1, False)
    assert failed and ret["msg"] == "edge-setup failed (exit 1)"


def test_relabel_names_the_option_not_the_temporary_path():
    labels = {"/tmp/d/answers.toml": "answers", "/tmp/d/vnc-user-0": "vnc_users[0]", "/tmp/d": "<temporary directory>"}
    doc = {"error": {"what": "/tmp/d/answers.toml [[vnc-user]] #1 'password-file' /tmp/d/vnc-user-0: refused"}, "n": [1, "/tmp/d/x"]}
    assert relabel(doc, labels) == {"error": {"what": "answers [[vnc-user]] #1 'password-file' vnc_users[0]: refused"}, "n": [1, "<temporary directory>/x"]}


# The module against a fake edge-setup.


def args(fake, **kw):
    a = dict(
        executable=fake.path,
        root="/img",
        answers={"agent": {"url": "https://t.example.com", "force": True}, "tenant-password": {}},
        vnc_users=[{"user": "admin", "password": VNC, "view_only_password": VIEW}],
        tenant_password=TENANT,
    )
    a.update(kw)
    return a


def assert_no_secret(text):
    for secret in SECRETS:
        assert secret not in text


def test_runs_edge_setup_on_private_files_it_removes(fake, run_module, temp_root, monkeypatch):
    fake.reply("apply", {"changed": True, "dry_run": False, "changes": CHANGES[:1], "notes": ["n"], "warnings": ["w"], "result": {"user": "admin"}})
    warned = []
    original = basic.AnsibleModule.warn
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, w: (warned.append(w), original(self, w)))
    result, failed = run_module(edge_setup, args(fake))

    assert not failed and result["changed"]
    assert result["changes"] == CHANGES[:1] and result["notes"] == ["n"] and result["result"] == {"user": "admin"}
    # edge-setup's warnings are Ansible's own, through module.warn (a `warnings` key in the
    # result is deprecated from ansible-core 2.19)
    assert warned == ["w"] and "w" in result["warnings"]
    (call,) = fake.calls()
    answers = os.path.join(call["dir"], "answers.toml")
    assert call["argv"] == [fake.path, "--root", "/img", "--json", "setup", "--answers", answers]
    assert call["dir_mode"] == 0o700
    assert {name: f["mode"] for name, f in call["files"].items()} == dict.fromkeys(["answers.toml", "tenant-password", "vnc-user-0"], 0o600)
    doc = tomllib.loads(call["files"]["answers.toml"]["text"])
    assert doc["agent"] == {"url": "https://t.example.com", "force": True}
    assert doc["vnc-user"] == [{"user": "admin", "password-file": os.path.join(call["dir"], "vnc-user-0")}]
    assert call["files"]["vnc-user-0"]["text"] == VNC + "\n" + VIEW + "\n"
    assert_no_secret(call["files"]["answers.toml"]["text"] + " ".join(call["argv"]) + repr(call["env"]))
    assert_no_secret(result["_stdout"])
    assert not os.path.exists(call["dir"]) and os.listdir(temp_root) == []


def test_check_mode_is_a_dry_run_with_a_diff(fake, run_module):
    fake.reply("apply", {"changed": True, "dry_run": True, "changes": CHANGES[:2]})
    result, failed = run_module(edge_setup, args(fake, root=None), check=True, diff=True)
    assert not failed and result["changed"]
    assert fake.calls()[0]["argv"][1:4] == ["--dry-run", "--json", "setup"]
    assert result["diff"]["prepared"] == (
        "write /img/etc/edge-setup/edge-setup.toml (owner root:root, mode 0644)\n" "mkdir /img/home/admin/.vnc (owner admin:admin, mode 0700)\n"
    )


def test_a_refusal_fails_with_edge_setup_reasons_and_removes_the_files(fake, run_module, temp_root):
    what = "@DIR@/answers.toml [[vnc-user]] #1 (user admin) 'password-file' @DIR@/vnc-user-0: refused"
    error = {"what": what, "why": None, "next": "use 6 to 8 characters", "exit": 2}
    fake.reply("apply", {"changed": False, "changes": [], "notes": ["a note"], "warnings": [], "error": error}, rc=2)
    result, failed = run_module(edge_setup, args(fake))

    assert failed
    assert result["msg"] == "answers [[vnc-user]] #1 (user admin) 'password-file' vnc_users[0]: refused"
    assert (result["rc"], result["why"], result["next"], result["notes"], result["changed"]) == (2, None, "use 6 to 8 characters", ["a note"], False)
    assert 'password-file = "vnc_users[0]"' in result["answers_toml"]
    assert_no_secret(result["_stdout"])
    assert os.listdir(temp_root) == []


def test_no_json_is_a_failure(fake, run_module, temp_root):
    fake.reply("apply", stdout="Segmentation fault\n", rc=139)
    result, failed = run_module(edge_setup, args(fake))
    assert failed and "printed no JSON object (exit 139)" in result["msg"]
    assert result["stdout"] == "Segmentation fault\n"
    assert os.listdir(temp_root) == []


def test_a_refused_option_runs_nothing_and_leaves_nothing(fake, run_module, temp_root):
    result, failed = run_module(edge_setup, args(fake, answers={"agent": {"url": "u"}}))
    assert failed and result["msg"].startswith("tenant_password is used only by")
    assert fake.calls() == []
    assert os.listdir(temp_root) == []
