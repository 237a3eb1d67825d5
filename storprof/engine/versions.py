"""Docker's version strings, read one way everywhere: one run of `dockerd --version`, one parser,
one short form, so the engine list, the driver checks and meta.json cannot disagree."""

from __future__ import annotations

import re
from dataclasses import dataclass

from storprof.errors import StorprofError
from storprof.host import proc

_AFTER_VERSION = re.compile(r"version\s+v?(\d+)\.(\d+)(?:\.(\d+))?", re.IGNORECASE)
_ANY_RELEASE = re.compile(r"\bv?(\d+)\.(\d+)(?:\.(\d+))?")


def short(version: str) -> str:
    """A release as Docker names it: '20.10.24+dfsg1' -> '20.10.24', '28.5.2-1' -> '28.5.2'."""
    return version.split("+")[0].split("-")[0]


def release(text: str) -> tuple[int, ...] | None:
    """The release a `--version` line names: the number after 'version', else the first dotted one.
    'Docker version 28.5.2+dfsg3, build …' or 'containerd … 2.1.9 …' -> (28, 5, 2) / (2, 1, 9)."""
    m = _AFTER_VERSION.search(text) or _ANY_RELEASE.search(text)
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


@dataclass(frozen=True)
class DockerdVersion:
    """What one dockerd says it is. `line` is kept as printed (meta.json records it); `error`
    says why there is no `release` (the run failed, or printed no version)."""

    line: str | None = None                     # 'Docker version 20.10.24+dfsg1, build 5d6db84'
    release: tuple[int, ...] | None = None      # (20, 10, 24)
    error: str | None = None


def read_dockerd_version(stdout: str, stderr: str = "") -> DockerdVersion:
    """What `dockerd --version` printed, read: its first line and the release in it."""
    lines = (stdout or stderr).strip().splitlines()
    found = release(stdout + stderr)
    return DockerdVersion(line=lines[0] if lines else None, release=found,
                          error=None if found else f"cannot read the dockerd version from {stdout.strip()!r}")


def dockerd_version(dockerd: str = "dockerd") -> DockerdVersion:
    """Run `<dockerd> --version` (a name on PATH or a path) and read it; never raises."""
    try:
        out = proc.run([dockerd, "--version"], timeout=30)
    except (StorprofError, OSError) as exc:     # not installed (attach mode may not need it), or failed
        return DockerdVersion(error=f"dockerd --version failed: {exc}")
    return read_dockerd_version(out.stdout, out.stderr)
