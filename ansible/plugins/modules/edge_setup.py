#!/usr/bin/python
# -*- coding: utf-8 -*-
# Applies an edge-setup answers document: `edge-setup --json setup --answers FILE`.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: edge_setup
short_description: Configure a Cumulocity Edge appliance with edge-setup
version_added: 0.1.0
description:
  - Builds an edge-setup answers file from O(answers) and the secret options, then runs
    C(edge-setup --json setup --answers FILE) on the target.
  - edge-setup checks every value before it applies any, so a refused value changes nothing;
    a second run with the same input reports no change.
  - Secrets are written to files of mode 0600 in a private temporary directory (0700) that the
    answers file names, and removed afterwards. They never reach the command line, the
    environment or the module's result.
author:
  - edge-setup maintainers (@edge-setup)
requirements:
  - edge-setup on the target (the role M(edge_setup.fleet.appliance) can install it)
attributes:
  check_mode:
    support: full
    description: Runs edge-setup with C(--dry-run); RV(changes) is then the plan.
  diff_mode:
    support: full
    description: Returns one line per planned or made change.
options:
  answers:
    description:
      - The answers file as a dictionary, with the tables and keys of an edge-setup answers file
        spelled as there (C(network), C(post-install), C(agent), C(device-id), C(vnc),
        C(shred-secrets), ...). See C(examples/appliance.toml) in edge-setup's documentation.
      - Passed through unchecked; edge-setup refuses unknown tables and keys and wrong types.
      - The secret options below fill in the keys that name secret files.
      - Over SSH, edge-setup refuses the C(network) table unless it sets C(allow-remote) to true,
        since a new address can cut the connection Ansible runs over.
    type: dict
    default: {}
  vnc_users:
    description:
      - Users to enable for VNC; each becomes a C([[vnc-user]]) entry of the answers, after any
        that O(answers) lists itself.
    type: list
    elements: dict
    default: []
    suboptions:
      user:
        description: The user's name.
        type: str
        required: true
      password:
        description: The VNC password, 6 to 8 printable ASCII characters.
        type: str
        required: true
      view_only_password:
        description: An optional view-only password, different from O(vnc_users[].password).
        type: str
  tenant_password:
    description:
      - The tenant administrator's password; it becomes the C(password-file) of the
        C(post-install) and C(tenant-password) tables of O(answers), whichever are given
        (at least one must be).
    type: str
  ssl_key:
    description:
      - The platform's SSL private key, PEM text; it becomes the C(key) of the C(post-install)
        and C(certificates) tables of O(answers), whichever are given (at least one must be).
    type: str
  root:
    description:
      - Image mode, applies to the system image in this directory (C(--root)). What can be done
        without booting the image is done in it (packages, groups, enabled units); the commands
        left for the target are returned in RV(target_commands), and those the image's first boot
        runs in RV(first_boot_commands).
    type: path
  executable:
    description: The edge-setup program; default C(edge-setup) found on the target's PATH.
    type: path
notes:
  - The answers file and secret files live only while edge-setup runs. With O(ssl_key) on a live
    system, edge-setup records the key's source path in C(config.dat), which is then a temporary
    path; give C(key) as a path on the target in O(answers) to keep that record useful.
"""

EXAMPLES = r"""
- name: Agent, device ID and a VNC user
  edge_setup.fleet.edge_setup:
    answers:
      agent:
        url: https://mytenant.cumulocity.com
      device-id:
        id: edge-plant7-01
      vnc:
        install: true
    vnc_users:
      - user: admin
        password: "{{ vault_vnc_password }}"

- name: Post-installation with secrets from the vault
  edge_setup.fleet.edge_setup:
    answers:
      post-install:
        username: admin
        domain: edge.example.com
        certificate: /root/ssl/edge.example.com.crt
        licence: /root/edge.example.com.licence
        cloud-url: https://mytenant.cumulocity.com
    tenant_password: "{{ vault_tenant_password }}"
    ssl_key: "{{ vault_ssl_key }}"

- name: Configure a system image instead of the running system
  edge_setup.fleet.edge_setup:
    root: /srv/images/edge
    answers:
      agent:
        url: https://mytenant.cumulocity.com
"""

RETURN = r"""
changes:
  description: Each file written, directory made, file removed and command run, in order (in check mode, planned).
  returned: always
  type: list
  elements: dict
  sample: [{"action": "write", "path": "/etc/edge-setup/edge-setup.toml", "owner": "root:root", "uid": 0, "gid": 0, "mode": "0644"}]
notes:
  description: edge-setup's C(note:) lines.
  returned: always
  type: list
  elements: str
target_commands:
  description: In image mode, the commands left for the target (not done in the image).
  returned: always
  type: list
  elements: str
  sample: ["systemctl start tigervncserver@:1.service"]
first_boot_commands:
  description: >-
    In image mode, those of RV(target_commands) that the image's first boot runs; the others it
    cannot, and C(edge-setup image prepare) refuses the image while one is left.
  returned: always
  type: list
  elements: str
  sample: ["systemctl start tigervncserver@:1.service"]
results:
  description: Each applied option's data, in order, such as each VNC user's display and port.
  returned: when edge-setup reports some
  type: list
  elements: dict
  sample: [{"option": "vnc-user", "result": {"user": "admin", "display": 1, "port": 5901}}]
why:
  description: Why edge-setup failed.
  returned: failure
  type: str
next:
  description: What to do about the failure.
  returned: failure
  type: str
rc:
  description: edge-setup's exit code (1 failure, 2 bad input, 3 not permitted).
  returned: failure
  type: int
answers_toml:
  description: The answers file edge-setup read, which line numbers in the failure message (C(msg)) refer to; secret files appear by option name.
  returned: failure
  type: str
"""

import copy
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.edge_setup.fleet.plugins.module_utils import cli, toml_writer

# option: (key, the tables that take it, file name). edge-setup wants a key file named *.key.
SECRET_KEYS = {
    "tenant_password": ("password-file", ("post-install", "tenant-password"), "tenant-password"),
    "ssl_key": ("key", ("post-install", "certificates"), "ssl.key"),
}


def write_private(directory, name, text):
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(text.encode("utf-8"))
    return path


def one_line(option, value):
    # A line break would make edge-setup read the rest as another password.
    if "\n" in value or "\r" in value:
        raise ValueError("%s must be one line" % option)
    return value + "\n"


def build_answers(params, directory):
    """The answers document with the secrets written to files in directory,
    and a label for each of those files (for messages)."""
    doc = copy.deepcopy(params["answers"] or {})
    labels = {}

    def secret(name, text, label):
        path = write_private(directory, name, text)
        labels[path] = label
        return path

    for option, (key, tables, name) in SECRET_KEYS.items():
        value = params[option]
        if value is None:
            continue
        given = [t for t in tables if isinstance(doc.get(t), dict)]
        if not given:
            raise ValueError("%s is used only by the answers tables %s; give one" % (option, " or ".join(tables)))
        for table in given:
            if key in doc[table]:
                raise ValueError("answers.%s.%s and %s are both given; keep one" % (table, key, option))
        text = one_line(option, value) if option == "tenant_password" else value.rstrip("\n") + "\n"
        path = secret(name, text, option)
        for table in given:
            doc[table][key] = path

    entries = []
    for i, user in enumerate(params["vnc_users"] or []):
        label = "vnc_users[%d]" % i
        text = one_line(label + ".password", user["password"])
        if user.get("view_only_password"):
            text += one_line(label + ".view_only_password", user["view_only_password"])
        entries.append({"user": user["user"], "password-file": secret("vnc-user-%d" % i, text, label)})
    if entries:
        listed = doc.get("vnc-user", [])
        if not isinstance(listed, list):
            raise ValueError("answers.vnc-user must be a list of tables")
        doc["vnc-user"] = listed + entries
    return doc, labels


def relabel(value, labels):
    """Replaces the temporary paths in edge-setup's output by the option they came from."""
    if isinstance(value, str):
        for path in sorted(labels, key=len, reverse=True):
            value = value.replace(path, labels[path])
        return value
    if isinstance(value, list):
        return [relabel(v, labels) for v in value]
    if isinstance(value, dict):
        return dict((k, relabel(v, labels)) for k, v in value.items())
    return value


describe = cli.describe


def outcome(doc, rc, diff):
    """The module's result from edge-setup's JSON and exit code: (failed, result)."""
    ret = dict(
        changed=bool(doc.get("changed")),
        changes=doc.get("changes", []),
        notes=doc.get("notes", []),
        target_commands=doc.get("target_commands", []),
        first_boot_commands=doc.get("first_boot_commands", []),
    )
    for key in ("result", "results"):
        if key in doc:
            ret[key] = doc[key]
    if diff and ret["changes"]:
        ret["diff"] = {"prepared": "".join(describe(c) + "\n" for c in ret["changes"])}
    error = doc.get("error")
    if rc == 0 and not error:
        return False, ret
    error = error or {}
    ret.update(msg=error.get("what") or "edge-setup failed (exit %d)" % rc, why=error.get("why"), next=error.get("next"), rc=rc)
    return True, ret


def main():
    module = AnsibleModule(
        argument_spec=dict(
            answers=dict(type="dict", default={}),
            vnc_users=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    user=dict(type="str", required=True),
                    password=dict(type="str", required=True, no_log=True),
                    view_only_password=dict(type="str", no_log=True),
                ),
            ),
            tenant_password=dict(type="str", no_log=True),
            ssl_key=dict(type="str", no_log=True),
            root=dict(type="path"),
            executable=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    argv = cli.base_argv(module, dry_run=module.check_mode)
    directory = tempfile.mkdtemp(prefix="edge-setup-")
    try:
        try:
            doc, labels = build_answers(module.params, directory)
            text = toml_writer.dumps(doc)
        except ValueError as e:
            module.fail_json(msg=str(e))
        answers = write_private(directory, "answers.toml", text)
        labels[answers] = "answers"
        labels[directory] = "<temporary directory>"
        argv += ["setup", "--answers", answers]
        rc, doc, out, err = cli.run_json(module, argv)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if doc is None:
        cli.fail_without_json(module, argv, rc, out, err)
    failed, ret = outcome(relabel(doc, labels), rc, module._diff)
    # Ansible's own warnings: a `warnings` key in the result is deprecated (ansible-core 2.19)
    for warning in doc.get("warnings", []):
        module.warn(warning)
    if failed:
        module.fail_json(answers_toml=relabel(text, labels), **ret)
    module.exit_json(**ret)


if __name__ == "__main__":
    main()
