"""Real sweeps: ephemeral overlay2 and vfs daemons, real fio in every placement (needs root)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from storprof import results
from storprof.engine.drivers import DriverSpec
from storprof.harness.layout import RUNTIME_ROOT
from storprof.harness.plan import SweepPlan
from storprof.harness.sweep import Sweep
from storprof.results import ResultSet
from storprof.stats import summary
from storprof.storage.fio.job import load_job
from storprof.storage.fio.placements import DEFAULT_PLACEMENTS as PLACEMENTS
from storprof.views import tables
from tests.conftest import setup_provides, sigint_default, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]

JOBS = ("randread-4k", "randwrite-4k")


def tiny_jobs(names=JOBS):
    return [load_job(n).with_overrides(size="16m", runtime=1, ramp_time=0) for n in names]


@pytest.fixture
def workdir():
    wd = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    yield wd
    shutil.rmtree(wd, ignore_errors=True)


def assert_nothing_left(workdir: Path, run_id: str) -> None:
    assert storprof_leftovers(str(workdir)) == []
    assert storprof_leftovers(run_id) == []
    assert list(workdir.iterdir()) == [], f"left in the workdir: {list(workdir.iterdir())}"
    assert not any(p.name.startswith(run_id) for p in RUNTIME_ROOT.glob("*")) if RUNTIME_ROOT.exists() else True


@pytest.mark.parametrize("driver", ["overlay2", "vfs"])
def test_sweep_measures_every_placement_and_cleans_up(driver, workdir, tmp_path):
    config = SweepPlan(specs=[DriverSpec(driver, "ext4")], jobs=tiny_jobs(), repeat=1, workdir=workdir)
    store = results.ResultsStore(tmp_path / "out", {"test": True})
    lines: list[str] = []
    outcomes = Sweep(config, store, lines.append).run()

    assert [o.status for o in outcomes] == ["ok"], outcomes
    runs = ResultSet.load(store.dir).runs
    assert len(runs) == len(JOBS) * len(PLACEMENTS)
    assert set(runs["status"]) == {"ok"}
    assert set(runs["placement"]) == set(PLACEMENTS)
    reads = runs[runs["job"] == "randread-4k"]
    writes = runs[runs["job"] == "randwrite-4k"]
    assert (reads["read_iops"] > 0).all() and (reads["read_clat_p99_ns"] > 0).all()
    assert (writes["write_iops"] > 0).all() and (writes["write_clat_p99_ns"] > 0).all()
    # every raw fio output is kept and is what the line says
    for _, row in runs.iterrows():
        raw = json.loads((store.dir / row["raw"]).read_text())
        assert raw["jobs"][0]["jobname"] == row["job"]
    assert set(runs["docker_version"]) and runs["kernel"].iloc[0] == os.uname().release

    over = summary.summarize(runs)
    headers, rows = tables.table_rows(over)
    assert len(rows) == len(JOBS)
    assert all(cell != "-" for row in rows for cell in row), rows
    for p in ("union", "volume", "bind"):
        ratios = over[over["placement"] == p]["ratio"]
        assert (ratios > 0).all()
    assert_nothing_left(workdir, config.run_id)


def test_daemon_that_will_not_start_is_reported_and_sweep_goes_on(workdir, tmp_path):
    # vfs with an option it does not have: dockerd exits while starting; overlay2 is still measured.
    config = SweepPlan(specs=[DriverSpec("vfs", "ext4"), DriverSpec("overlay2", "ext4")],
                         jobs=tiny_jobs(["randread-4k"]), placements=("host", "union"), repeat=1,
                         workdir=workdir, storage_opts=["vfs.nosuchoption=1"])
    store = results.ResultsStore(tmp_path / "out", {})
    lines: list[str] = []
    outcomes = Sweep(config, store, lines.append).run()
    assert [o.status for o in outcomes] == ["failed", "ok"]
    assert "dockerd exited" in outcomes[0].reason and "nosuchoption" in outcomes[0].reason
    assert "log:" in outcomes[0].reason
    status = ResultSet.load(store.dir).drivers
    assert [s.status for s in status] == ["failed", "ok"]
    assert len(ResultSet.load(store.dir).runs) == 2
    assert_nothing_left(workdir, config.run_id)


def test_cli_sweep_on_xfs_loop_prints_the_answer_and_wall_time(workdir, tmp_path):
    out = tmp_path / "res"
    proc = subprocess.run([sys.executable, "-m", "storprof.cli", "sweep", "--drivers", "overlay2@xfs",
                           "--jobs", "randread-4k", "--size", "16m", "--runtime", "1", "--repeat", "1",
                           "--workdir", str(workdir), "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "overlay2@xfs" in proc.stdout and "Total wall time" in proc.stdout
    # the answer, not the wide per-cell table: the compact table within 120 columns; the sentence per
    # spec is storprof table's (one spec and one read job answer no use case)
    assert "union randread-4k" in proc.stdout and "overlay2@xfs (Docker " not in proc.stdout
    answer = proc.stdout.split("\nResults: ")[0]
    assert max(len(line) for line in answer.splitlines()) <= 120
    assert "direct-io" in proc.stderr          # the loop device was set up with direct I/O
    runs = ResultSet.load(out).runs
    assert set(runs["loop_direct_io"]) == {True}
    assert (out / "overhead.csv").is_file() and (out / "overhead.md").is_file()
    assert storprof_leftovers(str(workdir)) == []
    assert list(workdir.iterdir()) == []


def test_ctrl_c_keeps_finished_runs_and_leaves_nothing(workdir, tmp_path):
    out = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "storprof.cli", "sweep", "--drivers", "overlay2@xfs",
                             "--jobs", "randread-4k", "--size", "16m", "--runtime", "2", "--repeat", "5",
                             "--workdir", str(workdir), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:     # wait until a few runs are on disk
        path = out / "results.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= 3:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    kept = ResultSet.load(out).runs
    assert len(kept) >= 3 and set(kept["status"]) == {"ok"}
    assert storprof_leftovers(str(workdir)) == []
    assert list(workdir.iterdir()) == []
