#!/usr/bin/python
# -*- coding: utf-8 -*-
# Reads an appliance's edge-setup version and `edge-setup --json setup status`.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: edge_setup_info
short_description: Read an appliance's edge-setup status
version_added: 0.1.0
description:
  - Runs C(edge-setup --version) and C(edge-setup --json setup status) on the target and returns
    both in RV(edge_setup).
  - Problems the status finds (a damaged file, a failed first boot) are data in
    RV(edge_setup.status.problems), not a failure of the module.
author:
  - edge-setup maintainers (@edge-setup)
attributes:
  check_mode:
    support: full
    description: Reads only.
options:
  root:
    description: Read the system image in this directory (C(--root)) instead of the running system.
    type: path
  executable:
    description: The edge-setup program; default C(edge-setup) found on the target's PATH.
    type: path
seealso:
  - module: edge_setup.fleet.edge_setup_check
    description: The appliance's health, C(edge-setup check).
"""

EXAMPLES = r"""
- name: Read the status
  edge_setup.fleet.edge_setup_info:
  register: info

- name: Show each VNC user's port
  ansible.builtin.debug:
    msg: "{{ item.user }}: port {{ item.port }}"
  loop: "{{ info.edge_setup.status.vnc_users }}"

- name: Stop on problems
  ansible.builtin.assert:
    that: info.edge_setup.status.problems | length == 0
"""

RETURN = r"""
edge_setup:
  description: The version and the status.
  returned: success
  type: dict
  contains:
    version:
      description: edge-setup's version.
      type: str
      sample: 0.1.0
    commit:
      description: The commit edge-setup was built from, when it says.
      type: str
      sample: 3d3e09dff45e
    status:
      description: The result of C(edge-setup --json setup status).
      type: dict
      contains:
        remote_connectivity:
          description: C(enabled), C(url), C(device_id), DNS and the agent's service.
          type: dict
        vnc_users:
          description: Each VNC user with display, port and whether a password is set (null when not known).
          type: list
          elements: dict
          sample: [{"user": "admin", "display": 1, "port": 5901, "password": true}]
        first_boot:
          description: C(state) (done, failed, pending, not-prepared) and its C(record).
          type: dict
        problems:
          description: Each damaged file, with C(file), C(problem) and C(next).
          type: list
          elements: dict
    warnings:
      description: edge-setup's C(warning:) lines.
      type: list
      elements: str
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.edge_setup.fleet.plugins.module_utils import cli

VERSION = re.compile(r"^edge-setup (\S+)(?: \(commit ([^)]+)\))?")


def main():
    module = AnsibleModule(
        argument_spec=dict(root=dict(type="path"), executable=dict(type="path")),
        supports_check_mode=True,
    )
    exe = cli.executable(module)
    rc, out, err = module.run_command([exe, "--version"])
    found = VERSION.match(out)
    if rc != 0 or not found:
        module.fail_json(msg="%s --version did not name an edge-setup version" % exe, rc=rc, stdout=out, stderr=err)

    argv = cli.base_argv(module) + ["setup", "status"]
    rc, doc, out, err = cli.run_json(module, argv)
    if doc is None:
        cli.fail_without_json(module, argv, rc, out, err)
    # Exit 1 with a result means problems were found: data. Without a result it is a failure.
    if rc not in (0, 1) or "result" not in doc:
        error = doc.get("error") or {}
        module.fail_json(msg=error.get("what") or "edge-setup setup status failed", why=error.get("why"), next=error.get("next"), rc=rc)
    module.exit_json(
        changed=False,
        edge_setup=dict(version=found.group(1), commit=found.group(2), status=doc["result"], warnings=doc.get("warnings", [])),
    )


if __name__ == "__main__":
    main()
