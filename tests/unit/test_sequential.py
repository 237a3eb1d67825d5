"""The stopping rule and the allocation of extra rounds (stats/sequential.py), and the simulated
sessions (stats/simulation.py) that check them on the noise measured here (issue 29)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from storprof.stats import sequential as seq
from storprof.stats import simulation as sim
from storprof.stats.intervals import ratio_interval, repeats_needed

RULE = seq.Rule(0.05, max_repeats=30, min_repeats=3)
NAIVE = seq.Rule(0.05, max_repeats=30, min_repeats=3, alpha=0.05, looks=1)


def test_the_early_stop_for_real_is_stricter_than_the_interval_users_see():
    n = np.arange(3, 31)
    assert np.all(seq.stop_t(RULE, n) > seq.plain_t(n))
    assert np.allclose(seq.stop_t(NAIVE, n), seq.plain_t(n))      # one look at 5%: the plain interval
    # a cell whose plain interval just excludes 1.00 is real to users, not yet to the rule
    logs = [0.02, 0.12, 0.05, 0.10, 0.06]
    n_, mean, sd = seq.log_stats([math.exp(x) for x in logs])
    assert ratio_interval([math.exp(x) for x in logs]).excludes_one()
    assert seq.answers(NAIVE, n_, mean, sd) == seq.REAL
    assert seq.answers(RULE, n_, mean, sd) == seq.UNANSWERED
    assert seq.answers(RULE, n_, 0.5, sd) == seq.REAL              # far from 1.00: real at once


def test_a_precise_stop_waits_for_enough_pairs():
    quiet = seq.answers(RULE, np.arange(3, 8), 0.0, 0.005)
    assert list(quiet) == [seq.UNANSWERED] * (seq.PRECISE_FROM - 3) + [seq.PRECISE] * (8 - seq.PRECISE_FROM)
    assert seq.answers(seq.as_users_see(RULE), 3, 0.0, 0.005) == seq.PRECISE
    assert seq.answers(RULE, 10, 0.0, 0.2) == seq.UNANSWERED
    assert seq.answers(RULE, 1, 0.5, 0.01) == seq.UNANSWERED        # one pair says nothing of spread


def test_the_chance_of_an_answer_grows_with_the_rounds_and_with_the_distance_from_one():
    chances = seq.p_answered(RULE, 6, 0.0, 0.06, np.array([1, 3, 8, 20]))
    assert np.all(np.diff(chances) > 0) and 0 < chances[0] < 0.5 and chances[-1] > 0.9
    near, far = seq.p_answered(RULE, 6, np.array([0.01, 0.4]), 0.1, 1)
    assert far > 0.9 > 0.1 > near
    assert seq.p_answered(RULE, 29, 0.0, 0.06, 2) == 0.0            # past max_repeats: no chance


def test_the_rounds_to_an_answer_are_those_the_spread_needs_at_most():
    for sd in (0.046, 0.073, 0.094):
        needed = repeats_needed(sd, 0.05)
        ahead = seq.rounds_to_answer(RULE, 10, 0.0, sd)
        assert 0 <= ahead <= max(0, needed - 10)                     # the optimistic spread needs no more
    assert seq.rounds_to_answer(RULE, 3, 0.0, 0.3) == 28              # never within 30: max - n + 1


def test_the_round_goes_to_the_group_nearest_an_answer_per_second():
    # two groups of one open cell: one a round from the target, one far from it
    n, mean, sd = np.array([8, 8]), np.array([0.0, 0.0]), np.array([0.052, 0.14])
    member = np.eye(2)
    rates = seq.group_rates(RULE, n, mean, sd, np.array([True, True]), member, np.array([2.0, 2.0]),
                            np.array([22, 22]))
    assert rates[0] > rates[1] > 0
    dear = seq.group_rates(RULE, n, mean, sd, np.array([True, True]), member, np.array([200.0, 2.0]),
                           np.array([22, 22]))
    assert dear[1] > dear[0]                                         # per second: a dear round loses
    closed = seq.group_rates(RULE, n, mean, sd, np.array([False, True]), member, np.array([2.0, 2.0]),
                             np.array([22, 22]))
    assert closed[0] == 0


@pytest.fixture(scope="module")
def simulated():
    """Seeded simulated sessions on the measured noise, the three rules on the same draws."""
    start = time.monotonic()
    jobs = sim.Sessions(900, seed=29)
    alone = sim.Sessions(700, seed=31, alone=True)
    out = {(name, budget): sim.run(jobs, name, budget) for name in ("widest", "sequential") for budget in (60, 150)}
    out["naive", 150] = sim.run(jobs, "naive", 150)
    for name in ("sequential", "naive"):
        out[name, "alone"] = sim.run(alone, name, 150)
    out["seconds"] = time.monotonic() - start
    return out


def test_aa_coverage_of_the_final_interval_stays_near_95_percent(simulated):
    for key in (("sequential", 150), ("sequential", 60), ("sequential", "alone")):
        result = simulated[key]
        assert 0.93 <= result.coverage() <= 0.97, key
        if key[1] != "alone":
            assert 0.93 <= result.coverage(aa_only=True) <= 0.97, key


def test_naive_stopping_on_the_plain_interval_visibly_loses_coverage(simulated):
    for budget in (150, "alone"):
        naive, ours = simulated["naive", budget].coverage(), simulated["sequential", budget].coverage()
        assert naive < 0.93 and ours - naive > 0.02, (budget, naive, ours)


def test_the_sequential_rule_answers_more_cells_than_widest_first_in_the_same_budget(simulated):
    for budget in (60, 150):
        old, new = simulated["widest", budget], simulated["sequential", budget]
        for ratio in sim.TRUE_RATIOS:
            assert new.answered_at(ratio) >= old.answered_at(ratio), (budget, ratio)
        assert new.seconds.mean() <= budget
    assert simulated["sequential", 150].answered_at(0.9) > simulated["widest", 150].answered_at(0.9) + 0.1


def test_the_simulation_is_quick(simulated):
    assert simulated["seconds"] < 10


def test_the_benchmark_smoke_run_prints_its_figures_beside_the_targets():
    """benchmarks/sequential.py needs no root or daemon, so its smoke run is a unit test (the
    integration suite's smoke test of every benchmark runs it as well)."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "sequential.py"), "--smoke"], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for figure in ("A/A cell covers 1.00", "answered 0.97x", "target: A/A intervals that contain 1.00 90%-98%",
                   "widest group first (before)", "sequential, stricter real stop (now)", "naive"):
        assert figure in done.stdout, figure
