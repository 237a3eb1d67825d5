"""A non-editable install (a wheel in a fresh virtualenv, away from the source tree) has the
built-in jobs and the results schema, and runs a real sweep with them (needs root, network to PyPI
or a filled pip cache for the dependencies)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the sweep starts dockerd"),
    pytest.mark.skipif(shutil.which("dockerd") is None, reason="dockerd is not installed"),
]

ROOT = Path(__file__).resolve().parents[2]


def test_a_wheel_in_a_fresh_virtualenv_runs_a_sweep_with_its_builtin_jobs(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(ROOT)],
                         capture_output=True, text=True, timeout=1200)
    assert pip.returncode == 0, pip.stderr[-3000:]
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import storprof, storprof.fiojob as f; print(storprof.__file__); "
                            "print(sorted(p.name for p in f.JOBS_DIR.glob('*.fio')))"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout.splitlines()
    assert str(venv) in where[0] and str(ROOT) not in where[0], "imported from the source tree, not the wheel"
    assert "'randread-4k.fio'" in where[1]
    assert list(venv.glob("lib/python*/site-packages/storprof/schema/results.schema.json"))
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    try:
        done = subprocess.run([str(venv / "bin" / "storprof"), "sweep", "--drivers", "vfs", "--jobs", "randread-4k",
                               "--placements", "host,union", "--size", "16m", "--runtime", "1", "--ramp-time", "0",
                               "--repeat", "1", "--no-layers", "--quiet", "--workdir", str(workdir),
                               "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=600,
                              cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        lines = [json.loads(ln) for ln in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
        fio = [r for r in lines if r["kind"] == "fio"]
        assert {r["placement"] for r in fio} == {"host", "union"} and all(r["status"] == "ok" for r in fio)
        assert all(Path(r["params"]["source"]).is_relative_to(venv) for r in fio)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
