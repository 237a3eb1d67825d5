"""The postgres workload's parsing and records, on output real runs printed: a unit's script on the
host sandbox (scale 2, 1 s runs), the same without `pgbench -i`, and one whose server was sent
an immediate shutdown in the middle of its TPC-B-like run (tests/fixtures/pgbench)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from storprof.results.records import ProbeRecord
from storprof.storage import pgbench as pg
from storprof.storage import postgres
from storprof.views.labels import record_label

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pgbench"


def _text(name: str) -> str:
    path = FIXTURES / name
    return gzip.open(path, "rt").read() if name.endswith(".gz") else path.read_text()


def test_a_units_output_gives_each_runs_tps_and_every_transactions_latency():
    text = _text("unit-host-scale2.txt.gz")
    runs, failure = pg.parse_output(text)
    assert failure == ""
    assert [r.mode for r in runs] == [pg.TPCB, pg.SELECT]
    printed = [float(t) for t in re.findall(r"^tps = ([0-9.]+) ", text, re.M)]
    processed = [int(n) for n in re.findall(r"^number of transactions actually processed: (\d+)", text, re.M)]
    for run, tps, n in zip(runs, printed, processed):
        assert run.ok and run.exit_code == 0
        assert run.tps == tps
        # the per-transaction log has a line per transaction pgbench counted
        assert len(run.latencies_us) == n == run.transactions
        assert run.failed_transactions == 0
        assert 0 < pg.percentile(run.latencies_us, 50) <= pg.percentile(run.latencies_us, 99)
    # a commit waits for its WAL fsync: TPC-B-like is slower per transaction than select-only
    assert runs[0].tps < runs[1].tps


def test_percentile_is_a_latency_some_transaction_had():
    values = (5, 1, 4, 2, 3, 100, 6, 7, 8, 9)
    assert pg.percentile(values, 50) == 5
    assert pg.percentile(values, 99) == 100
    assert pg.percentile(values, 90) == 9
    assert pg.percentile((42,), 99) == 42


def test_pgbench_without_its_tables_is_a_failed_run_with_its_message():
    runs, failure = pg.parse_output(_text("unit-not-loaded.txt"))
    assert failure == ""
    assert [r.ok for r in runs] == [False, False]
    assert all(r.exit_code == 1 and 'relation "pgbench_branches" does not exist' in r.message for r in runs)


def test_a_server_gone_mid_run_fails_that_run_and_the_next_with_pgbenchs_words():
    runs, failure = pg.parse_output(_text("unit-server-killed.txt.gz"))
    tpcb, select = runs
    # pgbench printed a tps for the aborted run: it is not taken, the run is failed
    assert tpcb.tps is not None and not tpcb.ok and tpcb.exit_code == 2
    assert "client" in tpcb.message and "aborted" in tpcb.message
    assert not select.ok and "connection to server" in select.message
    assert failure.startswith("stop failed")


def test_a_script_cut_short_says_so():
    text = _text("unit-host-scale2.txt.gz")
    cut = text[:text.index("@@run select-only")]
    runs, failure = pg.parse_output(cut)
    assert len(runs) == 1 and runs[0].ok
    assert failure.startswith("the server's script ended early")


def test_the_script_keeps_durability_on_and_runs_the_cold_mode_alone():
    server = pg.Server("15", "/usr/lib/postgresql/15/bin", "/usr/share/postgresql/15", "/usr/lib/postgresql/15/lib")
    plan = pg.PostgresPlan(scale=3, cold_scale=9, clients=4, threads=2, seconds=7)
    cached = pg.script(server, plan, ("init", "load", "run"))
    for setting in ("fsync=on", "synchronous_commit=on", "full_page_writes=on"):
        assert f"-c {setting}" in cached
    assert "pgbench -i -q -s 3 " in cached and "-c 4 -j 2 -T 7" in cached
    assert cached.count("@@run") == 2 and " -S " in cached
    load = pg.script(server, plan, ("init", "load"), pg.COLD)
    assert "-s 9 " in load and "@@run" not in load and "initdb" in load
    run = pg.script(server, plan, ("run",), pg.COLD)
    assert "initdb" not in run and "pgbench -i" not in run and run.count("@@run") == 1
    assert plan.groups() == ("cached", "cold")
    assert pg.PostgresPlan(cold_scale=None).groups() == ("cached",)


def test_bad_plans_are_refused_in_one_line():
    from storprof.errors import UserError
    for bad in (dict(scale=0), dict(clients=0), dict(threads=5, clients=4), dict(seconds=0), dict(cold_scale=0)):
        with pytest.raises(UserError):
            pg.PostgresPlan(**bad).validate()


def test_rows_are_named_by_fields_and_labelled_by_the_view():
    plan = pg.PostgresPlan(scale=3, cold_scale=9)
    r = pg.row(plan, pg.TPCB, "latency p99")
    assert r == {"workload": "postgres", "operation": "tpcb-like: latency p99", "scale": 3}
    assert pg.row(plan, pg.COLD, pg.STATS[0])["scale"] == 9
    record = SimpleNamespace(**{**dict.fromkeys(ProbeRecord.IDENTITY), **r})
    assert record_label(record) == "postgres scale 3: tpcb-like: latency p99"


class _Place(postgres._Place):
    """A placement that prints what a real unit printed."""

    def __init__(self, output: str):
        self.placement, self.description, self.output = "union", "container's writable top layer", output
        self.scripts: list[str] = []

    def run(self, text, workdir, timeout):
        self.scripts.append(text)
        return (0, self.output) if "pgbench" in text else (0, "@@done\n")


def _run_unit(output: str) -> list[ProbeRecord]:
    plan = pg.PostgresPlan(scale=2, cold_scale=None, clients=2, threads=1, seconds=1)
    workload = postgres.Postgres(plan, repeat=1, sides=("host", "union"))
    workload._server = pg.Server("15", "/b", "/s", "/l")
    workload._places["union"] = _Place(output)
    emitted: list[ProbeRecord] = []
    sink = SimpleNamespace(emit=emitted.append, message=lambda text: None)
    unit = next(u for u in workload.units("overlay2@ext4", frozenset()) if u.placement == "union")
    workload.run(unit, SimpleNamespace(context=None), sink)
    return emitted


def test_a_unit_records_each_runs_three_statistics_with_its_tps_and_settings():
    records = _run_unit(_text("unit-host-scale2.txt.gz"))
    assert len(records) == 6 and all(r.status == "ok" for r in records)
    by = {r.operation: r for r in records}
    tpcb = by["tpcb-like: time per transaction"]
    assert tpcb.seconds == pytest.approx(1 / tpcb.params["tps"])
    assert by["tpcb-like: latency p50"].seconds <= by["tpcb-like: latency p99"].seconds
    assert "fsync=on" in tpcb.params["settings"] and tpcb.params["server"] == "15"


def test_pgbench_failing_mid_run_is_recorded_as_failed_with_its_message():
    records = _run_unit(_text("unit-server-killed.txt.gz"))
    assert len(records) == 6 and all(r.status == "failed" for r in records)
    tpcb = [r for r in records if r.operation.startswith("tpcb-like")]
    assert all("aborted" in (r.error or "") for r in tpcb)


def test_a_tcp_run_over_a_path_gives_its_tps_and_average_latency():
    kept = pg.client_metrics(_text("net-proxy-loopback.txt"), 0)
    assert kept["tps"] == 8127.998135 and kept["latency_average_ms"] == 0.492 and kept["transactions"] == 16178
    # -C: a new connection per transaction, its tps counts the reconnections in
    connect = pg.client_metrics(_text("net-dnat-loopback-connect.txt"), 0)
    assert connect["tps"] == 327.516631 and connect["latency_average_ms"] == 12.213


def test_a_tcp_run_that_failed_raises_pgbenchs_words_even_with_a_tps_printed():
    from storprof.errors import StorprofError
    killed = _text("unit-server-killed.txt.gz")
    first = killed[killed.index("@@run tpcb-like") + 16:killed.index("@@exit")]
    with pytest.raises(StorprofError, match="aborted"):
        pg.client_metrics(first, 2)
    with pytest.raises(StorprofError, match="pgbench exited 1"):
        pg.client_metrics("", 1)


def test_client_argv_runs_select_only_over_tcp_and_connect_adds_dash_c():
    server = pg.Server("15", "/usr/lib/postgresql/15/bin", "/s", "/l")
    argv = pg.client_argv(server, "127.0.0.1", 15432, 2, 4, connect=False)
    assert argv[0] == "/usr/lib/postgresql/15/bin/pgbench" and "-S" in argv and "-n" in argv
    assert argv[argv.index("-h") + 1] == "127.0.0.1" and argv[argv.index("-p") + 1] == "15432"
    assert "-C" not in argv and "-C" in pg.client_argv(server, "127.0.0.1", 15432, 2, 4, connect=True)


def test_a_host_without_postgresql_skips_the_workload_naming_the_package(monkeypatch):
    monkeypatch.setattr(pg.glob, "glob", lambda pattern: [])
    workload = postgres.Postgres(pg.PostgresPlan(), repeat=1, sides=("host", "union"))
    said: list[str] = []
    sink = SimpleNamespace(emit=lambda record: pytest.fail("a skipped workload records nothing"), message=said.append)
    workload.prepare(SimpleNamespace(label="overlay2@ext4"), sink)
    assert said == ["[overlay2@ext4] postgres: skipped: no PostgreSQL server with pgbench "
                    "(install Debian's postgresql package)"]
    unit = workload.units("overlay2@ext4", frozenset())[0]
    assert workload.run(unit, SimpleNamespace(), sink).startswith("skipped: no PostgreSQL server")
