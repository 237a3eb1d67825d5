"""storprof.network.tools on output real runs of the tools printed (tests/fixtures/net-tools, see its
README): the parsers' numbers against the files, the exact command lines, the refusals of anything
that is not a port, an IPv4 literal or a plain absolute path, and nginx's own check of the config."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess

import pytest

from storprof.network import tools as nettools
from storprof.network.tools import ToolOutputError
from tests.conftest import FIXTURES, setup_provides

RAW = FIXTURES / "net-tools"


def _text(name: str) -> str:
    return (RAW / name).read_text()


# ------------------------------------------------------------------------------------ iperf3

def test_iperf3_json_gives_the_received_and_sent_rates_retransmits_and_cpu():
    m = nettools.parse_iperf3(_text("iperf3.json"))
    assert m == {"bits_per_second": 14923212073.142061, "sent_bits_per_second": 14957929035.162308,
                 "retransmits": 47.0, "seconds": 2.003389,
                 "cpu_host_pct": 77.94962390660744, "cpu_remote_pct": 30.692271221744406}
    assert all(type(v) is float for v in m.values())


def test_iperf3_without_retransmits_or_cpu_leaves_them_out():
    data = json.loads(_text("iperf3.json"))
    del data["end"]["sum_sent"]["retransmits"], data["end"]["cpu_utilization_percent"]
    assert set(nettools.parse_iperf3(json.dumps(data))) == {"bits_per_second", "sent_bits_per_second", "seconds"}


def test_iperf3_error_object_is_a_tool_error_with_iperf3s_message():
    with pytest.raises(ToolOutputError, match=r"^iperf3: unable to connect to server: Connection refused$"):
        nettools.parse_iperf3(_text("iperf3-error.json"))


@pytest.mark.parametrize("bad", ["", "   ", "{", "[]", "null", '"x"', "{}", '{"end": {}}', '{"end": []}',
                                 '{"end": {"sum_received": {"bits_per_second": 1, "seconds": 1}}}',
                                 '{"end": {"sum_received": {"bits_per_second": "1", "seconds": 1}, '
                                 '"sum_sent": {"bits_per_second": 1}}}'])
def test_iperf3_output_without_an_end_summary_is_a_tool_error(bad):
    with pytest.raises(ToolOutputError, match=r"^iperf3: "):
        nettools.parse_iperf3(bad)


def test_truncated_iperf3_json_is_a_tool_error():
    text = _text("iperf3.json")
    with pytest.raises(ToolOutputError, match=r"^iperf3: no JSON"):
        nettools.parse_iperf3(text[: text.index('"sum_received"')])


# ------------------------------------------------------------------------------------ sockperf

def test_sockperf_full_rtt_summary_with_colours_stripped():
    text = _text("sockperf-pingpong.txt")
    assert "\x1b[" in text                                   # the real output is coloured
    m = nettools.parse_sockperf(text)
    assert m == {"rtt": 1.0, "avg_us": 9.540, "stddev_us": 42.143, "observations": 161455.0, "valid_seconds": 1.550,
                 "max_us": 8089.923, "p99_999_us": 5319.993, "p99_99_us": 1406.833, "p99_9_us": 171.795,
                 "p99_us": 64.697, "p90_us": 9.489, "p75_us": 6.795, "p50_us": 6.543, "p25_us": 6.374,
                 "min_us": 6.058}


def test_sockperf_without_full_rtt_is_marked_half_round_trip():
    m = nettools.parse_sockperf(_text("sockperf-pingpong-half-rtt.txt"))
    assert m["rtt"] == 0.0 and m["avg_us"] == 6.493 and m["p99_9_us"] == 238.402 and m["observations"] == 118742


def test_sockperf_that_could_not_connect_is_a_tool_error_with_its_message():
    # sockperf 3.7 exits 0 here: the parser is what notices
    with pytest.raises(ToolOutputError, match=r"^sockperf: .*Can`t connect socket \(errno=111 Connection refused\)"):
        nettools.parse_sockperf(_text("sockperf-no-server.txt"))


@pytest.mark.parametrize("cut_before", ["====> avg-rtt", "Total 161455", "percentile 99.900", "<MIN>"])
def test_truncated_sockperf_output_is_a_tool_error(cut_before):
    text = _text("sockperf-pingpong.txt")
    with pytest.raises(ToolOutputError, match=r"^sockperf: "):
        nettools.parse_sockperf(text[: text.index(cut_before)])


@pytest.mark.parametrize("bad", ["", "sockperf: Test ended\n"])
def test_empty_sockperf_output_is_a_tool_error(bad):
    with pytest.raises(ToolOutputError, match=r"^sockperf: "):
        nettools.parse_sockperf(bad)


# ------------------------------------------------------------------------------------ wrk

def test_wrk_keepalive_json_line_after_wrks_own_summary():
    text = _text("wrk-keepalive.txt")
    assert text.startswith("Running 2s test @ http://127.0.0.1:8080/")
    m = nettools.parse_wrk(text)
    assert m == {"requests": 104945.0, "seconds": 2.099708, "requests_per_second": 104945 / 2.099708,
                 "bytes": 132545535.0, "errors": 0.0, "errors_connect": 0.0, "errors_read": 0.0,
                 "errors_write": 0.0, "errors_status": 0.0, "errors_timeout": 0.0,
                 "lat_mean_us": 201.813, "lat_stdev_us": 356.626, "lat_max_us": 6984.0, "lat_p50_us": 124.0,
                 "lat_p90_us": 274.0, "lat_p99_us": 1966.0, "lat_p99_9_us": 4744.0}
    # the JSON agrees with wrk's own summary above it
    assert "104945 requests in 2.10s" in text and "201.81us" in text and "6.98ms" in text


def test_wrk_connection_close_serves_fewer_requests_than_keepalive():
    m = nettools.parse_wrk(_text("wrk-connection-close.txt"))
    assert (m["requests"], m["seconds"], m["bytes"], m["errors"]) == (41065, 2.000202, 51659770, 0)
    assert (m["lat_p50_us"], m["lat_p99_us"], m["lat_p99_9_us"], m["lat_max_us"]) == (101, 1012, 3114, 4264)
    assert m["requests_per_second"] == pytest.approx(20530.43, abs=0.01)     # wrk's own Requests/sec line
    assert m["requests_per_second"] < nettools.parse_wrk(_text("wrk-keepalive.txt"))["requests_per_second"]


def test_wrk_errors_are_summed_and_kept_apart():
    line = json.loads(_text("wrk-keepalive.txt").splitlines()[-1])
    line["errors"] = {"connect": 1, "read": 2, "write": 3, "status": 4, "timeout": 5}
    m = nettools.parse_wrk(json.dumps(line))
    assert m["errors"] == 15 and (m["errors_connect"], m["errors_status"], m["errors_timeout"]) == (1, 4, 5)


def test_wrk_run_that_got_no_response_is_a_tool_error():
    # a server that never answered: wrk printed 0 requests, 0 errors, and exited 0
    with pytest.raises(ToolOutputError, match=r"^wrk: no request completed"):
        nettools.parse_wrk(_text("wrk-no-response.txt"))


@pytest.mark.parametrize("bad", ["", "Requests/sec: 5\n", '{"requests": 5}', '{"requests": 5, "duration_us": ',
                                 '{"requests": [], "duration_us": 1}',
                                 '{"requests": 5, "duration_us": 1, "bytes": 1, "errors": {}, "latency_us": {}}'])
def test_wrk_output_without_a_complete_json_line_is_a_tool_error(bad):
    with pytest.raises(ToolOutputError, match=r"^wrk: "):
        nettools.parse_wrk(bad)


def test_wrk_output_cut_inside_the_json_line_is_a_tool_error():
    text = _text("wrk-keepalive.txt")
    with pytest.raises(ToolOutputError, match=r"^wrk: "):
        nettools.parse_wrk(text[: text.index('"latency_us"')])
    with pytest.raises(ToolOutputError, match=r"^wrk: no JSON summary line"):
        nettools.parse_wrk(text[: text.index('{"requests"')])


def test_wrk_null_latency_from_the_lua_guard_is_a_tool_error():
    line = json.loads(_text("wrk-keepalive.txt").splitlines()[-1])
    line["latency_us"]["mean"] = None                   # what WRK_REPORT_LUA prints for nan
    with pytest.raises(ToolOutputError, match=r"^wrk: latency_us.mean is not a number"):
        nettools.parse_wrk(json.dumps(line))


def test_the_lua_script_prints_every_field_the_parser_reads():
    lua = nettools.WRK_REPORT_LUA
    assert "done = function(summary, latency, requests)" in lua
    for field in ("requests", "duration_us", "bytes", "errors", "latency_us", "p99.9"):
        assert f'"{field}": ' in lua
    for err in ("connect", "read", "write", "status", "timeout"):
        assert f'"{err}": ' in lua and f"e.{err}" in lua


def test_tool_errors_are_one_line():
    for parse, name in ((nettools.parse_iperf3, "iperf3-error.json"),
                        (nettools.parse_sockperf, "sockperf-no-server.txt"),
                        (nettools.parse_wrk, "wrk-no-response.txt")):
        with pytest.raises(ToolOutputError) as e:
            parse(_text(name))
        assert "\n" not in str(e.value) and isinstance(e.value, ValueError)
    with pytest.raises(ToolOutputError) as e:
        nettools.parse_iperf3('{"error": "two\\nlines"}')
    assert str(e.value) == "iperf3: two lines"


# ------------------------------------------------------------------------------------ command lines

def test_server_command_lines():
    assert nettools.iperf3_server_argv(5201) == ["iperf3", "-s", "-p", "5201"]
    assert nettools.iperf3_server_argv(5202, "/usr/bin/iperf3") == ["/usr/bin/iperf3", "-s", "-p", "5202"]
    assert nettools.sockperf_server_argv(11111) == ["sockperf", "server", "--tcp", "-i", "0.0.0.0", "-p", "11111"]
    assert nettools.nginx_argv("/tmp/x/nginx.conf") == ["nginx", "-c", "/tmp/x/nginx.conf", "-e", "stderr"]
    assert nettools.nginx_argv("/etc/n.conf", binary="/usr/sbin/nginx")[0] == "/usr/sbin/nginx"


def test_client_command_lines():
    assert nettools.iperf3_client_argv("127.0.0.1", 5201, 2) == [
        "iperf3", "-c", "127.0.0.1", "-p", "5201", "-t", "2", "-O", "1", "-J"]
    assert nettools.iperf3_client_argv("172.17.0.2", 5201, 10.0, binary="/b/iperf3") == [
        "/b/iperf3", "-c", "172.17.0.2", "-p", "5201", "-t", "10", "-O", "1", "-J"]
    assert nettools.sockperf_client_argv("127.0.0.1", 11111, 2) == [
        "sockperf", "ping-pong", "--tcp", "-i", "127.0.0.1", "-p", "11111", "-t", "2", "-m", "64", "--full-rtt"]
    assert nettools.sockperf_client_argv("10.0.0.1", 11111, 5, msg_size=1400)[-3:] == ["-m", "1400", "--full-rtt"]
    assert nettools.wrk_argv("http://127.0.0.1:8080/", 2, 8, "/tmp/t/report.lua", False) == [
        "wrk", "-t", "1", "-c", "8", "-d", "2s", "--timeout", "5s", "-s", "/tmp/t/report.lua",
        "http://127.0.0.1:8080/"]
    assert nettools.wrk_argv("http://127.0.0.1:8080/", 2, 4, "/tmp/t/report.lua", True, threads=2) == [
        "wrk", "-t", "2", "-c", "4", "-d", "2s", "--timeout", "5s", "-s", "/tmp/t/report.lua",
        "-H", "Connection: close", "http://127.0.0.1:8080/"]


def test_the_fixtures_came_from_these_command_lines():
    """The README's command lines are what the builders print (so the fixtures are of the real argv)."""
    readme = _text("README.md")
    lines = [nettools.iperf3_server_argv(5201), nettools.sockperf_server_argv(11111),
             nettools.iperf3_client_argv("127.0.0.1", 5201, 2),
             nettools.sockperf_client_argv("127.0.0.1", 11111, 2),
             nettools.wrk_argv("http://127.0.0.1:8080/", 2, 8, "/T/report.lua", False)]
    for argv in lines:
        assert " ".join(argv).replace("/T/", "$T/") in readme.replace("\n  ", " ")


@pytest.mark.parametrize("host", ["localhost", "example.com", "::1", "::ffff:127.0.0.1", "127.0.0.1; rm -rf /",
                                  "-p", "", " 127.0.0.1", "127.0.0.1 ", "127.0.0.1\n", "10.0.0.256", "1.2.3",
                                  "127.000.000.001", "0x7f.0.0.1", "127.0.0.1/32", 2130706433, None,
                                  b"\x7f\x00\x00\x01"])
def test_only_ipv4_literals_are_dialled(host):
    with pytest.raises(ValueError):
        nettools.iperf3_client_argv(host, 5201, 1)
    with pytest.raises(ValueError):
        nettools.sockperf_client_argv(host, 11111, 1)
    with pytest.raises(ValueError):
        nettools.wrk_argv(f"http://{host}:80/", 1, 1, "/x.lua", False)


@pytest.mark.parametrize("url", ["http://localhost:80/", "https://127.0.0.1:443/", "http://127.0.0.1/",
                                 "http://127.0.0.1:80", "http://127.0.0.1:0/", "http://127.0.0.1:70000/",
                                 "http://127.0.0.1:080/", "http://[::1]:80/", "http://127.0.0.1:80/?a=b",
                                 "http://127.0.0.1:80/a b", "-H http://127.0.0.1:80/", "127.0.0.1:80"])
def test_wrk_urls_are_http_to_an_ipv4_literal_and_port(url):
    with pytest.raises(ValueError):
        nettools.wrk_argv(url, 1, 1, "/x.lua", False)


@pytest.mark.parametrize("port", [0, 70000, 65536, -1, True, False, "80", 1.5, 80.0, None])
def test_ports_outside_the_range_are_refused(port):
    for build in (nettools.iperf3_server_argv, nettools.sockperf_server_argv,
                  lambda p: nettools.iperf3_client_argv("127.0.0.1", p, 1),
                  lambda p: nettools.sockperf_client_argv("127.0.0.1", p, 1),
                  lambda p: nettools.nginx_conf(p, "/srv/www", "/tmp/s")):
        with pytest.raises(ValueError):
            build(port)


def test_ports_at_the_ends_of_the_range_are_taken():
    assert nettools.iperf3_server_argv(1)[-1] == "1" and nettools.iperf3_server_argv(65535)[-1] == "65535"


@pytest.mark.parametrize("seconds", [0, -1, 1.5, True, "2", math.nan, math.inf, None, 86401])
def test_seconds_are_whole_and_positive(seconds):
    with pytest.raises(ValueError):
        nettools.iperf3_client_argv("127.0.0.1", 5201, seconds)
    with pytest.raises(ValueError):
        nettools.sockperf_client_argv("127.0.0.1", 11111, seconds)
    with pytest.raises(ValueError):
        nettools.wrk_argv("http://127.0.0.1:8080/", seconds, 1, "/x.lua", False)


@pytest.mark.parametrize("kwargs", [dict(connections=0), dict(connections=True), dict(connections="4"),
                                    dict(threads=0), dict(connections=2, threads=4)])
def test_wrk_connection_and_thread_counts_are_checked(kwargs):
    args = dict(url="http://127.0.0.1:8080/", seconds=1, connections=4, script_path="/x.lua",
                new_connection_per_request=False) | kwargs
    with pytest.raises(ValueError):
        nettools.wrk_argv(**args)


@pytest.mark.parametrize("size", [0, 13, 65001, True, "64"])
def test_sockperf_message_size_is_checked(size):
    with pytest.raises(ValueError):
        nettools.sockperf_client_argv("127.0.0.1", 11111, 1, msg_size=size)


BAD_PATHS = ["relative/conf", "", "conf", "./conf", "/a b", "/a;b", "/a\nb", "/a\tb", '/a"b', "/a'b", "/a{b", "/a}b",
             "/a$x", "/a\\b", "/a#b", "/a/../../etc", "/..", "/a/..", "~/x", "/tmp/é", None, 5]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_paths_written_into_the_config_are_plain_and_absolute(path):
    with pytest.raises(ValueError):
        nettools.nginx_conf(8080, path, "/tmp/s")
    with pytest.raises(ValueError):
        nettools.nginx_conf(8080, "/srv/www", path)
    with pytest.raises(ValueError):
        nettools.nginx_argv(path)
    with pytest.raises(ValueError):
        nettools.wrk_argv("http://127.0.0.1:8080/", 1, 1, path, False)


# ------------------------------------------------------------------------------------ nginx

def test_nginx_conf_says_what_it_should():
    conf = nettools.nginx_conf(8080, "/srv/www-1", "/run/storprof/s_1")
    lines = [ln.strip() for ln in conf.splitlines()]
    for line in ("daemon off;", "master_process on;", "worker_processes 1;", "pid /run/storprof/s_1/nginx.pid;",
                 "error_log stderr warn;", "events { worker_connections 4096; }", "access_log off;",
                 "keepalive_requests 1000000;", "server { listen 8080 backlog=4096; root /srv/www-1; }"):
        assert line in lines, line
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert f"{kind}_temp_path /run/storprof/s_1/nginx-{kind};" in lines
    assert conf.count("{") == conf.count("}") and conf.endswith("}\n")
    assert re.findall(r"/[^\s;]*", conf) and all(p.startswith(("/srv/www-1", "/run/storprof/s_1"))
                                                for p in re.findall(r"/[^\s;]*", conf))


@setup_provides(shutil.which("nginx") is not None, "nginx is not installed")
def test_nginx_accepts_the_configuration(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "scratch").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(nettools.nginx_conf(18080, str(tmp_path / "www"), str(tmp_path / "scratch")))
    done = subprocess.run(["nginx", "-t", "-c", str(conf), "-e", "stderr"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


def test_index_page_is_exact_printable_and_always_the_same():
    for size in (0, 1, 51, 52, 1024, 100_000):
        page = nettools.index_page(size)
        assert len(page) == size and all(32 <= b < 127 or b == 10 for b in page)
    assert nettools.index_page() == nettools.index_page(1024) == nettools.index_page(1024)
    assert nettools.index_page(2048)[:1024] == nettools.index_page(1024)
    for bad in (-1, True, 1.5, "1024"):
        with pytest.raises(ValueError):
            nettools.index_page(bad)
