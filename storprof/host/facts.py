"""What this machine offers Docker's storage drivers: kernel filesystems, device-mapper, FUSE and
loop devices, root, the tools installed, the dockerd version and the engines at hand. Gathered once
into a plain value (HostFacts) so that engine/drivers.reasons() stays pure and tests can fake a host."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from storprof.engine import versions
from storprof.engine.engines import Engine, all_engines
from storprof.errors import MissingTool
from storprof.host import proc
from storprof.host.mounts import host_fs_type


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
    engines: tuple[Engine, ...] = ()        # the system's and the fetched ones
    mkfs_erofs_tar: bool | None = None      # mkfs.erofs has the tar mode containerd's erofs differ uses


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
                 "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "mkfs.erofs")


def host_facts(host_fs: str | None = None) -> HostFacts:
    tools = set()
    for tool in _CHECKED_TOOLS:
        try:
            proc.require(tool)
            tools.add(tool)
        except MissingTool:
            pass
    dockerd = versions.dockerd_version() if "dockerd" in tools else versions.DockerdVersion()
    return HostFacts(
        filesystems=_kernel_filesystems(_read("/proc/filesystems")),
        device_mapper=_has_device_mapper(_read("/proc/misc"), _read("/proc/devices"),
                                         os.path.exists("/dev/mapper/control")),
        dev_fuse=os.path.exists("/dev/fuse"),
        loop_control=os.path.exists("/dev/loop-control"),
        is_root=os.geteuid() == 0,
        tools=frozenset(tools),
        dockerd_version=dockerd.release,
        dockerd_error=dockerd.error,
        host_fs=host_fs if host_fs is not None else host_fs_type(Path("/")),
        engines=tuple(all_engines()),
        mkfs_erofs_tar=_mkfs_erofs_has_tar() if "mkfs.erofs" in tools else None,
    )


def _mkfs_erofs_has_tar() -> bool | None:
    """Whether mkfs.erofs lists --tar in its help (erofs-utils 1.5, Debian 12's, does not)."""
    try:
        out = proc.run(["mkfs.erofs", "--help"], timeout=30, check=False)
    except proc.StorprofError:
        return None
    return "--tar" in out.stdout + out.stderr
