"""Each cell measures what its label says (issue 13): pairing within one run, what p99 is of, the
driver alone, n and the flags for too few repeats or too little work, grouped jobs, resume by
pairs, growth on three sizes. Real fio output where parsing is involved; constructed runs where
the arithmetic has a known answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from storprof.errors import UserError
from storprof.results import ResultSet, ResultsStore
from storprof.results.records import FioRecord, RunContext
from storprof.stats import summary
from storprof.storage.fio.cells import FioCells
from storprof.storage.fio.check import validate
from storprof.storage.fio.job import load_job, parse_job
from storprof.storage.fio.result import parse_fio_output
from storprof.views import tables

FIO = Path(__file__).parent.parent / "fixtures" / "fio"


def run(placement: str, repeat: int, iops: float, run_id: str = "r1", job: str = "j", **extra) -> dict:
    return {"driver_spec": "overlay2@ext4", "job": job, "placement": placement, "repeat": repeat, "run_id": run_id,
            "status": "ok", "primary_metric": "iops", "total_iops": iops, "kind": "fio", "direct": True,
            "own_files": False, "p99_clat_ns": 100.0, "read_clat_p99_ns": 100.0, "read_iops": iops,
            "write_iops": 0.0, **extra}


def row(over: pd.DataFrame, placement: str, job: str = "j") -> pd.Series:
    return over[(over.placement == placement) & (over.job == job)].iloc[0]


# --- pairing stays within one run (a resumed sweep is another run) ---------------------------------------

def test_a_resumed_runs_cells_never_pair_with_the_first_runs_host():
    # run r1 measured host and union of repeat 0; the resumed run r2 reran the whole group
    runs = pd.DataFrame([run("host", 0, 100.0, "r1"), run("union", 0, 50.0, "r1"),
                         run("host", 0, 200.0, "r2"), run("union", 0, 60.0, "r2")])
    over = summary.summarize(runs)
    assert row(over, "union")["ratio"] == pytest.approx((0.5 * 0.3) ** 0.5)   # geometric mean of 50/100, 60/200
    assert row(over, "union")["n_pairs"] == 2


def test_resume_counts_a_repeat_done_only_when_all_its_placements_ran_in_one_run(tmp_path):
    job = load_job("randread-4k").with_overrides(size="16m", runtime=1)
    cells = FioCells([job], ("host", "union", "volume"), 2, 60)
    store = ResultsStore(tmp_path, {})
    context = RunContext(run_id="r1", driver_spec="vfs@ext4", driver="vfs", fs="ext4")
    for placement, repeat in (("host", 0), ("union", 0), ("volume", 0), ("host", 1), ("union", 1)):
        store.append(FioRecord(context=context, placement=placement, job=job.name, repeat=repeat, status="ok",
                               primary_metric="iops"))
    done = frozenset(cells.done_keys(ResultSet.load(tmp_path)))
    left = cells.units("vfs@ext4", done)
    assert {(u.repeat, u.placement) for u in left} == {(1, "host"), (1, "union"), (1, "volume")}


# --- what p99 is of ---------------------------------------------------------------------------------------

def _fixture_run(name: str, placement: str, repeat: int) -> dict:
    metrics = parse_fio_output((FIO / f"{name}.json").read_text()).metrics()
    return {"driver_spec": "vfs@ext4", "job": name, "placement": placement, "repeat": repeat, "run_id": "r1",
            "status": "ok", "primary_metric": "iops", "kind": "fio", "direct": True, "own_files": False,
            **metrics}


@pytest.mark.parametrize("name, kind", [("randread-4k", "read"), ("randwrite-4k", "write"),
                                        ("fsync-write-4k", "fsync"), ("randrw-4k-70-30", "read+write")])
def test_the_table_says_what_the_p99_is_of(name, kind):
    runs = pd.DataFrame([_fixture_run(name, p, r) for r in range(3) for p in ("host", "union")])
    over = summary.summarize(runs)
    assert set(over["lat_kind"]) == {kind}
    headers, rows = tables.table_rows(over)
    assert rows[0][headers.index("p99 of")] == kind


def test_a_job_that_reads_and_writes_shows_both_directions_p99():
    raw = json.loads((FIO / "randrw-4k-70-30.json").read_text())
    read_p99 = raw["jobs"][0]["read"]["clat_ns"]["percentile"]["99.000000"]
    write_p99 = raw["jobs"][0]["write"]["clat_ns"]["percentile"]["99.000000"]
    runs = pd.DataFrame([_fixture_run("randrw-4k-70-30", p, r) for r in range(3) for p in ("host", "union")])
    host = row(summary.summarize(runs), "host", "randrw-4k-70-30")
    assert host["p99_read_ns"] == read_p99 and host["p99_write_ns"] == write_p99
    headers, rows = tables.table_rows(summary.summarize(runs))
    cell = rows[0][headers.index("host p99")]
    assert cell.startswith("r ") and " w " in cell


# --- the driver alone ---------------------------------------------------------------------------------------

def test_union_over_bind_isolates_the_driver_from_the_container():
    # the container costs 0.8x (bind), the union costs 0.6x: the driver's own share is 0.75x
    runs = pd.DataFrame([run(p, r, v) for r in range(3)
                         for p, v in (("host", 100.0), ("bind", 80.0), ("volume", 80.0), ("union", 60.0))])
    union = row(summary.summarize(runs), "union")
    assert union["ratio"] == pytest.approx(0.6) and union["driver_ratio"] == pytest.approx(0.75)
    assert union["driver_base"] == "bind"
    headers, rows = tables.table_rows(summary.summarize(runs))
    assert rows[0][headers.index("union ÷ bind")].startswith("0.75x")


def test_without_a_bind_placement_the_volume_is_the_in_container_baseline():
    runs = pd.DataFrame([run(p, r, v) for r in range(3) for p, v in (("host", 100.0), ("volume", 90.0),
                                                                         ("union", 45.0))])
    union = row(summary.summarize(runs), "union")
    assert union["driver_base"] == "volume" and union["driver_ratio"] == pytest.approx(0.5)


# --- n, and the flags for too few repeats and too little work -------------------------------------------------

def test_one_repeat_is_flagged_and_shows_no_spread():
    runs = pd.DataFrame([run("host", 0, 100.0), run("union", 0, 90.0)])
    over = summary.summarize(runs)
    assert all("#" in f for f in over["flags"])
    headers, rows = tables.table_rows(over)
    assert rows[0][headers.index("n")] == "1"
    assert "±?" in rows[0][headers.index("host")] and "±0%" not in " ".join(rows[0])
    assert any(note.startswith("# fewer than 3 repeats") for note in tables.flag_notes({"#"}))


def test_three_repeats_are_not_flagged_for_their_number():
    runs = pd.DataFrame([run(p, r, 100.0) for r in range(3) for p in ("host", "union")])
    assert not any("#" in f for f in summary.summarize(runs)["flags"])


def test_a_metadata_run_shorter_than_a_second_is_flagged():
    short = [run(p, r, 2000.0, own_files=True, runtime_ms=400.0) for r in range(3) for p in ("host", "union")]
    assert all("°" in f for f in summary.summarize(pd.DataFrame(short))["flags"])
    long = [run(p, r, 2000.0, own_files=True, runtime_ms=1500.0) for r in range(3) for p in ("host", "union")]
    assert not any("°" in f for f in summary.summarize(pd.DataFrame(long))["flags"])


def test_every_probe_multiplier_carries_its_spread():
    runs = pd.DataFrame([{**run(p, r, 0.0), "primary_metric": "time", "seconds": s}
                         for r, (h, u) in enumerate(((0.001, 0.05), (0.002, 0.06), (0.001, 0.04)))
                         for p, s in (("host", h), ("union", u))])
    headers, rows = tables.time_rows(summary.summarize(runs))
    assert re.fullmatch(r"\d+\.\d+x \[\d+\.\d+–\d+\.\d+\]", rows[0][headers.index("union x host")])


# --- jobs whose groups run one after another are refused -----------------------------------------------------

def test_a_job_of_several_groups_is_refused_not_summed():
    with pytest.raises(UserError, match=r"x.fio:4: section \[b\] starts a new group \(stonewall\)"):
        validate(parse_job("[a]\nrw=read\nbs=4k\n[b]\nstonewall\nrw=write\n", "x.fio"))
    with pytest.raises(UserError, match="new_group"):
        validate(parse_job("[a]\nrw=read\n[b]\nnew_group\nrw=read\n", "x.fio"))
    validate(parse_job("[a]\nrw=read\n[b]\nrw=randread\n", "x.fio"))     # running at once: one group
