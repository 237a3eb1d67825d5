"""views/labels.py: a probe row's text made from its fields is the label schema 1 stored, and
the probes' own fields make the labels the migration reads back to the same fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storprof.results.migrate import migrate
from storprof.results.records import ProbeRecord
from storprof.storage.probes import copyup, deepstack, lookup, pagecache, unionops
from storprof.views.labels import probe_label, record_label

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _schema_1_probe_lines() -> list[dict]:
    return [line for path in sorted(FIXTURES.glob("results-*/results.jsonl"))
            for line in map(json.loads, path.read_text().splitlines()) if line.get("kind") == "probe"]


def _fields(line: dict) -> dict:
    return {name: line.get(name) for name in ProbeRecord.IDENTITY}


def test_every_schema_1_label_comes_back_from_its_fields():
    lines = _schema_1_probe_lines()
    labels = {line["job"] for line in lines}
    assert len(labels) == 33             # every row name the schema-1 fixtures hold (8 workloads)
    for line in lines:
        assert probe_label(**_fields(migrate(line))) == line["job"], line["job"]


def test_a_migrated_label_names_its_row_by_fields_not_by_its_text():
    fields = {line["job"]: _fields(migrate(line)) for line in _schema_1_probe_lines()}
    assert fields["copyup-512m first write+fsync"] == {**dict.fromkeys(ProbeRecord.IDENTITY), "workload": "copyup",
                                                       "operation": "first write+fsync", "size_mib": 512}
    assert fields["stack K=120 first stat"]["depth"] == 120 and fields["stack K=120 first stat"]["size_mib"] == 4
    assert fields["append to 1000 files of 512 B"]["file_bytes"] == 512
    assert fields["page cache: each later reader of 32 MiB"]["containers"] == 3   # not in the label: from params
    assert fields["daemon start 200 images"]["images"] == 200
    assert fields["snapbench commit"]["operation"] == "commit"


@pytest.mark.parametrize("row", [
    *(copyup.row(512, op) for op in copyup.OPERATIONS),
    *(deepstack.row(120, 4, op) for op in ("first stat", "open", "first read")),
    *(lookup.row(20000, op) for op in ("cold", "warm")),
    *(unionops.row(unionops.UnionOpsPlan(small_bytes=4096), op) for op in unionops.OPS),
    *(pagecache.row(pagecache.PageCachePlan(), op) for op in ("first reader", "later reader", "all readers")),
], ids=lambda row: probe_label(**row))
def test_what_a_probe_writes_reads_back_to_the_same_fields(row):
    """A probe's fields, shown as schema 1 would have stored them, migrate to the same fields:
    the label is a function of the fields and nothing is lost either way."""
    params = {"deep-stack": {"depth": row.get("depth"), "target_mib": row.get("size_mib")},    # as schema 1 kept
              "page-cache": {"containers": row.get("containers"), "file_mib": row.get("size_mib")}}
    old = {"kind": "probe", "schema_version": 1, "workload": row["workload"], "job": probe_label(**row),
           "params": params.get(row["workload"], {})}
    migrated = migrate(old)
    assert ProbeRecord.identity_of(**_fields(migrated)) == ProbeRecord.identity_of(**row)
    assert migrated["params"] == {} and "job" not in migrated


def test_a_workload_this_version_does_not_know_shows_its_operation():
    assert probe_label("fake", "quiet") == "quiet"
    old = {"kind": "probe", "schema_version": 1, "workload": "fake", "job": "quiet", "params": {}}
    assert _fields(migrate(old))["operation"] == "quiet"


def test_fields_from_a_dataframe_print_as_whole_numbers():
    """A column with missing values holds floats; the label still reads 64, not 64.0."""
    assert probe_label("copyup", "first write", size_mib=64.0, depth=float("nan")) == "copyup-64m first write"
    record = ProbeRecord.from_json(migrate(_schema_1_probe_lines()[0]))
    assert record_label(record) == _schema_1_probe_lines()[0]["job"]
