# The collection's source, importable as ansible_collections.edge_setup.fleet
# (its modules import their module_utils by that name) and usable as a
# collections path when scripts/test-ansible did not install a built one.

import os
import pathlib
import shutil
import sys
import tempfile

import pytest

COLLECTION = pathlib.Path(__file__).resolve().parents[1]
_TREE = tempfile.mkdtemp(prefix="edge-setup-collections-")
os.makedirs(os.path.join(_TREE, "ansible_collections", "edge_setup"))
os.symlink(COLLECTION, os.path.join(_TREE, "ansible_collections", "edge_setup", "fleet"))
sys.path.insert(0, _TREE)


def pytest_unconfigure(config):
    shutil.rmtree(_TREE, ignore_errors=True)


@pytest.fixture(scope="session")
def collections_path():
    return os.environ.get("ANSIBLE_COLLECTIONS_PATH") or _TREE
