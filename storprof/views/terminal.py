"""Views: what the terminal shows of a results directory, as blocks of text the CLI prints one
after another: every table (`storprof table`, `report`, a sweep asked for csv or json), the
network verdicts, or, at the end of a sweep, the answer within 120 columns with the answer last."""

from __future__ import annotations

import functools
import textwrap

from storprof.results import ResultSet
from storprof.results.records import NetRecord
from storprof.stats.network import NetRow
from storprof.stats.summary import noise_floor
from storprof.views import network as netviews
from storprof.views import tables
from storprof.views.own_views import format_own_views
from storprof.views.result_summary import ResultSummary
from storprof.views.usecases import use_case_lines
from storprof.views.verdicts import rankings, spec_summaries

# Spec labels keep their hyphens (fuse-overlayfs) on one row.
_wrap = functools.partial(textwrap.fill, width=tables.COMPACT_WIDTH, subsequent_indent="  ", break_on_hyphens=False)


def net_blocks(rows: list[NetRow], fmt: str) -> list[str]:
    """The network verdicts, then the table and what its columns mean."""
    if not rows:
        return []
    if fmt in ("csv", "json"):
        return [netviews.machine_readable(rows, fmt)]
    return ["", *[_wrap(line) for line in netviews.verdict_lines(rows)], "",
            netviews.format_table(rows, "pipe" if fmt == "markdown" else fmt), _wrap(netviews.NOTE)]


def table_blocks(result_set: ResultSet, summary: ResultSummary, fmt: str) -> list[str]:
    """Every table of a results directory, in the terminal style `fmt` (or csv/json for machines)."""
    out = []
    if result_set.of(NetRecord):
        out += net_blocks(summary.net, fmt)
        if result_set.runs.empty and not result_set.layers:
            return out
    runs, status, over, ops, slopes = result_set.runs, result_set.drivers, summary.over, summary.ops, summary.slopes
    if fmt in ("csv", "json"):
        return [*out, tables.machine_readable(over, ops, slopes, status, fmt)]
    fmt = "pipe" if fmt == "markdown" else fmt
    if not runs.empty:
        out += [tables.format_table(over, fmt), tables.table_notes(over), "",
                tables.answers_line(over, summary.precision), tables.noise_floor_line(noise_floor(runs, over))]
        sentences = [_wrap(f"{s.spec} (Docker {s.docker}): {s.sentence}")
                     for s in spec_summaries(over, summary.ops, summary.precision)]
        out += ["", *sentences] if sentences else []
    if not ops.empty:
        out += ["", tables.format_layers(ops, slopes, fmt)]
    own = format_own_views(runs, fmt) if not runs.empty else ""
    if own:
        out += ["", own.rstrip("\n")]
    return [*out, "", tables.format_driver_status(status, fmt)]


def answer_blocks(result_set: ResultSet, summary: ResultSummary) -> list[str]:
    """The end of a sweep: the answer by use case first (about ten lines), then what was skipped,
    the compact table, the rankings and how sure it all is. The sentences per spec are in
    `storprof table` and the report."""
    over, ops, precision = summary.over, summary.ops, summary.precision
    floor = noise_floor(result_set.runs, over)
    out = [_wrap(line) for line in use_case_lines(over, ops, summary.net, floor, precision)]
    not_run = tables.not_measured_lines(result_set.drivers)
    out += ["", "Not measured:"] if not_run else []
    out += [textwrap.fill(line, width=tables.COMPACT_WIDTH, initial_indent="  ", subsequent_indent="    ")
            for line in not_run]
    if over.empty:
        return out
    out += ["", tables.compact_table(over, ops), _wrap(tables.COMPACT_NOTE)]
    if "workload" in over and (over["workload"] == "postgres").any():
        out.append(_wrap(tables.PGBENCH_NOTE))
    used = {c for f in over["flags"] for c in f if c in "†§"}
    out += [_wrap(note) for note in tables.flag_notes(used)]
    out += ["", *[_wrap(line) for line in rankings(over, ops)]]
    return [*out, _wrap(tables.answers_line(over, precision).split("\n")[0]), _wrap(tables.noise_floor_line(floor))]
