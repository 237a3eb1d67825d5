"""Real loop-backed filesystems under a work directory on the real disk (needs root)."""

import mmap
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from storprof.errors import EnvironmentProblem, UserError
from storprof.host import backing
from storprof.host.backing import BackingFS, check_workdir
from storprof.host.mounts import host_fs_type, parse_mountinfo
from storprof.host.proc import CommandFailed

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and mounts need root"),
]

SIZE = 512 * 2**20


def _disk_tmp() -> str:
    for candidate in (tempfile.gettempdir(),):
        if os.path.isdir(candidate) and host_fs_type(Path(candidate)) in backing.DISK_FILESYSTEMS:
            return candidate
    pytest.skip("no temporary directory on a real disk filesystem")


@pytest.fixture
def workdir():
    wd = Path(tempfile.mkdtemp(prefix="storprof-test-", dir=_disk_tmp()))
    yield wd
    # safety net: never leave mounts or loop devices behind even if a test failed
    for entry in sorted(parse_mountinfo(Path("/proc/self/mountinfo").read_text()),
                        key=lambda e: len(e.mount_point), reverse=True):
        if entry.mount_point.startswith(str(wd) + "/"):
            subprocess.run(["umount", "-l", entry.mount_point], check=False)
    for img in wd.glob("*.img"):
        out = subprocess.run(["losetup", "-j", str(img)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            subprocess.run(["losetup", "-d", line.split(":", 1)[0]], check=False)
    shutil.rmtree(wd, ignore_errors=True)


def _mount_at(path: Path):
    hits = [e for e in parse_mountinfo(Path("/proc/self/mountinfo").read_text())
            if e.mount_point == str(path)]
    return hits[-1] if hits else None


def _losetup_a() -> str:
    return subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout


def _write_direct(path: Path) -> int:
    buf = mmap.mmap(-1, 1 << 16)            # page-aligned, as O_DIRECT requires
    buf.write(b"s" * (1 << 16))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    try:
        return os.write(fd, buf)
    finally:
        os.close(fd)
        buf.close()


@pytest.mark.parametrize("fs", ["xfs", "btrfs"])
def test_loop_backed_lifecycle(workdir, fs):
    b = BackingFS(fs, workdir, f"data-{fs}", SIZE)
    assert b.is_loop
    with b:
        entry = _mount_at(b.path)
        assert entry is not None and entry.fs_type == fs
        assert entry.source == b.loop_device
        dio = Path(f"/sys/block/{os.path.basename(b.loop_device)}/loop/dio").read_text().strip()
        assert dio == "1" and b.direct_io is True
        assert _write_direct(b.path / "probe") == 1 << 16
        meta = b.describe()
        assert meta["fs"] == fs and meta["direct_io"] is True and meta["loop_device"] == b.loop_device
        assert meta["size_bytes"] == SIZE and meta["mount_options"].startswith("rw")
        if fs == "xfs":
            info = subprocess.run(["xfs_info", str(b.path)], capture_output=True, text=True).stdout
            assert "ftype=1" in info
        image = str(b.image)
        assert image in _losetup_a()
    assert _mount_at(b.path) is None
    assert image not in _losetup_a()
    assert list(workdir.iterdir()) == []
    assert b.loop_device is None
    assert b.teardown() == []                # idempotent


def test_plain_directory_on_host_fs(workdir):
    host = host_fs_type(workdir)
    with BackingFS(host, workdir, "plain", SIZE) as b:
        assert not b.is_loop and b.loop_device is None and b.direct_io is None
        assert b.path.is_dir() and _mount_at(b.path) is None
        (b.path / "sub").mkdir()
        (b.path / "sub" / "f").write_text("x")
        assert b.describe()["fs"] == host
    assert list(workdir.iterdir()) == []


def test_fs_without_mkfs_leaves_nothing(workdir):
    b = BackingFS("zfs", workdir, "z", SIZE)
    with pytest.raises(UserError, match="cannot create a loop-backed zfs"), b:
        pass
    assert list(workdir.iterdir()) == []


def test_mkfs_failure_leaves_nothing(workdir, monkeypatch):
    real = backing.proc.run

    def failing_mkfs(argv, **kw):
        if str(argv[0]).startswith("mkfs"):
            return real(["false"], **kw)
        return real(argv, **kw)

    monkeypatch.setattr(backing.proc, "run", failing_mkfs)
    with pytest.raises(CommandFailed), BackingFS("xfs", workdir, "m", SIZE):
        pass
    assert list(workdir.iterdir()) == []


def test_mount_failure_leaves_nothing(workdir, monkeypatch):
    real = backing.proc.run
    seen = {}

    def failing_mount(argv, **kw):
        if argv[0] == "mount":
            seen["loop"] = argv[-2]
            return real(["false"], **kw)
        return real(argv, **kw)

    monkeypatch.setattr(backing.proc, "run", failing_mount)
    b = BackingFS("btrfs", workdir, "f", SIZE)
    with pytest.raises(CommandFailed):
        b.setup()
    assert b.image.exists() and b.loop_device       # partial: image + loop + dir were made
    b.teardown()
    assert list(workdir.iterdir()) == []
    assert str(b.image) not in _losetup_a()
    assert seen["loop"] not in [line.split(":")[0] for line in _losetup_a().splitlines()]


def test_crash_between_losetup_and_record(workdir, monkeypatch):
    """A loop attached but never recorded (crash right after losetup) is still found."""
    b = BackingFS("xfs", workdir, "c", SIZE)

    def crash(self):
        backing.proc.run(["losetup", "--direct-io=on", "-f", "--show", str(self.image)])
        raise KeyboardInterrupt

    monkeypatch.setattr(BackingFS, "_attach_loop", crash)
    with pytest.raises(KeyboardInterrupt):
        b.setup()
    assert str(b.image) in _losetup_a()
    b.teardown()
    assert str(b.image) not in _losetup_a()
    assert list(workdir.iterdir()) == []


def test_teardown_before_setup_is_noop(workdir):
    b = BackingFS("xfs", workdir, "n", SIZE)
    assert b.teardown() == []
    assert list(workdir.iterdir()) == []


def test_existing_name_is_refused_and_kept(workdir):
    (workdir / "taken").mkdir()
    with pytest.raises(UserError, match="already exists"), BackingFS("xfs", workdir, "taken", SIZE):
        pass
    assert (workdir / "taken").is_dir()


def test_too_small_and_no_space(workdir):
    with pytest.raises(UserError, match="too small"):
        BackingFS("xfs", workdir, "s", 64 * 2**20).setup()
    free = os.statvfs(workdir).f_bavail * os.statvfs(workdir).f_frsize
    with pytest.raises(EnvironmentProblem, match=r"needs .* free"):
        BackingFS("xfs", workdir, "s", free + 2**40).setup()
    assert list(workdir.iterdir()) == []


def test_check_workdir_refuses_tmpfs():
    if host_fs_type(Path("/dev/shm")) != "tmpfs":
        pytest.skip("/dev/shm is not tmpfs here")
    with pytest.raises(UserError, match="tmpfs"):
        check_workdir(Path("/dev/shm"))


def test_check_workdir_accepts_disk_and_refuses_missing(workdir):
    check_workdir(workdir)
    with pytest.raises(UserError, match="does not exist"):
        check_workdir(workdir / "nope")
    (workdir / "file").write_text("")
    with pytest.raises(UserError, match="not a directory"):
        check_workdir(workdir / "file")


def test_busy_mount_falls_back_to_lazy_unmount_and_says_so(workdir):
    b = BackingFS("xfs", workdir, "busy", SIZE).setup()
    held = open(b.path / "held", "w")  # noqa: SIM115 - held open across the teardown on purpose
    try:
        warnings = b.teardown()
        assert any("umount -l" in w for w in warnings)
        assert _mount_at(b.path) is None
        assert warnings == b.warnings[-len(warnings):]
    finally:
        held.close()
    # once nothing holds it, the loop device goes (autoclear) and a second teardown finishes
    assert b.teardown() == []
    assert str(b.image) not in _losetup_a()
    assert list(workdir.iterdir()) == []
