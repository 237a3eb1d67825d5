"""The numbers behind every view: medians, paired ratios to the host, spreads and flags.

Pure functions over a ResultSet's runs DataFrame; nothing here formats (tables.py does).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from storprof.engine.versions import short as short_version
from storprof.results.records import LayerRecord
from storprof.stats.intervals import DEFAULT_PRECISION, classify, detectable, pooled_sd_log, ratio_interval
from storprof.storage.fio.fiojob import parse_size
from storprof.storage.fio.placements import AA
from storprof.storage.layers import growth, summarize_layers


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
    "~": ("spread: the host's repeats vary by more than {cv_pct}% (coefficient of variation); "
          "its median is shaky, the ratios' intervals say how much that matters"),
    "¶": "buffered job without fsync on a file smaller than memory: the page cache likely answers",
    "#": "fewer than {min_repeats} repeats: no spread can be known (raise --repeat)",
    "°": "a run measured less than a second of work: fio's millisecond clock rounds its rate",
}
# Fewer repeats than this and a spread means nothing.
MIN_REPEATS = 3
# A direct-I/O result this many times above the direct baseline is a cache, not a faster disk
# (docs/findings.md, 'What a cache looks like').
CACHE_RATIO = 1.5
# Above this coefficient of variation across repeats the median is not to be trusted.
MAX_CV = 0.10


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
    return size is not None and size > 0 and memory is not None and not pd.isna(memory) and size < float(memory)


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


COLUMNS = ["driver_spec", "docker", "job", "placement", "flags", "metric", "n", "median", "spread", "cv",
           "lat_kind", "p99_ns", "p99_spread", "p99_read_ns", "p99_write_ns",
           "ratio", "ratio_low", "ratio_high", "ratio_spread", "ratio_cv", "n_pairs", "verdict",
           "p99_ratio", "p99_low", "p99_high", "p99_read_ratio", "p99_write_ratio",
           "driver_base", "driver_ratio", "driver_low", "driver_high", "driver_verdict", "bytes", "how"]
# What names a probe row (records.ProbeRecord.IDENTITY): carried into its cells so the views
# select rows by field, never by the `job` text. Not exported: the tables' columns are COLUMNS.
ROW_FIELDS = ["workload", "operation", "size_mib", "depth", "files", "file_bytes", "containers", "images", "scale"]
# Workloads with tables of their own (a search, a chain of layers, daemon restarts): no host ratio.
OWN_VIEWS = ("daemon-start", "max-depth", "snapbench")
# The container placements that are not the union: the same container, the same backing
# filesystem, no union filesystem; union divided by one of them is the storage driver's own cost.
CONTAINER_BASES = ("bind", "volume")


def summarize(runs: pd.DataFrame, precision: float = DEFAULT_PRECISION) -> pd.DataFrame:
    """One row per (driver spec, job, placement): medians and spreads over the repeats that ran,
    the paired ratio to the host placement (see paired_ratio), for union the paired ratio to a
    placement in the same container without the union (the driver alone), the latency of each
    direction, and the flags that apply. Ratios are the geometric mean of the paired ratios with
    the t-interval of their logs (stats.ratio_interval), each classified against `precision`."""
    ok = runs[runs["status"] == "ok"].copy() if not runs.empty else runs
    if "workload" in ok:
        ok = ok[~ok["workload"].isin(OWN_VIEWS)]
    if ok.empty:
        return pd.DataFrame(columns=COLUMNS + ROW_FIELDS)
    ok["value"] = primary_value(ok)
    ok["latency_p99"] = latency_p99(ok)
    ok["p99_read"] = _column(ok, "read_clat_p99_ns").where(_column(ok, "read_iops") > 0)
    ok["p99_write"] = _column(ok, "write_clat_p99_ns").where(_column(ok, "write_iops") > 0)
    rows = []
    for (spec, job), cell in ok.groupby(["driver_spec", "job"], sort=False):
        host = cell[cell["placement"] == "host"]
        named = {name: cell[name].iloc[0] for name in ROW_FIELDS if name in cell}
        for placement, g in cell.groupby("placement", sort=False):
            row = {**named, "driver_spec": spec, "docker": docker_short(g), "job": job, "placement": placement,
                   "metric": g["primary_metric"].iloc[0],
                   **_value_columns(g), **_latency_columns(g, host), **_ratio_columns(g, host, precision)}
            if placement == "union":
                row.update(_driver_columns(g, cell, precision))
            row["flags"] = "".join(sorted(_row_flags(g, row)))
            rows.append(row)
    out = pd.DataFrame(rows, columns=COLUMNS + ROW_FIELDS)
    _flag_cached_loop_baselines(out, ok)
    return out


def docker_short(g: pd.DataFrame) -> str:
    """The engine a cell was measured on, as Docker names its release ('20.10.24+dfsg1' -> '20.10.24')."""
    versions = g["docker_version"].dropna().astype(str).unique() if "docker_version" in g else []
    return "/".join(sorted({short_version(v) for v in versions})) or "?"


def _value_columns(g: pd.DataFrame) -> dict:
    out: dict[str, object] = {"n": len(g), "median": float(g["value"].median()),
                              "spread": relative_spread(g["value"]), "cv": coefficient_of_variation(g["value"])}
    if "bytes" in g and g["bytes"].notna().any():      # what a union operation copied or cached
        out["bytes"] = float(g["bytes"].astype(float).median())
    if "param_path" in g and g["param_path"].notna().any():   # how a rename went: rename(2) or a copy
        out["how"] = "/".join(sorted({str(v) for v in g["param_path"].dropna()}))
    return out


def _latency_columns(g: pd.DataFrame, host: pd.DataFrame) -> dict:
    """What p99 means for this job (the fsync's, or the completion latency of the directions that
    did I/O) and, for a job that reads and writes, each direction's own p99 and ratio."""
    syncs = g["sync_lat_p99_ns"].notna().any() if "sync_lat_p99_ns" in g else False
    reads, writes = bool(g["p99_read"].notna().any()), bool(g["p99_write"].notna().any())
    kind = "fsync" if syncs else "read+write" if reads and writes else "read" if reads else "write" if writes else ""
    out = {"lat_kind": kind, "p99_ns": float(g["latency_p99"].median()),
           "p99_spread": relative_spread(g["latency_p99"])}
    p99 = ratio_interval(paired_ratio(g, host, "latency_p99").tolist()) if g["placement"].iloc[0] != "host" else None
    if p99 is not None:
        out.update(p99_ratio=p99.ratio, p99_low=p99.low, p99_high=p99.high)
    if kind == "read+write":
        out.update(p99_read_ns=float(g["p99_read"].median()), p99_write_ns=float(g["p99_write"].median()),
                   p99_read_ratio=_median_or_none(paired_ratio(g, host, "p99_read")),
                   p99_write_ratio=_median_or_none(paired_ratio(g, host, "p99_write")))
    return out


def _ratio_columns(g: pd.DataFrame, host: pd.DataFrame, precision: float) -> dict:
    ratios = paired_ratio(g, host, "value")
    interval = ratio_interval(ratios.tolist())
    if interval is None or g["placement"].iloc[0] == "host":
        return {"ratio": None, "n_pairs": 0}
    return {"ratio": interval.ratio, "ratio_low": interval.low, "ratio_high": interval.high,
            "ratio_spread": relative_spread(ratios), "ratio_cv": coefficient_of_variation(ratios),
            "n_pairs": interval.n, "verdict": classify(interval, precision), "_ratios": ratios}


def _driver_columns(union: pd.DataFrame, cell: pd.DataFrame, precision: float) -> dict:
    """union / bind (or volume, for jobs that have no bind placement), paired like the host ratio."""
    for base in CONTAINER_BASES:
        interval = ratio_interval(paired_ratio(union, cell[cell["placement"] == base], "value").tolist())
        if interval is not None:
            return {"driver_base": base, "driver_ratio": interval.ratio, "driver_low": interval.low,
                    "driver_high": interval.high, "driver_verdict": classify(interval, precision)}
    return {}


def _row_flags(g: pd.DataFrame, row: dict) -> set[str]:
    flags = set().union(*(cell_flags(r) for _, r in g.iterrows()))
    ratios = row.pop("_ratios", pd.Series(dtype=float))
    if row["placement"] == "host" and (row["cv"] or 0) > MAX_CV:     # other cells show their interval
        flags.add("~")
    if len(g) < MIN_REPEATS:
        flags.add("#")
    if row["placement"] != "host" and row["metric"] != "time" and _all_direct(g) and len(ratios) \
            and float(ratios.min()) > CACHE_RATIO:
        flags.add("§")
    if row["placement"] != "host" and _all_cold_reads(g) and len(ratios) and float(ratios.max()) < 1 / CACHE_RATIO:
        flags.add("§")    # a read meant to be cold, far quicker than the host's cold read
    if "runtime_ms" in g and _is_true(g["own_files"].iloc[0]) and float(g["runtime_ms"].min()) < 1000:
        flags.add("°")
    return flags


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
    """Per repeat, this placement's value over the host's value of the same repeat of the same run.

    The placements of one repeat run back to back, so dividing within a repeat cancels the drift
    of a shared machine between repeats; the median over repeats is then the ratio reported.
    It brings the control placements closer to 1.00 than a ratio of medians (docs/findings.md).
    A resumed sweep is another run (another run_id): its runs never pair with the first's.
    """
    keys = ["run_id", "repeat"] if "run_id" in runs and "run_id" in host else ["repeat"]
    a = runs.groupby(keys)[column].median()
    b = host.groupby(keys)[column].median()
    both = a.index.intersection(b.index)
    b = b[both]
    return (a[both] / b[b != 0]).dropna()


def _median_or_none(values: pd.Series) -> float | None:
    return float(values.median()) if len(values) else None






# ------------------------------------------------------------------ layer timing

def layer_tables(records: list[LayerRecord]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-operation p50/p95 table, growth slopes) from the results' layer records."""
    return pd.DataFrame(summarize_layers(records)), pd.DataFrame(growth(records))


# ------------------------------------------------------------------ the noise floor

@dataclass(frozen=True)
class NoiseFloor:
    """How much this machine varies when nothing changes, read from the sweep's own controls: the
    A/A control (host-aa ÷ host, truly 1.00x) where the sweep ran it, else bind and volume ÷ host on
    direct-I/O data jobs, whose spread is the machine's but whose ratio also holds the container's
    cost (so their coverage of 1.00 is not a test of the intervals)."""

    sd_log: float             # pooled standard deviation of the controls' log-ratios (per repeat)
    df: int                   # its degrees of freedom
    cells: int                # control cells with at least two pairs
    covering: int             # of them, how many have an interval that contains 1.00
    typical_n: int            # the median number of pairs of the sweep's ratio cells
    source: str = AA          # which controls: AA, or "bind/volume"
    lowest: float = 1.0       # the controls' smallest and largest geometric-mean ratio: with A/A,
    highest: float = 1.0      # how far the same run twice lands apart here (order, placement in time)

    def detectable(self, n: int | None = None) -> float:
        """The smallest relative difference a cell of n pairs can call real here."""
        return detectable(self.sd_log, n or self.typical_n)


def noise_floor(runs: pd.DataFrame, over: pd.DataFrame) -> NoiseFloor | None:
    if runs.empty or over.empty:
        return None
    ok = runs[(runs["status"] == "ok") & (runs["kind"] == "fio")].copy()
    if ok.empty:
        return None
    ok["value"] = primary_value(ok)
    floor = _floor_of(ok, (AA,), over, AA)
    if floor is None:
        direct = ok[ok["direct"].map(_is_true) & ~ok["own_files"].map(_is_true)]
        floor = _floor_of(direct, CONTAINER_BASES, over, "bind/volume")
    return floor


def _floor_of(ok: pd.DataFrame, controls: tuple[str, ...], over: pd.DataFrame, source: str) -> NoiseFloor | None:
    groups, covering, means = [], 0, []
    for (_spec, _job), cell in ok.groupby(["driver_spec", "job"], sort=False):
        host = cell[cell["placement"] == "host"]
        for control in controls:
            ratios = paired_ratio(cell[cell["placement"] == control], host, "value").tolist()
            interval = ratio_interval(ratios)
            if interval is not None and interval.n >= 2:
                groups.append(ratios)
                means.append(interval.ratio)
                covering += interval.low <= 1 <= interval.high
    if not groups:
        return None
    sd, df = pooled_sd_log(groups)
    if df == 0:
        return None
    pairs = over["n_pairs"].dropna()
    return NoiseFloor(sd, df, len(groups), covering, int(pairs[pairs > 0].median()) if (pairs > 0).any() else 0,
                      source, min(means), max(means))
