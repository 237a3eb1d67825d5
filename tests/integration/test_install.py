"""Plain installs, away from the source tree: `pip install .` (not editable) and a built wheel, each
into a fresh virtualenv, have the built-in jobs and the results schema, and run `storprof drivers`,
`storprof setup` and real sweeps with them (needs root, and PyPI or a filled pip cache for the
dependencies)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import setup_provides

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the sweep starts dockerd"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]

ROOT = Path(__file__).resolve().parents[2]
# What a clean clone does not have: the tree is copied without them, so nothing built here before helps.
NOT_IN_A_CLONE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
                  ".mypy_cache", "storprof-results")


@pytest.fixture(scope="module")
def source():
    """The source tree as a clone has it, in a directory of its own."""
    where = Path(tempfile.mkdtemp(prefix="storprof-src-")) / "storprof"
    shutil.copytree(ROOT, where, ignore=shutil.ignore_patterns(*NOT_IN_A_CLONE))
    yield where
    shutil.rmtree(where.parent, ignore_errors=True)


def fresh_venv(tmp_path: Path, *install: str) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *install],
                         capture_output=True, text=True, timeout=1200)
    assert pip.returncode == 0, pip.stderr[-3000:]
    return venv


def assert_installed_with_its_data(venv: Path, tmp_path: Path, source: Path) -> None:
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import storprof, storprof.storage.fio.job as f; print(storprof.__file__); "
                            "print(sorted(p.name for p in f.JOBS_DIR.glob('*.fio')))"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout.splitlines()
    assert str(venv) in where[0] and str(source) not in where[0] and str(ROOT) not in where[0], \
        "imported from a source tree, not the installed package"
    assert "'randread-4k.fio'" in where[1]
    assert list(venv.glob("lib/python*/site-packages/storprof/results/schema/results.schema.json"))


def sweep(venv: Path, tmp_path: Path, placements: str) -> list[dict]:
    """A one-job, one-repeat vfs sweep with the installed command; its fio records."""
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = tmp_path / f"r-{placements.replace(',', '-')}"
    try:
        done = subprocess.run([str(venv / "bin" / "storprof"), "sweep", "--drivers", "vfs", "--jobs", "randread-4k",
                               "--placements", placements, "--size", "16m", "--runtime", "1", "--ramp-time", "0",
                               "--repeat", "1", "--no-layers", "--quiet", "--workdir", str(workdir),
                               "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lines = [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]
    fio = [r for r in lines if r["kind"] == "fio"]
    assert all(r["status"] == "ok" for r in fio) and all(Path(r["params"]["source"]).is_relative_to(venv) for r in fio)
    return fio


def test_pip_install_of_the_tree_runs_a_sweep_with_its_builtin_jobs(tmp_path, source):
    venv = fresh_venv(tmp_path, str(source))
    assert_installed_with_its_data(venv, tmp_path, source)
    assert {r["placement"] for r in sweep(venv, tmp_path, "host,union")} == {"host", "union"}


def test_a_built_wheel_in_a_fresh_virtualenv_runs_drivers_setup_and_a_one_cell_sweep(tmp_path, source):
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
                            "-w", str(dist), str(source)], capture_output=True, text=True, timeout=1200)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = dist.glob("storprof-*.whl")
    venv = fresh_venv(tmp_path, str(wheel))
    assert_installed_with_its_data(venv, tmp_path, source)
    command = str(venv / "bin" / "storprof")

    drivers = subprocess.run([command, "drivers"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert drivers.returncode == 0 and "vfs@ext4" in drivers.stdout, drivers.stderr
    check = subprocess.run([command, "setup", "--check", "--format", "json"], capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert check.returncode in (0, 1) and "vfs@ext4" in json.loads(check.stdout)["runnable"], check.stderr
    setup = subprocess.run([command, "setup"], capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert setup.stdout.splitlines()[-1].startswith("setup: ready: ")
    [cell] = sweep(venv, tmp_path, "host")
    assert cell["placement"] == "host" and cell["job"] == "randread-4k"
