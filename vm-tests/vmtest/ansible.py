"""ansible-playbook on the host, for the fleet scenario: ansible-core from a virtual
environment the harness makes once (pins in ansible/requirements-test.txt, shared with
scripts/test-ansible), and the repository's collection built and installed per run."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

from . import hosttools
from .image import cache_dir

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "ansible" / "requirements-test.txt"
_lock = threading.Lock()


class Ansible:
    """ansible-playbook with the collection edge_setup.fleet built from ansible/."""

    def __init__(self, work: Path):
        with _lock:
            self.venv = hosttools.venv(cache_dir() / "ansible-venv", REQUIREMENTS)
        hosttools.ensure({"ssh": "openssh-client"})
        self.collections = Path(tempfile.mkdtemp(prefix="collections-", dir=work))
        build = self.collections / "build"
        self._run("ansible-galaxy", "collection", "build", str(REPO / "ansible"),
                  "--output-path", str(build))
        tarball = next(build.glob("edge_setup-fleet-*.tar.gz"))
        self._run("ansible-galaxy", "collection", "install", "--offline",
                  "-p", str(self.collections), str(tarball))

    def _env(self) -> dict[str, str]:
        return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(self.collections), ANSIBLE_NOCOLOR="1",
                    ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_RETRY_FILES_ENABLED="False",
                    PATH=f"{self.venv / 'bin'}:{os.environ.get('PATH', '')}")

    def _run(self, tool: str, *args: str) -> str:
        r = subprocess.run([str(self.venv / "bin" / tool), *args], env=self._env(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed:\n{r.stdout[-3000:]}")
        return r.stdout

    def playbook(self, inventory: Path, playbook: Path, *args: str,
                 timeout: float = 1800) -> tuple[int, str, dict[str, dict[str, int]]]:
        """Runs ansible-playbook; returns its exit status, output and PLAY RECAP per host
        ({"fleet1": {"ok": 3, "changed": 1, "failed": 0, ...}})."""
        r = subprocess.run([str(self.venv / "bin" / "ansible-playbook"), "-i", str(inventory),
                            str(playbook), *args], env=self._env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
        recap = {}
        for host, counts in re.findall(r"(?m)^(\S+)\s+:\s+(ok=.*)$", r.stdout):
            recap[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
        return r.returncode, r.stdout, recap
