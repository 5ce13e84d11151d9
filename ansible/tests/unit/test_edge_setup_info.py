import pytest

from ansible_collections.edge_setup.fleet.plugins.modules import edge_setup_info

STATUS = {
    "remote_connectivity": {"enabled": True, "url": "https://t.example.com", "device_id": "edge-01", "problems": []},
    "vnc_users": [{"user": "admin", "display": 1, "port": 5901}],
    "first_boot": {"state": "not-prepared"},
    "problems": [],
}
PROBLEM = {"file": "/etc/x", "problem": "damaged", "next": "remove it"}


def test_version_and_status(fake, run_module):
    fake.reply("status", {"changed": False, "warnings": ["w"], "result": STATUS})
    result, failed = run_module(edge_setup_info, dict(executable=fake.path, root="/img"))
    assert not failed and not result["changed"]
    assert result["edge_setup"] == dict(version="0.1.0", commit="3d3e09dff45e", status=STATUS, warnings=["w"])
    assert [c["argv"][1:] for c in fake.calls()] == [["--version"], ["--root", "/img", "--json", "setup", "status"]]


def test_problems_are_data(fake, run_module):
    status = dict(STATUS, problems=[PROBLEM])
    fake.reply("status", {"changed": False, "result": status, "error": {"what": "1 file could not be read", "exit": 1}}, rc=1)
    result, failed = run_module(edge_setup_info, dict(executable=fake.path))
    assert not failed and result["edge_setup"]["status"]["problems"] == [PROBLEM]


@pytest.mark.parametrize(
    "doc, rc, msg",
    [
        ({"error": {"what": "cannot use /x as the root", "why": "No such file", "next": "give --root a directory", "exit": 2}}, 2, "cannot use /x as the root"),
        (
            {"error": {"what": "/var/lib/edge-setup/first-boot.failed is damaged", "exit": 1}, "output": ["..."]},
            1,
            "/var/lib/edge-setup/first-boot.failed is damaged",
        ),
        ({"error": {"what": "root is needed", "exit": 3}, "result": STATUS}, 3, "root is needed"),
    ],
)
def test_failures(fake, run_module, doc, rc, msg):
    fake.reply("status", doc, rc=rc)
    result, failed = run_module(edge_setup_info, dict(executable=fake.path))
    assert failed and result["msg"] == msg and result["rc"] == rc


def test_no_json_is_a_failure(fake, run_module):
    fake.reply("status", stdout="oops", rc=0)
    result, failed = run_module(edge_setup_info, dict(executable=fake.path))
    assert failed and "printed no JSON object" in result["msg"]


def test_another_program_is_refused(fake, run_module):
    fake.reply("version", stdout="vim 9.0\n")
    result, failed = run_module(edge_setup_info, dict(executable=fake.path))
    assert failed and "did not name an edge-setup version" in result["msg"]
    assert len(fake.calls()) == 1
