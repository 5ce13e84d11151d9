# A fake edge-setup and a way to run a module in this process.

import json
import os
import sys
import tempfile

import pytest

from ansible.module_utils import basic

# Records its arguments, environment and the files of the answers' directory
# (modes and text, while they exist), then answers as the test told it, with
# @DIR@ replaced by that directory.
FAKE = """#!{python}
import json, os, stat, sys
state = {state!r}
call = {{"argv": sys.argv, "env": dict(os.environ)}}
if "--answers" in sys.argv:
    answers = sys.argv[sys.argv.index("--answers") + 1]
    directory = os.path.dirname(answers)
    call["dir"] = directory
    call["dir_mode"] = stat.S_IMODE(os.stat(directory).st_mode)
    call["files"] = {{}}
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        with open(path) as f:
            call["files"][name] = {{"mode": stat.S_IMODE(os.stat(path).st_mode), "text": f.read()}}
if "--credentials-stdin" in sys.argv:
    call["stdin"] = sys.stdin.read()
with open(os.path.join(state, "calls.jsonl"), "a") as f:
    f.write(json.dumps(call) + "\\n")
kind = "version" if "--version" in sys.argv else next(
    (k for k in ("status", "register", "sync", "ssh", "check") if k in sys.argv), "apply")
with open(os.path.join(state, "replies.json")) as f:
    reply = json.load(f)[kind]
sys.stdout.write(reply["stdout"].replace("@DIR@", call.get("dir", "")))
sys.exit(reply.get("rc", 0))
"""


class Fake:
    def __init__(self, directory):
        self.dir = directory
        self.path = os.path.join(directory, "edge-setup")
        with open(self.path, "w") as f:
            f.write(FAKE.format(python=sys.executable, state=directory))
        os.chmod(self.path, 0o755)
        self.replies = {"version": {"stdout": "edge-setup 0.1.0 (commit 3d3e09dff45e)\n"}}
        self.reply("apply", {"changed": False, "dry_run": False, "changes": [], "notes": [], "warnings": []})

    def reply(self, kind, doc=None, rc=0, stdout=None):
        self.replies[kind] = {"stdout": json.dumps(doc) if stdout is None else stdout, "rc": rc}
        with open(os.path.join(self.dir, "replies.json"), "w") as f:
            json.dump(self.replies, f)

    def calls(self):
        try:
            with open(os.path.join(self.dir, "calls.jsonl")) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []


@pytest.fixture
def fake(tmp_path):
    d = tmp_path / "fake"
    d.mkdir()
    return Fake(str(d))


@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    """Where the modules make their temporary directories, to check nothing is left."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


@pytest.fixture
def run_module(capsys, monkeypatch, temp_root):
    """Runs a module's main() with these arguments: (its JSON result, whether it failed)."""

    def run(module, args, check=False, diff=False):
        args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
        monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
        with pytest.raises(SystemExit):
            module.main()
        out = capsys.readouterr().out
        result = json.loads(out)
        result["_stdout"] = out
        return result, bool(result.get("failed"))

    return run
