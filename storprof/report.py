"""The overhead table: each placement's median over repeats as a ratio to the host baseline.

Pure functions over the runs DataFrame (results.load_runs); tabulate only formats.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from tabulate import tabulate

from .placements import PLACEMENTS


def primary_value(runs: pd.DataFrame) -> pd.Series:
    """The number a job is judged by: IOPS for small blocks, bytes/s for large ones."""
    return runs["total_iops"].where(runs["primary_metric"] == "iops", runs["total_bw_bytes"])


def latency_p99(runs: pd.DataFrame) -> pd.Series:
    """p99 of what a caller waits for: the fsync for jobs that sync, else the I/O completion."""
    sync = runs["sync_lat_p99_ns"] if "sync_lat_p99_ns" in runs else pd.Series(index=runs.index, dtype=float)
    return sync.astype(float).fillna(runs["p99_clat_ns"].astype(float))


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
}


def cell_flags(run) -> set[str]:
    """Flags of one run, from what the run recorded about its driver and backing filesystem."""
    flags = set()
    if _is_true(run.get("direct")) and run.get("placement") == "union" \
            and _is_false(run.get("driver_honours_direct_io")):
        flags.add("†")
    if _is_false(run.get("loop_direct_io")):
        flags.add("‡")
    return flags


def _is_true(value) -> bool:
    return value is not None and not pd.isna(value) and bool(value)


def _is_false(value) -> bool:
    """False, but not missing: None/NaN means 'not recorded', which is no evidence."""
    return value is not None and not pd.isna(value) and not bool(value)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (driver spec, job, placement): medians and spreads over the repeats that ran,
    and the paired ratio to the host placement (see paired_ratio)."""
    columns = ["driver_spec", "job", "placement", "flags", "metric", "n", "median", "spread",
               "p99_ns", "p99_spread", "ratio", "ratio_spread", "p99_ratio"]
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
            rows.append({"driver_spec": spec, "job": job, "placement": placement,
                         "flags": "".join(sorted(set().union(*(cell_flags(r) for _, r in g.iterrows())))),
                         "metric": g["primary_metric"].iloc[0], "n": len(g),
                         "median": float(g["value"].median()), "spread": relative_spread(g["value"]),
                         "p99_ns": float(g["latency_p99"].median()),
                         "p99_spread": relative_spread(g["latency_p99"]),
                         "ratio": float(ratios.median()) if len(ratios) else None,
                         "ratio_spread": relative_spread(ratios),
                         "p99_ratio": _median_or_none(paired_ratio(g, host, "latency_p99"))})
    return pd.DataFrame(rows, columns=columns)


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
    if metric == "bw":
        return f"{value / 2**20:,.0f} MiB/s"
    return f"{value / 1000:,.1f}k IOPS" if value >= 1000 else f"{value:,.0f} IOPS"


def _fmt_latency(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.0f} µs"


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
                row.append(f"{ratio:.2f}x" + _pm(by.at[p, "ratio_spread"]) + by.at[p, "flags"])
            else:
                row.append(_fmt_value(metric, by.at[p, "median"]) if p in by.index else "-")
        row.append(_fmt_latency(by.at["host", "p99_ns"]) if "host" in by.index else "-")
        for p in others:
            ratio = by["p99_ratio"].get(p) if p in by.index else None
            row.append(f"{ratio:.2f}x" if ratio is not None and pd.notna(ratio) else "-")
        rows.append(row)
    return headers, rows


TABLE_NOTE = ("host: median over repeats (±half the range). Other columns: per repeat, the placement's run "
              "divided by the host run of that repeat (same backing filesystem, run back to back); the median "
              "of those ratios (±half their range). Throughput >1x is faster, p99 latency >1x is slower.")


def format_table(over: pd.DataFrame, fmt: str = "simple") -> str:
    if over.empty:
        return "(no successful runs)"
    headers, rows = table_rows(over)
    text = tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)
    used = set("".join(over["flags"]))
    notes = [f"{mark} {why}" for mark, why in FLAGS.items() if mark in used]
    return "\n".join([text, *notes])


def format_driver_status(status: list[dict], fmt: str = "simple") -> str:
    rows = [[s["driver_spec"], s["status"], s.get("reason", "")] for s in status]
    return tabulate(rows, headers=["driver", "status", "reason"], tablefmt=fmt, disable_numparse=True)


def write_tables(over: pd.DataFrame, status: list[dict], out_dir: Path) -> list[Path]:
    """overhead.csv (numbers, one row per cell) and overhead.md (the table people read)."""
    out_dir = Path(out_dir)
    csv_path = out_dir / "overhead.csv"
    md_path = out_dir / "overhead.md"
    over.to_csv(csv_path, index=False)
    md = ["# storprof overhead", "", format_table(over, "github"), "", TABLE_NOTE, "",
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
