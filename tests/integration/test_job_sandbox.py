"""The second wall: host fio runs in a sandbox that cannot touch anything outside its test
directory, even with the allowlist bypassed; and every fio run ends by its time limit, on the host
and in a container (needs root, bubblewrap, fio; the container test also dockerd).

Each attack is first run with plain fio, outside the sandbox, to show that it is real (it does
create, delete or read a canary outside the test directory); then the same job text goes through
the host placement storprof uses, and the canaries must be untouched. These tests pass *because
of the sandbox*: the job texts are written by hand and never meet the allowlist.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from storprof.storage.fio.check import check_with_fio
from storprof.storage.fio.fiojob import FioJob
from storprof.storage.fio.placements import HostTarget
from tests.conftest import setup_provides

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs fio as root, as storprof does"),
    setup_provides(shutil.which("bwrap") is not None and shutil.which("fio") is not None,
                   "bubblewrap or fio is not installed"),
]


@pytest.fixture
def place():
    """A test directory for fio (as a placement's) and, beside it, a canary directory."""
    root = Path(tempfile.mkdtemp(prefix="storprof-sbx-"))
    test_dir, canary_dir, jobs = root / "test", root / "canary", root / "jobs"
    for d in (test_dir, canary_dir, jobs):
        d.mkdir()
    yield test_dir, canary_dir, jobs
    shutil.rmtree(root, ignore_errors=True)


def make_victim(path: Path) -> Path:
    path.write_text("canary\n")
    st = path.stat()
    os.utime(path, (st.st_mtime - 3600, st.st_mtime))    # relatime: the next read moves atime
    return path


def was_read(path: Path, before: float) -> bool:
    return path.stat().st_atime != before


def canary_state(canary_dir: Path) -> dict[str, tuple[float, float, int]]:
    return {p.name: (p.stat().st_atime, p.stat().st_mtime, p.stat().st_size) for p in canary_dir.iterdir()}


def attacks(test_dir: Path, canary_dir: Path) -> dict[str, str]:
    """Job texts that reach outside `test_dir` into `canary_dir` if fio is let loose."""
    up = "/".join([".."] * len(test_dir.parts)) + str(canary_dir)
    return {
        # fio names a metadata job's files <directory>/<section>.<job>.<file>
        "section name creates": f"[global]\nioengine=filecreate\nnrfiles=1\ndirectory={test_dir}\n[{up}/made]\n",
        "section name deletes": f"[global]\nioengine=filedelete\nnrfiles=1\nfilesize=4k\ndirectory={test_dir}\n"
                                f"[{up}/victim]\n",
        "log file": f"[j]\nrw=write\nsize=64k\ndirectory={test_dir}\nwrite_iolog={canary_dir}/iolog\n",
        "environment": "[j]\nioengine=filecreate\nnrfiles=1\ndirectory=${STORPROF_TEST_CANARY}\n",
        "command": f"[j]\nrw=write\nsize=64k\ndirectory={test_dir}\nexec_prerun=/usr/bin/touch {canary_dir}/ran\n",
        "pattern reads a file": f"[j]\nrw=write\nsize=64k\ndirectory={test_dir}\n"
                                f"buffer_pattern='{canary_dir}/secret'\n",
    }


def arm(canary_dir: Path) -> dict:
    """Canaries: a file the delete attack targets and one the pattern attack reads."""
    make_victim(canary_dir / "victim.0.0")
    make_victim(canary_dir / "secret")
    return canary_state(canary_dir)


def effect(canary_dir: Path, before: dict) -> dict:
    after = canary_state(canary_dir)
    return {"created": sorted(set(after) - set(before)), "deleted": sorted(set(before) - set(after)),
            "read or changed": sorted(n for n in set(before) & set(after) if before[n] != after[n])}


def test_each_attack_is_real_without_the_sandbox(place, monkeypatch):
    test_dir, canary_dir, jobs = place
    monkeypatch.setenv("STORPROF_TEST_CANARY", str(canary_dir))
    expected = {"section name creates": ("created", "made.0.0"), "section name deletes": ("deleted", "victim.0.0"),
                "log file": ("created", "iolog"), "environment": ("created", "j.0.0"),
                "command": ("created", "ran"), "pattern reads a file": ("read or changed", "secret")}
    for name, text in attacks(test_dir, canary_dir).items():
        before = arm(canary_dir)
        path = jobs / "plain.fio"
        path.write_text(text)
        subprocess.run(["fio", "--output-format=json", str(path)], capture_output=True, timeout=120, cwd=test_dir)
        kind, what = expected[name]
        assert what in effect(canary_dir, before)[kind], f"{name}: the attack did nothing without the sandbox"
        for p in canary_dir.iterdir():
            p.unlink()


def test_the_host_placement_sandbox_stops_every_attack(place, monkeypatch):
    test_dir, canary_dir, jobs = place
    monkeypatch.setenv("STORPROF_TEST_CANARY", str(canary_dir))
    host = HostTarget(test_dir, jobs)
    for name, text in attacks(test_dir, canary_dir).items():
        before = arm(canary_dir)
        host.run_fio(text, "attack", timeout=120)
        assert effect(canary_dir, before) == {"created": [], "deleted": [], "read or changed": []}, name


def test_fios_parse_check_runs_in_the_sandbox_too(place):
    _, canary_dir, _ = place
    secret = make_victim(canary_dir / "secret")
    before = secret.stat().st_atime
    # Built by hand: parse_job would refuse the quote before fio ever saw it.
    job = FioJob("j", Path("j.fio"), (("j", (("rw", "write"), ("buffer_pattern", f"'{secret}'"))),))
    try:
        check_with_fio(job)
    except Exception:
        pass                       # fio may well fail to find the file; it must not have read it
    assert not was_read(secret, before)


def test_a_host_fio_run_that_overstays_is_killed(place):
    test_dir, _, jobs = place
    host = HostTarget(test_dir, jobs)
    never_ends = f"[j]\nrw=read\nsize=1g\nrate_iops=1\ndirectory={test_dir}\nfilename=slow.dat\n"
    start = time.monotonic()
    run = host.run_fio(never_ends, "hang", timeout=5)
    assert run.returncode == -1 and "did not finish within 5s" in run.stderr
    assert time.monotonic() - start < 20
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-af", "fio"], capture_output=True, text=True).stdout
    assert str(jobs) not in left and "storprof/in/job.fio" not in left, left


@setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed")
def test_a_container_carries_the_limits_and_a_fio_run_that_overstays_is_killed():
    from storprof import results
    from storprof.engine import containers
    from storprof.engine.drivers import DriverSpec
    from storprof.harness.plan import SweepPlan
    from storprof.harness.sweep import Sweep
    from storprof.storage.fio.job import load_job
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-out-"))
    try:
        config = SweepPlan(specs=[DriverSpec("overlay2", "ext4")], jobs=[load_job("randread-4k")],
                             placements=("host", "union"), repeat=1, workdir=workdir)
        sweep = Sweep(config, results.ResultsStore(out, {"test": True}), lambda line: None)
        with sweep.ephemeral_session(0, config.specs[0]) as session:
            union = session.target("union")
            union.container.reload()
            host_config = union.container.attrs["HostConfig"]
            assert host_config["Memory"] == host_config["MemorySwap"] == containers.MEMORY_LIMIT
            assert host_config["PidsLimit"] == containers.PIDS_LIMIT
            assert {"Name": "fsize", "Soft": containers.FILE_SIZE_LIMIT,
                    "Hard": containers.FILE_SIZE_LIMIT} in (host_config["Ulimits"] or [])
            never_ends = f"[j]\nrw=read\nsize=1g\nrate_iops=1\ndirectory={union.fio_dir}\nfilename=slow.dat\n"
            start = time.monotonic()
            run = union.run_fio(never_ends, "hang", timeout=8)
            assert run.returncode == -1 and "did not finish within 8s" in run.stderr
            assert time.monotonic() - start < 30
            union.container.reload()
            top = union.container.top()["Processes"] or []
            assert not any("fio" in " ".join(p) for p in top), top
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


@setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed")
def test_allow_option_lets_an_option_through_and_is_recorded(tmp_path):
    import json
    import sys
    job = tmp_path / "expert.fio"
    job.write_text("; an expert's job\n[global]\nioengine=libaio\ndirect=1\nexitall\n[expert]\nrw=randread\nbs=4k\n")
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    base = [sys.executable, "-m", "storprof.cli", "sweep", "--drivers", "vfs", "--jobs", str(job),
            "--placements", "host,union", "--size", "16m", "--runtime", "1", "--ramp-time", "0", "--repeat", "1",
            "--no-layers", "--quiet", "--workdir", str(workdir)]
    try:
        refused = subprocess.run(base + ["--out", str(tmp_path / "no")], capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "--allow-option exitall" in refused.stderr
        done = subprocess.run(base + ["--allow-option", "exitall", "--out", str(tmp_path / "r")],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        meta = json.loads((tmp_path / "r" / "meta.json").read_text())
        assert meta["allowed_options"] == ["exitall"]
        lines = [json.loads(ln) for ln in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
        fio = [r for r in lines if r["kind"] == "fio"]
        assert {r["placement"] for r in fio} == {"host", "union"} and all(r["status"] == "ok" for r in fio)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
