"""What `storprof net`, `table` and `report` show of network results: the verdict first, then the table.

Pure functions from NetRows to lines and rows; terminal, Markdown and HTML share them.
"""

from __future__ import annotations

import math

from tabulate import tabulate

from storprof.engine.versions import short as short_version
from storprof.network.plan import PATHS, WORKLOADS
from storprof.stats.intervals import REAL, SAME
from storprof.stats.network import CONTROL, PROXY_VS_DNAT, NetRow, primary
from storprof.views.tables import _fmt_ratio, fmt_interval

HEADERS = ["engine", "workload", "path", "metric", "path value", "against", "baseline", "ratio [95% CI]", "n",
           "spread", "verdict"]
NOTE = ("ratio = the path's value over the baseline's, paired by round (geometric mean, Student's t on the logs); "
        "for rates below 1.00x is slower, for latencies above 1.00x is slower. The baseline is the same server as a "
        "plain process in the same network namespace, reached on 127.0.0.1. spread = half the range of the path's "
        f"runs over their median. '{CONTROL}' is the two namespaces' baselines against each other: what noise alone "
        "looks like.")


def human(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "bit/s":
        return f"{value / 1e9:.2f} Gbit/s"
    if unit == "µs":
        return f"{value:.1f} µs"
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    return f"{value:g}"


def ratio_text(row: NetRow) -> str:
    """The storage tables' ratio and interval ('0.62x [0.58–0.66]'); one pair says so ('[n=1]')."""
    i = row.interval
    if i is None:
        return "-"
    if i.n < 2:
        return f"{_fmt_ratio(i.ratio)} [n=1]"
    return fmt_interval(i.ratio, i.low, i.high)


def metric_name(metric: str) -> str:
    return {"bits_per_second": "throughput", "requests_per_second": "requests/s", "p50_us": "p50",
            "p99_us": "p99", "p99_9_us": "p99.9", "lat_p50_us": "latency p50", "lat_p99_us": "latency p99",
            "lat_p99_9_us": "latency p99.9"}.get(metric, metric)


def verdict_text(row: NetRow, interval: bool = True) -> str:
    """What the row's interval says; `interval` False leaves out the bounds a ratio beside it shows."""
    if row.verdict == REAL:
        worse = row.slower_by or 0
        return f"real: {abs(worse):.0%} {'slower' if worse > 0 else 'faster'}"
    if row.verdict == SAME:
        return "no measurable difference"
    if row.n < 2 or row.interval is None:
        return "too few runs"
    # The interval includes 1.00 but reaches past the precision target: more rounds could tell
    # (the storage half's word; "within noise" would claim what the interval does not show).
    return f"not yet known ({row.interval.low:.2f}–{row.interval.high:.2f})" if interval else "not yet known"


def table_rows(rows: list[NetRow]) -> list[list[str]]:
    out = []
    for r in rows:
        out.append([r.engine, r.workload, r.path, metric_name(r.metric), human(r.value, r.unit), r.against,
                    human(r.base, r.unit), ratio_text(r), str(r.n) + (f" (+{r.failed} failed)" if r.failed else ""),
                    f"±{r.spread:.0%}" if r.n > 1 else "-", verdict_text(r)])
    return out


def format_table(rows: list[NetRow], fmt: str = "simple") -> str:
    return tabulate(table_rows(measured(rows)), headers=HEADERS, tablefmt=fmt, disable_numparse=True)


def _sentence(row: NetRow) -> str:
    """'docker-proxy on 127.0.0.1: 0.62x the host's requests/s [0.58–0.66], n=3: real, 38% slower'."""
    who = PATHS[row.path].name if row.path in PATHS else row.path
    return (f"{row.workload} ({metric_name(row.metric)}), {who} against {row.against}: {human(row.value, row.unit)} "
            f"against {human(row.base, row.unit)}, {ratio_text(row)}, n={row.n}: {verdict_text(row)}")


def engine_label(row: NetRow) -> str:
    """'Docker 28.5.2': the version the daemon reported (Debian's +dfsg suffix left out)."""
    return f"Docker {short_version(row.docker_version)}" if row.docker_version else row.engine


def measured(rows: list[NetRow]) -> list[NetRow]:
    return [r for r in rows if r.n > 0]


def not_measured(rows: list[NetRow]) -> list[str]:
    """'path workload: why', once per path and workload that has no pair of runs at all."""
    out: dict[str, str] = {}
    for r in rows:
        if r.n == 0 and r.path in PATHS:
            out.setdefault(f"{r.path} {r.workload}", r.reason or "no run ended ok")
    return [f"{what}: {why}" for what, why in out.items()]


def verdict_lines(rows: list[NetRow]) -> list[str]:
    """The answers people ask first, one line each: docker-proxy against DNAT per workload, host
    networking against the host, and the control that says how much noise there is."""
    lines = []
    missing = not_measured(rows)
    if missing:
        lines.append("Not measured: " + "; ".join(missing))
    main = primary(measured(rows))
    for r in main:
        if r.path == PROXY_VS_DNAT:
            lines.append(f"[{engine_label(r)}] docker-proxy vs DNAT on 127.0.0.1, {WORKLOADS[r.workload].what}: "
                         f"{ratio_text(r)} ({human(r.value, r.unit)} against {human(r.base, r.unit)}), n={r.n}: "
                         f"{verdict_text(r)}")
    lines += _article_lines(main)
    for r in main:
        if r.path == "host-network" and r.against == "host":
            lines.append(f"[{engine_label(r)}] --network host against the host, {r.workload}: {ratio_text(r)}, "
                         f"n={r.n}: "
                         f"{verdict_text(r)}" + (" (the same network stack: what differs is the container itself, "
                                                 "its cgroups; see docs/network.md)"
                                                 if r.verdict == REAL else ""))
    controls = [r for r in main if r.path == CONTROL and r.interval is not None and r.n > 1]
    if controls:
        widest = max(controls, key=lambda r: r.interval.half_width if r.interval else 0)
        lines.append(f"Noise: the host baseline against itself (two namespaces) is within "
                     f"{widest.interval.low:.2f}–{widest.interval.high:.2f}x at worst ({widest.workload}); "
                     "differences inside that are not told apart from noise." if widest.interval else "")
    return [ln for ln in lines if ln]


def _article_lines(main: list[NetRow]) -> list[str]:
    """The article's two findings, where the run measured them: what each path costs a database
    whose data is cached, and whether the data's place (top layer or volume) changes that."""
    lines = []
    for engine in dict.fromkeys(engine_label(r) for r in main if r.workload in ("pgbench", "pgbench-connect")):
        mine = [r for r in main if engine_label(r) == engine]

        def paths(workload: str, against: str, rows: list[NetRow] = mine) -> str:
            return ", ".join(f"{r.path} {ratio_text(r)} ({verdict_text(r, interval=False)})" for r in rows
                             if r.workload == workload and r.against == against and r.path in PATHS)

        kept, connect = paths("pgbench", "host"), paths("pgbench-connect", "host")
        data = paths("pgbench", "pgbench-volume")
        n = sorted({r.n for r in mine if r.workload.startswith("pgbench")})
        counts = f"{n[0]}–{n[-1]}" if n[0] != n[-1] else f"{n[0]}"
        text = (f"[{engine}] The article's experiment, PostgreSQL select-only with its data cached, tps against "
                f"the host's (n={counts}):")
        if kept:
            text += f" kept-alive connections: {kept}."
        if connect:
            text += f" A new connection per transaction: {connect}."
        if data:
            text += f" Data on the top layer ÷ on a volume, per path: {data}."
        lines.append(text)
    return lines


def markdown(rows: list[NetRow]) -> str:
    """The network section of report.md."""
    if not rows:
        return ""
    parts = ["## Network paths (storprof net)", ""]
    parts += [f"- {line}" for line in verdict_lines(rows)]
    parts += ["", format_table(rows, "pipe"), "", NOTE, "", "| path | what it isolates |", "|---|---|"]
    parts += [f"| {p.name} | {p.what} |" for p in PATHS.values()]
    parts += ["", "| workload | what |", "|---|---|"]
    parts += [f"| {w.name} | {w.what} |" for w in WORKLOADS.values()]
    return "\n".join(parts) + "\n"


def _number(value: float | None) -> float | None:
    """A number as JSON can hold it: NaN (nothing measured) and infinity (one pair's open
    interval) are null."""
    return value if value is not None and math.isfinite(value) else None


def records(rows: list[NetRow]) -> list[dict]:
    """The rows as plain data: CSV and JSON output, and the report's chart."""
    out = []
    for r in rows:
        i = r.interval
        out.append({"engine": r.engine, "docker_version": r.docker_version, "workload": r.workload, "path": r.path,
                    "against": r.against, "metric": r.metric, "unit": r.unit, "value": _number(r.value),
                    "baseline": _number(r.base), "ratio": _number(i.ratio) if i else None,
                    "ci_low": _number(i.low) if i else None, "ci_high": _number(i.high) if i else None, "n": r.n,
                    "spread": _number(r.spread), "higher_is_better": r.higher_is_better, "verdict": r.verdict,
                    "failed": r.failed})
    return out


def machine_readable(rows: list[NetRow], fmt: str) -> str:
    """The rows as JSON (null where nothing was measured) or CSV (an empty cell there)."""
    import json

    import pandas as pd
    data = records(rows)
    if fmt == "json":
        return json.dumps(data, indent=2, allow_nan=False, default=str)
    return pd.DataFrame(data).to_csv(index=False).rstrip("\n")
