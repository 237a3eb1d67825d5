"""The workloads with views of their own (max depth, the snapshotter benchmark): the depth
search against simulated limits, and their rows from real runs (tests/fixtures/results-*)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storprof.results import ResultSet
from storprof.stats import compare
from storprof.stats.summary import summarize
from storprof.storage.maxdepth import next_depth
from storprof.views import own_views
from storprof.views.own_views import bench_rows

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _search(limit: int, ceiling: int) -> tuple[int | None, int | None, list[int]]:
    """Run the search against a driver that runs images of up to `limit` layers."""
    ok = failed = None
    tried = []
    while (k := next_depth(ok, failed, ceiling)) is not None:
        tried.append(k)
        if k <= limit:
            ok = k
        else:
            failed = k
    return ok, failed, tried


def test_a_driver_at_dockers_limit_costs_two_probes():
    assert _search(125, 130) == (125, 126, [125, 126])


@pytest.mark.parametrize("limit", [1, 2, 70, 122, 124, 126, 127, 200, 499])
def test_the_search_finds_any_limit_below_the_ceiling(limit):
    ok, failed, tried = _search(limit, 500)
    assert (ok, failed) == (limit, limit + 1)
    assert len(tried) <= 12 and len(set(tried)) == len(tried)


def test_a_driver_without_limit_stops_at_the_ceiling_and_one_that_runs_nothing_stops_at_one():
    assert _search(10_000, 500)[:2] == (500, None)
    assert _search(0, 130) == (None, 1, [125, 1])
    assert _search(10_000, 60) == (60, None, [60])


def test_bench_rows_from_a_real_run_in_the_original_shape():
    headers, rows = bench_rows(ResultSet.load(FIXTURES / "results-snapbench").runs)
    by = {r[0]: dict(zip(headers, r)) for r in rows}
    assert by["overlay2@ext4"]["layers"] == "16×10×1024 KiB"
    fastest = min(float(r["x fastest"].rstrip("x")) for r in by.values())
    assert fastest == 1.0
    # vfs copies the parent on every prepare and walks both trees on every commit
    assert float(by["vfs@ext4"]["x fastest"].rstrip("x")) > 1.3


def test_own_view_rows_stay_out_of_the_ratio_tables_and_appear_in_their_own():
    runs = ResultSet.load(FIXTURES / "results-snapbench").runs
    assert summarize(runs).empty
    text = own_views.format_own_views(runs)
    assert "containerd's snapshotter benchmark" in text and "c8d-native@ext4:28.5.2" in text
    results = ResultSet.load(FIXTURES / "results-max-depth")
    assert compare.deepest(results.runs)["overlay2@ext4"] == 125
    assert compare.deepest(results.runs)["c8d-overlayfs@ext4:28.5.2"] == 499
