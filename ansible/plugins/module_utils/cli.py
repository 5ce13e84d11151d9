# -*- coding: utf-8 -*-
# Running edge-setup with --json, shared by the collection's modules.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json


def executable(module):
    return module.params["executable"] or module.get_bin_path("edge-setup", required=True)


def base_argv(module, dry_run=False):
    argv = [executable(module)]
    if module.params["root"]:
        argv += ["--root", module.params["root"]]
    if dry_run:
        argv.append("--dry-run")
    return argv + ["--json"]


def run_json(module, argv, data=None):
    """(rc, the JSON object edge-setup printed or None, stdout, stderr); data goes to its stdin."""
    if data is None:
        rc, out, err = module.run_command(argv)
    else:
        rc, out, err = module.run_command(argv, data=data, binary_data=True)
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    return rc, doc if isinstance(doc, dict) else None, out, err


def fail_without_json(module, argv, rc, out, err):
    module.fail_json(
        msg="%s printed no JSON object (exit %d); is it edge-setup?" % (argv[0], rc),
        rc=rc,
        stdout=out,
        stderr=err,
    )


def describe(change):
    """One line of --diff for a change edge-setup reported."""
    if change.get("action") == "tenant":
        return "%s (%s)" % (change.get("request"), change.get("what"))
    line = "%s %s" % (change.get("action"), change.get("path") or change.get("command", ""))
    if change.get("target"):
        line += " -> %s" % change["target"]
    details = ["owner %s" % change["owner"]] if change.get("owner") else []
    if change.get("mode"):
        details.append("mode %s" % change["mode"])
    return line + (" (%s)" % ", ".join(details) if details else "")
