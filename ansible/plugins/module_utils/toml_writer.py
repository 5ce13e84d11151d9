# -*- coding: utf-8 -*-
# A TOML writer for edge-setup answers files. Targets run Pythons without a
# TOML writer in the standard library, so this is the small subset answers
# need: strings, booleans, integers, floats, arrays, tables, arrays of tables.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def dumps(doc):
    """The TOML text of a dict; raises ValueError naming the key of a value TOML cannot hold."""
    lines = []
    _table(doc, (), lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def string(text):
    """A TOML basic string: quotes, backslashes and control characters escaped, the rest verbatim."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u%04X" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(name):
    name = str(name)
    return name if _BARE_KEY.match(name) else string(name)


def _path(keys):
    return ".".join(_key(k) for k in keys)


def _is_table_array(value):
    return isinstance(value, list) and value != [] and all(isinstance(v, dict) for v in value)


def _table(table, path, lines):
    # Plain keys first: in TOML they belong to the header above them.
    nested = []
    for name, value in table.items():
        if isinstance(value, dict) or _is_table_array(value):
            nested.append((name, value))
        else:
            lines.append("%s = %s" % (_key(name), _value(value, path + (name,))))
    for name, value in nested:
        sub = path + (name,)
        for entry in value if isinstance(value, list) else [value]:
            lines.append("")
            lines.append(("[[%s]]" if isinstance(value, list) else "[%s]") % _path(sub))
            _table(entry, sub, lines)


def _value(value, path):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return string(value)
    if isinstance(value, list):
        if any(isinstance(v, dict) for v in value):
            raise ValueError("%s mixes tables with other values" % _path(path))
        return "[" + ", ".join(_value(v, path) for v in value) + "]"
    raise ValueError("%s: TOML has no value like %r" % (_path(path), value))
