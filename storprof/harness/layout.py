"""Where a run's things live: every path and name a run makes, computed from its work directory and
run id in this one place.

The sessions build their backing filesystems, data roots, runtime directories and namespaces from
here, and `storprof clean` computes the same paths again from the run id and the work directory it
was given. A path read from an ownership record is only ever compared with the one computed here,
never used, so a record cannot point clean anywhere else.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

# Sockets, pidfiles and exec roots of ephemeral daemons: short paths (unix socket paths are limited
# to 108 bytes, and containerd nests its own sockets under the exec root), in root's /run.
RUNTIME_ROOT = Path("/run/storprof")
STATE_DIR = ".storprof-state"

RUN_ID = re.compile(r"[0-9a-f]{10}")
# A driver spec in names (DriverSpec.slug): driver-fs[-engine][-switches].
SLUG = re.compile(r"[a-z0-9][a-z0-9.-]{0,80}")
# A network namespace's role in storprof net, and the index of an engine or spec in its run.
ROLE = re.compile(r"[a-z]{1,12}")
MAX_INDEX = 999


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


class LayoutError(ValueError):
    """A name or number that storprof would never have made."""


def _check(pattern: re.Pattern, value: object, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise LayoutError(f"not a {what} storprof makes: {str(value)[:80]!r}")
    return value


def check_index(value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_INDEX:
        raise LayoutError(f"not an index storprof makes: {str(value)[:20]!r}")
    return value


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run below `workdir` (absolute, already checked by the caller) and
    RUNTIME_ROOT."""

    workdir: Path
    run_id: str
    runtime_root: Path = RUNTIME_ROOT

    def __post_init__(self) -> None:
        _check(RUN_ID, self.run_id, "run id")
        if not self.workdir.is_absolute():
            raise LayoutError(f"the work directory must be absolute: {self.workdir}")

    @property
    def state_dir(self) -> Path:
        return self.workdir / STATE_DIR

    @property
    def state_file(self) -> Path:
        return self.state_dir / f"{self.run_id}.jsonl"

    @property
    def run_dir(self) -> Path:
        """Scratch of the whole run (rendered job files, scripts)."""
        return self.workdir / self.run_id

    # -- a storage spec: its backing filesystem, the daemon's data root and runtime directory
    def backing_name(self, slug: str) -> str:
        return f"{self.run_id}-{_check(SLUG, slug, 'spec name')}"

    def backing_path(self, slug: str) -> Path:
        return self.workdir / self.backing_name(slug)

    def backing_image(self, slug: str) -> Path:
        return self.workdir / f"{self.backing_name(slug)}.img"

    def data_root(self, slug: str) -> Path:
        return self.backing_path(slug) / "docker"

    def runtime_dir(self, index: int) -> Path:
        return self.runtime_root / f"{self.run_id}-{check_index(index)}"

    # -- storprof net: one namespace, daemon and scratch directory per role and engine
    def net_name(self, role: str, index: int) -> str:
        return f"{_check(ROLE, role, 'namespace role')}{check_index(index)}"

    def net_root(self, role: str, index: int) -> Path:
        return self.workdir / f"{self.run_id}-net-{self.net_name(role, index)}"

    def net_runtime_dir(self, role: str, index: int) -> Path:
        return self.runtime_root / f"{self.run_id}-net-{self.net_name(role, index)}"

    def netns(self, role: str, index: int) -> str:
        return f"storprof-{self.run_id}-{self.net_name(role, index)}"

    # -- attach mode: the baseline's directory under the attached daemon's own data root
    def attached_work(self, daemon_root: str) -> str:
        if not daemon_root.startswith("/") or "\n" in daemon_root or "/.." in daemon_root:
            raise LayoutError(f"not a data root: {daemon_root[:80]!r}")
        return f"{daemon_root.rstrip('/')}/storprof-{self.run_id}"
