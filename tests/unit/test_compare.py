"""compare's arithmetic and significance on constructed runs whose answer is known."""

import math

import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from storprof import cli
from storprof.compare import compare, summary_line, verdict, welch_p_value
from storprof.errors import UserError


def runs(cells: dict[tuple[str, str, str], list[float]], metric: str = "iops") -> pd.DataFrame:
    """fio-like rows: one per repeat, the value as total_iops (or seconds for metric 'time')."""
    rows = []
    for (spec, placement, job), values in cells.items():
        for r, v in enumerate(values):
            row = {"driver_spec": spec, "placement": placement, "job": job, "repeat": r, "status": "ok",
                   "primary_metric": metric, "total_iops": v if metric == "iops" else None,
                   "total_bw_bytes": None, "seconds": v if metric == "time" else None,
                   "p99_clat_ns": 1000.0, "sync_lat_p99_ns": None}
            rows.append(row)
    return pd.DataFrame(rows)


CELL = ("overlay2@ext4", "union", "randread-4k")


def test_welch_matches_the_textbook_formula():
    a, b = [100.0, 102.0, 98.0, 101.0], [90.0, 95.0, 93.0]
    va, vb = pd.Series(a).var(), pd.Series(b).var()
    t = (sum(a) / 4 - sum(b) / 3) / math.sqrt(va / 4 + vb / 3)
    df = (va / 4 + vb / 3) ** 2 / ((va / 4) ** 2 / 3 + (vb / 3) ** 2 / 2)
    assert welch_p_value(a, b) == pytest.approx(2 * stats.t.sf(abs(t), df))


def test_same_machine_noise_is_not_significant():
    a = runs({CELL: [1000.0, 1030.0, 980.0]})
    b = runs({CELL: [1010.0, 990.0, 1025.0]})
    row = compare(a, b).iloc[0]
    assert row["verdict"] == "not significant"
    assert row["ratio"] == pytest.approx(1010.0 / 1000.0)
    assert row["a"] == 1000.0 and row["b"] == 1010.0


def test_a_clear_slowdown_is_significant_and_says_which_way():
    a = runs({CELL: [1000.0, 1010.0, 990.0]})
    b = runs({CELL: [700.0, 710.0, 690.0]})
    row = compare(a, b).iloc[0]
    assert row["verdict"] == "slower" and row["p_value"] < 0.001
    assert row["ratio"] == pytest.approx(0.7)


def test_for_times_less_is_faster():
    a = runs({("vfs@ext4", "union", "copyup-64m first write"): [0.050, 0.052, 0.049]}, metric="time")
    b = runs({("vfs@ext4", "union", "copyup-64m first write"): [0.010, 0.011, 0.010]}, metric="time")
    row = compare(a, b).iloc[0]
    assert row["metric"] == "time" and row["verdict"] == "faster"


def test_p99_latency_is_compared_too_and_larger_is_slower():
    a, b = runs({CELL: [1000.0] * 3}), runs({CELL: [1000.0] * 3})
    b["p99_clat_ns"] = [2000.0, 2100.0, 1900.0]
    a["p99_clat_ns"] = [1000.0, 1010.0, 990.0]
    table = compare(a, b)
    lat = table[table["metric"] == "p99_latency_ns"].iloc[0]
    assert lat["verdict"] == "slower" and lat["ratio"] == pytest.approx(2.0)
    iops = table[table["metric"] == "iops"].iloc[0]
    assert iops["verdict"] == "cannot tell (too few repeats)"      # identical, zero variance both sides


def test_sorted_by_size_of_change_and_one_sided_rows_listed():
    other = ("vfs@ext4", "volume", "randread-4k")
    only_a = ("btrfs@btrfs", "union", "randread-4k")
    a = runs({CELL: [1000.0, 1001.0, 999.0], other: [100.0, 101.0, 99.0], only_a: [5.0, 5.0]})
    b = runs({CELL: [1100.0, 1101.0, 1099.0], other: [300.0, 301.0, 299.0],
              ("zfs@zfs", "union", "randread-4k"): [1.0, 2.0]})
    table = compare(a, b)
    iops = table[table["metric"] == "iops"]
    assert list(iops["driver_spec"])[:2] == ["vfs@ext4", "overlay2@ext4"]       # 3x before 1.1x
    verdicts = dict(zip(iops["driver_spec"], iops["verdict"]))
    assert verdicts["btrfs@btrfs"] == "only in A" and verdicts["zfs@zfs"] == "only in B"
    assert "in only one of the two" in summary_line(table)


def test_single_repeat_cannot_tell():
    assert welch_p_value([1.0], [2.0, 3.0]) is None
    assert verdict("iops", 2.0, None) == "cannot tell (too few repeats)"


def test_nothing_in_common_is_a_clear_error():
    with pytest.raises(UserError, match="no \\(driver, placement, job\\) in common"):
        compare(runs({CELL: [1.0, 2.0]}), runs({("vfs@ext4", "union", "x"): [1.0, 2.0]}))


def test_compare_command_on_two_results_directories(tmp_path):
    from tests.unit.test_report import SWEEP
    result = CliRunner().invoke(cli.main, ["compare", str(SWEEP), str(SWEEP), "--all"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "0 of" in result.output and "not significant" in result.output     # a sweep against itself
    bad = CliRunner().invoke(cli.main, ["compare", str(tmp_path), str(SWEEP)])
    assert bad.exit_code == 2 and "not a storprof results directory" in bad.stderr
