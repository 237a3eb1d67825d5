"""The max-depth search on real daemons: it stops at a real failure and reports it (needs root).

overlay2 and vfs on the system engine run Docker's documented 125 layers and fail to load 126 with
the layer store's own "max depth exceeded", in two probes. With the containerd image store
(c8d-overlayfs, when an engine that has it is fetched) the layer store's check is gone and the
kernel's is what stops it: 500 image layers and the container's init layer are 501 lower
directories, one over overlayfs's 500; the search starts at 499 there to stay quick (the full
bisection from 125 is in tests/fixtures/results-max-depth)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from storprof import results
from storprof.engine.drivers import DriverSpec
from storprof.engine.engines import all_engines, newest_with_containerd_store
from storprof.harness.plan import SweepPlan
from storprof.harness.sweep import Sweep
from storprof.results import ResultSet
from storprof.storage.maxdepth import MaxDepthPlan
from storprof.views.own_views import depth_rows
from tests.conftest import require_or_skip, setup_provides, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]

C8D = newest_with_containerd_store(all_engines())
CASES = {
    "overlay2": (DriverSpec("overlay2", "ext4"), MaxDepthPlan(ceiling=130)),
    "vfs": (DriverSpec("vfs", "ext4"), MaxDepthPlan(ceiling=130)),
    "c8d-overlayfs": (DriverSpec("c8d-overlayfs", "ext4", C8D.name) if C8D else None,
                      MaxDepthPlan(ceiling=500, first=499)),
}


@pytest.fixture(scope="module", params=list(CASES))
def search(request):
    """One sweep with only the max-depth search; yields (driver, probe records, runs, run id, workdir)."""
    spec, plan = CASES[request.param]
    require_or_skip(spec is not None, "no engine with the containerd image store")
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-out-"))
    config = SweepPlan(specs=[spec], jobs=[], placements=("union",), repeat=1, workdir=workdir, max_depth=plan)
    store = results.ResultsStore(out, {"test": True})
    lines: list[str] = []
    try:
        outcomes = Sweep(config, store, lines.append).run()
        assert [o.status for o in outcomes] == ["ok"], (outcomes, lines[-5:])
        loaded = ResultSet.load(store.dir)
        probes = [r for r in loaded.records if getattr(r, "workload", "") == "max-depth"]
        yield request.param, probes, loaded.runs, config.run_id, workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


def _outcomes(probes) -> list[tuple]:
    return [(p.params["depth"], p.params["ok"], p.params["stage"]) for p in sorted(probes, key=lambda p: p.repeat)]


def test_the_search_stops_at_the_first_real_failure(search):
    driver, probes, *_ = search
    if driver == "c8d-overlayfs":
        assert _outcomes(probes) == [(499, True, "ran"), (500, False, "create")]
        failed = probes[-1].params
        assert failed["error"].startswith("failed to mount") and failed["error"].endswith("err: invalid argument")
        assert failed["lowerdirs"] == 501 and failed["mount_data_bytes"] < 4096   # the stack, not the page
    else:
        assert _outcomes(probes) == [(125, True, "ran"), (126, False, "load")]
        assert probes[-1].params["error"] == "max depth exceeded"              # moby's ErrMaxDepthExceeded
    assert [p.params["last"] for p in probes] == [False, True]
    assert all(p.context.driver_spec == str(CASES[driver][0]) for p in probes)


def test_the_image_that_ran_has_its_layers_and_shares_them_with_the_deeper_one(search):
    driver, probes, *_ = search
    ran, failed = sorted(probes, key=lambda p: p.repeat)
    assert ran.params["image_layers"] == ran.params["depth"]       # RootFS.Layers as the daemon reports it
    assert ran.seconds >= ran.params["load_seconds"] > 0
    if driver != "c8d-overlayfs":
        # the 126-layer archive's first 125 layers are the 125-layer image's: the load skips to the
        # 126th and is refused there, instead of extracting 125 layers first
        assert failed.params["load_seconds"] < ran.params["load_seconds"] / 4, (ran.params, failed.params)


def test_depth_rows_report_the_deepest_and_the_failure(search):
    driver, _, runs, *_ = search
    _, rows = depth_rows(runs)
    assert len(rows) == 1
    if driver == "c8d-overlayfs":
        assert rows[0][2:5] == ["499", "500", "create"] and rows[0][5].endswith("err: invalid argument")
    else:
        assert rows[0][2:] == ["125", "126", "load", "max depth exceeded", "2"]


def test_nothing_left_behind(search):
    *_, run_id, workdir = search
    assert storprof_leftovers(str(workdir)) == [] and storprof_leftovers(run_id) == []
    assert list(workdir.iterdir()) == []
