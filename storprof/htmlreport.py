"""`storprof report DIR`: report.md and one self-contained report.html from a results directory.

Both carry the same tables (overhead, union operations, layer timing, driver status, the machine);
the HTML embeds every chart as a PNG data URI so it can be mailed as one file, and the Markdown
links the same PNGs, written to report-charts/ beside it.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from . import charts
from . import tables as tbl
from .errors import UserError
from .results import ResultSet
from .summary import layer_tables, summarize

CHART_DIR = "report-charts"


def _sections(results: ResultSet) -> tuple[list[tuple[str, list[str], list[list[str]], str]], list, list]:
    """([(title, headers, rows, note)], [(section, [(title, png)])], flag notes)."""
    runs = results.runs
    if runs.empty and not results.layers:
        raise UserError(f"{results.dir} holds no finished measurement to report")
    tables = []
    over = summarize(runs) if not runs.empty else pd.DataFrame(columns=["metric", "flags"])
    timed = over["metric"] == "time"
    if (~timed).any():
        tables.append(("Overhead against the host", *tbl.table_rows(over[~timed]), tbl.TABLE_NOTE))
    if timed.any():
        tables.append(("Union operations", *tbl.time_rows(over[timed]), tbl.TIME_NOTE))
    ops, slopes = layer_tables(results.layers)
    if not ops.empty:
        rows = [[spec, *row] for spec, g in ops.groupby("driver_spec", sort=False) for row in tbl.layer_rows(g)]
        tables.append(("Layer operations", ["driver", *tbl.LAYER_HEADERS], rows, ""))
        if not slopes.empty:
            rows = [[spec, *row] for spec, g in slopes.groupby("driver_spec", sort=False) for row in tbl.slope_rows(g)]
            tables.append(("Layer timing growth", ["driver", *tbl.SLOPE_HEADERS], rows, ""))
    tables.append(("Drivers", tbl.DRIVER_HEADERS, tbl.driver_rows(results.drivers), ""))
    meta_rows = [[k, json.dumps(v) if isinstance(v, (dict, list)) else str(v)] for k, v in sorted(results.meta.items())]
    tables.append(("Machine and run", ["field", "value"], meta_rows, ""))
    figure_sets = []
    if not runs.empty:
        figure_sets.append(("Throughput: ratio to host, per job", charts.ratio_charts(over)))
        figure_sets.append(("Latency percentiles, per job", charts.latency_charts(runs)))
        figure_sets.append(("Union operations", charts.union_operation_charts(runs)))
    figure_sets.append(("Layer timing", charts.layer_charts(results.layers)))
    figure_sets = [(name, figs) for name, figs in figure_sets if figs]
    flags = tbl.flag_notes(set("".join(over["flags"]))) if not over.empty else []
    return tables, figure_sets, flags


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def write_report(results: ResultSet | Path, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write report.md (and its PNGs) and report.html; returns their paths."""
    if not isinstance(results, ResultSet):
        results = ResultSet.load(results)            # refuses a non-results directory first
    results_dir = results.dir
    out_dir = Path(out_dir or results_dir)
    tables, figure_sets, flags = _sections(results)
    title = f"storprof report: {results.meta.get('hostname', '')} {results.meta.get('started', '')}".strip()
    try:
        return _write(results_dir, out_dir, title, tables, figure_sets, flags)
    except OSError as e:
        raise UserError(f"cannot write the report into {out_dir}: {e.strerror or e}") from None


def _write(results_dir: Path, out_dir: Path, title: str, tables, figure_sets, flags) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CHART_DIR).mkdir(exist_ok=True)

    md = [f"# {title}", "", f"Results: `{results_dir}`", ""]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>Results: <code>{html.escape(str(results_dir))}</code></p>"]
    for name, headers, rows, note in tables:
        md += [f"## {name}", "", tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
        body.append(f"<h2>{html.escape(name)}</h2>")
        body.append(tabulate(rows, headers=headers, tablefmt="html", disable_numparse=True))
        if name in ("Overhead against the host", "Union operations") and flags and name == tables[0][0]:
            md += [*flags, ""]
            body.append("<div class='flags'>" + "".join(f"<p>{html.escape(f)}</p>" for f in flags) + "</div>")
        if note:
            md += [note, ""]
            body.append(f"<p class='note'>{html.escape(note)}</p>")
    for section, figs in figure_sets:
        md += [f"## {section}", ""]
        body.append(f"<h2>{html.escape(section)}</h2>")
        for caption, png in figs:
            name = f"{_slug(caption)}.png"
            (out_dir / CHART_DIR / name).write_bytes(png)
            md += [f"![{caption}]({CHART_DIR}/{name})", ""]
            data = base64.b64encode(png).decode()
            body.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text("\n".join(md) + "\n")
    html_path.write_text(_PAGE.format(title=html.escape(title), body="\n".join(body)))
    return md_path, html_path


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 90em; }}
table {{ border-collapse: collapse; font-size: 0.85em; margin-bottom: 0.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; white-space: nowrap; }}
th {{ background: #eee; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
img {{ max-width: 100%; }}
.note, .flags p {{ font-size: 0.85em; color: #444; max-width: 70em; }}
</style></head>
<body>
{body}
</body></html>
"""
