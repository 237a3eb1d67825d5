"""The answer by use case, first: one line per question a user brings (a database host, a build
farm, dense hosting, a web service), each naming the best and the worst choice the run measured,
how far apart they are with an interval, and whether that is real. Pure: summary frames in, lines
out; the terminal prints them before the table and the report at its top.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from storprof.stats.intervals import RatioInterval, between
from storprof.stats.network import NetRow
from storprof.stats.summary import NoiseFloor
from storprof.storage import pgbench
from storprof.views.tables import fmt_interval
from storprof.views.verdicts import SHARED_EXTENTS, page_cache_shared, words

# The fio job a database line asks about, the first a sweep ran: fsync'd writes are a database's
# commit path; plain random writes stand in when no fsync job ran.
DATABASE_JOBS = ("fsync-write-4k", "randwrite-4k", "randrw-4k-70-30")
HEADER = "The answer by use case (95% intervals; best ÷ worst allowing for picking them among the choices):"


@dataclass(frozen=True)
class Choice:
    """One spec (or network path) measured for a use case: its ratio to its own host baseline."""

    name: str
    interval: RatioInterval
    higher_is_better: bool
    flags: str = ""        # † or §: a cache answered this cell (tables.flag_notes says which)

    @property
    def goodness(self) -> float:
        r = self.interval.ratio
        return r if self.higher_is_better else 1 / r


@dataclass(frozen=True)
class UseCase:
    """One use case's answer: the case ("Databases") and what the run says of it."""

    case: str
    text: str

    @property
    def line(self) -> str:
        return f"{self.case}: {self.text}"


def use_cases(over: pd.DataFrame, ops: pd.DataFrame, net: list[NetRow], floor: NoiseFloor | None,
              precision: float) -> list[UseCase]:
    """A use case for each the run measured, then one naming those it did not."""
    found, missing = [], []
    for case, text in (("Databases", _database(over, floor, precision)),
                       ("Builds and CI", _builds(over, floor, precision)),
                       ("Dense hosting", _dense(over, ops)),
                       ("Web and network paths", _web(net, precision))):
        if text:
            found.append(UseCase(case, text))
        else:
            missing.append(case[0].lower() + case[1:])
    if found and missing:
        network = " (storprof net measures network paths)" if "web and network paths" in missing else ""
        found.append(UseCase("Not measured by this run", f"{', '.join(missing)}{network}."))
    return found


def use_case_lines(over: pd.DataFrame, ops: pd.DataFrame, net: list[NetRow], floor: NoiseFloor | None,
                   precision: float) -> list[str]:
    """The header and a line per use case; nothing when the run measured none."""
    cases = use_cases(over, ops, net, floor, precision)
    return [HEADER, *(c.line for c in cases)] if cases else []


def _interval(r) -> RatioInterval | None:
    if pd.isna(r.ratio) or pd.isna(r.ratio_low) or pd.isna(r.ratio_high) or int(r.n_pairs) < 2:
        return None
    return RatioInterval(float(r.ratio), float(r.ratio_low), float(r.ratio_high), int(r.n_pairs), 0.95)


def _union_choices(rows: pd.DataFrame, higher_is_better: bool) -> list[Choice]:
    out = []
    for r in rows.itertuples():
        interval = _interval(r)
        if interval is not None:
            flags = "".join(c for c in (r.flags if isinstance(r.flags, str) else "") if c in "†§")
            out.append(Choice(str(r.driver_spec), interval, higher_is_better, flags))
    return out


def _database(over: pd.DataFrame, floor: NoiseFloor | None, precision: float) -> str | None:
    """PostgreSQL's TPC-B-like commits where the sweep ran the postgres workload, else fio's
    fsync'd writes (or plain random writes) on the top layer."""
    if over.empty:
        return None
    if "operation" in over:
        pg = over[(over["placement"] == "union") & (over["workload"] == pgbench.WORKLOAD)
                  & (over["operation"] == pgbench.COMMITS)]
        if not pg.empty:
            return _line("PostgreSQL TPC-B-like commits (fsync on) on the top layer, time per transaction",
                         _union_choices(pg, higher_is_better=False), "the host's", floor, precision, "specs")
    union = over[(over["placement"] == "union") & (over["metric"] != "time")]
    job = next((j for j in DATABASE_JOBS if j in set(union["job"])), None)
    if job is None:
        return None
    choices = _union_choices(union[union["job"] == job], higher_is_better=True)
    return _line(f"{words(job)} on the top layer", choices, "of host", floor, precision, "specs")


def _builds(over: pd.DataFrame, floor: NoiseFloor | None, precision: float) -> str | None:
    """A docker build's total where the sweep ran the build workload, else the appends to small
    image files (the copy-up a build's `chown -R` or in-place edit pays per file)."""
    if over.empty or "operation" not in over:
        return None
    union = over[over["placement"] == "union"]
    build = union[(union["workload"] == "build") & (union["operation"] == "total")]
    if not build.empty:
        files = build["files"].dropna()
        what = f"a docker build unpacking {int(files.iloc[0])} files" if not files.empty else "a docker build"
        return _line(f"{what} (COPY, unpack, chown -R, delete half)", _union_choices(build, higher_is_better=False),
                     "the same steps' time on the host", floor, precision, "specs")
    rows = union[(union["workload"] == "union-ops") & (union["operation"] == "append")]
    if rows.empty:
        return None
    files = rows["files"].dropna()
    what = f"appending to {int(files.iloc[0])} small image files" if not files.empty else "appending to image files"
    return _line(f"{what} (each copied up first)", _union_choices(rows, higher_is_better=False),
                 "the host's time", floor, precision, "specs")


def _web(net: list[NetRow], precision: float) -> str | None:
    rows = [r for r in net if r.workload == "http" and r.against == "host" and r.metric == "requests_per_second"
            and r.interval is not None]
    if not rows:
        return None
    engines = {r.engine for r in rows}
    choices = [Choice(r.path if len(engines) == 1 else f"{r.path} ({r.engine})", r.interval, r.higher_is_better)
               for r in rows if r.interval is not None]
    return _line("HTTP requests a second", choices, "of the host's own", None, precision, "paths")


def _line(what: str, choices: list[Choice], against: str, floor: NoiseFloor | None, precision: float,
          noun: str) -> str | None:
    if not choices:
        return None
    ranked = sorted(choices, key=lambda c: -c.goodness)
    best, worst = ranked[0], ranked[-1]
    n = f"n={best.interval.n}" if best.interval.n == worst.interval.n else f"n={best.interval.n} and {worst.interval.n}"
    if len(ranked) == 1:
        return f"{what}: only {best.name} measured, {_fmt(best)} {against} ({n})."
    text = f"{what}: best {best.name} {_fmt(best)} {against}, worst {worst.name} {_fmt(worst)}"
    pairs = len(ranked) * (len(ranked) - 1) // 2
    # how much better the best is, as a factor on the measure's own scale
    gap = between(best.interval, worst.interval, pairs) if best.higher_is_better else \
        between(worst.interval, best.interval, pairs)
    if gap is None:
        return f"{text}: not yet told apart ({n})."
    size = (f"best ÷ worst {_fmt_interval(gap)}" if best.higher_is_better
            else f"worst ÷ best {_fmt_interval(gap)} the time")
    return f"{text}; {size}: {_verdict(gap, floor, precision)} ({n}; {len(ranked)} {noun})."


def _verdict(gap: RatioInterval, floor: NoiseFloor | None, precision: float) -> str:
    """Real when the interval excludes 1.00 and lies beyond what the same run twice drifted here."""
    drift = 1.0 if floor is None or floor.source != "host-aa" else max(floor.highest, 1 / floor.lowest)
    if gap.low > drift or gap.high < 1 / drift:
        return "a real difference"
    if gap.low > 1 or gap.high < 1:
        assert floor is not None
        return f"not told apart from this machine's drift between runs ({floor.lowest:.2f}x–{floor.highest:.2f}x)"
    if 1 - precision <= gap.low and gap.high <= 1 + precision:
        return f"no measurable difference (within ±{precision * 100:.0f}%)"
    return "not yet told apart"


def _fmt(choice: Choice) -> str:
    return _fmt_interval(choice.interval) + choice.flags


def _fmt_interval(interval: RatioInterval) -> str:
    return fmt_interval(interval.ratio, interval.low, interval.high)


def _dense(over: pd.DataFrame, ops: pd.DataFrame) -> str | None:
    """Whether later containers share an image file's page cache, space and create time per
    container: measured once each (bytes) or as a p50, so they carry their n, not an interval."""
    parts = []
    if not over.empty and "operation" in over:
        later = over[(over["placement"] == "union") & (over["workload"] == "page-cache")
                     & (over["operation"] == "later reader")]
        shared = [str(r.driver_spec) for r in later.itertuples() if page_cache_shared(r) is True]
        copies = [str(r.driver_spec) for r in later.itertuples() if page_cache_shared(r) is False]
        if shared or copies:
            mib = int(later["size_mib"].dropna().iloc[0]) if later["size_mib"].notna().any() else None
            article = "an" if mib is not None and (str(mib).startswith("8") or mib in (11, 18)) else "a"
            of = f"{article} {mib} MiB image file" if mib is not None else "an image file"
            text = f"page cache of {of}: " + (f"shared on {', '.join(shared)}" if shared else "shared on none")
            parts.append(text + (f"; a copy per container on {', '.join(copies)}" if copies else ""))
    if not ops.empty:
        bulk = ops[(ops["op"] == "bulk create")] if "bytes" in ops else ops.iloc[0:0]
        bulk = bulk[bulk["bytes"].notna() & ~bulk["driver_spec"].str.split("@").str[0].isin(SHARED_EXTENTS)]
        if len(bulk) > 1:
            bulk = bulk.sort_values("bytes")
            least, most = (f"{bulk.iloc[i]['bytes'] / 2**20:.1f} MiB" for i in (0, -1))
            parts.append(f"space per container {least} on every spec measured" if least == most else
                         f"space per container least {bulk.iloc[0]['driver_spec']} {least}, "
                         f"most {bulk.iloc[-1]['driver_spec']} {most}")
        create = ops[(ops["op"] == "container create") & (ops["variant"] == "bench")].sort_values("p50_ms")
        if len(create) > 1:
            n = create["n"].astype(int)
            count = str(n.iloc[0]) if n.min() == n.max() else f"{n.min()}–{n.max()}"
            parts.append(f"container create p50 least {create.iloc[0]['driver_spec']} "
                         f"{create.iloc[0]['p50_ms']:.0f} ms, most {create.iloc[-1]['driver_spec']} "
                         f"{create.iloc[-1]['p50_ms']:.0f} ms (n={count} each)")
    if not parts:
        return None
    return "; ".join(parts) + "."
