"""What is mounted where, read from /proc/self/mountinfo, and unmounting what storprof made."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from storprof.host.proc import CommandFailed, run


@dataclass(frozen=True)
class MountEntry:
    mount_point: str
    fs_type: str
    source: str
    options: str          # per-mount options (rw,relatime,...)
    super_options: str    # filesystem options


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field_: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field_)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Entries of a /proc/<pid>/mountinfo text, in file order."""
    entries = []
    for line in text.splitlines():
        parts = line.split()
        if "-" not in parts[6:]:
            continue
        sep = parts.index("-", 6)
        if len(parts) < sep + 3:
            continue
        entries.append(MountEntry(
            mount_point=_unescape(parts[4]), fs_type=parts[sep + 1],
            source=_unescape(parts[sep + 2]), options=parts[5],
            super_options=parts[sep + 3] if len(parts) > sep + 3 else ""))
    return entries


def _under(path: str, mount_point: str) -> bool:
    if mount_point == "/":
        return path.startswith("/")
    return path == mount_point or path.startswith(mount_point.rstrip("/") + "/")


def mount_from_mountinfo(text: str, path: str | os.PathLike) -> MountEntry | None:
    """The mount holding `path` (absolute, already resolved): longest mount point prefix;
    of several mounts on the same point the last one (on top) wins."""
    path = os.path.normpath(str(path))
    best: MountEntry | None = None
    for entry in parse_mountinfo(text):
        if _under(path, entry.mount_point) and (best is None or len(entry.mount_point) >= len(best.mount_point)):
            best = entry
    return best


def fs_type_from_mountinfo(text: str, path: str | os.PathLike) -> str:
    entry = mount_from_mountinfo(text, path)
    if entry is None:
        raise ValueError(f"no mount holds {path}")
    return entry.fs_type


def _existing(path: Path) -> Path:
    """The deepest part of `path` that exists and this user can see (a non-root user cannot stat
    below root's 0700 /var/lib/storprof: the filesystem is that of the part above)."""
    path = Path(os.path.abspath(path))
    while not os.path.exists(path) and path != path.parent:
        path = path.parent
    return path.resolve()


def read_mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text()


def mount_of(path: Path) -> MountEntry | None:
    """The live mount holding `path` (or its nearest existing ancestor)."""
    return mount_from_mountinfo(read_mountinfo(), _existing(path))


def host_fs_type(path: Path) -> str:
    """Filesystem type ("ext4", "tmpfs", "overlay", ...) of the mount holding `path`."""
    return fs_type_from_mountinfo(read_mountinfo(), _existing(path))


def mounts_below(path: Path) -> list[MountEntry]:
    """Mounts at or under `path`, deepest first (the order they must be unmounted in)."""
    root = str(Path(path).resolve()).rstrip("/")
    found = [m for m in parse_mountinfo(read_mountinfo())
             if m.mount_point == root or m.mount_point.startswith(root + "/")]
    return sorted(found, key=lambda m: m.mount_point.count("/"), reverse=True)


def unmount(mount_point: str, attempts: int = 5) -> str | None:
    """Unmount, retrying while busy; lazy unmount only as the last resort. Returns a warning."""
    for i in range(attempts):
        try:
            run(["umount", mount_point], timeout=60)
            return None
        except CommandFailed as e:
            if "not mounted" in e.stderr or "no mount point" in e.stderr:
                return None
            time.sleep(0.2 * (i + 1))
    run(["umount", "-l", mount_point], timeout=60, check=False)
    return f"{mount_point} was busy; detached it lazily (umount -l)"


def unmount_below(path: Path) -> list[str]:
    """Unmount everything at or under `path`; returns warnings for lazy unmounts."""
    warnings = []
    for m in mounts_below(path):
        w = unmount(m.mount_point)
        if w:
            warnings.append(w)
    return warnings
