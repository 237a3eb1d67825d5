"""The settle step: parsing /proc/meminfo and block stat lines (real samples), and the wait loop
with a fake clock."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from storprof.host import writeback
from storprof.storage.fio.cells import settle_disk
from tests.conftest import FIXTURES

SAMPLES = FIXTURES / "writeback"


def test_meminfo_fields_are_bytes():
    idle = writeback.parse_meminfo((SAMPLES / "meminfo-idle.txt").read_text())
    assert idle["Dirty"] == 1016 * 1024 and idle["Writeback"] == 0
    assert idle["MemTotal"] == 24683664 * 1024
    busy = writeback.parse_meminfo((SAMPLES / "meminfo-writeback.txt").read_text())
    assert busy["Writeback"] == 4 * 1024 and busy["Dirty"] == 4 * 1024
    assert "HugePages_Total" in busy and busy["HugePages_Total"] == 0     # a count, not kB


def test_meminfo_skips_lines_it_cannot_read():
    assert writeback.parse_meminfo("Dirty: 12 kB\nnonsense\nWriteback:\n") == {"Dirty": 12 * 1024}


def test_block_stat_of_a_disk_and_a_loop_device():
    idle = writeback.parse_block_stat((SAMPLES / "vda-stat.txt").read_text())
    assert idle.in_flight == 0 and idle.writes == 35192000 and idle.write_sectors == 2424447262
    assert idle.flushes == 1615252
    busy = writeback.parse_block_stat((SAMPLES / "vda-stat-in-flight.txt").read_text())
    assert busy.in_flight == 1 and busy.write_sectors > idle.write_sectors
    loop = writeback.parse_block_stat((SAMPLES / "loop-stat.txt").read_text())
    assert loop.in_flight == 0 and loop.write_sectors == 148604025 and loop.flushes == 505270


def test_block_stat_of_an_old_kernel_has_no_flush_count():
    old = " ".join((SAMPLES / "vda-stat.txt").read_text().split()[:11])
    assert writeback.parse_block_stat(old).flushes is None
    with pytest.raises(ValueError):
        writeback.parse_block_stat("1 2 3")


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _samples(*states):
    """meminfo and in_flight readers that step through (dirty, writeback, in_flight) states and
    then stay at the last one."""
    states = list(states)
    seen = {"n": 0}

    def meminfo():
        dirty, wb, _ = states[min(seen["n"], len(states) - 1)]
        return {"Dirty": dirty, "Writeback": wb}

    def in_flight(_devices):
        value = states[min(seen["n"], len(states) - 1)][2]
        seen["n"] += 1
        return value
    return meminfo, in_flight


def _wait(clock, states, timeout=1.0):
    meminfo, in_flight = _samples(*states)
    return writeback.wait_quiet([], timeout, clock=clock, sleep=clock.sleep, meminfo=meminfo, in_flight=in_flight)


def test_a_quiet_disk_settles_at_once():
    clock = FakeClock()
    quiet = _wait(clock, [(0, 0, 0)])
    assert quiet.settled and quiet.seconds == pytest.approx(writeback.POLL_SECONDS)


def test_settling_waits_out_writeback_and_the_queue():
    clock = FakeClock()
    mib = 1 << 20
    states = [(200 * mib, 0, 0), (10 * mib, 30 * mib, 12), (0, 2 * mib, 3), (0, 0, 1), (0, 0, 0)]
    quiet = _wait(clock, states)
    # five busy polls, then the second quiet one in a row
    assert quiet.settled and quiet.seconds == pytest.approx(5 * writeback.POLL_SECONDS)
    assert (quiet.dirty, quiet.writeback, quiet.in_flight) == (0, 0, 0)


def test_a_busy_poll_restarts_the_quiet_count():
    clock = FakeClock()
    quiet = _wait(clock, [(0, 0, 0), (0, 0, 4), (0, 0, 0)])
    assert quiet.settled and quiet.seconds == pytest.approx(3 * writeback.POLL_SECONDS)


def test_a_disk_that_stays_busy_gives_up_at_the_deadline():
    clock = FakeClock()
    quiet = _wait(clock, [(0, 8 << 20, 2)], timeout=0.5)
    assert not quiet.settled and quiet.seconds == pytest.approx(0.5, abs=writeback.POLL_SECONDS)
    assert quiet.writeback == 8 << 20 and quiet.in_flight == 2


def test_others_dirty_pages_below_the_bar_do_not_hold_it_up():
    clock = FakeClock()
    assert _wait(clock, [(writeback.DIRTY_MAX, writeback.WRITEBACK_MAX, 0)]).settled


def test_the_devices_under_a_directory_have_readable_stats(tmp_path):
    devices, dirs = writeback.devices_under(tmp_path)
    assert dirs[0] == tmp_path
    for d in devices:
        assert writeback.parse_block_stat((d / "stat").read_text()).in_flight >= 0


def test_syncfs_never_follows_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    writeback.syncfs(tmp_path / "real")
    with pytest.raises(OSError):
        writeback.syncfs(tmp_path / "link")


def test_the_sweep_settles_only_what_it_can_see(tmp_path, monkeypatch):
    settled = []
    monkeypatch.setattr(writeback, "settle", lambda where: settled.append(where))
    settle_disk(SimpleNamespace(data_root=None, host_dir=None))            # attached, remote daemon
    settle_disk(SimpleNamespace(data_root=None, host_dir=tmp_path))
    settle_disk(SimpleNamespace(data_root=tmp_path / "docker", host_dir=tmp_path))
    assert settled == [tmp_path, tmp_path / "docker"]


def test_a_failed_settle_does_not_fail_the_run(tmp_path):
    settle_disk(SimpleNamespace(data_root=tmp_path / "gone", host_dir=None))
