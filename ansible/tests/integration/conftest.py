# Image roots for local "appliances", and ansible-playbook from this Python's
# environment run against them, its results read from callbacks/record.py.

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[2]
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'
PASSWD = "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000:Admin:/home/admin:/bin/bash\n"
GROUP = "root:x:0:\nadmin:x:1000:\n"


@pytest.fixture(scope="session")
def edge_setup_bin():
    path = os.environ.get("EDGE_SETUP_BIN") or str(REPO / "target/debug/edge-setup")
    if not os.access(path, os.X_OK):
        pytest.skip("no edge-setup at %s: run cargo build (scripts/test-ansible does)" % path)
    if os.geteuid() != 0:
        pytest.skip("image roots need root: their homes belong to their users")
    return path


def make_root(path):
    """A Debian 12 image with root and admin (1000), whose home is admin's, where
    `edge-setup --root R vnc` ran (its record; vnc-user refuses an image without it)."""
    for name, text in (("etc/os-release", OS_RELEASE), ("etc/passwd", PASSWD), ("etc/group", GROUP),
                       ("var/lib/edge-setup/vnc-installed.json", "{}\n")):
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    (path / "home/admin").mkdir(parents=True)
    os.chown(path / "home/admin", 1000, 1000)
    # edge-setup works in a home as its user, who must be able to reach it.
    path.chmod(0o755)
    return path


def snapshot(root):
    """Every path under root with its type, mode, owner and content."""
    found = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if os.path.islink(p):
                content = os.readlink(p)
            elif os.path.isfile(p):
                content = open(p, "rb").read()
            else:
                content = None
            found[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, content)
    return found


class Ansible:
    def __init__(self, tmp_path, collections_path, edge_setup_bin):
        self.tmp = tmp_path
        self.bin = edge_setup_bin
        # An empty ansible.cfg: no configuration of the machine or the user applies.
        config = tmp_path / "ansible.cfg"
        config.write_text("")
        self.env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(config),
            ANSIBLE_COLLECTIONS_PATH=collections_path,
            ANSIBLE_CALLBACK_PLUGINS=str(HERE / "callbacks"),
            ANSIBLE_STDOUT_CALLBACK="record",
            ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
            ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
            ANSIBLE_NOCOLOR="1",
        )

    def inventory(self, hosts):
        """An inventory of local hosts: {name: host vars}."""
        path = self.tmp / "inventory.yml"
        common = dict(ansible_connection="local", ansible_python_interpreter=sys.executable, edge_setup_executable=self.bin)
        path.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": common}}))
        return path

    def playbook(self, playbook, inventory, *args):
        """(exit code, the recorded results, their text)."""
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory), str(playbook), *args]
        print("+", " ".join(argv))
        done = subprocess.run(argv, env=self.env, cwd=self.tmp, capture_output=True, text=True, timeout=300, check=False)
        try:
            out = json.loads(done.stdout)
        except ValueError:
            pytest.fail("ansible-playbook printed no JSON (exit %d):\n%s\n%s" % (done.returncode, done.stdout, done.stderr))
        # Shown when a test fails.
        print(done.stderr)
        for task in out["tasks"]:
            for host, result in task["hosts"].items():
                if result["status"] in ("failed", "unreachable"):
                    print("%s: %s on %s: %s" % (result["status"], task["name"], host, result.get("msg")))
        return done.returncode, out, done.stdout


@pytest.fixture
def ansible(tmp_path, collections_path, edge_setup_bin):
    return Ansible(tmp_path, collections_path, edge_setup_bin)


def task_results(out, name):
    """{host: result} of the task with this name."""
    return next(task["hosts"] for task in out["tasks"] if task["name"] == name)
