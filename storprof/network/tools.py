"""The four Debian tools `storprof net` drives, as pure functions: command lines and parsers.

iperf3 for bulk TCP throughput (its -J output is JSON), sockperf for request/response latency on
one kept-alive TCP connection (ping-pong, percentiles to 99.999), wrk for HTTP load (kept-alive
connections, or one connection per request with `Connection: close`; a Lua done() hook prints
its numbers as JSON), and nginx as the HTTP server. Well-kept tools rather than hand-written
clients: their numbers are the ones people already know how to read.

Nothing here runs a process or touches a file: the callers do, and the tests feed the parsers
output real runs printed (tests/fixtures/net-tools).
"""

from __future__ import annotations

import ipaddress
import json
import math
import re

# What may go into nginx.conf or onto a command line as a path: no quoting, no ';' or '{', no spaces.
SAFE_PATH = re.compile(r"/[A-Za-z0-9_./-]{0,1023}")
MAX_SECONDS = 86400


class ToolOutputError(ValueError):
    """A tool's output is not what it prints on success; the message is one line naming the tool."""


# ------------------------------------------------------------------------------------ checks

def _port(port: int) -> int:
    """A TCP port 1..65535 as an int (not a bool, not a string): it goes onto argv and into nginx.conf."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"not a TCP port: {port!r}")
    return port


def _host(host: str) -> str:
    """An IPv4 literal, nothing else: no names (nothing is resolved, nothing leaves the namespace),
    no IPv6, no ints (ipaddress would take 2130706433 for 127.0.0.1)."""
    if not isinstance(host, str):
        raise ValueError(f"not an IPv4 address: {host!r}")
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        raise ValueError(f"not an IPv4 address: {host!r}") from None


def _seconds(seconds: float) -> int:
    """A whole number of seconds, 1..MAX_SECONDS; 2.0 is 2, 2.5 is refused (the tools take integers)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds != int(seconds) or not 1 <= seconds <= MAX_SECONDS:
        raise ValueError(f"not a whole number of seconds from 1 to {MAX_SECONDS}: {seconds!r}")
    return int(seconds)


def _count(name: str, n: int, low: int, high: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not low <= n <= high:
        raise ValueError(f"not a number of {name} from {low} to {high}: {n!r}")
    return n


def _path(path: str) -> str:
    """An absolute path of [A-Za-z0-9_./-] without '..': it is written into nginx.conf unquoted."""
    if not isinstance(path, str) or not SAFE_PATH.fullmatch(path) or "/../" in f"{path}/":
        raise ValueError(f"not an absolute path of [A-Za-z0-9_./-]: {path!r}")
    return path


# ------------------------------------------------------------------------------------ servers

def iperf3_server_argv(port: int, binary: str = "iperf3") -> list[str]:
    """Without -1: the server serves test after test, so one server lasts a whole run."""
    return [binary, "-s", "-p", str(_port(port))]


def sockperf_server_argv(port: int, binary: str = "sockperf") -> list[str]:
    """TCP on every address of its namespace (the paths under test dial different ones)."""
    return [binary, "server", "--tcp", "-i", "0.0.0.0", "-p", str(_port(port))]


def nginx_argv(conf_path: str, binary: str = "nginx") -> list[str]:
    """-e stderr: nginx logs to its compiled-in error log before it has read the conf, unless told."""
    return [binary, "-c", _path(conf_path), "-e", "stderr"]


TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_conf(port: int, root: str, scratch: str) -> str:
    """One worker, in the foreground, no access log, every file nginx writes (pid, temp paths) in
    `scratch`: the same configuration on the host and in a container, nothing under /var.

    Run as root, nginx's worker runs as nobody (there is no `user` line): `root` and the page must
    be readable by nobody."""
    port, root, scratch = _port(port), _path(root), _path(scratch)
    temp = "\n".join(f"  {kind}_temp_path {scratch}/nginx-{kind};" for kind in TEMP_PATHS)
    return (f"daemon off;\nmaster_process on;\nworker_processes 1;\npid {scratch}/nginx.pid;\nerror_log stderr warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n  access_log off;\n" + temp + "\n  keepalive_requests 1000000;\n"
            f"  server {{ listen {port} backlog=4096; root {root}; }}\n}}\n")


def index_page(size: int = 1024) -> bytes:
    """`size` bytes of printable ASCII, always the same: the page nginx serves (a fixed size, so
    bytes per request are comparable between runs)."""
    size = _count("bytes", size, 0, 1 << 30)
    line = b"storprof net: the page every HTTP request fetches.\n"
    return (line * (size // len(line) + 1))[:size]


# ------------------------------------------------------------------------------------ clients

def iperf3_client_argv(host: str, port: int, seconds: float, binary: str = "iperf3") -> list[str]:
    """One stream for `seconds`, after one omitted second (TCP slow start), JSON out."""
    return [binary, "-c", _host(host), "-p", str(_port(port)), "-t", str(_seconds(seconds)), "-O", "1", "-J"]


def sockperf_client_argv(host: str, port: int, seconds: float, msg_size: int = 64,
                         binary: str = "sockperf") -> list[str]:
    """Ping-pong on one TCP connection; --full-rtt: the round trip, not sockperf's default half of it
    (the other tools' latencies are round trips too)."""
    msg_size = _count("message bytes", msg_size, 14, 65000)     # sockperf refuses sizes outside this
    return [binary, "ping-pong", "--tcp", "-i", _host(host), "-p", str(_port(port)), "-t", str(_seconds(seconds)),
            "-m", str(msg_size), "--full-rtt"]


WRK_REPORT_LUA = r"""-- storprof: print wrk's summary as one JSON line (wrk prints its own text summary first)
local function num(fmt, x)
  -- nan or inf (no request completed) is not JSON: null
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  return string.format(fmt, x)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write('{"requests": ', num("%d", summary.requests), ', "duration_us": ', num("%d", summary.duration),
    ', "bytes": ', num("%d", summary.bytes),
    ', "errors": {"connect": ', num("%d", e.connect), ', "read": ', num("%d", e.read),
    ', "write": ', num("%d", e.write), ', "status": ', num("%d", e.status), ', "timeout": ', num("%d", e.timeout),
    '}, "latency_us": {"mean": ', num("%.3f", latency.mean), ', "stdev": ', num("%.3f", latency.stdev),
    ', "max": ', num("%d", latency.max), ', "p50": ', num("%d", latency:percentile(50)),
    ', "p90": ', num("%d", latency:percentile(90)), ', "p99": ', num("%d", latency:percentile(99)),
    ', "p99.9": ', num("%d", latency:percentile(99.9)), '}}\n')
end
"""

_URL = re.compile(r"http://([0-9.]+):([1-9][0-9]{0,4})(/[A-Za-z0-9_./-]*)")


def wrk_argv(url: str, seconds: float, connections: int, script_path: str, new_connection_per_request: bool,
             threads: int = 1, binary: str = "wrk") -> list[str]:
    """With `Connection: close` nginx closes after each response and wrk reconnects: one TCP
    connection per request. The URL must be http://IPv4:port/path: wrk resolves names, and must not."""
    m = _URL.fullmatch(url) if isinstance(url, str) else None
    if not m:
        raise ValueError(f"not an http://IPv4:port/ URL: {url!r}")
    _host(m.group(1))
    _port(int(m.group(2)))
    connections = _count("connections", connections, 1, 10000)
    threads = _count("threads", threads, 1, 1024)
    if connections < threads:
        raise ValueError("wrk needs at least one connection per thread")
    argv = [binary, "-t", str(threads), "-c", str(connections), "-d", f"{_seconds(seconds)}s", "--timeout", "5s",
            "-s", _path(script_path)]
    if new_connection_per_request:
        argv += ["-H", "Connection: close"]
    return argv + [url]


# ------------------------------------------------------------------------------------ parsers

def _number(tool: str, where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ToolOutputError(f"{tool}: {where} is not a number ({value!r})")
    return float(value)


def parse_iperf3(text: str) -> dict[str, float]:
    """iperf3 -J's end summary: the receiver's rate is the one that counts (what arrived), the
    sender's alongside; an {"error": ...} object (iperf3's way to fail under -J) is a ToolOutputError."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        raise ToolOutputError("iperf3: no JSON in its output") from None
    if not isinstance(data, dict):
        raise ToolOutputError("iperf3: its JSON is not an object")
    if data.get("error"):
        raise ToolOutputError(f"iperf3: {' '.join(str(data['error']).split())}")
    end = data.get("end")
    if not isinstance(end, dict):
        end = {}
    received, sent = end.get("sum_received"), end.get("sum_sent")
    if not isinstance(received, dict) or not isinstance(sent, dict):
        raise ToolOutputError("iperf3: no end.sum_received or end.sum_sent in its JSON")
    out = {"bits_per_second": _number("iperf3", "end.sum_received.bits_per_second", received.get("bits_per_second")),
           "sent_bits_per_second": _number("iperf3", "end.sum_sent.bits_per_second", sent.get("bits_per_second")),
           "seconds": _number("iperf3", "end.sum_received.seconds", received.get("seconds"))}
    if "retransmits" in sent:                          # only a Linux sender reports them
        out["retransmits"] = _number("iperf3", "end.sum_sent.retransmits", sent["retransmits"])
    cpu = end.get("cpu_utilization_percent")
    if isinstance(cpu, dict):
        for key, name in (("host_total", "cpu_host_pct"), ("remote_total", "cpu_remote_pct")):
            if key in cpu:
                out[name] = _number("iperf3", f"end.cpu_utilization_percent.{key}", cpu[key])
    return out


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NUM = r"([0-9]+(?:\.[0-9]+)?)"
_SOCKPERF_LINES = {
    "observations": rf"Total {_NUM} observations",
    "valid_seconds": rf"\[Valid Duration\] RunTime={_NUM} sec",
    "max_us": rf"---> <MAX> observation\s*=\s*{_NUM}",
    "min_us": rf"---> <MIN> observation\s*=\s*{_NUM}",
    **{name: rf"---> percentile {level}\s*=\s*{_NUM}"
       for level, name in (("99.999", "p99_999_us"), ("99.990", "p99_99_us"), ("99.900", "p99_9_us"),
                           ("99.000", "p99_us"), ("90.000", "p90_us"), ("75.000", "p75_us"), ("50.000", "p50_us"),
                           ("25.000", "p25_us"))},
}


def parse_sockperf(text: str) -> dict[str, float]:
    """sockperf ping-pong's summary, colours stripped, numbers in µs. sockperf says which it measured:
    '====> avg-rtt=' and 'Summary: Round trip is' under --full-rtt, '====> avg-latency=' and
    'Summary: Latency is' (half a round trip) without; rtt is 1.0 for the first, 0.0 for the second."""
    text = _ANSI.sub("", text or "")
    m = re.search(rf"====> avg-(rtt|latency)={_NUM} \(std-dev={_NUM}\)", text)
    if not m:
        error = next((ln.strip() for ln in text.splitlines() if "ERROR" in ln), "")
        raise ToolOutputError("sockperf: no avg-rtt or avg-latency line in its output"
                              + (f" ({error})" if error else ""))
    out = {"rtt": 1.0 if m.group(1) == "rtt" else 0.0, "avg_us": float(m.group(2)), "stddev_us": float(m.group(3))}
    missing = []
    for name, pattern in _SOCKPERF_LINES.items():
        found = re.search(pattern, text)
        if found:
            out[name] = float(found.group(1))
        else:
            missing.append(name)
    if missing:
        raise ToolOutputError(f"sockperf: no {', '.join(missing)} in its output")
    return out


_WRK_ERRORS = ("connect", "read", "write", "status", "timeout")
_WRK_LATENCY = (("mean", "lat_mean_us"), ("stdev", "lat_stdev_us"), ("max", "lat_max_us"), ("p50", "lat_p50_us"),
                ("p90", "lat_p90_us"), ("p99", "lat_p99_us"), ("p99.9", "lat_p99_9_us"))


def parse_wrk(text: str) -> dict[str, float]:
    """The JSON line WRK_REPORT_LUA's done() prints after wrk's own summary. Errors are counted, not
    judged: a caller decides whether a run with failed requests counts."""
    line = next((ln for ln in reversed((text or "").splitlines()) if ln.startswith('{"requests"')), None)
    if line is None:
        raise ToolOutputError("wrk: no JSON summary line (was it run with storprof's report script?)")
    try:
        data = json.loads(line)
        errors, latency = data["errors"], data["latency_us"]
        counts = {k: _number("wrk", f"errors.{k}", errors[k]) for k in _WRK_ERRORS}
        requests = _number("wrk", "requests", data["requests"])
        seconds = _number("wrk", "duration_us", data["duration_us"]) / 1e6
        if requests <= 0 or seconds <= 0:
            raise ToolOutputError(f"wrk: no request completed ({sum(counts.values()):.0f} errors)")
        out = {"requests": requests, "seconds": seconds, "requests_per_second": requests / seconds,
               "bytes": _number("wrk", "bytes", data["bytes"]), "errors": sum(counts.values())}
        out.update({f"errors_{k}": v for k, v in counts.items()})
        out.update({name: _number("wrk", f"latency_us.{key}", latency[key]) for key, name in _WRK_LATENCY})
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ToolOutputError(f"wrk: its JSON summary is incomplete ({type(e).__name__}: {e})") from None
    return out
