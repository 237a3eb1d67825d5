"""The union pain points in every view, from a real sweep (tests/fixtures/results-pain: overlay2,
overlay2 with metacopy and redirect_dir, vfs, btrfs, fuse-overlayfs, and the containerd overlayfs
and native snapshotters, quick sizes, 3 repeats)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from storprof.results import ResultSet
from storprof.stats import compare
from storprof.stats.summary import summarize
from storprof.storage.probes.pagecache import cached_bytes
from storprof.views import charts, own_views, tables, verdicts

PAIN = Path(__file__).parent.parent / "fixtures" / "results-pain"
RENAME = "rename a dir of 200 files, 16 MiB"
CHOWN = "chown a 64 MiB file"
LATER = "page cache: each later reader of 32 MiB"


@pytest.fixture(scope="module")
def results():
    return ResultSet.load(PAIN)


@pytest.fixture(scope="module")
def over(results):
    return summarize(results.runs)


def _cell(over, spec, job, placement="union"):
    sel = over[(over.driver_spec == spec) & (over.job == job) & (over.placement == placement)]
    assert len(sel) == 1, (spec, job, placement)
    return sel.iloc[0]


def test_summary_carries_what_an_operation_copied_and_how_a_rename_went(over):
    assert _cell(over, "overlay2@ext4", RENAME).how == "copy+delete (EXDEV)"
    assert _cell(over, "overlay2@ext4+metacopy+redirect_dir", RENAME).how == "rename(2)"
    assert _cell(over, "overlay2@ext4", CHOWN).bytes >= 64 * 2**20
    assert _cell(over, "overlay2@ext4+metacopy+redirect_dir", CHOWN).bytes < 2**20
    assert _cell(over, "vfs@ext4", LATER).bytes >= 30 * 2**20
    assert abs(_cell(over, "c8d-overlayfs@ext4:28.5.2", LATER).bytes) < 2**20
    assert pd.isna(_cell(over, "vfs@ext4", RENAME, "host").bytes) is False


def test_the_time_table_shows_space_and_path_beside_the_time(over):
    text = tables.format_table(over)
    line = next(ln for ln in text.splitlines() if ln.startswith("overlay2@ext4 ") and RENAME in ln)
    assert "+16.5 MiB, copy+delete (EXDEV)" in line
    line = next(ln for ln in text.splitlines() if ln.startswith("vfs@ext4 ") and LATER in ln)
    assert "+32.0 MiB" in line


def test_sentences_say_copied_shared_or_own_copy(over):
    said = {s.spec: s.sentence for s in verdicts.spec_summaries(over, pd.DataFrame(columns=["driver_spec"]), 0.05)}
    assert "renaming a 16 MiB directory by copy+delete (EXDEV)" in said["overlay2@ext4"]
    assert "chown of a 64 MiB file" in said["overlay2@ext4"] and "64.0 MiB copied up" in said["overlay2@ext4"]
    assert "share one cached copy" in said["overlay2@ext4"]
    assert "caches its own copy (+32.0 MiB)" in said["vfs@ext4"]
    assert "caches its own copy" in said["fuse-overlayfs@ext4"]
    assert "by rename(2)" in said["overlay2@ext4+metacopy+redirect_dir"]
    assert "nothing copied" in said["c8d-native@ext4:28.5.2"]


def test_configuration_rows_name_the_diff_path_and_the_switched_parameters(results):
    rows = {r[0]: r for r in own_views.config_rows(results.runs)}
    assert "Native Overlay Diff: true" in rows["overlay2@ext4"][1]
    assert "Native Overlay Diff: false" in rows["overlay2@ext4+metacopy+redirect_dir"][1]
    assert "redirect_dir=Y" in rows["overlay2@ext4+metacopy+redirect_dir"][2]
    assert "redirect_dir=N" in rows["overlay2@ext4"][2]
    assert "driver-type: io.containerd.snapshotter.v1" in rows["c8d-native@ext4:28.5.2"][1]
    assert all(r[3] != "-" for r in rows.values())


def test_compare_has_a_bytes_row_for_what_was_copied(results):
    table = compare.compare(results, results).table
    rows = table[(table.metric == "bytes") & (table.job == CHOWN)]
    assert set(rows.driver_spec) >= {"overlay2@ext4", "fuse-overlayfs@ext4"}
    assert not rows.verdict.isin(["faster", "slower"]).any()     # a sweep against itself


def test_the_chart_of_what_was_copied_has_every_spec(over):
    chart = charts.copied_up_chart(over[over.metric == "time"])
    assert chart is not None and chart[1].startswith(b"\x89PNG")
    assert charts.copied_up_chart(over[over.job == "nothing"]) is None


def test_cached_bytes_reads_meminfo():
    # the first lines of this machine's /proc/meminfo, as read
    text = ("MemTotal:       24684092 kB\nMemFree:        23818136 kB\nMemAvailable:   24290396 kB\n"
            "Buffers:           60100 kB\nCached:           650532 kB\n")
    assert cached_bytes(text) == 650532 * 1024
