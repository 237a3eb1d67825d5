"""Daemon start against the images it holds, on real daemons: restarts of a session's dockerd with
0 and 20 extra images, on overlay2 (the system engine) and the containerd image store (an engine
that has it), small enough for CI (needs root)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from storprof import results
from storprof.engine import containers
from storprof.engine.drivers import DriverSpec
from storprof.engine.engines import all_engines, newest_with_containerd_store
from storprof.harness.plan import SweepPlan
from storprof.harness.sweep import Sweep
from storprof.harness.workload import Sink
from storprof.results import ResultSet
from storprof.storage.daemonstart import MARK, DaemonStart, DaemonStartPlan
from storprof.storage.fio.job import load_job
from storprof.storage.probes.copyup import CopyUpPlan
from tests.conftest import require_or_skip, setup_provides, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]

COUNTS = (0, 20)
SAMPLES = 2
ENGINE = newest_with_containerd_store(all_engines())
# The containerd store's case without an engine: None, skipped (or failed in strict mode) as it starts.
SPECS = [DriverSpec("overlay2", "ext4"), DriverSpec("c8d-overlayfs", "ext4", ENGINE.name) if ENGINE else None]


@pytest.fixture(scope="module", params=SPECS, ids=["overlay2@ext4", "c8d-overlayfs@ext4"])
def sweep(request):
    """A sweep of one spec: a fio job (its union container stays until teardown) and copy-up (its
    image is removed after the restarts) first, then the restarts; yields (spec, outcomes,
    daemon-start records, copy-up records, run id, workdir, messages)."""
    spec = request.param
    require_or_skip(spec is not None, "no engine with the containerd image store")
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-out-"))
    jobs = [load_job("randread-4k").with_overrides(size="16m", runtime=0.5, ramp_time=0)]
    plan = SweepPlan(specs=[spec], jobs=jobs, placements=("host", "union"), repeat=1, workdir=workdir,
                     copyup=CopyUpPlan((1,)), daemon_start=DaemonStartPlan(COUNTS, SAMPLES))
    store = results.ResultsStore(out, {"test": True})
    lines: list[str] = []
    outcomes = Sweep(plan, store, lines.append).run()
    probes = [r for r in ResultSet.load(store.dir).records if getattr(r, "workload", None)]
    yield (str(spec), outcomes, [r for r in probes if r.workload == "daemon-start"],
           [r for r in probes if r.workload == "copyup"], plan.run_id, workdir, lines)
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)


def test_every_restart_is_a_record_and_the_session_ends_ok(sweep):
    spec, outcomes, starts, copyups, *_, lines = sweep
    assert [(o.driver_spec, o.status) for o in outcomes] == [(spec, "ok")], lines[-5:]
    assert [(r.operation, r.images, r.placement, r.repeat) for r in starts] == [
        ("start", n, "daemon", s) for n in COUNTS for s in range(SAMPLES)]
    assert all(0 < r.seconds <= r.params["images_listed_seconds"] < 60 for r in starts), starts
    assert all(r.params["stop_seconds"] > 0 and r.params["relist_seconds"] > 0 for r in starts)
    assert copyups, "copy-up ran before the restarts"


def test_images_present_grow_by_the_counts(sweep):
    _, _, starts, *_ = sweep
    # The bench image and copy-up's image come on top (cleaned up after the restarts, newest first).
    on_top = {r.params["images_present"] - r.params["images"] for r in starts}
    assert on_top == {2}, [(r.params["images"], r.params["images_present"]) for r in starts]
    assert {r.params["containers_present"] for r in starts} == {1}      # fio's union container, stopped


def test_nothing_left_behind(sweep):
    *_, run_id, workdir, _ = sweep
    assert storprof_leftovers(str(workdir)) == [] and storprof_leftovers(run_id) == []
    assert list(workdir.iterdir()) == []


def test_after_the_restarts_the_session_runs_containers_and_only_our_images_are_gone():
    """The workload by hand in one session: after its restarts and cleanup the daemon (a new client
    of the same dockerd) runs a container, and the bench image is still there."""
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-out-"))
    plan = SweepPlan(specs=[SPECS[0]], jobs=[], placements=("host", "union"), repeat=1, workdir=workdir)
    store = results.ResultsStore(out, {"test": True})
    workload = DaemonStart(DaemonStartPlan((0, 3), samples=1))
    try:
        with Sweep(plan, store, lambda line: None).ephemeral_session(0, SPECS[0]) as session:
            sink = Sink(store, lambda line: None)
            workload.prepare(session, sink)
            for unit in workload.units(str(session.spec), frozenset()):
                workload.run(unit, session, sink)
            assert [r.params["images_present"] for r in sink.records] == [1, 4]
            client = session.daemon.client
            assert len(client.images.list(filters={"label": MARK})) == 3
            workload.cleanup(session)
            assert [i.tags for i in client.images.list()] == [[session.context.image]]
            containers.run(client, session.context.image or "", labels=session.labels,
                           command=["/bin/sleep", "0"], remove=True, name=f"{session.name_prefix}-after")
        assert storprof_leftovers(plan.run_id) == []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
