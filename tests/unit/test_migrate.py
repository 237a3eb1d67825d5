"""Results written while results were schema 1 still load, and print the same tables; what the
schema-1 probe step makes of a line."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from storprof import cli
from storprof.results import ResultSet
from storprof.results.check import check_record
from storprof.results.migrate import migrate
from storprof.results.records import SCHEMA_VERSION, NetRecord, ProbeRecord, record_from_json

FIXTURES = Path(__file__).parent.parent / "fixtures"
GOLDEN = FIXTURES / "schema-1"


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("results-*.table.*")), ids=lambda p: p.name)
def test_a_schema_1_directory_prints_the_same_table(golden):
    name, _, fmt = golden.name.partition(".table.")
    args = ["table", str(FIXTURES / name)] + ([] if fmt == "txt" else ["--format", fmt])
    result = CliRunner().invoke(cli.main, args, catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output == golden.read_text()


def test_every_schema_1_fixture_has_its_golden_table():
    dirs = {p.name for p in FIXTURES.glob("results-*") if (p / "results.jsonl").exists()}
    assert dirs and dirs == {p.name.partition(".table.")[0] for p in GOLDEN.glob("results-*.table.txt")}


def _first_probe_line(fixture: str, job: str) -> dict:
    for line in (FIXTURES / fixture / "results.jsonl").read_text().splitlines():
        data = json.loads(line)
        if data.get("kind") == "probe" and data["job"] == job:
            return data
    raise AssertionError(job)


def test_a_schema_1_probe_line_becomes_fields():
    old = _first_probe_line("results-pain", "rename a dir of 200 files, 16 MiB")
    new = migrate(old)
    assert old["schema_version"] == 1 and "job" in old            # the line read is not changed
    assert new["schema_version"] == SCHEMA_VERSION == 2 and "job" not in new
    assert (new["workload"], new["operation"], new["files"], new["size_mib"]) == ("union-ops", "rename", 200, 16)
    assert new["params"] == {"path": old["params"]["path"]}        # the plan's sizes are fields now; how it went stays
    assert {k: v for k, v in new.items() if k not in ("schema_version", "operation", "files", "size_mib", "params")} \
        == {k: v for k, v in old.items() if k not in ("schema_version", "job", "params")}


def test_lines_of_other_kinds_and_of_schema_2_pass_unchanged_but_for_the_version():
    fio = next(json.loads(line) for line in (FIXTURES / "results-quick" / "results.jsonl").read_text().splitlines()
               if json.loads(line)["kind"] == "fio")
    assert migrate(fio) == {**fio, "schema_version": SCHEMA_VERSION}
    current = migrate(_first_probe_line("results-union", "copyup-64m first write"))
    assert migrate(current) == current


def test_a_schema_2_probe_record_round_trips():
    old = _first_probe_line("results-pain", "page cache: each later reader of 32 MiB")
    record = ProbeRecord.from_json(migrate(old))
    assert (record.operation, record.containers, record.size_mib) == ("later reader", 3, 32)
    assert (record.seconds, record.bytes) == (old["metrics"]["seconds"], old["metrics"]["bytes"])
    data = record.to_json()
    assert data["schema_version"] == SCHEMA_VERSION and "job" not in data and data["operation"] == "later reader"
    assert "depth" not in data and "images" not in data             # fields a workload does not vary are not written
    assert ProbeRecord.from_json(json.loads(json.dumps(data))) == record
    check_record(ProbeRecord, data, "line")


def test_every_schema_1_fixture_has_its_json_golden_too():
    dirs = {p.name for p in FIXTURES.glob("results-*") if (p / "results.jsonl").exists()}
    assert dirs == {p.name.partition(".table.")[0] for p in GOLDEN.glob("results-*.table.json")}


def test_net_values_nothing_measured_print_as_null_in_json():
    """results-net-iperf3-failed: every throughput run failed, so its rows have no value (NaN
    inside): the JSON says null, and stays JSON (no NaN token)."""
    result = CliRunner().invoke(cli.main, ["table", str(FIXTURES / "results-net-iperf3-failed"), "--format", "json"],
                                catch_exceptions=False)
    assert result.exit_code == 0
    rows = json.loads(result.output, parse_constant=lambda token: pytest.fail(f"{token} in JSON"))
    throughput = [r for r in rows if r["workload"] == "throughput" and r["against"] == "host"]
    assert throughput and all(r["n"] == 0 and r["value"] is None and r["ratio"] is None for r in throughput)
    assert any(r["value"] is not None for r in rows if r["workload"] == "latency")


def test_a_schema_1_net_line_gets_a_context_and_repeats_from_0():
    line = json.loads((FIXTURES / "results-net" / "results.jsonl").read_text().splitlines()[0])
    assert line["kind"] == "net" and line["schema_version"] == 1
    record = record_from_json(migrate(line))
    assert isinstance(record, NetRecord)
    assert record.repeat == line["repeat"] - 1
    assert (record.run_id, record.engine, record.docker_version) == (line["run_id"], line["engine"],
                                                                     line["docker_version"])
    assert record.context.driver == "overlay2" and record.context.driver_spec.startswith("overlay2@")
    assert record.to_json()["schema_version"] == SCHEMA_VERSION


def test_net_repeats_of_a_schema_1_directory_count_from_0():
    lines = [json.loads(t) for t in (FIXTURES / "results-net" / "results.jsonl").read_text().splitlines()]
    old = sorted({d["repeat"] for d in lines if d["kind"] == "net"})
    loaded = sorted({r.repeat for r in ResultSet.load(FIXTURES / "results-net").of(NetRecord)})
    assert loaded == [k - 1 for k in old] and loaded[0] == 0


@pytest.mark.parametrize("change", [{"kind": ["net"]}, {"repeat": "2"}, {"repeat": None}, {"repeat": True},
                                    {"job": ["x"]}, {"params": "x"}])
def test_a_malformed_schema_1_line_is_left_for_the_field_check_not_a_traceback(change):
    for fixture, kind in (("results-net", "net"), ("results-union", "probe")):
        line = next(json.loads(t) for t in (FIXTURES / fixture / "results.jsonl").read_text().splitlines()
                    if json.loads(t)["kind"] == kind)
        bad = {**line, **change}
        out = migrate(bad)                                  # never raises
        assert out["schema_version"] == SCHEMA_VERSION
        for key in change:
            if key in out and key != "repeat":
                assert out[key] == change[key]
