"""Intervals, verdicts, the false discovery rate and the scheduler's extra rounds, on constructed
data whose answer is known (issue 14)."""

from __future__ import annotations

import contextlib
import math
import random

import pandas as pd
import pytest

from storprof.harness import scheduler
from storprof.harness.scheduler import Precision, run_units
from storprof.harness.workload import Unit
from storprof.results.records import ProbeRecord, RunContext
from storprof.stats import intervals as stats
from storprof.stats import summary
from storprof.stats.intervals import REAL, SAME, UNKNOWN, RatioInterval
from storprof.stats.sequential import PRECISE_FROM, UNANSWERED, Rule, answers
from storprof.storage.fio.placements import AA
from storprof.views import tables

CONTEXT = RunContext(run_id="r1", driver_spec="fake@ext4", driver="fake", fs="ext4")


# --- intervals ---------------------------------------------------------------------------------------

def test_a_ratio_interval_is_the_t_interval_of_the_log_ratios():
    ratios = [0.9, 1.0, 1.1, 0.95]
    logs = [math.log(r) for r in ratios]
    mean = sum(logs) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 3)
    half = 3.182446305284263 * sd / 2                    # t(0.975, 3) * sd / sqrt(4)
    interval = stats.ratio_interval(ratios)
    assert interval.ratio == pytest.approx(math.exp(mean))
    assert (interval.low, interval.high) == (pytest.approx(math.exp(mean - half)), pytest.approx(math.exp(mean + half)))
    assert interval.n == 4


def test_one_pair_knows_nothing_and_none_is_nothing():
    assert stats.ratio_interval([1.2]).high == math.inf and stats.ratio_interval([]) is None
    assert stats.classify(stats.ratio_interval([1.2]), 0.05) == UNKNOWN


def test_a_95_percent_interval_covers_the_truth_95_percent_of_the_time():
    rng = random.Random(14)
    truth, hits, trials = 0.8, 0, 4000
    for _ in range(trials):
        ratios = [truth * math.exp(rng.gauss(0, 0.1)) for _ in range(5)]
        interval = stats.ratio_interval(ratios)
        hits += interval.low <= truth <= interval.high
    assert 0.935 < hits / trials < 0.965


@pytest.mark.parametrize("low, high, verdict", [(0.90, 0.96, REAL), (1.02, 1.3, REAL), (0.97, 1.04, SAME),
                                                 (0.90, 1.04, UNKNOWN), (0.7, 1.6, UNKNOWN)])
def test_verdicts(low, high, verdict):
    assert stats.classify(RatioInterval(1.0, low, high, 5, 0.95), precision=0.05) == verdict


def test_repeats_needed_reach_the_target_and_one_fewer_does_not():
    for sd in (0.01, 0.05, 0.1):
        n = stats.repeats_needed(sd, 0.05)
        assert stats.detectable(sd, n) <= 0.05 + 1e-12
        if n > 2:
            assert stats.detectable(sd, n - 1) > 0.05


def test_pooled_spread_of_controls():
    sd, df = stats.pooled_sd_log([[1.0, 1.1], [0.9, 0.9, 0.9], [1.2]])
    assert df == 1 + 2 and sd == pytest.approx(math.sqrt((math.log(1.1) ** 2 / 2) / 3))


# --- the false discovery rate --------------------------------------------------------------------------

def test_benjamini_hochberg_on_a_worked_example():
    # m = 5: p(1..5) = 0.01, 0.02, 0.03, 0.04, 0.2 -> q = 0.05 for the first four, 0.2 for the last
    q = stats.benjamini_hochberg([0.03, 0.2, 0.01, None, 0.04, 0.02])
    assert q[3] is None
    assert [round(v, 6) for v in (q[2], q[5], q[0], q[4], q[1])] == [0.05, 0.05, 0.05, 0.05, 0.2]


def test_fdr_keeps_false_discoveries_rare_among_many_null_rows():
    rng = random.Random(5)
    nulls = [rng.random() for _ in range(500)]                   # p-values of rows that did not change
    assert sum(q < 0.05 for q in stats.benjamini_hochberg(nulls)) <= 1
    assert sum(p < 0.05 for p in nulls) > 10                     # what an uncorrected test would call


def test_welch_on_logs_finds_a_change_by_a_factor():
    assert stats.welch_log_p([100, 102, 98, 101], [80, 81, 79, 80]) < 0.001
    assert stats.welch_log_p([100, 102, 98], [99, 101, 100]) > 0.2
    assert stats.welch_log_p([100], [80, 81]) is None


# --- the scheduler's extra rounds ------------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeSession:
    label = "fake@ext4"
    context = CONTEXT

    class times:
        @staticmethod
        @contextlib.contextmanager
        def phase(name):
            yield


class FakeSink:
    def __init__(self):
        self.records = []
        self.message = lambda line: None

    def emit(self, record):
        self.records.append(record)


class NoisyGroups:
    """Two groups whose union/host ratio is 1.0 with log-noise `sd` each; a unit takes a second."""

    name = "fake"

    def __init__(self, clock: Clock, sds: dict[str, float]):
        self.clock, self.sds, self.rng = clock, sds, random.Random(7)
        self.cleaned = False

    def units(self, repeats: int) -> list[Unit]:
        return [u for r in range(repeats) for g in self.sds for u in self.extra_round("fake@ext4", g, r)]

    def extra_round(self, spec, group, repeat):
        return [Unit(self.name, group, p, repeat, (group, p, repeat)) for p in ("host", "union")]

    def group_of(self, record):
        return record.operation

    def prepare(self, session, sink):
        pass

    def run(self, unit, session, sink):
        self.clock.now += 1.0
        noise = self.rng.gauss(0, self.sds[unit.group]) if unit.placement == "union" else 0.0
        sink.emit(ProbeRecord(context=CONTEXT, workload="fake", operation=unit.group, placement=unit.placement,
                              repeat=unit.repeat, seconds=math.exp(noise)))
        return "ok"

    def cleanup(self, session):
        self.cleaned = True


def rounds(sink: FakeSink, group: str) -> int:
    return len({r.repeat for r in sink.records if r.operation == group})


def test_extra_rounds_go_to_the_noisy_group_until_it_is_answered(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock)
    work = NoisyGroups(clock, {"quiet": 0.005, "noisy": 0.08})
    sink = FakeSink()
    outcome = run_units([(work, work.units(3))], FakeSession(), sink, lambda u, s: None, Precision(0.05))
    # within ±5% after the minimum, but no "precise" stop before PRECISE_FROM pairs (sequential.py)
    assert rounds(sink, "quiet") == PRECISE_FROM
    assert rounds(sink, "noisy") >= PRECISE_FROM
    assert outcome.extra_rounds == rounds(sink, "noisy") - 3 + PRECISE_FROM - 3
    assert outcome.short == {} and outcome.given_up == [] and work.cleaned
    rule = Rule(0.05)
    for cell in scheduler.cell_states(work, sink.records):          # every cell has its answer
        assert answers(rule, cell.n, cell.mean, cell.sd) != UNANSWERED


def test_a_cell_the_deadline_leaves_no_room_for_is_given_up_at_once_and_named(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock)
    work = NoisyGroups(clock, {"quiet": 0.005, "noisy": 0.1})
    sink = FakeSink()
    # the minimum takes 12 s; the deadline leaves 4.5 s: two rounds of 2 s, and neither cell can
    # be answered in two (the quiet one needs PRECISE_FROM - 3 = 3, the noisy one about 20; from
    # three pairs its spread may look smaller, so it may get a round or two before it is given up)
    outcome = run_units([(work, work.units(3))], FakeSession(), sink, lambda u, s: None,
                        Precision(0.05, deadline=16.5))
    assert rounds(sink, "quiet") == 3 and clock.now <= 16.5
    assert list(outcome.short) == ["fake noisy"]          # the quiet cell reads ±0.5%: answered to users
    assert [(g.group, g.cell) for g in outcome.given_up] == [("noisy", "union")]
    assert "s left" in outcome.given_up[0].reason
    line = scheduler.short_message("fake@ext4", outcome, 0.05)
    assert line.startswith("[fake@ext4] short of ±5% after 0 extra rounds: fake noisy ±")
    assert line.endswith(f"Given up: fake noisy union ({outcome.given_up[0].reason})")


def test_the_budget_bounds_the_base_rounds_past_the_floor(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock)
    work = NoisyGroups(clock, {"quiet": 0.005, "noisy": 0.1})
    sink = FakeSink()
    added = []
    # 4 units a repeat, a second each: repeats 0 and 1 end at 8 s, past the deadline of 6 s; they
    # run (the floor), and repeats 2 to 4 are left out, counted and said
    outcome = run_units([(work, work.units(5))], FakeSession(), sink, lambda u, s: None,
                        Precision(0.05, deadline=6.0), more=added.append)
    assert {r.repeat for r in sink.records} == {0, 1} and clock.now == 8.0
    assert outcome.cut == {"fake": 12} and sum(added) == -12 and outcome.extra_rounds == 0
    line = scheduler.short_message("fake@ext4", outcome, 0.05)
    assert "budget was spent before the base rounds ended: runs past repeat 2 left out (fake 12)" in line
    # without a budget every base round runs
    sink = FakeSink()
    outcome = run_units([(work, work.units(5))], FakeSession(), sink, lambda u, s: None, None)
    assert {r.repeat for r in sink.records} == {0, 1, 2, 3, 4} and outcome.cut == {}


def test_the_time_left_goes_to_the_cell_it_can_answer(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock)
    work = NoisyGroups(clock, {"quiet": 0.005, "noisy": 0.1})
    sink = FakeSink()
    outcome = run_units([(work, work.units(3))], FakeSession(), sink, lambda u, s: None,
                        Precision(0.05, deadline=18.5))
    assert rounds(sink, "quiet") == PRECISE_FROM and rounds(sink, "noisy") == 3 and clock.now <= 18.5
    assert [g.group for g in outcome.given_up] == ["noisy"]


def test_a_group_that_could_never_reach_the_target_gets_no_extra_rounds(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock)
    work = NoisyGroups(clock, {"hopeless": 1.0})
    sink = FakeSink()
    outcome = run_units([(work, work.units(3))], FakeSession(), sink, lambda u, s: None,
                        Precision(0.05, max_repeats=10))
    assert rounds(sink, "hopeless") == 3 and outcome.extra_rounds == 0 and "fake hopeless" in outcome.short
    assert [str(g) for g in outcome.given_up] == ["fake hopeless union (needs more than 10 repeats)"]


def test_without_a_precision_target_only_the_planned_units_run(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(scheduler.time, "monotonic", clock)
    work = NoisyGroups(clock, {"noisy": 0.1})
    sink = FakeSink()
    outcome = run_units([(work, work.units(3))], FakeSession(), sink, lambda u, s: None)
    assert outcome.ran == 6 and rounds(sink, "noisy") == 3


# --- the noise floor: the A/A control first, the container controls without it ----------------------

def _fio_row(job: str, placement: str, repeat: int, iops: float) -> dict:
    return {"driver_spec": "overlay2@ext4", "job": job, "placement": placement, "repeat": repeat, "run_id": "r1",
            "status": "ok", "primary_metric": "iops", "total_iops": iops, "kind": "fio", "direct": True,
            "own_files": False, "p99_clat_ns": 100.0, "read_clat_p99_ns": 100.0, "read_iops": iops,
            "write_iops": 0.0}


def _runs(aa_noise: list[float] | None, bind_factor: float = 0.9) -> pd.DataFrame:
    rows = []
    for job in ("a", "b"):
        for r, wiggle in enumerate([1.0, 1.02, 0.98, 1.01]):
            rows.append(_fio_row(job, "host", r, 1000.0))
            rows.append(_fio_row(job, "bind", r, 1000.0 * bind_factor * wiggle))
            if aa_noise is not None:
                rows.append(_fio_row(job, AA, r, 1000.0 * aa_noise[r]))
    return pd.DataFrame(rows)


def test_the_noise_floor_reads_the_aa_control_when_the_sweep_ran_it():
    noise = [1.01, 0.99, 1.02, 0.98]
    runs = _runs(noise)
    floor = summary.noise_floor(runs, summary.summarize(runs))
    logs = [math.log(x) for x in noise]
    mean = sum(logs) / 4
    assert floor.source == AA and floor.cells == 2 and floor.covering == 2
    assert floor.sd_log == pytest.approx(math.sqrt(sum((x - mean) ** 2 for x in logs) / 3))
    assert floor.df == 6 and floor.typical_n == 4
    line = tables.noise_floor_line(floor)
    assert "2 of 2 A/A intervals" in line and "host-aa ÷ host" in line


def test_an_aa_control_off_the_truth_is_counted_as_not_covering():
    runs = _runs([1.20, 1.22, 1.19, 1.21])       # the "same" run 20% faster every time: intervals miss 1.00
    floor = summary.noise_floor(runs, summary.summarize(runs))
    assert floor.covering == 0 and floor.cells == 2


def test_without_an_aa_control_the_container_controls_give_the_spread_not_a_coverage_test():
    runs = _runs(None, bind_factor=0.9)          # the container's cost: 0.9x, steadily
    floor = summary.noise_floor(runs, summary.summarize(runs))
    assert floor.source == "bind/volume" and floor.covering == 0
    assert floor.sd_log < 0.03                                # the 10% offset is not noise
    assert "also hold the container's cost" in tables.noise_floor_line(floor)


def test_the_answers_line_counts_verdicts_and_leaves_the_aa_control_out():
    runs = _runs([1.0, 1.0, 1.0, 1.0])
    line = tables.answers_line(summary.summarize(runs), 0.05)
    assert "2 real differences" in line and "of 2 ratio cells" in line


def test_the_aa_control_runs_only_for_the_jobs_it_is_asked_for():
    from storprof.storage.fio.cells import FioCells
    from storprof.storage.fio.job import load_job
    jobs = [load_job("randread-4k"), load_job("randwrite-4k")]
    cells = FioCells(jobs, ("host", "union", AA), 2, 60, aa_jobs=("randread-4k",))
    units = cells.units("overlay2@ext4", frozenset())
    assert {u.placement for u in units if u.group == "randread-4k"} == {"host", "union", AA}
    assert {u.placement for u in units if u.group == "randwrite-4k"} == {"host", "union"}
    assert len(units) == 2 * 3 + 2 * 2
    assert {u.placement for u in cells.extra_round("overlay2@ext4", "randwrite-4k", 2)} == {"host", "union"}
    every = FioCells(jobs, ("host", "union", AA), 2, 60)
    assert len(every.units("overlay2@ext4", frozenset())) == 2 * 2 * 3
