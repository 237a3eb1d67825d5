"""Views: the tables people read (terminal, Markdown, CSV, JSON), from summary.py's numbers.

Formatting only; every number comes from summary.py. tabulate draws the tables.
"""

from __future__ import annotations

import json
import math

import pandas as pd
from tabulate import tabulate

from storprof.results.records import DriverRecord
from storprof.stats.intervals import REAL, SAME, UNKNOWN
from storprof.stats.summary import CACHE_RATIO, FLAGS, MAX_CV, MIN_REPEATS, ROW_FIELDS, NoiseFloor
from storprof.storage import pgbench
from storprof.storage.fio.placements import AA, PLACEMENTS


def flag_notes(used: set[str]) -> list[str]:
    return [f"{mark} {why.format(cache_ratio=CACHE_RATIO, cv_pct=round(MAX_CV * 100), min_repeats=MIN_REPEATS)}"
            for mark, why in FLAGS.items() if mark in used]


def _fmt_value(metric: str, value: float) -> str:
    if metric == "time":
        return _fmt_seconds(value)
    if metric == "bw":
        return f"{value / 2**20:,.0f} MiB/s"
    return f"{value / 1000:,.1f}k IOPS" if value >= 1000 else f"{value:,.0f} IOPS"


def _fmt_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


fmt_seconds = _fmt_seconds


def _fmt_latency(ns: float) -> str:
    if ns is None or pd.isna(ns):
        return "-"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.0f} µs"


def _fmt_ratio(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.2f}x"


def _pm(spread: float, n: int = 2) -> str:
    """'±x%' around a median; '±?' where one sample can show no spread."""
    return " ±?" if n < 2 else f" ±{spread * 100:.0f}%"


# How a ratio's interval reads against the precision target (stats.classify).
VERDICT_MARKS = {REAL: "", SAME: " ≈", UNKNOWN: " ?"}


def fmt_interval(ratio: float, low: float, high: float) -> str:
    """'0.93x [0.90–0.96]'; an interval that knows nothing (one pair) as '[?]'."""
    if pd.isna(low) or pd.isna(high) or high == float("inf"):
        return f"{_fmt_ratio(ratio)} [?]"
    return f"{_fmt_ratio(ratio)} [{_fmt_bound(low)}–{_fmt_bound(high)}]"


def _fmt_bound(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def _ratio_cell(by: pd.DataFrame, p: str, prefix: str = "ratio", verdict: str | None = "verdict") -> str:
    """A paired ratio with its 95% interval and what the interval says (≈ no measurable
    difference, ? not yet known, nothing: a real difference)."""
    ratio_col, low_col, high_col = (prefix, f"{prefix}_low", f"{prefix}_high") if prefix == "ratio" else \
        (f"{prefix}_ratio", f"{prefix}_low", f"{prefix}_high")
    value = by[ratio_col].get(p) if p in by.index and ratio_col in by else None
    if value is None or pd.isna(value):
        return "-"
    mark = VERDICT_MARKS.get(str(by.at[p, verdict]), "") if verdict and verdict in by else ""
    return fmt_interval(value, by.at[p, low_col], by.at[p, high_col]) + mark


def _latency_cell(by: pd.DataFrame, p: str, ratio: bool) -> str:
    """The p99 (host) or its ratio (others); a job that reads and writes shows both directions."""
    if p not in by.index:
        return "-"
    if by.at[p, "lat_kind"] == "read+write":
        r, w = (("p99_read_ratio", "p99_write_ratio") if ratio else ("p99_read_ns", "p99_write_ns"))
        fmt = (lambda v: "-" if pd.isna(v) else f"{v:.2f}x") if ratio else _fmt_latency
        return f"r {fmt(by.at[p, r])} w {fmt(by.at[p, w])}"
    if ratio:
        return _ratio_cell(by, p, "p99", verdict=None)
    return _fmt_latency(by.at[p, "p99_ns"])


def table_rows(over: pd.DataFrame, placements: tuple[str, ...] = PLACEMENTS) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for the terminal: host values, the ratio to host per placement, union over
    the in-container baseline (the driver alone), then p99 latency and what it is of."""
    present = [p for p in placements if p in set(over["placement"])]
    others = [p for p in present if p != "host"]
    driver = "union" in others and over["driver_ratio"].notna().any()
    headers = (["driver", "docker", "job", "n", "host", *others] + (["union ÷ bind"] if driver else [])
               + ["p99 of", "host p99", *[f"{p} p99" for p in others]])
    rows = []
    for (spec, job), g in over.groupby(["driver_spec", "job"], sort=False):
        by = g.set_index("placement")
        metric = g["metric"].iloc[0]
        row = [spec, _docker(g), job, str(int(g["n"].min()))]
        row.append(_fmt_value(metric, by.at["host", "median"]) + _pm(by.at["host", "spread"], by.at["host", "n"])
                   + by.at["host", "flags"] if "host" in by.index else "-")
        for p in others:
            cell = _ratio_cell(by, p)
            if cell == "-" and p in by.index:
                cell = _fmt_value(metric, by.at[p, "median"])
            row.append(cell + (by.at[p, "flags"] if p in by.index else ""))
        if driver:
            base = by["driver_base"].get("union") if "union" in by.index else None
            cell = _ratio_cell(by, "union", "driver", "driver_verdict")
            row.append(cell if cell == "-" or base == "bind" else f"{cell} (÷{base})")
        row.append(next((str(k) for k in g["lat_kind"] if k), "-"))
        row += [_latency_cell(by, "host", ratio=False), *[_latency_cell(by, p, ratio=True) for p in others]]
        rows.append(row)
    return headers, rows


def time_rows(over: pd.DataFrame, placements: tuple[str, ...] = PLACEMENTS) -> tuple[list[str], list[list[str]]]:
    """The union probes (copy-up, deep stacks, lookups): the time itself on every placement, and
    the paired ratio to host with its spread, since a copy-up reads better as '62 ms, 433x' than
    as a ratio alone."""
    present = [p for p in placements if p in set(over["placement"])]
    others = [p for p in present if p != "host"]
    headers = ["driver", "docker", "operation", "n"] + present + [f"{p} x host" for p in others]
    rows = []
    for (spec, job), g in over.groupby(["driver_spec", "job"], sort=False):
        by = g.set_index("placement")
        row = [spec, _docker(g), job, str(int(g["n"].min()))]
        for p in present:
            row.append(_fmt_seconds(by.at[p, "median"]) + _pm(by.at[p, "spread"], by.at[p, "n"]) + by.at[p, "flags"]
                       + _bytes_note(by, p) if p in by.index else "-")
        row += [_ratio_cell(by, p) for p in others]
        rows.append(row)
    return headers, rows


def fmt_bytes(n: float) -> str:
    """Bytes as people read them; negative where the filesystem freed more than it took."""
    sign, n = ("-" if n < 0 else ""), abs(n)
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{sign}{n / size:.1f} {unit}"
    return f"{sign}{n:.0f} B"


def _bytes_note(by: pd.DataFrame, p: str) -> str:
    """' +64.0 MiB' (space or page cache the operation took, median) and ', copy+delete' for a rename."""
    out = ""
    if "bytes" in by and pd.notna(by.at[p, "bytes"]):
        out += f" +{fmt_bytes(by.at[p, 'bytes'])}" if by.at[p, "bytes"] >= 0 else f" {fmt_bytes(by.at[p, 'bytes'])}"
    if "how" in by and isinstance(by.at[p, "how"], str) and by.at[p, "how"]:
        out += f", {by.at[p, 'how']}"
    return out


def _docker(g: pd.DataFrame) -> str:
    return str(g["docker"].iloc[0]) if "docker" in g else "?"


TABLE_NOTE = ("n: repeats. host: median over repeats (±half the range). union, volume, bind: per repeat, the "
              "placement's run divided by the host run of that repeat (same backing filesystem, run back to back); "
              "the geometric mean of those ratios and its 95% interval: what running in a container on that "
              "placement costs, container and driver together. union ÷ bind: the union run over the bind-mount "
              "run (or the volume's, where a job has no bind placement) of the same container: the storage driver "
              "alone. An interval that excludes 1.00 is a real difference; ≈: no measurable difference (the "
              "interval lies within the precision target around 1.00); ?: not yet known (more repeats could "
              "tell). Throughput >1x is faster. p99 is the completion latency (clat) of the direction(s) named "
              "in 'p99 of', or the fsync's; its ratio >1x is slower.")
AA_NOTE = (f"{AA}: the host baseline run again in the same repeat, on the host's own file: an "
           "A/A control, truly 1.00x; its intervals show how often this sweep's intervals cover the truth.")
TIME_NOTE = ("Union operations: median time over repeats (±half the range), each sample in a fresh container "
             "(copy-up: open+4 KiB pwrite, then +fsync; deep stacks: the first stat of a file in the bottom "
             "layer, open, and a cold read of it; lookup: stat() of every file, kernel lookup caches dropped "
             "first, then again warm; append, rename, chown: on files in a lower layer, +space the filesystem used "
             "after it, what was copied up, and how rename went; page cache: containers reading one lower-layer "
             "file in turn, +the page cache it grew by). 'x host' is the paired ratio with its 95% interval; >1x "
             "is slower.")


def format_table(over: pd.DataFrame, fmt: str = "simple") -> str:
    """The throughput table, then the union operations measured in time, then the flags' footnotes."""
    if over.empty:
        return "(no successful runs)"
    timed = over["metric"] == "time"
    parts = []
    if (~timed).any():
        headers, rows = table_rows(over[~timed])
        parts.append(tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True))
    if timed.any():
        headers, rows = time_rows(over[timed])
        if parts:
            parts.append("")
        parts.append(tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True))
    return "\n".join([*parts, *flag_notes(set("".join(over["flags"])))])


def table_notes(over: pd.DataFrame) -> str:
    """What the columns mean, for the blocks the table has."""
    notes = [TABLE_NOTE] if (over["metric"] != "time").any() else []
    if (over["placement"] == AA).any():
        notes.append(AA_NOTE)
    if (over["metric"] == "time").any():
        notes.append(TIME_NOTE)
    return "\n".join(notes)


def exported(over: pd.DataFrame) -> pd.DataFrame:
    """The overhead rows as the exports write them: summarize()'s COLUMNS, without the fields
    that name a probe row (its `job` text says it)."""
    return over.drop(columns=[c for c in ROW_FIELDS if c in over])


def machine_readable(over: pd.DataFrame, ops: pd.DataFrame, slopes: pd.DataFrame, status: list[DriverRecord],
                     fmt: str) -> str:
    """The numbers behind the tables: csv (the overhead rows) or json (every table)."""
    over = exported(over)
    if fmt == "csv":
        return over.to_csv(index=False).rstrip("\n")
    def records(df):
        return json.loads(df.to_json(orient="records")) if not df.empty else []
    return json.dumps({"overhead": records(over), "layers": records(ops), "layer_growth": records(slopes),
                       "drivers": [s.to_json() for s in status]}, indent=2, default=str)


def _fmt_metric(metric: str, value) -> str:
    if value is None or pd.isna(value):
        return "-"
    if metric in ("ratio to host", "time ratio to host"):
        return f"{value:.3f}x"
    return _fmt_latency(value) if metric == "p99_latency_ns" else _fmt_value(metric, value)


def format_comparison(table: pd.DataFrame, fmt: str = "simple") -> str:
    """compare's rows: A, B, B/A, p, the drift between sessions it was tested against, and the verdict;
    metrics in their own units."""
    if fmt in ("csv", "json"):
        return table.to_csv(index=False).rstrip("\n") if fmt == "csv" else table.to_json(orient="records", indent=2)
    rows = []
    for r in table.itertuples():
        metric = str(r.metric)
        rows.append([r.driver_spec, r.placement, r.job, "p99 latency" if metric == "p99_latency_ns" else metric,
                     f"{_fmt_metric(metric, r.a)} (n={r.n_a})", f"{_fmt_metric(metric, r.b)} (n={r.n_b})",
                     "-" if r.ratio is None or pd.isna(r.ratio) else f"{r.ratio:.3f}",
                     "-" if r.p_value is None or pd.isna(r.p_value) else f"{r.p_value:.3f}",
                     "-" if r.q_value is None or pd.isna(r.q_value) else f"{r.q_value:.3f}",
                     "-" if r.drift_note is None or pd.isna(r.drift_note) else r.drift_note, r.verdict])
    headers = ["driver", "placement", "job", "metric", "A", "B", "B/A", "p", "q (FDR)", "drift", "verdict"]
    return tabulate(rows, headers=headers, tablefmt="pipe" if fmt == "markdown" else fmt, disable_numparse=True)


DRIVER_HEADERS = ["driver", "status", "reason"]


def driver_rows(status: list[DriverRecord]) -> list[list[str]]:
    return [[s.driver_spec, s.status, s.reason] for s in status]


def some_names(names: list[str], shown: int = 2) -> str:
    """'a', 'a and b', 'a, b and c', or past three 'a, b and 5 more'."""
    if len(names) > shown + 1:
        return f"{', '.join(names[:shown])} and {len(names) - shown} more"
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def by_reason(pairs: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(name, reason) pairs as one (reason, names) entry per reason, in the order reasons first appear."""
    grouped: dict[str, list[str]] = {}
    for name, reason in pairs:
        grouped.setdefault(reason, []).append(name)
    return list(grouped.items())


def not_measured_lines(status: list[DriverRecord]) -> list[str]:
    """The specs a sweep did not measure, one line per reason: 'a, b and 5 more: why'."""
    pairs = [(s.driver_spec, s.reason if s.status == "skipped" else f"{s.status}: {s.reason}")
             for s in status if s.status != "ok"]
    return [f"{some_names(names)}: {reason}" for reason, names in by_reason(pairs)]


def format_driver_status(status: list[DriverRecord], fmt: str = "simple") -> str:
    return tabulate(driver_rows(status), headers=DRIVER_HEADERS, tablefmt=fmt, disable_numparse=True)


LAYER_HEADERS = ["operation", "variant", "n", "p50 ms", "p95 ms", "x host copy", "space used"]
SLOPE_HEADERS = ["growth of", "slope", "R²", "n"]


def layer_rows(ops: pd.DataFrame) -> list[list[str]]:
    """The layer-operation rows (without the driver column) of summary.layer_tables' first table."""
    rows = []
    for _, r in ops.iterrows():
        ratio, size = r.get("host_ratio"), r.get("bytes")
        rows.append([r["op"], r["variant"], str(int(r["n"])), f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}",
                     f"{ratio:.2f}x" if ratio is not None and pd.notna(ratio) else "",
                     f"{size / 2**20:.1f} MiB" if size is not None and pd.notna(size) else ""])
    return rows


def slope_rows(slopes: pd.DataFrame) -> list[list[str]]:
    return [[r["op"], f"{r['slope']:+.1f} {r['unit']}", f"{r['r2']:.2f}", str(int(r["n"]))]
            for _, r in slopes.iterrows()]


def format_layers(ops: pd.DataFrame, slopes: pd.DataFrame, fmt: str = "simple") -> str:
    if ops.empty:
        return "(no layer timings)"
    parts = []
    for spec, g in ops.groupby("driver_spec", sort=False):
        docker = f" on Docker {g['docker'].iloc[0]}" if "docker" in g else ""
        parts.append(f"[{spec}] layer operations{docker}")
        parts.append(tabulate(layer_rows(g), headers=LAYER_HEADERS, tablefmt=fmt, disable_numparse=True))
        if not slopes.empty:
            parts.append(tabulate(slope_rows(slopes[slopes["driver_spec"] == spec]), headers=SLOPE_HEADERS,
                                  tablefmt=fmt, disable_numparse=True))
        parts.append("")
    return "\n".join(parts)


def answers_line(over: pd.DataFrame, precision: float, most: int = 6) -> str:
    """How many ratio cells are answered, and the unanswered ones that are furthest from it."""
    if "ratio" not in over:
        return ""
    cells = over[over["ratio"].notna() & (over["metric"] != "time") & (over["placement"] != AA)]
    if cells.empty:
        return ""
    counts = cells["verdict"].value_counts()
    line = (f"Answers at ±{precision * 100:.0f}%: {counts.get(REAL, 0)} real differences, "
            f"{counts.get(SAME, 0)} no measurable difference, {counts.get(UNKNOWN, 0)} not yet known "
            f"of {len(cells)} ratio cells (95% intervals).")
    open_cells = cells[cells["verdict"] == UNKNOWN].copy()
    if open_cells.empty:
        return line
    open_cells["width"] = (open_cells["ratio_high"] / open_cells["ratio_low"]).fillna(math.inf)
    widest = open_cells.sort_values("width", ascending=False).head(most)
    named = ", ".join(f"{r.driver_spec} {r.job} {r.placement} (n={int(r.n_pairs)})" for r in widest.itertuples())
    more = f" and {len(open_cells) - most} more" if len(open_cells) > most else ""
    return f"{line}\nNot yet known, widest first: {named}{more}. More repeats (--budget, --repeat) would tell."


def noise_floor_line(floor: NoiseFloor | None) -> str:
    """What the machine's noise lets this sweep tell apart, and how often intervals covered the truth."""
    if floor is None:
        return ("Noise floor: no control cells (host-aa, or bind and volume against host on direct I/O) "
                "with two or more repeats.")
    line = (f"Noise floor ({floor.source} ÷ host): a run varies by {math.expm1(floor.sd_log) * 100:.1f}% here; "
            f"with n={floor.typical_n} a cell can call a difference real from ±{floor.detectable() * 100:.0f}%, "
            f"with n=10 from ±{floor.detectable(10) * 100:.1f}%.")
    if floor.source == AA:
        spread = (f" The same run twice landed {floor.lowest:.2f}x–{floor.highest:.2f}x apart: a difference "
                  f"within that is not told apart from this machine's own drift between runs."
                  if floor.covering < floor.cells else "")
        return (f"{line} {floor.covering} of {floor.cells} A/A intervals (host run again, truly 1.00x) "
                f"contain 1.00; about 95% should.{spread}")
    return (f"{line} {floor.covering} of {floor.cells} of their intervals contain 1.00 (they also hold the "
            f"container's cost; add --placements ...,{AA} for an A/A control).")


# ------------------------------------------------------------------ the end of a sweep: 120 columns

COMPACT_WIDTH = 120


def compact_table(over: pd.DataFrame, ops: pd.DataFrame, width: int = COMPACT_WIDTH) -> str:
    """Per driver spec, the union's ratio to host for as many fio jobs as fit in `width` columns,
    the copy-up of the largest file and the bench image's container create: the wide per-cell
    tables stay in `storprof table`."""
    fio = over[(over["metric"] != "time") & (over["placement"] == "union") & over["ratio"].notna()]
    jobs = list(dict.fromkeys(fio["job"]))
    copy = over[(over["placement"] == "union") & (over["workload"] == "copyup")
                & (over["operation"] == "first write")] if "operation" in over else over.iloc[0:0]
    create = ops[(ops["op"] == "container create") & (ops["variant"] == "bench")] if not ops.empty else ops
    pg = over[(over["placement"] == "union") & (over["workload"] == pgbench.WORKLOAD)
              & (over["operation"] == pgbench.COMMITS)] if "operation" in over else over.iloc[0:0]
    specs = list(dict.fromkeys(over["driver_spec"]))
    while True:
        headers = ["driver", "docker", *(["union pgbench"] if not pg.empty else []), *[f"union {j}" for j in jobs]]
        headers += (["copy-up"] if not copy.empty else []) + (["create"] if not create.empty else [])
        rows = [_compact_row(spec, over, fio, jobs, copy, create, pg) for spec in specs]
        text = _tight(rows, headers)
        if len(jobs) <= 1 or max(len(line) for line in text.splitlines()) <= width:
            return text
        jobs = jobs[:-1]


def _tight(rows: list[list[str]], headers: list[str]) -> str:
    """tabulate's simple format without the two spaces it pads headers with."""
    import tabulate as tabulate_module
    saved, tabulate_module.MIN_PADDING = tabulate_module.MIN_PADDING, 0
    try:
        return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True)
    finally:
        tabulate_module.MIN_PADDING = saved


def _compact_row(spec, over, fio, jobs, copy, create, pg) -> list[str]:
    mine = over[over["driver_spec"] == spec]
    docker = str(mine["docker"].iloc[0]) if "docker" in mine and len(mine) else "?"
    row = [spec, ".".join(docker.split(".")[:2])]
    if not pg.empty:
        p = pg[pg["driver_spec"] == spec]
        # tps, as the fio columns' throughput: the host's time per transaction ÷ the union's
        row.append(fmt_interval(1 / p.iloc[0]["ratio"], 1 / p.iloc[0]["ratio_high"], 1 / p.iloc[0]["ratio_low"])
                   + VERDICT_MARKS.get(str(p.iloc[0]["verdict"]), "")
                   if not p.empty and pd.notna(p.iloc[0]["ratio"]) else "-")
    for job in jobs:
        by = fio[(fio["driver_spec"] == spec) & (fio["job"] == job)].set_index("placement")
        row.append(_ratio_cell(by, "union") + ("".join(c for c in by.at["union", "flags"] if c in "†§")
                                               if "union" in by.index else ""))
    if not copy.empty:
        c = copy[copy["driver_spec"] == spec]
        if c.empty:
            row.append("-")
        else:
            largest = c.sort_values("size_mib").iloc[-1]
            row.append(_fmt_seconds(largest["median"]))
    if not create.empty:
        c = create[create["driver_spec"] == spec]
        row.append(f"{c.iloc[0]['p50_ms']:.0f} ms" if not c.empty else "-")
    return row


COMPACT_NOTE = ("union JOB: fio on the container's top layer ÷ on the host, 95% interval (≈ within the precision "
                "target of 1.00, ? not yet known, plain: a real difference; >1x faster). copy-up: the first write "
                "into the largest lower-layer file; create: container create, p50.")
PGBENCH_NOTE = ("union pgbench: PostgreSQL's TPC-B-like tps (fsync on) with its data on the top layer ÷ on the "
                "host, 95% interval.")
