"""Per driver spec, what it costs and where, in sentences built from the cells' intervals and
verdicts; and rankings for the common questions. Pure: summarize()'s and layer_tables()'s frames
in, text out. The sentences are `storprof table`'s and the report's, below the tables; the answer
by use case (usecases.py) comes first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from storprof.stats.intervals import REAL, SAME
from storprof.storage import pgbench
from storprof.views.tables import fmt_bytes, fmt_interval, fmt_seconds

# How a built-in job reads in a sentence; a job file of the user's keeps its own name.
JOB_WORDS = {"randread-4k": "4 KiB random reads", "randwrite-4k": "4 KiB random writes",
             "fsync-write-4k": "fsync'd 4 KiB writes", "seqread-1m": "1 MiB sequential reads",
             "seqwrite-1m": "1 MiB sequential writes", "randrw-4k-70-30": "4 KiB 70/30 random read/write",
             "lower-randread-4k": "4 KiB random reads of a lower-layer file",
             "lower-seqread-1m": "1 MiB sequential reads of a lower-layer file",
             "meta-create": "file creates", "meta-delete": "file deletes"}
# Drivers whose snapshots share extents: a tree walk counts a shared block once per snapshot, so
# their "space used" is the apparent size, more than the disk gives up.
SHARED_EXTENTS = {"btrfs", "c8d-btrfs"}
# Among the jobs a sweep ran, the first present is the one the rankings ask about.
WRITE_JOBS = ("randwrite-4k", "fsync-write-4k", "seqwrite-1m")


@dataclass(frozen=True)
class SpecSummary:
    spec: str
    docker: str
    sentence: str


def words(job: str) -> str:
    return JOB_WORDS.get(job, job)


def spec_summaries(over: pd.DataFrame, ops: pd.DataFrame, precision: float) -> list[SpecSummary]:
    """One sentence per driver spec: the union's real differences with their intervals, what was
    shown to be no different, what is not yet known, then its copy-up, deepest lookup, container
    create and space per container where measured."""
    out = []
    for spec, cell in over.groupby("driver_spec", sort=False):
        parts = [_fio_part(cell[cell["metric"] != "time"], precision)]
        parts += _probe_parts(cell[cell["metric"] == "time"])
        parts += _layer_parts(ops[ops["driver_spec"] == spec] if not ops.empty else ops,
                              str(spec).split("@")[0] in SHARED_EXTENTS)
        docker = str(cell["docker"].iloc[0]) if "docker" in cell else "?"
        text = "; ".join(p for p in parts if p)
        if text:
            out.append(SpecSummary(str(spec), docker, text + "."))
    return out


def _fio_part(fio: pd.DataFrame, precision: float) -> str:
    union = fio[(fio["placement"] == "union") & fio["ratio"].notna()]
    if union.empty:
        return ""
    real = [f"{words(r.job)} {fmt_interval(r.ratio, r.ratio_low, r.ratio_high)} of host"
            + _driver_share(r) for r in union.itertuples() if r.verdict == REAL]
    same = [words(r.job) for r in union.itertuples() if r.verdict == SAME]
    open_ = [r for r in union.itertuples() if r.verdict not in (REAL, SAME)]
    text = "union: " + ("; ".join(real) if real else "no real difference from host shown")
    if same:
        text += f"; within ±{precision * 100:.0f}% of host: {', '.join(same)}"
    if open_:
        widest = max(open_, key=lambda r: (r.ratio_high / r.ratio_low) if r.ratio_low else math.inf)
        n = pd.Series([int(r.n_pairs) for r in open_])
        text += (f"; not yet told apart from host (n={_n_range(n)}): "
                 f"{', '.join(words(r.job) for r in open_)}"
                 f" (widest {fmt_interval(widest.ratio, widest.ratio_low, widest.ratio_high)})")
    return text


def _driver_share(r) -> str:
    """', the driver alone 0.94x [0.90–0.97]' where union ÷ bind is itself a real difference."""
    if getattr(r, "driver_verdict", None) == REAL and pd.notna(getattr(r, "driver_ratio", None)):
        return f" (the driver alone: {fmt_interval(r.driver_ratio, r.driver_low, r.driver_high)})"
    return ""


def _rows(union: pd.DataFrame, workload: str, operation: str) -> pd.DataFrame:
    """The union cells of one probe operation, selected by their fields (summary.ROW_FIELDS)."""
    if "operation" not in union:
        return union.iloc[0:0]
    return union[(union["workload"] == workload) & (union["operation"] == operation)]


def _probe_parts(probes: pd.DataFrame) -> list[str]:
    union = probes[(probes["placement"] == "union")]
    parts = []
    copy = _rows(union, "copyup", "first write")
    if not copy.empty:
        r = copy.sort_values("size_mib").iloc[-1]
        parts.append(f"copy-up of a {int(r.size_mib)} MiB file: {fmt_seconds(r['median'])}")
    stack = _rows(union, "deep-stack", "first stat")
    if not stack.empty:
        deepest = stack.sort_values("depth").iloc[-1]
        verdict = "" if deepest.verdict == REAL else ", not told apart from host"
        ratio = fmt_interval(deepest.ratio, deepest.ratio_low, deepest.ratio_high)
        parts.append(f"first lookup under {int(deepest.depth)} layers {ratio} the host's time{verdict}")
    parts += _union_op_parts(union)
    parts += _postgres_parts(probes)
    return parts


def _postgres_parts(probes: pd.DataFrame) -> list[str]:
    """PostgreSQL's commits (fsync on) and cached selects, on each container placement, against
    the host's, as the time per transaction."""
    parts = []
    for operation, what in ((pgbench.COMMITS, "PostgreSQL TPC-B-like commits"),
                            (f"{pgbench.SELECT}: {pgbench.STATS[0]}", "cached selects")):
        rows = probes[probes["placement"] != "host"]
        rows = rows[(rows["workload"] == pgbench.WORKLOAD) & (rows["operation"] == operation)] \
            if "operation" in rows else rows.iloc[0:0]
        cells = [f"{r.placement} {fmt_interval(r.ratio, r.ratio_low, r.ratio_high)}"
                 + ("" if r.verdict == REAL else " (not told apart)") for r in rows.itertuples() if pd.notna(r.ratio)]
        if cells:
            parts.append(f"{what}, time per transaction ÷ the host's: {', '.join(cells)}")
    return parts


def _union_op_parts(union: pd.DataFrame) -> list[str]:
    """Appends, rename, chown: time and what was copied up; the page cache a later reader adds."""
    parts = []
    for operation, what in (("append", "appending to {files} small files"),
                            ("rename", "renaming a {mib} MiB directory"),
                            ("chown", "chown of a {mib} MiB file")):
        rows = _rows(union, "union-ops", operation)
        if rows.empty:
            continue
        r = rows.iloc[0]
        label = what.format(files=_whole(r.get("files")), mib=_whole(r.get("size_mib")))
        copied = f", {fmt_bytes(r.bytes)} copied up" if pd.notna(r.get("bytes")) and r.bytes > 0 else ", nothing copied"
        how = f" by {r.how}" if isinstance(r.get("how"), str) and r.how else ""
        ratio = f" ({fmt_interval(r.ratio, r.ratio_low, r.ratio_high)} the host's time)" \
            if pd.notna(r.get("ratio")) and r.verdict == REAL else ""
        parts.append(f"{label}{how}: {fmt_seconds(r['median'])}{ratio}{copied}")
    later = _rows(union, "page-cache", "later reader")
    if not later.empty and pd.notna(later.iloc[0].get("bytes")):
        r = later.iloc[0]
        mib = int(r.size_mib)
        shared = page_cache_shared(r)
        added = "under 0.1 MiB" if abs(r.bytes) < 0.1 * 2**20 else fmt_bytes(r.bytes)
        parts.append(f"page cache: containers reading one {mib} MiB image file share one cached copy (each further "
                     f"reader added {added})" if shared else
                     f"page cache: each further container reading a {mib} MiB image file caches its own copy "
                     f"(+{fmt_bytes(r.bytes)})")
    return parts


def page_cache_shared(r) -> bool | None:
    """Whether a later reader of an image file added under a tenth of the file to the page cache
    (the containers share one cached copy); None where the probe measured no bytes."""
    if pd.isna(getattr(r, "bytes", None)) or pd.isna(getattr(r, "size_mib", None)):
        return None
    return bool(r.bytes < 0.1 * r.size_mib * 2**20)


def _whole(value) -> int | str:
    return int(value) if pd.notna(value) else "?"


def _layer_parts(ops: pd.DataFrame, shared_extents: bool) -> list[str]:
    if ops.empty:
        return []
    parts = []
    create = ops[(ops["op"] == "container create") & (ops["variant"] == "bench")]
    if not create.empty:
        r = create.iloc[0]
        parts.append(f"container create {r['p50_ms']:.0f} ms (n={int(r['n'])})")
    bulk = ops[(ops["op"] == "bulk create") & ops.get("bytes", pd.Series(dtype=float)).notna()] \
        if "bytes" in ops else ops.iloc[0:0]
    if not bulk.empty:
        apparent = " apparent (snapshots share extents)" if shared_extents else ""
        parts.append(f"{bulk.iloc[0]['bytes'] / 2**20:.1f} MiB{apparent} per container")
    return parts


def rankings(over: pd.DataFrame, ops: pd.DataFrame) -> list[str]:
    """The common questions, answered across specs: fastest top-layer writes, cheapest container
    create, least space per container. Specs whose intervals overlap the leader's are named as
    tied, not ranked below it."""
    out = []
    union = over[(over["placement"] == "union") & over["ratio"].notna() & (over["metric"] != "time")]
    job = next((j for j in WRITE_JOBS if j in set(union["job"])), None)
    if job is not None:
        rows = union[union["job"] == job].sort_values("ratio", ascending=False)
        best = rows.iloc[0]
        tied = [r.driver_spec for r in rows.iloc[1:].itertuples() if r.ratio_high >= best.ratio_low]
        line = (f"Fastest {words(job)} on the top layer: {best.driver_spec} "
                f"{fmt_interval(best.ratio, best.ratio_low, best.ratio_high)} of host")
        line += f"; not told apart from it: {', '.join(tied)}" if tied else "; ahead of every other spec"
        slowest = rows.iloc[-1]
        if len(rows) > 1:
            line += (f". Slowest: {slowest.driver_spec} "
                     f"{fmt_interval(slowest.ratio, slowest.ratio_low, slowest.ratio_high)}")
        out.append(line + ".")
    if not ops.empty:
        create = ops[(ops["op"] == "container create") & (ops["variant"] == "bench")].sort_values("p50_ms")
        if len(create) > 1:
            out.append(f"Cheapest container create: {create.iloc[0]['driver_spec']} {create.iloc[0]['p50_ms']:.0f} ms; "
                       f"dearest: {create.iloc[-1]['driver_spec']} {create.iloc[-1]['p50_ms']:.0f} ms "
                       f"(p50 of n={_n_range(create['n'])} each).")
        if "bytes" in ops:
            bulk = ops[(ops["op"] == "bulk create") & ops["bytes"].notna()
                       & ~ops["driver_spec"].str.split("@").str[0].isin(SHARED_EXTENTS)].sort_values("bytes")
            if len(bulk) > 1:
                least, most = (f"{bulk.iloc[i]['bytes'] / 2**20:.1f} MiB" for i in (0, -1))
                out.append(f"Space per container: {least} on every spec measured." if least == most else
                           f"Least space per container: {bulk.iloc[0]['driver_spec']} {least}; "
                           f"most: {bulk.iloc[-1]['driver_spec']} {most}.")
    return out


def _n_range(n: pd.Series) -> str:
    lo, hi = int(n.min()), int(n.max())
    return str(lo) if lo == hi else f"{lo}–{hi}"
