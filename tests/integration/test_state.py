"""A local user against root's storprof (needs root): work directories and ownership records another
user planted are refused with one line, and canary files, processes and mounts survive `storprof
clean`. The planting is done as `nobody`, through setpriv, as an attacker would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from storprof.harness.layout import RunLayout
from storprof.harness.ownership import FORMAT
from tests.conftest import NOBODY

pytestmark = [pytest.mark.integration, pytest.mark.skipif(os.geteuid() != 0, reason="root against a local user")]

DEAD = "dead00beef"


def storprof(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storprof.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv],
                          capture_output=True, text=True, timeout=60, check=True)


def one_line_refusal(done: subprocess.CompletedProcess, fragment: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and lines and lines[-1].startswith("storprof: "), done.stderr
    assert "Traceback" not in done.stderr and fragment in done.stderr, done.stderr


@pytest.fixture
def shared(attack_dirs):
    """attack_dirs with a file in the canary."""
    base, evil, canary = attack_dirs
    (canary / "secret").write_text("root's\n")
    return base, evil, canary


def canary_intact(canary: Path) -> None:
    assert (canary / "secret").read_text() == "root's\n" and (canary.stat().st_mode & 0o777) == 0o700


@pytest.mark.parametrize("command", [["sweep", "--drivers", "vfs"], ["layers", "--drivers", "vfs"], ["net"],
                                     ["clean"]])
def test_a_work_directory_another_user_owns_is_refused_before_anything_is_made(shared, command):
    base, evil, canary = shared
    as_nobody("mkdir", str(evil / "w"))
    done = storprof(*command, "--workdir", str(evil / "w"), "--out", str(base / "out")) if command[0] != "clean" \
        else storprof(*command, "--workdir", str(evil / "w"))
    one_line_refusal(done, f"{evil} is owned by uid {NOBODY}, not by root or you")
    assert os.listdir(evil / "w") == [] and not (base / "out").exists()
    canary_intact(canary)


def test_a_symlink_another_user_made_is_refused_even_to_a_root_directory(shared):
    base, evil, canary = shared
    as_nobody("ln", "-s", str(canary), str(evil / "link"))
    done = storprof("sweep", "--drivers", "vfs", "--workdir", str(evil / "link" / "w"), "--out", str(base / "out"))
    one_line_refusal(done, "is owned by uid 65534")
    assert not (canary / "w").exists()
    canary_intact(canary)


def test_a_work_directory_planted_in_a_world_writable_place_is_refused(shared):
    base, evil, canary = shared
    target = Path(tempfile.mkdtemp(prefix="storprof-planted-", dir="/var/tmp"))
    try:
        os.chown(target, NOBODY, NOBODY)
        as_nobody("mkdir", str(target / ".storprof-state"))
        done = storprof("sweep", "--drivers", "vfs", "--workdir", str(target), "--out", str(base / "out"))
        one_line_refusal(done, "/var/tmp is writable by others (mode 1777)")
        assert os.listdir(target) == [".storprof-state"]
    finally:
        shutil.rmtree(target)


def test_clean_of_a_directory_nobody_owns_reads_nothing_they_planted(shared):
    base, evil, canary = shared
    record = "\n".join(json.dumps(r) for r in (
        {"kind": "run", "run_id": "", "format": FORMAT, "pid": 999999999, "start_ticks": 1},
        {"kind": "dir", "run_id": "", "what": "run", "path": str(canary)},
        {"kind": "overlay", "run_id": "", "root": str(canary), "before": {"secret": "cron line"}})) + "\n"
    as_nobody("mkdir", "-m", "0700", str(evil / ".storprof-state"))
    as_nobody("sh", "-c", f"printf '%s' '{record}' > {evil / '.storprof-state' / 'x.jsonl'}")
    one_line_refusal(storprof("clean", "--workdir", str(evil)), f"is owned by uid {NOBODY}")
    canary_intact(canary)


@pytest.fixture
def dead_run(tmp_path):
    """A work directory of root's with a dead run's ownership record and its real, computed paths."""
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o700)
    layout = RunLayout(workdir, DEAD)
    state_dir = layout.state_dir
    state_dir.mkdir(mode=0o700)
    return workdir, layout


def _plant(layout: RunLayout, records: list[dict]) -> None:
    head = {"kind": "run", "run_id": DEAD, "format": FORMAT, "pid": 999999999, "start_ticks": 1}
    layout.state_file.write_text("".join(json.dumps(r) + "\n" for r in [head, *records]))
    os.chmod(layout.state_file, 0o600)


def test_clean_kills_only_root_processes_that_name_the_computed_exec_root_as_an_argument(dead_run, tmp_path):
    workdir, layout = dead_run
    exec_root = layout.runtime_dir(0) / "exec"
    exec_root.mkdir(parents=True, mode=0o700)
    idle = [sys.executable, "-c", "import time; time.sleep(600)"]
    users = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                              *idle, f"--exec-root={exec_root}"])
    substring = subprocess.Popen([*idle, f"x{exec_root}", f"--exec-root={exec_root}-not"])
    ours = subprocess.Popen([*idle, f"--exec-root={exec_root}"])
    time.sleep(0.5)
    try:
        _plant(layout, [{"kind": "daemon", "run_id": DEAD, "slug": "vfs-ext4", "index": 0,
                         "data_root": str(layout.data_root("vfs-ext4")), "runtime_dir": str(layout.runtime_dir(0))}])
        done = storprof("clean", "--workdir", str(workdir))
        assert done.returncode == 0, done.stderr
        time.sleep(0.5)
        assert users.poll() is None, "another user's process that names the exec root is theirs"
        assert substring.poll() is None, "a process naming the path only inside another argument is not ours"
        assert ours.poll() is not None, "a root process with the exact --exec-root element is the daemon's"
        assert not layout.runtime_dir(0).exists()
    finally:
        for p in (users, substring, ours):
            p.kill()
            p.wait()


def test_clean_unmounts_only_below_the_run_s_computed_directories(dead_run, tmp_path):
    workdir, layout = dead_run
    canary = tmp_path / "canary-mount"
    canary.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(canary)], check=True)
    ours = layout.run_dir / "m"
    ours.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(ours)], check=True)
    try:
        _plant(layout, [{"kind": "dir", "run_id": DEAD, "what": "run", "path": str(layout.run_dir)},
                        {"kind": "daemon", "run_id": DEAD, "slug": "vfs-ext4", "index": 1, "data_root": str(canary)},
                        {"kind": "backing", "run_id": DEAD, "slug": "vfs-ext4", "fs": "ext4", "path": str(canary)}])
        done = storprof("clean", "--workdir", str(workdir))
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and sum("refused a" in ln for ln in lines) == 2, done.stderr
        assert all(ln.startswith(("storprof: ", f"{DEAD}: ")) for ln in lines), done.stderr
        assert os.path.ismount(canary) and not layout.run_dir.exists()
    finally:
        subprocess.run(["umount", str(canary)], check=False)
        if os.path.ismount(ours):
            subprocess.run(["umount", str(ours)], check=False)
