"""Attach mode against a running daemon: measure its driver, touch nothing of the user's (needs root)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from storprof import results
from storprof.engine.containers import LABEL
from storprof.engine.daemon import EphemeralDaemon
from storprof.engine.image import one_file_tar
from storprof.harness.layout import RUNTIME_ROOT
from storprof.harness.plan import SweepPlan
from storprof.harness.sweep import Sweep
from storprof.results import ResultSet
from storprof.storage.fio.job import load_job
from storprof.storage.fio.placements import DEFAULT_PLACEMENTS as PLACEMENTS
from tests.conftest import setup_provides, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="starting the stand-in user daemon needs root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]


@pytest.fixture
def user_daemon():
    """A daemon standing in for the user's own, with the user's image, container and volume."""
    root = Path(tempfile.mkdtemp(prefix="storprof-userd-"))
    daemon = EphemeralDaemon("user@ext4", "overlay2", root / "docker",
                             RUNTIME_ROOT / f"userd-{os.getpid()}", root / "dockerd.log")
    daemon.start()
    client = daemon.client
    client.api.import_image_from_data(one_file_tar("hello.txt", b"the user's own file\n"), repository="user/app",
                                      tag="1")
    volume = client.volumes.create("user-data")
    container = client.containers.create("user/app:1", command=["/nothing"], name="user-app",
                                         volumes={"user-data": {"bind": "/data", "mode": "rw"}})
    try:
        yield daemon, container.id, volume.name
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_attach_measures_the_daemon_driver_and_leaves_user_objects_alone(user_daemon, tmp_path):
    daemon, container_id, volume_name = user_daemon
    jobs = [load_job("randread-4k").with_overrides(size="16m", runtime=1, ramp_time=0)]
    config = SweepPlan(specs=[], jobs=jobs, repeat=1, docker_host=daemon.base_url,
                         workdir=tmp_path / "unused")
    store = results.ResultsStore(tmp_path / "out", {})
    outcomes = Sweep(config, store, lambda line: None).run()

    assert [o.status for o in outcomes] == ["ok"], outcomes
    assert outcomes[0].driver_spec == "overlay2@ext4"
    runs = ResultSet.load(store.dir).runs
    assert set(runs["placement"]) == set(PLACEMENTS)
    assert (runs["read_iops"] > 0).all() and set(runs["attached"]) == {True}
    # the baseline ran in a container on a bind mount under the daemon's data root
    host_detail = runs[runs["placement"] == "host"]["placement_detail"].iloc[0]
    assert host_detail.startswith(f"bind mount of {daemon.data_root()}/storprof-{config.run_id}/")

    client = daemon.client
    assert client.containers.get(container_id).name == "user-app"
    assert client.volumes.get(volume_name).name == "user-data"
    assert client.images.get("user/app:1")
    filt = {"label": LABEL}
    assert client.containers.list(all=True, filters=filt) == []
    assert client.volumes.list(filters=filt) == []
    assert client.images.list(filters=filt) == []
    assert not any(p.name.startswith("storprof-") for p in Path(daemon.data_root()).iterdir())
    assert storprof_leftovers(config.run_id) == []
