"""Faults: kill -9 at several points then `storprof clean`, SIGTERM, a daemon that dies mid-sweep,
two sweeps at once, an attached user's objects, and what containers may do (needs root)."""

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

from storprof.engine.containers import LABEL, PIDS_LIMIT
from storprof.engine.daemon import EphemeralDaemon
from storprof.engine.image import one_file_tar
from storprof.harness.layout import RUNTIME_ROOT
from tests.conftest import setup_provides, sigint_default, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]

TINY = ["--jobs", "randread-4k,copyup", "--placements", "host,union,volume", "--size", "16m", "--runtime", "1",
        "--ramp-time", "0", "--repeat", "2", "--copyup-sizes", "16", "--no-layers"]


def storprof(*args: str) -> list[str]:
    return [sys.executable, "-m", "storprof.cli", *args]


@pytest.fixture
def dirs():
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-out-"))
    yield workdir, out
    subprocess.run(storprof("clean", "--workdir", str(workdir)), capture_output=True, timeout=300)
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)


def wait_for(condition, timeout: float = 300, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def run_id_of(out: Path) -> str:
    wait_for(lambda: (out / "meta.json").is_file(), what="meta.json")
    return json.loads((out / "meta.json").read_text())["run_id"]


def records(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.endswith("}")]


def nothing_left(workdir: Path, run_id: str) -> None:
    assert storprof_leftovers(str(workdir)) == []
    assert storprof_leftovers(run_id) == []
    assert list(workdir.iterdir()) == [], list(workdir.iterdir())
    assert not list(RUNTIME_ROOT.glob(f"{run_id}-*")) if RUNTIME_ROOT.exists() else True


KILL_POINTS = {
    # the loop-backed xfs is mounted and dockerd answers, no container yet
    "daemon-up": lambda out, run_id: list(RUNTIME_ROOT.glob(f"{run_id}-0/docker.sock")),
    # fio cells have finished: containers, a volume and the data files exist
    "mid-fio": lambda out, run_id: sum(r["kind"] == "fio" for r in records(out)) >= 3,
    # copy-up samples: fresh containers come and go, the lower-layer image exists
    "copy-up": lambda out, run_id: any(r["kind"] == "probe" for r in records(out)),
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_kill_9_then_clean_leaves_nothing(dirs, point):
    workdir, out = dirs
    proc = subprocess.Popen(storprof("sweep", "--drivers", "overlay2@xfs", *TINY, "--workdir", str(workdir),
                                     "--out", str(out / "r")), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_id = run_id_of(out / "r")
    wait_for(lambda: KILL_POINTS[point](out / "r", run_id) or proc.poll() is not None, what=point)
    assert proc.poll() is None, "the sweep ended before the kill point"
    proc.kill()                                               # SIGKILL: no cleanup of its own
    proc.wait()
    state = workdir / ".storprof-state" / f"{run_id}.jsonl"
    assert state.is_file()
    assert storprof_leftovers(str(workdir)), "a kill -9 leaves mounts, a loop device or dockerd behind"

    done = subprocess.run(storprof("clean", "--workdir", str(workdir)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"removed the leftovers of 1 run(s): {run_id}" in done.stdout
    nothing_left(workdir, run_id)
    again = subprocess.run(storprof("clean", "--workdir", str(workdir)), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "nothing to clean" in again.stdout


def test_sigterm_keeps_results_tears_down_and_says_where(dirs):
    workdir, out = dirs
    proc = subprocess.Popen(storprof("sweep", "--drivers", "overlay2@xfs", *TINY, "--workdir", str(workdir),
                                     "--out", str(out / "r")), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    run_id = run_id_of(out / "r")
    wait_for(lambda: KILL_POINTS["mid-fio"](out / "r", run_id), what="fio cells")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    last = err.strip().splitlines()[-1]
    assert last.startswith("storprof: interrupted; finished runs are kept in") and str(out / "r") in last
    assert sum(r["kind"] == "fio" for r in records(out / "r")) >= 3
    nothing_left(workdir, run_id)


def test_daemon_dying_mid_sweep_fails_its_driver_and_the_next_goes_on(dirs):
    workdir, out = dirs
    proc = subprocess.Popen(storprof("sweep", "--drivers", "vfs,overlay2", "--jobs", "randread-4k", "--size", "16m",
                                     "--runtime", "1", "--ramp-time", "0", "--repeat", "3", "--no-layers",
                                     "--workdir", str(workdir), "--out", str(out / "r")),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_id = run_id_of(out / "r")
    wait_for(lambda: sum(r["kind"] == "fio" for r in records(out / "r")) >= 2, what="vfs cells")
    pid = int((RUNTIME_ROOT / f"{run_id}-0" / "docker.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    stdout, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-1500:]
    status = {r["driver_spec"]: r for r in records(out / "r") if r["kind"] == "driver"}
    assert status["vfs@ext4"]["status"] == "failed" and status["vfs@ext4"]["reason"]
    assert status["overlay2@ext4"]["status"] == "ok"
    assert "vfs@ext4" in stdout and "failed" in stdout
    nothing_left(workdir, run_id)


def test_two_sweeps_at_once_share_nothing_and_both_finish(dirs):
    workdir, out = dirs
    procs = [subprocess.Popen(storprof("sweep", "--drivers", driver, "--jobs", "randread-4k,meta-create",
                                       "--size", "16m", "--runtime", "1", "--ramp-time", "0", "--repeat", "1",
                                       "--no-layers", "--quiet", "--workdir", str(workdir), "--out", str(out / driver)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for driver in ("vfs", "overlay2")]
    run_ids = [run_id_of(out / d) for d in ("vfs", "overlay2")]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-1500:]
    assert run_ids[0] != run_ids[1]
    for driver in ("vfs", "overlay2"):
        fio = [r for r in records(out / driver) if r["kind"] == "fio"]
        assert len(fio) == 4 + 3 and {r["status"] for r in fio} == {"ok"}
        assert {r["run_id"] for r in fio} == {json.loads((out / driver / "meta.json").read_text())["run_id"]}
    for run_id in run_ids:
        nothing_left(workdir, run_id)


@pytest.fixture
def user_daemon():
    root = Path(tempfile.mkdtemp(prefix="storprof-userd-"))
    daemon = EphemeralDaemon("user@ext4", "overlay2", root / "docker", RUNTIME_ROOT / f"userd-{os.getpid()}",
                             root / "dockerd.log")
    daemon.start()
    client = daemon.client
    client.api.import_image_from_data(one_file_tar("hello.txt", b"the user's\n"), repository="user/app", tag="1")
    client.volumes.create("user-data")
    client.containers.create("user/app:1", command=["/nothing"], name="user-app",
                             volumes={"user-data": {"bind": "/data", "mode": "rw"}})
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_attached_sweep_killed_then_cleaned_touches_nothing_of_the_user(dirs, user_daemon):
    workdir, out = dirs
    daemon = user_daemon
    proc = subprocess.Popen(storprof("sweep", "--docker-host", daemon.base_url, *TINY, "--workdir", str(workdir),
                                     "--out", str(out / "r")), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_id = run_id_of(out / "r")
    wait_for(lambda: KILL_POINTS["mid-fio"](out / "r", run_id), what="fio cells")
    proc.kill()
    proc.wait()
    client = daemon.client
    mine = {"label": f"{LABEL}={run_id}"}
    assert client.containers.list(all=True, filters=mine), "the killed sweep left its containers"
    done = subprocess.run(storprof("clean", "--workdir", str(workdir)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert client.containers.list(all=True, filters=mine) == []
    assert client.volumes.list(filters=mine) == [] and client.images.list(filters=mine) == []
    assert client.containers.get("user-app") and client.volumes.get("user-data") and client.images.get("user/app:1")
    assert not any(p.name.startswith("storprof-") for p in Path(daemon.data_root()).iterdir())


def test_containers_get_no_network_no_new_privileges_and_the_daemon_no_tcp(dirs):
    workdir, out = dirs
    proc = subprocess.Popen(storprof("sweep", "--drivers", "vfs", *TINY, "--workdir", str(workdir),
                                     "--out", str(out / "r")), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=sigint_default)
    run_id = run_id_of(out / "r")
    try:
        wait_for(lambda: KILL_POINTS["mid-fio"](out / "r", run_id), what="fio cells")
        runtime = RUNTIME_ROOT / f"{run_id}-0"
        assert (runtime.stat().st_mode & 0o777) == 0o700 and (RUNTIME_ROOT.stat().st_mode & 0o077) == 0
        import docker
        client = docker.DockerClient(base_url=f"unix://{runtime}/docker.sock")
        containers = client.containers.list(filters={"label": f"{LABEL}={run_id}"})
        assert containers
        for c in containers:
            host = c.attrs["HostConfig"]
            assert host["NetworkMode"] == "none" and not host["Privileged"]
            assert "no-new-privileges" in (host["SecurityOpt"] or [])
            assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
            assert host["PidsLimit"] == PIDS_LIMIT
        client.close()
        pid = int((runtime / "docker.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert not any("tcp://" in a for a in cmdline)
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
        assert f"pid={pid}," not in listening
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=300)
    nothing_left(workdir, run_id)
