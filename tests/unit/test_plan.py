from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from storprof.cli import main
from storprof.harness.plan import QUICK_SWEEP_SECONDS, quick_sweep_time
from storprof.storage.fio.cells import Cell, plan_order

PLACEMENTS = ("host", "union", "volume", "bind")


def test_every_cell_once():
    cells = plan_order(["a", "b", "c"], PLACEMENTS, 3)
    assert len(cells) == 3 * 3 * 4
    assert len(set(cells)) == len(cells)
    assert Counter(c.placement for c in cells) == dict.fromkeys(PLACEMENTS, 9)


def test_repeats_outermost_and_placements_of_one_job_consecutive():
    cells = plan_order(["a", "b"], PLACEMENTS, 2)
    assert [c.repeat for c in cells] == [0] * 8 + [1] * 8
    assert [c.job for c in cells[:8]] == ["a"] * 4 + ["b"] * 4


def test_first_placement_rotates_so_none_is_always_first():
    cells = plan_order(["a"], PLACEMENTS, 4)
    firsts = [cells[i * 4].placement for i in range(4)]
    assert sorted(firsts) == sorted(PLACEMENTS)
    assert cells[:4] == [Cell(0, "a", p) for p in PLACEMENTS]
    assert cells[4:8] == [Cell(1, "a", p) for p in ("union", "volume", "bind", "host")]


def test_empty_inputs():
    assert plan_order([], PLACEMENTS, 3) == []
    assert plan_order(["a"], PLACEMENTS, 0) == []


def test_each_job_runs_on_a_file_in_the_state_it_expects():
    from storprof.storage.fio.cells import OWN, PRISTINE, data_file_name, file_state
    from storprof.storage.fio.job import load_job

    reads = [load_job(n).with_overrides(size="64m") for n in ("randread-4k", "seqread-1m", "lower-randread-4k",
                                                              "lower-seqread-1m")]
    writes = [load_job(n).with_overrides(size="64m") for n in ("randwrite-4k", "seqwrite-1m", "randrw-4k-70-30")]
    buffered = load_job("fsync-write-4k").with_overrides(size="64m")
    # readers share one file no job writes; every writer has a file of its own
    assert {data_file_name(j) for j in reads} == {"storprof-read-64m-direct.dat"}
    assert {file_state(j) for j in reads} == {PRISTINE} and {file_state(j) for j in writes} == {OWN}
    assert len({data_file_name(j) for j in writes + [buffered]}) == 4
    assert not {data_file_name(j) for j in writes} & {data_file_name(j) for j in reads}
    assert data_file_name(buffered) == "storprof-fsync-write-4k-64m-buffered.dat"
    assert data_file_name(load_job("randread-4k").with_overrides(size="1g")) != data_file_name(reads[0])


def test_a_job_can_be_narrowed_to_some_placements():
    cells = plan_order(["a", "b"], ("host", "union", "volume", "bind"), 2, {"b": ("host", "union", "volume")})
    assert {c.placement for c in cells if c.job == "a"} == {"host", "union", "volume", "bind"}
    assert {c.placement for c in cells if c.job == "b"} == {"host", "union", "volume"}
    assert len(cells) == 2 * (4 + 3)
    # still rotated: each of b's placements leads once per repeat-job rotation
    firsts = [next(c.placement for c in cells if c.job == "b" and c.repeat == r) for r in range(2)]
    assert len(set(firsts)) == 2


def test_room_for_every_file_the_plan_makes():
    from storprof.harness.plan import SweepPlan
    from storprof.storage.fio.job import load_job
    from storprof.storage.fio.options import MAX_FILES
    jobs = [load_job(n).with_overrides(size="1g") for n in
            ("randwrite-4k", "randread-4k", "fsync-write-4k", "lower-randread-4k", "lower-seqread-1m", "meta-create")]
    plan = SweepPlan(specs=[], jobs=jobs, placements=("host", "union", "volume", "bind"))
    # three distinct data files on every placement (the shared pristine one, two writers' own), the
    # image's copy of the pristine file twice (vfs copies it), and the metadata job at its largest
    # file count, for every repeat and its calibration run
    meta = (plan.repeat + 1) * MAX_FILES * 4096
    assert plan.backing_size_bytes() == 4 * (3 * 2**30 + meta) + 2 * 2**30 + (2 << 30)


# --- the quick sweep's time: one number, written in plan.py, said the same everywhere -----------------

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_sweep_time_is_said_the_same_in_the_readme_the_sample_and_help():
    said = quick_sweep_time()
    for doc in ("README.md", "docs/sample.md"):
        assert said in (ROOT / doc).read_text(), f"{doc} must say {said!r} (harness/plan.py QUICK_SWEEP_SECONDS)"
    shown = CliRunner().invoke(main, ["sweep", "--help"], terminal_width=200).output
    assert said in " ".join(shown.split())


def test_the_quick_sweep_time_is_a_measured_number_not_the_placeholder():
    assert QUICK_SWEEP_SECONDS is not None, (
        "set QUICK_SWEEP_SECONDS in storprof/harness/plan.py to the 'Total wall time' of the latest clean-clone "
        "`storprof sweep --quick`, then put quick_sweep_time()'s words in README.md and docs/sample.md")
    assert 60 <= QUICK_SWEEP_SECONDS <= 3600
