"""Every sanity-flag rule: when a number cannot mean what it claims, the table says so.

The runs are real records from a quick sweep (tests/fixtures/results-quick), changed only in the
field each rule looks at, so the rules are tested on the shape the store really writes.
"""

import statistics
from pathlib import Path

import pandas as pd
import pytest

from storprof.results import ResultSet
from storprof.stats import intervals as stats
from storprof.stats import summary
from storprof.views import tables

SWEEP = Path(__file__).parent.parent / "fixtures" / "results-quick"
GIB = 2**30


@pytest.fixture(scope="module")
def real_runs() -> pd.DataFrame:
    return ResultSet.load(SWEEP).runs


def _cell(runs: pd.DataFrame, spec: str, job: str) -> pd.DataFrame:
    """One (driver, job) of the real sweep: every placement and repeat."""
    cell = runs[(runs.driver_spec == spec) & (runs.job == job) & (runs.status == "ok")].copy()
    assert not cell.empty, f"fixture has {spec} {job}"
    return cell.reset_index(drop=True)


def _flags(over: pd.DataFrame, placement: str, spec: str | None = None) -> str:
    rows = over[over.placement == placement]
    if spec:
        rows = rows[rows.driver_spec == spec]
    return rows["flags"].iloc[0]


def _set_values(cell: pd.DataFrame, placement: str, values: list[float]) -> None:
    """Replace one placement's primary values (IOPS) repeat by repeat."""
    idx = cell.index[cell.placement == placement]
    for i, v in zip(sorted(idx, key=lambda k: cell.at[k, "repeat"]), values):
        cell.at[i, "total_iops"] = v


def _steady(cell: pd.DataFrame) -> pd.DataFrame:
    """The same cell with every placement equal to the host in every repeat: no flag from spread."""
    for p in cell.placement.unique():
        _set_values(cell, p, [1000.0, 1000.0, 1000.0])
    return cell


# --- † driver that does not honour O_DIRECT (from the driver catalogue) ------------------------------

def test_dagger_on_direct_union_of_a_driver_that_ignores_o_direct(real_runs):
    cell = _steady(_cell(real_runs, "fuse-overlayfs@ext4", "randread-4k"))
    over = summary.summarize(cell)
    assert "†" in _flags(over, "union")
    assert "†" not in _flags(over, "volume") and "†" not in _flags(over, "host")


def test_no_dagger_for_buffered_jobs_or_honouring_drivers(real_runs):
    cell = _steady(_cell(real_runs, "fuse-overlayfs@ext4", "randread-4k"))
    cell["direct"] = False
    assert "†" not in _flags(summary.summarize(cell), "union")
    cell = _steady(_cell(real_runs, "overlay2@ext4", "randread-4k"))
    assert "†" not in _flags(summary.summarize(cell), "union")


# --- ‡ loop device without direct I/O (recorded) ----------------------------------------------------

def test_double_dagger_when_the_loop_device_is_buffered(real_runs):
    cell = _steady(_cell(real_runs, "btrfs@btrfs", "randread-4k"))
    assert "‡" not in _flags(summary.summarize(cell), "host")       # recorded as direct-io on
    cell["loop_direct_io"] = False
    assert "‡" in _flags(summary.summarize(cell), "host")
    cell["loop_direct_io"] = None                                    # not on a loop device
    assert "‡" not in _flags(summary.summarize(cell), "host")


# --- § measured: faster than the direct baseline, or fio said so -----------------------------------

def test_section_when_a_direct_placement_beats_the_host_by_more_than_the_cache_ratio(real_runs):
    cell = _steady(_cell(real_runs, "overlay2@ext4", "randread-4k"))
    _set_values(cell, "volume", [1600.0, 1600.0, 1600.0])            # 1.6x the host in each repeat
    _set_values(cell, "bind", [1400.0, 1400.0, 1400.0])              # 1.4x: a fast disk path, not a cache
    over = summary.summarize(cell)
    assert "§" in _flags(over, "volume")
    assert "§" not in _flags(over, "bind") and "§" not in _flags(over, "union")


def test_no_section_for_buffered_jobs_which_are_meant_to_use_the_cache(real_runs):
    cell = _steady(_cell(real_runs, "overlay2@ext4", "randread-4k"))
    cell["direct"] = False
    _set_values(cell, "volume", [1600.0, 1600.0, 1600.0])
    assert "§" not in _flags(summary.summarize(cell), "volume")


def test_section_on_the_real_fuse_overlayfs_random_read(real_runs):
    # fuse-overlayfs accepted direct=1 and served 4 KiB random reads from the page cache
    over = summary.summarize(_cell(real_runs, "fuse-overlayfs@ext4", "randread-4k"))
    assert "§" in _flags(over, "union")
    assert "§" not in _flags(over, "volume")


def test_section_when_fio_reports_that_direct_io_was_not_honoured(real_runs):
    cell = _steady(_cell(real_runs, "overlay2@ext4", "randread-4k"))
    cell["fio_messages"] = [[] for _ in range(len(cell))]
    i = cell.index[cell.placement == "bind"][0]
    cell.at[i, "fio_messages"] = ["fio: looks like your file system does not support direct=1/buffered=0"]
    over = summary.summarize(cell)
    assert "§" in _flags(over, "bind") and "§" not in _flags(over, "volume")


def test_section_on_a_loop_backed_host_baseline_far_above_the_host_filesystem(real_runs):
    plain = _steady(_cell(real_runs, "overlay2@ext4", "randread-4k"))
    loop = _steady(_cell(real_runs, "btrfs@btrfs", "randread-4k"))
    both = pd.concat([plain, loop], ignore_index=True)
    assert "§" not in _flags(summary.summarize(both), "host", "btrfs@btrfs")
    loop = _steady(_cell(real_runs, "btrfs@btrfs", "randread-4k"))
    for p in loop.placement.unique():
        _set_values(loop, p, [1700.0, 1700.0, 1700.0])               # the whole loop fs 1.7x the host fs
    over = summary.summarize(pd.concat([plain, loop], ignore_index=True))
    assert "§" in _flags(over, "host", "btrfs@btrfs")
    assert "§" not in _flags(over, "host", "overlay2@ext4")


# --- ~ spread across host repeats; a ratio's spread is its interval ------------------------------------

def test_tilde_when_the_host_repeats_vary_by_more_than_ten_percent(real_runs):
    cell = _steady(_cell(real_runs, "overlay2@ext4", "randread-4k"))
    _set_values(cell, "host", [1000.0, 1300.0, 1000.0])               # CV 15%
    for p in ("union", "volume", "bind"):
        _set_values(cell, p, [1000.0, 1300.0, 1000.0])                # ratios steady at 1.00
    _set_values(cell, "bind", [1000.0, 1040.0, 1050.0])               # ratios 1.00, 0.80, 1.05: CV 14%
    over = summary.summarize(cell)
    assert "~" in _flags(over, "host")
    assert "~" not in _flags(over, "bind")             # a ratio carries its interval instead of a mark
    steady = over[over.placement == "union"].iloc[0]
    shaky = over[over.placement == "bind"].iloc[0]
    assert steady.ratio_low == pytest.approx(1.0) and steady.ratio_high == pytest.approx(1.0)
    assert shaky.ratio_high - shaky.ratio_low > 0.3 and shaky.verdict == stats.UNKNOWN
    expected = statistics.stdev([1000, 1300, 1000]) / statistics.mean([1000, 1300, 1000])
    assert over[over.placement == "host"]["cv"].iloc[0] == pytest.approx(expected)


def test_no_tilde_below_ten_percent_or_with_one_repeat(real_runs):
    cell = _steady(_cell(real_runs, "overlay2@ext4", "randread-4k"))
    _set_values(cell, "host", [1000.0, 1100.0, 1000.0])               # CV 5.6%
    assert "~" not in _flags(summary.summarize(cell), "host")
    one = cell[cell.repeat == 0]
    assert "~" not in "".join(summary.summarize(one)["flags"])


# --- ¶ buffered job on a file that fits in memory ---------------------------------------------------

@pytest.mark.parametrize("size, memory, fsync, flagged", [
    ("128m", 24 * GIB, None, True),        # the quick sweep's buffered read: cached
    ("128m", 24 * GIB, "1", False),        # every write synced: the disk answers
    ("64g", 24 * GIB, None, False),        # larger than memory
    ("128m", None, None, False),           # memory not recorded: no evidence
])
def test_pilcrow_for_buffered_jobs_on_files_smaller_than_memory(real_runs, size, memory, fsync, flagged):
    cell = _steady(_cell(real_runs, "overlay2@ext4", "randread-4k"))
    cell["direct"] = False
    cell["param_size"] = size
    cell["mem_total_bytes"] = memory
    cell["param_fsync"] = fsync
    over = summary.summarize(cell)
    assert all(("¶" in f) == flagged for f in over["flags"])


def test_no_pilcrow_for_direct_or_metadata_jobs(real_runs):
    cell = _steady(_cell(real_runs, "overlay2@ext4", "randread-4k"))
    cell["param_size"] = "128m"
    cell["mem_total_bytes"] = 24 * GIB
    assert "¶" not in "".join(summary.summarize(cell)["flags"])        # direct=1
    cell["direct"] = False
    cell["own_files"] = True
    assert "¶" not in "".join(summary.summarize(cell)["flags"])


def test_every_flag_used_gets_its_footnote(real_runs):
    cell = _steady(_cell(real_runs, "fuse-overlayfs@ext4", "randread-4k"))
    _set_values(cell, "host", [1000.0, 1400.0, 1000.0])
    _set_values(cell, "union", [3000.0, 4000.0, 3000.0])
    text = tables.format_table(summary.summarize(cell))
    for mark in ("†", "§", "~"):
        assert mark in text.split("\n† ")[0]
        assert any(line.startswith(f"{mark} ") for line in text.splitlines())


def test_section_on_a_cold_read_far_quicker_than_the_host(real_runs):
    """Deep-stack reads drop the file's pages first; a read 1.5x quicker than the host's is cached."""
    rows = []
    for r, (host, union, volume) in enumerate([(3.0e-3, 1.6e-3, 2.9e-3), (2.8e-3, 1.7e-3, 2.7e-3)]):
        for placement, seconds in (("host", host), ("union", union), ("volume", volume)):
            rows.append({"kind": "probe", "driver_spec": "fuse-overlayfs@ext4", "job": "stack K=16 first read 4m",
                         "placement": placement, "repeat": r, "primary_metric": "time", "status": "ok",
                         "seconds": seconds, "param_cold_read": True})
    over = summary.summarize(pd.DataFrame(rows))
    assert "§" in _flags(over, "union") and "§" not in _flags(over, "volume")
    rows = [dict(r, param_cold_read=None) for r in rows]         # not a cold read: no claim to check
    assert "§" not in "".join(summary.summarize(pd.DataFrame(rows))["flags"])
