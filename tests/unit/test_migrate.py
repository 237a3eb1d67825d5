"""Results written while results were schema 1 still load, and print the same tables."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from storprof import cli
from storprof.results import ResultSet
from storprof.results.migrate import migrate
from storprof.results.records import SCHEMA_VERSION, NetRecord, record_from_json

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
