"""The union probes' pure parts: the deep-stack archive, depth parsing, and the timed file calls."""

import hashlib
import io
import json
import os
import tarfile

import pytest

from storprof.engine.image import RootfsPlan, plan_rootfs
from storprof.errors import UserError
from storprof.storage.probes import copyup, deepstack, filetiming
from storprof.views.labels import probe_label


def _sleep_plan() -> RootfsPlan:
    return plan_rootfs(("sleep",))


def test_parse_depths_sorts_dedupes_and_knows_max():
    assert deepstack.parse_depths("64,1,16,max,16") == (1, 16, 64, deepstack.PRACTICAL_MAX_DEPTH)
    with pytest.raises(UserError, match="whole numbers or 'max'"):
        deepstack.parse_depths("1,deep")


@pytest.mark.parametrize("depths", [(0,), (121,), ()])
def test_depths_outside_what_docker_can_run_are_refused(depths):
    with pytest.raises(UserError, match="--stack-depths"):
        deepstack.DeepStackPlan(depths).validate()


def test_stack_archive_is_a_docker_save_image_of_k_layers(tmp_path):
    target = deepstack.target_bytes(1)
    path = tmp_path / "stack.tar"
    deepstack.write_stack_archive(path, 5, _sleep_plan(), target, {"storprof": "t"}, "storprof-stack:t-k5")
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        [entry] = manifest
        assert entry["RepoTags"] == ["storprof-stack:t-k5"] and len(entry["Layers"]) == 5
        config = json.load(tar.extractfile(entry["Config"]))
        assert config["config"]["Labels"] == {"storprof": "t"}
        assert len(config["rootfs"]["diff_ids"]) == len(config["history"]) == 5
        layers = []
        for name, diff_id in zip(entry["Layers"], config["rootfs"]["diff_ids"]):
            data = tar.extractfile(name).read()
            assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                layers.append(layer.getnames())
    # the target is in the bottom layer only, and every layer adds to the same directory
    assert deepstack.TARGET in layers[0] and all(deepstack.TARGET not in names for names in layers[1:])
    assert all(deepstack.STACK_DIR in names for names in layers)
    assert any(n.endswith("bin/sleep") for n in layers[0])


def test_layers_are_identical_across_depths_so_the_daemon_shares_them():
    plan, target = _sleep_plan(), deepstack.target_bytes(1)
    assert deepstack.layer_tar(1, plan, target) == deepstack.layer_tar(1, plan, target)
    assert deepstack.layer_tar(7, None, None) == deepstack.layer_tar(7, None, None)
    assert deepstack.layer_tar(7, None, None) != deepstack.layer_tar(8, None, None)


def test_time_write_times_a_real_write(tmp_path):
    path = tmp_path / "f.dat"
    path.write_bytes(b"\0" * 65536)
    first, second = copyup.sample_file(path)
    assert 0 < first.write_s <= first.done_s and 0 < second.write_s <= second.done_s
    data = path.read_bytes()
    assert data[:4096] == filetiming.BLOCK and data[4096:8192] == filetiming.BLOCK
    assert len(data) == 65536            # written in place, not truncated or extended


def test_time_lookup_and_read_reads_the_whole_file(tmp_path):
    path = tmp_path / "stack" / "target.dat"
    path.parent.mkdir()
    path.write_bytes(os.urandom(3 * filetiming.READ_CHUNK + 5))
    t = filetiming.time_lookup_and_read(path)
    assert t.bytes_read == 3 * filetiming.READ_CHUNK + 5
    assert t.stat_s > 0 and t.open_s > 0 and t.read_s > 0


def test_copyup_rows_and_plan():
    assert [probe_label(**copyup.row(64, op)) for op in copyup.OPERATIONS] == [
        "copyup-64m first write", "copyup-64m first write+fsync", "copyup-64m second write",
        "copyup-64m second write+fsync"]
    with pytest.raises(UserError):
        copyup.CopyUpPlan((0,)).validate()
    assert copyup.CopyUpPlan((64, 512)).bytes_needed() == 3 * 576 * 2**20


def test_a_schema_1_results_directory_resumes_with_nothing_left_to_run():
    """Resume keys are fields: a sweep written with labels (results-union: copy-up of 64 and 512
    MiB, stacks of 1-120 layers, 3 repeats) holds every unit today's probes would plan."""
    from pathlib import Path

    from storprof.results import ResultSet
    union = ResultSet.load(Path(__file__).parent.parent / "fixtures" / "results-union")
    copy = copyup.CopyUp(copyup.CopyUpPlan((64, 512)), repeat=3)
    stack = deepstack.DeepStack(deepstack.DeepStackPlan((1, 16, 64, 120), target_mib=4), repeat=3)
    for workload in (copy, stack):
        done = frozenset(workload.done_keys(union))
        assert workload.units("overlay2@ext4", done) == []
        assert len(workload.units("zfs@zfs", done)) == len(workload.units("zfs@zfs", frozenset())) > 0
    assert len(copyup.CopyUp(copyup.CopyUpPlan((64, 512)), repeat=4).units("overlay2@ext4",
                                                                          frozenset(copy.done_keys(union)))) == 4


def test_a_schema_1_union_ops_directory_resumes_with_nothing_left_to_run():
    """results-pain: appends to 1000 files of 512 B, a 200-file 16 MiB rename, a 64 MiB chown and
    3 readers of 32 MiB, 3 repeats each."""
    from pathlib import Path

    from storprof.results import ResultSet
    from storprof.storage.probes import pagecache, unionops
    pain = ResultSet.load(Path(__file__).parent.parent / "fixtures" / "results-pain")
    ops = unionops.UnionOps(unionops.UnionOpsPlan(small_files=1000, small_bytes=512, tree_files=200, tree_mib=16,
                                                  chown_mib=64), repeat=3)
    cache = pagecache.PageCache(pagecache.PageCachePlan(containers=3, file_mib=32), repeat=3)
    for workload in (ops, cache):
        done = frozenset(workload.done_keys(pain))
        assert workload.units("vfs@ext4", done) == [] and len(workload.units("zfs@zfs", done)) == 6


def test_an_extra_round_is_of_the_group_it_was_asked_for():
    copy = copyup.CopyUp(copyup.CopyUpPlan((64, 512)), repeat=3)
    units = copy.extra_round("vfs@ext4", copyup.group_name(512), 3)
    assert [(u.group, u.placement, u.key) for u in units] == [
        ("copyup 512m", p, copyup.sample_key("vfs@ext4", 512, p, 3)) for p in ("host", "union")]   # (3 + 1) even
    stack = deepstack.DeepStack(deepstack.DeepStackPlan((1, 16)), repeat=3)
    assert {u.group for u in stack.extra_round("vfs@ext4", deepstack.group_name(16), 3)} == {"stack K=16"}
