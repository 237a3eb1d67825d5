"""Views: the tables written beside a results directory (overhead.csv/.md, layers.csv/.md), the
wide ones, always, whatever the terminal was shown."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from storprof.host import safepath
from storprof.results.records import DriverRecord
from storprof.views.own_views import format_own_views
from storprof.views.tables import format_driver_status, format_layers, format_table, table_notes


def write_tables(over: pd.DataFrame, status: list[DriverRecord], out_dir: Path,
                 runs: pd.DataFrame | None = None) -> list[Path]:
    """overhead.csv (numbers, one row per cell) and overhead.md (the table people read)."""
    out_dir = Path(out_dir)
    csv_path = out_dir / "overhead.csv"
    md_path = out_dir / "overhead.md"
    safepath.replace(csv_path, over.to_csv(index=False))
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

