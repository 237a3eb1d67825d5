"""The table's arithmetic, checked against a real quick sweep's results.jsonl, computed independently."""

import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
import scipy.stats
from click.testing import CliRunner

from storprof import cli
from storprof.results import ResultSet
from storprof.stats import summary
from storprof.views import tables

SWEEP = Path(__file__).parent.parent / "fixtures" / "results-quick"


def _records():
    return [json.loads(ln) for ln in (SWEEP / "results.jsonl").read_text().splitlines()]


def _value(rec):
    m = rec["metrics"]
    return m["total_iops"] if rec["primary_metric"] == "iops" else m["total_bw_bytes"]


def test_ratios_are_geometric_means_of_per_repeat_ratios_to_host_with_t_intervals():
    recs = [r for r in _records() if r["kind"] == "fio" and r["status"] == "ok"]
    over = summary.summarize(ResultSet.load(SWEEP).runs)
    assert len(over) == len({(r["driver_spec"], r["job"], r["placement"]) for r in recs})
    checked = 0
    for (spec, job), _ in over.groupby(["driver_spec", "job"]):
        host = {r["repeat"]: _value(r) for r in recs
                if (r["driver_spec"], r["job"], r["placement"]) == (spec, job, "host")}
        for placement in ("union", "volume", "bind"):
            mine = {r["repeat"]: _value(r) for r in recs
                    if (r["driver_spec"], r["job"], r["placement"]) == (spec, job, placement)}
            ratios = [mine[k] / host[k] for k in sorted(mine) if k in host]
            row = over[(over.driver_spec == spec) & (over.job == job) & (over.placement == placement)].iloc[0]
            assert row["ratio"] == pytest.approx(statistics.geometric_mean(ratios))
            logs = [math.log(r) for r in ratios]
            half = scipy.stats.t.ppf(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
            assert row["ratio_low"] == pytest.approx(math.exp(statistics.mean(logs) - half))
            assert row["ratio_high"] == pytest.approx(math.exp(statistics.mean(logs) + half))
            assert row["n"] == len(mine)
            vals = list(mine.values())
            assert row["median"] == pytest.approx(statistics.median(vals))
            checked += 1
    assert checked >= 3 * 6


def test_paired_ratio_cancels_drift_between_repeats():
    # a machine twice as fast in repeat 1: every placement equal to host within its repeat
    runs = pd.DataFrame({"repeat": [0, 0, 1, 1], "placement": ["host", "bind"] * 2,
                         "value": [100.0, 100.0, 200.0, 200.0]})
    host, bind = runs[runs.placement == "host"], runs[runs.placement == "bind"]
    assert list(summary.paired_ratio(bind, host, "value")) == [1.0, 1.0]
    assert bind["value"].median() / host["value"].median() == 1.0


def test_fsync_job_latency_is_the_fsync_latency():
    recs = [r for r in _records() if r["kind"] == "fio" and r["job"] == "fsync-write-4k" and r["status"] == "ok"]
    assert recs, "the fixture sweep has the fsync job"
    over = summary.summarize(ResultSet.load(SWEEP).runs)
    spec = recs[0]["driver_spec"]
    host = [r["metrics"]["sync_lat_p99_ns"] for r in recs if r["driver_spec"] == spec and r["placement"] == "host"]
    row = over[(over.driver_spec == spec) & (over.job == "fsync-write-4k") & (over.placement == "host")].iloc[0]
    assert row["p99_ns"] == pytest.approx(statistics.median(host))


def test_table_has_a_row_per_driver_and_job_and_every_cell_filled():
    over = summary.summarize(ResultSet.load(SWEEP).runs)
    headers, rows = tables.table_rows(over)
    assert headers[:5] == ["driver", "docker", "job", "n", "host"]
    assert {row[1] for row in rows} == {"20.10.24"}              # the engine each row was measured on
    assert len(rows) == len(over.groupby(["driver_spec", "job"]))
    assert all(cell not in ("", "-") for row in rows for cell in row)


def test_fuse_overlayfs_union_direct_cells_are_flagged():
    over = summary.summarize(ResultSet.load(SWEEP).runs)
    fuse = over[over.driver_spec.str.startswith("fuse-overlayfs") & (over.placement == "union")]
    if fuse.empty:
        pytest.skip("fixture sweep has no fuse-overlayfs")
    direct_jobs = {r["job"] for r in _records() if r["kind"] == "fio" and r.get("direct")}
    for _, row in fuse.iterrows():
        assert ("†" in row["flags"]) == (row["job"] in direct_jobs)
    assert not over[over.placement != "union"]["flags"].str.contains("†").any()
    assert "†" in tables.format_table(over)


def test_relative_spread():
    assert summary.relative_spread(pd.Series([90.0, 100.0, 110.0])) == pytest.approx(0.1)
    assert summary.relative_spread(pd.Series([5.0])) == 0.0


def test_table_command_matches_the_golden_output():
    result = CliRunner().invoke(cli.main, ["table", str(SWEEP)], catch_exceptions=False)
    assert result.exit_code == 0
    golden = (SWEEP / "table.golden.txt").read_text()
    assert result.output == golden
