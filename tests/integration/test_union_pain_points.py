"""The union costs users hit, on real overlay2 and vfs daemons: small-file appends, a directory
rename, a chown, and the page cache of containers reading one image file; overlay2 also with
redirect_dir and metacopy switched on for its session (needs root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from storprof import results
from storprof.engine.drivers import DriverSpec
from storprof.engine.unionconfig import OVERLAY_PARAMS, overlay_params
from storprof.harness.plan import SweepPlan
from storprof.harness.sweep import Sweep
from storprof.results import ResultSet
from storprof.storage.probes.pagecache import PageCachePlan
from storprof.storage.probes.unionops import OPS as OPERATIONS
from storprof.storage.probes.unionops import UnionOpsPlan, row
from storprof.views.labels import probe_label
from tests.conftest import setup_provides, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]

MIB = 2**20
OPS = UnionOpsPlan(small_files=300, small_bytes=512, tree_files=40, tree_mib=8, chown_mib=16)
CACHE = PageCachePlan(containers=3, file_mib=16)
SWITCHED = "overlay2@ext4+metacopy+redirect_dir"
CAN_SWITCH = all(os.access(OVERLAY_PARAMS / p, os.W_OK) for p in ("redirect_dir", "metacopy"))


@pytest.fixture(scope="module")
def swept():
    """One sweep of overlay2, overlay2 with redirect_dir and metacopy (where the kernel lets them be
    switched), and vfs; yields (runs, results dir, overlay parameters before, after)."""
    specs = [DriverSpec("overlay2", "ext4"), DriverSpec("vfs", "ext4")]
    if CAN_SWITCH:
        specs.insert(1, DriverSpec.parse(SWITCHED, "ext4"))
    before = overlay_params()
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-out-"))
    plan = SweepPlan(specs=specs, jobs=[], placements=("host", "union"), repeat=2, workdir=workdir,
                     union_ops=OPS, page_cache=CACHE)
    store = results.ResultsStore(out, {"test": True})
    lines: list[str] = []
    outcomes = Sweep(plan, store, lines.append).run()
    assert [o.status for o in outcomes] == ["ok"] * len(specs), (outcomes, lines[-5:])
    after = overlay_params()
    assert not storprof_leftovers(str(workdir))
    yield ResultSet.load(store.dir).runs, store.dir, before, after
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)


def _rows(runs, spec: str, job: str, placement: str = "union"):
    sel = runs[(runs.driver_spec == spec) & (runs.job == job) & (runs.placement == placement)]
    assert len(sel) == 2, (spec, job, placement, len(sel))
    return sel


def test_rename_copies_the_tree_up_on_overlay2_and_not_on_vfs(swept):
    runs, *_ = swept
    job = probe_label(**row(OPS, "rename"))
    overlay = _rows(runs, "overlay2@ext4", job)
    # redirect_dir off (this kernel's default): rename(2) fails with EXDEV and the tree is copied
    assert set(overlay.param_path) == {"copy+delete (EXDEV)"}
    assert (overlay.bytes >= OPS.tree_mib * MIB).all(), overlay.bytes.tolist()
    vfs = _rows(runs, "vfs@ext4", job)
    assert set(vfs.param_path) == {"rename(2)"}
    assert (vfs.bytes.abs() < MIB).all(), vfs.bytes.tolist()
    host = _rows(runs, "overlay2@ext4", job, "host")
    assert set(host.param_path) == {"rename(2)"}


@pytest.mark.skipif(not CAN_SWITCH, reason="this kernel's overlay module parameters cannot be written")
def test_redirect_dir_renames_in_place_and_metacopy_chowns_metadata_only(swept):
    runs, _, before, after = swept
    rename = _rows(runs, SWITCHED, probe_label(**row(OPS, "rename")))
    assert set(rename.param_path) == {"rename(2)"}
    assert (rename.bytes < OPS.tree_mib * MIB / 4).all(), rename.bytes.tolist()
    chown_on = _rows(runs, SWITCHED, probe_label(**row(OPS, "chown")))
    chown_off = _rows(runs, "overlay2@ext4", probe_label(**row(OPS, "chown")))
    assert (chown_off.bytes >= OPS.chown_mib * MIB).all(), chown_off.bytes.tolist()
    assert (chown_on.bytes < OPS.chown_mib * MIB / 4).all(), chown_on.bytes.tolist()
    # the records say what the session ran with, and the daemon its diff path; the host is as before
    switched = runs[runs.driver_spec == SWITCHED].iloc[0]
    assert switched.overlay_params["redirect_dir"] == "Y" and switched.overlay_params["metacopy"] == "Y"
    assert switched.driver_status.get("Native Overlay Diff") == "false"
    plain = runs[runs.driver_spec == "overlay2@ext4"].iloc[0]
    assert plain.overlay_params["redirect_dir"] == before["redirect_dir"]
    assert after == before


def test_appends_copy_each_small_file_up_on_overlay2(swept):
    runs, *_ = swept
    job = probe_label(**row(OPS, "append"))
    overlay = _rows(runs, "overlay2@ext4", job)
    # one block per file copied to the upper layer at the least
    assert (overlay.bytes >= OPS.small_files * 512).all(), overlay.bytes.tolist()
    host = _rows(runs, "overlay2@ext4", job, "host")
    assert overlay.seconds.median() > host.seconds.median()
    assert (_rows(runs, "vfs@ext4", job).bytes.abs() < MIB).all()


def test_page_cache_is_shared_on_overlay2_and_not_on_vfs(swept):
    runs, *_ = swept
    later = f"page cache: each later reader of {CACHE.file_mib} MiB"
    size = CACHE.file_mib * MIB
    assert (_rows(runs, "overlay2@ext4", later).bytes < 0.2 * size).all()
    assert (_rows(runs, "vfs@ext4", later).bytes > 0.8 * size).all()
    first = f"page cache: 1st of {CACHE.containers} readers of {CACHE.file_mib} MiB"
    for spec in ("overlay2@ext4", "vfs@ext4"):
        assert (_rows(runs, spec, first).bytes > 0.8 * size).all()       # the cache was dropped first
    assert (_rows(runs, "overlay2@ext4", later, "host").bytes < 0.2 * size).all()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "storprof.cli", *args], capture_output=True, text=True, timeout=300)


def test_every_new_row_is_in_the_table_the_report_and_compare(swept):
    _, out, *_ = swept
    names = [*(probe_label(**row(OPS, op)) for op in OPERATIONS),
             f"page cache: each later reader of {CACHE.file_mib} MiB"]
    table = _cli("table", str(out))
    assert table.returncode == 0, table.stderr
    report = _cli("report", str(out))
    assert report.returncode == 0, report.stderr
    html = (out / "report.html").read_text()
    compare = _cli("compare", "--all", str(out), str(out))
    assert compare.returncode == 0, compare.stderr
    for name in names:
        assert name in table.stdout and name in html and name in compare.stdout, name
    assert "copy+delete (EXDEV)" in table.stdout
    assert "Union configuration" in html and "Native Overlay Diff" in html
