"""The overhead table: each placement's median over repeats as a ratio to the host baseline.

Pure functions over the runs DataFrame (results.load_runs); tabulate only formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from .fiojob import parse_size
from .placements import PLACEMENTS


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    return runs[name].astype(float) if name in runs else pd.Series(float("nan"), index=runs.index)


def primary_value(runs: pd.DataFrame) -> pd.Series:
    """The number a job is judged by: IOPS for small blocks, bytes/s for large ones, seconds for
    the union probes (metric 'time', where less is better)."""
    metric = runs["primary_metric"]
    return (_column(runs, "total_iops").where(metric == "iops", _column(runs, "total_bw_bytes"))
            .where(metric != "time", _column(runs, "seconds")))


def latency_p99(runs: pd.DataFrame) -> pd.Series:
    """p99 of what a caller waits for: the fsync for jobs that sync, else the I/O completion."""
    return _column(runs, "sync_lat_p99_ns").fillna(_column(runs, "p99_clat_ns"))


def relative_spread(values: pd.Series) -> float:
    """Half the range over the median: '±x' around the median, across repeats."""
    med = values.median()
    if len(values) < 2 or not med:
        return 0.0
    return float((values.max() - values.min()) / 2 / med)


# Footnote marks for numbers that cannot mean what they claim.
FLAGS = {
    "†": "direct I/O on a driver that does not honour O_DIRECT (the page cache answers, not the disk)",
    "‡": "the loop device under this filesystem runs without direct I/O (the host's page cache answers)",
    "§": "measured: a direct-I/O result over {cache_ratio}x the host's direct baseline in every repeat (for a "
         "loop-backed filesystem, the host filesystem's), a cold read {cache_ratio}x quicker than the host's, or fio "
         "reported that direct I/O was not honoured; a cache likely answers",
    "~": "spread: the repeats vary by more than {cv_pct}% (coefficient of variation); do not trust the median",
    "¶": "buffered job without fsync on a file smaller than memory: the page cache likely answers",
}
# A direct-I/O result this many times above the direct baseline is a cache, not a faster disk:
# seen on this kind of VM, fuse-overlayfs gave ~2x and a buffered loop device ~1.7x the host.
CACHE_RATIO = 1.5
# Above this coefficient of variation across repeats the median is not to be trusted.
MAX_CV = 0.10


def flag_notes(used: set[str]) -> list[str]:
    return [f"{mark} {why.format(cache_ratio=CACHE_RATIO, cv_pct=round(MAX_CV * 100))}"
            for mark, why in FLAGS.items() if mark in used]


def cell_flags(run) -> set[str]:
    """Flags of one run, from what the run recorded about its driver, filesystem and job."""
    flags = set()
    if _is_true(run.get("direct")) and run.get("placement") == "union" \
            and _is_false(run.get("driver_honours_direct_io")):
        flags.add("†")
    if _is_false(run.get("loop_direct_io")):
        flags.add("‡")
    messages = run.get("fio_messages")
    if _is_true(run.get("direct")) and isinstance(messages, (list, tuple)) \
            and any("direct" in str(m).lower() for m in messages):
        flags.add("§")
    if cached_buffered_run(run):
        flags.add("¶")
    return flags


def cached_buffered_run(run) -> bool:
    """A buffered fio job that never syncs, on a file smaller than the machine's memory."""
    if run.get("kind", "fio") != "fio" or _is_true(run.get("direct")) or _is_true(run.get("own_files")):
        return False
    if any(_syncs(run.get(f"param_{k}")) for k in ("fsync", "fdatasync", "sync")):
        return False
    size = parse_size(str(run.get("param_size") or ""))
    memory = run.get("mem_total_bytes")
    return bool(size) and memory is not None and not pd.isna(memory) and size < float(memory)


def _syncs(value) -> bool:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return False
    text = str(value).strip().lower()
    return text not in ("", "0", "none", "false", "no", "off")


def coefficient_of_variation(values: pd.Series) -> float | None:
    """Sample standard deviation over the mean; None with fewer than two values."""
    values = values.dropna().astype(float)
    if len(values) < 2 or not values.mean():
        return None
    return float(values.std(ddof=1) / abs(values.mean()))


def _is_true(value) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and bool(value)


def _is_false(value) -> bool:
    """False, but not missing: None/NaN means 'not recorded', which is no evidence."""
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and not bool(value)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (driver spec, job, placement): medians and spreads over the repeats that ran,
    the paired ratio to the host placement (see paired_ratio), and the flags that apply."""
    columns = ["driver_spec", "job", "placement", "flags", "metric", "n", "median", "spread", "cv",
               "p99_ns", "p99_spread", "ratio", "ratio_spread", "ratio_cv", "p99_ratio"]
    ok = runs[runs["status"] == "ok"].copy() if not runs.empty else runs
    if ok.empty:
        return pd.DataFrame(columns=columns)
    ok["value"] = primary_value(ok)
    ok["latency_p99"] = latency_p99(ok)
    rows = []
    for (spec, job), cell in ok.groupby(["driver_spec", "job"], sort=False):
        host = cell[cell["placement"] == "host"]
        for placement, g in cell.groupby("placement", sort=False):
            ratios = paired_ratio(g, host, "value")
            flags = set().union(*(cell_flags(r) for _, r in g.iterrows()))
            metric = g["primary_metric"].iloc[0]
            ratio = float(ratios.median()) if len(ratios) else None
            cv = coefficient_of_variation(g["value"])
            ratio_cv = coefficient_of_variation(ratios) if placement != "host" else None
            if (ratio_cv if placement != "host" and ratio_cv is not None else cv or 0) > MAX_CV:
                flags.add("~")
            if placement != "host" and metric != "time" and _all_direct(g) and len(ratios) \
                    and float(ratios.min()) > CACHE_RATIO:
                flags.add("§")
            if placement != "host" and _all_cold_reads(g) and len(ratios) and float(ratios.max()) < 1 / CACHE_RATIO:
                flags.add("§")    # a read meant to be cold, far quicker than the host's cold read
            rows.append({"driver_spec": spec, "job": job, "placement": placement, "flags": "".join(sorted(flags)),
                         "metric": metric, "n": len(g),
                         "median": float(g["value"].median()), "spread": relative_spread(g["value"]), "cv": cv,
                         "p99_ns": float(g["latency_p99"].median()),
                         "p99_spread": relative_spread(g["latency_p99"]),
                         "ratio": ratio, "ratio_spread": relative_spread(ratios), "ratio_cv": ratio_cv,
                         "p99_ratio": _median_or_none(paired_ratio(g, host, "latency_p99"))})
    out = pd.DataFrame(rows, columns=columns)
    _flag_cached_loop_baselines(out, ok)
    return out


def _all_cold_reads(runs: pd.DataFrame) -> bool:
    return "param_cold_read" in runs and bool(runs["param_cold_read"].map(_is_true).all())


def _all_direct(runs: pd.DataFrame) -> bool:
    return "direct" in runs and bool(runs["direct"].map(_is_true).all())


def _flag_cached_loop_baselines(over: pd.DataFrame, runs: pd.DataFrame) -> None:
    """§ on the host placement of a loop-backed spec whose direct-I/O result is over CACHE_RATIO
    times the same job's host result on a filesystem that is not on a loop device."""
    if "loop_direct_io" not in runs or "direct" not in runs:
        return
    host = runs[(runs["placement"] == "host") & runs["direct"].map(_is_true)]
    if host.empty:
        return
    on_loop = host["loop_direct_io"].map(lambda v: v is not None and not (isinstance(v, float) and pd.isna(v)))
    plain = host[~on_loop].groupby("job")["value"].median()
    for (spec, job), g in host[on_loop].groupby(["driver_spec", "job"]):
        if job in plain and plain[job] and g["value"].min() > CACHE_RATIO * plain[job]:
            i = over.index[(over["driver_spec"] == spec) & (over["job"] == job) & (over["placement"] == "host")]
            for k in i:
                over.at[k, "flags"] = "".join(sorted(set(over.at[k, "flags"]) | {"§"}))


def paired_ratio(runs: pd.DataFrame, host: pd.DataFrame, column: str) -> pd.Series:
    """Per repeat, this placement's value over the host's value of the same repeat.

    The placements of one repeat run back to back, so dividing within a repeat cancels the drift
    of a shared machine between repeats; the median over repeats is then the ratio reported.
    On this VM that halved the control placements' distance from 1.00 against a ratio of medians.
    """
    a = runs.groupby("repeat")[column].median()
    b = host.groupby("repeat")[column].median()
    both = a.index.intersection(b.index)
    b = b[both]
    return (a[both] / b[b != 0]).dropna()


def _median_or_none(values: pd.Series) -> float | None:
    return float(values.median()) if len(values) else None


overhead = summarize   # the table's name for it: every placement with its ratio to host


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


def _fmt_latency(ns: float) -> str:
    if ns is None or pd.isna(ns):
        return "-"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.0f} µs"


def _fmt_ratio(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.2f}x"


def _pm(spread: float) -> str:
    return f" ±{spread * 100:.0f}%"


def table_rows(over: pd.DataFrame, placements: tuple[str, ...] = PLACEMENTS) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for the terminal: host values, then ratios (×host) per placement."""
    present = [p for p in placements if p in set(over["placement"])]
    others = [p for p in present if p != "host"]
    headers = (["driver", "job", "host"] + [f"{p}" for p in others] + ["host p99"]
               + [f"{p} p99" for p in others])
    rows = []
    for (spec, job), g in over.groupby(["driver_spec", "job"], sort=False):
        by = g.set_index("placement")
        metric = g["metric"].iloc[0]
        row = [spec, job]
        row.append(_fmt_value(metric, by.at["host", "median"]) + _pm(by.at["host", "spread"])
                   + by.at["host", "flags"] if "host" in by.index else "-")
        for p in others:
            ratio = by["ratio"].get(p) if p in by.index else None
            if ratio is not None and pd.notna(ratio):
                row.append(_fmt_ratio(ratio) + _pm(by.at[p, "ratio_spread"]) + by.at[p, "flags"])
            else:
                row.append(_fmt_value(metric, by.at[p, "median"]) + by.at[p, "flags"] if p in by.index else "-")
        row.append(_fmt_latency(by.at["host", "p99_ns"]) if "host" in by.index else "-")
        for p in others:
            ratio = by["p99_ratio"].get(p) if p in by.index else None
            row.append(f"{ratio:.2f}x" if ratio is not None and pd.notna(ratio) else "-")
        rows.append(row)
    return headers, rows


def time_rows(over: pd.DataFrame, placements: tuple[str, ...] = PLACEMENTS) -> tuple[list[str], list[list[str]]]:
    """The union probes (copy-up, deep stacks): the time itself on every placement, and the
    ratio to host, since a copy-up reads better as '62 ms, 433x' than as a ratio alone."""
    present = [p for p in placements if p in set(over["placement"])]
    others = [p for p in present if p != "host"]
    headers = ["driver", "operation"] + present + [f"{p} x host" for p in others]
    rows = []
    for (spec, job), g in over.groupby(["driver_spec", "job"], sort=False):
        by = g.set_index("placement")
        row = [spec, job]
        for p in present:
            row.append(_fmt_seconds(by.at[p, "median"]) + _pm(by.at[p, "spread"]) + by.at[p, "flags"]
                       if p in by.index else "-")
        for p in others:
            ratio = by["ratio"].get(p) if p in by.index else None
            row.append(_fmt_ratio(ratio) if ratio is not None and pd.notna(ratio) else "-")
        rows.append(row)
    return headers, rows


TABLE_NOTE = ("host: median over repeats (±half the range). Other columns: per repeat, the placement's run "
              "divided by the host run of that repeat (same backing filesystem, run back to back); the median "
              "of those ratios (±half their range). Throughput >1x is faster, p99 latency >1x is slower.")
TIME_NOTE = ("Union operations: median time over repeats (±half the range), each sample in a fresh container "
             "(copy-up: open+4 KiB pwrite, then +fsync; deep stacks: the first stat of a file in the bottom "
             "layer, open, and a cold read of it). 'x host' is the paired ratio; >1x is slower.")


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
    if (over["metric"] == "time").any():
        notes.append(TIME_NOTE)
    return "\n".join(notes)


def machine_readable(over: pd.DataFrame, ops: pd.DataFrame, slopes: pd.DataFrame, status: list[dict],
                     fmt: str) -> str:
    """The numbers behind the tables: csv (the overhead rows) or json (every table)."""
    if fmt == "csv":
        return over.to_csv(index=False).rstrip("\n")
    def records(df):
        return json.loads(df.to_json(orient="records")) if not df.empty else []
    return json.dumps({"overhead": records(over), "layers": records(ops), "layer_growth": records(slopes),
                       "drivers": status}, indent=2, default=str)


def format_comparison(table: pd.DataFrame, fmt: str = "simple") -> str:
    """compare's rows: A, B, B/A, p and the verdict; metrics in their own units."""
    if fmt in ("csv", "json"):
        return table.to_csv(index=False).rstrip("\n") if fmt == "csv" else table.to_json(orient="records", indent=2)
    rows = []
    for r in table.itertuples():
        fmt_v = (lambda v: "-" if v is None or pd.isna(v) else
                 (_fmt_latency(v) if r.metric == "p99_latency_ns" else _fmt_value(r.metric, v)))
        rows.append([r.driver_spec, r.placement, r.job, "p99 latency" if r.metric == "p99_latency_ns" else r.metric,
                     f"{fmt_v(r.a)} (n={r.n_a})", f"{fmt_v(r.b)} (n={r.n_b})",
                     "-" if r.ratio is None or pd.isna(r.ratio) else f"{r.ratio:.3f}",
                     "-" if r.p_value is None or pd.isna(r.p_value) else f"{r.p_value:.3f}", r.verdict])
    headers = ["driver", "placement", "job", "metric", "A", "B", "B/A", "p", "verdict"]
    return tabulate(rows, headers=headers, tablefmt="pipe" if fmt == "markdown" else fmt, disable_numparse=True)


def format_driver_status(status: list[dict], fmt: str = "simple") -> str:
    rows = [[s["driver_spec"], s["status"], s.get("reason", "")] for s in status]
    return tabulate(rows, headers=["driver", "status", "reason"], tablefmt=fmt, disable_numparse=True)


def write_tables(over: pd.DataFrame, status: list[dict], out_dir: Path) -> list[Path]:
    """overhead.csv (numbers, one row per cell) and overhead.md (the table people read)."""
    out_dir = Path(out_dir)
    csv_path = out_dir / "overhead.csv"
    md_path = out_dir / "overhead.md"
    over.to_csv(csv_path, index=False)
    md = ["# storprof overhead", "", format_table(over, "github"), "", table_notes(over), "",
          "## Drivers", "", format_driver_status(status, "github"), ""]
    md_path.write_text("\n".join(md))
    return [csv_path, md_path]


# ------------------------------------------------------------------ layer timing

def layer_tables(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-operation p50/p95 table, growth slopes) from the results' layer records."""
    from .layers import growth, summarize_layers
    return pd.DataFrame(summarize_layers(records)), pd.DataFrame(growth(records))


def format_layers(ops: pd.DataFrame, slopes: pd.DataFrame, fmt: str = "simple") -> str:
    if ops.empty:
        return "(no layer timings)"
    parts = []
    for spec, g in ops.groupby("driver_spec", sort=False):
        rows = []
        for _, r in g.iterrows():
            ratio = r.get("host_ratio")
            size = r.get("bytes")
            rows.append([r["op"], r["variant"], str(int(r["n"])), f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}",
                         f"{ratio:.2f}x" if ratio is not None and pd.notna(ratio) else "",
                         f"{size / 2**20:.1f} MiB" if size is not None and pd.notna(size) else ""])
        parts.append(f"[{spec}] layer operations")
        parts.append(tabulate(rows, headers=["operation", "variant", "n", "p50 ms", "p95 ms", "x host copy",
                                             "space used"], tablefmt=fmt, disable_numparse=True))
        if not slopes.empty:
            s = slopes[slopes["driver_spec"] == spec]
            srows = [[r["op"], f"{r['slope']:+.1f} {r['unit']}", f"{r['r2']:.2f}", str(int(r["n"]))]
                     for _, r in s.iterrows()]
            parts.append(tabulate(srows, headers=["growth of", "slope", "R²", "n"], tablefmt=fmt,
                                  disable_numparse=True))
        parts.append("")
    return "\n".join(parts)


def write_layer_tables(ops: pd.DataFrame, slopes: pd.DataFrame, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    paths = [out_dir / "layers.csv", out_dir / "layers-growth.csv", out_dir / "layers.md"]
    ops.to_csv(paths[0], index=False)
    slopes.to_csv(paths[1], index=False)
    paths[2].write_text("# storprof layer timing\n\n" + format_layers(ops, slopes, "github") + "\n")
    return paths
