"""Turn fio's JSON output into the few numbers storprof compares; pure functions, no I/O."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from storprof.errors import FioError

# fio's default percentile list always includes these; keys are formatted "%f".
P50, P99, P999 = "50.000000", "99.000000", "99.900000"


@dataclass(frozen=True)
class DirectionStats:
    """One I/O direction (read, write) summed over fio's job entries.

    Percentiles are None when the direction did no I/O. For `sync` they are fsync latencies and
    the rate fields are 0, since fio reports only a count and latencies for fsync.
    """

    iops: float
    bw_bytes: int            # bytes per second
    io_bytes: int
    total_ios: int
    clat_p50_ns: int | None
    clat_p99_ns: int | None
    clat_p999_ns: int | None
    runtime_ms: int


@dataclass(frozen=True)
class FioResult:
    """What one fio run measured, reduced to what storprof reports."""

    job_name: str
    fio_version: str
    read: DirectionStats
    write: DirectionStats
    sync: DirectionStats | None   # None when the job issued no fsync
    error: int                    # fio's per-job errno; the first non-zero one, else 0
    warnings: tuple[str, ...] = ()  # text fio printed around the JSON (notes, warnings)

    @property
    def runtime_ms(self) -> int:
        """How long fio measured, by its own millisecond clock (the longer direction)."""
        return max(self.read.runtime_ms, self.write.runtime_ms)

    def metrics(self) -> dict[str, float | None]:
        """Flat numbers for tables and CSV; the same keys for every job so runs line up."""
        out: dict[str, float | None] = {}
        for prefix, stats in (("read", self.read), ("write", self.write)):
            out[f"{prefix}_iops"] = float(stats.iops)
            out[f"{prefix}_bw_bytes"] = float(stats.bw_bytes)
            out[f"{prefix}_clat_p50_ns"] = _float(stats.clat_p50_ns)
            out[f"{prefix}_clat_p99_ns"] = _float(stats.clat_p99_ns)
            out[f"{prefix}_clat_p999_ns"] = _float(stats.clat_p999_ns)
        out["total_iops"] = float(self.read.iops + self.write.iops)
        out["runtime_ms"] = float(self.runtime_ms)
        out["total_bw_bytes"] = float(self.read.bw_bytes + self.write.bw_bytes)
        p99s = [s.clat_p99_ns for s in (self.read, self.write) if s.total_ios and s.clat_p99_ns is not None]
        out["p99_clat_ns"] = float(max(p99s)) if p99s else None
        sync = self.sync
        out["sync_lat_p50_ns"] = _float(sync.clat_p50_ns) if sync else None
        out["sync_lat_p99_ns"] = _float(sync.clat_p99_ns) if sync else None
        out["sync_lat_p999_ns"] = _float(sync.clat_p999_ns) if sync else None
        return out


def extract_json(text: str) -> dict:
    """The JSON object in fio's stdout, skipping the notes and warnings fio prints around it."""
    found = _find_json(text)
    if found is None:
        shown = text.strip()
        raise FioError(f"fio printed no JSON result: {_one_line(shown) if shown else 'no output'}")
    return found[0]


def text_around_json(text: str) -> list[str]:
    """The non-empty lines fio printed before and after its JSON object (all of them if none)."""
    found = _find_json(text)
    if found is None:
        return _lines(text)
    _, start, end = found
    return _lines(text[:start]) + _lines(text[end:])


def _find_json(text: str) -> tuple[dict, int, int] | None:
    """fio's JSON object and its span.

    fio starts it at a line beginning, so those braces are tried first; any other brace only counts
    when it opens fio's top-level object, so an inner object of truncated output is never mistaken for it.
    """
    braces = [i for i, ch in enumerate(text) if ch == "{"]
    line_starts = {i for i in braces if i == 0 or text[i - 1] == "\n"}
    candidates = ([(i, False) for i in braces if i in line_starts]
                  + [(i, True) for i in braces if i not in line_starts])
    decoder = json.JSONDecoder()
    for start, must_look_like_fio in candidates:
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and (not must_look_like_fio or "jobs" in value or "fio version" in value):
            return value, start, end
    return None


def result_from_json(data: dict) -> FioResult:
    """Reduce fio's JSON to a FioResult without judging success; job entries are summed."""
    jobs = data.get("jobs") or []
    if not jobs:
        raise FioError("fio's JSON holds no jobs")
    errors = [int(job.get("error", 0)) for job in jobs]
    sync_entries = [job["sync"] for job in jobs if isinstance(job.get("sync"), dict)]
    sync = _sync_stats(sync_entries)
    return FioResult(
        job_name=str(jobs[0].get("jobname", "")),
        fio_version=str(data.get("fio version", "")),
        read=_direction_stats([job["read"] for job in jobs if "read" in job]),
        write=_direction_stats([job["write"] for job in jobs if "write" in job]),
        sync=sync if sync.total_ios else None,
        error=next((e for e in errors if e), 0),
    )


def parse_fio_output(stdout: str, stderr: str = "") -> FioResult:
    """A FioResult from one fio run's output, or FioError carrying fio's own message."""
    try:
        data = extract_json(stdout)
    except FioError:
        message = _one_line("\n".join(_lines(stderr) + _lines(stdout)))
        raise FioError(f"fio failed: {message or 'no output'}") from None
    notes = text_around_json(stdout)
    result = result_from_json(data)
    if result.error:
        detail = _one_line("\n".join(notes + _lines(stderr)))
        name = result.job_name or "job"
        raise FioError(f"fio job {name} failed with error {result.error} "
                       f"({os.strerror(result.error)}): {detail or 'no message'}")
    return FioResult(result.job_name, result.fio_version, result.read, result.write, result.sync,
                     result.error, tuple(notes))


def _direction_stats(entries: list[dict]) -> DirectionStats:
    """Sum rates over concurrent job entries; keep the worst percentile."""
    pcts = [e.get("clat_ns", {}).get("percentile") or {} for e in entries if e.get("total_ios", 0)]
    return DirectionStats(
        iops=float(sum(e.get("iops", 0.0) for e in entries)),
        bw_bytes=int(sum(e.get("bw_bytes", 0) for e in entries)),
        io_bytes=int(sum(e.get("io_bytes", 0) for e in entries)),
        total_ios=int(sum(e.get("total_ios", 0) for e in entries)),
        clat_p50_ns=_worst(pcts, P50),
        clat_p99_ns=_worst(pcts, P99),
        clat_p999_ns=_worst(pcts, P999),
        runtime_ms=int(max((e.get("runtime", 0) for e in entries), default=0)),
    )


def _sync_stats(entries: list[dict]) -> DirectionStats:
    """fsync latency percentiles; fio gives fsync no rate, so the rate fields stay 0."""
    counted = [e for e in entries if e.get("total_ios", 0)]
    pcts = [e.get("lat_ns", {}).get("percentile") or {} for e in counted]
    return DirectionStats(iops=0.0, bw_bytes=0, io_bytes=0,
                          total_ios=int(sum(e["total_ios"] for e in counted)),
                          clat_p50_ns=_worst(pcts, P50), clat_p99_ns=_worst(pcts, P99),
                          clat_p999_ns=_worst(pcts, P999), runtime_ms=0)


def _worst(percentile_maps: list[dict], key: str) -> int | None:
    values = [int(p[key]) for p in percentile_maps if key in p]
    return max(values) if values else None


def _float(value: int | None) -> float | None:
    return None if value is None else float(value)


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in (text or "").splitlines() if ln.strip()]


def _one_line(text: str, limit: int = 2) -> str:
    """The first few distinct lines joined, so one error fits on one line.

    fio's 'fio: job X dropped' follow-up is left out unless it is all there is.
    """
    distinct = list(dict.fromkeys(_lines(text)))
    useful = [ln for ln in distinct if not re.fullmatch(r"fio: job .* dropped", ln)] or distinct
    shown = " / ".join(useful[:limit])
    return shown + (f" (+{len(useful) - limit} more lines)" if len(useful) > limit else "")
