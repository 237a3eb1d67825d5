"""A smoke run of every benchmark, so that none breaks silently (needs root; the figures of a smoke
run mean nothing, only that each benchmark runs to its table)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import setup_provides

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the benchmarks run fio and daemons as root"),
    setup_provides(shutil.which("fio") is not None, "fio is not installed"),
]

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def smoke(name: str, *args: str, timeout: float = 900) -> str:
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), "--smoke", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=BENCHMARKS.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_every_benchmark_has_a_smoke_run_here():
    assert {p.name for p in BENCHMARKS.glob("*.py")} <= set(SMOKED), "add a smoke test for the new benchmark"


def test_sandbox_benchmark_smoke():
    out = smoke("sandbox.py")
    assert "sandboxed / plain fio" in out and "start-up added by the sandbox" in out and "target" in out


SMOKED = {"sandbox.py": test_sandbox_benchmark_smoke}


@setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed")
def test_fidelity_benchmark_smoke():
    out = smoke("fidelity.py", timeout=1200)
    for figure in ("control host-aa/host", "container cost bind/host", "repeatability CV",
                   "agreement storprof/fio by hand", "quick sweep wall time", "time outside measuring", "peak RSS",
                   "A/A intervals that contain 1.00", "ratio cells within ±5% in the budget"):
        assert figure in out, figure


SMOKED["fidelity.py"] = test_fidelity_benchmark_smoke


@setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed")
def test_repeats_benchmark_smoke():
    out = smoke("repeats.py", timeout=600)
    assert "bind ÷ host 95% half-width" in out and "narrowest" in out
    assert "0.5 s x" in out and "1 s x" in out


SMOKED["repeats.py"] = test_repeats_benchmark_smoke


def test_sequential_benchmark_smoke():
    out = smoke("sequential.py", timeout=120)
    assert "A/A cell covers 1.00" in out and "answered 0.97x" in out and "target" in out


SMOKED["sequential.py"] = test_sequential_benchmark_smoke


@setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed")
def test_answers_benchmark_smoke():
    out = smoke("answers.py", timeout=900)
    for name in ("new", "baseline"):
        for figure in ("wall time", "fio measuring share", "cells answered at ±5%", "A/A intervals containing 1.00"):
            assert any(line.startswith(name) and figure in line for line in out.splitlines()), (name, figure, out)


SMOKED["answers.py"] = test_answers_benchmark_smoke


def test_noise_benchmark_smoke():
    out = smoke("noise.py", timeout=300)
    assert "consecutive log-ratio sd" in out and "settle" in out and "target" in out
    assert "today" in out and "randwrite-4k" in out and "fsync-write-4k" in out


SMOKED["noise.py"] = test_noise_benchmark_smoke
