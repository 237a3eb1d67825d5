"""The settings union costs depend on, read at the start of a session, and overlay's parameters
set for one session when a spec asks for them.

Whether renaming a lower-layer directory copies it up depends on overlay's `redirect_dir`, whether
a chown copies a whole file on `metacopy`, and whether `docker commit` diffs natively on both
(the daemon says `Native Overlay Diff`). These are overlay module parameters: the defaults for
overlay mounts made while they are set. Neither Docker's overlay2 (options: size,
override_kernel_check) nor dockerd's own containerd passes mount options, so a spec such as
`overlay2@ext4+redirect_dir` sets the parameter before its daemon starts and puts the old value
back when the session ends (and `storprof clean` does after a kill). It is the one host-wide
setting storprof changes: overlay mounts other programs make meanwhile get it too, which is why it
is opt-in and recorded in the run's ownership record.
"""

from __future__ import annotations

import os
from pathlib import Path

from storprof.errors import UserError
from storprof.host.mounts import mount_of

OVERLAY_PARAMS = Path("/sys/module/overlay/parameters")
# The parameters a spec may switch on, and the kernel's word for on.
SWITCHABLE = ("redirect_dir", "metacopy", "index", "xino_auto")
# The values a switchable parameter is put back to: the kernel's own words for its booleans.
VALUES = ("Y", "N")
RECORDED = ("redirect_dir", "redirect_always_follow", "metacopy", "index", "xino_auto", "nfs_export")


def overlay_params(root: Path = OVERLAY_PARAMS) -> dict[str, str]:
    """overlay's module parameters that change what union operations cost (empty: no overlay module)."""
    out = {}
    for name in RECORDED:
        try:
            out[name] = (root / name).read_text().strip()
        except OSError:
            continue
    return out


def driver_status(info: dict) -> dict[str, str]:
    """The daemon's DriverStatus pairs (`docker info`), e.g. Native Overlay Diff: true."""
    return {str(k): str(v) for k, v in (info.get("DriverStatus") or []) if k}


def backing_mount_options(path: str | Path) -> str:
    """The mount and filesystem options of the filesystem holding `path`."""
    entry = mount_of(Path(path))
    if entry is None:
        return ""
    return ",".join(o for o in (entry.options, entry.super_options) if o)


def parse_switches(text: str) -> tuple[str, ...]:
    """`redirect_dir+metacopy` -> ('metacopy', 'redirect_dir'): what a spec's '+' part switches on."""
    names = tuple(sorted({n.strip() for n in text.split("+") if n.strip()}))
    bad = [n for n in names if n not in SWITCHABLE]
    if bad or not names:
        raise UserError(f"after '+' a spec names overlay parameters to switch on: {', '.join(SWITCHABLE)} "
                        f"(got {'+'.join(bad) or 'nothing'!r})")
    return names


class OverlayParams:
    """overlay module parameters switched on for one session, put back by restore()."""

    def __init__(self, names: tuple[str, ...], root: Path = OVERLAY_PARAMS):
        self.names = names
        self.root = root
        self.before: dict[str, str] = {}

    def record(self) -> dict:
        """What the ownership record keeps: enough for clean to put the values back (in the
        kernel's own directory: clean never takes a directory from a record)."""
        return {"before": self.before, "set": dict.fromkeys(self.names, "Y")}

    def read_before(self) -> None:
        for name in self.names:
            path = self.root / name
            if not path.exists():
                raise UserError(f"this kernel's overlay module has no parameter {name} ({path})")
            value = path.read_text().strip()
            if value not in VALUES:
                raise UserError(f"overlay's {name} is {value!r} here, not Y or N: storprof cannot put it back")
            self.before[name] = value

    def apply(self) -> None:
        for name in self.names:
            _write(self.root / name, "Y")

    def restore(self) -> None:
        put_back(self.record(), self.root)


def _write(path: Path, value: str) -> None:
    """A parameter's new value, never through a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.write(fd, f"{value}\n".encode())
    finally:
        os.close(fd)


def _still_changed(record: dict, root: Path):
    """(path, name, value before, value now) of each parameter a session set that still holds the
    value it set (a value someone changed since is theirs), of the ones a spec may switch."""
    for name, old in (record.get("before") or {}).items():
        if name not in SWITCHABLE or old not in VALUES:
            continue
        try:
            now = (root / name).read_text().strip()
        except OSError:
            continue
        if now != old and now == record.get("set", {}).get(name, "Y"):
            yield root / name, name, old, now


def put_back(record: dict, root: Path = OVERLAY_PARAMS) -> list[str]:
    """Write back each value a session changed and nobody changed since; returns what it put back."""
    done = []
    for path, name, old, _ in _still_changed(record, root):
        try:
            _write(path, old)
            done.append(f"overlay {name}={old}")
        except OSError:
            continue
    return done


def still_set(record: dict, root: Path = OVERLAY_PARAMS) -> list[str]:
    """The parameters a session set that still hold its value instead of the one before."""
    return [f"overlay parameter {name}={now} (was {old})" for _, name, old, now in _still_changed(record, root)]
