"""harness/registry: one entry per workload is all the plan needs to run it, size it and select it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from storprof.errors import UserError
from storprof.harness import registry
from storprof.harness.plan import QUICK, THOROUGH, SweepPlan, probe_plans


def test_every_entry_has_its_plan_field_and_both_presets_validate():
    fields = {f.name for f in dataclasses.fields(SweepPlan)}
    for entry in registry.REGISTRY:
        assert entry.field in fields, entry.name
        for plan in (entry.quick, entry.thorough):
            plan.validate("overlay2") if entry.name == "layers" else plan.validate()
    assert len(registry.BY_NAME) == len(registry.REGISTRY)


def test_the_presets_take_their_plans_from_the_registry():
    assert QUICK.plan("copyup").sizes_mib == (64,)
    assert THOROUGH.plan("copyup").sizes_mib == (64, 512)
    assert QUICK.plan("max-depth").ceiling == 126 and THOROUGH.plan("max-depth").ceiling == 500
    # the quick sweep runs every union probe but those kept out of it (build), and only those, beside its fio jobs
    assert [j for j in QUICK.jobs if j in registry.PROBES] == list(registry.QUICK_PROBES)
    assert set(registry.UNION_PROBES) - set(registry.QUICK_PROBES) == {"build"}
    assert QUICK.plan("build").package_files < THOROUGH.plan("build").package_files    # --quick --jobs build


def test_workloads_run_in_registry_order_with_restarts_last():
    plans = probe_plans(list(registry.PROBES), ("host", "union"), THOROUGH)
    plan = SweepPlan(specs=[], jobs=[], placements=("host", "union"), layers=THOROUGH.plan("layers"), **plans)
    names = [w.name for w in plan.workloads()]
    assert len(names) == len(registry.REGISTRY)
    assert [type(w) for w in plan.workloads()] == [type(e.make(getattr(plan, e.field), plan, ("host",)))
                                                    for e in registry.REGISTRY]
    assert type(plan.workloads()[-1]).__name__ == "DaemonStart"


def test_an_option_replaces_one_plan_and_union_probes_need_the_union_placement():
    from storprof.storage.probes.lookup import LookupPlan
    plans = probe_plans(["lookup", "snapbench"], ("host", "union"), QUICK, {"lookup": LookupPlan(300)})
    assert plans["lookup"] == LookupPlan(300) and plans["snapbench"] == QUICK.plan("snapbench")
    assert plans["copyup"] is None
    with pytest.raises(UserError, match="lookup probe measures the union placement"):
        probe_plans(["lookup"], ("host", "bind"), QUICK)
    probe_plans(["snapbench"], ("host",), QUICK)   # not a union probe


@dataclass(frozen=True)
class ToyPlan:
    files: int = 3

    def validate(self) -> None:
        if self.files < 1:
            raise UserError("the toy takes 1 or more files")

    def bytes_needed(self) -> int:
        return self.files << 20


class Toy:
    name = "toy"

    def __init__(self, plan: ToyPlan, repeat: int):
        self.plan, self.repeat = plan, repeat


@dataclass(frozen=True)      # as SweepPlan is
class ToySweepPlan(SweepPlan):
    toy: ToyPlan | None = None


def test_a_new_workload_is_one_entry_and_its_plan_field(monkeypatch):
    entry = registry.Registered("toy", "toy", ToyPlan(1), ToyPlan(5), lambda p, sweep, sides: Toy(p, sweep.repeat))
    monkeypatch.setattr(registry, "REGISTRY", (*registry.REGISTRY, entry))
    monkeypatch.setattr(registry, "BY_NAME", {**registry.BY_NAME, "toy": entry})
    plans = probe_plans(["toy"], ("host",), dataclasses.replace(THOROUGH, plans=registry.plans("thorough")))
    assert plans["toy"] == ToyPlan(5)
    plan = ToySweepPlan(specs=[], jobs=[], placements=("host",), repeat=2, **plans)
    (toy,) = plan.workloads()
    assert isinstance(toy, Toy) and toy.plan == ToyPlan(5) and toy.repeat == 2
    # the room a spec needs grows by the toy's own (a 6 GiB job keeps it above the 4 GiB floor)
    from storprof.storage.fio.job import load_job
    big = [load_job("randread-4k").with_overrides(size="6g")]
    bare = ToySweepPlan(specs=[], jobs=big, placements=("host",))
    sized = dataclasses.replace(bare, toy=ToyPlan(5))
    assert sized.backing_size_bytes() - bare.backing_size_bytes() == 5 << 20
    with pytest.raises(UserError, match="toy takes"):
        probe_plans(["toy"], ("host",), THOROUGH, {"toy": ToyPlan(0)})


def test_the_workloads_with_tables_of_their_own_are_registered_and_agree():
    from storprof.stats.summary import OWN_VIEWS
    from storprof.views.own_views import OWN_TABLES
    assert {entry[0] for entry in OWN_TABLES} == set(OWN_VIEWS)
    assert set(OWN_VIEWS) <= set(registry.PROBES)
