"""Docker storage drivers: the catalogue, `driver@fs[:engine]` specs, and what this host can run.

A DriverSpec names a storage driver, the filesystem its --data-root lives on and the Docker
engine that runs it. When the filesystem differs from the work directory's own, storprof makes
it on a loop device (see backing.py); the catalogue below says which pairings Docker supports.

Two image stores: the classic graphdrivers (overlay2, vfs, ...) and, since Docker 24, the
containerd image store, whose "driver" is a containerd snapshotter. Their names overlap (btrfs,
zfs and fuse-overlayfs are both), so snapshotter specs carry Docker's own shorthand for that
store, `c8d-`: `c8d-overlayfs@ext4`. The engine is the system's dockerd unless the spec names
another after a colon (`overlay2@ext4:28.5`); snapshotter specs default to the newest engine
that has the containerd store, and always show it, since the system's may not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from storprof.engine.engines import ENGINE_NAME, SYSTEM, Engine, all_engines, newest_with_containerd_store
from storprof.engine.unionconfig import parse_switches
from storprof.errors import UserError
from storprof.host import proc
from storprof.host.facts import HostFacts, host_facts  # drivers.host_facts: cli/commands.py calls it

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
    store: str = "graphdriver"      # or "containerd": a snapshotter of Docker's containerd image store
    daemon_name: str = ""           # what dockerd's --storage-driver takes (default: the name)
    unsupported: str = ""           # why storprof never runs it (always skipped, with this reason)

    @property
    def storage_driver(self) -> str:
        return self.daemon_name or self.name


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

# containerd snapshotters, through Docker's containerd image store (moby's `c8d` shorthand).
C8D = "c8d-"
_SNAPSHOTTERS = [
    DriverInfo("c8d-overlayfs", frozenset({"ext4", "xfs"}), HOST, True, "overlay", (),
               "containerd's overlayfs snapshotter: Docker's default image store since Docker 29"),
    DriverInfo("c8d-native", frozenset({"ext4", "xfs", "btrfs"}), HOST, True, None, (),
               "containerd's native snapshotter: every snapshot a full copy, like vfs"),
    DriverInfo("c8d-btrfs", frozenset({"btrfs"}), "btrfs", True, "btrfs", (),
               "containerd's btrfs snapshotter: subvolumes; containerd's root must be on btrfs"),
    DriverInfo("c8d-erofs", frozenset({"ext4", "xfs"}), HOST, True, "erofs", ("mkfs.erofs",),
               "containerd's erofs snapshotter (containerd 2.1): a read-only EROFS image per layer"),
    DriverInfo("c8d-fuse-overlayfs", _ANY, HOST, False, "fuse", (), "overlay in user space",
               unsupported="a proxy snapshotter plugin (containerd-fuse-overlayfs-grpc), not packaged in Debian"),
    DriverInfo("c8d-stargz", _ANY, HOST, True, "fuse", (), "lazy-pulling eStargz images",
               unsupported="a proxy snapshotter plugin (stargz-snapshotter) for lazy pulls from a registry, "
               "not packaged in Debian; storprof has no registry"),
    DriverInfo("c8d-zfs", frozenset({"zfs"}), "zfs", False, "zfs", ("zfs",), "ZFS datasets"),
    DriverInfo("c8d-devmapper", frozenset({"ext4", "xfs"}), HOST, False, "device-mapper", (),
               "thin-pool block devices"),
    DriverInfo("c8d-blockfile", frozenset({"ext4", "xfs"}), HOST, True, None, (), "an ext4 image file per snapshot",
               unsupported="needs a scratch filesystem image configured in containerd's config; Docker does not "
               "set one up"),
]
for _info in _SNAPSHOTTERS:
    DRIVERS[_info.name] = DriverInfo(**{**_info.__dict__, "store": "containerd",
                                        "daemon_name": _info.name.removeprefix(C8D)})
# erofs-utils with the tar mode (`mkfs.erofs --tar`) containerd's erofs differ feeds layers through.
MKFS_EROFS_TAR_SINCE = (1, 8)


def _package(tool: str) -> str:
    return proc.PACKAGES.get(tool, tool)


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

# A snapshotter spec without an engine: the newest one with the containerd store, when there is one.
NEWEST = "newest"


@dataclass(frozen=True, order=True)
class DriverSpec:
    driver: str
    fs: str
    engine: str = SYSTEM
    overlay: tuple[str, ...] = ()     # overlay module parameters switched on for this spec (unionconfig.py)

    def __str__(self) -> str:
        return (f"{self.driver}@{self.fs}" + ("" if self.engine == SYSTEM else f":{self.engine}")
                + "".join(f"+{name}" for name in self.overlay))

    @property
    def slug(self) -> str:
        """The spec in file and object names: driver-fs[-engine][-switches]."""
        return (f"{self.driver}-{self.fs}" + ("" if self.engine == SYSTEM else f"-{self.engine}")
                + "".join(f"-{name.replace('_', '')}" for name in self.overlay))

    @property
    def info(self) -> DriverInfo:
        return DRIVERS[self.driver]

    @classmethod
    def parse(cls, text: str, host_fs: str, engines: list[Engine] | None = None) -> DriverSpec:
        """`driver@fs[:engine][+param...]` or bare `driver` (its natural filesystem); UserError if unusable.
        `+redirect_dir`, `+metacopy`, ...: overlay module parameters on for this spec's session."""
        raw = text
        text, plus, switches = text.strip().lower().partition("+")
        overlay = parse_switches(switches) if plus else ()
        text, colon, engine = text.partition(":")
        if colon and not ENGINE_NAME.fullmatch(engine.strip()):
            raise UserError(f"{raw!r}: the engine after ':' is 'system' or a Docker version such as 28.5")
        spec = cls._parse_driver(text, raw, host_fs)
        if overlay and spec.info.kernel != "overlay":
            raise UserError(f"{raw!r}: overlay parameters apply to kernel overlay drivers "
                            f"({', '.join(d for d, i in DRIVERS.items() if i.kernel == 'overlay')}), not {spec.driver}")
        return cls(spec.driver, spec.fs, _engine_of(spec.driver, engine.strip() if colon else None, engines), overlay)

    @classmethod
    def _parse_driver(cls, text: str, raw: str, host_fs: str) -> DriverSpec:
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


def _engine_of(driver: str, named: str | None, engines: list[Engine] | None) -> str:
    """The engine name a spec records: the one named (resolved against the engines here when
    they are known), else the system's, or for a snapshotter the newest with the containerd store."""
    if named is None:
        if DRIVERS[driver].store != "containerd":
            return SYSTEM
        newest = newest_with_containerd_store(engines) if engines is not None else None
        return newest.name if newest else NEWEST
    if engines is None or named == SYSTEM:
        return named
    from storprof.engine.engines import find
    return find(named, engines).name


def default_specs(host_fs: str, engines: list[Engine] | None = None) -> list[DriverSpec]:
    """The default sweep: every graphdriver on its natural filesystem, plus overlay2 on xfs, on
    the system's engine; overlay2 again on each newer engine; and every containerd snapshotter on
    the newest engine with the containerd store (listed, with why, when none is here).

    A host filesystem a driver cannot use (say overlay2 on a btrfs host) is replaced
    by a loop-backed ext4, so every spec returned is one DriverSpec.parse would accept.
    """
    engines = all_engines() if engines is None else engines
    system = next((e for e in engines if e.name == SYSTEM), None)
    newest = newest_with_containerd_store(engines)
    wanted = [(d, fs, SYSTEM) for d, fs in (("overlay2", HOST), ("overlay2", "xfs"), ("btrfs", "btrfs"),
                                             ("vfs", HOST), ("fuse-overlayfs", HOST), ("devicemapper", HOST),
                                             ("zfs", "zfs"), ("aufs", HOST))]
    wanted += [("overlay2", HOST, e.name) for e in engines if e.name != SYSTEM
               and (system is None or e.version[:2] != system.version[:2])]
    c8d_engine = newest.name if newest else NEWEST
    wanted += [(i.name, fs, c8d_engine) for i in _SNAPSHOTTERS
               for fs in ((HOST, "xfs") if i.name == "c8d-overlayfs" else (i.natural_fs,))]
    out: list[DriverSpec] = []
    for driver, fs, engine in wanted:
        info = DRIVERS[driver]
        if fs == HOST:
            fs = host_fs if host_fs in info.filesystems else "ext4"
        spec = DriverSpec(driver, fs, engine)
        if spec not in out:
            out.append(spec)
    return out


# --------------------------------------------------------------------------- what this host can run

def reasons(spec: DriverSpec, facts: HostFacts) -> list[str]:
    """Every reason this host cannot run `spec` (empty: it can). Pure."""
    out: list[str] = []
    info = DRIVERS.get(spec.driver)
    if info is None:
        return [f"unknown storage driver {spec.driver!r}"]
    if info.unsupported:
        return [info.unsupported]
    if spec.fs not in info.filesystems:
        out.append(f"{spec.driver} does not work on {spec.fs}")
    out += _engine_reasons(spec, info, facts)
    if not facts.is_root:
        out.append("starting dockerd needs root")
    if spec.driver == "c8d-erofs" and facts.mkfs_erofs_tar is False:
        out.append(f"mkfs.erofs here has no tar mode (--tar), which containerd's erofs differ feeds layers "
                   f"through (erofs-utils {'.'.join(map(str, MKFS_EROFS_TAR_SINCE))} or later; Debian 12 has 1.5)")

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
    out += _fs_reasons(spec, facts, out)
    return out


def _engine_reasons(spec: DriverSpec, info: DriverInfo, facts: HostFacts) -> list[str]:
    """Why the spec's engine cannot run it: missing, too old for the containerd store, too new."""
    if spec.engine == SYSTEM:
        if "dockerd" not in facts.tools:
            return ["dockerd is not installed (package docker.io)"]
        if facts.dockerd_version is None:
            return [facts.dockerd_error] if facts.dockerd_error else []
        version = facts.dockerd_version
    elif spec.engine == NEWEST:
        return ["no Docker engine here has the containerd image store (Docker 24 or later): "
                "storprof setup fetches one from Debian's packages"]
    else:
        engine = next((e for e in facts.engines if e.name == spec.engine), None)
        if engine is None:
            return [f"no Docker engine {spec.engine} here: storprof engines fetch"]
        version = engine.version
    have = ".".join(map(str, version))
    if info.store == "containerd" and version < (24,):
        return [f"Docker {have} has no containerd image store (Docker 24 or later)"]
    if info.removed_in is not None and version[0] >= info.removed_in:
        return [f"Docker {have} has no {spec.driver} (removed in Docker {info.removed_in})"]
    return []


def _fs_reasons(spec: DriverSpec, facts: HostFacts, out: list[str]) -> list[str]:
    """Why the spec's backing filesystem cannot be made here (a loop device unless it is the host's)."""
    found: list[str] = []

    fsinfo = FILESYSTEMS.get(spec.fs)
    if fsinfo is None:
        return [f"unknown filesystem {spec.fs!r}"]
    if spec.fs == facts.host_fs:
        return found
    fs_msg = f"kernel has no {fsinfo.kernel} filesystem"
    if fsinfo.kernel not in facts.filesystems and fs_msg not in out:
        found.append(fs_msg)
    if fsinfo.mkfs is None:
        if fsinfo.kernel in facts.filesystems:
            found.append(f"storprof cannot create a {spec.fs} filesystem ({fsinfo.note})")
        return found
    if fsinfo.mkfs[0] not in facts.tools:
        found.append(f"{fsinfo.mkfs[0]} is not installed (package {fsinfo.package})")
    if "losetup" not in facts.tools:
        found.append("losetup is not installed (package mount)")
    if not facts.loop_control:
        found.append("/dev/loop-control is missing (no loop devices)")
    if not facts.is_root and "starting dockerd needs root" not in out:
        found.append(f"a loop-backed {spec.fs} needs root")
    return found


def unavailable(spec: DriverSpec, *, host_fs: str | None = None,
          facts: HostFacts | None = None) -> str | None:
    """None when this host can run `spec`, else a short reason. Never raises for a
    missing thing. `host_fs` is the work directory's filesystem (default: that of /)."""
    if facts is None:
        facts = host_facts(host_fs)
    found = reasons(spec, facts)
    return "; ".join(found) if found else None
