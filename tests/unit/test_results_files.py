"""A results file is input: what the reader refuses and why, on real sweeps' lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storprof.errors import UserError
from storprof.results import ResultSet
from storprof.results.check import check_record, check_version
from storprof.results.files import MAX_DEPTH, parse_json
from storprof.results.migrate import migrate
from storprof.results.records import RECORD_TYPES
from storprof.results.text import one_line, printable

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("results-*")))
def test_every_line_a_real_sweep_wrote_passes_the_checks(fixture):
    assert ResultSet.load(FIXTURES / fixture).records


def _first(kind: str) -> dict:
    fixture = FIXTURES / ("results-union" if kind == "probe" else "results-quick")
    for line in (fixture / "results.jsonl").read_text().splitlines():
        data = migrate(json.loads(line))       # schema-1 lines, as the reader makes them current
        if data["kind"] == kind:
            return data
    raise AssertionError(kind)


@pytest.mark.parametrize(("field", "value", "said"), [
    ("repeat", "3", "'repeat' is a string, not a whole number"),
    ("repeat", True, "'repeat' is true or false, not a whole number"),
    ("metrics", [1], "'metrics' is an array"),
    ("job", None, "'job' is null, not a string"),
    ("status", "weird", "'status' is 'weird', not one of ok, failed, skipped"),
    ("driver_status", {"a": 1}, "'driver_status' is an object"),
])
def test_a_field_of_the_wrong_type_is_named(field, value, said):
    data = {**_first("fio"), field: value}
    with pytest.raises(UserError, match=said.replace("(", r"\(")):
        check_record(RECORD_TYPES["fio"], data, "f:2")


def test_a_missing_field_and_a_probe_without_seconds_are_refused():
    data = _first("fio")
    del data["placement"]
    with pytest.raises(UserError, match="without its 'placement' field"):
        check_record(RECORD_TYPES["fio"], data, "f:1")
    probe = _first("probe")
    probe["metrics"] = {"seconds": "1"}
    with pytest.raises(UserError, match=r"metrics\.seconds"):
        check_record(RECORD_TYPES["probe"], probe, "f:1")
    with pytest.raises(UserError, match="schema_version is a string"):
        check_version({"schema_version": "x"}, "f:1")


@pytest.mark.parametrize(("text", "said"), [
    ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested deeper"),
    ("[" * 100000 + "]" * 100000, "nested deeper"),
    ('{"a": NaN}', "NaN is not a number"), ('{"a": -Infinity}', "-Infinity is not a number"),
    ('{"a": 1e308}', "out of range"), ('{"a": 1e999}', "out of range"), ('{"a": ' + "9" * 5000 + "}", "out of range"),
    ("{" + ", ".join(f'"k{i}": 1' for i in range(1001)) + "}", "1001 keys"),
])
def test_json_storprof_does_not_read(text, said):
    with pytest.raises(UserError, match=said):
        parse_json(text, "f:1")


def test_numbers_a_sweep_writes_are_read():
    assert parse_json('{"a": 1.5e12, "b": 123456789012, "c": -0.25}', "f") == {"a": 1.5e12, "b": 123456789012,
                                                                              "c": -0.25}


def test_control_characters_are_dropped_and_newlines_kept_only_where_asked():
    evil = "a\x1b]0;title\x07b\x9b2Jc\x7fd\u202ee\tf\ng"
    assert printable(evil) == "a]0;titleb2Jcde\tf\ng"
    assert one_line(evil) == "a]0;titleb2Jcde f g"
