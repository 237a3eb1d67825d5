"""The snapshotter benchmark's table, from a real small run (tests/fixtures/results-snapbench-small), and
the port's layer plan against containerd's makeApplier."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from storprof.results import ResultSet
from storprof.storage.snapbench import CREATE, REMOVE, UPDATE, layer_actions
from storprof.views.own_views import BENCH_HEADERS, bench_rows
from storprof.views.tables import fmt_seconds

FIXTURE = Path(__file__).parent.parent / "fixtures" / "results-snapbench-small"


@pytest.fixture(scope="module")
def runs():
    return ResultSet.load(FIXTURE).runs


def _specs(runs) -> list[str]:
    return list(dict.fromkeys(runs[runs.workload == "snapbench"].driver_spec))


def test_one_row_per_spec_with_the_shape_and_layer_count(runs):
    headers, rows = bench_rows(runs)
    assert headers == BENCH_HEADERS
    assert [r[0] for r in rows] == _specs(runs) and len(rows) >= 2
    for row in rows:
        assert row[2] == "4×3×256 KiB" and row[3] == "4"


def test_cells_are_medians_per_layer_with_half_the_range(runs):
    _, rows = bench_rows(runs)
    for row in rows:
        g = runs[runs.driver_spec == row[0]]
        for column, stage in zip((4, 5, 6), ("prepare", "write", "commit")):
            s = g[g.job == f"snapbench {stage}"].seconds
            med = s.median()
            assert row[column] == f"{fmt_seconds(med)} ±{(s.max() - s.min()) / 2 / med * 100:.0f}%"


def test_totals_and_multiples_of_the_fastest(runs):
    _, rows = bench_rows(runs)
    totals = {spec: runs[runs.driver_spec == spec].seconds.sum() for spec in _specs(runs)}
    fastest = min(totals.values())
    for row in rows:
        assert row[7] == fmt_seconds(totals[row[0]])
        ratio = totals[row[0]] / fastest
        assert row[8] == (f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x")
    assert sum(r[8] == "1.0x" for r in rows) >= 1


def test_a_cut_off_chain_before_a_whole_one_is_left_out(runs):
    spec = _specs(runs)[0]
    cut = runs[(runs.driver_spec == spec) & (runs.repeat == 0)].assign(param_chain="cut", seconds=100.0)
    _, rows = bench_rows(pd.concat([cut, runs], ignore_index=True))
    assert rows == bench_rows(runs)[1]


def test_nothing_to_show_without_snapbench_records(runs):
    assert bench_rows(runs[runs.workload != "snapbench"])[1] == []
    assert bench_rows(pd.DataFrame())[1] == []


def test_layers_follow_make_applier():
    # benchmark_test.go: i%3==0 / i%2==0 / else, in its order (f is created before e is updated)
    assert layer_actions(3, 10) == [("a", UPDATE), ("b", UPDATE), ("c", CREATE), ("d", UPDATE), ("f", CREATE),
                                    ("e", UPDATE), ("g", REMOVE), ("h", CREATE), ("i", UPDATE), ("j", CREATE)]
    assert layer_actions(4, 10) == [("a", UPDATE), ("b", CREATE), ("c", REMOVE), ("d", CREATE), ("e", UPDATE),
                                    ("f", REMOVE), ("g", CREATE), ("h", UPDATE), ("i", CREATE), ("j", UPDATE)]
    assert layer_actions(1, 10) == layer_actions(5, 10) == [(n, CREATE) for n in "abcdefghij"]
    assert layer_actions(2, 3) == [("a", UPDATE), ("b", CREATE), ("c", REMOVE)]


@pytest.mark.parametrize("files", [3, 10, 25])
def test_every_update_finds_its_file_in_a_lower_layer(files):
    live: set[str] = set()
    for layer in range(1, 17):
        for name, action in layer_actions(layer, files):
            if action == UPDATE:
                assert name in live, (layer, name)
            if action == REMOVE:
                live.discard(name)
            else:
                live.add(name)
