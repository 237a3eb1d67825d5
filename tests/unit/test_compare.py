"""compare's arithmetic, significance and false discovery rate on constructed runs whose answer is
known, and its refusal of what cannot be compared."""

import math
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from storprof import cli
from storprof.errors import UserError
from storprof.results import ResultSet
from storprof.stats.compare import compare, summary_line, verdict, welch_p_value


def result_set(cells: dict[tuple[str, str, str], list[float]], metric: str = "iops", meta: dict | None = None,
               params: dict | None = None, run_id: str = "r1") -> ResultSet:
    """A ResultSet of fio-like rows: one per repeat, the value as total_iops (or seconds for 'time')."""
    rows = []
    for (spec, placement, job), values in cells.items():
        for r, v in enumerate(values):
            rows.append({"driver_spec": spec, "placement": placement, "job": job, "repeat": r, "status": "ok",
                         "run_id": run_id, "kind": "fio", "primary_metric": metric,
                         "total_iops": v if metric == "iops" else None, "total_bw_bytes": None,
                         "seconds": v if metric == "time" else None, "p99_clat_ns": 1000.0,
                         "sync_lat_p99_ns": None})
    made = ResultSet(Path("."), meta or {}, [])
    made.__dict__["runs"] = pd.DataFrame(rows)       # the cached view, built directly
    return made


CELL = ("overlay2@ext4", "union", "randread-4k")
HOST = ("overlay2@ext4", "host", "randread-4k")


def row(table: pd.DataFrame, metric: str, placement: str = "union") -> pd.Series:
    return table[(table["metric"] == metric) & (table["placement"] == placement)].iloc[0]


def test_welch_is_the_textbook_formula_on_the_logs():
    a, b = [100.0, 102.0, 98.0, 101.0], [90.0, 95.0, 93.0]
    la, lb = [math.log(x) for x in a], [math.log(x) for x in b]
    va, vb = pd.Series(la).var(), pd.Series(lb).var()
    t = (sum(la) / 4 - sum(lb) / 3) / math.sqrt(va / 4 + vb / 3)
    df = (va / 4 + vb / 3) ** 2 / ((va / 4) ** 2 / 3 + (vb / 3) ** 2 / 2)
    assert welch_p_value(a, b) == pytest.approx(2 * stats.t.sf(abs(t), df))


def test_same_machine_noise_is_not_significant():
    a = result_set({CELL: [1000.0, 1030.0, 980.0]})
    b = result_set({CELL: [1010.0, 990.0, 1025.0]})
    r = row(compare(a, b).table, "iops")
    assert r["verdict"] == "not significant"
    assert r["a"] == pytest.approx((1000 * 1030 * 980) ** (1 / 3))


def test_a_clear_slowdown_is_significant_and_says_which_way():
    a = result_set({CELL: [1000.0, 1010.0, 990.0]})
    b = result_set({CELL: [700.0, 710.0, 690.0]})
    r = row(compare(a, b).table, "iops")
    assert r["verdict"] == "slower" and r["p_value"] < 0.001 and r["q_value"] < 0.05
    assert r["ratio"] == pytest.approx(0.7, rel=0.01)


def test_for_times_less_is_faster():
    cell = ("vfs@ext4", "union", "copyup-64m first write")
    a = result_set({cell: [0.050, 0.052, 0.049]}, metric="time")
    b = result_set({cell: [0.010, 0.011, 0.010]}, metric="time")
    assert row(compare(a, b).table, "time")["verdict"] == "faster"


def test_a_probes_multiplier_of_host_time_falling_is_faster():
    host, union = ("vfs@ext4", "host", "copyup-64m first write"), ("vfs@ext4", "union", "copyup-64m first write")
    a = result_set({host: [0.001, 0.001, 0.001], union: [0.050, 0.052, 0.049]}, metric="time")
    b = result_set({host: [0.001, 0.001, 0.001], union: [0.010, 0.011, 0.010]}, metric="time")
    multiplier = row(compare(a, b).table, "time ratio to host")
    assert multiplier["ratio"] == pytest.approx(0.2, rel=0.05) and multiplier["verdict"] == "faster"


def test_the_ratio_to_host_cancels_drift_between_the_sweeps():
    # B's machine is 20% slower across the board: raw values all fall, the union's cost did not change
    a = result_set({HOST: [1000.0, 1010.0, 990.0], CELL: [800.0, 812.0, 790.0]})
    b = result_set({HOST: [800.0, 805.0, 795.0], CELL: [642.0, 640.0, 638.0]})
    table = compare(a, b).table
    assert row(table, "iops")["verdict"] == "slower"
    ratio = row(table, "ratio to host")
    assert ratio["verdict"] == "not significant" and ratio["ratio"] == pytest.approx(1.0, abs=0.01)


def test_the_false_discovery_rate_spares_a_user_from_chance_rows():
    # 40 pairs of identical sweeps of 60 rows that did not change: raw p < 0.05 by chance in many,
    # a discovery after Benjamini-Hochberg in few (its promise under no change: at most 5% of the time)
    import random
    raw = discovered = 0
    cells = [(f"d{i}@ext4", "union", "j") for i in range(60)]
    for seed in range(40):
        rng = random.Random(seed)
        a = result_set({c: [1000 * math.exp(rng.gauss(0, 0.05)) for _ in range(3)] for c in cells})
        b = result_set({c: [1000 * math.exp(rng.gauss(0, 0.05)) for _ in range(3)] for c in cells})
        table = compare(a, b).table
        raw += int((table["p_value"].dropna() < 0.05).any())
        discovered += int(table["verdict"].isin(["faster", "slower"]).any())
    assert raw >= 30 and discovered <= 4


def test_p99_latency_is_compared_too_and_larger_is_slower():
    a, b = result_set({CELL: [1000.0] * 3}), result_set({CELL: [1000.0] * 3})
    a.runs["p99_clat_ns"] = [1000.0, 1010.0, 990.0]
    b.runs["p99_clat_ns"] = [2000.0, 2100.0, 1900.0]
    table = compare(a, b).table
    lat = row(table, "p99_latency_ns")
    assert lat["verdict"] == "slower" and lat["ratio"] == pytest.approx(2.0, rel=0.01)
    assert row(table, "iops")["verdict"] == "cannot tell (too few repeats)"   # no variance on either side


def test_sorted_by_size_of_change_and_one_sided_rows_listed():
    other = ("vfs@ext4", "volume", "randread-4k")
    only_a = ("btrfs@btrfs", "union", "randread-4k")
    a = result_set({CELL: [1000.0, 1001.0, 999.0], other: [100.0, 101.0, 99.0], only_a: [5.0, 5.0]})
    b = result_set({CELL: [1100.0, 1101.0, 1099.0], other: [300.0, 301.0, 299.0],
                    ("zfs@zfs", "union", "randread-4k"): [1.0, 2.0]})
    table = compare(a, b).table
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
        compare(result_set({CELL: [1.0, 2.0]}), result_set({("vfs@ext4", "union", "x"): [1.0, 2.0]}))


def test_settings_that_differ_are_said_and_other_sizes_are_not_compared():
    from tests.unit.test_tables import SWEEP
    a, b = ResultSet.load(SWEEP), ResultSet.load(SWEEP)
    b.meta = {**b.meta, "kernel": "7.0.0", "hostname": "elsewhere"}
    assert any(d.startswith("kernel:") for d in compare(a, b).differences)
    resized = [r.__class__(**{**r.__dict__, "params": {**r.params, "size": "64m"}}) if hasattr(r, "params")
               and r.kind == "fio" else r for r in b.records]
    c = ResultSet(b.dir, b.meta, resized)
    with pytest.raises(UserError, match="measured with size 128m against 64m"):
        compare(a, c)


def test_compare_command_on_two_results_directories(tmp_path):
    from tests.unit.test_tables import SWEEP
    result = CliRunner().invoke(cli.main, ["compare", str(SWEEP), str(SWEEP), "--all"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "0 of" in result.output and "not significant" in result.output     # a sweep against itself
    assert "ratio to host" in result.output and "q (FDR)" in result.output
    bad = CliRunner().invoke(cli.main, ["compare", str(tmp_path), str(SWEEP)])
    assert bad.exit_code == 2 and "not a storprof results directory" in bad.stderr
