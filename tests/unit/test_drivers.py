import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from storprof.engine.drivers import (
    DRIVERS,
    DriverSpec,
    default_specs,
    reasons,
    unavailable,
)
from storprof.engine.engines import SYSTEM, Engine
from storprof.errors import UserError
from storprof.host.facts import HostFacts, host_facts
from storprof.host.mounts import fs_type_from_mountinfo, host_fs_type, mount_from_mountinfo

# --------------------------------------------------------------------------- parsing

@pytest.mark.parametrize("text,host,expected", [
    ("overlay2@xfs", "ext4", DriverSpec("overlay2", "xfs")),
    ("overlay2", "ext4", DriverSpec("overlay2", "ext4")),
    ("overlay2", "xfs", DriverSpec("overlay2", "xfs")),
    ("btrfs", "ext4", DriverSpec("btrfs", "btrfs")),
    ("zfs", "ext4", DriverSpec("zfs", "zfs")),
    ("vfs", "ext4", DriverSpec("vfs", "ext4")),
    ("vfs@btrfs", "ext4", DriverSpec("vfs", "btrfs")),
    ("fuse-overlayfs", "ext4", DriverSpec("fuse-overlayfs", "ext4")),
    ("devicemapper", "xfs", DriverSpec("devicemapper", "xfs")),
    ("aufs", "ext4", DriverSpec("aufs", "ext4")),
    (" Overlay2@XFS ", "ext4", DriverSpec("overlay2", "xfs")),
])
def test_parse_valid(text, host, expected):
    assert DriverSpec.parse(text, host) == expected


@pytest.mark.parametrize("text,host,must_mention", [
    ("nosuch", "ext4", "overlay2"),               # unknown driver: lists drivers
    ("nosuch@xfs", "ext4", "devicemapper"),
    ("overlay2@btrfs", "ext4", "ext4, xfs"),      # docker does not support overlay2 on btrfs
    ("btrfs@ext4", "ext4", "btrfs"),
    ("btrfs@xfs", "ext4", "btrfs"),
    ("zfs@ext4", "ext4", "zfs"),
    ("overlay2@ntfs", "ext4", "ext4"),            # unknown fs: lists filesystems
    ("overlay2@", "ext4", "xfs"),
    ("overlay2", "tmpfs", "ext4, xfs"),           # natural fs unusable
    ("overlay2", "btrfs", "ext4, xfs"),
    ("", "ext4", "overlay2"),
])
def test_parse_invalid(text, host, must_mention):
    with pytest.raises(UserError) as err:
        DriverSpec.parse(text, host)
    msg = str(err.value)
    assert "\n" not in msg
    assert must_mention in msg


def test_spec_str_and_order():
    assert str(DriverSpec("overlay2", "xfs")) == "overlay2@xfs"
    assert sorted([DriverSpec("vfs", "ext4"), DriverSpec("btrfs", "btrfs")])[0].driver == "btrfs"
    assert DriverSpec.parse(str(DriverSpec("overlay2", "xfs")), "ext4") == DriverSpec("overlay2", "xfs")


def test_catalogue():
    graph = {"overlay2", "btrfs", "vfs", "fuse-overlayfs", "devicemapper", "zfs", "aufs"}
    assert set(DRIVERS) == graph | {s.split("@")[0] for s in SNAPSHOTTERS}
    assert {d.storage_driver for d in DRIVERS.values() if d.store == "containerd"} == {
        "overlayfs", "native", "btrfs", "erofs", "fuse-overlayfs", "stargz", "zfs", "devmapper", "blockfile"}
    assert DRIVERS["fuse-overlayfs"].honours_direct_io is False
    assert DRIVERS["overlay2"].honours_direct_io is True
    assert "fuse-overlayfs" in DRIVERS["fuse-overlayfs"].tools
    assert DRIVERS["devicemapper"].removed_in == 25
    assert DRIVERS["aufs"].removed_in == 24
    assert "btrfs" not in DRIVERS["overlay2"].filesystems
    for info in DRIVERS.values():
        assert info.note and "\n" not in info.note


# --------------------------------------------------------------------------- defaults

SYSTEM_20 = Engine(SYSTEM, "/usr/sbin/dockerd", (20, 10, 24))
FETCHED_28 = Engine("28.5.2", "/var/cache/storprof/engines/28.5.2/root/usr/sbin/dockerd", (28, 5, 2),
                    containerd_version="2.1.9")
GRAPHDRIVERS = ["overlay2@ext4", "overlay2@xfs", "btrfs@btrfs", "vfs@ext4", "fuse-overlayfs@ext4",
                "devicemapper@ext4", "zfs@zfs", "aufs@ext4"]
SNAPSHOTTERS = ["c8d-overlayfs@ext4", "c8d-overlayfs@xfs", "c8d-native@ext4", "c8d-btrfs@btrfs", "c8d-erofs@ext4",
                "c8d-fuse-overlayfs@ext4", "c8d-stargz@ext4", "c8d-zfs@zfs", "c8d-devmapper@ext4",
                "c8d-blockfile@ext4"]


def test_default_specs_ext4_on_the_system_engine_alone():
    specs = [str(s) for s in default_specs("ext4", [SYSTEM_20])]
    assert specs == GRAPHDRIVERS + [f"{s}:newest" for s in SNAPSHOTTERS]


def test_default_specs_with_a_fetched_engine_add_overlay2_on_it_and_the_snapshotters():
    specs = [str(s) for s in default_specs("ext4", [SYSTEM_20, FETCHED_28])]
    assert specs == GRAPHDRIVERS + ["overlay2@ext4:28.5.2"] + [f"{s}:28.5.2" for s in SNAPSHOTTERS]


def test_default_specs_xfs_has_no_duplicate():
    specs = [str(s) for s in default_specs("xfs", [SYSTEM_20])]
    assert specs.count("overlay2@xfs") == 1
    assert specs[0] == "overlay2@xfs" and "vfs@xfs" in specs


@pytest.mark.parametrize("host", ["ext4", "xfs", "btrfs", "tmpfs"])
def test_default_specs_all_parse(host):
    for spec in default_specs(host, [SYSTEM_20, FETCHED_28]):
        assert DriverSpec.parse(str(spec), host, [SYSTEM_20, FETCHED_28]) == spec


@pytest.mark.parametrize("text, expected", [
    ("overlay2@ext4:28", DriverSpec("overlay2", "ext4", "28.5.2")),
    ("overlay2@ext4:28.5", DriverSpec("overlay2", "ext4", "28.5.2")),
    ("overlay2:system", DriverSpec("overlay2", "ext4")),
    ("c8d-overlayfs", DriverSpec("c8d-overlayfs", "ext4", "28.5.2")),
    ("c8d-btrfs", DriverSpec("c8d-btrfs", "btrfs", "28.5.2")),
    ("c8d-native@xfs:28.5.2", DriverSpec("c8d-native", "xfs", "28.5.2")),
])
def test_specs_name_their_engine(text, expected):
    assert DriverSpec.parse(text, "ext4", [SYSTEM_20, FETCHED_28]) == expected


@pytest.mark.parametrize("text, message", [
    ("overlay2@ext4:29", "no Docker engine 29 here"),
    ("overlay2@ext4:$(reboot)", "the engine after ':'"),
    ("overlay2@ext4:../../bin", "the engine after ':'"),
    ("c8d-overlayfs@btrfs", "does not work on btrfs"),
    ("overlayfs@ext4", "unknown storage driver"),
])
def test_bad_engines_and_snapshotters_are_one_clear_line(text, message):
    with pytest.raises(UserError, match=re.escape(message)):
        DriverSpec.parse(text, "ext4", [SYSTEM_20, FETCHED_28])


def test_why_a_snapshotter_cannot_run():
    facts = replace(FAKE, engines=(SYSTEM_20,), filesystems=FAKE.filesystems | {"erofs"})
    assert "containerd image store" in reasons(DriverSpec("c8d-overlayfs", "ext4", "newest"), facts)[0]
    assert "storprof setup fetches one" in reasons(DriverSpec("c8d-overlayfs", "ext4", "newest"), facts)[0]
    assert "has no containerd image store" in reasons(DriverSpec("c8d-native", "ext4", SYSTEM), facts)[0]
    with_28 = replace(facts, engines=(SYSTEM_20, FETCHED_28))
    assert reasons(DriverSpec("c8d-overlayfs", "ext4", "28.5.2"), with_28) == []
    assert reasons(DriverSpec("c8d-native", "ext4", "28.5.2"), with_28) == []
    assert reasons(DriverSpec("c8d-btrfs", "btrfs", "28.5.2"), with_28) == []
    assert "mkfs.erofs is not installed (package erofs-utils)" in reasons(
        DriverSpec("c8d-erofs", "ext4", "28.5.2"), with_28)
    old_erofs = replace(with_28, tools=with_28.tools | {"mkfs.erofs"}, mkfs_erofs_tar=False)
    assert "has no tar mode" in " ".join(reasons(DriverSpec("c8d-erofs", "ext4", "28.5.2"), old_erofs))
    assert "proxy snapshotter plugin" in reasons(DriverSpec("c8d-stargz", "ext4", "28.5.2"), with_28)[0]
    assert "kernel has no device-mapper" in reasons(DriverSpec("c8d-devmapper", "ext4", "28.5.2"),
                                                    replace(with_28, device_mapper=False))
    assert "removed in Docker 24" in " ".join(reasons(DriverSpec("aufs", "ext4", "28.5.2"), with_28))


# --------------------------------------------------------------------------- mountinfo

MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=123k
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684092k
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
30 25 0:27 / /dev/shm rw,nosuid - tmpfs shm rw,size=64k
50 27 7:0 / /var/tmp/my\040dir/b rw,relatime shared:7 master:2 - xfs /dev/loop0 rw,inode64
51 27 7:1 / /var/tmp/my\040dir/bb rw,relatime - btrfs /dev/loop1 rw,space_cache=v2
52 27 0:40 / /srv/a\134b\011c rw - overlay overlay rw,lowerdir=/x
"""


@pytest.mark.parametrize("path,fs", [
    ("/", "ext4"),
    ("/home/x", "ext4"),
    ("/dev/shm", "tmpfs"),
    ("/dev/shm/sub/file", "tmpfs"),
    ("/dev/null", "devtmpfs"),
    ("/devices", "ext4"),                    # prefix must end at a path component
    ("/var/tmp/my dir/b", "xfs"),            # \040 is a space
    ("/var/tmp/my dir/b/data/x", "xfs"),
    ("/var/tmp/my dir/bb/x", "btrfs"),       # longest prefix wins, not string prefix
    ("/var/tmp/my dir", "ext4"),
    ("/srv/a\\b\tc/x", "overlay"),
    ("/proc/self", "proc"),
])
def test_fs_type_from_mountinfo(path, fs):
    assert fs_type_from_mountinfo(MOUNTINFO, path) == fs


def test_stacked_mount_last_wins():
    entry = mount_from_mountinfo(MOUNTINFO, "/dev/shm/x")
    assert entry.source == "shm" and entry.options == "rw,nosuid"


def test_mount_entry_fields():
    entry = mount_from_mountinfo(MOUNTINFO, "/var/tmp/my dir/b")
    assert entry.mount_point == "/var/tmp/my dir/b"
    assert entry.source == "/dev/loop0"
    assert entry.super_options == "rw,inode64"


def test_host_fs_type_real():
    assert host_fs_type(Path("/proc/self")) == "proc"
    assert host_fs_type(Path("/dev/shm")) == "tmpfs"
    # a path that does not exist resolves through its nearest existing ancestor
    assert host_fs_type(Path("/dev/shm/does/not/exist")) == "tmpfs"


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to nobody in a child")
def test_host_fs_type_for_a_user_who_cannot_search_root_s_directory(tmp_path):
    """`storprof drivers` and `setup --check` as nobody: the default work directory is below root's
    0700 /var/lib/storprof, which nobody cannot stat into; the filesystem is that of the part above."""
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    expected = host_fs_type(tmp_path)
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            os._exit(0 if host_fs_type(hidden / "work") == expected else 1)
        except BaseException:
            os._exit(2)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


# --------------------------------------------------------------------------- reasons

FAKE = HostFacts(filesystems=frozenset({"ext4", "xfs", "btrfs", "overlay", "fuse", "aufs"}),
                 device_mapper=True, dev_fuse=True, loop_control=True, is_root=True,
                 tools=frozenset({"dockerd", "losetup", "mount", "umount", "fuse-overlayfs",
                                  "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs"}),
                 dockerd_version=(20, 10, 24), host_fs="ext4")


def test_reasons_version_gate():
    dm, aufs = DriverSpec("devicemapper", "ext4"), DriverSpec("aufs", "ext4")
    assert reasons(dm, FAKE) == [] and reasons(aufs, FAKE) == []
    new = replace(FAKE, dockerd_version=(24, 0, 7))
    assert reasons(dm, new) == []
    assert any("removed in Docker 24" in r for r in reasons(aufs, new))
    newer = replace(FAKE, dockerd_version=(25, 0, 0))
    assert any("removed in Docker 25" in r for r in reasons(dm, newer))


def test_reasons_missing_things():
    bare = replace(FAKE, filesystems=frozenset({"ext4"}), tools=frozenset({"dockerd"}),
                   loop_control=False, dev_fuse=False, device_mapper=False)
    xfs = " ; ".join(reasons(DriverSpec("overlay2", "xfs"), bare))
    assert "kernel has no overlay" in xfs and "kernel has no xfs" in xfs
    assert "mkfs.xfs is not installed (package xfsprogs)" in xfs
    assert "losetup" in xfs and "/dev/loop-control" in xfs
    fuse = " ; ".join(reasons(DriverSpec("fuse-overlayfs", "ext4"), replace(FAKE, tools=frozenset({"dockerd"}))))
    assert "fuse-overlayfs is not installed (package fuse-overlayfs)" in fuse
    assert "kernel has no device-mapper" in reasons(DriverSpec("devicemapper", "ext4"), bare)
    nodocker = replace(FAKE, tools=FAKE.tools - {"dockerd"}, dockerd_version=None)
    assert any("docker.io" in r for r in reasons(DriverSpec("vfs", "ext4"), nodocker))
    # the host's own filesystem needs no loop device
    assert reasons(DriverSpec("vfs", "ext4"), replace(FAKE, loop_control=False)) == []


# --------------------------------------------------------------------------- this real host

@pytest.fixture(scope="module")
def facts():
    return host_facts()


def test_unavailable_real_overlay2_ok(facts):
    assert unavailable(DriverSpec("overlay2", host_fs_type(Path("/"))), facts=facts) is None


def test_unavailable_real_overlay2_on_loop_xfs(facts):
    assert unavailable(DriverSpec("overlay2", "xfs")) is None


def test_unavailable_real_devicemapper(facts):
    reason = unavailable(DriverSpec("devicemapper", "ext4"), facts=facts)
    assert reason and "device-mapper" in reason


def test_unavailable_real_zfs(facts):
    reason = unavailable(DriverSpec("zfs", "zfs"), facts=facts)
    assert reason and "zfs" in reason
    assert "\n" not in reason


def test_unavailable_real_aufs(facts):
    reason = unavailable(DriverSpec("aufs", "ext4"), facts=facts)
    assert reason and "aufs" in reason


def test_unavailable_never_raises_for_unknown_driver():
    assert "unknown" in unavailable(DriverSpec("nosuch", "ext4"))
