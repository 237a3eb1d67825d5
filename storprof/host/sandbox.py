"""Run a program on the host so that it can touch nothing but its test directory.

storprof runs fio as root on the host for the baseline, with a job file a user wrote. The job
file is checked against an allowlist (fiooptions), and this is the second wall: even an option
that slipped through cannot reach outside. bubblewrap (Debian's `bubblewrap`, the sandbox Flatpak
uses) builds the program a root from nothing: an empty tmpfs into which only the program's binary
and the libraries it links are bound read-only, the test directory read-write and the job file
read-only. It runs in new user, PID, IPC, UTS, cgroup and network namespaces, with every
capability dropped, an empty environment (fio expands `${VAR}`), and dies with storprof;
and under limits on its memory, processes and file sizes (limits.py).

An unprivileged user owning the test directory was the other choice: it stops writes elsewhere
but not reads of world-readable files (fio reads a quoted pattern value as a file, already while
parsing), and it needs a user account on the host. With a private mount namespace, nothing
outside the test directory exists for the program at all.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from storprof.host.limits import CEILING, Limits, confined
from storprof.host.proc import Completed, require, run

# Where a read-only input (the job file) appears inside the sandbox.
INPUT_DIR = "/storprof/in"


@functools.cache
def program_files(program: str) -> tuple[tuple[str, str], ...]:
    """(host file, path inside) for a program and every library it links, as the bench image
    has them (image.plan_rootfs); looked up once per process."""
    from storprof.engine.image import plan_rootfs  # here: image imports the docker SDK, not needed otherwise
    return plan_rootfs((program,)).files


def inside_path(program: str) -> str:
    """Where the program itself sits inside the sandbox."""
    host = str(Path(require(program)).resolve())
    return next(inside for h, inside in program_files(program) if h == host)


def bwrap_argv(program: str, args: list[str], writable: list[Path], inputs: dict[str, Path],
               cwd: Path, *, share_net: bool = False, readable: list[Path] | None = None,
               uid: int | None = None, private_tmp: bool = False) -> list[str]:
    """The bubblewrap command that runs `program args` seeing only its files, the `writable`
    directories (at their own paths) and each input file read-only at INPUT_DIR/<name>.
    `share_net` keeps the caller's network namespace (storprof net's servers and clients, in a
    namespace storprof made); `readable` directories are bound read-only; `uid` runs as that user;
    `private_tmp` gives it an empty /tmp of its own (iperf3 keeps its buffers in a file there)."""
    argv = [require("bwrap"), "--unshare-all", *(["--share-net"] if share_net else []), "--die-with-parent",
            "--new-session", "--clearenv", "--cap-drop", "ALL", "--dev", "/dev"]
    if uid is not None:
        argv += ["--uid", str(int(uid)), "--gid", str(int(uid))]
    if private_tmp:
        argv += ["--tmpfs", "/tmp"]
    for directory in readable or []:
        argv += ["--ro-bind", str(directory), str(directory)]
    argv += _binds(program_files(program), writable, inputs)
    argv += ["--chdir", str(cwd), "--", inside_path(program), *args]
    return argv


def _binds(files, writable: list[Path], inputs: dict[str, Path]) -> list[str]:
    """bubblewrap's binds: each (host file, path inside) read-only, the writable directories at
    their own paths, each input read-only at INPUT_DIR/<name>."""
    out: list[str] = []
    for host, inside in files:
        out += ["--ro-bind", host, inside]
    for directory in writable:
        out += ["--bind", str(directory), str(directory)]
    for name, path in inputs.items():
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"bad sandbox input name {name!r}")
        out += ["--ro-bind", str(path), f"{INPUT_DIR}/{name}"]
    return out


def files_argv(files: list[tuple[str, str]], argv: list[str], *, writable: list[Path], inputs: dict[str, Path],
               cwd: Path, uid: int, env: dict[str, str], share_net: bool = False) -> list[str]:
    """The bubblewrap command for a program made of several files (a server, its tools, share files
    and modules: `files` as (host file, path inside), an image's RootfsPlan.files): as bwrap_argv,
    with /proc (a server reads its own), `env` set in the emptied environment and run as `uid`."""
    out = [require("bwrap"), "--unshare-all", *(["--share-net"] if share_net else []), "--die-with-parent",
           "--new-session", "--clearenv",
           "--cap-drop", "ALL", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
           "--uid", str(int(uid)), "--gid", str(int(uid))]
    for key, value in env.items():
        out += ["--setenv", key, value]
    return [*out, *_binds(files, writable, inputs), "--chdir", str(cwd), "--", *argv]


def run_sandboxed(program: str, args: list[str], *, writable: list[Path], inputs: dict[str, Path] | None = None,
                  cwd: Path | None = None, timeout: float | None = 600, check: bool = True,
                  limits: Limits = CEILING) -> Completed:
    """Run `program` in the sandbox under `limits` (limits.py; without them, the most any job
    may ask for); the same contract as proc.run (its timeout kills the whole sandbox:
    bubblewrap's child dies with it, and with it every process in its PID namespace)."""
    writable = [Path(os.path.abspath(w)) for w in writable]
    if not writable and cwd is None:
        raise ValueError("a sandboxed program needs a directory to work in")
    argv = bwrap_argv(program, args, writable, inputs or {}, Path(cwd or writable[0]))
    with confined(limits) as (prefix, cgroup):
        return run(prefix + argv, timeout=timeout, check=check, join_cgroup=cgroup)
