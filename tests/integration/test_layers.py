"""Layer timing on real overlay2 and vfs daemons with tiny sizes (needs root)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from storprof import results
from storprof.engine.containers import LABEL
from storprof.engine.drivers import DriverSpec
from storprof.harness.plan import SweepPlan
from storprof.harness.scheduler import run_units
from storprof.harness.sweep import Sweep
from storprof.results import ResultSet
from storprof.storage.layers import LayerPlan, LayerTiming, growth, summarize_layers
from tests.conftest import setup_provides, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]

# Large images far apart in size: vfs's copy of 48 MiB more was lost in a noisy disk's create times
# (a slope of -3.7 ms per 100 MiB in CI, 2026-12-03); 224 MiB more is a copy of some hundred ms.
TINY = LayerPlan(samples=3, layer_sizes_mib=(0, 8, 16), depths=(1, 2, 3), bulk=4, large_images_mib=(32, 256))
OPS = {"container create", "container start", "container rm", "commit", "image rm",
       "image build (per layer)", "image rm (whole stack)", "bulk create", "bulk rm", "host write", "host copy"}


@pytest.fixture(scope="module")
def layer_records():
    """One run over overlay2 and vfs; inside each session, check no labelled object but the
    bench image is left once timing ends."""
    workdir = Path(tempfile.mkdtemp(prefix="storprof-layers-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-layers-out-"))
    specs = [DriverSpec("overlay2", "ext4"), DriverSpec("vfs", "ext4")]
    config = SweepPlan(specs=specs, jobs=[], placements=("host",), repeat=1, workdir=workdir, layers=TINY)
    store = results.ResultsStore(out, {})
    sweep = Sweep(config, store, lambda line: None)
    leftovers = {}
    for i, spec in enumerate(specs):
        with sweep.ephemeral_session(i, spec) as session:
            timing = LayerTiming(TINY)
            run_units([(timing, timing.units(str(spec), frozenset()))], session, sweep.sink, lambda unit, summary: None)
            client = session.daemon.client
            bench = client.images.get(session.context.image).id
            leftovers[str(spec)] = (
                [c.name for c in client.containers.list(all=True, filters={"label": LABEL})],
                [i.id for i in client.images.list(all=True, filters={"label": LABEL}) if i.id != bench])
    yield ResultSet.load(out).layers, leftovers, workdir, config.run_id
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(workdir, ignore_errors=True)


def test_every_operation_is_timed_and_positive(layer_records):
    records, _, _, _ = layer_records
    for spec in ("overlay2@ext4", "vfs@ext4"):
        mine = [r for r in records if r.context.driver_spec == spec]
        assert {r.op for r in mine} == OPS
        assert all(r.seconds > 0 for r in mine)
    rows = summarize_layers(records)
    assert all(r["p95_ms"] >= r["p50_ms"] > 0 for r in rows)


def test_vfs_container_create_grows_with_image_size_and_overlay2_does_not(layer_records):
    records, _, _, _ = layer_records
    slopes = {r["driver_spec"]: r["slope"] for r in growth(records) if r["unit"] == "ms per 100 MiB of image"}
    # vfs copies the image for every container; overlay2 only makes two small directories.
    assert slopes["vfs@ext4"] > 10
    assert slopes["vfs@ext4"] > 5 * max(slopes["overlay2@ext4"], 1.0)


def test_vfs_containers_take_space_and_overlay2_ones_almost_none(layer_records):
    records, _, _, _ = layer_records
    per = {r.context.driver_spec: r.bytes_per_container for r in records if r.op == "bulk create"}
    assert per["vfs@ext4"] > 50 * 2**20          # a copy of the bench image (about 80 MiB)
    assert per["overlay2@ext4"] < 5 * 2**20


def test_deep_images_have_the_requested_depth(layer_records):
    records, _, _, _ = layer_records
    depth = {(r.context.driver_spec, r.depth): r.layers for r in records if r.op == "image rm (whole stack)"}
    for spec in ("overlay2@ext4", "vfs@ext4"):
        assert depth[(spec, 3)] == depth[(spec, 1)] + 2


def test_nothing_labelled_left_and_nothing_on_the_machine(layer_records):
    _, leftovers, workdir, run_id = layer_records
    assert leftovers == {"overlay2@ext4": ([], []), "vfs@ext4": ([], [])}
    assert storprof_leftovers(str(workdir)) == [] and storprof_leftovers(run_id) == []
    assert list(workdir.iterdir()) == []
