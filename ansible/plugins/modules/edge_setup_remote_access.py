#!/usr/bin/python
# -*- coding: utf-8 -*-
# The tenant half of an appliance: `edge-setup register`, `remote-access sync` and `remote-access ssh`.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: edge_setup_remote_access
short_description: Register a Cumulocity Edge appliance and keep its remote access endpoints
version_added: 0.1.0
description:
  - Runs on the target, in this order, C(edge-setup --json register [--accept] [--wait]),
    C(edge-setup --json remote-access sync) and C(edge-setup --json remote-access ssh --user NAME)
    for each of O(ssh_users). The tenant is the target's C(c8y.url).
  - The tenant credentials reach edge-setup on its standard input (C(--credentials-stdin)), never
    on the command line, in the environment or in the module's result. Without O(tenant_user)
    and O(tenant_token), edge-setup reads O(credentials_file), else the file its key
    C(c8y.credentials-file) names.
  - A second run with nothing changed on the appliance sends nothing to the tenant and reports
    no change.
author:
  - edge-setup maintainers (@edge-setup)
requirements:
  - edge-setup on the target, with C(c8y.url) set (the role M(edge_setup.fleet.appliance) can do both)
attributes:
  check_mode:
    support: full
    description: Runs edge-setup with C(--dry-run), which reads the tenant and lists the requests it would send.
  diff_mode:
    support: full
    description: Returns one line per planned or made change.
options:
  tenant_user:
    description: The tenant user, C(TENANT/USER) (like C(t12345/admin)); needs O(tenant_password).
    type: str
  tenant_password:
    description: The tenant user's password.
    type: str
  tenant_token:
    description: A bearer token instead of O(tenant_user) and O(tenant_password).
    type: str
  credentials_file:
    description:
      - A credentials file on the target (root's, mode 0600; a C(TENANT/USER) line and a password
        line, or one C(Bearer TOKEN) line), when the credentials are not given here.
    type: path
  register:
    description: Request the device's registration unless it is registered or requested.
    type: bool
    default: true
  accept:
    description: Accept the registration once the device has asked for its credentials.
    type: bool
    default: true
  wait:
    description: Seconds to wait for the registration to be accepted; 0 does not wait.
    type: int
    default: 600
  sync:
    description: Make the tenant's VNC endpoints match the appliance's VNC users.
    type: bool
    default: true
  ssh_users:
    description: Users to give an SSH endpoint with a key pair made on the target.
    type: list
    elements: str
    default: []
  root:
    description: Image mode (C(--root)); the image's device and users.
    type: path
  executable:
    description: The edge-setup program; default C(edge-setup) found on the target's PATH.
    type: path
"""

EXAMPLES = r"""
- name: Register the appliance and sync its endpoints
  edge_setup.fleet.edge_setup_remote_access:
    tenant_user: t12345/fleet-admin
    tenant_password: "{{ vault_tenant_api_password }}"
    ssh_users: [admin]
"""

RETURN = r"""
registration:
  description: The device's state in the tenant, as C(edge-setup register) reports it.
  returned: when O(register) is true
  type: dict
  sample: {"state": "registered", "managed_object": "4711", "device_id": "edge-plant7-01"}
endpoints:
  description: What became of each endpoint (created, updated, unchanged, deleted, skipped).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "VNC admin (:1)", "user": "admin", "protocol": "VNC", "port": 5901, "id": "102", "action": "created"}]
changes:
  description: The requests that changed the tenant and the files written, in order (in check mode, planned).
  returned: always
  type: list
  elements: dict
notes:
  description: edge-setup's C(note:) lines.
  returned: always
  type: list
  elements: str
step:
  description: The edge-setup command that failed.
  returned: failure
  type: str
why:
  description: Why edge-setup failed.
  returned: failure
  type: str
next:
  description: What to do about the failure.
  returned: failure
  type: str
rc:
  description: edge-setup's exit code.
  returned: failure
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.edge_setup.fleet.plugins.module_utils import cli


def credentials(params):
    """(the text for edge-setup's standard input or None, the arguments that say where they come from)."""
    token, user, password = params["tenant_token"], params["tenant_user"], params["tenant_password"]
    for name in ("tenant_token", "tenant_user", "tenant_password"):
        if params[name] is not None and ("\n" in params[name] or "\r" in params[name]):
            raise ValueError("%s must be one line" % name)
    if token:
        return "Bearer %s\n" % token, ["--credentials-stdin"]
    if user or password:
        if not (user and password):
            raise ValueError("tenant_user and tenant_password go together")
        return "%s\n%s\n" % (user, password), ["--credentials-stdin"]
    if params["credentials_file"]:
        return None, ["--credentials", params["credentials_file"]]
    return None, []


def steps(params):
    """The edge-setup commands to run, each (name, arguments)."""
    out = []
    if params["register"]:
        argv = ["register"]
        if params["accept"]:
            argv.append("--accept")
        if params["wait"] > 0:
            argv += ["--wait", "--timeout", str(params["wait"])]
        out.append(("register", argv))
    if params["sync"]:
        out.append(("sync", ["remote-access", "sync"]))
    for user in params["ssh_users"]:
        out.append(("ssh " + user, ["remote-access", "ssh", "--user", user]))
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            tenant_user=dict(type="str"),
            tenant_password=dict(type="str", no_log=True),
            tenant_token=dict(type="str", no_log=True),
            credentials_file=dict(type="path"),
            register=dict(type="bool", default=True),
            accept=dict(type="bool", default=True),
            wait=dict(type="int", default=600),
            sync=dict(type="bool", default=True),
            ssh_users=dict(type="list", elements="str", default=[]),
            root=dict(type="path"),
            executable=dict(type="path"),
        ),
        mutually_exclusive=[("tenant_token", "tenant_user"), ("tenant_token", "credentials_file"),
                            ("tenant_user", "credentials_file")],
        supports_check_mode=True,
    )
    try:
        stdin, source = credentials(module.params)
    except ValueError as e:
        module.fail_json(msg=str(e))
    ret = dict(changed=False, changes=[], notes=[], endpoints=[])
    for name, args in steps(module.params):
        if name == "sync" and module.check_mode and ret.get("registration", {}).get("state") not in (None, "registered"):
            ret["notes"].append("the endpoints are synced once the device is registered (not in check mode)")
            break
        argv = cli.base_argv(module, dry_run=module.check_mode) + args + source
        rc, doc, out, err = cli.run_json(module, argv, data=stdin)
        if doc is None:
            cli.fail_without_json(module, argv, rc, out, err)
        ret["changed"] = ret["changed"] or bool(doc.get("changed"))
        for key in ("changes", "notes"):
            ret[key] += doc.get(key, [])
        # Ansible's own warnings: a `warnings` key in the result is deprecated (ansible-core 2.19)
        for warning in doc.get("warnings", []):
            module.warn(warning)
        result = doc.get("result") or {}
        if name == "register":
            ret["registration"] = result
        ret["endpoints"] += result.get("endpoints", [])
        error = doc.get("error")
        if rc != 0 or error:
            error = error or {}
            module.fail_json(msg=error.get("what") or "edge-setup %s failed (exit %d)" % (name, rc),
                             why=error.get("why"), next=error.get("next"), rc=rc, step=name, **ret)
    if module._diff and ret["changes"]:
        ret["diff"] = {"prepared": "".join(cli.describe(c) + "\n" for c in ret["changes"])}
    module.exit_json(**ret)


if __name__ == "__main__":
    main()
