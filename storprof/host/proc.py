"""The one subprocess wrapper: argv lists only (no shell), timeouts, process-group kill."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass

from storprof.errors import MissingTool, StorprofError
from storprof.host.tools import PACKAGES  # the one map of tools to their packages (tools.py)


class CommandFailed(StorprofError):
    """A command exited non-zero; keeps argv, returncode and the tail of stderr."""

    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = (stderr or stdout).strip().splitlines()[-3:]
        super().__init__(f"{argv[0]} exited {returncode}: {' / '.join(tail) or 'no output'}")


class CommandTimeout(StorprofError):
    def __init__(self, argv: list[str], timeout: float):
        self.argv = list(argv)
        super().__init__(f"{argv[0]} did not finish within {timeout:g}s")


def require(tool: str) -> str:
    """Full path of an installed tool, or MissingTool naming the package that provides it."""
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if not path:
        raise MissingTool(tool, PACKAGES.get(tool, tool))
    return path


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def run(argv: list[str], *, timeout: float | None = 600, check: bool = True,
        input: str | None = None, env: dict | None = None, cwd: str | os.PathLike | None = None,
        join_cgroup: str | os.PathLike | None = None) -> Completed:
    """Run argv in its own process group; on timeout or Ctrl-C kill the whole group.
    `join_cgroup` is a cgroup.procs file the child enters before it execs (limits.confined)."""
    argv = [str(a) for a in argv]
    argv[0] = require(argv[0]) if os.sep not in argv[0] else argv[0]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env, cwd=cwd,
                            preexec_fn=None if join_cgroup is None else _joiner(str(join_cgroup)))
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise CommandTimeout(argv, timeout or 0) from None
    except BaseException:
        _kill_group(proc)
        raise
    result = Completed(argv, proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, out, err)
    return result


def _joiner(procs_file: str):
    """What the child runs before exec: move itself into the cgroup, so that everything it
    starts is counted there from the first fork on (a failure aborts the start)."""
    def join() -> None:
        fd = os.open(procs_file, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
    return join


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
