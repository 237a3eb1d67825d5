"""Shared test helpers: where real fio output lives, what 'nothing left behind' means, and strict
mode (what set-up should have provided fails a test instead of skipping it)."""

from __future__ import annotations

import functools
import os
import shutil
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


# --------------------------------------------------------------------------- strict mode

def strict() -> bool:
    """Under CI (CI=true, which CI sets) or STORPROF_STRICT=1, a precondition `storprof setup`
    provides (the engine, a tool, a driver whose kernel part `storprof drivers` finds) fails the
    test when missing: a set-up that provided less than it should cannot pass as a green run."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("STORPROF_STRICT", "") == "1"


def require_or_skip(condition: bool, reason: str, provided_by_setup: bool = True) -> None:
    """In a test or fixture: go on when `condition` holds; else skip, or under strict mode fail
    when set-up should have provided it. A fact of the machine (no device-mapper, not root) passes
    provided_by_setup=False and stays a skip."""
    if condition:
        return
    if provided_by_setup and strict():
        pytest.fail(f"{reason}: storprof setup provides this (strict mode: CI or STORPROF_STRICT=1)", pytrace=False)
    pytest.skip(reason)


def setup_provides(condition: bool, reason: str) -> pytest.MarkDecorator:
    """The marker form of require_or_skip, for pytestmark and decorators (checked as each test starts)."""
    return pytest.mark.setup_provides(condition, reason)


def spec_runs(spec: str) -> pytest.MarkDecorator:
    """The test needs driver spec `spec` to run here: skipped for what set-up cannot change (the
    kernel has no btrfs), failed under strict mode for what it provides (a tool, the engine)."""
    return pytest.mark.spec_runs(spec)


@functools.cache
def _spec_blockers(spec: str) -> tuple[list[str], list[str]]:
    from storprof.host.setup import blockers
    return blockers(spec)


def require_spec(spec: str) -> None:
    now, after_setup = _spec_blockers(spec)
    require_or_skip(not now, f"{spec} cannot run here: {'; '.join(now)}", provided_by_setup=not after_setup)


def pytest_configure(config):
    config.addinivalue_line("markers", "setup_provides(condition, reason): a precondition storprof setup provides")
    config.addinivalue_line("markers", "spec_runs(spec): the test needs this driver spec to run here")


def pytest_runtest_setup(item):
    """Before the test's fixtures (after skipif marks: a test that needs root still skips without it)."""
    for mark in item.iter_markers("setup_provides"):
        require_or_skip(*mark.args)
    for mark in item.iter_markers("spec_runs"):
        require_spec(*mark.args)


NOBODY = 65534     # the attacker of the attack tests (tests/integration/test_state.py and others)


@pytest.fixture
def attack_dirs():
    """A directory every user can reach (as /home is), holding one the user `nobody` owns, and a
    root-only (0700) canary directory; each test plants and checks its own files in them."""
    base = Path(tempfile.mkdtemp(prefix="storprof-attack-", dir="/var/lib"))
    os.chmod(base, 0o755)
    evil = base / "nobody"
    evil.mkdir()
    os.chown(evil, NOBODY, NOBODY)
    canary = base / "canary"
    canary.mkdir(mode=0o700)
    yield base, evil, canary
    shutil.rmtree(base, ignore_errors=True)
