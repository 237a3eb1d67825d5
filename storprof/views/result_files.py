"""Views: the tables written beside a results directory (overhead.csv/.md, layers.csv/.md,
net.md), the wide ones, always, whatever the terminal was shown."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from storprof.host import safepath
from storprof.results import ResultSet
from storprof.results.records import DriverRecord
from storprof.stats.network import NetRow
from storprof.views import network as netviews
from storprof.views.own_views import format_own_views
from storprof.views.result_summary import ResultSummary
from storprof.views.tables import exported, format_driver_status, format_layers, format_table, table_notes


def write_tables(over: pd.DataFrame, status: list[DriverRecord], out_dir: Path,
                 runs: pd.DataFrame | None = None) -> list[Path]:
    """overhead.csv (numbers, one row per cell) and overhead.md (the table people read)."""
    out_dir = Path(out_dir)
    csv_path = out_dir / "overhead.csv"
    md_path = out_dir / "overhead.md"
    safepath.replace(csv_path, exported(over).to_csv(index=False))
    md = ["# storprof overhead", "", format_table(over, "github"), "", table_notes(over), "",
          *([own, ""] if (own := format_own_views(runs, "github") if runs is not None and not runs.empty else "")
            else []),
          "## Drivers", "", format_driver_status(status, "github"), ""]
    safepath.replace(md_path, "\n".join(md))
    return [csv_path, md_path]


def write_layer_tables(ops: pd.DataFrame, slopes: pd.DataFrame, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    paths = [out_dir / "layers.csv", out_dir / "layers-growth.csv", out_dir / "layers.md"]
    safepath.replace(paths[0], ops.to_csv(index=False))
    safepath.replace(paths[1], slopes.to_csv(index=False))
    safepath.replace(paths[2], "# storprof layer timing\n\n" + format_layers(ops, slopes, "github") + "\n")
    return paths



def write_net_table(out_dir: Path, rows: list[NetRow]) -> None:
    """net.md: the network verdicts' table."""
    if rows:
        safepath.replace(Path(out_dir) / "net.md", netviews.markdown(rows))


def write_result_tables(result_set: ResultSet, summary: ResultSummary) -> None:
    """Every table file of a results directory, from its summary."""
    write_net_table(result_set.dir, summary.net)
    if not result_set.runs.empty:
        write_tables(summary.over, result_set.drivers, result_set.dir, result_set.runs)
    if not summary.ops.empty:
        write_layer_tables(summary.ops, summary.slopes, result_set.dir)
