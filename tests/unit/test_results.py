import json

import pytest

from storprof.errors import UserError
from storprof.results import SCHEMA_VERSION, ResultsStore, load_runs, read_records


def test_append_writes_one_versioned_line_per_run(tmp_path):
    store = ResultsStore(tmp_path / "r", {"command": "storprof sweep"})
    store.append({"kind": "fio", "job": "a", "metrics": {"total_iops": 5.0}, "params": {"size": "1m"}})
    store.append({"kind": "driver", "driver_spec": "vfs@ext4", "status": "ok"})
    lines = (tmp_path / "r" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(ln)["schema_version"] == SCHEMA_VERSION for ln in lines)
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["command"] == "storprof sweep" and meta["kernel"] and meta["schema_version"] == SCHEMA_VERSION
    runs = load_runs(tmp_path / "r")
    assert list(runs["total_iops"]) == [5.0] and list(runs["param_size"]) == ["1m"]


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    store = ResultsStore(tmp_path, {})
    store.append({"kind": "fio", "job": "a"})
    with open(store.path, "a") as f:
        f.write('{"kind": "fio", "jo')
    with pytest.warns(UserWarning, match="truncated"):
        assert len(read_records(tmp_path)) == 1


def test_newer_schema_is_refused(tmp_path):
    (tmp_path / "results.jsonl").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}) + "\n")
    with pytest.raises(UserError, match="newer"):
        read_records(tmp_path)


def test_not_a_results_directory(tmp_path):
    with pytest.raises(UserError, match="not a storprof results directory"):
        read_records(tmp_path)


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write the output directory"):
        ResultsStore(blocker / "sub", {})


def test_resume_cuts_a_half_written_line_and_keeps_meta(tmp_path):
    store = ResultsStore(tmp_path, {"command": "first"})
    store.append({"kind": "fio", "job": "a"})
    with open(store.path, "a") as f:
        f.write('{"kind": "fio", "jo')
    with pytest.warns(UserWarning, match="half-written"):
        again = ResultsStore(tmp_path, {"command": "second"}, resume=True)
    again.append({"kind": "fio", "job": "b"})
    assert [r["job"] for r in read_records(tmp_path)] == ["a", "b"]      # no glued line, no warning left
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["command"] == "first" and [m["command"] for m in meta["resumed"]] == ["second"]


def test_resume_needs_a_results_directory(tmp_path):
    with pytest.raises(UserError, match="not a storprof results directory"):
        ResultsStore(tmp_path, {}, resume=True)


def test_driver_status_is_the_last_word_per_driver(tmp_path):
    from storprof.results import load_driver_status
    store = ResultsStore(tmp_path, {})
    store.append({"kind": "driver", "driver_spec": "vfs@ext4", "status": "failed", "reason": "killed"})
    store.append({"kind": "driver", "driver_spec": "btrfs@btrfs", "status": "ok"})
    store.append({"kind": "driver", "driver_spec": "vfs@ext4", "status": "ok"})
    assert [(s["driver_spec"], s["status"]) for s in load_driver_status(tmp_path)] == [
        ("btrfs@btrfs", "ok"), ("vfs@ext4", "ok")]


def test_empty_results_file_reads_as_no_records(tmp_path):
    (tmp_path / "results.jsonl").write_text("")
    assert read_records(tmp_path) == [] and load_runs(tmp_path).empty
