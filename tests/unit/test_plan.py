from collections import Counter

from storprof.fiocells import Cell, plan_order

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


def test_buffered_jobs_do_not_share_a_data_file_with_direct_ones():
    from storprof.fiocells import data_file_name
    from storprof.fiojob import load_job

    direct = [load_job(n).with_overrides(size="64m") for n in ("randread-4k", "randwrite-4k", "seqwrite-1m")]
    buffered = load_job("fsync-write-4k").with_overrides(size="64m")
    assert len({data_file_name(j) for j in direct}) == 1
    assert data_file_name(buffered) not in {data_file_name(j) for j in direct}
    assert data_file_name(load_job("randread-4k").with_overrides(size="1g")) != data_file_name(direct[0])


def test_a_job_can_be_narrowed_to_some_placements():
    cells = plan_order(["a", "b"], ("host", "union", "volume", "bind"), 2, {"b": ("host", "union", "volume")})
    assert {c.placement for c in cells if c.job == "a"} == {"host", "union", "volume", "bind"}
    assert {c.placement for c in cells if c.job == "b"} == {"host", "union", "volume"}
    assert len(cells) == 2 * (4 + 3)
    # still rotated: each of b's placements leads once per repeat-job rotation
    firsts = [next(c.placement for c in cells if c.job == "b" and c.repeat == r) for r in range(2)]
    assert len(set(firsts)) == 2


def test_lower_layer_jobs_read_a_file_no_other_job_writes():
    from storprof.fiocells import data_file_name
    from storprof.fiojob import load_job
    from storprof.plan import SweepPlan as SweepConfig
    jobs = [load_job(n).with_overrides(size="1g") for n in
            ("randwrite-4k", "randread-4k", "fsync-write-4k", "lower-randread-4k", "lower-seqread-1m", "meta-create")]
    names = {j.name: data_file_name(j) for j in jobs if not j.own_files}
    assert names["lower-randread-4k"] == names["lower-seqread-1m"] == "storprof-1g-lower.dat"
    assert names["randwrite-4k"] == names["randread-4k"] != names["lower-randread-4k"]
    # room for the three distinct files on every placement, and the image's copy twice
    config = SweepConfig(specs=[], jobs=jobs, placements=("host", "union", "volume", "bind"))
    # ... and the metadata job's 2000 files of a block each, in a fresh directory per repeat
    meta = config.repeat * 2000 * 4096
    assert config.backing_size_bytes() == 4 * (3 * 2**30 + meta) + 2 * 2**30 + (2 << 30)
