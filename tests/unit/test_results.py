import json
from pathlib import Path

import pytest

from storprof.errors import UserError
from storprof.results import ResultSet, ResultsStore
from storprof.results.migrate import migrate
from storprof.results.records import (
    SCHEMA_VERSION,
    DriverRecord,
    FioRecord,
    LayerRecord,
    ProbeRecord,
    RunContext,
    json_schema,
    record_from_json,
)
from tests.conftest import require_or_skip

FIXTURES = Path(__file__).parent.parent / "fixtures"
CONTEXT = RunContext(run_id="r1", driver_spec="vfs@ext4", driver="vfs", fs="ext4", docker_version="20.10.24",
                     kernel="6.1", mem_total_bytes=1 << 30, driver_honours_direct_io=True)


def fio(job: str, **kw) -> FioRecord:
    return FioRecord(context=CONTEXT, placement="host", job=job, repeat=0, status="ok", primary_metric="iops", **kw)


def driver(spec: str, status: str, reason: str = "") -> DriverRecord:
    return DriverRecord(run_id="r1", driver_spec=spec, driver=spec.split("@")[0], fs="ext4", status=status,
                        reason=reason)


def test_append_writes_one_versioned_line_per_record(tmp_path):
    store = ResultsStore(tmp_path / "r", {"command": "storprof sweep"})
    store.append(fio("a", metrics={"total_iops": 5.0}, params={"size": "1m"}))
    store.append(driver("vfs@ext4", "ok"))
    lines = (tmp_path / "r" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(ln)["schema_version"] == SCHEMA_VERSION for ln in lines)
    assert all(json.loads(ln)["time"] for ln in lines)
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["command"] == "storprof sweep" and meta["kernel"] and meta["schema_version"] == SCHEMA_VERSION
    runs = ResultSet.load(tmp_path / "r").runs
    assert list(runs["total_iops"]) == [5.0] and list(runs["param_size"]) == ["1m"]
    assert list(runs["driver_spec"]) == ["vfs@ext4"]


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    store = ResultsStore(tmp_path, {})
    store.append(fio("a"))
    with open(store.path, "a") as f:
        f.write('{"kind": "fio", "jo')
    with pytest.warns(UserWarning, match="truncated"):
        assert len(ResultSet.load(tmp_path).records) == 1


def test_newer_schema_is_refused(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}) + "\n")
    with pytest.raises(UserError, match="newer"):
        ResultSet.load(tmp_path)


def test_not_a_results_directory(tmp_path):
    with pytest.raises(UserError, match="not a storprof results directory"):
        ResultSet.load(tmp_path)


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"results directory .*file is not a directory"):
        ResultsStore(blocker / "sub", {})


def test_output_directory_below_one_others_can_write(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(UserError, match="writable by others"):
        ResultsStore(shared / "out", {})
    assert not (shared / "out").exists()


def test_resume_cuts_a_half_written_line_and_keeps_meta(tmp_path):
    store = ResultsStore(tmp_path, {"command": "first"})
    store.append(fio("a"))
    with open(store.path, "a") as f:
        f.write('{"kind": "fio", "jo')
    with pytest.warns(UserWarning, match="half-written"):
        again = ResultsStore(tmp_path, {"command": "second"}, resume=True)
    again.append(fio("b"))
    assert [r.job for r in ResultSet.load(tmp_path).of(FioRecord)] == ["a", "b"]   # no glued line, no warning
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["command"] == "first" and [m["command"] for m in meta["resumed"]] == ["second"]


def test_resume_needs_a_results_directory(tmp_path):
    with pytest.raises(UserError, match="not a storprof results directory"):
        ResultsStore(tmp_path, {}, resume=True)


def test_driver_status_is_the_last_word_per_driver(tmp_path):
    store = ResultsStore(tmp_path, {})
    store.append(driver("vfs@ext4", "failed", "killed"))
    store.append(driver("btrfs@btrfs", "ok"))
    store.append(driver("vfs@ext4", "ok"))
    assert [(s.driver_spec, s.status) for s in ResultSet.load(tmp_path).drivers] == [
        ("btrfs@btrfs", "ok"), ("vfs@ext4", "ok")]


def test_empty_results_file_reads_as_no_records(tmp_path):
    (tmp_path / "results.jsonl").write_text("")
    loaded = ResultSet.load(tmp_path)
    assert loaded.records == [] and loaded.runs.empty


def test_an_unknown_kind_is_kept_out_not_refused(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps({"kind": "future", "schema_version": 1}) + "\n")
    assert ResultSet.load(tmp_path).records == []


# --- the typed model against lines real sweeps wrote ----------------------------------------------------

@pytest.mark.parametrize("fixture", ["results-quick", "results-union", "results-net"])
def test_every_fixture_line_round_trips_through_its_record(fixture):
    for line in (FIXTURES / fixture / "results.jsonl").read_text().splitlines():
        data = migrate(json.loads(line))         # schema-1 lines, as the reader makes them current
        record = record_from_json(data)
        assert record is not None
        again = record.to_json()
        for key, value in data.items():
            if key != "time":
                assert again[key] == value, (key, data["kind"])
        assert record_from_json(again) == record


def test_records_are_typed_and_frozen():
    loaded = ResultSet.load(FIXTURES / "results-union")
    kinds = {type(r) for r in loaded.records}
    assert kinds == {FioRecord, ProbeRecord, LayerRecord, DriverRecord}
    probe = loaded.of(ProbeRecord)[0]
    assert probe.seconds > 0 and probe.to_json()["metrics"] == {"seconds": probe.seconds}
    with pytest.raises(AttributeError):
        probe.seconds = 1.0  # type: ignore[misc]


def test_the_schema_file_is_the_model():
    path = Path(__file__).resolve().parents[2] / "storprof" / "results" / "schema" / "results.schema.json"
    assert json.loads(path.read_text()) == json_schema(), \
        "regenerate it: python -m storprof.results.records > storprof/results/schema/results.schema.json"


def _jsonschema():
    """jsonschema, a test extra .ci/setup installs (pip install '.[test]')."""
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    require_or_skip(jsonschema is not None, "jsonschema is not installed (pip install '.[test]')")
    return jsonschema


@pytest.mark.parametrize("fixture", ["results-quick", "results-union", "results-net"])
def test_every_fixture_line_validates_against_the_schema(fixture):
    jsonschema = _jsonschema()
    validator = jsonschema.Draft202012Validator(json_schema())
    for line in (FIXTURES / fixture / "results.jsonl").read_text().splitlines():
        data = migrate(json.loads(line))         # schema-1 lines, as the reader makes them current
        data.setdefault("loop_direct_io", None)
        errors = list(validator.iter_errors(data))
        assert not errors, (data["kind"], errors[0].message)


def test_the_schema_refuses_a_line_that_breaks_the_model():
    jsonschema = _jsonschema()
    bad = {**fio("a").to_json(), "repeat": "first"}
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(bad))
