"""daemonstart's table rows and resume keys, from a real sweep (tests/fixtures/results-daemon-start:
overlay2 on Docker 20.10 and the containerd image store on Docker 28.5, 0, 50 and 200 images, 3
restarts each)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from storprof.results import ResultSet
from storprof.storage.daemonstart import DaemonStart, DaemonStartPlan, job_name
from storprof.views.own_views import START_HEADERS, start_rows
from storprof.views.tables import fmt_seconds

FIXTURE = Path(__file__).parent.parent / "fixtures" / "results-daemon-start"
OVERLAY2, C8D = "overlay2@ext4", "c8d-overlayfs@ext4:28.5.2"


def _loaded() -> ResultSet:
    return ResultSet.load(FIXTURE)


def test_one_row_per_spec_and_count_in_increasing_order():
    headers, rows = start_rows(_loaded().runs)
    assert headers == START_HEADERS
    assert [(r[0], r[2], r[3]) for r in rows] == [(spec, str(n), "3") for spec in (OVERLAY2, C8D) for n in (0, 50, 200)]
    assert {r[0]: r[1] for r in rows} == {OVERLAY2: "20.10.24", C8D: "28.5.2"}


def test_start_is_the_median_with_its_half_range_and_its_multiple_of_no_images():
    runs = _loaded().runs
    _, rows = start_rows(runs)
    for spec, _, count, _, start, ratio, listed, present in rows:
        s = runs[(runs.driver_spec == spec) & (runs.images == int(count))]
        med, base = s.seconds.median(), runs[(runs.driver_spec == spec) & (runs.images == 0)].seconds.median()
        half = (s.seconds.max() - s.seconds.min()) / 2 / med
        assert start == f"{fmt_seconds(med)} ±{half * 100:.0f}%"
        assert ratio == f"{med / base:.2f}x"
        assert listed == fmt_seconds(s.param_images_listed_seconds.median())
        assert present == f"{int(count) + 1}, 0"        # the bench image and the ones added; no containers
    assert [r[5] for r in rows if r[2] == "0"] == ["1.00x", "1.00x"]


def test_listing_grows_with_images_on_the_containerd_store_and_the_start_does_not():
    """What the fixture shows (and why the listing is kept beside the start): Docker 28.5's
    containerd store answers a ping as fast with 200 images, and takes seconds to list them."""
    runs = _loaded().runs
    c8d = runs[runs.driver_spec == C8D].groupby("images")
    assert c8d.param_images_listed_seconds.median()[200] > 1.0
    assert c8d.seconds.median()[200] < 2 * c8d.seconds.median()[0]
    assert (runs.param_images_listed_seconds >= runs.seconds).all()


def test_no_rows_without_daemon_start_records_and_one_sample_has_no_spread():
    assert start_rows(pd.DataFrame()) == (START_HEADERS, [])
    runs = _loaded().runs
    one = runs[(runs.repeat == 0) & (runs.driver_spec == OVERLAY2)]
    _, rows = start_rows(one)
    assert all(r[3] == "1" and r[4].endswith(" ±?") for r in rows)


def test_units_go_up_by_count_and_resume_skips_what_the_results_hold():
    workload = DaemonStart(DaemonStartPlan((200, 0, 50), samples=3))
    units = workload.units(OVERLAY2, frozenset())
    assert [(u.group, u.repeat) for u in units] == [(job_name(n), s) for n in (0, 50, 200) for s in range(3)]
    assert all(u.placement == "daemon" and u.key == ("probe", OVERLAY2, DaemonStart.row_identity(n), "daemon", u.repeat)
               for u, n in zip(units, [n for n in (0, 50, 200) for _ in range(3)], strict=True))
    done = frozenset(workload.done_keys(_loaded()))
    assert workload.units(OVERLAY2, done) == [] and workload.units(C8D, done) == []
    assert len(workload.units("vfs@ext4", done)) == 9
    partial = frozenset(k for k in done if k[2] != DaemonStart.row_identity(200) or k[4] != 2)
    assert [(u.group, u.repeat) for u in workload.units(OVERLAY2, partial)] == [(job_name(200), 2)]


def test_an_attached_daemon_is_never_restarted():
    """prepare notices the daemon is someone else's; run then emits nothing and says why."""
    messages, emitted = [], []
    session = SimpleNamespace(daemon=SimpleNamespace(ephemeral=False), label="overlay2@attached")
    sink = SimpleNamespace(message=messages.append, emit=emitted.append)
    workload = DaemonStart(DaemonStartPlan((0, 50), samples=1))
    workload.prepare(session, sink)
    assert [workload.run(u, session, sink) for u in workload.units("overlay2@attached", frozenset())] == \
        ["skipped: attached daemon"] * 2
    assert emitted == [] and "attached" in messages[0]
    workload.cleanup(session)
