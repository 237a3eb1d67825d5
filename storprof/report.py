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
    """One row per (driver spec, job, placement): medians and spreads over the repeats that ran."""
    ok = runs[runs["status"] == "ok"].copy()
    if ok.empty:
        return pd.DataFrame(columns=["driver_spec", "job", "placement", "flags", "metric", "n", "median",
                                     "spread", "p99_ns", "p99_spread"])
    ok["value"] = primary_value(ok)
    ok["latency_p99"] = latency_p99(ok)
    rows = []
    for (spec, job, placement), g in ok.groupby(["driver_spec", "job", "placement"], sort=False):
        rows.append({"driver_spec": spec, "job": job, "placement": placement,
                     "flags": "".join(sorted(set().union(*(cell_flags(r) for _, r in g.iterrows())))),
                     "metric": g["primary_metric"].iloc[0], "n": len(g),
                     "median": float(g["value"].median()), "spread": relative_spread(g["value"]),
                     "p99_ns": float(g["latency_p99"].median()),
                     "p99_spread": relative_spread(g["latency_p99"])})
    return pd.DataFrame(rows)


def overhead(runs: pd.DataFrame) -> pd.DataFrame:
    """summarize() plus each placement's ratio to the host placement of the same spec and job."""
    summary = summarize(runs)
    if summary.empty:
        return summary.assign(ratio=[], p99_ratio=[])
    host = summary[summary["placement"] == "host"].set_index(["driver_spec", "job"])
    keys = list(zip(summary["driver_spec"], summary["job"]))
    host_value = [host["median"].get(k) for k in keys]
    host_p99 = [host["p99_ns"].get(k) for k in keys]
    summary["ratio"] = [v / h if h else None for v, h in zip(summary["median"], host_value)]
    summary["p99_ratio"] = [v / h if h else None for v, h in zip(summary["p99_ns"], host_p99)]
    return summary


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
                row.append(f"{ratio:.2f}x" + _pm(by.at[p, "spread"]) + by.at[p, "flags"])
            else:
                row.append(_fmt_value(metric, by.at[p, "median"]) if p in by.index else "-")
        row.append(_fmt_latency(by.at["host", "p99_ns"]) if "host" in by.index else "-")
        for p in others:
            ratio = by["p99_ratio"].get(p) if p in by.index else None
            row.append(f"{ratio:.2f}x" if ratio is not None and pd.notna(ratio) else "-")
        rows.append(row)
    return headers, rows


TABLE_NOTE = ("host: median over repeats (±half the range). Other columns: median as a ratio to host "
              "on the same backing filesystem; throughput >1x is faster, p99 latency >1x is slower.")


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
