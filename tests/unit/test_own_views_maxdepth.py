"""The max-depth view and search from a real run (tests/fixtures/results-max-depth), and the
search order as a pure function."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from storprof.results import ResultSet
from storprof.stats import summary
from storprof.storage.maxdepth import MaxDepth, MaxDepthPlan, mount_facts, next_depth
from storprof.views.own_views import DEPTH_HEADERS, depth_rows

FIXTURE = Path(__file__).parent.parent / "fixtures" / "results-max-depth"


def _search(limit: int, ceiling: int, first: int = 125) -> list[int]:
    """The depths tried against a driver that runs every image up to `limit` layers."""
    ok = failed = None
    tried = []
    while (k := next_depth(ok, failed, ceiling, first)) is not None:
        tried.append(k)
        if k <= limit:
            ok = k
        else:
            failed = k
    return tried


def test_the_search_costs_two_probes_at_docker_s_limit_and_bisects_below_a_failure():
    assert _search(125, 130) == [125, 126]
    assert _search(499, 500) == [125, 126, 252, 500, 376, 438, 469, 484, 492, 496, 498, 499]   # as in the fixture
    assert _search(1000, 130) == [125, 126, 130]                  # stops at the ceiling
    assert _search(121, 130) == [125, 1, 63, 94, 109, 117, 121, 123, 122]
    assert _search(0, 130) == [125, 1]                            # not even one layer
    assert _search(10, 8) == [8]                                  # a ceiling below the limit: tried first


def test_depth_rows_per_spec_from_a_real_run():
    headers, rows = depth_rows(ResultSet.load(FIXTURE).runs)
    assert headers == DEPTH_HEADERS
    by_spec = {r[0]: r for r in rows}
    assert by_spec["overlay2@ext4"] == ["overlay2@ext4", "20.10.24", "125", "126", "load", "max depth exceeded", "2"]
    assert by_spec["vfs@ext4"][2:] == ["125", "126", "load", "max depth exceeded", "2"]
    assert by_spec["overlay2@ext4:28.5.2"][1:] == ["28.5.2", "125", "126", "load", "max depth exceeded", "2"]
    c8d = by_spec["c8d-overlayfs@ext4:28.5.2"]
    assert c8d[1:5] == ["28.5.2", "499", "500", "create"]
    assert c8d[5].startswith("failed to mount") and c8d[5].endswith("err: invalid argument") and len(c8d[5]) <= 100
    assert c8d[6] == "12"


def test_a_search_that_reached_its_ceiling_says_so():
    runs = ResultSet.load(FIXTURE).runs
    c8d = runs[(runs.driver_spec == "c8d-overlayfs@ext4:28.5.2") & (runs.param_depth < 500)]
    _, rows = depth_rows(c8d)
    assert rows == [["c8d-overlayfs@ext4:28.5.2", "28.5.2", "499", "none up to 500", "", "", "11"]]
    assert depth_rows(pd.DataFrame()) == (DEPTH_HEADERS, [])


def test_the_failed_mount_is_counted_in_lower_directories_not_bytes():
    """The containerd snapshotter's options fit in a page (relative lowerdirs); the kernel's
    500-layer stack is what refuses, with the container's init layer on top of the image's 500."""
    records = [r for r in ResultSet.load(FIXTURE).records if getattr(r, "workload", "") == "max-depth"]
    failed = next(r for r in records if r.params["depth"] == 500)
    assert failed.params["lowerdirs"] == 501 and failed.params["mount_data_bytes"] < 4096
    data = "workdir=/w,upperdir=/u,lowerdir=/a:/b"
    assert mount_facts(f'failed: data: "{data}", err: x') == {"lowerdirs": 2, "mount_data_bytes": len(data)}
    assert mount_facts("max depth exceeded") == {}


def test_probes_stay_out_of_the_generic_time_table_and_a_finished_search_is_not_run_again():
    results = ResultSet.load(FIXTURE)
    assert summary.summarize(results.runs).empty
    workload = MaxDepth(MaxDepthPlan(ceiling=500))
    done = frozenset(workload.done_keys(results))
    assert len(done) == 4
    assert workload.units("overlay2@ext4", done) == []
    assert [u.key for u in workload.units("btrfs@btrfs", done)] == [("probe", "btrfs@btrfs", "max depth", "union", 0)]


def test_searches_recorded_without_last_count_as_done_when_nothing_is_left_to_try(tmp_path):
    """Results from before probes carried `last`: the fixture's lines without it."""
    lines = []
    for line in (FIXTURE / "results.jsonl").read_text().splitlines():
        data = json.loads(line)
        (data.get("params") or {}).pop("last", None)
        lines.append(json.dumps(data))
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    old = ResultSet.load(tmp_path)
    assert len(MaxDepth(MaxDepthPlan(ceiling=500)).done_keys(old)) == 4
    # a search cut short (its last probe lost) is not
    lines = [ln for ln in lines if '"depth": 499' not in ln]
    (tmp_path / "results.jsonl").write_text("\n".join(lines) + "\n")
    keys = MaxDepth(MaxDepthPlan(ceiling=500)).done_keys(ResultSet.load(tmp_path))
    assert ("probe", "c8d-overlayfs@ext4:28.5.2", "max depth", "union", 0) not in keys and len(keys) == 3
