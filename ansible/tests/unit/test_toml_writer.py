import math
import tomllib

import pytest

from ansible_collections.edge_setup.fleet.plugins.module_utils.toml_writer import dumps, string

ANSWERS = {
    "shred-secrets": False,
    "network": {"interface": "eth0", "ip": "192.168.10.20", "allow-remote": True},
    "agent": {"url": "https://t.example.com", "force": True},
    "vnc-user": [
        {"user": "admin", "password-file": "/root/admin.vncpass"},
        {"user": "operator", "password-file": "/root/operator.vncpass"},
    ],
    "nested": {"count": 3, "ratio": 0.5, "names": ["a", "b"], "inner": {"deep": -7}},
}


def test_answers_round_trip():
    assert tomllib.loads(dumps(ANSWERS)) == ANSWERS


def test_plain_keys_stay_top_level_whatever_their_order():
    doc = {"agent": {"url": "u"}, "shred-secrets": True}
    text = dumps(doc)
    assert text.startswith("shred-secrets = true\n")
    assert tomllib.loads(text) == doc


@pytest.mark.parametrize(
    "text",
    [
        'say "hi"',
        "C:\\path\\to\\",
        "two\nlines\r\n",
        "tab\there, bell\x07, escape\x1b, delete\x7f, nul\x00",
        "Zürich ✓ 日本 🚀",
        "'single' and \"\"\"triple\"\"\"",
        "",
    ],
)
def test_strings_round_trip(text):
    doc = {"t": {"s": text}}
    assert tomllib.loads(dumps(doc)) == doc


def test_escapes_are_toml_basic_string_escapes():
    assert string('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert string("\x01") == '"\\u0001"'
    assert string("é") == '"é"'


def test_keys_that_need_quotes():
    doc = {"a b": {"ä": 1, "x.y": "dot", "": "empty"}}
    assert tomllib.loads(dumps(doc)) == doc


def test_special_floats():
    doc = tomllib.loads(dumps({"n": float("nan"), "i": float("inf"), "m": float("-inf")}))
    assert math.isnan(doc["n"]) and doc["i"] == math.inf and doc["m"] == -math.inf


def test_empty_document():
    assert tomllib.loads(dumps({})) == {}


def test_empty_list_is_an_array():
    assert tomllib.loads(dumps({"t": {"l": []}})) == {"t": {"l": []}}


def test_none_names_its_key():
    with pytest.raises(ValueError, match=r"agent\.url"):
        dumps({"agent": {"url": None}})


def test_tables_mixed_with_values_are_refused():
    with pytest.raises(ValueError, match="mixes tables"):
        dumps({"l": [{"a": 1}, 2]})
