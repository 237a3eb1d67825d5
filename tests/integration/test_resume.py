"""A sweep stopped half-way (SIGINT, as Ctrl-C) and resumed ends with every cell of the plan; the
resumed run only adds what was missing, and a repeat it found half done (some placements of a job
measured, not all) it measures again whole, so that every ratio pairs runs of one run (needs root)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from storprof.results.records import ProbeRecord
from storprof.views.labels import record_label
from tests.conftest import setup_provides, sigint_default, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]

ARGS = ["--drivers", "vfs", "--jobs", "randread-4k,meta-create,copyup", "--placements", "host,union,volume",
        "--size", "16m", "--runtime", "1", "--ramp-time", "0", "--repeat", "2", "--copyup-sizes", "16",
        "--no-layers", "--quiet"]
# Every measurement the plan holds: fio cells (job, placement, repeat) and copy-up rows.
EXPECTED = Counter(
    [("fio", job, p, r) for job in ("randread-4k", "meta-create") for p in ("host", "union", "volume") for r in (0, 1)]
    + [("probe", f"copyup-16m {row}", p, r) for row in ("first write", "first write+fsync", "second write",
                                                         "second write+fsync")
       for p in ("host", "union") for r in (0, 1)])


def records(results_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (results_dir / "results.jsonl").read_text().splitlines()
            if line.endswith("}")]


def cells(results_dir: Path) -> Counter:
    out = Counter()
    for r in records(results_dir):
        if r["kind"] in ("fio", "probe") and r.get("status") == "ok":
            name = r["job"] if r["kind"] == "fio" else record_label(ProbeRecord.from_json(r))
            out[(r["kind"], name, r["placement"], r["repeat"])] += 1
    return out


def complete_groups(results_dir: Path) -> dict[tuple, set[str]]:
    """(job, repeat) -> the run ids in which every placement of it ran ok."""
    ran: dict[tuple, set[str]] = {}
    for r in records(results_dir):
        if r["kind"] == "fio" and r.get("status") == "ok":
            ran.setdefault((r["job"], r["repeat"], r["run_id"]), set()).add(r["placement"])
    out: dict[tuple, set[str]] = {}
    for (job, repeat, run_id), placements in ran.items():
        if placements == {"host", "union", "volume"}:
            out.setdefault((job, repeat), set()).add(run_id)
    return out


def storprof(*args, workdir: Path) -> list[str]:
    return [sys.executable, "-m", "storprof.cli", "sweep", *ARGS, "--workdir", str(workdir), *args]


def test_killed_sweep_resumes_to_the_full_set_of_cells():
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-resume-")) / "r"
    try:
        proc = subprocess.Popen(storprof("--out", str(out), workdir=workdir), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
        results = out / "results.jsonl"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:       # stop it once some, not all, cells are in
            if results.is_file() and len(results.read_text().splitlines()) >= 5:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 130, err
        assert "--resume" in err
        before = cells(out)
        assert 0 < sum(before.values()) < sum(EXPECTED.values())
        # a crash can leave half a line: the resume must cut it, not glue the next record to it
        with open(results, "a") as f:
            f.write('{"kind": "fio", "job": "randread-4k", "trunc')

        done = subprocess.run(storprof("--resume", str(out), workdir=workdir), capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        after = cells(out)
        assert set(after) == set(EXPECTED), (set(after) ^ set(EXPECTED))
        # a cell measured twice belongs to a repeat the first run left half done; each repeat is
        # complete in exactly one run, and nothing complete was measured again
        groups = complete_groups(out)
        assert set(groups) == {(job, r) for job in ("randread-4k", "meta-create") for r in (0, 1)}
        assert all(len(run_ids) == 1 for run_ids in groups.values()), groups
        assert all(n == 1 for key, n in after.items() if key[0] == "probe")
        assert sum(after.values()) - sum(EXPECTED.values()) < 3       # at most one half-done group rerun
        meta = json.loads((out / "meta.json").read_text())
        assert len(meta["resumed"]) == 1
        assert storprof_leftovers(str(workdir)) == []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(out.parent, ignore_errors=True)


def test_resume_refuses_other_settings_and_non_results_directories(tmp_path):
    from tests.unit.test_tables import SWEEP
    copy = tmp_path / "r"
    shutil.copytree(SWEEP, copy)
    done = subprocess.run([sys.executable, "-m", "storprof.cli", "sweep", "--quick", "--size", "64m",
                           "--resume", str(copy)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "size 128m (now 64m)" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "storprof.cli", "sweep", "--resume", str(tmp_path / "nothing")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not a storprof results directory" in done.stderr
