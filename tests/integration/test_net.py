"""storprof net on real daemons in network namespaces of its own (needs root, dockerd and the tools).

One short run of every path and workload: each path ends ok in every round, each gets a ratio to
its host baseline, docker-proxy really carries the proxy path and DNAT the other, and afterwards
the host's links, addresses, routes, rules and firewall are exactly as before. A run killed with
-9 leaves its namespaces and daemons, and `storprof clean` removes them. A missing tool skips its
workloads with the reason while the others run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from storprof.network.namespaces import host_network_snapshot
from storprof.network.plan import PATHS, WORKLOADS
from storprof.results import ResultSet
from storprof.results.records import NetRecord
from storprof.stats.network import CONTROL, PROXY_VS_DNAT, net_rows
from tests.conftest import setup_provides, sigint_default, storprof_leftovers

TOOLS = ("dockerd", "iperf3", "sockperf", "wrk", "nginx", "bwrap", "ip", "iptables", "nsenter", "ss")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and dockerd need root"),
    setup_provides(all(shutil.which(t) for t in TOOLS), f"needs {', '.join(TOOLS)}"),
]


def storprof(*args: str) -> list[str]:
    return [sys.executable, "-m", "storprof.cli", *args]


def our_namespaces(run_ids: set[str] | None = None) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    names = [line.split()[0] for line in out.splitlines() if line.startswith("storprof-")]
    return [n for n in names if run_ids is None or any(r in n for r in run_ids)]


@pytest.fixture(scope="module")
def net_run():
    """One quick run of every path and workload (the article's pgbench ones too): 1-second runs, 2 rounds."""
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-net-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-net-out-")) / "r"
    before = host_network_snapshot()
    done = subprocess.run(storprof("net", "--seconds", "1", "--repeat", "2", "--workloads", ",".join(WORKLOADS),
                                   "--workdir", str(workdir),
                                   "--out", str(out), "--quiet"), capture_output=True, text=True, timeout=1200)
    after = host_network_snapshot()
    yield done, out, workdir, before, after
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(out.parent, ignore_errors=True)


def test_every_path_and_workload_runs_in_every_round(net_run):
    done, out, _, _, _ = net_run
    assert done.returncode == 0, done.stderr[-3000:]
    records = ResultSet.load(out).of(NetRecord)
    failed = [(r.path, r.namespace, r.workload, r.error) for r in records if r.status != "ok"]
    assert failed == []
    got = {(r.path, r.namespace, r.workload, r.repeat) for r in records}
    want = {(p, PATHS[p].namespace, w, k) for p in PATHS if p != "host" for w in WORKLOADS for k in (0, 1)}
    want |= {("host", ns, w, k) for ns in ("proxy", "nat") for w in WORKLOADS for k in (0, 1)}
    assert got == want
    for r in records:        # each record says what it measured, and its raw output is kept
        assert r.metrics[WORKLOADS[r.workload].metric] > 0
        assert (out / r.raw).is_file()
        assert r.docker_version and r.tool_version
    latency = [r for r in records if r.workload == "latency"]
    assert all(r.metrics["rtt"] == 1.0 and r.metrics["p99_9_us"] >= r.metrics["p50_us"] for r in latency)


def test_each_path_gets_a_ratio_to_its_own_baseline_and_the_report_shows_them(net_run):
    done, out, _, _, _ = net_run
    rows = net_rows(ResultSet.load(out).of(NetRecord))
    for path in [p for p in PATHS if p != "host"] + [CONTROL, PROXY_VS_DNAT]:
        for workload in WORKLOADS:
            row = next(r for r in rows if r.path == path and r.workload == workload
                       and r.metric == WORKLOADS[workload].metric)
            assert row.n == 2 and row.interval is not None and row.interval.ratio > 0
    # the terminal says the verdict first, then the table; report and table read the same rows
    assert "docker-proxy vs DNAT on 127.0.0.1" in done.stdout
    assert done.stdout.index("docker-proxy vs DNAT") < done.stdout.index("ratio [95% CI]")
    assert (out / "net.md").is_file()
    report = subprocess.run(storprof("report", str(out)), capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    page = (out / "report.html").read_text()
    assert "Network paths" in page and "data:image/png;base64," in page
    table = subprocess.run(storprof("table", str(out), "--format", "json"), capture_output=True, text=True,
                           timeout=120)
    data = json.loads(table.stdout)
    assert {d["path"] for d in data} >= set(PATHS) - {"host"}


def test_the_articles_experiment_puts_a_database_behind_each_path_with_its_data_on_layer_and_volume(net_run):
    done, out, _, _, _ = net_run
    records = [r for r in ResultSet.load(out).of(NetRecord) if r.tool == "pgbench"]
    assert {r.workload for r in records} == {"pgbench", "pgbench-volume", "pgbench-connect"}
    for r in records:
        assert r.status == "ok" and r.metrics["tps"] > 0 and r.metrics["failed_transactions"] == 0, r
        assert r.params["data"] in ("postgres", "postgres-volume") and r.params["scale"] > 0
    # a new connection per transaction: far fewer transactions a second than on kept-alive connections
    by = {(r.workload, r.path, r.namespace, r.repeat): r.metrics["tps"] for r in records}
    slower = [by[("pgbench-connect", *k[1:])] < by[("pgbench", *k[1:])] for k in by if k[0] == "pgbench"]
    assert slower and all(slower)
    rows = [r for r in net_rows(ResultSet.load(out).of(NetRecord)) if r.workload == "pgbench" and r.metric == "tps"]
    assert all(r.higher_is_better for r in rows)


def test_the_host_network_is_exactly_as_before_and_nothing_is_left(net_run):
    done, out, workdir, before, after = net_run
    assert done.returncode == 0, done.stderr[-3000:]
    for name in before:
        assert after[name] == before[name], f"{name} changed"
    run_ids = {r.run_id for r in ResultSet.load(out).of(NetRecord)}
    assert our_namespaces(run_ids) == []
    assert storprof_leftovers(str(workdir)) == []
    assert list(workdir.iterdir()) == []
    runtime = list(Path("/run/storprof").glob("*")) if Path("/run/storprof").exists() else []
    assert [p for p in runtime if any(run_id in p.name for run_id in run_ids)] == []


def test_docker_proxy_carries_the_proxy_path_and_dnat_the_other(tmp_path):
    """Checked inside the namespaces while a run is up: with userland-proxy=true the OUTPUT rule
    leaves 127.0.0.0/8 out of DNAT and a docker-proxy listens on the published port; without it,
    no docker-proxy runs and loopback is DNATed (route_localnet on the bridge)."""
    from storprof.engine.engines import all_engines
    from storprof.harness.state import RunState
    from storprof.network.plan import NetPlan, NetSettings
    from storprof.network.session import NetSession

    engine = max(all_engines(), key=lambda e: e.version)
    plan = NetPlan(engines=[engine.name], paths=["proxy-loopback", "dnat-loopback"], workloads=["throughput"],
                   settings=NetSettings(seconds=1, repeat=1), run_id=os.urandom(5).hex())
    state = RunState(tmp_path, plan.run_id)
    with NetSession(engine, plan, tmp_path, tmp_path / "run", state, lambda line: None, 0) as session:
        proxy_ns, nat_ns = session.namespaces["proxy"], session.namespaces["nat"]

        def commands(ns, argv):
            return subprocess.run(ns.exec_argv(argv), capture_output=True, text=True, timeout=30).stdout

        def proxies(ns):
            out = []
            for pid in ns.pids():
                try:
                    out.append(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode())
                except OSError:
                    pass
            return [c for c in out if c.endswith("docker-proxy")]

        assert "! -d 127.0.0.0/8" in commands(proxy_ns, ["iptables-save", "-t", "nat"])
        assert proxies(proxy_ns), "no docker-proxy in the proxy namespace"
        assert proxies(nat_ns) == []
        assert commands(nat_ns, ["sysctl", "-n", "net.ipv4.conf.docker0.route_localnet"]).strip() == "1"
        assert "! -d 127.0.0.0/8" not in commands(nat_ns, ["iptables-save", "-t", "nat"])
    assert our_namespaces({plan.run_id}) == []
    assert state.finish() == []


def test_kill_9_mid_run_then_clean_leaves_no_namespace_daemon_or_veth():
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-net-kill-"))
    out = Path(tempfile.mkdtemp(prefix="storprof-it-net-kill-out-")) / "r"
    before = host_network_snapshot()
    try:
        proc = subprocess.Popen(storprof("net", "--paths", "bridge,proxy-loopback", "--workloads", "throughput",
                                         "--seconds", "1", "--repeat", "20", "--workdir", str(workdir),
                                         "--out", str(out), "--quiet"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        results = out / "results.jsonl"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:       # kill it once it measures
            if results.is_file() and results.read_text().count("\n") >= 2:
                break
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        state = next((workdir / ".storprof-state").glob("*.jsonl"))
        run_id = state.stem
        assert len(our_namespaces({run_id})) == 2          # the kill left them: clean must find them
        cleaned = subprocess.run(storprof("clean", "--workdir", str(workdir)), capture_output=True, text=True,
                                 timeout=300)
        assert cleaned.returncode == 0, cleaned.stderr
        assert "deleting network namespace" in cleaned.stderr
        assert our_namespaces({run_id}) == []
        assert storprof_leftovers(run_id) == [] and storprof_leftovers(str(workdir)) == []
        after = host_network_snapshot()
        for name in before:
            assert after[name] == before[name], f"{name} changed"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(out.parent, ignore_errors=True)


def test_a_missing_tool_skips_its_workload_with_the_reason_and_the_others_run(tmp_path):
    """PATH without sockperf (every other command still found): latency is skipped, throughput runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for entry in Path(d).iterdir() if Path(d).is_dir() else []:
            link = bin_dir / entry.name
            if entry.name != "sockperf" and not link.exists():
                link.symlink_to(entry)
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-net-tools-"))
    try:
        done = subprocess.run(storprof("net", "--paths", "bridge", "--workloads", "throughput,latency",
                                       "--seconds", "1", "--repeat", "1", "--workdir", str(workdir),
                                       "--out", str(tmp_path / "r"), "--quiet"),
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PATH": str(bin_dir)})
        assert done.returncode == 0, done.stderr[-3000:]
        records = ResultSet.load(tmp_path / "r").of(NetRecord)
        latency = [r for r in records if r.workload == "latency"]
        assert latency and all(r.status == "skipped" and "sockperf is not installed (package sockperf)" in r.error
                               for r in latency)
        throughput = [r for r in records if r.workload == "throughput"]
        assert {(r.path, r.status) for r in throughput} == {("host", "ok"), ("bridge", "ok")}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_storage_daemon_leaves_the_host_firewall_alone(tmp_path):
    """Docker 27+ adds ip6tables chains by default even with --iptables=false; a storage daemon of
    storprof's passes --ip6tables=false too, so starting and stopping one changes nothing."""
    from storprof.engine.daemon import EphemeralDaemon
    from storprof.engine.engines import all_engines
    from storprof.harness.layout import RUNTIME_ROOT
    engine = max(all_engines(), key=lambda e: e.version)
    before = host_network_snapshot()
    daemon = EphemeralDaemon("vfs@test", "vfs", tmp_path / "docker", RUNTIME_ROOT / f"it-{os.urandom(4).hex()}",
                             tmp_path / "dockerd.log", engine=engine)
    try:
        daemon.start()
        assert daemon.client.ping()
        during = host_network_snapshot()
    finally:
        daemon.stop()
    for name in before:
        assert during[name] == before[name], f"{name} changed while a storage daemon ran"
    assert host_network_snapshot() == before


def test_ctrl_c_keeps_what_finished_leaves_nothing_and_resume_completes_the_rounds(tmp_path):
    workdir = Path(tempfile.mkdtemp(prefix="storprof-it-net-int-"))
    out = tmp_path / "r"
    args = ("--paths", "bridge", "--workloads", "throughput", "--seconds", "1", "--workdir", str(workdir), "--quiet")
    try:
        proc = subprocess.Popen(storprof("net", "--repeat", "4", "--out", str(out), *args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
        results = out / "results.jsonl"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if results.is_file() and results.read_text().count("\n") >= 3:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130 and f"--resume {out}" in err, err
        kept = ResultSet.load(out).of(NetRecord)
        assert 3 <= len(kept) < 8
        assert our_namespaces({r.run_id for r in kept}) == [] and storprof_leftovers(str(workdir)) == []
        done = subprocess.run(storprof("net", "--repeat", "4", "--resume", str(out), *args), capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        ok = [r for r in ResultSet.load(out).of(NetRecord) if r.status == "ok"]
        # every round complete within one run: a round the interrupt cut short is measured again whole
        rounds: dict[tuple[int, str], set[str]] = {}
        for r in ok:
            rounds.setdefault((r.repeat, r.run_id), set()).add(r.path)
        complete = {repeat for (repeat, _), paths in rounds.items() if paths == {"host", "bridge"}}
        assert complete == {0, 1, 2, 3}           # repeats count from 0, as storage's do
        assert storprof_leftovers(str(workdir)) == []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
