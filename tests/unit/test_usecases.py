"""The answer by use case: a golden test on a real quick sweep, the interval between two specs'
ratios checked against Welch's interval computed from the samples themselves, and the verdict's
three outcomes."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from storprof.results import ResultSet
from storprof.stats.intervals import RatioInterval, between, ratio_interval
from storprof.stats.summary import NoiseFloor, noise_floor
from storprof.views.result_summary import ResultSummary
from storprof.views.terminal import answer_blocks
from storprof.views.usecases import Choice, _line, use_case_lines, use_cases

FIXTURES = Path(__file__).parent.parent / "fixtures"
QUICK = FIXTURES / "sweep-quick-probes"


def _lines(directory: Path) -> list[str]:
    results = ResultSet.load(directory)
    summary = ResultSummary.of(results)
    return use_case_lines(summary.over, summary.ops, summary.net, noise_floor(results.runs, summary.over),
                          summary.precision)


def test_the_quick_sweeps_answer_by_use_case_is_the_golden_one():
    assert "\n".join(_lines(QUICK)) + "\n" == (QUICK / "usecases.golden.txt").read_text()


def test_the_answer_by_use_case_opens_the_sweeps_output_in_about_ten_lines():
    results = ResultSet.load(QUICK)
    blocks = answer_blocks(results, ResultSummary.of(results))
    first = "\n".join(blocks).split("\n\n")[0].splitlines()
    assert first[0].startswith("The answer by use case")
    assert len(first) <= 11 and max(map(len, first)) <= 120
    assert [line.split(":")[0] for line in first if not line.startswith("  ")][1:] == [
        "Databases", "Builds and CI", "Dense hosting", "Not measured by this run"]
    # the sentences per spec are not in the sweep's answer (they are in storprof table and the report)
    assert not any("(Docker " in line for line in blocks)


def test_a_network_run_answers_the_web_case_and_names_the_storage_cases_it_did_not_measure():
    results = ResultSet.load(FIXTURES / "results-net")
    summary = ResultSummary.of(results)
    cases = use_cases(summary.over, summary.ops, summary.net, None, summary.precision)
    assert [c.case for c in cases] == ["Web and network paths", "Not measured by this run"]
    assert "worst proxy-loopback" in cases[0].text        # docker-proxy: the article's 15%, and more here
    assert "databases, builds and CI, dense hosting" in cases[1].text


def test_between_is_welchs_interval_on_the_logs_of_the_two_samples():
    rng = np.random.default_rng(7)
    a = np.exp(rng.normal(math.log(0.9), 0.05, 12))
    b = np.exp(rng.normal(math.log(0.6), 0.12, 5))
    gap = between(ratio_interval(list(a)), ratio_interval(list(b)))
    la, lb = np.log(a), np.log(b)
    va, vb = la.var(ddof=1) / len(la), lb.var(ddof=1) / len(lb)
    df = (va + vb) ** 2 / (va ** 2 / (len(la) - 1) + vb ** 2 / (len(lb) - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    d = la.mean() - lb.mean()
    assert gap.ratio == pytest.approx(math.exp(d))
    assert (gap.low, gap.high) == pytest.approx((math.exp(d - half), math.exp(d + half)))


def test_picking_the_extremes_among_more_choices_widens_the_interval():
    a, b = RatioInterval(1.0, 0.9, 1.1, 6, 0.95), RatioInterval(0.8, 0.7, 0.9, 6, 0.95)
    one, ten = between(a, b), between(a, b, comparisons=10)
    assert ten.low < one.low < one.ratio == ten.ratio < one.high < ten.high
    assert ten.confidence == pytest.approx(0.995)
    assert between(a, RatioInterval(0.8, 0.0, math.inf, 1, 0.95)) is None


def _choice(name: str, ratio: float, half: float, n: int = 20) -> Choice:
    return Choice(name, RatioInterval(ratio, ratio / (1 + half), ratio * (1 + half), n, 0.95), True)


def _floor(lowest: float, highest: float) -> NoiseFloor:
    return NoiseFloor(0.05, 30, 3, 3, 10, "host-aa", lowest, highest)


def test_a_gap_is_real_only_beyond_the_drift_the_same_run_twice_showed():
    apart = [_choice("a", 1.0, 0.01), _choice("b", 0.95, 0.01)]
    assert "a real difference" in _line("x", apart, "of host", None, 0.05, "specs")
    drifted = _line("x", apart, "of host", _floor(0.93, 1.07), 0.05, "specs")
    assert "not told apart from this machine's drift between runs (0.93x–1.07x)" in drifted
    close = [_choice("a", 1.0, 0.01), _choice("b", 0.995, 0.01)]
    assert "no measurable difference (within ±5%)" in _line("x", close, "of host", None, 0.05, "specs")
    wide = [_choice("a", 1.0, 0.5, 3), _choice("b", 0.8, 0.5, 3)]
    assert wide and _line("x", wide, "of host", None, 0.05, "specs").endswith(
        "not yet told apart (n=3; 2 specs).")


def test_one_spec_is_named_alone_not_ranked():
    line = _line("fsync'd 4 KiB writes", [_choice("vfs@ext4", 0.97, 0.02)], "of host", None, 0.05, "specs")
    assert line == "fsync'd 4 KiB writes: only vfs@ext4 measured, 0.97x [0.95–0.99] of host (n=20)."


def test_the_lines_wrap_without_breaking_a_spec_at_its_hyphen():
    wrapped = [textwrap.fill(line, 120, subsequent_indent="  ", break_on_hyphens=False) for line in _lines(QUICK)]
    assert not any(row.endswith("fuse-") for w in wrapped for row in w.splitlines())
