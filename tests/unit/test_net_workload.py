"""network/workload.py: net as a harness workload, so the one scheduler runs it with a budget,
a precision target and extra rounds; its widths pair as the tables do."""

import math
from pathlib import Path

from storprof.harness.scheduler import Outcome, group_widths, session_precision, short_message
from storprof.harness.workload import Unit
from storprof.network.plan import DEFAULT_WORKLOADS, HOST, NAT, PATHS, PROXY, QUICK, WORKLOADS, NetPlan, NetSettings
from storprof.network.workload import NetPaths, unit_for
from storprof.results import ResultSet
from storprof.results.records import NetRecord
from storprof.stats.network import net_rows, primary
from tests.conftest import FIXTURES

ENGINE = "28.5.2"
RUN = FIXTURES / "results-net-thorough"


def _plan(**kw) -> NetPlan:
    return NetPlan(engines=[ENGINE], paths=list(PATHS)[1:], workloads=list(DEFAULT_WORKLOADS),
                   settings=NetSettings(1, 3), run_id="0123456789", seed=7, **kw)


def test_units_count_repeats_from_0_and_skip_what_is_done():
    plan = _plan()
    net = NetPaths(plan, ENGINE, Path("/nonexistent"), {})
    units = net.units(ENGINE, frozenset())
    assert {u.repeat for u in units} == {0, 1, 2}
    assert len(units) == 3 * len(DEFAULT_WORKLOADS) * len(plan.slots())
    assert all(isinstance(u, Unit) and u.workload == "net" and u.group in WORKLOADS for u in units)
    first = units[0]
    assert first.describe().endswith(" r1")
    left = net.units(ENGINE, frozenset({first.key}))
    assert first not in left and len(left) == len(units) - 1


def test_an_extra_round_is_every_slot_of_one_workload_once_in_an_order_of_its_own():
    plan = _plan()
    net = NetPaths(plan, ENGINE, Path("/nonexistent"), {})
    rounds = [net.extra_round(f"net@{ENGINE}", "latency", k) for k in (3, 4, 5, 6)]
    for k, units in zip((3, 4, 5, 6), rounds):
        assert sorted((u.key[1], u.key[2]) for u in units) == sorted(plan.slots())
        assert {u.repeat for u in units} == {k} and {u.group for u in units} == {"latency"}
    assert len({tuple(u.placement for u in units) for units in rounds}) > 1
    assert rounds[0] == net.extra_round(f"net@{ENGINE}", "latency", 3)      # the seed decides


def test_the_widths_the_scheduler_reads_are_the_tables_intervals():
    """Per workload, the widest half-width of a path's interval against its own namespace's host:
    the same pairing (summary.paired_ratio) the net table shows."""
    records = ResultSet.load(RUN).of(NetRecord)
    widths = group_widths(NetPaths(_plan(), ENGINE, Path("/nonexistent"), {}), records)
    rows = [r for r in primary(net_rows(records)) if r.against == "host" and r.path in PATHS and r.n >= 2]
    assert set(widths) == {r.workload for r in rows}
    for workload, (half, sd) in widths.items():
        widest = max(r.interval.half_width for r in rows if r.workload == workload)
        assert half == widest and sd > 0


def test_widths_leave_out_another_engines_runs():
    records = ResultSet.load(RUN).of(NetRecord)
    assert group_widths(NetPaths(_plan(), "20.10.24", Path("/nonexistent"), {}), records) == {}


def test_the_quick_preset_runs_no_extra_round_unless_asked():
    plan = NetPlan(engines=[ENGINE], paths=["bridge"], workloads=["throughput"], settings=QUICK, run_id="0123456789")
    assert plan.precision is None and plan.budget_seconds is None
    assert session_precision(plan.precision, plan.budget_seconds, 0.0, 0.0, 1) is None
    asked = session_precision(0.05, 600.0, 100.0, 160.0, 2)
    assert asked.target == 0.05 and math.isclose(asked.deadline, 160.0 + 270.0 - 5.0)


def test_short_of_the_target_names_the_widest_first():
    outcome = Outcome(ran=12, extra_rounds=2, short={"net latency": 0.08, "net throughput": 0.21})
    assert short_message(f"net@{ENGINE}", outcome, 0.05) == (
        f"[net@{ENGINE}] short of ±5% after 2 extra rounds: net throughput ±21%, net latency ±8%")
    assert short_message("x", Outcome(), 0.05) is None


def test_each_unit_key_names_its_path_namespace_and_round():
    unit = unit_for(ENGINE, "http", HOST, PROXY, 0)
    assert unit.key == (ENGINE, HOST, PROXY, "http", 0) and unit.placement == f"{HOST}@{PROXY}"
    assert unit_for(ENGINE, "http", "bridge", NAT, 4).describe() == "http bridge r5"


class _Replay(NetPaths):
    """The thorough run's own records played back in the scheduler's order: what a session would
    measure, without a daemon. A round past the run's five repeats replays round (k mod 5)."""

    def __init__(self, plan, records):
        super().__init__(plan, ENGINE, Path("/nonexistent"), {})
        self.by = {(r.path, r.namespace, r.workload, r.repeat): r for r in records}

    def measure(self, session, sink, repeat, workload, path, ns):
        import dataclasses
        return dataclasses.replace(self.by[(path, ns, workload, repeat % 5)], repeat=repeat)


class _Store:
    def __init__(self):
        self.lines = []

    def append(self, record):
        self.lines.append(record)


class _Session:
    label = f"net@{ENGINE}"

    def __init__(self):
        from storprof.harness.timeaccount import TimeAccount
        self.times = TimeAccount()


def test_the_scheduler_spends_extra_rounds_on_the_widest_net_workload():
    from storprof.harness.scheduler import Precision, run_units
    from storprof.harness.workload import Sink
    records = ResultSet.load(RUN).of(NetRecord)
    plan = NetPlan(engines=[ENGINE], paths=list(PATHS)[1:], workloads=list(DEFAULT_WORKLOADS),
                   settings=NetSettings(5, 3),
                   run_id="0123456789", seed=7, precision=0.25)
    net = _Replay(plan, records)
    sink, done = Sink(_Store(), lambda line: None), []
    outcome = run_units([(net, net.units(ENGINE, frozenset()))], _Session(), sink, lambda u, s: done.append(u),
                        Precision(0.25, max_repeats=12))
    minimum = 3 * len(DEFAULT_WORKLOADS) * len(plan.slots())
    assert outcome.ran == len(done) == len(sink.records) > minimum
    extra = done[minimum:]
    assert outcome.extra_rounds == len(extra) // len(plan.slots()) >= 1
    assert all(u.repeat >= 3 for u in extra)
    for k in range(outcome.extra_rounds):             # each extra round: one workload's every slot once
        one = extra[k * len(plan.slots()):(k + 1) * len(plan.slots())]
        assert len({u.group for u in one}) == 1 and len({u.repeat for u in one}) == 1
        assert sorted((u.key[1], u.key[2]) for u in one) == sorted(plan.slots())
    assert max(u.repeat for u in extra) < 12
    widths = group_widths(net, sink.records)         # what is left short is reported, the rest reached the target
    assert {f"net {g}" for g, (half, _) in widths.items() if half > math.log1p(0.25)} == set(outcome.short)
