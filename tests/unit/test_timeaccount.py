"""The time account (issue 29): phases are exclusive, a spec's phases add up to its wall time and
the run's to the run's, a fio run's wall time splits into what fio measured, its ramp and the rest,
the account reaches meta.json as each spec ends, and the line per spec is made from that file."""

from __future__ import annotations

from pathlib import Path

import pytest

from storprof.harness import timeaccount as ta
from storprof.harness.scheduler import run_units
from storprof.harness.timeaccount import TimeAccount
from storprof.harness.workload import Sink, Unit
from storprof.results import META_FILE, ResultsStore
from storprof.results.files import read_meta
from storprof.storage.fio import cells
from storprof.storage.fio.job import load_job
from storprof.storage.fio.placements import FioRun
from storprof.storage.fio.result import parse_fio_output
from storprof.views.timeaccount import time_account_lines

FIO = Path(__file__).parent.parent / "fixtures" / "fio"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def test_an_inner_phase_is_charged_alone_and_the_outer_only_for_the_rest():
    clock = Clock()
    account = TimeAccount(clock=clock)
    with account.phase("copyup"):
        clock.tick(2)
        with account.phase(ta.CONTAINERS):
            clock.tick(3)
            with account.phase(ta.TEARDOWN):
                clock.tick(0.5)
            clock.tick(1)
        clock.tick(4)
    assert account["copyup"] == pytest.approx(6)
    assert account[ta.CONTAINERS] == pytest.approx(4)
    assert account[ta.TEARDOWN] == pytest.approx(0.5)
    assert sum(account.run.values()) == pytest.approx(account.wall())


def test_each_spec_adds_up_to_its_wall_and_the_run_to_its_own():
    clock = Clock()
    saved = []
    account = TimeAccount(started=clock.now - 4, clock=clock)   # the CLI's checks began 4 s earlier
    account.on_spec_end = lambda a: saved.append(a.to_meta())
    account.add(ta.PLAN, 4)
    with account.phase(ta.PLAN):
        clock.tick(1)
        with account.spec("vfs@ext4"):         # a run phase open around a spec is not charged meanwhile
            with account.phase(ta.BACKING_FS):
                clock.tick(2)
            with account.phase(ta.DAEMON_START):
                clock.tick(3)
            clock.tick(0.25)                    # nothing claims this: the spec's other
            with account.phase(ta.TEARDOWN):
                clock.tick(1)
        clock.tick(1)
    clock.tick(0.5)                             # between specs: the run's other
    with account.spec("overlay2@ext4"), account.phase("fio"):
        clock.tick(10)
    with account.phase(ta.STATISTICS):
        clock.tick(2)
    account.close()
    meta = account.to_meta()
    vfs = meta["specs"]["vfs@ext4"]
    assert vfs == {"wall_seconds": 6.25, "phases": {"backing_fs": 2, "daemon_start": 3, "teardown": 1, "other": 0.25}}
    assert meta["run"] == {"plan": 6, "statistics": 2, "other": 0.5}
    assert meta["wall_seconds"] == pytest.approx(4 + 1 + 6.25 + 1 + 0.5 + 10 + 2)
    for spec in meta["specs"].values():
        assert sum(spec["phases"].values()) == pytest.approx(spec["wall_seconds"])
    assert sum(meta["run"].values()) + sum(s["wall_seconds"] for s in meta["specs"].values()) == \
        pytest.approx(meta["wall_seconds"])
    assert [list(m["specs"]) for m in saved] == [["vfs@ext4"], ["vfs@ext4", "overlay2@ext4"]]


def test_a_spec_that_fails_still_closes_its_account():
    clock = Clock()
    account = TimeAccount(clock=clock)
    with pytest.raises(RuntimeError), account.spec("zfs@zfs"), account.phase(ta.DAEMON_START):
        clock.tick(3)
        raise RuntimeError("dockerd did not start")
    clock.tick(1)
    meta = account.to_meta()
    assert meta["specs"]["zfs@zfs"] == {"wall_seconds": 3, "phases": {"daemon_start": 3, "other": 0}}
    assert meta["run"] == {"other": 1}


def test_move_reclassifies_at_most_what_the_source_has():
    account = TimeAccount()
    account.add(ta.FIO_STARTUP, 1.5)
    account.move(ta.FIO_STARTUP, ta.FIO_MEASURING, 2.0)
    assert (account[ta.FIO_STARTUP], account[ta.FIO_MEASURING]) == (0.0, 1.5)


class _Session:
    label = "vfs@ext4"

    def __init__(self, account: TimeAccount):
        self.times = account


def test_a_fio_run_splits_into_measuring_ramp_and_start_up():
    """randread-4k has ramp_time=2; fio reported 2001 ms measured; the run took 5 s of wall time."""
    clock = Clock()
    account = TimeAccount(clock=clock)
    job = load_job("randread-4k")
    stdout = (FIO / "randread-4k.json").read_text()
    result = parse_fio_output(stdout, "")
    with account.spec("vfs@ext4"):
        with account.phase(ta.FIO_STARTUP):
            clock.tick(5.0)
        cells._account(_Session(account), job, FioRun(stdout, "", 0, 5.0), result)
    assert result.runtime_ms == 2001
    phases = account.to_meta()["specs"]["vfs@ext4"]["phases"]
    assert phases == {"fio_startup": pytest.approx(0.999), "fio_measuring": 2.001, "fio_ramp": 2.0, "other": 0}


def test_a_run_shorter_than_its_ramp_keeps_every_second_once():
    account = TimeAccount()
    job = load_job("randread-4k")
    stdout = (FIO / "randread-4k.json").read_text()
    account.add(ta.FIO_STARTUP, 3.0)
    cells._account(_Session(account), job, FioRun(stdout, "", 0, 3.0), parse_fio_output(stdout, ""))
    assert account[ta.FIO_MEASURING] + account[ta.FIO_RAMP] + account[ta.FIO_STARTUP] == pytest.approx(3.0)
    assert account[ta.FIO_STARTUP] == 0


class _Workload:
    """Two units whose run opens a phase of its own inside the workload's."""

    name = "toy"

    def __init__(self, clock: Clock):
        self.clock = clock

    def prepare(self, session, sink) -> None:
        with session.times.phase(ta.CONTAINERS):
            self.clock.tick(2)

    def run(self, unit: Unit, session, sink) -> str:
        self.clock.tick(1)
        return "ok"

    def cleanup(self, session) -> None:
        self.clock.tick(0.5)


class _Store:
    def append(self, record) -> None:
        pass


def test_the_scheduler_charges_a_workload_under_its_name_less_its_inner_phases():
    clock = Clock()
    account = TimeAccount(clock=clock)
    units = [Unit("toy", "toy", p, 0, ("toy", p)) for p in ("host", "union")]
    with account.spec("vfs@ext4"):
        run_units([(_Workload(clock), units)], _Session(account), Sink(_Store(), lambda line: None),
                  lambda unit, summary: None)
    assert account.to_meta()["specs"]["vfs@ext4"]["phases"] == {"containers": 2, "toy": 2.5, "other": 0}


def _sweep_account(clock: Clock, store: ResultsStore) -> TimeAccount:
    """A sweep of one spec with these seconds, saved as the sweep saves it."""
    account = TimeAccount(clock=clock)
    account.on_spec_end = lambda a: store.save_time_account(a.to_meta())
    with account.phase(ta.PLAN):
        clock.tick(3)
    with account.spec("overlay2@ext4"):
        for name, seconds in ((ta.BACKING_FS, 2), (ta.DAEMON_START, 4), (ta.IMAGE, 9), (ta.FIO_STARTUP, 33),
                              ("copyup", 3), (ta.TEARDOWN, 3)):
            with account.phase(name):
                clock.tick(seconds)
        account.move(ta.FIO_STARTUP, ta.FIO_MEASURING, 22)
        clock.tick(1)
    return account


def test_meta_json_holds_the_account_as_each_spec_ends_and_the_line_is_made_from_it(tmp_path):
    clock = Clock()
    store = ResultsStore(tmp_path / "r", {"command": "storprof sweep"})
    account = _sweep_account(clock, store)
    written = read_meta(tmp_path / "r" / META_FILE)["time_account"]
    assert written["specs"]["overlay2@ext4"]["wall_seconds"] == 55
    assert written["specs"]["overlay2@ext4"]["phases"]["fio_measuring"] == 22
    with account.phase(ta.STATISTICS):
        clock.tick(2)
    final = account.finish(store)
    meta = read_meta(tmp_path / "r" / META_FILE)
    assert meta["time_account"] == final and meta["command"] == "storprof sweep"
    table, note, run = time_account_lines(meta["time_account"])
    # a row per spec within the answer's width, the phases grouped in columns
    assert max(len(physical) for line in (table, note, run) for physical in line.splitlines()) <= 120
    header, _, row = table.splitlines()
    assert header.split() == ["spec", "wall", "measuring", "fio", "start", "workloads", "engine", "teardown", "other"]
    assert row.split() == ["overlay2@ext4", "55", "s", "22", "s", "40%", "11", "s", "3.0", "s", "15", "s",
                           "3.0", "s", "1.0", "s"]
    assert "workloads: copyup" in note
    assert run.replace("\n  ", " ") == ("where the time went, whole run: 60 s — 1 spec 55 s (fio measuring 22 s, 37% "
                                        "of the run), plan and checks 3.0 s, statistics and views 2.0 s")


def test_a_resumed_run_keeps_its_account_in_its_entry_of_resumed(tmp_path):
    clock = Clock()
    first = ResultsStore(tmp_path / "r", {"command": "first"})
    _sweep_account(clock, first).finish(first)
    (tmp_path / "r" / "results.jsonl").write_text("")
    again = ResultsStore(tmp_path / "r", {"command": "again"}, resume=True)
    account = _sweep_account(clock, again)
    with account.phase(ta.STATISTICS):
        clock.tick(2)
    account.finish(again)
    meta = read_meta(tmp_path / "r" / META_FILE)
    assert meta["time_account"]["wall_seconds"] == 58                  # the first run's, as it was
    assert meta["resumed"][-1]["command"] == "again" and meta["resumed"][-1]["time_account"]["wall_seconds"] == 60


def test_phases_under_a_twentieth_of_a_second_are_left_out_and_unknown_names_are_workloads():
    account = {"wall_seconds": 13.0, "run": {"plan": 1.0},
               "specs": {"net@docker-28": {"wall_seconds": 12.0, "phases": {"net": 10.0, "daemon_start": 1.96,
                                                                           "teardown": 0.04, "other": 0.0}}}}
    table, note, _ = time_account_lines(account)
    header, _, row = table.splitlines()
    assert header.split() == ["spec", "wall", "workloads", "engine"]     # no teardown: 0.04 s
    assert row.split() == ["net@docker-28", "12", "s", "10", "s", "2.0", "s"]
    assert "workloads: net;" in note


def test_the_longest_spec_with_every_column_stays_within_the_answers_width():
    phases = dict.fromkeys(("fio_measuring", "fio_startup", "precondition", "copyup", "layers", "daemon_start",
                            "teardown", "other"), 12.345)
    account = {"wall_seconds": 700.0, "run": {},
               "specs": {"c8d-overlayfs@ext4:28.5.2": {"wall_seconds": 123.4, "phases": phases},
                         "overlay2@ext4": {"wall_seconds": 9.0, "phases": phases}}}
    table, note, run = time_account_lines(account)
    assert len(table.splitlines()[0].split("  ")) > 1 and "data, settle" in table
    assert max(len(row) for block in (table, note, run) for row in block.splitlines()) <= 120
