"""The ownership record's own logic: who owns a record, and what counts as left over."""

import json
import os
import subprocess
import sys

from storprof import state


def test_a_finished_run_with_nothing_left_deletes_its_record(tmp_path):
    run = state.RunState(tmp_path, "abc123", ["storprof", "sweep"])
    run.record("dir", path=str(tmp_path / "abc123"))
    assert run.path.is_file()
    assert [r["kind"] for r in state.read_state(run.path)] == ["run", "dir"]
    assert run.finish() == []
    assert not run.path.exists() and not (tmp_path / state.STATE_DIR).exists()


def test_a_record_whose_things_still_exist_is_kept(tmp_path):
    (tmp_path / "abc123").mkdir()
    run = state.RunState(tmp_path, "abc123")
    run.record("dir", path=str(tmp_path / "abc123"))
    assert run.finish() == [f"directory {tmp_path / 'abc123'}"]
    assert run.path.is_file()


def test_owner_alive_knows_a_dead_process_and_a_reused_pid(tmp_path):
    me = {"pid": os.getpid(), "start_ticks": state._start_ticks(os.getpid())}
    assert state.owner_alive(me)
    assert not state.owner_alive({**me, "start_ticks": me["start_ticks"] - 1})      # same pid, other process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not state.owner_alive({"pid": child.pid, "start_ticks": 1})


def test_clean_removes_only_paths_carrying_the_run_id_and_leaves_live_runs(tmp_path):
    ours, theirs = tmp_path / "dead01-scratch", tmp_path / "precious"
    ours.mkdir()
    theirs.mkdir()
    state_dir = tmp_path / state.STATE_DIR
    state_dir.mkdir()
    lines = [{"kind": "run", "run_id": "dead01", "pid": 999999999, "start_ticks": 1},
             {"kind": "dir", "run_id": "dead01", "path": str(ours)},
             {"kind": "dir", "run_id": "dead01", "path": str(theirs)}]      # a path without the id: refused
    (state_dir / "dead01.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"kind": "di')
    live = state.RunState(tmp_path, "live02")
    (tmp_path / "live02-x").mkdir()
    live.record("dir", path=str(tmp_path / "live02-x"))
    assert state.dead_runs(tmp_path) == ["dead01"]

    report = state.clean(tmp_path)
    assert report.cleaned == ["dead01"] and report.running == ["live02"] and report.problems == []
    assert not ours.exists() and theirs.exists() and (tmp_path / "live02-x").exists()
    assert not (state_dir / "dead01.jsonl").exists() and live.path.exists()
