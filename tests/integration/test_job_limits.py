"""The third wall: host fio runs under limits on its memory, processes and file sizes, and each
container storprof starts under the policy's (needs root, bubblewrap, fio; the container test
also dockerd).

The job texts are written by hand and go straight to the host placement, never meeting the
allowlist (load_job refuses each). Each is run twice through the same path: under the limits
storprof applies, where it fails, and under limits wide enough for it, where it runs; so these
tests pass *because of the limits*. A job file as fio 3.33 splits it is shown against fio itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from storprof.errors import UserError
from storprof.host import limits
from storprof.host.limits import CEILING, Limits
from storprof.storage.fio.cells import LAYOUT_FIRST
from storprof.storage.fio.job import builtin_job_names, load_job, parse_job
from storprof.storage.fio.placements import HostTarget
from storprof.storage.fio.result import parse_fio_output
from tests.conftest import setup_provides

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs fio as root, as storprof does"),
    setup_provides(all(shutil.which(t) for t in ("bwrap", "fio", "prlimit")),
                   "bubblewrap, fio or prlimit is not installed"),
]
WIDE = Limits(memory=16 << 30, processes=1000, file_size=4 << 30)


@pytest.fixture
def host():
    root = Path(tempfile.mkdtemp(prefix="storprof-lim-"))
    yield HostTarget(root / "test", root / "jobs")
    shutil.rmtree(root, ignore_errors=True)


def past_the_allowlist(text: str, tmp_dir: Path) -> None:
    path = tmp_dir / "attack.fio"
    path.write_text(text)
    with pytest.raises(UserError):
        load_job(str(path))


def test_a_job_that_allocates_more_memory_than_its_limit_fails(host):
    greedy = "[j]\nioengine=null\nrw=read\nbs=4g\nsize=8g\n"        # one 4 GiB I/O buffer
    past_the_allowlist(greedy, Path(host.fio_dir))
    under = host.run_fio(greedy, "greedy", 60, limits=CEILING)
    assert under.returncode != 0
    assert "err=12" in under.stdout and "Cannot allocate memory" in under.stdout, under.stdout[:500]
    wide = host.run_fio(greedy, "greedy", 60, limits=WIDE)
    assert wide.returncode == 0, wide.stdout[:500] + wide.stderr      # it was the limit, not fio


def test_a_file_larger_than_the_file_limit_is_cut_off(host):
    # The limit of an 8 MiB job (what size= says); filesize makes the file 256 MiB.
    text = f"[j]\nrw=write\nbs=1m\nsize=8m\nfilesize=256m\ndirectory={host.fio_dir}\nfilename=big.dat\n"
    past_the_allowlist(text, Path(host.fio_dir))
    small = Limits.for_job(4 << 20, 1, 8 << 20)
    under = host.run_fio(text, "big", 60, limits=small)
    big = Path(host.fio_dir) / "big.dat"
    assert under.returncode != 0 and big.stat().st_size <= small.file_size < 256 << 20
    big.unlink()
    wide = host.run_fio(text, "big", 60, limits=WIDE)
    assert wide.returncode == 0 and big.stat().st_size == 256 << 20
    big.unlink()
    own = host.run_fio(text, "big", 60, limits=parse_job(text, "j.fio").limits())   # its own: room for it
    assert own.returncode == 0 and big.stat().st_size == 256 << 20


def test_a_job_that_forks_more_than_its_process_limit_does_not_run(host):
    if not limits.systemd_runs() and limits.pids_cgroup_parent() is None:
        pytest.skip("neither systemd nor a cgroup v1 pids hierarchy: root's processes are not capped here")
    forks = "[j]\nioengine=null\nsize=1m\nnumjobs=200\n"      # over MAX_NUMJOBS
    past_the_allowlist(forks, Path(host.fio_dir))
    under = host.run_fio(forks, "forks", 15, limits=Limits.for_job(0, 1, 0))   # room for ~34 tasks
    assert under.returncode != 0
    wide = host.run_fio(forks, "forks", 60, limits=parse_job(forks, "j.fio").limits())
    assert wide.returncode == 0, wide.stdout[:500] + wide.stderr


def test_the_fio_process_runs_with_the_jobs_limits(host):
    """Read from outside, as the kernel holds them: /proc/<fio>/limits and the pids cgroup."""
    if limits.systemd_runs():
        pytest.skip("under systemd the process cap is the scope's TasksMax (tested as a command)")
    slow = f"[j]\nrw=read\nsize=16m\nrate_iops=1\ndirectory={host.fio_dir}\nfilename=slow.dat\n"
    want = parse_job(slow, "j.fio").limits()
    worker = threading.Thread(target=host.run_fio, args=(slow, "slow", 8), kwargs={"limits": want})
    worker.start()
    try:
        seen = _fio_limits_while_running(time.monotonic() + 6)
    finally:
        worker.join()
    assert seen["Max address space"] == (want.memory, want.memory)
    assert seen["Max file size"] == (want.file_size, want.file_size)
    if limits.pids_cgroup_parent() is not None:
        assert seen["pids.max"] == want.processes
        assert not list(limits.pids_cgroup_parent().glob(f"storprof-{os.getpid()}-*")), "cgroup left behind"


def _fio_limits_while_running(deadline: float) -> dict:
    parent = limits.pids_cgroup_parent()
    while time.monotonic() < deadline:
        for pid in _fio_pids():
            try:
                text = Path(f"/proc/{pid}/limits").read_text()
            except OSError:
                continue
            seen = {}
            for line in text.splitlines():
                for name in ("Max address space", "Max file size"):
                    if line.startswith(name):
                        soft, hard = line[len(name):].split()[:2]
                        seen[name] = (int(soft), int(hard))
            if parent is not None:
                cgroups = list(parent.glob(f"storprof-{os.getpid()}-*"))
                seen["pids.max"] = int((cgroups[0] / "pids.max").read_text()) if cgroups else None
            return seen
        time.sleep(0.1)
    raise AssertionError("no sandboxed fio of this test was seen running")


def _fio_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "/storprof/in/job.fio"], capture_output=True, text=True).stdout.split()
    own = []
    for pid in found:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "fio" and _descends_from_us(int(pid)):
                own.append(int(pid))
        except OSError:
            continue
    return own


def _descends_from_us(pid: int) -> bool:
    while pid > 1:
        if pid == os.getpid():
            return True
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        pid = int(fields[1])
    return False


@pytest.mark.parametrize("name", builtin_job_names())
def test_every_builtin_job_runs_under_its_own_limits(host, name):
    job = load_job(name).with_overrides(size="16m", runtime=1, ramp_time=0)
    if job.own_files:
        job = job.with_files(200)
    directory = host.fresh_dir(name) if job.own_files else host.fio_dir
    filename = None if job.own_files else f"{name}.dat"
    if (job.option("ioengine") or "") in LAYOUT_FIRST:
        layout = job.with_files(200, create_only=True)
        done = host.run_fio(layout.render(directory, filename), f"{name}-layout", 120, limits=layout.limits())
        parse_fio_output(done.stdout, done.stderr)
    done = host.run_fio(job.render(directory, filename), name, 120, limits=job.limits())
    assert done.returncode == 0, done.stdout[:500] + done.stderr
    parse_fio_output(done.stdout, done.stderr)


def test_fio_reads_a_long_comment_as_a_hidden_job_and_load_job_refuses_it(host):
    """The issue's file: fio's first fgets of line 1 ends just before '[hidden]'."""
    hidden = f"[hidden]\nioengine=null\nsize=1m\nfilename={host.fio_dir}/hidden.dat\n"
    path = Path(host.fio_dir) / "smuggler.fio"
    path.write_text("; " + "x" * (8191 - 2) + hidden + "[global]\nioengine=null\nsize=1m\n[j]\nrw=read\n")
    shown = subprocess.run(["fio", "--showcmd", str(path)], capture_output=True, text=True, timeout=60)
    assert "--name=hidden" in shown.stdout, shown.stdout + shown.stderr      # the attack is real
    with pytest.raises(UserError) as err:
        load_job(str(path))
    assert str(err.value).startswith(f"{path}:1: line of 8199 characters") and "\n" not in str(err.value)


# A storprof container's limits as Docker holds them: tests/integration/test_job_sandbox.py, in the
# container test there (one daemon for both checks).
