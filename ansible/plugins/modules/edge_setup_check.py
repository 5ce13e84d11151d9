#!/usr/bin/python
# -*- coding: utf-8 -*-
# Checks an appliance's health: `edge-setup --json check [--only AREA,...] [--fix] [--strict]`.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: edge_setup_check
short_description: Check a Cumulocity Edge appliance's health with edge-setup
version_added: 0.1.0
description:
  - Runs C(edge-setup --json check) on the target and returns each named check (C(ok), C(warn),
    C(fail) or C(skipped), with its finding and the command that fixes it) in RV(checks), with
    RV(counts) per status.
  - The areas are C(edge-setup) (its own files), C(identity) (device ID, machine ID, host name),
    C(agent), C(tenant) (DNS, TCP, TLS, clock, NTP, credentials, registration, endpoints),
    C(vnc) (packages, mappings, each user's password file, session and port), C(certificates)
    and C(disk).
  - Whether failed checks fail the host is O(fail_on)'s choice. To gather a fleet's health, use
    O(fail_on=never) and act on the returned data in later tasks.
  - With O(fix), edge-setup first applies the fixes that are its own (restart a VNC session,
    remove a stale X lock, restore a password file's owner and mode, the C(/etc/hosts) line, the
    sudoers rule, the tenant's endpoints), then checks again; the result is what is left.
    Without O(fix) the module changes nothing.
author:
  - edge-setup maintainers (@edge-setup)
requirements:
  - edge-setup on the target (the role M(edge_setup.fleet.appliance) can install it)
attributes:
  check_mode:
    support: full
    description:
      - With O(fix), runs edge-setup with C(--dry-run); the checks are those found, RV(changes) the
        fixes it would apply. Without O(fix) the module only reads, in check mode as otherwise.
  diff_mode:
    support: full
    description: Returns one line per planned or made change of O(fix).
options:
  only:
    description: Only these areas (C(--only)); all when empty.
    type: list
    elements: str
    choices: [edge-setup, identity, agent, tenant, vnc, certificates, disk]
    default: []
  fix:
    description: Apply edge-setup's own fixes (C(--fix)), then check again.
    type: bool
    default: false
  strict:
    description:
      - Warnings count as failures (C(--strict)), in RV(failed_checks) and for O(fail_on=fail).
    type: bool
    default: false
  fail_on:
    description:
      - When the module fails the host.
      - V(fail), when a check failed (or, with O(strict), warned).
      - V(warn), when a check failed or warned.
      - V(never), only when edge-setup could not check at all; whatever the checks found is data.
    type: str
    choices: [fail, warn, never]
    default: fail
  root:
    description:
      - Check the system image in this directory (C(--root)) instead of the running system; the
        checks that need a running system are skipped. The commands of O(fix) for the target are
        not run but returned in RV(target_commands).
    type: path
  executable:
    description: The edge-setup program; default C(edge-setup) found on the target's PATH.
    type: path
notes:
  - The checks run as the connecting user; an ordinary user checks only her own VNC session, root
    (C(become)) checks everything.
  - RV(failed_checks) and RV(warned_checks) name a check by its id, followed by its user in
    brackets when it is about one user (C(vnc.session [admin])), as edge-setup's messages do.
seealso:
  - module: edge_setup.fleet.edge_setup_info
"""

EXAMPLES = r"""
- name: Check everything; fail the host when a check failed
  edge_setup.fleet.edge_setup_check:

- name: Check the VNC sessions, fixing what edge-setup can
  edge_setup.fleet.edge_setup_check:
    only: [vnc]
    fix: true

# A fleet's health: gather every host's checks, then act on them.
- name: Gather the health
  edge_setup.fleet.edge_setup_check:
    fail_on: never
  register: health

- name: Summarise the fleet
  ansible.builtin.debug:
    msg: "{{ item }}: {{ hostvars[item].health.msg }}"
  loop: "{{ ansible_play_hosts }}"
  run_once: true

- name: Fail the hosts with failed checks
  ansible.builtin.fail:
    msg: "failed: {{ health.failed_checks | join(', ') }}"
  when: health.counts.fail > 0
"""

RETURN = r"""
checks:
  description:
    - Each check, in edge-setup's order (by area), as C(edge-setup check --json) gives it.
    - C(id) (C(area.name)), C(area), C(user) (a per-user check's user, else absent), C(status)
      (C(ok), C(warn), C(fail) or C(skipped)), C(finding), C(next) (the command that fixes it,
      or null) and C(fixable) (whether O(fix) may fix it).
  returned: when edge-setup checked
  type: list
  elements: dict
  sample:
    - id: identity.device-id
      area: identity
      status: ok
      finding: edge-plant7-01
      next: null
      fixable: false
    - id: vnc.password-file
      area: vnc
      user: admin
      status: fail
      finding: "/home/admin/.vnc/passwd is mode 0644, not 0600: others can read the password"
      next: "sudo edge-setup check --fix --only vnc (or: sudo edge-setup vnc-user --user admin)"
      fixable: true
counts:
  description: How many checks have each status.
  returned: when edge-setup checked
  type: dict
  sample: {"ok": 7, "warn": 1, "fail": 1, "skipped": 13}
  contains:
    ok:
      description: Checks that passed.
      type: int
    warn:
      description: Checks that warned.
      type: int
    fail:
      description: Checks that failed.
      type: int
    skipped:
      description: Checks that did not apply (or need a running system, in an image).
      type: int
failed_checks:
  description: The checks that did not pass, C(id) or C(id [user]); with O(strict), the warned ones too.
  returned: when edge-setup checked
  type: list
  elements: str
  sample: ["vnc.password-file [admin]"]
warned_checks:
  description: The checks that warned, C(id) or C(id [user]).
  returned: when edge-setup checked
  type: list
  elements: str
  sample: ["agent.url"]
msg:
  description:
    - edge-setup's counts, then RV(failed_checks) after C(failed:) and the other warned checks after
      C(warnings:); or why edge-setup could not check.
  returned: always
  type: str
  sample: "7 ok, 1 warning, 1 failed, 13 skipped; failed: vnc.password-file [admin]; warnings: agent.url"
changes:
  description: What O(fix) changed, in order (in check mode, would change).
  returned: when edge-setup checked
  type: list
  elements: dict
  sample: [{"action": "write", "path": "/home/admin/.vnc/passwd", "owner": "admin:admin", "uid": 1000, "gid": 1000, "mode": "0600"}]
notes:
  description: edge-setup's C(note:) lines.
  returned: when edge-setup checked
  type: list
  elements: str
target_commands:
  description: In image mode, the commands of O(fix) the target must run (not run here).
  returned: when edge-setup checked
  type: list
  elements: str
rc:
  description: edge-setup's exit code (0 when no check failed, 1 when one did; 2 and 3 when it could not check).
  returned: failure
  type: int
why:
  description: Why edge-setup could not check.
  returned: when edge-setup could not check
  type: str
next:
  description: What to do about it.
  returned: when edge-setup could not check
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.edge_setup.fleet.plugins.module_utils import cli

AREAS = ["edge-setup", "identity", "agent", "tenant", "vnc", "certificates", "disk"]


def name(check):
    """A check's name as edge-setup's messages show it: `id` or `id [user]`."""
    if check.get("user"):
        return "%s [%s]" % (check.get("id"), check["user"])
    return str(check.get("id"))


def summary(counts, failed, warned):
    """edge-setup's count line, then the checks that did not pass and the other warnings."""
    warn = counts.get("warn", 0)
    line = "%d ok, %d warning%s, %d failed, %d skipped" % (
        counts.get("ok", 0), warn, "" if warn == 1 else "s", counts.get("fail", 0), counts.get("skipped", 0))
    if failed:
        line += "; failed: " + ", ".join(failed)
    warned = [w for w in warned if w not in failed]
    if warned:
        line += "; warnings: " + ", ".join(warned)
    return line


def outcome(doc, rc, params, diff):
    """The module's result from edge-setup's JSON and exit code: (whether the host fails, result)."""
    result = doc.get("result")
    checks = result.get("checks") if isinstance(result, dict) else None
    error = doc.get("error") or {}
    # Exit 1 with the checks is what they found: data. Anything else means edge-setup could not check.
    if rc not in (0, 1) or not isinstance(checks, list):
        return True, dict(changed=bool(doc.get("changed")), msg=error.get("what") or "edge-setup check failed (exit %d)" % rc,
                          why=error.get("why"), next=error.get("next"), rc=rc)
    strict = params["strict"]
    failed = [name(c) for c in checks if c.get("status") == "fail" or (strict and c.get("status") == "warn")]
    warned = [name(c) for c in checks if c.get("status") == "warn"]
    counts = result.get("counts") or dict(
        (status, len([c for c in checks if c.get("status") == status])) for status in ("ok", "warn", "fail", "skipped"))
    ret = dict(
        # without --fix edge-setup changes nothing
        changed=bool(params["fix"] and doc.get("changed")),
        checks=checks,
        counts=counts,
        failed_checks=failed,
        warned_checks=warned,
        changes=doc.get("changes", []),
        notes=doc.get("notes", []),
        target_commands=doc.get("target_commands", []),
        msg=summary(counts, failed, warned),
    )
    if diff and ret["changes"]:
        ret["diff"] = {"prepared": "".join(cli.describe(c) + "\n" for c in ret["changes"])}
    if rc == 1 and not failed:
        # edge-setup failed for another reason than a check
        ret.update(msg=error.get("what") or "edge-setup check failed (exit 1)", why=error.get("why"), next=error.get("next"), rc=rc)
        return True, ret
    fail_on = params["fail_on"]
    if (fail_on == "fail" and failed) or (fail_on == "warn" and (failed or warned)):
        ret.update(rc=rc)
        return True, ret
    # Not rc: Ansible takes a result with rc other than 0 for a failure.
    return False, ret


def main():
    module = AnsibleModule(
        argument_spec=dict(
            only=dict(type="list", elements="str", choices=AREAS, default=[]),
            fix=dict(type="bool", default=False),
            strict=dict(type="bool", default=False),
            fail_on=dict(type="str", choices=["fail", "warn", "never"], default="fail"),
            root=dict(type="path"),
            executable=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    argv = cli.base_argv(module, dry_run=module.check_mode and params["fix"]) + ["check"]
    if params["only"]:
        argv += ["--only", ",".join(params["only"])]
    if params["fix"]:
        argv.append("--fix")
    if params["strict"]:
        argv.append("--strict")
    rc, doc, out, err = cli.run_json(module, argv)
    if doc is None:
        cli.fail_without_json(module, argv, rc, out, err)
    # Ansible's own warnings: a `warnings` key in the result is deprecated (ansible-core 2.19)
    for warning in doc.get("warnings", []):
        module.warn(warning)
    failed, ret = outcome(doc, rc, params, module._diff)
    if failed:
        module.fail_json(**ret)
    module.exit_json(**ret)


if __name__ == "__main__":
    main()
