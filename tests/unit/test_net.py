"""storprof net's pure parts on output real runs produced (tests/fixtures/net-raw, results-net):
the parsers on output that came through each path (tests/unit/test_nettools.py has the tools'
command lines and hostile inputs), the plan's rounds, the paired ratios, the views, compare,
and the command line's refusals."""

from __future__ import annotations

import math
import shutil
import statistics
import subprocess
import sys

import pytest

from storprof.errors import UserError
from storprof.network import plan as netplan
from storprof.network import tools as nettools
from storprof.network.plan import HOST, NAT, PATHS, PROXY, WORKLOADS, NetPlan, NetSettings, dialled_port, server_port
from storprof.network.session import listening_ports
from storprof.results import ResultSet
from storprof.results.records import NetRecord, record_from_json
from storprof.stats.compare import compare
from storprof.stats.intervals import REAL
from storprof.stats.network import CONTROL, PROXY_VS_DNAT, net_rows
from storprof.views import network as netviews
from tests.conftest import FIXTURES

RAW = FIXTURES / "net-raw"
RUN = FIXTURES / "results-net"


# ------------------------------------------------------------------------------- parsers

def test_iperf3_json_gives_the_received_rate_and_cpu():
    m = nettools.parse_iperf3((RAW / "iperf3-host.json").read_text())
    assert m["bits_per_second"] == pytest.approx(19031528875.5699)
    assert m["sent_bits_per_second"] == pytest.approx(19032425766.54223)
    assert m["retransmits"] == 39 and m["seconds"] == pytest.approx(2.000151)
    assert m["cpu_host_pct"] == pytest.approx(99.12199995268104)


def test_iperf3_error_object_is_a_tool_error_with_its_message():
    with pytest.raises(nettools.ToolOutputError, match="unable to create a new stream"):
        nettools.parse_iperf3((RAW / "iperf3-error.json").read_text())
    for bad in ("", "{", "[]", '{"end": {}}'):
        with pytest.raises(nettools.ToolOutputError):
            nettools.parse_iperf3(bad)


def test_sockperf_full_rtt_percentiles_with_colours_stripped():
    m = nettools.parse_sockperf((RAW / "sockperf-proxy-loopback.txt").read_text())
    assert m["rtt"] == 1.0                       # --full-rtt: sockperf says avg-rtt, not avg-latency
    assert m["avg_us"] == 158.951 and m["stddev_us"] == 91.187
    assert m["observations"] == 9748 and m["valid_seconds"] == 1.55
    assert (m["p50_us"], m["p99_us"], m["p99_9_us"], m["p99_999_us"]) == (153.5, 298.144, 740.763, 6302.465)
    assert m["min_us"] == 38.586 and m["max_us"] == 6302.465
    text = (RAW / "sockperf-proxy-loopback.txt").read_text()
    with pytest.raises(nettools.ToolOutputError):
        nettools.parse_sockperf(text[: text.index("Total")])         # cut before the percentiles


def test_wrk_json_line_after_its_own_summary():
    m = nettools.parse_wrk((RAW / "wrk-connect-proxy-loopback.txt").read_text())
    assert m["requests"] == 16958 and m["seconds"] == pytest.approx(2.000182)
    assert m["requests_per_second"] == pytest.approx(16958 / 2.000182)
    assert m["errors"] == 0 and (m["lat_p50_us"], m["lat_p99_us"], m["lat_p99_9_us"]) == (393, 1115, 3317)
    keepalive = nettools.parse_wrk((RAW / "wrk-http-bridge.txt").read_text())
    assert keepalive["requests_per_second"] > m["requests_per_second"]   # kept-alive connections serve more
    for bad in ("", "Requests/sec: 5\n", '{"requests": 5}'):
        with pytest.raises(nettools.ToolOutputError):
            nettools.parse_wrk(bad)


def test_ss_output_gives_the_listening_ports():
    assert listening_ports((RAW / "ss-Hltn.txt").read_text()) == {11111, 5201}


# --------------------------------------------------------------------------- command lines

def test_client_and_server_command_lines():
    assert nettools.iperf3_client_argv("172.17.0.2", 5201, 2) == [
        "iperf3", "-c", "172.17.0.2", "-p", "5201", "-t", "2", "-O", "1", "-J"]
    assert nettools.sockperf_client_argv("127.0.0.1", 21111, 5) == [
        "sockperf", "ping-pong", "--tcp", "-i", "127.0.0.1", "-p", "21111", "-t", "5", "-m", "64", "--full-rtt"]
    assert nettools.wrk_argv("http://127.0.0.1:18080/", 2, 4, "/storprof/in/report.lua", True) == [
        "wrk", "-t", "1", "-c", "4", "-d", "2s", "--timeout", "5s", "-s", "/storprof/in/report.lua",
        "-H", "Connection: close", "http://127.0.0.1:18080/"]
    assert "-H" not in nettools.wrk_argv("http://127.0.0.1:8080/", 2, 8, "/x.lua", False)
    assert nettools.iperf3_server_argv(5202, "/bin/iperf3") == ["/bin/iperf3", "-s", "-p", "5202"]
    assert nettools.nginx_argv("/etc/storprof/nginx-8080.conf") == [
        "nginx", "-c", "/etc/storprof/nginx-8080.conf", "-e", "stderr"]


# ------------------------------------------------------------------------------------ plan

def test_every_round_measures_each_slot_once_per_workload_shuffled():
    plan = NetPlan(engines=["28.5.2"], paths=list(PATHS)[1:], workloads=list(WORKLOADS),
                   settings=NetSettings(1, 3), run_id="0123456789", seed=7)
    slots = plan.slots()
    assert (HOST, PROXY) in slots and (HOST, NAT) in slots and len(slots) == len(PATHS) + 1
    rounds = plan.rounds("28.5.2")
    assert len(rounds) == 3
    for units in rounds:
        for w in WORKLOADS:
            assert sorted((p, ns) for ww, p, ns in units if ww == w) == sorted(slots)
    orders = [[(p, ns) for w, p, ns in units if w == "connect"] for units in rounds]
    assert len({tuple(o) for o in orders}) > 1             # not the same order every round
    only_bridge = NetPlan(engines=["x"], paths=["bridge"], workloads=["http"], settings=NetSettings(1, 1),
                          run_id="0123456789")
    assert only_bridge.namespaces == [NAT] and only_bridge.slots() == [(HOST, NAT), ("bridge", NAT)]


def test_each_path_dials_its_own_port():
    published = [dialled_port("wrk", PATHS[p]) for p in ("dnat-loopback", "dnat-bridge")]
    assert len(set(published)) == 2
    assert server_port("wrk", PATHS["host-network"]) != server_port("wrk", PATHS[HOST])
    assert dialled_port("iperf3", PATHS["bridge"]) == 5201
    assert netplan.published_on(PATHS["dnat-loopback"]) == "127.0.0.1"
    assert netplan.published_on(PATHS["dnat-bridge"]) == "0.0.0.0"


# ---------------------------------------------------------------------- records and ratios

def test_records_round_trip():
    for record in ResultSet.load(RUN).of(NetRecord):
        assert record_from_json(record.to_json()) == record


def test_ratios_pair_each_path_with_its_own_namespaces_baseline_by_round():
    records = ResultSet.load(RUN).of(NetRecord)
    rows = net_rows(records)
    row = next(r for r in rows if r.path == "proxy-loopback" and r.workload == "connect"
               and r.metric == "requests_per_second" and r.against == "host")
    by = {(r.path, r.namespace, r.repeat): r.metrics["requests_per_second"] for r in records
          if r.workload == "connect"}
    ratios = [by[("proxy-loopback", PROXY, k)] / by[(HOST, PROXY, k)] for k in (0, 1, 2)]
    assert row.n == 3
    assert row.interval.ratio == pytest.approx(math.exp(statistics.mean(math.log(x) for x in ratios)))
    assert row.value == pytest.approx(statistics.median(by[("proxy-loopback", PROXY, k)] for k in (0, 1, 2)))
    # on this machine docker-proxy cost more than half of the connections per second DNAT served
    direct = next(r for r in rows if r.path == PROXY_VS_DNAT and r.workload == "connect"
                  and r.metric == "requests_per_second")
    assert direct.verdict == REAL and direct.interval.high < 0.5
    assert any(r.path == CONTROL for r in rows)
    assert {r.path for r in rows if r.against == "host-network"} == {"dnat-loopback", "dnat-bridge", "bridge"}


def test_latency_ratios_count_more_as_slower():
    rows = net_rows(ResultSet.load(RUN).of(NetRecord))
    row = next(r for r in rows if r.path == PROXY_VS_DNAT and r.metric == "p50_us")
    assert not row.higher_is_better and row.interval.ratio > 1 and row.slower_by > 0


def test_failed_runs_are_left_out_and_said_once():
    records = ResultSet.load(FIXTURES / "results-net-iperf3-failed").of(NetRecord)
    rows = net_rows(records)
    lines = netviews.verdict_lines(rows)
    assert lines[0].startswith("Not measured:") and "unable to create a new stream" in lines[0]
    assert "throughput" not in netviews.format_table(rows).split("\n", 2)[2]


# ---------------------------------------------------------------------------------- views

def test_the_verdict_comes_first_and_the_table_holds_every_measured_row():
    rows = net_rows(ResultSet.load(RUN).of(NetRecord))
    lines = netviews.verdict_lines(rows)
    assert lines[0].startswith("[Docker 28.5.2] docker-proxy vs DNAT on 127.0.0.1, bulk TCP throughput")
    assert lines[-1].startswith("Noise: the host baseline against itself")
    table = netviews.format_table(rows)
    assert len(table.splitlines()) == 2 + len(rows)
    md = netviews.markdown(rows)
    assert md.startswith("## Network paths") and "| dnat-bridge |" in md
    assert {d["path"] for d in netviews.records(rows)} >= set(PATHS) - {HOST}


def test_an_interval_wider_than_the_target_is_not_yet_known_never_within_noise():
    """Both halves classify alike (stats.classify): an interval that includes 1.00 but reaches past
    the ±5% target cannot tell anything apart, so it is 'not yet known', as the storage half says."""
    rows = [r for r in net_rows(ResultSet.load(FIXTURES / "results-net-thorough").of(NetRecord))
            if r.interval is not None and r.n >= 2]
    wide = [r for r in rows if r.interval.low <= 1 <= r.interval.high
            and (r.interval.low < 0.95 or r.interval.high > 1.05)]
    narrow = [r for r in rows if 0.95 <= r.interval.low <= r.interval.high <= 1.05]
    assert wide, "the thorough run has intervals wider than the target"
    for r in wide:
        assert netviews.verdict_text(r).startswith("not yet known ("), netviews.verdict_text(r)
    for r in narrow:
        assert netviews.verdict_text(r) == "no measurable difference"
    assert not any("noise" in netviews.verdict_text(r) for r in rows)


def test_compare_reads_net_runs_and_refuses_other_durations(tmp_path):
    a = ResultSet.load(RUN)
    result = compare(a, a)
    net = result.table[result.table["driver_spec"] == "net@28.5.2"]
    assert set(net["placement"]) >= {"proxy-loopback", "host@proxy", "host@nat"}
    assert (net["ratio"] == 1.0).all()
    # a side with no spread at all (wrk's whole-microsecond p50, the same three times) cannot be tested
    assert set(net["verdict"]) <= {"not significant", "cannot tell (too few repeats)"}
    assert (net["verdict"] == "not significant").sum() > 0.9 * len(net)
    assert "ratio to host" in set(net["metric"]) and "latency ratio to host" in set(net["metric"])
    other = tmp_path / "b"
    shutil.copytree(RUN, other)
    meta = (other / "meta.json").read_text().replace('"seconds": 2', '"seconds": 5')
    (other / "meta.json").write_text(meta)
    with pytest.raises(UserError, match=r"storprof net: measured with --seconds 2 against 5"):
        compare(a, ResultSet.load(other))


# ---------------------------------------------------------------------------- command line

@pytest.mark.parametrize("args, message", [
    (["--paths", "bogus"], "unknown path 'bogus'"),
    (["--paths", "bridge;reboot"], "unknown path 'bridge;reboot'"),
    (["--paths", ","], "--paths is empty"),
    (["--workloads", "udp"], "unknown workload 'udp'"),
    (["--seconds", "0"], "--seconds must be"),
    (["--seconds", "100000"], "--seconds must be"),
    (["--repeat", "0"], "--repeat must be"),
    (["--seconds", "2s"], "'2s' is not a valid integer"),
    (["--out", "/tmp/x", "--resume", "/tmp/y"], "--resume continues in its own directory"),
])
def test_bad_input_gets_one_line_before_anything_starts(args, message):
    done = subprocess.run([sys.executable, "-m", "storprof.cli", "net", *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode in (1, 2) and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
