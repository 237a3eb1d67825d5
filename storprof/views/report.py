"""`storprof report DIR`: report.md and one self-contained report.html from a results directory.

The answer comes first: a line per use case (usecases.py) and the rankings (verdicts.py), beside
the heat map; then one section per kind of measurement, each with its charts and then its table,
long tables collapsed (<details>), then a sentence per driver spec, with a table of contents. The
HTML embeds every chart as a PNG data URI and has no script and no external resource, so it can be
mailed as one file; the Markdown links the same PNGs, written to report-charts/ beside it.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from storprof.errors import UserError
from storprof.host import safepath
from storprof.results import ResultSet
from storprof.results.records import NetRecord
from storprof.results.text import printable
from storprof.stats.summary import DEFAULT_PRECISION, layer_tables, noise_floor, summarize
from storprof.views import charts, own_views
from storprof.views import tables as tbl
from storprof.views.usecases import HEADER as USE_CASE_HEADER
from storprof.views.usecases import use_cases
from storprof.views.verdicts import rankings, spec_summaries

CHART_DIR = "report-charts"
# Tables longer than this many rows are collapsed by default.
COLLAPSE_ROWS = 12


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Section:
    title: str
    charts: list[charts.Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    text: list[str] = field(default_factory=list)        # paragraphs (the answer)
    items: list[tuple[str, str]] = field(default_factory=list)   # (what, its sentence): the per-spec answers

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def sections(results: ResultSet) -> list[Section]:
    """What the report holds, in the order it is read."""
    runs = results.runs
    net = _net_section(results)
    if runs.empty and not results.layers:
        if net is None:
            raise UserError(f"{results.dir} holds no finished measurement to report")
        meta_rows = [[k, json.dumps(v) if isinstance(v, (dict, list)) else str(v)]
                     for k, v in sorted(results.meta.items())]
        return [net, Section("Machine and run", tables=[Table(["field", "value"], meta_rows)])]
    precision = float(results.meta.get("precision") or DEFAULT_PRECISION)
    over = summarize(runs, precision) if not runs.empty else pd.DataFrame(columns=["metric", "flags", "driver_spec"])
    ops, slopes = layer_tables(results.layers)
    out = [_answer(results, over, ops, precision)]
    heat = charts.heat_map(over) if not over.empty else None
    if heat:
        out.append(Section("Heat map", [heat], text=[
            "Each cell: the union's (left) or the in-container baseline's (right) throughput as a ratio to the "
            "host on the same filesystem, the geometric mean of the paired repeats. Coloured where the 95% "
            "interval excludes 1.00; pale and hatched where it does not (≈ no measurable difference, ? not yet "
            "known). § and † mark cells a cache answers (see the flags under the overhead table)."]))
    out += _measurement_sections(results, over, ops, slopes)
    if not over.empty:
        out.append(Section("Per driver spec", items=[(s.spec, f"(Docker {s.docker}): {s.sentence}")
                                                     for s in spec_summaries(over, ops, precision)]))
    if net is not None:
        out.append(net)
    out.append(Section("Drivers", tables=[Table(tbl.DRIVER_HEADERS, tbl.driver_rows(results.drivers))]))
    meta_rows = [[k, json.dumps(v) if isinstance(v, (dict, list)) else str(v)] for k, v in sorted(results.meta.items())]
    out.append(Section("Machine and run", tables=[Table(["field", "value"], meta_rows)]))
    return [s for s in out if s.charts or s.tables or s.text or s.items]


def _net_section(results: ResultSet) -> Section | None:
    """The network half (storprof net): verdicts first, the chart, the table, what each path isolates."""
    from storprof.network.plan import PATHS, WORKLOADS
    from storprof.views import network as netviews
    rows = _net_rows(results)
    if not rows:
        return None
    chart = charts.net_chart(netviews.records(rows))
    return Section("Network paths", [chart] if chart else [],
                   [Table(netviews.HEADERS, netviews.table_rows(netviews.measured(rows)), netviews.NOTE),
                    Table(["path", "what it isolates"], [[p.name, p.what] for p in PATHS.values()]),
                    Table(["workload", "what"], [[w.name, w.what] for w in WORKLOADS.values()])],
                   items=[_split_engine(line) for line in netviews.verdict_lines(rows)])


def _split_engine(line: str) -> tuple[str, str]:
    """'[Docker 28.5.2] docker-proxy vs ...' -> ('Docker 28.5.2:', 'docker-proxy vs ...') for the answer list."""
    if line.startswith("[") and "] " in line:
        engine, rest = line[1:].split("] ", 1)
        return f"{engine}:", rest
    return "", line


def _answer(results: ResultSet, over: pd.DataFrame, ops: pd.DataFrame, precision: float) -> Section:
    if over.empty:
        return Section("The answer", text=["No fio cell finished; the layer timing is below."])
    floor = noise_floor(results.runs, over)
    net = _net_rows(results)
    items = [(f"{c.case}:", c.text) for c in use_cases(over, ops, net, floor, precision)]
    text = ([USE_CASE_HEADER.rstrip(":") + "; the sentences per driver spec are below the tables."] if items else [])
    text += rankings(over, ops) + [tbl.answers_line(over, precision).split("\n")[0], tbl.noise_floor_line(floor)]
    return Section("The answer", items=items, text=text)


def _net_rows(results: ResultSet) -> list:
    from storprof.stats.network import net_rows
    return net_rows(results.of(NetRecord), float(results.meta.get("precision") or DEFAULT_PRECISION))


def _measurement_sections(results: ResultSet, over: pd.DataFrame, ops: pd.DataFrame,
                          slopes: pd.DataFrame) -> list[Section]:
    runs = results.runs
    out = []
    timed = over["metric"] == "time" if not over.empty else pd.Series(dtype=bool)
    flags = tbl.flag_notes(set("".join(over["flags"]))) if not over.empty else []
    if not over.empty and (~timed).any():
        out.append(Section("Overhead against the host", charts.ratio_charts(over),
                           [Table(*tbl.table_rows(over[~timed]), " ".join([*flags, tbl.TABLE_NOTE]))]))
        out.append(Section("Latency percentiles", charts.latency_charts(runs)))
    if not over.empty and timed.any():
        copied = charts.copied_up_chart(over[timed])
        out.append(Section("Union operations", charts.union_operation_charts(runs) + ([copied] if copied else []),
                           [Table(*tbl.time_rows(over[timed]), tbl.TIME_NOTE)]))
    for title, headers, rows, note in own_views.own_view_tables(runs) if not runs.empty else []:
        out.append(Section(title, tables=[Table(headers, rows, note)]))
    config = own_views.config_rows(runs) if not runs.empty else []
    if config:
        out.append(Section("Union configuration",
                           tables=[Table(own_views.CONFIG_HEADERS, config, own_views.CONFIG_NOTE)]))
    if not ops.empty:
        by_spec = ops.groupby("driver_spec", sort=False)
        rows = [[spec, *row] for spec, g in by_spec for row in tbl.layer_rows(g)]
        layer = [Table(["driver", *tbl.LAYER_HEADERS], rows)]
        if not slopes.empty:
            layer.append(Table(["driver", *tbl.SLOPE_HEADERS],
                               [[spec, *row] for spec, g in slopes.groupby("driver_spec", sort=False)
                                for row in tbl.slope_rows(g)]))
        out.append(Section("Layer timing", charts.layer_charts(results.layers), layer))
    return out


def write_report(results: ResultSet | Path, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write report.md (and its PNGs) and report.html; returns their paths."""
    if not isinstance(results, ResultSet):
        results = ResultSet.load(results)            # refuses a non-results directory first
    out_dir = Path(out_dir or results.dir)
    _check_out_dir(out_dir, results.dir)
    parts = sections(results)
    title = f"storprof report: {results.meta.get('hostname', '')} {results.meta.get('started', '')}".strip()
    try:
        return _write(results.dir, out_dir, title, parts)
    except OSError as e:
        raise UserError(f"cannot write the report into {out_dir}: {e.strerror or e}") from None


def _check_out_dir(out_dir: Path, results_dir: Path) -> None:
    """The report goes only where another user cannot steer it: a directory root (or you) own
    and nobody else can write, every component of its path so (safepath.py). A results directory
    another user owns is read, but the report must then go elsewhere (--out)."""
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise UserError(f"cannot write the report into {out_dir}: it is not a directory")
    problem = safepath.unsafe_reason(out_dir)
    if problem:
        hint = " (give --out a directory of yours)" if out_dir == results_dir else ""
        raise UserError(f"will not write the report into {out_dir}: {problem}{hint}")


def _write(results_dir: Path, out_dir: Path, title: str, parts: list[Section]) -> tuple[Path, Path]:
    safepath.make_private_dir(out_dir, "report directory", mode=0o755)
    safepath.real_subdir(out_dir / CHART_DIR, "the report's chart directory")
    md = [f"# {_md(title)}", "", f"Results: {_md(str(results_dir))}", "",
          *[f"- [{s.title}](#{s.anchor})" for s in parts], ""]
    contents = " · ".join(f"<a href='#{s.anchor}'>{_html(s.title)}</a>" for s in parts)
    body = [f"<h1>{_html(title)}</h1>",
            f"<p class='note'>Results: <code>{_html(str(results_dir))}</code></p>",
            f"<nav><b>Contents</b>: {contents}</nav>"]
    for i, s in enumerate(parts):
        section_md, section_html = _render(s, out_dir)
        md += section_md
        # The answer and the heat map side by side: both in the first screen.
        if i == 0 and len(parts) > 1 and parts[1].title == "Heat map":
            section_html = ["<div class='top'>", *section_html]
        if i == 1 and s.title == "Heat map":
            section_html = [*section_html, "</div>"]
        body += section_html
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    safepath.replace(md_path, "\n".join(md) + "\n")
    safepath.replace(html_path, _PAGE.format(title=_html(title), body="\n".join(body)))
    return md_path, html_path


def _render(s: Section, out_dir: Path) -> tuple[list[str], list[str]]:
    """A section as Markdown and HTML: its list, charts, paragraphs, then tables (long ones collapsed)."""
    md = [f"## {s.title}", ""]
    body = [f"<section id='{s.anchor}'><h2>{_html(s.title)}</h2>"]
    if s.items:
        md += [f"- **{_md(what)}** {_md(text)}" for what, text in s.items] + [""]
        body.append("<ul class='answer'>" + "".join(f"<li><b>{_html(what)}</b> {_html(text)}</li>"
                                                    for what, text in s.items) + "</ul>")
    for caption, png in s.charts:
        name = f"{re.sub(r'[^a-z0-9]+', '-', caption.lower()).strip('-')}.png"
        safepath.replace(out_dir / CHART_DIR / name, png)
        md += [f"![{_md(caption)}]({CHART_DIR}/{name})", ""]
        body.append(f"<figure><img alt='{_html(caption)}' src='data:image/png;base64,"
                    f"{base64.b64encode(png).decode()}'><figcaption>{_html(caption)}</figcaption></figure>")
    for paragraph in s.text:
        md += [_md(paragraph), ""]
        body.append(f"<p>{_html(paragraph)}</p>")
    for t in s.tables:
        md += [tabulate([[_md(c) for c in row] for row in t.rows], headers=[_md(h) for h in t.headers],
                        tablefmt="github", disable_numparse=True), ""]
        md += [_md(t.note), ""] if t.note else []
        # a wide table scrolls in its own box, not the page
        cells = [[printable(c) for c in row] for row in t.rows]
        table = f"<div class='wide'>{tabulate(cells, headers=t.headers, tablefmt='html', disable_numparse=True)}</div>"
        note = f"<p class='note'>{_html(t.note)}</p>" if t.note else ""
        if len(t.rows) > COLLAPSE_ROWS:
            body.append(f"<details><summary>The table: {len(t.rows)} rows</summary>{table}{note}</details>")
        else:
            body.append(table + note)
    body.append("</section>")
    return md, body


def _md(text: object) -> str:
    """Text from the results as Markdown shows it, not as HTML it could carry (a reason holding
    <script> or <img onerror=...>); control characters dropped, a '|' kept inside its table cell."""
    return html.escape(printable(text), quote=False).replace("|", "\\|")


def _html(text: object) -> str:
    """Text from the results as HTML text: escaped, control characters dropped."""
    return html.escape(printable(text))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; max-width: 90em; }}
h1 {{ font-size: 1.4em; margin: 0 0 0.2em 0; }}
nav {{ font-size: 0.9em; margin: 0.4em 0 0.8em 0; }}
ul.answer {{ padding-left: 1.2em; font-size: 0.92em; }}
ul.answer li {{ margin: 0.25em 0; max-width: 80em; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin-bottom: 0.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; white-space: nowrap; }}
th {{ background: #eee; }}
div.wide {{ overflow-x: auto; max-width: 100%; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
img {{ max-width: 100%; }}
.top {{ display: flex; gap: 1.5em; align-items: flex-start; }}
.top > section {{ flex: 1 1 0; min-width: 0; }}
.top figure {{ margin: 0; }}
details summary {{ cursor: pointer; color: #225; margin: 0.4em 0; }}
p, .note {{ max-width: 80em; }}
.note {{ font-size: 0.85em; color: #444; }}
</style></head>
<body>
{body}
</body></html>
"""
