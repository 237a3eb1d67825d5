"""Shared test helpers: where real fio output lives, and what 'nothing left behind' means."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

# storprof refuses to work below a directory another user can write (safepath.py), and /tmp is one
# (mode 1777). Every temporary directory of the tests (pytest's tmp_path, tempfile.mkdtemp) is made
# below a directory of root's own instead, as a user's --workdir and --out would be.
PRIVATE_TMP = Path("/var/lib/storprof-tests")
if os.geteuid() == 0:
    PRIVATE_TMP.mkdir(mode=0o700, exist_ok=True)
    os.chmod(PRIVATE_TMP, 0o700)
    os.environ["TMPDIR"] = str(PRIVATE_TMP)      # for the storprof processes the tests start, too
    tempfile.tempdir = str(PRIVATE_TMP)


def storprof_leftovers(marker: str) -> list[str]:
    """Mounts, loop devices and processes that mention `marker` (a run id or work directory)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if marker in line:
            found.append(f"mount: {line}")
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    found += [f"loop: {ln}" for ln in loops.splitlines() if marker in ln]
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and "pytest" not in cmd:
            found.append(f"process {pid}: {cmd}")
    return found


def needs_root():
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start dockerd and mount")


def sigint_default() -> None:
    """preexec_fn for a child the test will Ctrl-C: a shell without job control starts background
    commands with SIGINT ignored, and an ignored signal stays ignored across exec (POSIX), so a test
    run from such a script would otherwise send SIGINT into nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
