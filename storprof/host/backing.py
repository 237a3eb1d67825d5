"""The filesystem a data root (and its host baseline) lives on.

Either a plain directory on the work directory's own filesystem, or a sparse image
file formatted with mkfs, attached to a loop device with direct I/O and mounted.
Every step setup() takes is recorded, so teardown() (idempotent, safe after a partial
setup or a crash) removes exactly what was made and nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from storprof.engine.drivers import FILESYSTEMS
from storprof.errors import EnvironmentProblem, StorprofError, UserError
from storprof.host import proc, safepath
from storprof.host.mounts import host_fs_type, mount_from_mountinfo, mount_of, parse_mountinfo, read_mountinfo

log = logging.getLogger(__name__)

# Filesystems a data root may sit on: real, local, block-backed.
DISK_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs",
                              "reiserfs", "bcachefs", "nilfs2"})
_WHY_NOT = {
    "tmpfs": "tmpfs lives in memory", "ramfs": "ramfs lives in memory",
    "devtmpfs": "devtmpfs lives in memory", "overlay": "it is an overlay (a container's own layers?)",
    "aufs": "it is an aufs union (a container's own layers?)", "nfs": "it is a network filesystem",
    "nfs4": "it is a network filesystem", "cifs": "it is a network filesystem",
    "smb3": "it is a network filesystem", "9p": "it is a 9p share, not a local disk",
    "virtiofs": "it is a virtiofs share, not a local disk", "squashfs": "squashfs is read-only",
}


def _gib(n: int | float) -> str:
    return f"{n / 2**30:.2f} GiB"


def require_free_space(path: Path, needed: int, purpose: str) -> None:
    """Refuse, with the numbers, before making something that will not fit."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    if free < needed:
        raise EnvironmentProblem(f"not enough space in {path} for {purpose}: needs {_gib(needed)}, "
                                 f"free {_gib(free)}")


def make_workdir(path: Path, on_disk: bool = True) -> tuple[Path, bool]:
    """The work directory (absolute), made 0700 if missing, after checking where it would be made:
    every component of it that exists must be root's (or the invoking user's) and writable by
    nobody else (safepath), and, `on_disk`, the nearest existing one on a real disk filesystem.
    Returns (path, whether it was made here); UserError on one line otherwise."""
    path = safepath.require_safe(path, "work directory")
    existing = next(p for p in (path, *path.parents) if os.path.lexists(p))
    if not existing.is_dir():
        raise UserError(f"cannot make the work directory {path}: {existing} is not a directory")
    if on_disk:
        check_workdir(existing, what=f"work directory {path}" if existing != path else "")
    if existing == path:
        return path, False
    return safepath.make_private_dir(path, "work directory"), True


BENCH_WORKDIR = Path("/var/lib/storprof/bench")   # root's own, beside the default work directory


@contextlib.contextmanager
def bench_workdir(path: Path) -> Iterator[Path]:
    """A benchmark's work directory: made if missing, checked, and removed again if left empty."""
    path = safepath.make_private_dir(path, "benchmark work directory")
    try:
        check_workdir(path)
        yield path
    finally:
        try:
            path.rmdir()
        except OSError:
            pass


def check_workdir(path: Path, what: str = "") -> None:
    """UserError unless `path` is an existing, writable directory on a real disk filesystem."""
    path = Path(path)
    what = what or f"work directory {path}"
    if not path.exists():
        raise UserError(f"{what} does not exist")
    if not path.is_dir():
        raise UserError(f"{what} is not a directory")
    fs = host_fs_type(path)
    if fs not in DISK_FILESYSTEMS:
        why = _WHY_NOT.get(fs) or ("it is a FUSE filesystem" if fs.startswith("fuse")
                                   else "it is not a local disk filesystem")
        raise UserError(f"{what} is on {fs}: {why}; storprof must measure a real "
                        f"disk, choose a directory on one of: {', '.join(sorted(DISK_FILESYSTEMS))}")
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UserError(f"{what} is not writable: {exc.strerror or exc}") from None


def _loop_dio(device: str) -> bool | None:
    """The loop device's direct-I/O flag from sysfs (None if unreadable)."""
    try:
        text = Path(f"/sys/block/{os.path.basename(device)}/loop/dio").read_text().strip()
    except OSError:
        return None
    return text == "1"


class BackingFS:
    """A directory on filesystem `fs` under `workdir`: plain if the workdir already has
    that filesystem, else a loop-mounted image `workdir/<name>.img` at `workdir/<name>`."""

    UMOUNT_TRIES = 5

    def __init__(self, fs: str, workdir: Path, name: str, size_bytes: int):
        if not name or "/" in name or name in (".", ".."):
            raise UserError(f"bad backing name {name!r}")
        self.fs = fs
        self.workdir = Path(os.path.abspath(workdir))
        self.name = name
        self.size_bytes = int(size_bytes)
        self.path = self.workdir / name
        self.image = self.workdir / f"{name}.img"
        self.is_loop = host_fs_type(self.workdir) != fs
        self.loop_device: str | None = None
        self.direct_io: bool | None = None
        self.warnings: list[str] = []
        # What setup made, in order: ("dir", path) | ("image", path) | ("loop", device) | ("mount", path)
        self._made: list[tuple[str, str]] = []

    @classmethod
    def adopt(cls, fs: str, workdir: Path, name: str) -> BackingFS:
        """The backing filesystem a killed run made (`storprof clean` computes `name` from the run
        id, state.py), with what of it exists now marked as made, so teardown() removes it."""
        backing = cls(fs, workdir, name, 0)
        if backing.is_loop and os.path.lexists(backing.image):
            backing._made.append(("image", str(backing.image)))
        if os.path.lexists(backing.path) or backing._mounts_under():
            backing._made += [("dir", str(backing.path))] + ([("mount", str(backing.path))] if backing.is_loop else [])
        return backing

    def record(self) -> dict:
        """What state.py writes down before setup()."""
        return {"fs": self.fs, "workdir": str(self.workdir), "name": self.name, "size_bytes": self.size_bytes,
                "is_loop": self.is_loop, "path": str(self.path), "image": str(self.image) if self.is_loop else None}

    def leftover(self) -> list[str]:
        left = [f"mount {p}" for p in self._mounts_under()]
        if self.is_loop:
            left += [f"loop device {d} ({self.image})" for d in self._attached_loops()]
            if os.path.lexists(self.image):
                left.append(f"file {self.image}")
        if os.path.lexists(self.path):
            left.append(f"directory {self.path}")
        return left

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> BackingFS:
        try:
            self.setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def __repr__(self) -> str:
        return f"BackingFS({self.fs!r}, {str(self.path)!r}, loop={self.loop_device})"

    # ------------------------------------------------------------------ setup
    def setup(self) -> BackingFS:
        """Make the directory (and image, loop device, mount). On failure the partial work
        stays recorded; call teardown() (the context manager does) to remove it."""
        if self._made:
            raise StorprofError(f"{self!r} is already set up; tear it down first")
        check_workdir(self.workdir)
        for p in (self.path, self.image) if self.is_loop else (self.path,):
            if os.path.lexists(p):
                raise UserError(f"{p} already exists (left from an earlier run?); remove it first")
        if not self.is_loop:
            self.path.mkdir()
            self._made.append(("dir", str(self.path)))
            return self
        self._check_loop_possible()

        with open(self.image, "xb") as f:               # "x": it is ours only if we made it
            self._made.append(("image", str(self.image)))
            f.truncate(self.size_bytes)
        mkfs = FILESYSTEMS[self.fs].mkfs or ()          # _check_loop_possible refused an fs without one
        proc.run([*mkfs, str(self.image)], timeout=600)
        self._attach_loop()
        self.path.mkdir()
        self._made.append(("dir", str(self.path)))
        self._made.append(("mount", str(self.path)))       # teardown checks mountinfo before unmounting
        proc.run(["mount", "-t", FILESYSTEMS[self.fs].kernel, str(self.loop_device), str(self.path)],
                 timeout=120)
        entry = mount_of(self.path)
        if entry is None or os.path.normpath(entry.mount_point) != str(self.path) \
                or entry.fs_type != FILESYSTEMS[self.fs].kernel:
            raise EnvironmentProblem(f"mounting {self.loop_device} on {self.path} did not give a "
                                     f"{self.fs} mount (found {entry.fs_type if entry else 'none'})")
        return self

    def _check_loop_possible(self) -> None:
        info = FILESYSTEMS.get(self.fs)
        if info is None or info.mkfs is None:
            can = [n for n, i in FILESYSTEMS.items() if i.mkfs]
            why = f" ({info.note})" if info and info.note else ""
            raise UserError(f"storprof cannot create a loop-backed {self.fs}{why}; "
                            f"it can make: {', '.join(can)}")
        if os.geteuid() != 0:
            raise EnvironmentProblem(f"creating a loop-backed {self.fs} needs root")
        if self.size_bytes < max(info.min_size, 1):
            raise UserError(f"a {self.fs} image of {self.size_bytes} bytes is too small; mkfs needs "
                            f"at least {info.min_size} bytes ({_gib(info.min_size)})")
        proc.require(info.mkfs[0])
        proc.require("losetup")
        if not os.path.exists("/dev/loop-control"):
            raise EnvironmentProblem("/dev/loop-control is missing: this kernel has no loop devices")
        require_free_space(self.workdir, self.size_bytes, f"a {self.fs} image")

    def _attach_loop(self) -> None:
        try:
            out = proc.run(["losetup", "--direct-io=on", "-f", "--show", str(self.image)], timeout=60)
        except proc.CommandFailed as exc:
            # Kernel refused direct I/O? Drop anything half-attached, retry without it.
            self._detach_loops_of_image()
            out = proc.run(["losetup", "-f", "--show", str(self.image)], timeout=60)
            self._warn(f"losetup --direct-io=on failed ({exc}); {self.image} is attached "
                       "without direct I/O, so direct-I/O numbers go through the page cache")
        self.loop_device = out.stdout.strip().splitlines()[-1]
        self._made.append(("loop", self.loop_device))
        self.direct_io = _loop_dio(self.loop_device)
        if self.direct_io is not True:
            if self.direct_io is None:
                self.direct_io = False
            self._warn(f"{self.loop_device} does not use direct I/O (sysfs dio != 1); "
                       "direct-I/O numbers on it go through the host page cache")

    # ------------------------------------------------------------------ teardown
    def teardown(self) -> list[str]:
        """Remove what setup made (also after a partial setup; again is a no-op).
        Never raises for a cleanup failure: returns (and logs) warnings instead;
        what could not be removed stays recorded for another try."""
        warnings: list[str] = []
        kinds = {k for k, _ in self._made}
        if not self._made:
            return warnings
        # 1. mounts: ours, and whatever was left mounted beneath our directory
        if "dir" in kinds or "mount" in kinds:
            if not self._unmount_all(warnings):
                # never delete through a mount: that would delete the mounted fs's contents
                return self._finish(warnings)
            self._made = [(k, v) for k, v in self._made if k != "mount"]
        # 2. loop devices: the recorded one and any attached to our image (a crash may
        #    have come between losetup and recording)
        if ("image" in kinds or "loop" in kinds) and self._detach_loops_of_image(warnings):
            self._made = [(k, v) for k, v in self._made if k != "loop"]
            self.loop_device = None
        # 3. files and directories, newest first
        for kind, value in list(reversed(self._made)):
            try:
                if kind == "image":
                    if any(k == "loop" for k, _ in self._made):
                        continue  # still attached; do not leave a deleted-but-attached file
                    Path(value).unlink(missing_ok=True)
                elif kind == "dir":
                    if os.path.lexists(value):
                        if self.is_loop:
                            Path(value).rmdir()
                        else:
                            shutil.rmtree(value)
                else:
                    continue
                self._made.remove((kind, value))
            except OSError as exc:
                warnings.append(f"could not remove {value}: {exc.strerror or exc}")
        return self._finish(warnings)

    def _finish(self, warnings: list[str]) -> list[str]:
        for w in warnings:
            self._warn(w)
        return warnings

    def _warn(self, message: str) -> None:
        log.warning("%s", message)
        self.warnings.append(message)

    def _mounts_under(self) -> list[str]:
        root = str(self.path)
        points = [os.path.normpath(e.mount_point) for e in parse_mountinfo(read_mountinfo())]
        under = [p for p in points if p == root or p.startswith(root + "/")]
        return sorted(set(under), key=len, reverse=True)   # deepest first

    def _unmount_all(self, warnings: list[str]) -> bool:
        """Unmount everything at or below self.path; True when nothing is left mounted."""
        last: Exception | None = None
        for attempt in range(self.UMOUNT_TRIES):
            points = self._mounts_under()
            if not points:
                return True
            for point in points:
                if point != str(self.path) and attempt == 0:
                    warnings.append(f"{point} was still mounted inside {self.path}; unmounting it")
                try:
                    proc.run(["umount", point], timeout=120)
                except StorprofError as exc:
                    last = exc
            if self._mounts_under():
                time.sleep(0.2 * (attempt + 1))
        points = self._mounts_under()
        if not points:
            return True
        for point in points:
            try:
                proc.run(["umount", "-l", point], timeout=120)
                warnings.append(f"{point} would not unmount ({last or 'still busy'}); detached it lazily "
                                "(umount -l): it goes away once nothing uses it")
            except StorprofError as exc:
                warnings.append(f"could not unmount {point}: {exc}")
        return not self._mounts_under()

    def _attached_loops(self) -> list[str]:
        if not os.path.exists(self.image):
            # deleted image: losetup -j cannot match it; fall back to the recorded device
            return [v for k, v in self._made if k == "loop" and self._loop_backs_image(v)]
        out = proc.run(["losetup", "-j", str(self.image)], timeout=60, check=False)
        return [line.split(":", 1)[0] for line in out.stdout.splitlines() if ":" in line]

    def _loop_backs_image(self, device: str) -> bool:
        try:
            backing = Path(f"/sys/block/{os.path.basename(device)}/loop/backing_file").read_text()
        except OSError:
            return False
        return backing.strip().removesuffix(" (deleted)") == str(self.image)

    def _detach_loops_of_image(self, warnings: list[str] | None = None) -> bool:
        """Detach every loop device backed by our image; True when none is left."""
        for attempt in range(self.UMOUNT_TRIES * 2):
            devices = self._attached_loops()
            if not devices:
                return True
            for dev in devices:
                proc.run(["losetup", "-d", dev], timeout=60, check=False)
            time.sleep(0.1 * (attempt + 1))
        left = self._attached_loops()
        if left and warnings is not None:
            warnings.append(f"could not detach {', '.join(left)} from {self.image}")
        return not left

    # ------------------------------------------------------------------ metadata
    def describe(self) -> dict:
        text = read_mountinfo()
        entry = mount_from_mountinfo(text, self.path if self.path.exists() else self.workdir)
        return {
            "fs": self.fs,
            "path": str(self.path),
            "is_loop": self.is_loop,
            "image": str(self.image) if self.is_loop else None,
            "loop_device": self.loop_device,
            "direct_io": self.direct_io,
            "size_bytes": self.size_bytes,
            "mount_point": entry.mount_point if entry else None,
            "mount_source": entry.source if entry else None,
            "mount_fs_type": entry.fs_type if entry else None,
            "mount_options": entry.options if entry else None,
            "super_options": entry.super_options if entry else None,
            "warnings": list(self.warnings),
        }


__all__ = ["DISK_FILESYSTEMS", "BackingFS", "check_workdir"]
