"""A workload registered in this test alone runs through the sweep, the table and the report on a
real daemon, with no edit anywhere else: the registry is the one place a workload plugs in."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from storprof import cli, results
from storprof.engine.drivers import DriverSpec
from storprof.errors import StorprofError
from storprof.harness import registry
from storprof.harness.plan import SweepPlan
from storprof.harness.sweep import Sweep
from storprof.harness.workload import Unit
from storprof.results import ResultSet
from storprof.results.files import read_meta
from storprof.results.records import ProbeRecord
from storprof.storage.probes.filetiming import fresh_container_root
from storprof.views.timeaccount import time_account_lines
from tests.conftest import setup_provides, storprof_leftovers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="ephemeral daemons need root"),
    setup_provides(shutil.which("dockerd") is not None, "dockerd is not installed"),
]

OPERATION = "toy write+fsync"


@dataclass(frozen=True)
class ToyPlan:
    kib: int = 256

    def validate(self) -> None:
        if self.kib < 1:
            raise StorprofError("the toy writes 1 KiB or more")

    def bytes_needed(self) -> int:
        return self.kib * 1024


class Toy:
    """Writes and fsyncs one file, on the host and in a fresh container's top layer."""

    name = "toy"

    def __init__(self, plan: ToyPlan, repeat: int, sides: tuple[str, ...]):
        self.plan, self.repeat, self.sides = plan, repeat, sides

    def done_keys(self, results: ResultSet) -> set[tuple]:
        return {("toy", r.context.driver_spec, r.placement, r.repeat) for r in results.of(ProbeRecord)
                if r.workload == "toy"}

    def units(self, spec: str, done) -> list[Unit]:
        units = [Unit("toy", "toy", p, r, ("toy", spec, p, r)) for r in range(self.repeat) for p in self.sides]
        return [u for u in units if u.key not in done]

    def prepare(self, session, sink) -> None:
        sink.message(f"[{session.label}] toy: a {self.plan.kib} KiB write and fsync")
        self._host = session.host_dir / "toy"
        self._host.mkdir(parents=True, exist_ok=True)

    def run(self, unit: Unit, session, sink) -> str:
        if unit.placement == "host":
            seconds = self._write(self._host)
        else:
            with fresh_container_root(session.daemon.client, session.context.image or "",
                                      f"{session.name_prefix}-toy-r{unit.repeat}", session.labels) as root:
                seconds = self._write(root)
        sink.emit(ProbeRecord(context=session.context, workload="toy", operation=OPERATION,
                              placement=unit.placement, repeat=unit.repeat, seconds=seconds))
        return f"{seconds * 1e3:.2f} ms"

    def _write(self, directory: Path) -> float:
        path = directory / "toy.bin"
        start = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, b"t" * (self.plan.kib * 1024))
            os.fsync(fd)
        finally:
            os.close(fd)
        seconds = time.perf_counter() - start
        path.unlink()
        return seconds

    def cleanup(self, session) -> None:
        self._host.rmdir()


def _the_time_account_adds_up(results_dir: Path, sweep: Sweep, wall: float, spec_seconds: float) -> None:
    """meta.json's account (written as the spec ended) and the sweep's at its end: the spec's
    phases sum to its wall time, which is the spec's own clock (DriverRecord.seconds), and the
    run's phases plus the spec's wall to the wall time measured around the sweep, each within 2%."""
    saved = read_meta(results_dir / results.META_FILE)["time_account"]["specs"]["vfs@ext4"]
    account = sweep.times.to_meta()
    spec = account["specs"]["vfs@ext4"]
    assert saved == spec
    phases = spec["phases"]
    assert sum(phases.values()) == pytest.approx(spec["wall_seconds"], rel=0.02), account
    assert spec["wall_seconds"] == pytest.approx(spec_seconds, rel=0.02), (account, spec_seconds)
    assert all(phases.get(p, 0) > 0 for p in ("daemon_start", "image", "toy", "teardown")), phases
    assert phases["other"] <= 0.25 * spec["wall_seconds"], phases        # the phases name where it went
    run_total = sum(account["run"].values()) + spec["wall_seconds"]
    assert run_total == pytest.approx(account["wall_seconds"], rel=0.02), account
    assert account["wall_seconds"] == pytest.approx(wall, rel=0.02), (account, wall)
    print(time_account_lines(account))


@dataclass(frozen=True)
class ToySweepPlan(SweepPlan):
    toy: ToyPlan | None = None


def test_a_workload_registered_here_runs_through_sweep_table_and_report(monkeypatch):
    entry = registry.Registered("toy", "toy", ToyPlan(), ToyPlan(), lambda p, sweep, sides: Toy(p, sweep.repeat, sides),
                                union=True)
    monkeypatch.setattr(registry, "REGISTRY", (*registry.REGISTRY, entry))
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-out-"))
    try:
        plan = ToySweepPlan(specs=[DriverSpec("vfs", "ext4")], jobs=[], placements=("host", "union"), repeat=3,
                            workdir=workdir, toy=ToyPlan())
        store = results.ResultsStore(out, {"test": True})
        lines: list[str] = []
        sweep = Sweep(plan, store, lines.append)
        started = time.monotonic()
        outcomes = sweep.run()
        wall = time.monotonic() - started
        sweep.times.close()
        assert [o.status for o in outcomes] == ["ok"], (outcomes, lines[-5:])
        assert not storprof_leftovers(str(workdir))
        _the_time_account_adds_up(store.dir, sweep, wall, outcomes[0].seconds)
        toy = [r for r in ResultSet.load(store.dir).of(ProbeRecord) if r.workload == "toy"]
        assert sorted((r.placement, r.repeat) for r in toy) == [(p, r) for p in ("host", "union") for r in range(3)]
        assert all(r.seconds > 0 and r.context.driver_spec == "vfs@ext4" for r in toy)
        table = CliRunner().invoke(cli.main, ["table", str(store.dir)], catch_exceptions=False)
        assert table.exit_code == 0, table.output
        row = next(line for line in table.output.splitlines() if OPERATION in line)
        assert "vfs@ext4" in row and "x [" in row, row          # a ratio to host with its interval
        report = CliRunner().invoke(cli.main, ["report", str(store.dir)], catch_exceptions=False)
        assert report.exit_code == 0, report.output
        assert OPERATION in (store.dir / "report.md").read_text()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
