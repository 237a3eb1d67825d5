"""The four Debian tools `storprof net` drives, as pure functions: command lines and parsers.

iperf3 for bulk TCP throughput (its -J output is JSON), sockperf for request/response latency on
one kept-alive TCP connection (ping-pong, percentiles to 99.999), wrk for HTTP load (kept-alive
connections, or one connection per request with `Connection: close`; a Lua done() hook prints
its numbers as JSON), and nginx as the HTTP server. Well-kept tools rather than hand-written
clients: their numbers are the ones people already know how to read.
"""

from __future__ import annotations

import ipaddress
import json
import re

SAFE_PATH = re.compile(r"/[A-Za-z0-9_./-]{0,200}")


class ToolOutputError(ValueError):
    """A tool's output is not what it prints on success."""


def _port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"not a TCP port: {port!r}")
    return port


def _host(host: str) -> str:
    """An IPv4 literal, nothing else (no names: nothing is resolved, nothing leaves the namespace)."""
    try:
        return str(ipaddress.IPv4Address(host))
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise ValueError(f"not an IPv4 address: {host!r}") from None


def _seconds(seconds: float) -> int:
    if isinstance(seconds, bool) or int(seconds) != seconds or not 1 <= seconds <= 3600:
        raise ValueError(f"not a whole number of seconds from 1 to 3600: {seconds!r}")
    return int(seconds)


def _path(path: str) -> str:
    if not isinstance(path, str) or not SAFE_PATH.fullmatch(path) or "/../" in f"{path}/":
        raise ValueError(f"not an absolute path of [A-Za-z0-9_./-]: {path!r}")
    return path


# ------------------------------------------------------------------------------------ servers

def iperf3_server_argv(port: int, binary: str = "iperf3") -> list[str]:
    return [binary, "-s", "-p", str(_port(port))]


def sockperf_server_argv(port: int, binary: str = "sockperf") -> list[str]:
    return [binary, "server", "--tcp", "-i", "0.0.0.0", "-p", str(_port(port))]


def nginx_argv(conf_path: str, binary: str = "nginx") -> list[str]:
    return [binary, "-c", _path(conf_path), "-e", "stderr"]


def nginx_conf(port: int, root: str, scratch: str) -> str:
    """One worker, in the foreground, no access log, every temporary path in `scratch`: the same
    configuration on the host and in a container."""
    port, root, scratch = _port(port), _path(root), _path(scratch)
    temp = "\n".join(f"  {kind}_temp_path {scratch}/nginx-{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"daemon off;\nmaster_process on;\nworker_processes 1;\npid {scratch}/nginx.pid;\nerror_log stderr warn;\n"
            "events { worker_connections 4096; }\n"
            "http {\n  access_log off;\n" + temp + "\n  keepalive_requests 1000000;\n"
            f"  server {{ listen {port} backlog=4096; root {root}; }}\n}}\n")


def index_page(size: int = 1024) -> bytes:
    """`size` bytes of printable ASCII, always the same: the page nginx serves."""
    line = b"storprof net: the page every HTTP request fetches.\n"
    return (line * (size // len(line) + 1))[:size]


# ------------------------------------------------------------------------------------ clients

def iperf3_client_argv(host: str, port: int, seconds: float, binary: str = "iperf3") -> list[str]:
    """One stream for `seconds`, after one omitted second (TCP slow start), JSON out."""
    return [binary, "-c", _host(host), "-p", str(_port(port)), "-t", str(_seconds(seconds)), "-O", "1", "-J"]


def sockperf_client_argv(host: str, port: int, seconds: float, msg_size: int = 64,
                         binary: str = "sockperf") -> list[str]:
    """Ping-pong on one TCP connection; --full-rtt: the round trip, not sockperf's default half of it."""
    if isinstance(msg_size, bool) or not isinstance(msg_size, int) or not 14 <= msg_size <= 65000:
        raise ValueError(f"not a sockperf message size: {msg_size!r}")
    return [binary, "ping-pong", "--tcp", "-i", _host(host), "-p", str(_port(port)), "-t", str(_seconds(seconds)),
            "-m", str(msg_size), "--full-rtt"]


WRK_REPORT_LUA = r"""-- storprof: print wrk's summary as one JSON line
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.3f, "stdev": %.3f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p99.9": %d}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""


def wrk_argv(url: str, seconds: float, connections: int, script_path: str, new_connection_per_request: bool,
             threads: int = 1, binary: str = "wrk") -> list[str]:
    """With `Connection: close` nginx closes after each response and wrk reconnects: one TCP
    connection per request."""
    m = re.fullmatch(r"http://([0-9.]+):([0-9]{1,5})/", url)
    if not m:
        raise ValueError(f"not an http://IPv4:port/ URL: {url!r}")
    _host(m.group(1))
    _port(int(m.group(2)))
    for name, n in (("connections", connections), ("threads", threads)):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1024:
            raise ValueError(f"not a number of {name}: {n!r}")
    if connections < threads:
        raise ValueError("wrk needs at least one connection per thread")
    argv = [binary, "-t", str(threads), "-c", str(connections), "-d", f"{_seconds(seconds)}s", "--timeout", "5s",
            "-s", _path(script_path)]
    if new_connection_per_request:
        argv += ["-H", "Connection: close"]
    return argv + [url]


# ------------------------------------------------------------------------------------ parsers

def parse_iperf3(text: str) -> dict[str, float]:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        raise ToolOutputError("iperf3: no JSON in its output") from None
    if not isinstance(data, dict):
        raise ToolOutputError("iperf3: its JSON is not an object")
    if data.get("error"):
        raise ToolOutputError(f"iperf3: {data['error']}")
    end = data.get("end") or {}
    received, sent = end.get("sum_received") or {}, end.get("sum_sent") or {}
    if "bits_per_second" not in received or "bits_per_second" not in sent:
        raise ToolOutputError("iperf3: no end.sum_received/sum_sent in its JSON")
    out = {"bits_per_second": float(received["bits_per_second"]),
           "sent_bits_per_second": float(sent["bits_per_second"]),
           "seconds": float(received.get("seconds", 0.0))}
    if "retransmits" in sent:
        out["retransmits"] = float(sent["retransmits"])
    cpu = end.get("cpu_utilization_percent") or {}
    if "host_total" in cpu:
        out["cpu_host_pct"] = float(cpu["host_total"])
    if "remote_total" in cpu:
        out["cpu_remote_pct"] = float(cpu["remote_total"])
    return out


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PERCENTILE = re.compile(r"---> percentile\s+([0-9.]+)\s*=\s*([0-9.]+)")
_SOCKPERF_NAMES = {"25.000": "p25_us", "50.000": "p50_us", "75.000": "p75_us", "90.000": "p90_us",
                   "99.000": "p99_us", "99.900": "p99_9_us", "99.990": "p99_99_us", "99.999": "p99_999_us"}


def parse_sockperf(text: str) -> dict[str, float]:
    """sockperf ping-pong's summary (its colours stripped): percentiles in µs, and whether they are
    round trips (--full-rtt: 'avg-rtt') or sockperf's half round trips ('avg-latency')."""
    text = _ANSI.sub("", text or "")
    out: dict[str, float] = {}
    m = re.search(r"avg-(rtt|latency)=([0-9.]+) \(std-dev=([0-9.]+)\)", text)
    if not m:
        raise ToolOutputError("sockperf: no avg-rtt or avg-latency line in its output")
    out["rtt"] = 1.0 if m.group(1) == "rtt" else 0.0
    out["avg_us"], out["stddev_us"] = float(m.group(2)), float(m.group(3))
    n = re.search(r"Total (\d+) observations", text)
    valid = re.search(r"\[Valid Duration\] RunTime=([0-9.]+) sec", text)
    if not n or not valid:
        raise ToolOutputError("sockperf: no observation count or valid duration in its output")
    out["observations"], out["valid_seconds"] = float(n.group(1)), float(valid.group(1))
    for level, value in _PERCENTILE.findall(text):
        name = _SOCKPERF_NAMES.get(f"{float(level):.3f}")
        if name:
            out[name] = float(value)
    for word, name in (("MAX", "max_us"), ("MIN", "min_us")):
        m = re.search(rf"<{word}> observation\s*=\s*([0-9.]+)", text)
        if m:
            out[name] = float(m.group(1))
    missing = [name for name in ("p50_us", "p99_us", "p99_9_us") if name not in out]
    if missing:
        raise ToolOutputError(f"sockperf: no {', '.join(missing)} in its output")
    return out


def parse_wrk(text: str) -> dict[str, float]:
    """The JSON line WRK_REPORT_LUA's done() prints after wrk's own summary."""
    line = next((ln for ln in reversed((text or "").splitlines()) if ln.startswith('{"requests"')), None)
    if line is None:
        raise ToolOutputError("wrk: no JSON summary line (was it run with storprof's report script?)")
    try:
        data = json.loads(line)
        errors, lat = data["errors"], data["latency_us"]
        seconds = data["duration_us"] / 1e6
        out = {"requests": float(data["requests"]), "seconds": seconds, "bytes": float(data["bytes"]),
               "requests_per_second": data["requests"] / seconds if seconds > 0 else 0.0,
               "errors": float(sum(errors.values()))}
        out.update({f"errors_{k}": float(errors[k]) for k in ("connect", "read", "write", "status", "timeout")})
        out.update({"lat_mean_us": float(lat["mean"]), "lat_stdev_us": float(lat["stdev"]),
                    "lat_max_us": float(lat["max"]), "lat_p50_us": float(lat["p50"]), "lat_p90_us": float(lat["p90"]),
                    "lat_p99_us": float(lat["p99"]), "lat_p99_9_us": float(lat["p99.9"])})
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
        raise ToolOutputError(f"wrk: its JSON summary is incomplete ({e})") from None
    if out["requests"] <= 0:
        raise ToolOutputError("wrk: no request completed")
    return out
