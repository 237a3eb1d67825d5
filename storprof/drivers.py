"""Docker storage drivers: the catalogue, `driver@fs` specs, and what this host can run.

A DriverSpec names a storage driver and the filesystem its --data-root lives on. When
the filesystem differs from the work directory's own, storprof makes it on a loop
device (see backing.py); the catalogue below says which pairings Docker supports.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import proc
from .errors import MissingTool, UserError
from .mounts import host_fs_type

HOST = "host"  # DriverInfo.natural_fs value: "whatever filesystem the host (work dir) has"


@dataclass(frozen=True)
class FsInfo:
    """A filesystem storprof can put a data root on."""

    name: str
    kernel: str                     # name in /proc/filesystems
    mkfs: tuple[str, ...] | None    # argv prefix (device appended); None: storprof cannot make one
    package: str | None             # Debian package providing the mkfs tool
    min_size: int = 0               # smallest image mkfs accepts, bytes
    note: str = ""


FILESYSTEMS: dict[str, FsInfo] = {
    "ext4": FsInfo("ext4", "ext4", ("mkfs.ext4", "-q", "-F"), "e2fsprogs", 0),
    "xfs": FsInfo("xfs", "xfs", ("mkfs.xfs", "-q", "-f", "-n", "ftype=1"), "xfsprogs",
                  300 * 1024 * 1024, "ftype=1 is required by overlay2"),
    "btrfs": FsInfo("btrfs", "btrfs", ("mkfs.btrfs", "-q", "-f"), "btrfs-progs", 114294784),
    "zfs": FsInfo("zfs", "zfs", None, "zfsutils-linux", 0,
                  "needs an existing zpool; storprof does not create pools"),
}


@dataclass(frozen=True)
class DriverInfo:
    name: str
    filesystems: frozenset[str]     # backing filesystems Docker supports for this driver
    natural_fs: str                 # HOST or a filesystem name: what a bare `driver` means
    honours_direct_io: bool         # False: O_DIRECT is accepted but the page cache answers
    kernel: str | None              # kernel filesystem/feature needed ("device-mapper", "overlay", ...)
    tools: tuple[str, ...]          # binaries dockerd needs besides itself
    note: str
    removed_in: int | None = None   # first Docker major version without this driver


_ANY = frozenset({"ext4", "xfs", "btrfs", "zfs"})

DRIVERS: dict[str, DriverInfo] = {
    "overlay2": DriverInfo(
        "overlay2", frozenset({"ext4", "xfs"}), HOST, True, "overlay", (),
        "kernel overlayfs; Docker supports it on ext4 and on xfs with ftype=1"),
    "btrfs": DriverInfo(
        "btrfs", frozenset({"btrfs"}), "btrfs", True, "btrfs", (),
        "btrfs subvolumes and snapshots; the data root must be on btrfs"),
    "vfs": DriverInfo(
        "vfs", _ANY, HOST, True, None, (),
        "no copy-on-write: every layer and container is a full copy; slow to create"),
    "fuse-overlayfs": DriverInfo(
        "fuse-overlayfs", _ANY, HOST, False, "fuse", ("fuse-overlayfs",),
        "overlay in user space via FUSE; accepts O_DIRECT but the page cache answers"),
    "devicemapper": DriverInfo(
        "devicemapper", frozenset({"ext4", "xfs"}), HOST, False, "device-mapper", (),
        "thin-provisioned block devices; default loop-lvm uses loop files without direct I/O;"
        " removed in Docker 25", removed_in=25),
    "zfs": DriverInfo(
        "zfs", frozenset({"zfs"}), "zfs", False, "zfs", ("zfs",),
        "ZFS datasets and clones; OpenZFS before 2.3 serves O_DIRECT through the ARC", ),
    "aufs": DriverInfo(
        "aufs", frozenset({"ext4", "xfs"}), HOST, True, "aufs", (),
        "out-of-tree union filesystem; removed in Docker 24", removed_in=24),
}

# Packages for tools proc.PACKAGES does not know.
_EXTRA_PACKAGES = {"zfs": "zfsutils-linux"}


def _package(tool: str) -> str:
    return proc.PACKAGES.get(tool) or _EXTRA_PACKAGES.get(tool, tool)


# --------------------------------------------------------------------------- storage options

# The --storage-opt keys storprof passes to an ephemeral dockerd, with the values each takes
# (moby's graphdrivers): an allowlist, since dockerd runs as root with whatever it is given.
_SIZE_VALUE = r"\d{1,12}(?:\.\d{1,6})?[kKmMgGtT]?[iI]?[bB]?"
STORAGE_OPTS = {
    "overlay2.size": _SIZE_VALUE,
    "overlay2.override_kernel_check": r"true|false|1|0",
    "btrfs.min_space": _SIZE_VALUE,
    "vfs.size": _SIZE_VALUE,
    "zfs.fsname": r"[A-Za-z0-9][A-Za-z0-9_./-]{0,200}",
}


def check_storage_opt(text: str) -> str:
    """`driver.key=value` if the key is one storprof passes and the value of its form, else UserError."""
    key, eq, value = text.partition("=")
    if not eq or key not in STORAGE_OPTS:
        raise UserError(f"--storage-opt {text!r}: storprof passes only {', '.join(f'{k}=...' for k in STORAGE_OPTS)}")
    if not re.fullmatch(STORAGE_OPTS[key], value):
        raise UserError(f"--storage-opt {text!r}: not a value {key} takes")
    return text


# --------------------------------------------------------------------------- specs

@dataclass(frozen=True, order=True)
class DriverSpec:
    driver: str
    fs: str

    def __str__(self) -> str:
        return f"{self.driver}@{self.fs}"

    @property
    def info(self) -> DriverInfo:
        return DRIVERS[self.driver]

    @classmethod
    def parse(cls, text: str, host_fs: str) -> DriverSpec:
        """`driver@fs` or bare `driver` (its natural filesystem); UserError if unusable."""
        raw = text
        text = text.strip().lower()
        driver, sep, fs = text.partition("@")
        driver, fs = driver.strip(), fs.strip()
        if driver not in DRIVERS:
            raise UserError(f"unknown storage driver {driver or raw!r}; "
                            f"choose from: {', '.join(DRIVERS)}")
        info = DRIVERS[driver]
        if sep and not fs:
            raise UserError(f"{raw!r} has no filesystem after '@'; "
                            f"{driver} can use: {', '.join(sorted(info.filesystems))}")
        if not sep:
            fs = host_fs if info.natural_fs == HOST else info.natural_fs
            if fs not in info.filesystems:
                raise UserError(
                    f"{driver} cannot use the host filesystem {fs!r}; write {driver}@FS "
                    f"with FS one of: {', '.join(sorted(info.filesystems))}")
        if fs not in FILESYSTEMS:
            raise UserError(f"unknown filesystem {fs!r} in {raw!r}; "
                            f"choose from: {', '.join(FILESYSTEMS)}")
        if fs not in info.filesystems:
            raise UserError(f"{driver} does not work on {fs}; "
                            f"{driver} can use: {', '.join(sorted(info.filesystems))}")
        return cls(driver, fs)


def default_specs(host_fs: str) -> list[DriverSpec]:
    """The default sweep: every driver on its natural filesystem, plus overlay2 on xfs.

    A host filesystem a driver cannot use (say overlay2 on a btrfs host) is replaced
    by a loop-backed ext4, so every spec returned is one DriverSpec.parse would accept.
    """
    out: list[DriverSpec] = []
    wanted = [("overlay2", HOST), ("overlay2", "xfs"), ("btrfs", "btrfs"), ("vfs", HOST),
              ("fuse-overlayfs", HOST), ("devicemapper", HOST), ("zfs", "zfs"), ("aufs", HOST)]
    for driver, fs in wanted:
        info = DRIVERS[driver]
        if fs == HOST:
            fs = host_fs if host_fs in info.filesystems else "ext4"
        spec = DriverSpec(driver, fs)
        if spec not in out:
            out.append(spec)
    return out


# --------------------------------------------------------------------------- probing

@dataclass(frozen=True)
class HostFacts:
    """What unavailable() looks at, gathered once; a plain value so tests can fake a host."""

    filesystems: frozenset[str]
    device_mapper: bool
    dev_fuse: bool
    loop_control: bool
    is_root: bool
    tools: frozenset[str]                   # installed binaries among those it asks about
    dockerd_version: tuple[int, ...] | None
    dockerd_error: str | None = None        # dockerd present but `--version` failed/unparsable
    host_fs: str = "ext4"


_VERSION = re.compile(r"version\s+v?(\d+)\.(\d+)(?:\.(\d+))?", re.IGNORECASE)


def parse_docker_version(text: str) -> tuple[int, ...] | None:
    """"Docker version 20.10.24+dfsg1, build 5d6db84" -> (20, 10, 24)."""
    m = _VERSION.search(text)
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _kernel_filesystems(text: str) -> frozenset[str]:
    return frozenset(line.split()[-1] for line in text.splitlines() if line.split())


def _has_device_mapper(misc: str, devices: str, control_exists: bool) -> bool:
    in_misc = any(line.split()[-1:] == ["device-mapper"] for line in misc.splitlines())
    in_devices = any(line.split()[-1:] == ["device-mapper"] for line in devices.splitlines())
    return (in_misc or control_exists) and in_devices


_CHECKED_TOOLS = ("dockerd", "losetup", "mount", "umount", "fuse-overlayfs", "zfs",
                 "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs")


def host_facts(host_fs: str | None = None) -> HostFacts:
    tools = set()
    for tool in _CHECKED_TOOLS:
        try:
            proc.require(tool)
            tools.add(tool)
        except MissingTool:
            pass
    version, error = None, None
    if "dockerd" in tools:
        try:
            out = proc.run(["dockerd", "--version"], timeout=30)
            version = parse_docker_version(out.stdout + out.stderr)
            if version is None:
                error = f"cannot read the dockerd version from {out.stdout.strip()!r}"
        except proc.StorprofError as exc:
            error = f"dockerd --version failed: {exc}"
    return HostFacts(
        filesystems=_kernel_filesystems(_read("/proc/filesystems")),
        device_mapper=_has_device_mapper(_read("/proc/misc"), _read("/proc/devices"),
                                         os.path.exists("/dev/mapper/control")),
        dev_fuse=os.path.exists("/dev/fuse"),
        loop_control=os.path.exists("/dev/loop-control"),
        is_root=os.geteuid() == 0,
        tools=frozenset(tools),
        dockerd_version=version,
        dockerd_error=error,
        host_fs=host_fs if host_fs is not None else host_fs_type(Path("/")),
    )


def reasons(spec: DriverSpec, facts: HostFacts) -> list[str]:
    """Every reason this host cannot run `spec` (empty: it can). Pure."""
    out: list[str] = []
    info = DRIVERS.get(spec.driver)
    if info is None:
        return [f"unknown storage driver {spec.driver!r}"]
    if spec.fs not in info.filesystems:
        out.append(f"{spec.driver} does not work on {spec.fs}")

    # dockerd and its version
    if "dockerd" not in facts.tools:
        out.append("dockerd is not installed (package docker.io)")
    elif facts.dockerd_version is not None:
        if info.removed_in is not None and facts.dockerd_version[0] >= info.removed_in:
            have = ".".join(map(str, facts.dockerd_version))
            out.append(f"Docker {have} has no {spec.driver} (removed in Docker {info.removed_in})")
    elif facts.dockerd_error:
        out.append(facts.dockerd_error)
    if not facts.is_root:
        out.append("starting dockerd needs root")

    # the driver's kernel side
    if info.kernel == "device-mapper":
        if not facts.device_mapper:
            out.append("kernel has no device-mapper")
    elif info.kernel == "fuse":
        if "fuse" not in facts.filesystems:
            out.append("kernel has no fuse filesystem")
        elif not facts.dev_fuse:
            out.append("/dev/fuse is missing")
    elif info.kernel is not None and info.kernel not in facts.filesystems:
        out.append(f"kernel has no {info.kernel} filesystem")
    for tool in info.tools:
        if tool not in facts.tools:
            out.append(f"{tool} is not installed (package {_package(tool)})")

    # the backing filesystem (a loop device unless it is the host's own)
    fsinfo = FILESYSTEMS.get(spec.fs)
    if fsinfo is None:
        out.append(f"unknown filesystem {spec.fs!r}")
    elif spec.fs != facts.host_fs:
        fs_msg = f"kernel has no {fsinfo.kernel} filesystem"
        if fsinfo.kernel not in facts.filesystems and fs_msg not in out:
            out.append(fs_msg)
        if fsinfo.mkfs is None:
            if fsinfo.kernel in facts.filesystems:
                out.append(f"storprof cannot create a {spec.fs} filesystem ({fsinfo.note})")
        else:
            if fsinfo.mkfs[0] not in facts.tools:
                out.append(f"{fsinfo.mkfs[0]} is not installed (package {fsinfo.package})")
            if "losetup" not in facts.tools:
                out.append("losetup is not installed (package mount)")
            if not facts.loop_control:
                out.append("/dev/loop-control is missing (no loop devices)")
            if not facts.is_root and "starting dockerd needs root" not in out:
                out.append(f"a loop-backed {spec.fs} needs root")
    return out


def unavailable(spec: DriverSpec, *, host_fs: str | None = None,
          facts: HostFacts | None = None) -> str | None:
    """None when this host can run `spec`, else a short reason. Never raises for a
    missing thing. `host_fs` is the work directory's filesystem (default: that of /)."""
    if facts is None:
        facts = host_facts(host_fs)
    found = reasons(spec, facts)
    return "; ".join(found) if found else None
