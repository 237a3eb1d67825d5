"""storprof setup on this machine, with an engine cache of the test's own (STORPROF_CACHE): the check
finds the engine missing in an empty cache, set-up fetches it (from Debian's mirror) in a few lines,
the check then finds it present and `storprof drivers` runs the snapshotters, and a second set-up has
nothing to do. Strict mode: with the engine hidden, the containerd-store tests fail under
STORPROF_STRICT=1 and skip without it (needs root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="set-up installs packages and writes root's cache"),
]

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTTERS = ("c8d-overlayfs@ext4", "c8d-native@ext4", "c8d-btrfs@btrfs")


@pytest.fixture
def empty_cache():
    """An empty directory of root's own, mode 0700, as storprof's cache."""
    cache = Path(tempfile.mkdtemp(prefix="storprof-cache-"))
    assert cache.stat().st_uid == 0 and cache.stat().st_mode & 0o777 == 0o700 and not any(cache.iterdir())
    yield cache
    shutil.rmtree(cache, ignore_errors=True)


def storprof(cache: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORPROF_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "storprof.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def checked(cache: Path) -> tuple[int, dict]:
    done = storprof(cache, "setup", "--check", "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_the_check_finds_the_engine_missing_in_an_empty_cache_and_present_after_setup(empty_cache):
    code, before = checked(empty_cache)
    assert code == 1 and not before["complete"] and before["containerd_store"] is False
    [engine] = [m for m in before["missing"] if m["kind"] == "engine"]
    assert set(SNAPSHOTTERS) <= set(engine["specs"])
    assert not any(s.startswith("c8d-") for s in before["runnable"])

    done = storprof(empty_cache, "setup", "--tests")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) <= 12 and all(line.startswith("setup: ") for line in lines), lines
    assert any("engine: fetching" in line for line in lines)
    assert [d.name for d in (empty_cache / "engines").iterdir()] and list((empty_cache / "logs").iterdir())

    code, after = checked(empty_cache)
    assert after["containerd_store"] is True and not [m for m in after["missing"] if m["kind"] == "engine"]
    assert {f"{s}:{after['engines'][-1]}" for s in SNAPSHOTTERS} <= set(after["runnable"])
    drivers = storprof(empty_cache, "drivers")
    assert drivers.returncode == 0, drivers.stderr
    status = {line.split()[0]: line.split()[1] for line in drivers.stdout.splitlines()[2:] if line.strip()}
    assert all(status[f"{s}:{after['engines'][-1]}"] == "ok" for s in SNAPSHOTTERS), drivers.stdout

    engines = sorted(p.name for p in (empty_cache / "engines").iterdir())
    again = storprof(empty_cache, "setup", "--tests")
    assert again.returncode == 0, again.stderr
    assert "fetching" not in again.stdout and "is here" in again.stdout
    assert sorted(p.name for p in (empty_cache / "engines").iterdir()) == engines


def test_a_cache_others_can_write_is_refused_in_one_line(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    done = storprof(shared, "setup")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.startswith("storprof: ") and "writable by others" in done.stderr
    assert not (shared / "engines").exists()


def _pytest_outcomes(cache: Path, strict: bool, tmp_path: Path) -> dict[str, int]:
    """Run the containerd-store tests with the engine hidden; count what junit says happened."""
    report = tmp_path / f"junit-{strict}.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "STORPROF_STRICT")}
    env["STORPROF_CACHE"] = str(cache)
    if strict:
        env["STORPROF_STRICT"] = "1"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                           "tests/integration/test_containerd_store.py"], capture_output=True, text=True,
                          timeout=600, env=env, cwd=ROOT)
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None, done.stdout
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "skipped", "errors", "failures")}
    return {**counts, "exit": done.returncode, "setup provides": done.stdout.count("storprof setup provides this")}


def test_strict_mode_fails_the_containerd_store_tests_without_the_engine_and_skips_them_otherwise(
        empty_cache, tmp_path):
    lenient = _pytest_outcomes(empty_cache, strict=False, tmp_path=tmp_path)
    assert lenient["exit"] == 0 and lenient["tests"] > 0 and lenient["skipped"] == lenient["tests"], lenient
    strict = _pytest_outcomes(empty_cache, strict=True, tmp_path=tmp_path)
    assert strict["exit"] != 0 and strict["skipped"] == 0, strict
    assert strict["errors"] + strict["failures"] == strict["tests"] == lenient["tests"], strict
    assert strict["setup provides"] >= 1, strict
