"""The answer-first sentences and rankings, on constructed results whose verdicts are known, and
the compact end-of-sweep table within 120 columns on a real saved sweep."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from storprof.stats import summary
from storprof.views import tables, verdicts

SWEEP = Path(__file__).parent.parent / "fixtures" / "results-quick"


def _row(spec: str, job: str, placement: str, repeat: int, iops: float) -> dict:
    return {"driver_spec": spec, "docker_version": "28.5.2+dfsg4", "job": job, "placement": placement,
            "repeat": repeat, "run_id": "r1", "status": "ok", "primary_metric": "iops", "total_iops": iops,
            "kind": "fio", "direct": True, "own_files": False, "p99_clat_ns": 100.0, "read_clat_p99_ns": 100.0,
            "read_iops": iops, "write_iops": 0.0}


def _runs(cells: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """(spec, job) -> the union's per-repeat ratios to a steady host of 1000 IOPS."""
    rows = []
    for (spec, job), ratios in cells.items():
        for r, ratio in enumerate(ratios):
            rows += [_row(spec, job, "host", r, 1000.0), _row(spec, job, "union", r, 1000.0 * ratio)]
    return pd.DataFrame(rows)


CELLS = {("slow@ext4", "randwrite-4k"): [0.50, 0.51, 0.49, 0.50],          # real: half the host
         ("slow@ext4", "randread-4k"): [1.00, 1.01, 0.99, 1.00],           # within ±5%: the same
         ("same@ext4", "randwrite-4k"): [1.00, 1.01, 0.99, 1.00],
         ("shaky@ext4", "randwrite-4k"): [0.70, 1.30, 0.90, 1.20]}         # not yet known


def _summaries():
    over = summary.summarize(_runs(CELLS), 0.05)
    return {s.spec: s for s in verdicts.spec_summaries(over, pd.DataFrame(), 0.05)}, over


def test_a_real_difference_is_stated_with_its_interval_and_a_same_as_within_the_target():
    by_spec, over = _summaries()
    slow = by_spec["slow@ext4"].sentence
    row = over[(over.driver_spec == "slow@ext4") & (over.job == "randwrite-4k") & (over.placement == "union")].iloc[0]
    assert f"4 KiB random writes {tables.fmt_interval(row.ratio, row.ratio_low, row.ratio_high)} of host" in slow
    assert "within ±5% of host: 4 KiB random reads" in slow
    assert by_spec["slow@ext4"].docker == "28.5.2"


def test_no_difference_is_not_claimed_and_an_open_cell_says_so_with_its_n():
    by_spec, _ = _summaries()
    assert by_spec["same@ext4"].sentence.startswith("union: no real difference from host shown; within ±5%")
    shaky = by_spec["shaky@ext4"].sentence
    assert "not yet told apart from host (n=4): 4 KiB random writes" in shaky
    assert "of host;" not in shaky.split("not yet")[0]


def test_the_ranking_names_the_leader_and_what_it_cannot_be_told_from():
    _, over = _summaries()
    [line] = verdicts.rankings(over, pd.DataFrame())
    assert line.startswith("Fastest 4 KiB random writes on the top layer: ")
    leader = line.split(": ")[1].split(" ")[0]
    assert leader in ("same@ext4", "shaky@ext4")
    assert "Slowest: slow@ext4 0.50x" in line
    assert "not told apart from it: " in line and "slow@ext4" not in line.split("Slowest")[0]


def test_the_compact_table_fits_120_columns_and_keeps_every_spec():
    from storprof.results import ResultSet
    results = ResultSet.load(SWEEP)
    over = summary.summarize(results.runs)
    ops, _ = summary.layer_tables(results.layers)
    text = tables.compact_table(over, ops)
    assert max(len(line) for line in text.splitlines()) <= 120
    for spec in dict.fromkeys(over["driver_spec"]):
        assert any(line.startswith(spec + " ") for line in text.splitlines())
    assert "union randread-4k" in text and "20.10" in text
