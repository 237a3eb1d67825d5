"""The ownership record and `storprof clean`, on the real on-disk layout with records the tests plant:
clean reads only root's private records, computes every path again, and refuses the rest."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storprof.harness import state
from storprof.harness.layout import RunLayout
from storprof.harness.ownership import FORMAT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="records are root's; clean runs as root")

DEAD, LIVE = "dead000001", "a1ce000002"


def plant(workdir: Path, run_id: str, records: list[dict], mode: int = 0o600, owner: dict | None = None) -> Path:
    """A record file as a killed run of `run_id` would have left it (its owner a gone process)."""
    state_dir = workdir / state.STATE_DIR
    state_dir.mkdir(mode=0o700, exist_ok=True)
    path = state_dir / f"{run_id}.jsonl"
    head = owner or {"kind": "run", "run_id": run_id, "format": FORMAT, "pid": 999999999, "start_ticks": 1}
    path.write_text("".join(json.dumps(r) + "\n" for r in [head, *records]))
    os.chmod(path, mode)
    return path


@pytest.fixture
def workdir(tmp_path):
    path = tmp_path / "work"
    path.mkdir(mode=0o700)
    return path


def test_a_finished_run_with_nothing_left_deletes_its_record(workdir):
    run = state.RunState(workdir, "abc1230000", ["storprof", "sweep"])
    (workdir / "abc1230000").mkdir()
    run.record("dir", what="run", path=str(workdir / "abc1230000"))
    assert (run.path.stat().st_mode & 0o777) == 0o600 and (run.dir.stat().st_mode & 0o777) == 0o700
    assert [r["kind"] for r in state._read(run.layout, run.path).records] == ["run", "dir"]
    assert run.finish() == [f"directory {workdir / 'abc1230000'}"]
    (workdir / "abc1230000").rmdir()
    assert run.finish() == []
    assert not run.path.exists() and not (workdir / state.STATE_DIR).exists()


def test_a_run_never_writes_through_a_planted_record_name(workdir):
    (workdir / state.STATE_DIR).mkdir(mode=0o700)
    target = workdir / "canary"
    target.write_text("keep")
    (workdir / state.STATE_DIR / "abc1230000.jsonl").symlink_to(target)
    with pytest.raises(FileExistsError):
        state.RunState(workdir, "abc1230000")
    assert target.read_text() == "keep"


def test_owner_alive_knows_a_dead_process_a_reused_pid_and_malformed_ones():
    me = {"pid": os.getpid(), "start_ticks": state._start_ticks(os.getpid())}
    assert state.owner_alive(me)
    assert not state.owner_alive({**me, "start_ticks": me["start_ticks"] - 1})      # same pid, other process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not state.owner_alive({"pid": child.pid, "start_ticks": 1})
    for pid in ("1", "x", -1, 1.5, None, [1], 2**70, True):
        assert not state.owner_alive({"pid": pid, "start_ticks": 1})


def test_clean_computes_paths_again_and_refuses_any_other(workdir, tmp_path):
    layout = RunLayout(workdir, DEAD)
    ours = layout.run_dir
    ours.mkdir()
    canary = tmp_path / "precious"
    canary.mkdir()
    (canary / "file").write_text("keep")
    plant(workdir, DEAD, [{"kind": "dir", "run_id": DEAD, "what": "run", "path": str(ours)},
                          {"kind": "dir", "run_id": DEAD, "what": "run", "path": str(canary)},
                          {"kind": "dir", "run_id": DEAD, "what": "net", "role": "nat", "index": 0, "path": "/"},
                          {"kind": "backing", "run_id": DEAD, "slug": "../../etc", "fs": "ext4"},
                          {"kind": "backing", "run_id": DEAD, "slug": "vfs-ext4", "fs": "ext4", "path": str(canary)},
                          {"kind": "daemon", "run_id": DEAD, "slug": "vfs-ext4", "index": 0, "data_root": "/"},
                          {"kind": "daemon", "run_id": DEAD, "slug": "vfs-ext4", "index": "0; rm"},
                          {"kind": "netns", "run_id": DEAD, "role": "nat", "index": -1},
                          {"kind": "attached", "run_id": DEAD, "docker_host": "ssh://-oProxyCommand=x@h"},
                          {"kind": "overlay", "run_id": DEAD, "root": str(canary), "before": {"nfs_export": "Y"}},
                          {"kind": "shell", "run_id": DEAD, "argv": ["rm", "-rf", "/"]}])
    report = state.clean(workdir)
    assert not ours.exists(), "the run's own directory, as computed, is removed"
    assert (canary / "file").read_text() == "keep"
    assert report.cleaned == [] and len(report.problems) == 10, report.problems
    assert all(p.startswith(f"{DEAD}: refused a ") for p in report.problems)
    assert any("is not the one storprof computes" in p for p in report.problems)
    assert all("\n" not in p for p in report.problems)


def test_records_that_are_not_root_private_files_in_a_private_directory_are_not_read(workdir, tmp_path):
    canary = tmp_path / "canary"
    canary.mkdir()
    layout = RunLayout(workdir, DEAD)
    layout.run_dir.mkdir()
    record = [{"kind": "dir", "run_id": DEAD, "what": "run", "path": str(layout.run_dir)}]
    path = plant(workdir, DEAD, record, mode=0o644)
    assert state.clean(workdir).problems == [f"{path}: not read: {path} has mode 644, not 600"]
    os.chmod(path, 0o600)
    os.chown(path, 65534, 65534)
    assert "owned by uid 65534" in state.clean(workdir).problems[0]
    path.unlink()
    (canary / f"{DEAD}.jsonl").write_text(json.dumps(record[0]) + "\n")
    path.symlink_to(canary / f"{DEAD}.jsonl")
    assert "Too many levels of symbolic links" in state.clean(workdir).problems[0]
    path.unlink()
    (workdir / state.STATE_DIR / "notes.txt").write_text("x")
    assert state.clean(workdir).problems == [f"{workdir / state.STATE_DIR / 'notes.txt'}: not a record storprof "
                                             "makes (ignored)"]
    assert layout.run_dir.exists()


def test_a_state_directory_that_is_not_private_is_not_read(workdir, tmp_path):
    layout = RunLayout(workdir, DEAD)
    layout.run_dir.mkdir()
    plant(workdir, DEAD, [{"kind": "dir", "run_id": DEAD, "what": "run", "path": str(layout.run_dir)}])
    os.chmod(workdir / state.STATE_DIR, 0o755)
    assert "has mode 755, not 700" in state.clean(workdir).problems[0]
    os.chmod(workdir / state.STATE_DIR, 0o700)
    os.chmod(workdir, 0o777)
    assert "is writable by others" in state.clean(workdir).problems[0]
    assert layout.run_dir.exists()


def test_records_of_another_run_and_malformed_lines_are_reported_and_cleaning_goes_on(workdir):
    layout = RunLayout(workdir, DEAD)
    layout.run_dir.mkdir()
    path = plant(workdir, DEAD, [{"kind": "dir", "run_id": "", "what": "run", "path": str(workdir)},
                                 {"kind": "dir", "run_id": LIVE, "what": "run", "path": str(workdir)}])
    with open(path, "a") as f:
        f.write("[1]\n\x00\xff}\n" + json.dumps({"kind": "dir", "run_id": DEAD, "what": "run",
                                                 "path": str(layout.run_dir)}) + "\n" + '{"kind": "di')
    report = state.clean(workdir)
    assert not layout.run_dir.exists() and workdir.exists()
    assert [p.split(": ", 1)[1] for p in report.problems] == [
        f"not a record of run {DEAD} (skipped)", f"not a record of run {DEAD} (skipped)",
        f"not a record of run {DEAD} (skipped)", "not a JSON record (skipped)"]
    assert report.cleaned == []          # problems keep the record for another look


def test_a_live_run_is_not_touched_and_a_malformed_owner_does_not_crash(workdir):
    live = state.RunState(workdir, LIVE)
    live_dir = RunLayout(workdir, LIVE).run_dir
    live_dir.mkdir()
    live.record("dir", what="run", path=str(live_dir))
    plant(workdir, DEAD, [], owner={"kind": "run", "run_id": DEAD, "format": FORMAT, "pid": "12; x", "start_ticks": []})
    assert state.dead_runs(workdir) == [DEAD]
    report = state.clean(workdir)
    assert report.running == [LIVE] and report.cleaned == [DEAD] and live_dir.exists()


def test_a_record_of_an_older_storprof_is_refused_not_followed(workdir, tmp_path):
    canary = tmp_path / "canary"
    canary.mkdir()
    plant(workdir, DEAD, [{"kind": "dir", "run_id": DEAD, "path": str(canary)}],
          owner={"kind": "run", "run_id": DEAD, "pid": 999999999, "start_ticks": 1})
    problems = state.clean(workdir).problems
    assert canary.exists() and any("written by an older storprof" in p for p in problems), problems


def test_clean_puts_overlay_parameters_back_only_in_the_directory_the_code_gives(tmp_path):
    from storprof.harness import ownership
    params = tmp_path / "params"
    params.mkdir()
    (params / "redirect_dir").write_text("Y\n")
    layout = RunLayout(tmp_path, DEAD)
    record = {"kind": "overlay", "run_id": DEAD, "root": "/etc", "before": {"redirect_dir": "N"},
              "set": {"redirect_dir": "Y"}}
    owned = ownership.derive(record, layout, overlay_root=params)
    assert owned is not None and owned.leftover() == ["overlay parameter redirect_dir=Y (was N)"]
    assert owned.remove(lambda line: None) == []
    assert (params / "redirect_dir").read_text() == "N\n"
    bad = {**record, "before": {"redirect_dir": "N\n[x]"}}
    with pytest.raises(ownership.LayoutError):
        ownership.derive(bad, layout, overlay_root=params)
